//! Identity routes: log-in, log-out, who am I, and account creation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::identity::{NewUser, Principal, Role};
use crate::api::auth::AuthUser;
use crate::api::error::ErrorBody;
use crate::api::openapi::{BadRequest, Forbidden, Unauthorized};
use crate::api::{ApiError, AppState, JsonBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(create_user))
}

/// A user name and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

/// A fresh bearer token and whom it belongs to.
#[derive(Serialize, ToSchema)]
struct LoggedIn {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// When the token expires, in milliseconds since the Unix epoch.
    expires_ms: i64,
    user: Principal,
}

/// Log in.
///
/// Exchanges a user name and password for a bearer token valid 12 hours.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "identity",
    request_body = Login,
    responses(
        (status = 200, description = "Logged in", body = LoggedIn),
        (status = 400, response = BadRequest),
        (status = 401, description = "Unknown user name or wrong password", body = ErrorBody),
        (status = 429, description = "Too many attempts: from this address (30 a minute), or wrong passwords for this user name (5 in a row lock it for 30 s, doubling up to 15 min); see `Retry-After`", body = ErrorBody),
    ),
)]
async fn login(
    State(state): State<AppState>,
    client: crate::api::limits::ClientAddress,
    JsonBody(body): JsonBody<Login>,
) -> Result<Json<LoggedIn>, ApiError> {
    crate::api::limits::check(&state, client.0, crate::api::limits::Limit::Login, None).await?;
    let now = state.services.clock.now_ms();
    match state.services.identity.login(&body.username, &body.password, now).await {
        Ok((issued, principal)) => Ok(Json(LoggedIn { token: issued.token, expires_ms: issued.expires_ms, user: principal })),
        Err(e) => {
            let e = ApiError::from(e);
            if matches!(e, ApiError::Unauthorized(_) | ApiError::TooManyRequests { .. }) {
                // Recorded once a minute per (client, user name, reason), counted in between.
                let who = client.0.map_or_else(|| "anonymous".to_owned(), |a| format!("client:{a}"));
                state.services.audit.record_denial(&who, "auth.login", &body.username, &e.to_string()).await;
            }
            Err(e)
        }
    }
}

/// Log out.
///
/// Revokes the token the request carries.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "identity",
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 401, response = Unauthorized),
    ),
    security(("bearer" = [])),
)]
async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode, ApiError> {
    let now = state.services.clock.now_ms();
    state.services.identity.revoke(&user.token, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who am I.
///
/// The caller, with their roles per org unit.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "identity",
    responses(
        (status = 200, description = "The caller", body = Principal),
        (status = 401, response = Unauthorized),
    ),
    security(("bearer" = [])),
)]
async fn me(user: AuthUser) -> Json<Principal> {
    Json(user.principal)
}

/// Create an account.
///
/// Operators only.
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "identity",
    request_body = NewUser,
    responses(
        (status = 201, description = "The account as created", body = Principal),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "An unknown department or org unit", body = ErrorBody),
        (status = 422, description = "An invalid field, or the id or user name is taken", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn create_user(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<Principal>), ApiError> {
    user.require(&state, Role::Operator, "users.create").await?;
    let now = state.services.clock.now_ms();
    state.services.identity.create_user(&body, now).await?;
    let created = state.services.identity.principal(&body.id).await?.ok_or_else(|| ApiError::NotFound(body.id.clone()))?;
    Ok((StatusCode::CREATED, Json(created)))
}
