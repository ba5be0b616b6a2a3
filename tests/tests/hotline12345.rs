//! The bundled `hotline12345` plugin in the real host: a hotline call is classified
//! and remembered; its case goes through the lifecycle to closure; a second call
//! about the same problem at the same address (written differently) soon after is a
//! 假性整改 (false rectification): the plugin opens a supervision case routed to the
//! department that closed the first one, and publishes `hotline.false-rectification`.

use std::time::Duration;

use serde_json::{Value, json};
use yiwang::identity::Role;
use yiwang_tests::{TestHost, TestOptions, collect, eventually};

const WAIT: Duration = Duration::from_secs(60);
const DATASET: &str = "hotline-cases";


/// A hotline operator enters a call about 占道经营 at `address`; the case id.
async fn call(host: &TestHost, operator: &str, caller: (&str, &str), address: &str, description: &str) -> String {
    let body = json!({
        "channel": "hotline",
        "category_code": "020501",
        "description": description,
        "address": address,
        "location": { "lat": 32.0451, "lon": 118.7851 },
        "caller": { "name": caller.0, "phone": caller.1 },
    });
    let (status, intake) = host.call("POST", "/api/reports", Some(operator), Some(body)).await;
    assert_eq!(status, 201, "{intake}");
    assert_eq!(intake["joined"], json!(false), "{intake}");
    intake["case"].as_str().unwrap().to_owned()
}

async fn ok(host: &TestHost, case: &str, token: &str, body: Value) -> Value {
    let (status, view) = host.call("POST", &format!("/api/cases/{case}/transitions"), Some(token), Some(body.clone())).await;
    assert_eq!(status, 200, "{body}: {view}");
    view
}

/// The plugin's record of `case`, once it exists.
async fn remembered(host: &TestHost, case: &str) -> Option<Value> {
    let record = host.services.data.get(DATASET, case).await.unwrap()?;
    Some(serde_json::from_str(&record.value).unwrap())
}

/// Events on the subscription until one on `topic` comes; its payload.
async fn next_on(events: &mut yiwang::bus::Subscription, topic: &str) -> Value {
    for _ in 0..10 {
        let got = collect(&mut events.events, 1, WAIT).await;
        if got[0].topic == topic {
            assert_eq!(got[0].source, "plugin:hotline12345");
            return serde_json::from_str(&got[0].payload).unwrap();
        }
    }
    panic!("no event on `{topic}`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_problem_back_at_a_closed_case_s_address_opens_a_supervision_case() {
    let host = TestHost::start(TestOptions { bundled: true, ..Default::default() }).await;
    let operator = host.staff("op.12345", "hotline12345", Role::Dispatcher).await;
    let dispatcher = host.staff("disp", "command-center", Role::Dispatcher).await;
    let cg = host.staff("cg", "chengguan", Role::Handler).await;
    let grid = host.staff("grid", "command-center", Role::GridWorker).await;
    let supervisor = host.staff("sup", "command-center", Role::Supervisor).await;
    let mut events = host.subscribe("hotline.>");

    // The first call: classified to 城管 and remembered.
    let first = call(&host, &operator, ("王女士", "13900001111"), "中山路88号", "中山路88号门口有人占道摆摊卖水果，流动摊贩把人行道都堵了").await;
    let classified = next_on(&mut events, "hotline.classified").await;
    assert_eq!((&classified["case"], &classified["category_code"], &classified["department"]), (&json!(first), &json!("020501"), &json!("chengguan")), "{classified}");
    eventually("the first call is remembered", WAIT, async || remembered(&host, &first).await.is_some()).await;

    // Through the lifecycle to closure, by 城管.
    ok(&host, &first, &dispatcher, json!({ "action": "accept" })).await;
    ok(&host, &first, &dispatcher, json!({ "action": "register" })).await;
    ok(&host, &first, &dispatcher, json!({ "action": "dispatch", "department": "chengguan" })).await;
    ok(&host, &first, &cg, json!({ "action": "start" })).await;
    ok(&host, &first, &cg, json!({ "action": "dispose" })).await;
    ok(&host, &first, &dispatcher, json!({ "action": "send-to-check" })).await;
    ok(&host, &first, &grid, json!({ "action": "pass-check" })).await;
    let view = ok(&host, &first, &supervisor, json!({ "action": "close" })).await;
    assert_eq!((&view["stage"], &view["department"]), (&json!("closed"), &json!("chengguan")));
    eventually("the closure is remembered", WAIT, async || {
        remembered(&host, &first).await.is_some_and(|r| r["status"] == "closed" && r["department"] == "chengguan")
    })
    .await;

    // Another caller, days later in real life, minutes here: the same stall at the same
    // address, written with spaces.
    let second = call(&host, &operator, ("李先生", "13800002222"), "中山路 88 号", "中山路88号门口又有人摆摊占道经营，还是堵人行道").await;
    assert_ne!(second, first, "the first case is closed: the call opens a new one");
    let found = next_on(&mut events, "hotline.false-rectification").await;
    assert_eq!(
        (&found["case"], &found["closed_case"], &found["department"], &found["category_code"]),
        (&json!(second), &json!(first), &json!("chengguan"), &json!("020501")),
        "{found}"
    );
    assert!(found["days_since_close"].as_f64().unwrap() < 1.0, "{found}");
    let supervision = found["supervision_case"].as_str().unwrap().to_owned();

    // The supervision case: category 其他, opened by the plugin, routed to 城管 at district level.
    let (status, view) = host.call("GET", &format!("/api/cases/{supervision}"), Some(&dispatcher), None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!((&view["category_code"], &view["channel"]), (&json!("020604"), &json!("department")), "{view}");
    let title = view["title"].as_str().unwrap();
    assert!(title.starts_with("假性整改督办：中山路 88 号") && title.contains("占道经营"), "{title}");
    let description = view["description"].as_str().unwrap();
    assert!(description.contains(&first) && description.contains("chengguan") && description.contains(&second), "{description}");
    eventually("the supervision route is suggested", WAIT, async || {
        let (_, view) = host.call("GET", &format!("/api/cases/{supervision}"), Some(&dispatcher), None).await;
        view["suggestions"].as_array().is_some_and(|s| !s.is_empty())
    })
    .await;
    let (_, view) = host.call("GET", &format!("/api/cases/{supervision}"), Some(&dispatcher), None).await;
    let s = &view["suggestions"][0];
    assert_eq!((&s["plugin"], &s["department"], &s["level"], &s["outcome"]), (&json!("hotline12345"), &json!("chengguan"), &json!("district"), &json!("pending")), "{s}");

    // The closed case's record says which new case it was supervised for.
    let record = remembered(&host, &first).await.unwrap();
    assert_eq!(record["supervisions"][&second], json!(supervision), "{record}");
    let view = host.plugin_view("hotline12345").await;
    assert_eq!(view["counters"]["denials"], json!(0), "{view}");
}
