//! The space capability on SQLite: loading a hand-made city
//! (`data/city.geojson`: 南京市 320100 → 玄武区 320102 → two streets → two
//! communities each → four rectangular grid cells each), the lookups, and the
//! refusals of bad input with nothing written. One test repeats the storage
//! part on PostgreSQL when `YIWANG_TEST_POSTGRES` names a server (as the
//! storage suite does), and says "skipped" otherwise.
//!
//! The layout, in degrees (each street is 0.02° of longitude, each community
//! 0.01° of latitude, each cell a quarter of its community: 01 south-west,
//! 02 south-east, 03 north-west, 04 north-east):
//!
//! ```text
//!  32.06 ┌──────────────┬──────────────┐
//!        │ 320102001002 │ 320102002002 │
//!  32.05 ├──────────────┼──────────────┤
//!        │ 320102001001 │ 320102002001 │
//!  32.04 └──────────────┴──────────────┘
//!     118.78         118.80         118.82
//! ```

use geo::{MultiPolygon, Rect};
use serde_json::{Value, json};
use sqlx::Row;
use yiwang::bus::GeoPoint;
use yiwang::db::Db;
use yiwang::error::ServiceError;
use yiwang::space::{AreaRef, IndexedArea, Level, Space, SpaceIndex, polygon_from_ring};

const CITY: &str = include_str!("data/city.geojson");

struct Fixture {
    db: Db,
    space: Space,
    _dir: tempfile::TempDir,
}

async fn empty() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(dir.path()).await.unwrap();
    let space = Space::open(db.clone()).await.unwrap();
    Fixture { db, space, _dir: dir }
}

async fn loaded() -> Fixture {
    let f = empty().await;
    f.space.load_geojson(CITY).await.unwrap();
    f
}

fn at(lat: f64, lon: f64) -> GeoPoint {
    GeoPoint { lat, lon }
}

fn city() -> Value {
    serde_json::from_str(CITY).unwrap()
}

/// Every stored row, in code order, as text: what "nothing written" compares.
async fn table(db: &Db) -> Vec<String> {
    let rows = sqlx::query(
        "SELECT code, name, level, parent, geometry, min_lon, min_lat, max_lon, max_lat FROM areas ORDER BY code",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            let parent: Option<String> = r.get(3);
            let bbox: [f64; 4] = [r.get(5), r.get(6), r.get(7), r.get(8)];
            format!(
                "{} {} {} {:?} {} {:?}",
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                r.get::<String, _>(2),
                parent,
                r.get::<String, _>(4),
                bbox
            )
        })
        .collect()
}

fn owned_codes(areas: &[AreaRef]) -> Vec<&str> {
    areas.iter().map(|a| a.code.as_str()).collect()
}

#[tokio::test]
async fn loads_the_city() {
    let f = empty().await;
    let report = f.space.load_geojson(CITY).await.unwrap();
    assert_eq!((report.features, report.inserted, report.updated, report.grids_indexed), (24, 24, 0, 16));
    assert_eq!(table(&f.db).await.len(), 24);

    let district = f.space.area("320102").await.unwrap().unwrap();
    assert_eq!(district.name, "玄武区（示例）");
    assert_eq!(district.level, Level::District);
    assert_eq!(district.parent.as_deref(), Some("320100"));
    assert_eq!(district.bbox, [118.78, 32.04, 118.82, 32.06]);
    assert_eq!(district.geometry.value.type_name(), "Polygon");

    let city = f.space.area("320100").await.unwrap().unwrap();
    assert_eq!(city.parent, None);
    assert_eq!(city.geometry.value.type_name(), "MultiPolygon");
    assert_eq!(city.bbox, [118.70, 32.00, 118.90, 32.20]);

    assert!(f.space.area("320102009").await.unwrap().is_none());
    let index = f.space.index();
    assert_eq!((index.len(), index.len_at(Level::Grid), index.len_at(Level::Community)), (24, 16, 4));
}

