//! The plugin through its own entry point, against the SDK's mock host loaded with
//! the real `plugin.toml` (its world, grants and `[config]`): what the host would
//! see it do for each event, and that bad input makes it do nothing but log why.

use yiwang_sdk::AsHandler;
use yiwang_sdk::cases::CommandLevel;
use yiwang_sdk::log::Level;
use yiwang_sdk::mock::{InstalledHost, MockHost};
use yiwang_sdk::prelude::*;
use yiwang_sdk::serde_json::Value;

use crate::Zongzhi;
use crate::calendar::{self, DAY_MS, LocalTime};
use crate::record::{self, EventRecord};

const CST: LocalTime = LocalTime {
    offset_ms: 8 * 3_600_000,
};
const GRID: &str = "32010200100101";
const COMMUNITY: &str = "320102001001";
const OTHER_GRID: &str = "32010200100201";
const OTHER_COMMUNITY: &str = "320102001002";

/// Local midnight at the start of `date`.
fn midnight(date: &str) -> i64 {
    CST.midnight(calendar::parse_date(date).unwrap())
}

/// 2026-11-28 (a Saturday of 2026-W48), 10:00 local.
fn t() -> i64 {
    midnight("2026-11-28") + 10 * 3_600_000
}

fn mock() -> MockHost {
    MockHost::new()
        .manifest("plugin.toml")
        .unwrap()
        .known_department("police", "公安局")
        .known_department("housing", "住房和城乡建设局")
        .now(t())
}

fn deliver(host: &InstalledHost, event: Event) -> Result<(), Error> {
    host.deliver::<AsHandler<Zongzhi>>(event)
}

fn reported(case: &str, category: &str, area: Value) -> Event {
    Event::test(
        "case.reported",
        json!({
            "case": case, "report": format!("r-{case}"), "ticket": "T1", "channel": "patrol",
            "category_code": category, "area": area, "title": "楼道堆放杂物堵塞消防通道",
            "description": "3 号楼楼道堆满纸箱", "address": "长江路 1 号", "caller": null
        }),
    )
    .with_source("user:grid-1")
    .with_time(t())
}

/// A case's move on `case.<action>` as the host publishes it, or for `overdue`
/// the `case.overdue` payload; `extra` overrides its fields.
fn moved(case: &str, action: &str, extra: Value) -> Event {
    let mut payload = match action {
        "overdue" => json!({
            "case": case, "step": "dispose", "deadline": null, "used_ms": 0, "limit_ms": 0, "area": null
        }),
        _ => json!({
            "case": case, "action": action, "from": "dispatched", "to": "registered",
            "department": "zongzhi", "actor": "user:h1", "reason": "", "suggestion": null
        }),
    };
    for (k, v) in extra.as_object().unwrap() {
        payload[k] = v.clone();
    }
    Event::test(&format!("case.{action}"), payload)
        .with_source("user:h1")
        .with_time(t() + 3_600_000)
}

fn warnings(host: &InstalledHost) -> Vec<String> {
    host.logs()
        .into_iter()
        .filter(|l| l.level == Level::Warn)
        .map(|l| l.message)
        .collect()
}

/// Nothing was done for the case: no note, route, message, case, publication or write.
fn nothing_done(host: &InstalledHost) {
    assert!(host.notes().is_empty(), "{:?}", host.notes());
    assert!(host.route_suggestions().is_empty(), "{:?}", host.route_suggestions());
    assert!(host.messages_sent().is_empty(), "{:?}", host.messages_sent());
    assert!(host.cases_opened().is_empty(), "{:?}", host.cases_opened());
    assert!(host.published().is_empty(), "{:?}", host.published());
    assert!(host.data_written().is_empty(), "{:?}", host.data_written());
}

fn event_record(host: &InstalledHost, key: &str) -> EventRecord {
    let value = host
        .record(record::EVENTS, key)
        .unwrap_or_else(|| panic!("no record `{key}`"));
    yiwang_sdk::serde_json::from_value(value).unwrap()
}

/// A remembered case handled at `level`, as the lifecycle events would have left it.
fn seeded_case(case: &str, category: &str, level: Option<&str>) -> EventRecord {
    EventRecord {
        kind: record::KIND_CASE.into(),
        case: Some(case.into()),
        category: category.into(),
        grid: Some(GRID.into()),
        community: COMMUNITY.into(),
        street: "320102001".into(),
        week: "2026-W48".into(),
        time: t(),
        status: record::OPEN.into(),
        level: level.map(str::to_owned),
        department: Some("zongzhi".into()),
        ..EventRecord::default()
    }
}

mod configuration {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn the_shipped_configuration_loads() {
        let _host = mock().install();
        assert_eq!(Zongzhi::init(), Ok(()));
        let s = Settings::load().unwrap();
        assert_eq!(s.categories.len(), 3);
        let hazard = s.category("020602").unwrap();
        assert_eq!(
            (hazard.department.as_str(), hazard.level, hazard.call_in.as_str()),
            ("zongzhi", CommandLevel::Street, "housing")
        );
        assert_eq!(s.category("020601").unwrap().level, CommandLevel::Community);
        assert_eq!(s.local, CST);
    }

    #[test]
    fn a_broken_configuration_refuses_the_load() {
        for (key, value) in [
            ("route-020602", "zongzhi/province"),
            ("route-020602", "zongzhi"),
            ("route-020602", "住建/street"),
            ("notify-020601", "patrol"),
            ("categories", "020601,020601"),
            ("categories", "0206"),
            ("categories", "020601,020699"),
            ("visit-category", "020699"),
            ("visit-channel", "hotline"),
            ("call-in-signals", "return,escalate"),
            ("call-in-levels", "street,province"),
            ("route-score", "1.5"),
            ("page-size", "5000"),
            ("utc-offset-hours", "eight"),
        ] {
            let _host = mock().config(key, value).install();
            assert!(matches!(Zongzhi::init(), Err(Error::Invalid(_))), "{key} = {value}");
        }
    }
}

mod grid_events {
    use super::*;

