//! `yingji` (应急管理): early warning on water levels, combustible gas and
//! hazardous-materials vehicles, and the response to warnings.
//!
//! Combustible gas (`iot.reading.gas`) is assessed by [`gas`], hazmat vehicle
//! GPS tracks (`iot.reading.vehicle-gps`) by [`hazmat`]; warnings (`warning.*`)
//! are answered by [`respond`] (emergency cases, on-duty leaders, flood
//! fan-out to communities). What follows is the water-level model.
//!
//! Each `iot.reading.water-level` event carries one reading
//! `{"sensor": "...", "value": <metres>, "unit": "m", "time": <ms>}` (the event's
//! time is used when `time` is absent). The model raises CAP warnings for:
//!
//! * **level**: above `warn-level` a *Moderate* warning (警戒), above `danger-level`
//!   a *Severe* one (危险), both *Observed* and *Immediate*;
//! * **rate of rise**: the rise since the oldest reading within `rise-window-min`,
//!   per hour, above `rise-m-per-h` gives a *Likely*, *Expected* warning even below
//!   the warning level, because a fast rise reaches it soon.
//!
//! Readings in another unit, non-finite or outside `min-plausible..=max-plausible`
//! are skipped with a logged reason and never raise a warning. A sensor that
//! stays above a level, or keeps rising, is warned of again only after
//! `rewarn-min` minutes or when its warning grows more severe (this holds for
//! the gas model too). Every parameter is in the `[config]` table of
//! `plugin.toml`.

use yiwang_sdk::prelude::*;

pub mod gas;
pub mod hazmat;
pub mod respond;

/// One reading, as the host publishes it on `iot.reading.<kind>`.
pub use yiwang_sdk::events::Reading;

/// The model's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub unit: String,
    pub warn_level: f64,
    pub danger_level: f64,
    pub rise_m_per_h: f64,
    pub rise_window_min: i64,
    pub min_plausible: f64,
    pub max_plausible: f64,
    pub radius_km: f64,
}

impl Params {
    /// Read and check the parameters from the plugin's config.
    pub fn from_config() -> Result<Params, Error> {
        let p = Params {
            unit: config::get("unit").unwrap_or_else(|| "m".into()),
            warn_level: config::get_parsed("warn-level")?,
            danger_level: config::get_parsed("danger-level")?,
            rise_m_per_h: config::get_parsed("rise-m-per-h")?,
            rise_window_min: config::get_parsed("rise-window-min")?,
            min_plausible: config::get_parsed("min-plausible")?,
            max_plausible: config::get_parsed("max-plausible")?,
            radius_km: config::get_parsed("radius-km")?,
        };
        p.check()?;
        Ok(p)
    }

    // Negated comparisons on purpose: a NaN parameter fails every check.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    fn check(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Invalid(m.into()));
        if !(self.warn_level < self.danger_level) {
            return bad("config: warn-level must be below danger-level");
        }
        if !(self.rise_m_per_h > 0.0 && self.rise_window_min > 0) {
            return bad("config: rise-m-per-h and rise-window-min must be positive");
        }
        if !(self.min_plausible < self.max_plausible) {
            return bad("config: min-plausible must be below max-plausible");
        }
        if !(self.radius_km > 0.0) {
            return bad("config: radius-km must be positive");
        }
        Ok(())
    }

    /// Why a reading is not usable, if it is not.
    pub fn reject(&self, r: &Reading) -> Option<String> {
        if r.unit != self.unit {
            return Some(format!("unit `{}` is not `{}`", r.unit, self.unit));
        }
        if !r.value.is_finite() || r.value < self.min_plausible || r.value > self.max_plausible {
            return Some(format!(
                "value {} is outside the plausible range {}..={}",
                r.value, self.min_plausible, self.max_plausible
            ));
        }
        None
    }

    /// The level warning for `value`, if any: (severity, label).
    pub fn level(&self, value: f64) -> Option<(Severity, &'static str)> {
        if value > self.danger_level {
            Some((Severity::Severe, "危险水位"))
        } else if value > self.warn_level {
            Some((Severity::Moderate, "警戒水位"))
        } else {
            None
        }
    }

    /// The rise in metres per hour from the oldest of `earlier` (time, value) to
    /// `(time, value)`; `None` without an earlier reading at least a minute older.
    pub fn rise_rate(&self, earlier: &[(i64, f64)], time: i64, value: f64) -> Option<f64> {
        let (t0, v0) = earlier
            .iter()
            .filter(|(t, v)| *t <= time - 60_000 && v.is_finite())
            .min_by_key(|(t, _)| *t)?;
        let hours = (time - t0) as f64 / 3_600_000.0;
        Some((value - v0) / hours)
    }
}

