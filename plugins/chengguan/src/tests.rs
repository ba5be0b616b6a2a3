//! Unit tests through the plugin's own entry points, against the SDK's mock host
//! with the real `plugin.toml` (its grants and `[config]`).

use yiwang_sdk::cases::CommandLevel;
use yiwang_sdk::mock::{InstalledHost, MockHost, WarningOrigin};
use yiwang_sdk::prelude::*;
use yiwang_sdk::serde_json::Value;

use super::*;
use crate::bins::{BinParams, BinState, Finding};
use crate::calendar::{DAY_MS, HOUR_MS};
use crate::hotspot::HotspotParams;

const GRID: &str = "32010200100101";
const STREET: &str = "320102001";
const AT: GeoPoint = GeoPoint {
    lat: 32.042,
    lon: 118.785,
};
const MIN: i64 = 60_000;

/// UTC midnight at the start of `y-m-d`, in ms.
fn utc_midnight(y: i32, m: u32, d: u32) -> i64 {
    let date = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis()
}

/// Wednesday 2026-03-04 at `hour`:00 local time (UTC+8), in ms.
fn local(hour: i64) -> i64 {
    utc_midnight(2026, 3, 4) + (hour - 8) * HOUR_MS
}

fn host() -> MockHost {
    MockHost::new().manifest("plugin.toml").unwrap()
}

fn reported(case: &str, code: &str, area: Value) -> Event {
    Event::test(
        "case.reported",
        json!({
            "case": case, "report": format!("r-{case}"), "ticket": format!("T-{case}"), "channel": "hotline",
            "category_code": code, "area": area, "title": "群众反映", "description": "有人在人行道上摆摊",
            "address": "长江路 12 号", "caller": null
        }),
    )
    .with_time(local(10))
    .with_location(AT)
}

fn raw_event(topic: &str, payload: &str) -> Event {
    Event {
        payload: payload.into(),
        ..Event::test(topic, json!({}))
            .with_time(local(10))
            .with_location(AT)
    }
}

fn warn_logs(host: &InstalledHost) -> Vec<String> {
    host.logs()
        .into_iter()
        .filter(|l| l.level == yiwang_sdk::log::Level::Warn)
        .map(|l| l.message)
        .collect()
}

fn no_denials(host: &InstalledHost) {
    assert!(host.denials().is_empty(), "{:?}", host.denials());
}

#[test]
fn the_real_configuration_loads_and_is_consistent() {
    let _host = host().install();
    Chengguan::init().unwrap();
    let cases = handling::CaseParams::from_config().unwrap();
    let hot = HotspotParams::from_config().unwrap();
    for t in &cases.types {
        for code in &t.codes {
            assert!(
                hot.categories.contains(code),
                "{code} is handled but not counted for hot spots"
            );
        }
    }
    for code in &hot.categories {
        assert!(category_name(code).is_some(), "{code} has no name");
    }
}

#[test]
fn a_broken_configuration_refuses_the_load() {
    for (key, value) in [
        ("bin-rearm-pct", "95"),
        ("vending-level", "province"),
        ("manhole-codes", "020501"),
        ("hotspot-warning-category", "weather"),
        ("hotspot-factor", "0.5"),
        ("city-bbox", "118,32,117"),
        ("route-score", "1.5"),
    ] {
        let _host = host().config(key, value).install();
        assert!(Chengguan::init().is_err(), "{key} = {value}");
    }
}

// ---------------------------------------------------------------------------------
// Case handling.

#[test]
fn a_vending_case_in_a_grid_is_routed_to_the_street_patrol() {
    let host = host().case("c1").install();
    host.deliver::<Chengguan>(reported("c1", "020501", json!(GRID)))
        .unwrap();

    let routes = host.route_suggestions();
    assert_eq!(routes.len(), 1);
    let s = &routes[0].suggestion;
    assert_eq!(
        (routes[0].case_id.as_str(), s.department.as_str(), s.level),
        ("c1", "chengguan", CommandLevel::Community)
    );
    assert_eq!(s.score, 0.9);
    assert!(
        s.reason.contains("占道经营") && s.reason.contains(GRID),
        "{}",
        s.reason
    );

    let notes = host.notes();
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].text.contains("劝导") && notes[0].text.contains("1 小时内到场处置"),
        "{}",
        notes[0].text
    );

    let sent = host.messages_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].to,
        Recipient::Role((STREET.into(), "handler".into()))
    );
    assert!(
        sent[0].subject.contains("占道经营") && sent[0].subject.contains("T-c1"),
        "{}",
        sent[0].subject
    );
    assert!(
        sent[0].body.contains("长江路 12 号") && sent[0].body.contains("有人在人行道上摆摊"),
        "{}",
        sent[0].body
    );
    assert!(host.warnings_raised().is_empty());
    no_denials(&host);
}

