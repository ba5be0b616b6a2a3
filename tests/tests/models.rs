//! A warning model inside the real host: its warnings are stored and published.

use std::time::Duration;

use serde_json::{Value, json};
use yiwang::bus::{Event, GeoPoint};
use yiwang_tests::{TestHost, collect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warner_raises_a_cap_warning_above_its_threshold() {
    let host = TestHost::with_guests(&["warner"]).await;
    let mut warnings = host.subscribe("warning.>");
    for (i, value) in [0.1, 4.8].into_iter().enumerate() {
        host.services
            .bus
            .publish(Event {
                id: format!("r{i}"),
                topic: "iot.reading.water-level".into(),
                source: "host:test".into(),
                time: 0,
                location: Some(GeoPoint { lat: 32.05, lon: 118.78 }),
                payload: json!({ "sensor": "wl-1", "value": value, "unit": "m" }).to_string(),
            })
            .await
            .unwrap();
    }
    let got = collect(&mut warnings.events, 1, Duration::from_secs(30)).await;
    assert_eq!(got[0].topic, "warning.met");
    assert_eq!(got[0].source, "plugin:warner");
    let body: Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(body["info"]["severity"], "Severe");
    assert!(body["info"]["headline"].as_str().unwrap().contains("4.8"), "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(warnings.events.try_recv().is_err(), "0.1 m is below the threshold");
}