    #[test]
    fn a_dispute_gets_a_note_a_community_route_a_message_and_a_record() {
        let host = mock().case("case-7").install();
        deliver(&host, reported("case-7", "020601", json!(GRID))).unwrap();

        let notes = host.notes();
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].text.contains("网格员先行调解，24 小时内回访"),
            "{}",
            notes[0].text
        );
        let routes = host.route_suggestions();
        assert_eq!(routes.len(), 1);
        let s = &routes[0].suggestion;
        assert_eq!(
            (s.department.as_str(), s.level, s.score),
            ("zongzhi", CommandLevel::Community, 0.8)
        );
        assert!(s.reason.contains("邻里纠纷"), "{}", s.reason);
        let messages = host.messages_sent();
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].to,
            Recipient::Role((COMMUNITY.into(), "grid-worker".into()))
        );
        assert!(
            messages[0].body.contains("case-7") && messages[0].body.contains(GRID),
            "{}",
            messages[0].body
        );

        let r = event_record(&host, "case-7");
        assert_eq!(
            (
                r.kind.as_str(),
                r.case.as_deref(),
                r.category.as_str(),
                r.grid.as_deref(),
                r.community.as_str(),
                r.street.as_str()
            ),
            ("case", Some("case-7"), "020601", Some(GRID), COMMUNITY, "320102001")
        );
        assert_eq!(
            (r.week.as_str(), r.time, r.status.as_str(), r.escalated),
            ("2026-W48", t(), "open", false)
        );
        assert_eq!(
            (
                r.suggestion.as_deref(),
                r.suggested_level.as_deref(),
                r.level.as_deref()
            ),
            (Some("suggestion-1"), Some("community"), None)
        );
        assert!(host.denials().is_empty(), "{:?}", host.denials());
        assert!(warnings(&host).is_empty(), "{:?}", warnings(&host));
    }

    #[test]
    fn a_hazard_goes_to_the_street_and_to_grid_workers_and_leaders() {
        let host = mock().case("case-8").install();
        deliver(&host, reported("case-8", "020602", json!(GRID))).unwrap();
        assert!(host.notes()[0].text.contains("拍照取证、设置警示、属地街道牵头处置"));
        let s = &host.route_suggestions()[0].suggestion;
        assert_eq!((s.department.as_str(), s.level), ("zongzhi", CommandLevel::Street));
        let to: Vec<Recipient> = host.messages_sent().into_iter().map(|m| m.to).collect();
        assert_eq!(
            to,
            [
                Recipient::Role((COMMUNITY.into(), "grid-worker".into())),
                Recipient::Role((COMMUNITY.into(), "leader".into()))
            ]
        );
        assert!(host.denials().is_empty(), "{:?}", host.denials());
    }

    #[test]
    fn the_week_is_the_local_iso_week() {
        // Monday 00:30 local is still Sunday in UTC: the case belongs to the new week.
        let host = mock().case("c1").install();
        let early = reported("c1", "020601", json!(GRID)).with_time(midnight("2026-11-30") + 30 * 60_000);
        deliver(&host, early).unwrap();
        assert_eq!(event_record(&host, "c1").week, "2026-W49");
    }

    #[test]
    fn other_departments_cases_are_ignored_quietly() {
        let host = mock().case("c1").install();
        deliver(&host, reported("c1", "020101", json!(GRID))).unwrap();
        nothing_done(&host);
        assert!(
            warnings(&host).is_empty(),
            "not bad input, just not ours: {:?}",
            warnings(&host)
        );
    }

    #[test]
    fn a_repeated_report_event_is_handled_once() {
        let host = mock().case("c1").install();
        deliver(&host, reported("c1", "020601", json!(GRID))).unwrap();
        deliver(&host, reported("c1", "020601", json!(GRID))).unwrap();
        assert_eq!(
            (
                host.notes().len(),
                host.route_suggestions().len(),
                host.messages_sent().len()
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn bad_reports_are_skipped_with_a_logged_reason() {
        let host = mock().case("c1").install();
        let mut bad: Vec<Event> = vec![
            Event {
                payload: "{not json".into(),
                ..reported("c1", "020601", json!(GRID))
            },
            Event {
                payload: "[1, 2]".into(),
                ..reported("c1", "020601", json!(GRID))
            },
        ];
        for payload in [
            json!({ "category_code": "020601", "area": GRID }),
            json!({ "case": "", "category_code": "020601", "area": GRID }),
            json!({ "case": "c1", "area": GRID }),
            json!({ "case": "c1", "category_code": 20601, "area": GRID }),
        ] {
            bad.push(Event::test("case.reported", payload).with_time(t()));
        }
        for (category, area) in [
            ("020699", json!(GRID)),
            ("0206", json!(GRID)),
            ("０２０６０１", json!(GRID)),
            ("020601", Value::Null),
            ("020601", json!("3201020010")),
            ("020601", json!("3201020010010A")),
            ("020601", json!("320102001001011")),
            ("020601", json!(32010200100101u64)),
        ] {
            bad.push(reported("c1", category, area));
        }
        let n = bad.len();
        for event in bad {
            deliver(&host, event).unwrap();
        }
        nothing_done(&host);
        assert_eq!(warnings(&host).len(), n, "{:#?}", host.logs());
        assert!(host.denials().is_empty());
    }
}

mod call_in {
    use super::*;

    fn host_with(record: EventRecord) -> InstalledHost {
        let case = record.case.clone().unwrap();
        mock().case(case.clone()).data(record::EVENTS, case, record).install()
    }

    fn assert_called_in(host: &InstalledHost, case: &str, department: &str, signal: &str, why: &str) {
        let routes = host.route_suggestions();
        assert_eq!(routes.len(), 1, "{routes:?}");
        let s = &routes[0].suggestion;
        assert_eq!(
            (routes[0].case_id.as_str(), s.department.as_str(), s.level, s.score),
            (case, department, CommandLevel::District, 0.9)
        );
        assert!(
            s.reason.contains("街道吹哨、部门报到") && s.reason.contains(why),
            "{}",
            s.reason
        );
        assert!(
            host.notes()
                .iter()
                .any(|n| n.text.contains("街道吹哨") && n.case_id == case),
            "{:?}",
            host.notes()
        );
        let published = host.published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].topic, "zongzhi.call-in");
        let p = &published[0].payload;
        assert_eq!(
            (&p["case"], &p["department"], &p["level"], &p["signal"]),
            (&json!(case), &json!(department), &json!("district"), &json!(signal))
        );
        assert_eq!(p["reason"], json!(s.reason));
        let r = event_record(host, case);
        assert!(r.escalated);
        let c = r.call_in.unwrap();
        assert_eq!(
            (c.department.as_deref(), c.signal.as_str(), c.suggestion.as_deref()),
            (Some(department), signal, Some(routes[0].id.as_str()))
        );
        assert!(host.denials().is_empty(), "{:?}", host.denials());
    }

    #[test]
    fn a_street_return_calls_in_the_district_department_once() {
        let host = host_with(seeded_case("case-3", "020602", Some("street")));
        deliver(
            &host,
            moved(
                "case-3",
                "return",
                json!({ "reason": "涉及房屋结构安全，街道无鉴定能力" }),
            ),
        )
        .unwrap();
        assert_called_in(
            &host,
            "case-3",
            "housing",
            "return",
            "街道将案件退回指挥中心（涉及房屋结构安全，街道无鉴定能力）",
        );
        // Once per case: later signals change nothing but the record.
        host.clear_calls();
        deliver(&host, moved("case-3", "overdue", json!({ "step": "dispose" }))).unwrap();
        deliver(&host, moved("case-3", "return", json!({ "reason": "再次退回" }))).unwrap();
        assert!(host.route_suggestions().is_empty() && host.published().is_empty() && host.notes().is_empty());
    }

    #[test]
    fn two_failed_checks_call_in_the_police_for_a_dispute() {
        let host = host_with(seeded_case("case-4", "020601", Some("street")));
        deliver(
            &host,
            moved("case-4", "fail-check", json!({ "reason": "双方仍有争执" })),
        )
        .unwrap();
        assert!(host.route_suggestions().is_empty() && host.published().is_empty());
        assert_eq!(event_record(&host, "case-4").fail_checks, 1);
        deliver(&host, moved("case-4", "fail-check", json!({ "reason": "再次争吵" }))).unwrap();
        assert_called_in(&host, "case-4", "police", "fail-check", "核查 2 次未通过");
    }

    #[test]
    fn overdue_and_extension_requests_call_in_at_street_level_only() {
        // Handled by the community, or at a level the plugin does not know: no call-in.
        for level in [Some("community"), None, Some("district")] {
            let host = host_with(seeded_case("case-5", "020602", level));
            deliver(&host, moved("case-5", "overdue", json!({ "step": "dispose" }))).unwrap();
            deliver(
                &host,
                moved("case-5", "request-extension", json!({ "reason": "需协调产权单位" })),
            )
            .unwrap();
            assert!(
                host.route_suggestions().is_empty() && host.published().is_empty(),
                "{level:?}"
            );
            assert!(!event_record(&host, "case-5").escalated);
        }
        let host = host_with(seeded_case("case-5", "020602", Some("street")));
        deliver(
            &host,
            moved("case-5", "overdue", json!({ "step": "dispose", "deadline": 1 })),
        )
        .unwrap();
        assert_called_in(&host, "case-5", "housing", "overdue", "dispose 环节已超期");

        let host = host_with(seeded_case("case-6", "020602", Some("street")));
        deliver(
            &host,
            moved("case-6", "request-extension", json!({ "reason": "需协调产权单位" })),
        )
        .unwrap();
        assert_called_in(
            &host,
            "case-6",
            "housing",
            "request-extension",
            "街道申请延期（需协调产权单位）",
        );
    }

    #[test]
    fn a_signal_left_out_of_the_configuration_does_not_call_in() {
        let record = seeded_case("case-5", "020602", Some("street"));
        let host = mock()
            .config("call-in-signals", "return")
            .case("case-5")
            .data(record::EVENTS, "case-5", record)
            .install();
        deliver(
            &host,
            moved("case-5", "request-extension", json!({ "reason": "需协调" })),
        )
        .unwrap();
        deliver(&host, moved("case-5", "overdue", json!({}))).unwrap();
        assert!(host.route_suggestions().is_empty() && host.published().is_empty());
    }

    #[test]
    fn an_escalation_to_street_level_makes_a_return_call_in() {
        let host = host_with(seeded_case("case-2", "020601", Some("community")));
        deliver(&host, moved("case-2", "escalate", json!({ "reason": "社区调解不成" }))).unwrap();
        assert_eq!(event_record(&host, "case-2").level.as_deref(), Some("street"));
        host.clear_calls();
        deliver(&host, moved("case-2", "return", json!({ "reason": "街道无执法权" }))).unwrap();
        assert_called_in(&host, "case-2", "police", "return", "街道无执法权");
    }

    #[test]
    fn a_dispatchers_call_in_marks_the_case_and_stops_another() {
        let host = host_with(seeded_case("case-9", "020602", Some("street")));
        deliver(
            &host,
            moved(
                "case-9",
                "call-in",
                json!({ "reason": "召集住建报到", "department": "zongzhi" }),
            ),
        )
        .unwrap();
        let r = event_record(&host, "case-9");
        assert!(r.escalated);
        assert_eq!(r.call_in.unwrap().signal, "manual");
        deliver(&host, moved("case-9", "return", json!({ "reason": "退回" }))).unwrap();
        assert!(host.route_suggestions().is_empty() && host.published().is_empty());
    }

    /// The whole path through events: reported, dispatched with the plugin's
    /// suggestion (so at street level), returned by the street. The mock does not
    /// settle suggestions at dispatch as the host does, so the call-in's own
    /// suggestion meets the first one still pending: it is logged, and the note,
    /// the announcement and the mark still happen.
    #[test]
    fn a_reported_hazard_dispatched_to_the_street_and_returned_is_called_in() {
        let host = mock().case("case-1").install();
        deliver(&host, reported("case-1", "020602", json!(GRID))).unwrap();
        let first = host.route_suggestions()[0].id.clone();
        deliver(
            &host,
            moved(
                "case-1",
                "dispatch",
                json!({ "suggestion": first, "from": "registered", "to": "dispatched" }),
            ),
        )
        .unwrap();
        assert_eq!(event_record(&host, "case-1").level.as_deref(), Some("street"));
        host.clear_calls();
        deliver(
            &host,
            moved(
                "case-1",
                "return",
                json!({ "reason": "房屋结构隐患超出街道处置能力", "department": null }),
            ),
        )
        .unwrap();
        let p = &host.published()[0].payload;
        assert_eq!(
            (&p["department"], &p["level"], &p["suggestion"]),
            (&json!("housing"), &json!("district"), &Value::Null)
        );
        assert!(host.notes()[0].text.contains("街道吹哨、部门报到"));
        assert!(event_record(&host, "case-1").escalated);
        assert!(
            warnings(&host).iter().any(|w| w.contains("pending")),
            "{:?}",
            host.logs()
        );
    }

    #[test]
    fn a_dispatch_without_the_plugins_suggestion_leaves_the_level_unknown() {
        let host = mock().case("case-1").install();
        deliver(&host, reported("case-1", "020602", json!(GRID))).unwrap();
        deliver(
            &host,
            moved(
                "case-1",
                "dispatch",
                json!({ "suggestion": null, "department": "housing" }),
            ),
        )
        .unwrap();
        let r = event_record(&host, "case-1");
        assert_eq!((r.level, r.department.as_deref()), (None, Some("housing")));
        // A host that says the level is believed.
        deliver(
            &host,
            moved(
                "case-1",
                "dispatch",
                json!({ "level": "street", "department": "zongzhi" }),
            ),
        )
        .unwrap();
        assert_eq!(event_record(&host, "case-1").level.as_deref(), Some("street"));
    }

    #[test]
    fn close_reopen_and_void_keep_the_status() {
        let host = host_with(seeded_case("case-1", "020601", Some("community")));
        for (action, status) in [
            ("close", "closed"),
            ("reopen", "open"),
            ("void", "withdrawn"),
            ("reopen", "open"),
            ("merge", "withdrawn"),
        ] {
            deliver(&host, moved("case-1", action, json!({}))).unwrap();
            assert_eq!(event_record(&host, "case-1").status, status, "{action}");
        }
    }

    #[test]
    fn moves_of_other_cases_and_bad_moves_do_nothing() {
        let host = mock().install();
        deliver(&host, moved("not-ours", "return", json!({ "reason": "x" }))).unwrap();
        deliver(&host, moved("not-ours", "overdue", json!({}))).unwrap();
        nothing_done(&host);
        assert!(warnings(&host).is_empty(), "another department's case is not bad input");
        let bad = [
            Event {
                payload: "nope".into(),
                ..moved("c", "return", json!({}))
            },
            Event::test("case.return", json!({ "reason": "no case" })),
            Event::test("case.overdue", json!({ "case": 42 })),
        ];
        let n = bad.len();
        for event in bad {
            deliver(&host, event).unwrap();
        }
        nothing_done(&host);
        assert_eq!(warnings(&host).len(), n, "{:?}", host.logs());
    }

    #[test]
    fn a_record_that_does_not_parse_is_ignored() {
        let host = mock()
            .case("c1")
            .data(record::EVENTS, "c1", json!({ "kind": 7, "escalated": "yes" }))
            .install();
        deliver(&host, moved("c1", "return", json!({ "reason": "x" }))).unwrap();
        nothing_done(&host);
        assert_eq!(warnings(&host).len(), 1, "{:?}", host.logs());
    }
}

