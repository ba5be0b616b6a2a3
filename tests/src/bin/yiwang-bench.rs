//! `yiwang-bench`: the runtime benchmark, reported side by side in one run.
//!
//! (a) events/s through bus → trivial plugin → outcome, warm instances;
//! (b) the same with a fresh instance per event;
//! (c) p50/p99 time to instantiate a plugin and run its `init`;
//! (d) resident memory of a host with the bundled plugins loaded and idle, and
//!     what each extra warm instance adds.
//!
//! Run it with `cargo run --release -p yiwang-tests --bin yiwang-bench`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use yiwang::app::{App, Options};
use yiwang::bus::Event;
use yiwang::runtime::LoadedPlugin;
use yiwang::services::Services;

#[derive(Parser)]
struct Args {
    /// Events for the warm throughput run.
    #[arg(long, default_value_t = 200_000)]
    warm_events: u64,
    /// Events for the fresh-instance run.
    #[arg(long, default_value_t = 20_000)]
    fresh_events: u64,
    /// Instantiations for the latency run.
    #[arg(long, default_value_t = 10_000)]
    instantiations: usize,
    /// Extra warm instances for the memory run.
    #[arg(long, default_value_t = 100)]
    extra_instances: usize,
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn mib(bytes: f64) -> String {
    format!("{:.2} MiB", bytes / (1 << 20) as f64)
}

async fn host(dir: &std::path::Path, bundled: bool, fresh: bool) -> App {
    let mut options = Options::new(dir);
    options.install_bundled = bundled;
    options.runtime.allow_unsigned = true;
    options.runtime.fresh_instance_per_event = fresh;
    std::fs::create_dir_all(options.plugins_dir()).unwrap();
    yiwang_tests::install_guest(&options.plugins_dir(), "trivial", |m| {
        // The benchmark measures the pipeline, not the queue: give it room.
        m.replace("[grants]", "[limits]\nqueue = 65536\n\n[grants]")
    });
    let app = App::build(options, None).await.unwrap();
    for r in &app.load_report {
        if let Err(e) = r {
            panic!("{e}");
        }
    }
    app
}

/// Publish `n` events on `bench.tick` and wait until the plugin has handled them all.
async fn pump(services: &Arc<Services>, plugin: &Arc<LoadedPlugin>, n: u64) -> f64 {
    let before = plugin.ctx.stats.calls.get();
    let started = Instant::now();
    let s = services.clone();
    let publisher = tokio::spawn(async move {
        for i in 0..n {
            s.bus
                .publish(Event {
                    id: i.to_string(),
                    topic: "bench.tick".into(),
                    source: "host:bench".into(),
                    time: 0,
                    location: None,
                    payload: "{\"n\":1}".into(),
                })
                .await
                .unwrap();
        }
    });
    while plugin.ctx.stats.calls.get() - before < n {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    publisher.await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let failures: u64 = plugin.ctx.stats.view().failures.values().sum();
    assert_eq!(failures, 0, "the trivial plugin failed during the benchmark");
    n as f64 / secs
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let tmp = tempfile::tempdir().unwrap();

    // (d, first part) a fresh host with the bundled plugins, idle.
    let rss_start = rss_bytes();
    let app = host(&tmp.path().join("d"), true, false).await;
    let plugins = app.state.runtime.plugins().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_bytes();

    // (a) warm.
    let runtime = app.state.runtime.clone();
    let services = app.state.services.clone();
    let trivial = runtime.plugin("trivial").unwrap();
    pump(&services, &trivial, args.warm_events / 10).await; // warm up
    let warm = pump(&services, &trivial, args.warm_events).await;

    // (c) instantiation.
    let mut times = Vec::with_capacity(args.instantiations);
    for _ in 0..args.instantiations {
        let t = Instant::now();
        let w = trivial.instantiate().await.unwrap_or_else(|(k, m)| panic!("{}: {m}", k.name()));
        times.push(t.elapsed());
        drop(w);
    }
    times.sort();

    // (d, second part) extra warm instances.
    let before = rss_bytes();
    let mut held = Vec::with_capacity(args.extra_instances);
    for _ in 0..args.extra_instances {
        held.push(trivial.instantiate().await.unwrap_or_else(|(k, m)| panic!("{}: {m}", k.name())));
    }
    let per_instance = (rss_bytes().saturating_sub(before)) as f64 / args.extra_instances as f64;
    drop(held);

    // (b) fresh instance per event, in a second host.
    let fresh_app = host(&tmp.path().join("b"), false, true).await;
    let fresh_plugin = fresh_app.state.runtime.plugin("trivial").unwrap();
    let fresh = pump(&fresh_app.state.services, &fresh_plugin, args.fresh_events).await;

    println!("yiwang-bench ({} cores)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    println!("(a) warm instances:        {warm:>12.0} events/s  ({} events)", args.warm_events);
    println!("(b) fresh instance/event:  {fresh:>12.0} events/s  ({} events)", args.fresh_events);
    println!(
        "(c) instantiate + init:    p50 {:.1} µs, p99 {:.1} µs  ({} runs)",
        yiwang_tests::percentile(&times, 0.5).as_secs_f64() * 1e6,
        yiwang_tests::percentile(&times, 0.99).as_secs_f64() * 1e6,
        times.len()
    );
    println!(
        "(d) resident memory idle:  {} with {plugins} plugins loaded ({} before the host started)",
        mib(rss_idle as f64),
        mib(rss_start as f64)
    );
    println!(
        "    per extra warm instance: {:.1} KiB  (mean of {}; each ran `init`)",
        per_instance / 1024.0,
        args.extra_instances
    );
}