#[test]
fn each_case_type_gets_its_level_and_procedure() {
    for (code, level, words) in [
        ("020502", CommandLevel::Community, "劝导"),
        ("020101", CommandLevel::Community, "2 小时内清运"),
        ("020102", CommandLevel::Community, "渣土"),
        ("020302", CommandLevel::Street, "《责令停止违法行为通知书》"),
        (
            "010101",
            CommandLevel::Street,
            "围挡警示、通知权属单位、4 小时内补盖",
        ),
        ("010110", CommandLevel::Street, "4 小时内补盖"),
        ("020405", CommandLevel::Street, "4 小时内补盖"),
    ] {
        let host = host().case("c1").install();
        host.deliver::<Chengguan>(reported("c1", code, json!(GRID)))
            .unwrap();
        assert_eq!(
            host.route_suggestions()[0].suggestion.level,
            level,
            "{code}"
        );
        assert!(
            host.notes()[0].text.contains(words),
            "{code}: {}",
            host.notes()[0].text
        );
        assert_eq!(
            host.messages_sent()[0].to,
            Recipient::Role((STREET.into(), "handler".into())),
            "{code}"
        );
        no_denials(&host);
    }
}

#[test]
fn a_repeated_illegal_construction_in_the_grid_goes_to_the_district() {
    let host = host().case("c1").case("c2").case("c3").install();
    host.deliver::<Chengguan>(reported("c1", "020302", json!(GRID)))
        .unwrap();
    // Another grid's report does not count for this one.
    host.deliver::<Chengguan>(reported("c3", "020302", json!("32010200100102")))
        .unwrap();
    host.deliver::<Chengguan>(reported("c2", "020302", json!(GRID)))
        .unwrap();
    let levels: Vec<CommandLevel> = host
        .route_suggestions()
        .iter()
        .map(|r| r.suggestion.level)
        .collect();
    assert_eq!(
        levels,
        [
            CommandLevel::Street,
            CommandLevel::Street,
            CommandLevel::District
        ]
    );
    let note = &host.notes()[2].text;
    assert!(note.contains("本网格本周第 2 起违法建设举报"), "{note}");
    no_denials(&host);
}

#[test]
fn a_manhole_report_at_night_or_on_a_main_road_is_urgent() {
    let night = reported("c1", "010102", json!(GRID)).with_time(local(23));
    let early = reported("c2", "020405", json!(GRID)).with_time(local(6));
    let mut main_road = reported("c3", "010103", json!(GRID));
    main_road.payload = main_road.payload.replace("长江路 12 号", "中山大道 88 号");
    let day = reported("c4", "010103", json!(GRID));
    let host = host().case("c1").case("c2").case("c3").case("c4").install();
    for e in [night, early, main_road, day] {
        host.deliver::<Chengguan>(e).unwrap();
    }
    let notes = host.notes();
    assert!(
        notes[0].text.starts_with("【紧急】") && notes[0].text.contains("夜间上报（23 时）"),
        "{}",
        notes[0].text
    );
    assert!(
        notes[1].text.contains("夜间上报（6 时）"),
        "{}",
        notes[1].text
    );
    assert!(
        notes[2].text.contains("位于主干道（大道）"),
        "{}",
        notes[2].text
    );
    assert!(
        notes[2].text.contains("30 分钟内到场设置警示"),
        "{}",
        notes[2].text
    );
    assert!(
        !notes[3].text.contains("紧急") && notes[3].text.contains("到场设置警示后 4 小时内补盖"),
        "{}",
        notes[3].text
    );
    let sent = host.messages_sent();
    assert!(sent[0].subject.starts_with("【紧急】") && !sent[3].subject.contains("紧急"));
    // Urgent handling keeps the street level.
    assert!(
        host.route_suggestions()
            .iter()
            .all(|r| r.suggestion.level == CommandLevel::Street)
    );
    no_denials(&host);
}

