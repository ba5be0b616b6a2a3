//! Deduplication as data and a dispatcher's word on it, on SQLite and
//! PostgreSQL: the rules in table `dedup_rules` decide what joins (a tighter
//! radius stops a join, a looser one applied live makes one), bad rules are
//! refused naming the field; a joined report is confirmed or split out into a
//! case of its own (recorded on both cases, published, refused for a case's
//! first report, a report of another case, an unknown report); a merged
//! case's ticket leads to the surviving case. Over HTTP: who may do each, the
//! `422` naming the field, and the reporter of a split report told its new ticket.

use std::sync::Arc;

use serde_json::{Value, json};
use yiwang::bus::{Bus, Event, GeoPoint, MemoryBus, Subscription};
use yiwang::cases::Cases;
use yiwang::cases::dedup::FamilyRule;
use yiwang::cases::engine::{Caller, Channel, Move, NewReport, Who};
use yiwang::cases::lifecycle::{Action, Stage};
use yiwang::cases::split::Decision;
use yiwang::error::ServiceError;
use yiwang::space::Space;
use yiwang_registry::TopicPattern;

#[macro_use]
mod common;

use common::Fixture;

const CITY: &str = include_str!("data/city.geojson");
/// In the west street's first community.
const WEST_POINT: GeoPoint = GeoPoint { lat: 32.045, lon: 118.785 };
/// About 1.4 km north-east of it, in another grid cell.
const OTHER_POINT: GeoPoint = GeoPoint { lat: 32.055, lon: 118.795 };
const HOST: Who<'static> = Who::System("host:test");
const MINUTE: i64 = 60_000;

/// `metres` north of `p`.
fn north(p: GeoPoint, metres: f64) -> GeoPoint {
    GeoPoint { lat: p.lat + metres / 111_195.0, lon: p.lon }
}

fn manhole(code: &str, at: GeoPoint) -> NewReport {
    NewReport {
        channel: Channel::Hotline,
        idempotency_key: None,
        category_code: code.into(),
        title: None,
        description: "中山路12号门前井盖缺失，很危险".into(),
        location: Some(at),
        address: None,
        evidence: vec![],
        caller: Some(Caller { name: "王女士".into(), phone: "13900001111".into() }),
    }
}

async fn cases_on(f: &Fixture) -> (Cases, Subscription) {
    let space = Arc::new(Space::new(f.db.clone()));
    space.load_geojson(CITY).await.unwrap();
    let bus = Arc::new(MemoryBus::default());
    let events = bus.subscribe("test", vec![TopicPattern::parse("case.>").unwrap()], 1000);
    (Cases::new(f.db.clone(), f.clock.clone(), bus, space, Arc::new(yiwang::audit::Audit::new(f.db.clone(), f.clock.clone()))), events)
}

fn published(events: &mut Subscription) -> Vec<Arc<Event>> {
    std::iter::from_fn(|| events.events.try_recv().ok()).collect()
}

fn why(reason: &str) -> Decision {
    Decision { reason: reason.into() }
}

