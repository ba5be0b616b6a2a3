//! The bundled `zongzhi` (综治) plugin inside the real host.
//!
//! * A vulnerable resident overdue for a visit: a `time.day` on the bus opens one
//!   case titled with the masked name, and a second `time.day` for the same
//!   period opens none.
//! * A 安全隐患 reported by a grid worker is routed to 综治 at street level; the
//!   dispatcher accepts the suggestion, the street hands the case back (return),
//!   and the plugin calls in 住建 (housing) at district level: a second route
//!   suggestion and a `zongzhi.call-in` announcement.
//!
//! Both need the city's grids (loaded from the host's test GeoJSON) so that a
//! position resolves to a 14-digit grid code, and the data set `zongzhi-events`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use yiwang::bus::Event;
use yiwang::data::Writer;
use yiwang::identity::{Role, Scope};
use yiwang_tests::{TestHost, TestOptions, collect, eventually};

const WAIT: Duration = Duration::from_secs(60);
const DAY_MS: i64 = 86_400_000;
const UTC8_MS: i64 = 8 * 3_600_000;
/// 长江路社区第一网格 in the test city, and its community.
const AT: (f64, f64) = (32.042, 118.785);
const COMMUNITY: &str = "320102001001";

async fn bundled_host_with_city() -> TestHost {
    let host = TestHost::start(TestOptions {
        bundled: true,
        ..TestOptions::default()
    })
    .await;
    let city =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../host/tests/data/city.geojson")).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/api/space/load", host.base_url))
        .bearer_auth(&host.token)
        .body(city)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    host
}


/// The next event from `source` on the subscription.
async fn next_from(events: &mut mpsc::Receiver<Arc<Event>>, source: &str) -> (Arc<Event>, Value) {
    loop {
        let got = collect(events, 1, WAIT).await.remove(0);
        if got.source == source {
            let payload = serde_json::from_str(&got.payload).unwrap();
            return (got, payload);
        }
    }
}

async fn calls(host: &TestHost) -> u64 {
    host.plugin_view("zongzhi").await["counters"]["calls"].as_u64().unwrap()
}

/// Wait until the plugin has handled `n` events in all.
async fn handled(host: &TestHost, n: u64) {
    eventually(&format!("zongzhi handled {n} events"), WAIT, async || {
        calls(host).await >= n
    })
    .await;
}

