//! Hazardous-materials vehicles (危化品运输车辆) from their GPS, on
//! `iot.reading.vehicle-gps` events (payload `{"sensor","value","unit","time","lat","lon"}`).
//!
//! Each vehicle's approved route is a record of the `hazmat-routes` data set
//! (keyed by the plate), found by its GPS sensor's id in the field `sensor`:
//!
//! ```json
//! {"vehicle": "苏A·D1234危", "sensor": "gps-a-d1234", "carrier": "…", "cargo": "液氯",
//!  "corridor": [[118.70, 32.01], [118.75, 32.02]], "width_m": 400,
//!  "stops": [{"name": "化工园区停车场", "lat": 32.01, "lon": 118.70, "radius_m": 300}],
//!  "restricted": ["老城区"]}
//! ```
//!
//! `corridor` is the route's centre line as `[lon, lat]` points (the data
//! set's schema); `width_m` the corridor's full width. `restricted` names zones
//! whose rings are in `[config]` as `hazmat-zone-<name> = "lat,lon lat,lon …"`
//! (CAP polygon order), so a zone drawn once serves every route.
//!
//! Three rules, each raising a CAP warning when it is first broken (not at
//! every position while it stays broken):
//!
//! * **leaving the corridor** (偏离核准路线): the distance from the position to
//!   the route's polyline is more than half of `width_m` (`hazmat-corridor-m`
//!   when the record has no width). *Severe*, *Immediate*, *Observed*, category Transport.
//! * **entering a restricted zone** (驶入禁行区域): the position lies inside
//!   the ring of one of the route's `restricted` zones (ray casting). *Severe*,
//!   *Immediate*, *Observed*, category CBRNE.
//! * **stopping too long** (异常停留): the vehicle has stayed within
//!   `hazmat-stop-radius-m` of one point for `hazmat-stop-max-min` minutes or
//!   more, outside every designated stop. *Moderate*, *Expected*, *Observed*,
//!   category Transport.
//!
//! Distances use an equirectangular projection around the position, which is
//! within a fraction of a metre of the great-circle distance at city scale.
//!
//! The vehicle's track state (last fix, where it stopped and since when, which
//! rules are broken) is kept in the `yingji-tracks` data set, key `track:<vehicle>`.
//!
//! Skipped with a logged reason, never warned on: readings without a position,
//! positions outside the city's box `hazmat-city-box` (a fix in the sea), a fix
//! not newer than the last one (out of order), a jump faster than
//! `hazmat-max-speed-kmh` from the last fix (a GPS glitch), and vehicles with
//! no approved route.

use std::collections::BTreeMap;

use yiwang_sdk::events::Reading;
use yiwang_sdk::prelude::*;

/// The tracks data set and its key prefix.
pub const TRACKS: &str = "yingji-tracks";
const ROUTES: &str = "hazmat-routes";

/// A place where a vehicle may stop.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct Stop {
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
}

/// A vehicle's approved route (a `hazmat-routes` record).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct Route {
    /// The plate (车牌号).
    pub vehicle: String,
    /// The GPS sensor's id.
    pub sensor: String,
    #[serde(default)]
    pub cargo: String,
    /// [lon, lat] points of the route's centre line.
    pub corridor: Vec<[f64; 2]>,
    /// The corridor's full width in metres.
    pub width_m: Option<f64>,
    #[serde(default)]
    pub stops: Vec<Stop>,
    /// Names of zones (`hazmat-zone-<name>`) the vehicle must not enter.
    #[serde(default)]
    pub restricted: Vec<String>,
}

/// What is remembered of a vehicle between fixes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct Track {
    pub time: i64,
    pub lat: f64,
    pub lon: f64,
    /// Where the vehicle has stayed since `anchor_time`.
    pub anchor_lat: f64,
    pub anchor_lon: f64,
    pub anchor_time: i64,
    pub stop_warned: bool,
    pub off_route: bool,
    pub zone: Option<String>,
}

/// The hazmat model's parameters (`hazmat-*` keys of `[config]`).
#[derive(Debug, Clone, PartialEq)]
pub struct HazmatParams {
    pub unit: String,
    pub corridor_m: f64,
    pub stop_radius_m: f64,
    pub stop_max_min: i64,
    pub max_speed_kmh: f64,
    /// south, west, north, east in degrees.
    pub city_box: [f64; 4],
    pub radius_km: f64,
    /// Restricted zones by name: [lat, lon] rings.
    pub zones: BTreeMap<String, Vec<[f64; 2]>>,
}

