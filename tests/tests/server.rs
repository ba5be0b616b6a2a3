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
    // The echo is published during the call; the call is counted when it returns.
    let good = host.runtime.plugin("good").unwrap();
    yiwang_tests::eventually("the call to be counted", Duration::from_secs(10), async || good.ctx.stats.calls.get() == 1).await;

    let (status, list) = host.get_json("/api/plugins").await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    let bundled = yiwang::bundled::BUNDLED.len();
    assert_eq!(list.len(), bundled + 1, "{list:?}");
    let good = list.iter().find(|p| p["name"] == "good").unwrap();
    assert_eq!(good["version"], "0.1.0");
    assert_eq!(good["department"], "chengguan");
    assert_eq!(good["world"], "yiwang:gov/event-handler@0.2.0");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_tokens_roles_and_refusals() {
    let clock = yiwang::clock::ManualClock::new(1_800_000_000_000);
    let host = TestHost::start(TestOptions {
        clock: Some(clock.clone() as std::sync::Arc<dyn yiwang::clock::Clock>),
        ..TestOptions::default()
    })
    .await;

    // No token, a made-up token, a wrong password: 401, one error shape.
    let (status, err) = host.call("GET", "/api/plugins", None, None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(host.call("GET", "/api/plugins", Some("yw_forged"), None).await.0, 401);
    let wrong = json!({ "username": "ops", "password": "not-the-password" });
    assert_eq!(host.call("POST", "/api/auth/login", None, Some(wrong)).await.0, 401);
    let unknown = json!({ "username": "nobody", "password": "whatever-password" });
    let (status, err) = host.call("POST", "/api/auth/login", None, Some(unknown)).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["message"], "wrong user name or password", "unknown names look like wrong passwords");

    // The operator creates a dispatcher; bad bodies name the field.
    let dispatcher = json!({
        "id": "zhang.san", "username": "zhangsan", "display_name": "张三", "password": "调度-password-1",
        "department": "command-center", "org_unit": "320100", "kind": "staff",
        "roles": [["dispatcher", "320100"]]
    });
    let (status, created) = host.call("POST", "/api/users", Some(&host.token), Some(dispatcher.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["roles"], json!([["dispatcher", "320100"]]));
    let mut bad = dispatcher.clone();
    bad["roles"] = json!([["emperor", "320100"]]);
    let (status, err) = host.call("POST", "/api/users", Some(&host.token), Some(bad)).await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"].as_str().unwrap().contains("roles[0]"), "{err}");
    let mut elsewhere = dispatcher.clone();
    elsewhere["id"] = json!("li.si");
    elsewhere["username"] = json!("lisi");
    elsewhere["org_unit"] = json!("999999");
    assert_eq!(host.call("POST", "/api/users", Some(&host.token), Some(elsewhere)).await.0, 404);
    assert_eq!(host.call("POST", "/api/users", Some(&host.token), Some(dispatcher)).await.0, 422, "duplicate");

    // The dispatcher logs in, is who they say, and may not run plugins: 403, audited.
    let login = json!({ "username": "zhangsan", "password": "调度-password-1" });
    let (status, session) = host.call("POST", "/api/auth/login", None, Some(login)).await;
    assert_eq!(status, 200, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    let (_, me) = host.call("GET", "/api/auth/me", Some(&token), None).await;
    assert_eq!(me["display_name"], "张三");
    let (status, err) = host.call("GET", "/api/plugins", Some(&token), None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (403, Some("forbidden")));
    let denied = host.services.audit.find(Some("user:zhang.san"), Some("plugins.list"), 10).await.unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].outcome, "denied");
    assert_eq!(host.call("POST", "/api/users", Some(&token), Some(json!({}))).await.0, 400, "body checked first");

    // Log-out revokes; expiry ends a token on the injected clock.
    assert_eq!(host.call("POST", "/api/auth/logout", Some(&token), None).await.0, 204);
    assert_eq!(host.call("GET", "/api/auth/me", Some(&token), None).await.0, 401);
    assert_eq!(host.call("GET", "/api/plugins", Some(&host.token), None).await.0, 200);
    clock.advance(yiwang::identity::auth::TOKEN_LIFETIME_MS);
    assert_eq!(host.call("GET", "/api/plugins", Some(&host.token), None).await.0, 401, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_inboxes_and_live_streams() {
    let host = TestHost::start(TestOptions::default()).await;
    let duty = json!({
        "id": "wang.wu", "username": "wangwu", "display_name": "王五", "password": "值班-password",
        "department": "yingji", "org_unit": "320100", "kind": "staff", "roles": [["leader", "320100"]]
    });
    assert_eq!(host.call("POST", "/api/users", Some(&host.token), Some(duty)).await.0, 201);
    let (_, session) = host.call("POST", "/api/auth/login", None, Some(json!({ "username": "wangwu", "password": "值班-password" }))).await;
    let token = session["token"].as_str().unwrap().to_owned();

    // Open the live stream first, then send.
    let client = reqwest::Client::new();
    let mut live = client
        .get(format!("{}/api/messages/stream", host.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Who is online is nobody's business: the live stream shows in /metrics
    // as one series for all streams, never under the user's id.
    let (status, metrics) = host.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("subscriber=\"sse:inbox\""), "{metrics}");
    assert!(!metrics.contains("wang.wu"), "/metrics names a user: {metrics}");

    let send = |to: serde_json::Value, subject: &str| json!({ "to": to, "subject": subject, "body": "秦淮河水位 4.2 m，超过危险水位。" });
    let (status, _) = host
        .call("POST", "/api/messages", Some(&host.token), Some(send(json!({ "kind": "department", "code": "police" }), "给公安的")))
        .await;
    assert_eq!(status, 201);
    let (status, sent) = host
        .call("POST", "/api/messages", Some(&host.token), Some(send(json!({ "kind": "role", "org_unit": "320100", "role": "leader" }), "请值班领导关注")))
        .await;
    assert_eq!(status, 201);

    let mut seen = String::new();
    while !seen.contains("请值班领导关注") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), live.chunk()).await.expect("a live event").unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: message"), "{seen}");
    assert!(!seen.contains("给公安的"), "another department's message is not streamed: {seen}");

    let (_, inbox) = host.call("GET", "/api/messages?unread=true", Some(&token), None).await;
    let inbox = inbox.as_array().unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["id"], sent["id"]);
    assert_eq!(inbox[0]["read"], false);
    let read = format!("/api/messages/{}/read", sent["id"].as_str().unwrap());
    assert_eq!(host.call("POST", &read, Some(&token), None).await.0, 204);
    let (_, unread) = host.call("GET", "/api/messages?unread=true", Some(&token), None).await;
    assert_eq!(unread, json!([]));
    // Someone else's message cannot be marked.
    assert_eq!(host.call("POST", &read, Some(&host.token), None).await.0, 404);
    // Unknown recipients and malformed recipients are refused by name.
    let (status, err) = host
        .call("POST", "/api/messages", Some(&host.token), Some(send(json!({ "kind": "department", "code": "nowhere" }), "x")))
        .await;
    assert_eq!(status, 404, "{err}");
    let (status, err) = host
        .call("POST", "/api/messages", Some(&host.token), Some(send(json!({ "kind": "pager", "code": "1" }), "x")))
        .await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"].as_str().unwrap().contains("to"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_city_hierarchy_loads_and_answers_where_a_point_is() {
    let host = TestHost::start(TestOptions::default()).await;
    let city = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../host/tests/data/city.geojson")).unwrap();
    let client = reqwest::Client::new();
    let load = |token: String, body: String| {
        let req = client.post(format!("{}/api/space/load", host.base_url)).bearer_auth(token).body(body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, report) = load(host.token.clone(), city.clone()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["features"], 24);

    let (status, chain) = host.get_json("/api/space/at?lat=32.042&lon=118.785").await;
    assert_eq!(status, 200);
    let levels: Vec<&str> = chain.as_array().unwrap().iter().map(|a| a["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["grid", "community", "street", "district", "city"]);
    assert_eq!(chain[0]["code"], "32010200100101");
    assert_eq!(host.get_json("/api/space/at?lat=1.0&lon=1.0").await.1, json!([]), "outside the city");
    assert_eq!(host.get_json("/api/space/at?lat=91&lon=118").await.0, 400);

    let (_, near) = host.get_json("/api/space/grids?lat=32.042&lon=118.785&radius_m=10").await;
    assert_eq!(near.as_array().unwrap().len(), 1);
    let (_, cell) = host.get_json("/api/space/areas/32010200100101").await;
    assert_eq!(cell["geometry"]["type"], "Polygon");

    // A broken feature is refused by name and nothing changes.
    let broken = city.replacen("\"32010200100101\"", "\"99999999999999\"", 1);
    let (status, err) = load(host.token.clone(), broken).await;
    assert_eq!(status, 422, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("99999999999999"), "{err}");
    assert_eq!(host.get_json("/api/space/at?lat=32.042&lon=118.785").await.1[0]["code"], "32010200100101");
    assert_eq!(load("yw_forged".into(), city).await.0, 401);
}

/// Wrong passwords lock the user name with a back-off, even against the right
/// password; every refusal is in the audit log; other accounts are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_lock_the_account_for_a_while_and_are_audited() {
    let clock = yiwang::clock::ManualClock::new(1_000_000);
    let host = TestHost::start(TestOptions { clock: Some(clock.clone() as std::sync::Arc<dyn yiwang::clock::Clock>), ..TestOptions::default() })
        .await;
    let other = host.staff("li", "chengguan", yiwang::identity::Role::Dispatcher).await;
    assert!(!other.is_empty());
    let login = async |password: &str| {
        let r = reqwest::Client::new()
            .post(format!("{}/api/auth/login", host.base_url))
            .json(&json!({ "username": "ops", "password": password }))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()))
    };
    for _ in 0..4 {
        assert_eq!(login("猜一猜").await, (401, None));
    }
    assert_eq!(login("猜一猜").await, (429, Some("30".to_owned())), "the fifth wrong password locks for 30 s");
    assert_eq!(login(yiwang_tests::OPS_PASSWORD).await.0, 429, "even the right password waits");
    let (status, _) = host.call("POST", "/api/auth/login", None, Some(json!({ "username": "li", "password": "员工-test-password" }))).await;
    assert_eq!(status, 200, "another account is not locked");
    let audit = host.services.audit.find(None, Some("auth.login"), 100).await.unwrap();
    assert!(audit.iter().any(|r| r.subject == "ops" && r.outcome == "denied" && r.actor.starts_with("client:127.0.0.1")), "{audit:?}");

    clock.advance(30_000);
    assert_eq!(login(yiwang_tests::OPS_PASSWORD).await.0, 200, "after the lock, the right password works");
}