mod visits {
    use super::*;

    /// The `time.day` event for the local day `date`.
    fn day(date: &str) -> Event {
        let start = midnight(date);
        Event::test(
            "time.day",
            json!({ "day": date, "start": start, "end": start + DAY_MS }),
        )
        .with_source("host:clock")
        .with_time(start + DAY_MS)
    }

    fn resident(name: &str, community: &str, last_visit: Value, every: i64) -> Value {
        json!({
            "name": name, "address": "长江路 1 号 3 幢 201 室", "community": community,
            "last_visit": last_visit, "visit_every_days": every, "category": "elderly-alone"
        })
    }

    #[test]
    fn an_overdue_resident_gets_one_case_per_overdue_period() {
        let last = midnight("2026-11-01") + 9 * 3_600_000;
        let mut zhang = resident("张三", COMMUNITY, json!(last), 7);
        zhang["lat"] = json!(32.045);
        zhang["lon"] = json!(118.785);
        let host = mock()
            .data(record::RESIDENTS, "r-001", &zhang)
            // Visited on 2026-11-25 and due again on 2026-12-02: not overdue.
            .data(
                record::RESIDENTS,
                "r-002",
                resident("李四", COMMUNITY, json!("2026-11-25"), 7),
            )
            // Due on 2026-11-28 00:00, before the end of the day: overdue.
            .data(
                record::RESIDENTS,
                "r-003",
                resident("王小五", OTHER_COMMUNITY, json!("2026-11-21"), 7),
            )
            .install();
        deliver(&host, day("2026-11-28")).unwrap();

        let opened = host.cases_opened();
        assert_eq!(opened.len(), 2, "{opened:?}");
        let d = &opened[0].draft;
        assert_eq!(d.category_code, "020603");
        assert_eq!(d.title, format!("重点人员走访逾期：{COMMUNITY} 张*"));
        assert_eq!(d.channel, SourceChannel::Patrol);
        assert_eq!(d.location, Some(GeoPoint::new(32.045, 118.785)));
        for personal in ["张三", "长江路", "3 幢", "201 室"] {
            assert!(
                !d.description.contains(personal) && !d.title.contains(personal),
                "{personal}: {}",
                d.description
            );
        }
        assert!(
            d.description.contains("2026-11-01") && d.description.contains("逾期 20 天"),
            "{}",
            d.description
        );
        assert_eq!(
            opened[1].draft.title,
            format!("重点人员走访逾期：{OTHER_COMMUNITY} 王**")
        );
        assert_eq!(opened[1].draft.location, None);

        let to: Vec<Recipient> = host.messages_sent().into_iter().map(|m| m.to).collect();
        assert_eq!(
            to,
            [
                Recipient::Role((COMMUNITY.into(), "grid-worker".into())),
                Recipient::Role((OTHER_COMMUNITY.into(), "grid-worker".into()))
            ]
        );
        let due = last + 7 * DAY_MS;
        let r = event_record(&host, &format!("visit-r-001-{due}"));
        assert_eq!(
            (
                r.kind.as_str(),
                r.overdue_case.as_deref(),
                r.case.as_deref(),
                r.resident.as_deref(),
                r.due,
                r.status.as_str()
            ),
            (
                "overdue-visit",
                Some("case-1"),
                Some("case-1"),
                Some("r-001"),
                Some(due),
                "open"
            )
        );
        assert_eq!(
            (r.community.as_str(), r.week.as_str(), r.category.as_str()),
            (COMMUNITY, "2026-W48", "020603")
        );
        // No resident record was written: the marker lives in zongzhi-events.
        assert!(host.data_written().iter().all(|w| w.dataset == record::EVENTS));
        assert!(host.denials().is_empty(), "{:?}", host.denials());
        assert!(warnings(&host).is_empty(), "{:?}", warnings(&host));

        // The next day the same periods are still overdue: no new case.
        host.clear_calls();
        deliver(&host, day("2026-11-29")).unwrap();
        assert!(host.cases_opened().is_empty() && host.messages_sent().is_empty());

        // Visited on 2026-11-30 and overdue again a week later: a new period, a new case.
        let mut visited = zhang.clone();
        visited["last_visit"] = json!("2026-11-30T15:00:00+08:00");
        // (A new mock host with the old period remembered: the mock cannot edit a seeded record.)
        let old = event_record(&host, &format!("visit-r-001-{due}"));
        let again = mock()
            .data(record::RESIDENTS, "r-001", &visited)
            .data(record::EVENTS, format!("visit-r-001-{due}"), old)
            .install();
        deliver(&again, day("2026-12-08")).unwrap();
        let opened = again.cases_opened();
        assert_eq!(opened.len(), 1);
        assert!(
            opened[0].draft.description.contains("上次走访 2026-11-30"),
            "{}",
            opened[0].draft.description
        );
        let new_due = midnight("2026-11-30") + 15 * 3_600_000 + 7 * DAY_MS;
        assert_eq!(
            event_record(&again, &format!("visit-r-001-{new_due}"))
                .overdue_case
                .as_deref(),
            Some("case-1")
        );
    }

