//! Open311 GeoReport v2 under `/open311/v2/`, in JSON and XML:
//!
//! - `GET services.{json,xml}`: the case categories as services;
//! - `GET services/{code}.{json,xml}`: a service's definition (no extra attributes);
//! - `POST requests.{json,xml}`: a report (form-encoded or JSON), taken in
//!   through the one intake on the `open311` channel; anonymous reports are
//!   accepted, as the standard expects;
//! - `GET requests.{json,xml}`: requests filtered by `service_request_id`
//!   (comma-separated, overriding the rest), `service_code` (comma-separated),
//!   `start_date`, `end_date`, `status` (`open`, `closed` or `open,closed`),
//!   all in the query before its limit of 1,000;
//! - `GET requests/{id}.{json,xml}`: one request.
//!
//! A request's id is the case's public ticket number; its status is `open`
//! until the case is closed, rejected or voided, with the stage in
//! `status_notes`. Nothing personal is served: no reporter, no caller, and no
//! description for hotline cases (an operator's notes may name the caller).
//! Failures use the Open311 error form, `[{"code": 400, "description": "…"}]`
//! (`<errors><error>…</error></errors>` in XML), which Open311 clients expect.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::protocols::cap::CapTime;
use crate::cases::public::PublicFilter;
use crate::cases::engine::{Channel, NewReport};
use crate::cases::lifecycle::Stage;
use crate::api::limits;
use crate::api::AppState;
use crate::bus::GeoPoint;
use crate::error::ServiceError;

/// Times are written in China Standard Time.
const OFFSET_MINUTES: i32 = 480;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(open311_get, open311_post)).routes(routes!(open311_service)).routes(routes!(open311_request))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml}

/// `name.json` → (`name`, Json).
fn split(file: &str) -> Option<(&str, Format)> {
    if let Some(n) = file.strip_suffix(".json") {
        Some((n, Format::Json))
    } else {
        file.strip_suffix(".xml").map(|n| (n, Format::Xml))
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c)}
    }
    out
}

/// The Open311 error form.
fn error(format: Format, status: StatusCode, description: &str) -> Response {
    let code = status.as_u16();
    match format {
        Format::Json => (status, axum::Json(serde_json::json!([{ "code": code, "description": description }]))).into_response(),
        Format::Xml => xml(
            status,
            format!(
                "<errors><error><code>{code}</code><description>{}</description></error></errors>",
                escape(description)
            ),
        )}
}

fn xml(status: StatusCode, body: String) -> Response {
    let doc = format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>{body}");
    (status, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], doc).into_response()
}

