//! A plugin's place in the runtime: the version serving now, the one before
//! it (for a rollback), an upgrade held for an operator's approval, the
//! probation of a fresh version, and the one queue of events that every
//! version of the plugin reads in turn.
//!
//! The queue belongs to the slot, not to a version: a swap changes which
//! version the worker hands the *next* event to. The event being handled
//! finishes on the version that took it; every event still queued goes to the
//! new one. So a swap loses no event and repeats none. The queue is the bus's
//! durable subscription named after the plugin: what the plugin has not
//! finished with stays in the event log while it is quarantined, disabled or
//! stopped, and comes to it in order when it runs again.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::plugin::{CallOutcome, LoadedPlugin};
use crate::bus::SubscriptionHandle;

/// When a fresh version is rolled back by itself.
#[derive(Debug, Clone, Copy)]
pub struct UpgradePolicy {
    /// How long a new version is on probation after it starts serving.
    pub probation_ms: i64,
    /// Calls a version on probation must have had before its error rate counts.
    pub min_calls: u64,
    /// The share of failed calls (traps, CPU or memory limits, timeouts, and
    /// error values) above which a version on probation is rolled back.
    pub max_error_rate: f64,
}

impl Default for UpgradePolicy {
    fn default() -> Self {
        UpgradePolicy { probation_ms: 5 * 60_000, min_calls: 20, max_error_rate: 0.5 }
    }
}

/// The calls of a version on probation.
#[derive(Debug, Clone, Copy)]
struct Probation {
    until: i64,
    calls: u64,
    errors: u64,
}

/// One plugin in the runtime, across its versions.
pub struct Slot {
    current: RwLock<Arc<LoadedPlugin>>,
    previous: Mutex<Option<Arc<LoadedPlugin>>>,
    held: Mutex<Option<Held>>,
    probation: Mutex<Option<Probation>>,
    /// The worker feeding the plugin its events, while it is enabled.
    pub(crate) worker: Mutex<Option<Worker>>,
    /// Serialises upgrades, approvals, rollbacks and enabling of this plugin.
    pub(crate) changing: tokio::sync::Mutex<()>,
}

/// A plugin's worker: its durable subscription and the task reading it.
pub(crate) struct Worker {
    pub subscription: SubscriptionHandle,
    pub task: tokio::task::AbortHandle,
}

/// An upgrade whose grants are wider than the running version's, prepared
/// (compiled, `init` run) and waiting for an operator.
#[derive(Clone)]
pub struct Held {
    pub plugin: Arc<LoadedPlugin>,
    /// What the new version would be granted that the running one is not.
    pub widened: Vec<String>,
    pub since: i64,
}

impl Slot {
    pub(crate) fn new(plugin: Arc<LoadedPlugin>) -> Self {
        Slot {
            current: RwLock::new(plugin),
            previous: Mutex::new(None),
            held: Mutex::new(None),
            probation: Mutex::new(None),
            worker: Mutex::new(None),
            changing: tokio::sync::Mutex::new(()),
        }
    }

    /// The version serving now.
    pub fn current(&self) -> Arc<LoadedPlugin> {
        self.current.read().clone()
    }

    /// The version a rollback would return to.
    pub fn previous(&self) -> Option<Arc<LoadedPlugin>> {
        self.previous.lock().clone()
    }

    /// The upgrade waiting for approval, if any.
    pub fn held(&self) -> Option<Held> {
        self.held.lock().clone()
    }

    pub(crate) fn hold(&self, held: Option<Held>) {
        *self.held.lock() = held;
    }

    pub(crate) fn take_held(&self) -> Option<Held> {
        self.held.lock().take()
    }

    /// Whether events reach the plugin.
    pub fn enabled(&self) -> bool {
        self.worker.lock().is_some()
    }

    /// Stop the worker: the event it is handling, if any, is handed out again
    /// when the plugin is next fed (its position in the log did not move).
    pub(crate) fn stop_worker(&self) {
        if let Some(worker) = self.worker.lock().take() {
            worker.task.abort();
        }
    }

    /// The end of the current version's probation, while it lasts.
    pub fn probation_until(&self) -> Option<i64> {
        self.probation.lock().map(|p| p.until)
    }

    /// Make `next` the serving version; the one it replaces becomes the
    /// rollback target. With `probation`, `next` is watched until then.
    /// Returns the replaced version.
    pub(crate) fn swap(&self, next: Arc<LoadedPlugin>, probation_until: Option<i64>, keep_previous: bool) -> Arc<LoadedPlugin> {
        let old = std::mem::replace(&mut *self.current.write(), next.clone());
        if let Some(worker) = self.worker.lock().as_ref()
            && old.ctx.manifest.subscribe != next.ctx.manifest.subscribe
        {
            worker.subscription.set_patterns(next.ctx.manifest.subscribe.clone());
        }
        *self.previous.lock() = keep_previous.then(|| old.clone());
        *self.probation.lock() = probation_until.map(|until| Probation { until, calls: 0, errors: 0 });
        old.drain_pool();
        old
    }

    /// Count one call of `plugin`; `Some(reason)` when it is the version on
    /// probation and it has just shown itself unfit to keep serving.
    pub(crate) fn observe(&self, plugin: &Arc<LoadedPlugin>, outcome: &CallOutcome, now: i64, policy: &UpgradePolicy) -> Option<String> {
        if !Arc::ptr_eq(plugin, &self.current.read()) {
            return None;
        }
        let mut probation = self.probation.lock();
        let p = probation.as_mut()?;
        if now >= p.until {
            *probation = None;
            return None;
        }
        p.calls += 1;
        let failed = matches!(outcome, CallOutcome::Failed(..) | CallOutcome::GuestError(_));
        if failed {
            p.errors += 1;
        }
        if matches!(outcome, CallOutcome::Failed(..)) && plugin.health_view().state == "quarantined" {
            return Some(format!("quarantined on probation after {} of {} calls failed", p.errors, p.calls));
        }
        let rate = p.errors as f64 / p.calls as f64;
        (p.calls >= policy.min_calls && rate > policy.max_error_rate).then(|| {
            format!(
                "{} of its first {} calls failed ({:.0} %, more than the {:.0} % allowed on probation)",
                p.errors,
                p.calls,
                rate * 100.0,
                policy.max_error_rate * 100.0
            )
        })
    }
}
