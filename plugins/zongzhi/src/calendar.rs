//! Calendar arithmetic in the city's local time: civil dates, ISO 8601 weeks and
//! the visit times of the `vulnerable-residents` records.
//!
//! Everything works on whole days counted from 1970-01-01 in the proleptic
//! Gregorian calendar, so it needs no time-zone database: the city keeps one fixed
//! offset from UTC (UTC+8, no daylight saving), given in the plugin's config.

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The earliest date the plugin accepts anywhere (a visit, a day, a week): older
/// values are typing errors, not records.
const MIN_YEAR: i64 = 2000;
/// The latest year the plugin accepts.
const MAX_YEAR: i64 = 2200;

/// Days from 1970-01-01 to the civil date `year-month-day` (valid dates only).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) `days` after 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The ISO weekday of day `days`: 1 = Monday ... 7 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(days: i64) -> i64 {
    (days + 3).rem_euclid(7) + 1
}

/// The ISO 8601 week (week-based year, week 1..=53) of day `days`: the week
/// that holds the Thursday of the day's Monday-to-Sunday week.
pub fn iso_week(days: i64) -> (i64, u32) {
    let thursday = days - weekday(days) + 4;
    let (year, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
    (year, week as u32)
}

/// The number of ISO weeks of week-based year `year` (52 or 53): 28 December
/// always lies in the year's last week.
pub fn weeks_in_year(year: i64) -> u32 {
    iso_week(days_from_civil(year, 12, 28)).1
}

/// The Monday (in days since 1970-01-01) of ISO week `week` of `year`: week 1 is
/// the week holding 4 January.
pub fn iso_week_monday(year: i64, week: u32) -> i64 {
    let jan4 = days_from_civil(year, 1, 4);
    jan4 - (weekday(jan4) - 1) + (i64::from(week) - 1) * 7
}

/// `2026-W48`.
pub fn week_label(year: i64, week: u32) -> String {
    format!("{year:04}-W{week:02}")
}

/// `2026-11-28`.
pub fn date_label(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A strict `YYYY-MM-DD` (a real date, years 2000-2200) as days since 1970-01-01.
pub fn parse_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&text[0..4])?;
    let month = u32::try_from(digits(&text[5..7])?).ok()?;
    let day = u32::try_from(digits(&text[8..10])?).ok()?;
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// A strict `YYYY-Www` (a week the year has) as (year, week).
pub fn parse_week(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    if b.len() != 8 || b[4] != b'-' || b[5] != b'W' {
        return None;
    }
    let year = digits(&text[0..4])?;
    let week = u32::try_from(digits(&text[6..8])?).ok()?;
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) || week == 0 || week > weeks_in_year(year) {
        return None;
    }
    Some((year, week))
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

    /// The local day (days since 1970-01-01) that holds instant `ms`.
    pub fn day_of(self, ms: i64) -> i64 {
        (ms + self.offset_ms).div_euclid(DAY_MS)
    }

    /// The instant of local midnight at the start of day `days`.
    pub fn midnight(self, days: i64) -> i64 {
        days * DAY_MS - self.offset_ms
    }

    /// The ISO week label (`2026-W48`) of instant `ms`, in local time.
    pub fn week_of(self, ms: i64) -> String {
        let (year, week) = iso_week(self.day_of(ms));
        week_label(year, week)
    }

    /// The local date label (`2026-11-28`) of instant `ms`.
    pub fn date_of(self, ms: i64) -> String {
        date_label(self.day_of(ms))
    }

    /// Whether `ms` lies in the years the plugin accepts (2000-2200).
    pub fn plausible(self, ms: i64) -> bool {
        let lo = self.midnight(days_from_civil(MIN_YEAR, 1, 1));
        let hi = self.midnight(days_from_civil(MAX_YEAR + 1, 1, 1));
        (lo..hi).contains(&ms)
    }

    /// A point in time written as text: `YYYY-MM-DD` (local midnight),
    /// `YYYY-MM-DDTHH:MM[:SS[.fff]]` (local time, a space also separates), with an
    /// optional `Z` or `±HH:MM` offset, or milliseconds since the epoch in digits.
    pub fn parse_time(self, text: &str) -> Option<i64> {
        let text = text.trim();
        if let Some(ms) = digits(text) {
            return self.plausible(ms).then_some(ms);
        }
        let date = parse_date(text.get(0..10)?)?;
        let rest = &text[10..];
        if rest.is_empty() {
            return Some(self.midnight(date));
        }
        let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
        // The zone: `Z`, `+08:00`, `-05:00`, or none (local).
        let (clock, offset_ms) = if let Some(clock) = rest.strip_suffix('Z') {
            (clock, 0)
        } else if rest.len() > 6 && matches!(rest.as_bytes()[rest.len() - 6], b'+' | b'-') {
            let (clock, zone) = rest.split_at(rest.len() - 6);
            let zb = zone.as_bytes();
            if zb[3] != b':' {
                return None;
            }
            let (h, m) = (digits(&zone[1..3])?, digits(&zone[4..6])?);
            if h > 14 || m > 59 {
                return None;
            }
            let sign = if zb[0] == b'-' { -1 } else { 1 };
            (clock, sign * (h * 60 + m) * 60_000)
        } else {
            (rest, self.offset_ms)
        };
        let mut parts = clock.splitn(3, ':');
        let hour = digits(parts.next()?)?;
        let minute = digits(parts.next()?)?;
        let (second, millis) = match parts.next() {
            None => (0, 0),
            Some(s) => match s.split_once('.') {
                None => (digits(s)?, 0),
                Some((s, frac)) => {
                    let frac = frac.get(0..frac.len().min(3))?;
                    let scale = [100, 10, 1][frac.len().checked_sub(1)?];
                    (digits(s)?, digits(frac)? * scale)
                }
            },
        };
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let local = date * DAY_MS + ((hour * 60 + minute) * 60 + second) * 1000 + millis;
        Some(local - offset_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CST: LocalTime = LocalTime {
        offset_ms: 8 * 3_600_000,
    };

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in [-1000, 0, 59, 10_957, 20_000, 20_819, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(date_label(days_from_civil(2024, 2, 29)), "2024-02-29");
        assert_eq!(weekday(days_from_civil(2026, 11, 23)), 1, "a Monday");
        assert_eq!(weekday(days_from_civil(2026, 11, 29)), 7, "a Sunday");
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
            let (year, week) = iso_week(days_from_civil(y, m, d));
            assert_eq!(week_label(year, week), label, "{y}-{m}-{d}");
        }
        assert_eq!(
            (weeks_in_year(2020), weeks_in_year(2021), weeks_in_year(2026)),
            (53, 52, 53)
        );
        assert_eq!(date_label(iso_week_monday(2020, 53)), "2020-12-28");
        assert_eq!(date_label(iso_week_monday(2026, 1)), "2025-12-29");
        assert_eq!(date_label(iso_week_monday(2026, 48)), "2026-11-23");
    }

    /// The week of an instant is the week of its local (UTC+8) date.
    #[test]
    fn weeks_follow_local_time() {
        // 2026-11-29 23:30 local is 2026-11-29 15:30 UTC: still W48.
        let sunday_night = CST.midnight(days_from_civil(2026, 11, 29)) + 23 * 3_600_000 + 30 * 60_000;
        assert_eq!(CST.week_of(sunday_night), "2026-W48");
        // 2026-11-30 00:30 local is 2026-11-29 16:30 UTC: already W49, although UTC says Sunday.
        let monday_early = CST.midnight(days_from_civil(2026, 11, 30)) + 30 * 60_000;
        assert_eq!(CST.week_of(monday_early), "2026-W49");
        assert_eq!(LocalTime::utc_plus(0).week_of(monday_early), "2026-W48");
        // New Year's night: 2025-12-31 17:00 UTC is 2026-01-01 01:00 local.
        let new_year = LocalTime::utc_plus(0).midnight(days_from_civil(2025, 12, 31)) + 17 * 3_600_000;
        assert_eq!(CST.date_of(new_year), "2026-01-01");
        assert_eq!(CST.week_of(new_year), "2026-W01");
    }

    #[test]
    fn dates_and_weeks_parse_strictly() {
        assert_eq!(parse_date("2026-11-28"), Some(days_from_civil(2026, 11, 28)));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-11-31",
            "26-11-28",
            "2026/11/28",
            "1999-12-31",
            "２０２６-11-28",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_week("2026-W48"), Some((2026, 48)));
        assert_eq!(parse_week("2026-W53"), Some((2026, 53)));
        for bad in ["2025-W53", "2026-W00", "2026-W54", "2026W48", "2026-w48", "2026-W4"] {
            assert_eq!(parse_week(bad), None, "{bad}");
        }
    }

    #[test]
    fn visit_times_parse_in_local_time() {
        let midnight = CST.midnight(days_from_civil(2026, 11, 1));
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
        assert_eq!(CST.parse_time(&(midnight).to_string()), Some(midnight));
        for bad in [
            "2026-11-01T25:00",
            "2026-11-01T09",
            "2026-11-01X",
            "yesterday",
            "2026-11-01T09:00+8",
            "12",
        ] {
            assert_eq!(CST.parse_time(bad), None, "{bad}");
        }
    }
}
