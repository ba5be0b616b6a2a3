//! The weekly community safety report (本周社区平安报告), on `time.week`.

use std::collections::BTreeMap;

use yiwang_sdk::events::WeekEnded;
use yiwang_sdk::prelude::*;

use crate::calendar::{self, DAY_MS, LocalTime};
use crate::grid::{FirstError, payload_of};
use crate::record::{self, EventRecord};
use crate::settings::Settings;
use crate::tally;

/// Topic of the weekly figures.
pub const SUMMARY_TOPIC: &str = "zongzhi.weekly-summary";

/// An ISO week just ended, as `time.week` announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Week {
    pub label: String,
    pub start: i64,
    pub end: i64,
}

/// The week of a `time.week` payload, or why it is unusable.
pub fn check_week(local: LocalTime, p: &WeekEnded) -> Result<Week, String> {
    let label = p.week.trim();
    let monday =
        calendar::parse_week(label).ok_or_else(|| format!("`week` `{label}` is not an ISO week such as 2026-W48"))?;
    let (start, end) = (p.start, p.end);
    if start != local.midnight(monday) || end != start + 7 * DAY_MS {
        return Err(format!(
            "`start` {start} and `end` {end} are not the bounds of the local week {label}"
        ));
    }
    Ok(Week {
        label: label.to_owned(),
        start,
        end,
    })
}

/// The week's figures of one community, or of the whole city.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct Figures {
    /// Grid events (cases) of the plugin's categories reported this week.
    pub cases: u32,
    /// Of those, per category code.
    pub by_category: BTreeMap<String, u32>,
    /// Still being handled, closed (结案), withdrawn (voided, rejected or merged).
    pub open: u32,
    pub closed: u32,
    pub withdrawn: u32,
    /// Cases a street called a district department in for (街道吹哨).
    pub escalated: u32,
    /// Overdue visits to vulnerable residents for which a case was opened.
    pub overdue_visits: u32,
}

impl Figures {
    fn add(&mut self, r: &EventRecord) {
        match r.kind.as_str() {
            record::KIND_CASE => {
                self.cases += 1;
                *self.by_category.entry(r.category.clone()).or_default() += 1;
                match r.status.as_str() {
                    record::CLOSED => self.closed += 1,
                    record::WITHDRAWN => self.withdrawn += 1,
                    _ => self.open += 1,
                }
                self.escalated += u32::from(r.escalated);
            }
            record::KIND_VISIT if r.overdue_case.is_some() => self.overdue_visits += 1,
            _ => {}
        }
    }

    /// The short Chinese report: `共受理综治事件 3 件（邻里纠纷 2 件、安全隐患 1 件）；...`.
    pub fn text(&self, s: &Settings) -> String {
        let kinds: Vec<String> = self
            .by_category
            .iter()
            .map(|(code, n)| format!("{} {n} 件", s.category(code).map_or(code.as_str(), |c| c.name.as_str())))
            .collect();
        let kinds = if kinds.is_empty() {
            String::new()
        } else {
            format!("（{}）", kinds.join("、"))
        };
        format!(
            "共受理综治事件 {} 件{kinds}；已结案 {} 件，在办 {} 件，不予受理、作废或合并 {} 件；街道吹哨、部门报到 {} 件；重点人员走访逾期 {} 人次。",
            self.cases, self.closed, self.open, self.withdrawn, self.escalated, self.overdue_visits
        )
    }
}

/// One community's figures, as published.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct CommunityFigures {
    pub community: String,
    pub street: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The week's figures per community (in code order) and for the city, from the
/// records of `zongzhi-events`.
pub fn tally(records: &[EventRecord]) -> (Vec<CommunityFigures>, Figures) {
    let mut per: BTreeMap<String, CommunityFigures> = BTreeMap::new();
    let mut city = Figures::default();
    for r in records {
        if !matches!(r.kind.as_str(), record::KIND_CASE | record::KIND_VISIT) {
            continue;
        }
        if !record::is_code(&r.community, 12) {
            warn!(
                "left out of the weekly report: a `{}` record with community `{}`",
                r.kind, r.community
            );
            continue;
        }
        per.entry(r.community.clone())
            .or_insert_with(|| CommunityFigures {
                community: r.community.clone(),
                street: r.street.clone(),
                figures: Figures::default(),
            })
            .figures
            .add(r);
        city.add(r);
    }
    (per.into_values().collect(), city)
}

/// The records of a week from before the tallies ([`tally::tallied`]), by a query
/// of its records (which scans the data set: only for those weeks); and whether the
/// page limit cut them short.
fn queried(s: &Settings, week: &Week) -> Result<(Vec<EventRecord>, bool), Error> {
    let (found, truncated) = record::query_all(
        record::EVENTS,
        &[data::eq("week", week.label.as_str())],
        s.page_size,
        s.max_pages,
    )?;
    if truncated {
        warn!(
            "the report of {} counts only the first {} pages of records",
            week.label, s.max_pages
        );
    }
    let mut records = Vec::with_capacity(found.len());
    for r in &found {
        match r.value_json::<EventRecord>() {
            Ok(rec) => records.push(rec),
            Err(e) => warn!("left out of the weekly report: {e}"),
        }
    }
    Ok((records, truncated))
}

