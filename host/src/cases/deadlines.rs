//! Step deadlines: which step a stage's clock belongs to, the limit of a step
//! for a category, the working calendar of a case's jurisdiction, the clock of
//! a case's current step (used, deadline, traffic light), and the sweep that
//! announces an overdue step once (`case.overdue`) and tells the supervisors.

use std::sync::Arc;

use serde::Serialize;
use sqlx::Row;
use yiwang_wit::events::{CaseOverdue, Payload};

use super::Cases;
use crate::calendar::{Calendar, CalendarSpec, Light, Limit};
use super::lifecycle::Stage;
use crate::error::ServiceError;

/// The step whose clock runs while a case is at `stage`.
pub fn step_of(stage: Stage) -> Option<&'static str> {
    Some(match stage {
        Stage::Reported => "accept",
        Stage::Accepted => "register",
        Stage::Registered => "dispatch",
        Stage::Dispatched | Stage::InProgress => "dispose",
        Stage::Disposed => "send-to-check",
        Stage::Checking => "check",
        Stage::Checked => "close",
        Stage::Rejected | Stage::Voided | Stage::Closed => return None,
    })
}

/// The clock of a case's current step.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepClock {
    pub step: String,
    pub since: i64,
    /// The limit in working time, extensions included.
    pub limit_ms: i64,
    /// Working time used, suspensions left out.
    pub used_ms: i64,
    /// When the limit runs out (moved on by suspensions), if it does within ten years.
    pub deadline: Option<i64>,
    #[schema(value_type = String)]
    pub light: Light,
    pub suspended: bool,
}

/// What the clock needs from a case row.
#[derive(Clone)]
pub(crate) struct ClockState {
    pub category: String,
    pub area: Option<String>,
    pub step: Option<String>,
    pub since: Option<i64>,
    pub paused: Vec<(i64, i64)>,
    pub suspended_since: Option<i64>,
    pub extra_ms: i64,
}

/// How long the step limits and calendars read from storage are kept in
/// memory. A change made through this node is seen at once; one made through
/// another node sharing the database, within this time.
const REFERENCE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Reference data read from storage, kept for [`REFERENCE_TTL`].
pub(crate) struct Cached<T> {
    slot: parking_lot::RwLock<Option<(std::time::Instant, Arc<T>)>>,
}

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Cached { slot: parking_lot::RwLock::new(None) }
    }
}

impl<T> Cached<T> {
    pub(crate) fn fresh(&self) -> Option<Arc<T>> {
        self.slot.read().as_ref().filter(|(at, _)| at.elapsed() < REFERENCE_TTL).map(|(_, v)| v.clone())
    }

    pub(crate) fn keep(&self, value: T) -> Arc<T> {
        let value = Arc::new(value);
        *self.slot.write() = Some((std::time::Instant::now(), value.clone()));
        value
    }

    pub(crate) fn forget(&self) {
        *self.slot.write() = None;
    }
}

/// The step limits: (step, category prefix, limit).
pub(crate) type StepLimits = Vec<(String, String, Limit)>;
/// The stored calendars: (org unit, calendar).
pub(crate) type Calendars = Vec<(String, Arc<Calendar>)>;

impl Cases {
    /// The limit of `step` for `category`: the longest matching prefix wins.
    pub async fn step_limit(&self, category: &str, step: &str) -> Result<Option<Limit>, ServiceError> {
        let limits = match self.limits.fresh() {
            Some(l) => l,
            None => {
                let rows = sqlx::query("SELECT step, category_prefix, unit, amount FROM step_limits")
                    .fetch_all(self.db.pool())
                    .await?;
                let mut limits = StepLimits::new();
                for r in &rows {
                    let unit: String = r.try_get(2)?;
                    let amount = u32::try_from(r.try_get::<i64, _>(3)?).unwrap_or(u32::MAX);
                    let limit = if unit == "days" { Limit::WorkingDays(amount) } else { Limit::WorkingHours(amount) };
                    limits.push((r.try_get(0)?, r.try_get(1)?, limit));
                }
                self.limits.keep(limits)
            }
        };
        let best = limits
            .iter()
            .filter(|(s, prefix, _)| s == step && category.starts_with(prefix.as_str()))
            .max_by_key(|(_, prefix, _)| prefix.len());
        Ok(best.map(|(_, _, l)| *l))
    }

    /// The working calendar of the jurisdiction holding `area`.
    pub async fn calendar_for(&self, area: Option<&str>) -> Result<Arc<Calendar>, ServiceError> {
        let calendars = match self.calendars.fresh() {
            Some(c) => c,
            None => {
                let rows = sqlx::query("SELECT org_unit, spec FROM calendars").fetch_all(self.db.pool()).await?;
                let mut calendars = Calendars::new();
                for r in &rows {
                    let (unit, text): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    let spec: CalendarSpec = serde_json::from_str(&text)
                        .map_err(|e| ServiceError::Storage(anyhow::anyhow!("the calendar of `{unit}` is not valid JSON: {e}")))?;
                    let calendar = Calendar::new(&spec)
                        .map_err(|m| ServiceError::Storage(anyhow::anyhow!("the calendar of `{unit}` is invalid: {m}")))?;
                    calendars.push((unit, Arc::new(calendar)));
                }
                calendars.push((String::new(), Arc::new(Calendar::china_default())));
                self.calendars.keep(calendars)
            }
        };
        // The longest unit holding the area; the national default (unit "") otherwise.
        let best = calendars
            .iter()
            .filter(|(unit, _)| unit.is_empty() || area.is_some_and(|a| a.starts_with(unit.as_str())))
            .max_by_key(|(unit, _)| unit.len())
            .map(|(_, c)| c.clone());
        Ok(best.expect("the default calendar is always there"))
    }

