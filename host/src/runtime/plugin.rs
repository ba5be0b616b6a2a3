//! One loaded plugin: its context, its warm instances, and how a call runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use serde::Serialize;
use wasmtime::component::InstancePre;
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx};
use yiwang_registry::Manifest;
use yiwang_registry::manifest::Limits;

use super::bindings::exports::yiwang::gov::{handler, lifecycle, model};
use super::bindings::yiwang::gov::types as wit;
use super::engine::{CacheOutcome, ticks_for};
use super::state::PluginState;
use super::supervisor::{Health, HealthView, Supervision};
use crate::bus::Event;
use crate::metrics::{FailureLabel, LimitLabel, Metrics, PluginLabel};
use super::wit::PluginHost;


/// How a call failed inside the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// A trap: a panic, an out-of-bounds access, an instantiation failure.
    Trap,
    /// The CPU deadline (epoch) ran out.
    Cpu,
    /// The memory cap was hit.
    Memory,
    /// The wasm stack overflowed.
    Stack,
    /// The wall-clock timeout ran out.
    Timeout,
}

impl FailureKind {
    pub const ALL: [FailureKind; 5] =
        [FailureKind::Trap, FailureKind::Cpu, FailureKind::Memory, FailureKind::Stack, FailureKind::Timeout];

    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Cpu => "cpu",
            FailureKind::Memory => "memory",
            FailureKind::Stack => "stack",
            FailureKind::Timeout => "timeout",
        }
    }
}

/// What one delivery came to.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// The plugin handled the event.
    Ok,
    /// The plugin returned an error value; the instance stays warm.
    GuestError(String),
    /// The call failed in the sandbox; the instance was thrown away.
    Failed(FailureKind, String),
    /// The plugin is quarantined; the event was not delivered.
    Skipped,
}

/// Metric handles for one plugin, taken once at load.
pub struct PluginStats {
    pub calls: Counter,
    pub guest_errors: Counter,
    pub denials: Counter,
    /// Refusals by each rate limit, in [`Rated`] order.
    rate_limited: [Counter; 4],
    pub skipped: Counter,
    pub dead_letters: Counter,
    pub quarantines: Counter,
    pub quarantined: Gauge,
    pub instances: Counter,
    pub latency: Histogram,
    /// Total time spent in calls, for the mean the admin API shows.
    busy_ns: AtomicU64,
    failures: [Counter; 5],
}

impl PluginStats {
    fn new(metrics: &Metrics, name: &str) -> Self {
        let l = PluginLabel { plugin: name.to_owned() };
        PluginStats {
            calls: metrics.calls.get_or_create_owned(&l),
            guest_errors: metrics.guest_errors.get_or_create_owned(&l),
            denials: metrics.denials.get_or_create_owned(&l),
            rate_limited: Rated::ALL.map(|r| {
                metrics.rate_limited.get_or_create_owned(&LimitLabel { plugin: name.to_owned(), limit: r.name().to_owned() })
            }),
            skipped: metrics.skipped.get_or_create_owned(&l),
            dead_letters: metrics.dead_letters.get_or_create_owned(&l),
            quarantines: metrics.quarantines.get_or_create_owned(&l),
            quarantined: metrics.quarantined.get_or_create_owned(&l),
            instances: metrics.instances.get_or_create_owned(&l),
            latency: metrics.latency.get_or_create_owned(&l),
            busy_ns: AtomicU64::new(0),
            failures: FailureKind::ALL.map(|k| {
                metrics.failures.get_or_create_owned(&FailureLabel { plugin: name.to_owned(), kind: k.name().to_owned() })
            }),
        }
    }

    pub fn failure(&self, kind: FailureKind) -> &Counter {
        &self.failures[kind as usize]
    }

    /// The counter of calls refused by the rate limit of `kind`.
    pub fn rate_limited(&self, kind: Rated) -> &Counter {
        &self.rate_limited[kind as usize]
    }