/// Anonymous routes are limited per client address and per device: the
/// eleventh Open311 post from one phone in a minute, and the eleventh
/// registration from one address, are refused with `429` and `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_posts_are_limited_per_device_and_per_address() {
    let host = TestHost::with_guests(&[]).await;
    host.load_test_city().await;
    let client = reqwest::Client::new();
    let post = async |device: &str| {
        let r = client
            .post(format!("{}/open311/v2/requests.json", host.base_url))
            .form(&[("service_code", "010101"), ("lat", "32.05"), ("long", "118.79"), ("description", "井盖缺失"), ("device_id", device)])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.headers().get("retry-after").is_some())
    };
    for n in 0..10 {
        let (status, _) = post("phone-1").await;
        assert!(status == 200 || status == 201, "post {n}: {status}");
    }
    assert_eq!(post("phone-1").await, (429, true), "the eleventh from one phone");
    let (status, _) = post("phone-2").await;
    assert!(status == 200 || status == 201, "another phone still posts: {status}");
    let audit = host.services.audit.find(None, Some("open311.post"), 10).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");

    let register = async |n: usize| {
        let body = json!({ "username": format!("jumin{n}"), "password": "居民-password-123", "display_name": format!("居民{n}"), "phone": format!("1380000{n:04}") });
        host.call("POST", "/api/residents", None, Some(body)).await
    };
    for n in 0..10 {
        let (status, body) = register(n).await;
        assert_eq!(status, 201, "registration {n}: {body}");
    }
    let (status, body) = register(10).await;
    assert_eq!(status, 429, "{body}");
}