#[test]
fn a_case_without_a_grid_goes_to_the_city_duty_unit() {
    let host = host().case("c1").case("c2").install();
    host.deliver::<Chengguan>(reported("c1", "020501", Value::Null))
        .unwrap();
    host.deliver::<Chengguan>(reported("c2", "020302", json!("3201")))
        .unwrap();
    let notes = host.notes();
    assert!(
        notes[0]
            .text
            .contains("案件无所属网格（上报未定位或位置不在任何网格内）"),
        "{}",
        notes[0].text
    );
    assert!(
        notes[0].text.contains("市级城管值班（320100）"),
        "{}",
        notes[0].text
    );
    assert!(
        notes[1].text.contains("网格编码 \"3201\" 无效"),
        "{}",
        notes[1].text
    );
    let to: Vec<Recipient> = host.messages_sent().into_iter().map(|m| m.to).collect();
    assert_eq!(
        to,
        [
            Recipient::Role(("320100".into(), "handler".into())),
            Recipient::Role(("320100".into(), "handler".into()))
        ]
    );
    assert!(
        host.route_suggestions()[0]
            .suggestion
            .reason
            .contains("案件无网格")
    );
    // Without a grid nothing is counted for hot spots; each case says why in the log.
    assert!(host.data_written().is_empty(), "{:?}", host.data_written());
    let logs = warn_logs(&host);
    assert!(
        logs.iter()
            .any(|l| l.contains("c1") && l.contains("no grid")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("c2") && l.contains("not a 14-digit grid code")),
        "{logs:?}"
    );
    no_denials(&host);
}

#[test]
fn other_categories_are_left_alone() {
    let host = host().case("c1").install();
    host.deliver::<Chengguan>(reported("c1", "020401", json!(GRID)))
        .unwrap();
    assert!(
        host.route_suggestions().is_empty()
            && host.notes().is_empty()
            && host.messages_sent().is_empty()
    );
    assert!(host.data_written().is_empty());
    // A category chengguan owns but does not route (道路不洁) is still counted.
    host.deliver::<Chengguan>(reported("c1", "020103", json!(GRID)))
        .unwrap();
    assert!(host.route_suggestions().is_empty());
    assert_eq!(host.data_written().len(), 1);
    no_denials(&host);
}

#[test]
fn malformed_case_events_are_skipped_with_a_logged_reason() {
    let host = host().case("c1").install();
    for payload in [
        "not json",
        "[1, 2]",
        r#"{"category_code": "020501", "area": "32010200100101"}"#,
        r#"{"case": "c1", "area": "32010200100101"}"#,
        r#"{"case": "", "category_code": "020501"}"#,
        r#"{"case": 7, "category_code": "020501"}"#,
    ] {
        host.deliver::<Chengguan>(raw_event("case.reported", payload))
            .unwrap();
    }
    assert!(
        host.route_suggestions().is_empty()
            && host.notes().is_empty()
            && host.messages_sent().is_empty()
    );
    assert!(host.data_written().is_empty() && host.warnings_raised().is_empty());
    assert_eq!(warn_logs(&host).len(), 6, "{:?}", host.logs());
}

#[test]
fn a_host_failure_is_reported_but_the_other_steps_still_run() {
    let host = host()
        .case("c1")
        .fail("cases.add-note", Error::Unavailable("storage down".into()))
        .install();
    let err = host
        .deliver::<Chengguan>(reported("c1", "020501", json!(GRID)))
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert_eq!(host.route_suggestions().len(), 1);
    assert_eq!(host.messages_sent().len(), 1);
}

// ---------------------------------------------------------------------------------
// Complaint hot spots.

fn grid_week(count: u32) -> Value {
    json!({ "kind": "grid-week", "count": count })
}

/// Reports `n` vending cases `c<first>`... in GRID at `time`.
fn report_many(host: &InstalledHost, first: usize, n: usize, time: i64) {
    for i in first..first + n {
        host.deliver::<Chengguan>(
            reported(&format!("c{i}"), "020501", json!(GRID)).with_time(time),
        )
        .unwrap();
    }
}

fn with_cases(mut h: MockHost, n: usize) -> MockHost {
    for i in 0..n {
        h = h.case(format!("c{i}"));
    }
    h
}

