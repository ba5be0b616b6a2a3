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

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::data::import::Format;
use crate::data::{Dataset, DatasetSpec, RecordQuery, WriteMode, Writer};
use crate::data::accountability::Accountability;
use crate::data::records::{ComponentClass, ImportReport, Written};
use crate::api::ApiQuery;
use crate::api::auth::AuthUser;
use crate::api::error::{ErrorBody, read_body};
use crate::api::openapi::{BadRequest, Forbidden, Unauthorized};
use crate::api::{ApiError, AppState, JsonBody};
use crate::audit::Entry;
use crate::identity::{Role, Scope};
use crate::error::ServiceError;

/// The largest import body.
pub const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;

const WRITER_ROLES: [Role; 5] = [Role::Handler, Role::Supervisor, Role::Leader, Role::Dispatcher, Role::GridWorker];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_datasets, create_dataset))
        .routes(routes!(get_dataset, update_dataset))
        .routes(routes!(query_records, insert_record))
        .routes(routes!(get_record, put_record, delete_record))
        .routes(routes!(import_records).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)))
        .routes(routes!(component_classes))
        .routes(routes!(data_accountability))
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

async fn known(state: &AppState, name: &str) -> Result<Dataset, ApiError> {
    state.services.data.dataset(name).await?.ok_or_else(|| ApiError::NotFound(format!("no data set `{name}`")))
}

