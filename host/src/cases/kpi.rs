//! Evaluation (考核问效): the KPIs of DESIGN.md per department and period,
//! computed from the transition log (and, for steps still open past their
//! deadline, the cases' current step), so they can be recomputed at any time.
//!
//! The unit is the *step instance*: one run of a step's clock (accept,
//! register, dispatch, dispose, send-to-check, check, close) on one case, with
//! the department the case was with and the step's deadline. An instance is
//! *due* in the period `[from, to)` when it ended in the period, or when it is
//! still open and its deadline fell in the period. It is *done* when it ended
//! by moving the case forward (for dispose: `dispose`; for check: `pass-check`
//! or `fail-check`; …), and *on time* when done by its deadline.
//!
//! - 处置率 = dispose done / dispose due; 按期处置率 = dispose on time / dispose due
//! - 结案率 = close done / close due; 按期结案率 = close on time / close due
//! - 拖延率 = (close due − close on time) / close due
//! - 返工率 = checks failed / close due
//! - 按时派遣率 = dispatch on time / dispatch due; 准确派遣率 = (dispatch due −
//!   returned or transferred) / dispatch due
//! - 按时立案率 = register on time / register done; 准确立案率 = (register done − voided) / register done
//! - hotline (12345 cases): 办结率 = closed / reported, 及时办结率 = closed on
//!   time / reported, 催办率 = urged / reported, 重办率 = reopened / closed,
//!   满意率 = satisfied / rated — each counted within the period.
//!
//! Dispatch and registration are the command centre's steps: their instances
//! have no department and are reported under `command-center`.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::Cases;
use super::deadlines::ClockState;
use crate::services::ServiceError;

/// The department that owns steps taken before a case reaches a department.
pub const COMMAND_CENTER: &str = "command-center";

/// Counts of one step for one department.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StepCounts {
    pub due: i64,
    pub done: i64,
    pub on_time: i64,
}

/// One department's evaluation for a period.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct DepartmentKpis {
    pub department: String,
    /// Per step.
    pub steps: BTreeMap<String, StepCounts>,
    pub checks_failed: i64,
    pub returned_or_transferred: i64,
    pub voided: i64,
    /// The named rates; `null` when nothing was due.
    pub closure_rate: Option<f64>,
    pub closure_on_time_rate: Option<f64>,
    pub disposal_rate: Option<f64>,
    pub disposal_on_time_rate: Option<f64>,
    pub rework_rate: Option<f64>,
    pub delay_rate: Option<f64>,
    pub dispatch_on_time_rate: Option<f64>,
    pub dispatch_accuracy_rate: Option<f64>,
    pub registration_on_time_rate: Option<f64>,
    pub registration_accuracy_rate: Option<f64>,
}

/// The 12345 hotline's figures for a period.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct HotlineKpis {
    pub reported: i64,
    pub closed: i64,
    pub closed_on_time: i64,
    pub urged: i64,
    pub reopened: i64,
    pub rated: i64,
    pub satisfied: i64,
    pub completion_rate: Option<f64>,
    pub timely_completion_rate: Option<f64>,
    pub urge_rate: Option<f64>,
    pub reopen_rate: Option<f64>,
    pub satisfaction_rate: Option<f64>,
}

/// The evaluation of a period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    pub from: i64,
    pub to: i64,
    pub departments: Vec<DepartmentKpis>,
    pub hotline: HotlineKpis,
}

/// The action that completes each step.
fn completes(step: &str, action: &str) -> bool {
    matches!(
        (step, action),
        ("accept", "accept" | "reject")
            | ("register", "register" | "void")
            | ("dispatch", "dispatch")
            | ("dispose", "dispose")
            | ("send-to-check", "send-to-check")
            | ("check", "pass-check" | "fail-check")
            | ("close", "close")
    )
}