#[test]
fn a_grid_week_becomes_a_hot_spot_once() {
    // Previous weeks: 2026-W09 2, W08 missing, W07 1, W06 1: a baseline of 1.0.
    let host = with_cases(host(), 10)
        .data(STATE_DATASET, format!("{GRID}/2026-W09"), grid_week(2))
        .data(STATE_DATASET, format!("{GRID}/2026-W07"), grid_week(1))
        .data(STATE_DATASET, format!("{GRID}/2026-W06"), grid_week(1))
        // Five weeks back is outside the baseline.
        .data(STATE_DATASET, format!("{GRID}/2026-W05"), grid_week(40))
        .install();
    report_many(&host, 0, 4, local(10));
    assert!(
        host.warnings_raised().is_empty(),
        "4 is below hotspot-min-count"
    );
    report_many(&host, 4, 1, local(11));
    let warnings = host.warnings_raised();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].origin, WarningOrigin::Raised);
    let w = &warnings[0].warning;
    assert_eq!(
        (w.category, w.severity, w.certainty, w.urgency),
        (
            WarningCategory::Other,
            Severity::Moderate,
            Certainty::Likely,
            Urgency::Expected
        )
    );
    assert_eq!(w.event, "城管投诉热点");
    assert_eq!(
        w.area.shapes,
        vec![AreaShape::Circle(Circle {
            center: AT,
            radius_km: 0.5
        })]
    );
    assert!(
        w.description.contains("5 件") && w.description.contains("1.0 件"),
        "{}",
        w.description
    );
    let param = |name: &str| {
        w.parameters
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        (
            param("grid"),
            param("week"),
            param("count"),
            param("baseline")
        ),
        (Some(GRID), Some("2026-W10"), Some("5"), Some("1.00"))
    );

    let published = host.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].topic, "chengguan.hotspot");
    let p = &published[0].payload;
    assert_eq!(
        (&p["grid"], &p["week"], &p["count"], &p["baseline"]),
        (&json!(GRID), &json!("2026-W10"), &json!(5), &json!(1.0))
    );
    assert_eq!(p["warning"], json!(warnings[0].id));

    // More reports the same week: no second warning.
    report_many(&host, 5, 3, local(12));
    assert_eq!(host.warnings_raised().len(), 1);
    assert_eq!(host.published().len(), 1);
    let rec = host
        .record(STATE_DATASET, &format!("{GRID}/2026-W10"))
        .unwrap();
    assert_eq!(
        (&rec["count"], &rec["warned"], &rec["categories"]["020501"]),
        (&json!(8), &json!(true), &json!(8))
    );
    assert_eq!(rec["cases"].as_array().unwrap().len(), 8);
    no_denials(&host);
}

#[test]
fn a_grid_busy_every_week_is_no_hot_spot() {
    // A baseline of 4 a week: 8 reports are not more than twice that.
    let mut h = with_cases(host(), 10);
    for w in 6..=9 {
        h = h.data(STATE_DATASET, format!("{GRID}/2026-W{w:02}"), grid_week(4));
    }
    let host = h.install();
    report_many(&host, 0, 8, local(10));
    assert!(host.warnings_raised().is_empty());
    report_many(&host, 8, 1, local(10));
    assert_eq!(host.warnings_raised().len(), 1, "9 > 2 × 4");
}

#[test]
fn the_hot_spot_rule() {
    let _host = host().install();
    let p = HotspotParams::from_config().unwrap();
    for (count, baseline, expected) in [
        (4, 0.0, false),
        (5, 0.0, true),
        (5, 2.5, false),
        (6, 2.5, true),
        (100, 50.0, false),
    ] {
        assert_eq!(
            p.is_hotspot(count, baseline),
            expected,
            "{count} vs {baseline}"
        );
    }
}

#[test]
fn the_week_is_the_local_iso_week_and_a_replay_counts_once() {
    let host = host().case("c1").install();
    // Sunday 2026-03-08 16:30 UTC is Monday 2026-03-09 00:30 in UTC+8: week 11.
    let t = utc_midnight(2026, 3, 8) + 16 * HOUR_MS + 30 * MIN;
    host.deliver::<Chengguan>(reported("c1", "020101", json!(GRID)).with_time(t))
        .unwrap();
    host.deliver::<Chengguan>(reported("c1", "020101", json!(GRID)).with_time(t))
        .unwrap();
    let rec = host
        .record(STATE_DATASET, &format!("{GRID}/2026-W11"))
        .expect("counted in W11");
    assert_eq!(
        (&rec["count"], &rec["grid"], &rec["week"], &rec["kind"]),
        (
            &json!(1),
            &json!(GRID),
            &json!("2026-W11"),
            &json!("grid-week")
        )
    );
    assert!(
        host.record(STATE_DATASET, &format!("{GRID}/2026-W10"))
            .is_none()
    );
}