fn warning(p: &Params, r: &Reading, at: Option<GeoPoint>, severity: Severity, urgency: Urgency, certainty: Certainty, headline: String, description: String) -> Option<Warning> {
    let center = at?;
    Some(Warning {
        category: WarningCategory::Met,
        event: "内涝/河道水位".into(),
        urgency,
        severity,
        certainty,
        area: Area::circle(format!("水位站 {} 周边 {} 公里", r.sensor, p.radius_km), center, p.radius_km),
        headline,
        description,
        instruction: "请立即组织巡查和排涝，低洼路段车辆行人绕行，做好人员转移准备。".into(),
        parameters: vec![
            ("model".into(), "water-level".into()),
            ("sensor".into(), r.sensor.clone()),
            ("value".into(), format!("{:.2}", r.value)),
            ("unit".into(), r.unit.clone()),
        ],
    })
}

/// The warnings one reading raises, given the earlier readings of its sensor.
pub fn assess(p: &Params, r: &Reading, time: i64, at: Option<GeoPoint>, earlier: &[(i64, f64)]) -> Vec<Warning> {
    let mut out = Vec::new();
    if let Some((severity, label)) = p.level(r.value) {
        let limit = if severity == Severity::Severe { p.danger_level } else { p.warn_level };
        out.extend(warning(
            p,
            r,
            at,
            severity,
            Urgency::Immediate,
            Certainty::Observed,
            format!("{label}预警：{} 水位 {:.2} {}", r.sensor, r.value, r.unit),
            format!("水位站 {} 测得 {:.2} {}，超过{label} {limit} {}。", r.sensor, r.value, r.unit, r.unit),
        ));
    }
    if let Some(rate) = p.rise_rate(earlier, time, r.value)
        && rate > p.rise_m_per_h
    {
        out.extend(warning(
            p,
            r,
            at,
            Severity::Moderate,
            Urgency::Expected,
            Certainty::Likely,
            format!("水位快速上涨：{} 每小时上涨 {rate:.2} {}", r.sensor, r.unit),
            format!(
                "水位站 {} 在 {} 分钟内以每小时 {rate:.2} {} 的速度上涨（阈值 {}），当前 {:.2} {}。",
                r.sensor, p.rise_window_min, r.unit, p.rise_m_per_h, r.value, r.unit
            ),
        ));
    }
    out
}

struct Yingji;

impl Plugin for Yingji {
    fn init() -> Result<(), Error> {
        Params::from_config()?;
        gas::GasParams::from_config()?;
        hazmat::HazmatParams::from_config()?;
        respond::RespondParams::from_config().map(|_| ())
    }

    fn handle(event: Event) -> Result<(), Error> {
        if event.topic.starts_with("warning-cancelled.") {
            return respond::cancelled(&event);
        }
        match event.topic.starts_with("warning.") {
            true => respond::handle(&event),
            false => Ok(()),
        }
    }