    #[test]
    fn the_visit_case_reported_back_is_remembered_but_not_announced_twice() {
        let host = mock()
            .data(
                record::RESIDENTS,
                "r-003",
                resident("王小五", COMMUNITY, json!("2026-11-01"), 7),
            )
            .install();
        deliver(&host, day("2026-11-28")).unwrap();
        assert_eq!(host.messages_sent().len(), 1);
        host.clear_calls();
        // The host announces the opened case; without a position it has no area.
        let back = Event::test(
            "case.reported",
            json!({ "case": "case-1", "report": "r1", "ticket": "T", "channel": "patrol", "category_code": "020603",
                    "area": null, "title": "重点人员走访逾期", "description": "", "address": null, "caller": null }),
        )
        .with_source("plugin:zongzhi")
        .with_time(t());
        deliver(&host, back).unwrap();
        assert!(host.messages_sent().is_empty());
        assert_eq!(host.notes().len(), 1);
        assert_eq!(host.route_suggestions()[0].suggestion.level, CommandLevel::Community);
        let r = event_record(&host, "case-1");
        assert_eq!(
            (r.kind.as_str(), r.community.as_str(), r.grid),
            ("case", COMMUNITY, None)
        );
        assert!(warnings(&host).is_empty(), "{:?}", warnings(&host));
    }

