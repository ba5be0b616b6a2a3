//! The data each plugin instance's store holds, and the plumbing every host
//! capability shares: grant denials, audit records, storage faults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::{HasData, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use yiwang_registry::manifest::Grants;
use yiwang_wit::grants::Denial;

use super::bindings::yiwang::gov::types::Error;
use super::bindings::yiwang::gov::{config, logging, types};
use super::plugin::{PluginContext, Rated};
use super::wit::PluginHost;
use crate::audit::Entry;
use crate::error::ServiceError;

/// Denied host calls audited per call. A plugin that keeps knocking on closed
/// doors gets one record per knock up to this many, then the rest are counted
/// only, so that a loop of denied calls cannot flood the audit log.
pub const MAX_DENIALS_PER_CALL: u32 = 16;

/// Log lines a plugin may write per call; the rest are dropped and counted.
pub const MAX_LOG_LINES_PER_CALL: u32 = 64;

/// Caps linear memory and tables, and remembers that a cap was hit so the
/// failure can be reported as a memory failure rather than a bare trap.
pub struct Limiter {
    pub max_memory: usize,
    pub memory_hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.memory_hit = true;
            wasmtime::bail!("memory limit of {} MiB reached (wanted {} bytes)", self.max_memory >> 20, desired);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Counters for the call in progress; reset before each call.
#[derive(Default)]
pub struct CallCounters {
    pub denials: u32,
    pub log_lines: u32,
}

/// The `T` of every plugin `Store<T>`.
pub struct PluginState {
    /// Who the plugin is and what this call has done so far: what every host
    /// call needs to check a grant, refuse, audit or log.
    pub call: CallContext,
    /// The capabilities the plugin may reach, one narrow view each. Kept
    /// beside `call` (not inside it), so a host call can borrow its view and
    /// its call context at once.
    pub host: Arc<PluginHost>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: Limiter,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl PluginState {
    pub fn new(plugin: Arc<PluginContext>, wasi: WasiCtx) -> Self {
        let max_memory = (plugin.manifest.limits.memory_mib as usize) << 20;
        PluginState {
            host: plugin.host.clone(),
            call: CallContext { plugin, counters: CallCounters::default(), clock: CallClock::start() },
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter { max_memory, memory_hit: false },
        }
    }

    /// One host call's view of capability `V`: the call context and the view.
    pub fn view<V>(&mut self, pick: impl FnOnce(&PluginHost) -> &V) -> Call<'_, V> {
        Call { ctx: &mut self.call, view: pick(&self.host), entered: Instant::now() }
    }
}

/// How a call's time splits between the plugin's own execution and the host
/// calls it made (storage, the bus): the CPU deadline counts only the first.
#[derive(Debug, Clone, Copy)]
pub struct CallClock {
    pub started: Instant,
    /// Time spent inside host calls during this call.
    pub in_host: Duration,
}

impl CallClock {
    pub fn start() -> Self {
        CallClock { started: Instant::now(), in_host: Duration::ZERO }
    }

    /// The plugin's own time so far: the call's time less its host calls'.
    pub fn own(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.in_host)
    }
}

/// One host call: the plugin's call context and the one capability view the
/// called interface may use. Every WIT interface of a capability is
/// implemented on `Call<'_, ItsView>`, so a host function can reach nothing
/// but its own capability.
pub struct Call<'a, V> {
    pub ctx: &'a mut CallContext,
    pub view: &'a V,
    entered: Instant,
}

impl<V> Drop for Call<'_, V> {
    /// The host call is over: its time is the host's, not the plugin's.
    fn drop(&mut self) {
        self.ctx.clock.in_host += self.entered.elapsed();
    }
}

/// [`HasData`] for an interface implemented on [`Call<'_, V>`].
pub struct Calls<V>(std::marker::PhantomData<V>);

impl<V: 'static> HasData for Calls<V> {
    type Data<'a> = Call<'a, V>;
}

/// What a plugin's host calls share: the plugin and this call's counters.
pub struct CallContext {
    pub plugin: Arc<PluginContext>,
    pub counters: CallCounters,
    pub clock: CallClock,
}

impl CallContext {
    pub fn grants(&self) -> &Grants {
        &self.plugin.manifest.grants
    }

