//! The storage suite: every test runs on SQLite and on PostgreSQL.
//!
//! PostgreSQL tests need `YIWANG_TEST_POSTGRES` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); each test gets a fresh schema. Without
//! the variable the PostgreSQL variants say "skipped" and return.

use std::sync::Arc;

use yiwang::audit::{Audit, Entry};
use yiwang::bus::{GeoPoint, MemoryBus};
use yiwang::cases::engine::Channel;
use yiwang::cases::{CaseDraft, Cases};
use yiwang::data::{Data, Reading, Sensor, Sharing};

use yiwang::identity::{AccountKind, Identity, NewUser, Role};
use yiwang::messaging::{Messaging, Recipient};
use yiwang::error::ServiceError;
use yiwang::space::Space;

#[macro_use]
mod common;

use common::Fixture;

storage_test!(audit_chain_detects_tampering, async |f: Fixture| {
    let audit = Audit::new(f.db.clone(), f.clock.clone());
    for i in 0..5 {
        let subject = format!("s{i}");
        let e = Entry { actor: "plugin:x", action: "bus.publish", subject: &subject, outcome: "denied", detail: "" };
        assert_eq!(audit.append(e).await.unwrap(), i + 1);
    }
    assert_eq!(audit.verify().await.unwrap(), None);
    assert_eq!(audit.find(Some("plugin:x"), None, 2).await.unwrap().len(), 2);
    sqlx::query("UPDATE audit_log SET subject = 'forged' WHERE seq = 3").execute(f.db.pool()).await.unwrap();
    let broken = audit.verify().await.unwrap().expect("tampering found");
    assert_eq!(broken.seq, 3);
    assert!(broken.reason.contains("content"), "{}", broken.reason);
    // A fresh handle (a restart) continues the chain after the last record.
    let again = Audit::new(f.db.clone(), f.clock.clone());
    let e = Entry { actor: "host", action: "x", subject: "y", outcome: "ok", detail: "" };
    assert_eq!(again.append(e).await.unwrap(), 6);
});

storage_test!(datasets_carry_their_sharing_level, async |f: Fixture| {
    let data = Data::new(f.db.clone(), f.clock.clone(), Arc::new(Space::new(f.db.clone())));
    let set = data.dataset("components").await.unwrap().unwrap();
    assert_eq!(set.sharing, Sharing::Public);
    assert!(set.readable_by("yingji") && !set.writable_by("yingji") && set.writable_by("chengguan"));
    let private = data.dataset("vulnerable-residents").await.unwrap().unwrap();
    assert!(!private.readable_by("chengguan") && private.readable_by("zongzhi"));
    let shared = data.dataset("hazmat-routes").await.unwrap().unwrap();
    assert!(shared.readable_by("police") && !shared.readable_by("chengguan"));
    assert_eq!(set.key_field.as_deref(), Some("code"));
    assert!(data.dataset("nope").await.unwrap().is_none());
});

storage_test!(sensor_readings_window, async |f: Fixture| {
    let data = Data::new(f.db.clone(), f.clock.clone(), Arc::new(Space::new(f.db.clone())));
    let s = Sensor { id: "wl-1".into(), kind: "water-level".into(), unit: "m".into(), lat: 32.0, lon: 118.7, department: "yingji".into() };
    data.upsert_sensor(&s).await.unwrap();
    let bad = Sensor { kind: "teapot".into(), ..s.clone() };
    assert!(matches!(data.upsert_sensor(&bad).await, Err(ServiceError::Invalid(_))));
    let readings: Vec<Reading> = (0..10).map(|i| Reading { time: i * 60_000, value: 1.0 + i as f64 * 0.1 }).collect();
    data.insert_readings("wl-1", &readings).await.unwrap();
    let window = data.readings("wl-1", 120_000, 300_000).await.unwrap();
    assert_eq!(window.iter().map(|r| r.time).collect::<Vec<_>>(), [120_000, 180_000, 240_000]);
    assert!(matches!(data.readings("wl-1", 10, 5).await, Err(ServiceError::Invalid(_))));
});

storage_test!(cases_and_messages, async |f: Fixture| {
    let bus = Arc::new(MemoryBus::default());
    let cases = Cases::new(f.db.clone(), f.clock.clone(), bus, Arc::new(Space::new(f.db.clone())), Arc::new(yiwang::audit::Audit::new(f.db.clone(), f.clock.clone())));
    let draft = CaseDraft {
        category_code: "010101".into(),
        title: "井盖缺失".into(),
        description: "中山路 12 号门前井盖缺失".into(),
        location: Some(GeoPoint { lat: 32.04, lon: 118.78 }),
        channel: Channel::Department,
        evidence: vec![],
    };
    let id = cases.open(&draft, "plugin:chengguan").await.unwrap();
    // Evidence must be uploaded media.
    let unknown = CaseDraft { evidence: vec!["a".repeat(64)], ..draft.clone() };
    assert!(matches!(cases.open(&unknown, "x").await, Err(ServiceError::Invalid(m)) if m.contains("no uploaded media")));
    assert_eq!(cases.status(&id).await.unwrap().as_deref(), Some("reported"));
    cases.add_note(&id, "plugin:chengguan", "note", "已派巡查员").await.unwrap();
    assert!(matches!(cases.add_note("nope", "x", "note", "y").await, Err(ServiceError::NotFound(_))));
    let bad = CaseDraft { location: Some(GeoPoint { lat: 132.0, lon: 0.0 }), ..draft.clone() };
    assert!(matches!(cases.open(&bad, "x").await, Err(ServiceError::Invalid(m)) if m.contains("latitude")));

    let identity = Identity::new(f.db.clone());
    let messaging = Messaging::new(f.db.clone(), f.clock.clone(), Arc::new(MemoryBus::default()));
    let to = Recipient::Department { code: "yingji".into() };
    let sent = messaging.send(&identity, "plugin:x", &to, "水位预警", "秦淮河水位超警戒").await.unwrap();
    let duty = NewUser {
        id: "wang.wu".into(),
        username: "wangwu".into(),
        display_name: "王五".into(),
        password: "值班-password".into(),
        department: Some("yingji".into()),
        org_unit: "320100".into(),
        kind: AccountKind::Staff,
        roles: vec![(Role::Leader, "320100".into())],
    };
    identity.create_user(&duty, 0).await.unwrap();
    let p = identity.principal("wang.wu").await.unwrap().unwrap();
    let leaders = Recipient::Role { org_unit: "320100".into(), role: "leader".into() };
    messaging.send(&identity, "plugin:x", &leaders, "请值班领导关注", "…").await.unwrap();
    let other = Recipient::Department { code: "police".into() };
    messaging.send(&identity, "plugin:x", &other, "不是给应急的", "…").await.unwrap();
    let inbox = messaging.inbox(&p, true, 50).await.unwrap();
    assert_eq!(inbox.len(), 2, "department and role messages reach the leader of 应急: {inbox:?}");
    messaging.mark_read(&p, &sent).await.unwrap();
    assert_eq!(messaging.inbox(&p, true, 50).await.unwrap().len(), 1);
    assert_eq!(messaging.inbox(&p, false, 50).await.unwrap().len(), 2);
    assert!(matches!(messaging.mark_read(&p, "not-mine").await, Err(ServiceError::NotFound(_))));
    let nowhere = Recipient::Department { code: "nowhere".into() };
    assert!(matches!(messaging.send(&identity, "plugin:x", &nowhere, "s", "b").await, Err(ServiceError::NotFound(_))));
    assert_eq!(identity.department("yingji").await.unwrap().unwrap().name, "应急管理局");
});
