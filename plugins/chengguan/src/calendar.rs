//! Local time (UTC+8) and ISO 8601 weeks, computed by hand: the plugin needs only
//! these few conversions, and a calendar crate would add weight to every instance.
//!
//! Days are counted from 1970-01-01 (day 0, a Thursday) in local time. The
//! civil-date conversions are the proleptic Gregorian ones of the well-known
//! "days from civil" algorithm (eras of 400 years, March-based years).
//!
//! An ISO week runs Monday to Sunday and belongs to the year that holds its
//! Thursday; week 1 is the week with the year's first Thursday (equivalently, the
//! week holding 4 January). So 2027-01-01, a Friday, is in `2026-W53`, and
//! 2025-12-29, a Monday, is in `2026-W01`.

use std::fmt;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;
/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// The city's offset from UTC (China Standard Time, no daylight saving).
pub const OFFSET_MS: i64 = 8 * HOUR_MS;

/// The local day number (days since 1970-01-01 local) of a UTC timestamp in ms.
pub fn local_day(time_ms: i64) -> i64 {
    time_ms.saturating_add(OFFSET_MS).div_euclid(DAY_MS)
}

/// The local hour of day, 0..=23, of a UTC timestamp in ms.
pub fn local_hour(time_ms: i64) -> u32 {
    // `rem_euclid` of a day is in 0..DAY_MS, so the hour fits 0..24.
    (time_ms.saturating_add(OFFSET_MS).rem_euclid(DAY_MS) / HOUR_MS) as u32
}

/// The ISO weekday of a day number: 1 = Monday ... 7 = Sunday.
pub fn weekday(day: i64) -> i64 {
    // Day 0 (1970-01-01) was a Thursday, weekday 4.
    (day + 3).rem_euclid(7) + 1
}

/// The day number of a civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0..=399
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // 0..=365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0..=146096
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number.
pub fn civil_from_days(day: i64) -> (i64, u32, u32) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // 0..=11
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// An ISO 8601 week: its ISO year and number (1..=53). Displays as `2026-W05`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    pub year: i64,
    pub week: u32,
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

impl IsoWeek {
    /// The ISO week holding day number `day`.
    pub fn of_day(day: i64) -> IsoWeek {
        // The week's Thursday decides the year.
        let thursday = day - (weekday(day) - 1) + 3;
        let (year, _, _) = civil_from_days(thursday);
        let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
        IsoWeek {
            year,
            week: week as u32,
        }
    }

    /// The ISO week, in local time (UTC+8), of a UTC timestamp in ms.
    pub fn of_time(time_ms: i64) -> IsoWeek {
        IsoWeek::of_day(local_day(time_ms))
    }

    /// The day number of the week's Monday.
    pub fn monday(self) -> i64 {
        let jan4 = days_from_civil(self.year, 1, 4);
        let week1 = jan4 - (weekday(jan4) - 1);
        week1 + 7 * (i64::from(self.week) - 1)
    }

    /// The week `n` weeks before this one.
    pub fn minus(self, n: i64) -> IsoWeek {
        IsoWeek::of_day(self.monday() - 7 * n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> i64 {
        let mut parts = text.split('-').map(|p| p.parse::<i64>().unwrap());
        let (y, m, d) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        days_from_civil(y, m as u32, d as u32)
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for d in -800_000..800_000 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(weekday(0), 4, "1970-01-01 was a Thursday");
        assert_eq!(weekday(day("2026-11-30")), 1, "a Monday");
    }

    /// Expected labels from an independent ISO calendar implementation.
    #[test]
    fn iso_weeks_at_year_boundaries() {
        for (date, label) in [
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
            assert_eq!(IsoWeek::of_day(day(date)).to_string(), label, "{date}");
        }
    }

    /// Against the other definition (week 1 holds 4 January), day by day.
    #[test]
    fn iso_weeks_agree_with_the_fourth_of_january_rule() {
        let week1 = |y: i64| {
            let jan4 = days_from_civil(y, 1, 4);
            jan4 - (weekday(jan4) - 1)
        };
        for d in day("1999-01-01")..day("2041-01-01") {
            let (y, _, _) = civil_from_days(d);
            let year = [y - 1, y, y + 1]
                .into_iter()
                .rev()
                .find(|&c| week1(c) <= d)
                .unwrap();
            let expected = IsoWeek {
                year,
                week: ((d - week1(year)) / 7 + 1) as u32,
            };
            assert_eq!(IsoWeek::of_day(d), expected, "day {d}");
            assert_eq!(expected.monday(), d - (weekday(d) - 1));
        }
    }

    #[test]
    fn weeks_are_local_time() {
        // 2026-01-04T16:00Z is Monday 2026-01-05 00:00 in UTC+8.
        let monday_local = day("2026-01-04") * DAY_MS + 16 * HOUR_MS;
        assert_eq!(IsoWeek::of_time(monday_local).to_string(), "2026-W02");
        assert_eq!(IsoWeek::of_time(monday_local - 1).to_string(), "2026-W01");
        // New Year's Eve 2026-12-31T16:30Z is Friday 2027-01-01 00:30 local: still 2026-W53.
        let new_year = day("2026-12-31") * DAY_MS + 16 * HOUR_MS + 30 * 60_000;
        assert_eq!(IsoWeek::of_time(new_year).to_string(), "2026-W53");
        assert_eq!(local_hour(new_year), 0);
        assert_eq!(local_hour(monday_local - 1), 23);
        assert_eq!(local_hour(-1), 7, "before the epoch too");
    }

    #[test]
    fn earlier_weeks_cross_years() {
        let w = IsoWeek::of_day(day("2027-01-06"));
        assert_eq!(w.to_string(), "2027-W01");
        let back: Vec<String> = (1..=4).map(|n| w.minus(n).to_string()).collect();
        assert_eq!(back, ["2026-W53", "2026-W52", "2026-W51", "2026-W50"]);
        // 2026-01-07 is in 2026-W02; 2026-01-01 (a Thursday) in 2026-W01.
        assert_eq!(
            IsoWeek::of_day(day("2026-01-07")).minus(1).to_string(),
            "2026-W01"
        );
        assert_eq!(
            IsoWeek::of_day(day("2026-01-01")).minus(1).to_string(),
            "2025-W52"
        );
        assert_eq!(
            IsoWeek::of_day(day("2021-01-10")).minus(1).to_string(),
            "2020-W53"
        );
    }
}
