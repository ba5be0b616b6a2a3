//! Evaluation (考核问效): the KPIs of DESIGN.md per department, per command
//! level and per period. They are a fold over *facts* — the transitions taken,
//! the steps still running with their deadlines, the hotline's reports and
//! ratings — and the facts come from either of two sources that must agree:
//! the case tables ([`Evaluator::evaluate`]) or the hash-chained audit log alone
//! ([`Evaluator::evaluate_from_audit`], `yiwang audit kpis`), whose records carry
//! every figure the fold needs.
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
//! have no department and are reported under `command-center`. Per level, a
//! step counts at the command level the case was handled at when it ran
//! (`community`, `street`, `district`, `city`); steps while no department has
//! the case count under `command-center` there too.
//!
//! A step still running counts as due when its deadline fell in the period and
//! it is not suspended (a suspended step's clock stands still).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::Evaluator;
use crate::cases::deadlines::ClockState;
use crate::error::ServiceError;

/// The department (and level) that owns steps taken before a case reaches a department.
pub const COMMAND_CENTER: &str = "command-center";

/// Counts of one step for one department.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StepCounts {
    pub due: i64,
    pub done: i64,
    pub on_time: i64,
}

/// The figures of one department or level for a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Kpis {
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

/// One department's evaluation for a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DepartmentKpis {
    pub department: String,
    #[serde(flatten)]
    pub kpis: Kpis,
}

/// One command level's evaluation for a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LevelKpis {
    /// `community`, `street`, `district`, `city`, or `command-center`.
    pub level: String,
    #[serde(flatten)]
    pub kpis: Kpis,
}

/// The 12345 hotline's figures for a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    pub from: i64,
    pub to: i64,
    pub departments: Vec<DepartmentKpis>,
    pub levels: Vec<LevelKpis>,
    pub hotline: HotlineKpis,
}

/// One transition, as the KPIs see it.
#[derive(Debug, Clone)]
struct TransitionFact {
    action: String,
    at: i64,
    /// The step whose clock ran, its deadline, and whether the transition ended it.
    step: Option<String>,
    due: Option<i64>,
    ended: bool,
    /// Whom the step was with, and at which level.
    department: Option<String>,
    level: Option<String>,
    channel: String,
}

/// A step running at the end of the period.
#[derive(Debug, Clone)]
struct OpenStep {
    step: String,
    due: Option<i64>,
    department: Option<String>,
    level: Option<String>,
}

/// Everything the evaluation of a period folds over.
#[derive(Debug, Default)]
struct Facts {
    /// Transitions taken in the period.
    transitions: Vec<TransitionFact>,
    /// Steps running at the end of the period.
    open: Vec<OpenStep>,
    /// Hotline reports received in the period, ratings of hotline cases given in it.
    hotline_reported: i64,
    hotline_rated: i64,
    hotline_satisfied: i64,
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

fn owner(unit: &Option<String>) -> String {
    unit.clone().unwrap_or_else(|| COMMAND_CENTER.to_owned())
}

/// The level a step counts at: the command centre's while no department has
/// the case, else the level the case was handled at.
fn level_of(department: &Option<String>, level: &Option<String>) -> String {
    match department {
        None => COMMAND_CENTER.to_owned(),
        Some(_) => owner(level),
    }
}

impl Kpis {
    fn count(&mut self, t: &TransitionFact) {
        match t.action.as_str() {
            "fail-check" => self.checks_failed += 1,
            "void" => self.voided += 1,
            _ => {}
        }
        if let Some(step) = t.step.as_ref().filter(|_| t.ended) {
            let counts = self.steps.entry(step.clone()).or_default();
            counts.due += 1;
            if completes(step, &t.action) {
                counts.done += 1;
                if t.due.is_none_or(|d| t.at <= d) {
                    counts.on_time += 1;
                }
            }
        }
    }

