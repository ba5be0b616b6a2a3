//! A case's history: every move, and every word on a case that moves no stage
//! (confirming or splitting off a report), is one row in `case_transitions`
//! and one audit record, written together by [`record`] in the transaction
//! that makes the change. The audit record carries every figure the KPIs use,
//! so the evaluation recomputed from the log alone sees the same history.

use sqlx::Row;

use super::lifecycle::Stage;
use crate::audit::{Chain, Entry};
use crate::error::ServiceError;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// One entry of a case's history.
pub(crate) struct Record<'a> {
    pub case_id: &'a str,
    /// The action's name (`dispatch`, `split`, …); audited as `case.<action>`.
    pub action: &'a str,
    pub from: Stage,
    pub to: Stage,
    /// `user:<id>`, `plugin:<name>` or a host name.
    pub actor: &'a str,
    pub at: i64,
    /// The reason as given (audited).
    pub reason: &'a str,
    /// The reason as the history shows it: a merge names the case joined, an
    /// accepted route suggestion names the plugin that made it.
    pub shown_reason: &'a str,
    /// The channel the case came in by.
    pub channel: &'a str,
    pub into: Option<&'a str>,
    pub suggestion: Option<&'a str>,
    /// The step the move was taken in, its deadline, whether the move ended it,
    /// and the department and command level that held it.
    pub step: Option<&'a str>,
    pub due: Option<i64>,
    pub step_ended: bool,
    pub step_department: Option<&'a str>,
    pub step_level: Option<&'a str>,
    /// Where the case is after the move: its department and level, the step
    /// now running and its deadline, and whether it is suspended.
    pub department: Option<&'a str>,
    pub level: Option<&'a str>,
    pub next_step: Option<&'a str>,
    pub next_due: Option<i64>,
    pub suspended: bool,
}

/// Write `r` as the case's next history row and its audit record.
pub(crate) async fn record(tx: &mut Tx<'_>, chain: &mut Chain<'_>, r: &Record<'_>) -> Result<(), ServiceError> {
    let seq: i64 = sqlx::query("SELECT COUNT(*) FROM case_transitions WHERE case_id = $1")
        .bind(r.case_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    let seq = seq + 1;
    sqlx::query(
        "INSERT INTO case_transitions (case_id, seq, action, from_stage, to_stage, actor, at, reason, department, \
         step, due, step_ended, step_department, step_level) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(r.case_id)
    .bind(seq)
    .bind(r.action)
    .bind(r.from.name())
    .bind(r.to.name())
    .bind(r.actor)
    .bind(r.at)
    .bind(r.shown_reason)
    .bind(r.department)
    .bind(r.step)
    .bind(r.due)
    .bind(i64::from(r.step_ended))
    .bind(r.step_department)
    .bind(r.step_level)
    .execute(&mut **tx)
    .await?;
    let detail = serde_json::json!({
        "seq": seq, "from": r.from.name(), "to": r.to.name(), "at": r.at, "reason": r.reason,
        "into": r.into, "channel": r.channel, "suggestion": r.suggestion,
        "step": r.step, "due": r.due, "step_ended": r.step_ended, "step_department": r.step_department,
        "step_level": r.step_level, "department": r.department, "level": r.level, "next_step": r.next_step,
        "next_due": r.next_due, "suspended": r.suspended,
    });
    let action = format!("case.{}", r.action);
    let entry = Entry { actor: r.actor, action: &action, subject: r.case_id, outcome: "ok", detail: &detail.to_string() };
    chain.append(tx, entry).await?;
    Ok(())
}

/// A history entry that leaves the case's stage and step as they are (its
/// department, level, channel and suspension read from the case).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_unchanged(
    tx: &mut Tx<'_>,
    chain: &mut Chain<'_>,
    case_id: &str,
    action: &str,
    stage: Stage,
    actor: &str,
    at: i64,
    reason: &str,
    step: Option<&str>,
    due: Option<i64>,
) -> Result<(), ServiceError> {
    let case = sqlx::query("SELECT department, level, channel, suspended FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_one(&mut **tx)
        .await?;
    let department: Option<String> = case.try_get(0)?;
    let level: Option<String> = case.try_get(1)?;
    let channel: String = case.try_get(2)?;
    let suspended = case.try_get::<i64, _>(3)? != 0;
    let r = Record {
        case_id,
        action,
        from: stage,
        to: stage,
        actor,
        at,
        reason,
        shown_reason: reason,
        channel: &channel,
        into: None,
        suggestion: None,
        step,
        due,
        step_ended: false,
        step_department: department.as_deref(),
        step_level: level.as_deref(),
        department: department.as_deref(),
        level: level.as_deref(),
        next_step: step,
        next_due: due,
        suspended,
    };
    record(tx, chain, &r).await
}