impl HazmatParams {
    /// Read and check the parameters from the plugin's config.
    pub fn from_config() -> Result<HazmatParams, Error> {
        let text = config::get("hazmat-city-box").unwrap_or_default();
        let parts: Vec<f64> = text.split(',').filter_map(|p| p.trim().parse().ok()).collect();
        let [s, w, n, e] = parts[..] else {
            return Err(Error::Invalid(format!(
                "config: hazmat-city-box `{text}` is not `south,west,north,east` in degrees"
            )));
        };
        let p = HazmatParams {
            unit: config::get("hazmat-unit").unwrap_or_else(|| "deg".into()),
            corridor_m: config::get_parsed("hazmat-corridor-m")?,
            stop_radius_m: config::get_parsed("hazmat-stop-radius-m")?,
            stop_max_min: config::get_parsed("hazmat-stop-max-min")?,
            max_speed_kmh: config::get_parsed("hazmat-max-speed-kmh")?,
            city_box: [s, w, n, e],
            radius_km: config::get_parsed("hazmat-radius-km")?,
            zones: zones()?,
        };
        p.check()?;
        Ok(p)
    }

    pub fn check(&self) -> Result<(), Error> {
        let [s, w, n, e] = self.city_box;
        if !(-90.0..=90.0).contains(&s) || !(-90.0..=90.0).contains(&n) || s >= n || !(-180.0..=180.0).contains(&w) || !(-180.0..=180.0).contains(&e) || w >= e {
            return Err(Error::Invalid("config: hazmat-city-box must be south < north and west < east, in degrees".into()));
        }
        if !(self.corridor_m > 0.0 && self.stop_radius_m > 0.0 && self.stop_max_min > 0 && self.max_speed_kmh > 0.0 && self.radius_km > 0.0) {
            return Err(Error::Invalid("config: the hazmat-* distances, times and speeds must be positive".into()));
        }
        Ok(())
    }

    /// The fix's position and time, or why it is not usable.
    pub fn position(&self, f: &Reading, event_time: i64) -> Result<(GeoPoint, i64), String> {
        if f.unit != self.unit {
            return Err(format!("unit `{}` is not `{}`", f.unit, self.unit));
        }
        let (Some(lat), Some(lon)) = (f.lat, f.lon) else {
            return Err("the reading has no position (lat and lon)".into());
        };
        let [s, w, n, e] = self.city_box;
        if !(lat.is_finite() && lon.is_finite() && (s..=n).contains(&lat) && (w..=e).contains(&lon)) {
            return Err(format!("position {lat},{lon} is outside the city ({s},{w} to {n},{e})"));
        }
        Ok((GeoPoint::new(lat, lon), f.time.unwrap_or(event_time)))
    }
}

/// The `hazmat-zone-<name>` rings of the config.
fn zones() -> Result<BTreeMap<String, Vec<[f64; 2]>>, Error> {
    let mut out = BTreeMap::new();
    for (key, text) in config::all() {
        let Some(name) = key.strip_prefix("hazmat-zone-") else { continue };
        let ring: Option<Vec<[f64; 2]>> = text
            .split_whitespace()
            .map(|pair| {
                let (lat, lon) = pair.split_once(',')?;
                let (lat, lon) = (lat.trim().parse::<f64>().ok()?, lon.trim().parse::<f64>().ok()?);
                ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)).then_some([lat, lon])
            })
            .collect();
        match ring {
            Some(ring) if ring.len() >= 3 => out.insert(name.to_owned(), ring),
            _ => {
                return Err(Error::Invalid(format!(
                    "config: {key} is not a ring of at least three `lat,lon` points separated by spaces"
                )));
            }
        };
    }
    Ok(out)
}

const EARTH_M: f64 = 6_371_008.8;

/// Metres east and north of `origin`.
fn local(origin: GeoPoint, p: GeoPoint) -> (f64, f64) {
    let k = std::f64::consts::PI / 180.0 * EARTH_M;
    ((p.lon - origin.lon) * k * origin.lat.to_radians().cos(), (p.lat - origin.lat) * k)
}

/// The distance in metres between two points.
pub fn distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (x, y) = local(a, b);
    x.hypot(y)
}

