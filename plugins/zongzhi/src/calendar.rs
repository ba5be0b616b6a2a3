//! Calendar work in the city's local time, with `chrono`: dates, ISO 8601 weeks
//! and the visit times of the `vulnerable-residents` records.
//!
//! The city keeps one fixed offset from UTC (UTC+8, no daylight saving), given in
//! the plugin's config, so no time-zone database is needed.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, Timelike, Utc};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The earliest year the plugin accepts anywhere (a visit, a day, a week): older
/// values are typing errors, not records.
const MIN_YEAR: i32 = 2000;
/// The latest year the plugin accepts.
const MAX_YEAR: i32 = 2200;

/// Instants are clamped to ±8e15 ms (about ±250,000 years), inside chrono's range.
const LIMIT_MS: i64 = 8_000_000_000_000_000;

const DATE_FORMAT: &str = "%Y-%m-%d";
const WEEK_FORMAT: &str = "%G-W%V";

fn accepted(date: NaiveDate) -> bool {
    (MIN_YEAR..=MAX_YEAR).contains(&date.year())
}

/// A strict `YYYY-MM-DD` (a real date, years 2000-2200).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let date = NaiveDate::parse_from_str(text, DATE_FORMAT).ok()?;
    // Only the canonical spelling: chrono would also take `2026-1-5` or `+2026-...`.
    (accepted(date) && date.format(DATE_FORMAT).to_string() == text).then_some(date)
}

/// A strict `YYYY-Www` (a week the year has) as the week's Monday.
pub fn parse_week(text: &str) -> Option<NaiveDate> {
    // chrono needs a weekday to place an ISO week: read it as its Monday.
    let monday = NaiveDate::parse_from_str(&format!("{text}-1"), &format!("{WEEK_FORMAT}-%u")).ok()?;
    (accepted(monday) && monday.format(WEEK_FORMAT).to_string() == text).then_some(monday)
}

/// The city's clock: a fixed offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Milliseconds to add to UTC to get local time.
    pub offset_ms: i64,
}

impl LocalTime {
    /// UTC plus `hours`.
    pub fn utc_plus(hours: i64) -> LocalTime {
        LocalTime {
            offset_ms: hours * 3_600_000,
        }
    }

    /// The offset for chrono; one of a day or more (never configured) counts as UTC.
    fn offset(self) -> FixedOffset {
        let secs = i32::try_from(self.offset_ms / 1000).ok();
        secs.and_then(FixedOffset::east_opt).unwrap_or(Utc.fix())
    }

    /// The local date and time of instant `ms`.
    fn local(self, ms: i64) -> NaiveDateTime {
        let utc = DateTime::from_timestamp_millis(ms.clamp(-LIMIT_MS, LIMIT_MS)).unwrap_or_default();
        utc.with_timezone(&self.offset()).naive_local()
    }

    /// The instant of local midnight at the start of `date`.
    pub fn midnight(self, date: NaiveDate) -> i64 {
        at(date.and_time(NaiveTime::MIN), self.offset())
    }

    /// The ISO week label (`2026-W48`) of instant `ms`, in local time.
    pub fn week_of(self, ms: i64) -> String {
        self.local(ms).format(WEEK_FORMAT).to_string()
    }

    /// The local date label (`2026-11-28`) of instant `ms`.
    pub fn date_of(self, ms: i64) -> String {
        self.local(ms).format(DATE_FORMAT).to_string()
    }

    /// Whether `ms` lies in the years the plugin accepts (2000-2200).
    pub fn plausible(self, ms: i64) -> bool {
        accepted(self.local(ms).date())
    }

