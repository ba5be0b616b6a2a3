//! Complaint hot spots: reports counted per (grid, ISO week) in `chengguan-hotspots`;
//! a grid-week well above the grid's recent weeks raises one warning (see the crate
//! docs for the rule).

use std::collections::BTreeMap;

use yiwang_sdk::prelude::*;

use crate::calendar::IsoWeek;
use crate::handling::{Report, present};
use crate::{CityBox, STATE_DATASET, category_name, config_list, warning_category};

/// The hot-spot parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct HotspotParams {
    pub categories: Vec<String>,
    pub channels: Vec<String>,
    pub min_count: u32,
    pub factor: f64,
    pub baseline_weeks: u32,
    pub category: WarningCategory,
    pub radius_km: f64,
    pub max_case_ids: usize,
}

impl HotspotParams {
    /// Read and check the parameters from the plugin's config.
    pub fn from_config() -> Result<HotspotParams, Error> {
        let category_name: String = config::get_parsed("hotspot-warning-category")?;
        let category = warning_category(&category_name).ok_or_else(|| {
            Error::Invalid(format!(
                "config: hotspot-warning-category `{category_name}` is not a CAP category"
            ))
        })?;
        let p = HotspotParams {
            categories: config_list("hotspot-categories")?,
            channels: config_list("hotspot-channels")?,
            min_count: config::get_parsed("hotspot-min-count")?,
            factor: config::get_parsed("hotspot-factor")?,
            baseline_weeks: config::get_parsed("hotspot-baseline-weeks")?,
            category,
            radius_km: config::get_parsed("hotspot-radius-km")?,
            max_case_ids: config::get_parsed("hotspot-max-case-ids")?,
        };
        p.check()?;
        Ok(p)
    }

    pub fn check(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Invalid(format!("config: {m}")));
        if self.categories.is_empty() || self.channels.is_empty() {
            return bad("hotspot-categories and hotspot-channels must name at least one");
        }
        if self.min_count == 0 {
            return bad("hotspot-min-count must be at least 1");
        }
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return bad("hotspot-factor must be at least 1");
        }
        if !(1..=52).contains(&self.baseline_weeks) {
            return bad("hotspot-baseline-weeks must be 1..=52");
        }
        if !(self.radius_km.is_finite() && self.radius_km > 0.0) {
            return bad("hotspot-radius-km must be positive");
        }
        Ok(())
    }

    /// Whether a week's `count` against the mean `baseline` of earlier weeks is a
    /// hot spot: `count >= min_count` and `count > factor × baseline`.
    pub fn is_hotspot(&self, count: u32, baseline: f64) -> bool {
        count >= self.min_count && f64::from(count) > self.factor * baseline
    }
}

/// A position in a record (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct Center {
    pub lat: f64,
    pub lon: f64,
}

/// The record of one grid and ISO week, key `<grid>/<yyyy-Www>`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde", default)]
pub struct GridWeek {
    /// Always `grid-week` (bin states are `bin`).
    pub kind: String,
    pub grid: String,
    pub week: String,
    /// Reports counted.
    pub count: u32,
    /// Reports counted per category code.
    pub categories: BTreeMap<String, u32>,
    /// The case ids counted, the first `hotspot-max-case-ids` of them.
    pub cases: Vec<String>,
    /// Whether the hot-spot warning was raised for this grid-week.
    pub warned: bool,
    /// The warning's id, once raised.
    pub warning: Option<String>,
    /// The baseline (mean of earlier weeks) when the warning was raised.
    pub baseline: Option<f64>,
    /// The mean position of the counted reports that had one in the city.
    pub center: Option<Center>,
    /// How many reports the mean position averages.
    pub located: u32,
    /// Event times (ms) of the first and the latest report counted.
    pub first: i64,
    pub last: i64,
}

/// The record key of a grid and week.
pub fn key(grid: &str, week: IsoWeek) -> String {
    format!("{grid}/{week}")
}

