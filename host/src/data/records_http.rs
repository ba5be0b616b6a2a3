//! Data set and record routes, bulk import, component classes and sharing
//! accountability.
//!
//! Who may do what:
//! - *read* a data set's records: staff whose department the data set is shared
//!   with (its owner, every department for `public`, the listed ones for
//!   `shared`), and only records within their scope — a role held at city level
//!   sees the whole city; a street-level role sees that street and below, and
//!   records that belong to no area;
//! - *write* records (insert, replace, delete, import): staff of the owning
//!   department holding `handler`, `supervisor`, `leader`, `dispatcher` or
//!   `grid-worker`, within their scope (old and new area);
//! - *define* data sets: an operator, or a leader of the owning department;
//! - data set headers, component classes and accountability figures carry no
//!   record content and are open to every staff account.
//!
//! Every refusal answers 403 and leaves an audit record; every write is audited.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::import::Format;
use super::{Dataset, DatasetSpec, RecordQuery, WriteMode, Writer};
use crate::api::auth::AuthUser;
use crate::api::{ApiError, AppState, JsonBody};
use crate::audit::Entry;
use crate::identity::{Role, Scope};
use crate::services::ServiceError;

/// The largest import body.
pub const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;

const WRITER_ROLES: [Role; 5] = [Role::Handler, Role::Supervisor, Role::Leader, Role::Dispatcher, Role::GridWorker];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/datasets", get(list).post(create))
        .route("/api/datasets/{name}", get(show).put(update))
        .route("/api/datasets/{name}/records", get(query).post(insert))
        .route("/api/datasets/{name}/records/{key}", get(get_record).put(put_record).delete(delete_record))
        .route(
            "/api/datasets/{name}/import",
            axum::routing::post(import).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route("/api/component-classes", get(component_classes))
        .route("/api/data/accountability", get(accountability))
}

async fn audit_ok(state: &AppState, user: &AuthUser, action: &str, subject: &str, detail: &str) {
    let actor = actor(user);
    state.services.audit.record(Entry { actor: &actor, action, subject, outcome: "ok", detail }).await;
}

fn actor(user: &AuthUser) -> String {
    format!("user:{}", user.principal.id)
}

/// A service error, with a refusal (scope) audited as such.
async fn service(state: &AppState, user: &AuthUser, action: &str, subject: &str, e: ServiceError) -> ApiError {
    match e {
        ServiceError::Forbidden(why) => user.deny(state, action, subject, why).await,
        other => other.into(),
    }
}

async fn require_staff(state: &AppState, user: &AuthUser, action: &str, subject: &str) -> Result<(), ApiError> {
    if user.principal.kind == "staff" {
        return Ok(());
    }
    Err(user.deny(state, action, subject, format!("{action} is open to staff accounts only")).await)
}

async fn known(state: &AppState, name: &str) -> Result<Dataset, ApiError> {
    state.services.data.dataset(name).await?.ok_or_else(|| ApiError::NotFound(format!("no data set `{name}`")))
}

/// The data set, if the caller may read it; and the caller's scope.
async fn readable(state: &AppState, user: &AuthUser, action: &str, name: &str) -> Result<(Dataset, Scope), ApiError> {
    require_staff(state, user, action, name).await?;
    let set = known(state, name).await?;
    let department = user.principal.department.as_deref().unwrap_or("");
    if !set.readable_by(department) {
        let why = format!(
            "data set `{name}` is owned by `{}` and not shared with {}",
            set.owner_department,
            if department.is_empty() { "accounts without a department".to_owned() } else { format!("`{department}`") }
        );
        return Err(user.deny(state, action, name, why).await);
    }
    Ok((set, state.services.identity.scope(&user.principal).await?))
}

/// The data set, if the caller may write it; and the caller's scope.
async fn writable(state: &AppState, user: &AuthUser, action: &str, name: &str) -> Result<(Dataset, Scope), ApiError> {
    require_staff(state, user, action, name).await?;
    let set = known(state, name).await?;
    let p = &user.principal;
    if p.department.as_deref() != Some(set.owner_department.as_str()) || !WRITER_ROLES.iter().any(|r| p.has_role(*r)) {
        let why = format!(
            "writing data set `{name}` requires the `handler`, `supervisor`, `leader`, `dispatcher` or `grid-worker` \
             role in its owning department `{}`",
            set.owner_department
        );
        return Err(user.deny(state, action, name, why).await);
    }
    Ok((set, state.services.identity.scope(p).await?))
}

/// Operators, and leaders of the owning department, define data sets.
async fn may_define(state: &AppState, user: &AuthUser, action: &str, owner: &str, name: &str) -> Result<(), ApiError> {
    let p = &user.principal;
    if p.has_role(Role::Operator) || (p.has_role(Role::Leader) && p.department.as_deref() == Some(owner)) {
        return Ok(());
    }
    let why = format!("defining data set `{name}` requires the `operator` role or `leader` in department `{owner}`");
    Err(user.deny(state, action, name, why).await)
}

