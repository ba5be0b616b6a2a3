//! Structured records: data set definitions, JSON Schema validation, the 部件
//! code, areas from locations, level-scoped reads and writes, bulk import all
//! or nothing, and sharing accountability — on SQLite and PostgreSQL through the
//! data service, and over HTTP against a real host.
//!
//! The city is `data/city.geojson`: 320100 → 320102 → streets 320102001 (west,
//! lon 118.78-118.80) and 320102002 (east, 118.80-118.82) → communities → grids.

use std::sync::Arc;

use serde_json::{Value, json};
use yiwang::data::records::Progress;
use yiwang::data::{Data, DatasetSpec, RecordQuery, WriteMode, Writer};
use yiwang::identity::Scope;
use yiwang::error::ServiceError;
use yiwang::space::Space;

#[macro_use]
mod common;

use common::{Fixture, T0};

const CITY: &str = include_str!("data/city.geojson");
const HOUR: i64 = 3_600_000;

const WEST: &str = "320102001";
const EAST: &str = "320102002";

async fn setup(f: &Fixture) -> Data {
    let space = Arc::new(Space::new(f.db.clone()));
    space.load_geojson(CITY).await.unwrap();
    Data::new(f.db.clone(), f.clock.clone(), space)
}

fn all() -> Writer<'static> {
    static ALL: Scope = Scope::All;
    Writer { actor: "user:test", scope: &ALL }
}

/// A valid 部件 record in the west street (or the east one).
fn component(serial: u32, east: bool) -> Value {
    let lon = if east { 118.81 } else { 118.79 };
    json!({
        "code": format!("3201020101{serial:06}"), "major": "01", "minor": "01", "name": "上水井盖",
        "location": {"lat": 32.045, "lon": lon}, "status": "intact", "address": "中山路 1 号",
    })
}

async fn write(data: &Data, value: &Value, writer: Writer<'_>) -> Result<yiwang::data::Written, ServiceError> {
    data.write("components", None, &value.to_string(), WriteMode::Upsert, writer).await
}

