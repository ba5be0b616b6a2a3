//! Authentication and authorisation as extractors: a handler that takes
//! [`AuthUser`] runs only for a live bearer token; `require` checks a role and
//! audits a refusal.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::identity::auth::AuthError;
use crate::identity::{Principal, Role};

/// The authenticated caller.
pub struct AuthUser {
    pub principal: Principal,
    /// The bearer token, for log-out.
    pub token: String,
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadCredentials | AuthError::BadToken => ApiError::Unauthorized(e.to_string()),
            AuthError::Locked { until, now } => ApiError::TooManyRequests {
                message: e.to_string(),
                retry_after_secs: ((until - now).max(0) as u64).div_ceil(1000),
            },
            AuthError::Service(e) => e.into(),
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::Unauthorized("an `Authorization: Bearer <token>` header is required".into()))?
            .trim()
            .to_owned();
        let now = state.services.clock.now_ms();
        let principal = state.services.identity.authenticate(&token, now).await?;
        Ok(AuthUser { principal, token })
    }
}

impl AuthUser {
    /// Allow the call only if the caller holds `role`; a refusal is audited.
    pub async fn require(&self, state: &AppState, role: Role, action: &str) -> Result<(), ApiError> {
        if self.principal.has_role(role) {
            return Ok(());
        }
        let actor = format!("user:{}", self.principal.id);
        let detail = format!("requires role `{}`", role.name());
        state.services.audit.record_denial(&actor, action, action, &detail).await;
        Err(ApiError::Forbidden(format!("{action} requires the `{}` role", role.name())))
    }

    /// Allow the call only from a staff account; a refusal is audited.
    pub async fn require_staff(&self, state: &AppState, action: &str, subject: &str) -> Result<(), ApiError> {
        if self.principal.is_staff() {
            return Ok(());
        }
        Err(self.deny(state, action, subject, format!("{action} is open to staff accounts only")).await)
    }

    /// Refuse `action` on `subject` with 403, leaving an audit record; `why`
    /// is both the record's detail and the answer's message.
    pub async fn deny(&self, state: &AppState, action: &str, subject: &str, why: String) -> ApiError {
        let actor = format!("user:{}", self.principal.id);
        state.services.audit.record_denial(&actor, action, subject, &why).await;
        ApiError::Forbidden(why)
    }
}
