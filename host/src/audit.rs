//! The audit log: append-only and hash-chained.
//!
//! Every record carries the hash of the one before it, so a record changed or
//! removed after the fact breaks the chain at that point, and `verify` finds it.

use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::{Mutex, MutexGuard};

use crate::clock::SharedClock;
use crate::db::Db;

/// The hash that the first record chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record before it is written.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Who: `plugin:<name>`, `user:<id>`, `host`.
    pub actor: &'a str,
    /// What: `bus.publish`, `data.get`, `plugin.load`, ...
    pub action: &'a str,
    /// On what: a topic, a data set, a case id.
    pub subject: &'a str,
    /// `ok`, `denied`, `failed`, ...
    pub outcome: &'a str,
    /// Free text.
    pub detail: &'a str,
}

/// A record as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Record {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub outcome: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Where the chain broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The first record that does not chain.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

fn chain_hash(prev: &str, seq: i64, at: i64, e: &Entry<'_>) -> String {
    let mut h = Sha256::new();
    for part in [prev, &seq.to_string(), &at.to_string(), e.actor, e.action, e.subject, e.outcome, e.detail] {
        // Length-prefix each part so that no two different records hash alike.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The longest subject a denial record keeps, in characters; a longer one is
/// cut (and says so), so that a refused request cannot write its whole body
/// or a crafted path into the log.
pub const MAX_DENIAL_SUBJECT: usize = 200;
/// The longest reason a denial record keeps, in characters.
pub const MAX_DENIAL_DETAIL: usize = 1000;
/// Identical denials (same actor, action, subject and reason) within this many
/// milliseconds of the one recorded are counted, not recorded; the next
/// record after the window says how many there were.
pub const DENIAL_WINDOW_MS: i64 = 60_000;
/// How many distinct recent denials are remembered for that count.
const DENIALS_REMEMBERED: usize = 10_000;

/// When a denial was last recorded, and how many identical ones came since.
struct Seen {
    at: i64,
    suppressed: u64,
}

/// The audit log service.
pub struct Audit {
    db: Db,
    clock: SharedClock,
    /// The last (seq, hash), loaded on first use; the lock orders appends.
    head: Mutex<Option<(i64, String)>>,
    /// Recent denials by (actor, action, subject, reason).
    denials: parking_lot::Mutex<std::collections::HashMap<(String, String, String, String), Seen>>,
}

/// `text` cut to `max` characters, saying how much was left out.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… ({} more characters)", &text[..cut], text[cut..].chars().count()),
    }
}

impl Audit {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Audit { db, clock, head: Mutex::new(None), denials: Default::default() }
    }

    /// Record a refusal: small (subject and reason cut to
    /// [`MAX_DENIAL_SUBJECT`] and [`MAX_DENIAL_DETAIL`] characters) and once
    /// per [`DENIAL_WINDOW_MS`] for the same actor, action, subject and reason, so
    /// that a client knocking on the same closed door cannot flood the log.
    pub async fn record_denial(&self, actor: &str, action: &str, subject: &str, why: &str) {
        self.record_refusal(actor, action, subject, "denied", why).await;
    }

    /// Record a refusal with `outcome` (`denied`, or `limited` for a rate
    /// limit reached), cut short and once per [`DENIAL_WINDOW_MS`] as
    /// [`Audit::record_denial`] does: the repeats are counted on the next record.
    pub async fn record_refusal(&self, actor: &str, action: &str, subject: &str, outcome: &str, why: &str) {
        let subject = clip(subject, MAX_DENIAL_SUBJECT);
        let mut detail = clip(why, MAX_DENIAL_DETAIL);
        let now = self.clock.now_ms();
        let suppressed = {
            let mut seen = self.denials.lock();
            let key = (actor.to_owned(), action.to_owned(), subject.clone(), format!("{outcome}: {detail}"));
            match seen.get_mut(&key) {
                Some(s) if now - s.at < DENIAL_WINDOW_MS => {
                    s.suppressed += 1;
                    return;
                }
                Some(s) => std::mem::replace(s, Seen { at: now, suppressed: 0 }).suppressed,
                None => {
                    if seen.len() >= DENIALS_REMEMBERED {
                        seen.retain(|_, s| now - s.at < DENIAL_WINDOW_MS);
                    }
                    if seen.len() < DENIALS_REMEMBERED {
                        seen.insert(key, Seen { at: now, suppressed: 0 });
                    }
                    0
                }
            }
        };
        if suppressed > 0 {
            let what = if outcome == "denied" { "denials" } else { "refusals" };
            detail.push_str(&format!(" ({suppressed} identical {what} since the last record)"));
        }
        self.record(Entry { actor, action, subject: &subject, outcome, detail: &detail }).await;
    }

    /// Append one record in a transaction of its own; returns its sequence number.
    pub async fn append(&self, e: Entry<'_>) -> anyhow::Result<i64> {
        let mut chain = self.chain().await?;
        let mut tx = self.db.begin_write().await?;
        let seq = chain.append(&mut tx, e).await?;
        tx.commit().await?;
        chain.keep();
        Ok(seq)
    }

    /// Take the chain's head, to append records inside a transaction of the
    /// caller's: they and the caller's changes commit together or not at all.
    /// Hold it only across that transaction — it orders every append — and
    /// call [`Chain::keep`] once the transaction has committed.
    ///
    /// Lock order: take the chain *before* beginning the transaction, as every
    /// writer here does, so no two wait on each other.
    pub async fn chain(&self) -> anyhow::Result<Chain<'_>> {
        let guard = self.head.lock().await;
        let head = match guard.as_ref() {
            Some(h) => h.clone(),
            None => {
                let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(self.db.pool())
                    .await?;
                match row {
                    Some(r) => (r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?),
                    None => (0, GENESIS.to_owned()),
                }
            }
        };
        Ok(Chain { guard, head, clock: self.clock.clone() })
    }

    /// Append, logging instead of failing: for records written on the way to
    /// answering a plugin, where a storage fault must not turn into a trap.
    pub async fn record(&self, e: Entry<'_>) {
        if let Err(err) = self.append(e.clone()).await {
            tracing::error!(actor = e.actor, action = e.action, "audit append failed: {err:#}");
        }
    }

    /// Record something the host itself did (actor `host`), logging on failure.
    pub async fn record_host(&self, action: &str, subject: &str, outcome: &str, detail: &str) {
        self.record(Entry { actor: "host", action, subject, outcome, detail }).await;
    }

    /// Records matching an actor and/or action, newest first.
    pub async fn find(&self, actor: Option<&str>, action: Option<&str>, limit: i64) -> anyhow::Result<Vec<Record>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject, outcome, detail, prev_hash, hash FROM audit_log \
             WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR action = $2) ORDER BY seq DESC LIMIT $3",
        )
        .bind(actor.unwrap_or(""))
        .bind(action.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(row_to_record).collect()
    }

    /// How many records the log holds.
    pub async fn count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM audit_log").fetch_one(self.db.pool()).await?.try_get(0)?)
    }

    /// Walk the chain from the start; the first broken link, if any.
    pub async fn verify(&self) -> anyhow::Result<Option<Break>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject, outcome, detail, prev_hash, hash FROM audit_log ORDER BY seq",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut prev = GENESIS.to_owned();
        for (expected_seq, row) in (1..).zip(rows.iter()) {
            let r = row_to_record(row)?;
            if r.seq != expected_seq {
                return Ok(Some(Break { seq: r.seq, reason: format!("expected record {expected_seq}") }));
            }
            if r.prev_hash != prev {
                return Ok(Some(Break { seq: r.seq, reason: "prev_hash does not match the record before".into() }));
            }
            let e = Entry {
                actor: &r.actor,
                action: &r.action,
                subject: &r.subject,
                outcome: &r.outcome,
                detail: &r.detail,
            };
            if chain_hash(&prev, r.seq, r.at, &e) != r.hash {
                return Ok(Some(Break { seq: r.seq, reason: "hash does not match the record's content".into() }));
            }
            prev = r.hash;
        }
        Ok(None)
    }
}

