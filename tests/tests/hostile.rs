//! Hostile plugins: each runs beside the well-behaved `good` plugin. For each we
//! prove that the host stays up, that `good` keeps answering, and that the
//! offender is contained (its call fails or is refused) and reported (counters,
//! health state, metrics, audit).

use std::time::Duration;

use serde_json::{Value, json};
use yiwang_tests::{TestHost, collect, eventually};

const WAIT: Duration = Duration::from_secs(60);

/// Send `rounds` events to the offender and to `good`, interleaved, and check
/// that every `good` event was answered exactly once.
async fn run_beside_good(host: &TestHost, offender_topic: &str, rounds: usize) {
    let mut ok = host.subscribe("test.ok");
    let mut sent = Vec::new();
    for i in 0..rounds {
        host.publish(offender_topic, json!({ "round": i })).await;
        sent.push(host.publish("test.in", json!({ "round": i })).await);
    }
    let echoes = collect(&mut ok.events, rounds, WAIT).await;
    let mut echoed: Vec<String> = echoes
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.payload).unwrap()["echo"].as_str().unwrap().to_owned())
        .collect();
    echoed.sort();
    sent.sort();
    assert_eq!(echoed, sent, "good must answer every event exactly once");
    assert!(ok.events.try_recv().is_err(), "no extra answers");
}