    /// The community of the visit case reported back is read by the case's key: the
    /// plugin does not search its records for the visit that opened it (a scan of all
    /// it has ever remembered). Here, from the state a first host left, with queries
    /// failing.
    #[test]
    fn the_visit_case_reported_back_finds_its_visit_by_key() {
        let host = mock()
            .data(
                record::RESIDENTS,
                "r-003",
                resident("王小五", COMMUNITY, json!("2026-11-01"), 7),
            )
            .install();
        deliver(&host, day("2026-11-28")).unwrap();
        let written = host.data_written();
        drop(host);
        let mut builder = mock()
            .case("case-1")
            .fail("data.query", Error::Unavailable("no scans: read by key".into()));
        for w in written {
            builder = builder.data(w.dataset, w.key, w.value);
        }
        let host = builder.install();
        let back = Event::test(
            "case.reported",
            json!({ "case": "case-1", "report": "r1", "ticket": "T", "channel": "patrol", "category_code": "020603",
                    "area": null, "title": "重点人员走访逾期", "description": "", "address": null, "caller": null }),
        )
        .with_source("plugin:zongzhi")
        .with_time(t());
        deliver(&host, back).unwrap();
        let r = event_record(&host, "case-1");
        assert_eq!((r.kind.as_str(), r.community.as_str()), ("case", COMMUNITY));
        assert_eq!(host.route_suggestions()[0].suggestion.level, CommandLevel::Community);
        assert!(host.messages_sent().is_empty());
        assert!(warnings(&host).is_empty(), "{:?}", warnings(&host));
    }

    #[test]
    fn bad_residents_are_skipped_with_a_logged_reason() {
        let good = resident("张三", COMMUNITY, json!("2026-11-01"), 7);
        let mut host = mock();
        let mut n = 0;
        for (key, value) in [
            (
                "b1",
                json!({ "address": "a", "community": COMMUNITY, "last_visit": "2026-11-01", "visit_every_days": 7 }),
            ),
            ("b2", resident("张三", "3201", json!("2026-11-01"), 7)),
            ("b3", resident("张三", COMMUNITY, json!("上个月"), 7)),
            ("b4", resident("张三", COMMUNITY, json!("2026-11-01"), 0)),
            ("b5", resident("张三", COMMUNITY, json!("2026-11-01"), -7)),
            ("b6", resident("张三", COMMUNITY, json!(-5), 7)),
            ("b7", resident("张三", COMMUNITY, Value::Null, 7)),
            ("b8", resident("张三", COMMUNITY, json!("2026-12-25"), 7)),
            ("b9", {
                let mut v = good.clone();
                v["lat"] = json!(95.0);
                v["lon"] = json!(118.0);
                v
            }),
            ("b10", {
                let mut v = good.clone();
                v["visit_every_days"] = json!("weekly");
                v
            }),
            ("b11", {
                let mut v = good.clone();
                v.as_object_mut().unwrap().remove("community");
                v
            }),
        ] {
            host = host.data(record::RESIDENTS, key, value);
            n += 1;
        }
        let host = host.install();
        deliver(&host, day("2026-11-28")).unwrap();
        nothing_done(&host);
        assert_eq!(warnings(&host).len(), n, "{:#?}", host.logs());
        assert!(host.denials().is_empty());
    }

