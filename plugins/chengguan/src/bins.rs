//! The bin fill-level model on `iot.reading.bin-fill` (see the crate docs for the
//! rules and formulas). Its state per bin is the record `bin/<sensor>` of
//! `chengguan-hotspots`.

use yiwang_sdk::events::Reading;
use yiwang_sdk::prelude::*;

use crate::calendar::HOUR_MS;
use crate::{CityBox, STATE_DATASET, config_text};

/// Minutes in a week: the longest window or clock skew the model accepts.
const WEEK_MIN: i64 = 7 * 24 * 60;
/// The latest reading time accepted, as in ingest: before the year 10000.
const MAX_TIME: i64 = 253_402_300_799_999;

/// The bin model's parameters (`bin-*` keys of `[config]`).
#[derive(Debug, Clone, PartialEq)]
pub struct BinParams {
    pub unit: String,
    pub tolerance_pct: f64,
    pub full_pct: f64,
    pub rearm_pct: f64,
    pub window_min: i64,
    pub min_points: usize,
    pub min_span_min: i64,
    pub empty_drop_pct: f64,
    pub predict_hours: f64,
    pub radius_km: f64,
    pub max_ahead_min: i64,
}

impl BinParams {
    /// Read and check the parameters from the plugin's config.
    pub fn from_config() -> Result<BinParams, Error> {
        let p = BinParams {
            unit: config_text("bin-unit")?,
            tolerance_pct: config::get_parsed("bin-tolerance-pct")?,
            full_pct: config::get_parsed("bin-full-pct")?,
            rearm_pct: config::get_parsed("bin-rearm-pct")?,
            window_min: config::get_parsed("bin-window-min")?,
            min_points: config::get_parsed("bin-min-points")?,
            min_span_min: config::get_parsed("bin-min-span-min")?,
            empty_drop_pct: config::get_parsed("bin-empty-drop-pct")?,
            predict_hours: config::get_parsed("bin-predict-hours")?,
            radius_km: config::get_parsed("bin-radius-km")?,
            max_ahead_min: config::get_parsed("bin-max-ahead-min")?,
        };
        p.check()?;
        Ok(p)
    }

    pub fn check(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Invalid(format!("config: {m}")));
        let finite = [
            self.tolerance_pct,
            self.full_pct,
            self.rearm_pct,
            self.empty_drop_pct,
            self.predict_hours,
            self.radius_km,
        ];
        if !finite.iter().all(|v| v.is_finite()) {
            return bad("bin-* numbers must be finite");
        }
        if !(0.0 < self.rearm_pct && self.rearm_pct < self.full_pct && self.full_pct <= 100.0) {
            return bad(
                "bin-rearm-pct must be above 0 and below bin-full-pct, which is at most 100",
            );
        }
        if !(0.0..=20.0).contains(&self.tolerance_pct) {
            return bad("bin-tolerance-pct must be 0..=20");
        }
        if !(self.window_min > 0 && self.min_span_min > 0 && self.min_span_min <= self.window_min) {
            return bad(
                "bin-window-min and bin-min-span-min must be positive, the span at most the window",
            );
        }
        if !(0..=WEEK_MIN).contains(&self.max_ahead_min) || self.window_min > WEEK_MIN {
            return bad("bin-max-ahead-min and bin-window-min must be 0..=10080 (a week)");
        }
        if self.min_points < 2 {
            return bad("bin-min-points must be at least 2");
        }
        if !(self.empty_drop_pct > 0.0 && self.predict_hours > 0.0 && self.radius_km > 0.0) {
            return bad("bin-empty-drop-pct, bin-predict-hours and bin-radius-km must be positive");
        }
        Ok(())
    }

    /// Whether a fill value is plausible: finite and within `0..=100` give or take
    /// the tolerance.
    pub fn plausible(&self, value: f64) -> bool {
        value.is_finite() && (-self.tolerance_pct..=100.0 + self.tolerance_pct).contains(&value)
    }

    /// Why a reading is not usable, if it is not.
    pub fn reject(&self, r: &Reading) -> Option<String> {
        if r.sensor.trim().is_empty() || r.sensor.len() > 200 {
            return Some("the sensor id is empty or longer than 200 bytes".into());
        }
        if r.unit != self.unit {
            return Some(format!("unit `{}` is not `{}`", r.unit, self.unit));
        }
        if !self.plausible(r.value) {
            return Some(format!(
                "fill {} is not finite or outside 0..=100 {} (tolerance {})",
                r.value, self.unit, self.tolerance_pct
            ));
        }
        None
    }

    /// The fill rate in points an hour: the least-squares slope of `earlier`
    /// (time, value) within the window, after the last emptying, and the current
    /// reading. `None` with too few readings or too short a span.
    pub fn fill_rate(&self, earlier: &[(i64, f64)], time: i64, value: f64) -> Option<f64> {
        let from = time.saturating_sub(self.window_min * 60_000);
        let mut pts: Vec<(i64, f64)> = earlier
            .iter()
            .copied()
            .filter(|(t, v)| *t >= from && *t < time && v.is_finite())
            .collect();
        pts.sort_by_key(|(t, _)| *t);
        pts.push((time, value));
        // Only the current filling: start after the last emptying.
        let start = (1..pts.len())
            .rev()
            .find(|&i| pts[i].1 < pts[i - 1].1 - self.empty_drop_pct)
            .unwrap_or(0);
        let pts = &pts[start..];
        if pts.len() < self.min_points {
            return None;
        }
        let (t0, t1) = (pts[0].0, pts[pts.len() - 1].0);
        if t1 - t0 < self.min_span_min * 60_000 {
            return None;
        }
        let n = pts.len() as f64;
        let hours = |t: i64| (t - t0) as f64 / HOUR_MS as f64;
        let mean_t = pts.iter().map(|(t, _)| hours(*t)).sum::<f64>() / n;
        let mean_v = pts.iter().map(|(_, v)| v).sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (t, v) in pts {
            let dt = hours(*t) - mean_t;
            sxy += dt * (v - mean_v);
            sxx += dt * dt;
        }
        (sxx > 0.0).then(|| sxy / sxx).filter(|r| r.is_finite())
    }
}