    /// The one way a grant is checked: `decision` is the contract's grant
    /// rule's answer (`Grants::check_*`, shared with the SDK's mock host); a
    /// refusal is counted, audited and returned as the plugin's `denied` error.
    pub async fn authorize(&mut self, decision: Result<(), Denial>) -> Result<(), Error> {
        match decision {
            Ok(()) => Ok(()),
            Err(d) => Err(self.deny(&d.action, &d.subject, &d.reason).await),
        }
    }

    /// Refuse a call outside the grants: count it, audit it, and return the
    /// `denied` error for the plugin. Past [`MAX_DENIALS_PER_CALL`] the audit
    /// record says so once and later denials are only counted.
    pub async fn deny(&mut self, action: &str, subject: &str, why: &str) -> Error {
        self.counters.denials += 1;
        self.plugin.stats.denials.inc();
        let n = self.counters.denials;
        let message = format!("{action} `{subject}`: {why}");
        if n <= MAX_DENIALS_PER_CALL {
            tracing::warn!(plugin = %self.plugin.manifest.name, "denied: {message}");
            let detail = if n == MAX_DENIALS_PER_CALL { format!("{why}; further denials in this call not audited") } else { why.to_owned() };
            let plugin = self.plugin.clone();
            plugin
                .host
                .audit
                .record(Entry { actor: &plugin.principal, action, subject, outcome: "denied", detail: &detail })
                .await;
        }
        Error::Denied(message)
    }

    /// The one way a rate limit is applied: take a token of `kind` for
    /// `action` on `subject`, or refuse with the plugin's `limit` error. A
    /// refusal is counted (the plugin's `rate_limited` counter of `kind`) and
    /// audited as `limited`, bounded like an HTTP denial
    /// ([`Audit::record_refusal`](crate::audit::Audit::record_refusal)): the
    /// same refusal once a minute, the repeats counted on the next record, so a
    /// loop against its limit cannot flood the audit log.
    pub async fn rate_limit(&mut self, kind: Rated, action: &str, subject: &str) -> Result<(), Error> {
        if self.plugin.take_token(kind) {
            return Ok(());
        }
        self.plugin.stats.rate_limited(kind).inc();
        let why = format!("rate limit of {} reached", kind.describe(&self.plugin.manifest.limits));
        let plugin = self.plugin.clone();
        plugin.host.audit.record_refusal(&plugin.principal, action, kind.key(), "limited", &why).await;
        Err(Error::Limit(format!("{action} `{subject}`: {why}; try again later")))
    }

    /// Record a successful privileged action.
    pub async fn audit_ok(&mut self, action: &str, subject: &str) {
        let plugin = self.plugin.clone();
        plugin.host.audit.record(Entry { actor: &plugin.principal, action, subject, outcome: "ok", detail: "" }).await;
    }

    /// Map a service error for the plugin; storage faults are logged here.
    pub fn service_error(&self, action: &str, e: ServiceError) -> Error {
        match e {
            ServiceError::Invalid(m) => Error::Invalid(m),
            ServiceError::NotFound(m) => Error::NotFound(m),
            ServiceError::Conflict(m) => Error::Conflict(m),
            ServiceError::Forbidden(m) => Error::Denied(m),
            ServiceError::Storage(e) => self.unavailable(action, e),
        }
    }

    /// A storage or backend fault: logged in full here, reported to the plugin
    /// without internals.
    pub fn unavailable(&self, action: &str, e: anyhow::Error) -> Error {
        tracing::error!(plugin = %self.plugin.manifest.name, action, "host fault: {e:#}");
        Error::Unavailable(format!("{action} failed in the host; try again later"))
    }
}

impl types::Host for PluginState {}

impl logging::Host for PluginState {
    async fn log(&mut self, level: logging::Level, message: String) {
        self.call.counters.log_lines += 1;
        if self.call.counters.log_lines > MAX_LOG_LINES_PER_CALL {
            return;
        }
        let plugin = self.call.plugin.manifest.name.as_str();
        let message: String = message.chars().take(4096).collect();
        match level {
            logging::Level::Trace => tracing::trace!(plugin, "{message}"),
            logging::Level::Debug => tracing::debug!(plugin, "{message}"),
            logging::Level::Info => tracing::info!(plugin, "{message}"),
            logging::Level::Warn => tracing::warn!(plugin, "{message}"),
            logging::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl config::Host for PluginState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.call.plugin.manifest.config.get(&key).cloned()
    }

    async fn all(&mut self) -> Vec<(String, String)> {
        self.call.plugin.manifest.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