fn record_json(r: super::Record) -> Value {
    let value: Value = serde_json::from_str(&r.value).unwrap_or(Value::Null);
    json!({ "key": r.key, "value": value, "area": r.area, "updated": r.updated, "updated_by": r.updated_by })
}

/// `GET /api/datasets`: every data set's definition, with whether the caller may read its records.
async fn list(State(state): State<AppState>, user: AuthUser) -> Result<Json<Value>, ApiError> {
    require_staff(&state, &user, "data.datasets", "datasets").await?;
    let department = user.principal.department.clone().unwrap_or_default();
    let sets = state.services.data.datasets().await?;
    Ok(Json(Value::Array(
        sets.iter()
            .map(|s| {
                let mut v = serde_json::to_value(DatasetSpec::from(s)).expect("a spec serialises");
                v["readable"] = json!(s.readable_by(&department));
                v
            })
            .collect(),
    )))
}

/// `POST /api/datasets`: define a data set; 201, or 409 when the name is taken.
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(spec): JsonBody<DatasetSpec>,
) -> Result<(StatusCode, Json<DatasetSpec>), ApiError> {
    const ACTION: &str = "data.dataset.create";
    may_define(&state, &user, ACTION, &spec.owner_department, &spec.name).await?;
    state.services.data.create_dataset(&spec).await?;
    audit_ok(&state, &user, ACTION, &spec.name, "").await;
    Ok((StatusCode::CREATED, Json(spec)))
}

async fn show(State(state): State<AppState>, user: AuthUser, Path(name): Path<String>) -> Result<Json<DatasetSpec>, ApiError> {
    require_staff(&state, &user, "data.datasets", &name).await?;
    Ok(Json(DatasetSpec::from(&known(&state, &name).await?)))
}

/// `PUT /api/datasets/{name}`: replace a definition; a schema that stored
/// records would break is refused with their keys.
async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    JsonBody(spec): JsonBody<DatasetSpec>,
) -> Result<Json<DatasetSpec>, ApiError> {
    const ACTION: &str = "data.dataset.update";
    if spec.name != name {
        return Err(ApiError::BadRequest(format!("field `name`: `{}` differs from the path's `{name}`", spec.name)));
    }
    let old = known(&state, &name).await?;
    // Both the old and the new owner must be the caller's to define.
    may_define(&state, &user, ACTION, &old.owner_department, &name).await?;
    may_define(&state, &user, ACTION, &spec.owner_department, &name).await?;
    state.services.data.update_dataset(&spec).await?;
    audit_ok(&state, &user, ACTION, &name, "").await;
    Ok(Json(spec))
}

/// `GET /api/datasets/{name}/records?offset=&limit=&area=&<field>=<value>…`:
/// every other parameter is a filter on a field (dotted for nested fields),
/// its value typed by the schema (a string field compares as text, a number
/// field as a number; elsewhere a JSON scalar if it parses, else text).
async fn query(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (set, scope) = readable(&state, &user, "data.query", &name).await?;
    let schema = state.services.data.schema(&set)?;
    let mut rq = RecordQuery { filters: vec![], area: None, scope, offset: 0, limit: 100 };
    for (k, v) in params {
        let number = |what: &str| {
            v.parse::<u32>().map_err(|_| ApiError::BadRequest(format!("query `{what}`: `{v}` is not a whole number")))
        };
        match k.as_str() {
            "offset" => rq.offset = number("offset")?,
            "limit" => {
                rq.limit = number("limit")?;
                if rq.limit == 0 || rq.limit > super::records::MAX_PAGE {
                    return Err(ApiError::BadRequest(format!(
                        "query `limit`: {} is outside 1-{}",
                        rq.limit,
                        super::records::MAX_PAGE
                    )));
                }
            }
            "area" => rq.area = Some(v),
            _ => {
                let value = match schema.field_type(&k) {
                    Some("string") => Value::String(v),
                    Some("integer" | "number") => serde_json::from_str::<serde_json::Number>(&v)
                        .map(Value::Number)
                        .map_err(|_| ApiError::BadRequest(format!("filter `{k}`: `{v}` is not a number")))?,
                    Some("boolean") => match v.as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        _ => return Err(ApiError::BadRequest(format!("filter `{k}`: `{v}` is not true or false"))),
                    },
                    _ => serde_json::from_str::<Value>(&v).ok().filter(|j| !j.is_object() && !j.is_array()).unwrap_or(Value::String(v)),
                };
                rq.filters.push((k, value));
            }
        }
    }
    let page = state.services.data.query(&name, &rq).await.map_err(|e| match e {
        ServiceError::Invalid(m) => ApiError::BadRequest(m),
        other => other.into(),
    })?;
    Ok(Json(json!({
        "total": page.total, "offset": rq.offset, "limit": rq.limit,
        "records": page.records.into_iter().map(record_json).collect::<Vec<_>>(),
    })))
}

