//! The demonstration city: two districts, four streets, eight communities and
//! thirty-two grid cells on a regular layout south-east of the real Nanjing
//! centre; its people, sensors, a hazmat vehicle's approved route and the
//! vulnerable residents the grid workers visit.

use serde_json::{Value, json};

use crate::data::Writer;
use crate::data::iot::Sensor;
use crate::identity::{AccountKind, NewUser, Role, Scope};
use crate::error::ServiceError;
use crate::services::Services;

/// The city's box: south, west, north, east.
pub const BOX: [f64; 4] = [32.00, 118.70, 32.08, 118.86];
/// The password of every demonstration account (a demo data folder is for
/// showing the screens, not for real use).
pub const PASSWORD: &str = "yiwang-demo";

const DISTRICTS: [(&str, &str); 2] = [("320102", "玄武区"), ("320104", "秦淮区")];
const STREETS: [[&str; 2]; 2] = [["梅园新村街道", "玄武门街道"], ["夫子庙街道", "大光路街道"]];
const COMMUNITIES: [[&str; 4]; 2] = [
    ["长江路社区", "大行宫社区", "湖南路社区", "百子亭社区"],
    ["贡院社区", "钞库街社区", "石门坎社区", "常府街社区"],
];

/// A rectangle as a closed GeoJSON ring of [lon, lat].
fn rect(south: f64, west: f64, north: f64, east: f64) -> Value {
    json!([[[west, south], [east, south], [east, north], [west, north], [west, south]]])
}

fn feature(code: &str, name: &str, level: &str, parent: Option<&str>, ring: Value) -> Value {
    let mut properties = json!({ "code": code, "name": name, "level": level });
    if let Some(p) = parent {
        properties["parent"] = json!(p);
    }
    json!({ "type": "Feature", "properties": properties, "geometry": { "type": "Polygon", "coordinates": ring } })
}

/// One area of the layout, for the replay to place things in.
#[derive(Debug, Clone)]
pub struct Place {
    pub code: String,
    pub name: String,
    /// south, west, north, east.
    pub bounds: [f64; 4],
}

impl Place {
    /// A point at fractions (`fy` north, `fx` east) of the area's box.
    pub fn at(&self, fy: f64, fx: f64) -> crate::bus::GeoPoint {
        let [s, w, n, e] = self.bounds;
        crate::bus::GeoPoint { lat: s + (n - s) * fy, lon: w + (e - w) * fx }
    }
}

/// The layout: districts split into a southern and a northern street, each
/// street into a western and an eastern community, each community into four
/// grid cells (south-west, south-east, north-west, north-east).
pub struct Layout {
    pub streets: Vec<Place>,
    pub communities: Vec<Place>,
    pub grids: Vec<Place>,
    pub geojson: Value,
}

pub fn layout() -> Layout {
    let [s0, w0, n0, e0] = BOX;
    let mut features = vec![feature("320100", "南京市（演示）", "city", None, rect(s0, w0, n0, e0))];
    let (mut streets, mut communities, mut grids) = (Vec::new(), Vec::new(), Vec::new());
    let dw = (e0 - w0) / 2.0;
    let sh = (n0 - s0) / 2.0;
    for (d, (dcode, dname)) in DISTRICTS.iter().enumerate() {
        let (dw0, de) = (w0 + dw * d as f64, w0 + dw * (d + 1) as f64);
        features.push(feature(dcode, dname, "district", Some("320100"), rect(s0, dw0, n0, de)));
        for st in 0..2 {
            let code = format!("{dcode}{:03}", st + 1);
            let (ss, sn) = (s0 + sh * st as f64, s0 + sh * (st + 1) as f64);
            let name = STREETS[d][st];
            features.push(feature(&code, name, "street", Some(dcode), rect(ss, dw0, sn, de)));
            streets.push(Place { code: code.clone(), name: name.into(), bounds: [ss, dw0, sn, de] });
            for c in 0..2 {
                let ccode = format!("{code}{:03}", c + 1);
                let (cw, ce) = (dw0 + dw / 2.0 * c as f64, dw0 + dw / 2.0 * (c + 1) as f64);
                let cname = COMMUNITIES[d][st * 2 + c];
                features.push(feature(&ccode, cname, "community", Some(&code), rect(ss, cw, sn, ce)));
                communities.push(Place { code: ccode.clone(), name: cname.into(), bounds: [ss, cw, sn, ce] });
                for g in 0..4 {
                    let gcode = format!("{ccode}{:02}", g + 1);
                    let (gy, gx) = ((g / 2) as f64, (g % 2) as f64);
                    let (gs, gn) = (ss + sh / 2.0 * gy, ss + sh / 2.0 * (gy + 1.0));
                    let (gw, ge) = (cw + dw / 4.0 * gx, cw + dw / 4.0 * (gx + 1.0));
                    let gname = format!("{cname}第{}网格", ["一", "二", "三", "四"][g]);
                    features.push(feature(&gcode, &gname, "grid", Some(&ccode), rect(gs, gw, gn, ge)));
                    grids.push(Place { code: gcode, name: gname, bounds: [gs, gw, gn, ge] });
                }
            }
        }
    }
    Layout { streets, communities, grids, geojson: json!({ "type": "FeatureCollection", "features": features }) }
}