#[test]
fn warnings_and_cap_alerts_are_not_complaints() {
    let host = host().case("c1").install();
    let mut e = reported("c1", "020101", json!(GRID));
    e.payload = e.payload.replace("\"hotline\"", "\"warning\"");
    host.deliver::<Chengguan>(e).unwrap();
    assert!(host.data_written().is_empty());
    // The case is still handled.
    assert_eq!(host.route_suggestions().len(), 1);
}

#[test]
fn a_hot_spot_without_a_position_waits_for_one() {
    let host = with_cases(host(), 6).install();
    for i in 0..5 {
        let mut e = reported(&format!("c{i}"), "020501", json!(GRID));
        e.location = None;
        host.deliver::<Chengguan>(e).unwrap();
    }
    assert!(host.warnings_raised().is_empty());
    assert!(
        warn_logs(&host)
            .iter()
            .any(|l| l.contains("no report had a position")),
        "{:?}",
        host.logs()
    );
    // A report far outside the city gives no position either.
    let mut e = reported("c5", "020501", json!(GRID));
    e.location = Some(GeoPoint::new(0.0, 0.0));
    host.deliver::<Chengguan>(e).unwrap();
    assert!(host.warnings_raised().is_empty());
    host.deliver::<Chengguan>(reported("c6", "020501", json!(GRID)))
        .unwrap_err();
    // `c6` was not declared: its route fails, but the count and the warning stand.
    assert_eq!(host.warnings_raised().len(), 1);
    assert_eq!(
        host.record(STATE_DATASET, &format!("{GRID}/2026-W10"))
            .unwrap()["count"],
        json!(7)
    );
}

#[test]
fn a_failed_warning_keeps_the_count_and_leaves_the_week_unwarned() {
    let host = with_cases(host(), 7)
        .fail("cases.raise-warning", Error::Unavailable("down".into()))
        .install();
    report_many(&host, 0, 4, local(10));
    assert!(
        host.deliver::<Chengguan>(reported("c4", "020501", json!(GRID)))
            .is_err()
    );
    let rec = host
        .record(STATE_DATASET, &format!("{GRID}/2026-W10"))
        .unwrap();
    assert_eq!(
        (&rec["count"], &rec["warned"]),
        (&json!(5), &json!(false)),
        "the count is kept"
    );
}

// ---------------------------------------------------------------------------------
// Bin fill level.

const BIN_AT: GeoPoint = GeoPoint {
    lat: 32.0431,
    lon: 118.7862,
};

fn bin_event(value: Value, time: i64) -> Event {
    Event::test(
        "iot.reading.bin-fill",
        json!({ "sensor": "bin-1", "value": value, "unit": "%", "time": time }),
    )
    .with_time(time)
    .with_location(BIN_AT)
}

/// Delivers the readings (time, fill) in order to a host that knows all of them
/// (as the host does: a batch is stored before its events go out); the warnings.
fn feed(readings: &[(i64, f64)], h: MockHost) -> (InstalledHost, Vec<Vec<Warning>>) {
    let host = h
        .sensor("bin-1", "bin-fill", "%", readings.iter().copied())
        .install();
    let mut out = Vec::new();
    for &(t, v) in readings {
        let before = host.warnings_raised().len();
        host.deliver::<Chengguan>(bin_event(json!(v), t)).unwrap();
        out.push(
            host.warnings_raised()[before..]
                .iter()
                .map(|w| w.warning.clone())
                .collect(),
        );
    }
    (host, out)
}

#[test]
fn a_bin_crossing_the_full_level_warns_once_per_filling() {
    let t = local(8);
    let readings = [
        (t, 60.0),
        (t + 10 * MIN, 92.0),
        (t + 20 * MIN, 95.0),
        (t + 30 * MIN, 89.0),
        (t + 40 * MIN, 91.0),
        (t + 50 * MIN, 30.0),
        (t + 60 * MIN, 93.0),
    ];
    let (host, out) = feed(&readings, host());
    let counts: Vec<usize> = out.iter().map(Vec::len).collect();
    // 92 crosses; 95, 89 and 91 (dipping below and back without an emptying) do not;
    // 30 empties the bin; 93 crosses again.
    assert_eq!(counts, [0, 1, 0, 0, 0, 0, 1]);
    let w = &out[1][0];
    assert_eq!(
        (w.category, w.severity, w.certainty, w.urgency),
        (
            WarningCategory::Env,
            Severity::Moderate,
            Certainty::Observed,
            Urgency::Expected
        )
    );
    assert_eq!(
        w.area.shapes,
        vec![AreaShape::Circle(Circle {
            center: BIN_AT,
            radius_km: 0.1
        })]
    );
    assert!(
        w.headline.contains("bin-1") && w.headline.contains("92%"),
        "{}",
        w.headline
    );
    assert!(
        host.warnings_raised()
            .iter()
            .all(|w| w.origin == WarningOrigin::Returned)
    );
    let state = host.record(STATE_DATASET, "bin/bin-1").unwrap();
    assert_eq!(
        (&state["value"], &state["full_warned"], &state["kind"]),
        (&json!(93.0), &json!(true), &json!("bin"))
    );
    no_denials(&host);
}

