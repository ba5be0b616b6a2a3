//! IoT data: the sensor registry, batched ingest, latest value, windows and
//! bucketed aggregates — through the data service on SQLite and PostgreSQL,
//! and through HTTP against a real host.
//!
//! PostgreSQL tests need `YIWANG_TEST_POSTGRES` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); each test gets a fresh schema.
//! Without the variable the PostgreSQL variants say "skipped" and return.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use yiwang::bus::{Bus, Event, GeoPoint, MemoryBus, Subscription};
use yiwang::data::{Bucket, Data, NewReading, Reading, Registered, Sensor, SensorFilter};
use yiwang::db::Db;
use yiwang::error::ServiceError;
use yiwang_registry::TopicPattern;

#[macro_use]
mod common;

use common::{Fixture, T0};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

fn water(id: &str, department: &str) -> Sensor {
    Sensor {
        id: id.into(),
        kind: "water-level".into(),
        unit: "m".into(),
        lat: 32.04,
        lon: 118.78,
        department: department.into(),
    }
}

fn gas(id: &str) -> Sensor {
    Sensor {
        id: id.into(),
        kind: "gas".into(),
        unit: "%LEL".into(),
        lat: 32.05,
        lon: 118.79,
        department: "chengguan".into(),
    }
}

fn r(sensor: &str, time: i64, value: f64) -> NewReading {
    NewReading::new(sensor, time, value)
}

async fn setup(f: &Fixture) -> Data {
    let data = Data::new(f.db.clone(), f.clock.clone(), Arc::new(yiwang::space::Space::new(f.db.clone())));
    assert_eq!(data.register_sensor(&water("wl-qh-01", "yingji")).await.unwrap(), Registered::Created);
    assert_eq!(data.register_sensor(&gas("gas-01")).await.unwrap(), Registered::Created);
    data
}

fn subscribe(bus: &MemoryBus, pattern: &str) -> Subscription {
    bus.subscribe("test", vec![TopicPattern::parse(pattern).unwrap()], 100_000)
}

async fn receive(sub: &mut Subscription, n: usize) -> Vec<Arc<Event>> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), sub.events.recv()).await {
            Ok(Some(e)) => got.push(e),
            _ => panic!("only {} of {n} events", got.len()),
        }
    }
    got
}

async fn count(db: &Db) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) FROM readings").fetch_one(db.pool()).await.unwrap().get(0)
}

fn times(rs: &[Reading]) -> Vec<i64> {
    rs.iter().map(|r| (r.time - T0) / MIN).collect()
}

/// Two hours of 15-minute readings, one reading in the third hour, one before
/// and one after the window the test asks about; and a gas reading.
fn series() -> Vec<NewReading> {
    let levels = [1.0, 1.5, 2.0, 2.5, 4.0, 3.0, 3.0, 1.0];
    let mut batch: Vec<NewReading> =
        levels.iter().enumerate().map(|(k, v)| r("wl-qh-01", T0 + k as i64 * 15 * MIN, *v)).collect();
    batch.push(r("gas-01", T0 + 5 * MIN, 12.5));
    batch.push(r("wl-qh-01", T0 + 120 * MIN, 5.0));
    batch.push(r("wl-qh-01", T0 - 1, 9.0));
    batch.push(r("wl-qh-01", T0 + 200 * MIN, 0.5));
    batch
}

