//! How a case moves: [`Cases::transition`] in four steps — *validate* the
//! move's own fields, *authorise* the actor against the case as read in the
//! transaction, *apply* the lifecycle, routing and step clock and write the
//! new position over the version read, then *record* the history row and its
//! audit record ([`history::record`]) — all in one transaction, announced on
//! `case.<action>` after the commit.

use sqlx::Row;
use yiwang_wit::events::{CaseMoved, CommandLevel};

use super::Cases;
use super::deadlines::{ClockState, step_of};
use super::engine::{CaseView, Move, Who};
use super::history;
use super::lifecycle::{self, Action, Position, Stage};
use super::suggest::{self, RouteSuggestion};
use crate::audit::Chain;
use crate::error::ServiceError;
use crate::identity::Role;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// What validation found in a move: the department it names (known to
/// exist) and the extension it asks for.
struct Checked {
    target: Option<String>,
    extension_ms: i64,
}

/// The case as the transition's transaction read it.
struct Current {
    from: Position,
    area: Option<String>,
    department: Option<String>,
    version: i64,
    clock: ClockState,
    pending_ms: i64,
    level: Option<String>,
    channel: String,
}

/// What a move changed.
struct Applied {
    to: Position,
    now: i64,
    accepted: Option<RouteSuggestion>,
    /// The department and level the case is with after the move.
    department: Option<String>,
    level: Option<String>,
    /// The step clock after the move; `restart` when the move started a new step.
    clock: ClockState,
    restart: bool,
    /// The step the move was taken in and its deadline.
    old_step: Option<String>,
    due: Option<i64>,
}

impl Cases {
    /// Take `mv` on case `id` as `who`. A refusal for role, area or
    /// department is `Forbidden` (the caller audits it); an action the case's
    /// position does not allow is `Conflict`, listing what it does.
    pub async fn transition(&self, id: &str, mv: &Move, who: Who<'_>) -> Result<CaseView, ServiceError> {
        let checked = self.validate(id, mv).await?;
        // The audit chain first, then the transaction (the order every writer keeps).
        let mut chain = self.audit.chain().await?;
        let mut tx = self.db.begin_write().await?;
        let current = read(&mut tx, id).await?;
        let disposal = match mv.action {
            Action::PassCheck | Action::FailCheck => last_disposal(&mut tx, id).await?,
            _ => None,
        };
        let actor = authorise(id, mv.action, who, &current, disposal.as_ref())?;
        let applied = self.apply(&mut tx, id, mv, who, &actor, checked, &current).await?;
        self.record(&mut tx, &mut chain, id, mv, &actor, &current, &applied).await?;
        tx.commit().await?;
        chain.keep();

        if !applied.to.stage.is_open() {
            self.dedup_index().await?.write().remove(id);
        }
        let action = mv.action;
        let payload = CaseMoved {
            case: id.to_owned(),
            action: action.name().to_owned(),
            from: current.from.stage.name().to_owned(),
            to: applied.to.stage.name().to_owned(),
            department: applied.department.clone(),
            level: applied.level.as_deref().map(CommandLevel::named),
            actor: actor.clone(),
            reason: mv.reason.clone(),
            suggestion: mv.suggestion.clone(),
        };
        self.announce(&payload.topic(), &actor, None, &payload).await;
        self.view(id).await?.ok_or_else(|| ServiceError::NotFound(format!("no case `{id}`")))
    }

    /// The move's own fields: reason, department, merge target, suggestion,
    /// extension — each as the action needs it.
    async fn validate(&self, id: &str, mv: &Move) -> Result<Checked, ServiceError> {
        let action = mv.action;
        if action.needs_reason() && mv.reason.trim().is_empty() {
            return Err(ServiceError::Invalid(format!("reason: `{action}` needs a reason")));
        }
        if mv.reason.chars().count() > 2000 {
            return Err(ServiceError::Invalid("reason: at most 2,000 characters".into()));
        }
        let target = match (action, &mv.department) {
            // A dispatch without a department follows the routing rules (below).
            (Action::Dispatch, None) => None,
            (Action::Transfer | Action::CallIn, None) => {
                return Err(ServiceError::Invalid(format!("department: `{action}` names the department")));
            }
            (Action::Dispatch | Action::Transfer | Action::CallIn, Some(d)) => {
                let known = sqlx::query("SELECT 1 FROM departments WHERE code = $1").bind(d).fetch_optional(self.db.pool()).await?;
                if known.is_none() {
                    return Err(ServiceError::Invalid(format!("department: unknown department `{d}`")));
                }
                Some(d.clone())
            }
            (_, Some(_)) => return Err(ServiceError::Invalid(format!("department: `{action}` takes no department"))),
            (_, None) => None,
        };
        match (action, &mv.into) {
            (Action::Merge, None) => return Err(ServiceError::Invalid("into: `merge` names the case to join".into())),
            (Action::Merge, Some(into)) if into == id => {
                return Err(ServiceError::Invalid("into: a case cannot be merged into itself".into()));
            }
            (Action::Merge, Some(_)) | (_, None) => {}
            (_, Some(_)) => return Err(ServiceError::Invalid(format!("into: `{action}` takes none"))),
        }
        suggest::check_move(mv)?;
        let extension_ms = match (action, mv.extension_hours) {
            (Action::RequestExtension, Some(h)) if (1..=2000).contains(&h) => i64::from(h) * 3_600_000,
            (Action::RequestExtension, _) => {
                return Err(ServiceError::Invalid("extension_hours: `request-extension` asks for 1-2,000 working hours".into()));
            }
            (_, Some(_)) => return Err(ServiceError::Invalid(format!("extension_hours: `{action}` takes none"))),
            (_, None) => 0,
        };
        Ok(Checked { target, extension_ms })
    }