/// The held head of the chain: appends inside the caller's transaction.
pub struct Chain<'a> {
    guard: MutexGuard<'a, Option<(i64, String)>>,
    /// The head as of the records appended so far (committed or not).
    head: (i64, String),
    clock: SharedClock,
}

impl Chain<'_> {
    /// Append one record inside `tx`; returns its sequence number.
    pub async fn append(&mut self, tx: &mut sqlx::AnyConnection, e: Entry<'_>) -> Result<i64, sqlx::Error> {
        let seq = self.head.0 + 1;
        let at = self.clock.now_ms();
        let hash = chain_hash(&self.head.1, seq, at, &e);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, subject, outcome, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(seq)
        .bind(at)
        .bind(e.actor)
        .bind(e.action)
        .bind(e.subject)
        .bind(e.outcome)
        .bind(e.detail)
        .bind(&self.head.1)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        self.head = (seq, hash);
        Ok(seq)
    }

    /// Append several records inside `tx` in few statements (multi-row
    /// inserts), in order; each is `(actor, action, subject, outcome, detail)`.
    pub async fn append_many(&mut self, tx: &mut sqlx::AnyConnection, entries: &[Entry<'_>]) -> Result<(), sqlx::Error> {
        /// The most rows one statement takes.
        const ROWS: usize = 128;
        for chunk in crate::db::runs(entries, ROWS) {
            let mut sql = String::from(
                "INSERT INTO audit_log (seq, at, actor, action, subject, outcome, detail, prev_hash, hash) VALUES ",
            );
            let mut marks = crate::db::Marks::for_conn(tx);
            let mut rows = Vec::with_capacity(chunk.len());
            for (i, e) in chunk.iter().enumerate() {
                let seq = self.head.0 + 1;
                let at = self.clock.now_ms();
                let hash = chain_hash(&self.head.1, seq, at, e);
                let prev = std::mem::replace(&mut self.head, (seq, hash.clone())).1;
                rows.push((seq, at, prev, hash));
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&marks.row(9));
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (e, (seq, at, prev, hash)) in chunk.iter().zip(rows) {
                q = q.bind(seq).bind(at).bind(e.actor).bind(e.action).bind(e.subject).bind(e.outcome).bind(e.detail).bind(prev).bind(hash);
            }
            q.execute(&mut *tx).await?;
        }
        Ok(())
    }

    /// The records appended are committed: they are the head from now on.
    /// Dropping the chain without this leaves the head where it was, as a
    /// rolled-back transaction leaves the log.
    pub fn keep(mut self) {
        *self.guard = Some(std::mem::take(&mut self.head));
    }
}

fn row_to_record(r: &sqlx::any::AnyRow) -> anyhow::Result<Record> {
    Ok(Record {
        seq: r.try_get(0)?,
        at: r.try_get(1)?,
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        subject: r.try_get(4)?,
        outcome: r.try_get(5)?,
        detail: r.try_get(6)?,
        prev_hash: r.try_get(7)?,
        hash: r.try_get(8)?,
    })
}
