//! Route suggestions (路由建议): a plugin granted `route` says which department
//! and command level it thinks should handle an open case, with a score and a
//! reason. The routing rules stay the default; a suggestion is advice the case
//! view (and so the manual queue) shows beside them.
//!
//! A dispatcher settles the suggestions with the dispatch itself, in its
//! transaction:
//! - *accept*: `dispatch` with `suggestion` — the case goes to the suggested
//!   department at the suggested level, and the transition's reason names the
//!   plugin and the suggestion;
//! - *override*: any other dispatch (a named department, or the routing rules).
//!
//! Either way every suggestion still pending on the case is settled: the one
//! accepted becomes `accepted`, the others `overridden`. A plugin has at most
//! one pending suggestion per case.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use yiwang_wit::events::{CommandLevel, Payload, RouteSuggested};

use super::Cases;
use super::engine::Move;
use super::lifecycle::{Action, Stage};
use crate::bus::GeoPoint;
use crate::error::{ServiceError, new_id};

/// The four command levels, lowest first.
pub const LEVELS: [&str; 4] = ["community", "street", "district", "city"];

/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// What a plugin suggests for a case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewSuggestion {
    /// A department code.
    pub department: String,
    /// One of [`LEVELS`].
    pub level: String,
    /// How sure the plugin is, 0 to 1.
    pub score: f64,
    /// Why, for the dispatcher: 1-500 characters.
    pub reason: String,
}

/// What became of a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SuggestionOutcome {
    /// Not settled yet: the case has not been dispatched since.
    Pending,
    /// A dispatcher dispatched the case with it.
    Accepted,
    /// A dispatcher dispatched the case otherwise.
    Overridden,
}

impl SuggestionOutcome {
    pub fn name(self) -> &'static str {
        match self {
            SuggestionOutcome::Pending => "pending",
            SuggestionOutcome::Accepted => "accepted",
            SuggestionOutcome::Overridden => "overridden",
        }
    }

    fn parse(s: &str) -> Option<SuggestionOutcome> {
        [SuggestionOutcome::Pending, SuggestionOutcome::Accepted, SuggestionOutcome::Overridden].into_iter().find(|o| o.name() == s)
    }
}

/// A route suggestion as shown with its case.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RouteSuggestion {
    pub id: String,
    /// The suggesting plugin's name.
    pub plugin: String,
    pub department: String,
    /// `community`, `street`, `district` or `city`.
    pub level: String,
    /// How sure the plugin is, 0 to 1.
    pub score: f64,
    pub reason: String,
    /// When it was suggested.
    pub at: i64,
    pub outcome: SuggestionOutcome,
    /// Who settled it by dispatching the case, and when.
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

impl NewSuggestion {
    /// Check the suggestion on its own; errors name the field.
    pub fn check(&self) -> Result<(), ServiceError> {
        let bad = |m: String| Err(ServiceError::Invalid(m));
        if self.department.trim().is_empty() {
            return bad("department: must name a department".into());
        }
        if !LEVELS.contains(&self.level.as_str()) {
            return bad(format!("level: `{}` is not a command level; expected {}", self.level, LEVELS.join(", ")));
        }
        if !(self.score.is_finite() && (0.0..=1.0).contains(&self.score)) {
            return bad(format!("score: {} is not between 0 and 1", self.score));
        }
        let n = self.reason.chars().count();
        if self.reason.trim().is_empty() || n > MAX_REASON_CHARS {
            return bad(format!("reason: must be 1-{MAX_REASON_CHARS} characters, not {n}"));
        }
        Ok(())
    }
}

const COLUMNS: &str = "id, plugin, department, level, score, reason, at, outcome, decided_by, decided_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<RouteSuggestion, ServiceError> {
    let outcome: String = r.try_get(7)?;
    Ok(RouteSuggestion {
        id: r.try_get(0)?,
        plugin: r.try_get(1)?,
        department: r.try_get(2)?,
        level: r.try_get(3)?,
        score: r.try_get(4)?,
        reason: r.try_get(5)?,
        at: r.try_get(6)?,
        outcome: SuggestionOutcome::parse(&outcome)
            .ok_or_else(|| ServiceError::Storage(anyhow::anyhow!("route suggestion: unknown outcome `{outcome}`")))?,
        decided_by: r.try_get(8)?,
        decided_at: r.try_get(9)?,
    })
}