fn date(days: i64) -> String {
    let (y, m, d) = yiwang::calendar::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_overdue_for_a_visit_gets_one_case_with_a_masked_name() {
    let host = bundled_host_with_city().await;
    // The local day that holds the host's now, and a visit 30 days before it, due every 7 days.
    let today = (host.services.clock.now_ms() + UTC8_MS).div_euclid(DAY_MS);
    let start = today * DAY_MS - UTC8_MS;
    let last_visit = date(today - 30);
    let resident = json!({
        "name": "张三", "address": "长江路 1 号 3 幢 201 室", "category": "elderly-alone",
        "community": COMMUNITY, "location": { "lat": AT.0, "lon": AT.1 },
        "last_visit": last_visit, "visit_every_days": 7
    });
    host.services
        .data
        .put(
            "vulnerable-residents",
            "r-001",
            &resident.to_string(),
            Writer {
                actor: "user:ops",
                scope: &Scope::All,
            },
        )
        .await
        .unwrap();

    let mut reported = host.subscribe("case.reported");
    let before = calls(&host).await;
    let day = json!({ "day": date(today), "start": start, "end": start + DAY_MS });
    host.publish("time.day", day.clone()).await;
    let (_, payload) = next_from(&mut reported.events, "plugin:zongzhi").await;
    assert_eq!(payload["category_code"], "020603", "{payload}");
    assert_eq!(
        payload["area"], "32010200100101",
        "the resident's position lies in the first grid: {payload}"
    );
    let case = payload["case"].as_str().unwrap().to_owned();
    let view = host.services.cases.view(&case).await.unwrap().unwrap();
    assert_eq!(view.title, format!("重点人员走访逾期：{COMMUNITY} 张*"));
    assert_eq!(view.channel, "patrol");
    for personal in ["张三", "长江路", "201 室"] {
        assert!(!view.description.contains(personal), "{personal}: {}", view.description);
    }

    // The overdue period is remembered in zongzhi-events, not in the resident's
    // record, once the plugin has finished with the tick.
    assert!(host.runtime.settle(WAIT).await, "the plugins did not catch up");
    let due = (today - 30) * DAY_MS - UTC8_MS + 7 * DAY_MS;
    let marker = host
        .services
        .data
        .get("zongzhi-events", &format!("visit-r-001-{due}"))
        .await
        .unwrap()
        .expect("the visit is remembered");
    let marker: Value = serde_json::from_str(&marker.value).unwrap();
    assert_eq!(
        (&marker["overdue_case"], &marker["community"]),
        (&json!(case), &json!(COMMUNITY)),
        "{marker}"
    );
    let stored = host
        .services
        .data
        .get("vulnerable-residents", "r-001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&stored.value).unwrap(), resident);

    // time.day, the case.reported of the plugin's own case, then the same day again.
    handled(&host, before + 2).await;
    host.publish("time.day", day).await;
    handled(&host, before + 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(e) = reported.events.try_recv() {
        assert_ne!(
            e.source, "plugin:zongzhi",
            "a second case for the same overdue period: {}",
            e.payload
        );
    }
    let view = host.plugin_view("zongzhi").await;
    assert_eq!(view["counters"]["denials"], json!(0), "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hazard_the_street_hands_back_calls_in_housing_at_district_level() {
    let host = bundled_host_with_city().await;
    let grid = host.staff("grid", "zongzhi", Role::GridWorker).await;
    let dispatcher = host.staff("disp", "command-center", Role::Dispatcher).await;
    let street = host.staff("street", "zongzhi", Role::Handler).await;
    let mut suggested = host.subscribe("case.route-suggested");
    let mut call_ins = host.subscribe("zongzhi.call-in");
    let before = calls(&host).await;

    let report = json!({
        "channel": "patrol", "category_code": "020602", "title": "居民楼外墙空鼓脱落",
        "description": "5 号楼外墙瓷砖大面积空鼓，已有脱落，楼下为通道", "location": { "lat": AT.0, "lon": AT.1 }
    });
    let (status, intake) = host.call("POST", "/api/reports", Some(&grid), Some(report)).await;
    assert_eq!(status, 201, "{intake}");
    let case = intake["case"].as_str().unwrap().to_owned();

    // Reported: 综治 at street level.
    let (_, first) = next_from(&mut suggested.events, "plugin:zongzhi").await;
    assert_eq!(
        (&first["case"], &first["department"], &first["level"]),
        (&json!(case), &json!("zongzhi"), &json!("street")),
        "{first}"
    );
    let first_id = first["suggestion"].as_str().unwrap().to_owned();
    handled(&host, before + 1).await;

    // The dispatcher accepts it: the case is with 综治 at street level.
    for body in [
        json!({ "action": "accept" }),
        json!({ "action": "register" }),
        json!({ "action": "dispatch", "suggestion": first_id, "reason": "同意" }),
    ] {
        let (status, view) = host
            .call(
                "POST",
                &format!("/api/cases/{case}/transitions"),
                Some(&dispatcher),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 200, "{body}: {view}");
    }
    handled(&host, before + 2).await;

    // The street cannot resolve it and hands it back.
    let body = json!({ "action": "return", "reason": "涉及房屋结构安全，街道无鉴定和处置能力" });
    let (status, view) = host
        .call(
            "POST",
            &format!("/api/cases/{case}/transitions"),
            Some(&street),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{view}");

    let (_, call_in) = next_from(&mut call_ins.events, "plugin:zongzhi").await;
    assert_eq!(
        (
            &call_in["case"],
            &call_in["department"],
            &call_in["level"],
            &call_in["signal"]
        ),
        (&json!(case), &json!("housing"), &json!("district"), &json!("return")),
        "{call_in}"
    );
    assert!(
        call_in["reason"].as_str().unwrap().contains("街道吹哨、部门报到"),
        "{call_in}"
    );
    let (_, second) = next_from(&mut suggested.events, "plugin:zongzhi").await;
    assert_eq!(
        (&second["department"], &second["level"]),
        (&json!("housing"), &json!("district")),
        "{second}"
    );
    assert!(
        second["reason"].as_str().unwrap().contains("街道吹哨、部门报到"),
        "{second}"
    );

    let view = host.services.cases.view(&case).await.unwrap().unwrap();
    let pending = view
        .suggestions
        .iter()
        .find(|s| s.department == "housing")
        .expect("the call-in suggestion is on the case");
    assert_eq!(pending.level, "district");
    let marker = host
        .services
        .data
        .get("zongzhi-events", &case)
        .await
        .unwrap()
        .expect("the case is remembered");
    let marker: Value = serde_json::from_str(&marker.value).unwrap();
    assert_eq!(
        (&marker["escalated"], &marker["call_in"]["department"]),
        (&json!(true), &json!("housing")),
        "{marker}"
    );
}

/// The weekly report in the real host: two grid events reported this week in
/// one community are counted for it and for the city when `time.week` comes,
/// and the community's leaders get the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_report_counts_the_week_s_grid_events_for_each_community() {
    let host = bundled_host_with_city().await;
    let grid = host.staff("grid", "zongzhi", Role::GridWorker).await;
    let mut summaries = host.subscribe("zongzhi.weekly-summary");
    for (category, description) in [("020601", "楼上卫生间漏水，邻里争执"), ("020602", "车棚电动车飞线充电")] {
        let report = json!({
            "channel": "patrol", "category_code": category, "description": description,
            "location": { "lat": AT.0, "lon": AT.1 }
        });
        let (status, intake) = host.call("POST", "/api/reports", Some(&grid), Some(report)).await;
        assert_eq!(status, 201, "{intake}");
    }
    assert!(host.runtime.settle(WAIT).await, "the plugins did not catch up");

    // The ISO week (local time) the reports were made in.
    let today = (host.services.clock.now_ms() + UTC8_MS).div_euclid(DAY_MS);
    let monday = today - (today + 3).rem_euclid(7);
    let start = monday * DAY_MS - UTC8_MS;
    let week = yiwang::ticks::iso_week(monday);
    let mut sent = host.subscribe("message.sent");
    host.publish("time.week", json!({ "week": week, "start": start, "end": start + 7 * DAY_MS })).await;
    let got = collect(&mut summaries.events, 1, WAIT).await;
    let body: Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(body["week"], json!(week), "{body}");
    let community = body["communities"].as_array().unwrap().iter().find(|c| c["community"] == COMMUNITY).expect("the community is in the report");
    assert_eq!(community["cases"], 2, "{body}");
    assert_eq!(community["by_category"], json!({ "020601": 1, "020602": 1 }), "{body}");
    assert_eq!(body["city"]["cases"], 2, "{body}");
    // The community's leaders were sent the report.
    assert!(host.runtime.settle(WAIT).await);
    let mut told = false;
    while let Ok(e) = sent.events.try_recv() {
        let m: Value = serde_json::from_str(&e.payload).unwrap();
        told |= m["to"] == json!({ "kind": "role", "org_unit": COMMUNITY, "role": "leader" })
            && m["subject"].as_str().unwrap_or_default().contains("本周社区平安报告");
    }
    assert!(told, "the leaders of {COMMUNITY} were not sent the weekly report");
}
