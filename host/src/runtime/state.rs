//! The data each plugin instance's store holds, and the plumbing every host
//! capability shares: grant denials, audit records, storage faults.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use yiwang_registry::manifest::Grants;

use super::bindings::yiwang::gov::types::Error;
use super::bindings::yiwang::gov::{config, logging, types};
use super::plugin::PluginContext;
use crate::audit::Entry;
use crate::services::{ServiceError, Services};

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
    pub plugin: Arc<PluginContext>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: Limiter,
    pub call: CallCounters,
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
            plugin,
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter { max_memory, memory_hit: false },
            call: CallCounters::default(),
        }
    }

    /// The host services. An `Arc`, so that no borrow of the store data is held
    /// across an await (the WASI context in it is not `Sync`).
    pub fn services(&self) -> Arc<Services> {
        self.plugin.services.clone()
    }

    pub fn grants(&self) -> &Grants {
        &self.plugin.manifest.grants
    }

    /// Refuse a call outside the grants: count it, audit it, and return the
    /// `denied` error for the plugin. Past [`MAX_DENIALS_PER_CALL`] the audit
    /// record says so once and later denials are only counted.
    pub async fn deny(&mut self, action: &str, subject: &str, why: &str) -> Error {
        self.call.denials += 1;
        self.plugin.stats.denials.inc();
        let n = self.call.denials;
        let message = format!("{action} `{subject}`: {why}");
        if n <= MAX_DENIALS_PER_CALL {
            tracing::warn!(plugin = %self.plugin.manifest.name, "denied: {message}");
            let detail = if n == MAX_DENIALS_PER_CALL { format!("{why}; further denials in this call not audited") } else { why.to_owned() };
            let plugin = self.plugin.clone();
            plugin
                .services
                .audit
                .record(Entry { actor: &plugin.principal, action, subject, outcome: "denied", detail: &detail })
                .await;
        }
        Error::Denied(message)
    }

    /// Record a successful privileged action.
    pub async fn audit_ok(&mut self, action: &str, subject: &str) {
        let plugin = self.plugin.clone();
        plugin.services.audit.record(Entry { actor: &plugin.principal, action, subject, outcome: "ok", detail: "" }).await;
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
        self.call.log_lines += 1;
        if self.call.log_lines > MAX_LOG_LINES_PER_CALL {
            return;
        }
        let plugin = self.plugin.manifest.name.as_str();
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
        self.plugin.manifest.config.get(&key).cloned()
    }

    async fn all(&mut self) -> Vec<(String, String)> {
        self.plugin.manifest.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
