//! A dispatcher's word on what the deduplication did. A report filed under an
//! open case beside its first one (it joined the case, or came with a merged
//! duplicate) is either
//!
//! - *confirmed* as being about the same incident: who and when are kept on
//!   the report (`confirmed` in [`CaseView::reports`]); or
//! - *split* out into a case of its own: a new case with a new ticket at stage
//!   `reported`, placed and indexed for deduplication like any new case, the
//!   report moved to it; the original case keeps the others. The first report
//!   of a case (the one it was opened from) is never split out of it.
//!
//! Either is recorded, in the transaction that makes it, in the history
//! (`case_transitions`, action `confirm-join` or `split`, the stage unchanged)
//! of every case it touches, with who, when and why, and it takes the case's
//! `version`, so a transition racing with it fails rather than being lost.
//! After the commit it is published (`case.join-confirmed`, `case.split`); the
//! routes audit it and tell the reporter of a split report its new ticket.
//!
//! A case merged into another (the `merge` transition) names it in
//! `merged_into`, and its ticket leads to the surviving case
//! ([`Cases::progress`]).

use serde::{Deserialize, Serialize};
use sqlx::Row;
use yiwang_wit::events::{CaseJoinConfirmed, CaseSplit, Payload};

use super::Cases;
use super::history;
use super::deadlines::ClockState;
use super::dedup::Report;
use super::engine::{CaseView, Who};
use super::intake::ticket;
use super::lifecycle::Stage;
use crate::bus::GeoPoint;
use crate::identity::Role;
use crate::error::{ServiceError, new_id};

/// The longest chain of merges a ticket is followed along.
const MAX_MERGES: usize = 64;

/// A dispatcher's decision on a report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Why; required to split, at most 2,000 characters.
    #[serde(default)]
    pub reason: String}

/// A report split out into a case of its own.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SplitOff {
    pub report: String,
    /// The case the report was filed under; it keeps its other reports.
    pub from_case: String,
    pub from_ticket: Option<String>,
    /// The new case and its ticket.
    pub case: String,
    pub ticket: String,
    pub title: String,
    /// Who filed the report (a user id), if anyone.
    pub reporter: Option<String>}

/// A case and one of its reports, as read for a decision.
struct Filed {
    actor: String,
    stage: Stage,
    version: i64,
    ticket: Option<String>,
    category: String,
    title: String,
    clock: ClockState,
    /// The case's reports, oldest first.
    reports: Vec<String>,
    report: FiledRow}

struct FiledRow {
    channel: String,
    reporter: Option<String>,
    category_code: String,
    title: String,
    description: String,
    location: Option<GeoPoint>,
    confirmed_by: Option<String>}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

impl Cases {
    /// Confirm that report `report_id` belongs to case `case_id`, as `who`
    /// (a dispatcher within the case's area).
    pub async fn confirm_report(
        &self,
        case_id: &str,
        report_id: &str,
        decision: &Decision,
        who: Who<'_>,
    ) -> Result<CaseView, ServiceError> {
        check_reason(decision, "confirm-join", false)?;
        // The audit chain first, then the transaction (the order every writer keeps).
        let mut chain = self.audit.chain().await?;
        let mut tx = self.db.begin_write().await?;
        let f = self.filed(&mut tx, "confirm-join", case_id, report_id, who).await?;
        if f.reports.first().is_some_and(|first| first == report_id) {
            return Err(ServiceError::Conflict(format!(
                "report `{report_id}` is the one case `{case_id}` was opened from; only reports that joined a case are confirmed"
            )));
        }
        if let Some(by) = &f.report.confirmed_by {
            return Err(ServiceError::Conflict(format!("report `{report_id}` was confirmed already, by {by}")));
        }
        let now = self.clock.now_ms();
        let due = self.clock_of(&f.clock, now).await?.and_then(|c| c.deadline);
        let confirmed = sqlx::query(
            "UPDATE reports SET confirmed_by = $3, confirmed_at = $4 WHERE id = $1 AND case_id = $2 AND confirmed_by IS NULL",
        )
        .bind(report_id)
        .bind(case_id)
        .bind(&f.actor)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if confirmed.rows_affected() == 0 {
            return Err(changed(case_id));
        }
        bump(&mut tx, case_id, f.version, now).await?;
        let reason = with_reason(format!("确认报告 {report_id} 属于本案"), &decision.reason);
        let step = f.clock.step.as_deref();
        history::record_unchanged(&mut tx, &mut chain, case_id, "confirm-join", f.stage, &f.actor, now, &reason, step, due).await?;
        tx.commit().await?;
        chain.keep();

        let payload = CaseJoinConfirmed {
            case: case_id.to_owned(),
            report: report_id.to_owned(),
            actor: f.actor.clone(),
            reason: decision.reason.clone(),
        };
        self.announce(CaseJoinConfirmed::TOPIC, &f.actor, f.report.location, &payload).await;
        self.view(case_id).await?.ok_or_else(|| ServiceError::NotFound(format!("no case `{case_id}`")))
    }