/// The distance in metres from `p` to the polyline through `line` ([lon, lat]).
pub fn distance_to_line_m(p: GeoPoint, line: &[[f64; 2]]) -> f64 {
    let pts: Vec<(f64, f64)> = line.iter().map(|&[lon, lat]| local(p, GeoPoint::new(lat, lon))).collect();
    match pts.as_slice() {
        [] => f64::INFINITY,
        [(x, y)] => x.hypot(*y),
        _ => pts
            .windows(2)
            .map(|w| {
                let ((ax, ay), (bx, by)) = (w[0], w[1]);
                let (dx, dy) = (bx - ax, by - ay);
                let len2 = dx * dx + dy * dy;
                // The point is the origin: project it onto the segment.
                let t = if len2 == 0.0 { 0.0 } else { (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0) };
                (ax + t * dx).hypot(ay + t * dy)
            })
            .fold(f64::INFINITY, f64::min),
    }
}

/// Whether `p` lies inside the ring ([lat, lon] points), by ray casting.
pub fn inside(p: GeoPoint, ring: &[[f64; 2]]) -> bool {
    let mut inside = false;
    let n = ring.len();
    for i in 0..n {
        let [yi, xi] = ring[i];
        let [yj, xj] = ring[(i + n - 1) % n];
        if (yi > p.lat) != (yj > p.lat) && p.lon < (xj - xi) * (p.lat - yi) / (yj - yi) + xi {
            inside = !inside;
        }
    }
    inside
}

/// Advance a vehicle's track by one fix and return the warnings it raises,
/// or why the fix was skipped. `track` is the state before the fix (none for
/// the first fix); it is updated in place.
pub fn step(p: &HazmatParams, route: &Route, track: &mut Option<Track>, at: GeoPoint, time: i64) -> Result<Vec<Warning>, String> {
    if let Some(t) = track {
        if time <= t.time {
            return Err(format!("fix at {time} is not newer than the last one at {}", t.time));
        }
        let kmh = distance_m(GeoPoint::new(t.lat, t.lon), at) / ((time - t.time) as f64 / 3_600_000.0) / 1000.0;
        if kmh > p.max_speed_kmh {
            return Err(format!("a jump at {kmh:.0} km/h from the last fix (more than {} km/h)", p.max_speed_kmh));
        }
    }
    let mut t = track.take().unwrap_or(Track {
        time,
        lat: at.lat,
        lon: at.lon,
        anchor_lat: at.lat,
        anchor_lon: at.lon,
        anchor_time: time,
        ..Track::default()
    });
    let mut out = Vec::new();
    let warn = |rule: &str, severity, urgency, category, headline: String, description: String, extra: Vec<(String, String)>| {
        let mut parameters = vec![
            ("model".to_owned(), "hazmat".to_owned()),
            ("rule".to_owned(), rule.to_owned()),
            ("vehicle".to_owned(), route.sensor.clone()),
            ("plate".to_owned(), route.vehicle.clone()),
            ("cargo".to_owned(), route.cargo.clone()),
            ("position".to_owned(), format!("{:.5},{:.5}", at.lat, at.lon)),
        ];
        parameters.extend(extra);
        Warning {
            category,
            event: "危化品运输异常".into(),
            urgency,
            severity,
            certainty: Certainty::Observed,
            area: Area::circle(format!("危化品车辆 {} 周边 {} 公里", route.vehicle, p.radius_km), at, p.radius_km),
            headline,
            description,
            instruction: "请立即联系驾驶员和押运员核实，通知公安交管拦截引导，必要时疏散周边人员。".into(),
            parameters,
        }
    };

    // The corridor.
    let limit = route.width_m.map_or(p.corridor_m, |w| w / 2.0);
    let off = distance_to_line_m(at, &route.corridor);
    if off > limit {
        if !t.off_route {
            out.push(warn(
                "off-route",
                Severity::Severe,
                Urgency::Immediate,
                WarningCategory::Transport,
                format!("危化品车辆偏离核准路线：{}（{}）偏离 {off:.0} 米", route.vehicle, route.cargo),
                format!("车辆 {} 载运 {}，距核准路线 {off:.0} 米，超过允许的 {limit:.0} 米。", route.vehicle, route.cargo),
                vec![("distance_m".into(), format!("{off:.0}")), ("limit_m".into(), format!("{limit:.0}"))],
            ));
        }
        t.off_route = true;
    } else {
        t.off_route = false;
    }

    // Restricted zones.
    let zone = route.restricted.iter().find(|name| p.zones.get(*name).is_some_and(|ring| inside(at, ring))).cloned();
    if let Some(name) = &zone
        && t.zone.as_ref() != Some(name)
    {
        out.push(warn(
            "restricted-zone",
            Severity::Severe,
            Urgency::Immediate,
            WarningCategory::Cbrne,
            format!("危化品车辆驶入禁行区域：{} 进入{name}", route.vehicle),
            format!("车辆 {} 载运 {}，驶入禁行区域「{name}」。", route.vehicle, route.cargo),
            vec![("zone".into(), name.clone())],
        ));
    }
    t.zone = zone;

    // Stops.
    let anchor = GeoPoint::new(t.anchor_lat, t.anchor_lon);
    if distance_m(anchor, at) <= p.stop_radius_m {
        let minutes = (time - t.anchor_time) / 60_000;
        let allowed = route.stops.iter().any(|s| distance_m(GeoPoint::new(s.lat, s.lon), anchor) <= s.radius_m);
        if minutes >= p.stop_max_min && !allowed && !t.stop_warned {
            out.push(warn(
                "stop",
                Severity::Moderate,
                Urgency::Expected,
                WarningCategory::Transport,
                format!("危化品车辆异常停留：{} 已停留 {minutes} 分钟", route.vehicle),
                format!(
                    "车辆 {} 载运 {}，在非指定停靠点停留 {minutes} 分钟（上限 {} 分钟）。",
                    route.vehicle, route.cargo, p.stop_max_min
                ),
                vec![("minutes".into(), minutes.to_string())],
            ));
            t.stop_warned = true;
        }
    } else {
        t.anchor_lat = at.lat;
        t.anchor_lon = at.lon;
        t.anchor_time = time;
        t.stop_warned = false;
    }
    t.time = time;
    t.lat = at.lat;
    t.lon = at.lon;
    *track = Some(t);
    Ok(out)
}

