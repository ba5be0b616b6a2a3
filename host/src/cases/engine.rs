//! The case engine: one intake for every channel, and transitions through the
//! [`lifecycle`](super::lifecycle) with who, when and why recorded.
//!
//! - *Intake* stores the report and its new case in one transaction and
//!   answers only after the commit; a report resubmitted with the same
//!   idempotency key on the same channel returns the original instead.
//! - *Transitions* read the case, check the action against its position, the
//!   actor's roles, area and department, and write the new position only if
//!   nobody moved the case meanwhile (its `version`), with the transition row,
//!   in one transaction; the bus event (`case.<action>`) follows the commit,
//!   and the caller writes the audit record.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::Cases;
use super::deadlines::{ClockState, StepClock};
use super::lifecycle::{self, Action, Position, Stage};
use super::suggest::RouteSuggestion;
use crate::bus::GeoPoint;
use crate::identity::{Principal, Scope};
use crate::error::ServiceError;

/// Where a report came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// 12345: entered by a hotline operator, with the caller.
    Hotline,
    /// 随手拍: a resident's photo and location.
    Snapshot,
    /// A grid worker's patrol.
    Patrol,
    /// A department's own finding.
    Department,
    /// A plugin's warning.
    Warning,
    /// An imported CAP alert.
    CapAlert,
    /// An Open311 GeoReport v2 client.
    Open311}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Hotline => "hotline",
            Channel::Snapshot => "snapshot",
            Channel::Patrol => "patrol",
            Channel::Department => "department",
            Channel::Warning => "warning",
            Channel::CapAlert => "cap-alert",
            Channel::Open311 => "open311"}
    }
}

/// A hotline caller (personal data: staff views only).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    pub name: String,
    pub phone: String}

/// A report as it comes in.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReport {
    pub channel: Channel,
    /// Makes a resubmission harmless: the same caller's same key on the same
    /// channel returns the original; another caller's key is theirs alone, and
    /// the key sent again with another body is refused (409).
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// A category code (`GET /api/categories`).
    pub category_code: String,
    /// A short title; the category's name when left out.
    #[serde(default)]
    pub title: Option<String>,
    pub description: String,
    #[serde(default)]
    pub location: Option<GeoPoint>,
    #[serde(default)]
    pub address: Option<String>,
    /// sha256 digests of uploaded media (`POST /api/media`).
    #[serde(default)]
    pub evidence: Vec<String>,
    /// The caller, for a hotline report.
    #[serde(default)]
    pub caller: Option<Caller>}

/// What the intake did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Intake {
    pub report: String,
    pub case: String,
    /// The public number a reporter follows the case by.
    pub ticket: String,
    /// `false` when the idempotency key named an earlier report, returned as it was.
    pub created: bool,
    /// `true` when the report repeats an open case and joined it rather than
    /// opening a new one; the reporter follows that case's ticket.
    #[serde(default)]
    pub joined: bool}

/// A case category.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Category {
    pub code: String,
    pub name: String,
    /// `component` (部件) or `incident` (事件).
    pub kind: String,
    pub major_name: String,
    /// The usual responsible department.
    pub department: Option<String>}

/// A requested transition.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Move {
    #[schema(value_type = String)]
    pub action: Action,
    /// Why; required for reject, void, transfer, return, fail-check, reopen,
    /// suspend, request-extension and deny-extension.
    #[serde(default)]
    pub reason: String,
    /// The department to dispatch or transfer to.
    #[serde(default)]
    pub department: Option<String>,
    /// Working hours asked for by `request-extension`.
    #[serde(default)]
    pub extension_hours: Option<u32>,
    /// The case a `merge` joins this one to.
    #[serde(default)]
    pub into: Option<String>,
    /// A pending route suggestion a `dispatch` accepts: the case goes to its
    /// department at its level (then `department` is left out).
    #[serde(default)]
    pub suggestion: Option<String>}