    /// Split report `report_id` out of case `case_id` into a new case of its
    /// own, as `who` (a dispatcher within the case's area).
    pub async fn split_report(
        &self,
        case_id: &str,
        report_id: &str,
        decision: &Decision,
        who: Who<'_>,
    ) -> Result<SplitOff, ServiceError> {
        check_reason(decision, "split", true)?;
        let mut chain = self.audit.chain().await?;
        let mut tx = self.db.begin_write().await?;
        let f = self.filed(&mut tx, "split", case_id, report_id, who).await?;
        if f.reports.len() == 1 {
            return Err(ServiceError::Conflict(format!(
                "report `{report_id}` is the only report of case `{case_id}`: there is nothing to split it from"
            )));
        }
        if f.reports.first().is_some_and(|first| first == report_id) {
            return Err(ServiceError::Conflict(format!(
                "report `{report_id}` is the first report of case `{case_id}`, the one it was opened from; \
                 split the others out of it, or void the case"
            )));
        }
        let r = &f.report;
        let now = self.clock.now_ms();
        let area = r.location.and_then(|p| self.space.grid_at(p)).map(|g| g.code).or(f.clock.area.clone());
        // A report that joined without a title of its own carries the case's;
        // under another code it takes its own category's name.
        let title = if r.category_code != f.category && r.title == f.title {
            let name = sqlx::query("SELECT name FROM categories WHERE code = $1")
                .bind(&r.category_code)
                .fetch_optional(&mut *tx)
                .await?;
            match name {
                Some(row) => row.try_get(0)?,
                None => r.title.clone()}
        } else {
            r.title.clone()
        };
        let due = self.clock_of(&f.clock, now).await?.and_then(|c| c.deadline);
        let new_clock = ClockState {
            category: r.category_code.clone(),
            area: area.clone(),
            step: Some("accept".to_owned()),
            since: Some(now),
            paused: vec![],
            suspended_since: None,
            extra_ms: 0};
        let new_due = self.clock_of(&new_clock, now).await?.and_then(|c| c.deadline);
        let (new_case, new_ticket) = (new_id(), ticket());

        sqlx::query(
            "INSERT INTO cases (id, category_code, title, description, lat, lon, channel, status, opened_by, department, \
             created, ticket, area, stage_since, updated, step, step_since) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'reported', $8, NULL, $9, $10, $11, $9, $9, 'accept', $9)",
        )
        .bind(&new_case)
        .bind(&r.category_code)
        .bind(&title)
        .bind(&r.description)
        .bind(r.location.map(|p| p.lat))
        .bind(r.location.map(|p| p.lon))
        .bind(&r.channel)
        .bind(r.reporter.as_deref().unwrap_or("anonymous"))
        .bind(now)
        .bind(&new_ticket)
        .bind(area.as_deref())
        .execute(&mut *tx)
        .await?;
        let moved = sqlx::query(
            "UPDATE reports SET case_id = $3, confirmed_by = NULL, confirmed_at = NULL WHERE id = $1 AND case_id = $2",
        )
        .bind(report_id)
        .bind(case_id)
        .bind(&new_case)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Err(changed(case_id));
        }
        bump(&mut tx, case_id, f.version, now).await?;
        let why = &decision.reason;
        let reason = format!("拆分报告 {report_id} 另立新案 {new_ticket}：{why}");
        let step = f.clock.step.as_deref();
        history::record_unchanged(&mut tx, &mut chain, case_id, "split", f.stage, &f.actor, now, &reason, step, due).await?;
        let reason = format!("由案件 {} 拆分而来：{why}", f.ticket.as_deref().unwrap_or(case_id));
        history::record_unchanged(&mut tx, &mut chain, &new_case, "split", Stage::Reported, &f.actor, now, &reason, Some("accept"), new_due).await?;
        tx.commit().await?;
        chain.keep();