    #[test]
    fn bad_day_events_are_skipped_with_a_logged_reason() {
        let host = mock()
            .data(
                record::RESIDENTS,
                "r1",
                resident("张三", COMMUNITY, json!("2026-11-01"), 7),
            )
            .install();
        let start = midnight("2026-11-28");
        let bad = [
            Event {
                payload: "day!".into(),
                ..day("2026-11-28")
            },
            Event::test("time.day", json!({ "start": start, "end": start + DAY_MS })).with_source("host:clock"),
            Event::test("time.day", json!({ "day": "2026-11-28", "start": start })).with_source("host:clock"),
            Event::test(
                "time.day",
                json!({ "day": "2026-02-30", "start": start, "end": start + DAY_MS }),
            )
            .with_source("host:clock"),
            Event::test(
                "time.day",
                json!({ "day": "2026-11-28", "start": start + DAY_MS, "end": start }),
            )
            .with_source("host:clock"),
            Event::test(
                "time.day",
                json!({ "day": "2026-11-28", "start": -1, "end": DAY_MS - 1 }),
            )
            .with_source("host:clock"),
            Event::test(
                "time.day",
                json!({ "day": "2026-11-28", "start": start.to_string(), "end": start + DAY_MS }),
            )
            .with_source("host:clock"),
            day("2026-11-28").with_source("plugin:sneaky"),
        ];
        let n = bad.len();
        for event in bad {
            deliver(&host, event).unwrap();
        }
        nothing_done(&host);
        assert_eq!(warnings(&host).len(), n, "{:#?}", host.logs());
    }

    #[test]
    fn residents_are_read_page_by_page_and_cases_capped_per_day() {
        let mut builder = mock().config("page-size", "2").config("max-visit-cases-per-day", "3");
        for i in 0..5 {
            builder = builder.data(
                record::RESIDENTS,
                format!("r{i}"),
                resident("赵六", COMMUNITY, json!("2026-10-01"), 30),
            );
        }
        let host = builder.install();
        deliver(&host, day("2026-11-28")).unwrap();
        assert_eq!(host.cases_opened().len(), 3);
        assert!(
            warnings(&host).iter().any(|w| w.contains("max-visit-cases-per-day")),
            "{:?}",
            host.logs()
        );
        host.clear_calls();
        deliver(&host, day("2026-11-29")).unwrap();
        assert_eq!(host.cases_opened().len(), 2, "the other two the next day");
    }

    #[test]
    fn a_host_that_cannot_open_the_case_is_an_error_and_the_period_is_retried() {
        let r = resident("张三", COMMUNITY, json!("2026-11-01"), 7);
        let host = mock()
            .data(record::RESIDENTS, "r1", &r)
            .fail("cases.open-case", Error::Unavailable("案件服务维护中".into()))
            .install();
        assert!(matches!(deliver(&host, day("2026-11-28")), Err(Error::Unavailable(_))));
        assert!(host.messages_sent().is_empty());
        let due = midnight("2026-11-01") + 7 * DAY_MS;
        assert_eq!(event_record(&host, &format!("visit-r1-{due}")).status, "opening");
        // The host back, on another instance: the marker without a case is retried.
        let host = mock()
            .data(record::RESIDENTS, "r1", &r)
            .data(
                record::EVENTS,
                format!("visit-r1-{due}"),
                EventRecord {
                    status: "opening".into(),
                    ..EventRecord::default()
                },
            )
            .install();
        deliver(&host, day("2026-11-29")).unwrap();
        assert_eq!(host.cases_opened().len(), 1);
    }

    #[test]
    fn no_case_is_opened_that_could_not_be_remembered() {
        let host = mock()
            .data(
                record::RESIDENTS,
                "r1",
                resident("张三", COMMUNITY, json!("2026-11-01"), 7),
            )
            .fail("data.put", Error::Unavailable("存储维护中".into()))
            .install();
        assert!(deliver(&host, day("2026-11-28")).is_err());
        assert!(host.cases_opened().is_empty());
    }
}

mod weekly {
    use super::*;

    fn week(label: &str) -> Event {
        let start = CST.midnight(calendar::parse_week(label).unwrap());
        Event::test(
            "time.week",
            json!({ "week": label, "start": start, "end": start + 7 * DAY_MS }),
        )
        .with_source("host:clock")
        .with_time(start + 7 * DAY_MS)
    }

    fn case(
        id: &str,
        community: &str,
        category: &str,
        status: &str,
        escalated: bool,
        week: &str,
    ) -> (String, EventRecord) {
        let mut r = seeded_case(id, category, Some("street"));
        r.community = community.into();
        r.status = status.into();
        r.escalated = escalated;
        r.week = week.into();
        (id.into(), r)
    }