/// What the model keeps per bin (record `bin/<sensor>`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde", default)]
pub struct BinState {
    /// Always `bin`.
    pub kind: String,
    pub sensor: String,
    /// Time (ms) and fill of the latest reading taken.
    pub time: i64,
    pub value: f64,
    /// The full warning was raised for the current filling.
    pub full_warned: bool,
    /// The fill-rate warning was raised (or is moot) for the current filling.
    pub predict_warned: bool,
}

/// What one reading shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Finding {
    /// The fill crossed `bin-full-pct`.
    Full,
    /// The fill rate (points an hour) reaches full in `hours`.
    FillingFast { hours: f64, rate: f64 },
}

/// The state key of a sensor.
pub fn state_key(sensor: &str) -> String {
    format!("bin/{sensor}")
}

/// Assesses a reading `value` (clamped to 0..=100) at `time`, given the bin's
/// state (if any) and the earlier readings (oldest first, plausible ones, clamped):
/// what it shows and the new (full_warned, predict_warned) flags.
pub fn assess(
    p: &BinParams,
    value: f64,
    time: i64,
    state: Option<&BinState>,
    earlier: &[(i64, f64)],
) -> (Option<Finding>, bool, bool) {
    let (mut full_warned, mut predict_warned) = match state {
        Some(s) => (s.full_warned, s.predict_warned),
        // No state yet: the latest earlier reading says whether the bin was already
        // full (its crossing came before this plugin heard of the bin).
        None => {
            let was_full = earlier
                .iter()
                .filter(|(t, _)| *t < time)
                .max_by_key(|(t, _)| *t)
                .is_some_and(|(_, v)| *v >= p.full_pct);
            (was_full, was_full)
        }
    };
    if value < p.rearm_pct {
        // Emptied: the next filling may warn again.
        full_warned = false;
        predict_warned = false;
    }
    let mut finding = None;
    if value >= p.full_pct {
        if !full_warned {
            finding = Some(Finding::Full);
        }
        full_warned = true;
        predict_warned = true;
    } else if !predict_warned
        && let Some(rate) = p.fill_rate(earlier, time, value)
        && rate > 0.0
    {
        let hours = (p.full_pct - value) / rate;
        if hours <= p.predict_hours {
            finding = Some(Finding::FillingFast { hours, rate });
            predict_warned = true;
        }
    }
    (finding, full_warned, predict_warned)
}