async fn get_record(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    const ACTION: &str = "data.get";
    let (_, scope) = readable(&state, &user, ACTION, &name).await?;
    let record = state
        .services
        .data
        .get(&name, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("data set `{name}` holds no key `{key}`")))?;
    if !scope.covers(record.area.as_deref()) {
        let why = format!(
            "record `{key}` belongs to org unit `{}`, outside {scope}",
            record.area.as_deref().unwrap_or("-")
        );
        return Err(user.deny(&state, ACTION, &format!("{name}/{key}"), why).await);
    }
    Ok(Json(record_json(record)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRecord {
    /// Needed only when the data set has no key field.
    key: Option<String>,
    value: Value,
}

/// `POST /api/datasets/{name}/records` with `{"key"?, "value"}`: 201, or 409
/// when the key exists.
async fn insert(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<NewRecord>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const ACTION: &str = "data.insert";
    let (_, scope) = writable(&state, &user, ACTION, &name).await?;
    let actor = actor(&user);
    let writer = Writer { actor: &actor, scope: &scope };
    let written = match state.services.data.write(&name, body.key.as_deref(), &body.value.to_string(), WriteMode::Insert, writer).await {
        Ok(w) => w,
        Err(e) => return Err(service(&state, &user, ACTION, &name, e).await),
    };
    audit_ok(&state, &user, ACTION, &format!("{name}/{}", written.key), "created").await;
    Ok((StatusCode::CREATED, Json(json!(written))))
}

/// `PUT /api/datasets/{name}/records/{key}` with the record as the body: 201
/// when created, 200 when replaced.
async fn put_record(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, key)): Path<(String, String)>,
    JsonBody(value): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const ACTION: &str = "data.put";
    let (_, scope) = writable(&state, &user, ACTION, &name).await?;
    let actor = actor(&user);
    let writer = Writer { actor: &actor, scope: &scope };
    let subject = format!("{name}/{key}");
    let written = match state.services.data.write(&name, Some(&key), &value.to_string(), WriteMode::Upsert, writer).await {
        Ok(w) => w,
        Err(e) => return Err(service(&state, &user, ACTION, &subject, e).await),
    };
    let (status, detail) = if written.created { (StatusCode::CREATED, "created") } else { (StatusCode::OK, "replaced") };
    audit_ok(&state, &user, ACTION, &subject, detail).await;
    Ok((status, Json(json!(written))))
}

async fn delete_record(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    const ACTION: &str = "data.delete";
    let (_, scope) = writable(&state, &user, ACTION, &name).await?;
    let actor = actor(&user);
    let subject = format!("{name}/{key}");
    match state.services.data.delete(&name, &key, Writer { actor: &actor, scope: &scope }).await {
        Ok(true) => {
            audit_ok(&state, &user, ACTION, &subject, "").await;
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) => Err(ApiError::NotFound(format!("data set `{name}` holds no key `{key}`"))),
        Err(e) => Err(service(&state, &user, ACTION, &subject, e).await),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    format: Option<String>,
}

/// `POST /api/datasets/{name}/import?format=csv|json`: the body is the file (the
/// format defaults from the Content-Type); all or nothing; `{"inserted", "updated"}`.
async fn import(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    headers: HeaderMap,
    q: Result<Query<ImportQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    const ACTION: &str = "data.import";
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (_, scope) = writable(&state, &user, ACTION, &name).await?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let format = match &q.format {
        Some(f) => Format::parse(f).ok_or_else(|| ApiError::BadRequest(format!("query `format`: `{f}` is not csv or json")))?,
        None => Format::parse(content_type.split(';').next().unwrap_or("").trim()).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "say the format: `?format=csv|json`, or a Content-Type of text/csv or application/json (got `{content_type}`)"
            ))
        })?,
    };
    let data = &state.services.data;
    let rows = data.parse_import(&name, format, &body).await?;
    let actor = actor(&user);
    let report = match data.import(&name, rows, Writer { actor: &actor, scope: &scope }, &mut |_| {}).await {
        Ok(r) => r,
        Err(e) => return Err(service(&state, &user, ACTION, &name, e).await),
    };
    let detail = format!("{} inserted, {} updated", report.inserted, report.updated);
    audit_ok(&state, &user, ACTION, &name, &detail).await;
    Ok(Json(json!(report)))
}

/// `GET /api/component-classes`: the 部件 classes, by code.
async fn component_classes(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<super::records::ComponentClass>>, ApiError> {
    require_staff(&state, &user, "data.read", "component-classes").await?;
    Ok(Json(state.services.data.component_class_list().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountabilityQuery {
    department: Option<String>,
}

/// `GET /api/data/accountability?department=`: freshness and completeness per
/// data set and per owning department.
async fn accountability(
    State(state): State<AppState>,
    user: AuthUser,
    q: Result<Query<AccountabilityQuery>, QueryRejection>,
) -> Result<Json<super::accountability::Accountability>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    require_staff(&state, &user, "data.accountability", "datasets").await?;
    Ok(Json(state.services.data.accountability(q.department.as_deref().filter(|d| !d.is_empty())).await?))
}
