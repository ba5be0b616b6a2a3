//! The case engine: one intake (idempotent, durable, categories checked) on
//! SQLite and PostgreSQL, and a case taken through its lifecycle over HTTP by
//! the people who may move it — with refusals for the wrong stage (409, listing
//! what is allowed), the wrong role or area (403, audited), and a reporter
//! following the ticket without seeing personal data; route suggestions
//! checked field by field and settled by the dispatch that accepts or
//! overrides them.

use std::sync::Arc;

use serde_json::{Value, json};
use yiwang::bus::{GeoPoint, MemoryBus};
use yiwang::cases::Cases;
use yiwang::cases::engine::{Caller, Channel, NewReport};
use yiwang::error::ServiceError;
use yiwang::space::Space;

#[macro_use]
mod common;

use common::Fixture;

const CITY: &str = include_str!("data/city.geojson");
/// In the west street's first community, south-west grid cell.
const WEST_POINT: GeoPoint = GeoPoint { lat: 32.045, lon: 118.785 };

fn hotline(key: Option<&str>) -> NewReport {
    NewReport {
        channel: Channel::Hotline,
        idempotency_key: key.map(Into::into),
        category_code: "010110".into(),
        title: None,
        description: "中山路12号门前井盖缺失，很危险".into(),
        location: Some(WEST_POINT),
        address: Some("中山路12号".into()),
        evidence: vec![],
        caller: Some(Caller { name: "王女士".into(), phone: "13900001111".into() }),
    }
}