    #[test]
    fn the_week_is_reported_per_community_to_leaders_and_for_the_city() {
        let visit = EventRecord {
            kind: record::KIND_VISIT.into(),
            category: "020603".into(),
            community: OTHER_COMMUNITY.into(),
            street: "320102001".into(),
            week: "2026-W48".into(),
            status: "open".into(),
            overdue_case: Some("case-20".into()),
            ..EventRecord::default()
        };
        let mut builder = mock()
            .config("page-size", "2")
            .data(record::EVENTS, "visit-r1-1", visit);
        for (key, r) in [
            case("c1", COMMUNITY, "020601", "closed", false, "2026-W48"),
            case("c2", COMMUNITY, "020601", "open", false, "2026-W48"),
            case("c3", COMMUNITY, "020602", "open", true, "2026-W48"),
            case("c4", OTHER_COMMUNITY, "020603", "withdrawn", false, "2026-W48"),
            case("c5", COMMUNITY, "020602", "open", false, "2026-W47"),
        ] {
            builder = builder.data(record::EVENTS, key, r);
        }
        let host = builder.install();
        deliver(&host, week("2026-W48")).unwrap();

        let published = host.published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].topic, "zongzhi.weekly-summary");
        let p = &published[0].payload;
        assert_eq!((&p["week"], &p["truncated"]), (&json!("2026-W48"), &json!(false)));
        let a = &p["communities"][0];
        assert_eq!(a["community"], COMMUNITY);
        assert_eq!(
            (
                &a["cases"],
                &a["open"],
                &a["closed"],
                &a["escalated"],
                &a["overdue_visits"],
                &a["by_category"]
            ),
            (
                &json!(3),
                &json!(2),
                &json!(1),
                &json!(1),
                &json!(0),
                &json!({ "020601": 2, "020602": 1 })
            )
        );
        let b = &p["communities"][1];
        assert_eq!(
            (&b["community"], &b["cases"], &b["withdrawn"], &b["overdue_visits"]),
            (&json!(OTHER_COMMUNITY), &json!(1), &json!(1), &json!(1))
        );
        assert_eq!((&p["city"]["cases"], &p["city"]["escalated"]), (&json!(4), &json!(1)));

        let messages = host.messages_sent();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0].to, Recipient::Role((COMMUNITY.into(), "leader".into())));
        assert!(
            messages[0].subject.contains("本周社区平安报告"),
            "{}",
            messages[0].subject
        );
        assert!(
            messages[0]
                .body
                .contains("共受理综治事件 3 件（邻里纠纷 2 件、安全隐患 1 件）")
                && messages[0].body.contains("街道吹哨、部门报到 1 件"),
            "{}",
            messages[0].body
        );
        assert_eq!(
            messages[1].to,
            Recipient::Role((OTHER_COMMUNITY.into(), "leader".into()))
        );
        assert!(
            messages[1].body.contains("重点人员走访逾期 1 人次"),
            "{}",
            messages[1].body
        );
        assert_eq!(messages[2].to, Recipient::Department("zongzhi".into()));
        assert!(
            messages[2].body.contains("涉及 2 个社区") && messages[2].body.contains("共受理综治事件 4 件"),
            "{}",
            messages[2].body
        );
        assert!(host.denials().is_empty(), "{:?}", host.denials());

        // A repeated time.week sends nothing again.
        host.clear_calls();
        deliver(&host, week("2026-W48")).unwrap();
        assert!(host.published().is_empty() && host.messages_sent().is_empty());
    }

    #[test]
    fn an_empty_week_still_reports_to_the_city() {
        let host = mock().install();
        deliver(&host, week("2026-W53")).unwrap();
        assert_eq!(host.published()[0].payload["communities"], json!([]));
        let messages = host.messages_sent();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].to, Recipient::Department("zongzhi".into()));
    }

    #[test]
    fn reported_and_closed_cases_show_in_the_week() {
        let host = mock().case("c1").case("c2").install();
        deliver(&host, reported("c1", "020601", json!(GRID))).unwrap();
        deliver(&host, reported("c2", "020602", json!(OTHER_GRID))).unwrap();
        deliver(&host, moved("c1", "close", json!({}))).unwrap();
        host.clear_calls();
        deliver(&host, week("2026-W48")).unwrap();
        let p = &host.published()[0].payload;
        assert_eq!(
            (&p["city"]["cases"], &p["city"]["closed"], &p["city"]["open"]),
            (&json!(2), &json!(1), &json!(1))
        );
    }

    #[test]
    fn bad_week_events_are_skipped_with_a_logged_reason() {
        let host = mock().install();
        let good = week("2026-W48");
        let start: i64 = good.payload_value().unwrap()["start"].as_i64().unwrap();
        let bad = [
            Event {
                payload: "{".into(),
                ..good.clone()
            },
            Event::test(
                "time.week",
                json!({ "week": "2026-48", "start": start, "end": start + 7 * DAY_MS }),
            )
            .with_source("host:clock"),
            Event::test(
                "time.week",
                json!({ "week": "2025-W53", "start": start, "end": start + 7 * DAY_MS }),
            )
            .with_source("host:clock"),
            Event::test(
                "time.week",
                json!({ "week": "2026-W48", "start": start, "end": start + DAY_MS }),
            )
            .with_source("host:clock"),
            Event::test(
                "time.week",
                json!({ "week": "2026-W49", "start": start, "end": start + 7 * DAY_MS }),
            )
            .with_source("host:clock"),
            Event::test("time.week", json!({ "week": "2026-W48" })).with_source("host:clock"),
            good.with_source("user:somebody"),
        ];
        let n = bad.len();
        for event in bad {
            deliver(&host, event).unwrap();
        }
        nothing_done(&host);
        assert_eq!(warnings(&host).len(), n, "{:#?}", host.logs());
    }
}

/// What the weekly report costs does not depend on how long the plugin has run.
mod history {
    use std::collections::BTreeMap;

    use super::*;
    use crate::summary;

    fn week_event(label: &str) -> Event {
        let start = CST.midnight(calendar::parse_week(label).unwrap());
        Event::test("time.week", json!({ "week": label, "start": start, "end": start + 7 * DAY_MS }))
            .with_source("host:clock")
            .with_time(start + 7 * DAY_MS)
    }

    fn resident(name: &str, community: &str, last_visit: &str) -> Value {
        json!({ "name": name, "address": "长江路 1 号", "community": community, "last_visit": last_visit, "visit_every_days": 7 })
    }

    /// The report of a week read from its tallies is the one a query of the week's
    /// records gives: cases reported, moved, called in by a signal or by hand, overdue
    /// visits and their cases, and a case of the week before closed in this one.
    #[test]
    fn the_tallies_say_what_a_query_of_the_week_s_records_would() {
        let mut builder = mock()
            .data(record::RESIDENTS, "r1", resident("张三", COMMUNITY, "2026-11-10"))
            .data(record::RESIDENTS, "r2", resident("李四", OTHER_COMMUNITY, "2026-11-12"));
        for c in ["c0", "c1", "c2", "c3", "c4", "c5", "c6"] {
            builder = builder.case(c);
        }
        let host = builder.install();
        // 2026-W47: the first case, and the first tally.
        let w47 = midnight("2026-11-18") + 10 * 3_600_000;
        deliver(&host, reported("c0", "020601", json!(GRID)).with_time(w47)).unwrap();
        // 2026-W48: two overdue visits and their cases reported back, without a grid.
        let start = midnight("2026-11-24");
        let day = Event::test("time.day", json!({ "day": "2026-11-24", "start": start, "end": start + DAY_MS }))
            .with_source("host:clock")
            .with_time(start + DAY_MS);
        deliver(&host, day).unwrap();
        for opened in host.cases_opened() {
            let back = Event::test(
                "case.reported",
                json!({ "case": opened.id, "report": "r", "ticket": "T", "channel": "patrol", "category_code": "020603",
                        "area": null, "title": opened.draft.title, "description": "", "address": null, "caller": null }),
            )
            .with_source("plugin:zongzhi")
            .with_time(start + DAY_MS + 60_000);
            deliver(&host, back).unwrap();
        }
        // Grid events of the week, and their moves.
        for (case, category, grid) in [
            ("c1", "020601", GRID),
            ("c2", "020602", GRID),
            ("c3", "020601", OTHER_GRID),
            ("c4", "020602", OTHER_GRID),
            ("c5", "020602", GRID),
            ("c6", "020601", GRID),
        ] {
            deliver(&host, reported(case, category, json!(grid))).unwrap();
        }
        let c4 = host.route_suggestions().into_iter().find(|r| r.case_id == "c4").unwrap().id;
        for (case, action, extra) in [
            ("c1", "close", json!({})),
            ("c2", "void", json!({})),
            ("c3", "call-in", json!({ "reason": "召集" })),
            ("c4", "dispatch", json!({ "suggestion": c4 })),
            ("c4", "return", json!({ "reason": "街道无法处置" })),
            ("c5", "close", json!({})),
            ("c5", "reopen", json!({})),
            ("c0", "close", json!({})),
        ] {
            deliver(&host, moved(case, action, extra)).unwrap();
        }
        assert!(crate::tally::tallied("2026-W48").unwrap(), "W48 is after the first tally's week");
        assert!(!crate::tally::tallied("2026-W47").unwrap(), "W47 may hold records from before");

        // What a query of the week's records says.
        let (found, _) = record::query_all(record::EVENTS, &[data::eq("week", "2026-W48")], 100, 10).unwrap();
        let records: Vec<EventRecord> = found.iter().map(|r| r.value_json().unwrap()).collect();
        let (communities, city) = summary::tally(&records);
        assert_eq!((city.cases, city.overdue_visits, city.escalated, city.closed), (8, 2, 2, 1));

        host.clear_calls();
        deliver(&host, week_event("2026-W48")).unwrap();
        let p = &host.published()[0].payload;
        assert_eq!(p["communities"], yiwang_sdk::serde_json::to_value(&communities).unwrap());
        assert_eq!(p["city"], yiwang_sdk::serde_json::to_value(&city).unwrap());
        assert!(host.denials().is_empty(), "{:?}", host.denials());
    }