    fn rates(&mut self) {
        let step = |name: &str| self.steps.get(name).copied().unwrap_or_default();
        let (close, dispose, dispatch, register) = (step("close"), step("dispose"), step("dispatch"), step("register"));
        self.closure_rate = ratio(close.done, close.due);
        self.closure_on_time_rate = ratio(close.on_time, close.due);
        self.delay_rate = ratio(close.due - close.on_time, close.due);
        self.rework_rate = ratio(self.checks_failed, close.due);
        self.disposal_rate = ratio(dispose.done, dispose.due);
        self.disposal_on_time_rate = ratio(dispose.on_time, dispose.due);
        self.dispatch_on_time_rate = ratio(dispatch.on_time, dispatch.due);
        self.dispatch_accuracy_rate = ratio(dispatch.due - self.returned_or_transferred, dispatch.due);
        self.registration_on_time_rate = ratio(register.on_time, register.done);
        self.registration_accuracy_rate = ratio(register.done - self.voided, register.done);
    }
}

/// Fold the facts of `[from, to)` into the evaluation.
fn fold(from: i64, to: i64, facts: Facts) -> Evaluation {
    let mut departments: BTreeMap<String, Kpis> = BTreeMap::new();
    let mut levels: BTreeMap<String, Kpis> = BTreeMap::new();
    let mut hotline = HotlineKpis { reported: facts.hotline_reported, rated: facts.hotline_rated, satisfied: facts.hotline_satisfied, ..Default::default() };
    for t in &facts.transitions {
        if matches!(t.action.as_str(), "return" | "transfer") {
            // A wrong assignment counts against the dispatch, the command centre's step.
            departments.entry(COMMAND_CENTER.to_owned()).or_default().returned_or_transferred += 1;
            levels.entry(COMMAND_CENTER.to_owned()).or_default().returned_or_transferred += 1;
        }
        departments.entry(owner(&t.department)).or_default().count(t);
        levels.entry(level_of(&t.department, &t.level)).or_default().count(t);
        if t.channel == "hotline" {
            match t.action.as_str() {
                "close" => {
                    hotline.closed += 1;
                    if t.due.is_none_or(|d| t.at <= d) {
                        hotline.closed_on_time += 1;
                    }
                }
                "urge" => hotline.urged += 1,
                "reopen" => hotline.reopened += 1,
                _ => {}
            }
        }
    }
    // Steps still running whose deadline fell in the period: due, not done.
    for o in &facts.open {
        if o.due.is_some_and(|d| d >= from && d < to) {
            departments.entry(owner(&o.department)).or_default().steps.entry(o.step.clone()).or_default().due += 1;
            levels.entry(level_of(&o.department, &o.level)).or_default().steps.entry(o.step.clone()).or_default().due += 1;
        }
    }
    for k in departments.values_mut().chain(levels.values_mut()) {
        k.rates();
    }
    hotline.completion_rate = ratio(hotline.closed, hotline.reported);
    hotline.timely_completion_rate = ratio(hotline.closed_on_time, hotline.reported);
    hotline.urge_rate = ratio(hotline.urged, hotline.reported);
    hotline.reopen_rate = ratio(hotline.reopened, hotline.closed);
    hotline.satisfaction_rate = ratio(hotline.satisfied, hotline.rated);
    Evaluation {
        from,
        to,
        departments: departments.into_iter().map(|(department, kpis)| DepartmentKpis { department, kpis }).collect(),
        levels: levels.into_iter().map(|(level, kpis)| LevelKpis { level, kpis }).collect(),
        hotline,
    }
}

fn check_period(from: i64, to: i64) -> Result<(), ServiceError> {
    if from >= to {
        return Err(ServiceError::Invalid(format!("from: {from} is not before to: {to}")));
    }
    Ok(())
}

impl Evaluator {
    /// The evaluation of `[from, to)` from the case tables. Steps still
    /// running are those running now, so `to` is meant to be no later than now.
    pub async fn evaluate(&self, from: i64, to: i64) -> Result<Evaluation, ServiceError> {
        check_period(from, to)?;
        let mut facts = Facts::default();
        let rows = sqlx::query(
            "SELECT t.action, t.step, t.due, t.at, t.step_ended, t.step_department, t.step_level, c.channel \
             FROM case_transitions t JOIN cases c ON c.id = t.case_id WHERE t.at >= $1 AND t.at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.db.pool())
        .await?;
        for r in &rows {
            facts.transitions.push(TransitionFact {
                action: r.try_get(0)?,
                step: r.try_get(1)?,
                due: r.try_get(2)?,
                at: r.try_get(3)?,
                ended: r.try_get::<i64, _>(4)? != 0,
                department: r.try_get(5)?,
                level: r.try_get(6)?,
                channel: r.try_get(7)?,
            });
        }
        let open = sqlx::query(
            "SELECT category_code, area, step, step_since, step_paused, suspended_since, step_extra_ms, department, level \
             FROM cases WHERE step IS NOT NULL AND step_since < $1 AND suspended = 0",
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
            let Some(clock) = self.cases.clock_of(&state, to).await? else { continue };
            facts.open.push(OpenStep { step: clock.step, due: clock.deadline, department: r.try_get(7)?, level: r.try_get(8)? });
        }
        let count = |sql: &'static str| async move {
            let n: i64 = sqlx::query(sql).bind(from).bind(to).fetch_one(self.db.pool()).await?.try_get(0)?;
            Ok::<i64, ServiceError>(n)
        };
        facts.hotline_reported =
            count("SELECT COUNT(*) FROM reports WHERE channel = 'hotline' AND received >= $1 AND received < $2").await?;
        facts.hotline_rated = count(
            "SELECT COUNT(*) FROM case_ratings r JOIN cases c ON c.id = r.case_id \
             WHERE c.channel = 'hotline' AND r.at >= $1 AND r.at < $2",
        )
        .await?;
        facts.hotline_satisfied = count(
            "SELECT COUNT(*) FROM case_ratings r JOIN cases c ON c.id = r.case_id \
             WHERE c.channel = 'hotline' AND r.satisfied = 1 AND r.at >= $1 AND r.at < $2",
        )
        .await?;
        Ok(fold(from, to, facts))
    }