storage_test!(intake_is_idempotent_and_checks_what_it_takes, async |f: Fixture| {
    let space = Arc::new(Space::new(f.db.clone()));
    space.load_geojson(CITY).await.unwrap();
    let cases = Cases::new(f.db.clone(), f.clock.clone(), Arc::new(MemoryBus::default()), space, Arc::new(yiwang::audit::Audit::new(f.db.clone(), f.clock.clone())));
    let first = cases.intake(&hotline(Some("call-0001")), Some("op1")).await.unwrap();
    assert!(first.created && first.ticket.starts_with("YW") && first.ticket.len() == 14, "{first:?}");
    let again = cases.intake(&hotline(Some("call-0001")), Some("op1")).await.unwrap();
    assert_eq!((again.case.as_str(), again.report.as_str(), again.created), (first.case.as_str(), first.report.as_str(), false));
    // Another call about the same incident joins the open case (deduplication).
    let other = cases.intake(&hotline(None), Some("op2")).await.unwrap();
    assert_eq!((other.case.as_str(), other.joined), (first.case.as_str(), true));
    assert_ne!(other.report, first.report);
    // A different incident at the same place opens its own case.
    let mut vending = hotline(None);
    vending.category_code = "020501".into();
    vending.description = "门口有人占道摆摊卖水果".into();
    let third = cases.intake(&vending, Some("op1")).await.unwrap();
    assert!(!third.joined && third.case != first.case);
    assert_eq!(cases.view(&first.case).await.unwrap().unwrap().reports.len(), 2);

    let view = cases.view(&first.case).await.unwrap().unwrap();
    assert_eq!(view.area.as_deref(), Some("32010200100101"));
    assert_eq!(view.title, "无主井盖", "the category's name stands in for a missing title");

    let mut unknown = hotline(None);
    unknown.category_code = "999999".into();
    let m = match cases.intake(&unknown, None).await {
        Err(ServiceError::Invalid(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(m.starts_with("category_code: `999999` is not a known category; known: 010101, "), "{m}");
    for (edit, needle) in [
        (Box::new(|r: &mut NewReport| r.caller = None) as Box<dyn Fn(&mut NewReport)>, "caller"),
        (Box::new(|r: &mut NewReport| r.location = Some(GeoPoint { lat: 91.0, lon: 0.0 })), "location"),
        (Box::new(|r: &mut NewReport| r.evidence = vec!["a".repeat(64)]), "evidence[0]: no uploaded media"),
        (Box::new(|r: &mut NewReport| r.description = " ".into()), "description"),
        (Box::new(|r: &mut NewReport| { r.channel = Channel::Snapshot; r.caller = None; }), "snapshot"),
    ] {
        let mut r = hotline(None);
        edit(&mut r);
        match cases.intake(&r, None).await {
            Err(ServiceError::Invalid(m)) => assert!(m.contains(needle), "{needle}: {m}"),
            other => panic!("{needle}: {other:?}"),
        }
    }
    use sqlx::Row;
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM reports").fetch_one(f.db.pool()).await.unwrap().get(0);
    assert_eq!(n, 3, "refused reports leave nothing behind");
});

storage_test!(concurrent_reports_are_written_together_and_decided_in_order, async |f: Fixture| {
    let space = Arc::new(Space::new(f.db.clone()));
    space.load_geojson(CITY).await.unwrap();
    let audit = Arc::new(yiwang::audit::Audit::new(f.db.clone(), f.clock.clone()));
    let cases = Arc::new(Cases::new(f.db.clone(), f.clock.clone(), Arc::new(MemoryBus::default()), space, audit.clone()));
    // 60 reports at once: 20 of one incident, 20 at places 1 km apart, and 20
    // hotline calls under 10 idempotency keys (each key sent twice).
    let mut tasks = Vec::new();
    for n in 0..60u32 {
        let mut r = hotline(None);
        match n % 3 {
            0 => r.description = format!("中山路12号井盖缺失（第{n}次反映）"),
            1 => {
                r.location = Some(GeoPoint { lat: 32.041 + f64::from(n) * 0.0002, lon: 118.781 + f64::from(n % 7) * 0.001 });
                r.category_code = format!("0201{:02}", 1 + n % 7);
                r.description = format!("第{n}处问题，各不相同");
            }
            _ => {
                r.idempotency_key = Some(format!("call-{}", n % 10));
                r.category_code = "020601".into();
                r.description = format!("邻里纠纷 {}", n % 10);
                r.location = None;
            }
        }
        let cases = cases.clone();
        tasks.push(tokio::spawn(async move { (n, cases.intake(&r, Some("op1")).await.unwrap()) }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    // The same incident became one case, however the reports were batched.
    let same: std::collections::BTreeSet<&str> = answers.iter().filter(|(n, _)| n % 3 == 0).map(|(_, a)| a.case.as_str()).collect();
    assert_eq!(same.len(), 1, "one case for one incident: {answers:?}");
    let manhole = same.into_iter().next().unwrap();
    assert_eq!(cases.view(manhole).await.unwrap().unwrap().reports.len(), 20);
    // Each key names one report, whichever submission came first.
    for key in 0..10u32 {
        let reports: std::collections::BTreeSet<&str> = answers
            .iter()
            .filter(|(n, _)| n % 3 == 2 && n % 10 == key)
            .map(|(_, a)| a.report.as_str())
            .collect();
        assert_eq!(reports.len(), 1, "key call-{key}: {answers:?}");
    }
    // Every answer names a stored report under its case, with its audit record.
    for (_, a) in &answers {
        let case: String = sqlx::Row::get(&sqlx::query("SELECT case_id FROM reports WHERE id = $1").bind(&a.report).fetch_one(f.db.pool()).await.unwrap(), 0);
        assert_eq!(case, a.case);
    }
    let stored: i64 = sqlx::Row::get(&sqlx::query("SELECT COUNT(*) FROM reports").fetch_one(f.db.pool()).await.unwrap(), 0);
    assert_eq!(stored, 50, "40 without a key and 10 keyed");
    let records = audit.find(None, Some("case.report"), 1000).await.unwrap();
    assert_eq!(records.len(), 50, "one audit record per stored report");
    assert!(audit.verify().await.unwrap().is_none(), "the chain holds");
});

storage_test!(deadlines_run_on_working_time_and_overdue_is_announced_once, async |f: Fixture| {
    use yiwang::calendar::{CalendarSpec, Light};
    use yiwang::clock::Clock;
    use yiwang::cases::engine::{Move, Who};
    use yiwang::cases::lifecycle::Action;
    const MIN: i64 = 60_000;
    let space = Arc::new(Space::new(f.db.clone()));
    space.load_geojson(CITY).await.unwrap();
    let cases = Cases::new(f.db.clone(), f.clock.clone(), Arc::new(MemoryBus::default()), space, Arc::new(yiwang::audit::Audit::new(f.db.clone(), f.clock.clone())));
    // T0 is Friday 2027-01-15 16:00 in Beijing; accepting has one working hour.
    let intake = cases.intake(&hotline(None), Some("op1")).await.unwrap();
    let clock = |v: &yiwang::cases::engine::CaseView| v.clock.clone().unwrap();
    let c = clock(&cases.view(&intake.case).await.unwrap().unwrap());
    assert_eq!((c.step.as_str(), c.limit_ms, c.used_ms, c.deadline, c.light), ("accept", 60 * MIN, 0, Some(common::T0 + 60 * MIN), Light::Green));
    f.clock.advance(50 * MIN);
    assert_eq!(clock(&cases.view(&intake.case).await.unwrap().unwrap()).light, Light::Yellow);
    f.clock.advance(70 * MIN);
    let c = clock(&cases.view(&intake.case).await.unwrap().unwrap());
    assert_eq!((c.used_ms, c.light), (90 * MIN, Light::Red), "16:00-17:30 counts, the evening does not");
    let overdue = cases.mark_overdue(f.clock.now_ms()).await.unwrap();
    assert_eq!(overdue.iter().map(|(id, _, step)| (id.as_str(), step.as_str())).collect::<Vec<_>>(), [(intake.case.as_str(), "accept")]);
    assert!(cases.mark_overdue(f.clock.now_ms()).await.unwrap().is_empty(), "announced once");

    // Accepting ends the step (its deadline kept with the transition) and starts the next.
    let accept = Move { action: Action::Accept, reason: String::new(), department: None, extension_hours: None, into: None, suggestion: None };
    let v = cases.transition(&intake.case, &accept, Who::System("host:test")).await.unwrap();
    assert_eq!((v.transitions[0].step.as_deref(), v.transitions[0].due), (Some("accept"), Some(common::T0 + 60 * MIN)));
    let monday_1030 = common::T0 + (2 * 24 + 18) * 60 * MIN + 30 * MIN;
    assert_eq!(clock(&v).deadline, Some(monday_1030), "registering has two working hours: Monday 08:30-10:30");
    // A holiday on that Monday moves it to Tuesday.
    let spec: CalendarSpec = serde_json::from_value(json!({
        "utc_offset_minutes": 480, "periods": [["08:30", "12:00"], ["14:00", "17:30"]],
        "weekend": ["sat", "sun"], "holidays": ["2027-01-18"],
    }))
    .unwrap();
    cases.set_calendar("320102", &spec).await.unwrap();
    let v = cases.view(&intake.case).await.unwrap().unwrap();
    assert_eq!(clock(&v).deadline, Some(monday_1030 + 24 * 60 * MIN));
    let bad: CalendarSpec = serde_json::from_value(json!({"utc_offset_minutes": 480, "periods": [], "weekend": []})).unwrap();
    assert!(matches!(cases.set_calendar("320102", &bad).await, Err(ServiceError::Invalid(m)) if m.starts_with("periods")));
});

storage_test!(route_suggestions_are_checked_shown_and_settled_by_the_dispatch, async |f: Fixture| {
    use yiwang::bus::Bus;
    use yiwang::cases::engine::{Move, Who};
    use yiwang::cases::lifecycle::Action;
    use yiwang::cases::suggest::{NewSuggestion, SuggestionOutcome};
    let bus = Arc::new(MemoryBus::default());
    let mut suggested = bus.subscribe("test", vec![yiwang_registry::TopicPattern::parse("case.route-suggested").unwrap()], 16);
    let cases = Cases::new(f.db.clone(), f.clock.clone(), bus.clone(), Arc::new(Space::new(f.db.clone())), Arc::new(yiwang::audit::Audit::new(f.db.clone(), f.clock.clone())));
    let case = cases.intake(&hotline(None), Some("op1")).await.unwrap().case;
    let good = || NewSuggestion { department: "housing".into(), level: "district".into(), score: 0.8, reason: "施工类事件".into() };

    // Each field is checked, and the error names it; nothing is stored.
    for (edit, needle) in [
        (Box::new(|s: &mut NewSuggestion| s.department = " ".into()) as Box<dyn Fn(&mut NewSuggestion)>, "department: must name"),
        (Box::new(|s: &mut NewSuggestion| s.department = "nobody".into()), "department: unknown department `nobody`"),
        (Box::new(|s: &mut NewSuggestion| s.level = "province".into()), "level: `province` is not a command level"),
        (Box::new(|s: &mut NewSuggestion| s.score = 1.5), "score: 1.5 is not between 0 and 1"),
        (Box::new(|s: &mut NewSuggestion| s.score = f64::NAN), "score: NaN"),
        (Box::new(|s: &mut NewSuggestion| s.reason = "  ".into()), "reason: must be 1-500 characters"),
        (Box::new(|s: &mut NewSuggestion| s.reason = "长".repeat(501)), "reason: must be 1-500 characters, not 501"),
    ] {
        let mut s = good();
        edit(&mut s);
        match cases.suggest_route(&case, "router", &s).await {
            Err(ServiceError::Invalid(m)) => assert!(m.starts_with(needle), "{needle}: {m}"),
            other => panic!("{needle}: {other:?}"),
        }
    }
    match cases.suggest_route("no-such-case", "router", &good()).await {
        Err(ServiceError::NotFound(m)) => assert!(m.starts_with("case_id: no case"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(cases.view(&case).await.unwrap().unwrap().suggestions.is_empty(), "refused suggestions leave nothing behind");
    assert!(suggested.events.try_recv().is_err(), "nor an event");

    // Stored, shown with the case and announced; one pending per plugin.
    let first = cases.suggest_route(&case, "router", &good()).await.unwrap();
    assert_eq!((first.plugin.as_str(), first.outcome, first.at), ("router", SuggestionOutcome::Pending, common::T0));
    let event = suggested.events.recv().await.unwrap();
    assert_eq!(event.source, "plugin:router");
    let payload: Value = serde_json::from_str(&event.payload).unwrap();
    assert_eq!((&payload["case"], &payload["suggestion"], &payload["department"], &payload["level"]), (&json!(case), &json!(first.id), &json!("housing"), &json!("district")));
    match cases.suggest_route(&case, "router", &good()).await {
        Err(ServiceError::Conflict(m)) => assert!(m.contains(&first.id), "{m}"),
        other => panic!("{other:?}"),
    }
    let other = NewSuggestion { department: "chengguan".into(), level: "street".into(), score: 0.4, reason: "井盖归城管".into() };
    let second = cases.suggest_route(&case, "other", &other).await.unwrap();
    let view = cases.view(&case).await.unwrap().unwrap();
    assert_eq!(view.suggestions.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [first.id.as_str(), second.id.as_str()]);

    // A suggestion goes with a dispatch only, and alone; it must be this case's.
    let mv = |action, department: Option<&str>, suggestion: Option<&str>| Move {
        action, reason: String::new(), department: department.map(Into::into), extension_hours: None, into: None,
        suggestion: suggestion.map(Into::into),
    };
    let sys = Who::System("host:test");
    match cases.transition(&case, &mv(Action::Accept, None, Some(&first.id)), sys).await {
        Err(ServiceError::Invalid(m)) => assert_eq!(m, "suggestion: `accept` takes none"),
        other => panic!("{other:?}"),
    }
    cases.transition(&case, &mv(Action::Accept, None, None), sys).await.unwrap();
    cases.transition(&case, &mv(Action::Register, None, None), sys).await.unwrap();
    match cases.transition(&case, &mv(Action::Dispatch, Some("housing"), Some(&first.id)), sys).await {
        Err(ServiceError::Invalid(m)) => assert!(m.starts_with("suggestion: a dispatch accepts a suggestion or names a department"), "{m}"),
        other => panic!("{other:?}"),
    }
    match cases.transition(&case, &mv(Action::Dispatch, None, Some("nope")), sys).await {
        Err(ServiceError::NotFound(m)) => assert!(m.starts_with("suggestion: case"), "{m}"),
        other => panic!("{other:?}"),
    }

    // Accepting one dispatches to its department at its level, names the plugin,
    // and overrides the rest.
    f.clock.advance(60_000);
    let view = cases.transition(&case, &mv(Action::Dispatch, None, Some(&second.id)), sys).await.unwrap();
    assert_eq!((view.department.as_deref(), view.level.as_deref()), (Some("chengguan"), Some("street")));
    let reason = &view.transitions.last().unwrap().reason;
    assert!(reason.starts_with("采纳插件 other 的路由建议") && reason.contains(&second.id), "{reason}");
    let settled: Vec<_> = view.suggestions.iter().map(|s| (s.id.as_str(), s.outcome, s.decided_by.as_deref(), s.decided_at)).collect();
    let at = Some(common::T0 + 60_000);
    assert_eq!(settled, [(first.id.as_str(), SuggestionOutcome::Overridden, Some("host:test"), at), (second.id.as_str(), SuggestionOutcome::Accepted, Some("host:test"), at)]);

    // Back at the command centre, a settled suggestion is not taken again; a new one may be made.
    cases.transition(&case, &Move { reason: "不属本部门".into(), ..mv(Action::Return, None, None) }, sys).await.unwrap();
    match cases.transition(&case, &mv(Action::Dispatch, None, Some(&second.id)), sys).await {
        Err(ServiceError::Conflict(m)) => assert_eq!(m, format!("suggestion: `{}` was already accepted", second.id)),
        other => panic!("{other:?}"),
    }
    let again = cases.suggest_route(&case, "router", &good()).await.unwrap();
    // A dispatch by the routing rules overrides it.
    let view = cases.transition(&case, &mv(Action::Dispatch, None, None), sys).await.unwrap();
    assert_eq!(view.suggestions.iter().find(|s| s.id == again.id).unwrap().outcome, SuggestionOutcome::Overridden);

    // A case that is no longer open takes no suggestions.
    let mut elsewhere = hotline(None);
    elsewhere.location = None;
    let rejected = cases.intake(&elsewhere, Some("op1")).await.unwrap().case;
    cases.transition(&rejected, &Move { reason: "重复来电".into(), ..mv(Action::Reject, None, None) }, sys).await.unwrap();
    match cases.suggest_route(&rejected, "router", &good()).await {
        Err(ServiceError::Conflict(m)) => assert!(m.starts_with(&format!("case_id: case `{rejected}` is rejected")), "{m}"),
        other => panic!("{other:?}"),
    }
});

mod http {
    use super::*;
    use common::http::{Host, message, start};
    use yiwang::identity::{AccountKind, Role};

    const STAFF: AccountKind = AccountKind::Staff;

    async fn step(host: &Host, case: &str, token: &str, action: &str, extra: Value) -> (u16, Value) {
        host.transition(case, token, action, extra).await
    }

    async fn cg_token_of(host: &Host) -> String {
        host.user("cg.kpi", Some("chengguan"), STAFF, &[Role::Handler], "320100").await
    }

    async fn ok(host: &Host, case: &str, token: &str, action: &str, extra: Value) -> Value {
        let (status, body) = step(host, case, token, action, extra).await;
        assert_eq!(status, 200, "{action}: {body}");
        body
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hotline_call_and_a_snapshot_through_merge_dispatch_transfer_extension_rework_closure_and_reopen() {
        let host = start(false).await;
        host.services.space.load_geojson(CITY).await.unwrap();
        let operator = host.user("op.12345", Some("hotline12345"), STAFF, &[Role::Dispatcher], "320100").await;
        let dispatcher = host.user("disp", Some("command-center"), STAFF, &[Role::Dispatcher], "320100").await;
        let east_dispatcher = host.user("disp.east", Some("command-center"), STAFF, &[Role::Dispatcher], "320102002").await;
        let cg = host.user("cg", Some("chengguan"), STAFF, &[Role::Handler], "320100").await;
        let water = host.user("water", Some("water"), STAFF, &[Role::Handler], "320100").await;
        let supervisor = host.user("sup", Some("command-center"), STAFF, &[Role::Supervisor], "320100").await;
        let grid = host.user("grid", Some("command-center"), STAFF, &[Role::GridWorker], "320102001").await;
        let resident = host.user("resident", None, AccountKind::Resident, &[Role::Resident], "320100").await;

        // Intake: the hotline operator enters the call; a resident may not use that channel.
        let report = serde_json::to_value(hotline(Some("call-42"))).unwrap();
        let (status, body) = host.post("/api/reports", &resident, report.clone()).await;
        assert_eq!(status, 403, "{body}");
        let (status, intake) = host.post("/api/reports", &operator, report.clone()).await;
        assert_eq!(status, 201, "{intake}");
        let (status, again) = host.post("/api/reports", &operator, report).await;
        assert_eq!((status, &again["case"], &again["ticket"], &again["created"]), (200, &intake["case"], &intake["ticket"], &json!(false)));
        let case = intake["case"].as_str().unwrap().to_owned();
        let ticket = intake["ticket"].as_str().unwrap().to_owned();
        // A resident's 随手拍 of the same manhole, filed as an incident (井盖缺失致险): another
        // category family, so the deduplication leaves it for the dispatcher to merge.
        let photo = [&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00][..], &[7u8; 2000][..]].concat();
        let r = host.raw("POST", "/api/media?filename=manhole.jpg", &resident, "image/jpeg", &photo).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let sha = r.json()["sha256"].as_str().unwrap().to_owned();
        let snapshot = json!({
            "channel": "snapshot", "category_code": "020405", "description": "中山路12号井盖丢了，很危险",
            "location": {"lat": 32.0451, "lon": 118.7851}, "evidence": [sha],
        });
        let (status, separate) = host.post("/api/reports", &resident, snapshot).await;
        assert_eq!((status, separate["joined"].as_bool()), (201, Some(false)), "{separate}");
        let snapshot_case = separate["case"].as_str().unwrap().to_owned();
        assert_ne!(snapshot_case, case);
        // A grid worker's patrol report of it in the same category joins the case by itself.
        let patrol = json!({
            "channel": "patrol", "category_code": "010110", "description": "中山路12号附近井盖缺失",
            "location": {"lat": 32.0452, "lon": 118.7852},
        });
        let (status, joined) = host.post("/api/reports", &grid, patrol).await;
        assert_eq!(status, 201, "{joined}");
        assert_eq!((joined["case"].as_str(), joined["ticket"].as_str(), joined["joined"].as_bool()), (Some(case.as_str()), Some(ticket.as_str()), Some(true)));
        // 合并: the dispatcher merges the 随手拍 case into the hotline case.
        let (status, body) = step(&host, &snapshot_case, &dispatcher, "merge", json!({"into": case})).await;
        assert_eq!(status, 422, "a merge says why: {body}");
        let merged = ok(&host, &snapshot_case, &dispatcher, "merge", json!({"into": case, "reason": "同一井盖"})).await;
        assert_eq!((merged["stage"].as_str(), merged["reports"].as_array().map(Vec::len)), (Some("voided"), Some(0)));
        // The resident follows the surviving case by the ticket they were given.
        let snapshot_ticket = separate["ticket"].as_str().unwrap();
        let (status, followed) = host.get(&format!("/api/tickets/{snapshot_ticket}"), &resident).await;
        assert_eq!((status, followed["merged_into_ticket"].as_str()), (200, Some(ticket.as_str())), "{followed}");
        let (status, body) = host.post("/api/reports", &operator, json!({
            "channel": "hotline", "category_code": "0101", "description": "x", "caller": {"name": "a", "phone": "1"}
        })).await;
        assert_eq!(status, 422);
        assert!(message(&body).contains("known: 010101"), "{body}");

        // Illegal moves answer 409 with what is allowed; the wrong role or area 403.
        let (status, body) = step(&host, &case, &dispatcher, "close", json!({})).await;
        assert_eq!(status, 409);
        assert_eq!(message(&body), "`close` is not allowed while the case is reported; allowed: accept, reject, merge");
        let (status, _) = step(&host, &case, &cg, "accept", json!({})).await;
        assert_eq!(status, 403, "a handler does not accept");
        let (status, body) = step(&host, &case, &east_dispatcher, "accept", json!({})).await;
        assert_eq!(status, 403, "another street's dispatcher: {body}");
        assert!(message(&body).contains("outside org units 320102002"), "{body}");

        ok(&host, &case, &dispatcher, "accept", json!({})).await;
        ok(&host, &case, &dispatcher, "register", json!({})).await;
        let (_, view) = host.get(&format!("/api/cases/{case}"), &dispatcher).await;
        assert_eq!((view["route"]["department"].as_str(), view["route"]["level"].as_str()), (Some("chengguan"), Some("street")));
        let channels: Vec<&str> = view["reports"].as_array().unwrap().iter().map(|r| r["channel"].as_str().unwrap()).collect();
        assert_eq!(channels, ["hotline", "snapshot", "patrol"]);
        // The dispatcher overrides the route.
        let view = ok(&host, &case, &dispatcher, "dispatch", json!({"department": "water"})).await;
        assert_eq!(view["level"], "district", "an override is handled at district level");
        // 转办: the water department is the wrong owner of a 无主井盖; the dispatcher transfers.
        let (status, _) = step(&host, &case, &dispatcher, "transfer", json!({"department": "chengguan"})).await;
        assert_eq!(status, 422, "a transfer needs a reason");
        ok(&host, &case, &dispatcher, "transfer", json!({"department": "chengguan", "reason": "无主井盖归城管"})).await;
        let (status, _) = step(&host, &case, &water, "start", json!({})).await;
        assert_eq!(status, 403, "no longer the water department's case");
        ok(&host, &case, &cg, "start", json!({})).await;
        let (status, _) = step(&host, &case, &cg, "request-extension", json!({"reason": "需定制井盖"})).await;
        assert_eq!(status, 422, "an extension names its hours");
        let view = ok(&host, &case, &cg, "request-extension", json!({"reason": "需定制井盖", "extension_hours": 8})).await;
        assert_eq!(view["pending_extension_hours"], 8.0);
        let limit = view["clock"]["limit_ms"].as_i64().unwrap();
        assert_eq!(view["clock"]["step"], "dispose");
        let (status, _) = step(&host, &case, &cg, "dispose", json!({})).await;
        assert_eq!(status, 409, "the extension is settled first");
        let view = ok(&host, &case, &supervisor, "approve-extension", json!({})).await;
        assert_eq!(view["clock"]["limit_ms"].as_i64().unwrap(), limit + 8 * 3_600_000);
        ok(&host, &case, &supervisor, "urge", json!({})).await;
        ok(&host, &case, &cg, "dispose", json!({})).await;
        ok(&host, &case, &dispatcher, "send-to-check", json!({})).await;
        // 返工: the grid worker finds it not done.
        let view = ok(&host, &case, &grid, "fail-check", json!({"reason": "井盖未固定"})).await;
        assert_eq!(view["stage"], "in-progress");
        ok(&host, &case, &cg, "dispose", json!({})).await;
        ok(&host, &case, &dispatcher, "send-to-check", json!({})).await;
        ok(&host, &case, &grid, "pass-check", json!({})).await;
        let view = ok(&host, &case, &supervisor, "close", json!({})).await;
        assert_eq!((view["stage"].as_str(), view["department"].as_str()), (Some("closed"), Some("chengguan")));
        assert_eq!(view["allowed"], json!(["reopen"]));
        let actions: Vec<&str> = view["transitions"].as_array().unwrap().iter().map(|t| t["action"].as_str().unwrap()).collect();
        assert_eq!(actions, [
            "accept", "register", "dispatch", "transfer", "start", "request-extension", "approve-extension", "urge",
            "dispose", "send-to-check", "fail-check", "dispose", "send-to-check", "pass-check", "close",
        ]);
        let transfer = &view["transitions"][3];
        assert_eq!((transfer["reason"].as_str(), transfer["actor"].as_str()), (Some("无主井盖归城管"), Some("user:disp")));

        // The reporter's view: progress only.
        let r = host.raw("GET", &format!("/api/tickets/{ticket}"), "", "application/json", b"").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(!r.body.contains("13900001111") && !r.body.contains("王女士") && !r.body.contains("user:"), "{}", r.body);
        let progress = r.json();
        assert_eq!(progress["stage"], "closed");
        assert_eq!(progress["steps"].as_array().unwrap().last().unwrap()[0], "closed");
        assert_eq!(host.raw("GET", "/api/tickets/YW000000000000", "", "application/json", b"").await.status, 404);

        // The callback (回访): unsatisfied, so the case is reopened; a stranger may not rate.
        let rating = format!("/api/tickets/{ticket}/rating");
        assert_eq!(host.post(&rating, &resident, json!({"satisfied": true})).await.0, 403);
        let (status, body) = host.post(&rating, &operator, json!({"satisfied": false, "comment": "井盖又松了"})).await;
        assert_eq!((status, body["stage"].as_str()), (200, Some("registered")), "{body}");
        let (status, _) = host.post(&rating, &operator, json!({"satisfied": true})).await;
        assert_eq!(status, 409, "only a closed case is rated");
        let (_, view) = host.get(&format!("/api/cases/{case}"), &dispatcher).await;
        let last = view["transitions"].as_array().unwrap().last().unwrap().clone();
        assert_eq!((last["action"].as_str(), last["actor"].as_str(), last["reason"].as_str()), (Some("reopen"), Some("host:rating"), Some("不满意：井盖又松了")));
        // The hotline operator who entered the call was told of the closure.
        let (_, inbox) = host.get("/api/messages", &operator).await;
        assert!(inbox.to_string().contains("已办结"), "{inbox}");

        // The evaluation, from the transition log.
        let (status, kpis) = host.get("/api/kpis?from=0&to=4102444800000", &supervisor).await;
        assert_eq!(status, 200, "{kpis}");
        let dept = |d: &str| kpis["departments"].as_array().unwrap().iter().find(|k| k["department"] == d).unwrap().clone();
        let cg = dept("chengguan");
        assert_eq!(cg["steps"]["dispose"], json!({"due": 2, "done": 2, "on_time": 2}), "{cg}");
        assert_eq!(cg["steps"]["close"], json!({"due": 1, "done": 1, "on_time": 1}), "{cg}");
        assert_eq!((cg["closure_rate"].as_f64(), cg["rework_rate"].as_f64(), cg["delay_rate"].as_f64()), (Some(1.0), Some(1.0), Some(0.0)));
        let water = dept("water");
        assert_eq!((water["steps"]["dispose"]["due"].as_i64(), water["disposal_rate"].as_f64()), (Some(1), Some(0.0)), "{water}");
        let cc = dept("command-center");
        assert_eq!(cc["steps"]["dispatch"]["done"], 1, "{cc}");
        assert_eq!(cc["steps"]["dispatch"]["due"], 2, "the re-dispatch after reopening is due: {cc}");
        assert_eq!((cc["returned_or_transferred"].as_i64(), cc["dispatch_accuracy_rate"].as_f64()), (Some(1), Some(0.5)));
        let hl = &kpis["hotline"];
        assert_eq!((hl["reported"].as_i64(), hl["closed"].as_i64(), hl["reopened"].as_i64(), hl["urged"].as_i64()), (Some(1), Some(1), Some(1), Some(1)));
        assert_eq!((hl["satisfaction_rate"].as_f64(), hl["reopen_rate"].as_f64()), (Some(0.0), Some(1.0)));
        assert_eq!(host.get("/api/kpis?from=0&to=4102444800000", &cg_token_of(&host).await).await.0, 403);
        assert_eq!(host.get("/api/kpis?from=5&to=5", &supervisor).await.0, 422);

        // Per command level: the water and chengguan work ran at district level (an override).
        let level = |l: &str| kpis["levels"].as_array().unwrap().iter().find(|k| k["level"] == l).unwrap_or_else(|| panic!("{l}: {kpis}")).clone();
        let district = level("district");
        assert_eq!(district["steps"]["dispose"], json!({"due": 3, "done": 2, "on_time": 2}), "{district}");
        assert_eq!(level("command-center")["steps"]["dispatch"]["done"], 1, "{kpis}");
        // The audit log alone gives the same evaluation, per department, level and hotline.
        let (status, from_audit) = host.get("/api/kpis?from=0&to=4102444800000&source=audit", &supervisor).await;
        assert_eq!(status, 200, "{from_audit}");
        assert_eq!(from_audit, kpis, "KPIs recomputed from the audit log");
        let (_, only) = host.get("/api/kpis?from=0&to=4102444800000&source=audit&level=district&department=water", &supervisor).await;
        assert_eq!((only["levels"].as_array().unwrap().len(), only["departments"].as_array().unwrap().len()), (1, 1), "{only}");
        assert_eq!(host.get("/api/kpis?from=0&to=5&source=paper", &supervisor).await.0, 422);

        // Everything was audited, refusals included, and the chain holds.
        let audit = host.services.audit.find(None, None, 1000).await.unwrap();
        let ok_steps = audit.iter().filter(|r| r.subject == case && r.outcome == "ok" && r.action.starts_with("case."));
        assert_eq!(ok_steps.count(), 19, "two reports (the merged one stays with its case), 15 moves, the rating and the reopen");
        let merge = audit.iter().find(|r| r.subject == snapshot_case && r.action == "case.merge").expect("the merge is audited");
        assert!(merge.detail.contains(&case), "{}", merge.detail);
        assert!(audit.iter().any(|r| r.actor == "user:cg" && r.action == "case.accept" && r.outcome == "denied"));
        assert!(host.services.audit.verify().await.unwrap().is_none());
        let (status, _) = host.get(&format!("/api/cases/{case}"), &east_dispatcher).await;
        assert_eq!(status, 403);
        let (status, body) = host.get(&format!("/api/cases/{case}"), &dispatcher).await;
        assert_eq!((status, body["ticket"].as_str()), (200, Some(ticket.as_str())));
    }

    /// Every element of an XML document, checking that it is well-formed.
    fn xml_texts(doc: &str) -> Vec<(String, String)> {
        let mut reader = quick_xml::Reader::from_str(doc);
        let (mut out, mut current) = (Vec::new(), String::new());
        loop {
            match reader.read_event().unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{doc}")) {
                quick_xml::events::Event::Start(e) => current = e.name().as_ref().to_owned(),
                quick_xml::events::Event::Text(t) => out.push((current.clone(), t.xml10_content().to_string())),
                quick_xml::events::Event::Eof => return out,
                _ => {}
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_open311_client_lists_services_posts_a_request_and_reads_it_back() {
        let host = start(false).await;
        host.services.space.load_geojson(CITY).await.unwrap();

        let r = host.raw("GET", "/open311/v2/services.json", "", "application/json", b"").await;
        assert_eq!(r.status, 200);
        let services = r.json();
        let covers = services.as_array().unwrap().iter().find(|s| s["service_code"] == "020501").unwrap();
        assert_eq!((covers["service_name"].as_str(), covers["type"].as_str(), covers["group"].as_str()), (Some("占道经营"), Some("realtime"), Some("街面秩序")));
        let r = host.raw("GET", "/open311/v2/services.xml", "", "application/json", b"").await;
        assert!(r.head.contains("text/xml"), "{}", r.head);
        assert!(xml_texts(&r.body).contains(&("service_code".into(), "020501".into())));
        let r = host.raw("GET", "/open311/v2/services/020501.json", "", "application/json", b"").await;
        assert_eq!((r.status, r.json()), (200, json!({"service_code": "020501", "attributes": []})));
        let r = host.raw("GET", "/open311/v2/services/999999.xml", "", "application/json", b"").await;
        assert_eq!(r.status, 404);
        assert!(xml_texts(&r.body).contains(&("code".into(), "404".into())), "{}", r.body);

        // Post as Open311 clients do: form-encoded, with fields this host does not keep.
        let form = "api_key=k1&service_code=020501&lat=32.045&long=118.785&address_string=%E4%B8%AD%E5%B1%B1%E8%B7%AF12%E5%8F%B7\
                    &description=%E9%97%A8%E5%89%8D%E5%8D%A0%E9%81%93%E7%BB%8F%E8%90%A5&email=a%40b.cn&device_id=dev-1";
        let r = host.raw("POST", "/open311/v2/requests.json", "", "application/x-www-form-urlencoded", form.as_bytes()).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.json()[0]["service_request_id"].as_str().unwrap().to_owned();
        let again = host.raw("POST", "/open311/v2/requests.json", "", "application/x-www-form-urlencoded", form.as_bytes()).await;
        // `device_id` names the phone, not the request: the same post again is a
        // second report, which the deduplication joins to the open case.
        assert_eq!((again.status, again.json()[0]["service_request_id"].as_str()), (201, Some(id.as_str())), "a second report, joined");
        let bad = host.raw("POST", "/open311/v2/requests.json", "", "application/x-www-form-urlencoded", b"service_code=000000&lat=32.0&long=118.7").await;
        assert_eq!(bad.status, 400);
        assert!(bad.json()[0]["description"].as_str().unwrap().contains("not a known category"), "{}", bad.body);
        let bad = host.raw("POST", "/open311/v2/requests.xml", "", "application/x-www-form-urlencoded", b"service_code=020501").await;
        assert_eq!(bad.status, 400);
        assert!(xml_texts(&bad.body).iter().any(|(k, v)| k == "description" && v.contains("location")), "{}", bad.body);

        // Read it back, in JSON and XML, alone and in the list.
        let r = host.raw("GET", &format!("/open311/v2/requests/{id}.json"), "", "application/json", b"").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let req = r.json()[0].clone();
        assert_eq!((req["status"].as_str(), req["service_code"].as_str(), req["address"].as_str()), (Some("open"), Some("020501"), Some("中山路12号")));
        assert_eq!((req["description"].as_str(), req["status_notes"].as_str()), (Some("门前占道经营"), Some("已上报，待受理")));
        assert_eq!((req["lat"].as_f64(), req["long"].as_f64()), (Some(32.045), Some(118.785)));
        assert!(req["requested_datetime"].as_str().unwrap().ends_with("+08:00"), "{req}");
        let r = host.raw("GET", &format!("/open311/v2/requests/{id}.xml"), "", "application/json", b"").await;
        let texts = xml_texts(&r.body);
        assert!(texts.contains(&("service_request_id".into(), id.clone())) && texts.contains(&("status".into(), "open".into())), "{}", r.body);
        let r = host.raw("GET", "/open311/v2/requests.json?status=open&service_code=020501", "", "application/json", b"").await;
        assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.body);
        let r = host.raw("GET", "/open311/v2/requests.json?status=closed", "", "application/json", b"").await;
        assert_eq!(r.json(), json!([]));
        let r = host.raw("GET", "/open311/v2/requests.json?start_date=2027-13-01T00:00:00%2B08:00", "", "application/json", b"").await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(host.raw("GET", "/open311/v2/requests/YW1.json", "", "application/json", b"").await.status, 404);
    }

    fn cap_alert(id: &str, msg_type: &str, references: &str, polygon: &str) -> String {
        cap_alert_from("weather@example.cn", "Actual", id, msg_type, references, polygon)
    }

    /// A CAP alert from `sender` with `status`.
    fn cap_alert_from(sender: &str, status: &str, id: &str, msg_type: &str, references: &str, polygon: &str) -> String {
        let refs = if references.is_empty() { String::new() } else { format!("<references>{references}</references>") };
        let info = if polygon.is_empty() {
            String::new()
        } else {
            format!(
                "<info><language>zh-CN</language><category>Met</category><event>暴雨内涝</event><urgency>Immediate</urgency>\
                 <severity>Severe</severity><certainty>Observed</certainty><headline>长江路一带道路积水</headline>\
                 <description>积水深度超过30厘米</description>\
                 <parameter><valueName>category_code</valueName><value>020401</value></parameter>\
                 <area><areaDesc>长江路社区</areaDesc><polygon>{polygon}</polygon></area></info>"
            )
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\
             <identifier>{id}</identifier><sender>{sender}</sender><sent>2027-07-15T08:00:00+08:00</sent>\
             <status>{status}</status><msgType>{msg_type}</msgType><scope>Public</scope>{refs}{info}</alert>"
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cap_alert_update_and_cancel_round_trip() {
        let host = start(false).await;
        host.services.space.load_geojson(CITY).await.unwrap();
        let dispatcher = host.user("disp", Some("command-center"), STAFF, &[Role::Dispatcher], "320100").await;
        let handler = host.user("yj", Some("yingji"), STAFF, &[Role::Handler], "320100").await;
        let post = |token: String, xml: String| {
            let host = &host;
            async move { host.raw("POST", "/api/cap/alerts", &token, "application/xml", xml.as_bytes()).await }
        };
        let (community, street) = (WEST_COMMUNITY, WEST_STREET);

        let r = post(handler.clone(), cap_alert("a1", "Alert", "", community)).await;
        assert_eq!(r.status, 403, "a handler does not import alerts");
        let r = post(dispatcher.clone(), cap_alert("a1", "Alert", "", community)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let alert = r.json();
        assert_eq!(alert["cases_opened"].as_array().unwrap().len(), 4, "{alert}");
        let warning = alert["warnings"][0].as_str().unwrap().to_owned();
        let again = post(dispatcher.clone(), cap_alert("a1", "Alert", "", community)).await;
        assert_eq!((again.status, again.json()["created"].as_bool()), (200, Some(false)));
        let first_case = alert["cases_opened"][0].as_str().unwrap().to_owned();
        let (_, case) = host.get(&format!("/api/cases/{first_case}"), &dispatcher).await;
        assert_eq!((case["channel"].as_str(), case["category_code"].as_str()), (Some("cap-alert"), Some("020401")));
        assert!(case["area"].as_str().unwrap().starts_with("320102001001"), "{case}");

        // The update widens the area: only the new cells get cases.
        let refs = "weather@example.cn,a1,2027-07-15T08:00:00+08:00";
        let r = post(dispatcher.clone(), cap_alert("a2", "Update", refs, street)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.json()["cases_opened"].as_array().unwrap().len(), 4, "{}", r.body);
        assert_eq!(r.json()["root"], "weather@example.cn/a1");

        // One case is already being handled when the cancel arrives; it stays.
        let (status, _) = host.post(&format!("/api/cases/{first_case}/transitions"), &dispatcher, json!({"action": "accept"})).await;
        assert_eq!(status, 200);
        let refs = "weather@example.cn,a1,2027-07-15T08:00:00+08:00 weather@example.cn,a2,2027-07-15T08:00:00+08:00";
        let r = post(dispatcher.clone(), cap_alert("a3", "Cancel", refs, "")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.json()["cases_cancelled"].as_array().unwrap().len(), 7, "{}", r.body);
        let (_, case) = host.get(&format!("/api/cases/{first_case}"), &dispatcher).await;
        assert_eq!(case["stage"], "accepted");

        // Bad input: the line and what was expected; an unknown reference.
        let r = post(dispatcher.clone(), "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\n<sender>x</sender>\n</alert>".into()).await;
        assert_eq!(r.status, 400);
        let m = message(&r.json()).to_owned();
        assert!(m.starts_with("line 1") && m.contains("<identifier>"), "{m}");
        let r = post(dispatcher.clone(), cap_alert("a4", "Update", "weather@example.cn,nope,2027-07-15T08:00:00+08:00", community)).await;
        assert_eq!(r.status, 422, "{}", r.body);

        // Export: the warning the alert raised, as CAP again.
        let r = host.raw("GET", &format!("/api/warnings/{warning}/cap"), &dispatcher, "application/json", b"").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let exported = yiwang::protocols::cap::parse(&r.body).expect("the export is valid CAP 1.2");
        assert_eq!(exported.identifier, warning);
        assert_eq!(exported.infos[0].event, "暴雨内涝");
        assert_eq!(exported.infos[0].areas[0].polygons[0].len(), 5);
        assert!(xml_texts(&r.body).contains(&("headline".into(), "长江路一带道路积水".into())));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routing_the_manual_queue_escalation_and_call_in() {
        let host = start(false).await;
        host.services.space.load_geojson(CITY).await.unwrap();
        let dispatcher = host.user("disp", Some("command-center"), STAFF, &[Role::Dispatcher], "320100").await;
        let street_leader = host.user("street", Some("command-center"), STAFF, &[Role::Leader], "320102001").await;
        let env = host.user("env", Some("environment"), STAFF, &[Role::Handler], "320100").await;
        let patrol = host.user("grid", Some("chengguan"), STAFF, &[Role::GridWorker], "320102001").await;
        let report = |category: &str| json!({
            "channel": "patrol", "category_code": category, "description": "巡查发现", "location": {"lat": 32.045, "lon": 118.785},
        });
        let open = |category: &'static str| {
            let (host, patrol, dispatcher, report) = (&host, patrol.clone(), dispatcher.clone(), report(category));
            async move {
                let (status, intake) = host.post("/api/reports", &patrol, report).await;
                assert_eq!(status, 201, "{intake}");
                let case = intake["case"].as_str().unwrap().to_owned();
                ok(host, &case, &dispatcher, "accept", json!({})).await;
                ok(host, &case, &dispatcher, "register", json!({})).await;
                case
            }
        };
        // 占道经营 routes to 城管 at street level; 施工扰民 matches no rule.
        let vending = open("020501").await;
        let noise = open("020301").await;
        let (_, queue) = host.get("/api/queues/manual", &dispatcher).await;
        let ids: Vec<&str> = queue.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [noise.as_str()]);
        let view = ok(&host, &vending, &dispatcher, "dispatch", json!({})).await;
        assert_eq!((view["department"].as_str(), view["level"].as_str()), (Some("chengguan"), Some("street")));
        let (status, body) = step(&host, &noise, &dispatcher, "dispatch", json!({})).await;
        assert_eq!(status, 422);
        assert!(message(&body).contains("no routing rule matches category `020301`"), "{body}");
        ok(&host, &noise, &dispatcher, "dispatch", json!({"department": "housing"})).await;

        // The street cannot settle it: it escalates, then whistles for a district department.
        let view = ok(&host, &vending, &street_leader, "escalate", json!({"reason": "涉及多部门"})).await;
        assert_eq!(view["level"], "district");
        let (status, _) = step(&host, &vending, &street_leader, "call-in", json!({"reason": "油烟"})).await;
        assert_eq!(status, 422, "a call-in names the department");
        let view = ok(&host, &vending, &street_leader, "call-in", json!({"department": "environment", "reason": "油烟扰民需环保执法"})).await;
        assert_eq!(view["called_in"], json!(["environment"]));
        let (status, _) = step(&host, &vending, &street_leader, "call-in", json!({"department": "environment", "reason": "再次"})).await;
        assert_eq!(status, 409);
        let (_, inbox) = host.get("/api/messages", &env).await;
        assert!(inbox.to_string().contains("吹哨报到"), "{inbox}");
        // A duplicate deduplication missed (another spot, other words): the dispatcher merges it.
        let far = json!({
            "channel": "patrol", "category_code": "020501", "description": "水果摊又摆出来了",
            "location": {"lat": 32.045, "lon": 118.795},
        });
        let (_, dup) = host.post("/api/reports", &patrol, far).await;
        assert_eq!(dup["joined"], false, "{dup}");
        let dup = dup["case"].as_str().unwrap().to_owned();
        let (status, _) = step(&host, &dup, &dispatcher, "merge", json!({"reason": "同一摊点"})).await;
        assert_eq!(status, 422, "a merge names its target");
        let (status, _) = step(&host, &dup, &dispatcher, "merge", json!({"into": noise, "reason": "x"})).await;
        assert_eq!(status, 200, "any open case may take it");
        let (status, body) = step(&host, &vending, &dispatcher, "merge", json!({"into": dup, "reason": "x"})).await;
        assert_eq!(status, 409, "a dispatched case is not merged: {body}");
        let (_, noise_view) = host.get(&format!("/api/cases/{noise}"), &dispatcher).await;
        assert_eq!(noise_view["reports"].as_array().unwrap().len(), 2, "{noise_view}");
        let (_, dup_view) = host.get(&format!("/api/cases/{dup}"), &dispatcher).await;
        assert_eq!(dup_view["stage"], "voided");
        assert!(dup_view["transitions"].as_array().unwrap().last().unwrap()["reason"].as_str().unwrap().starts_with("并入 "));

        ok(&host, &vending, &dispatcher, "escalate", json!({"reason": "区级协调不了"})).await;
        let (status, body) = step(&host, &vending, &dispatcher, "escalate", json!({"reason": "再升"})).await;
        assert_eq!(status, 409, "{body}");
    }

    /// The number of cases stored.
    async fn case_count(host: &Host) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) FROM cases").fetch_one(host.services.db.pool()).await.unwrap().get(0)
    }

    /// The first community of the west street (its four grid cells), then the street.
    const WEST_COMMUNITY: &str = "32.041,118.781 32.049,118.781 32.049,118.799 32.041,118.799 32.041,118.781";
    const WEST_STREET: &str = "32.041,118.781 32.059,118.781 32.059,118.799 32.041,118.799 32.041,118.781";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cap_import_and_cancel_stay_within_the_callers_area_and_sender() {
        let host = start(false).await;
        host.services.space.load_geojson(CITY).await.unwrap();
        let dispatcher = host.user("disp", Some("command-center"), STAFF, &[Role::Dispatcher], "320100").await;
        // A community leader of the east street, and one of the community the alert reaches.
        let east = host.user("dfj", Some("command-center"), STAFF, &[Role::Leader], "320102002001").await;
        let west = host.user("cjl", Some("command-center"), STAFF, &[Role::Leader], "320102001001").await;
        let post = |token: String, xml: String| {
            let host = &host;
            async move { host.raw("POST", "/api/cap/alerts", &token, "application/xml", xml.as_bytes()).await }
        };

        // An alert reaching another community's grid cells: refused, nothing opened or stored.
        let r = post(east.clone(), cap_alert("b1", "Alert", "", WEST_COMMUNITY)).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(message(&r.json()).contains("32010200100101"), "names a grid cell outside: {}", r.body);
        assert_eq!(case_count(&host).await, 0);
        // The community's own leader imports it; the cases are opened by them.
        let r = post(west.clone(), cap_alert("b1", "Alert", "", WEST_COMMUNITY)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let opened: Vec<String> = r.json()["cases_opened"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
        assert_eq!(opened.len(), 4, "{}", r.body);
        // Nor import an alert whose area covers no grid cell (its reach unbounded).
        let nowhere = cap_alert_from("community@example.cn", "Actual", "b0", "Alert", "", WEST_COMMUNITY)
            .replace(&format!("<polygon>{WEST_COMMUNITY}</polygon>"), "");
        let r = post(west.clone(), nowhere.clone()).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(message(&r.json()).contains("info[0]"), "{}", r.body);
        // Nor may they widen it past their community.
        let refs = "weather@example.cn,b1,2027-07-15T08:00:00+08:00";
        let r = post(west.clone(), cap_alert("b2", "Update", refs, WEST_STREET)).await;
        assert_eq!(r.status, 403, "{}", r.body);

        // A Cancel or Update from another sender: refused, even from the command centre.
        let r = post(dispatcher.clone(), cap_alert_from("prank@example.cn", "Actual", "b3", "Cancel", refs, "")).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(message(&r.json()).contains("weather@example.cn"), "{}", r.body);
        let r = post(dispatcher.clone(), cap_alert_from("prank@example.cn", "Actual", "b4", "Update", refs, WEST_STREET)).await;
        assert_eq!(r.status, 403, "{}", r.body);
        // The right sender's Cancel, from a leader of another community: refused.
        let r = post(east.clone(), cap_alert("b5", "Cancel", refs, "")).await;
        assert_eq!(r.status, 403, "{}", r.body);
        for case in &opened {
            let (_, view) = host.get(&format!("/api/cases/{case}"), &dispatcher).await;
            assert_eq!(view["stage"], "reported", "{view}");
        }

        // The command centre's Cancel is taken, and recorded as the dispatcher's.
        let r = post(dispatcher.clone(), cap_alert("b6", "Cancel", refs, "")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.json()["cases_cancelled"].as_array().unwrap().len(), 4, "{}", r.body);
        let (_, view) = host.get(&format!("/api/cases/{}", opened[0]), &dispatcher).await;
        let last = view["transitions"].as_array().unwrap().last().unwrap().clone();
        assert_eq!((last["action"].as_str(), last["actor"].as_str()), (Some("reject"), Some("user:disp")), "{view}");
        let audit = host.services.audit.find(None, None, 1000).await.unwrap();
        assert!(audit.iter().all(|r| r.actor != "host:cap"), "no record names the host");
        assert_eq!(audit.iter().filter(|r| r.actor == "user:disp" && r.action == "case.reject").count(), 4);
        // Six refusals, five records: the prankster's Cancel and Update were
        // refused for the same caller, subject and reason within a minute,
        // which the audit log records once (and counts).
        assert_eq!(audit.iter().filter(|r| r.action == "cap.import" && r.outcome == "denied").count(), 5, "every refusal is audited");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cap_alert_that_is_not_actual_is_stored_and_opens_no_case() {
        let host = start(false).await;
        host.services.space.load_geojson(CITY).await.unwrap();
        let dispatcher = host.user("disp", Some("command-center"), STAFF, &[Role::Dispatcher], "320100").await;
        let post = |xml: String| {
            let (host, token) = (&host, dispatcher.clone());
            async move { host.raw("POST", "/api/cap/alerts", &token, "application/xml", xml.as_bytes()).await }
        };
        for status in ["Test", "Exercise", "System", "Draft"] {
            let r = post(cap_alert_from("weather@example.cn", status, &format!("t-{status}"), "Alert", "", WEST_COMMUNITY)).await;
            assert_eq!(r.status, 201, "{status}: {}", r.body);
            let body = r.json();
            assert_eq!(body["status"], status, "{body}");
            assert_eq!((body["cases_opened"].as_array().unwrap().len(), body["warnings"].as_array().unwrap().len()), (0, 0), "{body}");
            let again = post(cap_alert_from("weather@example.cn", status, &format!("t-{status}"), "Alert", "", WEST_COMMUNITY)).await;
            assert_eq!((again.status, again.json()["status"].as_str()), (200, Some(status)), "stored: {}", again.body);
        }
        assert_eq!(case_count(&host).await, 0);

        // A real alert, then a Test Cancel of it: the cases stay.
        let r = post(cap_alert("r1", "Alert", "", WEST_COMMUNITY)).await;
        assert_eq!((r.status, r.json()["status"].as_str()), (201, Some("Actual")), "{}", r.body);
        assert_eq!(r.json()["cases_opened"].as_array().unwrap().len(), 4);
        let refs = "weather@example.cn,r1,2027-07-15T08:00:00+08:00";
        let r = post(cap_alert_from("weather@example.cn", "Test", "r2", "Cancel", refs, "")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.json()["cases_cancelled"], json!([]), "{}", r.body);
        let r = post(cap_alert_from("weather@example.cn", "Exercise", "r3", "Update", refs, WEST_STREET)).await;
        assert_eq!(r.json()["cases_opened"], json!([]), "{}", r.body);
        assert_eq!(case_count(&host).await, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idempotency_key_belongs_to_its_caller() {
        let host = start(false).await;
        host.services.space.load_geojson(CITY).await.unwrap();
        let wang = host.user("wang", None, AccountKind::Resident, &[Role::Resident], "320102001001").await;
        let zhou = host.user("zhou", None, AccountKind::Resident, &[Role::Resident], "320102002001").await;
        let photo = [&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00][..], &[7u8; 2000][..]].concat();
        let r = host.raw("POST", "/api/media?filename=stall.jpg", &wang, "image/jpeg", &photo).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let sha = r.json()["sha256"].as_str().unwrap().to_owned();
        let report = |description: &str, lon: f64| json!({
            "channel": "snapshot", "idempotency_key": "k-1", "category_code": "020501",
            "description": description, "location": {"lat": 32.045, "lon": lon}, "evidence": [sha],
        });
        let (status, first) = host.post("/api/reports", &wang, report("门前占道经营", 118.785)).await;
        assert_eq!(status, 201, "{first}");
        // Another resident with the same key: their own report, case and ticket.
        let (status, other) = host.post("/api/reports", &zhou, report("丹凤街垃圾满溢", 118.815)).await;
        assert_eq!(status, 201, "{other}");
        assert_eq!(other["created"], true, "{other}");
        assert_ne!(other["report"], first["report"]);
        assert_ne!(other["ticket"], first["ticket"], "never another caller's ticket");
        use sqlx::Row;
        let row = sqlx::query("SELECT reporter, description FROM reports WHERE id = $1")
            .bind(other["report"].as_str().unwrap())
            .fetch_one(host.services.db.pool())
            .await
            .unwrap();
        assert_eq!((row.get::<String, _>(0), row.get::<String, _>(1)), ("zhou".to_owned(), "丹凤街垃圾满溢".to_owned()));
        // The same caller, the same key and body: the original; another body: 409.
        let (status, again) = host.post("/api/reports", &wang, report("门前占道经营", 118.785)).await;
        assert_eq!((status, &again["report"], again["created"].as_bool()), (200, &first["report"], Some(false)), "{again}");
        let (status, body) = host.post("/api/reports", &wang, report("换了内容", 118.785)).await;
        assert_eq!(status, 409, "{body}");
        assert!(message(&body).contains("k-1"), "{body}");
        let (status, again) = host.post("/api/reports", &zhou, report("丹凤街垃圾满溢", 118.815)).await;
        assert_eq!((status, &again["report"]), (200, &other["report"]), "{again}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_open311_device_id_names_the_phone_not_the_request() {
        let host = start(false).await;
        host.services.space.load_geojson(CITY).await.unwrap();
        let form = |code: &str, lon: &str, description: &str| {
            format!("service_code={code}&lat=32.045&long={lon}&description={description}&device_id=phone-7")
        };
        let post = |body: String| {
            let host = &host;
            async move { host.raw("POST", "/open311/v2/requests.json", "", "application/x-www-form-urlencoded", body.as_bytes()).await }
        };
        let r = post(form("020501", "118.785", "vending")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let first = r.json()[0]["service_request_id"].as_str().unwrap().to_owned();
        // Another report from the same phone is another request.
        let r = post(form("010110", "118.815", "manhole")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let second = r.json()[0]["service_request_id"].as_str().unwrap().to_owned();
        assert_ne!(first, second, "the second report is not lost");
        for (id, code) in [(&first, "020501"), (&second, "010110")] {
            let r = host.raw("GET", &format!("/open311/v2/requests/{id}.json"), "", "application/json", b"").await;
            assert_eq!((r.status, r.json()[0]["service_code"].as_str()), (200, Some(code)), "{}", r.body);
        }
        // The phone is kept with each report.
        use sqlx::Row;
        let rows = sqlx::query("SELECT device_id FROM reports WHERE channel = 'open311'").fetch_all(host.services.db.pool()).await.unwrap();
        let devices: Vec<Option<String>> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(devices, [Some("phone-7".to_owned()), Some("phone-7".to_owned())]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open311_finds_an_old_request_among_many_and_filters_as_the_standard_says() {
        let host = start(false).await;
        host.services.space.load_geojson(CITY).await.unwrap();
        let get = |path: String| {
            let host = &host;
            async move { host.raw("GET", &path, "", "application/json", b"").await }
        };
        let r = host.raw("POST", "/open311/v2/requests.json", "", "application/x-www-form-urlencoded", b"service_code=010110&address_string=oldest").await;
        assert_eq!(r.status, 201, "{}", r.body);
        let oldest = r.json()[0]["service_request_id"].as_str().unwrap().to_owned();
        // 1,100 reports in a later second, taken in together.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let mut tasks = Vec::new();
        for n in 0..1100 {
            let cases = host.services.cases.clone();
            tasks.push(tokio::spawn(async move {
                let report = NewReport {
                    channel: Channel::Open311,
                    idempotency_key: None,
                    category_code: "020501".into(),
                    title: None,
                    description: format!("第{n}处占道经营"),
                    location: None,
                    address: Some(format!("中山路{n}号")),
                    evidence: vec![],
                    caller: None,
                };
                cases.intake(&report, None).await.unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let r = get(format!("/open311/v2/requests/{oldest}.json")).await;
        assert_eq!(r.status, 200, "the oldest request is still found: {}", r.body);
        let r = get(format!("/open311/v2/requests.json?service_request_id={oldest}")).await;
        assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.body);
        let r = get("/open311/v2/requests.json?service_code=010110".into()).await;
        assert_eq!(r.json().as_array().unwrap().len(), 1, "filtered before the limit: {}", r.body);
        // A status list, as the standard allows.
        let r = get("/open311/v2/requests.json?status=open,closed&service_code=010110".into()).await;
        assert_eq!((r.status, r.json().as_array().map(Vec::len)), (200, Some(1)), "{}", r.body);
        let r = get("/open311/v2/requests.json?status=closed&service_code=010110".into()).await;
        assert_eq!(r.json(), json!([]));
        let r = get("/open311/v2/requests.json?status=open,pending".into()).await;
        assert_eq!(r.status, 400, "{}", r.body);
        // A date range ending before the later reports holds the oldest only.
        let created = get(format!("/open311/v2/requests/{oldest}.json")).await.json()[0]["requested_datetime"].as_str().unwrap().to_owned();
        let at = yiwang::protocols::cap::CapTime::parse(&created).unwrap().epoch_ms;
        let stamp = |ms: i64| yiwang::protocols::cap::CapTime::from_epoch_ms(ms, 480).to_string().replace('+', "%2B");
        let r = get(format!("/open311/v2/requests.json?start_date={}&end_date={}", stamp(at - 60_000), stamp(at + 1_000))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let ids: Vec<String> = r.json().as_array().unwrap().iter().map(|x| x["service_request_id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids, [oldest.clone()], "the period holds the oldest alone");
        let r = get(format!("/open311/v2/requests.json?start_date={}&end_date={}", stamp(at + 1_000), stamp(at - 60_000))).await;
        assert_eq!(r.status, 400, "an end before the start: {}", r.body);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trusted_senders_alerts_are_imported_by_the_command_centre_alone() {
        let host = start(false).await;
        host.services.space.load_geojson(CITY).await.unwrap();
        let operator = host.user("ops", None, STAFF, &[Role::Operator], "320100").await;
        let dispatcher = host.user("disp", Some("command-center"), STAFF, &[Role::Dispatcher], "320100").await;
        let west = host.user("cjl", Some("command-center"), STAFF, &[Role::Leader], "320102001001").await;
        let post = |token: String, xml: String| {
            let host = &host;
            async move { host.raw("POST", "/api/cap/alerts", &token, "application/xml", xml.as_bytes()).await }
        };
        // The list is the operator's.
        let senders = json!({"senders": [{"sender": "weather@example.cn", "note": "市气象台"}]});
        assert_eq!(host.put("/api/cap/trusted-senders", &dispatcher, senders.clone()).await.0, 403);
        let (status, body) = host.put("/api/cap/trusted-senders", &operator, json!({"senders": [{"sender": " "}]})).await;
        assert_eq!(status, 422, "{body}");
        assert!(message(&body).contains("senders[0].sender"), "{body}");
        let (status, body) = host.put("/api/cap/trusted-senders", &operator, senders).await;
        assert_eq!(status, 200, "{body}");
        let (status, list) = host.get("/api/cap/trusted-senders", &operator).await;
        assert_eq!((status, list["senders"][0]["sender"].as_str(), list["senders"][0]["note"].as_str()), (200, Some("weather@example.cn"), Some("市气象台")), "{list}");
        assert_eq!(list["senders"][0]["added_by"], "user:ops", "{list}");

        // A local leader does not speak in a trusted sender's name, even for their own area.
        let r = post(west.clone(), cap_alert("w1", "Alert", "", WEST_COMMUNITY)).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(message(&r.json()).contains("trusted"), "{}", r.body);
        // The command centre imports it; another sender's alert for their area stays theirs to import.
        let r = post(dispatcher.clone(), cap_alert("w1", "Alert", "", WEST_COMMUNITY)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let r = post(west.clone(), cap_alert_from("community@example.cn", "Actual", "c1", "Alert", "", WEST_COMMUNITY)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        // Nor does the local leader cancel the trusted sender's alert.
        let r = post(west.clone(), cap_alert("w2", "Cancel", "weather@example.cn,w1,2027-07-15T08:00:00+08:00", "")).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(case_count(&host).await, 8);
    }
}
