//! Calendar ticks on the bus: `time.day` when a local day ends and `time.week`
//! when an ISO week (Monday to Sunday) ends, for plugins that work by the day
//! or the week (overdue visits, weekly summaries).
//!
//! Local time is China Standard Time, UTC+8 (no daylight saving). The last
//! tick of each kind is kept in `clock_ticks`, so a restart neither repeats a
//! tick nor skips one: ticks missed while the host was down are published on
//! the next check, the most recent [`MAX_CATCH_UP`] of them. The very first
//! check only records where the calendar stands.

use yiwang_wit::events::{DayEnded, Payload, WeekEnded};
use sqlx::Row;

use crate::bus::{Bus, Event};
use crate::calendar::{civil_from_days as civil, days_from_civil};
use crate::db::Db;
use crate::error::{ServiceError, new_id};

/// The local offset from UTC, in milliseconds (UTC+8).
pub const UTC_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// At most this many missed ticks of one kind are published after a gap.
pub const MAX_CATCH_UP: i64 = 7;

/// The local day number (days since 1970-01-01 local) holding `ms`.
fn local_day(ms: i64) -> i64 {
    (ms + UTC_OFFSET_MS).div_euclid(DAY_MS)
}

/// The UTC instant at which local day `day` begins.
fn day_start(day: i64) -> i64 {
    day * DAY_MS - UTC_OFFSET_MS
}

/// Monday = 0 … Sunday = 6 of a day number (1970-01-01 was a Thursday).
fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// The ISO 8601 week label (`2026-W48`) of the week holding day `day`.
pub fn iso_week(day: i64) -> String {
    // The week belongs to the year of its Thursday.
    let thursday = day - weekday(day) + 3;
    let (year, _, _) = civil(thursday);
    let jan1 = days_from_civil(year, 1, 1);
    format!("{year}-W{:02}", (thursday - jan1) / 7 + 1)
}


/// A tick's payload as JSON (its fields in the order the contract writes them).
fn json(payload: &impl Payload) -> serde_json::Value {
    serde_json::to_value(payload).expect("a tick serialises")
}

/// One tick to publish: its topic, payload and time.
type Tick = (String, serde_json::Value, i64);

/// The ticks due at `now` given the last published ends, as
/// (kind, end of the last one, ticks). Pure, for tests.
fn due(now: i64, last_day: Option<i64>, last_week: Option<i64>) -> Vec<(&'static str, i64, Vec<Tick>)> {
    let today = local_day(now);
    let mut out = Vec::new();
    // Days: the boundary is the start of today.
    let boundary = day_start(today);
    let mut days = Vec::new();
    if let Some(last) = last_day {
        let first = (local_day(last)).max(today - MAX_CATCH_UP);
        for d in first..today {
            let (y, m, dd) = civil(d);
            let payload = DayEnded { day: format!("{y:04}-{m:02}-{dd:02}"), start: day_start(d), end: day_start(d + 1) };
            days.push((DayEnded::TOPIC.to_owned(), json(&payload), day_start(d + 1)));
        }
    }
    if last_day != Some(boundary) {
        out.push(("day", boundary, days));
    }
    // Weeks: the boundary is the start of this week's Monday.
    let monday = today - weekday(today);
    let boundary = day_start(monday);
    let mut weeks = Vec::new();
    if let Some(last) = last_week {
        let mut w = local_day(last).max(monday - 7 * MAX_CATCH_UP);
        // Align to a Monday (a stored end always is one).
        w -= weekday(w);
        while w < monday {
            let payload = WeekEnded { week: iso_week(w), start: day_start(w), end: day_start(w + 7) };
            weeks.push((WeekEnded::TOPIC.to_owned(), json(&payload), day_start(w + 7)));
            w += 7;
        }
    }
    if last_week != Some(boundary) {
        out.push(("week", boundary, weeks));
    }
    out
}

