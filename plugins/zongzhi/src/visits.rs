//! Overdue visits to vulnerable residents (重点人员走访逾期), checked on `time.day`.

use yiwang_sdk::events::DayEnded;
use yiwang_sdk::prelude::*;
use yiwang_sdk::serde_json::Value;

use crate::calendar::{self, DAY_MS, LocalTime};
use crate::grid::{FirstError, notify, payload_of};
use crate::record::{self, EventRecord};
use crate::settings::Settings;
use crate::tally;

/// The longest visit interval accepted, in days (ten years).
const MAX_INTERVAL_DAYS: i64 = 3660;

/// A local day just ended, as `time.day` announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    pub label: String,
    pub start: i64,
    pub end: i64,
}

/// A string field of a JSON object, if present and not blank.
pub fn field<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The day of a `time.day` payload, or why it is unusable.
pub fn check_day(local: LocalTime, p: &DayEnded) -> Result<Day, String> {
    let label = p.day.trim();
    let days = calendar::parse_date(label).ok_or_else(|| format!("`day` `{label}` is not a YYYY-MM-DD date"))?;
    let (start, end) = (p.start, p.end);
    if start != local.midnight(days) || end != start + DAY_MS {
        return Err(format!(
            "`start` {start} and `end` {end} are not the bounds of the local day {label}"
        ));
    }
    Ok(Day {
        label: label.to_owned(),
        start,
        end,
    })
}

/// One resident to visit, as far as the plugin needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resident {
    pub key: String,
    /// The name with all but its first character masked: `张*`.
    pub masked: String,
    pub community: String,
    pub street: String,
    pub grid: Option<String>,
    pub location: Option<GeoPoint>,
    /// Last visit, ms since the epoch.
    pub last_visit: i64,
    pub every_days: i64,
}

impl Resident {
    /// When the next visit falls due.
    pub fn due(&self) -> i64 {
        self.last_visit + self.every_days * DAY_MS
    }
}

/// `张*`, `欧阳**`: the first character kept, the rest (at most two shown) masked.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    let first = chars.next().unwrap_or('*');
    let rest = chars.count().clamp(1, 2);
    format!("{first}{}", "*".repeat(rest))
}

fn whole_number(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
            .map(|f| f as i64)
    })
}

fn coordinate(v: Option<&Value>, name: &str, range: f64) -> Result<f64, String> {
    let x = v
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("`{name}` is not a number"))?;
    if x.is_finite() && x.abs() <= range {
        Ok(x)
    } else {
        Err(format!("`{name}` {x} is outside -{range}..={range}"))
    }
}

/// The resident in record `key`, or why it is skipped.
pub fn parse_resident(local: LocalTime, key: &str, v: &Value) -> Result<Resident, String> {
    if !v.is_object() {
        return Err("the record is not a JSON object".into());
    }
    let name = field(v, "name").ok_or("field `name` is missing or empty")?;
    let area = field(v, "area");
    let grid = area.filter(|a| record::is_code(a, 14)).map(str::to_owned);
    let community = match (field(v, "community"), area) {
        (Some(c), _) if record::is_code(c, 12) => c.to_owned(),
        (Some(c), _) => return Err(format!("field `community`: `{c}` is not a 12-digit community code")),
        (None, Some(a)) if a.len() >= 12 && a.bytes().all(|b| b.is_ascii_digit()) => a[..12].to_owned(),
        (None, _) => return Err("no `community` (12-digit code) and no `area` within a community".into()),
    };
    let every_days = match v.get("visit_every_days") {
        None | Some(Value::Null) => return Err("field `visit_every_days` is missing".into()),
        Some(n) => whole_number(n)
            .filter(|d| (1..=MAX_INTERVAL_DAYS).contains(d))
            .ok_or_else(|| {
                format!("field `visit_every_days`: {n} is not a whole number of days in 1..={MAX_INTERVAL_DAYS}")
            })?,
    };
    let last_visit = match v.get("last_visit") {
        None | Some(Value::Null) => return Err("field `last_visit` is missing".into()),
        Some(Value::String(s)) => local
            .parse_time(s)
            .ok_or_else(|| format!("field `last_visit`: `{s}` is not a date, a local time or milliseconds"))?,
        Some(n) => whole_number(n)
            .filter(|ms| local.plausible(*ms))
            .ok_or_else(|| format!("field `last_visit`: {n} is not a time in milliseconds (2000-2200)"))?,
    };
    let location = match (v.get("lat"), v.get("lon"), v.get("location")) {
        (None, None, None | Some(Value::Null)) => None,
        (None, None, Some(loc)) => Some(GeoPoint::new(
            coordinate(loc.get("lat"), "location.lat", 90.0)?,
            coordinate(loc.get("lon"), "location.lon", 180.0)?,
        )),
        (lat, lon, _) => Some(GeoPoint::new(
            coordinate(lat, "lat", 90.0)?,
            coordinate(lon, "lon", 180.0)?,
        )),
    };
    Ok(Resident {
        key: key.to_owned(),
        masked: mask_name(name),
        street: community[..9].to_owned(),
        community,
        grid,
        location,
        last_visit,
        every_days,
    })
}

