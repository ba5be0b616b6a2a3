//! IoT routes: the sensor registry, batched reading ingest, and the latest
//! value, time windows and bucketed aggregates of a sensor.
//!
//! Who may do what: any signed-in staff account reads (sensor data is shared
//! publicly for now); a sensor is registered or changed by an operator or by a
//! handler, supervisor or leader of its owning department; its readings are
//! ingested by an operator or by any staff of its owning department. Service
//! accounts (plugins) and residents never ingest.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::data::iot::MAX_WINDOW;
use crate::data::{Bucket, NewReading, Reading, Registered, Sensor, SensorFilter, SensorKind};
use crate::api::ApiQuery;
use crate::api::auth::AuthUser;
use crate::api::error::ErrorBody;
use crate::api::openapi::{BadRequest, Forbidden, Unauthorized};
use crate::api::{ApiError, AppState, JsonBody};
use crate::audit::Entry;
use crate::identity::Role;

/// The largest ingest body: 10,000 readings with 64-character sensor ids and
/// generous formatting stay below it (axum's default is 2 MiB).
const INGEST_BODY_LIMIT: usize = 8 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sensor_kinds))
        .routes(routes!(list_sensors, register_sensor))
        .routes(routes!(get_sensor))
        .routes(routes!(latest_reading))
        .routes(routes!(reading_window))
        .routes(routes!(aggregate_readings))
        .routes(routes!(ingest_readings).layer(DefaultBodyLimit::max(INGEST_BODY_LIMIT)))
}

async fn known_sensor(state: &AppState, id: &str) -> Result<Sensor, ApiError> {
    state.services.data.sensor(id).await?.ok_or_else(|| ApiError::NotFound(format!("no sensor `{id}`")))
}

