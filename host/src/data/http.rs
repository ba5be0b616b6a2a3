//! IoT routes: the sensor registry, batched reading ingest, and the latest
//! value, time windows and bucketed aggregates of a sensor.
//!
//! Who may do what: any signed-in staff account reads (sensor data is shared
//! publicly for now); a sensor is registered or changed by an operator or by a
//! handler, supervisor or leader of its owning department; its readings are
//! ingested by an operator or by any staff of its owning department. Service
//! accounts (plugins) and residents never ingest.

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::iot::MAX_WINDOW;
use super::{NewReading, Registered, Sensor, SensorFilter};
use crate::api::auth::AuthUser;
use crate::api::{ApiError, AppState, JsonBody};
use crate::audit::Entry;
use crate::identity::Role;

/// The largest ingest body: 10,000 readings with 64-character sensor ids and
/// generous formatting stay below it (axum's default is 2 MiB).
const INGEST_BODY_LIMIT: usize = 8 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sensor-kinds", get(kinds))
        .route("/api/sensors", get(list).post(register))
        .route("/api/sensors/{id}", get(sensor))
        .route("/api/sensors/{id}/latest", get(latest))
        .route("/api/sensors/{id}/readings", get(window))
        .route("/api/sensors/{id}/aggregate", get(aggregate))
        .route("/api/readings", post(ingest).layer(DefaultBodyLimit::max(INGEST_BODY_LIMIT)))
}

/// Refuse with 403, leaving an audit record.
async fn deny(state: &AppState, user: &AuthUser, action: &str, subject: &str, why: String) -> ApiError {
    let actor = format!("user:{}", user.principal.id);
    state.services.audit.record(Entry { actor: &actor, action, subject, outcome: "denied", detail: &why }).await;
    ApiError::Forbidden(why)
}

/// Reads are open to every staff account.
async fn require_staff(state: &AppState, user: &AuthUser, action: &str, subject: &str) -> Result<(), ApiError> {
    if user.principal.kind == "staff" {
        return Ok(());
    }
    Err(deny(state, user, action, subject, format!("{action} is open to staff accounts only")).await)
}

/// A query string, its errors in the one error shape.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t).map_err(|e| ApiError::BadRequest(e.body_text()))
}

async fn known_sensor(state: &AppState, id: &str) -> Result<Sensor, ApiError> {
    state.services.data.sensor(id).await?.ok_or_else(|| ApiError::NotFound(format!("no sensor `{id}`")))
}

/// The sensor kinds with their units.
async fn kinds(State(state): State<AppState>, user: AuthUser) -> Result<Json<Value>, ApiError> {
    require_staff(&state, &user, "iot.read", "sensor-kinds").await?;
    Ok(Json(json!(state.services.data.sensor_kinds().await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    kind: Option<String>,
    department: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/sensors?kind=&department=&after=&limit=`: sensors by id, at most
/// `limit` (default 1,000, at most 10,000); page on with `after` = the last id.
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<Sensor>>, ApiError> {
    let q = query(q)?;
    require_staff(&state, &user, "iot.read", "sensors").await?;
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let filter = SensorFilter {
        kind: given(q.kind),
        department: given(q.department),
        after: given(q.after),
        limit: q.limit.unwrap_or(1000),
    };
    Ok(Json(state.services.data.sensors(&filter).await?))
}

/// `POST /api/sensors`: register a sensor or update it; 201 when created, 200
/// when updated, with the sensor as stored.
async fn register(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<Sensor>,
) -> Result<(StatusCode, Json<Sensor>), ApiError> {
    const ACTION: &str = "iot.sensor.register";
    let p = &user.principal;
    if !p.has_role(Role::Operator) {
        let staff_role = [Role::Handler, Role::Supervisor, Role::Leader].into_iter().any(|r| p.has_role(r));
        if !(p.kind == "staff" && staff_role && p.department.as_deref() == Some(body.department.as_str())) {
            let why = format!(
                "registering a sensor of department `{}` requires the `handler`, `supervisor` or `leader` role \
                 in that department, or the `operator` role",
                body.department
            );
            return Err(deny(&state, &user, ACTION, &body.id, why).await);
        }
        if let Some(old) = state.services.data.sensor(&body.id).await?
            && old.department != body.department
        {
            let why = format!("sensor `{}` belongs to department `{}`", old.id, old.department);
            return Err(deny(&state, &user, ACTION, &body.id, why).await);
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

async fn sensor(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Sensor>, ApiError> {
    require_staff(&state, &user, "iot.read", &id).await?;
    Ok(Json(known_sensor(&state, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ingest {
    readings: Vec<NewReading>,
}

/// `POST /api/readings` with `{"readings": [{"sensor", "time", "value"}, ...]}`:
/// all or nothing, answered `{"accepted": n}` once committed; each stored
/// reading is then announced on `iot.reading.<kind>`.
async fn ingest(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<Ingest>,
) -> Result<Json<Value>, ApiError> {
    const ACTION: &str = "iot.ingest";
    let p = &user.principal;
    if p.kind != "staff" {
        let why = "only staff accounts ingest readings".to_owned();
        return Err(deny(&state, &user, ACTION, "readings", why).await);
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
                return Err(deny(&state, &user, ACTION, &s.id, why).await);
            }
        }
    }
    let committed = data.commit_readings(batch).await?;
    let accepted = committed.accepted();
    data.announce_readings(state.services.bus.clone(), format!("user:{}", p.id), committed).await;
    Ok(Json(json!({ "accepted": accepted })))
}

/// `GET /api/sensors/{id}/latest`: `{"sensor", "unit", "reading": {"time", "value"} | null}`.
async fn latest(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&state, &user, "iot.read", &id).await?;
    let s = known_sensor(&state, &id).await?;
    let reading = state.services.data.latest(&id).await?;
    Ok(Json(json!({ "sensor": s.id, "unit": s.unit, "reading": reading })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowQuery {
    from: i64,
    to: i64,
    limit: Option<usize>,
}

/// `GET /api/sensors/{id}/readings?from=&to=&limit=`: readings with
/// `from <= time < to`, oldest first, at most `limit` (default and maximum
/// 10,000); `truncated` says whether more follow.
async fn window(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    require_staff(&state, &user, "iot.read", &id).await?;
    let s = known_sensor(&state, &id).await?;
    let w = state.services.data.window(&id, q.from, q.to, q.limit.unwrap_or(MAX_WINDOW)).await?;
    Ok(Json(json!({
        "sensor": s.id, "unit": s.unit, "from": q.from, "to": q.to,
        "readings": w.readings, "truncated": w.truncated,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AggregateQuery {
    from: i64,
    to: i64,
    bucket_ms: i64,
}

/// `GET /api/sensors/{id}/aggregate?from=&to=&bucket_ms=`: per bucket
/// `{start, count, min, max, avg, rate_per_hour}`, buckets counted from `from`,
/// empty ones left out.
async fn aggregate(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    q: Result<Query<AggregateQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    require_staff(&state, &user, "iot.read", &id).await?;
    let s = known_sensor(&state, &id).await?;
    let buckets = state.services.data.aggregate(&id, q.from, q.to, q.bucket_ms).await?;
    Ok(Json(json!({
        "sensor": s.id, "unit": s.unit, "from": q.from, "to": q.to, "bucket_ms": q.bucket_ms,
        "buckets": buckets,
    })))
}
