//! `chengguan` (城市管理, urban management): what the city's 城管 department does with
//! the events of the platform. Three parts, each in its own module; every parameter
//! is in the `[config]` table of `plugin.toml`.
//!
//! # Case handling ([`handling`], on `case.reported`)
//!
//! A new case whose category is one of four types is routed to the patrol team of its
//! grid:
//!
//! | type | codes | level |
//! |---|---|---|
//! | 街面秩序 vending | 020501 占道经营, 020502 无照经营游商 | community |
//! | 违法建设 construction | 020302 | street; district when repeated |
//! | 垃圾 garbage | 020101 暴露垃圾, 020102 积存垃圾渣土 | community |
//! | 井盖 manhole | 部件 problems of the manhole-cover classes (0101-0103, 0105-0110), 020405 井盖缺失致险 | street, urgent handling |
//!
//! For each such case the plugin suggests a route (department `chengguan`, the type's
//! level, score `route-score`), adds a note with the type's procedure and deadline,
//! and messages `role:<street>/handler` (the street's patrol team), where the street is the first 9 digits of the
//! 14-digit grid code in the payload's `area`. A case without a grid says so in the
//! note and goes to the patrol team of `city-duty-unit`.
//!
//! * 违法建设 goes to `construction-repeat-level` when the grid's count of the type's
//!   codes in the current ISO week (from the hot-spot records below), this report
//!   included, reaches `construction-repeat-count`.
//! * A manhole report is **urgent** when its local time (UTC+8) is at night
//!   (`hour >= manhole-night-start-hour` or `hour < manhole-night-end-hour`) or its
//!   title, address or description contains one of `manhole-main-road-keywords`.
//!   Urgent reports keep the level, are marked 【紧急】 and get
//!   `manhole-urgent-deadline`.
//!
//! # Bin fill level ([`bins`], on `iot.reading.bin-fill`)
//!
//! Readings `{"sensor","value","unit":"%","time"}` located at the bin. With `F` =
//! `bin-full-pct`:
//!
//! * **full**: `value >= F` gives a *Moderate / Observed / Expected* warning (CAP
//!   category Env), once per crossing: the bin's state (record `bin/<sensor>` in
//!   `chengguan-hotspots`) remembers the warning until the fill drops below
//!   `bin-rearm-pct` (the bin was emptied). Without a state, the latest earlier
//!   reading of the sensor decides whether the bin was already full.
//! * **filling fast**: over the readings of the last `bin-window-min` minutes after
//!   the last emptying (a drop of more than `bin-empty-drop-pct` points), with at
//!   least `bin-min-points` readings spanning `bin-min-span-min` minutes, the
//!   least-squares slope `r = Σ(tᵢ−t̄)(vᵢ−v̄) / Σ(tᵢ−t̄)²` (points an hour) predicts
//!   the time to full `h = (F − v) / r`. When `r > 0` and `h <= bin-predict-hours`, a
//!   *Minor / Likely / Expected* warning "预计 X 小时内满溢" is raised, once per
//!   filling.
//!
//! A reading not newer than the bin's last one (out of order or repeated) changes
//! nothing and warns of nothing, unless that last one's time was more than
//! `bin-max-ahead-min` ahead of the host's clock when it was stored (a sensor clock
//! gone wrong), which is then not held against later readings.
//!
//! # Complaint hot spots ([`hotspot`], on `case.reported`)
//!
//! Each new case in `hotspot-categories` from a channel in `hotspot-channels` with a
//! grid is counted in record `<grid>/<yyyy-Www>` of `chengguan-hotspots`, the ISO
//! week ([`calendar`]) of the event's time in UTC+8. With `c` the week's count and
//! `b` the mean count of the grid's previous `hotspot-baseline-weeks` weeks (missing
//! weeks count 0), the grid-week is a **hot spot** when
//! `c >= hotspot-min-count` and `c > hotspot-factor × b`. The first time it is, the
//! plugin raises one warning "城管投诉热点" (*Moderate / Likely / Expected*, category
//! `hotspot-warning-category`, a circle of `hotspot-radius-km` around the report) and
//! publishes `chengguan.hotspot` with the same numbers; the record's `warned` flag
//! keeps it to once per grid-week.
//!
//! # State (data set `chengguan-hotspots`, private to 城管)
//!
//! * `<grid>/<yyyy-Www>`: `{"kind": "grid-week", "grid", "week", "count",
//!   "categories": {code: n}, "cases": [ids, at most hotspot-max-case-ids], "warned",
//!   "warning": id|null, "baseline": mean|null, "center": {"lat","lon"}|null,
//!   "located", "first", "last"}` ([`hotspot::GridWeek`]).
//! * `bin/<sensor>`: `{"kind": "bin", "sensor", "time", "value", "full_warned",
//!   "predict_warned"}` ([`bins::BinState`]).
//!
//! # Bad input
//!
//! A payload that is not JSON, lacks a field, has a reading in another unit, a fill
//! that is not finite or outside `0..=100` by more than `bin-tolerance-pct`, a
//! position outside `city-bbox`, a malformed grid code: skipped (or, for a case
//! without a grid, handled as such) with a `warn!` line saying why. Never a panic,
//! never a warning from it.

use yiwang_sdk::prelude::*;

pub mod bins;
pub mod calendar;
pub mod handling;
pub mod hotspot;