/// Sensor kinds.
///
/// The sensor kinds with their units; staff only.
#[utoipa::path(
    get,
    path = "/api/sensor-kinds",
    tag = "iot",
    responses(
        (status = 200, description = "The kinds, by name", body = Vec<SensorKind>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
async fn sensor_kinds(State(state): State<AppState>, user: AuthUser) -> Result<Json<Vec<SensorKind>>, ApiError> {
    user.require_staff(&state, "iot.read", "sensor-kinds").await?;
    Ok(Json(state.services.data.sensor_kinds().await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only sensors of this kind.
    kind: Option<String>,
    /// Only sensors of this department.
    department: Option<String>,
    /// Only ids after this one: the last id of the previous page.
    after: Option<String>,
    /// At most this many (default 1,000, at most 10,000).
    limit: Option<u32>,
}

/// List sensors.
///
/// Sensors by id, at most `limit` (default 1,000, at most 10,000); page on
/// with `after` = the last id. Staff only.
#[utoipa::path(
    get,
    path = "/api/sensors",
    tag = "iot",
    params(ListQuery),
    responses(
        (status = 200, description = "The sensors, by id", body = Vec<Sensor>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
async fn list_sensors(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Sensor>>, ApiError> {
    user.require_staff(&state, "iot.read", "sensors").await?;
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let filter = SensorFilter {
        kind: given(q.kind),
        department: given(q.department),
        after: given(q.after),
        limit: q.limit.unwrap_or(1000),
    };
    Ok(Json(state.services.data.sensors(&filter).await?))
}

/// Register or update a sensor.
///
/// `201` when created, `200` when updated, with the sensor as stored. Allowed
/// to an operator, or to a handler, supervisor or leader of the owning
/// department (who may not move a sensor to another department).
#[utoipa::path(
    post,
    path = "/api/sensors",
    tag = "iot",
    request_body = Sensor,
    responses(
        (status = 200, description = "Updated", body = Sensor),
        (status = 201, description = "Created", body = Sensor),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (
            status = 422,
            description = "An invalid field: the id, an unknown kind, a wrong unit, the location, an unknown \
                department, or a new kind for a sensor that has readings",
            body = ErrorBody,
        ),
    ),
    security(("bearer" = [])),
)]
async fn register_sensor(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<Sensor>,
) -> Result<(StatusCode, Json<Sensor>), ApiError> {
    const ACTION: &str = "iot.sensor.register";
    let p = &user.principal;
    if !p.has_role(Role::Operator) {
        let staff_role = [Role::Handler, Role::Supervisor, Role::Leader].into_iter().any(|r| p.has_role(r));
        if !(p.is_staff() && staff_role && p.department.as_deref() == Some(body.department.as_str())) {
            let why = format!(
                "registering a sensor of department `{}` requires the `handler`, `supervisor` or `leader` role \
                 in that department, or the `operator` role",
                body.department
            );
            return Err(user.deny(&state, ACTION, &body.id, why).await);
        }
        if let Some(old) = state.services.data.sensor(&body.id).await?
            && old.department != body.department
        {
            let why = format!("sensor `{}` belongs to department `{}`", old.id, old.department);
            return Err(user.deny(&state, ACTION, &body.id, why).await);
        }
    }
    let registered = state.services.data.register_sensor(&body).await?;
    let (status, detail) = match registered {
        Registered::Created => (StatusCode::CREATED, "created"),
        Registered::Updated => (StatusCode::OK, "updated"),
    };
    let actor = format!("user:{}", p.id);
    state
        .services
        .audit
        .record(Entry { actor: &actor, action: ACTION, subject: &body.id, outcome: "ok", detail })
        .await;
    Ok((status, Json(body)))
}

/// One sensor.
#[utoipa::path(
    get,
    path = "/api/sensors/{id}",
    tag = "iot",
    params(("id" = String, Path, description = "The sensor id")),
    responses(
        (status = 200, description = "The sensor", body = Sensor),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such sensor", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn get_sensor(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Sensor>, ApiError> {
    user.require_staff(&state, "iot.read", &id).await?;
    Ok(Json(known_sensor(&state, &id).await?))
}

/// A batch of readings.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Ingest {
    /// Up to 10,000 readings.
    readings: Vec<NewReading>,
}

/// How many readings a batch stored.
#[derive(Serialize, ToSchema)]
struct Ingested {
    accepted: usize,
}

/// Ingest readings.
///
/// A batch of up to 10,000 readings (body up to 8 MiB): validated whole, the
/// first error naming `readings[i].field`; written in one transaction and
/// answered once committed. Each stored reading is then announced on
/// `iot.reading.<kind>`. Allowed to an operator, or to staff of every
/// sensor's department.
#[utoipa::path(
    post,
    path = "/api/readings",
    tag = "iot",
    request_body = Ingest,
    responses(
        (status = 200, description = "Committed", body = Ingested),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (
            status = 422,
            description = "A reading is invalid (unknown sensor, time, value) or the batch is too large; \
                nothing was stored",
            body = ErrorBody,
        ),
    ),
    security(("bearer" = [])),
)]
async fn ingest_readings(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<Ingest>,
) -> Result<Json<Ingested>, ApiError> {
    const ACTION: &str = "iot.ingest";
    let p = &user.principal;
    if !p.is_staff() {
        let why = "only staff accounts ingest readings".to_owned();
        return Err(user.deny(&state, ACTION, "readings", why).await);
    }
    let data = &state.services.data;
    let batch = data.prepare_readings(&body.readings).await?;
    if !p.has_role(Role::Operator) {
        for (i, s) in batch.sensors() {
            if p.department.as_deref() != Some(s.department.as_str()) {
                let why = format!(
                    "readings[{i}].sensor: sensor `{}` belongs to department `{}`; only its staff or an operator \
                     ingest its readings",
                    s.id, s.department
                );
                return Err(user.deny(&state, ACTION, &s.id, why).await);
            }
        }
    }
    let committed = data.commit_readings(batch).await?;
    let accepted = committed.accepted();
    data.announce_readings(state.services.bus.clone(), format!("user:{}", p.id), committed).await;
    Ok(Json(Ingested { accepted }))
}

/// A sensor's newest reading.
#[derive(Serialize, ToSchema)]
struct LatestReading {
    sensor: String,
    unit: String,
    /// `null` before the first reading.
    reading: Option<Reading>,
}

/// The newest reading.
#[utoipa::path(
    get,
    path = "/api/sensors/{id}/latest",
    tag = "iot",
    params(("id" = String, Path, description = "The sensor id")),
    responses(
        (status = 200, description = "The newest reading, or `null`", body = LatestReading),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such sensor", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn latest_reading(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<LatestReading>, ApiError> {
    user.require_staff(&state, "iot.read", &id).await?;
    let s = known_sensor(&state, &id).await?;
    let reading = state.services.data.latest(&id).await?;
    Ok(Json(LatestReading { sensor: s.id, unit: s.unit, reading }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct WindowQuery {
    /// The window's start (inclusive), milliseconds since the Unix epoch.
    from: i64,
    /// The window's end (exclusive), milliseconds since the Unix epoch.
    to: i64,
    /// At most this many readings (default and maximum 10,000).
    limit: Option<usize>,
}

/// A window of a sensor's readings, oldest first.
#[derive(Serialize, ToSchema)]
struct ReadingWindow {
    sensor: String,
    unit: String,
    from: i64,
    to: i64,
    readings: Vec<Reading>,
    /// Whether more readings lie in the window; continue from the last time + 1.
    truncated: bool,
}

/// A window of readings.
///
/// Readings with `from <= time < to`, oldest first, at most `limit` (default
/// and maximum 10,000); `truncated` says whether more follow.
#[utoipa::path(
    get,
    path = "/api/sensors/{id}/readings",
    tag = "iot",
    params(("id" = String, Path, description = "The sensor id"), WindowQuery),
    responses(
        (status = 200, description = "The readings", body = ReadingWindow),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such sensor", body = ErrorBody),
        (status = 422, description = "The window is invalid", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn reading_window(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> Result<Json<ReadingWindow>, ApiError> {
    user.require_staff(&state, "iot.read", &id).await?;
    let s = known_sensor(&state, &id).await?;
    let w = state.services.data.window(&id, q.from, q.to, q.limit.unwrap_or(MAX_WINDOW)).await?;
    Ok(Json(ReadingWindow {
        sensor: s.id,
        unit: s.unit,
        from: q.from,
        to: q.to,
        readings: w.readings,
        truncated: w.truncated,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AggregateQuery {
    /// The first bucket's start, milliseconds since the Unix epoch.
    from: i64,
    /// The end (exclusive), milliseconds since the Unix epoch.
    to: i64,
    /// The bucket width in milliseconds (at most 10,000 buckets).
    bucket_ms: i64,
}

/// A sensor's readings summarised per bucket.
#[derive(Serialize, ToSchema)]
struct ReadingAggregate {
    sensor: String,
    unit: String,
    from: i64,
    to: i64,
    bucket_ms: i64,
    /// Buckets holding readings, oldest first; empty ones are left out.
    buckets: Vec<Bucket>,
}

/// Aggregates per bucket.
///
/// Per bucket `{start, count, min, max, avg, rate_per_hour}`, buckets counted
/// from `from`, empty ones left out.
#[utoipa::path(
    get,
    path = "/api/sensors/{id}/aggregate",
    tag = "iot",
    params(("id" = String, Path, description = "The sensor id"), AggregateQuery),
    responses(
        (status = 200, description = "The buckets", body = ReadingAggregate),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such sensor", body = ErrorBody),
        (status = 422, description = "The window or the bucket width is invalid", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn aggregate_readings(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AggregateQuery>,
) -> Result<Json<ReadingAggregate>, ApiError> {
    user.require_staff(&state, "iot.read", &id).await?;
    let s = known_sensor(&state, &id).await?;
    let buckets = state.services.data.aggregate(&id, q.from, q.to, q.bucket_ms).await?;
    Ok(Json(ReadingAggregate { sensor: s.id, unit: s.unit, from: q.from, to: q.to, bucket_ms: q.bucket_ms, buckets }))
}