    /// A snapshot for the admin API.
    pub fn view(&self) -> StatsView {
        StatsView {
            calls: self.calls.get(),
            guest_errors: self.guest_errors.get(),
            failures: FailureKind::ALL.iter().map(|k| (k.name(), self.failure(*k).get())).collect(),
            denials: self.denials.get(),
            rate_limited: self.rate_limited.iter().map(Counter::get).sum(),
            rate_limited_by: Rated::ALL.iter().map(|r| (r.name(), self.rate_limited(*r).get())).collect(),
            skipped: self.skipped.get(),
            dead_letters: self.dead_letters.get(),
            quarantines: self.quarantines.get(),
            instances_created: self.instances.get(),
            mean_latency_us: match self.calls.get() {
                0 => 0.0,
                n => self.busy_ns.load(Ordering::Relaxed) as f64 / n as f64 / 1e3,
            },
        }
    }
}

/// Counters as the admin API shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatsView {
    pub calls: u64,
    pub guest_errors: u64,
    /// Failures by kind: `trap`, `cpu`, `memory`, `stack`, `timeout`.
    #[schema(value_type = std::collections::BTreeMap<String, u64>)]
    pub failures: std::collections::BTreeMap<&'static str, u64>,
    pub denials: u64,
    /// Host calls refused by a rate limit, all kinds together.
    pub rate_limited: u64,
    /// The same by limit: `publish`, `cases`, `warnings`, `messages`.
    #[schema(value_type = std::collections::BTreeMap<String, u64>)]
    pub rate_limited_by: std::collections::BTreeMap<&'static str, u64>,
    pub skipped: u64,
    /// Events set aside as dead letters since the start.
    pub dead_letters: u64,
    pub quarantines: u64,
    pub instances_created: u64,
    pub mean_latency_us: f64,
}

/// What a plugin's rate limits count, each with its own token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rated {
    /// `bus.publish`, per second.
    Publish,
    /// `cases.open-case`, per minute.
    Cases,
    /// Warnings raised, returned by `evaluate`, updated or cancelled, per minute.
    Warnings,
    /// `messaging.send`, per minute.
    Messages,
}

impl Rated {
    pub const ALL: [Rated; 4] = [Rated::Publish, Rated::Cases, Rated::Warnings, Rated::Messages];

    /// The name of its counter: `publish`, `cases`, `warnings`, `messages`.
    pub fn name(self) -> &'static str {
        match self {
            Rated::Publish => "publish",
            Rated::Cases => "cases",
            Rated::Warnings => "warnings",
            Rated::Messages => "messages",
        }
    }

    /// Its key in the manifest's `[limits]`.
    pub fn key(self) -> &'static str {
        match self {
            Rated::Publish => "publish-per-second",
            Rated::Cases => "cases-per-minute",
            Rated::Warnings => "warnings-per-minute",
            Rated::Messages => "messages-per-minute",
        }
    }

    /// The amount allowed per period, and the period.
    fn rate(self, limits: &Limits) -> (u32, Duration) {
        match self {
            Rated::Publish => (limits.publish_per_second, Duration::from_secs(1)),
            Rated::Cases => (limits.cases_per_minute, Duration::from_secs(60)),
            Rated::Warnings => (limits.warnings_per_minute, Duration::from_secs(60)),
            Rated::Messages => (limits.messages_per_minute, Duration::from_secs(60)),
        }
    }

    /// The limit in words: `30 per minute (cases-per-minute)`.
    pub fn describe(self, limits: &Limits) -> String {
        let (amount, period) = self.rate(limits);
        let per = if period.as_secs() == 1 { "second" } else { "minute" };
        format!("{amount} per {per} ({})", self.key())
    }
}

