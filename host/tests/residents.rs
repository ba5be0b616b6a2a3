//! Residents' accounts and real-name verification, and plugins' service
//! identities, over HTTP against a real host.

use serde_json::json;
use yiwang::identity::{AccountKind, Role};

mod common;

use common::http::{message, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn residents_register_and_are_verified_by_staff() {
    let host = start(false).await;
    let registration = json!({
        "username": "zhang.san", "password": "随手拍-2027", "display_name": "张三",
        "phone": "13800138000", "real_name": "张三", "id_number": "11010519491231002X",
    });
    let (status, body) = host.post("/api/residents", "", registration.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["kind"].as_str(), body["verified"].as_bool()), (Some("resident"), Some(false)));
    assert_eq!(body["roles"][0][0], "resident");
    assert!(!body.to_string().contains("11010519491231002X"), "the number is never shown: {body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = host.post("/api/residents", "", registration).await;
    assert_eq!(status, 422, "the username is taken: {body}");

    for (field, value, needle) in [
        ("id_number", json!("110105194912310021"), "check character"),
        ("phone", json!("12345"), "phone"),
        ("real_name", json!(null), "go together"),
    ] {
        let mut r = json!({"username": "li.si", "password": "随手拍-2027", "display_name": "李四",
                           "real_name": "李四", "id_number": "11010519491231002X"});
        r[field] = value;
        if r[field].is_null() {
            r.as_object_mut().unwrap().remove(field);
        }
        let (status, body) = host.post("/api/residents", "", r).await;
        assert_eq!(status, 422, "{field}: {body}");
        assert!(message(&body).contains(needle), "{field}: {body}");
    }

    // The resident logs in; only a dispatcher or operator verifies, with the card's number.
    let (status, login) = host.post("/api/auth/login", "", json!({"username": "zhang.san", "password": "随手拍-2027"})).await;
    assert_eq!(status, 200, "{login}");
    let resident = login["token"].as_str().unwrap().to_owned();
    let path = format!("/api/residents/{id}/verify");
    let (status, _) = host.post(&path, &resident, json!({"id_number": "11010519491231002X"})).await;
    assert_eq!(status, 403);
    let dispatcher = host.user("disp", Some("hotline12345"), AccountKind::Staff, &[Role::Dispatcher], "320100").await;
    let (status, body) = host.post(&path, &dispatcher, json!({"id_number": "110101199003074477"})).await;
    assert_eq!(status, 409, "another card: {body}");
    let (status, body) = host.post(&path, &dispatcher, json!({"id_number": "11010519491231002X"})).await;
    assert_eq!((status, body["verified"].as_bool()), (200, Some(true)), "{body}");
    let (_, me) = host.get("/api/auth/me", &resident).await;
    assert_eq!(me["verified"], true);
    let audit = host.services.audit.find(Some("user:disp"), Some("identity.resident.verify"), 10).await.unwrap();
    assert_eq!(audit.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(), ["ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_plugin_has_a_service_identity_that_cannot_log_in() {
    let host = start(true).await;
    let p = host.services.identity.principal("plugin.yingji").await.unwrap().expect("service account");
    assert_eq!((p.kind.name(), p.department.as_deref()), ("service", Some("yingji")));
    let (status, _) = host.post("/api/auth/login", "", json!({"username": "plugin.yingji", "password": ""})).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_queries_and_bodies_get_the_one_error_shape() {
    let host = start(false).await;
    let ops = host.user("ops", Some("command-center"), AccountKind::Staff, &[Role::Operator], "320100").await;
    for path in ["/api/space/at?lat=north&lon=118.7", "/api/space/grids?lat=32", "/api/messages?unread=maybe"] {
        let r = host.raw("GET", path, &ops, "application/json", b"").await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "bad-request", "{path}: {}", r.body);
    }
    let r = host.raw("POST", "/api/space/load", &ops, "application/json", b"\xff\xfe{}").await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("bad-request")), "{}", r.body);
    assert!(message(&r.json()).contains("not UTF-8"), "{}", r.body);
}