/// `time.day`: every resident whose next visit fell due before the day's end gets
/// one case per overdue period, and the community's grid workers are told.
pub fn on_day(s: &Settings, event: &Event) -> Result<(), Error> {
    let Some(p) = payload_of::<DayEnded>(event) else { return Ok(()) };
    let day = match check_day(s.local, &p) {
        Ok(day) => day,
        Err(why) => {
            warn!("skipped time.day event {}: {why}", event.id);
            return Ok(());
        }
    };
    let mut errors = FirstError::default();
    let (mut opened, mut overdue) = (0u32, 0u32);
    let mut page = 0;
    'pages: loop {
        if page == s.max_pages {
            warn!(
                "stopped checking visits for {} after {} pages of {}",
                day.label,
                s.max_pages,
                record::RESIDENTS
            );
            break;
        }
        let records = data::query(record::RESIDENTS, &[], page * s.page_size, s.page_size)?;
        page += 1;
        let last = (records.len() as u32) < s.page_size;
        for r in &records {
            let resident = match r
                .value_json::<Value>()
                .map_err(|e| e.message().to_owned())
                .and_then(|v| parse_resident(s.local, &r.key, &v))
            {
                Ok(resident) => resident,
                Err(why) => {
                    warn!("skipped resident `{}`: {why}", r.key);
                    continue;
                }
            };
            if resident.last_visit >= day.end {
                warn!(
                    "skipped resident `{}`: the last visit lies after the day checked ({})",
                    r.key, day.label
                );
                continue;
            }
            if resident.due() >= day.end {
                continue;
            }
            overdue += 1;
            if opened == s.max_visit_cases_per_day {
                warn!(
                    "opened {opened} overdue-visit cases for {}; the rest wait for the next day (`max-visit-cases-per-day`)",
                    day.label
                );
                break 'pages;
            }
            if open_visit_case(s, event, &day, &resident, &mut errors) {
                opened += 1;
            }
        }
        if last {
            break;
        }
    }
    info!(
        "{}: {overdue} residents overdue for a visit, {opened} cases opened",
        day.label
    );
    errors.finish()
}

