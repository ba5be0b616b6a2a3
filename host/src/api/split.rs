//! A dispatcher's word on a joined report over HTTP: confirm it or split it off.

use crate::cases::split::{Decision, SplitOff};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use crate::cases::engine::{CaseView, Who};
use crate::api::auth::AuthUser;
use crate::api::error::ErrorBody;
use crate::api::openapi::{BadRequest, Forbidden, Unauthorized};
use crate::api::{ApiError, AppState, JsonBody};
use crate::messaging::Recipient;
use crate::error::ServiceError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(confirm_joined_report)).routes(routes!(split_report_off))
}

/// Confirm a joined report.
///
/// A dispatcher confirms that a report filed under the case beside its first
/// one (joined by the deduplication, or brought by a merge) is about the same
/// incident. Who and when are kept on the report (`confirmed` in the case's
/// `reports`) and recorded in the case's history as `confirm-join`; published
/// as `case.join-confirmed`. Dispatchers within the case's area.
#[utoipa::path(
    post,
    path = "/api/cases/{id}/reports/{report}/confirm",
    tag = "cases",
    params(
        ("id" = String, Path, description = "The case"),
        ("report" = String, Path, description = "A report filed under it"),
    ),
    request_body = Decision,
    responses(
        (status = 200, description = "Confirmed; the case as it now stands", body = CaseView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such case or report", body = ErrorBody),
        (status = 409, description = "The report is filed under another case, is the case's first or was confirmed \
            already, or the case is closed, rejected or voided; the message says which", body = ErrorBody),
        (status = 422, description = "The reason is too long", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn confirm_joined_report(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, report)): Path<(String, String)>,
    JsonBody(decision): JsonBody<Decision>,
) -> Result<Json<CaseView>, ApiError> {
    const ACTION: &str = "case.confirm-join";
    let scope = state.services.identity.scope(&user.principal).await?;
    let who = Who::Person { actor: &user.principal, scope: &scope };
    match state.services.cases.confirm_report(&id, &report, &decision, who).await {
        // Audited by the engine, in the transaction that stored it.
        Ok(view) => Ok(Json(super::cases::for_reader(view, &user.principal))),
        Err(ServiceError::Forbidden(why)) => Err(user.deny(&state, ACTION, &id, why).await),
        Err(e) => Err(e.into())}
}

/// Split a report out of a case.
///
/// A dispatcher finds that a report filed under the case is about another
/// incident: it becomes a case of its own, with a new ticket, at stage
/// `reported`; the case keeps its other reports. The case's first report (the
/// one it was opened from) stays. Recorded in the history of both cases as
/// `split`, published as `case.split`, and the reporter, when they have an
/// account, is sent the new ticket. Dispatchers within the case's area.
#[utoipa::path(
    post,
    path = "/api/cases/{id}/reports/{report}/split",
    tag = "cases",
    params(
        ("id" = String, Path, description = "The case"),
        ("report" = String, Path, description = "A report filed under it"),
    ),
    request_body = Decision,
    responses(
        (status = 201, description = "Split off into a new case", body = SplitOff),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such case or report", body = ErrorBody),
        (status = 409, description = "The report is filed under another case or is the case's only or first \
            report, or the case is closed, rejected or voided; the message says which", body = ErrorBody),
        (status = 422, description = "No reason, or too long a one", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn split_report_off(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, report)): Path<(String, String)>,
    JsonBody(decision): JsonBody<Decision>,
) -> Result<(StatusCode, Json<SplitOff>), ApiError> {
    const ACTION: &str = "case.split";
    let scope = state.services.identity.scope(&user.principal).await?;
    let who = Who::Person { actor: &user.principal, scope: &scope };
    match state.services.cases.split_report(&id, &report, &decision, who).await {
        Ok(split) => {
            tell_reporter(&state, &split).await;
            Ok((StatusCode::CREATED, Json(split)))
        }
        Err(ServiceError::Forbidden(why)) => Err(user.deny(&state, ACTION, &id, why).await),
        Err(e) => Err(e.into())}
}

/// Send the reporter of a split report, if they have an account, its new ticket.
async fn tell_reporter(state: &AppState, split: &SplitOff) {
    let services = &state.services;
    let Some(reporter) = split.reporter.clone() else { return };
    if !services.identity.user_exists(&reporter).await.unwrap_or(false) {
        return;
    }
    let before = split.from_ticket.as_deref().map(|t| format!("原编号 {t}，")).unwrap_or_default();
    let body = format!(
        "您反映的问题（{}）经核实与原案件不是同一事件，已单独立案（{before}新编号 {}），请凭新编号查询进度。",
        split.title, split.ticket
    );
    let to = Recipient::User { id: reporter };
    if let Err(e) = services.messaging.send(&services.identity, "host", &to, "案件已单独立案", &body).await {
        tracing::warn!(case = split.case, "could not tell the reporter the new ticket: {e}");
    }
}