storage_test!(batch_ingest_then_window_latest_and_aggregates, async |f: Fixture| {
    let data = setup(&f).await;
    let bus = MemoryBus::default();
    let mut water_events = subscribe(&bus, "iot.reading.>");
    let accepted = data.ingest(&series(), Arc::new(bus.clone()), "user:test").await.unwrap();
    assert_eq!(accepted, 12);
    assert_eq!(count(&f.db).await, 12);

    // One event per reading, in batch order, after the commit.
    let events = receive(&mut water_events, 12).await;
    assert_eq!(events[0].topic, "iot.reading.water-level");
    assert_eq!(events[0].source, "user:test");
    assert_eq!(events[0].time, T0);
    assert_eq!(events[0].location, Some(GeoPoint { lat: 32.04, lon: 118.78 }));
    let payload: Value = serde_json::from_str(&events[0].payload).unwrap();
    assert_eq!(payload, json!({ "sensor": "wl-qh-01", "value": 1.0, "unit": "m", "time": T0 }));
    assert_eq!(events[8].topic, "iot.reading.gas");
    let payload: Value = serde_json::from_str(&events[8].payload).unwrap();
    assert_eq!(payload, json!({ "sensor": "gas-01", "value": 12.5, "unit": "%LEL", "time": T0 + 5 * MIN }));

    // Latest, windows.
    assert_eq!(data.latest("wl-qh-01").await.unwrap(), Some(Reading { time: T0 + 200 * MIN, value: 0.5 }));
    assert_eq!(data.latest("gas-01").await.unwrap(), Some(Reading { time: T0 + 5 * MIN, value: 12.5 }));
    let w = data.window("wl-qh-01", T0 + 15 * MIN, T0 + 60 * MIN, 10_000).await.unwrap();
    assert_eq!((times(&w.readings), w.truncated), (vec![15, 30, 45], false));
    assert_eq!(w.readings.iter().map(|r| r.value).collect::<Vec<_>>(), [1.5, 2.0, 2.5]);
    let w = data.window("wl-qh-01", T0, T0 + 3 * HOUR, 3).await.unwrap();
    assert_eq!((times(&w.readings), w.truncated), (vec![0, 15, 30], true));
    let w = data.window("wl-qh-01", T0, T0 + 3 * HOUR, 10).await.unwrap();
    assert_eq!((w.readings.len(), w.truncated), (9, false));
    assert!(data.window("wl-qh-01", T0, T0, 10).await.unwrap().readings.is_empty());
    assert!(matches!(data.window("wl-qh-01", T0 + 1, T0, 10).await, Err(ServiceError::Invalid(_))));

    // Hourly buckets from T0: two full hours, one lone reading, empty hours left out.
    let hourly = data.aggregate("wl-qh-01", T0, T0 + 3 * HOUR, HOUR).await.unwrap();
    assert_eq!(
        hourly,
        [
            Bucket { start: T0, count: 4, min: 1.0, max: 2.5, avg: 1.75, rate_per_hour: Some(2.0) },
            Bucket { start: T0 + HOUR, count: 4, min: 1.0, max: 4.0, avg: 2.75, rate_per_hour: Some(-4.0) },
            Bucket { start: T0 + 2 * HOUR, count: 1, min: 5.0, max: 5.0, avg: 5.0, rate_per_hour: None },
        ]
    );
    // Buckets count from `from`, not from the epoch.
    let shifted = data.aggregate("wl-qh-01", T0 + 30 * MIN, T0 + 150 * MIN, HOUR).await.unwrap();
    assert_eq!(
        shifted,
        [
            // 2.0, 2.5, 4.0, 3.0 at 30, 45, 60, 75 minutes.
            Bucket { start: T0 + 30 * MIN, count: 4, min: 2.0, max: 4.0, avg: 2.875, rate_per_hour: Some(1.0 / 0.75) },
            // 3.0, 1.0 at 90, 105 and 5.0 at 120 minutes.
            Bucket { start: T0 + 90 * MIN, count: 3, min: 1.0, max: 5.0, avg: 3.0, rate_per_hour: Some(2.0 / 0.5) },
        ]
    );
    // One bucket over everything, the reading before T0 included.
    let all = data.aggregate("wl-qh-01", T0 - HOUR, T0 + 4 * HOUR, 5 * HOUR).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].count, all[0].min, all[0].max), (11, 0.5, 9.0));
    assert!(data.aggregate("nope", T0, T0 + HOUR, MIN).await.unwrap().is_empty());
    for (from, to, bucket) in [(T0, T0 + HOUR, 0), (T0, T0 + HOUR, -5), (T0 + 1, T0, HOUR), (T0, T0 + 10_001, 1)] {
        let r = data.aggregate("wl-qh-01", from, to, bucket).await;
        assert!(matches!(r, Err(ServiceError::Invalid(_))), "{from} {to} {bucket}: {r:?}");
    }
    assert_eq!(data.aggregate("wl-qh-01", T0, T0 + 10_000, 1).await.unwrap()[0].count, 1);
});

