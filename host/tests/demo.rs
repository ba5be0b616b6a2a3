//! `yiwang demo`: a day in the demonstration city, replayed through the real
//! intake, case engine and bundled plugins, comes to what the script sets up:
//! the flood and the hazmat vehicle lead to emergency cases, the garbage that
//! comes back after its case was closed is caught as 假性整改, the street's
//! fire hazard is called in to a district department, and the overdue visits
//! are found at midnight.


use sqlx::Row;
use yiwang::app::{App, Options};
use yiwang::clock::{ReplayClock, SharedClock};
use yiwang::demo::{self, Day};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_in_the_city() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let day = Day::parse("2026-11-27").unwrap();
    let clock = ReplayClock::new(day.at(6, 0));
    let app = App::build(Options::new(dir.path().join("data")), Some(clock.clone() as SharedClock)).await.unwrap();
    for r in &app.load_report {
        assert!(r.is_ok(), "a bundled plugin was refused: {r:?}");
    }
    let names: Vec<String> = app.state.runtime.plugins().iter().map(|p| p.name().to_owned()).collect();
    for plugin in ["chengguan", "hotline12345", "yingji", "zongzhi"] {
        assert!(names.iter().any(|n| n == plugin), "{plugin} is not loaded: {names:?}");
    }
    let services = app.state.services.clone();
    let runtime = app.state.runtime.clone();
    let layout = demo::city::layout();
    demo::city::seed(&services, &layout, &day.date).await.unwrap();
    // Seeding twice changes nothing.
    demo::city::seed(&services, &layout, &day.date).await.unwrap();

    let (mut events, _subscription) = demo::collect(&services);
    let mut replay = demo::Replay::new(&services, &runtime, &clock, day.clone());
    replay.run().await.unwrap();
    let events = demo::drain(&mut events);
    let s = replay.summary(&events).await.unwrap();
    let text = demo::describe(&s, &layout);
    println!("{text}");

    // Reports of every channel; the neighbour's photo joined the first case.
    for channel in ["hotline", "patrol", "snapshot", "warning"] {
        assert!(s.reports.get(channel).copied().unwrap_or(0) > 0, "no {channel} report: {text}");
    }
    assert!(s.merged >= 1, "{text}");
    assert!(s.dispatched >= 10, "{text}");
    assert!(s.closed >= 2, "{text}");

    // The flood: water-level warnings, severe ones among them, an emergency
    // case for 路面积水内涝, and the warning fanned out to communities.
    let (met, met_severe) = s.warnings.get("met").copied().unwrap_or_default();
    assert!(met > 0 && met_severe > 0, "{text}");
    let db = services.db.pool();
    let codes: Vec<String> = sqlx::query("SELECT category_code FROM cases WHERE channel = 'warning'")
        .fetch_all(db)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for code in ["020401", "020402", "020403"] {
        assert!(codes.iter().any(|c| c == code), "no warning case in {code}: {codes:?}\n{text}");
    }
    assert!(s.flood_communities >= 2, "{text}");
    // The hazmat vehicle: off its corridor, into 老城区, standing too long.
    let rules: Vec<String> = events
        .iter()
        .filter(|e| e.topic.starts_with("warning."))
        .filter_map(|e| {
            let p: serde_json::Value = serde_json::from_str(&e.payload).ok()?;
            let params = p["info"]["parameters"].as_array()?.clone();
            params.iter().find(|kv| kv[0] == "rule").map(|kv| kv[1].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    for rule in ["off-route", "restricted-zone", "stop"] {
        assert!(rules.iter().any(|r| r == rule), "no hazmat `{rule}` warning: {rules:?}");
    }
    // The gas leak raised a Safety warning.
    assert!(s.warnings.contains_key("safety"), "{text}");
    // The leaders were told: messages to the city's leaders exist.
    let told: i64 = sqlx::query("SELECT COUNT(*) FROM messages WHERE recipient_kind = 'role' AND recipient = '320100/leader' AND sender = 'plugin:yingji'")
        .fetch_one(db)
        .await
        .unwrap()
        .get(0);
    assert!(told > 0, "the city's leaders were not told");

    // 假性整改: the garbage back at 中山路 88 号 opened a supervision case.
    assert_eq!(s.false_rectification.len(), 1, "{text}");
    assert!(s.false_rectification[0].1.contains("假性整改"), "{text}");
    // The street's hazard was called in to a district department.
    assert!(events.iter().any(|e| e.topic == "zongzhi.call-in"), "no call-in: {text}");
    // The command centre took it: the district's housing department has it.
    let hazard: String = sqlx::query("SELECT id FROM cases WHERE category_code = '020602'").fetch_one(db).await.unwrap().get(0);
    let view = services.cases.view(&hazard).await.unwrap().unwrap();
    assert_eq!((view.department.as_deref(), view.level.as_deref()), (Some("housing"), Some("district")), "{text}");
    assert_eq!(view.stage.name(), "in-progress", "{text}");
    // Hot spot of street vending, and the bins.
    assert!(events.iter().any(|e| e.topic == "chengguan.hotspot"), "no hot spot: {text}");
    assert!(s.warnings.contains_key("env"), "no bin warning: {text}");
    // The hotline classified the call the operator filed under 其他, and the
    // same caller's second call was noticed.
    assert!(events.iter().any(|e| e.topic == "hotline.classified"), "{text}");
    assert!(events.iter().any(|e| e.topic == "hotline.repeat"), "{text}");
    // At midnight the overdue visits became cases.
    let visits: i64 = sqlx::query("SELECT COUNT(*) FROM cases WHERE category_code = '020603'")
        .fetch_one(db)
        .await
        .unwrap()
        .get(0);
    assert_eq!(visits, 2, "{text}");
    // No plugin call failed and the summary says what it counts.
    for (plugin, calls, failed) in &s.plugins {
        assert!(*calls > 0, "{plugin} was never called");
        assert_eq!(*failed, 0, "{plugin} failed calls: {text}");
    }
    assert!(text.contains("假性整改 supervision cases (1)"), "{text}");
}
