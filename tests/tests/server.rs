//! The server's operator surface over real HTTP: health, plugin list, metrics,
//! and the one error shape.

use std::time::Duration;

use serde_json::json;
use yiwang_tests::{TestHost, TestOptions, collect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_plugins_and_metrics() {
    let host = TestHost::start(TestOptions { bundled: true, guests: vec!["good"], ..TestOptions::default() }).await;
    let (status, health) = host.get_json("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ready");

    let mut ok = host.subscribe("test.ok");
    host.publish("test.in", json!({ "hello": "城管" })).await;
    collect(&mut ok.events, 1, Duration::from_secs(30)).await;

    let (status, list) = host.get_json("/api/plugins").await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    let bundled = yiwang::bundled::BUNDLED.len();
    assert_eq!(list.len(), bundled + 1, "{list:?}");
    let good = list.iter().find(|p| p["name"] == "good").unwrap();
    assert_eq!(good["version"], "0.1.0");
    assert_eq!(good["department"], "chengguan");
    assert_eq!(good["world"], "yiwang:gov/event-handler@0.1.0");
    assert_eq!(good["grants"]["publish"], json!(["test.ok"]));
    assert_eq!(good["limits"]["memory_mib"], 64);
    assert_eq!(good["health"]["state"], "running");
    assert_eq!(good["counters"]["calls"], 1);
    assert_eq!(good["digest"].as_str().unwrap().len(), 64);
    for b in yiwang::bundled::BUNDLED {
        assert!(list.iter().any(|p| p["name"] == b.name), "bundled `{}` is loaded", b.name);
    }

    let (status, metrics) = host.get_text("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "yiwang_plugin_calls_total{plugin=\"good\"} 1",
        "yiwang_plugin_failures_total{plugin=\"good\",kind=\"trap\"} 0",
        "yiwang_plugin_quarantines_total{plugin=\"good\"} 0",
        "yiwang_plugin_call_latency_seconds_count{plugin=\"good\"} 1",
        "yiwang_bus_queued{subscriber=\"good\"} 0",
    ] {
        assert!(metrics.contains(line), "metrics lack `{line}`:\n{metrics}");
    }
    assert!(metrics.trim_end().ends_with("# EOF"));

    let (status, err) = host.get_json("/api/plugins/nope").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "not-found");
    assert!(err["error"]["message"].as_str().unwrap().contains("nope"));
    let (status, err) = host.get_json("/no/such/route").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "not-found");
}
