//! Working calendars for step deadlines: working hours, weekends, public
//! holidays and make-up workdays (调休), in a jurisdiction's fixed UTC offset.
//! Limits in working hours or working days become deadlines and elapsed
//! working time, with suspended spans left out; the traffic light compares the
//! two. Pure: times are milliseconds since the epoch from the injected clock.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

/// A calendar as configured, e.g.
/// `{"utc_offset_minutes": 480, "periods": [["08:30", "12:00"], ["14:00", "17:30"]],
///   "weekend": ["sat", "sun"], "holidays": ["2027-02-11"], "workdays": ["2027-02-07"]}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    pub utc_offset_minutes: i32,
    /// Working periods of a working day, local `HH:MM`, in order.
    pub periods: Vec<(String, String)>,
    /// Days of the week off: `mon` … `sun`.
    pub weekend: Vec<String>,
    /// Dates off although working days of the week (`YYYY-MM-DD`).
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Dates worked although on the weekend (make-up workdays).
    #[serde(default)]
    pub workdays: Vec<String>,
}

/// A checked calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    offset: i64,
    /// Minutes after local midnight.
    periods: Vec<(i64, i64)>,
    weekend: [bool; 7],
    holidays: BTreeSet<i64>,
    workdays: BTreeSet<i64>,
}

/// A time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    WorkingHours(u32),
    /// Each working day counts as one day's working time.
    WorkingDays(u32),
}

/// How much of a limit is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Light {
    /// At most 80 % used.
    Green,
    /// At most 100 %.
    Yellow,
    /// Overdue.
    Red,
}