/// A token bucket: `amount` tokens per `period`, refilled continuously, never
/// holding more than one period's worth (the burst). Measured in real time, not
/// the host's clock: it bounds the load a plugin puts on the host, and the
/// host's clock may stand still or jump (tests, the demonstration day).
struct TokenBucket {
    /// Tokens per second.
    rate: f64,
    /// The most tokens held.
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(amount: u32, period: Duration) -> Self {
        let burst = f64::from(amount);
        TokenBucket { rate: burst / period.as_secs_f64(), burst, tokens: burst, last: Instant::now() }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One token bucket per [`Rated`] kind, from the manifest's `[limits]`.
struct RateLimits {
    buckets: [Mutex<TokenBucket>; 4],
}

impl RateLimits {
    fn new(limits: &Limits) -> Self {
        RateLimits {
            buckets: Rated::ALL.map(|r| {
                let (amount, period) = r.rate(limits);
                Mutex::new(TokenBucket::new(amount, period))
            }),
        }
    }
}

/// What every instance of a plugin shares.
pub struct PluginContext {
    pub manifest: Manifest,
    /// `plugin:<name>`, the plugin's service identity.
    pub principal: String,
    /// The capabilities the plugin may reach, one view each.
    pub host: Arc<PluginHost>,
    pub stats: PluginStats,
    rates: RateLimits,
}

impl PluginContext {
    pub fn new(manifest: Manifest, host: Arc<PluginHost>, metrics: &Metrics) -> Arc<Self> {
        Arc::new(PluginContext {
            principal: format!("plugin:{}", manifest.name),
            stats: PluginStats::new(metrics, &manifest.name),
            rates: RateLimits::new(&manifest.limits),
            manifest,
            host,
        })
    }

    /// Take one token of `kind`; `false` when its rate limit is reached.
    pub fn take_token(&self, kind: Rated) -> bool {
        self.rates.buckets[kind as usize].lock().take()
    }
}

/// Export lookups done once per plugin, reused for every instance.
pub(crate) struct Exports {
    pub lifecycle: lifecycle::GuestIndices,
    pub handler: Option<handler::GuestIndices>,
    pub model: Option<model::GuestIndices>,
}

/// A warm instance: a store with an instantiated component, ready for a call.
pub struct Warm {
    store: Store<PluginState>,
    handler: Option<handler::Guest>,
    model: Option<model::Guest>,
}

/// Why a package was allowed to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// One of the plugins built into this binary (its digest is compiled in).
    Bundled,
    /// Signed by a publisher the trust policy admits for its department.
    TrustPolicy,
    /// No policy vouches for it: the server runs with `--allow-unsigned`.
    AllowUnsigned,
}

impl Admission {
    pub fn name(self) -> &'static str {
        match self {
            Admission::Bundled => "bundled",
            Admission::TrustPolicy => "trust-policy",
            Admission::AllowUnsigned => "allow-unsigned",
        }
    }
}

/// Where a loaded plugin's code came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// What let it load.
    pub admitted: Admission,
    /// sha256 of the component (the key of the precompiled cache).
    pub digest: String,
    /// sha256 of the package: manifest and component (what tells two
    /// versions apart, and what a signature covers).
    pub package_digest: String,
    /// The package folder.
    pub path: PathBuf,
    /// Whether the component came precompiled from the cache.
    pub compiled: CacheOutcome,
}

/// A plugin loaded into the runtime.
pub struct LoadedPlugin {
    pub ctx: Arc<PluginContext>,
    pub origin: Origin,
    /// When it was loaded (ms since the epoch).
    pub loaded_at: i64,
    pub(crate) engine: Engine,
    pub(crate) pre: InstancePre<PluginState>,
    pub(crate) exports: Exports,
    /// Private folder for a plugin granted a filesystem.
    pub(crate) files_dir: Option<PathBuf>,
    pool: Mutex<Vec<Warm>>,
    pub(crate) health: Mutex<Health>,
    supervision: Supervision,
    /// Whether instances are kept warm between events.
    reuse: bool,
}

impl LoadedPlugin {
    pub(crate) fn new(
        ctx: Arc<PluginContext>,
        origin: Origin,
        engine: Engine,
        pre: InstancePre<PluginState>,
        exports: Exports,
        files_dir: Option<PathBuf>,
        supervision: Supervision,
        reuse: bool,
    ) -> Self {
        LoadedPlugin {
            loaded_at: ctx.host.clock.now_ms(),
            ctx,
            origin,
            engine,
            pre,
            exports,
            files_dir,
            pool: Mutex::new(Vec::new()),
            health: Mutex::new(Health::default()),
            supervision,
            reuse,
        }
    }

    pub fn name(&self) -> &str {
        &self.ctx.manifest.name
    }

