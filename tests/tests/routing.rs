//! Route suggestions inside the real host: the `router` guest suggests a route
//! for each reported case its rules cover; a dispatcher sees the suggestion on
//! the case and in the manual queue, and accepts or overrides it with the
//! dispatch. Without the `route` grant the call is denied and audited.

use std::time::Duration;

use serde_json::{Value, json};
use yiwang::identity::Role;
use yiwang_tests::{TestHost, collect, eventually};

const WAIT: Duration = Duration::from_secs(60);


/// A grid worker reports a case of `category`; its id.
async fn report(host: &TestHost, patrol: &str, category: &str) -> String {
    let body = json!({ "channel": "patrol", "category_code": category, "description": "巡查发现工地夜间施工" });
    let (status, intake) = host.call("POST", "/api/reports", Some(patrol), Some(body)).await;
    assert_eq!(status, 201, "{intake}");
    intake["case"].as_str().unwrap().to_owned()
}

async fn step(host: &TestHost, case: &str, token: &str, body: Value) -> (u16, Value) {
    host.call("POST", &format!("/api/cases/{case}/transitions"), Some(token), Some(body)).await
}

async fn ok(host: &TestHost, case: &str, token: &str, body: Value) -> Value {
    let (status, view) = step(host, case, token, body.clone()).await;
    assert_eq!(status, 200, "{body}: {view}");
    view
}

async fn case_view(host: &TestHost, case: &str, token: &str) -> Value {
    let (status, view) = host.call("GET", &format!("/api/cases/{case}"), Some(token), None).await;
    assert_eq!(status, 200, "{view}");
    view
}

