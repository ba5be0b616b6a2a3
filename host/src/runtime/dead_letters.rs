//! Dead letters: events a plugin failed on [`super::MAX_ATTEMPTS`] times in a
//! row (traps, CPU, memory, stack, timeouts), set aside so that the plugin
//! goes on with the next event. An operator lists them, retries them (the
//! event is handed to the plugin's serving version again) or drops them,
//! through the admin API or `yiwang plugin dead-letters`. Dead letters carry
//! whole events, so they are for operators only.

use std::sync::Arc;

use serde::Serialize;
use sqlx::Row;

use super::{CallOutcome, Runtime};
use crate::bus::{Delivery, Event, GeoPoint};
use crate::db::Db;
use crate::error::new_id;

/// A dead letter as operators see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: String,
    pub plugin: String,
    /// Its place in the event log.
    pub seq: u64,
    pub event_id: String,
    pub topic: String,
    pub source: String,
    /// The event's time (ms since the epoch).
    pub time: i64,
    pub location: Option<GeoPoint>,
    /// The event's JSON document.
    pub payload: String,
    /// Calls that failed on it.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
    /// When it was last set aside (ms since the epoch).
    pub failed_at: i64,
    /// `dead`, or `retry` while a retry asked for from the command line waits
    /// for the server to pick it up.
    pub state: String,
}

impl DeadLetter {
    fn event(&self) -> Event {
        Event {
            id: self.event_id.clone(),
            topic: self.topic.clone(),
            source: self.source.clone(),
            time: self.time,
            location: self.location,
            payload: self.payload.clone(),
        }
    }
}

/// What a retry came to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetryOutcome {
    /// `handled` (the dead letter is gone) or `failed` (it stays, with one
    /// more attempt and this error).
    pub outcome: String,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, plugin, seq, event_id, topic, source, time, lat, lon, payload, attempts, error, failed_at, state";

fn from_row(r: &sqlx::any::AnyRow) -> Result<DeadLetter, sqlx::Error> {
    let lat: Option<f64> = r.try_get(7)?;
    let lon: Option<f64> = r.try_get(8)?;
    Ok(DeadLetter {
        id: r.try_get(0)?,
        plugin: r.try_get(1)?,
        seq: r.try_get::<i64, _>(2)? as u64,
        event_id: r.try_get(3)?,
        topic: r.try_get(4)?,
        source: r.try_get(5)?,
        time: r.try_get(6)?,
        location: lat.zip(lon).map(|(lat, lon)| GeoPoint { lat, lon }),
        payload: r.try_get(9)?,
        attempts: r.try_get::<i32, _>(10)? as u32,
        error: r.try_get(11)?,
        failed_at: r.try_get(12)?,
        state: r.try_get(13)?,
    })
}

/// Set an event aside for `plugin`, audited.
pub(crate) async fn record(runtime: &Runtime, plugin: &str, delivery: &Delivery, attempts: u32, error: &str) {
    let s = runtime.services();
    let ev = &delivery.event;
    let now = s.clock.now_ms();
    let error: String = error.chars().take(2000).collect();
    let insert = sqlx::query(
        "INSERT INTO dead_letters (id, plugin, seq, event_id, topic, source, time, lat, lon, payload, attempts, error, failed_at, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'dead')",
    )
    .bind(new_id())
    .bind(plugin)
    .bind(delivery.seq as i64);
    let stored = crate::bus::journal::bind_event(insert, ev)
        .bind(attempts as i32)
        .bind(&error)
        .bind(now)
        .execute(s.db.writer())
        .await;
    match stored {
        Ok(_) => tracing::error!(plugin, event = %ev.id, topic = %ev.topic, "event set aside as a dead letter after {attempts} failed calls: {error}"),
        Err(e) => tracing::error!(plugin, event = %ev.id, "event failed {attempts} times and could not be kept as a dead letter: {e}"),
    }
    if let Some(p) = runtime.plugin(plugin) {
        p.ctx.stats.dead_letters.inc();
    }
    let detail = format!("event {} ({}) after {attempts} attempts: {error}", ev.id, ev.topic);
    s.audit.record_host("plugin.dead-letter", &format!("plugin:{plugin}"), "set aside", &detail).await;
}