    fn wasi_ctx(&self) -> anyhow::Result<WasiCtx> {
        let g = &self.ctx.manifest.grants.wasi;
        let mut b = WasiCtx::builder();
        if g.stdio {
            b.inherit_stdout().inherit_stderr();
        }
        for (k, v) in &g.env {
            b.env(k, v);
        }
        if g.network {
            b.inherit_network().allow_ip_name_lookup(true).allow_tcp(true).allow_udp(true);
        }
        if let (true, Some(dir)) = (g.filesystem, &self.files_dir) {
            std::fs::create_dir_all(dir)?;
            b.preopened_dir(dir, "/data", FsPerms::ReadWrite)?;
        }
        Ok(b.build())
    }

    /// Create a new instance and run its `init`. Failures are classified like calls.
    pub async fn instantiate(&self) -> Result<Warm, (FailureKind, String)> {
        let wasi = self.wasi_ctx().map_err(|e| (FailureKind::Trap, format!("sandbox setup: {e:#}")))?;
        let mut store = Store::new(&self.engine, PluginState::new(self.ctx.clone(), wasi));
        store.limiter(|s| &mut s.limiter);
        // The CPU deadline counts the plugin's own execution: when the epoch
        // deadline comes, time the call spent in host calls (waiting on
        // storage, say) is given back; the wall-clock limit bounds the whole.
        let budget = Duration::from_millis(self.ctx.manifest.limits.cpu_ms);
        store.epoch_deadline_callback(move |store| {
            let own = store.data().call.clock.own();
            if own >= budget {
                return Ok(wasmtime::UpdateDeadline::Interrupt);
            }
            let left = (budget - own).as_millis() as u64;
            Ok(wasmtime::UpdateDeadline::Continue(ticks_for(left)))
        });
        store.data_mut().call.clock = super::state::CallClock::start();
        store.set_epoch_deadline(ticks_for(self.ctx.manifest.limits.cpu_ms));
        self.ctx.stats.instances.inc();
        let instance = match self.pre.instantiate_async(&mut store).await {
            Ok(i) => i,
            Err(e) => return Err(classify(&store, &e)),
        };
        let loaded = (|| -> wasmtime::Result<_> {
            let lifecycle = self.exports.lifecycle.load(&mut store, &instance)?;
            let handler = self.exports.handler.as_ref().map(|h| h.load(&mut store, &instance)).transpose()?;
            let model = self.exports.model.as_ref().map(|m| m.load(&mut store, &instance)).transpose()?;
            Ok((lifecycle, handler, model))
        })();
        let (lifecycle, handler, model) = loaded.map_err(|e| (FailureKind::Trap, format!("{e:#}")))?;
        match lifecycle.call_init(&mut store).await {
            Ok(Ok(())) => Ok(Warm { store, handler, model }),
            Ok(Err(e)) => Err((FailureKind::Trap, format!("init returned an error: {}", describe(&e)))),
            Err(e) => Err(classify(&store, &e)),
        }
    }

    /// Take a warm instance, or create one.
    pub async fn checkout(&self) -> Result<Warm, (FailureKind, String)> {
        let warm = self.pool.lock().pop();
        match warm {
            Some(w) => Ok(w),
            None => self.instantiate().await,
        }
    }

    /// Give a healthy instance back for reuse.
    pub fn checkin(&self, warm: Warm) {
        if self.reuse {
            self.pool.lock().push(warm);
        }
    }

    /// Number of warm instances waiting.
    pub fn warm_instances(&self) -> usize {
        self.pool.lock().len()
    }

    /// Drop every warm instance (e.g. before an unload).
    pub fn drain_pool(&self) {
        self.pool.lock().clear();
    }

