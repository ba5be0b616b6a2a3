//! Local time (UTC+8) and ISO 8601 weeks, with `chrono`.
//!
//! An ISO week runs Monday to Sunday and belongs to the year that holds its
//! Thursday; so 2027-01-01, a Friday, is in `2026-W53`, and 2025-12-29, a Monday,
//! is in `2026-W01`.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Weekday};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;
/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// The city's offset from UTC (China Standard Time, no daylight saving).
const CST: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};
/// Times are clamped to ±8e15 ms (about ±250,000 years), inside chrono's range.
const LIMIT_MS: i64 = 8_000_000_000_000_000;

/// The local (UTC+8) date and time of a UTC timestamp in ms.
fn local(time_ms: i64) -> NaiveDateTime {
    let utc = DateTime::from_timestamp_millis(time_ms.clamp(-LIMIT_MS, LIMIT_MS)).unwrap_or_default();
    utc.with_timezone(&CST).naive_local()
}

/// The local hour of day, 0..=23, of a UTC timestamp in ms.
pub fn local_hour(time_ms: i64) -> u32 {
    local(time_ms).hour()
}

/// An ISO 8601 week: its ISO year and number (1..=53). Displays as `2026-W05`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    pub year: i32,
    pub week: u32,
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

impl IsoWeek {
    /// The ISO week holding `date`.
    pub fn of_date(date: NaiveDate) -> IsoWeek {
        let w = date.iso_week();
        IsoWeek {
            year: w.year(),
            week: w.week(),
        }
    }

    /// The ISO week, in local time (UTC+8), of a UTC timestamp in ms.
    pub fn of_time(time_ms: i64) -> IsoWeek {
        IsoWeek::of_date(local(time_ms).date())
    }

    /// The week's Monday, if chrono's range holds it.
    pub fn monday(self) -> Option<NaiveDate> {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
    }

    /// The week `n` weeks before this one (the earliest week chrono has, if
    /// that is out of its range).
    pub fn minus(self, n: i64) -> IsoWeek {
        let monday = self
            .monday()
            .and_then(|d| d.checked_sub_signed(TimeDelta::try_weeks(n)?));
        IsoWeek::of_date(monday.unwrap_or(NaiveDate::MIN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// UTC `hour:minute` on `day`, in ms.
    fn utc(day: &str, hour: u32, minute: u32) -> i64 {
        date(day).and_hms_opt(hour, minute, 0).unwrap().and_utc().timestamp_millis()
    }

    /// Expected labels from an independent ISO calendar implementation.
    #[test]
    fn iso_weeks_at_year_boundaries() {
        for (day, label) in [
            ("1970-01-01", "1970-W01"),
            ("2008-12-29", "2009-W01"),
            ("2010-01-03", "2009-W53"),
            ("2015-12-31", "2015-W53"),
            ("2016-01-03", "2015-W53"),
            ("2016-01-04", "2016-W01"),
            ("2020-12-31", "2020-W53"),
            ("2021-01-03", "2020-W53"),
            ("2021-01-04", "2021-W01"),
            ("2024-12-29", "2024-W52"),
            ("2024-12-30", "2025-W01"),
            ("2025-12-28", "2025-W52"),
            ("2025-12-29", "2026-W01"),
            ("2026-01-01", "2026-W01"),
            ("2026-12-31", "2026-W53"),
            ("2027-01-01", "2026-W53"),
            ("2027-01-03", "2026-W53"),
            ("2027-01-04", "2027-W01"),
        ] {
            assert_eq!(IsoWeek::of_date(date(day)).to_string(), label, "{day}");
        }
    }

    /// Against the other definition (week 1 holds 4 January), day by day.
    #[test]
    fn iso_weeks_agree_with_the_fourth_of_january_rule() {
        let monday_of = |d: NaiveDate| d - TimeDelta::days(d.weekday().num_days_from_monday().into());
        let week1 = |y: i32| monday_of(NaiveDate::from_ymd_opt(y, 1, 4).unwrap());
        for d in date("1999-01-01").iter_days().take_while(|&d| d < date("2041-01-01")) {
            let y = d.year();
            let year = [y - 1, y, y + 1]
                .into_iter()
                .rev()
                .find(|&c| week1(c) <= d)
                .unwrap();
            let expected = IsoWeek {
                year,
                week: ((d - week1(year)).num_days() / 7 + 1) as u32,
            };
            assert_eq!(IsoWeek::of_date(d), expected, "{d}");
            assert_eq!(expected.monday(), Some(monday_of(d)));
        }
    }

    #[test]
    fn weeks_are_local_time() {
        // 2026-01-04T16:00Z is Monday 2026-01-05 00:00 in UTC+8.
        let monday_local = utc("2026-01-04", 16, 0);
        assert_eq!(IsoWeek::of_time(monday_local).to_string(), "2026-W02");
        assert_eq!(IsoWeek::of_time(monday_local - 1).to_string(), "2026-W01");
        // New Year's Eve 2026-12-31T16:30Z is Friday 2027-01-01 00:30 local: still 2026-W53.
        let new_year = utc("2026-12-31", 16, 30);
        assert_eq!(IsoWeek::of_time(new_year).to_string(), "2026-W53");
        assert_eq!(local_hour(new_year), 0);
        assert_eq!(local_hour(monday_local - 1), 23);
        assert_eq!(local_hour(-1), 7, "before the epoch too");
    }

    #[test]
    fn extreme_times_are_clamped() {
        assert!(IsoWeek::of_time(i64::MAX).year > 200_000);
        assert!(IsoWeek::of_time(i64::MIN).year < -200_000);
        assert!(local_hour(i64::MAX) < 24 && local_hour(i64::MIN) < 24);
        let first = IsoWeek::of_date(NaiveDate::MIN);
        assert_eq!(first.minus(1), first);
    }

    #[test]
    fn earlier_weeks_cross_years() {
        let w = IsoWeek::of_date(date("2027-01-06"));
        assert_eq!(w.to_string(), "2027-W01");
        let back: Vec<String> = (1..=4).map(|n| w.minus(n).to_string()).collect();
        assert_eq!(back, ["2026-W53", "2026-W52", "2026-W51", "2026-W50"]);
        // 2026-01-07 is in 2026-W02; 2026-01-01 (a Thursday) in 2026-W01.
        assert_eq!(
            IsoWeek::of_date(date("2026-01-07")).minus(1).to_string(),
            "2026-W01"
        );
        assert_eq!(
            IsoWeek::of_date(date("2026-01-01")).minus(1).to_string(),
            "2025-W52"
        );
        assert_eq!(
            IsoWeek::of_date(date("2021-01-10")).minus(1).to_string(),
            "2020-W53"
        );
    }
}