/// `time.week`: publish the week's figures, tell each community's leaders theirs
/// and the department the city's. Once per week.
pub fn on_week(s: &Settings, event: &Event) -> Result<(), Error> {
    let Some(p) = payload_of::<WeekEnded>(event) else { return Ok(()) };
    let week = match check_week(s.local, &p) {
        Ok(week) => week,
        Err(why) => {
            warn!("skipped time.week event {}: {why}", event.id);
            return Ok(());
        }
    };
    let done_key = format!("summary-{}", week.label);
    if record::load(&done_key)?.is_some() {
        info!("the report of {} went out already", week.label);
        return Ok(());
    }
    let (records, truncated) = if tally::tallied(&week.label)? {
        (tally::records_of(&week.label)?, false)
    } else {
        queried(s, &week)?
    };
    let (communities, city) = tally(&records);
    let mut errors = FirstError::default();
    let figures = json!({
        "week": week.label,
        "start": week.start,
        "end": week.end,
        "communities": communities,
        "city": city,
        "truncated": truncated,
    });
    errors.note(
        &format!("publishing the report of {}", week.label),
        bus::publish(SUMMARY_TOPIC, &figures, None),
    );
    for c in &communities {
        let to = Recipient::Role((c.community.clone(), "leader".into()));
        let subject = format!("本周社区平安报告（{}）", week.label);
        let body = format!("社区 {} 本周（{}）{}", c.community, week.label, c.figures.text(s));
        errors.note(
            &format!("the report to role:{}/leader", c.community),
            messaging::send(&to, &subject, &body),
        );
    }
    let busiest = communities
        .iter()
        .max_by_key(|c| (c.figures.cases, std::cmp::Reverse(c.community.clone())));
    let busiest = match busiest {
        Some(c) if c.figures.cases > 0 => format!("事件最多的社区：{}（{} 件）。", c.community, c.figures.cases),
        _ => String::new(),
    };
    let body = format!(
        "全市本周（{}）涉及 {} 个社区，{}{busiest}",
        week.label,
        communities.len(),
        city.text(s)
    );
    errors.note(
        "the report to department:zongzhi",
        messaging::send(
            &Recipient::Department("zongzhi".into()),
            &format!("全市综治平安周报（{}）", week.label),
            &body,
        ),
    );
    let done = EventRecord {
        kind: record::KIND_SUMMARY.into(),
        week: week.label.clone(),
        time: week.start,
        status: record::CLOSED.into(),
        updated: event.time,
        ..EventRecord::default()
    };
    errors.note(
        &format!("remembering the report of {}", week.label),
        record::store(&done_key, &done),
    );
    info!(
        "report of {}: {} communities, {} cases",
        week.label,
        communities.len(),
        city.cases
    );
    errors.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yiwang_sdk::serde_json::json;

    const CST: LocalTime = LocalTime {
        offset_ms: 8 * 3_600_000,
    };

    #[test]
    fn weeks_must_bound_a_local_iso_week() {
        let start = CST.midnight(calendar::parse_week("2026-W48").unwrap());
        // A payload that is not a `time.week` one, or whose values do not bound the week.
        let check_week = |local, p: &yiwang_sdk::serde_json::Value| {
            match yiwang_sdk::serde_json::from_value::<WeekEnded>(p.clone()) {
                Ok(week) => check_week(local, &week),
                Err(e) => Err(e.to_string()),
            }
        };
        let good = json!({ "week": "2026-W48", "start": start, "end": start + 7 * DAY_MS });
        assert_eq!(check_week(CST, &good).unwrap().label, "2026-W48");
        // The week across New Year: 2026-W01 starts on Monday 2025-12-29.
        let w1 = CST.midnight(calendar::parse_date("2025-12-29").unwrap());
        assert!(check_week(CST, &json!({ "week": "2026-W01", "start": w1, "end": w1 + 7 * DAY_MS })).is_ok());
        for bad in [
            json!({ "start": start, "end": start + 7 * DAY_MS }),
            json!({ "week": "2026-48", "start": start, "end": start + 7 * DAY_MS }),
            json!({ "week": "2025-W53", "start": start, "end": start + 7 * DAY_MS }),
            json!({ "week": "2026-W48", "start": start, "end": start + DAY_MS }),
            json!({ "week": "2026-W47", "start": start, "end": start + 7 * DAY_MS }),
            json!({ "week": "2026-W48", "start": null, "end": start + 7 * DAY_MS }),
        ] {
            assert!(check_week(CST, &bad).is_err(), "{bad}");
        }
    }

    fn case(community: &str, category: &str, status: &str, escalated: bool) -> EventRecord {
        EventRecord {
            kind: record::KIND_CASE.into(),
            category: category.into(),
            community: community.into(),
            street: community[..9].into(),
            status: status.into(),
            escalated,
            ..EventRecord::default()
        }
    }

    #[test]
    fn figures_per_community_and_city() {
        let visit = EventRecord {
            kind: record::KIND_VISIT.into(),
            community: "320102001002".into(),
            street: "320102001".into(),
            overdue_case: Some("c9".into()),
            ..EventRecord::default()
        };
        let unopened = EventRecord {
            overdue_case: None,
            ..visit.clone()
        };
        let records = [
            case("320102001001", "020601", record::OPEN, false),
            case("320102001001", "020601", record::CLOSED, false),
            case("320102001001", "020602", record::OPEN, true),
            case("320102001002", "020603", record::WITHDRAWN, false),
            visit,
            unopened,
            EventRecord {
                kind: record::KIND_SUMMARY.into(),
                ..EventRecord::default()
            },
        ];
        let (communities, city) = tally(&records);
        assert_eq!(communities.len(), 2);
        let a = &communities[0].figures;
        assert_eq!(
            (a.cases, a.open, a.closed, a.escalated, a.overdue_visits),
            (3, 2, 1, 1, 0)
        );
        assert_eq!(a.by_category.get("020601"), Some(&2));
        let b = &communities[1].figures;
        assert_eq!((b.cases, b.withdrawn, b.overdue_visits), (1, 1, 1));
        assert_eq!(
            (
                city.cases,
                city.open,
                city.closed,
                city.withdrawn,
                city.escalated,
                city.overdue_visits
            ),
            (4, 2, 1, 1, 1, 1)
        );
    }
}
