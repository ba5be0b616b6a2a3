//! The event bus: hierarchical topics with wildcards, a bounded queue per
//! subscription, and backpressure on publishers.
//!
//! Everything outside this module sees only [`Bus`]; the in-process bus in
//! [`memory`] is the embedded default, and a NATS JetStream bus can replace it
//! without any plugin noticing, since topics follow NATS subject rules.

pub mod memory;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;
use yiwang_registry::TopicPattern;

pub use memory::MemoryBus;

/// A WGS 84 point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    /// Check the coordinates are on Earth.
    pub fn validate(self) -> Result<Self, String> {
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            return Err(format!("latitude {} is outside -90..=90", self.lat));
        }
        if !(self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon)) {
            return Err(format!("longitude {} is outside -180..=180", self.lon));
        }
        Ok(self)
    }
}

/// An event as carried on the bus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: String,
    pub topic: String,
    pub source: String,
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    pub location: Option<GeoPoint>,
    /// A JSON document.
    pub payload: String,
}

/// Why a publish did not reach every subscriber.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// The bus is shutting down.
    #[error("the bus is closed")]
    Closed,
    /// A backend failure (e.g. the broker is unreachable).
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

/// A boxed future, so that `Bus` stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a subscriber receives: events in publish order, bounded.
pub struct Subscription {
    /// The events; `None` once the bus is closed.
    pub events: mpsc::Receiver<Arc<Event>>,
    /// Dropping this handle ends the subscription.
    pub handle: SubscriptionHandle,
}

/// Ends its subscription when dropped; can change the topics it receives.
pub struct SubscriptionHandle {
    cancel: Option<Box<dyn FnOnce() + Send + Sync>>,
    retarget: Option<Box<dyn Fn(Vec<TopicPattern>) -> bool + Send + Sync>>,
}

impl SubscriptionHandle {
    pub(crate) fn new(cancel: impl FnOnce() + Send + Sync + 'static) -> Self {
        SubscriptionHandle { cancel: Some(Box::new(cancel)), retarget: None }
    }

    /// How [`SubscriptionHandle::set_patterns`] reaches the bus.
    pub(crate) fn with_retarget(mut self, retarget: impl Fn(Vec<TopicPattern>) -> bool + Send + Sync + 'static) -> Self {
        self.retarget = Some(Box::new(retarget));
        self
    }

    /// Receive `patterns` from now on, on the same queue: what is queued
    /// stays queued, in order (a plugin's new version may subscribe to other
    /// topics without losing or repeating an event). `false` if the bus
    /// cannot change a subscription in place or it has ended.
    pub fn set_patterns(&self, patterns: Vec<TopicPattern>) -> bool {
        self.retarget.as_ref().is_some_and(|r| r(patterns))
    }
}

impl Drop for SubscriptionHandle {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel();
        }
    }
}

/// Counters a bus keeps per subscriber.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriberStats {
    pub name: String,
    pub patterns: Vec<String>,
    pub queued: usize,
    pub capacity: usize,
    pub delivered: u64,
    /// Events dropped because the subscriber's queue stayed full past the wait limit.
    pub dropped: u64,
}

/// The event bus.
pub trait Bus: Send + Sync {
    /// Deliver `event` to every matching subscription. Waits while a matching
    /// subscriber's queue is full (backpressure), up to the bus's wait limit.
    fn publish(&self, event: Event) -> BoxFuture<'_, Result<(), BusError>>;

    /// Subscribe `name` to `patterns` with a queue of `capacity` events.
    fn subscribe(&self, name: &str, patterns: Vec<TopicPattern>, capacity: usize) -> Subscription;

    /// Per-subscriber counters.
    fn stats(&self) -> Vec<SubscriberStats>;
}
