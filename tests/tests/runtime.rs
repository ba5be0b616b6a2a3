//! Runtime behaviour across restarts and over time: the precompiled cache, and
//! quarantine with exponential back-off on an injected clock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use yiwang::app::{App, Options};
use yiwang::clock::ManualClock;
use yiwang::runtime::{CacheOutcome, Supervision};
use yiwang_tests::{TestHost, TestOptions, collect, eventually, install_guest};

async fn build(dir: &std::path::Path) -> App {
    let mut options = Options::new(dir);
    options.install_bundled = false;
    let app = App::build(options, None).await.unwrap();
    assert!(app.load_report.iter().all(|r| r.is_ok()), "{:?}", app.load_report);
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_are_compiled_once_then_loaded_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    install_guest(&dir.join("plugins"), "good", |m| m);

    let first = build(&dir).await;
    let plugin = first.state.runtime.plugin("good").unwrap();
    assert_eq!(plugin.origin.compiled, CacheOutcome::Compiled);
    let digest = plugin.origin.digest.clone();
    drop((plugin, first));

    // A restart finds the precompiled artefact, keyed by engine and digest.
    let second = build(&dir).await;
    let plugin = second.state.runtime.plugin("good").unwrap();
    assert_eq!(plugin.origin.compiled, CacheOutcome::Hit);
    let cached: Vec<_> = walk(&dir.join("cache"));
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].ends_with(format!("{digest}.cwasm")), "{cached:?}");
    drop((plugin, second));

    // A damaged artefact is recompiled, not trusted.
    std::fs::write(&cached[0], b"not a precompiled component").unwrap();
    let third = build(&dir).await;
    let plugin = third.state.runtime.plugin("good").unwrap();
    assert_eq!(plugin.origin.compiled, CacheOutcome::Compiled);
    let mut ok = third.state.services.bus.subscribe("t", vec![yiwang_registry::TopicPattern::parse("test.ok").unwrap()], 8);
    let payload = json!({}).to_string();
    third
        .state
        .services
        .bus
        .publish(yiwang::bus::Event {
            id: "e1".into(),
            topic: "test.in".into(),
            source: "host:test".into(),
            time: 0,
            location: None,
            payload,
        })
        .await
        .unwrap();
    collect(&mut ok.events, 1, Duration::from_secs(30)).await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_ends_in_a_trial_and_backs_off_exponentially() {
    let clock = ManualClock::new(1_000_000);
    let supervision = Supervision { failures_to_quarantine: 3, base_backoff_ms: 1_000, ..Supervision::default() };
    let host = TestHost::start(TestOptions {
        guests: vec!["spin"],
        supervision,
        clock: Some(clock.clone() as Arc<dyn yiwang::clock::Clock>),
        ..TestOptions::default()
    })
    .await;
    let calls = async |host: &TestHost| host.plugin_view("spin").await["counters"]["calls"].as_u64().unwrap();
    let skipped = async |host: &TestHost| host.plugin_view("spin").await["counters"]["skipped"].as_u64().unwrap();

    for _ in 0..4 {
        host.publish("test.spin", json!({})).await;
    }
    eventually("three failures, then a skip", Duration::from_secs(60), async || skipped(&host).await == 1).await;
    let view = host.plugin_view("spin").await;
    assert_eq!(view["counters"]["failures"]["cpu"], 3, "{view}");
    assert_eq!(view["health"]["quarantined_until_ms"], 1_001_000, "1 s from the injected now");

    // Still quarantined just before the end.
    clock.advance(999);
    host.publish("test.spin", json!({})).await;
    eventually("skipped", Duration::from_secs(30), async || skipped(&host).await == 2).await;

    // At the end: one trial call, which fails and doubles the back-off.
    clock.advance(1);
    host.publish("test.spin", json!({})).await;
    eventually("the trial ran", Duration::from_secs(30), async || calls(&host).await == 4).await;
    let view = host.plugin_view("spin").await;
    assert_eq!(view["counters"]["quarantines"], 2, "{view}");
    assert_eq!(view["health"]["quarantined_until_ms"], 1_001_000 + 2_000, "{view}");

    clock.advance(2_000);
    host.publish("test.spin", json!({})).await;
    eventually("the second trial ran", Duration::from_secs(30), async || calls(&host).await == 5).await;
    let view = host.plugin_view("spin").await;
    assert_eq!(view["health"]["quarantined_until_ms"], 1_003_000 + 4_000, "{view}");
}