/// One recorded transition.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transition {
    pub seq: i64,
    pub action: String,
    pub from: String,
    pub to: String,
    /// The step whose clock ran when the transition was taken, and its deadline.
    pub step: Option<String>,
    pub due: Option<i64>,
    pub actor: String,
    pub at: i64,
    pub reason: String,
    pub department: Option<String>}

/// A case as staff see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseView {
    pub id: String,
    pub ticket: Option<String>,
    pub category_code: String,
    pub title: String,
    pub description: String,
    pub location: Option<GeoPoint>,
    pub area: Option<String>,
    pub channel: String,
    #[schema(value_type = String)]
    pub stage: Stage,
    pub suspended: bool,
    pub extension_pending: bool,
    pub department: Option<String>,
    pub created: i64,
    pub stage_since: i64,
    /// The current step's clock, when the step has a limit.
    pub clock: Option<StepClock>,
    /// The command level handling it, once dispatched.
    pub level: Option<String>,
    /// Where the routing rules would send it; `null` puts it in the manual queue.
    pub route: Option<Route>,
    /// Routes plugins suggested, oldest first, with what became of each.
    pub suggestions: Vec<RouteSuggestion>,
    /// Departments called in (吹哨报到).
    pub called_in: Vec<String>,
    /// Every report filed under the case, the first one and those that joined it.
    pub reports: Vec<FiledReport>,
    /// Working hours asked for by a pending extension request.
    pub pending_extension_hours: Option<f64>,
    /// What may be done next (whoever may do it).
    #[schema(value_type = Vec<String>)]
    pub allowed: Vec<Action>,
    pub transitions: Vec<Transition>}

/// Where the routing rules send a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Route {
    pub department: String,
    /// The command level that handles it: `community`, `street`, `district` or `city`.
    pub level: String,
    /// The rule that matched: its category and area prefixes.
    pub category_prefix: String,
    pub area_prefix: String}

/// Who takes a transition.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    /// A person, checked for role, area and department.
    Person { actor: &'a Principal, scope: &'a Scope },
    /// The host itself (a citizen's unsatisfied rating, …), or a caller the
    /// host authorised for the whole act beforehand (a CAP Cancel, checked
    /// for area and sender), named in the record.
    System(&'a str)}

/// A citizen's rating of a closed case.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rating {
    pub satisfied: bool,
    #[serde(default)]
    pub comment: String}

/// What a reporter sees by ticket: progress only, no personal data.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicProgress {
    /// The ticket asked for.
    pub ticket: String,
    /// Set when that ticket's case was merged into another as a duplicate:
    /// the surviving case's ticket, whose progress the rest describes.
    pub merged_into_ticket: Option<String>,
    pub category: String,
    pub title: String,
    #[schema(value_type = String)]
    pub stage: Stage,
    pub created: i64,
    pub updated: i64,
    /// (stage, when) in order.
    pub steps: Vec<(String, i64)>}

fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}


impl NewReport {
    /// Check the report on its own; errors name the field.
    pub(crate) fn check(&self) -> Result<(), ServiceError> {
        let bad = |m: String| Err(ServiceError::Invalid(m));
        if let Some(k) = &self.idempotency_key
            && (k.is_empty() || k.len() > 128)
        {
            return bad("idempotency_key: must be 1-128 characters".into());
        }
        if self.description.trim().is_empty() || self.description.len() > 16 * 1024 {
            return bad("description: must be 1 byte to 16 KiB".into());
        }
        if let Some(t) = &self.title
            && (t.trim().is_empty() || t.chars().count() > 200)
        {
            return bad("title: must be 1-200 characters".into());
        }
        if let Some(p) = self.location {
            p.validate().map_err(|m| ServiceError::Invalid(format!("location: {m}")))?;
        }
        if let Some(a) = &self.address
            && a.chars().count() > 200
        {
            return bad("address: at most 200 characters".into());
        }
        if let Some((i, d)) = self.evidence.iter().enumerate().find(|(_, d)| !is_digest(d)) {
            return bad(format!("evidence[{i}]: `{d}` is not a lowercase sha256 digest"));
        }
        match (self.channel, &self.caller) {
            (Channel::Hotline, None) => return bad("caller: a hotline report names its caller".into()),
            (Channel::Hotline, Some(c)) if c.name.trim().is_empty() || c.phone.trim().is_empty() => {
                return bad("caller: name and phone are required".into());
            }
            (Channel::Hotline, Some(_)) => {}
            (_, Some(_)) => return bad("caller: only a hotline report has a caller".into()),
            (_, None) => {}
        }
        if self.channel == Channel::Snapshot && (self.location.is_none() || self.evidence.is_empty()) {
            return bad("a snapshot report (随手拍) carries a location and at least one photo in `evidence`".into());
        }
        Ok(())
    }
}

