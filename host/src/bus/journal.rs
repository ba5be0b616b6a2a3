//! The durable log behind plugin subscriptions: events appended in order, the
//! cursor of every durable subscriber, pruning of what all have finished with.
//!
//! One writer task appends (see [`super::memory`]), so sequence numbers are
//! committed in order and a reader that sees `seq` has seen everything before
//! it. The log is SQL (`bus_events`, `bus_cursors`) on a host with a database,
//! or a map in memory for services built without one (unit tests, benches).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sqlx::Row;

use super::{Event, GeoPoint};
use crate::db::{Db, Marks, runs};

/// An event in the log.
#[derive(Debug, Clone)]
pub struct Logged {
    pub seq: u64,
    pub event: Arc<Event>,
    /// When it was appended (ms since the epoch, wall clock).
    pub appended: i64,
}

/// A durable subscriber as stored: its topics and the last event it finished.
#[derive(Debug, Clone)]
pub struct CursorRow {
    pub subscriber: String,
    pub patterns: String,
    pub seq: u64,
}

/// Where the log lives.
pub(crate) enum Store {
    Memory(Mutex<MemoryLog>),
    Sql(Db),
}

#[derive(Default)]
pub(crate) struct MemoryLog {
    events: BTreeMap<u64, Logged>,
    cursors: BTreeMap<String, (String, u64)>,
}

const COLUMNS: usize = 9;

/// Bind an event's own columns, in the order the event log and the dead
/// letters both keep them: `id, topic, source, time, lat, lon, payload`.
pub fn bind_event<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ev: &'q Event,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(&ev.id)
        .bind(&ev.topic)
        .bind(&ev.source)
        .bind(ev.time)
        .bind(ev.location.map(|p| p.lat))
        .bind(ev.location.map(|p| p.lon))
        .bind(&ev.payload)
}

impl Store {
    /// The last sequence number used and every stored cursor.
    pub async fn open(&self) -> anyhow::Result<(u64, Vec<CursorRow>)> {
        match self {
            Store::Memory(log) => {
                let log = log.lock();
                let head = log.events.keys().next_back().copied().unwrap_or(0);
                let cursors = log
                    .cursors
                    .iter()
                    .map(|(s, (p, seq))| CursorRow { subscriber: s.clone(), patterns: p.clone(), seq: *seq })
                    .collect();
                Ok((head, cursors))
            }
            Store::Sql(db) => {
                let head: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM bus_events").fetch_one(db.pool()).await?;
                let rows = sqlx::query("SELECT subscriber, patterns, seq FROM bus_cursors ORDER BY subscriber")
                    .fetch_all(db.pool())
                    .await?;
                let cursors = rows
                    .iter()
                    .map(|r| {
                        Ok(CursorRow {
                            subscriber: r.try_get(0)?,
                            patterns: r.try_get(1)?,
                            seq: r.try_get::<i64, _>(2)? as u64,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                Ok((head.unwrap_or(0) as u64, cursors))
            }
        }
    }

    /// Append `events` and save `cursors`, in one transaction.
    pub async fn append(&self, events: &[Logged], cursors: &[CursorRow], now: i64) -> anyhow::Result<()> {
        match self {
            Store::Memory(log) => {
                let mut log = log.lock();
                for e in events {
                    log.events.insert(e.seq, e.clone());
                }
                for c in cursors {
                    log.cursors.insert(c.subscriber.clone(), (c.patterns.clone(), c.seq));
                }
                Ok(())
            }
            Store::Sql(db) => {
                let mut tx = db.begin_write().await?;
                for run in runs(events, 64) {
                    let mut marks = Marks::for_conn(&tx);
                    let rows: Vec<String> = run.iter().map(|_| marks.row(COLUMNS)).collect();
                    let sql = format!(
                        "INSERT INTO bus_events (seq, id, topic, source, time, lat, lon, payload, appended) VALUES {}",
                        rows.join(", ")
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for e in run {
                        q = bind_event(q.bind(e.seq as i64), &e.event).bind(e.appended);
                    }
                    q.execute(&mut *tx).await?;
                }
                for c in cursors {
                    sqlx::query("UPDATE bus_cursors SET seq = $1, patterns = $2, updated = $3 WHERE subscriber = $4")
                        .bind(c.seq as i64)
                        .bind(&c.patterns)
                        .bind(now)
                        .bind(&c.subscriber)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    }

    /// Up to `limit` events after `after`, in order.
    pub async fn read_after(&self, after: u64, limit: usize) -> anyhow::Result<Vec<Logged>> {
        match self {
            Store::Memory(log) => {
                Ok(log.lock().events.range(after + 1..).take(limit).map(|(_, e)| e.clone()).collect())
            }
            Store::Sql(db) => {
                let rows = sqlx::query(
                    "SELECT seq, id, topic, source, time, lat, lon, payload, appended FROM bus_events \
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after as i64)
                .bind(limit as i64)
                .fetch_all(db.pool())
                .await?;
                rows.iter()
                    .map(|r| {
                        let lat: Option<f64> = r.try_get(5)?;
                        let lon: Option<f64> = r.try_get(6)?;
                        Ok(Logged {
                            seq: r.try_get::<i64, _>(0)? as u64,
                            event: Arc::new(Event {
                                id: r.try_get(1)?,
                                topic: r.try_get(2)?,
                                source: r.try_get(3)?,
                                time: r.try_get(4)?,
                                location: lat.zip(lon).map(|(lat, lon)| GeoPoint { lat, lon }),
                                payload: r.try_get(7)?,
                            }),
                            appended: r.try_get(8)?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }
        }
    }

    /// Record a new durable subscriber at `seq`, or change the topics of one
    /// already recorded (its position stays).
    pub async fn register(&self, subscriber: &str, patterns: &str, seq: u64, now: i64) -> anyhow::Result<()> {
        match self {
            Store::Memory(log) => {
                let mut log = log.lock();
                let entry = log.cursors.entry(subscriber.to_owned()).or_insert_with(|| (String::new(), seq));
                entry.0 = patterns.to_owned();
                Ok(())
            }
            Store::Sql(db) => {
                sqlx::query(
                    "INSERT INTO bus_cursors (subscriber, patterns, seq, updated) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (subscriber) DO UPDATE SET patterns = excluded.patterns, updated = excluded.updated",
                )
                .bind(subscriber)
                .bind(patterns)
                .bind(seq as i64)
                .bind(now)
                .execute(db.writer())
                .await?;
                Ok(())
            }
        }
    }

    /// Forget a durable subscriber.
    pub async fn unregister(&self, subscriber: &str) -> anyhow::Result<()> {
        match self {
            Store::Memory(log) => {
                log.lock().cursors.remove(subscriber);
                Ok(())
            }
            Store::Sql(db) => {
                sqlx::query("DELETE FROM bus_cursors WHERE subscriber = $1").bind(subscriber).execute(db.writer()).await?;
                Ok(())
            }
        }
    }

    /// Delete every event up to `seq` (all durable subscribers are past it).
    pub async fn prune(&self, seq: u64) -> anyhow::Result<u64> {
        match self {
            Store::Memory(log) => {
                let mut log = log.lock();
                let keep = log.events.split_off(&(seq + 1));
                let removed = log.events.len() as u64;
                log.events = keep;
                Ok(removed)
            }
            Store::Sql(db) => {
                let mut tx = db.begin_write().await?;
                let done = sqlx::query("DELETE FROM bus_events WHERE seq <= $1").bind(seq as i64).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }
        }
    }
}