/// Opens the case of one overdue period unless it is open already; whether it opened one.
fn open_visit_case(s: &Settings, event: &Event, day: &Day, r: &Resident, errors: &mut FirstError) -> bool {
    let due = r.due();
    let key = format!("visit-{}-{due}", r.key);
    if key.len() > 256 {
        warn!(
            "skipped resident `{}`: the key is too long to remember the visit",
            r.key
        );
        return false;
    }
    match record::load(&key) {
        Ok(Some(done)) if done.overdue_case.is_some() => return false,
        Ok(Some(_)) => info!(
            "retrying the overdue-visit case of resident `{}`: the last attempt did not open one",
            r.key
        ),
        Ok(None) => {}
        Err(e) => {
            errors.note::<()>(&format!("reading {key}"), Err(e));
            return false;
        }
    }
    let Some(category) = s.category(&s.visit_category) else {
        return false;
    };
    let mut rec = EventRecord {
        kind: record::KIND_VISIT.into(),
        category: category.code.clone(),
        grid: r.grid.clone(),
        community: r.community.clone(),
        street: r.street.clone(),
        week: s.local.week_of(day.start),
        time: day.start,
        status: record::OPENING.into(),
        resident: Some(r.key.clone()),
        due: Some(due),
        updated: event.time,
        ..EventRecord::default()
    };
    // Remembered before the case opens, so that no case is opened unremembered.
    if errors
        .note(&format!("remembering {key}"), record::store(&key, &rec))
        .is_none()
    {
        return false;
    }
    // Whole days from the due time to the end of the day checked, at least one.
    let late_days = ((day.end - due) / DAY_MS).max(1);
    let description = format!(
        "社区 {} 重点关爱人员 {} 应每 {} 天走访一次，上次走访 {}，应于 {} 前再次走访，截至 {} 已逾期 {late_days} 天。请网格员尽快上门走访并登记走访记录。",
        r.community,
        r.masked,
        r.every_days,
        s.local.date_of(r.last_visit),
        s.local.date_of(due),
        day.label,
    );
    let draft = CaseDraft {
        category_code: category.code.clone(),
        title: format!("重点人员走访逾期：{} {}", r.community, r.masked),
        description: description.clone(),
        location: r.location,
        channel: s.visit_channel,
        evidence: Vec::new(),
    };
    let Some(case) = errors.note(
        &format!("opening the overdue-visit case of resident `{}`", r.key),
        cases::open_case(&draft),
    ) else {
        return false;
    };
    rec.case = Some(case.clone());
    rec.overdue_case = Some(case.clone());
    rec.status = record::OPEN.into();
    if errors
        .note(&format!("remembering case {case} in {key}"), record::store(&key, &rec))
        .is_some()
    {
        errors.note(
            &format!("counting the overdue visit {key} in its week"),
            tally::keep(s.local, &key, &rec, event.time),
        );
    }
    // The way back from the case to the visit, for the case's `case.reported`.
    let opened = EventRecord {
        kind: record::KIND_OPENED.into(),
        case: Some(case.clone()),
        category: rec.category.clone(),
        grid: rec.grid.clone(),
        community: rec.community.clone(),
        street: rec.street.clone(),
        time: rec.time,
        status: record::OPEN.into(),
        resident: rec.resident.clone(),
        due: rec.due,
        updated: event.time,
        ..EventRecord::default()
    };
    errors.note(
        &format!("remembering that {key} opened case {case}"),
        record::store(&record::opened_key(&case), &opened),
    );
    let body = format!("{description}（案件 {case}）处置要求：{}", category.note);
    notify(
        category,
        &r.community,
        &format!("【综治】重点人员走访逾期：{}", r.masked),
        &body,
        errors,
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use yiwang_sdk::serde_json::json;

    const CST: LocalTime = LocalTime {
        offset_ms: 8 * 3_600_000,
    };

    #[test]
    fn names_are_masked() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("李小明"), "李**");
        assert_eq!(mask_name("欧阳娜娜"), "欧**");
        assert_eq!(mask_name("王"), "王*");
    }

    #[test]
    fn days_must_bound_a_local_day() {
        let start = CST.midnight(calendar::parse_date("2026-11-28").unwrap());
        // A payload that is not a `time.day` one, or whose values do not bound the day.
        let check_day = |local, p: &Value| match yiwang_sdk::serde_json::from_value::<DayEnded>(p.clone()) {
            Ok(day) => check_day(local, &day),
            Err(e) => Err(e.to_string()),
        };
        let good = json!({ "day": "2026-11-28", "start": start, "end": start + DAY_MS });
        assert_eq!(check_day(CST, &good).unwrap().label, "2026-11-28");
        for bad in [
            json!({ "start": start, "end": start + DAY_MS }),
            json!({ "day": "2026-11-31", "start": start, "end": start + DAY_MS }),
            json!({ "day": "2026-11-28", "start": "today", "end": start + DAY_MS }),
            json!({ "day": "2026-11-28", "start": start + DAY_MS, "end": start }),
            json!({ "day": "2026-11-28", "start": start + 3_600_000, "end": start + DAY_MS + 3_600_000 }),
            json!({ "day": "2026-11-27", "start": start, "end": start + DAY_MS }),
        ] {
            assert!(check_day(CST, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn residents_parse_in_their_several_shapes() {
        let visit = CST.midnight(calendar::parse_date("2026-11-01").unwrap());
        let r = parse_resident(
            CST,
            "r1",
            &json!({
                "name": "张三", "address": "长江路 1 号", "community": "320102001001",
                "lat": 32.045, "lon": 118.785, "last_visit": visit, "visit_every_days": 7
            }),
        )
        .unwrap();
        assert_eq!(
            (r.masked.as_str(), r.street.as_str(), r.due()),
            ("张*", "320102001", visit + 7 * DAY_MS)
        );
        assert_eq!(r.location, Some(GeoPoint::new(32.045, 118.785)));
        // The data set's own schema: a date string, a `location` object, an `area`.
        let r = parse_resident(
            CST,
            "r2",
            &json!({
                "name": "李四", "address": "长江路 2 号", "area": "32010200100101",
                "location": { "lat": 32.045, "lon": 118.785 }, "last_visit": "2026-11-01", "visit_every_days": 7.0
            }),
        )
        .unwrap();
        assert_eq!(
            (r.community.as_str(), r.grid.as_deref(), r.last_visit),
            ("320102001001", Some("32010200100101"), visit)
        );
    }

    #[test]
    fn bad_residents_say_why() {
        let base = json!({ "name": "张三", "address": "a", "community": "320102001001", "last_visit": "2026-11-01", "visit_every_days": 7 });
        let with = |k: &str, v: Value| {
            let mut x = base.clone();
            x[k] = v;
            x
        };
        let without = |k: &str| {
            let mut x = base.clone();
            x.as_object_mut().unwrap().remove(k);
            x
        };
        for (value, why) in [
            (without("name"), "name"),
            (with("name", json!("  ")), "name"),
            (without("community"), "community"),
            (with("community", json!("3201")), "community"),
            (without("visit_every_days"), "visit_every_days"),
            (with("visit_every_days", json!(0)), "visit_every_days"),
            (with("visit_every_days", json!(-3)), "visit_every_days"),
            (with("visit_every_days", json!(1.5)), "visit_every_days"),
            (with("visit_every_days", json!("7")), "visit_every_days"),
            (without("last_visit"), "last_visit"),
            (with("last_visit", json!("上周")), "last_visit"),
            (with("last_visit", json!(12)), "last_visit"),
            (with("last_visit", json!(true)), "last_visit"),
            (with("lat", json!(132.0)), "lat"),
            (with("lat", json!(32.0)), "lon"),
            (with("location", json!({ "lat": "north" })), "location.lat"),
            (json!(["not", "an", "object"]), "object"),
        ] {
            let err = parse_resident(CST, "r", &value).unwrap_err();
            assert!(err.contains(why), "{value}: {err}");
        }
    }
}