fn invalid(r: Result<impl std::fmt::Debug, ServiceError>) -> String {
    match r {
        Err(ServiceError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

storage_test!(components_are_checked_against_schema_code_and_space, async |f: Fixture| {
    let data = setup(&f).await;
    let w = write(&data, &component(1, false), all()).await.unwrap();
    assert!(w.created);
    assert_eq!(w.key, "3201020101000001");
    // The area is the grid cell under the location: south-west cell of the west street's first community.
    assert_eq!(w.area.as_deref(), Some("32010200100101"));
    assert!(!write(&data, &component(1, false), all()).await.unwrap().created);

    let mut bad = component(2, false);
    bad["location"]["lat"] = json!(95.0);
    bad["status"] = json!("broken");
    let m = invalid(write(&data, &bad, all()).await);
    assert!(m.contains("field `/location/lat`") && m.contains("field `/status`"), "{m}");
    assert!(m.starts_with("record (key `3201020101000002`)"), "{m}");

    let mut wrong_class = component(3, false);
    wrong_class["minor"] = json!("02");
    assert!(invalid(write(&data, &wrong_class, all()).await).contains("class digits 0101 differ"));
    let mut unknown_class = component(4, false);
    unknown_class["code"] = json!("3201029901000004");
    unknown_class["major"] = json!("06");
    unknown_class["minor"] = json!("99");
    let m = invalid(write(&data, &unknown_class, all()).await);
    assert!(m.contains("class digits") || m.contains("not a known component class"), "{m}");
    let mut elsewhere = component(5, false);
    elsewhere["code"] = json!("4401030101000005");
    let m = invalid(write(&data, &elsewhere, all()).await);
    assert!(m.contains("`440103` is not a known district"), "{m}");
    let mut extra = component(6, false);
    extra["colour"] = json!("red");
    assert!(invalid(write(&data, &extra, all()).await).contains("colour"));
    // The key in the path must be the record's code.
    let m = invalid(data.write("components", Some("3201020101000009"), &component(7, false).to_string(), WriteMode::Upsert, all()).await);
    assert!(m.contains("but the record's key is `3201020101000009`"), "{m}");
    // An explicit area must be a known org unit.
    let mut named = component(8, false);
    named["area"] = json!("320102009");
    assert!(invalid(write(&data, &named, all()).await).contains("`320102009` is not a known org unit"));
    // Insert refuses an existing key.
    let again = data.write("components", None, &component(1, false).to_string(), WriteMode::Insert, all()).await;
    assert!(matches!(again, Err(ServiceError::Conflict(_))), "{again:?}");
    assert_eq!(data.query("components", &RecordQuery::all(100)).await.unwrap().total, 1);
});

storage_test!(reads_and_writes_are_scoped_to_the_level, async |f: Fixture| {
    let data = setup(&f).await;
    for serial in 1..=3 {
        write(&data, &component(serial, false), all()).await.unwrap();
    }
    for serial in 4..=5 {
        write(&data, &component(serial, true), all()).await.unwrap();
    }
    let west = Scope::Units(vec![WEST.into()]);
    let q = RecordQuery { filters: vec![], area: None, scope: west.clone(), offset: 0, limit: 100 };
    let page = data.query("components", &q).await.unwrap();
    assert_eq!(page.total, 3);
    assert!(page.records.iter().all(|r| r.area.as_deref().unwrap().starts_with(WEST)));
    // Asking for the other street inside a street scope finds nothing.
    let q = RecordQuery { area: Some(EAST.into()), ..q };
    assert_eq!(data.query("components", &q).await.unwrap().total, 0);
    let city = RecordQuery { area: Some(EAST.into()), scope: Scope::All, ..q };
    assert_eq!(data.query("components", &city).await.unwrap().total, 2);

    // A west-street writer cannot place a record in the east, nor move an east one.
    let writer = Writer { actor: "user:west", scope: &west };
    let r = write(&data, &component(6, true), writer).await;
    assert!(matches!(&r, Err(ServiceError::Forbidden(m)) if m.contains("320102002")), "{r:?}");
    let r = write(&data, &component(4, false), writer).await;
    assert!(matches!(&r, Err(ServiceError::Forbidden(m)) if m.contains("the stored record")), "{r:?}");
    assert!(matches!(data.delete("components", "3201020101000004", writer).await, Err(ServiceError::Forbidden(_))));
    assert!(data.delete("components", "3201020101000001", writer).await.unwrap());
    assert!(!data.delete("components", "3201020101000001", writer).await.unwrap());
    assert_eq!(data.query("components", &RecordQuery::all(100)).await.unwrap().total, 4);
});

storage_test!(filters_are_typed_bound_and_page, async |f: Fixture| {
    let data = setup(&f).await;
    for serial in 1..=5 {
        let mut c = component(serial, serial > 3);
        if serial % 2 == 0 {
            c["status"] = json!("damaged");
        }
        write(&data, &c, all()).await.unwrap();
    }
    let q = |filters: Vec<(&str, Value)>, offset, limit| RecordQuery {
        filters: filters.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        area: None,
        scope: Scope::All,
        offset,
        limit,
    };
    let damaged = data.query("components", &q(vec![("status", json!("damaged"))], 0, 10)).await.unwrap();
    assert_eq!(damaged.records.iter().map(|r| &r.key[10..]).collect::<Vec<_>>(), ["000002", "000004"]);
    let nested = data.query("components", &q(vec![("location.lon", json!(118.81))], 0, 10)).await.unwrap();
    assert_eq!(nested.total, 2);
    let page = data.query("components", &q(vec![], 1, 2)).await.unwrap();
    assert_eq!((page.total, page.records.len(), &page.records[0].key[10..]), (5, 2, "000002"));
    for field in ["status') OR 1=1 --", "a..b", "a b"] {
        let r = data.query("components", &q(vec![(field, json!("x"))], 0, 10)).await;
        assert!(matches!(r, Err(ServiceError::Invalid(_))), "{field}: {r:?}");
    }
    let sneaky = data.query("components", &q(vec![("status", json!("x' OR '1'='1"))], 0, 10)).await.unwrap();
    assert_eq!(sneaky.total, 0);
    assert!(matches!(data.query("components", &q(vec![("status", json!([1]))], 0, 10)).await, Err(ServiceError::Invalid(_))));
});

storage_test!(imports_are_all_or_nothing, async |f: Fixture| {
    let data = setup(&f).await;
    let mut csv = String::from("code,major,minor,name,location.lat,location.lon,status,address\n");
    for serial in 1..=300 {
        let lon = if serial % 2 == 0 { 118.81 } else { 118.79 };
        csv.push_str(&format!("3201020101{serial:06},01,01,上水井盖,32.045,{lon},intact,长江路 {serial} 号\n"));
    }
    let rows = data.parse_import("components", yiwang::data::import::Format::Csv, csv.as_bytes()).await.unwrap();
    assert_eq!(rows.len(), 300);

    // One bad row (line 151) stops the whole import.
    let mut broken = rows.clone();
    broken[149].value["location"]["lat"] = json!("north");
    let m = invalid(data.import("components", broken, all(), &mut |_| {}).await);
    assert!(m.starts_with("line 151 (key `3201020101000150`): field `/location/lat`"), "{m}");
    assert_eq!(data.query("components", &RecordQuery::all(10)).await.unwrap().total, 0);

    let mut seen = Vec::new();
    let report = data.import("components", rows.clone(), all(), &mut |p| seen.push(p)).await.unwrap();
    assert_eq!((report.inserted, report.updated), (300, 0));
    assert_eq!(seen.last(), Some(&Progress::Written(300, 300)));
    assert!(seen.contains(&Progress::Checked(300, 300)));
    let report = data.import("components", rows[..10].to_vec(), all(), &mut |_| {}).await.unwrap();
    assert_eq!((report.inserted, report.updated), (0, 10));

    // Duplicate keys inside one import, and a street writer touching the other street.
    let dup = vec![rows[0].clone(), rows[0].clone()];
    assert!(invalid(data.import("components", dup, all(), &mut |_| {}).await).contains("appears more than once"));
    let west = Scope::Units(vec![WEST.into()]);
    let r = data.import("components", rows[..4].to_vec(), Writer { actor: "user:west", scope: &west }, &mut |_| {}).await;
    assert!(matches!(&r, Err(ServiceError::Forbidden(m)) if m.contains("line 3")), "{r:?}");

    // JSON lines, into a data set without a key field: `_key` gives the key.
    let spec: DatasetSpec = serde_json::from_value(json!({
        "name": "street-lamps", "title": "路灯巡检", "owner_department": "chengguan", "sharing": "private",
        "schema": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}},
    }))
    .unwrap();
    data.create_dataset(&spec).await.unwrap();
    let lines = b"{\"_key\": \"L1\", \"ok\": true}\n{\"_key\": \"L2\", \"ok\": false}\n";
    let rows = data.parse_import("street-lamps", yiwang::data::import::Format::Json, lines).await.unwrap();
    let report = data.import("street-lamps", rows, all(), &mut |_| {}).await.unwrap();
    assert_eq!(report.inserted, 2);
    let got = data.get("street-lamps", "L2").await.unwrap().unwrap();
    assert_eq!(serde_json::from_str::<Value>(&got.value).unwrap(), json!({"ok": false}));
    let no_key = data.parse_import("street-lamps", yiwang::data::import::Format::Json, b"[{\"ok\": true}]").await.unwrap();
    assert!(invalid(data.import("street-lamps", no_key, all(), &mut |_| {}).await).contains("needs a key"));
});

storage_test!(definitions_are_checked_and_keep_records_valid, async |f: Fixture| {
    let data = setup(&f).await;
    let spec = |schema: Value| -> DatasetSpec {
        serde_json::from_value(json!({
            "name": "bins", "title": "垃圾桶", "owner_department": "chengguan", "sharing": "shared",
            "shared_with": ["zongzhi"], "schema": schema, "key_field": "id", "update_interval_hours": 24,
        }))
        .unwrap()
    };
    let loose = json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}});
    data.create_dataset(&spec(loose.clone())).await.unwrap();
    assert!(matches!(data.create_dataset(&spec(loose.clone())).await, Err(ServiceError::Conflict(_))));
    let set = data.dataset("bins").await.unwrap().unwrap();
    assert!(set.readable_by("zongzhi") && !set.readable_by("yingji"));
    data.write("bins", None, r#"{"id": "b1"}"#, WriteMode::Insert, all()).await.unwrap();

    // A schema the stored record would break is refused, and the old one stays.
    let strict = json!({"type": "object", "required": ["id", "capacity"], "properties": {"id": {"type": "string"}}});
    let m = invalid(data.update_dataset(&spec(strict)).await);
    assert!(m.contains("record `b1`") && m.contains("capacity"), "{m}");
    assert_eq!(data.dataset("bins").await.unwrap().unwrap().schema, loose);

    for (bad, needle) in [
        (json!({"name": "Bad Name"}), "name `Bad Name`"),
        (json!({"sharing": "everyone"}), "sharing: `everyone`"),
        (json!({"sharing": "private"}), "shared_with: only a `shared`"),
        (json!({"owner_department": "nasa"}), "unknown department `nasa`"),
        (json!({"schema": {"type": "array"}}), "schema"),
        (json!({"checks": ["magic"]}), "`magic` is not a known check"),
        (json!({"update_interval_hours": 0}), "update_interval_hours"),
    ] {
        let mut s = serde_json::to_value(spec(loose.clone())).unwrap();
        for (k, v) in bad.as_object().unwrap() {
            s[k] = v.clone();
        }
        s["name"] = bad.get("name").cloned().unwrap_or(json!("bins2"));
        let s: DatasetSpec = serde_json::from_value(s).unwrap();
        let m = invalid(data.create_dataset(&s).await);
        assert!(m.contains(needle), "{needle}: {m}");
    }
});