    /// A point in time written as text: `YYYY-MM-DD` (local midnight),
    /// `YYYY-MM-DDTHH:MM[:SS[.fff]]` (local time, a space also separates), with an
    /// optional `Z` or `±HH:MM` offset, or milliseconds since the epoch in digits.
    pub fn parse_time(self, text: &str) -> Option<i64> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            let ms = text.parse().ok()?;
            return self.plausible(ms).then_some(ms);
        }
        let date = parse_date(text.get(0..10)?)?;
        let rest = &text[10..];
        if rest.is_empty() {
            return Some(self.midnight(date));
        }
        let rest = rest.strip_prefix(['T', ' '])?;
        // The zone: `Z`, `+08:00`, `-05:00`, or none (local).
        let zone_at = rest.len().saturating_sub(6);
        let (clock, offset) = if let Some(clock) = rest.strip_suffix('Z') {
            (clock, Utc.fix())
        } else if zone_at > 0 && rest.get(zone_at..)?.starts_with(['+', '-']) {
            let (clock, zone) = rest.split_at(zone_at);
            (clock, zone.parse().ok().filter(|_| zone.as_bytes()[3] == b':')?)
        } else {
            (rest, self.offset())
        };
        let time = NaiveTime::parse_from_str(clock, "%H:%M:%S%.f")
            .or_else(|_| NaiveTime::parse_from_str(clock, "%H:%M"))
            .ok()
            // No leap seconds (chrono reads `:60` as one).
            .filter(|t| t.nanosecond() < 1_000_000_000)?;
        Some(at(date.and_time(time), offset))
    }
}