/// Publish the `time.day` and `time.week` ticks due at `now` and record them.
/// Returns the events published, oldest first.
pub async fn publish_due(db: &Db, bus: &dyn Bus, now: i64) -> Result<Vec<Event>, ServiceError> {
    let rows = sqlx::query("SELECT name, last_end FROM clock_ticks").fetch_all(db.pool()).await?;
    let mut last_day = None;
    let mut last_week = None;
    for r in &rows {
        let name: String = r.try_get(0)?;
        let end: i64 = r.try_get(1)?;
        match name.as_str() {
            "day" => last_day = Some(end),
            "week" => last_week = Some(end),
            _ => {}
        }
    }
    let mut published = Vec::new();
    for (kind, end, events) in due(now, last_day, last_week) {
        // Recorded first: after a crash a tick is missed rather than repeated.
        sqlx::query(
            "INSERT INTO clock_ticks (name, last_end) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET last_end = excluded.last_end",
        )
        .bind(kind)
        .bind(end)
        .execute(db.writer())
        .await?;
        for (topic, payload, time) in events {
            let event = Event {
                id: new_id(),
                topic,
                source: "host:clock".into(),
                time,
                location: None,
                payload: payload.to_string(),
            };
            if let Err(e) = bus.publish(event.clone()).await {
                tracing::warn!("could not publish {}: {e}", event.topic);
            }
            published.push(event);
        }
    }
    Ok(published)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_weeks_at_year_boundaries() {
        let d = |y, m, d| days_from_civil(y, m, d);
        assert_eq!(iso_week(d(2026, 11, 28)), "2026-W48");
        // 2021-01-03 (a Sunday) is in the last week of 2020.
        assert_eq!(iso_week(d(2021, 1, 3)), "2020-W53");
        assert_eq!(iso_week(d(2021, 1, 4)), "2021-W01");
        // 2024-12-30 (a Monday) starts 2025's first week.
        assert_eq!(iso_week(d(2024, 12, 30)), "2025-W01");
        assert_eq!(iso_week(d(2026, 12, 31)), "2026-W53");
        assert_eq!(civil(d(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(weekday(d(2026, 11, 30)), 0);
    }

    #[test]
    fn first_check_records_only_and_a_midnight_ticks_once() {
        // 2026-11-28 10:00 local.
        let now = day_start(days_from_civil(2026, 11, 28)) + 10 * 3_600_000;
        let first = due(now, None, None);
        assert!(first.iter().all(|(_, _, events)| events.is_empty()));
        let (_, day_end, _) = first[0];
        let (_, week_end, _) = first[1];
        assert_eq!(due(now + 3_600_000, Some(day_end), Some(week_end)).len(), 0);
        // Past midnight into Sunday the 29th: one day tick.
        let sunday = day_start(days_from_civil(2026, 11, 29)) + 60_000;
        let ticks = due(sunday, Some(day_end), Some(week_end));
        assert_eq!(ticks.len(), 1);
        assert_eq!(ticks[0].2[0].1["day"], "2026-11-28");
        // Past Monday's midnight: the Sunday and the week 2026-W48.
        let monday = day_start(days_from_civil(2026, 11, 30)) + 60_000;
        let ticks = due(monday, Some(ticks[0].1), Some(week_end));
        assert_eq!(ticks[0].2.len(), 1);
        assert_eq!(ticks[0].2[0].1["day"], "2026-11-29");
        assert_eq!(ticks[1].2.len(), 1);
        assert_eq!(ticks[1].2[0].1["week"], "2026-W48");
        assert_eq!(ticks[1].2[0].1["end"], day_start(days_from_civil(2026, 11, 30)));
    }

    #[test]
    fn a_long_gap_catches_up_the_last_week_of_days_only() {
        let start = day_start(days_from_civil(2026, 1, 1));
        let now = day_start(days_from_civil(2026, 3, 1)) + 1;
        let ticks = due(now, Some(start), Some(day_start(days_from_civil(2025, 12, 29))));
        assert_eq!(ticks[0].2.len() as i64, MAX_CATCH_UP);
        assert_eq!(ticks[0].2.last().unwrap().1["day"], "2026-02-28");
        assert_eq!(ticks[1].2.len() as i64, MAX_CATCH_UP);
    }
}