    /// Deliver one event under supervision: skip while quarantined, run the
    /// call, count it, and update health.
    pub async fn deliver(&self, event: &Event) -> CallOutcome {
        let now = self.ctx.host.clock.now_ms();
        if !self.health.lock().admit(now) {
            self.ctx.stats.skipped.inc();
            return CallOutcome::Skipped;
        }
        let started = Instant::now();
        let outcome = self.call(event).await;
        let stats = &self.ctx.stats;
        let elapsed = started.elapsed();
        stats.latency.observe(elapsed.as_secs_f64());
        stats.busy_ns.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        stats.calls.inc();
        match &outcome {
            CallOutcome::Ok => self.health.lock().success(),
            CallOutcome::GuestError(_) => {
                stats.guest_errors.inc();
                self.health.lock().success();
            }
            CallOutcome::Failed(kind, message) => {
                stats.failure(*kind).inc();
                tracing::warn!(plugin = self.name(), kind = kind.name(), event = %event.id, "call failed: {message}");
                let now = self.ctx.host.clock.now_ms();
                let quarantined = self.health.lock().failure(now, &self.supervision, kind.name(), message);
                if let Some(until) = quarantined {
                    stats.quarantines.inc();
                    stats.quarantined.set(1);
                    tracing::error!(plugin = self.name(), until_ms = until, "plugin quarantined after repeated failures");
                    let detail = format!("{}: {message}", kind.name());
                    let audit = &self.ctx.host.audit;
                    audit.record_host("plugin.quarantine", &self.ctx.principal, "quarantined", &detail).await;
                }
            }
            CallOutcome::Skipped => {}
        }
        if !matches!(outcome, CallOutcome::Failed(..)) && stats.quarantined.get() == 1 {
            stats.quarantined.set(0);
        }
        outcome
    }

    /// Run one event through a warm instance.
    pub async fn call(&self, event: &Event) -> CallOutcome {
        let mut warm = match self.checkout().await {
            Ok(w) => w,
            Err((kind, message)) => return CallOutcome::Failed(kind, message),
        };
        let limits = self.ctx.manifest.limits;
        {
            let state = warm.store.data_mut();
            state.call.counters = Default::default();
            state.call.clock = super::state::CallClock::start();
            state.limiter.memory_hit = false;
        }
        warm.store.set_epoch_deadline(ticks_for(limits.cpu_ms));
        let wit_event = to_wit(event);
        let Warm { store, handler, model } = &mut warm;
        let run = async {
            if let Some(h) = handler {
                match h.call_handle(&mut *store, &wit_event).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Ok(Err(describe(&e))),
                    Err(trap) => return Err(trap),
                }
            }
            if let Some(m) = model {
                match m.call_evaluate(&mut *store, &wit_event).await {
                    Ok(Ok(warnings)) => {
                        // Past the warnings' rate limit every further warning is
                        // refused, counted and audited; the call answers the first
                        // refusal as its error. Any other refusal ends the call.
                        let mut limited = None;
                        for w in &warnings {
                            let state = store.data_mut();
                            let stored = super::wit::cases::store_warning(&mut state.call, &state.host.cases, w).await;
                            match stored {
                                Ok(_) => {}
                                Err(e @ wit::Error::Limit(_)) => {
                                    limited.get_or_insert(e);
                                }
                                Err(e) => return Ok(Err(format!("warning refused: {}", describe(&e)))),
                            }
                        }
                        if let Some(e) = limited {
                            return Ok(Err(format!("warning refused: {}", describe(&e))));
                        }
                    }
                    Ok(Err(e)) => return Ok(Err(describe(&e))),
                    Err(trap) => return Err(trap),
                }
            }
            Ok(Ok(()))
        };
        match tokio::time::timeout(Duration::from_millis(limits.wall_ms), run).await {
            Ok(Ok(Ok(()))) => {
                self.checkin(warm);
                CallOutcome::Ok
            }
            Ok(Ok(Err(message))) => {
                self.checkin(warm);
                CallOutcome::GuestError(message)
            }
            Ok(Err(trap)) => {
                let (kind, message) = classify(&warm.store, &trap);
                // A trapped instance is never reused.
                drop(warm);
                CallOutcome::Failed(kind, message)
            }
            Err(_) => CallOutcome::Failed(FailureKind::Timeout, format!("no answer within {} ms", limits.wall_ms)),
        }
    }

    /// The end of the plugin's quarantine, while it lasts.
    pub fn quarantined_until(&self) -> Option<i64> {
        self.health_view().quarantined_until_ms
    }

    /// Health as the admin API shows it.
    pub fn health_view(&self) -> HealthView {
        self.health.lock().view(self.ctx.host.clock.now_ms())
    }
}

