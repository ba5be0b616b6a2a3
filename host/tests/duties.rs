//! Separation of duties in the closed loop: checking (核查) a case is for a
//! grid worker within its area, and never for whoever disposed of it or for
//! their department — whoever filed the case.

mod common;

use common::http::{Host, message, start};
use serde_json::{Value, json};
use yiwang::identity::{AccountKind, Role};

const CITY: &str = include_str!("data/city.geojson");
const STAFF: AccountKind = AccountKind::Staff;

async fn step(host: &Host, case: &str, token: &str, action: &str, extra: Value) -> (u16, Value) {
    host.transition(case, token, action, extra).await
}

async fn ok(host: &Host, case: &str, token: &str, action: &str, extra: Value) {
    let (status, body) = step(host, case, token, action, extra).await;
    assert_eq!(status, 200, "{action}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_who_disposed_of_a_case_and_their_department_do_not_check_it() {
    let host = start(false).await;
    host.services.space.load_geojson(CITY).await.unwrap();
    let dispatcher = host.user("disp", Some("command-center"), STAFF, &[Role::Dispatcher], "320100").await;
    // A chengguan officer who is also a grid worker files the case himself.
    let doer = host.user("cg.both", Some("chengguan"), STAFF, &[Role::Handler, Role::GridWorker], "320102001").await;
    let colleague = host.user("cg.grid", Some("chengguan"), STAFF, &[Role::GridWorker], "320102001").await;
    let other_street = host.user("grid.east", Some("command-center"), STAFF, &[Role::GridWorker], "320102002").await;
    let grid = host.user("grid", Some("command-center"), STAFF, &[Role::GridWorker], "320102001").await;

    let report = json!({
        "channel": "department", "category_code": "020101", "description": "人行道暴露垃圾",
        "location": { "lat": 32.045, "lon": 118.785 },
    });
    let (status, intake) = host.post("/api/reports", &doer, report).await;
    assert_eq!(status, 201, "{intake}");
    let case = intake["case"].as_str().unwrap().to_owned();
    ok(&host, &case, &dispatcher, "accept", json!({})).await;
    ok(&host, &case, &dispatcher, "register", json!({})).await;
    ok(&host, &case, &dispatcher, "dispatch", json!({ "department": "chengguan" })).await;
    ok(&host, &case, &doer, "start", json!({})).await;
    ok(&host, &case, &doer, "dispose", json!({})).await;
    ok(&host, &case, &dispatcher, "send-to-check", json!({})).await;

    // The one who did the work, though filer and grid worker, may not pass it.
    let (status, body) = step(&host, &case, &doer, "pass-check", json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("does not check it"), "{body}");
    // Nor may a grid worker of the department that did it, either way.
    let (status, body) = step(&host, &case, &colleague, "fail-check", json!({ "reason": "看着没清干净" })).await;
    assert_eq!(status, 403, "{body}");
    // A grid worker of another street is outside the case's area.
    let (status, _) = step(&host, &case, &other_street, "pass-check", json!({})).await;
    assert_eq!(status, 403);
    // A dispatcher is no grid worker.
    let (status, _) = step(&host, &case, &dispatcher, "pass-check", json!({})).await;
    assert_eq!(status, 403);
    // The grid worker in whose grid it lies checks it.
    ok(&host, &case, &grid, "pass-check", json!({})).await;
}