/// A demonstration account.
pub struct Person {
    pub id: &'static str,
    pub name: &'static str,
    pub department: Option<&'static str>,
    pub unit: String,
    pub roles: Vec<(Role, String)>,
}

/// The people of the demonstration city, one of every role: a dispatcher, a
/// supervisor, a checker and a platform operator at the command centre, the
/// city's leader, a leader for every street and community, a grid worker for
/// every community, handlers of each department (城管's patrol team per
/// street), a plugin vendor, and two residents.
pub fn people(l: &Layout) -> Vec<Person> {
    let city = "320100".to_owned();
    let mut out = vec![
        Person { id: "dispatcher", name: "指挥中心派遣员", department: Some("command-center"), unit: city.clone(), roles: vec![(Role::Dispatcher, city.clone())] },
        Person { id: "supervisor", name: "指挥中心督办员", department: Some("command-center"), unit: city.clone(), roles: vec![(Role::Supervisor, city.clone())] },
        Person { id: "leader", name: "市值班领导", department: Some("command-center"), unit: city.clone(), roles: vec![(Role::Leader, city.clone())] },
        Person { id: "checker", name: "市级核查员", department: Some("command-center"), unit: city.clone(), roles: vec![(Role::GridWorker, city.clone())] },
        Person { id: "platform-operator", name: "平台运维", department: Some("command-center"), unit: city.clone(), roles: vec![(Role::Operator, city.clone())] },
        Person { id: "vendor", name: "第三方插件厂商", department: None, unit: city.clone(), roles: vec![(Role::Publisher, city.clone())] },
    ];
    for (dept, name) in [
        ("yingji", "应急管理局值班员"),
        ("zongzhi", "综治中心处置员"),
        ("housing", "住建局处置员"),
        ("police", "公安局处置员"),
        ("environment", "生态环境局处置员"),
        ("transport", "交通运输局处置员"),
        ("water", "水务局处置员"),
        ("hotline12345", "12345 话务员"),
    ] {
        let id: &'static str = Box::leak(format!("{dept}-handler").into_boxed_str());
        out.push(Person { id, name, department: Some(dept), unit: city.clone(), roles: vec![(Role::Handler, city.clone())] });
    }
    out.push(Person {
        id: "chengguan-handler",
        name: "城管执法局处置员",
        department: Some("chengguan"),
        unit: city.clone(),
        roles: vec![(Role::Handler, city.clone())],
    });
    for (i, s) in l.streets.iter().enumerate() {
        let leak = |t: String| -> &'static str { Box::leak(t.into_boxed_str()) };
        out.push(Person { id: leak(format!("street-leader-{}", i + 1)), name: leak(format!("{}领导", s.name)), department: None, unit: s.code.clone(), roles: vec![(Role::Leader, s.code.clone())] });
        out.push(Person {
            id: leak(format!("patrol-{}", i + 1)),
            name: leak(format!("{}城管中队", s.name)),
            department: Some("chengguan"),
            unit: s.code.clone(),
            roles: vec![(Role::Handler, s.code.clone())],
        });
    }
    for (i, c) in l.communities.iter().enumerate() {
        let leak = |t: String| -> &'static str { Box::leak(t.into_boxed_str()) };
        out.push(Person { id: leak(format!("community-leader-{}", i + 1)), name: leak(format!("{}书记", c.name)), department: None, unit: c.code.clone(), roles: vec![(Role::Leader, c.code.clone())] });
        out.push(Person { id: leak(format!("grid-worker-{}", i + 1)), name: leak(format!("{}网格员", c.name)), department: Some("zongzhi"), unit: c.code.clone(), roles: vec![(Role::GridWorker, c.code.clone())] });
    }
    for (id, name, c) in [("resident-wang", "王女士", 1), ("resident-zhou", "周先生", 5)] {
        let unit = l.communities[c].code.clone();
        out.push(Person { id, name, department: None, unit: unit.clone(), roles: vec![(Role::Resident, unit)] });
    }
    out
}