fn service_error(format: Format, e: ServiceError) -> Response {
    match e {
        ServiceError::Invalid(m) => error(format, StatusCode::BAD_REQUEST, &m),
        ServiceError::NotFound(m) => error(format, StatusCode::NOT_FOUND, &m),
        ServiceError::Conflict(m) => error(format, StatusCode::CONFLICT, &m),
        ServiceError::Forbidden(m) => error(format, StatusCode::FORBIDDEN, &m),
        ServiceError::Storage(e) => {
            tracing::error!("open311: {e:#}");
            error(format, StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log")
        }
    }
}

/// A value of a record, as an XML element or a JSON member.
enum Field {
    Text(Option<String>),
    Number(Option<f64>),
    Bool(bool)}

/// Write `records` as the JSON array or the XML list Open311 clients read.
fn render(format: Format, status: StatusCode, list: &str, item: &str, records: &[Vec<(&'static str, Field)>]) -> Response {
    match format {
        Format::Json => {
            let array: Vec<serde_json::Value> = records
                .iter()
                .map(|fields| {
                    let mut o = serde_json::Map::new();
                    for (k, v) in fields {
                        let v = match v {
                            Field::Text(t) => t.clone().map(serde_json::Value::String).unwrap_or(serde_json::Value::Null),
                            Field::Number(n) => n.map(serde_json::Value::from).unwrap_or(serde_json::Value::Null),
                            Field::Bool(b) => serde_json::Value::Bool(*b)};
                        o.insert((*k).to_owned(), v);
                    }
                    serde_json::Value::Object(o)
                })
                .collect();
            (status, axum::Json(array)).into_response()
        }
        Format::Xml => {
            let mut body = format!("<{list}>");
            for fields in records {
                body.push_str(&format!("<{item}>"));
                for (k, v) in fields {
                    let text = match v {
                        Field::Text(t) => t.as_deref().map(escape).unwrap_or_default(),
                        Field::Number(n) => n.map(|n| n.to_string()).unwrap_or_default(),
                        Field::Bool(b) => b.to_string()};
                    body.push_str(&format!("<{k}>{text}</{k}>"));
                }
                body.push_str(&format!("</{item}>"));
            }
            body.push_str(&format!("</{list}>"));
            xml(status, body)
        }
    }
}

fn time(ms: i64) -> String {
    CapTime::from_epoch_ms(ms, OFFSET_MINUTES).to_string()
}

fn services(cats: &[crate::cases::engine::Category]) -> Vec<Vec<(&'static str, Field)>> {
    cats.iter()
        .map(|c| {
            vec![
                ("service_code", Field::Text(Some(c.code.clone()))),
                ("service_name", Field::Text(Some(c.name.clone()))),
                ("description", Field::Text(Some(format!("{}：{}", c.major_name, c.name)))),
                ("metadata", Field::Bool(false)),
                ("type", Field::Text(Some("realtime".into()))),
                ("keywords", Field::Text(Some(String::new()))),
                ("group", Field::Text(Some(c.major_name.clone()))),
            ]
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct RequestFilter {
    service_request_id: Option<String>,
    service_code: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    status: Option<String>}

/// Services, or requests.
///
/// `services.json`/`services.xml` list the categories; `requests.json`/
/// `requests.xml` list requests, filtered by `service_request_id`
/// (comma-separated; it overrides every other filter), `service_code`
/// (comma-separated), `start_date`, `end_date` (W3C date-times) and `status`
/// (`open`, `closed`, or both comma-separated), newest first, at most 1,000
/// (90 days without dates). Every filter is applied before the limit, so an
/// old request is always found by its id. Open to anyone.
#[utoipa::path(
    get,
    path = "/open311/v2/{file}",
    tag = "open311",
    params(("file" = String, Path, description = "`services.json`, `services.xml`, `requests.json` or `requests.xml`")),
    responses(
        (status = 200, description = "The list, in the format the file's extension names"),
        (status = 400, description = "A bad filter, in the Open311 error form"),
        (status = 404, description = "No such list, in the Open311 error form"),
    ),
)]
async fn open311_get(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(filter): Query<Vec<(String, String)>>,
) -> Response {
    let Some((name, format)) = split(&file) else {
        return error(Format::Json, StatusCode::NOT_FOUND, &format!("no `{file}`: use .json or .xml"));
    };
    match name {
        "services" => match state.services.cases.categories().await {
            Ok(cats) => render(format, StatusCode::OK, "services", "service", &services(&cats)),
            Err(e) => service_error(format, e)},
        "requests" => {
            let mut f = RequestFilter::default();
            for (k, v) in filter {
                match k.as_str() {
                    "service_request_id" => f.service_request_id = Some(v),
                    "service_code" => f.service_code = Some(v),
                    "start_date" => f.start_date = Some(v),
                    "end_date" => f.end_date = Some(v),
                    "status" => f.status = Some(v),
                    // Open311 clients send jurisdiction_id and api_key; they change nothing here.
                    _ => {}
                }
            }
            match requests(&state, &f).await {
                Ok(list) => render(format, StatusCode::OK, "service_requests", "request", &list),
                Err(e) => service_error(format, e)}
        }
        other => error(format, StatusCode::NOT_FOUND, &format!("no Open311 list `{other}`"))}
}

/// One service's definition.
#[utoipa::path(
    get,
    path = "/open311/v2/services/{file}",
    tag = "open311",
    params(("file" = String, Path, description = "`{service_code}.json` or `{service_code}.xml`")),
    responses(
        (status = 200, description = "The definition: the code and no extra attributes"),
        (status = 404, description = "No such service, in the Open311 error form"),
    ),
)]
async fn open311_service(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some((code, format)) = split(&file) else {
        return error(Format::Json, StatusCode::NOT_FOUND, &format!("no `{file}`: use .json or .xml"));
    };
    let cats = match state.services.cases.categories().await {
        Ok(c) => c,
        Err(e) => return service_error(format, e)};
    if !cats.iter().any(|c| c.code == code) {
        return error(format, StatusCode::NOT_FOUND, &format!("no service `{code}`"));
    }
    match format {
        Format::Json => axum::Json(serde_json::json!({ "service_code": code, "attributes": [] })).into_response(),
        Format::Xml => xml(
            StatusCode::OK,
            format!("<service_definition><service_code>{}</service_code><attributes></attributes></service_definition>", escape(code)),
        )}
}

/// One request.
#[utoipa::path(
    get,
    path = "/open311/v2/requests/{file}",
    tag = "open311",
    params(("file" = String, Path, description = "`{service_request_id}.json` or `.xml`")),
    responses(
        (status = 200, description = "A list holding the request"),
        (status = 404, description = "No such request, in the Open311 error form"),
    ),
)]
async fn open311_request(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some((id, format)) = split(&file) else {
        return error(Format::Json, StatusCode::NOT_FOUND, &format!("no `{file}`: use .json or .xml"));
    };
    let f = RequestFilter { service_request_id: Some(id.to_owned()), ..Default::default() };
    match requests(&state, &f).await {
        Ok(list) if list.is_empty() => error(format, StatusCode::NOT_FOUND, &format!("no request `{id}`")),
        Ok(list) => render(format, StatusCode::OK, "service_requests", "request", &list),
        Err(e) => service_error(format, e)}
}

