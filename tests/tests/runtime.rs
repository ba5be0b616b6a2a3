//! Runtime behaviour across restarts and over time: the precompiled cache,
//! quarantine with exponential back-off on an injected clock, and durable
//! delivery: no event lost for a quarantined, disabled or restarted plugin.

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
    options.runtime.allow_unsigned = true;
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

/// A plugin that keeps failing is quarantined, with a back-off that doubles;
/// the event it fails on is tried again after each quarantine (it stays first
/// in line) and set aside as a dead letter after three attempts.
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

    for _ in 0..2 {
        host.publish("test.spin", json!({})).await;
    }
    eventually("three failures, then a quarantine", Duration::from_secs(60), async || {
        let view = host.plugin_view("spin").await;
        view["health"]["state"] == "quarantined" && view["lag"]["dead_letters"] == 1
    })
    .await;
    let view = host.plugin_view("spin").await;
    assert_eq!(view["counters"]["failures"]["cpu"], 3, "{view}");
    assert_eq!(view["health"]["quarantined_until_ms"], 1_001_000, "1 s from the injected now");
    assert_eq!(view["lag"]["dead_letters"], 1, "the first event was tried three times: {view}");
    assert_eq!(view["lag"]["waiting"], 1, "the second waits for the quarantine to end: {view}");

    // Still quarantined just before the end: nothing is called.
    clock.advance(999);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(calls(&host).await, 3);

    // At the end: one trial call, which fails and doubles the back-off.
    clock.advance(1);
    eventually("the trial ran", Duration::from_secs(30), async || calls(&host).await == 4).await;
    eventually("quarantined again", Duration::from_secs(30), async || {
        host.plugin_view("spin").await["counters"]["quarantines"] == 2
    })
    .await;
    let view = host.plugin_view("spin").await;
    assert_eq!(view["health"]["quarantined_until_ms"], 1_001_000 + 2_000, "{view}");

    clock.advance(2_000);
    eventually("the second trial ran", Duration::from_secs(30), async || calls(&host).await == 5).await;
    eventually("quarantined a third time", Duration::from_secs(30), async || {
        host.plugin_view("spin").await["counters"]["quarantines"] == 3
    })
    .await;
    let view = host.plugin_view("spin").await;
    assert_eq!(view["health"]["quarantined_until_ms"], 1_003_000 + 4_000, "{view}");

    // The third attempt on the second event sets it aside too.
    clock.advance(4_000);
    eventually("the second event set aside", Duration::from_secs(30), async || {
        let view = host.plugin_view("spin").await;
        view["lag"]["dead_letters"] == 2 && view["lag"]["waiting"] == 0
    })
    .await;
    assert_eq!(calls(&host).await, 6);
}

/// The echoed event ids of `n` answers on `test.ok`.
async fn echoes(ok: &mut yiwang::bus::Subscription, n: usize) -> Vec<String> {
    collect(&mut ok.events, n, Duration::from_secs(60))
        .await
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.payload).unwrap()["echo"].as_str().unwrap().to_owned())
        .collect()
}

/// Events that come while a plugin is quarantined wait for it, and reach it
/// when the quarantine ends: every one, once, in order. The poison event that
/// quarantined it is a dead letter an operator lists, retries and drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_plugin_gets_every_event_once_and_in_order_when_it_recovers() {
    let clock = ManualClock::new(1_000_000);
    let host = TestHost::start(TestOptions {
        guests: vec!["moody"],
        clock: Some(clock.clone() as Arc<dyn yiwang::clock::Clock>),
        ..TestOptions::default()
    })
    .await;
    let mut ok = host.subscribe("test.ok");
    host.publish("test.mood", json!({ "fail": true })).await;
    eventually("quarantined, the poison event set aside", Duration::from_secs(60), async || {
        let view = host.plugin_view("moody").await;
        view["health"]["state"] == "quarantined" && view["lag"]["dead_letters"] == 1
    })
    .await;

    let mut sent = Vec::new();
    for n in 0..200 {
        sent.push(host.publish("test.mood", json!({ "n": n })).await);
    }
    let view = host.plugin_view("moody").await;
    assert_eq!(view["lag"]["waiting"], 200, "{view}");
    assert_eq!(view["lag"]["dead_letters"], 1, "{view}");
    assert!(view["lag"]["oldest_waiting_ms"].is_i64(), "{view}");
    let (_, metrics) = host.get_text("/metrics").await;
    assert!(metrics.contains("yiwang_bus_waiting{subscriber=\"moody\"} 200"), "{metrics}");
    assert!(metrics.contains("yiwang_plugin_dead_letters_total{plugin=\"moody\"} 1"), "{metrics}");
    assert!(ok.events.try_recv().is_err(), "nothing handled while quarantined");

    clock.advance(1_000);
    assert_eq!(echoes(&mut ok, 200).await, sent, "every event, in the order published");
    assert!(host.runtime.settle(Duration::from_secs(30)).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(ok.events.try_recv().is_err(), "and none twice");
    let view = host.plugin_view("moody").await;
    assert_eq!(view["lag"]["waiting"], 0, "{view}");

    // The dead letter: operators only.
    let path = "/api/plugins/moody/dead-letters";
    assert_eq!(host.call("GET", path, None, None).await.0, 401);
    let (status, letters) = host.call("GET", path, Some(&host.token), None).await;
    assert_eq!(status, 200, "{letters}");
    let letters = letters.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["attempts"], 3, "{letters:?}");
    assert_eq!(letters[0]["payload"], json!({ "fail": true }).to_string());
    assert!(letters[0]["error"].as_str().unwrap().starts_with("trap"), "{letters:?}");
    let id = letters[0]["id"].as_str().unwrap().to_owned();

    // A retry hands it to the plugin again; it fails again and stays.
    let (status, retried) = host.call("POST", &format!("{path}/{id}"), Some(&host.token), None).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["outcome"], "failed", "{retried}");
    let (_, letters) = host.call("GET", path, Some(&host.token), None).await;
    assert_eq!(letters[0]["attempts"], 4, "{letters}");

    // Dropped: gone, and audited.
    let (status, body) = host.call("DELETE", &format!("{path}/{id}"), Some(&host.token), None).await;
    assert_eq!(status, 204, "{body}");
    let (_, letters) = host.call("GET", path, Some(&host.token), None).await;
    assert_eq!(letters, json!([]));
    assert_eq!(host.call("DELETE", &format!("{path}/{id}"), Some(&host.token), None).await.0, 404);
    let audit = host.services.audit.find(None, Some("plugin.dead-letter.drop"), 10).await.unwrap();
    assert_eq!(audit.len(), 1);
}

