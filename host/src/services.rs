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
use crate::messaging::Messaging;
use crate::metrics::Metrics;

/// Everything a request or a plugin call may reach (subject to its grants).
pub struct Services {
    pub db: Db,
    pub clock: SharedClock,
    pub bus: Arc<dyn Bus>,
    pub audit: Audit,
    pub identity: Identity,
    pub data: Data,
    pub cases: Cases,
    pub messaging: Messaging,
    pub metrics: Metrics,
}

impl Services {
    pub fn new(db: Db, clock: SharedClock, bus: Arc<dyn Bus>) -> Arc<Self> {
        Arc::new(Services {
            audit: Audit::new(db.clone(), clock.clone()),
            identity: Identity::new(db.clone()),
            data: Data::new(db.clone(), clock.clone()),
            cases: Cases::new(db.clone(), clock.clone(), bus.clone()),
            messaging: Messaging::new(db.clone(), clock.clone()),
            metrics: Metrics::new(),
            db,
            clock,
            bus,
        })
    }
}

/// A new unique id (UUID v7: time-ordered, so ids sort by creation).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
