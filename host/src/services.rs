//! The host's shared services, built once and handed to HTTP handlers and to
//! every plugin instance.

use std::sync::Arc;

use crate::audit::Audit;
use crate::bus::Bus;
use crate::cases::Cases;
use crate::clock::SharedClock;
use crate::data::Data;
use crate::db::Db;
use crate::identity::Identity;
use crate::media::{Media, MediaSettings};
use crate::messaging::Messaging;
use crate::metrics::Metrics;
use crate::space::Space;

/// Everything a request or a plugin call may reach (subject to its grants).
pub struct Services {
    pub db: Db,
    pub clock: SharedClock,
    pub bus: Arc<dyn Bus>,
    pub audit: Arc<Audit>,
    pub identity: Identity,
    pub data: Data,
    pub cases: Cases,
    pub media: Media,
    pub messaging: Messaging,
    pub space: Arc<Space>,
    pub metrics: Metrics,
}

impl Services {
    /// The services over `db`, with the blob store `media` describes.
    pub fn new(db: Db, clock: SharedClock, bus: Arc<dyn Bus>, media: MediaSettings) -> Arc<Self> {
        let space = Arc::new(Space::new(db.clone()));
        let audit = Arc::new(Audit::new(db.clone(), clock.clone()));
        Arc::new(Services {
            identity: Identity::new(db.clone()),
            data: Data::new(db.clone(), clock.clone(), space.clone()),
            cases: Cases::new(db.clone(), clock.clone(), bus.clone(), space.clone(), audit.clone()),
            media: Media::new(db.clone(), clock.clone(), media),
            messaging: Messaging::new(db.clone(), clock.clone(), bus.clone()),
            space,
            audit,
            metrics: Metrics::new(),
            db,
            clock,
            bus,
        })
    }
}

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