/// Reads a grid-week record; an unreadable one is logged and counts as absent.
fn load(key: &str) -> Result<Option<GridWeek>, Error> {
    match data::get_json::<GridWeek>(STATE_DATASET, key) {
        Ok(r) => Ok(r),
        Err(Error::Invalid(m)) => {
            warn!("record `{key}` of {STATE_DATASET} is unreadable ({m}); counted as empty");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The mean count of the `weeks` weeks before `week` in `grid`; a missing week is 0.
pub fn baseline(grid: &str, week: IsoWeek, weeks: u32) -> Result<f64, Error> {
    let mut total = 0u64;
    for n in 1..=i64::from(weeks) {
        if let Some(r) = load(&key(grid, week.minus(n)))? {
            total += u64::from(r.count);
        }
    }
    Ok(total as f64 / f64::from(weeks))
}

/// "占道经营 4 件、暴露垃圾 1 件".
fn category_summary(categories: &BTreeMap<String, u32>) -> String {
    let mut items: Vec<(&String, &u32)> = categories.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    items
        .iter()
        .map(|(code, n)| format!("{} {n} 件", category_name(code).unwrap_or(code.as_str())))
        .collect::<Vec<_>>()
        .join("、")
}

/// The hot-spot warning of a record.
pub fn warning(p: &HotspotParams, rec: &GridWeek, baseline: f64, center: Center) -> Warning {
    let (grid, week, count) = (&rec.grid, &rec.week, rec.count);
    Warning {
        category: p.category,
        event: "城管投诉热点".into(),
        urgency: Urgency::Expected,
        severity: Severity::Moderate,
        certainty: Certainty::Likely,
        area: Area::circle(
            format!("网格 {grid} 周边 {} 公里", p.radius_km),
            GeoPoint::new(center.lat, center.lon),
            p.radius_km,
        ),
        headline: format!("城管投诉热点：网格 {grid} 在 {week} 已有 {count} 件投诉"),
        description: format!(
            "网格 {grid} 在 {week}（北京时间）受理城管类投诉 {count} 件（{}），前 {} 周平均每周 {baseline:.1} 件；\
             达到热点条件：不少于 {} 件且超过前期平均的 {} 倍。",
            category_summary(&rec.categories),
            p.baseline_weeks,
            p.min_count,
            p.factor
        ),
        instruction: "请街道城管中队加密该网格巡查频次，排查投诉集中的原因（流动摊点聚集、工地、垃圾收运点等），必要时开展专项整治并向社区通报。".into(),
        parameters: vec![
            ("grid".into(), grid.clone()),
            ("week".into(), week.clone()),
            ("count".into(), count.to_string()),
            ("baseline".into(), format!("{baseline:.2}")),
            ("baseline-weeks".into(), p.baseline_weeks.to_string()),
            ("factor".into(), p.factor.to_string()),
        ],
    }
}

/// Counts one `case.reported` report; returns the grid-week record when it was
/// counted (or had been, for a replayed event). May raise the hot-spot warning.
pub fn on_reported(event: &Event, report: &Report) -> Result<Option<GridWeek>, Error> {
    let p = HotspotParams::from_config()?;
    if !p.categories.contains(&report.category_code) {
        return Ok(None);
    }
    if let Some(channel) = present(report.channel.name())
        && !p.channels.iter().any(|c| c == channel)
    {
        debug!(
            "case {}: channel `{channel}` is not counted for hot spots",
            report.case
        );
        return Ok(None);
    }
    let Some(grid) = &report.grid else {
        warn!(
            "case {}: not counted for hot spots: the report has no grid",
            report.case
        );
        return Ok(None);
    };
    let city = CityBox::from_config()?;
    let week = IsoWeek::of_time(event.time);
    let key = key(grid, week);
    let mut rec = load(&key)?.unwrap_or_else(|| GridWeek {
        kind: "grid-week".into(),
        grid: grid.clone(),
        week: week.to_string(),
        first: event.time,
        ..GridWeek::default()
    });
    if rec.cases.contains(&report.case) {
        info!("case {} is already counted in {key}", report.case);
        return Ok(Some(rec));
    }
    rec.count = rec.count.saturating_add(1);
    *rec.categories
        .entry(report.category_code.clone())
        .or_default() += 1;
    if rec.cases.len() < p.max_case_ids {
        rec.cases.push(report.case.clone());
    }
    rec.last = rec.last.max(event.time);
    let here = event.location.filter(|at| city.contains(*at));
    if let Some(at) = here {
        let n = f64::from(rec.located);
        let c = rec.center.unwrap_or(Center {
            lat: at.lat,
            lon: at.lon,
        });
        rec.center = Some(Center {
            lat: (c.lat * n + at.lat) / (n + 1.0),
            lon: (c.lon * n + at.lon) / (n + 1.0),
        });
        rec.located += 1;
    }

    // The warning: tried before the record is written, so that `warned` is true
    // only for a warning the host took. A failure is returned after the count is kept.
    let mut failure = None;
    if !rec.warned && rec.count >= p.min_count {
        match raise(&p, &mut rec, week, here) {
            Ok(()) => {}
            Err(e) => failure = Some(e),
        }
    }
    data::put(STATE_DATASET, &key, &rec)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(Some(rec)),
    }
}

/// Raises the warning and announces `chengguan.hotspot` if `rec` is a hot spot.
fn raise(
    p: &HotspotParams,
    rec: &mut GridWeek,
    week: IsoWeek,
    here: Option<GeoPoint>,
) -> Result<(), Error> {
    let b = baseline(&rec.grid, week, p.baseline_weeks)?;
    if !p.is_hotspot(rec.count, b) {
        return Ok(());
    }
    let center = here
        .map(|at| Center {
            lat: at.lat,
            lon: at.lon,
        })
        .or(rec.center);
    let Some(center) = center else {
        warn!(
            "grid {} is a hot spot in {} ({} reports) but no report had a position in the city: the warning waits for one",
            rec.grid, rec.week, rec.count
        );
        return Ok(());
    };
    let id = cases::raise_warning(&warning(p, rec, b, center))?;
    rec.warned = true;
    rec.warning = Some(id.clone());
    rec.baseline = Some(b);
    let payload = json!({
        "grid": rec.grid,
        "week": rec.week,
        "count": rec.count,
        "baseline": b,
        "baseline_weeks": p.baseline_weeks,
        "factor": p.factor,
        "min_count": p.min_count,
        "categories": rec.categories,
        "cases": rec.cases,
        "warning": id,
    });
    if let Err(e) = bus::publish(
        "chengguan.hotspot",
        &payload,
        Some(GeoPoint::new(center.lat, center.lon)),
    ) {
        // The warning stands; only the announcement is lost.
        warn!(
            "grid {} {}: publishing chengguan.hotspot failed: {e}",
            rec.grid, rec.week
        );
        return Err(e);
    }
    Ok(())
}
