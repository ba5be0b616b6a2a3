//! The plugin path into cases means what the HTTP path means: a case a plugin
//! opens on a channel is stored on that channel (with that channel's rules),
//! and evidence a plugin adds is the case's evidence (`case_evidence`), as a
//! photo linked over HTTP is.

use std::time::Duration;

use serde_json::{Value, json};
use yiwang::bus::{Event, GeoPoint};
use yiwang::media::Upload;
use yiwang_tests::{TestHost, collect};

const WAIT: Duration = Duration::from_secs(60);

/// Publish `payload` on `topic` at `at` and wait for the filer's answer.
async fn ask(host: &TestHost, topic: &str, payload: Value, at: Option<GeoPoint>) -> Value {
    let mut answers = host.subscribe("test.filed");
    let event = Event {
        id: yiwang::error::new_id(),
        topic: topic.into(),
        source: "host:test".into(),
        time: host.services.clock.now_ms(),
        location: at,
        payload: payload.to_string(),
    };
    host.services.bus.publish(event).await.unwrap();
    let got = collect(&mut answers.events, 1, WAIT).await;
    serde_json::from_str(&got[0].payload).unwrap()
}

/// A photo in the media store, uploaded by `who`; its digest.
async fn photo(host: &TestHost, who: &str, name: &str) -> String {
    let upload = Upload { content_type: "image/png", filename: Some(name), uploaded_by: who };
    // The same picture under another name is the same blob; vary the bytes.
    let mut bytes = yiwang::demo::PHOTO.to_vec();
    bytes.extend_from_slice(name.as_bytes());
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))]);
    host.services.media.store(&upload, body).await.unwrap().info().sha256.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_s_channel_and_evidence_are_kept_as_they_are() {
    let host = TestHost::with_guests(&["filer"]).await;
    host.load_test_city().await;
    let at = Some(GeoPoint { lat: 32.05, lon: 118.79 });

    // A 随手拍 opened by a plugin is a snapshot case, not a department one.
    let first = photo(&host, "plugin:filer", "井盖.png").await;
    let file = json!({ "channel": "snapshot", "category": "010101", "title": "井盖缺失", "evidence": [first] });
    let answer = ask(&host, "test.file", file, at).await;
    let case = answer["case"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned();
    let (status, view) = host.call("GET", &format!("/api/cases/{case}"), Some(&host.token), None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["channel"], "snapshot", "{view}");

    // And a snapshot keeps a snapshot's rules: a location and a photo.
    let bare = json!({ "channel": "snapshot", "category": "010101", "title": "井盖缺失", "evidence": [] });
    let answer = ask(&host, "test.file", bare, at).await;
    assert!(answer["error"].as_str().unwrap().contains("随手拍"), "{answer}");

    // A hotline case is a hotline case: it needs the caller a plugin cannot name.
    let hotline = json!({ "channel": "hotline", "category": "010101", "title": "市民来电反映井盖缺失" });
    let answer = ask(&host, "test.file", hotline, at).await;
    assert!(answer["error"].as_str().unwrap().contains("caller"), "{answer}");

    // Evidence added by the plugin is the case's evidence, listed with the rest.
    let second = photo(&host, "plugin:filer", "现场.png").await;
    let answer = ask(&host, "test.evidence", json!({ "case": case, "digest": second }), None).await;
    assert_eq!(answer["case"], json!(case), "{answer}");
    let (status, listed) = host.call("GET", &format!("/api/cases/{case}/evidence"), Some(&host.token), None).await;
    assert_eq!(status, 200, "{listed}");
    let digests: Vec<&str> = listed["evidence"].as_array().unwrap().iter().map(|e| e["sha256"].as_str().unwrap()).collect();
    assert!(digests.contains(&second.as_str()), "{listed}");
    assert!(listed["evidence"].as_array().unwrap().iter().any(|e| e["added_by"] == "plugin:filer"), "{listed}");

    // A digest the store does not hold is not evidence.
    let unknown = "0".repeat(64);
    let answer = ask(&host, "test.evidence", json!({ "case": case, "digest": unknown }), None).await;
    assert!(answer["error"].as_str().unwrap().contains("no media"), "{answer}");
}

/// The CPU deadline counts the plugin's own execution: a plugin whose host
/// call waits on a busy database for five times its CPU budget is not failed
/// for CPU (the wall-clock limit still bounds the call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_waiting_on_a_slow_database_is_not_failed_for_cpu() {
    let host = TestHost::with_guests(&["filer"]).await;
    host.load_test_city().await;
    let evidence = photo(&host, "plugin:filer", "慢.png").await;
    let mut answers = host.subscribe("test.filed");
    // The event is kept for the filer while it is disabled…
    host.runtime.set_enabled("filer", false, "test").await.unwrap();
    let file = json!({ "channel": "snapshot", "category": "010101", "title": "井盖缺失", "evidence": [evidence] });
    let event = Event {
        id: yiwang::error::new_id(),
        topic: "test.file".into(),
        source: "host:test".into(),
        time: host.services.clock.now_ms(),
        location: Some(GeoPoint { lat: 32.05, lon: 118.79 }),
        payload: file.to_string(),
    };
    host.services.bus.publish(event).await.unwrap();
    // …then another writer holds the database for 500 ms (the filer has
    // 100 ms of CPU and 1,000 ms of wall clock), and the filer is enabled:
    // the case it opens waits for the database.
    let blocker = host.services.db.begin_write().await.unwrap();
    let runtime = host.runtime.clone();
    let enable = tokio::spawn(async move { runtime.set_enabled("filer", true, "test").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    blocker.rollback().await.unwrap();
    enable.await.unwrap().unwrap();
    let got = collect(&mut answers.events, 1, WAIT).await;
    let answer: Value = serde_json::from_str(&got[0].payload).unwrap();
    assert!(answer["case"].is_string(), "the case was opened once the database was free: {answer}");
    let view = host.plugin_view("filer").await;
    assert_eq!(view["counters"]["failures"]["cpu"], 0, "{view}");
    assert_eq!(view["counters"]["calls"], 1, "{view}");
}