storage_test!(the_rules_in_the_table_decide_what_joins, async |f: Fixture| {
    let (cases, _events) = cases_on(&f).await;
    // The seeded rules: per 部件 and 事件 major class, and the fallback.
    let seeded = cases.dedup_rule_table().await.unwrap();
    assert_eq!(seeded.fallback, FamilyRule { radius_m: 200.0, window_ms: 3 * 86_400_000, threshold: 0.6 });
    assert_eq!(seeded.families.len(), 12);
    assert_eq!(seeded.families["0101"].radius_m, 100.0);
    assert_eq!(seeded.families["0204"].window_ms, 6 * 3_600_000, "an emergency's window is short");

    // The index is built from the table: with 30 m for 0101, a report 60 m away opens its own case.
    sqlx::query("UPDATE dedup_rules SET radius_m = 30 WHERE family = '0101'").execute(f.db.pool()).await.unwrap();
    let first = cases.intake(&manhole("010110", WEST_POINT), Some("op1")).await.unwrap();
    let apart = cases.intake(&manhole("010110", north(WEST_POINT, 60.0)), Some("op2")).await.unwrap();
    assert!(!apart.joined && apart.case != first.case, "{apart:?}");
    let close = cases.intake(&manhole("010110", north(WEST_POINT, 10.0)), Some("op3")).await.unwrap();
    assert_eq!((close.joined, close.case.as_str()), (true, first.case.as_str()));

    // Rules replaced through the service apply to the running index at once.
    let mut looser = cases.dedup_rule_table().await.unwrap();
    assert_eq!(looser.families["0101"].radius_m, 30.0);
    looser.families.get_mut("0101").unwrap().radius_m = 100.0;
    assert_eq!(cases.set_dedup_rules(&looser).await.unwrap(), looser);
    let there = cases.intake(&manhole("010110", OTHER_POINT), Some("op1")).await.unwrap();
    let near_there = cases.intake(&manhole("010110", north(OTHER_POINT, 60.0)), Some("op2")).await.unwrap();
    assert_eq!((near_there.joined, near_there.case.as_str()), (true, there.case.as_str()));

    // Bad rules are refused naming the field, and nothing is stored.
    let mut bad = looser.clone();
    bad.families.get_mut("0101").unwrap().threshold = 1.5;
    match cases.set_dedup_rules(&bad).await {
        Err(ServiceError::Invalid(m)) => assert_eq!(m, "dedup rules: `families.0101.threshold` must be between 0 and 1"),
        other => panic!("{other:?}"),
    }
    let mut bad = looser.clone();
    bad.families.insert("01x".into(), looser.fallback);
    assert!(matches!(cases.set_dedup_rules(&bad).await, Err(ServiceError::Invalid(m)) if m.contains("`families.01x`")));
    bad = looser.clone();
    bad.fallback.window_ms = 0;
    assert!(matches!(cases.set_dedup_rules(&bad).await, Err(ServiceError::Invalid(m)) if m.contains("`fallback.window_ms`")));
    assert_eq!(cases.dedup_rule_table().await.unwrap(), looser);

    // A family dropped from the table falls back to the fallback rule.
    let mut fewer = looser.clone();
    fewer.families.remove("0101");
    fewer.fallback.radius_m = 20.0;
    cases.set_dedup_rules(&fewer).await.unwrap();
    let far = cases.intake(&manhole("010110", north(OTHER_POINT, -40.0)), Some("op3")).await.unwrap();
    assert!(!far.joined, "40 m is beyond the fallback's 20 m");
    assert_eq!(cases.dedup_rule_table().await.unwrap(), fewer);
});

