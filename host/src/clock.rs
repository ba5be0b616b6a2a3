//! Time is injected so that deadlines and tests never depend on the wall clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to; for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `ms`.
    pub fn new(ms: i64) -> Arc<Self> {
        Arc::new(ManualClock(AtomicI64::new(ms)))
    }

    /// Move the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A clock that stands where it is put while a past day is replayed, then
/// is let go and follows the system clock (`yiwang demo`).
#[derive(Debug)]
pub struct ReplayClock(AtomicI64);

impl ReplayClock {
    const RELEASED: i64 = i64::MIN;

    /// A clock standing at `ms`.
    pub fn new(ms: i64) -> Arc<Self> {
        Arc::new(ReplayClock(AtomicI64::new(ms)))
    }

    /// Put the clock at `ms`; a clock never goes back, so an earlier `ms`
    /// leaves it where it is.
    pub fn set(&self, ms: i64) {
        let _ = self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| (now != Self::RELEASED && ms > now).then_some(ms));
    }

    /// Follow the system clock from now on.
    pub fn release(&self) {
        self.0.store(Self::RELEASED, Ordering::SeqCst);
    }
}

impl Clock for ReplayClock {
    fn now_ms(&self) -> i64 {
        match self.0.load(Ordering::SeqCst) {
            Self::RELEASED => SystemClock.now_ms(),
            ms => ms,
        }
    }
}

/// The clock type every service holds.
pub type SharedClock = Arc<dyn Clock>;
