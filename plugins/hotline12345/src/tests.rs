//! Unit tests: the pure models, then the plugin's own entry points against the SDK's
//! mock host with the real `plugin.toml` (its grants and `[config]`).

use super::*;
use yiwang_sdk::AsHandler;
use yiwang_sdk::log::Level;
use yiwang_sdk::mock::{InstalledHost, MockHost};

/// 2026-01-01 00:00 UTC, 08:00 in the city.
const T0: i64 = 1_767_225_600_000;
const AT: GeoPoint = GeoPoint { lat: 32.045, lon: 118.785 };
const CALLER_A: &str = "a1b2c3d4e5f60718";
const CALLER_B: &str = "0f1e2d3c4b5a6978";
const CALLER_C: &str = "1111222233334444";

fn days(n: f64) -> i64 {
    (n * DAY_MS as f64) as i64
}

// ---- The pure models ------------------------------------------------------------------

#[test]
fn the_route_score_is_the_margin_times_the_strength() {
    assert_eq!(route_score(6.0, 0.0, 6.0), 1.0);
    assert_eq!(route_score(6.0, 3.0, 6.0), 0.5);
    assert_eq!(route_score(3.0, 0.0, 6.0), 0.5, "a weak winner without a rival");
    assert_eq!(route_score(12.0, 3.0, 6.0), 0.75, "strength is capped at 1");
    assert_eq!(route_score(4.0, 4.0, 6.0), 0.0, "a tie says nothing");
    assert_eq!(route_score(0.0, 0.0, 6.0), 0.0);
}

#[test]
fn levels_are_raised_up_to_the_city() {
    assert_eq!(raise(CommandLevel::Street, 1), CommandLevel::District);
    assert_eq!(raise(CommandLevel::District, 1), CommandLevel::City);
    assert_eq!(raise(CommandLevel::City, 2), CommandLevel::City);
    assert_eq!(raise(CommandLevel::Community, 0), CommandLevel::Community);
}

#[test]
fn local_dates_are_in_utc_plus_8() {
    assert_eq!(local_date(T0), "2026-01-01");
    assert_eq!(local_date(T0 - 8 * 3_600_000 - 1), "2025-12-31");
    assert_eq!(local_date(T0 + days(59.0)), "2026-03-01");
    assert_eq!(local_date(951_782_400_000), "2000-02-29");
    // Far outside the calendar: clamped, not a panic.
    assert!(local_date(i64::MAX).starts_with('+') && local_date(i64::MIN).starts_with('-'));
}

// ---- Through the entry points ------------------------------------------------------------

const DEPARTMENTS: [(&str, &str); 9] = [
    ("chengguan", "城市管理局"),
    ("housing", "住房和城乡建设局"),
    ("yingji", "应急管理局"),
    ("zongzhi", "综治中心"),
    ("police", "公安局"),
    ("environment", "生态环境局"),
    ("transport", "交通运输局"),
    ("water", "水务局"),
    ("command-center", "城市运行指挥中心"),
];

/// The real manifest, the city's departments, and the reported cases `c0`..`c29`.
fn mock() -> MockHost {
    let mut m = MockHost::new().manifest("plugin.toml").unwrap();
    for (code, name) in DEPARTMENTS {
        m = m.known_department(code, name);
    }
    for i in 0..30 {
        m = m.case(format!("c{i}"));
    }
    m
}

fn host() -> InstalledHost {
    let host = mock().install();
    Hotline::init().unwrap();
    host
}