storage_test!(a_joined_report_is_confirmed_or_split_into_a_case_of_its_own, async |f: Fixture| {
    let (cases, mut events) = cases_on(&f).await;
    let first = cases.intake(&manhole("010110", WEST_POINT), Some("op1")).await.unwrap();
    f.clock.advance(MINUTE);
    let second = cases.intake(&manhole("010110", north(WEST_POINT, 10.0)), Some("op2")).await.unwrap();
    f.clock.advance(MINUTE);
    // Another code of the family (上水井盖) in the same words is close enough to join too.
    let other = cases.intake(&manhole("010101", north(WEST_POINT, 5.0)), Some("resident-1")).await.unwrap();
    f.clock.advance(MINUTE);
    assert!(second.joined && other.joined && other.case == first.case, "{other:?}");
    let case = first.case.as_str();
    published(&mut events);

    // Confirm: kept on the report and in the history; once.
    let view = cases.confirm_report(case, &second.report, &why("同一井盖"), HOST).await.unwrap();
    let confirmed = view.reports.iter().find(|r| r.id == second.report).unwrap().confirmed.clone().unwrap();
    assert_eq!((confirmed.by.as_str(), confirmed.at), ("host:test", common::T0 + 3 * MINUTE));
    assert!(view.reports.iter().filter(|r| r.id != second.report).all(|r| r.confirmed.is_none()));
    let last = view.transitions.last().unwrap();
    assert_eq!((last.action.as_str(), last.from.as_str(), last.to.as_str()), ("confirm-join", "reported", "reported"));
    assert_eq!(last.reason, format!("确认报告 {} 属于本案：同一井盖", second.report));
    assert_eq!(last.step.as_deref(), Some("accept"));
    let conflict = |r: Result<_, ServiceError>| match r {
        Err(ServiceError::Conflict(m)) => m,
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("allowed"),
    };
    let m = conflict(cases.confirm_report(case, &second.report, &why(""), HOST).await.map(|_| ()));
    assert_eq!(m, format!("report `{}` was confirmed already, by host:test", second.report));
    let m = conflict(cases.confirm_report(case, &first.report, &why(""), HOST).await.map(|_| ()));
    assert!(m.contains("the one case") && m.contains("was opened from"), "{m}");

    // Split: the first report stays; the report needs a reason.
    let m = conflict(cases.split_report(case, &first.report, &why("不是同一事件"), HOST).await.map(|_| ()));
    assert!(m.starts_with(&format!("report `{}` is the first report of case `{case}`", first.report)), "{m}");
    assert!(matches!(cases.split_report(case, &other.report, &why(" "), HOST).await, Err(ServiceError::Invalid(m)) if m.starts_with("reason")));
    let split = cases.split_report(case, &other.report, &why("上水井盖，另一处"), HOST).await.unwrap();
    assert_ne!(split.case, case);
    assert_ne!(split.ticket, first.ticket);
    assert!(split.ticket.starts_with("YW") && split.ticket.len() == 14, "{split:?}");
    assert_eq!((split.reporter.as_deref(), split.from_ticket.as_deref()), (Some("resident-1"), Some(first.ticket.as_str())));

    let original = cases.view(case).await.unwrap().unwrap();
    let ids: Vec<&str> = original.reports.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [first.report.as_str(), second.report.as_str()], "the case keeps the others");
    let last = original.transitions.last().unwrap();
    assert_eq!((last.action.as_str(), last.actor.as_str()), ("split", "host:test"));
    assert_eq!(last.reason, format!("拆分报告 {} 另立新案 {}：上水井盖，另一处", other.report, split.ticket));
    let new = cases.view(&split.case).await.unwrap().unwrap();
    assert_eq!((new.stage, new.category_code.as_str(), new.title.as_str()), (Stage::Reported, "010101", "上水井盖"));
    assert_eq!((new.ticket.as_deref(), new.channel.as_str()), (Some(split.ticket.as_str()), "hotline"));
    // Placed by its own location, 5 m north, across the line into the next grid cell.
    assert_eq!((original.area.as_deref(), new.area.as_deref()), (Some("32010200100101"), Some("32010200100103")));
    assert_eq!(new.reports.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [other.report.as_str()]);
    assert_eq!(new.transitions.len(), 1);
    assert_eq!(new.transitions[0].reason, format!("由案件 {} 拆分而来：上水井盖，另一处", first.ticket));
    assert_eq!(new.clock.as_ref().map(|c| c.step.as_str()), Some("accept"));
    // Its reporter follows it by the new ticket.
    let progress = cases.progress(&split.ticket).await.unwrap().unwrap();
    assert_eq!((progress.stage, progress.merged_into_ticket), (Stage::Reported, None));
    assert_eq!(cases.by_ticket(&split.ticket).await.unwrap().unwrap().1, "resident-1");

    // Published, in order, after the commits.
    let topics: Vec<(String, Value)> =
        published(&mut events).iter().map(|e| (e.topic.clone(), serde_json::from_str(&e.payload).unwrap())).collect();
    assert_eq!(topics.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), ["case.join-confirmed", "case.split"]);
    assert_eq!(topics[0].1["report"], json!(second.report));
    assert_eq!((&topics[1].1["new_case"], &topics[1].1["ticket"]), (&json!(split.case), &json!(split.ticket)));

    // The new case is indexed: the same words under its code now join it, not the original.
    let again = cases.intake(&manhole("010101", north(WEST_POINT, 5.0)), Some("resident-2")).await.unwrap();
    assert_eq!((again.joined, again.case.as_str()), (true, split.case.as_str()));

    // Bad inputs: an unknown case or report, a report of another case, a report moved already.
    assert!(matches!(cases.split_report("nope", &second.report, &why("x"), HOST).await, Err(ServiceError::NotFound(m)) if m == "no case `nope`"));
    assert!(matches!(cases.confirm_report(case, "nope", &why(""), HOST).await, Err(ServiceError::NotFound(m)) if m == "no report `nope`"));
    let m = conflict(cases.split_report(case, &other.report, &why("again"), HOST).await.map(|_| ()));
    assert_eq!(m, format!("report `{}` is filed under case `{}`, not `{case}`", other.report, split.case));
    let m = conflict(cases.confirm_report(&split.case, &second.report, &why(""), HOST).await.map(|_| ()));
    assert!(m.contains(&format!("filed under case `{case}`")), "{m}");
    // The only report of a case.
    let lone = cases.intake(&manhole("010110", OTHER_POINT), Some("op1")).await.unwrap();
    let m = conflict(cases.split_report(&lone.case, &lone.report, &why("x"), HOST).await.map(|_| ()));
    assert!(m.contains("is the only report of case"), "{m}");

    // Nothing moves in a closed, rejected or voided case.
    let reject = Move { action: Action::Reject, reason: "不属于受理范围".into(), department: None, extension_hours: None, into: None, suggestion: None };
    cases.transition(&split.case, &reject, HOST).await.unwrap();
    let m = conflict(cases.confirm_report(&split.case, &again.report, &why(""), HOST).await.map(|_| ()));
    assert!(m.starts_with(&format!("case `{}` is rejected", split.case)), "{m}");
    use sqlx::Row;
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM reports WHERE case_id = $1").bind(case).fetch_one(f.db.pool()).await.unwrap().get(0);
    assert_eq!(n, 2, "refusals leave the reports where they were");
});