#[test]
fn a_fast_filling_bin_is_predicted_to_overflow() {
    let t = local(9);
    // 50 → 60 → 70 in an hour: 20 points an hour, full (90) in 1 hour.
    let readings = [
        (t - 60 * MIN, 50.0),
        (t - 30 * MIN, 60.0),
        (t, 70.0),
        (t + 10 * MIN, 73.0),
        (t + 60 * MIN, 91.0),
    ];
    let (host, out) = feed(&readings, host());
    let counts: Vec<usize> = out.iter().map(Vec::len).collect();
    assert_eq!(
        counts,
        [0, 0, 1, 0, 1],
        "one prediction per filling, then the crossing"
    );
    let w = &out[2][0];
    assert_eq!(
        (w.severity, w.certainty, w.category),
        (Severity::Minor, Certainty::Likely, WarningCategory::Env)
    );
    assert!(w.headline.contains("预计 1.0 小时内满溢"), "{}", w.headline);
    assert_eq!(out[4][0].severity, Severity::Moderate);
    no_denials(&host);
}

#[test]
fn a_slowly_filling_bin_is_not_predicted() {
    let t = local(9);
    // 5 points an hour from 60: 6 hours to full.
    let readings = [(t - 60 * MIN, 55.0), (t - 30 * MIN, 57.5), (t, 60.0)];
    let (_host, out) = feed(&readings, host());
    assert!(out.iter().all(Vec::is_empty));
}

#[test]
fn the_fill_rate_is_a_least_squares_slope_after_the_last_emptying() {
    let _host = host().install();
    let p = BinParams::from_config().unwrap();
    let t = local(12);
    let rate = p
        .fill_rate(&[(t - 60 * MIN, 40.0), (t - 30 * MIN, 52.0)], t, 60.0)
        .unwrap();
    // Points (0, 40), (0.5, 52), (1, 60): slope 20 per hour.
    assert!((rate - 20.0).abs() < 1e-9, "{rate}");
    // An emptying in the window restarts the filling: too few points after it.
    assert_eq!(
        p.fill_rate(
            &[
                (t - 90 * MIN, 95.0),
                (t - 60 * MIN, 10.0),
                (t - 30 * MIN, 30.0)
            ],
            t,
            50.0
        ),
        Some(40.0)
    );
    assert_eq!(
        p.fill_rate(&[(t - 60 * MIN, 95.0), (t - 30 * MIN, 10.0)], t, 30.0),
        None
    );
    // Too short a span, or readings outside the window, give no rate.
    assert_eq!(
        p.fill_rate(&[(t - 10 * MIN, 40.0), (t - 5 * MIN, 45.0)], t, 50.0),
        None
    );
    assert_eq!(
        p.fill_rate(&[(t - 600 * MIN, 0.0), (t - 500 * MIN, 10.0)], t, 50.0),
        None
    );
}

#[test]
fn out_of_order_and_repeated_readings_do_not_warn() {
    let t = local(14);
    let state = BinState {
        kind: "bin".into(),
        sensor: "bin-1".into(),
        time: t,
        value: 40.0,
        full_warned: false,
        predict_warned: false,
    };
    // The host's clock when the state was stored: just after its reading.
    let host = host()
        .now(t + MIN)
        .data(STATE_DATASET, "bin/bin-1", &state)
        .sensor("bin-1", "bin-fill", "%", [(t, 40.0)])
        .install();
    host.deliver::<Chengguan>(bin_event(json!(97.0), t - 5 * MIN))
        .unwrap();
    host.deliver::<Chengguan>(bin_event(json!(97.0), t))
        .unwrap();
    assert!(host.warnings_raised().is_empty());
    assert!(host.data_written().is_empty(), "the state is unchanged");
    let logs = warn_logs(&host);
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(
        logs.iter().all(|l| l.contains("out of order or repeated")),
        "{logs:?}"
    );
    // A newer one does.
    host.deliver::<Chengguan>(bin_event(json!(97.0), t + MIN))
        .unwrap();
    assert_eq!(host.warnings_raised().len(), 1);
}