/// A request as an Open311 client posts it.
#[derive(Deserialize, Serialize)]
struct PostRequest {
    service_code: Option<String>,
    lat: Option<f64>,
    long: Option<f64>,
    address_string: Option<String>,
    description: Option<String>,
    /// The device the report is sent from (GeoReport v2: the phone, not the
    /// request); kept with the report, never used to tell reports apart.
    device_id: Option<String>}

/// Post a request.
///
/// Form-encoded (`application/x-www-form-urlencoded`, as the standard has it)
/// or JSON: `service_code`, `lat`, `long`, `address_string`, `description`,
/// `device_id` (the sending phone, kept with the report; two posts from one
/// phone are two requests); `api_key`, `email`, names and phone are accepted
/// and not stored. The report is on disk before the answer,
/// `[{"service_request_id", "service_notice"}]`.
#[utoipa::path(
    post,
    path = "/open311/v2/{file}",
    tag = "open311",
    params(("file" = String, Path, description = "`requests.json` or `requests.xml`")),
    responses(
        (status = 201, description = "Taken in: the new request's id (its ticket)"),
        (status = 400, description = "A missing or bad field, in the Open311 error form"),
        (status = 429, description = "More than 60 posts a minute from this address, or 10 from this `device_id`; in the Open311 error form, with `Retry-After`"),
    ),
)]
async fn open311_post(
    State(state): State<AppState>,
    client: limits::ClientAddress,
    Path(file): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(("requests", format)) = split(&file) else {
        return error(Format::Json, StatusCode::NOT_FOUND, &format!("no `{file}` to post to: use requests.json or requests.xml"));
    };
    let json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("application/json"));
    let parsed: Result<PostRequest, String> = if json {
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    } else {
        // Form bodies may carry fields this host ignores (api_key, email, …).
        serde_urlencoded::from_bytes(&body).map_err(|e| e.to_string())
    };
    let req = match parsed {
        Ok(r) => r,
        Err(m) => return error(format, StatusCode::BAD_REQUEST, &format!("the request body: {m}"))};
    let Some(code) = req.service_code.filter(|c| !c.is_empty()) else {
        return error(format, StatusCode::BAD_REQUEST, "service_code: required");
    };
    let location = match (req.lat, req.long) {
        (Some(lat), Some(lon)) => Some(GeoPoint { lat, lon }),
        (None, None) => None,
        _ => return error(format, StatusCode::BAD_REQUEST, "lat and long go together")};
    if location.is_none() && req.address_string.as_deref().is_none_or(str::is_empty) {
        return error(format, StatusCode::BAD_REQUEST, "a location is required: lat and long, or address_string");
    }
    let report = NewReport {
        channel: Channel::Open311,
        idempotency_key: None,
        category_code: code,
        title: None,
        description: req.description.filter(|d| !d.trim().is_empty()).unwrap_or_else(|| "（Open311 请求，无描述）".into()),
        location,
        address: req.address_string,
        evidence: vec![],
        caller: None};
    let device = req.device_id.as_deref().filter(|d| !d.is_empty());
    if let Err(crate::api::ApiError::TooManyRequests { message, retry_after_secs }) =
        limits::check(&state, client.0, limits::Limit::Open311Post, device).await
    {
        let mut refused = error(format, StatusCode::TOO_MANY_REQUESTS, &message);
        if let Ok(v) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
            refused.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return refused;
    }
    match state.services.cases.intake_from_device(&report, None, device).await {
        Ok(intake) => {
            let status = if intake.created { StatusCode::CREATED } else { StatusCode::OK };
            let record = vec![
                ("service_request_id", Field::Text(Some(intake.ticket))),
                ("service_notice", Field::Text(Some("已受理，可凭编号查询进度".into()))),
                ("account_id", Field::Text(None)),
            ];
            render(format, status, "service_requests", "request", &[record])
        }
        Err(e) => service_error(format, e)}
}

