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

/// The bundled `yingji` in the real host: readings of a gas detector taken in
/// through the data foundation's ingest raise a warning at the high alarm; a
/// reading below the alarms, or beyond 100 %LEL (a faulty detector), raises none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_yingji_warns_of_combustible_gas_from_ingested_readings() {
    let host = yiwang_tests::TestHost::start(yiwang_tests::TestOptions { bundled: true, ..Default::default() }).await;
    let mut warnings = host.subscribe("warning.>");
    let sensor = json!({
        "id": "gas-xjk-07", "kind": "gas", "unit": "%LEL", "lat": 32.0416, "lon": 118.7841, "department": "yingji"
    });
    let (status, body) = host.call("POST", "/api/sensors", Some(&host.token), Some(sensor)).await;
    assert_eq!(status, 201, "{body}");
    let now = host.services.clock.now_ms();
    let readings: Vec<Value> = [3.0, 140.0, 31.0]
        .iter()
        .enumerate()
        .map(|(i, value)| json!({ "sensor": "gas-xjk-07", "time": now + i as i64 * 1000, "value": value }))
        .collect();
    let (status, body) = host.call("POST", "/api/readings", Some(&host.token), Some(json!({ "readings": readings }))).await;
    assert_eq!(status, 200, "{body}");
    let got = collect(&mut warnings.events, 1, Duration::from_secs(30)).await;
    assert_eq!((got[0].topic.as_str(), got[0].source.as_str()), ("warning.safety", "plugin:yingji"));
    let body: Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(body["info"]["severity"], "Severe", "{body}");
    assert!(body["info"]["headline"].as_str().unwrap().contains("31.0"), "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(warnings.events.try_recv().is_err(), "3 %LEL is below the alarms and 140 %LEL is not plausible");
}

/// The bundled `yingji` in the real host follows a hazmat vehicle from GPS
/// fixes posted with their positions: it warns once when the vehicle leaves
/// its approved corridor, and a fix in the sea or one older than the last is
/// skipped, never warned on. The warning is answered with an emergency case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_yingji_follows_a_hazmat_vehicle_from_positioned_readings() {
    let host = yiwang_tests::TestHost::start(yiwang_tests::TestOptions { bundled: true, ..Default::default() }).await;
    let mut warnings = host.subscribe("warning.>");
    let mut responses = host.subscribe("yingji.response");
    let sensor = json!({
        "id": "gps-a-d1234", "kind": "vehicle-gps", "unit": "deg", "lat": 32.005, "lon": 118.705, "department": "yingji"
    });
    let (status, body) = host.call("POST", "/api/sensors", Some(&host.token), Some(sensor)).await;
    assert_eq!(status, 201, "{body}");
    let route = json!({
        "vehicle": "苏A·D1234危", "sensor": "gps-a-d1234", "cargo": "液氯",
        "corridor": [[118.70, 32.005], [118.86, 32.005]], "width_m": 400,
    });
    let writer = yiwang::data::Writer { actor: "user:ops", scope: &yiwang::identity::Scope::All };
    host.services.data.put("hazmat-routes", "苏A·D1234危", &route.to_string(), writer).await.unwrap();

    let now = host.services.clock.now_ms();
    let fix = |minute: i64, lat: f64, lon: f64| {
        json!({ "sensor": "gps-a-d1234", "time": now + minute * 60_000, "value": 90.0, "lat": lat, "lon": lon })
    };
    // On the road; in the East China Sea (a bad fix); on the road; 2 km north
    // of it; a fix older than the last, off the road again.
    let readings = [fix(0, 32.005, 118.71), fix(1, 30.8, 123.9), fix(2, 32.005, 118.73), fix(4, 32.023, 118.74), fix(3, 32.04, 118.74)];
    let (status, body) = host.call("POST", "/api/readings", Some(&host.token), Some(json!({ "readings": readings }))).await;
    assert_eq!(status, 200, "{body}");
    let got = collect(&mut warnings.events, 1, Duration::from_secs(30)).await;
    assert_eq!((got[0].topic.as_str(), got[0].source.as_str()), ("warning.transport", "plugin:yingji"));
    let body: Value = serde_json::from_str(&got[0].payload).unwrap();
    assert!(body["info"]["headline"].as_str().unwrap().contains("偏离核准路线"), "{body}");
    assert!(body["info"]["parameters"].as_array().unwrap().contains(&json!(["rule", "off-route"])), "{body}");
    assert!(host.runtime.settle(Duration::from_secs(30)).await);
    assert!(warnings.events.try_recv().is_err(), "the fix in the sea and the late fix raise nothing");
    // The warning was answered with an emergency case in 危化品运输异常.
    let answered = collect(&mut responses.events, 1, Duration::from_secs(30)).await;
    let response: Value = serde_json::from_str(&answered[0].payload).unwrap();
    assert_eq!(response["category_code"], "020403", "{response}");
    let case = response["case"].as_str().unwrap();
    let view = host.services.cases.view(case).await.unwrap().unwrap();
    assert_eq!(view.channel, "warning");
    // A half position is refused by the host, naming the field.
    let half = json!({ "sensor": "gps-a-d1234", "time": now + 9 * 60_000, "value": 90.0, "lat": 32.0 });
    let (status, body) = host.call("POST", "/api/readings", Some(&host.token), Some(json!({ "readings": [half] }))).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("readings[0].lon: missing"), "{body}");
}