#[test]
fn a_state_from_a_sensor_clock_gone_wrong_does_not_silence_the_bin() {
    let t = local(14);
    // The state says the latest reading was two days ahead of the host's clock
    // when it was stored.
    let state = BinState {
        kind: "bin".into(),
        sensor: "bin-1".into(),
        time: t + 2 * DAY_MS,
        value: 40.0,
        full_warned: false,
        predict_warned: false,
    };
    let host = host()
        .now(t)
        .data(STATE_DATASET, "bin/bin-1", &state)
        .sensor("bin-1", "bin-fill", "%", [])
        .install();
    host.deliver::<Chengguan>(bin_event(json!(95.0), t + MIN))
        .unwrap();
    assert_eq!(host.warnings_raised().len(), 1);
    assert!(
        warn_logs(&host)
            .iter()
            .any(|l| l.contains("ahead of the host clock")),
        "{:?}",
        host.logs()
    );
    assert_eq!(
        host.record(STATE_DATASET, "bin/bin-1").unwrap()["time"],
        json!(t + MIN)
    );
}

#[test]
fn without_a_state_the_previous_reading_decides_whether_the_bin_was_full() {
    let t = local(15);
    let host = host()
        .sensor("bin-1", "bin-fill", "%", [(t - 10 * MIN, 95.0)])
        .install();
    host.deliver::<Chengguan>(bin_event(json!(96.0), t))
        .unwrap();
    assert!(
        host.warnings_raised().is_empty(),
        "the bin was already full"
    );
    let host = MockHost::new()
        .manifest("plugin.toml")
        .unwrap()
        .sensor("bin-1", "bin-fill", "%", [(t - 10 * MIN, 70.0)])
        .install();
    host.deliver::<Chengguan>(bin_event(json!(96.0), t))
        .unwrap();
    assert_eq!(host.warnings_raised().len(), 1);
}

#[test]
fn a_fill_within_the_tolerance_counts_as_full() {
    let (_host, out) = feed(&[(local(7), 103.0)], host());
    assert_eq!(out[0].len(), 1);
    assert!(
        out[0][0].headline.contains("100%"),
        "{}",
        out[0][0].headline
    );
}

#[test]
fn bad_bin_readings_are_skipped_with_a_logged_reason() {
    let t = local(16);
    let host = host().sensor("bin-1", "bin-fill", "%", []).install();
    let payload = |p: Value| {
        Event::test("iot.reading.bin-fill", p)
            .with_time(t)
            .with_location(BIN_AT)
    };
    let events = vec![
        payload(json!({ "sensor": "bin-1", "value": 95.0, "unit": "L" })),
        payload(json!({ "sensor": "bin-1", "value": 140.0, "unit": "%" })),
        payload(json!({ "sensor": "bin-1", "value": -12.0, "unit": "%" })),
        payload(json!({ "sensor": "bin-1", "value": null, "unit": "%" })),
        payload(json!({ "sensor": "bin-1", "value": "95", "unit": "%" })),
        payload(json!({ "sensor": "bin-1", "unit": "%" })),
        payload(json!({ "value": 95.0, "unit": "%" })),
        payload(json!({ "sensor": "", "value": 95.0, "unit": "%" })),
        raw_event(
            "iot.reading.bin-fill",
            r#"{"sensor": "bin-1", "value": NaN, "unit": "%"}"#,
        ),
        raw_event("iot.reading.bin-fill", "{"),
        Event::test(
            "iot.reading.bin-fill",
            json!({ "sensor": "bin-1", "value": 95.0, "unit": "%" }),
        )
        .with_time(t),
        payload(json!({ "sensor": "bin-1", "value": 95.0, "unit": "%" }))
            .with_location(GeoPoint::new(31.0, 125.0)),
    ];
    let n = events.len();
    for e in events {
        host.deliver::<Chengguan>(e).unwrap();
    }
    assert!(host.warnings_raised().is_empty());
    assert!(host.data_written().is_empty());
    assert_eq!(warn_logs(&host).len(), n, "{:?}", host.logs());
    // The pure checks agree.
    let p = BinParams::from_config().unwrap();
    assert!(
        !p.plausible(f64::NAN)
            && !p.plausible(f64::INFINITY)
            && p.plausible(104.0)
            && !p.plausible(106.0)
    );
}

