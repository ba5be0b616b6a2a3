//! Combustible gas concentration (可燃气体浓度), in %LEL (percent of the lower
//! explosive limit), from `iot.reading.gas` events.
//!
//! * **alarm levels**: at or above `gas-low-alarm` a *Moderate* warning (一级报警),
//!   at or above `gas-high-alarm` a *Severe* one (二级报警), both *Observed* and
//!   *Immediate*;
//! * **rate of rise**: a rise faster than `gas-rise-per-min` %LEL a minute since
//!   the oldest reading within `gas-window-min` gives a *Likely*, *Expected*
//!   warning below the low alarm: a leak builds up.
//!
//! Readings in another unit, non-finite or outside 0..=100 %LEL are skipped with
//! a logged reason and never raise a warning.

use yiwang_sdk::prelude::*;

use crate::Reading;

/// The gas model's parameters (`gas-*` keys of `[config]`).
#[derive(Debug, Clone, PartialEq)]
pub struct GasParams {
    pub unit: String,
    pub low_alarm: f64,
    pub high_alarm: f64,
    pub rise_per_min: f64,
    pub window_min: i64,
    pub radius_km: f64,
}

impl GasParams {
    /// Read and check the parameters from the plugin's config.
    pub fn from_config() -> Result<GasParams, Error> {
        let p = GasParams {
            unit: config::get("gas-unit").unwrap_or_else(|| "%LEL".into()),
            low_alarm: config::get_parsed("gas-low-alarm")?,
            high_alarm: config::get_parsed("gas-high-alarm")?,
            rise_per_min: config::get_parsed("gas-rise-per-min")?,
            window_min: config::get_parsed("gas-window-min")?,
            radius_km: config::get_parsed("gas-radius-km")?,
        };
        p.check()?;
        Ok(p)
    }

    pub fn check(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Invalid(m.into()));
        if !(0.0 < self.low_alarm && self.low_alarm < self.high_alarm && self.high_alarm <= 100.0) {
            return bad("config: gas-low-alarm must be above 0 and below gas-high-alarm, which is at most 100");
        }
        if !(self.rise_per_min > 0.0 && self.window_min > 0 && self.radius_km > 0.0) {
            return bad("config: gas-rise-per-min, gas-window-min and gas-radius-km must be positive");
        }
        Ok(())
    }

    /// Why a reading is not usable, if it is not.
    pub fn reject(&self, r: &Reading) -> Option<String> {
        if r.unit != self.unit {
            return Some(format!("unit `{}` is not `{}`", r.unit, self.unit));
        }
        if !r.value.is_finite() || !(0.0..=100.0).contains(&r.value) {
            return Some(format!("value {} is outside 0..=100 {}", r.value, self.unit));
        }
        None
    }

    /// The rise in %LEL a minute from the oldest of `earlier` to `(time, value)`;
    /// `None` without an earlier reading at least 30 s older.
    pub fn rise_rate(&self, earlier: &[(i64, f64)], time: i64, value: f64) -> Option<f64> {
        let (t0, v0) = earlier.iter().filter(|(t, v)| *t <= time - 30_000 && v.is_finite()).min_by_key(|(t, _)| *t)?;
        Some((value - v0) / ((time - t0) as f64 / 60_000.0))
    }
}

fn warning(p: &GasParams, r: &Reading, center: GeoPoint, severity: Severity, urgency: Urgency, certainty: Certainty, headline: String, description: String) -> Warning {
    Warning {
        category: WarningCategory::Safety,
        event: "可燃气体泄漏".into(),
        urgency,
        severity,
        certainty,
        area: Area::circle(format!("气体探测器 {} 周边 {} 公里", r.sensor, p.radius_km), center, p.radius_km),
        headline,
        description,
        instruction: "立即切断气源，禁止明火和开关电器，疏散周边人员，通知燃气抢修。".into(),
        parameters: vec![
            ("model".into(), "gas".into()),
            ("sensor".into(), r.sensor.clone()),
            ("value".into(), format!("{:.1}", r.value)),
            ("unit".into(), r.unit.clone()),
        ],
    }
}

