//! CAP alerts over HTTP: import an alert, export a warning.

use crate::cases::alerts::{AlertError, ImportedAlert, Importer, NewTrustedSenders, TrustedSenders};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use crate::protocols::cap;
use crate::api::auth::AuthUser;
use crate::api::error::{ErrorBody, read_body};
use crate::api::openapi::{BadRequest, Forbidden, Unauthorized};
use crate::api::{ApiError, AppState, JsonBody};
use crate::audit::Entry;
use crate::identity::Role;

/// The roles that import CAP alerts, within their area.
const IMPORTING: [Role; 3] = [Role::Dispatcher, Role::Leader, Role::Operator];

/// The largest CAP alert accepted, in bytes.
pub const CAP_BODY_LIMIT: usize = 2 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_cap_alert))
        .routes(routes!(export_warning))
        .routes(routes!(get_trusted_senders, put_trusted_senders))
}

/// The trusted CAP senders.
///
/// Senders (official warning services) whose alerts the command centre alone
/// imports: only a dispatcher, leader or operator role held at city level may
/// import, update or cancel an alert naming one as its `sender`. Operators.
#[utoipa::path(
    get,
    path = "/api/cap/trusted-senders",
    tag = "cases",
    responses(
        (status = 200, description = "The list, by sender", body = TrustedSenders),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
async fn get_trusted_senders(State(state): State<AppState>, user: AuthUser) -> Result<Json<TrustedSenders>, ApiError> {
    user.require(&state, Role::Operator, "cap.trusted-senders.read").await?;
    Ok(Json(state.services.cases.trusted_senders().await?))
}

/// Replace the trusted CAP senders.
///
/// The whole list at once, in one transaction; a sender already listed keeps
/// who added it and when. A blank, overlong or repeated sender answers `422`
/// naming it (`senders[0].sender`). Operators only.
#[utoipa::path(
    put,
    path = "/api/cap/trusted-senders",
    tag = "cases",
    request_body = NewTrustedSenders,
    responses(
        (status = 200, description = "Stored; the list as it now stands", body = TrustedSenders),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, description = "A sender is blank, too long or listed twice; the message names it", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn put_trusted_senders(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(list): JsonBody<NewTrustedSenders>,
) -> Result<Json<TrustedSenders>, ApiError> {
    const ACTION: &str = "cap.trusted-senders.set";
    user.require(&state, Role::Operator, ACTION).await?;
    let actor = format!("user:{}", user.principal.id);
    let stored = state.services.cases.set_trusted_senders(&list, &actor).await?;
    let detail = stored.senders.iter().map(|s| s.sender.as_str()).collect::<Vec<_>>().join(", ");
    state.services.audit.record(Entry { actor: &actor, action: ACTION, subject: "cap-trusted-senders", outcome: "ok", detail: &detail }).await;
    Ok(Json(stored))
}

/// Import a CAP 1.2 alert.
///
/// The body is the alert's XML. An `Alert` becomes a warning and a case for
/// each grid cell its area covers; an `Update` or `Cancel` acts on the chain
/// its `references` name, and only when it comes from that chain's `sender`.
/// Only `status` `Actual` acts: `Exercise`, `System`, `Test` and `Draft`
/// alerts are stored and answered with their status, with no warning and no
/// case. Invalid XML answers `400` with the line and what was expected.
/// Dispatchers, leaders and operators whose area (the org units of those
/// roles) covers every grid cell the alert reaches; the cases and the audit
/// log name the caller.
#[utoipa::path(
    post,
    path = "/api/cap/alerts",
    tag = "cases",
    request_body(content = String, content_type = "application/xml", description = "A CAP 1.2 alert"),
    responses(
        (status = 201, description = "Imported", body = ImportedAlert),
        (status = 200, description = "Imported before; nothing changed", body = ImportedAlert),
        (status = 400, description = "Not CAP 1.2: the line and what was expected", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, description = "Not an importing role, a grid cell reached outside the caller's area, or an Update or Cancel from another sender", body = ErrorBody),
        (status = 422, description = "Unknown references, category or too large an area", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn import_cap_alert(State(state): State<AppState>, user: AuthUser, body: Body) -> Result<Response, ApiError> {
    const ACTION: &str = "cap.import";
    let p = &user.principal;
    if !(p.is_staff() && IMPORTING.iter().any(|r| p.has_role(*r))) {
        let why = "importing CAP alerts requires the `dispatcher`, `leader` or `operator` role".to_owned();
        return Err(user.deny(&state, ACTION, "cap", why).await);
    }
    // Read only now: a caller who may not import never has their body read.
    let body = read_body(body, CAP_BODY_LIMIT).await?;
    let xml = std::str::from_utf8(&body).map_err(|_| ApiError::BadRequest("the alert is not UTF-8".into()))?;
    let actor = format!("user:{}", p.id);
    // The area is that of the roles that import, not of every role held.
    let mut importing = p.clone();
    importing.roles.retain(|(r, _)| IMPORTING.contains(r));
    let scope = state.services.identity.scope(&importing).await?;
    let importer = Importer { actor: actor.clone(), scope };
    let imported = match state.services.cases.import_alert(xml, &importer).await {
        Ok(i) => i,
        Err(AlertError::Format(m)) => return Err(ApiError::BadRequest(m)),
        Err(AlertError::Service(crate::error::ServiceError::Forbidden(why))) => {
            return Err(user.deny(&state, ACTION, "cap", why).await);
        }
        Err(AlertError::Service(e)) => return Err(e.into())};
    let status = if imported.created { axum::http::StatusCode::CREATED } else { axum::http::StatusCode::OK };
    if imported.created {
        let detail = format!("{} {}: {} cases opened, {} cancelled", imported.msg_type, imported.alert, imported.cases_opened.len(), imported.cases_cancelled.len());
        state.services.audit.record(Entry { actor: &actor, action: ACTION, subject: &imported.alert, outcome: "ok", detail: &detail }).await;
    }
    Ok((status, Json(imported)).into_response())
}

/// A warning as CAP 1.2.
///
/// A warning raised by a plugin (or imported), written as a CAP 1.2 alert. Staff only.
#[utoipa::path(
    get,
    path = "/api/warnings/{id}/cap",
    tag = "cases",
    params(("id" = String, Path, description = "The warning")),
    responses(
        (status = 200, description = "The alert", content_type = "application/xml", body = String),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such warning", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn export_warning(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Response, ApiError> {
    if !user.principal.is_staff() {
        return Err(user.deny(&state, "cap.export", &id, "warnings are open to staff accounts".into()).await);
    }
    let alert = state.services.cases.warning_as_cap(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no warning `{id}`")))?;
    Ok(([(header::CONTENT_TYPE, "application/cap+xml; charset=utf-8")], cap::to_xml(&alert)).into_response())
}