/// The data set, if the caller may read it; and the caller's scope.
async fn readable(state: &AppState, user: &AuthUser, action: &str, name: &str) -> Result<(Dataset, Scope), ApiError> {
    user.require_staff(state, action, name).await?;
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
    user.require_staff(state, action, name).await?;
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

/// A record as served.
#[derive(Serialize, ToSchema)]
pub struct RecordView {
    pub key: String,
    /// The record, a JSON object.
    pub value: Value,
    /// The org unit (area code) it belongs to.
    pub area: Option<String>,
    /// When it was last written, ms since the epoch.
    pub updated: i64,
    /// Who last wrote it: `user:<id>`, `plugin:<name>`, `host:…`.
    pub updated_by: String,
}

impl From<crate::data::Record> for RecordView {
    fn from(r: crate::data::Record) -> Self {
        RecordView {
            value: serde_json::from_str(&r.value).unwrap_or(Value::Null),
            key: r.key,
            area: r.area,
            updated: r.updated,
            updated_by: r.updated_by,
        }
    }
}

/// A page of records.
#[derive(Serialize, ToSchema)]
pub struct RecordPage {
    /// Records matching the query, over all pages.
    pub total: i64,
    pub offset: u32,
    pub limit: u32,
    pub records: Vec<RecordView>,
}

/// A data set's definition, with whether the caller may read its records.
#[derive(Serialize, ToSchema)]
pub struct DatasetListing {
    #[serde(flatten)]
    pub spec: DatasetSpec,
    pub readable: bool,
}

/// List data sets.
///
/// Every data set's definition, with whether the caller may read its records. Staff only.
#[utoipa::path(
    get,
    path = "/api/datasets",
    tag = "data",
    responses(
        (status = 200, description = "The data sets, by name", body = Vec<DatasetListing>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
async fn list_datasets(State(state): State<AppState>, user: AuthUser) -> Result<Json<Vec<DatasetListing>>, ApiError> {
    user.require_staff(&state, "data.datasets", "datasets").await?;
    let department = user.principal.department.clone().unwrap_or_default();
    let sets = state.services.data.datasets().await?;
    Ok(Json(
        sets.iter().map(|s| DatasetListing { spec: DatasetSpec::from(s), readable: s.readable_by(&department) }).collect(),
    ))
}

/// Define a data set.
///
/// `201`, or `409` when the name is taken. Allowed to an operator, or to a
/// leader of the owning department. The schema must be a JSON Schema of an object.
#[utoipa::path(
    post,
    path = "/api/datasets",
    tag = "data",
    request_body = DatasetSpec,
    responses(
        (status = 201, description = "Defined", body = DatasetSpec),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "The definition is invalid; the message names the field", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn create_dataset(
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

/// One data set's definition.
#[utoipa::path(
    get,
    path = "/api/datasets/{name}",
    tag = "data",
    params(("name" = String, Path, description = "The data set")),
    responses(
        (status = 200, description = "The definition", body = DatasetSpec),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such data set", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn get_dataset(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<DatasetSpec>, ApiError> {
    user.require_staff(&state, "data.datasets", &name).await?;
    Ok(Json(DatasetSpec::from(&known(&state, &name).await?)))
}

/// Replace a data set's definition.
///
/// A schema that stored records would break is refused (`422`) with their keys.
#[utoipa::path(
    put,
    path = "/api/datasets/{name}",
    tag = "data",
    params(("name" = String, Path, description = "The data set")),
    request_body = DatasetSpec,
    responses(
        (status = 200, description = "Replaced", body = DatasetSpec),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such data set", body = ErrorBody),
        (status = 422, description = "The definition is invalid, or stored records break it", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn update_dataset(
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

/// The documented query parameters; any other parameter filters a field.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct RecordParams {
    /// Records to skip.
    offset: Option<u32>,
    /// At most this many (default 100, at most 1,000).
    limit: Option<u32>,
    /// Only records within this org unit (area code).
    area: Option<String>,
}

/// Query records.
///
/// Every parameter but `offset`, `limit` and `area` filters a field, dotted for
/// nested fields (`location.lon=118.81`), its value typed by the schema (a
/// string field compares as text, a number field as a number; elsewhere a JSON
/// scalar if it parses, else text). Readers: staff of a department the data set
/// is shared with, seeing only records within their scope.
#[utoipa::path(
    get,
    path = "/api/datasets/{name}/records",
    tag = "data",
    params(("name" = String, Path, description = "The data set"), RecordParams),
    responses(
        (status = 200, description = "A page of records, in key order", body = RecordPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such data set", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn query_records(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    ApiQuery(params): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<RecordPage>, ApiError> {
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
                if rq.limit == 0 || rq.limit > crate::data::records::MAX_PAGE {
                    return Err(ApiError::BadRequest(format!(
                        "query `limit`: {} is outside 1-{}",
                        rq.limit,
                        crate::data::records::MAX_PAGE
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
    Ok(Json(RecordPage {
        total: page.total,
        offset: rq.offset,
        limit: rq.limit,
        records: page.records.into_iter().map(RecordView::from).collect(),
    }))
}

/// One record.
#[utoipa::path(
    get,
    path = "/api/datasets/{name}/records/{key}",
    tag = "data",
    params(("name" = String, Path, description = "The data set"), ("key" = String, Path, description = "The record's key")),
    responses(
        (status = 200, description = "The record", body = RecordView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such data set or key", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn get_record(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, key)): Path<(String, String)>,
) -> Result<Json<RecordView>, ApiError> {
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
    Ok(Json(RecordView::from(record)))
}

/// A record to insert.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    /// Needed only when the data set has no key field.
    key: Option<String>,
    /// The record, a JSON object satisfying the data set's schema.
    value: Value,
}

/// Insert a record.
///
/// `201`, or `409` when the key exists. Writers: handler, supervisor, leader,
/// dispatcher or grid worker of the owning department, within their scope.
#[utoipa::path(
    post,
    path = "/api/datasets/{name}/records",
    tag = "data",
    params(("name" = String, Path, description = "The data set")),
    request_body = NewRecord,
    responses(
        (status = 201, description = "Inserted", body = Written),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such data set", body = ErrorBody),
        (status = 409, description = "The key exists", body = ErrorBody),
        (status = 422, description = "The record breaks the schema or a check; the message names the field", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn insert_record(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<NewRecord>,
) -> Result<(StatusCode, Json<Written>), ApiError> {
    const ACTION: &str = "data.insert";
    let (_, scope) = writable(&state, &user, ACTION, &name).await?;
    let actor = actor(&user);
    let writer = Writer { actor: &actor, scope: &scope };
    let written = match state.services.data.write(&name, body.key.as_deref(), &body.value.to_string(), WriteMode::Insert, writer).await {
        Ok(w) => w,
        Err(e) => return Err(service(&state, &user, ACTION, &name, e).await),
    };
    audit_ok(&state, &user, ACTION, &format!("{name}/{}", written.key), "created").await;
    Ok((StatusCode::CREATED, Json(written)))
}

/// Insert or replace a record.
///
/// The body is the record. `201` when created, `200` when replaced. Writers as
/// for insert; a record of another area is neither replaced nor moved.
#[utoipa::path(
    put,
    path = "/api/datasets/{name}/records/{key}",
    tag = "data",
    params(("name" = String, Path, description = "The data set"), ("key" = String, Path, description = "The record's key")),
    request_body = Value,
    responses(
        (status = 200, description = "Replaced", body = Written),
        (status = 201, description = "Created", body = Written),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such data set", body = ErrorBody),
        (status = 422, description = "The record breaks the schema or a check; the message names the field", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn put_record(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, key)): Path<(String, String)>,
    JsonBody(value): JsonBody<Value>,
) -> Result<(StatusCode, Json<Written>), ApiError> {
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
    Ok((status, Json(written)))
}

/// Delete a record.
#[utoipa::path(
    delete,
    path = "/api/datasets/{name}/records/{key}",
    tag = "data",
    params(("name" = String, Path, description = "The data set"), ("key" = String, Path, description = "The record's key")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such data set or key", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    /// `csv` or `json`; by default from the Content-Type.
    format: Option<String>,
}

/// Import records.
///
/// The body is a CSV file (a header row; dotted columns such as `location.lat`
/// nest) or JSON (an array of records, or one per line), up to 64 MiB. All or
/// nothing: every record is checked before any is written, and errors name
/// the line and field. Writers as for insert.
#[utoipa::path(
    post,
    path = "/api/datasets/{name}/import",
    tag = "data",
    params(("name" = String, Path, description = "The data set"), ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "The file; `application/json` for JSON"),
    responses(
        (status = 200, description = "Imported", body = ImportReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such data set", body = ErrorBody),
        (status = 413, description = "The file is larger than 64 MiB", body = ErrorBody),
        (status = 422, description = "Some records are invalid; nothing was written", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn import_records(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    const ACTION: &str = "data.import";
    let (_, scope) = writable(&state, &user, ACTION, &name).await?;
    // Read only now: a caller who may not write never has their body read.
    let body = read_body(body, IMPORT_BODY_LIMIT).await?;
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
    Ok(Json(report))
}

/// 部件 classes.
///
/// The classes of city components, by code (major + minor class).
#[utoipa::path(
    get,
    path = "/api/component-classes",
    tag = "data",
    responses(
        (status = 200, description = "The classes", body = Vec<ComponentClass>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
async fn component_classes(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<ComponentClass>>, ApiError> {
    user.require_staff(&state, "data.read", "component-classes").await?;
    Ok(Json(state.services.data.component_class_list().await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AccountabilityQuery {
    /// Only data sets this department owns.
    department: Option<String>,
}

/// Sharing accountability.
///
/// Per data set and per owning department: freshness (last update, its age,
/// whether it is within the promised interval) and completeness (the share of
/// expected fields filled).
#[utoipa::path(
    get,
    path = "/api/data/accountability",
    tag = "data",
    params(AccountabilityQuery),
    responses(
        (status = 200, description = "The figures", body = Accountability),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
async fn data_accountability(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<AccountabilityQuery>,
) -> Result<Json<Accountability>, ApiError> {
    user.require_staff(&state, "data.accountability", "datasets").await?;
    Ok(Json(state.services.data.accountability(q.department.as_deref().filter(|d| !d.is_empty())).await?))
}