/// The warnings one gas reading raises, given the earlier readings of its sensor.
pub fn assess(p: &GasParams, r: &Reading, time: i64, center: GeoPoint, earlier: &[(i64, f64)]) -> Vec<Warning> {
    let level = if r.value >= p.high_alarm {
        Some((Severity::Severe, "二级报警", p.high_alarm))
    } else if r.value >= p.low_alarm {
        Some((Severity::Moderate, "一级报警", p.low_alarm))
    } else {
        None
    };
    if let Some((severity, label, limit)) = level {
        return vec![warning(
            p,
            r,
            center,
            severity,
            Urgency::Immediate,
            Certainty::Observed,
            format!("燃气{label}：{} 浓度 {:.1} {}", r.sensor, r.value, r.unit),
            format!("气体探测器 {} 测得 {:.1} {}，达到{label}值 {limit} {}。", r.sensor, r.value, r.unit, r.unit),
        )];
    }
    match p.rise_rate(earlier, time, r.value) {
        Some(rate) if rate > p.rise_per_min => vec![warning(
            p,
            r,
            center,
            Severity::Moderate,
            Urgency::Expected,
            Certainty::Likely,
            format!("燃气浓度快速上升：{} 每分钟上升 {rate:.1} {}", r.sensor, r.unit),
            format!(
                "气体探测器 {} 在 {} 分钟内以每分钟 {rate:.1} {} 的速度上升（阈值 {}），当前 {:.1} {}。",
                r.sensor, p.window_min, r.unit, p.rise_per_min, r.value, r.unit
            ),
        )],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> GasParams {
        GasParams { unit: "%LEL".into(), low_alarm: 10.0, high_alarm: 25.0, rise_per_min: 2.0, window_min: 10, radius_km: 0.3 }
    }

    fn reading(value: f64, unit: &str) -> Reading {
        Reading { sensor: "gas-新街口-07".into(), value, unit: unit.into(), time: None, lat: None, lon: None }
    }

    const AT: GeoPoint = GeoPoint { lat: 32.04, lon: 118.78 };
    const T: i64 = 1_767_225_600_000;

    #[test]
    fn alarm_levels_map_to_severity() {
        let p = params();
        for (value, expected) in [(3.0, None), (10.0, Some(Severity::Moderate)), (24.9, Some(Severity::Moderate)), (25.0, Some(Severity::Severe))] {
            let w = assess(&p, &reading(value, "%LEL"), T, AT, &[]);
            assert_eq!(w.first().map(|w| w.severity), expected, "{value} %LEL");
        }
    }

    #[test]
    fn a_fast_rise_warns_below_the_low_alarm() {
        let p = params();
        // 1 to 7 %LEL in two minutes: 3 %LEL a minute.
        let w = assess(&p, &reading(7.0, "%LEL"), T, AT, &[(T - 120_000, 1.0)]);
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].certainty, w[0].urgency), (Certainty::Likely, Urgency::Expected));
        // A slow drift does not, nor a reading too recent to give a rate.
        assert!(assess(&p, &reading(2.0, "%LEL"), T, AT, &[(T - 600_000, 1.0)]).is_empty());
        assert!(assess(&p, &reading(9.0, "%LEL"), T, AT, &[(T - 10_000, 0.0)]).is_empty());
    }

    #[test]
    fn bad_readings_and_config_are_refused() {
        let p = params();
        assert!(p.reject(&reading(30.0, "ppm")).unwrap().contains("unit"));
        assert!(p.reject(&reading(-1.0, "%LEL")).is_some());
        assert!(p.reject(&reading(f64::INFINITY, "%LEL")).is_some());
        assert!(p.reject(&reading(12.0, "%LEL")).is_none());
        let mut q = params();
        q.high_alarm = 5.0;
        assert!(q.check().is_err());
    }
}