storage_test!(a_merged_cases_ticket_follows_the_surviving_case, async |f: Fixture| {
    let (cases, _events) = cases_on(&f).await;
    let merge = |into: &str| Move {
        action: Action::Merge,
        reason: "同一事件".into(),
        department: None,
        extension_hours: None,
        into: Some(into.to_owned()),
        suggestion: None,
    };
    let kept = cases.intake(&manhole("010110", WEST_POINT), Some("op1")).await.unwrap();
    f.clock.advance(MINUTE);
    let dup = cases.intake(&manhole("010110", OTHER_POINT), Some("resident-1")).await.unwrap();
    assert!(!dup.joined);
    cases.transition(&dup.case, &merge(&kept.case), HOST).await.unwrap();

    let progress = cases.progress(&dup.ticket).await.unwrap().unwrap();
    assert_eq!(progress.ticket, dup.ticket, "the ticket asked for");
    assert_eq!((progress.merged_into_ticket.as_deref(), progress.stage), (Some(kept.ticket.as_str()), Stage::Reported));
    let accept = Move { action: Action::Accept, reason: String::new(), department: None, extension_hours: None, into: None, suggestion: None };
    cases.transition(&kept.case, &accept, HOST).await.unwrap();
    let progress = cases.progress(&dup.ticket).await.unwrap().unwrap();
    assert_eq!(progress.stage, Stage::Accepted, "the surviving case's progress");
    assert_eq!(progress.steps.last().unwrap().0, "accepted");
    assert_eq!(cases.progress(&kept.ticket).await.unwrap().unwrap().merged_into_ticket, None);

    // The merged case's reports are filed under the surviving one, and it says so.
    let m = match cases.split_report(&dup.case, &dup.report, &why("x"), HOST).await {
        Err(ServiceError::Conflict(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(m, format!("case `{}` was merged into case `{}`; its reports are filed there", dup.case, kept.case));
    // Split back out, the report starts a case of its own again.
    let split = cases.split_report(&kept.case, &dup.report, &why("不是同一处"), HOST).await.unwrap();
    assert_eq!(cases.view(&split.case).await.unwrap().unwrap().reports.len(), 1);

    // Along a chain of merges, to the last.
    let last = cases.intake(&manhole("020501", OTHER_POINT), Some("op2")).await.unwrap();
    let register = Move { action: Action::Register, ..accept.clone() };
    cases.transition(&kept.case, &register, HOST).await.unwrap();
    cases.transition(&kept.case, &merge(&last.case), HOST).await.unwrap();
    let progress = cases.progress(&dup.ticket).await.unwrap().unwrap();
    assert_eq!(progress.merged_into_ticket.as_deref(), Some(last.ticket.as_str()));
    assert_eq!(progress.category, "占道经营");
    assert!(cases.progress("YW000000000000").await.unwrap().is_none());
});

mod http {
    use super::*;
    use common::http::{Host, message, start};
    use yiwang::identity::{AccountKind, Role};

    const STAFF: AccountKind = AccountKind::Staff;

    fn report(channel: &str, code: &str, at: GeoPoint, evidence: &[&str]) -> Value {
        let mut r = json!({
            "channel": channel, "category_code": code, "description": "中山路12号门前井盖缺失，很危险",
            "location": {"lat": at.lat, "lon": at.lon}, "evidence": evidence,
        });
        if channel == "hotline" {
            r["caller"] = json!({"name": "王女士", "phone": "13900001111"});
        }
        r
    }

    async fn intake(host: &Host, token: &str, body: Value) -> Value {
        let (status, intake) = host.post("/api/reports", token, body).await;
        assert_eq!(status, 201, "{intake}");
        intake
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn operators_set_the_rules_and_dispatchers_confirm_split_and_follow_merges() {
        let host = start(false).await;
        host.services.space.load_geojson(CITY).await.unwrap();
        let operator = host.user("op", None, STAFF, &[Role::Operator], "320100").await;
        let hotline = host.user("hl", Some("hotline12345"), STAFF, &[Role::Handler], "320100").await;
        let dispatcher = host.user("disp", Some("command-center"), STAFF, &[Role::Dispatcher], "320100").await;
        let east = host.user("disp.east", Some("command-center"), STAFF, &[Role::Dispatcher], "320102002").await;
        let handler = host.user("cg", Some("chengguan"), STAFF, &[Role::Handler], "320100").await;
        let resident = host.user("res", None, AccountKind::Resident, &[Role::Resident], "320100").await;

        // The rules: operators and dispatchers read them, operators replace them.
        let (status, rules) = host.get("/api/dedup/rules", &dispatcher).await;
        assert_eq!(status, 200, "{rules}");
        assert_eq!(rules["families"]["0101"], json!({"radius_m": 100.0, "window_ms": 2_592_000_000i64, "threshold": 0.6}));
        assert_eq!(host.get("/api/dedup/rules", &handler).await.0, 403);
        assert_eq!(host.put("/api/dedup/rules", &dispatcher, rules.clone()).await.0, 403);
        let mut bad = rules.clone();
        bad["families"]["0101"]["threshold"] = json!(1.2);
        let (status, body) = host.put("/api/dedup/rules", &operator, bad).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(message(&body), "dedup rules: `families.0101.threshold` must be between 0 and 1");
        let (status, body) = host.put("/api/dedup/rules", &operator, json!({"families": {}})).await;
        assert!(status == 400 || status == 422, "{status} {body}");
        assert!(message(&body).contains("fallback"), "{body}");
        // Tighter: a report 60 m away no longer joins.
        let mut tight = rules.clone();
        tight["families"]["0101"]["radius_m"] = json!(30.0);
        let (status, stored) = host.put("/api/dedup/rules", &operator, tight.clone()).await;
        assert_eq!((status, &stored), (200, &tight));
        assert_eq!(host.get("/api/dedup/rules", &operator).await.1, tight);
        let a = intake(&host, &hotline, report("hotline", "010110", OTHER_POINT, &[])).await;
        let b = intake(&host, &hotline, report("hotline", "010110", north(OTHER_POINT, 60.0), &[])).await;
        assert_eq!(b["joined"], false, "{a} {b}");
        assert_eq!(host.put("/api/dedup/rules", &operator, rules.clone()).await.0, 200);
        let audit = host.services.audit.find(Some("user:op"), Some("case.dedup-rules.set"), 10).await.unwrap();
        assert_eq!(audit.iter().filter(|r| r.outcome == "ok").count(), 2);

        // A hotline call, and a resident's 随手拍 that joins its case.
        let call = intake(&host, &hotline, report("hotline", "010110", WEST_POINT, &[])).await;
        let case = call["case"].as_str().unwrap().to_owned();
        let photo = [&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00][..], &[7u8; 2000][..]].concat();
        let r = host.raw("POST", "/api/media?filename=manhole.jpg", &resident, "image/jpeg", &photo).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let sha = r.json()["sha256"].as_str().unwrap().to_owned();
        let snap = intake(&host, &resident, report("snapshot", "010110", north(WEST_POINT, 15.0), &[&sha])).await;
        assert_eq!((snap["case"].as_str(), snap["joined"].as_bool()), (Some(case.as_str()), Some(true)));
        let snap_report = snap["report"].as_str().unwrap().to_owned();
        let patrol = host.user("grid", Some("chengguan"), STAFF, &[Role::GridWorker], "320102001").await;
        let walk = intake(&host, &patrol, report("patrol", "010110", north(WEST_POINT, 5.0), &[])).await;
        assert_eq!(walk["case"].as_str(), Some(case.as_str()));
        let walk_report = walk["report"].as_str().unwrap().to_owned();

        // Confirm: dispatchers of the case's area only.
        let confirm = |report: &str| format!("/api/cases/{case}/reports/{report}/confirm");
        let split = |report: &str| format!("/api/cases/{case}/reports/{report}/split");
        assert_eq!(host.post(&confirm(&walk_report), &handler, json!({})).await.0, 403);
        let (status, body) = host.post(&confirm(&walk_report), &east, json!({})).await;
        assert_eq!(status, 403, "another street's dispatcher: {body}");
        let (status, view) = host.post(&confirm(&walk_report), &dispatcher, json!({"reason": "现场核实"})).await;
        assert_eq!(status, 200, "{view}");
        let filed = view["reports"].as_array().unwrap().iter().find(|r| r["id"] == walk_report.as_str()).unwrap().clone();
        assert_eq!(filed["confirmed"]["by"], "user:disp");
        assert_eq!(view["transitions"].as_array().unwrap().last().unwrap()["action"], "confirm-join");
        let (status, body) = host.post(&confirm(&walk_report), &dispatcher, json!({})).await;
        assert_eq!(status, 409, "{body}");
        assert!(message(&body).contains("confirmed already"), "{body}");

        // Split: refusals first.
        assert_eq!(host.post(&split(&snap_report), &handler, json!({"reason": "x"})).await.0, 403);
        let (status, body) = host.post(&split(&snap_report), &dispatcher, json!({})).await;
        assert_eq!(status, 422, "{body}");
        assert!(message(&body).starts_with("reason"), "{body}");
        let (status, body) = host.post(&split("nope"), &dispatcher, json!({"reason": "x"})).await;
        assert_eq!((status, message(&body)), (404, "no report `nope`"));
        let (status, body) = host.post(&format!("/api/cases/nope/reports/{snap_report}/split"), &dispatcher, json!({"reason": "x"})).await;
        assert_eq!((status, message(&body)), (404, "no case `nope`"));
        let (status, body) = host.post(&split(call["report"].as_str().unwrap()), &dispatcher, json!({"reason": "x"})).await;
        assert_eq!(status, 409, "{body}");
        assert!(message(&body).contains("first report"), "{body}");
        let a_report = a["report"].as_str().unwrap();
        let (status, body) = host.post(&split(a_report), &dispatcher, json!({"reason": "x"})).await;
        assert_eq!(status, 409, "{body}");
        assert!(message(&body).contains(&format!("is filed under case `{}`", a["case"].as_str().unwrap())), "{body}");

        // The resident's snapshot was another manhole: it becomes a case of its own.
        let (status, off) = host.post(&split(&snap_report), &dispatcher, json!({"reason": "照片是另一处井盖"})).await;
        assert_eq!(status, 201, "{off}");
        let new_ticket = off["ticket"].as_str().unwrap().to_owned();
        assert_ne!(new_ticket, call["ticket"].as_str().unwrap());
        let (_, new_case) = host.get(&format!("/api/cases/{}", off["case"].as_str().unwrap()), &dispatcher).await;
        assert_eq!((new_case["stage"].as_str(), new_case["channel"].as_str()), (Some("reported"), Some("snapshot")));
        assert_eq!(new_case["reports"][0]["id"], snap_report.as_str());
        assert_eq!(new_case["transitions"][0]["action"], "split");
        let (_, old_case) = host.get(&format!("/api/cases/{case}"), &dispatcher).await;
        assert_eq!(old_case["reports"].as_array().unwrap().len(), 2, "{old_case}");
        // The resident is told the new ticket, and follows it.
        let (_, inbox) = host.get("/api/messages", &resident).await;
        assert!(inbox.to_string().contains(&new_ticket), "{inbox}");
        let r = host.raw("GET", &format!("/api/tickets/{new_ticket}"), "", "application/json", b"").await;
        assert_eq!((r.status, r.json()["stage"].as_str()), (200, Some("reported")), "{}", r.body);
        let audit = host.services.audit.find(None, Some("case.split"), 20).await.unwrap();
        assert!(audit.iter().any(|r| r.outcome == "ok" && r.subject == case && r.detail.contains(&new_ticket)));
        assert!(audit.iter().any(|r| r.outcome == "denied" && r.actor == "user:cg"), "refusals are audited");

        // A duplicate merged into the case: its ticket leads to the surviving case.
        let dup = intake(&host, &hotline, report("hotline", "010110", north(WEST_POINT, 800.0), &[])).await;
        assert_eq!(dup["joined"], false);
        let dup_case = dup["case"].as_str().unwrap();
        let (status, body) =
            host.post(&format!("/api/cases/{dup_case}/transitions"), &dispatcher, json!({"action": "merge", "into": case, "reason": "同一井盖"})).await;
        assert_eq!(status, 200, "{body}");
        let r = host.raw("GET", &format!("/api/tickets/{}", dup["ticket"].as_str().unwrap()), "", "application/json", b"").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let progress = r.json();
        assert_eq!((progress["ticket"].as_str(), progress["merged_into_ticket"].as_str()), (dup["ticket"].as_str(), call["ticket"].as_str()));
        let (status, body) = host.post(&format!("/api/cases/{dup_case}/reports/{}/confirm", dup["report"].as_str().unwrap()), &dispatcher, json!({})).await;
        assert_eq!(status, 409, "{body}");
        assert!(message(&body).contains("was merged into"), "{body}");

        // Confirmations, splits and merges are in the audit log as in the case
        // tables: the KPIs recomputed from the log alone come out the same.
        let supervisor = host.user("sup", Some("command-center"), STAFF, &[Role::Supervisor], "320100").await;
        let (_, tables) = host.get("/api/kpis?from=0&to=4102444800000", &supervisor).await;
        let (_, log) = host.get("/api/kpis?from=0&to=4102444800000&source=audit", &supervisor).await;
        assert_eq!(log, tables);
        assert!(host.services.audit.verify().await.unwrap().is_none());
    }
}