impl Cases {
    /// Store plugin `plugin`'s suggestion for the open case `case_id` and
    /// publish it on `case.route-suggested`.
    pub async fn suggest_route(&self, case_id: &str, plugin: &str, s: &NewSuggestion) -> Result<RouteSuggestion, ServiceError> {
        s.check()?;
        let pool = self.db.pool();
        let case = sqlx::query("SELECT status, lat, lon FROM cases WHERE id = $1").bind(case_id).fetch_optional(pool).await?;
        let Some(case) = case else {
            return Err(ServiceError::NotFound(format!("case_id: no case `{case_id}`")));
        };
        let stage: String = case.try_get(0)?;
        if !Stage::parse(&stage).is_some_and(Stage::is_open) {
            return Err(ServiceError::Conflict(format!("case_id: case `{case_id}` is {stage}; routes are suggested for open cases")));
        }
        let location = match (case.try_get::<Option<f64>, _>(1)?, case.try_get::<Option<f64>, _>(2)?) {
            (Some(lat), Some(lon)) => Some(GeoPoint { lat, lon }),
            _ => None,
        };
        let known = sqlx::query("SELECT 1 FROM departments WHERE code = $1").bind(&s.department).fetch_optional(pool).await?;
        if known.is_none() {
            return Err(ServiceError::Invalid(format!("department: unknown department `{}`", s.department)));
        }
        let earlier = sqlx::query("SELECT id FROM route_suggestions WHERE case_id = $1 AND plugin = $2 AND outcome = 'pending'")
            .bind(case_id)
            .bind(plugin)
            .fetch_optional(pool)
            .await?;
        if let Some(earlier) = earlier {
            let earlier: String = earlier.try_get(0)?;
            return Err(ServiceError::Conflict(format!(
                "case_id: `{plugin}` already has suggestion `{earlier}` pending for case `{case_id}`"
            )));
        }
        let suggestion = RouteSuggestion {
            id: new_id(),
            plugin: plugin.to_owned(),
            department: s.department.clone(),
            level: s.level.clone(),
            score: s.score,
            reason: s.reason.clone(),
            at: self.clock.now_ms(),
            outcome: SuggestionOutcome::Pending,
            decided_by: None,
            decided_at: None,
        };
        // One statement, so the checks above hold when it writes: the case is
        // still open, and the partial unique index settles two suggestions of
        // one plugin racing past the check for a pending one.
        let inserted = sqlx::query(
            "INSERT INTO route_suggestions (id, case_id, plugin, department, level, score, reason, at, outcome) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, 'pending' \
             WHERE EXISTS (SELECT 1 FROM cases WHERE id = $2 AND status NOT IN ('rejected', 'voided', 'closed')) \
             ON CONFLICT (case_id, plugin) WHERE outcome = 'pending' DO NOTHING",
        )
        .bind(&suggestion.id)
        .bind(case_id)
        .bind(plugin)
        .bind(&suggestion.department)
        .bind(&suggestion.level)
        .bind(suggestion.score)
        .bind(&suggestion.reason)
        .bind(suggestion.at)
        .execute(self.db.writer())
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(ServiceError::Conflict(format!(
                "case_id: case `{case_id}` was closed meanwhile, or `{plugin}` already has a suggestion pending for it"
            )));
        }
        let payload = RouteSuggested {
            case: case_id.to_owned(),
            suggestion: suggestion.id.clone(),
            plugin: plugin.to_owned(),
            department: suggestion.department.clone(),
            level: CommandLevel::named(&suggestion.level),
            score: suggestion.score,
            reason: suggestion.reason.clone(),
        };
        self.announce(RouteSuggested::TOPIC, &format!("plugin:{plugin}"), location, &payload).await;
        Ok(suggestion)
    }

    /// The route suggestions for a case, oldest first.
    pub async fn route_suggestions(&self, case_id: &str) -> Result<Vec<RouteSuggestion>, ServiceError> {
        let sql = format!("SELECT {COLUMNS} FROM route_suggestions WHERE case_id = $1 ORDER BY at, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(case_id).fetch_all(self.db.pool()).await?;
        rows.iter().map(from_row).collect()
    }
}

/// Check a move's `suggestion` on its own: only a dispatch accepts one, and
/// then it names no department of its own.
pub(crate) fn check_move(mv: &Move) -> Result<(), ServiceError> {
    match (mv.action, &mv.suggestion, &mv.department) {
        (_, None, _) => Ok(()),
        (Action::Dispatch, Some(_), Some(_)) => Err(ServiceError::Invalid(
            "suggestion: a dispatch accepts a suggestion or names a department, not both".into(),
        )),
        (Action::Dispatch, Some(_), None) => Ok(()),
        (action, Some(_), _) => Err(ServiceError::Invalid(format!("suggestion: `{action}` takes none"))),
    }
}

/// The pending suggestion `suggestion_id` of case `case_id`, read in the
/// dispatch's transaction.
pub(crate) async fn pending(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    case_id: &str,
    suggestion_id: &str,
) -> Result<RouteSuggestion, ServiceError> {
    let sql = format!("SELECT {COLUMNS} FROM route_suggestions WHERE id = $1 AND case_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(suggestion_id).bind(case_id).fetch_optional(&mut **tx).await?;
    let Some(row) = row else {
        return Err(ServiceError::NotFound(format!("suggestion: case `{case_id}` has no suggestion `{suggestion_id}`")));
    };
    let s = from_row(&row)?;
    if s.outcome != SuggestionOutcome::Pending {
        return Err(ServiceError::Conflict(format!("suggestion: `{suggestion_id}` was already {}", s.outcome.name())));
    }
    Ok(s)
}

/// The reason a dispatch accepting `s` records: which plugin's suggestion it
/// took, then the dispatcher's own words, if any.
pub(crate) fn accepted_reason(s: &RouteSuggestion, reason: &str) -> String {
    let head = format!("采纳插件 {} 的路由建议 {}（{}，{}）", s.plugin, s.id, s.department, s.level);
    if reason.trim().is_empty() { head } else { format!("{head}：{reason}") }
}

/// Settle every pending suggestion of case `case_id` at a dispatch by `actor`:
/// `accepted` (if any) is accepted, the rest are overridden.
pub(crate) async fn settle(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    case_id: &str,
    accepted: Option<&str>,
    actor: &str,
    now: i64,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE route_suggestions SET outcome = CASE WHEN id = $2 THEN 'accepted' ELSE 'overridden' END, \
         decided_by = $3, decided_at = $4 WHERE case_id = $1 AND outcome = 'pending'",
    )
    .bind(case_id)
    .bind(accepted.unwrap_or(""))
    .bind(actor)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