#[tokio::test]
async fn reloading_is_an_upsert() {
    let f = loaded().await;
    let report = f.space.load_geojson(CITY).await.unwrap();
    assert_eq!((report.features, report.inserted, report.updated), (24, 0, 24));

    let mut doc = city();
    doc["features"][4]["properties"]["name"] = json!("长江路社区东一网格");
    let report = f.space.load_geojson(&doc.to_string()).await.unwrap();
    assert_eq!((report.inserted, report.updated), (0, 24));
    assert_eq!(table(&f.db).await.len(), 24);
    assert_eq!(f.space.area("32010200100101").await.unwrap().unwrap().name, "长江路社区东一网格");
    // The index was rebuilt by the load itself.
    assert_eq!(f.space.grid_at(at(32.0425, 118.785)).unwrap().name, "长江路社区东一网格");
}

#[tokio::test]
async fn features_may_come_in_any_order() {
    let f = empty().await;
    let mut doc = city();
    doc["features"].as_array_mut().unwrap().reverse();
    let report = f.space.load_geojson(&doc.to_string()).await.unwrap();
    assert_eq!(report.inserted, 24);
    let g = loaded().await;
    assert_eq!(table(&f.db).await, table(&g.db).await);
}

#[tokio::test]
async fn parents_may_already_be_stored() {
    let f = empty().await;
    let doc = city();
    let (grids, upper): (Vec<Value>, Vec<Value>) = doc["features"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .partition(|feature| feature["properties"]["level"] == "grid");
    let collection = |features: Vec<Value>| json!({ "type": "FeatureCollection", "features": features }).to_string();

    let report = f.space.load_geojson(&collection(upper)).await.unwrap();
    assert_eq!((report.inserted, report.grids_indexed), (8, 0));
    assert_eq!(f.space.grid_at(at(32.0425, 118.785)), None);
    // Without grid cells the chain starts at the community.
    assert_eq!(owned_codes(&f.space.areas_at(at(32.0425, 118.785))), ["320102001001", "320102001", "320102", "320100"]);

    let report = f.space.load_geojson(&collection(grids)).await.unwrap();
    assert_eq!((report.inserted, report.grids_indexed), (16, 16));
    assert_eq!(f.space.grid_at(at(32.0425, 118.785)).unwrap().code, "32010200100101");
}

#[tokio::test]
async fn the_index_is_built_from_storage() {
    let f = loaded().await;
    let fresh = Space::new(f.db.clone());
    assert_eq!(fresh.grid_at(at(32.0425, 118.785)), None, "an unopened service has an empty index");
    fresh.reload_index().await.unwrap();
    assert_eq!(fresh.grid_at(at(32.0425, 118.785)).unwrap().code, "32010200100101");
    let reopened = Space::open(f.db.clone()).await.unwrap();
    assert_eq!(reopened.index().len(), 24);
}

#[tokio::test]
async fn point_to_grid() {
    let f = loaded().await;
    // (what, lat, lon, the cell expected)
    let cases: &[(&str, f64, f64, Option<&str>)] = &[
        ("inside the first cell", 32.0425, 118.785, Some("32010200100101")),
        ("inside the last cell", 32.0575, 118.815, Some("32010200200204")),
        ("on the edge between 01 and 02", 32.0425, 118.79, Some("32010200100101")),
        ("on the edge between 01 and 03", 32.045, 118.785, Some("32010200100101")),
        ("on the edge between two streets", 32.0425, 118.80, Some("32010200100102")),
        ("on the edge between two communities", 32.05, 118.805, Some("32010200200103")),
        ("on the corner of four cells", 32.045, 118.79, Some("32010200100101")),
        ("on the corner of four communities", 32.05, 118.80, Some("32010200100104")),
        ("on the outer edge of the district", 32.0425, 118.78, Some("32010200100101")),
        ("on the outer corner of the district", 32.06, 118.82, Some("32010200200204")),
        ("in the city, outside every cell", 32.02, 118.75, None),
        ("just outside the district", 32.0425, 118.779_999_9, None),
        ("in another city", 39.9042, 116.4074, None),
        ("not on Earth", 95.0, 118.785, None),
        ("not a number", f64::NAN, 118.785, None),
    ];
    for &(what, lat, lon, expected) in cases {
        let got = f.space.grid_at(at(lat, lon));
        assert_eq!(got.as_ref().map(|g| g.code.as_str()), expected, "{what} ({lat}, {lon})");
        if let Some(g) = got {
            assert_eq!(g.level, Level::Grid);
            assert_eq!(g.parent.as_deref(), Some(&g.code[..12]), "{what}: a cell's parent is its community");
        }
    }

    // The same answers whatever order the cells were loaded in.
    let reversed = empty().await;
    let mut doc = city();
    doc["features"].as_array_mut().unwrap().reverse();
    reversed.space.load_geojson(&doc.to_string()).await.unwrap();
    for &(what, lat, lon, expected) in cases {
        let got = reversed.space.grid_at(at(lat, lon));
        assert_eq!(got.as_ref().map(|g| g.code.as_str()), expected, "{what}, loaded in reverse");
    }
}

#[tokio::test]
async fn point_to_chain_of_areas() {
    let f = loaded().await;
    let chain = f.space.areas_at(at(32.0425, 118.785));
    assert_eq!(owned_codes(&chain), ["32010200100101", "320102001001", "320102001", "320102", "320100"]);
    let levels: Vec<Level> = chain.iter().map(|a| a.level).collect();
    assert_eq!(levels, [Level::Grid, Level::Community, Level::Street, Level::District, Level::City]);
    assert_eq!(chain[1].name, "长江路社区");
    assert_eq!(chain[2].name, "梅园新村街道");

    // A shared edge resolves at the grid, and the chain follows that cell.
    assert_eq!(
        owned_codes(&f.space.areas_at(at(32.05, 118.80))),
        ["32010200100104", "320102001001", "320102001", "320102", "320100"]
    );
    // In the city but in no district; in the city's detached northern part.
    assert_eq!(owned_codes(&f.space.areas_at(at(32.02, 118.75))), ["320100"]);
    assert_eq!(owned_codes(&f.space.areas_at(at(32.15, 118.75))), ["320100"]);
    // Between the two parts of the city, and far away.
    assert!(f.space.areas_at(at(32.11, 118.75)).is_empty());
    assert!(f.space.areas_at(at(39.9042, 116.4074)).is_empty());
}

#[tokio::test]
async fn grids_within_a_radius() {
    let f = loaded().await;
    // From the centre of cell 01 (32.0425, 118.785): its north edge is ~278 m away
    // (cell 03), its east edge ~471 m (cell 02), the corner of cell 04 ~547 m.
    // West and south of it lies no cell.
    let centre = at(32.0425, 118.785);
    let cases: &[(f64, &[&str])] = &[
        (0.0, &["32010200100101"]),
        (100.0, &["32010200100101"]),
        (300.0, &["32010200100101", "32010200100103"]),
        (500.0, &["32010200100101", "32010200100102", "32010200100103"]),
        (600.0, &["32010200100101", "32010200100102", "32010200100103", "32010200100104"]),
    ];
    for &(metres, expected) in cases {
        let got = f.space.grids_within_radius(centre, metres).unwrap();
        assert_eq!(owned_codes(&got), expected, "{metres} m");
    }
    // From ~471 m west of the district: cell 01 is in reach at 500 m, cell 03 (~547 m) is not.
    let outside = at(32.0425, 118.775);
    assert!(f.space.grids_within_radius(outside, 400.0).unwrap().is_empty());
    assert_eq!(owned_codes(&f.space.grids_within_radius(outside, 500.0).unwrap()), ["32010200100101"]);
    // The whole district from its middle.
    assert_eq!(f.space.grids_within_radius(at(32.05, 118.80), 5_000.0).unwrap().len(), 16);

    for (centre, metres, field) in [
        (centre, -1.0, "radius"),
        (centre, f64::NAN, "radius"),
        (centre, 2e6, "radius"),
        (at(91.0, 118.0), 10.0, "centre"),
    ] {
        match f.space.grids_within_radius(centre, metres) {
            Err(ServiceError::Invalid(msg)) => assert!(msg.starts_with(field), "{msg}"),
            other => panic!("{metres} m from {centre:?}: expected Invalid, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn grids_within_a_polygon() {
    let f = loaded().await;
    let rect = |w: f64, s: f64, e: f64, n: f64| {
        geo::Polygon::new(geo::LineString::from(vec![(w, s), (e, s), (e, n), (w, n), (w, s)]), vec![])
    };
    let cases: &[(&str, geo::Polygon<f64>, &[&str])] = &[
        ("exactly one cell: its neighbours only touch it", rect(118.78, 32.04, 118.79, 32.045), &["32010200100101"]),
        (
            "exactly one community",
            rect(118.78, 32.04, 118.80, 32.05),
            &["32010200100101", "32010200100102", "32010200100103", "32010200100104"],
        ),
        (
            "a small square over the corner of four cells",
            rect(118.789, 32.044, 118.791, 32.046),
            &["32010200100101", "32010200100102", "32010200100103", "32010200100104"],
        ),
        ("a sliver across two streets", rect(118.799, 32.041, 118.801, 32.042), &["32010200100102", "32010200200101"]),
        ("outside the district", rect(118.70, 32.00, 118.75, 32.03), &[]),
    ];
    for (what, polygon, expected) in cases {
        let got = f.space.grids_within_polygon(polygon).unwrap();
        assert_eq!(owned_codes(&got), *expected, "{what}");
    }

    // A CAP-style ring of (lat, lon) points, left open: a triangle inside cell 02.
    let ring = [at(32.041, 118.791), at(32.041, 118.799), at(32.044, 118.795)];
    let triangle = polygon_from_ring(&ring).unwrap();
    assert_eq!(owned_codes(&f.space.grids_within_polygon(&triangle).unwrap()), ["32010200100102"]);

    let bow_tie = [at(32.041, 118.781), at(32.044, 118.789), at(32.041, 118.789), at(32.044, 118.781)];
    assert!(matches!(polygon_from_ring(&bow_tie), Err(ServiceError::Invalid(m)) if m.starts_with("polygon")));
    assert!(matches!(
        polygon_from_ring(&[at(32.0, 118.0), at(32.0, 200.0), at(32.1, 118.0)]),
        Err(ServiceError::Invalid(m)) if m.contains("longitude 200")
    ));
}

/// A bad file is refused with the feature and field named, and leaves the
/// table and the index as they were.
#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    type Edit = fn(&mut Value);
    // (what, how to spoil the city file, what the message must say)
    let cases: &[(&str, Edit, &[&str])] = &[
        (
            "latitude out of range",
            |d| d["features"][5]["geometry"]["coordinates"][0][2][1] = json!(95.0),
            &["feature 5 (code `32010200100102`)", "geometry.coordinates[0][2]", "latitude 95"],
        ),
        (
            "longitude out of range",
            |d| d["features"][1]["geometry"]["coordinates"][0][1][0] = json!(181.0),
            &["feature 1 (code `320102`)", "geometry.coordinates[0][1]", "longitude 181"],
        ),
        (
            "coordinate out of range in a MultiPolygon",
            |d| d["features"][0]["geometry"]["coordinates"][1][0][3][1] = json!(-90.5),
            &["feature 0 (code `320100`)", "geometry.coordinates[1][0][3]", "latitude -90.5"],
        ),
        (
            "unclosed ring",
            |d| {
                d["features"][4]["geometry"]["coordinates"][0].as_array_mut().unwrap().pop();
            },
            &["feature 4 (code `32010200100101`)", "geometry.coordinates[0]:", "not closed"],
        ),
        (
            "too few positions",
            |d| {
                d["features"][4]["geometry"]["coordinates"][0] =
                    json!([[118.78, 32.04], [118.79, 32.04], [118.78, 32.04]])
            },
            &["feature 4 (code `32010200100101`)", "geometry.coordinates[0]:", "at least 4 positions"],
        ),
        (
            "self-intersecting ring",
            |d| {
                d["features"][4]["geometry"]["coordinates"][0] =
                    json!([[118.78, 32.04], [118.79, 32.045], [118.79, 32.04], [118.78, 32.045], [118.78, 32.04]])
            },
            &["feature 4 (code `32010200100101`)", "geometry:", "invalid polygon"],
        ),
        (
            "a point for a geometry",
            |d| d["features"][4]["geometry"] = json!({"type": "Point", "coordinates": [118.785, 32.0425]}),
            &["feature 4 (code `32010200100101`)", "geometry.type", "Point"],
        ),
        (
            "no geometry",
            |d| d["features"][4]["geometry"] = Value::Null,
            &["feature 4 (code `32010200100101`)", "geometry: missing"],
        ),
        (
            "grid code not extending its community",
            |d| d["features"][4]["properties"]["code"] = json!("32010200200105"),
            &[
                "feature 4 (code `32010200200105`)",
                "properties.code",
                "does not extend the code of its parent community `320102001001`",
            ],
        ),
        (
            "community code not extending its street",
            |d| d["features"][3]["properties"]["code"] = json!("320102002009"),
            &["feature 3 (code `320102002009`)", "properties.code", "parent street `320102001`"],
        ),
        (
            "district outside its city",
            |d| d["features"][1]["properties"]["code"] = json!("320202"),
            &["feature 1 (code `320202`)", "properties.code", "parent city `320100`"],
        ),
        (
            "unknown parent",
            |d| {
                d["features"][4]["properties"]["code"] = json!("32010200900101");
                d["features"][4]["properties"]["parent"] = json!("320102009001");
            },
            &["feature 4 (code `32010200900101`)", "properties.parent", "unknown area `320102009001`"],
        ),
        (
            "parent at the wrong level",
            |d| d["features"][4]["properties"]["parent"] = json!("320102001"),
            &["feature 4 (code `32010200100101`)", "properties.parent", "is a street", "must be a community"],
        ),
        (
            "no parent",
            |d| {
                d["features"][4]["properties"].as_object_mut().unwrap().remove("parent");
            },
            &["feature 4 (code `32010200100101`)", "properties.parent", "missing"],
        ),
        (
            "a city with a parent",
            |d| d["features"][0]["properties"]["parent"] = json!("320000"),
            &["feature 0 (code `320100`)", "properties.parent", "no parent"],
        ),
        (
            "code length not matching the level",
            |d| d["features"][3]["properties"]["level"] = json!("grid"),
            &["feature 3 (code `320102001001`)", "properties.code", "a grid code has 14 digits", "got 12"],
        ),
        (
            "unknown level",
            |d| d["features"][3]["properties"]["level"] = json!("village"),
            &["feature 3 (code `320102001001`)", "properties.level", "`village`"],
        ),
        (
            "code with letters",
            |d| d["features"][4]["properties"]["code"] = json!("3201020010010A"),
            &["feature 4 (code `3201020010010A`)", "properties.code", "digits"],
        ),
        (
            "code as a number",
            |d| d["features"][1]["properties"]["code"] = json!(320102),
            &["feature 1:", "properties.code", "string of digits"],
        ),
        (
            "missing name",
            |d| {
                d["features"][6]["properties"].as_object_mut().unwrap().remove("name");
            },
            &["feature 6 (code `32010200100103`)", "properties.name", "missing"],
        ),
        (
            "duplicate code",
            |d| d["features"][5]["properties"]["code"] = json!("32010200100101"),
            &["feature 5 (code `32010200100101`)", "properties.code", "twice (first at feature 4)"],
        ),
        (
            "a stored code changing level",
            |d| {
                // The district becomes a city: fine on its own, but it is stored as a district.
                d["features"][1]["properties"]["level"] = json!("city");
                d["features"][1]["properties"].as_object_mut().unwrap().remove("parent");
            },
            &["feature 1 (code `320102`)", "properties.level", "stored level `district`"],
        ),
        ("not a FeatureCollection", |d| *d = d["features"][4].clone(), &["type: expected a GeoJSON FeatureCollection"]),
    ];

    let f = loaded().await;
    let before = table(&f.db).await;
    let probe = at(32.0425, 118.785);
    let grid_before = f.space.grid_at(probe);
    for (what, spoil, expected) in cases {
        // Every feature is renamed and a new district added, so that a partial
        // write would show in the table.
        let mut doc = city();
        for feature in doc["features"].as_array_mut().unwrap() {
            let name = format!("{}（改）", feature["properties"]["name"].as_str().unwrap());
            feature["properties"]["name"] = json!(name);
        }
        doc["features"].as_array_mut().unwrap().push(json!({
            "type": "Feature",
            "properties": { "code": "320104", "name": "秦淮区（示例）", "level": "district", "parent": "320100" },
            "geometry": { "type": "Polygon", "coordinates":
                [[[118.78, 32.02], [118.82, 32.02], [118.82, 32.04], [118.78, 32.04], [118.78, 32.02]]] }
        }));
        spoil(&mut doc);
        match f.space.load_geojson(&doc.to_string()).await {
            Err(ServiceError::Invalid(msg)) => {
                for part in *expected {
                    assert!(msg.contains(part), "{what}: the message {msg:?} should contain {part:?}");
                }
            }
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
        assert_eq!(table(&f.db).await, before, "{what}: the table changed");
        assert_eq!(f.space.grid_at(probe), grid_before, "{what}: the index changed");
    }

    for (what, text, expected) in [
        ("not JSON", "{\"type\": \"FeatureCollection\", ", "not JSON"),
        ("no features", "{\"type\": \"FeatureCollection\"}", "features: expected an array"),
    ] {
        match f.space.load_geojson(text).await {
            Err(ServiceError::Invalid(msg)) => assert!(msg.contains(expected), "{what}: {msg}"),
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
    }
    assert_eq!(table(&f.db).await, before);

    // A refused file does not stand in the way of a good one.
    let report = f.space.load_geojson(CITY).await.unwrap();
    assert_eq!(report.updated, 24);
}

#[tokio::test]
async fn an_empty_database_stays_empty_after_a_refusal() {
    let f = empty().await;
    let doc = city_doc_with_unknown_parent();
    let err = f.space.load_geojson(&doc.to_string()).await.unwrap_err();
    assert!(err.to_string().contains("feature 23 (code `32010200200301`): properties.parent"), "{err}");
    assert!(table(&f.db).await.is_empty());
    assert!(f.space.index().is_empty());
}

/// The index on its own, built from shapes in memory (as the benchmark builds it).
#[test]
fn an_index_without_storage() {
    let cell = |code: &str, w: f64, s: f64| IndexedArea {
        area: AreaRef { code: code.into(), name: format!("cell {code}"), level: Level::Grid, parent: None },
        shape: MultiPolygon::new(vec![Rect::new((w, s), (w + 1.0, s + 1.0)).to_polygon()]),
    };
    let index = SpaceIndex::new(vec![cell("b", 0.0, 0.0), cell("a", 1.0, 0.0)]);
    assert_eq!(index.len_at(Level::Grid), 2);
    assert_eq!(index.grid_at(at(0.5, 0.5)).unwrap().code, "b");
    assert_eq!(index.grid_at(at(0.5, 1.0)).unwrap().code, "a", "a shared edge goes to the smallest code");
    assert_eq!(index.grid_at(at(0.5, 2.5)), None);
    assert_eq!(index.chain("b").len(), 1);
}

/// The storage half on PostgreSQL: the same SQL, a fresh schema.
#[tokio::test]
async fn storage_on_postgres() {
    let Ok(base) = std::env::var("YIWANG_TEST_POSTGRES") else {
        println!("skipped: storage_on_postgres (YIWANG_TEST_POSTGRES is not set)");
        return;
    };
    let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let schema = format!("t_space_{unique:x}_{:x}", std::process::id());
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let db = Db::connect(&format!("{base}{sep}options=-c%20search_path%3D{schema}")).await.unwrap();
    let space = Space::open(db.clone()).await.unwrap();

    let report = space.load_geojson(CITY).await.unwrap();
    assert_eq!((report.inserted, report.updated, report.grids_indexed), (24, 0, 16));
    let report = space.load_geojson(CITY).await.unwrap();
    assert_eq!((report.inserted, report.updated), (0, 24));
    let before = table(&db).await;
    assert_eq!(before.len(), 24);
    let city = space.area("320100").await.unwrap().unwrap();
    assert_eq!((city.parent, city.bbox), (None, [118.70, 32.00, 118.90, 32.20]));

    let mut doc = city_doc_with_unknown_parent();
    doc["features"][0]["properties"]["name"] = json!("改名");
    assert!(matches!(space.load_geojson(&doc.to_string()).await, Err(ServiceError::Invalid(_))));
    assert_eq!(table(&db).await, before);

    let reopened = Space::open(db).await.unwrap();
    assert_eq!(reopened.grid_at(at(32.0425, 118.785)).unwrap().code, "32010200100101");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&admin).await.unwrap();
}

/// The city file whose last grid cell names a community that does not exist.
fn city_doc_with_unknown_parent() -> Value {
    let mut doc = city();
    doc["features"][23]["properties"]["parent"] = json!("320102002003");
    doc["features"][23]["properties"]["code"] = json!("32010200200301");
    doc
}