async fn assert_healthy(host: &TestHost) {
    let (status, body) = host.get_json("/healthz").await;
    assert_eq!(status, 200, "{body}");
    let good = host.plugin_view("good").await;
    assert_eq!(good["health"]["state"], "running", "{good}");
    assert_eq!(good["counters"]["failures"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>(), 0);
}

/// The offender failed with `kind` at least `n` times, was quarantined, and the
/// metrics say so.
async fn assert_contained(host: &TestHost, offender: &str, kind: &str) {
    let view = host.plugin_view(offender).await;
    let failures = view["counters"]["failures"][kind].as_u64().unwrap();
    assert!(failures >= 3, "{offender}: expected ≥3 `{kind}` failures: {view}");
    assert!(view["counters"]["quarantines"].as_u64().unwrap() >= 1, "{view}");
    assert_eq!(view["health"]["state"], "quarantined", "{view}");
    assert!(view["lag"]["dead_letters"].as_u64().unwrap() >= 1, "the event it failed on is set aside: {view}");
    assert!(view["lag"]["waiting"].as_u64().unwrap() >= 1, "events that came while it was quarantined wait for it: {view}");
    let (_, metrics) = host.get_text("/metrics").await;
    let line = format!("yiwang_plugin_failures_total{{plugin=\"{offender}\",kind=\"{kind}\"}} {failures}");
    assert!(metrics.contains(&line), "metrics lack `{line}`");
    let audit = host.services.audit.find(Some("host"), Some("plugin.quarantine"), 100).await.unwrap();
    assert!(audit.iter().any(|r| r.subject == format!("plugin:{offender}")), "quarantine is audited");
}

async fn hostile(offender: &'static str, kind: &str) {
    let host = TestHost::with_guests(&["good", offender]).await;
    run_beside_good(&host, &format!("test.{offender}"), 6).await;
    eventually(&format!("{offender} quarantined"), WAIT, async || {
        host.plugin_view(offender).await["lag"]["dead_letters"].as_u64().unwrap() >= 1
    })
    .await;
    assert_contained(&host, offender, kind).await;
    assert_healthy(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_hits_the_cpu_deadline() {
    hostile("spin", "cpu").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_hits_the_memory_cap() {
    hostile("membomb", "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_recursion_overflows_the_stack() {
    hostile("recurse", "stack").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_traps_the_call_only() {
    hostile("panicky", "trap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_an_ungranted_topic_is_denied_and_audited() {
    let host = TestHost::with_guests(&["good", "sneaky-publish"]).await;
    let mut secret = host.subscribe("secret.>");
    run_beside_good(&host, "test.sneaky-publish", 3).await;
    eventually("three calls", WAIT, async || {
        host.plugin_view("sneaky-publish").await["counters"]["calls"].as_u64().unwrap() >= 3
    })
    .await;
    let view = host.plugin_view("sneaky-publish").await;
    assert_eq!(view["counters"]["denials"], 3, "{view}");
    assert_eq!(view["counters"]["guest_errors"], 3, "the plugin saw `denied` and returned it: {view}");
    assert_eq!(view["health"]["state"], "running", "a denial is the plugin's error, not a sandbox failure");
    assert!(secret.events.try_recv().is_err(), "nothing reached the secret topic");
    let audit = host.services.audit.find(Some("plugin:sneaky-publish"), Some("bus.publish"), 100).await.unwrap();
    assert_eq!(audit.len(), 3);
    assert!(audit.iter().all(|r| r.outcome == "denied" && r.subject == "secret.topic"), "{audit:?}");
    assert!(host.services.audit.verify().await.unwrap().is_none(), "audit chain intact");
    assert_healthy(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_of_an_ungranted_data_set_is_denied_and_audited() {
    let host = TestHost::with_guests(&["good", "sneaky-read"]).await;
    run_beside_good(&host, "test.sneaky-read", 3).await;
    eventually("three calls", WAIT, async || {
        host.plugin_view("sneaky-read").await["counters"]["calls"].as_u64().unwrap() >= 3
    })
    .await;
    let view = host.plugin_view("sneaky-read").await;
    assert_eq!(view["counters"]["denials"], 3, "{view}");
    let audit = host.services.audit.find(Some("plugin:sneaky-read"), Some("data.get"), 100).await.unwrap();
    assert_eq!(audit.len(), 3);
    assert!(audit.iter().all(|r| r.outcome == "denied" && r.subject == "vulnerable-residents"), "{audit:?}");
    assert_healthy(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_reads_a_shared_data_set_and_is_refused_a_private_one_it_was_granted() {
    let host = TestHost::with_guests(&["good", "reader"]).await;
    let route = serde_json::json!({"vehicle": "苏A12345", "corridor": [[118.78, 32.04], [118.80, 32.05]], "width_m": 50});
    let host_writer = yiwang::data::Writer { actor: "host", scope: &yiwang::identity::Scope::All };
    host.services.data.put("hazmat-routes", "苏A12345", &route.to_string(), host_writer).await.unwrap();
    let resident = serde_json::json!({"name": "张某", "address": "长江路 1 号"});
    host.services.data.put("vulnerable-residents", "r1", &resident.to_string(), host_writer).await.unwrap();
    let mut results = host.subscribe("test.read.result");

    host.publish("test.read", serde_json::json!({"dataset": "hazmat-routes", "key": "苏A12345"})).await;
    let got = collect(&mut results.events, 1, WAIT).await;
    let shared: serde_json::Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(shared["outcome"], "found", "{shared}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(shared["value"].as_str().unwrap()).unwrap(), route);
    assert_eq!(shared["count"], 1);

    host.publish("test.read", serde_json::json!({"dataset": "vulnerable-residents", "key": "r1"})).await;
    let got = collect(&mut results.events, 1, WAIT).await;
    let private: serde_json::Value = serde_json::from_str(&got[0].payload).unwrap();
    let outcome = private["outcome"].as_str().unwrap();
    assert!(outcome.starts_with("denied: ") && outcome.contains("zongzhi"), "{private}");
    let audit = host.services.audit.find(Some("plugin:reader"), Some("data.get"), 100).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!((audit[0].outcome.as_str(), audit[0].subject.as_str()), ("denied", "vulnerable-residents"));
    assert_healthy(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_flood_is_rate_limited() {
    let host = TestHost::with_guests(&["good", "flood"]).await;
    let mut out = host.subscribe("flood.out");
    run_beside_good(&host, "test.flood", 2).await;
    eventually("flood handled twice", WAIT, async || {
        host.plugin_view("flood").await["counters"]["calls"].as_u64().unwrap() >= 2
    })
    .await;
    let view = host.plugin_view("flood").await;
    let limited = view["counters"]["rate_limited_by"]["publish"].as_u64().unwrap();
    assert_eq!(view["counters"]["rate_limited"].as_u64().unwrap(), limited, "only the publish limit was met: {view}");
    let mut delivered = 0u64;
    while out.events.try_recv().is_ok() {
        delivered += 1;
    }
    // 2 × 100,000 attempts against 1,000/s with a burst of 1,000.
    assert_eq!(limited + delivered, 200_000, "every attempt was either delivered or refused: {view}");
    assert!(delivered >= 1_000, "the burst got through: {delivered}");
    assert!(delivered < 20_000, "the limit held: {delivered} delivered");
    assert_healthy(&host).await;
}

/// What `snoop` reached, with its manifest edited by `grant`.
async fn snoop(grant: fn(String) -> String) -> (TestHost, Value) {
    let host = TestHost::with_guests(&[]).await;
    host.load_guest("snoop", grant).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut out = host.subscribe("test.snooped");
    host.publish("test.snoop", json!({ "connect": listener.local_addr().unwrap().to_string() })).await;
    let report = collect(&mut out.events, 1, WAIT).await;
    let report: Value = serde_json::from_str(&report[0].payload).unwrap();
    (host, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_environment_files_or_network_unless_granted() {
    let (host, report) = snoop(|m| m).await;
    assert_eq!(report["env"], json!([]), "no environment: {report}");
    assert!(report["root"]["error"].is_string(), "no filesystem: {report}");
    assert!(report["data"]["error"].is_string(), "no filesystem: {report}");
    assert!(report["net"]["error"].is_string(), "no network: {report}");
    assert_eq!(host.plugin_view("snoop").await["counters"]["guest_errors"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_environment_files_and_network_are_reachable() {
    let (host, report) = snoop(|m| {
        format!("{m}\n[grants.wasi]\nenv = {{ CITY = \"南京\" }}\nfilesystem = true\nnetwork = true\n")
    })
    .await;
    assert_eq!(report["env"], json!([["CITY", "南京"]]), "{report}");
    assert_eq!(report["data"]["ok"], "written", "{report}");
    assert_eq!(report["net"]["ok"], "connected", "{report}");
    let written = host.dir.path().join("data/plugin-files/snoop/probe.txt");
    assert_eq!(std::fs::read_to_string(written).unwrap(), "hello", "the plugin's own folder, on the host");
}

/// Every event on `sub` so far and within a short pause after, from `source`.
async fn drain_from(sub: &mut yiwang::bus::Subscription, source: &str) -> usize {
    let mut n = 0;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(300), sub.events.recv()).await {
        n += usize::from(e.source == source);
    }
    n
}

/// `greedy` (cases 3, warnings 3, messages 2 per minute) tries far more in one
/// call: the first ones succeed, the rest get `limit`; the refusals are
/// counted per limit, audited once, and `good` beside it does not notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_warnings_and_messages_past_their_rate_limits_get_limit() {
    let host = TestHost::with_guests(&["good", "greedy"]).await;
    host.load_test_city().await;
    let mut results = host.subscribe("greedy.result");
    let mut warnings = host.subscribe("warning.>");
    let mut messages = host.subscribe("message.sent");

    host.publish("test.greedy", json!({ "cases": 20, "messages": 10, "returned": 8 })).await;
    let got = collect(&mut results.events, 1, WAIT).await;
    let first: Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(first["cases"], json!({ "ok": 3, "limited": 17, "other": null }), "{first}");
    assert_eq!(first["messages"], json!({ "ok": 2, "limited": 8, "other": null }), "{first}");
    eventually("the first call over", WAIT, async || {
        host.plugin_view("greedy").await["counters"]["calls"].as_u64().unwrap() >= 1
    })
    .await;
    // The warnings `evaluate` returned: 3 stored, 5 refused.
    assert_eq!(drain_from(&mut warnings, "plugin:greedy").await, 3);
    assert_eq!(drain_from(&mut messages, "plugin:greedy").await, 2);

    // The warnings' bucket is empty: a raise now is refused too.
    host.publish("test.greedy", json!({ "warnings": 4 })).await;
    let got = collect(&mut results.events, 1, WAIT).await;
    let second: Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(second["warnings"], json!({ "ok": 0, "limited": 4, "other": null }), "{second}");
    assert_eq!(second["cases"], json!({ "ok": 0, "limited": 0, "other": null }), "{second}");
    assert_eq!(drain_from(&mut warnings, "plugin:greedy").await, 0, "nothing got past the limit");

    // `good` answers every event meanwhile; greedy asking for nothing is not refused.
    run_beside_good(&host, "test.greedy", 3).await;
    eventually("greedy called five times", WAIT, async || {
        host.plugin_view("greedy").await["counters"]["calls"].as_u64().unwrap() >= 5
    })
    .await;
    let view = host.plugin_view("greedy").await;
    let counters = &view["counters"];
    assert_eq!(
        counters["rate_limited_by"],
        json!({ "publish": 0, "cases": 17, "warnings": 9, "messages": 8 }),
        "{view}"
    );
    assert_eq!(counters["rate_limited"], 34, "{view}");
    assert_eq!(counters["guest_errors"], 1, "the call whose returned warnings were refused: {view}");
    assert_eq!(counters["failures"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>(), 0, "{view}");
    assert_eq!(view["health"]["state"], "running", "a limit is the plugin's error, not a failure: {view}");
    assert_eq!(
        (&view["limits"]["cases_per_minute"], &view["limits"]["warnings_per_minute"], &view["limits"]["messages_per_minute"]),
        (&json!(3), &json!(3), &json!(2)),
        "{view}"
    );
    let good = host.plugin_view("good").await;
    assert_eq!(good["counters"]["rate_limited"], 0, "{good}");
    assert_eq!(good["limits"]["cases_per_minute"], 6000, "the default: {good}");
    assert_eq!(good["limits"]["messages_per_minute"], 120_000, "the default: {good}");

    // Audited, once per limit: the repeats within the minute are only counted.
    for (action, key) in [
        ("cases.open-case", "cases-per-minute"),
        ("cases.raise-warning", "warnings-per-minute"),
        ("messaging.send", "messages-per-minute"),
    ] {
        let audit = host.services.audit.find(Some("plugin:greedy"), Some(action), 100).await.unwrap();
        let limited: Vec<_> = audit.iter().filter(|r| r.outcome == "limited").collect();
        assert_eq!(limited.len(), 1, "{action}: {audit:?}");
        assert_eq!(limited[0].subject, key, "{action}: {audit:?}");
        assert!(limited[0].detail.contains("rate limit of"), "{action}: {audit:?}");
    }
    let opened = host.services.audit.find(Some("plugin:greedy"), Some("cases.open-case"), 100).await.unwrap();
    assert_eq!(opened.iter().filter(|r| r.outcome == "ok").count(), 3, "{opened:?}");
    assert!(host.services.audit.verify().await.unwrap().is_none(), "audit chain intact");

    let (_, metrics) = host.get_text("/metrics").await;
    for line in [
        "yiwang_plugin_rate_limited_total{plugin=\"greedy\",limit=\"cases\"} 17",
        "yiwang_plugin_rate_limited_total{plugin=\"greedy\",limit=\"warnings\"} 9",
        "yiwang_plugin_rate_limited_total{plugin=\"greedy\",limit=\"messages\"} 8",
    ] {
        assert!(metrics.contains(line), "metrics lack `{line}`");
    }
    assert_healthy(&host).await;
}