    const WEEKS: usize = 40;
    const PER_WEEK: usize = 500;
    const COMMUNITIES: usize = 20;

    fn id(week: usize, j: usize) -> String {
        format!("w{week:02}-{j:03}")
    }

    fn community(j: usize) -> String {
        format!("320102001{:03}", j % COMMUNITIES + 1)
    }

    fn category(j: usize) -> &'static str {
        if j.is_multiple_of(2) { "020601" } else { "020602" }
    }

    /// The moves of case `j` of a week: closed (every third), reopened (every
    /// 39th), voided (every seventh), called in by a dispatcher (every eleventh).
    fn moves(j: usize) -> Vec<&'static str> {
        let mut out = Vec::new();
        if j.is_multiple_of(3) {
            out.push("close");
        }
        if j.is_multiple_of(39) {
            out.push("reopen");
        }
        if j.is_multiple_of(7) {
            out.push("void");
        }
        if j.is_multiple_of(11) {
            out.push("call-in");
        }
        out
    }

    /// Forty weeks of grid events (20,000 reports and their moves, a case's moves
    /// often in the week after its report) with queries failing: every event reads and
    /// writes a few small records by key, and each week's report has the figures of
    /// that week's cases as they stand, from that week's records alone.
    #[test]
    fn forty_weeks_of_events_cost_the_same_per_event_and_each_report_reads_its_week() {
        let first = CST.midnight(calendar::parse_week("2026-W01").unwrap());
        let time = |week: usize, j: usize| first + week as i64 * 7 * DAY_MS + j as i64 * (7 * DAY_MS / PER_WEEK as i64);
        let mut builder = mock().fail("data.query", Error::Unavailable("no scans: read by key".into()));
        for week in 0..WEEKS {
            for j in 0..PER_WEEK {
                builder = builder.case(id(week, j));
            }
        }
        let host = builder.install();
        let (mut most_writes, mut largest) = (0usize, vec![0usize; WEEKS]);
        let mut measure = |host: &InstalledHost, week: usize| {
            let written = host.data_written();
            most_writes = most_writes.max(written.len());
            for w in written {
                largest[week] = largest[week].max(w.value.to_string().len());
            }
            host.clear_calls();
        };
        for week in 0..WEEKS {
            for j in 0..PER_WEEK {
                let grid = format!("{}01", community(j));
                let at = time(week, j);
                deliver(&host, reported(&id(week, j), category(j), json!(grid)).with_time(at)).unwrap();
                measure(&host, week);
                // The moves of the case reported half a week ago: in this week or the last.
                let (mw, mj) = if j >= PER_WEEK / 2 { (week, j - PER_WEEK / 2) } else if week > 0 { (week - 1, j + PER_WEEK / 2) } else { continue };
                for action in moves(mj) {
                    deliver(&host, moved(&id(mw, mj), action, json!({ "reason": "处置" })).with_time(at + 60_000)).unwrap();
                    measure(&host, week);
                }
            }
        }
        // A report is remembered, its route remembered and its week's tally kept: a
        // few writes of a few kilobytes, as large in the last week as in the second
        // (give or take the digits of longer ids).
        assert!(most_writes <= 5, "{most_writes} writes for one event");
        assert!(largest.iter().all(|l| *l <= 8 * 1024), "{largest:?}");
        assert!(largest[WEEKS - 1] <= largest[1] + 64, "{largest:?}");

        for week in [WEEKS - 2, 5] {
            let label = CST.week_of(time(week, 0));
            deliver(&host, week_event(&label)).unwrap();
            let p = &host.published()[0].payload;
            assert_eq!(p["week"], json!(label));
            let mut expected: BTreeMap<String, summary::Figures> = BTreeMap::new();
            for j in 0..PER_WEEK {
                let f = expected.entry(community(j)).or_default();
                f.cases += 1;
                *f.by_category.entry(category(j).into()).or_default() += 1;
                let (mut status, mut escalated) = ("open", false);
                for action in moves(j) {
                    match action {
                        "close" => status = "closed",
                        "reopen" => status = "open",
                        "void" => status = "withdrawn",
                        _ => escalated = true,
                    }
                }
                match status {
                    "closed" => f.closed += 1,
                    "withdrawn" => f.withdrawn += 1,
                    _ => f.open += 1,
                }
                f.escalated += u32::from(escalated);
            }
            let communities: Vec<Value> = expected
                .iter()
                .map(|(c, f)| {
                    let mut v = yiwang_sdk::serde_json::to_value(f).unwrap();
                    v["community"] = json!(c);
                    v["street"] = json!(&c[..9]);
                    v
                })
                .collect();
            assert_eq!(p["communities"], json!(communities), "{label}");
            assert_eq!(p["city"]["cases"], json!(PER_WEEK), "{label}");
            assert_eq!(host.messages_sent().len(), COMMUNITIES + 1);
            host.clear_calls();
        }
        assert!(host.denials().is_empty(), "{:?}", host.denials());
    }
}