impl Cases {
    /// The case categories, by code.
    pub async fn categories(&self) -> Result<Vec<Category>, ServiceError> {
        let rows = sqlx::query("SELECT code, name, kind, major_name, department FROM categories ORDER BY code")
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Category {
                    code: r.try_get(0)?,
                    name: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    major_name: r.try_get(3)?,
                    department: r.try_get(4)?})
            })
            .collect()
    }

    /// A case with its transitions, as staff see it.
    pub async fn view(&self, id: &str) -> Result<Option<CaseView>, ServiceError> {
        let row = sqlx::query(
            "SELECT id, ticket, category_code, title, description, lat, lon, area, channel, status, suspended, \
             extension_pending, department, created, stage_since, step, step_since, step_paused, suspended_since, \
             step_extra_ms, pending_extension_ms, level FROM cases WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let stage_name: String = r.try_get(9)?;
        let stage = Stage::parse(&stage_name)
            .ok_or_else(|| ServiceError::Storage(anyhow::anyhow!("case `{id}`: unknown stage `{stage_name}`")))?;
        let position = Position {
            stage,
            suspended: r.try_get::<i64, _>(10)? != 0,
            extension_pending: r.try_get::<i64, _>(11)? != 0};
        let (lat, lon): (Option<f64>, Option<f64>) = (r.try_get(5)?, r.try_get(6)?);
        let paused: String = r.try_get(17)?;
        let state = ClockState {
            category: r.try_get(2)?,
            area: r.try_get(7)?,
            step: r.try_get(15)?,
            since: r.try_get(16)?,
            paused: serde_json::from_str(&paused).unwrap_or_default(),
            suspended_since: r.try_get(18)?,
            extra_ms: r.try_get(19)?};
        let pending: i64 = r.try_get(20)?;
        let clock = self.clock_of(&state, self.clock.now_ms()).await?;
        let route = self.route(&state.category, state.area.as_deref()).await?;
        let called_in = sqlx::query("SELECT department FROM case_call_ins WHERE case_id = $1 ORDER BY at")
            .bind(id)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        Ok(Some(CaseView {
            id: r.try_get(0)?,
            ticket: r.try_get(1)?,
            category_code: r.try_get(2)?,
            title: r.try_get(3)?,
            description: r.try_get(4)?,
            location: lat.zip(lon).map(|(lat, lon)| GeoPoint { lat, lon }),
            area: r.try_get(7)?,
            channel: r.try_get(8)?,
            stage,
            suspended: position.suspended,
            extension_pending: position.extension_pending,
            department: r.try_get(12)?,
            created: r.try_get(13)?,
            stage_since: r.try_get(14)?,
            clock,
            level: r.try_get(21)?,
            route,
            suggestions: self.route_suggestions(id).await?,
            called_in,
            reports: self.reports(id).await?,
            pending_extension_hours: (pending > 0).then(|| pending as f64 / 3_600_000.0),
            allowed: lifecycle::allowed(position),
            transitions: self.transitions(id).await?}))
    }

    /// A case's transitions, in order.
    pub async fn transitions(&self, id: &str) -> Result<Vec<Transition>, ServiceError> {
        let rows = sqlx::query(
            "SELECT seq, action, from_stage, to_stage, actor, at, reason, department, step, due FROM case_transitions \
             WHERE case_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Transition {
                    seq: r.try_get(0)?,
                    action: r.try_get(1)?,
                    from: r.try_get(2)?,
                    to: r.try_get(3)?,
                    actor: r.try_get(4)?,
                    at: r.try_get(5)?,
                    reason: r.try_get(6)?,
                    department: r.try_get(7)?,
                    step: r.try_get(8)?,
                    due: r.try_get(9)?})
            })
            .collect()
    }

    /// A case's public progress by its ticket number; a merged case's, the
    /// surviving case's.
    pub async fn progress(&self, ticket: &str) -> Result<Option<PublicProgress>, ServiceError> {
        let Some((case_id, merged_into_ticket)) = self.follow_merges(ticket).await? else { return Ok(None) };
        let row = sqlx::query(
            "SELECT c.id, c.status, c.created, c.updated, c.title, k.name FROM cases c \
             JOIN categories k ON k.code = c.category_code WHERE c.id = $1",
        )
        .bind(&case_id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let id: String = r.try_get(0)?;
        let stage: String = r.try_get(1)?;
        let created: i64 = r.try_get(2)?;
        let mut steps = vec![(Stage::Reported.name().to_owned(), created)];
        for t in self.transitions(&id).await? {
            if t.from != t.to {
                steps.push((t.to, t.at));
            }
        }
        Ok(Some(PublicProgress {
            ticket: ticket.to_owned(),
            merged_into_ticket,
            stage: Stage::parse(&stage).unwrap_or(Stage::Reported),
            created,
            updated: r.try_get(3)?,
            title: r.try_get(4)?,
            category: r.try_get(5)?,
            steps}))
    }
}