    /// Route, move through the lifecycle, run the step clock, and write the
    /// new position over the version read (with the merge or call-in it makes).
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
        mv: &Move,
        who: Who<'_>,
        actor: &str,
        checked: Checked,
        current: &Current,
    ) -> Result<Applied, ServiceError> {
        let action = mv.action;
        let area = current.area.as_deref();
        let department = &current.department;
        let accepted = match &mv.suggestion {
            Some(s) => Some(suggest::pending(tx, id, s).await?),
            None => None,
        };
        let route = self.route(&current.clock.category, area).await?;
        let target = match (action, checked.target) {
            (Action::Dispatch, None) if accepted.is_some() => accepted.as_ref().map(|s| s.department.clone()),
            (Action::Dispatch, None) => Some(route.as_ref().map(|r| r.department.clone()).ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "department: no routing rule matches category `{}` in area `{}`; name the department",
                    current.clock.category,
                    area.unwrap_or("-")
                ))
            })?),
            (_, t) => t,
        };
        let mut level = current.level.clone();
        match action {
            Action::Dispatch => {
                level = Some(match &accepted {
                    Some(s) => s.level.clone(),
                    None => route.filter(|r| Some(&r.department) == target.as_ref()).map_or("district".to_owned(), |r| r.level),
                });
            }
            Action::Escalate => {
                let up = match level.as_deref() {
                    None | Some("community") => "street",
                    Some("street") => "district",
                    Some("district") => "city",
                    Some(_) => return Err(ServiceError::Conflict(format!("case `{id}` is already handled at city level"))),
                };
                level = Some(up.to_owned());
            }
            _ => {}
        }
        if matches!(action, Action::CallIn | Action::Transfer) && target == *department {
            return Err(ServiceError::Invalid(format!("department: the case is already with `{}`", target.unwrap_or_default())));
        }
        let to = lifecycle::apply(current.from, action).map_err(|e| ServiceError::Conflict(e.to_string()))?;

        let now = self.clock.now_ms();
        // The deadline of the step this transition is taken in, kept with it.
        let mut clock = current.clock.clone();
        let mut pending_ms = current.pending_ms;
        let old_step = clock.step.clone();
        let due = self.clock_of(&clock, now).await?.and_then(|c| c.deadline);
        let new_step = step_of(to.stage).map(str::to_owned);
        let restart = new_step != old_step
            || matches!(action, Action::Transfer | Action::Return | Action::FailCheck | Action::Reopen);
        if restart {
            clock = ClockState { step: new_step, since: Some(now), paused: vec![], suspended_since: None, extra_ms: 0, ..clock };
            pending_ms = 0;
        } else {
            match action {
                Action::Suspend => clock.suspended_since = Some(now),
                Action::Resume => {
                    if let Some(from) = clock.suspended_since.take() {
                        clock.paused.push((from, now));
                    }
                }
                Action::RequestExtension => pending_ms = checked.extension_ms,
                Action::ApproveExtension => clock.extra_ms += std::mem::take(&mut pending_ms),
                Action::DenyExtension => pending_ms = 0,
                _ => {}
            }
        }
        let new_department = match action {
            Action::Dispatch | Action::Transfer => target.clone(),
            Action::Return | Action::Reopen => None,
            _ => department.clone(),
        };
        let stage_since = if to.stage != current.from.stage { now } else { stage_since(tx, id).await? };
        let updated = sqlx::query(
            "UPDATE cases SET status = $2, suspended = $3, extension_pending = $4, department = $5, stage_since = $6, \
             updated = $7, version = version + 1, step = $9, step_since = $10, step_paused = $11, suspended_since = $12, \
             step_extra_ms = $13, pending_extension_ms = $14, level = $16, \
             overdue_step = CASE WHEN $15 = 1 THEN NULL ELSE overdue_step END WHERE id = $1 AND version = $8",
        )
        .bind(id)
        .bind(to.stage.name())
        .bind(i64::from(to.suspended))
        .bind(i64::from(to.extension_pending))
        .bind(new_department.as_deref())
        .bind(stage_since)
        .bind(now)
        .bind(current.version)
        .bind(clock.step.as_deref())
        .bind(clock.since)
        .bind(serde_json::to_string(&clock.paused).expect("pairs serialise"))
        .bind(clock.suspended_since)
        .bind(clock.extra_ms)
        .bind(pending_ms)
        .bind(i64::from(restart))
        .bind(level.as_deref())
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(ServiceError::Conflict(format!("case `{id}` changed meanwhile; read it again")));
        }
        if let (Action::Merge, Some(into)) = (action, &mv.into) {
            merge(tx, id, into, who).await?;
        }
        if action == Action::CallIn {
            let called = target.as_deref().unwrap_or_default();
            call_in(tx, id, called, actor, now, &mv.reason).await?;
        }
        Ok(Applied { to, now, accepted, department: new_department, level, clock, restart, old_step, due })
    }

    /// The history row and audit record of an applied move, and the route
    /// suggestions a dispatch settles.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        tx: &mut Tx<'_>,
        chain: &mut Chain<'_>,
        id: &str,
        mv: &Move,
        actor: &str,
        current: &Current,
        applied: &Applied,
    ) -> Result<(), ServiceError> {
        let action = mv.action;
        // The deadline of the step now running, for the record (and the KPIs
        // recomputed from the audit log).
        let next_due = self.clock_of(&applied.clock, applied.now).await?.and_then(|c| c.deadline);
        let shown_reason = match (action, &mv.into, &applied.accepted) {
            (Action::Merge, Some(into), _) => format!("并入 {into}：{}", mv.reason),
            (Action::Dispatch, _, Some(s)) => suggest::accepted_reason(s, &mv.reason),
            _ => mv.reason.clone(),
        };
        let entry = history::Record {
            case_id: id,
            action: action.name(),
            from: current.from.stage,
            to: applied.to.stage,
            actor,
            at: applied.now,
            reason: &mv.reason,
            shown_reason: &shown_reason,
            channel: &current.channel,
            into: mv.into.as_deref(),
            suggestion: mv.suggestion.as_deref(),
            step: applied.old_step.as_deref(),
            due: applied.due,
            step_ended: applied.restart,
            step_department: current.department.as_deref(),
            step_level: current.level.as_deref(),
            department: applied.department.as_deref(),
            level: applied.level.as_deref(),
            next_step: applied.clock.step.as_deref(),
            next_due,
            suspended: applied.to.suspended,
        };
        history::record(tx, chain, &entry).await?;
        if action == Action::Dispatch {
            suggest::settle(tx, id, applied.accepted.as_ref().map(|s| s.id.as_str()), actor, applied.now).await?;
        }
        Ok(())
    }
}

