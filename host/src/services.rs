//! The host's shared services, built once and handed to HTTP handlers and to
//! every plugin instance.

use std::sync::Arc;

use crate::audit::Audit;
use crate::bus::Bus;
use crate::cases::Cases;
use crate::clock::SharedClock;
use crate::data::Data;
use crate::db::Db;
use crate::evaluation::Evaluator;
use crate::identity::Identity;
use crate::media::{Media, MediaSettings};
use crate::messaging::Messaging;
use crate::metrics::Metrics;
use crate::space::Space;

/// Every capability, as HTTP handlers, the schedule and the runtime reach them.
/// Plugins never hold this bundle: the runtime hands each plugin one narrow view
/// per capability (`runtime::wit::PluginHost`).
pub struct Services {
    pub db: Db,
    pub clock: SharedClock,
    pub bus: Arc<dyn Bus>,
    pub audit: Arc<Audit>,
    pub identity: Arc<Identity>,
    pub data: Arc<Data>,
    pub cases: Arc<Cases>,
    pub evaluation: Arc<Evaluator>,
    pub media: Arc<Media>,
    pub messaging: Arc<Messaging>,
    pub space: Arc<Space>,
    pub metrics: Metrics,
}

impl Services {
    /// The services over `db`, with the blob store `media` describes.
    pub fn new(db: Db, clock: SharedClock, bus: Arc<dyn Bus>, media: MediaSettings) -> Arc<Self> {
        let space = Arc::new(Space::new(db.clone()));
        let audit = Arc::new(Audit::new(db.clone(), clock.clone()));
        let cases = Arc::new(Cases::new(db.clone(), clock.clone(), bus.clone(), space.clone(), audit.clone()));
        Arc::new(Services {
            identity: Arc::new(Identity::new(db.clone())),
            data: Arc::new(Data::new(db.clone(), clock.clone(), space.clone())),
            evaluation: Arc::new(Evaluator::new(db.clone(), cases.clone())),
            cases,
            media: Arc::new(Media::new(db.clone(), clock.clone(), media)),
            messaging: Arc::new(Messaging::new(db.clone(), clock.clone(), bus.clone())),
            space,
            audit,
            metrics: Metrics::new(),
            db,
            clock,
            bus,
        })
    }
}