/// The requests matching `f`, newest first, as Open311 records.
async fn requests(state: &AppState, f: &RequestFilter) -> Result<Vec<Vec<(&'static str, Field)>>, ServiceError> {
    let now = state.services.clock.now_ms();
    let date = |field: &str, v: &Option<String>| -> Result<Option<i64>, ServiceError> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| CapTime::parse(s).map(|t| t.epoch_ms).map_err(|m| ServiceError::Invalid(format!("{field}: {m}"))))
            .transpose()
    };
    let end = date("end_date", &f.end_date)?.unwrap_or(now + 1);
    let start = date("start_date", &f.start_date)?.unwrap_or(end - 90 * 24 * 3_600_000);
    if end <= start {
        return Err(ServiceError::Invalid("end_date: not after start_date".into()));
    }
    let list = |v: &Option<String>| -> Option<Vec<String>> {
        v.as_deref().map(|s| s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect())
    };
    // `status` is one value or a comma-separated list of them.
    let mut statuses = (false, false);
    for s in list(&f.status).unwrap_or_default() {
        match s.as_str() {
            "open" => statuses.0 = true,
            "closed" => statuses.1 = true,
            other => return Err(ServiceError::Invalid(format!("status: `{other}` is not open or closed"))),
        }
    }
    let open = match statuses {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    };
    let filter = PublicFilter { tickets: list(&f.service_request_id), service_codes: list(&f.service_code), start, end, open };
    let found = state.services.cases.public_requests(&filter).await?;
    Ok(found
        .into_iter()
        .map(|r| {
            let status = if r.stage.is_open() { "open" } else { "closed" };
            vec![
                ("service_request_id", Field::Text(Some(r.ticket))),
                ("status", Field::Text(Some(status.to_owned()))),
                ("status_notes", Field::Text(Some(stage_note(r.stage).to_owned()))),
                ("service_name", Field::Text(Some(r.category_name))),
                ("service_code", Field::Text(Some(r.category_code))),
                ("description", Field::Text(r.description)),
                ("agency_responsible", Field::Text(r.agency)),
                ("service_notice", Field::Text(None)),
                ("requested_datetime", Field::Text(Some(time(r.created)))),
                ("updated_datetime", Field::Text(Some(time(r.updated)))),
                ("expected_datetime", Field::Text(None)),
                ("address", Field::Text(r.address)),
                ("address_id", Field::Text(None)),
                ("zipcode", Field::Text(None)),
                ("lat", Field::Number(r.lat)),
                ("long", Field::Number(r.lon)),
                ("media_url", Field::Text(None)),
            ]
        })
        .collect())
}

fn stage_note(stage: Stage) -> &'static str {
    match stage {
        Stage::Reported => "已上报，待受理",
        Stage::Accepted => "已受理",
        Stage::Rejected => "不予受理",
        Stage::Registered => "已立案，待派遣",
        Stage::Voided => "已作废",
        Stage::Dispatched => "已派遣至责任部门",
        Stage::InProgress => "处置中",
        Stage::Disposed => "已处置，待核查",
        Stage::Checking => "核查中",
        Stage::Checked => "核查通过，待结案",
        Stage::Closed => "已结案"}
}