#[test]
fn a_failed_state_write_is_an_error_and_returns_no_warning() {
    let t = local(17);
    let host = host()
        .sensor("bin-1", "bin-fill", "%", [])
        .fail("data.put", Error::Unavailable("down".into()))
        .install();
    assert!(
        host.deliver::<Chengguan>(bin_event(json!(95.0), t))
            .is_err()
    );
    assert!(host.warnings_raised().is_empty());
}

#[test]
fn the_assessment_is_pure() {
    let _host = host().install();
    let p = BinParams::from_config().unwrap();
    let t = local(18);
    assert_eq!(
        bins::assess(&p, 95.0, t, None, &[]),
        (Some(Finding::Full), true, true)
    );
    let warned = BinState {
        full_warned: true,
        predict_warned: true,
        time: t - MIN,
        ..BinState::default()
    };
    assert_eq!(
        bins::assess(&p, 95.0, t, Some(&warned), &[]),
        (None, true, true)
    );
    assert_eq!(
        bins::assess(&p, 20.0, t, Some(&warned), &[]),
        (None, false, false)
    );
    assert_eq!(
        bins::assess(&p, 70.0, t, Some(&warned), &[]),
        (None, true, true),
        "not emptied: still armed off"
    );
}

// ---------------------------------------------------------------------------------
// The cost of an event does not grow with the history.

/// A guard, not a fix: a year of reports and bin readings, with queries failing.
/// Each report reads its grid-week and the baseline weeks by key and writes its
/// grid-week; each reading reads its bin's state and its window of readings and
/// writes the state. The records stay small (a grid-week keeps at most
/// `hotspot-max-case-ids` case ids) and their counts stay exact.
#[test]
fn a_year_of_reports_and_readings_costs_the_same_per_event() {
    const WEEKS: i64 = 50;
    const PER_WEEK: usize = 400;
    const GRIDS: usize = 10;
    let grid = |i: usize| format!("3201020010010{}", i % GRIDS);
    let time = |week: i64, i: usize| local(10) + week * 7 * DAY_MS + i as i64 * (7 * DAY_MS / PER_WEEK as i64);
    // Bin readings every 30 minutes, filling up and emptied every 12 hours.
    let readings: Vec<(i64, f64)> = (0..WEEKS * 7 * 48).map(|k| (local(10) + k * 30 * MIN, (k % 24) as f64 * 4.0)).collect();
    let host = with_cases(host(), WEEKS as usize * PER_WEEK)
        .sensor("bin-1", "bin-fill", "%", readings.iter().copied())
        .fail("data.query", Error::Unavailable("no scans: read by key".into()))
        .install();
    let (mut most_writes, mut largest, mut warned) = (0usize, 0usize, 0usize);
    let mut measure = |host: &InstalledHost| {
        warned += host.warnings_raised().len();
        let written = host.data_written();
        most_writes = most_writes.max(written.len());
        for w in written {
            largest = largest.max(w.value.to_string().len());
            if let Some(cases) = w.value.get("cases").and_then(Value::as_array) {
                assert!(cases.len() <= 50, "{}", w.key);
            }
        }
        host.clear_calls();
    };
    let mut next_reading = 0;
    for week in 0..WEEKS {
        for i in 0..PER_WEEK {
            let n = week as usize * PER_WEEK + i;
            let at = time(week, i);
            host.deliver::<Chengguan>(reported(&format!("c{n}"), "020501", json!(grid(i))).with_time(at))
                .unwrap();
            measure(&host);
            while next_reading < readings.len() && readings[next_reading].0 <= at {
                let (t, v) = readings[next_reading];
                host.deliver::<Chengguan>(bin_event(json!(v), t)).unwrap();
                measure(&host);
                next_reading += 1;
            }
        }
    }
    assert!(most_writes <= 1, "{most_writes} writes for one event");
    assert!(largest <= 4 * 1024, "a record of {largest} bytes");
    assert!(warned > 0, "hot spots and full bins were still found");
    let last = calendar::IsoWeek::of_time(time(WEEKS - 1, 0));
    let rec = host.record(STATE_DATASET, &hotspot::key(&grid(3), last)).unwrap();
    assert_eq!(rec["count"], json!(PER_WEEK / GRIDS));
    assert!(host.denials().is_empty(), "{:?}", host.denials());
}