impl Light {
    pub fn of(used_ms: i64, limit_ms: i64) -> Light {
        if used_ms * 10 <= limit_ms * 8 {
            Light::Green
        } else if used_ms <= limit_ms {
            Light::Yellow
        } else {
            Light::Red
        }
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn hhmm(text: &str) -> Result<i64, String> {
    let (h, m) = text.split_once(':').ok_or_else(|| format!("`{text}` is not HH:MM"))?;
    let (h, m): (i64, i64) = (h.parse().map_err(|_| format!("`{text}` is not HH:MM"))?, m.parse().map_err(|_| format!("`{text}` is not HH:MM"))?);
    if !(0..=24).contains(&h) || !(0..60).contains(&m) || h * 60 + m > 24 * 60 {
        return Err(format!("`{text}` is not a time of day"));
    }
    Ok(h * 60 + m)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; the classic
/// `days_from_civil` era arithmetic).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number: the inverse of
/// [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn date(text: &str) -> Result<i64, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let bad = || format!("`{text}` is not a date YYYY-MM-DD");
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    let (y, m, d): (i64, i64, i64) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y.to_string().len() != 4 {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d);
    // Reject 2027-02-30 and the like: the date must survive the round trip.
    if days_from_civil(y, m, 1) + d - 1 != days || (m < 12 && days >= days_from_civil(y, m + 1, 1)) {
        return Err(bad());
    }
    Ok(days)
}

impl Calendar {
    /// Check a spec; errors name the field.
    pub fn new(spec: &CalendarSpec) -> Result<Calendar, String> {
        if !(-14 * 60..=14 * 60).contains(&spec.utc_offset_minutes) {
            return Err(format!("utc_offset_minutes: {} is not an offset", spec.utc_offset_minutes));
        }
        let mut periods = Vec::new();
        for (i, (from, to)) in spec.periods.iter().enumerate() {
            let (a, b) = (hhmm(from).map_err(|m| format!("periods[{i}]: {m}"))?, hhmm(to).map_err(|m| format!("periods[{i}]: {m}"))?);
            if a >= b || periods.last().is_some_and(|&(_, end)| a < end) {
                return Err(format!("periods[{i}]: `{from}`-`{to}` is empty or overlaps the one before"));
            }
            periods.push((a, b));
        }
        if periods.is_empty() {
            return Err("periods: a working day needs at least one period".into());
        }
        let mut weekend = [false; 7];
        for (i, d) in spec.weekend.iter().enumerate() {
            let n = DAYS.iter().position(|x| x == d).ok_or_else(|| format!("weekend[{i}]: `{d}` is not one of {}", DAYS.join(", ")))?;
            weekend[n] = true;
        }
        if weekend.iter().all(|w| *w) {
            return Err("weekend: every day of the week is off".into());
        }
        let dates = |field: &str, list: &[String]| -> Result<BTreeSet<i64>, String> {
            list.iter().enumerate().map(|(i, t)| date(t).map_err(|m| format!("{field}[{i}]: {m}"))).collect()
        };
        Ok(Calendar {
            offset: i64::from(spec.utc_offset_minutes) * MINUTE,
            periods,
            weekend,
            holidays: dates("holidays", &spec.holidays)?,
            workdays: dates("workdays", &spec.workdays)?,
        })
    }

    /// The usual Chinese office calendar: UTC+8, 08:30-12:00 and 14:00-17:30,
    /// Saturday and Sunday off; holidays to be added per year.
    pub fn china_default() -> Calendar {
        Calendar::new(&CalendarSpec {
            utc_offset_minutes: 480,
            periods: vec![("08:30".into(), "12:00".into()), ("14:00".into(), "17:30".into())],
            weekend: vec!["sat".into(), "sun".into()],
            holidays: vec![],
            workdays: vec![],
        })
        .expect("the default calendar is valid")
    }

    /// Working time in one working day.
    pub fn day_ms(&self) -> i64 {
        self.periods.iter().map(|(a, b)| (b - a) * MINUTE).sum()
    }

    /// Whether local day `day` (days since the epoch) is worked.
    pub fn is_workday(&self, day: i64) -> bool {
        if self.workdays.contains(&day) {
            return true;
        }
        // 1970-01-01 was a Thursday.
        let weekday = (day + 3).rem_euclid(7) as usize;
        !self.weekend[weekday] && !self.holidays.contains(&day)
    }

    /// The working spans of local day `day`, as epoch milliseconds.
    fn spans(&self, day: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        let start = day * DAY - self.offset;
        let worked = self.is_workday(day);
        self.periods.iter().filter(move |_| worked).map(move |(a, b)| (start + a * MINUTE, start + b * MINUTE))
    }

    fn local_day(&self, t: i64) -> i64 {
        (t + self.offset).div_euclid(DAY)
    }

    /// Working time between two instants (0 when `to <= from`).
    pub fn working_between(&self, from: i64, to: i64) -> i64 {
        if to <= from {
            return 0;
        }
        (self.local_day(from)..=self.local_day(to))
            .flat_map(|d| self.spans(d).collect::<Vec<_>>())
            .map(|(a, b)| (b.min(to) - a.max(from)).max(0))
            .sum()
    }

    /// The instant `amount` of working time after `start`; `None` if no working
    /// time falls within ten years (a calendar of holidays only).
    pub fn add_working(&self, start: i64, amount: i64) -> Option<i64> {
        let mut left = amount;
        if left <= 0 {
            return Some(start);
        }
        let first = self.local_day(start);
        for day in first..first + 3660 {
            for (a, b) in self.spans(day) {
                let a = a.max(start);
                if b <= a {
                    continue;
                }
                if b - a >= left {
                    return Some(a + left);
                }
                left -= b - a;
            }
        }
        None
    }

    /// A limit as working time.
    pub fn limit_ms(&self, limit: Limit) -> i64 {
        match limit {
            Limit::WorkingHours(h) => i64::from(h) * 60 * MINUTE,
            Limit::WorkingDays(d) => i64::from(d) * self.day_ms(),
        }
    }

    /// Working time used by a step that started at `start`, at `now`, leaving
    /// out the suspended spans `paused` (each `(from, to)`, `to` = `now` while
    /// still suspended).
    pub fn used(&self, start: i64, now: i64, paused: &[(i64, i64)]) -> i64 {
        let gross = self.working_between(start, now);
        let stopped: i64 = paused.iter().map(|&(a, b)| self.working_between(a.max(start), b.min(now))).sum();
        (gross - stopped).max(0)
    }

    /// The deadline of a step started at `start`, moved on by the suspended spans.
    pub fn deadline(&self, start: i64, limit: Limit, paused: &[(i64, i64)]) -> Option<i64> {
        let stopped: i64 = paused.iter().map(|&(a, b)| self.working_between(a.max(start), b)).sum();
        self.add_working(start, self.limit_ms(limit) + stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 60 * MINUTE;

    /// Beijing local time `YYYY-MM-DD HH:MM` as epoch milliseconds.
    fn at(text: &str) -> i64 {
        let (d, t) = text.split_once(' ').unwrap();
        date(d).unwrap() * DAY + hhmm(t).unwrap() * MINUTE - 8 * HOUR
    }

    fn spring_festival() -> Calendar {
        // 2027: Friday 02-05 to Friday 02-12 off, Saturday 02-13 worked instead.
        let mut spec = CalendarSpec {
            utc_offset_minutes: 480,
            periods: vec![("08:30".into(), "12:00".into()), ("14:00".into(), "17:30".into())],
            weekend: vec!["sat".into(), "sun".into()],
            holidays: vec![],
            workdays: vec!["2027-02-13".into()],
        };
        spec.holidays = (5..=12).map(|d| format!("2027-02-{d:02}")).collect();
        Calendar::new(&spec).unwrap()
    }

    #[test]
    fn working_time_skips_nights_lunch_and_weekends() {
        let c = Calendar::china_default();
        assert_eq!(c.day_ms(), 7 * HOUR);
        // 2027-01-15 is a Friday.
        assert_eq!(c.working_between(at("2027-01-15 11:00"), at("2027-01-15 15:00")), 2 * HOUR);
        assert_eq!(c.working_between(at("2027-01-15 17:00"), at("2027-01-18 09:30")), 90 * MINUTE);
        // 2 working hours from Friday 16:30 is Monday 09:30.
        assert_eq!(c.add_working(at("2027-01-15 16:30"), 2 * HOUR), Some(at("2027-01-18 09:30")));
        // Starting at night counts from the next period.
        assert_eq!(c.add_working(at("2027-01-15 22:00"), HOUR), Some(at("2027-01-18 09:30")));
        assert_eq!(c.deadline(at("2027-01-15 09:00"), Limit::WorkingDays(2), &[]), Some(at("2027-01-19 09:00")));
    }

    #[test]
    fn holidays_and_make_up_workdays() {
        let c = spring_festival();
        // Thursday 02-04 16:00 + 3 working hours: 02-04 16:00-17:30, then the
        // festival, then Saturday 02-13 (a make-up workday) 08:30-10:00.
        assert_eq!(c.add_working(at("2027-02-04 16:00"), 3 * HOUR), Some(at("2027-02-13 10:00")));
        assert!(!c.is_workday(date("2027-02-08").unwrap()));
        assert!(c.is_workday(date("2027-02-13").unwrap()));
    }

    #[test]
    fn suspension_stops_the_clock_and_moves_the_deadline() {
        let c = Calendar::china_default();
        let start = at("2027-01-18 09:00");
        let paused = [(at("2027-01-18 10:00"), at("2027-01-18 15:00"))];
        // 09:00-10:00, then 15:00-16:00: two hours used, not six.
        assert_eq!(c.used(start, at("2027-01-18 16:00"), &paused), 2 * HOUR);
        // 4 working hours: one before the pause, 2.5 after it (15:00-17:30), the last half on Tuesday.
        assert_eq!(c.deadline(start, Limit::WorkingHours(4), &paused), Some(at("2027-01-19 09:00")));
        // Without the pause: 09:00-12:00 and 14:00-15:00.
        assert_eq!(c.deadline(start, Limit::WorkingHours(4), &[]), Some(at("2027-01-18 15:00")));
    }

    #[test]
    fn lights_and_bad_specs() {
        assert_eq!(Light::of(80, 100), Light::Green);
        assert_eq!(Light::of(81, 100), Light::Yellow);
        assert_eq!(Light::of(100, 100), Light::Yellow);
        assert_eq!(Light::of(101, 100), Light::Red);
        let base = CalendarSpec {
            utc_offset_minutes: 480,
            periods: vec![("08:30".into(), "12:00".into())],
            weekend: vec![],
            holidays: vec![],
            workdays: vec![],
        };
        for (edit, needle) in [
            (Box::new(|s: &mut CalendarSpec| s.periods = vec![("12:00".into(), "08:30".into())]) as Box<dyn Fn(&mut CalendarSpec)>, "periods[0]"),
            (Box::new(|s: &mut CalendarSpec| s.periods = vec![("25:00".into(), "26:00".into())]), "periods[0]"),
            (Box::new(|s: &mut CalendarSpec| s.weekend = vec!["fun".into()]), "weekend[0]"),
            (Box::new(|s: &mut CalendarSpec| s.holidays = vec!["2027-02-30".into()]), "holidays[0]"),
            (Box::new(|s: &mut CalendarSpec| s.periods.clear()), "periods"),
        ] {
            let mut spec = base.clone();
            edit(&mut spec);
            let e = Calendar::new(&spec).unwrap_err();
            assert!(e.starts_with(needle), "{needle}: {e}");
        }
    }
}