/// Events kept for a disabled plugin outlast a restart of the server, and
/// so does the operator's word: the plugin comes back disabled, and gets
/// every event, once and in order, when it is enabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_kept_for_a_plugin_survive_a_restart() {
    let host = TestHost::with_guests(&["moody"]).await;
    let mut ok = host.subscribe("test.ok");
    let mut sent = Vec::new();
    for n in 0..20 {
        sent.push(host.publish("test.mood", json!({ "n": n })).await);
    }
    assert_eq!(echoes(&mut ok, 20).await, sent);
    assert!(host.runtime.settle(Duration::from_secs(30)).await);

    let (status, body) = host.call("POST", "/api/plugins/moody/disable", Some(&host.token), None).await;
    assert_eq!(status, 200, "{body}");
    let mut kept = Vec::new();
    for n in 20..70 {
        kept.push(host.publish("test.mood", json!({ "n": n })).await);
    }
    assert_eq!(host.plugin_view("moody").await["lag"]["waiting"], 50);
    let dir = host.stop().await;

    let host = TestHost::start(TestOptions { data: Some(dir), ..TestOptions::default() }).await;
    let view = host.plugin_view("moody").await;
    assert_eq!(view["enabled"], false, "{view}");
    assert_eq!(view["lag"]["waiting"], 50, "{view}");
    let mut ok = host.subscribe("test.ok");
    let (status, body) = host.call("POST", "/api/plugins/moody/enable", Some(&host.token), None).await;
    assert_eq!(status, 200, "{body}");
    kept.push(host.publish("test.mood", json!({ "n": 70 })).await);
    assert_eq!(echoes(&mut ok, 51).await, kept, "every kept event, then the new one, in order");
    assert!(host.runtime.settle(Duration::from_secs(30)).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(ok.events.try_recv().is_err(), "none twice");
}

/// A component built against `yiwang:gov@0.2.0` (frozen in `tests/data/frozen`)
/// loads on this host and handles events: additions to the contract keep
/// what plugin authors built before working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_built_against_the_earlier_contract_still_loads_and_serves() {
    let host = TestHost::with_guests(&[]).await;
    let frozen = concat!(env!("CARGO_MANIFEST_DIR"), "/data/frozen");
    let folder = host.plugins_dir().join("moody");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(format!("{frozen}/moody-0.2.0.toml"), folder.join("plugin.toml")).unwrap();
    std::fs::copy(format!("{frozen}/moody-0.2.0.wasm"), folder.join("plugin.wasm")).unwrap();
    let loaded = host.runtime.load_package(&folder).await.unwrap_or_else(|e| panic!("the 0.2.0 component was refused: {e}"));
    assert_eq!(loaded.ctx.manifest.world.version.to_string(), "0.2.0");
    let mut ok = host.subscribe("test.ok");
    let id = host.publish("test.mood", json!({ "n": 1 })).await;
    assert_eq!(echoes(&mut ok, 1).await, vec![id]);
}

/// The safe default: with no trust policy and without `--allow-unsigned`, an
/// unsigned package is refused (naming the way out) and the bundled plugins
/// load; with the flag it loads, and `/api/plugins` says what let it in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trust_policy_only_the_bundled_plugins_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    install_guest(&dir.join("plugins"), "good", |m| m);
    let mut options = Options::new(&dir);
    options.install_bundled = true;
    let app = App::build(options, None).await.unwrap();
    let refused: Vec<String> = app.load_report.iter().filter_map(|r| r.as_ref().err()).map(|e| e.to_string()).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("`good`") && refused[0].contains("signature"), "{}", refused[0]);
    assert!(refused[0].contains("--allow-unsigned") && refused[0].contains("trust.toml"), "{}", refused[0]);
    assert!(app.state.runtime.plugin("good").is_none());
    for bundled in ["chengguan", "hotline12345", "yingji", "zongzhi"] {
        let p = app.state.runtime.plugin(bundled).unwrap_or_else(|| panic!("{bundled} is bundled and loads"));
        assert_eq!(p.origin.admitted, yiwang::runtime::Admission::Bundled);
    }
    drop(app);

    let mut options = Options::new(&dir);
    options.install_bundled = false;
    options.runtime.allow_unsigned = true;
    let app = App::build(options, None).await.unwrap();
    let good = app.state.runtime.plugin("good").expect("loads with --allow-unsigned");
    assert_eq!(good.origin.admitted.name(), "allow-unsigned");
}