/// The data set holding the plugin's state: grid-week records and bin states.
pub const STATE_DATASET: &str = "chengguan-hotspots";

/// The Chinese name of a category code the plugin knows, for notes and messages.
pub fn category_name(code: &str) -> Option<&'static str> {
    const NAMES: [(&str, &str); 36] = [
        ("010101", "上水井盖"),
        ("010102", "污水井盖"),
        ("010103", "雨水井盖"),
        ("010105", "电力井盖"),
        ("010106", "路灯井盖"),
        ("010107", "通信井盖"),
        ("010108", "燃气井盖"),
        ("010109", "热力井盖"),
        ("010110", "无主井盖"),
        ("010112", "路灯"),
        ("010208", "路名牌"),
        ("010209", "非机动车停放架"),
        ("010301", "公共厕所"),
        ("010302", "垃圾箱"),
        ("010303", "垃圾房"),
        ("010304", "广告牌匾"),
        ("010305", "灯箱霓虹灯"),
        ("010306", "公共座椅"),
        ("010307", "报刊亭"),
        ("010308", "信息亭"),
        ("010401", "古树名木"),
        ("010402", "行道树"),
        ("010403", "护树设施"),
        ("010404", "绿地"),
        ("010405", "雕塑"),
        ("010501", "宣传栏"),
        ("020101", "暴露垃圾"),
        ("020102", "积存垃圾渣土"),
        ("020103", "道路不洁"),
        ("020201", "非法小广告"),
        ("020202", "违章张贴悬挂广告"),
        ("020302", "违法建设"),
        ("020405", "井盖缺失致险"),
        ("020501", "占道经营"),
        ("020502", "无照经营游商"),
        ("020504", "非机动车乱停放"),
    ];
    NAMES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// A config value split at commas, each part trimmed, empty parts dropped.
pub fn config_list(key: &str) -> Result<Vec<String>, Error> {
    let text = config::get(key)
        .ok_or_else(|| Error::NotFound(format!("config key `{key}` is not set")))?;
    Ok(text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// A config string that must not be empty.
pub fn config_text(key: &str) -> Result<String, Error> {
    match config::get(key) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        Some(_) => Err(Error::Invalid(format!("config key `{key}` is empty"))),
        None => Err(Error::NotFound(format!("config key `{key}` is not set"))),
    }
}

/// The city's bounding box (`city-bbox`): positions outside it are not the city's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CityBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl CityBox {
    pub fn from_config() -> Result<CityBox, Error> {
        let parts = config_list("city-bbox")?;
        let numbers: Vec<f64> = parts.iter().filter_map(|p| p.parse().ok()).collect();
        let bad =
            || Error::Invalid("config: city-bbox must be `min lon,min lat,max lon,max lat`".into());
        let &[min_lon, min_lat, max_lon, max_lat] = numbers.as_slice() else {
            return Err(bad());
        };
        let b = CityBox {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        };
        let ok = parts.len() == 4
            && numbers.iter().all(|n| n.is_finite())
            && (-180.0..=180.0).contains(&min_lon)
            && (-180.0..=180.0).contains(&max_lon)
            && (-90.0..=90.0).contains(&min_lat)
            && (-90.0..=90.0).contains(&max_lat)
            && min_lon < max_lon
            && min_lat < max_lat;
        if ok { Ok(b) } else { Err(bad()) }
    }

    /// Whether `p` lies in the box (edges included).
    pub fn contains(&self, p: GeoPoint) -> bool {
        p.lat.is_finite()
            && p.lon.is_finite()
            && (self.min_lat..=self.max_lat).contains(&p.lat)
            && (self.min_lon..=self.max_lon).contains(&p.lon)
    }
}

/// Parses a CAP category name, case-insensitively (`other`, `Safety`, ...).
pub fn warning_category(name: &str) -> Option<WarningCategory> {
    let all = [
        ("geo", WarningCategory::Geo),
        ("met", WarningCategory::Met),
        ("safety", WarningCategory::Safety),
        ("security", WarningCategory::Security),
        ("rescue", WarningCategory::Rescue),
        ("fire", WarningCategory::Fire),
        ("health", WarningCategory::Health),
        ("env", WarningCategory::Env),
        ("transport", WarningCategory::Transport),
        ("infra", WarningCategory::Infra),
        ("cbrne", WarningCategory::Cbrne),
        ("other", WarningCategory::Other),
    ];
    let name = name.trim().to_ascii_lowercase();
    all.into_iter().find(|(n, _)| *n == name).map(|(_, c)| c)
}

/// At most `max` characters of `text`, with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

struct Chengguan;

impl Plugin for Chengguan {
    fn init() -> Result<(), Error> {
        handling::CaseParams::from_config()?;
        bins::BinParams::from_config()?;
        hotspot::HotspotParams::from_config()?;
        CityBox::from_config()?;
        Ok(())
    }

    fn handle(event: Event) -> Result<(), Error> {
        match event.topic.as_str() {
            "case.reported" => handling::on_reported(&event),
            // Readings are the model's (`evaluate`); the host hands every event to both.
            _ => Ok(()),
        }
    }

    fn evaluate(event: Event) -> Result<Vec<Warning>, Error> {
        match event.topic.as_str() {
            "iot.reading.bin-fill" => bins::evaluate(&event),
            _ => Ok(Vec::new()),
        }
    }
}

export_plugin!(Chengguan);

#[cfg(test)]
mod tests;