storage_test!(accountability_measures_freshness_and_completeness, async |f: Fixture| {
    let data = setup(&f).await;
    // 4 components; the expected fields are the 6 required and address, owner, maintainer.
    for serial in 1..=4 {
        let mut c = component(serial, false);
        if serial <= 2 {
            c["owner"] = json!("市水务集团");
        }
        write(&data, &c, all()).await.unwrap();
    }
    f.clock.advance(800 * HOUR);
    let a = data.accountability(Some("chengguan")).await.unwrap();
    let set = a.datasets.iter().find(|d| d.dataset == "components").unwrap();
    assert_eq!(set.records, 4);
    assert_eq!(set.last_update, Some(T0));
    assert_eq!(set.fresh, Some(false), "800 h > the promised 720 h");
    assert_eq!(set.recently_updated, 0);
    let owner = set.fields.iter().find(|x| x.field == "owner").unwrap();
    assert_eq!((owner.filled, owner.share), (2, 0.5));
    // 9 expected fields × 4 records = 36 cells; maintainer (4) and half the owners (2) are empty.
    let expected = 30.0 / 36.0;
    assert!((set.completeness.unwrap() - expected).abs() < 1e-9, "{:?}", set.completeness);
    let dept = a.departments.iter().find(|d| d.department == "chengguan").unwrap();
    assert_eq!(dept.stale, ["components"]);
    assert_eq!(dept.fresh_share, Some(0.0));
    write(&data, &component(5, false), all()).await.unwrap();
    let a = data.accountability(Some("chengguan")).await.unwrap();
    let set = a.datasets.iter().find(|d| d.dataset == "components").unwrap();
    assert_eq!(set.fresh, Some(true));
    assert_eq!(set.recently_updated, 1);
    assert!(a.datasets.iter().all(|d| d.owner_department == "chengguan"));
});