    /// Store the working calendar of an org unit's jurisdiction; errors name the field.
    pub async fn set_calendar(&self, org_unit: &str, spec: &CalendarSpec) -> Result<(), ServiceError> {
        Calendar::new(spec).map_err(ServiceError::Invalid)?;
        let known = sqlx::query("SELECT 1 FROM org_units WHERE code = $1").bind(org_unit).fetch_optional(self.db.pool()).await?;
        if known.is_none() {
            return Err(ServiceError::NotFound(format!("unknown org unit `{org_unit}`")));
        }
        sqlx::query("INSERT INTO calendars (org_unit, spec) VALUES ($1, $2) ON CONFLICT (org_unit) DO UPDATE SET spec = excluded.spec")
            .bind(org_unit)
            .bind(serde_json::to_string(spec).expect("a spec serialises"))
            .execute(self.db.writer())
            .await?;
        self.calendars.forget();
        Ok(())
    }

    /// Forget the step limits and calendars read so far, after changing them
    /// in storage by other means than this service.
    pub fn reload_reference_data(&self) {
        self.category_cache.forget();
        self.limits.forget();
        self.calendars.forget();
    }

    /// The clock of the current step at `now`, if the step has a limit.
    pub(crate) async fn clock_of(&self, c: &ClockState, now: i64) -> Result<Option<StepClock>, ServiceError> {
        let (Some(step), Some(since)) = (&c.step, c.since) else { return Ok(None) };
        let Some(limit) = self.step_limit(&c.category, step).await? else { return Ok(None) };
        let calendar = self.calendar_for(c.area.as_deref()).await?;
        let mut paused = c.paused.clone();
        if let Some(s) = c.suspended_since {
            paused.push((s, now));
        }
        let limit_ms = calendar.limit_ms(limit) + c.extra_ms;
        let used_ms = calendar.used(since, now, &paused);
        let stopped: i64 = paused.iter().map(|&(a, b)| calendar.working_between(a.max(since), b)).sum();
        // While suspended the deadline keeps moving; it is computed as if resumed now.
        let deadline = calendar.add_working(since, limit_ms + stopped);
        Ok(Some(StepClock {
            step: step.clone(),
            since,
            limit_ms,
            used_ms,
            deadline,
            light: Light::of(used_ms, limit_ms),
            suspended: c.suspended_since.is_some(),
        }))
    }

    /// Open cases whose current step ran out since it was last announced, at
    /// `now`: each is marked, announced on `case.overdue`, and returned with
    /// its area and step.
    pub async fn mark_overdue(&self, now: i64) -> Result<Vec<(String, Option<String>, String)>, ServiceError> {
        let rows = sqlx::query(
            "SELECT id, category_code, area, step, step_since, step_paused, step_extra_ms FROM cases \
             WHERE step IS NOT NULL AND suspended = 0 AND (overdue_step IS NULL OR overdue_step <> step)",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut overdue = Vec::new();
        for r in &rows {
            let id: String = r.try_get(0)?;
            let paused: String = r.try_get(5)?;
            let state = ClockState {
                category: r.try_get(1)?,
                area: r.try_get(2)?,
                step: r.try_get(3)?,
                since: r.try_get(4)?,
                paused: serde_json::from_str(&paused).unwrap_or_default(),
                suspended_since: None,
                extra_ms: r.try_get(6)?,
            };
            let Some(clock) = self.clock_of(&state, now).await? else { continue };
            if clock.light != Light::Red {
                continue;
            }
            // Mark only if the case is still at that step.
            let marked = sqlx::query("UPDATE cases SET overdue_step = step WHERE id = $1 AND step = $2 AND suspended = 0")
                .bind(&id)
                .bind(&clock.step)
                .execute(self.db.writer())
                .await?;
            if marked.rows_affected() == 0 {
                continue;
            }
            let payload = CaseOverdue {
                case: id.clone(),
                step: clock.step.clone(),
                deadline: clock.deadline,
                used_ms: clock.used_ms,
                limit_ms: clock.limit_ms,
                area: state.area.clone(),
            };
            self.announce(CaseOverdue::TOPIC, "host", None, &payload).await;
            overdue.push((id, state.area, clock.step));
        }
        Ok(overdue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_open_stage_has_a_step() {
        for s in Stage::ALL {
            assert_eq!(step_of(s).is_some(), s.is_open(), "{s}");
        }
    }
}