/// The instant (ms since the epoch) of local date and time `local` at `offset`.
fn at(local: NaiveDateTime, offset: FixedOffset) -> i64 {
    local.and_utc().timestamp_millis() - i64::from(offset.local_minus_utc()) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    const CST: LocalTime = LocalTime {
        offset_ms: 8 * 3_600_000,
    };

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// ISO weeks where the calendar year and the week-based year part.
    #[test]
    fn iso_weeks_at_year_boundaries() {
        let cases = [
            ((2026, 11, 28), "2026-W48"),
            // 1 January 2021 was a Friday: it belongs to the last week of 2020 (W53).
            ((2021, 1, 1), "2020-W53"),
            ((2021, 1, 3), "2020-W53"),
            ((2021, 1, 4), "2021-W01"),
            // 29 December 2025 is a Monday: that week holds 1 January 2026, a Thursday.
            ((2025, 12, 28), "2025-W52"),
            ((2025, 12, 29), "2026-W01"),
            ((2026, 1, 1), "2026-W01"),
            // 31 December 2024 (a Tuesday) is in 2025-W01.
            ((2024, 12, 29), "2024-W52"),
            ((2024, 12, 30), "2025-W01"),
            ((2024, 12, 31), "2025-W01"),
            // 2026 has 53 weeks: 1 January 2027 (a Friday) is still in 2026-W53.
            ((2026, 12, 31), "2026-W53"),
            ((2027, 1, 3), "2026-W53"),
            ((2027, 1, 4), "2027-W01"),
            // 2022 began on a Saturday: 1-2 January are in 2021-W52.
            ((2022, 1, 2), "2021-W52"),
            ((2022, 1, 3), "2022-W01"),
        ];
        for ((y, m, d), label) in cases {
            // Any instant of the local day is in the day's week.
            let midnight = CST.midnight(date(y, m, d));
            assert_eq!(CST.week_of(midnight), label, "{y}-{m}-{d}");
            assert_eq!(CST.week_of(midnight + DAY_MS - 1), label, "{y}-{m}-{d}");
        }
        // 2020 and 2026 have 53 weeks, 2021 has 52.
        assert!(parse_week("2020-W53").is_some() && parse_week("2026-W53").is_some());
        assert_eq!(parse_week("2021-W53"), None);
        assert_eq!(parse_week("2020-W53"), Some(date(2020, 12, 28)));
        assert_eq!(parse_week("2026-W01"), Some(date(2025, 12, 29)));
        assert_eq!(parse_week("2026-W48"), Some(date(2026, 11, 23)));
    }

    /// The week of an instant is the week of its local (UTC+8) date.
    #[test]
    fn weeks_follow_local_time() {
        // 2026-11-29 23:30 local is 2026-11-29 15:30 UTC: still W48.
        let sunday_night = CST.midnight(date(2026, 11, 29)) + 23 * 3_600_000 + 30 * 60_000;
        assert_eq!(CST.week_of(sunday_night), "2026-W48");
        // 2026-11-30 00:30 local is 2026-11-29 16:30 UTC: already W49, although UTC says Sunday.
        let monday_early = CST.midnight(date(2026, 11, 30)) + 30 * 60_000;
        assert_eq!(CST.week_of(monday_early), "2026-W49");
        assert_eq!(LocalTime::utc_plus(0).week_of(monday_early), "2026-W48");
        // New Year's night: 2025-12-31 17:00 UTC is 2026-01-01 01:00 local.
        let new_year = LocalTime::utc_plus(0).midnight(date(2025, 12, 31)) + 17 * 3_600_000;
        assert_eq!(CST.date_of(new_year), "2026-01-01");
        assert_eq!(CST.week_of(new_year), "2026-W01");
        assert_eq!(CST.date_of(CST.midnight(date(2024, 2, 29))), "2024-02-29");
        assert_eq!(CST.date_of(CST.midnight(date(2024, 2, 29)) - 1), "2024-02-28");
    }

    #[test]
    fn plausible_times_are_local_years_2000_to_2200() {
        let first = CST.midnight(date(2000, 1, 1));
        let end = CST.midnight(date(2201, 1, 1));
        assert!(CST.plausible(first) && CST.plausible(end - 1));
        assert!(!CST.plausible(first - 1) && !CST.plausible(end));
        assert!(!CST.plausible(i64::MAX) && !CST.plausible(i64::MIN));
        assert_eq!(CST.week_of(i64::MAX).len(), CST.week_of(i64::MIN).len());
    }

    #[test]
    fn dates_and_weeks_parse_strictly() {
        assert_eq!(parse_date("2026-11-28"), Some(date(2026, 11, 28)));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-11-31",
            "26-11-28",
            "2026/11/28",
            "1999-12-31",
            "２０２６-11-28",
            "2026-1-28",
            "+2026-11-28",
            " 2026-11-28",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_week("2026-W48"), Some(date(2026, 11, 23)));
        assert_eq!(parse_week("2026-W53"), Some(date(2026, 12, 28)));
        for bad in ["2025-W53", "2026-W00", "2026-W54", "2026W48", "2026-w48", "2026-W4", "1999-W10", ""] {
            assert_eq!(parse_week(bad), None, "{bad}");
        }
    }

    #[test]
    fn visit_times_parse_in_local_time() {
        let midnight = CST.midnight(date(2026, 11, 1));
        assert_eq!(CST.parse_time("2026-11-01"), Some(midnight));
        assert_eq!(
            CST.parse_time("2026-11-01T09:30"),
            Some(midnight + 9 * 3_600_000 + 30 * 60_000)
        );
        assert_eq!(
            CST.parse_time("2026-11-01 09:30:15.5"),
            Some(midnight + (9 * 3600 + 30 * 60 + 15) * 1000 + 500)
        );
        assert_eq!(CST.parse_time("2026-11-01T01:00:00Z"), Some(midnight + 9 * 3_600_000));
        assert_eq!(
            CST.parse_time("2026-11-01T09:00:00+08:00"),
            Some(midnight + 9 * 3_600_000)
        );
        assert_eq!(
            CST.parse_time("2026-11-01T04:00-05:00"),
            Some(midnight + 17 * 3_600_000)
        );
        assert_eq!(CST.parse_time(&(midnight).to_string()), Some(midnight));
        for bad in [
            "2026-11-01T25:00",
            "2026-11-01T09",
            "2026-11-01X",
            "yesterday",
            "2026-11-01T09:00+8",
            "2026-11-01T09:00+08 00",
            "2026-11-01T09:00:60",
            "2026-11-01T09:00+0中:",
            "12",
        ] {
            assert_eq!(CST.parse_time(bad), None, "{bad}");
        }
    }
}