impl Cases {
    /// The area a case lies in (`Some(None)` for a case with no area), or
    /// `None` when there is no such case: what every read of something a case
    /// holds is scoped by.
    pub async fn area_of(&self, id: &str) -> Result<Option<Option<String>>, ServiceError> {
        let row = sqlx::query("SELECT area FROM cases WHERE id = $1").bind(id).fetch_optional(self.db.pool()).await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// The case behind a ticket, with its reporter and channel.
    pub async fn by_ticket(&self, ticket: &str) -> Result<Option<(String, String, String)>, ServiceError> {
        let row = sqlx::query("SELECT id, opened_by, channel FROM cases WHERE ticket = $1")
            .bind(ticket)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
            None => None})
    }

    /// Record a rating of a closed case by `rated_by`; an unsatisfied one
    /// reopens the case (重办), recorded as the host acting on the rating.
    pub async fn rate(&self, case_id: &str, rating: &Rating, rated_by: &str) -> Result<CaseView, ServiceError> {
        if rating.comment.chars().count() > 2000 {
            return Err(ServiceError::Invalid("comment: at most 2,000 characters".into()));
        }
        let view = self.view(case_id).await?.ok_or_else(|| ServiceError::NotFound(format!("no case `{case_id}`")))?;
        if view.stage != Stage::Closed {
            return Err(ServiceError::Conflict(format!("a case is rated once closed; this one is {}", view.stage)));
        }
        let mut chain = self.audit.chain().await?;
        let mut tx = self.db.begin_write().await?;
        let now = self.clock.now_ms();
        sqlx::query("INSERT INTO case_ratings (case_id, at, satisfied, comment, rated_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(case_id)
            .bind(now)
            .bind(i64::from(rating.satisfied))
            .bind(&rating.comment)
            .bind(rated_by)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({ "at": now, "satisfied": rating.satisfied, "channel": view.channel, "comment": rating.comment });
        let entry = crate::audit::Entry { actor: rated_by, action: "case.rate", subject: case_id, outcome: "ok", detail: &detail.to_string() };
        chain.append(&mut tx, entry).await?;
        tx.commit().await?;
        chain.keep();
        if rating.satisfied {
            return Ok(view);
        }
        let reason = if rating.comment.trim().is_empty() { "不满意".to_owned() } else { format!("不满意：{}", rating.comment) };
        let mv = Move { action: Action::Reopen, reason, department: None, extension_hours: None, into: None, suggestion: None };
        self.transition(case_id, &mv, Who::System("host:rating")).await
    }
}