/// The dead letters of `plugin` (of every plugin with `None`), oldest first.
pub async fn list(db: &Db, plugin: Option<&str>) -> anyhow::Result<Vec<DeadLetter>> {
    let rows = match plugin {
        Some(p) => {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM dead_letters WHERE plugin = $1 ORDER BY seq, failed_at")))
                .bind(p)
                .fetch_all(db.pool())
                .await?
        }
        None => sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM dead_letters ORDER BY plugin, seq, failed_at"))).fetch_all(db.pool()).await?,
    };
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// How many dead letters each plugin has.
pub async fn counts(db: &Db) -> anyhow::Result<std::collections::HashMap<String, u64>> {
    let rows = sqlx::query_as::<_, (String, i64)>("SELECT plugin, COUNT(*) FROM dead_letters GROUP BY plugin").fetch_all(db.pool()).await?;
    Ok(rows.into_iter().map(|(p, n)| (p, n as u64)).collect())
}

async fn get(db: &Db, id: &str) -> anyhow::Result<Option<DeadLetter>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM dead_letters WHERE id = $1"))).bind(id).fetch_optional(db.pool()).await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Drop a dead letter for good (of `plugin` only, if named); `false` if
/// there is none with that id.
pub async fn drop_letter(db: &Db, plugin: Option<&str>, id: &str) -> anyhow::Result<bool> {
    let done = sqlx::query("DELETE FROM dead_letters WHERE id = $1 AND ($2 = '' OR plugin = $2)")
        .bind(id)
        .bind(plugin.unwrap_or(""))
        .execute(db.writer())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Ask the running server to retry a dead letter (from the command line,
/// which cannot call the plugin itself); `false` if there is none with that id.
pub async fn request_retry(db: &Db, id: &str) -> anyhow::Result<bool> {
    let done = sqlx::query("UPDATE dead_letters SET state = 'retry' WHERE id = $1").bind(id).execute(db.writer()).await?;
    Ok(done.rows_affected() > 0)
}

impl Runtime {
    /// Hand a dead letter of `plugin` to its serving version now: gone if
    /// handled, kept with one more attempt if not. `None` if `plugin` has no
    /// dead letter `id`, or is not loaded.
    pub async fn retry_dead_letter(&self, plugin: &str, id: &str, actor: &str) -> anyhow::Result<Option<RetryOutcome>> {
        let db = &self.services().db;
        let Some(letter) = get(db, id).await?.filter(|l| l.plugin == plugin) else { return Ok(None) };
        let Some(loaded) = self.plugin(plugin) else { return Ok(None) };
        let outcome = loaded.deliver(&letter.event()).await;
        let audit = &self.services().audit;
        let result = match outcome {
            CallOutcome::Ok | CallOutcome::GuestError(_) => {
                drop_letter(db, Some(plugin), id).await?;
                RetryOutcome { outcome: "handled".into(), error: None }
            }
            CallOutcome::Failed(kind, message) => {
                let error = format!("{}: {message}", kind.name());
                sqlx::query("UPDATE dead_letters SET attempts = attempts + 1, error = $1, failed_at = $2, state = 'dead' WHERE id = $3")
                    .bind(&error)
                    .bind(self.services().clock.now_ms())
                    .bind(id)
                    .execute(db.writer())
                    .await?;
                RetryOutcome { outcome: "failed".into(), error: Some(error) }
            }
            CallOutcome::Skipped => {
                sqlx::query("UPDATE dead_letters SET state = 'dead' WHERE id = $1").bind(id).execute(db.writer()).await?;
                RetryOutcome { outcome: "failed".into(), error: Some("the plugin is quarantined; try again later".into()) }
            }
        };
        let detail = format!("event {} ({}): {}", letter.event_id, letter.topic, result.outcome);
        audit.record_host("plugin.dead-letter.retry", actor, &result.outcome, &detail).await;
        Ok(Some(result))
    }

    /// Retry every dead letter asked for from the command line, every second.
    pub fn start_retry_sweeper(self: &Arc<Self>) -> tokio::task::AbortHandle {
        let runtime = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let Some(runtime) = runtime.upgrade() else { return };
                let asked = sqlx::query_as::<_, (String, String)>("SELECT id, plugin FROM dead_letters WHERE state = 'retry'")
                    .fetch_all(runtime.services().db.pool())
                    .await;
                for (id, plugin) in asked.unwrap_or_default() {
                    if let Err(e) = runtime.retry_dead_letter(&plugin, &id, "cli").await {
                        tracing::warn!(plugin, id, "retrying a dead letter failed: {e:#}");
                    }
                }
            }
        });
        task.abort_handle()
    }
}