storage_test!(a_bad_reading_anywhere_writes_nothing, async |f: Fixture| {
    let data = setup(&f).await;
    let bus = MemoryBus::default();
    let mut events = subscribe(&bus, ">");
    let bus: Arc<dyn Bus> = Arc::new(bus);
    let good = |i: i64| r("wl-qh-01", T0 + i * MIN, 1.0);
    let expect_invalid =
        async |batch: Vec<NewReading>, start: &str| match data.ingest(&batch, bus.clone(), "user:test").await {
            Err(ServiceError::Invalid(m)) => assert!(m.starts_with(start), "`{m}` should start with `{start}`"),
            other => panic!("{start}: {other:?}"),
        };

    let mut batch: Vec<NewReading> = (0..101).map(good).collect();
    batch[50].sensor = "nope".into();
    expect_invalid(batch.clone(), "readings[50].sensor: unknown sensor `nope` (nothing was stored)").await;
    batch[17].value = f64::NAN;
    batch[90].time = -5;
    expect_invalid(batch.clone(), "readings[17].value: NaN is not a finite number (and 2 more invalid readings").await;
    let mut batch: Vec<NewReading> = (0..10).map(good).collect();
    batch[3].value = f64::INFINITY;
    expect_invalid(batch.clone(), "readings[3].value: inf is not a finite number").await;
    batch[3].value = 1.0;
    batch[9].time = 1_800_000_000_000_000; // microseconds, not milliseconds
    expect_invalid(batch, "readings[9].time: 1800000000000000 is not milliseconds").await;
    let too_many: Vec<NewReading> = (0..10_001).map(good).collect();
    expect_invalid(too_many, "readings: 10001 readings in one batch; at most 10000").await;
    assert_eq!(count(&f.db).await, 0);

    // A failure while writing (the second sensor vanished after validation, so
    // the last of several statements breaks its foreign key) rolls back the
    // statements before it.
    let mut batch: Vec<NewReading> = (0..3000).map(good).collect();
    batch.extend((0..10).map(|i| r("gas-01", T0 + i * MIN, 1.0)));
    let prepared = data.prepare_readings(&batch).await.unwrap();
    assert_eq!(prepared.len(), 3010);
    sqlx::query("DELETE FROM sensors WHERE id = 'gas-01'").execute(f.db.pool()).await.unwrap();
    assert!(matches!(data.commit_readings(prepared).await, Err(ServiceError::Storage(_))));
    assert_eq!(count(&f.db).await, 0);

    // Nothing was announced; an empty batch is fine and announces nothing too.
    assert_eq!(data.ingest(&[], bus.clone(), "user:test").await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(events.events.try_recv().is_err());
});

storage_test!(duplicates_and_repeats_upsert_the_last_value, async |f: Fixture| {
    let data = setup(&f).await;
    let bus = MemoryBus::default();
    let mut events = subscribe(&bus, "iot.reading.water-level");
    let bus: Arc<dyn Bus> = Arc::new(bus);
    let batch = vec![r("wl-qh-01", T0, 1.0), r("wl-qh-01", T0 + MIN, 2.0), r("wl-qh-01", T0, 3.0)];
    assert_eq!(data.ingest(&batch, bus.clone(), "user:test").await.unwrap(), 3);
    let w = data.window("wl-qh-01", T0, T0 + HOUR, 100).await.unwrap().readings;
    assert_eq!(w, [Reading { time: T0, value: 3.0 }, Reading { time: T0 + MIN, value: 2.0 }]);
    // One event per stored reading, with the value that was stored.
    let got = receive(&mut events, 2).await;
    let values: Vec<Value> =
        got.iter().map(|e| serde_json::from_str::<Value>(&e.payload).unwrap()["value"].clone()).collect();
    assert_eq!(values, [json!(3.0), json!(2.0)]);

    // A later batch replaces a stored reading and adds another.
    let later = vec![r("wl-qh-01", T0 + MIN, 2.5), r("wl-qh-01", T0 + 2 * MIN, 2.75)];
    assert_eq!(data.ingest(&later, bus.clone(), "user:test").await.unwrap(), 2);
    let w = data.window("wl-qh-01", T0, T0 + HOUR, 100).await.unwrap().readings;
    assert_eq!(w.iter().map(|r| r.value).collect::<Vec<_>>(), [3.0, 2.5, 2.75]);
    assert_eq!(count(&f.db).await, 3);

    // Large batches cross statement boundaries; re-sending one changes nothing.
    let big: Vec<NewReading> = (0..10_000).map(|i| r("wl-qh-01", T0 + HOUR + i, i as f64)).collect();
    assert_eq!(data.ingest(&big, bus.clone(), "user:test").await.unwrap(), 10_000);
    assert_eq!(data.ingest(&big, bus.clone(), "user:test").await.unwrap(), 10_000);
    assert_eq!(count(&f.db).await, 10_003);
    let agg = data.aggregate("wl-qh-01", T0 + HOUR, T0 + 2 * HOUR, HOUR).await.unwrap();
    assert_eq!((agg[0].count, agg[0].min, agg[0].max, agg[0].avg), (10_000, 0.0, 9999.0, 4999.5));
    // 9,999 over 9,999 ms is 3,600,000 an hour.
    let rate = agg[0].rate_per_hour.unwrap();
    assert!((rate - 3_600_000.0).abs() < 1e-6, "{rate}");
    // The old one-sensor entry point still works.
    data.insert_readings("gas-01", &[Reading { time: T0, value: 4.0 }]).await.unwrap();
    assert_eq!(data.latest("gas-01").await.unwrap().unwrap().value, 4.0);
});

storage_test!(many_sensors_in_a_batch_and_batches_announced_in_order, async |f: Fixture| {
    let data = Data::new(f.db.clone(), f.clock.clone(), Arc::new(yiwang::space::Space::new(f.db.clone())));
    // More sensors than one lookup statement takes.
    let ids: Vec<String> = (0..300).map(|i| format!("rain-{i:03}")).collect();
    for id in &ids {
        let s = Sensor { kind: "rainfall".into(), unit: "mm/h".into(), ..water(id, "yingji") };
        data.register_sensor(&s).await.unwrap();
    }
    let bus = MemoryBus::default();
    let mut events = subscribe(&bus, "iot.reading.rainfall");
    let bus: Arc<dyn Bus> = Arc::new(bus);
    let batch = |time: i64| -> Vec<NewReading> { ids.iter().map(|id| r(id, time, 2.5)).collect() };
    let mut bad = batch(T0);
    bad.push(r("rain-300", T0, 1.0));
    match data.ingest(&bad, bus.clone(), "user:test").await {
        Err(ServiceError::Invalid(m)) => {
            assert_eq!(m, "readings[300].sensor: unknown sensor `rain-300` (nothing was stored)")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(data.ingest(&batch(T0), bus.clone(), "user:test").await.unwrap(), 300);
    assert_eq!(data.ingest(&batch(T0 + MIN), bus.clone(), "user:test").await.unwrap(), 300);
    assert_eq!(count(&f.db).await, 600);
    let got = receive(&mut events, 600).await;
    let times: Vec<i64> = got.iter().map(|e| e.time).collect();
    assert!(times[..300].iter().all(|t| *t == T0) && times[300..].iter().all(|t| *t == T0 + MIN));
    let sensors: Vec<String> = got[..300]
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.payload).unwrap()["sensor"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sensors, ids, "events follow the batch order");
});

storage_test!(the_registry_checks_kind_unit_place_and_department, async |f: Fixture| {
    let data = setup(&f).await;
    let invalid = async |s: Sensor, start: &str| match data.register_sensor(&s).await {
        Err(ServiceError::Invalid(m)) => assert!(m.starts_with(start), "`{m}` should start with `{start}`"),
        other => panic!("{start}: {other:?}"),
    };
    let s = water("wl-qh-02", "yingji");
    invalid(Sensor { kind: "teapot".into(), ..s.clone() }, "kind: unknown sensor kind `teapot`").await;
    invalid(
        Sensor { unit: "cm".into(), ..s.clone() },
        "unit: `cm` is not the unit of kind `water-level`, which is `m`",
    )
    .await;
    invalid(Sensor { lat: 95.0, ..s.clone() }, "latitude 95 is outside").await;
    invalid(Sensor { lon: f64::NAN, ..s.clone() }, "longitude NaN is outside").await;
    invalid(Sensor { department: "nowhere".into(), ..s.clone() }, "department: unknown department `nowhere`").await;
    invalid(Sensor { id: "WL 02".into(), ..s.clone() }, "id: must be").await;
    assert!(data.sensor("wl-qh-02").await.unwrap().is_none());

    assert_eq!(data.register_sensor(&s).await.unwrap(), Registered::Created);
    let moved = Sensor { lat: 32.1, lon: 118.9, ..s.clone() };
    assert_eq!(data.register_sensor(&moved).await.unwrap(), Registered::Updated);
    assert_eq!(data.sensor("wl-qh-02").await.unwrap(), Some(moved.clone()));
    // The kind may change while the sensor has no readings, not after.
    let rain = Sensor { kind: "rainfall".into(), unit: "mm/h".into(), ..moved.clone() };
    assert_eq!(data.register_sensor(&rain).await.unwrap(), Registered::Updated);
    assert_eq!(data.register_sensor(&moved).await.unwrap(), Registered::Updated);
    data.insert_readings("wl-qh-02", &[Reading { time: T0, value: 1.0 }]).await.unwrap();
    invalid(rain, "kind: sensor `wl-qh-02` has readings of kind `water-level`").await;

    let list = |kind: Option<&str>, department: Option<&str>, after: Option<&str>, limit: u32| SensorFilter {
        kind: kind.map(Into::into),
        department: department.map(Into::into),
        after: after.map(Into::into),
        limit,
    };
    let ids = async |f: SensorFilter| data.sensors(&f).await.unwrap().into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(list(None, None, None, 100)).await, ["gas-01", "wl-qh-01", "wl-qh-02"]);
    assert_eq!(ids(list(Some("water-level"), None, None, 100)).await, ["wl-qh-01", "wl-qh-02"]);
    assert_eq!(ids(list(None, Some("chengguan"), None, 100)).await, ["gas-01"]);
    assert_eq!(ids(list(Some("gas"), Some("yingji"), None, 100)).await, Vec::<String>::new());
    assert_eq!(ids(list(None, None, Some("gas-01"), 1)).await, ["wl-qh-01"]);
    let kinds = data.sensor_kinds().await.unwrap();
    assert!(kinds.iter().any(|k| k.kind == "water-level" && k.unit == "m"), "{kinds:?}");
});

/// The HTTP surface against a real host (SQLite, port 0).
mod http {
    use super::*;
    use common::http::{Host, message};
    use yiwang::identity::{AccountKind, Role};

    async fn start(bundled: bool) -> Host {
        common::http::start(bundled).await
    }

    fn sensor_json(id: &str, department: &str) -> Value {
        json!({ "id": id, "kind": "water-level", "unit": "m", "lat": 32.04, "lon": 118.78, "department": department })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registry_ingest_and_queries() {
        let host = start(false).await;
        let staff = AccountKind::Staff;
        let ops = host.user("ops", Some("command-center"), staff, &[Role::Operator], "320100").await;
        let yj_handler = host.user("yj.handler", Some("yingji"), staff, &[Role::Handler], "320100").await;
        let yj_grid = host.user("yj.grid", Some("yingji"), staff, &[Role::GridWorker], "320100").await;
        let cg_leader = host.user("cg.leader", Some("chengguan"), staff, &[Role::Leader], "320100").await;
        let resident = host.user("resident", None, AccountKind::Resident, &[Role::Resident], "320100").await;
        let plugin = host.user("svc.yingji", Some("yingji"), AccountKind::Service, &[Role::Handler], "320100").await;

        // Registration: the owning department's handler (or an operator), nobody else.
        let (status, body) = host.post("/api/sensors", &yj_handler, sensor_json("wl-qh-01", "yingji")).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body, sensor_json("wl-qh-01", "yingji"));
        let moved = json!({ "id": "wl-qh-01", "kind": "water-level", "unit": "m", "lat": 32.05, "lon": 118.78, "department": "yingji" });
        assert_eq!(host.post("/api/sensors", &yj_handler, moved).await.0, 200);
        let (status, body) = host.post("/api/sensors", &yj_grid, sensor_json("wl-qh-02", "yingji")).await;
        assert_eq!(status, 403, "a grid worker does not register sensors: {body}");
        let (status, body) = host.post("/api/sensors", &cg_leader, sensor_json("wl-qh-02", "yingji")).await;
        assert_eq!(status, 403, "{body}");
        let (status, body) = host.post("/api/sensors", &cg_leader, sensor_json("wl-qh-01", "chengguan")).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(message(&body), "sensor `wl-qh-01` belongs to department `yingji`");
        assert_eq!(host.post("/api/sensors", &plugin, sensor_json("wl-qh-02", "yingji")).await.0, 403);
        assert_eq!(host.post("/api/sensors", &ops, sensor_json("wl-qh-02", "yingji")).await.0, 201);
        let (status, body) = host
            .post(
                "/api/sensors",
                &cg_leader,
                json!({
                    "id": "gas-01", "kind": "gas", "unit": "%", "lat": 32.0, "lon": 118.7, "department": "chengguan"
                }),
            )
            .await;
        assert_eq!((status, message(&body)), (422, "unit: `%` is not the unit of kind `gas`, which is `%LEL`"));
        let (status, body) = host
            .post(
                "/api/sensors",
                &cg_leader,
                json!({
                    "id": "gas-01", "kind": "gas", "unit": "%LEL", "lat": 32.0, "lon": 218.7, "department": "chengguan"
                }),
            )
            .await;
        assert_eq!((status, message(&body)), (422, "longitude 218.7 is outside -180..=180"));
        let (status, body) = host.post("/api/sensors", &cg_leader, json!({ "id": "gas-01", "kind": "gas" })).await;
        assert_eq!(status, 400, "{body}");
        assert!(message(&body).contains("unit"), "{body}");
        let gas = json!({ "id": "gas-01", "kind": "gas", "unit": "%LEL", "lat": 32.0, "lon": 118.7, "department": "chengguan" });
        assert_eq!(host.post("/api/sensors", &cg_leader, gas).await.0, 201);
        // Refusals are audited.
        let refused = host.services.audit.find(Some("user:cg.leader"), Some("iot.sensor.register"), 10).await.unwrap();
        assert!(refused.iter().any(|r| r.outcome == "denied"), "{refused:?}");

        // Reads: any staff account.
        let (status, body) = host.get("/api/sensors?kind=water-level", &cg_leader).await;
        assert_eq!(status, 200);
        let ids: Vec<&str> = body.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["wl-qh-01", "wl-qh-02"]);
        let (_, body) = host.get("/api/sensors?department=chengguan&kind=", &yj_grid).await;
        assert_eq!(body.as_array().unwrap().len(), 1);
        let (status, body) = host.get("/api/sensors/wl-qh-01", &yj_grid).await;
        assert_eq!((status, body["lat"].as_f64()), (200, Some(32.05)));
        assert_eq!(host.get("/api/sensors/nope", &yj_grid).await.0, 404);
        assert_eq!(host.get("/api/sensors/wl-qh-01", &resident).await.0, 403);
        let (status, body) = host.get("/api/sensor-kinds", &yj_grid).await;
        assert_eq!(status, 200);
        assert!(body.as_array().unwrap().iter().any(|k| k["kind"] == "rainfall" && k["unit"] == "mm/h"));

        // Ingest: any staff of the owning department; events after the commit.
        let mut events = host.services.bus.subscribe("test", vec![TopicPattern::parse("iot.reading.>").unwrap()], 1000);
        let levels = [1.0, 1.5, 2.0, 2.5, 4.0, 3.0, 3.0, 1.0];
        let readings: Vec<Value> = (0..8)
            .map(|k| {
                let value = levels[k as usize];
                json!({ "sensor": "wl-qh-01", "time": T0 + k * 15 * MIN, "value": value })
            })
            .collect();
        let (status, body) = host.post("/api/readings", &yj_grid, json!({ "readings": readings })).await;
        assert_eq!((status, body), (200, json!({ "accepted": 8 })));
        let first = tokio::time::timeout(Duration::from_secs(10), events.events.recv()).await.unwrap().unwrap();
        assert_eq!(first.topic, "iot.reading.water-level");
        assert_eq!(first.source, "user:yj.grid");
        assert_eq!(first.location, Some(GeoPoint { lat: 32.05, lon: 118.78 }));
        assert_eq!(
            serde_json::from_str::<Value>(&first.payload).unwrap(),
            json!({ "sensor": "wl-qh-01", "value": 1.0, "unit": "m", "time": T0 })
        );
        for _ in 1..8 {
            tokio::time::timeout(Duration::from_secs(10), events.events.recv()).await.unwrap().unwrap();
        }

        // Refusals and bad batches write nothing.
        let mixed = json!({ "readings": [
            { "sensor": "wl-qh-01", "time": T0 + 200 * MIN, "value": 1.0 },
            { "sensor": "gas-01", "time": T0 + 200 * MIN, "value": 1.0 },
        ] });
        let (status, body) = host.post("/api/readings", &yj_grid, mixed.clone()).await;
        assert_eq!(status, 403, "{body}");
        assert!(
            message(&body).starts_with("readings[1].sensor: sensor `gas-01` belongs to department `chengguan`"),
            "{body}"
        );
        let (status, body) = host.post("/api/readings", &plugin, json!({ "readings": [] })).await;
        assert_eq!((status, message(&body)), (403, "only staff accounts ingest readings"));
        assert_eq!(host.post("/api/readings", &resident, json!({ "readings": [] })).await.0, 403);
        let unknown = json!({ "readings": [
            { "sensor": "wl-qh-01", "time": T0 + 200 * MIN, "value": 1.0 },
            { "sensor": "wl-qh-01", "time": T0 + 201 * MIN, "value": 1.0 },
            { "sensor": "x", "time": T0 + 202 * MIN, "value": 1.0 },
        ] });
        let (status, body) = host.post("/api/readings", &yj_grid, unknown).await;
        assert_eq!((status, message(&body)), (422, "readings[2].sensor: unknown sensor `x` (nothing was stored)"));
        let fraction = json!({ "readings": [
            { "sensor": "wl-qh-01", "time": T0 + 200 * MIN, "value": 1.0 },
            { "sensor": "wl-qh-01", "time": 1.5, "value": 1.0 },
        ] });
        let (status, body) = host.post("/api/readings", &yj_grid, fraction).await;
        assert_eq!(status, 400, "{body}");
        assert!(message(&body).starts_with("field `readings[1].time`: invalid type: floating point `1.5`"), "{body}");
        let (status, body) = host
            .post(
                "/api/readings",
                &yj_grid,
                json!({ "readings": [{ "sensor": "wl-qh-01", "time": T0, "value": "high" }] }),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(message(&body).starts_with("field `readings[0].value`"), "{body}");
        let too_many: Vec<Value> =
            (0..10_001).map(|i| json!({ "sensor": "wl-qh-01", "time": T0 + i, "value": 1.0 })).collect();
        let (status, body) = host.post("/api/readings", &ops, json!({ "readings": too_many })).await;
        assert_eq!((status, message(&body)), (422, "readings: 10001 readings in one batch; at most 10000"));

        // An operator ingests for anyone, up to 10,000 a batch.
        let full: Vec<Value> = (0..10_000)
            .map(|i| json!({ "sensor": "gas-01", "time": T0 + i * 1000, "value": (i % 100) as f64 }))
            .collect();
        assert_eq!(
            host.post("/api/readings", &ops, json!({ "readings": full })).await,
            (200, json!({ "accepted": 10_000 }))
        );

        // Queries.
        let (status, body) = host.get("/api/sensors/wl-qh-01/latest", &cg_leader).await;
        assert_eq!(
            (status, body),
            (200, json!({ "sensor": "wl-qh-01", "unit": "m", "reading": { "time": T0 + 105 * MIN, "value": 1.0 } }))
        );
        let (_, body) = host.get("/api/sensors/wl-qh-02/latest", &cg_leader).await;
        assert_eq!(body["reading"], Value::Null);
        let path = format!("/api/sensors/wl-qh-01/readings?from={}&to={}", T0 + 15 * MIN, T0 + 60 * MIN);
        let (status, body) = host.get(&path, &cg_leader).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["readings"],
            json!([
                { "time": T0 + 15 * MIN, "value": 1.5 }, { "time": T0 + 30 * MIN, "value": 2.0 }, { "time": T0 + 45 * MIN, "value": 2.5 },
            ])
        );
        assert_eq!(body["truncated"], false);
        let (_, body) =
            host.get(&format!("/api/sensors/gas-01/readings?from=0&to={}", T0 + HOUR * 24), &cg_leader).await;
        assert_eq!((body["readings"].as_array().unwrap().len(), &body["truncated"]), (10_000, &json!(false)));
        let (_, body) =
            host.get(&format!("/api/sensors/gas-01/readings?from=0&to={}&limit=10", T0 + HOUR * 24), &cg_leader).await;
        assert_eq!((body["readings"].as_array().unwrap().len(), &body["truncated"]), (10, &json!(true)));
        let path = format!("/api/sensors/wl-qh-01/aggregate?from={T0}&to={}&bucket_ms={HOUR}", T0 + 3 * HOUR);
        let (status, body) = host.get(&path, &cg_leader).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["buckets"],
            json!([
                { "start": T0, "count": 4, "min": 1.0, "max": 2.5, "avg": 1.75, "rate_per_hour": 2.0 },
                { "start": T0 + HOUR, "count": 4, "min": 1.0, "max": 4.0, "avg": 2.75, "rate_per_hour": -4.0 },
            ])
        );
        assert_eq!((&body["unit"], &body["bucket_ms"]), (&json!("m"), &json!(HOUR)));
        let (status, body) = host.get(&format!("/api/sensors/wl-qh-01/aggregate?from={T0}&to=1"), &cg_leader).await;
        assert_eq!(status, 400, "a missing bucket_ms: {body}");
        assert_eq!(body["error"]["code"], "bad-request");
        let (status, body) = host.get(&format!("/api/sensors/wl-qh-01/readings?from={T0}&to=1"), &cg_leader).await;
        assert_eq!((status, message(&body)), (422, format!("window start {T0} is after its end 1").as_str()));
        assert_eq!(host.get("/api/sensors/nope/aggregate?from=0&to=1&bucket_ms=1", &cg_leader).await.0, 404);
        assert_eq!(host.get("/api/sensors/wl-qh-01/latest", &resident).await.0, 403);
    }

    /// The bundled `yingji` model reads what ingest announces and warns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ingested_water_levels_reach_the_yingji_model() {
        let host = start(true).await;
        let handler = host.user("yj.handler", Some("yingji"), AccountKind::Staff, &[Role::Handler], "320100").await;
        assert_eq!(host.post("/api/sensors", &handler, sensor_json("wl-qh-01", "yingji")).await.0, 201);
        let mut warnings = host.services.bus.subscribe("test", vec![TopicPattern::parse("warning.>").unwrap()], 100);
        let now = host.services.clock.now_ms();
        let readings = json!({ "readings": [{ "sensor": "wl-qh-01", "time": now, "value": 4.6 }] });
        assert_eq!(host.post("/api/readings", &handler, readings).await, (200, json!({ "accepted": 1 })));
        let warning =
            tokio::time::timeout(Duration::from_secs(60), warnings.events.recv()).await.expect("a warning").unwrap();
        assert_eq!(warning.source, "plugin:yingji");
        let body: Value = serde_json::from_str(&warning.payload).unwrap();
        assert_eq!(body["info"]["severity"], "Severe", "{body}");
        assert!(body["info"]["headline"].as_str().unwrap().contains("wl-qh-01"), "{body}");
    }
}