    fn evaluate(event: Event) -> Result<Vec<Warning>, Error> {
        if event.topic.starts_with("warning.") {
            return Ok(Vec::new());
        }
        if event.topic == "iot.reading.vehicle-gps" {
            return hazmat::evaluate(&event);
        }
        let gas = event.topic == "iot.reading.gas";
        let reading: Reading = match event.payload() {
            Ok(r) => r,
            Err(e) => {
                warn!("skipped event {}: {e}", event.id);
                return Ok(Vec::new());
            }
        };
        let rejected = match gas {
            true => gas::GasParams::from_config()?.reject(&reading),
            false => Params::from_config()?.reject(&reading),
        };
        if let Some(why) = rejected {
            warn!("skipped reading of {}: {why}", reading.sensor);
            return Ok(Vec::new());
        }
        let Some(at) = event.location else {
            warn!("skipped reading of {}: the event has no location", reading.sensor);
            return Ok(Vec::new());
        };
        let time = reading.time.unwrap_or(event.time);
        let warnings = if gas {
            let p = gas::GasParams::from_config()?;
            let earlier = earlier_readings(&reading.sensor, time - p.window_min * 60_000, time)?;
            gas::assess(&p, &reading, time, at, &earlier)
        } else {
            let p = Params::from_config()?;
            let earlier = earlier_readings(&reading.sensor, time - p.rise_window_min * 60_000, time)?;
            assess(&p, &reading, time, Some(at), &earlier)
        };
        news(&reading.sensor, time, warnings)
    }
}

/// What was last raised for a sensor and rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
struct Raised {
    time: i64,
    rank: u8,
}

/// The warnings that are news: a sensor that stays above a level (or keeps
/// rising) is warned of again only after `rewarn-min` minutes, or sooner when
/// the warning grows more severe. What was raised when is kept in the
/// `yingji-tracks` data set under `raised:<sensor>:<rule>`, where the rule is
/// the level (an observed warning) or the rate of rise (a likely one).
fn news(sensor: &str, time: i64, warnings: Vec<Warning>) -> Result<Vec<Warning>, Error> {
    let window: i64 = config::get_parsed("rewarn-min")?;
    let mut out = Vec::with_capacity(warnings.len());
    for w in warnings {
        let rule = if w.certainty == Certainty::Observed { "level" } else { "rise" };
        let key = format!("raised:{sensor}:{rule}");
        let rank = match w.severity {
            Severity::Minor => 1,
            Severity::Moderate => 2,
            Severity::Severe => 3,
            Severity::Extreme => 4,
            Severity::Unknown => 0,
        };
        let last: Option<Raised> = data::get(hazmat::TRACKS, &key)?.and_then(|r| r.value_json().ok());
        if let Some(last) = last
            && (time - last.time).abs() < window * 60_000
            && rank <= last.rank
        {
            debug!("{sensor}: {rule} warning already raised {} s ago", (time - last.time) / 1000);
            continue;
        }
        data::put(hazmat::TRACKS, &key, &Raised { time, rank })?;
        out.push(w);
    }
    Ok(out)
}

/// The sensor's readings in `[from, to)`, as (time, value).
fn earlier_readings(sensor: &str, from: i64, to: i64) -> Result<Vec<(i64, f64)>, Error> {
    Ok(data::readings(sensor, from, to)?.into_iter().map(|r| (r.time, r.value)).collect())
}

