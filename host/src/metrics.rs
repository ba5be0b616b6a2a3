//! Prometheus metrics: one registry, per-plugin families labelled by plugin name.
//!
//! Hot paths hold their own counter handles (an atomic each), taken once when a
//! plugin loads, so counting costs no lookup.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The label every plugin metric carries.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabel {
    pub plugin: String,
}

/// Labels of a failure counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabel {
    pub plugin: String,
    pub kind: String,
}

/// Labels of a rate-limit counter: `limit` is `publish`, `cases`, `warnings` or `messages`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    pub plugin: String,
    pub limit: String,
}

type HistogramFamily = Family<PluginLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 µs .. ~16 s.
    Histogram::new(exponential_buckets(1e-6, 4.0, 13))
}

/// Every metric the host exports.
pub struct Metrics {
    registry: Registry,
    pub calls: Family<PluginLabel, Counter>,
    pub guest_errors: Family<PluginLabel, Counter>,
    pub failures: Family<FailureLabel, Counter>,
    pub denials: Family<PluginLabel, Counter>,
    pub rate_limited: Family<LimitLabel, Counter>,
    pub skipped: Family<PluginLabel, Counter>,
    pub dead_letters: Family<PluginLabel, Counter>,
    pub quarantines: Family<PluginLabel, Counter>,
    pub quarantined: Family<PluginLabel, Gauge>,
    pub instances: Family<PluginLabel, Counter>,
    pub latency: HistogramFamily,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("yiwang_plugin");
        let calls = Family::default();
        let guest_errors = Family::default();
        let failures = Family::default();
        let denials = Family::default();
        let rate_limited = Family::default();
        let skipped = Family::default();
        let dead_letters = Family::default();
        let quarantines = Family::default();
        let quarantined = Family::default();
        let instances = Family::default();
        let latency = HistogramFamily::new_with_constructor(latency_histogram);
        registry.register("calls", "Events delivered to a plugin (calls made)", calls.clone());
        registry.register("guest_errors", "Calls where the plugin returned an error", guest_errors.clone());
        registry.register(
            "failures",
            "Calls that failed in the sandbox: trap, cpu, memory, stack, timeout",
            failures.clone(),
        );
        registry.register("denials", "Host calls refused by the plugin's grants", denials.clone());
        registry.register(
            "rate_limited",
            "Host calls refused by one of the plugin's rate limits: publish, cases, warnings, messages",
            rate_limited.clone(),
        );
        registry.register(
            "skipped",
            "Deliveries refused because the plugin was quarantined (the event stays kept for it and comes later)",
            skipped.clone(),
        );
        registry.register(
            "dead_letters",
            "Events set aside after repeated failed calls, for an operator to retry or drop",
            dead_letters.clone(),
        );
        registry.register("quarantines", "Times the plugin was quarantined", quarantines.clone());
        registry.register("quarantined", "1 while the plugin is quarantined", quarantined.clone());
        registry.register("instances_created", "Instances created (warm pool misses)", instances.clone());
        registry.register("call_latency_seconds", "Time per call, including instantiation", latency.clone());
        Metrics {
            registry,
            calls,
            guest_errors,
            failures,
            denials,
            rate_limited,
            skipped,
            dead_letters,
            quarantines,
            quarantined,
            instances,
            latency,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Forget a plugin's series (on unload), its failures under each of
    /// `failure_kinds` and its rate-limit hits under each of `limit_kinds`
    /// (the runtime's names for them).
    pub fn remove_plugin(&self, name: &str, failure_kinds: &[&str], limit_kinds: &[&str]) {
        let l = PluginLabel { plugin: name.to_owned() };
        for kind in limit_kinds {
            self.rate_limited.remove(&LimitLabel { plugin: name.to_owned(), limit: (*kind).to_owned() });
        }
        for f in [&self.calls, &self.guest_errors, &self.denials, &self.skipped, &self.dead_letters, &self.quarantines, &self.instances] {
            f.remove(&l);
        }
        self.quarantined.remove(&l);
        self.latency.remove(&l);
        for kind in failure_kinds {
            self.failures.remove(&FailureLabel { plugin: name.to_owned(), kind: (*kind).to_owned() });
        }
    }
}