fn ratio(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl Cases {
    /// The evaluation of `[from, to)`, for every department with anything due.
    pub async fn evaluate(&self, from: i64, to: i64) -> Result<Evaluation, ServiceError> {
        if from >= to {
            return Err(ServiceError::Invalid(format!("from: {from} is not before to: {to}")));
        }
        let mut by_department: BTreeMap<String, DepartmentKpis> = BTreeMap::new();
        let entry = |d: Option<String>| -> String { d.unwrap_or_else(|| COMMAND_CENTER.to_owned()) };

        // Step instances that ended in the period, and the other events counted.
        let rows = sqlx::query(
            "SELECT t.action, t.step, t.due, t.at, t.step_ended, t.step_department, c.channel \
             FROM case_transitions t JOIN cases c ON c.id = t.case_id WHERE t.at >= $1 AND t.at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.db.pool())
        .await?;
        let mut hotline = HotlineKpis::default();
        for r in &rows {
            let action: String = r.try_get(0)?;
            let step: Option<String> = r.try_get(1)?;
            let due: Option<i64> = r.try_get(2)?;
            let at: i64 = r.try_get(3)?;
            let ended = r.try_get::<i64, _>(4)? != 0;
            let department = entry(r.try_get(5)?);
            let channel: String = r.try_get(6)?;
            if matches!(action.as_str(), "return" | "transfer") {
                // A wrong assignment counts against the dispatch, the command centre's step.
                let cc = COMMAND_CENTER.to_owned();
                by_department.entry(cc.clone()).or_insert_with(|| DepartmentKpis { department: cc, ..Default::default() })
                    .returned_or_transferred += 1;
            }
            let k = by_department.entry(department.clone()).or_insert_with(|| DepartmentKpis { department, ..Default::default() });
            match action.as_str() {
                "fail-check" => k.checks_failed += 1,
                "void" => k.voided += 1,
                _ => {}
            }
            if let Some(step) = step.filter(|_| ended) {
                let counts = k.steps.entry(step.clone()).or_default();
                counts.due += 1;
                if completes(&step, &action) {
                    counts.done += 1;
                    if due.is_none_or(|d| at <= d) {
                        counts.on_time += 1;
                    }
                }
            }
            if channel == "hotline" {
                match action.as_str() {
                    "close" => {
                        hotline.closed += 1;
                        if due.is_none_or(|d| at <= d) {
                            hotline.closed_on_time += 1;
                        }
                    }
                    "urge" => hotline.urged += 1,
                    "reopen" => hotline.reopened += 1,
                    _ => {}
                }
            }
        }

        // Steps still open whose deadline fell in the period: due, not done.
        let open = sqlx::query(
            "SELECT category_code, area, step, step_since, step_paused, suspended_since, step_extra_ms, department \
             FROM cases WHERE step IS NOT NULL AND step_since < $1",
        )
        .bind(to)
        .fetch_all(self.db.pool())
        .await?;
        for r in &open {
            let paused: String = r.try_get(4)?;
            let state = ClockState {
                category: r.try_get(0)?,
                area: r.try_get(1)?,
                step: r.try_get(2)?,
                since: r.try_get(3)?,
                paused: serde_json::from_str(&paused).unwrap_or_default(),
                suspended_since: r.try_get(5)?,
                extra_ms: r.try_get(6)?,
            };
            let Some(clock) = self.clock_of(&state, to).await? else { continue };
            if clock.deadline.is_some_and(|d| d >= from && d < to) {
                let department = entry(r.try_get(7)?);
                let k = by_department.entry(department.clone()).or_insert_with(|| DepartmentKpis { department, ..Default::default() });
                k.steps.entry(clock.step).or_default().due += 1;
            }
        }

        for k in by_department.values_mut() {
            let step = |name: &str| k.steps.get(name).copied().unwrap_or_default();
            let (close, dispose, dispatch, register) = (step("close"), step("dispose"), step("dispatch"), step("register"));
            k.closure_rate = ratio(close.done, close.due);
            k.closure_on_time_rate = ratio(close.on_time, close.due);
            k.delay_rate = ratio(close.due - close.on_time, close.due);
            k.rework_rate = ratio(k.checks_failed, close.due);
            k.disposal_rate = ratio(dispose.done, dispose.due);
            k.disposal_on_time_rate = ratio(dispose.on_time, dispose.due);
            k.dispatch_on_time_rate = ratio(dispatch.on_time, dispatch.due);
            k.dispatch_accuracy_rate = ratio(dispatch.due - k.returned_or_transferred, dispatch.due);
            k.registration_on_time_rate = ratio(register.on_time, register.done);
            k.registration_accuracy_rate = ratio(register.done - k.voided, register.done);
        }

        let count = |sql: &'static str| async move {
            let n: i64 = sqlx::query(sql).bind(from).bind(to).fetch_one(self.db.pool()).await?.try_get(0)?;
            Ok::<i64, ServiceError>(n)
        };
        hotline.reported = count("SELECT COUNT(*) FROM reports WHERE channel = 'hotline' AND received >= $1 AND received < $2").await?;
        hotline.rated = count(
            "SELECT COUNT(*) FROM case_ratings r JOIN cases c ON c.id = r.case_id \
             WHERE c.channel = 'hotline' AND r.at >= $1 AND r.at < $2",
        )
        .await?;
        hotline.satisfied = count(
            "SELECT COUNT(*) FROM case_ratings r JOIN cases c ON c.id = r.case_id \
             WHERE c.channel = 'hotline' AND r.satisfied = 1 AND r.at >= $1 AND r.at < $2",
        )
        .await?;
        hotline.completion_rate = ratio(hotline.closed, hotline.reported);
        hotline.timely_completion_rate = ratio(hotline.closed_on_time, hotline.reported);
        hotline.urge_rate = ratio(hotline.urged, hotline.reported);
        hotline.reopen_rate = ratio(hotline.reopened, hotline.closed);
        hotline.satisfaction_rate = ratio(hotline.satisfied, hotline.rated);

        Ok(Evaluation { from, to, departments: by_department.into_values().collect(), hotline })
    }
}