/// Report a case of `category` and wait for the router's suggestion on the bus;
/// the case id and the event's payload.
async fn reported_and_suggested(host: &TestHost, patrol: &str, category: &str) -> (String, Value) {
    let mut suggested = host.subscribe("case.route-suggested");
    let case = report(host, patrol, category).await;
    let got = collect(&mut suggested.events, 1, WAIT).await;
    assert_eq!(got[0].source, "plugin:router");
    let payload: Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(payload["case"], json!(case), "{payload}");
    // The router audits the suggestion after announcing it: let that write end
    // before the dispatcher's moves below, so they do not race it.
    eventually("the router's call ended", WAIT, async || {
        host.plugin_view("router").await["counters"]["calls"].as_u64().unwrap() >= 1
    })
    .await;
    (case, payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_accepts_the_router_s_suggestion() {
    let host = TestHost::with_guests(&["router"]).await;
    let patrol = host.staff("grid", "chengguan", Role::GridWorker).await;
    let dispatcher = host.staff("disp", "command-center", Role::Dispatcher).await;
    // 施工扰民: no routing rule covers it; the router's `0203` rule does.
    let (case, payload) = reported_and_suggested(&host, &patrol, "020301").await;
    assert_eq!((&payload["department"], &payload["level"], &payload["score"]), (&json!("housing"), &json!("district"), &json!(0.8)));
    let id = payload["suggestion"].as_str().unwrap().to_owned();

    let view = case_view(&host, &case, &dispatcher).await;
    assert_eq!(view["route"], Value::Null, "no routing rule: {view}");
    let s = &view["suggestions"][0];
    assert_eq!((&s["id"], &s["plugin"], &s["department"], &s["level"], &s["outcome"]), (&json!(id), &json!("router"), &json!("housing"), &json!("district"), &json!("pending")));
    assert!(s["reason"].as_str().unwrap().contains("0203"), "{s}");

    ok(&host, &case, &dispatcher, json!({ "action": "accept" })).await;
    ok(&host, &case, &dispatcher, json!({ "action": "register" })).await;
    let (status, queue) = host.call("GET", "/api/queues/manual", Some(&dispatcher), None).await;
    assert_eq!(status, 200, "{queue}");
    let queued = queue.as_array().unwrap().iter().find(|c| c["id"] == json!(case)).expect("the case waits in the manual queue");
    assert_eq!(queued["suggestions"][0]["id"], json!(id), "the queue shows the suggestion: {queued}");

    let view = ok(&host, &case, &dispatcher, json!({ "action": "dispatch", "suggestion": id, "reason": "同意" })).await;
    assert_eq!((&view["stage"], &view["department"], &view["level"]), (&json!("dispatched"), &json!("housing"), &json!("district")));
    let s = &view["suggestions"][0];
    assert_eq!((&s["outcome"], &s["decided_by"]), (&json!("accepted"), &json!("user:disp")), "{s}");
    let dispatch = view["transitions"].as_array().unwrap().last().unwrap();
    let reason = dispatch["reason"].as_str().unwrap();
    assert!(reason.starts_with("采纳插件 router 的路由建议") && reason.contains(&id) && reason.ends_with("：同意"), "{reason}");
    assert_eq!(dispatch["department"], "housing");

    let audit = host.services.audit.find(Some("plugin:router"), Some("cases.suggest-route"), 10).await.unwrap();
    assert_eq!(audit.iter().map(|r| (r.outcome.as_str(), r.subject.as_str())).collect::<Vec<_>>(), [("ok", case.as_str())]);
    let audit = host.services.audit.find(Some("user:disp"), Some("case.dispatch"), 10).await.unwrap();
    assert!(audit[0].detail.contains(&id), "the dispatch's audit record names the suggestion: {}", audit[0].detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_overrides_the_router_s_suggestion() {
    let host = TestHost::with_guests(&["router"]).await;
    let patrol = host.staff("grid", "chengguan", Role::GridWorker).await;
    let dispatcher = host.staff("disp", "command-center", Role::Dispatcher).await;
    // 违法建设: the router's longer `020302` rule sends it to 城管 at street level.
    let (case, payload) = reported_and_suggested(&host, &patrol, "020302").await;
    assert_eq!((&payload["department"], &payload["level"]), (&json!("chengguan"), &json!("street")));
    let id = payload["suggestion"].as_str().unwrap().to_owned();
    ok(&host, &case, &dispatcher, json!({ "action": "accept" })).await;
    ok(&host, &case, &dispatcher, json!({ "action": "register" })).await;

    let (status, body) = step(&host, &case, &dispatcher, json!({ "action": "dispatch", "suggestion": id, "department": "housing" })).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("suggestion: "), "{body}");
    let (status, body) = step(&host, &case, &dispatcher, json!({ "action": "dispatch", "suggestion": "not-a-suggestion" })).await;
    assert_eq!(status, 404, "{body}");

    let view = ok(&host, &case, &dispatcher, json!({ "action": "dispatch", "department": "housing", "reason": "属住建监管的在建工地" })).await;
    assert_eq!((&view["department"], &view["level"]), (&json!("housing"), &json!("district")));
    let s = &view["suggestions"][0];
    assert_eq!((&s["id"], &s["outcome"], &s["decided_by"]), (&json!(id), &json!("overridden"), &json!("user:disp")), "{s}");
    let dispatch = view["transitions"].as_array().unwrap().last().unwrap();
    assert_eq!(dispatch["reason"], "属住建监管的在建工地", "an override records the dispatcher's words only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_without_the_route_grant_is_denied_and_audited() {
    let host = TestHost::with_guests(&[]).await;
    host.load_guest("router", |m| m.replace(r#"cases = ["route"]"#, "cases = []")).await.unwrap();
    let patrol = host.staff("grid", "chengguan", Role::GridWorker).await;
    let dispatcher = host.staff("disp", "command-center", Role::Dispatcher).await;
    let mut suggested = host.subscribe("case.route-suggested");
    let case = report(&host, &patrol, "020301").await;
    eventually("the router handled the report", WAIT, async || {
        host.plugin_view("router").await["counters"]["calls"].as_u64().unwrap() >= 1
    })
    .await;
    let view = host.plugin_view("router").await;
    assert_eq!((&view["counters"]["denials"], &view["counters"]["guest_errors"]), (&json!(1), &json!(1)), "{view}");
    assert_eq!(view["health"]["state"], "running", "a denial is the plugin's error, not a sandbox failure");
    let audit = host.services.audit.find(Some("plugin:router"), Some("cases.suggest-route"), 10).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!((audit[0].outcome.as_str(), audit[0].subject.as_str()), ("denied", case.as_str()));
    assert!(audit[0].detail.contains("`route` not in grants.cases"), "{}", audit[0].detail);
    assert_eq!(case_view(&host, &case, &dispatcher).await["suggestions"], json!([]));
    assert!(suggested.events.try_recv().is_err(), "nothing was announced");
    assert!(host.services.audit.verify().await.unwrap().is_none(), "audit chain intact");
}