export_plugin!(Yingji);

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            unit: "m".into(),
            warn_level: 3.0,
            danger_level: 4.0,
            rise_m_per_h: 0.5,
            rise_window_min: 60,
            min_plausible: -5.0,
            max_plausible: 60.0,
            radius_km: 1.0,
        }
    }

    fn reading(value: f64, unit: &str) -> Reading {
        Reading { sensor: "wl-秦淮-01".into(), value, unit: unit.into(), time: None, lat: None, lon: None }
    }

    const AT: Option<GeoPoint> = Some(GeoPoint { lat: 32.04, lon: 118.78 });
    const HOUR: i64 = 3_600_000;

    #[test]
    fn levels_map_to_severity() {
        let p = params();
        let cases = [(2.9, None), (3.0, None), (3.5, Some(Severity::Moderate)), (4.2, Some(Severity::Severe))];
        for (value, expected) in cases {
            let w = assess(&p, &reading(value, "m"), 10 * HOUR, AT, &[]);
            assert_eq!(w.first().map(|w| w.severity), expected, "{value} m");
        }
    }

    #[test]
    fn a_fast_rise_warns_below_the_level() {
        let p = params();
        // 1.0 m to 2.0 m in 30 minutes is 2 m/h.
        let w = assess(&p, &reading(2.0, "m"), 10 * HOUR, AT, &[(10 * HOUR - HOUR / 2, 1.0)]);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].certainty, Certainty::Likely);
        assert!(w[0].headline.contains("2.00"), "{}", w[0].headline);
        // A slow rise does not.
        assert!(assess(&p, &reading(1.2, "m"), 10 * HOUR, AT, &[(9 * HOUR, 1.0)]).is_empty());
        // Readings less than a minute old give no rate.
        assert!(p.rise_rate(&[(10 * HOUR - 1_000, 0.0)], 10 * HOUR, 2.0).is_none());
    }

    #[test]
    fn bad_readings_are_rejected_not_warned() {
        let p = params();
        assert!(p.reject(&reading(3.5, "cm")).unwrap().contains("unit"));
        assert!(p.reject(&reading(f64::NAN, "m")).is_some());
        assert!(p.reject(&reading(99.0, "m")).unwrap().contains("plausible"));
        assert!(p.reject(&reading(3.5, "m")).is_none());
        // No location, no area: nothing is raised.
        assert!(assess(&p, &reading(4.5, "m"), 0, None, &[]).is_empty());
    }

    #[test]
    fn config_is_checked() {
        let mut p = params();
        p.warn_level = 5.0;
        assert!(p.check().is_err());
    }

    /// Through the plugin's own entry points, against the SDK's mock host with
    /// the real `plugin.toml` (its grants and `[config]`).
    mod with_mock_host {
        use super::*;
        use yiwang_sdk::mock::MockHost;
        use yiwang_sdk::serde_json::{self, Value};

        const T: i64 = 1_767_225_600_000;

        fn event(payload: yiwang_sdk::serde_json::Value) -> Event {
            Event::test("iot.reading.water-level", payload).with_time(T).with_location(AT.unwrap())
        }

        #[test]
        fn a_reading_above_the_danger_level_raises_a_severe_warning() {
            let host = MockHost::new().manifest("plugin.toml").unwrap().sensor("wl-1", "water-level", "m", []).install();
            Yingji::init().unwrap();
            let warnings = Yingji::evaluate(event(json!({ "sensor": "wl-1", "value": 4.3, "unit": "m" }))).unwrap();
            assert_eq!(warnings.len(), 1);
            assert_eq!(warnings[0].severity, Severity::Severe);
            assert!(host.denials().is_empty(), "{:?}", host.denials());
        }

        #[test]
        fn the_rate_of_rise_reads_the_sensors_earlier_readings() {
            let host = MockHost::new()
                .manifest("plugin.toml")
                .unwrap()
                .sensor("wl-1", "water-level", "m", [(T - 30 * 60_000, 1.0), (T - 10 * 60_000, 1.6)])
                .install();
            let warnings = Yingji::evaluate(event(json!({ "sensor": "wl-1", "value": 2.0, "unit": "m" }))).unwrap();
            assert_eq!(warnings.len(), 1, "a rise of 2 m/h below the warning level");
            assert_eq!(warnings[0].certainty, Certainty::Likely);
            assert!(host.denials().is_empty());
        }

        #[test]
        fn malformed_readings_are_skipped_with_a_logged_reason() {
            let host = MockHost::new().manifest("plugin.toml").unwrap().sensor("wl-1", "water-level", "m", []).install();
            for payload in [
                json!({ "sensor": "wl-1", "unit": "m" }),
                json!({ "sensor": "wl-1", "value": 380.0, "unit": "cm" }),
                json!({ "sensor": "wl-1", "value": 99.0, "unit": "m" }),
            ] {
                assert!(Yingji::evaluate(event(payload)).unwrap().is_empty());
            }
            let no_place = Event::test("iot.reading.water-level", json!({ "sensor": "wl-1", "value": 4.5, "unit": "m" }));
            assert!(Yingji::evaluate(no_place).unwrap().is_empty());
            assert_eq!(host.logs().len(), 4, "{:?}", host.logs());
        }

        #[test]
        fn a_gas_reading_at_the_high_alarm_raises_a_severe_warning() {
            let host = MockHost::new().manifest("plugin.toml").unwrap().sensor("gas-1", "gas", "%LEL", []).install();
            let event = Event::test("iot.reading.gas", json!({ "sensor": "gas-1", "value": 31.0, "unit": "%LEL" }))
                .with_time(T)
                .with_location(AT.unwrap());
            let warnings = Yingji::evaluate(event).unwrap();
            assert_eq!(warnings.len(), 1);
            assert_eq!((warnings[0].severity, warnings[0].category), (Severity::Severe, WarningCategory::Safety));
            // Centimetres of water on the gas topic are not a gas reading.
            let wrong = Event::test("iot.reading.gas", json!({ "sensor": "gas-1", "value": 31.0, "unit": "m" })).with_location(AT.unwrap());
            assert!(Yingji::evaluate(wrong).unwrap().is_empty());
            assert!(host.denials().is_empty(), "{:?}", host.denials());
        }

        fn route_record() -> yiwang_sdk::serde_json::Value {
            json!({
                "vehicle": "苏A·D1234危", "sensor": "gps-1", "cargo": "液氯",
                "corridor": [[118.70, 32.0], [118.80, 32.0]],
                "stops": [{ "name": "化工园区停车场", "lat": 32.0, "lon": 118.70, "radius_m": 300.0 }],
                "restricted": ["老城区"],
            })
        }

        fn fix(minute: i64, lat: f64, lon: f64) -> Event {
            Event::test("iot.reading.vehicle-gps", json!({ "sensor": "gps-1", "value": 90.0, "unit": "deg", "time": T + minute * 60_000, "lat": lat, "lon": lon }))
                .with_time(T + minute * 60_000)
                .with_location(GeoPoint::new(lat, lon))
        }

        #[test]
        fn a_hazmat_vehicle_leaving_its_corridor_is_warned_of_once_and_its_track_is_kept() {
            let host = MockHost::new().manifest("plugin.toml").unwrap().data("hazmat-routes", "苏A·D1234危", route_record()).install();
            assert!(Yingji::evaluate(fix(0, 32.0, 118.72)).unwrap().is_empty());
            let w = Yingji::evaluate(fix(1, 32.003, 118.73)).unwrap();
            assert_eq!(w.len(), 1);
            assert!(w[0].parameters.contains(&("rule".into(), "off-route".into())));
            assert!(Yingji::evaluate(fix(2, 32.004, 118.735)).unwrap().is_empty());
            let track = host.record("yingji-tracks", "track:gps-1").expect("the track is stored");
            assert_eq!(track["off_route"], true);
            assert!(host.denials().is_empty(), "{:?}", host.denials());
        }

        #[test]
        fn bad_gps_fixes_are_skipped_with_a_reason_and_raise_nothing() {
            let host = MockHost::new().manifest("plugin.toml").unwrap().data("hazmat-routes", "苏A·D1234危", route_record()).install();
            Yingji::evaluate(fix(10, 32.0, 118.72)).unwrap();
            let skipped = [
                // In the East China Sea.
                fix(11, 30.8, 123.9),
                // Older than the last fix, and off the route.
                fix(5, 32.01, 118.72),
                // No position at all.
                Event::test("iot.reading.vehicle-gps", json!({ "sensor": "gps-1", "value": 0.0, "unit": "deg" })).with_time(T + 12 * 60_000),
                // A vehicle with no approved route.
                Event::test("iot.reading.vehicle-gps", json!({ "sensor": "gps-9", "value": 0.0, "unit": "deg", "lat": 32.0, "lon": 118.7 })),
                // Not JSON.
                Event { payload: "{".into(), ..fix(13, 32.0, 118.72) },
            ];
            let n = skipped.len();
            for e in skipped {
                assert!(Yingji::evaluate(e).unwrap().is_empty());
            }
            assert_eq!(host.logs().len(), n, "{:?}", host.logs());
            assert!(host.logs().iter().any(|l| l.message.contains("outside the city")));
            assert!(host.logs().iter().any(|l| l.message.contains("not newer")));
        }

        fn flood_warning(severity: &str) -> Event {
            Event::test(
                "warning.met",
                json!({
                    "warning": "w-1", "source": "plugin:yingji",
                    "info": {
                        "category": "met", "event": "内涝/河道水位", "severity": severity,
                        "urgency": "Immediate", "certainty": "Observed",
                        "area": { "description": "水位站 wl-1 周边 1 公里", "shapes": [{ "circle": { "lat": 32.04, "lon": 118.78, "radius_km": 1.0 } }] },
                        "headline": "危险水位预警：wl-1 水位 4.30 m", "description": "水位站 wl-1 测得 4.30 m。",
                        "instruction": "低洼路段绕行。",
                        "parameters": [["model", "water-level"], ["sensor", "wl-1"], ["value", "4.30"]],
                    },
                    "communities": ["320102001001", "320102001002"], "streets": ["320102001"],
                }),
            )
            .with_time(T)
            .with_location(AT.unwrap())
        }

        #[test]
        fn a_flood_warning_opens_a_case_tells_the_duty_leaders_and_every_community() {
            let host = MockHost::new().manifest("plugin.toml").unwrap().install();
            Yingji::handle(flood_warning("severe")).unwrap();
            let opened = host.cases_opened();
            assert_eq!(opened.len(), 1);
            assert_eq!(opened[0].draft.category_code, "020401");
            assert_eq!(opened[0].draft.channel, SourceChannel::Warning);
            let routes = host.route_suggestions();
            assert_eq!(routes[0].suggestion.level, yiwang_sdk::cases::CommandLevel::District);
            let to: Vec<Recipient> = host.messages_sent().into_iter().map(|m| m.to).collect();
            assert!(to.contains(&Recipient::Role(("320102001".into(), "leader".into()))));
            assert!(to.contains(&Recipient::Role(("320100".into(), "leader".into()))));
            assert!(to.contains(&Recipient::OrgUnit("320102001001".into())));
            assert!(to.contains(&Recipient::OrgUnit("320102001002".into())));
            assert_eq!(host.published()[0].topic, "yingji.response");
            assert!(host.notes()[0].text.contains("2 个社区"), "{:?}", host.notes());
            // The same sensor again within the hour: not answered twice ...
            Yingji::handle(flood_warning("severe").with_time(T + 10 * 60_000)).unwrap();
            assert_eq!(host.cases_opened().len(), 1);
            // ... unless it grows more severe.
            Yingji::handle(flood_warning("extreme").with_time(T + 20 * 60_000)).unwrap();
            assert_eq!(host.cases_opened().len(), 2);
            assert!(host.denials().is_empty(), "{:?}", host.denials());
        }

        /// An update of an answered warning is noted on its case, whatever its
        /// severity, and opens none; a cancel is noted and closes nothing.
        #[test]
        fn an_update_or_cancel_of_an_answered_warning_is_noted_on_its_case() {
            let host = MockHost::new().manifest("plugin.toml").unwrap().install();
            Yingji::handle(flood_warning("severe")).unwrap();
            let case = host.cases_opened()[0].id.clone();
            let told = host.messages_sent().len();
            let mut update = flood_warning("extreme").with_time(T + 5 * 60_000);
            let mut payload: Value = serde_json::from_str(&update.payload).unwrap();
            payload["warning"] = json!("w-2");
            payload["msg_type"] = json!("Update");
            payload["references"] = json!(["w-1"]);
            payload["info"]["headline"] = json!("危险水位预警：wl-1 水位 4.80 m，仍在上涨");
            update.payload = payload.to_string();
            Yingji::handle(update).unwrap();
            assert_eq!(host.cases_opened().len(), 1, "an update opens no second case");
            assert_eq!(host.messages_sent().len(), told, "nobody is told twice");
            let notes = host.notes();
            let last = notes.last().unwrap();
            assert_eq!(last.case_id, case);
            assert!(last.text.contains("预警更新 w-2") && last.text.contains("4.80 m"), "{notes:?}");

            let cancel = Event::test(
                "warning-cancelled.met",
                json!({
                    "category": "met", "communities": [], "reason": "水位已回落至警戒线以下",
                    "references": ["w-1", "w-2"], "source": "plugin:yingji", "streets": [], "warning": "w-3",
                }),
            );
            Yingji::handle(cancel).unwrap();
            let notes = host.notes();
            let last = notes.last().unwrap();
            assert_eq!(last.case_id, case);
            assert!(last.text.contains("已由 plugin:yingji 解除") && last.text.contains("水位已回落"), "{notes:?}");
            assert!(last.text.contains("不自动结案"), "{notes:?}");
            assert_eq!(host.cases_opened().len(), 1);
            // A cancel of a warning never answered changes nothing.
            let other = Event::test(
                "warning-cancelled.met",
                json!({
                    "category": "met", "communities": [], "reason": "误报", "references": ["w-9"],
                    "source": "plugin:other", "streets": [], "warning": "w-10",
                }),
            );
            Yingji::handle(other).unwrap();
            assert_eq!(host.notes().len(), notes.len());
            assert!(host.denials().is_empty(), "{:?}", host.denials());
        }

        #[test]
        fn minor_and_malformed_warnings_are_not_answered() {
            let host = MockHost::new().manifest("plugin.toml").unwrap().install();
            Yingji::handle(flood_warning("minor")).unwrap();
            Yingji::handle(Event::test("warning.met", json!({ "warning": "w-2" }))).unwrap();
            // A hazmat warning is not fanned out to communities.
            let mut hazmat = flood_warning("severe");
            hazmat.payload = hazmat.payload.replace("water-level", "hazmat");
            Yingji::handle(hazmat).unwrap();
            assert_eq!(host.cases_opened().len(), 1);
            assert_eq!(host.cases_opened()[0].draft.category_code, "020403");
            assert!(host.messages_sent().iter().all(|m| !matches!(m.to, Recipient::OrgUnit(_))));
        }

        #[test]
        fn a_sensor_that_stays_high_is_warned_of_again_only_later_or_when_worse() {
            let host = MockHost::new().manifest("plugin.toml").unwrap().sensor("wl-1", "water-level", "m", []).install();
            let at = |minute: i64, value: f64| {
                event(json!({ "sensor": "wl-1", "value": value, "unit": "m", "time": T + minute * 60_000 }))
            };
            assert_eq!(Yingji::evaluate(at(0, 3.5)).unwrap().len(), 1);
            assert!(Yingji::evaluate(at(5, 3.6)).unwrap().is_empty(), "the same level within rewarn-min");
            let worse = Yingji::evaluate(at(10, 4.2)).unwrap();
            assert_eq!(worse[0].severity, Severity::Severe, "more severe: raised at once");
            assert!(Yingji::evaluate(at(20, 4.3)).unwrap().is_empty());
            assert_eq!(Yingji::evaluate(at(41, 4.3)).unwrap().len(), 1, "again after 30 minutes");
            assert!(host.record("yingji-tracks", "raised:wl-1:level").is_some());
        }

        #[test]
        fn a_broken_configuration_refuses_the_load() {
            let _host = MockHost::new().manifest("plugin.toml").unwrap().config("danger-level", "2.0").install();
            assert!(matches!(Yingji::init(), Err(Error::Invalid(_))));
        }
    }
}
