//! The ground floor: the one error type every capability returns, and ids.
//! It imports nothing of the host, so every module may import it.

/// Why a service call failed, before it is mapped for HTTP (`ApiError`) or for a
/// plugin (the WIT `error`): the one error type every capability returns.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input is malformed; the text names what.
    #[error("{0}")]
    Invalid(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The call conflicts with what is stored (the key exists, ...).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this; the text says why. Callers audit it.
    #[error("{0}")]
    Forbidden(String),
    /// Storage or another backend failed.
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::Storage(e.into())
    }
}

/// Whether `id` is a usable identifier: 1-64 of `a-z0-9-_.`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// A new unique id (UUID v7: time-ordered, so ids sort by creation).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
