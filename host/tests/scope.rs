//! What a case holds follows the case's scope: its evidence is listed and
//! added only by staff whose scope covers the case, and a resident's photo is
//! read only by its uploader and by staff within the area of a case holding it.

mod common;

use common::http::start;
use serde_json::json;
use yiwang::identity::{AccountKind, Role};

const CITY: &str = include_str!("data/city.geojson");
const STAFF: AccountKind = AccountKind::Staff;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_and_photos_stay_within_the_case_s_area() {
    let host = start(false).await;
    host.services.space.load_geojson(CITY).await.unwrap();
    let resident = host.user("res.wang", None, AccountKind::Resident, &[Role::Resident], "320100").await;
    // Two streets of one district: 梅园新村 (the case's) and 新街口.
    let handler = host.user("cg.west", Some("chengguan"), STAFF, &[Role::Handler], "320102001").await;
    let other_handler = host.user("cg.east", Some("chengguan"), STAFF, &[Role::Handler], "320102002").await;
    let grid = host.user("grid.west", Some("command-center"), STAFF, &[Role::GridWorker], "320102001").await;
    let other_grid = host.user("grid.east", Some("command-center"), STAFF, &[Role::GridWorker], "320102002").await;
    let city = host.user("disp.city", Some("command-center"), STAFF, &[Role::Dispatcher], "320100").await;

    // A resident's 随手拍 with its photo, in the 梅园新村 street.
    let photo = [&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00][..], &[9u8; 3000][..]].concat();
    let stored = host.raw("POST", "/api/media?filename=photo.jpg", &resident, "image/jpeg", &photo).await;
    assert_eq!(stored.status, 201, "{}", stored.body);
    let sha = stored.json()["sha256"].as_str().unwrap().to_owned();
    let report = json!({
        "channel": "snapshot", "category_code": "020101", "description": "人行道暴露垃圾",
        "location": { "lat": 32.045, "lon": 118.785 }, "evidence": [sha],
    });
    let (status, intake) = host.post("/api/reports", &resident, report).await;
    assert_eq!(status, 201, "{intake}");
    let case = intake["case"].as_str().unwrap().to_owned();

    // The photo: its uploader, staff of the case's street and city-level staff read it; another street's do not.
    let meta = format!("/api/media/{sha}/meta");
    assert_eq!(host.get(&meta, &resident).await.0, 200);
    assert_eq!(host.get(&meta, &grid).await.0, 200);
    assert_eq!(host.get(&meta, &city).await.0, 200);
    let (status, body) = host.get(&meta, &other_grid).await;
    assert_eq!(status, 403, "another street's grid worker read a resident's photo: {body}");

    // The case's evidence: listed and added within its street, refused outside it.
    let evidence = format!("/api/cases/{case}/evidence");
    assert_eq!(host.get(&evidence, &handler).await.0, 200);
    let (status, body) = host.get(&evidence, &other_handler).await;
    assert_eq!(status, 403, "another street's handler listed the evidence: {body}");
    let (status, body) = host.post(&evidence, &other_handler, json!({ "sha256": sha, "note": "补充" })).await;
    assert_eq!(status, 403, "another street's handler added evidence: {body}");
    let (status, body) = host.post(&evidence, &handler, json!({ "sha256": sha, "note": "现场照片" })).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(host.get("/api/cases/no-such-case/evidence", &handler).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_with_no_area_is_the_command_centre_s_and_its_caller_is_the_hotline_s() {
    let host = start(false).await;
    host.services.space.load_geojson(CITY).await.unwrap();
    let operator = host.user("op.12345", Some("hotline12345"), STAFF, &[Role::Dispatcher], "320100").await;
    let city = host.user("disp.city", Some("command-center"), STAFF, &[Role::Dispatcher], "320100").await;
    let street = host.user("cg.west", Some("chengguan"), STAFF, &[Role::Handler, Role::Dispatcher], "320102001").await;

    // A call with an address and no point: the case has no area.
    let call = json!({
        "channel": "hotline", "category_code": "020501", "description": "长江路口有人占道卖水果",
        "address": "长江路与碑亭巷交叉口", "caller": { "name": "李先生", "phone": "13800002222" },
    });
    let (status, intake) = host.post("/api/reports", &operator, call).await;
    assert_eq!(status, 201, "{intake}");
    let case = intake["case"].as_str().unwrap().to_owned();
    let path = format!("/api/cases/{case}");

    // Not every street's: a street's staff neither read nor move it.
    let (status, body) = host.get(&path, &street).await;
    assert_eq!(status, 403, "a street's staff read a case with no area: {body}");
    let (status, body) = host.transition(&case, &street, "accept", json!({})).await;
    assert_eq!(status, 403, "a street's dispatcher accepted a case with no area: {body}");

    // The command centre reads it, without the caller's name and phone.
    let (status, view) = host.get(&path, &city).await;
    assert_eq!(status, 200, "{view}");
    let report = &view["reports"][0];
    assert_eq!((report["caller_name"].clone(), report["caller_phone"].clone()), (json!(null), json!(null)), "{view}");
    assert!(!view.to_string().contains("13800002222"), "{view}");
    // The hotline, which calls back, sees them.
    let (status, view) = host.get(&path, &operator).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["reports"][0]["caller_phone"], "13800002222", "{view}");
}