/// The HTTP surface: authorisation by department, role and level, audited.
mod http {
    use super::*;
    use common::http::{Host, message, start};
    use yiwang::identity::{AccountKind, Role};

    const STAFF: AccountKind = AccountKind::Staff;

    async fn city(host: &Host) {
        host.services.space.load_geojson(CITY).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_over_http_respect_department_and_level() {
        let host = start(false).await;
        city(&host).await;
        let cg_city = host.user("cg.city", Some("chengguan"), STAFF, &[Role::Handler], "320100").await;
        let cg_west = host.user("cg.west", Some("chengguan"), STAFF, &[Role::GridWorker], WEST).await;
        let cg_east = host.user("cg.east", Some("chengguan"), STAFF, &[Role::Handler], EAST).await;
        let yj = host.user("yj", Some("yingji"), STAFF, &[Role::Handler], "320100").await;
        let resident = host.user("resident", None, AccountKind::Resident, &[Role::Resident], "320100").await;

        // Writing: each street writes its own ground.
        let (status, body) = host.post("/api/datasets/components/records", &cg_west, json!({"value": component(1, false)})).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["area"], "32010200100101");
        let (status, body) = host.post("/api/datasets/components/records", &cg_west, json!({"value": component(2, true)})).await;
        assert_eq!(status, 403, "{body}");
        assert!(message(&body).contains("outside org units 320102001"), "{body}");
        let east = component(2, true);
        let (status, body) = host.put("/api/datasets/components/records/3201020101000002", &cg_east, east.clone()).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(host.put("/api/datasets/components/records/3201020101000002", &cg_east, east).await.0, 200);
        let (status, body) = host.post("/api/datasets/components/records", &cg_west, json!({"value": component(1, false)})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")));
        let (status, body) = host.post("/api/datasets/components/records", &yj, json!({"value": component(3, false)})).await;
        assert_eq!(status, 403, "another department does not write: {body}");
        let mut bad = component(3, false);
        bad["code"] = json!("12");
        let (status, body) = host.post("/api/datasets/components/records", &cg_west, json!({"value": bad})).await;
        assert_eq!(status, 422);
        assert!(message(&body).contains("field `/code`"), "{body}");
        let (status, body) = host.post("/api/datasets/components/records", &cg_west, json!({"value": {"code": "1"}})).await;
        assert_eq!(status, 422);
        assert!(message(&body).contains("\"status\" is a required property"), "{body}");

        // Reading: the west street sees its own record only; the city sees both.
        let (status, body) = host.get("/api/datasets/components/records", &cg_west).await;
        assert_eq!((status, body["total"].as_i64()), (200, Some(1)), "{body}");
        let (_, body) = host.get("/api/datasets/components/records", &cg_city).await;
        assert_eq!(body["total"], 2);
        let (status, body) = host.get("/api/datasets/components/records/3201020101000002", &cg_west).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(host.get("/api/datasets/components/records/3201020101000002", &cg_east).await.0, 200);
        // Public: another department reads (the whole city, from its city-level role).
        let (_, body) = host.get("/api/datasets/components/records?status=intact&location.lon=118.81", &yj).await;
        assert_eq!(body["total"], 1, "{body}");
        let (status, body) = host.get("/api/datasets/components/records?limit=0", &yj).await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = host.get("/api/datasets/vulnerable-residents/records", &yj).await;
        assert_eq!(status, 403);
        assert_eq!(host.get("/api/datasets/components/records", &resident).await.0, 403);
        assert_eq!(host.get("/api/datasets/components/records", "").await.0, 401);

        // Deleting follows the same scope.
        let path = "/api/datasets/components/records/3201020101000002";
        assert_eq!(host.call("DELETE", path, &cg_west, None).await.0, 403);
        assert_eq!(host.call("DELETE", path, &cg_east, None).await.0, 204);
        assert_eq!(host.call("DELETE", path, &cg_east, None).await.0, 404);

        // Refusals were audited.
        let denied = host.services.audit.find(Some("user:cg.west"), None, 100).await.unwrap();
        assert!(denied.iter().any(|r| r.outcome == "denied" && r.action == "data.get"), "{denied:?}");
        assert!(denied.iter().any(|r| r.outcome == "denied" && r.action == "data.insert"), "{denied:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn datasets_import_classes_and_accountability_over_http() {
        let host = start(false).await;
        city(&host).await;
        let ops = host.user("ops", Some("command-center"), STAFF, &[Role::Operator], "320100").await;
        let cg = host.user("cg", Some("chengguan"), STAFF, &[Role::Handler], "320100").await;
        let cg_leader = host.user("cg.leader", Some("chengguan"), STAFF, &[Role::Leader], "320100").await;

        let spec = json!({
            "name": "bins", "title": "垃圾桶", "owner_department": "chengguan", "sharing": "public",
            "schema": {"type": "object", "required": ["id", "fill"], "properties": {
                "id": {"type": "string"}, "fill": {"type": "integer", "minimum": 0, "maximum": 100}}},
            "key_field": "id",
        });
        assert_eq!(host.post("/api/datasets", &cg, spec.clone()).await.0, 403, "a handler does not define");
        let (status, body) = host.post("/api/datasets", &cg_leader, spec.clone()).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(host.post("/api/datasets", &ops, spec).await.0, 409);
        let (status, body) = host.post("/api/datasets", &ops, json!({"name": "x"})).await;
        assert_eq!(status, 400);
        assert!(message(&body).contains("title"), "{body}");

        // CSV import: a bad cell names its line and column, nothing is written.
        let bad = "id,fill\nb1,10\nb2,lots\n";
        let r = host.raw("POST", "/api/datasets/bins/import", &cg, "text/csv", bad.as_bytes()).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(message(&r.json()).contains("line 3, column `fill`"), "{}", r.body);
        let over = "id,fill\nb1,10\nb2,150\n";
        let r = host.raw("POST", "/api/datasets/bins/import?format=csv", &cg, "application/octet-stream", over.as_bytes()).await;
        assert_eq!(r.status, 422);
        assert!(message(&r.json()).contains("line 3 (key `b2`): field `/fill`"), "{}", r.body);
        assert_eq!(host.get("/api/datasets/bins/records", &cg).await.1["total"], 0);
        let good = "id,fill\nb1,10\nb2,95\n";
        let r = host.raw("POST", "/api/datasets/bins/import", &cg, "text/csv; charset=utf-8", good.as_bytes()).await;
        assert_eq!((r.status, r.json()), (200, json!({"inserted": 2, "updated": 0})), "{}", r.body);
        let (_, body) = host.get("/api/datasets/bins/records?fill=95", &cg).await;
        assert_eq!(body["records"][0]["key"], "b2");
        let r = host.raw("POST", "/api/datasets/bins/import", &cg, "text/plain", good.as_bytes()).await;
        assert_eq!(r.status, 400);

        let (status, body) = host.get("/api/component-classes", &cg).await;
        assert_eq!(status, 200);
        assert!(body.as_array().unwrap().iter().any(|c| c["code"] == "0101" && c["name"] == "上水井盖"), "{body}");

        let (status, body) = host.get("/api/data/accountability?department=chengguan", &cg).await;
        assert_eq!(status, 200, "{body}");
        let bins = body["datasets"].as_array().unwrap().iter().find(|d| d["dataset"] == "bins").unwrap();
        assert_eq!((bins["records"].as_i64(), bins["completeness"].as_f64()), (Some(2), Some(1.0)));

        let (status, body) = host.get("/api/datasets", &cg).await;
        assert_eq!(status, 200);
        let private = body.as_array().unwrap().iter().find(|d| d["name"] == "vulnerable-residents").unwrap();
        assert_eq!(private["readable"], false);
    }
}
