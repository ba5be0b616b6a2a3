//! Resident registration and real-name verification over HTTP.

use crate::identity::residents::Registration;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use crate::identity::{Principal, Role};
use crate::api::auth::AuthUser;
use crate::api::error::ErrorBody;
use crate::api::openapi::{BadRequest, Forbidden, Unauthorized};
use crate::api::{ApiError, AppState, JsonBody};
use crate::audit::Entry;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register_resident)).routes(routes!(verify_resident))
}

/// Register a resident.
///
/// Open to anyone; `201` with the new account, not yet verified. The identity
/// card number, when given with the real name, is checked (GB 11643) and kept
/// only masked and hashed.
#[utoipa::path(
    post,
    path = "/api/residents",
    tag = "identity",
    request_body = Registration,
    responses(
        (status = 201, description = "Registered", body = Principal),
        (status = 400, response = BadRequest),
        (status = 422, description = "A field is invalid or the username is taken; the message names it", body = ErrorBody),
        (status = 429, description = "More than 10 registrations a minute from this address; see `Retry-After`", body = ErrorBody),
    ),
)]
async fn register_resident(
    State(state): State<AppState>,
    client: crate::api::limits::ClientAddress,
    JsonBody(body): JsonBody<Registration>,
) -> Result<(StatusCode, Json<Principal>), ApiError> {
    crate::api::limits::check(&state, client.0, crate::api::limits::Limit::Registration, None).await?;
    let identity = &state.services.identity;
    let id = identity.register_resident(&body, state.services.clock.now_ms()).await?;
    let created = identity.principal(&id).await?.ok_or_else(|| ApiError::NotFound(id.clone()))?;
    state.services.audit.record_host("identity.resident.register", &id, "ok", "").await;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The card a verifier saw.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// The resident identity card number.
    id_number: String,
    /// The name on the card, when the resident registered none.
    #[serde(default)]
    real_name: Option<String>}

/// Verify a resident's real name.
///
/// A dispatcher or operator who has seen the card confirms its number; a
/// number other than the one registered answers `409`.
#[utoipa::path(
    post,
    path = "/api/residents/{id}/verify",
    tag = "identity",
    params(("id" = String, Path, description = "The resident's user id")),
    request_body = Verify,
    responses(
        (status = 200, description = "Verified", body = Principal),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Not the number the resident registered", body = ErrorBody),
        (status = 422, description = "Not a valid number, or not a resident", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn verify_resident(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Verify>,
) -> Result<Json<Principal>, ApiError> {
    const ACTION: &str = "identity.resident.verify";
    let p = &user.principal;
    let actor = format!("user:{}", p.id);
    if !(p.is_staff() && (p.has_role(Role::Dispatcher) || p.has_role(Role::Operator))) {
        let why = "verifying a resident's real name requires the `dispatcher` or `operator` role".to_owned();
        return Err(user.deny(&state, ACTION, &id, why).await);
    }
    let identity = &state.services.identity;
    identity.verify_resident(&id, &body.id_number, body.real_name.as_deref(), &p.id).await?;
    state.services.audit.record(Entry { actor: &actor, action: ACTION, subject: &id, outcome: "ok", detail: "" }).await;
    Ok(Json(identity.principal(&id).await?.ok_or_else(|| ApiError::NotFound(id.clone()))?))
}