storage_test!(a_moving_sensor_s_readings_carry_where_they_were_taken, async |f: Fixture| {
    let data = setup(&f).await;
    let truck = Sensor { id: "gps-01".into(), kind: "vehicle-gps".into(), unit: "deg".into(), ..water("gps-01", "yingji") };
    data.register_sensor(&truck).await.unwrap();
    let bus = MemoryBus::default();
    let mut events = subscribe(&bus, "iot.reading.>");
    let at = GeoPoint { lat: 32.0051, lon: 118.7123 };
    let batch = vec![NewReading::at("gps-01", T0, 90.0, at), r("wl-qh-01", T0, 1.0)];
    assert_eq!(data.ingest(&batch, Arc::new(bus.clone()), "user:test").await.unwrap(), 2);
    let got = receive(&mut events, 2).await;
    // The vehicle's event is where the vehicle was, not where it is registered.
    assert_eq!(got[0].location, Some(at));
    let payload: Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(payload, json!({ "sensor": "gps-01", "value": 90.0, "unit": "deg", "time": T0, "lat": 32.0051, "lon": 118.7123 }));
    // A fixed sensor's payload is as before.
    let payload: Value = serde_json::from_str(&got[1].payload).unwrap();
    assert!(payload.get("lat").is_none(), "{payload}");
    use sqlx::Row;
    let row = sqlx::query("SELECT lat, lon FROM reading_positions WHERE sensor = 'gps-01'").fetch_one(f.db.pool()).await.unwrap();
    assert_eq!((row.get::<f64, _>(0), row.get::<f64, _>(1)), (32.0051, 118.7123));

    // Half a position, or one off the globe, is refused and nothing is stored.
    let half = NewReading { lon: None, ..NewReading::at("gps-01", T0 + MIN, 90.0, at) };
    match data.ingest(&[half], Arc::new(bus.clone()), "user:test").await {
        Err(ServiceError::Invalid(m)) => assert!(m.contains("readings[0].lon: missing"), "{m}"),
        other => panic!("{other:?}"),
    }
    let off = NewReading::at("gps-01", T0 + MIN, 90.0, GeoPoint { lat: 95.0, lon: 118.7 });
    match data.ingest(&[r("wl-qh-01", T0 + MIN, 1.0), off], Arc::new(bus.clone()), "user:test").await {
        Err(ServiceError::Invalid(m)) => assert!(m.contains("readings[1].lat: 95 is not a latitude"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&f.db).await, 2);
});