        if let Some(location) = r.location
            && r.channel != "cap-alert"
        {
            let text = format!("{title} {}", r.description);
            let report = Report { category_code: &r.category_code, location, reported_ms: now, text: &text };
            if let Err(e) = self.dedup_index().await?.write().insert(&new_case, &report) {
                tracing::warn!(case = new_case, "not indexed for deduplication: {e}");
            }
        }
        let payload = CaseSplit {
            case: case_id.to_owned(),
            report: report_id.to_owned(),
            new_case: new_case.clone(),
            ticket: new_ticket.clone(),
            category_code: r.category_code.clone(),
            area: area.clone(),
            actor: f.actor.clone(),
            reason: why.to_owned(),
        };
        self.announce(CaseSplit::TOPIC, &f.actor, r.location, &payload).await;
        Ok(SplitOff {
            report: report_id.to_owned(),
            from_case: case_id.to_owned(),
            from_ticket: f.ticket,
            case: new_case,
            ticket: new_ticket,
            title,
            reporter: f.report.reporter})
    }

    /// The case behind `ticket`, followed along merges to the case that
    /// survived them, and that case's ticket when it is another's; `None` for
    /// an unknown ticket.
    pub(crate) async fn follow_merges(&self, ticket: &str) -> Result<Option<(String, Option<String>)>, ServiceError> {
        let row = sqlx::query("SELECT id, merged_into FROM cases WHERE ticket = $1")
            .bind(ticket)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut id: String = row.try_get(0)?;
        let mut next: Option<String> = row.try_get(1)?;
        let mut followed = None;
        // A merge's target is open and the merged case is voided, so merges
        // form no cycle; the bound is for a table edited by hand.
        for _ in 0..MAX_MERGES {
            let Some(into) = next.take() else { break };
            let row = sqlx::query("SELECT ticket, merged_into FROM cases WHERE id = $1")
                .bind(&into)
                .fetch_optional(self.db.pool())
                .await?;
            let Some(row) = row else { break };
            id = into;
            followed = row.try_get(0)?;
            next = row.try_get(1)?;
        }
        Ok(Some((id, followed)))
    }

    /// Read case `case_id` and its report `report_id` for `action`, checking
    /// who takes it, that the case is open and that the report is filed under it.
    async fn filed(
        &self,
        tx: &mut Tx<'_>,
        action: &str,
        case_id: &str,
        report_id: &str,
        who: Who<'_>,
    ) -> Result<Filed, ServiceError> {
        let row = sqlx::query(
            "SELECT status, area, version, ticket, category_code, title, department, step, step_since, step_paused, \
             suspended_since, step_extra_ms, merged_into FROM cases WHERE id = $1",
        )
        .bind(case_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no case `{case_id}`")))?;
        let stage_name: String = row.try_get(0)?;
        let stage = Stage::parse(&stage_name)
            .ok_or_else(|| ServiceError::Storage(anyhow::anyhow!("case `{case_id}`: unknown stage `{stage_name}`")))?;
        let area: Option<String> = row.try_get(1)?;
        let actor = match who {
            Who::Person { actor, scope } => {
                if !actor.has_role(Role::Dispatcher) {
                    return Err(ServiceError::Forbidden(format!("`{action}` requires the role {}", Role::Dispatcher.name())));
                }
                if !scope.covers_case(area.as_deref()) {
                    return Err(ServiceError::Forbidden(format!(
                        "case `{case_id}` lies in org unit `{}`, outside {scope}",
                        area.as_deref().unwrap_or("-")
                    )));
                }
                format!("user:{}", actor.id)
            }
            Who::System(name) => name.to_owned()};
        if !stage.is_open() {
            let merged_into: Option<String> = row.try_get(12)?;
            return Err(ServiceError::Conflict(match merged_into {
                Some(into) => format!("case `{case_id}` was merged into case `{into}`; its reports are filed there"),
                None => format!("case `{case_id}` is {stage}; the reports of a closed, rejected or voided case stay as they are")}));
        }
        let paused: String = row.try_get(9)?;
        let category: String = row.try_get(4)?;
        let clock = ClockState {
            category: category.clone(),
            area,
            step: row.try_get(7)?,
            since: row.try_get(8)?,
            paused: serde_json::from_str(&paused).unwrap_or_default(),
            suspended_since: row.try_get(10)?,
            extra_ms: row.try_get(11)?};
        let report = sqlx::query(
            "SELECT case_id, channel, reporter, category_code, title, description, lat, lon, confirmed_by \
             FROM reports WHERE id = $1",
        )
        .bind(report_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no report `{report_id}`")))?;
        let filed_under: String = report.try_get(0)?;
        if filed_under != case_id {
            return Err(ServiceError::Conflict(format!(
                "report `{report_id}` is filed under case `{filed_under}`, not `{case_id}`"
            )));
        }
        let (lat, lon): (Option<f64>, Option<f64>) = (report.try_get(6)?, report.try_get(7)?);
        let reports = sqlx::query("SELECT id FROM reports WHERE case_id = $1 ORDER BY received, id")
            .bind(case_id)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        Ok(Filed {
            actor,
            stage,
            version: row.try_get(2)?,
            ticket: row.try_get(3)?,
            category,
            title: row.try_get(5)?,
            clock,
            reports,
            report: FiledRow {
                channel: report.try_get(1)?,
                reporter: report.try_get(2)?,
                category_code: report.try_get(3)?,
                title: report.try_get(4)?,
                description: report.try_get(5)?,
                location: lat.zip(lon).map(|(lat, lon)| GeoPoint { lat, lon }),
                confirmed_by: report.try_get(8)?}})
    }
}

fn check_reason(decision: &Decision, action: &str, required: bool) -> Result<(), ServiceError> {
    if required && decision.reason.trim().is_empty() {
        return Err(ServiceError::Invalid(format!("reason: `{action}` needs a reason")));
    }
    if decision.reason.chars().count() > 2000 {
        return Err(ServiceError::Invalid("reason: at most 2,000 characters".into()));
    }
    Ok(())
}

fn with_reason(what: String, why: &str) -> String {
    if why.trim().is_empty() { what } else { format!("{what}：{why}") }
}

fn changed(case_id: &str) -> ServiceError {
    ServiceError::Conflict(format!("case `{case_id}` changed meanwhile; read it again"))
}

/// Take the case's next version, if nobody took it since `version` was read.
async fn bump(tx: &mut Tx<'_>, case_id: &str, version: i64, now: i64) -> Result<(), ServiceError> {
    let bumped = sqlx::query("UPDATE cases SET version = version + 1, updated = $3 WHERE id = $1 AND version = $2")
        .bind(case_id)
        .bind(version)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    if bumped.rows_affected() == 0 {
        return Err(changed(case_id));
    }
    Ok(())
}