/// The sensors: (id, kind, unit, place (lat, lon), department).
pub fn sensors(l: &Layout) -> Vec<Sensor> {
    let s = |id: &str, kind: &str, unit: &str, at: crate::bus::GeoPoint, department: &str| Sensor {
        id: id.into(),
        kind: kind.into(),
        unit: unit.into(),
        lat: at.lat,
        lon: at.lon,
        department: department.into(),
    };
    vec![
        // A low underpass where 贡院, 钞库街, 石门坎 and 常府街 meet, and the
        // river beside 贡院社区.
        s("wl-underpass-01", "water-level", "m", l.communities[6].at(0.02, 0.98), "yingji"),
        s("wl-river-01", "water-level", "m", l.communities[4].at(0.3, 0.6), "water"),
        s("rain-qinhuai-01", "rainfall", "mm/h", l.communities[6].at(0.6, 0.4), "water"),
        // A restaurant street in 湖南路社区.
        s("gas-hunan-01", "gas", "%LEL", l.communities[2].at(0.4, 0.5), "yingji"),
        s("bin-01", "bin-fill", "%", l.grids[0].at(0.5, 0.5), "chengguan"),
        s("bin-02", "bin-fill", "%", l.grids[5].at(0.5, 0.5), "chengguan"),
        s("bin-03", "bin-fill", "%", l.grids[18].at(0.5, 0.5), "chengguan"),
        s("bin-04", "bin-fill", "%", l.grids[27].at(0.5, 0.5), "chengguan"),
        // The hazmat vehicle (registered at its depot).
        s("gps-a-d1234", "vehicle-gps", "deg", crate::bus::GeoPoint { lat: 32.005, lon: 118.705 }, "yingji"),
    ]
}

/// The hazmat vehicle's approved route: the southern ring road, east along
/// latitude 32.005, with its depot at the west end; 老城区 is closed to it.
pub fn hazmat_route() -> Value {
    json!({
        "vehicle": "苏A·D1234危", "sensor": "gps-a-d1234", "carrier": "南京化工物流有限公司", "cargo": "液氯",
        "corridor": [[118.700, 32.005], [118.780, 32.005], [118.860, 32.005]], "width_m": 400,
        "stops": [{ "name": "化工园区停车场", "lat": 32.005, "lon": 118.703, "radius_m": 300 }],
        "restricted": ["老城区"],
    })
}

/// Vulnerable residents (重点关爱人员): (key, record). Two are overdue for a
/// visit by the end of the day, one is not.
pub fn vulnerable(l: &Layout, day: &str) -> Vec<(String, Value)> {
    let at = |c: usize| {
        let p = l.communities[c].at(0.3, 0.3);
        json!({ "lat": p.lat, "lon": p.lon })
    };
    vec![
        ("vr-001".into(), json!({ "name": "张桂兰", "address": "长江路 12 号 3 栋 201", "category": "elderly-alone", "location": at(0), "visit_every_days": 7, "last_visit": "2026-01-02", "area": l.grids[0].code })),
        ("vr-002".into(), json!({ "name": "李建国", "address": "贡院街 5 号", "category": "disabled", "location": at(4), "visit_every_days": 14, "last_visit": "2026-01-05", "area": l.grids[16].code })),
        ("vr-003".into(), json!({ "name": "陈小明", "address": "常府街 8 号", "category": "left-behind-child", "location": at(7), "visit_every_days": 30, "last_visit": day, "area": l.grids[28].code })),
    ]
}

/// Store the city, its people, sensors and records. Safe to run on a data
/// folder that has them already: what exists is left as it is.
pub async fn seed(services: &Services, l: &Layout, day: &str) -> Result<(), ServiceError> {
    services.space.load_geojson(&l.geojson.to_string()).await?;
    let now = services.clock.now_ms();
    for p in people(l) {
        if services.identity.user_exists(p.id).await.map_err(ServiceError::Storage)? {
            continue;
        }
        let user = NewUser {
            id: p.id.into(),
            username: p.id.into(),
            display_name: p.name.into(),
            password: PASSWORD.into(),
            department: p.department.map(Into::into),
            org_unit: p.unit.clone(),
            kind: if p.roles.iter().any(|(r, _)| *r == Role::Resident) { AccountKind::Resident } else { AccountKind::Staff },
            roles: p.roles.clone(),
        };
        services.identity.create_user(&user, now).await?;
    }
    for s in sensors(l) {
        services.data.register_sensor(&s).await?;
    }
    let writer = Writer { actor: "host:demo", scope: &Scope::All };
    services.data.put("hazmat-routes", "苏A·D1234危", &hazmat_route().to_string(), writer).await?;
    for (key, record) in vulnerable(l, day) {
        let writer = Writer { actor: "host:demo", scope: &Scope::All };
        services.data.put("vulnerable-residents", &key, &record.to_string(), writer).await?;
    }
    Ok(())
}