/// Turn a wasmtime error from a call into a failure kind and a message.
fn classify(store: &Store<PluginState>, e: &wasmtime::Error) -> (FailureKind, String) {
    let trap = e.downcast_ref::<Trap>().copied();
    let kind = match trap {
        Some(Trap::Interrupt) => FailureKind::Cpu,
        Some(Trap::StackOverflow) => FailureKind::Stack,
        _ if store.data().limiter.memory_hit => FailureKind::Memory,
        // Rust keeps its locals on a shadow stack in linear memory; running off
        // its end is an out-of-bounds access deep inside one recursing function.
        Some(Trap::MemoryOutOfBounds) if deep_recursion(e) => FailureKind::Stack,
        _ => FailureKind::Trap,
    };
    let cause = match trap {
        Some(t) => t.to_string(),
        None => e.root_cause().to_string(),
    };
    // The cause first; then the innermost frames of the wasm backtrace.
    let text = format!("{e:#}");
    let frames: Vec<&str> = text.lines().filter(|l| l.contains("wasm function") || l.contains('!')).take(3).collect();
    let message = if frames.is_empty() { cause } else { format!("{cause} (at {})", frames.join(" | ").trim().to_owned()) };
    (kind, message)
}

/// Whether a trap's backtrace is one function calling itself hundreds of times.
fn deep_recursion(e: &wasmtime::Error) -> bool {
    let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() else { return false };
    let frames = bt.frames();
    // The engine keeps BACKTRACE_FRAMES frames; a full backtrace of one function
    // is recursion that ran out of room.
    frames.len() >= super::engine::BACKTRACE_FRAMES && {
        let first = frames[0].func_index();
        frames.iter().filter(|f| f.func_index() == first).count() >= frames.len() - 2
    }
}

/// A guest error value as text.
pub fn describe(e: &wit::Error) -> String {
    match e {
        wit::Error::Denied(m) => format!("denied: {m}"),
        wit::Error::NotFound(m) => format!("not found: {m}"),
        wit::Error::Invalid(m) => format!("invalid: {m}"),
        wit::Error::Limit(m) => format!("limit: {m}"),
        wit::Error::Conflict(m) => format!("conflict: {m}"),
        wit::Error::Unavailable(m) => format!("unavailable: {m}"),
    }
}

fn to_wit(e: &Event) -> wit::Event {
    wit::Event {
        id: e.id.clone(),
        topic: e.topic.clone(),
        source: e.source.clone(),
        time: e.time,
        location: e.location.map(|p| wit::GeoPoint { lat: p.lat, lon: p.lon }),
        payload: e.payload.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_a_burst_through_then_refills_at_its_rate() {
        let mut b = TokenBucket::new(5, Duration::from_secs(60));
        assert_eq!((0..8).filter(|_| b.take()).count(), 5, "one minute's worth at once, no more");
        // Twelve seconds later one more token has come (5 per minute).
        b.last -= Duration::from_secs(12);
        assert!(b.take());
        assert!(!b.take());
        // A long pause refills to the burst, never beyond.
        b.last -= Duration::from_secs(3600);
        assert_eq!((0..8).filter(|_| b.take()).count(), 5);
        let mut none = TokenBucket::new(0, Duration::from_secs(60));
        none.last -= Duration::from_secs(3600);
        assert!(!none.take(), "a limit of 0 allows nothing");
    }

    #[test]
    fn each_kind_has_its_own_bucket() {
        let limits = Limits { cases_per_minute: 2, messages_per_minute: 1, ..Limits::DEFAULT };
        let r = RateLimits::new(&limits);
        let take = |k: Rated| r.buckets[k as usize].lock().take();
        assert!(take(Rated::Cases) && take(Rated::Cases) && !take(Rated::Cases));
        assert!(take(Rated::Messages) && !take(Rated::Messages));
        assert!(take(Rated::Warnings), "the cases and messages taken leave warnings alone");
        assert_eq!(Rated::Cases.describe(&limits), "2 per minute (cases-per-minute)");
        assert_eq!(Rated::Publish.describe(&limits), "1000 per second (publish-per-second)");
    }
}
