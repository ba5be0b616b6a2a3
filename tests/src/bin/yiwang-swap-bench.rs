//! `yiwang-swap-bench`: hot loading under load.
//!
//! A host watches its plugins folder with the `good` guest loaded (it answers
//! every `test.in` event on `test.ok` with the event's id). While events are
//! published at a steady rate (default 10,000/s), new versions of the package
//! land in the folder one after another, each moved into place in one rename,
//! as `yiwang plugin install` does. For every swap the benchmark measures the
//! time from the rename to the new version serving (the watcher's report,
//! sent once the swap is done); the components come precompiled from the cache.
//! At the end it checks every event was answered exactly once.
//!
//! Run: `cargo run --release -p yiwang-tests --bin yiwang-swap-bench`.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::sync::mpsc;
use yiwang::app::{App, Options};
use yiwang::bus::Event;
use yiwang_registry::TopicPattern;

#[derive(Parser)]
struct Args {
    /// Versions swapped in, one after another.
    #[arg(long, default_value_t = 100)]
    swaps: usize,
    /// Events published per second while swapping.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Pause between two swaps, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pause_ms: u64,
}

fn manifest(template: &str, version: &str) -> String {
    template.replace("version = \"0.1.0\"", &format!("version = \"{version}\"")).replace("[grants]", "[limits]\nqueue = 65536\npublish-per-second = 1000000\n\n[grants]")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let tmp = tempfile::tempdir().unwrap();
    let good = yiwang_tests::guest("good");
    let template = std::fs::read_to_string(Path::new(good.dir).join("plugin.toml")).unwrap();
    let wasm = std::fs::read(good.wasm).unwrap();

    let mut options = Options::new(tmp.path().join("data"));
    options.install_bundled = false;
    options.runtime.allow_unsigned = true;
    let plugins = options.plugins_dir();
    std::fs::create_dir_all(plugins.join("good")).unwrap();
    std::fs::write(plugins.join("good/plugin.toml"), manifest(&template, "1.0.0")).unwrap();
    std::fs::write(plugins.join("good/plugin.wasm"), &wasm).unwrap();
    let (tx, mut reports) = mpsc::unbounded_channel();
    options.watch_plugins = true;
    options.watch_reports = Some(tx);
    let app = App::build(options, None).await.unwrap();
    for r in &app.load_report {
        if let Err(e) = r {
            panic!("{e}");
        }
    }
    let services = app.state.services.clone();
    let runtime = app.state.runtime.clone();
    let mut echoes = services.bus.subscribe("bench", vec![TopicPattern::parse("test.ok").unwrap()], 1 << 22);

    // The publisher: `rate` events a second, in bursts every millisecond.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let bus = services.bus.clone();
    let rate = args.rate;
    let publisher = tokio::spawn(async move {
        let started = Instant::now();
        let mut sent: u64 = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                _ = tick.tick() => {}
            }
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            while sent < due {
                bus.publish(Event {
                    id: sent.to_string(),
                    topic: "test.in".into(),
                    source: "host:bench".into(),
                    time: 0,
                    location: None,
                    payload: "{}".into(),
                })
                .await
                .unwrap();
                sent += 1;
            }
        }
        (sent, started.elapsed())
    });

    let mut latencies = Vec::with_capacity(args.swaps);
    for k in 1..=args.swaps {
        tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
        let version = format!("1.0.{k}");
        let staging = plugins.join(format!(".good-{version}"));
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("plugin.toml"), manifest(&template, &version)).unwrap();
        std::fs::write(staging.join("plugin.wasm"), &wasm).unwrap();
        let retired = plugins.join(format!(".good-retired-{k}"));
        let started = Instant::now();
        std::fs::rename(plugins.join("good"), &retired).unwrap();
        std::fs::rename(&staging, plugins.join("good")).unwrap();
        loop {
            let r = tokio::time::timeout(Duration::from_secs(10), reports.recv()).await.expect("no swap within 10 s").unwrap();
            if r.outcome == "upgraded" {
                assert_eq!(r.version.as_deref(), Some(version.as_str()));
                break;
            }
            assert!(matches!(r.outcome, "unchanged"), "unexpected: {r:?}");
        }
        latencies.push(started.elapsed());
        std::fs::remove_dir_all(&retired).unwrap();
        assert_eq!(runtime.plugin("good").unwrap().ctx.manifest.version.to_string(), version);
    }
    tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
    let _ = stop_tx.send(());
    let (sent, took) = publisher.await.unwrap();

    let mut seen: HashMap<u64, u32> = HashMap::with_capacity(sent as usize);
    let deadline = Instant::now() + Duration::from_secs(60);
    while (seen.len() as u64) < sent && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), echoes.events.recv()).await {
            Ok(Some(e)) => {
                let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
                *seen.entry(payload["echo"].as_str().unwrap().parse().unwrap()).or_default() += 1;
            }
            _ => break,
        }
    }
    while let Ok(e) = echoes.events.try_recv() {
        let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        *seen.entry(payload["echo"].as_str().unwrap().parse().unwrap()).or_default() += 1;
    }
    let lost = (0..sent).filter(|id| !seen.contains_key(id)).count();
    let duplicated: u32 = seen.values().map(|n| n - 1).sum();

    latencies.sort();
    println!(
        "hot swap, precompiled: {} swaps; landing → serving p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        yiwang_tests::percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        yiwang_tests::percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    println!(
        "events during the swaps: {sent} published at {:.0}/s; lost {lost}, duplicated {duplicated}",
        sent as f64 / took.as_secs_f64()
    );
    let history = runtime.history("good").await.unwrap();
    let upgrades = history.iter().filter(|h| h.event == "upgraded").count();
    println!("version history: {} entries, {upgrades} upgrades", history.len());
    assert_eq!((lost, duplicated), (0, 0), "events lost or duplicated during the swaps");
    drop(app);
}