/// The case's position, clock and holder, read in the transaction.
async fn read(tx: &mut Tx<'_>, id: &str) -> Result<Current, ServiceError> {
    let row = sqlx::query(
        "SELECT status, suspended, extension_pending, area, department, version, opened_by, category_code, step, \
         step_since, step_paused, suspended_since, step_extra_ms, pending_extension_ms, level, channel \
         FROM cases WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| ServiceError::NotFound(format!("no case `{id}`")))?;
    let stage_name: String = row.try_get(0)?;
    let area: Option<String> = row.try_get(3)?;
    let paused_text: String = row.try_get(10)?;
    Ok(Current {
        from: Position {
            stage: Stage::parse(&stage_name)
                .ok_or_else(|| ServiceError::Storage(anyhow::anyhow!("case `{id}`: unknown stage `{stage_name}`")))?,
            suspended: row.try_get::<i64, _>(1)? != 0,
            extension_pending: row.try_get::<i64, _>(2)? != 0,
        },
        department: row.try_get(4)?,
        version: row.try_get(5)?,
        clock: ClockState {
            category: row.try_get(7)?,
            area: area.clone(),
            step: row.try_get(8)?,
            since: row.try_get(9)?,
            paused: serde_json::from_str(&paused_text).unwrap_or_default(),
            suspended_since: row.try_get(11)?,
            extra_ms: row.try_get(12)?,
        },
        area,
        pending_ms: row.try_get(13)?,
        level: row.try_get(14)?,
        channel: row.try_get(15)?,
    })
}

/// Who disposed of the case last, and for which department.
struct Disposal {
    actor: String,
    department: Option<String>,
}

/// The case's last `dispose`, if any.
async fn last_disposal(tx: &mut Tx<'_>, id: &str) -> Result<Option<Disposal>, ServiceError> {
    let row = sqlx::query(
        "SELECT actor, step_department FROM case_transitions WHERE case_id = $1 AND action = 'dispose' ORDER BY seq DESC LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        Some(r) => Some(Disposal { actor: r.try_get(0)?, department: r.try_get(1)? }),
        None => None,
    })
}