/// The warning of a finding for the bin `sensor` at `at`.
pub fn warning(p: &BinParams, sensor: &str, value: f64, at: GeoPoint, finding: Finding) -> Warning {
    let area = Area::circle(
        format!("垃圾桶 {sensor} 周边 {} 公里", p.radius_km),
        at,
        p.radius_km,
    );
    let mut parameters = vec![
        ("sensor".into(), sensor.to_owned()),
        ("value".into(), format!("{value:.1}")),
        ("unit".into(), p.unit.clone()),
        ("full-pct".into(), p.full_pct.to_string()),
    ];
    let (severity, certainty, headline, description) = match finding {
        Finding::Full => (
            Severity::Moderate,
            Certainty::Observed,
            format!("垃圾桶满溢：{sensor} 满溢度 {value:.0}{}", p.unit),
            format!(
                "垃圾桶 {sensor} 满溢度 {value:.1}{}，达到满溢阈值 {}{}。",
                p.unit, p.full_pct, p.unit
            ),
        ),
        Finding::FillingFast { hours, rate } => {
            // Rounded up to a tenth of an hour, never "0.0 小时".
            let shown = ((hours * 10.0).ceil() / 10.0).max(0.1);
            parameters.push(("rate-per-hour".into(), format!("{rate:.1}")));
            parameters.push(("hours-to-full".into(), format!("{shown:.1}")));
            (
                Severity::Minor,
                Certainty::Likely,
                format!("垃圾桶即将满溢：{sensor} 预计 {shown:.1} 小时内满溢"),
                format!(
                    "垃圾桶 {sensor} 当前满溢度 {value:.1}{}，近 {} 分钟每小时上升 {rate:.1} 个百分点，预计 {shown:.1} 小时内满溢（阈值 {}{}）。",
                    p.unit, p.window_min, p.full_pct, p.unit
                ),
            )
        }
    };
    Warning {
        category: WarningCategory::Env,
        event: "垃圾桶满溢".into(),
        urgency: Urgency::Expected,
        severity,
        certainty,
        area,
        headline,
        description,
        instruction: "请安排环卫保洁人员及时清运，清运后拍照反馈；满溢频繁的点位评估增设垃圾桶或加密收运频次。".into(),
        parameters,
    }
}

/// The model's entry point: the warnings one `iot.reading.bin-fill` event raises.
pub fn evaluate(event: &Event) -> Result<Vec<Warning>, Error> {
    let r: Reading = match event.payload() {
        Ok(r) => r,
        Err(e) => {
            warn!("skipped bin-fill event {}: {}", event.id, e.message());
            return Ok(Vec::new());
        }
    };
    let p = BinParams::from_config()?;
    if let Some(why) = p.reject(&r) {
        warn!("skipped bin-fill reading of `{}`: {why}", r.sensor);
        return Ok(Vec::new());
    }
    let Some(at) = event.location else {
        warn!(
            "skipped bin-fill reading of {}: the event has no location",
            r.sensor
        );
        return Ok(Vec::new());
    };
    if !CityBox::from_config()?.contains(at) {
        warn!(
            "skipped bin-fill reading of {}: position {},{} is outside the city",
            r.sensor, at.lat, at.lon
        );
        return Ok(Vec::new());
    }
    let time = r.time.unwrap_or(event.time);
    if !(0..=MAX_TIME).contains(&time) {
        warn!(
            "skipped bin-fill reading of {}: time {time} is not milliseconds since 1970 before the year 10000",
            r.sensor
        );
        return Ok(Vec::new());
    }
    let value = r.value.clamp(0.0, 100.0);
    let key = state_key(&r.sensor);
    // The state, with the host's clock when it was written.
    let state = match data::get(STATE_DATASET, &key)? {
        None => None,
        Some(rec) => match rec.value_json::<BinState>() {
            Ok(s) => Some((s, rec.updated)),
            Err(e) => {
                warn!(
                    "state `{key}` is unreadable ({}); starting afresh",
                    e.message()
                );
                None
            }
        },
    };
    if let Some((s, written)) = &state {
        if s.time > written.saturating_add(p.max_ahead_min * 60_000) {
            // A sensor clock gone wrong must not silence the bin for good.
            warn!(
                "state of {}: its latest reading time {} is ahead of the host clock when it was stored ({written}); \
                 the order of readings is not enforced against it",
                r.sensor, s.time
            );
        } else if time <= s.time {
            warn!(
                "skipped bin-fill reading of {} at {time}: not newer than the latest one taken ({}), out of order or repeated",
                r.sensor, s.time
            );
            return Ok(Vec::new());
        }
    }
    let earlier: Vec<(i64, f64)> =
        match data::readings(&r.sensor, time.saturating_sub(p.window_min * 60_000), time) {
            Ok(rs) => rs
                .into_iter()
                .filter(|x| x.time < time && x.unit == p.unit && p.plausible(x.value))
                .map(|x| (x.time, x.value.clamp(0.0, 100.0)))
                .collect(),
            Err(e) => {
                warn!(
                    "no earlier readings of {} ({e}): the fill rate is not assessed",
                    r.sensor
                );
                Vec::new()
            }
        };
    let (finding, full_warned, predict_warned) =
        assess(&p, value, time, state.as_ref().map(|(s, _)| s), &earlier);
    let next = BinState {
        kind: "bin".into(),
        sensor: r.sensor.clone(),
        time,
        value,
        full_warned,
        predict_warned,
    };
    // Written before the warning is returned: if the write fails, nothing is
    // returned and the next reading finds the crossing again.
    data::put(STATE_DATASET, &key, &next)?;
    Ok(finding
        .map(|f| warning(&p, &r.sensor, value, at, f))
        .into_iter()
        .collect())
}