/// A hotline report of case `case` at 中山路88号 by caller A.
fn report(case: &str, category: &str, description: &str) -> Value {
    json!({
        "case": case, "report": format!("r-{case}"), "ticket": "YW202601010001", "channel": "hotline",
        "category_code": category, "area": "32010200100101", "title": "", "description": description,
        "address": "中山路88号", "caller": CALLER_A,
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().expect("an object").remove(key);
    v
}

fn deliver(host: &InstalledHost, topic: &str, payload: Value, time: i64) {
    let event = Event::test(topic, payload).with_time(time).with_location(AT);
    host.deliver::<AsHandler<Hotline>>(event).unwrap();
}

/// A case's move as the host publishes it on `case.<action>`.
fn moved(case: &str, action: &str, department: &str) -> Value {
    json!({
        "case": case, "action": action, "from": "checked", "to": "closed", "department": department,
        "actor": "user:sup", "reason": "", "suggestion": null,
    })
}

fn close(host: &InstalledHost, case: &str, department: &str, time: i64) {
    deliver(host, "case.close", moved(case, "close", department), time);
}

fn topics(host: &InstalledHost) -> Vec<String> {
    host.published().into_iter().map(|p| p.topic).collect()
}

fn notes_of(host: &InstalledHost, case: &str) -> Vec<String> {
    host.notes().into_iter().filter(|n| n.case_id == case).map(|n| n.text).collect()
}

fn warnings(host: &InstalledHost) -> Vec<String> {
    host.logs().into_iter().filter(|l| matches!(l.level, Level::Warn)).map(|l| l.message).collect()
}

fn no_denials(host: &InstalledHost) {
    assert!(host.denials().is_empty(), "{:?}", host.denials());
}

#[test]
fn realistic_complaints_go_to_different_departments() {
    let host = host();
    let complaints = [
        ("020501", "中山路88号门口有人占道摆摊卖水果，流动摊贩把人行道都堵了", "020501", "chengguan", "street"),
        ("020604", "隔壁工地夜间施工，半夜打桩噪音太大，吵得孩子睡不着", "020301", "housing", "district"),
        ("020604", "楼道里好几户电动车在充电，还有人飞线充电", "020404", "yingji", "district"),
        ("020601", "楼上漏水把我家天花板泡坏了，找邻居协商几次都不理，还吵架", "020601", "zongzhi", "community"),
        ("020604", "有辆车长期违停在小区门口，把车库出口堵死了", "020503", "police", "district"),
        ("020401", "下雨后路口积水很深，电动车都淹了，排水口也堵了", "020401", "yingji", "district"),
    ];
    for (i, (registered, text, code, department, level)) in complaints.iter().enumerate() {
        let case = format!("c{i}");
        // Each at its own address, no caller: no repeats here.
        let payload = with(with(report(&case, registered, text), "address", json!(format!("测试路{i}号"))), "caller", Value::Null);
        deliver(&host, "case.reported", payload, T0 + i as i64 * 60_000);
        let published = host.published();
        let event = published.last().unwrap();
        assert_eq!(event.topic, "hotline.classified");
        let body = &event.payload;
        assert_eq!((body["case"].as_str(), body["category_code"].as_str(), body["department"].as_str()), (Some(case.as_str()), Some(*code), Some(*department)), "{text}: {body}");
        assert_eq!((body["level"].as_str(), body["urgency"].as_str()), (Some(*level), Some("normal")), "{text}: {body}");
        let score = body["score"].as_f64().unwrap();
        assert!(score > 0.0 && score <= 1.0, "{body}");
        assert!(!body["matched"].as_array().unwrap().is_empty());
        let route = host.route_suggestions().into_iter().find(|r| r.case_id == case).unwrap();
        assert_eq!((route.suggestion.department.as_str(), route.suggestion.level.name(), route.suggestion.score), (*department, *level, score));
        let note = &notes_of(&host, &case)[0];
        assert!(note.starts_with(&format!("分类建议：{code} ")) && note.contains(&format!("→ {department}，依据：")), "{note}");
        assert_eq!(note.contains("与登记类别"), registered != code, "{note}");
    }
    // The 占道 complaint's reason names the words it matched, with their weights.
    let reason = &host.route_suggestions()[0].suggestion.reason;
    assert!(reason.contains("占道(2)") && reason.contains("摆摊(2)") && reason.contains("人行道&卖(3)"), "{reason}");
    let written = host.record(DATASET, "c1").unwrap();
    assert_eq!((written["classified"].as_str(), written["department"].as_str(), written["status"].as_str()), (Some("020301"), Some("housing"), Some("open")));
    no_denials(&host);
}

#[test]
fn a_category_other_than_the_operator_s_is_said_in_the_note() {
    let host = host();
    deliver(&host, "case.reported", report("c1", "020101", "路口有流动摊贩占道经营，每天晚上都出摊"), T0);
    let note = &notes_of(&host, "c1")[0];
    assert!(note.contains("与登记类别 020101 暴露垃圾 不同"), "{note}");
    let body = &host.published()[0].payload;
    assert_eq!((body["differs"].as_bool(), body["registered_category"].as_str()), (Some(true), Some("020101")));
    no_denials(&host);
}

#[test]
fn the_title_counts_unless_it_is_only_the_category_name() {
    let host = host();
    // The host fills a missing title with the category's name: it must not vote.
    let payload = with(report("c1", "020501", "我想咨询一下社保卡怎么办理"), "title", json!("占道经营"));
    deliver(&host, "case.reported", payload, T0);
    assert!(host.published().is_empty(), "{:?}", host.published());
    let payload = with(report("c2", "020604", "门口天天有人叫卖"), "title", json!("无照经营游商扰民"));
    deliver(&host, "case.reported", with(payload, "address", json!("别处1号")), T0);
    assert_eq!(host.published()[0].payload["category_code"], "020502");
}

#[test]
fn below_the_minimum_score_nothing_is_classified() {
    let host = host();
    deliver(&host, "case.reported", report("c1", "020604", "我想咨询一下社保卡怎么办理，垃圾分类是什么时候开始的"), T0);
    assert!(host.published().is_empty() && host.route_suggestions().is_empty() && host.notes().is_empty());
    let written = host.record(DATASET, "c1").unwrap();
    assert_eq!((written["classified"].clone(), written["category"].as_str()), (Value::Null, Some("020604")), "remembered all the same");
    no_denials(&host);
}

#[test]
fn urgency_raises_the_route_and_negations_do_not_count() {
    let host = host();
    deliver(&host, "case.reported", report("c1", "020402", "小区里燃气泄漏，燃气味很浓，马上要爆炸了"), T0);
    let body = host.published()[0].payload.clone();
    assert_eq!((body["category_code"].as_str(), body["urgency"].as_str(), body["level"].as_str()), (Some("020402"), Some("urgent"), Some("city")), "{body}");
    assert_eq!(body["urgency_terms"], json!(["爆炸", "燃气泄漏"]));
    let reason = &host.route_suggestions()[0].suggestion.reason;
    assert!(reason.contains("紧急（爆炸、燃气泄漏），层级由 district 提至 city"), "{reason}");
    assert!(notes_of(&host, "c1")[0].contains("紧急程度：紧急（爆炸、燃气泄漏）"));

    // Other callers at other places: no repeats.
    let elsewhere = |case: &str, text: &str, n: i64| with(with(report(case, "020405", text), "address", json!(format!("别处{n}号"))), "caller", Value::Null);
    deliver(&host, "case.reported", elsewhere("c2", "人行道上井盖丢了，还好没有人受伤", 2), T0);
    let body = host.published()[1].payload.clone();
    assert_eq!((body["urgency"].as_str(), body["level"].as_str()), (Some("normal"), Some("street")), "没有人受伤: {body}");
    deliver(&host, "case.reported", elsewhere("c3", "人行道上井盖丢了，很危险，请尽快处理", 3), T0);
    let body = host.published()[2].payload.clone();
    assert_eq!((body["urgency"].as_str(), body["level"].as_str()), (Some("high"), Some("street")), "{body}");
    assert!(host.route_suggestions()[2].suggestion.reason.contains("较急（危险、尽快）"));

    // Urgent but not classified: a note all the same, nothing published.
    deliver(&host, "case.reported", elsewhere("c4", "快来人，四楼冒烟了", 4), T0);
    assert_eq!(host.published().len(), 3);
    let note = &notes_of(&host, "c4")[0];
    assert!(note.starts_with("紧急程度：紧急（冒烟）；未能自动分类"), "{note}");
    no_denials(&host);
}

#[test]
fn a_snapshot_report_is_classified_too() {
    let host = host();
    let payload = with(with(report("c1", "020604", "路边有人焚烧垃圾，烧垃圾的烟很大"), "channel", json!("snapshot")), "caller", Value::Null);
    deliver(&host, "case.reported", payload, T0);
    assert_eq!(host.published()[0].payload["department"], "environment");
    no_denials(&host);
}

#[test]
fn a_repeat_caller_is_noted_and_published_within_the_window() {
    let host = host();
    let text = "门口有人占道摆摊，流动摊贩很多";
    // Each at its own address: only the caller repeats.
    let call = |case: &str, n: i64| with(report(case, "020501", text), "address", json!(format!("长江路{n}号")));
    deliver(&host, "case.reported", call("c0", 0), T0 - days(40.0));
    deliver(&host, "case.reported", call("c1", 1), T0);
    assert_eq!(topics(&host), ["hotline.classified", "hotline.classified"], "c0 is 40 days older than c1");
    deliver(&host, "case.reported", call("c2", 2), T0 + days(1.0));
    let repeat = host.published().into_iter().find(|p| p.topic == "hotline.repeat").unwrap();
    assert_eq!(repeat.payload["case"], "c2");
    assert_eq!((repeat.payload["caller_count"].as_u64(), repeat.payload["caller_cases"].clone()), (Some(1), json!(["c1"])));
    assert_eq!((repeat.payload["address_count"].as_u64(), repeat.payload["repeat"].clone()), (Some(0), json!(["caller"])));
    let note = notes_of(&host, "c2").into_iter().find(|n| n.starts_with("重复来电")).unwrap();
    assert!(note.contains("30 天内此前已反映 1 次（案件 c1），本次为第 2 次"), "{note}");
    // Another caller is no repeat.
    deliver(&host, "case.reported", with(call("c3", 3), "caller", json!(CALLER_B)), T0 + days(2.0));
    assert_eq!(host.published().iter().filter(|p| p.topic == "hotline.repeat").count(), 1);
    no_denials(&host);
}

#[test]
fn a_repeat_address_is_found_however_the_address_is_written() {
    let host = host();
    let text = "小区门口垃圾堆成山，没人清理，发臭";
    let at = |case: &str, caller: &str, address: &str| with(with(report(case, "020101", text), "caller", json!(caller)), "address", json!(address));
    deliver(&host, "case.reported", at("c1", CALLER_A, "中山路88号"), T0);
    deliver(&host, "case.reported", at("c2", CALLER_B, "中山路 88 号"), T0 + 3_600_000);
    assert!(!topics(&host).contains(&"hotline.repeat".to_owned()), "one earlier report is below repeat-address-min");
    deliver(&host, "case.reported", at("c3", CALLER_C, "　中山路８８号。"), T0 + 7_200_000);
    let repeat = host.published().into_iter().find(|p| p.topic == "hotline.repeat").unwrap();
    assert_eq!(repeat.payload["case"], "c3");
    assert_eq!((repeat.payload["address_count"].as_u64(), repeat.payload["address_cases"].clone()), (Some(2), json!(["c1", "c2"])));
    assert_eq!(repeat.payload["repeat"], json!(["address"]));
    let note = notes_of(&host, "c3").into_iter().find(|n| n.starts_with("重复地址")).unwrap();
    assert!(note.contains("此前已有 2 次反映（案件 c1、c2）"), "{note}");
    assert_eq!(host.record(DATASET, "c3").unwrap()["address_key"], "中山路88号");
    no_denials(&host);
}

const STALL: &str = "中山路88号门口又有人占道摆摊卖水果，流动摊贩堵住人行道";

#[test]
fn false_rectification_opens_a_supervision_case_within_n_days() {
    let host = host();
    deliver(&host, "case.reported", report("c1", "020501", STALL), T0);
    close(&host, "c1", "chengguan", T0 + days(2.0));
    let closed = host.record(DATASET, "c1").unwrap();
    assert_eq!((closed["status"].as_str(), closed["closed"].as_i64(), closed["department"].as_str()), (Some("closed"), Some(T0 + days(2.0)), Some("chengguan")));
    host.clear_calls();

    deliver(&host, "case.reported", with(with(report("c2", "020501", STALL), "caller", json!(CALLER_B)), "address", json!(" 中山路 88 号")), T0 + days(5.0));
    let opened = host.cases_opened();
    assert_eq!(opened.len(), 1);
    let draft = &opened[0].draft;
    assert_eq!((draft.category_code.as_str(), draft.channel, draft.location), ("020604", SourceChannel::Department, Some(AT)));
    assert_eq!(draft.title, "假性整改督办：中山路 88 号 占道经营");
    for needle in ["案件 c1", "2026-01-03 由 chengguan 办结", "3 天后（2026-01-06）", "案件 c2", "假性整改"] {
        assert!(draft.description.contains(needle), "{needle}: {}", draft.description);
    }
    let supervision = opened[0].id.clone();
    let route = host.route_suggestions().into_iter().find(|r| r.case_id == supervision).unwrap();
    assert_eq!((route.suggestion.department.as_str(), route.suggestion.level, route.suggestion.score), ("chengguan", CommandLevel::District, 1.0));
    assert!(route.suggestion.reason.contains("案件 c1") && route.suggestion.reason.contains("020501 占道经营"), "{}", route.suggestion.reason);
    let note = notes_of(&host, "c2").into_iter().find(|n| n.starts_with("假性整改提示")).unwrap();
    assert!(note.contains(&format!("已开督办案件 {supervision}")) && note.contains("c1"), "{note}");
    let event = host.published().into_iter().find(|p| p.topic == "hotline.false-rectification").unwrap();
    assert_eq!(event.payload, json!({
        "case": "c2", "closed_case": "c1", "supervision_case": supervision, "department": "chengguan",
        "address": "中山路 88 号", "category_code": "020501", "days_since_close": 3.0, "closed_at": T0 + days(2.0),
    }));
    assert_eq!(host.record(DATASET, "c1").unwrap()["supervisions"], json!({ "c2": supervision }));

    // Once per (closed case, new case): the same report again opens nothing; another
    // report within the N days opens its own.
    deliver(&host, "case.reported", report("c2", "020501", STALL), T0 + days(5.0));
    assert_eq!(host.cases_opened().len(), 1);
    deliver(&host, "case.reported", with(report("c3", "020501", STALL), "caller", json!(CALLER_C)), T0 + days(6.0));
    assert_eq!(host.cases_opened().len(), 2);
    assert_eq!(host.record(DATASET, "c1").unwrap()["supervisions"].as_object().unwrap().len(), 2);
    no_denials(&host);
}

#[test]
fn false_rectification_holds_for_n_days_and_not_after() {
    let host = host();
    deliver(&host, "case.reported", report("c1", "020501", STALL), T0);
    close(&host, "c1", "chengguan", T0 + days(1.0));
    // 15 days after the closure is within; 15 days and a minute is not.
    deliver(&host, "case.reported", with(report("c2", "020501", STALL), "caller", json!(CALLER_B)), T0 + days(16.0));
    assert_eq!(host.cases_opened().len(), 1, "exactly N days");
    deliver(&host, "case.reported", with(report("c3", "020501", STALL), "caller", json!(CALLER_C)), T0 + days(16.0) + 60_000);
    assert_eq!(host.cases_opened().len(), 1, "after N days");
    no_denials(&host);
}

#[test]
fn false_rectification_needs_the_same_address_and_category() {
    let host = host();
    deliver(&host, "case.reported", report("c1", "020501", STALL), T0);
    close(&host, "c1", "chengguan", T0 + days(1.0));
    // Another category family at the same address.
    deliver(&host, "case.reported", report("c2", "020301", "中山路88号旁边工地夜间施工，噪音太大"), T0 + days(2.0));
    // The same category at another address.
    deliver(&host, "case.reported", with(report("c3", "020501", STALL), "address", json!("中山路90号")), T0 + days(2.0));
    assert!(host.cases_opened().is_empty(), "{:?}", host.cases_opened());
    assert!(!topics(&host).contains(&"hotline.false-rectification".to_owned()));
    // The same family (0205), another category: a match by family, not when exact.
    host.set_config("category-match", "exact");
    deliver(&host, "case.reported", report("c4", "020502", "中山路88号门口有游商叫卖，无照经营"), T0 + days(3.0));
    assert!(host.cases_opened().is_empty());
    host.set_config("category-match", "family");
    deliver(&host, "case.reported", report("c5", "020502", "中山路88号门口有游商叫卖，无照经营"), T0 + days(3.0));
    assert_eq!(host.cases_opened().len(), 1);
    assert_eq!(host.published().last().unwrap().payload["category_code"], "020501");
    no_denials(&host);
}

#[test]
fn a_reopened_case_is_no_closure_to_check_against() {
    let host = host();
    deliver(&host, "case.reported", report("c1", "020501", STALL), T0);
    close(&host, "c1", "chengguan", T0 + days(1.0));
    deliver(&host, "case.reopen", moved("c1", "reopen", "chengguan"), T0 + days(2.0));
    assert_eq!(host.record(DATASET, "c1").unwrap()["status"], "reopened");
    deliver(&host, "case.reported", with(report("c2", "020501", STALL), "caller", json!(CALLER_B)), T0 + days(3.0));
    assert!(host.cases_opened().is_empty());
    no_denials(&host);
}

#[test]
fn a_closure_without_a_department_supervises_the_classified_one() {
    let host = host();
    deliver(&host, "case.reported", report("c1", "020501", STALL), T0);
    deliver(&host, "case.close", with(moved("c1", "close", ""), "department", Value::Null), T0 + days(1.0));
    deliver(&host, "case.reported", with(report("c2", "020501", STALL), "caller", json!(CALLER_B)), T0 + days(2.0));
    let supervision = host.cases_opened()[0].id.clone();
    let route = host.route_suggestions().into_iter().find(|r| r.case_id == supervision).unwrap();
    assert_eq!(route.suggestion.department, "chengguan");
}

/// Every kind of bad input: a logged reason, and nothing opened, noted, suggested,
/// published or written.
#[test]
fn bad_input_is_skipped_with_a_logged_reason() {
    let host = host();
    let good = report("c1", "020501", STALL);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("case.reported", json!([1, 2]), "not a JSON object"),
        ("case.reported", with(good.clone(), "case", Value::Null), "field `case`: invalid type: null"),
        ("case.reported", with(good.clone(), "case", json!(7)), "field `case`: invalid type: integer `7`"),
        ("case.reported", with(good.clone(), "category_code", json!("0205")), "not 6 digits"),
        ("case.reported", with(good.clone(), "category_code", Value::Null), "field `category_code`: invalid type: null"),
        ("case.reported", with(good.clone(), "description", json!("   ")), "field `description` is empty"),
        ("case.reported", with(good.clone(), "description", json!(["占道"])), "field `description`: invalid type: sequence"),
        ("case.reported", with(good.clone(), "caller", json!(13_900_001_111_i64)), "field `caller`: invalid type: integer"),
        ("case.reported", with(good.clone(), "caller", json!("13900001111")), "not 16 hex digits"),
        ("case.reported", with(good.clone(), "address", json!({ "road": "中山路" })), "field `address`"),
        ("case.reported", with(good.clone(), "channel", json!("fax")), "unknown channel `fax`"),
        ("case.reported", with(good.clone(), "channel", Value::Null), "field `channel` is missing"),
        ("case.close", moved("c404", "close", "chengguan"), "case c404 is not a case this plugin has seen"),
        ("case.close", without(moved("c1", "close", "chengguan"), "case"), "missing field `case`"),
        ("case.close", with(moved("c1", "close", "chengguan"), "department", json!(3)), "field `department`: invalid type: integer `3`"),
        ("case.reopen", moved("c404", "reopen", "chengguan"), "c404 is not a case"),
        ("case.dispatch", json!({ "case": "c1" }), "not a topic this plugin handles"),
    ];
    for (topic, payload, needle) in cases {
        deliver(&host, topic, payload.clone(), T0);
        let logged = warnings(&host);
        assert_eq!(logged.len(), 1, "{topic} {payload}: {logged:?}");
        assert!(logged[0].contains(needle), "{needle}: {}", logged[0]);
        host.clear_calls();
    }
    // Malformed JSON and a time that is no time.
    let mut broken = Event::test("case.reported", json!({})).with_time(T0);
    broken.payload = "{\"case\": \"c1\", ".into();
    host.deliver::<AsHandler<Hotline>>(broken).unwrap();
    deliver(&host, "case.reported", good.clone(), 0);
    let logged = warnings(&host);
    assert!(logged[0].contains("not JSON") && logged[1].contains("is not a time"), "{logged:?}");
    host.clear_calls();

    assert!(host.published().is_empty() && host.cases_opened().is_empty() && host.notes().is_empty());
    assert!(host.route_suggestions().is_empty() && host.data_written().is_empty());

    // A closure timed before its case was reported changes nothing.
    deliver(&host, "case.reported", good, T0);
    host.clear_calls();
    close(&host, "c1", "chengguan", T0 - 1);
    assert!(warnings(&host)[0].contains("before case c1 was reported"), "{:?}", host.logs());
    assert!(host.data_written().is_empty());
    assert_eq!(host.record(DATASET, "c1").unwrap()["status"], "open");
    no_denials(&host);
}

#[test]
fn reports_of_other_channels_are_ignored_quietly() {
    let host = host();
    deliver(&host, "case.reported", with(report("c1", "020501", STALL), "channel", json!("patrol")), T0);
    deliver(&host, "case.reported", json!({ "case": "c2", "channel": "department", "category_code": "020604" }), T0);
    assert!(warnings(&host).is_empty(), "{:?}", host.logs());
    assert!(host.published().is_empty() && host.data_written().is_empty());
}

#[test]
fn a_broken_configuration_refuses_the_load_naming_the_rule() {
    for (key, value, needle) in [
        ("rules", "020501 chengguan 占道经营: 摆摊=2\n020502 chengguan 游商 叫卖=1", "config `rules`: line 2 (`020502 chengguan 游商 叫卖=1`): expected"),
        ("rules", "020501 chengguan 占道经营: 摆摊=很重", "config `rules`: line 1 (`020501 chengguan 占道经营: 摆摊=很重`): term `摆摊=很重`: weight `很重` is not a positive number"),
        ("urgency", "urgent: 起火\nsevere: 爆炸", "config `urgency`: line 2"),
        ("channels", "hotline, fax", "config `channels`: `fax` is not a channel"),
        ("category-match", "fuzzy", "config `category-match`"),
        ("supervision-level", "province", "config key `supervision-level`"),
        ("supervision-category", "0206", "config `supervision-category`"),
        ("false-rectification-days", "0", "config `false-rectification-days`"),
        ("confident-score", "1", "config `confident-score`"),
    ] {
        let _host = mock().config(key, value).install();
        match Hotline::init() {
            Err(Error::Invalid(m)) => assert!(m.contains(needle), "{key}: {m}"),
            other => panic!("{key}: {other:?}"),
        }
    }
    // Without `rules` at all.
    let text = std::fs::read_to_string("plugin.toml").unwrap().replace("rules = \"\"\"", "unused = \"\"\"");
    let _host = MockHost::new().manifest_text(&text).unwrap().install();
    assert_eq!(Hotline::init(), Err(Error::Invalid("config `rules`: is not set".into())));
}

#[test]
fn the_manifest_s_rules_all_parse() {
    let _host = mock().install();
    let p = Params::from_config().unwrap();
    assert!(p.rules.len() >= 15, "{}", p.rules.len());
    assert_eq!(p.channels, ["hotline", "snapshot"]);
    assert_eq!((p.false_rectification_days, p.category_match), (15, CategoryMatch::Family));
}

// ---- The cost of a report does not grow with the history ----------------------------------

/// A caller key (16 hex digits) for caller number `n`.
fn caller_key(n: usize) -> String {
    format!("{n:016x}")
}

/// Case ids that sort by time, as the host's (UUIDv7) do.
fn long_run_case(i: usize) -> String {
    format!("h{i:06}")
}

/// A routine hotline report of piled-up garbage.
fn routine(case: &str, caller: Option<&str>, address: &str) -> Value {
    json!({
        "case": case, "report": format!("r-{case}"), "ticket": "T", "channel": "hotline",
        "category_code": "020101", "area": "32010200100101", "title": "",
        "description": "小区门口垃圾堆成山，没人清理", "address": address, "caller": caller,
    })
}

/// A busy address stays a repeat address after more reports than `history-limit`:
/// what is read for it is its recent reports, not the first ones ever remembered.
#[test]
fn a_busy_address_is_judged_by_its_recent_reports_not_its_first_ones() {
    let mut m = mock().config("history-limit", "200");
    for i in 0..=300 {
        m = m.case(long_run_case(i));
    }
    let host = m.install();
    // One report a day for 300 days, then one more.
    for i in 0..=300 {
        deliver(&host, "case.reported", routine(&long_run_case(i), None, "幸福路1号"), T0 + days(i as f64));
        if i < 300 {
            host.clear_calls();
        }
    }
    let repeat = host.published().into_iter().find(|p| p.topic == "hotline.repeat").expect("a repeat address");
    let expected: Vec<String> = (270..300).map(long_run_case).collect();
    assert_eq!(repeat.payload["address_cases"], json!(expected));
    assert_eq!(repeat.payload["address_count"], 30);
    no_denials(&host);
}

/// Twenty thousand reports over more than a year, some closed: each report reads and
/// writes a bounded amount (its caller's and its address's recent reports, by key; the
/// plugin never queries the data set), and repeats and 假性整改 are still found.
#[test]
fn a_year_of_reports_costs_the_same_per_report_at_its_end_as_at_its_start() {
    const N: usize = 20_000;
    const STEP: i64 = 30 * 60_000;
    const CALLERS: usize = 500;
    const ADDRESSES: usize = 40;
    const CLOSE_EVERY: usize = 97;
    const CLOSE_AFTER: usize = 50;
    let address = |i: usize| format!("幸福路{}号", i % ADDRESSES);
    let time = |i: usize| T0 + i as i64 * STEP;

    let mut m = mock().fail("data.query", Error::Unavailable("no scans: read by key".into()));
    for i in 0..=N {
        m = m.case(long_run_case(i));
    }
    let host = m.install();
    let (mut largest, mut most_writes, mut most_recent) = (0usize, 0usize, 0usize);
    let mut measure = |host: &InstalledHost| {
        let written = host.data_written();
        most_writes = most_writes.max(written.len());
        for w in written {
            largest = largest.max(w.value.to_string().len());
            if let Some(reports) = w.value.get("reports").and_then(Value::as_array) {
                most_recent = most_recent.max(reports.len());
            }
        }
        host.clear_calls();
    };
    for i in 0..N {
        let caller = caller_key(i % CALLERS);
        deliver(&host, "case.reported", routine(&long_run_case(i), Some(&caller), &address(i)), time(i));
        measure(&host);
        if i >= CLOSE_AFTER && (i - CLOSE_AFTER).is_multiple_of(CLOSE_EVERY) {
            close(&host, &long_run_case(i - CLOSE_AFTER), "chengguan", time(i));
            measure(&host);
        }
    }
    // A report writes itself, its caller's and its address's recent reports, and at
    // most one closed case it supervises; a record holds at most the 30 days' reports
    // of an address (one every 20 hours) and is a few kilobytes, however long the run.
    assert!(most_writes <= 4, "{most_writes} writes for one event");
    assert!(most_recent <= 38, "{most_recent} reports kept for one caller or address");
    assert!(largest <= 8 * 1024, "a record of {largest} bytes");

    // The last report: its repeats and 假性整改 as the whole history says.
    let (caller, at, now) = (caller_key(N % CALLERS), address(N), time(N));
    deliver(&host, "case.reported", routine(&long_run_case(N), Some(&caller), &at), now);
    let within = |i: &usize| now - time(*i) <= days(30.0);
    let by_caller: Vec<String> = (0..N).filter(|i| i % CALLERS == N % CALLERS).filter(within).map(long_run_case).collect();
    let by_address: Vec<String> = (0..N).filter(|i| i % ADDRESSES == N % ADDRESSES).filter(within).map(long_run_case).collect();
    let closed: Vec<String> = (0..N - CLOSE_AFTER)
        .filter(|j| j % CLOSE_EVERY == 0 && j % ADDRESSES == N % ADDRESSES)
        .filter(|j| now - time(j + CLOSE_AFTER) <= days(15.0))
        .map(long_run_case)
        .collect();
    assert!(by_caller.len() >= 2 && by_address.len() >= 30 && !closed.is_empty(), "the run is long enough");
    let repeat = host.published().into_iter().find(|p| p.topic == "hotline.repeat").expect("a repeat");
    assert_eq!((&repeat.payload["caller_cases"], &repeat.payload["address_cases"]), (&json!(by_caller), &json!(by_address)));
    let supervised: Vec<Value> = host
        .published()
        .into_iter()
        .filter(|p| p.topic == "hotline.false-rectification")
        .map(|p| p.payload["closed_case"].clone())
        .collect();
    assert_eq!(supervised, closed.iter().map(|c| json!(c)).collect::<Vec<_>>());
    no_denials(&host);
}

/// What the recent reports of an address keep: the repeat window, the cases closed
/// within `false-rectification-days`, at most `history-limit` of them, those that count
/// latest; and a key the host takes, however long the address.
#[test]
fn recent_reports_keep_what_a_later_report_can_use_and_no_more() {
    let host = mock().config("history-limit", "3").install();
    let p = Params::from_config().unwrap();
    let seen = |case: &str, time: i64, closed: Option<i64>| Seen { case: case.into(), time, codes: vec!["020101".into()], closed };
    let mut r = Recent { kind: ADDRESS.into(), subject: "中山路88号".into(), reports: Vec::new() };
    r.note(seen("old", T0 - days(40.0), None));
    r.note(seen("closed-late", T0 - days(40.0), Some(T0 - days(10.0))));
    r.note(seen("closed-long-ago", T0 - days(60.0), Some(T0 - days(20.0))));
    r.note(seen("a", T0 - days(3.0), None));
    r.note(seen("b", T0 - days(2.0), None));
    r.note(seen("b", T0 - days(1.0), None));
    r.clone().save(&p, T0).unwrap();
    let kept: Recent = yiwang_sdk::serde_json::from_value(host.record(DATASET, "address:中山路88号").unwrap()).unwrap();
    let cases: Vec<&str> = kept.reports.iter().map(|s| s.case.as_str()).collect();
    assert_eq!(cases, ["closed-late", "a", "b"], "time order; a redelivered report once");
    // Over the limit, the report that counts earliest goes first.
    r.note(seen("c", T0, None));
    r.save(&p, T0).unwrap();
    let kept: Recent = yiwang_sdk::serde_json::from_value(host.record(DATASET, "address:中山路88号").unwrap()).unwrap();
    let cases: Vec<&str> = kept.reports.iter().map(|s| s.case.as_str()).collect();
    assert_eq!(cases, ["a", "b", "c"]);

    let long = "幸福里".repeat(100);
    let key = Recent::key(ADDRESS, &long);
    assert!(key.starts_with("address#") && key.len() <= 256, "{key}");
    assert_eq!(key, Recent::key(ADDRESS, &long));
    assert_ne!(key, Recent::key(ADDRESS, &"幸福里".repeat(101)));
    assert_eq!(Recent::key(CALLER, CALLER_A), format!("caller:{CALLER_A}"));
}