/// Who takes the move, as recorded: a person needs a role the action asks
/// for, the case within their scope, and for the department's own work, that
/// department. Checking (核查) is separated from doing: whoever disposed of
/// the case, and anyone of the department that disposed of it, may not check it.
fn authorise(id: &str, action: Action, who: Who<'_>, current: &Current, disposal: Option<&Disposal>) -> Result<String, ServiceError> {
    let (actor, scope) = match who {
        Who::Person { actor, scope } => (actor, scope),
        Who::System(name) => return Ok(name.to_owned()),
    };
    if !action.roles().iter().any(|r| actor.has_role(*r)) {
        let roles: Vec<&str> = action.roles().iter().map(|r| Role::name(*r)).collect();
        return Err(ServiceError::Forbidden(format!("`{action}` requires the role {}", roles.join(" or "))));
    }
    if let Some(d) = disposal {
        let same_person = d.actor == format!("user:{}", actor.id);
        let same_department = d.department.is_some() && actor.department == d.department;
        if same_person || same_department {
            return Err(ServiceError::Forbidden(format!(
                "`{action}`: the case was disposed of by {} for `{}`; the one who did the work, or their department, does not check it",
                d.actor,
                d.department.as_deref().unwrap_or("-")
            )));
        }
    }
    if !scope.covers_case(current.area.as_deref()) {
        return Err(ServiceError::Forbidden(format!(
            "case `{id}` lies in org unit `{}`, outside {scope}",
            current.area.as_deref().unwrap_or("-")
        )));
    }
    let department_work = matches!(action, Action::Start | Action::Dispose | Action::Return | Action::RequestExtension);
    if department_work && actor.department.as_deref().is_none_or(|d| Some(d) != current.department.as_deref()) {
        return Err(ServiceError::Forbidden(format!(
            "`{action}` is for the department the case is with (`{}`)",
            current.department.as_deref().unwrap_or("none")
        )));
    }
    Ok(format!("user:{}", actor.id))
}

async fn stage_since(tx: &mut Tx<'_>, id: &str) -> Result<i64, ServiceError> {
    Ok(sqlx::query("SELECT stage_since FROM cases WHERE id = $1").bind(id).fetch_one(&mut **tx).await?.try_get(0)?)
}

/// Join case `id`'s reports to `into`, which must be open and, for a person,
/// within their scope.
async fn merge(tx: &mut Tx<'_>, id: &str, into: &str, who: Who<'_>) -> Result<(), ServiceError> {
    let target = sqlx::query("SELECT status, area FROM cases WHERE id = $1").bind(into).fetch_optional(&mut **tx).await?;
    let Some(target) = target else {
        return Err(ServiceError::NotFound(format!("into: no case `{into}`")));
    };
    let stage: String = target.try_get(0)?;
    let target_area: Option<String> = target.try_get(1)?;
    if let Who::Person { scope, .. } = who
        && !scope.covers_case(target_area.as_deref())
    {
        return Err(ServiceError::Forbidden(format!("into: case `{into}` lies outside {scope}")));
    }
    if !Stage::parse(&stage).is_some_and(Stage::is_open) {
        return Err(ServiceError::Conflict(format!("into: case `{into}` is {stage}, not open")));
    }
    sqlx::query("UPDATE reports SET case_id = $2 WHERE case_id = $1").bind(id).bind(into).execute(&mut **tx).await?;
    sqlx::query("UPDATE cases SET merged_into = $2 WHERE id = $1").bind(id).bind(into).execute(&mut **tx).await?;
    Ok(())
}

/// Record that `department` was called in to case `id` (once per department).
async fn call_in(tx: &mut Tx<'_>, id: &str, department: &str, actor: &str, now: i64, reason: &str) -> Result<(), ServiceError> {
    let called = sqlx::query(
        "INSERT INTO case_call_ins (case_id, department, called_by, at, reason) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (case_id, department) DO NOTHING",
    )
    .bind(id)
    .bind(department)
    .bind(actor)
    .bind(now)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    if called.rows_affected() == 0 {
        return Err(ServiceError::Conflict(format!("`{department}` was already called in")));
    }
    Ok(())
}