/// Evaluate one `iot.reading.vehicle-gps` event: read the route and the track,
/// step, and store the track.
pub fn evaluate(event: &Event) -> Result<Vec<Warning>, Error> {
    let p = HazmatParams::from_config()?;
    let fix: Reading = match event.payload() {
        Ok(f) => f,
        Err(e) => {
            warn!("skipped event {}: {e}", event.id);
            return Ok(Vec::new());
        }
    };
    let (at, time) = match p.position(&fix, event.time) {
        Ok(x) => x,
        Err(why) => {
            warn!("skipped fix of {}: {why}", fix.sensor);
            return Ok(Vec::new());
        }
    };
    let found = data::query(ROUTES, &[data::eq("sensor", fix.sensor.as_str())], 0, 1)?;
    let route: Route = match found.first() {
        None => {
            warn!("skipped fix of {}: no approved route in `{ROUTES}`", fix.sensor);
            return Ok(Vec::new());
        }
        Some(r) => match r.value_json() {
            Ok(route) => route,
            Err(e) => {
                warn!("skipped fix of {}: its route record is malformed: {e}", fix.sensor);
                return Ok(Vec::new());
            }
        },
    };
    if route.corridor.len() < 2 {
        warn!("skipped fix of {}: its route has fewer than two corridor points", fix.sensor);
        return Ok(Vec::new());
    }
    let key = format!("track:{}", fix.sensor);
    let mut track: Option<Track> = match data::get(TRACKS, &key)? {
        Some(r) => r.value_json().ok(),
        None => None,
    };
    match step(&p, &route, &mut track, at, time) {
        Ok(warnings) => {
            data::put(TRACKS, &key, &track)?;
            Ok(warnings)
        }
        Err(why) => {
            warn!("skipped fix of {}: {why}", fix.sensor);
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn params() -> HazmatParams {
        HazmatParams {
            unit: "deg".into(),
            corridor_m: 200.0,
            stop_radius_m: 50.0,
            stop_max_min: 15,
            max_speed_kmh: 160.0,
            city_box: [31.2, 118.3, 32.7, 119.3],
            radius_km: 1.0,
            zones: [("老城区".to_owned(), vec![[32.01, 118.74], [32.01, 118.76], [32.03, 118.76], [32.03, 118.74]])].into(),
        }
    }

    /// East along latitude 32.0 from 118.70 to 118.80, with a zone north of it
    /// and a depot at its start.
    pub(crate) fn route() -> Route {
        Route {
            vehicle: "苏A·D1234危".into(),
            sensor: "gps-1".into(),
            cargo: "液氯".into(),
            corridor: vec![[118.70, 32.0], [118.80, 32.0]],
            width_m: None,
            stops: vec![Stop { name: "化工园区停车场".into(), lat: 32.0, lon: 118.70, radius_m: 300.0 }],
            restricted: vec!["老城区".into()],
        }
    }

    const MIN: i64 = 60_000;

    #[test]
    fn geometry() {
        // 0.001° of latitude is about 111 m.
        let d = distance_to_line_m(GeoPoint::new(32.001, 118.75), &[[118.70, 32.0], [118.80, 32.0]]);
        assert!((d - 111.2).abs() < 0.5, "{d}");
        // Beyond the end, the distance is to the end point.
        let d = distance_to_line_m(GeoPoint::new(32.0, 118.81), &[[118.70, 32.0], [118.80, 32.0]]);
        assert!((d - 943.0).abs() < 5.0, "{d}");
        let ring = params().zones["老城区"].clone();
        assert!(inside(GeoPoint::new(32.02, 118.75), &ring));
        assert!(!inside(GeoPoint::new(32.02, 118.77), &ring));
        assert!(!inside(GeoPoint::new(32.0, 118.75), &ring));
    }

    #[test]
    fn leaving_the_corridor_warns_once_until_it_comes_back() {
        let (p, r) = (params(), route());
        let mut t = None;
        assert!(step(&p, &r, &mut t, GeoPoint::new(32.0, 118.72), 0).unwrap().is_empty());
        // 330 m north of the road.
        let w = step(&p, &r, &mut t, GeoPoint::new(32.003, 118.73), MIN).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].severity, w[0].category), (Severity::Severe, WarningCategory::Transport));
        assert!(w[0].headline.contains("偏离"), "{}", w[0].headline);
        assert!(step(&p, &r, &mut t, GeoPoint::new(32.004, 118.735), 2 * MIN).unwrap().is_empty(), "still off: no repeat");
        assert!(step(&p, &r, &mut t, GeoPoint::new(32.0, 118.74), 3 * MIN).unwrap().is_empty());
        assert_eq!(step(&p, &r, &mut t, GeoPoint::new(32.003, 118.745), 4 * MIN).unwrap().len(), 1, "off again");
    }

    #[test]
    fn entering_a_restricted_zone_warns() {
        let (p, mut r) = (params(), route());
        r.width_m = Some(10_000.0);
        let mut t = None;
        step(&p, &r, &mut t, GeoPoint::new(32.0, 118.75), 0).unwrap();
        let w = step(&p, &r, &mut t, GeoPoint::new(32.015, 118.75), 2 * MIN).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].category, WarningCategory::Cbrne);
        assert!(w[0].parameters.contains(&("zone".into(), "老城区".into())));
        assert!(step(&p, &r, &mut t, GeoPoint::new(32.02, 118.75), 3 * MIN).unwrap().is_empty());
    }

    #[test]
    fn stopping_too_long_outside_a_designated_stop_warns_once() {
        let (p, r) = (params(), route());
        let mut t = None;
        let here = GeoPoint::new(32.0, 118.76);
        for m in 0..15 {
            assert!(step(&p, &r, &mut t, here, m * MIN).unwrap().is_empty(), "minute {m}");
        }
        let w = step(&p, &r, &mut t, GeoPoint::new(32.0001, 118.7601), 15 * MIN).unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].headline.contains("15 分钟"), "{}", w[0].headline);
        assert!(step(&p, &r, &mut t, here, 20 * MIN).unwrap().is_empty());
        // At the depot, waiting is allowed.
        let mut t = None;
        for m in 0..40 {
            assert!(step(&p, &r, &mut t, GeoPoint::new(32.0, 118.701), m * MIN).unwrap().is_empty());
        }
    }

    #[test]
    fn bad_fixes_are_refused_with_a_reason() {
        let p = params();
        let fix = |lat: Option<f64>, lon: Option<f64>, unit: &str| Reading { sensor: "gps-1".into(), value: 0.0, unit: unit.into(), time: Some(0), lat, lon };
        assert!(p.position(&fix(Some(32.0), Some(118.7), "deg"), 0).is_ok());
        assert!(p.position(&fix(None, Some(118.7), "deg"), 0).unwrap_err().contains("no position"));
        // In the East China Sea.
        assert!(p.position(&fix(Some(30.5), Some(123.5), "deg"), 0).unwrap_err().contains("outside the city"));
        assert!(p.position(&fix(Some(32.0), Some(118.7), "m"), 0).unwrap_err().contains("unit"));
        let r = route();
        let mut t = None;
        step(&p, &r, &mut t, GeoPoint::new(32.0, 118.72), 10 * MIN).unwrap();
        let before = t.clone();
        assert!(step(&p, &r, &mut t, GeoPoint::new(32.0, 118.73), 5 * MIN).unwrap_err().contains("not newer"));
        assert_eq!(t, before, "a refused fix leaves the track alone");
        // 30 km in a minute.
        assert!(step(&p, &r, &mut t, GeoPoint::new(32.27, 118.72), 11 * MIN).unwrap_err().contains("km/h"));
        assert_eq!(t, before);
    }
}