    /// The evaluation of `[from, to)` from the audit log alone: the records
    /// the intake, the transitions and the ratings write carry every figure.
    /// A step still running is the one the case's last record before `to`
    /// started, with the deadline that record gives it.
    pub async fn evaluate_from_audit(&self, from: i64, to: i64) -> Result<Evaluation, ServiceError> {
        check_period(from, to)?;
        evaluate_audit_log(&self.db, from, to).await
    }
}

/// [`Evaluator::evaluate_from_audit`] over a database with nothing but its audit log read.
pub async fn evaluate_audit_log(db: &crate::db::Db, from: i64, to: i64) -> Result<Evaluation, ServiceError> {
    check_period(from, to)?;
    let rows = sqlx::query(
        "SELECT action, subject, detail FROM audit_log WHERE outcome = 'ok' AND action LIKE 'case.%' ORDER BY seq",
    )
    .fetch_all(db.pool())
    .await?;
    let mut facts = Facts::default();
    // Per case: its channel, and the step its last record (before `to`) left running.
    let mut cases: BTreeMap<String, (String, Option<OpenStep>)> = BTreeMap::new();
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let int = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_i64);
    for r in &rows {
        let action: String = r.try_get(0)?;
        let subject: String = r.try_get(1)?;
        let detail: String = r.try_get(2)?;
        let Ok(d) = serde_json::from_str::<serde_json::Value>(&detail) else { continue };
        let Some(action) = action.strip_prefix("case.") else { continue };
        match action {
            "report" => {
                let (Some(channel), Some(received)) = (text(&d, "channel"), int(&d, "received")) else { continue };
                if channel == "hotline" && received >= from && received < to {
                    facts.hotline_reported += 1;
                }
                if d.get("joined").and_then(serde_json::Value::as_bool) == Some(false) && received < to {
                    let open = text(&d, "step").map(|step| OpenStep { step, due: int(&d, "due"), department: None, level: None });
                    cases.insert(subject, (channel, open));
                }
            }
            "rate" => {
                let (Some(channel), Some(at)) = (text(&d, "channel"), int(&d, "at")) else { continue };
                if channel == "hotline" && at >= from && at < to {
                    facts.hotline_rated += 1;
                    if d.get("satisfied").and_then(serde_json::Value::as_bool) == Some(true) {
                        facts.hotline_satisfied += 1;
                    }
                }
            }
            _ => {
                // A transition: its record names the stages it moved between.
                let (Some(at), Some(_), Some(_)) = (int(&d, "at"), text(&d, "from"), text(&d, "to")) else { continue };
                if at >= to {
                    continue;
                }
                let channel = text(&d, "channel").unwrap_or_default();
                if at >= from {
                    facts.transitions.push(TransitionFact {
                        action: action.to_owned(),
                        at,
                        step: text(&d, "step"),
                        due: int(&d, "due"),
                        ended: d.get("step_ended").and_then(serde_json::Value::as_bool).unwrap_or(false),
                        department: text(&d, "step_department"),
                        level: text(&d, "step_level"),
                        channel: channel.clone(),
                    });
                }
                let suspended = d.get("suspended").and_then(serde_json::Value::as_bool).unwrap_or(false);
                let open = text(&d, "next_step").filter(|_| !suspended).map(|step| OpenStep {
                    step,
                    due: int(&d, "next_due"),
                    department: text(&d, "department"),
                    level: text(&d, "level"),
                });
                cases.insert(subject, (channel, open));
            }
        }
    }
    facts.open = cases.into_values().filter_map(|(_, open)| open).collect();
    Ok(fold(from, to, facts))
}
