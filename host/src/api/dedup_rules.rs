//! The deduplication rules over HTTP.

use crate::cases::dedup_rules::RuleTable;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use crate::api::auth::AuthUser;
use crate::api::error::ErrorBody;
use crate::api::openapi::{BadRequest, Forbidden, Unauthorized};
use crate::api::{ApiError, AppState, JsonBody};
use crate::audit::Entry;
use crate::identity::Role;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_dedup_rules, put_dedup_rules))
}

/// The deduplication rules.
///
/// Per category family (a code prefix): how far apart (`radius_m`) and how
/// long apart (`window_ms`) two reports may be to be the same incident, and
/// the least score (`threshold`, 0–1) of text similarity, nearness, recency
/// and category that makes a new report join an open case; `fallback` for
/// codes no family matches. Operators and dispatchers.
#[utoipa::path(
    get,
    path = "/api/dedup/rules",
    tag = "cases",
    responses(
        (status = 200, description = "The rules", body = RuleTable),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
async fn get_dedup_rules(State(state): State<AppState>, user: AuthUser) -> Result<Json<RuleTable>, ApiError> {
    let p = &user.principal;
    if !(p.is_staff() && (p.has_role(Role::Operator) || p.has_role(Role::Dispatcher))) {
        let why = "the deduplication rules are open to operators and dispatchers".to_owned();
        return Err(user.deny(&state, "case.dedup-rules.read", "dedup-rules", why).await);
    }
    Ok(Json(state.services.cases.dedup_rule_table().await?))
}

/// Replace the deduplication rules.
///
/// The whole table at once, in one transaction; the running deduplication
/// applies them to the open cases at once (other nodes when they next start).
/// A rule out of range answers `422` naming the field, e.g.
/// `families.0101.threshold`. Operators only.
#[utoipa::path(
    put,
    path = "/api/dedup/rules",
    tag = "cases",
    request_body = RuleTable,
    responses(
        (status = 200, description = "Stored and applied; the rules as they now stand", body = RuleTable),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, description = "A rule is out of range; the message names the field", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn put_dedup_rules(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(table): JsonBody<RuleTable>,
) -> Result<Json<RuleTable>, ApiError> {
    const ACTION: &str = "case.dedup-rules.set";
    user.require(&state, Role::Operator, ACTION).await?;
    let stored = state.services.cases.set_dedup_rules(&table).await?;
    let actor = format!("user:{}", user.principal.id);
    let detail = serde_json::to_string(&stored).expect("rules serialise");
    state.services.audit.record(Entry { actor: &actor, action: ACTION, subject: "dedup-rules", outcome: "ok", detail: &detail }).await;
    Ok(Json(stored))
}
