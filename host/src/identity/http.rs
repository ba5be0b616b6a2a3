//! Identity routes: log-in, log-out, who am I, and account creation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{NewUser, Principal, Role};
use crate::api::auth::AuthUser;
use crate::api::{ApiError, AppState, JsonBody};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
        .route("/api/users", post(create_user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

async fn login(State(state): State<AppState>, JsonBody(body): JsonBody<Login>) -> Result<Json<serde_json::Value>, ApiError> {
    let now = state.services.clock.now_ms();
    let (issued, principal) = state.services.identity.login(&body.username, &body.password, now).await?;
    Ok(Json(serde_json::json!({ "token": issued.token, "expires_ms": issued.expires_ms, "user": principal })))
}

async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode, ApiError> {
    let now = state.services.clock.now_ms();
    state.services.identity.revoke(&user.token, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(user: AuthUser) -> Json<Principal> {
    Json(user.principal)
}

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