impl Cases {
    /// Where the routing rules send a case of `category` in `area`: the longest
    /// category prefix wins, then the longest area prefix.
    pub async fn route(&self, category: &str, area: Option<&str>) -> Result<Option<Route>, ServiceError> {
        let rows = sqlx::query("SELECT category_prefix, area_prefix, department, level FROM routing_rules")
            .fetch_all(self.db.pool())
            .await?;
        let mut best: Option<((usize, usize), Route)> = None;
        for r in &rows {
            let (cp, ap): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            if !category.starts_with(&cp) || !(ap.is_empty() || area.is_some_and(|a| a.starts_with(&ap))) {
                continue;
            }
            let rank = (cp.len(), ap.len());
            if best.as_ref().is_none_or(|(b, _)| rank > *b) {
                let route = Route { department: r.try_get(2)?, level: r.try_get(3)?, category_prefix: cp, area_prefix: ap };
                best = Some((rank, route));
            }
        }
        Ok(best.map(|(_, r)| r))
    }

    /// The manual queue: registered cases no routing rule matches, oldest first.
    pub async fn manual_queue(&self) -> Result<Vec<CaseView>, ServiceError> {
        let rows = sqlx::query("SELECT id, category_code, area FROM cases WHERE status = $1 ORDER BY created")
            .bind(Stage::Registered.name())
            .fetch_all(self.db.pool())
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let (id, category, area): (String, String, Option<String>) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            if self.route(&category, area.as_deref()).await?.is_none()
                && let Some(v) = self.view(&id).await?
            {
                out.push(v);
            }
        }
        Ok(out)
    }
}

impl Cases {
    /// The reports filed under a case, oldest first, as staff see them.
    pub async fn reports(&self, case_id: &str) -> Result<Vec<FiledReport>, ServiceError> {
        let rows = sqlx::query(
            "SELECT id, channel, reporter, caller_name, caller_phone, category_code, title, description, received, \
             confirmed_by, confirmed_at FROM reports WHERE case_id = $1 ORDER BY received, id",
        )
        .bind(case_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FiledReport {
                    id: r.try_get(0)?,
                    channel: r.try_get(1)?,
                    reporter: r.try_get(2)?,
                    caller_name: r.try_get(3)?,
                    caller_phone: r.try_get(4)?,
                    category_code: r.try_get(5)?,
                    title: r.try_get(6)?,
                    description: r.try_get(7)?,
                    received: r.try_get(8)?,
                    confirmed: match (r.try_get::<Option<String>, _>(9)?, r.try_get::<Option<i64>, _>(10)?) {
                        (Some(by), Some(at)) => Some(Confirmation { by, at }),
                        _ => None}})
            })
            .collect()
    }
}

/// A report as filed under a case (staff view: the caller is personal data).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FiledReport {
    pub id: String,
    pub channel: String,
    pub reporter: Option<String>,
    pub caller_name: Option<String>,
    pub caller_phone: Option<String>,
    pub category_code: String,
    pub title: String,
    pub description: String,
    pub received: i64,
    /// Set when a dispatcher confirmed that this report belongs to the case.
    pub confirmed: Option<Confirmation>}

/// Who confirmed a joined report, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Confirmation {
    pub by: String,
    pub at: i64}

