//! The bundled `chengguan` plugin inside the real host: a 占道经营 report in a
//! grid gets a route suggestion to 城管 at community level and a message to the
//! patrol team of the grid's street; bin-fill readings taken in through the data
//! foundation's ingest raise one warning when the bin crosses its full level.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yiwang::bus::Event;
use yiwang::identity::{AccountKind, NewUser, Role};
use yiwang_tests::{TestHost, TestOptions};

const WAIT: Duration = Duration::from_secs(60);
const PASSWORD: &str = "城管-test-password";
/// 长江路社区第一网格 of the test city, in 梅园新村街道 (320102001).
const GRID: &str = "32010200100101";
const STREET: &str = "320102001";

/// A host with the bundled plugins and the test city's areas loaded.
async fn city_host() -> TestHost {
    let host = TestHost::start(TestOptions {
        bundled: true,
        ..Default::default()
    })
    .await;
    host.load_test_city().await;
    host
}

/// The next event on `events` that `want` accepts, or a panic after `WAIT`.
async fn next_matching(
    events: &mut tokio::sync::mpsc::Receiver<std::sync::Arc<Event>>,
    what: &str,
    want: impl Fn(&Event) -> bool,
) -> std::sync::Arc<Event> {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(e)) if want(e.as_ref()) => return e,
            Ok(Some(_)) => {}
            Ok(None) => panic!("subscription closed while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_street_vending_report_is_routed_to_the_patrol_team_of_its_street() {
    let host = city_host().await;
    let now = host.services.clock.now_ms();
    let worker = NewUser {
        id: "grid".into(),
        username: "grid".into(),
        display_name: "网格员".into(),
        password: PASSWORD.into(),
        department: Some("chengguan".into()),
        org_unit: "320100".into(),
        kind: AccountKind::Staff,
        roles: vec![(Role::GridWorker, "320100".into())],
    };
    host.services
        .identity
        .create_user(&worker, now)
        .await
        .unwrap();
    let token = host
        .services
        .identity
        .login("grid", PASSWORD, now)
        .await
        .unwrap()
        .0
        .token;

    let mut suggested = host.subscribe("case.route-suggested");
    let mut messages = host.subscribe("message.sent");
    let report = json!({
        "channel": "patrol",
        "category_code": "020501",
        "title": "人行道占道经营",
        "description": "长江路人行道上有水果摊占道经营，影响行人通行",
        "address": "长江路 12 号",
        "location": { "lat": 32.042, "lon": 118.785 },
    });
    let (status, intake) = host
        .call("POST", "/api/reports", Some(&token), Some(report))
        .await;
    assert_eq!(status, 201, "{intake}");
    let case = intake["case"].as_str().unwrap().to_owned();

    let got = next_matching(&mut suggested.events, "chengguan's route suggestion", |e| {
        e.source == "plugin:chengguan"
    })
    .await;
    let payload: Value = serde_json::from_str(&got.payload).unwrap();
    assert_eq!(payload["case"], json!(case), "{payload}");
    assert_eq!(
        (&payload["department"], &payload["level"]),
        (&json!("chengguan"), &json!("community")),
        "{payload}"
    );
    let reason = payload["reason"].as_str().unwrap();
    assert!(
        reason.contains("占道经营") && reason.contains(GRID),
        "the case lies in the grid: {payload}"
    );

    let got = next_matching(&mut messages.events, "chengguan's message", |e| {
        e.source == "plugin:chengguan"
    })
    .await;
    let payload: Value = serde_json::from_str(&got.payload).unwrap();
    assert_eq!(
        payload["to"],
        json!({ "kind": "role", "org_unit": STREET, "role": "handler" }),
        "{payload}"
    );
    assert!(
        payload["subject"].as_str().unwrap().contains("占道经营"),
        "{payload}"
    );

    let (status, view) = host.get_json(&format!("/api/cases/{case}")).await;
    assert_eq!(status, 200, "{view}");
    let s = &view["suggestions"][0];
    assert_eq!(
        (&s["plugin"], &s["department"], &s["level"]),
        (
            &json!("chengguan"),
            &json!("chengguan"),
            &json!("community")
        ),
        "{view}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingested_bin_readings_warn_once_when_the_bin_is_full() {
    let host = city_host().await;
    let mut warnings = host.subscribe("warning.>");
    let sensor = json!({
        "id": "bin-cjl-01", "kind": "bin-fill", "unit": "%", "lat": 32.0431, "lon": 118.7862, "department": "chengguan"
    });
    let (status, body) = host
        .call("POST", "/api/sensors", Some(&host.token), Some(sensor))
        .await;
    assert_eq!(status, 201, "{body}");
    let now = host.services.clock.now_ms();
    // 50 %: not full; 93 %: crosses the full level; 96 %: still full, no second
    // warning; 140 %: not a plausible fill, skipped.
    let readings: Vec<Value> = [50.0, 93.0, 96.0, 140.0]
        .iter()
        .enumerate()
        .map(|(i, value)| json!({ "sensor": "bin-cjl-01", "time": now + i as i64 * 60_000, "value": value }))
        .collect();
    let (status, body) = host
        .call(
            "POST",
            "/api/readings",
            Some(&host.token),
            Some(json!({ "readings": readings })),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let got = next_matching(&mut warnings.events, "chengguan's bin warning", |e| {
        e.source == "plugin:chengguan"
    })
    .await;
    assert_eq!(got.topic, "warning.env");
    let body: Value = serde_json::from_str(&got.payload).unwrap();
    assert_eq!(
        (&body["info"]["severity"], &body["info"]["certainty"]),
        (&json!("Moderate"), &json!("Observed")),
        "{body}"
    );
    let headline = body["info"]["headline"].as_str().unwrap();
    assert!(
        headline.contains("bin-cjl-01") && headline.contains("93%"),
        "{body}"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(e) = warnings.events.try_recv() {
        assert_ne!(
            e.source, "plugin:chengguan",
            "one warning per crossing: {}",
            e.payload
        );
    }
}
