//! The error of every host call and plugin export.

use std::fmt;

/// Why a call failed: the WIT `error` variant of `yiwang:gov/types`.
///
/// A plugin returns it from [`Plugin`](crate::Plugin) methods to report a failure that
/// is not a crash; the host logs it and counts it, but keeps the instance. Host calls
/// return it when they refuse or fail, so `?` passes the host's answer straight on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The plugin's grants do not cover this call (topic, data set, recipient, ...).
    Denied(String),
    /// The named thing does not exist.
    NotFound(String),
    /// An argument is malformed: a bad topic, JSON that does not parse, ...
    Invalid(String),
    /// A quota or rate limit was hit; the call may succeed later.
    Limit(String),
    /// The call conflicts with the current state of the thing it names.
    Conflict(String),
    /// The host could not complete the call (storage down, ...); retry later.
    Unavailable(String),
}

impl Error {
    /// The WIT name of the case: `denied`, `not-found`, `invalid`, `limit`, `conflict`
    /// or `unavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Denied(_) => "denied",
            Error::NotFound(_) => "not-found",
            Error::Invalid(_) => "invalid",
            Error::Limit(_) => "limit",
            Error::Conflict(_) => "conflict",
            Error::Unavailable(_) => "unavailable",
        }
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::Denied(m)
            | Error::NotFound(m)
            | Error::Invalid(m)
            | Error::Limit(m)
            | Error::Conflict(m)
            | Error::Unavailable(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for Error {}

/// JSON that does not parse or does not fit the expected shape is an invalid argument.
impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Invalid(format!("bad JSON: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn display_names_the_kind() {
        let err = Error::Denied("topic `secret.topic` is not in the publish grant".into());
        assert_eq!(
            err.to_string(),
            "denied: topic `secret.topic` is not in the publish grant"
        );
        assert_eq!(Error::NotFound("x".into()).to_string(), "not-found: x");
    }
}
