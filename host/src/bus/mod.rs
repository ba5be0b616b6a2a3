//! The event bus: hierarchical topics with wildcards, and two kinds of
//! subscriber. A live subscriber (a server-sent-events stream) has a bounded
//! queue and is cut off when it does not keep up. A durable subscriber (a
//! plugin) reads through a log: every event it wants is kept until it has
//! finished with it, across quarantines, upgrades, a disabled spell and
//! restarts, and handed to it in order, each once. Publishers never wait on
//! a subscriber.
//!
//! Everything outside this module sees only [`Bus`]; the in-process bus in
//! [`memory`] with its log in [`journal`] is the embedded default, and a NATS
//! JetStream bus (streams and durable consumers) can replace it without any
//! plugin noticing, since topics follow NATS subject rules.

pub mod journal;
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

/// An event handed to a durable subscriber, with its place in the log.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub seq: u64,
    pub event: Arc<Event>,
}

/// A durable subscriber's reader.
pub trait DurableQueue: Send {
    /// The next event after the last one handed out, in log order; `None`
    /// once the subscription has ended (its handle dropped, or forgotten).
    fn next(&mut self) -> BoxFuture<'_, Option<Delivery>>;

    /// The subscriber has finished with everything up to `seq`: it is not
    /// handed out again, even after a restart (the position is saved within
    /// a fraction of a second, and at [`Bus::flush`]).
    fn ack(&mut self, seq: u64);
}

/// A durable subscription: its reader and the handle that ends it (the
/// subscriber's position and the events it wants stay in the log until
/// [`Bus::forget_durable`]).
pub struct DurableSubscription {
    pub queue: Box<dyn DurableQueue>,
    pub handle: SubscriptionHandle,
}

/// What a live subscriber receives: events in publish order, bounded.
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
    /// A durable subscriber (a plugin), or a live one.
    pub durable: bool,
    /// Events in its in-memory queue.
    pub queued: usize,
    pub capacity: usize,
    /// Events published for it (durable: appended to the log for it).
    pub delivered: u64,
    /// Live subscribers: times one of this name was cut off for not keeping up.
    pub dropped: u64,
    /// Durable subscribers: events kept for it and not yet finished.
    pub waiting: u64,
    /// Durable subscribers: when the oldest of those was appended (ms since the epoch).
    pub oldest_waiting_ms: Option<i64>,
    /// Durable subscribers: events it has finished with since the start.
    pub handled: u64,
}

/// The event bus.
pub trait Bus: Send + Sync {
    /// Deliver `event` to every matching subscription. Returns once the event
    /// is in the log for every durable subscriber that wants it; never waits
    /// for a subscriber to make room.
    fn publish(&self, event: Event) -> BoxFuture<'_, Result<(), BusError>>;

    /// Subscribe `name` live to `patterns` with a queue of `capacity` events.
    /// A live subscriber whose queue is full when an event comes is cut off:
    /// its receiver ends, and it may subscribe again.
    fn subscribe(&self, name: &str, patterns: Vec<TopicPattern>, capacity: usize) -> Subscription;

    /// Subscribe `name` durably: from where `name` stopped if it is known,
    /// else from now. One reader at a time: a new subscription ends the
    /// previous reader of `name`.
    fn subscribe_durable(
        &self,
        name: &str,
        patterns: Vec<TopicPattern>,
        capacity: usize,
    ) -> BoxFuture<'_, Result<DurableSubscription, BusError>>;

    /// Forget a durable subscriber: its position, and the events kept for it alone.
    fn forget_durable(&self, name: &str) -> BoxFuture<'_, Result<(), BusError>>;

    /// Save every durable subscriber's position now (before a shutdown).
    fn flush(&self) -> BoxFuture<'_, ()>;

    /// Per-subscriber counters.
    fn stats(&self) -> Vec<SubscriberStats>;
}
