//! The one intake, with group commit.
//!
//! A report is checked where it arrives (fields, category, evidence, its grid
//! cell, its first step's deadline), then handed to the intake *writer*: one
//! task per process that takes the reports waiting, decides for each whether it
//! repeats an open case (deduplication) or opens a new one, writes them all —
//! reports, new cases and their audit records — in one transaction, and
//! answers each only after that transaction has committed. While one batch
//! commits (and waits for the disk), the next gathers, so one fsync serves
//! many reports and a burst costs little more than a single report.
//!
//! Because one writer decides every join in order, two reports of the same
//! incident arriving together cannot both open a case. An idempotency key
//! belongs to its caller: the key of a report is `(channel, reporter, key)`,
//! so the same key from another caller is another report. A key taken by a
//! report in the same batch, or by another node, still resolves to the
//! original through the unique index on `(channel, idempotency_scope,
//! idempotency_key)`; the same key with another body is refused (`Conflict`),
//! never answered with the original.

use std::sync::Arc;

use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::dedup::{DedupIndex, Report};
use super::deadlines::ClockState;
use super::engine::{Channel, Intake, NewReport};
use super::lifecycle::Stage;
use yiwang_wit::events::{self, CaseJoined, CaseReported, Payload};

use super::{Cases, announce};
use crate::audit::{Audit, Chain, Entry};
use crate::bus::{Bus, GeoPoint};
use crate::clock::SharedClock;
use crate::db::{Db, Marks};
use crate::error::{ServiceError, new_id};

/// The most reports one transaction takes.
const MAX_BATCH: usize = 1024;
/// Reports waiting for the writer before submitters wait for room.
const QUEUE: usize = 8192;

/// The open cases for deduplication, shared by the writer and the engine.
pub(crate) type DedupCell = Arc<tokio::sync::OnceCell<parking_lot::RwLock<DedupIndex>>>;

/// A random public ticket number: `YW` and 12 digits.
pub(crate) fn ticket() -> String {
    let n = u128::from_le_bytes(*uuid::Uuid::new_v4().as_bytes()) % 1_000_000_000_000;
    format!("YW{n:012}")
}

/// A checked report waiting for the writer.
pub(crate) struct Pending {
    report: NewReport,
    reporter: Option<String>,
    /// The report's title, or its category's name.
    title: String,
    /// The grid cell it lies in (or the CAP area's cell it was raised for).
    area: Option<String>,
    /// Whether it may repeat an open case: it has a location and is not a CAP cell.
    dedup: bool,
    received: i64,
    /// The deadline of the new case's first step (accept), when it has one.
    accept_due: Option<i64>,
    /// For a report with an idempotency key: whose key it is and the sha256
    /// of the report as sent.
    keyed: Option<Keyed>,
    /// The device it was sent from (Open311 `device_id`): who sent it, never
    /// which report it is.
    device: Option<String>,
    reply: oneshot::Sender<Result<Intake, ServiceError>>,
}

/// Whose idempotency key a report carries, and what it was sent with.
#[derive(Clone)]
pub(crate) struct Keyed {
    /// The reporter, or '' for an anonymous report.
    scope: String,
    /// The sha256 of the report as sent (its JSON), hex.
    hash: String,
}

impl Keyed {
    fn of(r: &NewReport, reporter: Option<&str>) -> Option<Keyed> {
        use sha2::Digest;
        r.idempotency_key.as_ref()?;
        let body = serde_json::to_vec(r).expect("a report serialises");
        Some(Keyed { scope: reporter.unwrap_or_default().to_owned(), hash: hex::encode(sha2::Sha256::digest(&body)) })
    }
}

/// What the writer announces once a batch has committed: a `case.reported`
/// or `case.joined` payload as its JSON text.
struct Announcement {
    topic: &'static str,
    source: String,
    location: Option<GeoPoint>,
    payload: String,
}

impl Cases {
    /// Take in a report: it and its case are on disk when this returns.
    pub async fn intake(&self, r: &NewReport, reporter: Option<&str>) -> Result<Intake, ServiceError> {
        self.intake_in(r, reporter, None, None).await
    }

    /// [`Cases::intake`] of a report sent from a device (Open311's
    /// `device_id`), kept with the report; it identifies the sender's device,
    /// so two reports from one device are two reports.
    pub async fn intake_from_device(&self, r: &NewReport, reporter: Option<&str>, device: Option<&str>) -> Result<Intake, ServiceError> {
        if let Some(d) = device
            && (d.is_empty() || d.len() > 256 || d.chars().any(char::is_control))
        {
            return Err(ServiceError::Invalid("device_id: 1-256 characters, no control characters".into()));
        }
        self.intake_in(r, reporter, None, device.map(str::to_owned)).await
    }

    /// [`Cases::intake`] into a given grid cell (a CAP alert's area), rather
    /// than the one under the location, and from a device.
    pub(crate) async fn intake_in(
        &self,
        r: &NewReport,
        reporter: Option<&str>,
        grid: Option<String>,
        device: Option<String>,
    ) -> Result<Intake, ServiceError> {
        r.check()?;
        let keyed = Keyed::of(r, reporter);
        if let (Some(key), Some(k)) = (&r.idempotency_key, &keyed)
            && let Some(earlier) = earlier_report(self.db.pool(), r.channel, key, k).await?
        {
            return earlier;
        }
        let categories = self.category_names().await?;
        let Some(category_name) = categories.get(&r.category_code).cloned() else {
            let known: Vec<&str> = categories.keys().map(String::as_str).collect();
            return Err(ServiceError::Invalid(format!(
                "category_code: `{}` is not a known category; known: {}",
                r.category_code,
                known.join(", ")
            )));
        };
        for (i, digest) in r.evidence.iter().enumerate() {
            let stored = sqlx::query("SELECT 1 FROM media WHERE sha256 = $1").bind(digest).fetch_optional(self.db.pool()).await?;
            if stored.is_none() {
                return Err(ServiceError::Invalid(format!("evidence[{i}]: no uploaded media `{digest}`")));
            }
        }
        let dedup = r.location.is_some() && grid.is_none() && r.channel != Channel::CapAlert;
        let area = grid.or_else(|| r.location.and_then(|p| self.space.grid_at(p)).map(|g| g.code));
        let received = self.clock.now_ms();
        let first_step = ClockState {
            category: r.category_code.clone(),
            area: area.clone(),
            step: Some("accept".to_owned()),
            since: Some(received),
            paused: vec![],
            suspended_since: None,
            extra_ms: 0,
        };
        let accept_due = self.clock_of(&first_step, received).await?.and_then(|c| c.deadline);
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            report: r.clone(),
            reporter: reporter.map(str::to_owned),
            title: r.title.clone().unwrap_or(category_name),
            area,
            dedup,
            received,
            accept_due,
            keyed,
            device,
            reply,
        };
        let stopped = || ServiceError::Storage(anyhow::anyhow!("the intake writer has stopped"));
        self.writer().send(pending).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// The category names by code, as last read (reference data).
    async fn category_names(&self) -> Result<Arc<std::collections::BTreeMap<String, String>>, ServiceError> {
        if let Some(names) = self.category_cache.fresh() {
            return Ok(names);
        }
        let names = self.categories().await?.into_iter().map(|c| (c.code, c.name)).collect();
        Ok(self.category_cache.keep(names))
    }

    /// The intake writer, started on first use.
    fn writer(&self) -> &mpsc::Sender<Pending> {
        self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let writer = Writer {
                db: self.db.clone(),
                clock: self.clock.clone(),
                bus: self.bus.clone(),
                audit: self.audit.clone(),
                dedup: self.dedup.clone(),
            };
            tokio::spawn(writer.run(rx));
            tx
        })
    }

    /// The deduplication index of open cases, built from storage on first use.
    pub(crate) async fn dedup_index(&self) -> Result<&parking_lot::RwLock<DedupIndex>, ServiceError> {
        self.dedup.get_or_try_init(|| load_dedup_index(&self.db)).await
    }
}

/// The sender half the engine keeps.
pub(crate) type WriterCell = std::sync::OnceLock<mpsc::Sender<Pending>>;

/// Build the deduplication index from the open cases in storage.
async fn load_dedup_index(db: &Db) -> Result<parking_lot::RwLock<DedupIndex>, ServiceError> {
    // The rules are configuration data (`dedup_rules`, `GET/PUT /api/dedup/rules`).
    let mut index = DedupIndex::new(super::dedup_rules::load_rules(db).await?);
    let rows = sqlx::query(
        "SELECT id, category_code, lat, lon, created, title, description FROM cases \
         WHERE lat IS NOT NULL AND lon IS NOT NULL AND status NOT IN ('closed', 'rejected', 'voided') \
         AND channel <> 'cap-alert'",
    )
    .fetch_all(db.pool())
    .await?;
    for r in &rows {
        let (id, code): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        let location = GeoPoint { lat: r.try_get(2)?, lon: r.try_get(3)? };
        let text = format!("{} {}", r.try_get::<String, _>(5)?, r.try_get::<String, _>(6)?);
        let report = Report { category_code: &code, location, reported_ms: r.try_get(4)?, text: &text };
        if let Err(e) = index.insert(&id, &report) {
            tracing::warn!(case = id, "not indexed for deduplication: {e}");
        }
    }
    Ok(parking_lot::RwLock::new(index))
}

/// The report the caller's idempotency key names, as its first answer was;
/// `Conflict` when that report was sent with another body.
pub(crate) async fn earlier_report<'e, E>(
    db: E,
    channel: Channel,
    key: &str,
    keyed: &Keyed,
) -> Result<Option<Result<Intake, ServiceError>>, ServiceError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(
        "SELECT r.id, r.case_id, c.ticket, r.request_hash FROM reports r JOIN cases c ON c.id = r.case_id \
         WHERE r.channel = $1 AND r.idempotency_scope = $2 AND r.idempotency_key = $3",
    )
    .bind(channel.name())
    .bind(&keyed.scope)
    .bind(key)
    .fetch_optional(db)
    .await?;
    let Some(r) = row else { return Ok(None) };
    // A report stored before bodies were hashed has none; its key alone decides.
    if r.try_get::<Option<String>, _>(3)?.is_some_and(|hash| hash != keyed.hash) {
        return Ok(Some(Err(ServiceError::Conflict(format!(
            "idempotency_key: `{key}` was used before for another report on the `{}` channel; a new report needs a new key",
            channel.name()
        )))));
    }
    Ok(Some(Ok(Intake { report: r.try_get(0)?, case: r.try_get(1)?, ticket: r.try_get(2)?, created: false, joined: false })))
}

struct Writer {
    db: Db,
    clock: SharedClock,
    bus: Arc<dyn Bus>,
    audit: Arc<Audit>,
    dedup: DedupCell,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Pending>) {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            self.write(std::mem::take(&mut batch)).await;
        }
    }

    /// Write one batch and answer every report in it.
    async fn write(&self, batch: Vec<Pending>) {
        match self.commit(&batch).await {
            Ok((answers, announcements)) => {
                // Announced before answering, so `case.reported` precedes
                // whatever the reporter does next.
                for a in announcements {
                    announce(&*self.bus, &self.clock, a.topic, &a.source, a.location, a.payload).await;
                }
                for (p, answer) in batch.into_iter().zip(answers) {
                    let _ = p.reply.send(answer);
                }
            }
            Err(e) => {
                tracing::error!(reports = batch.len(), "intake batch not written: {e:#}");
                for p in batch {
                    let _ = p.reply.send(Err(ServiceError::Storage(anyhow::anyhow!("the report was not stored: {e:#}"))));
                }
            }
        }
    }

    /// Write `batch` in one transaction: all of it or none.
    async fn commit(&self, batch: &[Pending]) -> Result<(Vec<Result<Intake, ServiceError>>, Vec<Announcement>), ServiceError> {
        let index = self.dedup.get_or_try_init(|| load_dedup_index(&self.db)).await?;
        let mut chain = self.audit.chain().await?;
        let mut tx = self.db.begin_write().await?;
        let mut indexed = Vec::new();
        let written = write_batch(&mut tx, &mut chain, index, batch, &mut indexed).await;
        let committed = match written {
            Ok(done) => tx.commit().await.map(|()| done).map_err(ServiceError::from),
            Err(e) => Err(e),
        };
        match committed {
            Ok(done) => {
                chain.keep();
                Ok(done)
            }
            Err(e) => {
                // Nothing was stored: forget the cases the batch indexed.
                let mut index = index.write();
                for id in &indexed {
                    index.remove(id);
                }
                Err(e)
            }
        }
    }
}

/// The most rows one multi-row statement takes (its shapes are the powers of
/// two up to this, see [`crate::db::runs`]).
const ROWS: usize = 128;

/// What the writer decided for a report without an idempotency key.
enum Decision {
    /// It opens a new case.
    New { case: String, ticket: String },
    /// It repeats the open case `case`.
    Join { case: String, score: f64 },
}

/// Write a batch: the reports without an idempotency key together, in a few
/// multi-row statements; those with one each on its own (its key may be
/// taken). A keyed report whose key the caller used for another body is
/// answered `Conflict` and leaves the rest of the batch as it is.
async fn write_batch(
    tx: &mut sqlx::AnyConnection,
    chain: &mut Chain<'_>,
    index: &parking_lot::RwLock<DedupIndex>,
    batch: &[Pending],
    indexed: &mut Vec<String>,
) -> Result<(Vec<Result<Intake, ServiceError>>, Vec<Announcement>), ServiceError> {
    let mut answers: Vec<Option<Result<Intake, ServiceError>>> = (0..batch.len()).map(|_| None).collect();
    let mut announcements: Vec<(usize, Announcement)> = Vec::new();
    let plain: Vec<usize> = (0..batch.len()).filter(|&i| batch[i].report.idempotency_key.is_none()).collect();
    if !plain.is_empty() {
        let (decisions, heads) = decide(tx, index, batch, &plain, indexed).await?;
        write_plain(tx, chain, batch, &plain, &decisions, &heads, &mut answers, &mut announcements).await?;
    }
    for (i, p) in batch.iter().enumerate().filter(|(_, p)| p.report.idempotency_key.is_some()) {
        let mut own = Vec::new();
        answers[i] = Some(write_one(tx, chain, index, p, indexed, &mut own).await?);
        announcements.extend(own.into_iter().map(|a| (i, a)));
    }
    // Announced in the order the reports arrived.
    announcements.sort_by_key(|(i, _)| *i);
    let answers = answers.into_iter().map(|a| a.expect("every report of the batch is answered")).collect();
    Ok((answers, announcements.into_iter().map(|(_, a)| a).collect()))
}

/// The dedup probe of a report, if it takes part in deduplication.
fn probe_of<'a>(p: &'a Pending, text: &'a str) -> Option<Report<'a>> {
    match (p.dedup, p.report.location) {
        (true, Some(location)) => Some(Report { category_code: &p.report.category_code, location, reported_ms: p.received, text }),
        _ => None,
    }
}

/// The text a report is compared by.
fn dedup_text(r: &NewReport) -> String {
    format!("{} {}", r.title.as_deref().unwrap_or(""), r.description)
}

/// A stored case's stage, ticket and title, by id.
type Heads = std::collections::HashMap<String, (String, String, String)>;

/// Decide, in arrival order, whether each report of `plain` joins an open
/// case or opens a new one (indexed at once, so a later report of the batch
/// may join it). Cases the index offers are checked against storage in one
/// query; if one has closed meanwhile it leaves the index and the batch is
/// decided again.
async fn decide(
    tx: &mut sqlx::AnyConnection,
    index: &parking_lot::RwLock<DedupIndex>,
    batch: &[Pending],
    plain: &[usize],
    indexed: &mut Vec<String>,
) -> Result<(Vec<Decision>, Heads), ServiceError> {
    loop {
        let mut decisions = Vec::with_capacity(plain.len());
        let mut tentative = std::collections::HashSet::new();
        for &i in plain {
            let p = &batch[i];
            let text = dedup_text(&p.report);
            let probe = probe_of(p, &text);
            let best = probe.as_ref().and_then(|probe| index.read().candidates(probe).into_iter().next());
            decisions.push(match (best, &probe) {
                (Some(c), _) => Decision::Join { case: c.case_id, score: c.score.total },
                (None, probe) => {
                    let case = new_id();
                    if let Some(probe) = probe {
                        match index.write().insert(&case, probe) {
                            Ok(()) => {
                                tentative.insert(case.clone());
                            }
                            Err(e) => tracing::warn!(case, "not indexed for deduplication: {e}"),
                        }
                    }
                    Decision::New { case, ticket: ticket() }
                }
            });
        }
        let mut earlier: Vec<&str> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Join { case, .. } if !tentative.contains(case) => Some(case.as_str()),
                _ => None,
            })
            .collect();
        earlier.sort_unstable();
        earlier.dedup();
        let heads = case_heads(tx, &earlier).await?;
        let closed: Vec<&str> = earlier
            .iter()
            .copied()
            .filter(|id| !heads.get(*id).is_some_and(|(stage, _, _)| Stage::parse(stage).is_some_and(Stage::is_open)))
            .collect();
        if closed.is_empty() {
            indexed.extend(tentative);
            return Ok((decisions, heads));
        }
        let mut index = index.write();
        for id in tentative.iter().map(String::as_str).chain(closed) {
            index.remove(id);
        }
    }
}

/// The stage, ticket and title of the cases `ids`.
async fn case_heads(tx: &mut sqlx::AnyConnection, ids: &[&str]) -> Result<Heads, ServiceError> {
    let mut heads = Heads::new();
    for chunk in crate::db::runs(ids, ROWS) {
        let mut marks = Marks::for_conn(tx);
        let sql = format!("SELECT id, status, ticket, title FROM cases WHERE id IN ({})", marks.list(chunk.len()));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *tx).await? {
            heads.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
        }
    }
    Ok(heads)
}

/// Store the decided reports of `plain`, their new cases and their audit
/// records in multi-row statements.
#[allow(clippy::too_many_arguments)]
async fn write_plain(
    tx: &mut sqlx::AnyConnection,
    chain: &mut Chain<'_>,
    batch: &[Pending],
    plain: &[usize],
    decisions: &[Decision],
    heads: &Heads,
    answers: &mut [Option<Result<Intake, ServiceError>>],
    announcements: &mut Vec<(usize, Announcement)>,
) -> Result<(), ServiceError> {
    // The new cases first (the reports refer to them).
    let new: Vec<(&Pending, &str, &str)> = plain
        .iter()
        .zip(decisions)
        .filter_map(|(&i, d)| match d {
            Decision::New { case, ticket } => Some((&batch[i], case.as_str(), ticket.as_str())),
            Decision::Join { .. } => None,
        })
        .collect();
    for chunk in crate::db::runs(&new, ROWS) {
        let mut sql = String::from(
            "INSERT INTO cases (id, category_code, title, description, lat, lon, channel, opened_by, created, ticket, \
             area, status, stage_since, updated, step, step_since) VALUES ",
        );
        let mut marks = Marks::for_conn(tx);
        for (k, _) in chunk.iter().enumerate() {
            if k > 0 {
                sql.push(',');
            }
            let head = marks.list(11);
            let (since, updated, step_since) = (marks.mark(), marks.mark(), marks.mark());
            sql.push_str(&format!("({head}, 'reported', {since}, {updated}, 'accept', {step_since})"));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (p, case, ticket) in chunk {
            let r = &p.report;
            q = q
                .bind(*case)
                .bind(&r.category_code)
                .bind(&p.title)
                .bind(&r.description)
                .bind(r.location.map(|l| l.lat))
                .bind(r.location.map(|l| l.lon))
                .bind(r.channel.name())
                .bind(p.reporter.as_deref().unwrap_or("anonymous"))
                .bind(p.received)
                .bind(*ticket)
                .bind(p.area.as_deref())
                .bind(p.received)
                .bind(p.received)
                .bind(p.received);
        }
        q.execute(&mut *tx).await?;
    }

    // The reports, each under its case; then the audit records, in order.
    let created: std::collections::HashMap<&str, (&str, &str)> =
        new.iter().map(|(p, case, ticket)| (*case, (*ticket, p.title.as_str()))).collect();
    let mut rows = Vec::with_capacity(plain.len());
    let mut details = Vec::with_capacity(plain.len());
    for (&i, d) in plain.iter().zip(decisions) {
        let p = &batch[i];
        let r = &p.report;
        let report_id = new_id();
        let source = p.reporter.clone().unwrap_or_else(|| "anonymous".to_owned());
        let (intake, title, detail, announcement) = match d {
            Decision::New { case, ticket } => (
                Intake { report: report_id.clone(), case: case.clone(), ticket: ticket.clone(), created: true, joined: false },
                p.title.clone(),
                serde_json::json!({
                    "report": report_id, "ticket": ticket, "channel": r.channel.name(), "category": r.category_code,
                    "area": p.area, "joined": false, "received": p.received, "step": "accept", "due": p.accept_due,
                }),
                reported_announcement(case, &report_id, ticket, p, source),
            ),
            Decision::Join { case, score } => {
                let (ticket, case_title) = match created.get(case.as_str()) {
                    Some((ticket, title)) => ((*ticket).to_owned(), (*title).to_owned()),
                    None => {
                        let (_, ticket, title) = heads.get(case).expect("a joined case was read");
                        (ticket.clone(), title.clone())
                    }
                };
                (
                    Intake { report: report_id.clone(), case: case.clone(), ticket: ticket.clone(), created: true, joined: true },
                    r.title.clone().unwrap_or(case_title),
                    serde_json::json!({
                        "report": report_id, "ticket": ticket, "channel": r.channel.name(), "category": r.category_code,
                        "joined": true, "score": score, "received": p.received,
                    }),
                    joined_announcement(case, &report_id, p, *score, source),
                )
            }
        };
        rows.push((p, report_id, title, intake.case.clone()));
        details.push((actor_of(p), intake.case.clone(), detail.to_string()));
        answers[i] = Some(Ok(intake));
        announcements.push((i, announcement));
    }
    for chunk in crate::db::runs(&rows, ROWS) {
        let mut sql = format!("INSERT INTO reports ({REPORT_COLUMNS}) VALUES ");
        let mut marks = Marks::for_conn(tx);
        for (k, _) in chunk.iter().enumerate() {
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&marks.row(REPORT_WIDTH));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (p, id, title, case) in chunk {
            q = bind_report(q, p, id, title, case);
        }
        q.execute(&mut *tx).await?;
    }
    let entries: Vec<Entry<'_>> = details
        .iter()
        .map(|(actor, case, detail)| Entry { actor, action: "case.report", subject: case, outcome: "ok", detail })
        .collect();
    chain.append_many(tx, &entries).await?;
    Ok(())
}

/// Who a report's audit record names.
fn actor_of(p: &Pending) -> String {
    match p.reporter.as_deref() {
        None => "anonymous".to_owned(),
        Some(named) if named.contains(':') => named.to_owned(),
        Some(id) => format!("user:{id}"),
    }
}

/// Write one report inside the batch's transaction: joined to the open case
/// it repeats, or as a new case; or, if the caller's idempotency key is
/// taken, not at all, answering with the original (or `Conflict` when the
/// original had another body). The outer error fails the batch.
async fn write_one(
    tx: &mut sqlx::AnyConnection,
    chain: &mut Chain<'_>,
    index: &parking_lot::RwLock<DedupIndex>,
    p: &Pending,
    indexed: &mut Vec<String>,
    announcements: &mut Vec<Announcement>,
) -> Result<Result<Intake, ServiceError>, ServiceError> {
    let r = &p.report;
    let source = p.reporter.clone().unwrap_or_else(|| "anonymous".to_owned());
    let actor = actor_of(p);
    let text = format!("{} {}", r.title.as_deref().unwrap_or(""), r.description);
    let probe = match (p.dedup, r.location) {
        (true, Some(location)) => Some(Report { category_code: &r.category_code, location, reported_ms: p.received, text: &text }),
        _ => None,
    };

    // The same incident reported again joins the open case it repeats.
    if let Some(probe) = &probe {
        let candidates = index.read().candidates(probe);
        for c in candidates {
            let row = sqlx::query("SELECT status, ticket, title FROM cases WHERE id = $1")
                .bind(&c.case_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else { continue };
            let stage: String = row.try_get(0)?;
            if !Stage::parse(&stage).is_some_and(Stage::is_open) {
                index.write().remove(&c.case_id);
                continue;
            }
            let ticket: String = row.try_get(1)?;
            let title = r.title.clone().unwrap_or(row.try_get(2)?);
            let report_id = new_id();
            if insert_report(tx, &report_id, p, &title, &c.case_id).await? == 0 {
                return taken(tx, p).await;
            }
            let detail = serde_json::json!({
                "report": report_id, "ticket": ticket, "channel": r.channel.name(), "category": r.category_code,
                "joined": true, "score": c.score.total, "received": p.received,
            });
            let entry = Entry { actor: &actor, action: "case.report", subject: &c.case_id, outcome: "ok", detail: &detail.to_string() };
            chain.append(tx, entry).await?;
            announcements.push(joined_announcement(&c.case_id, &report_id, p, c.score.total, source));
            return Ok(Ok(Intake { report: report_id, case: c.case_id, ticket, created: true, joined: true }));
        }
    }

    let (report_id, case_id, ticket) = (new_id(), new_id(), ticket());
    sqlx::query(
        "INSERT INTO cases (id, category_code, title, description, lat, lon, channel, status, opened_by, department, \
         created, ticket, area, stage_since, updated, step, step_since) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'reported', $8, NULL, $9, $10, $11, $9, $9, 'accept', $9)",
    )
    .bind(&case_id)
    .bind(&r.category_code)
    .bind(&p.title)
    .bind(&r.description)
    .bind(r.location.map(|l| l.lat))
    .bind(r.location.map(|l| l.lon))
    .bind(r.channel.name())
    .bind(&source)
    .bind(p.received)
    .bind(&ticket)
    .bind(p.area.as_deref())
    .execute(&mut *tx)
    .await?;
    if insert_report(tx, &report_id, p, &p.title, &case_id).await? == 0 {
        sqlx::query("DELETE FROM cases WHERE id = $1").bind(&case_id).execute(&mut *tx).await?;
        return taken(tx, p).await;
    }
    let detail = serde_json::json!({
        "report": report_id, "ticket": ticket, "channel": r.channel.name(), "category": r.category_code,
        "area": p.area, "joined": false, "received": p.received, "step": "accept", "due": p.accept_due,
    });
    let entry = Entry { actor: &actor, action: "case.report", subject: &case_id, outcome: "ok", detail: &detail.to_string() };
    chain.append(tx, entry).await?;
    if let Some(probe) = &probe {
        match index.write().insert(&case_id, probe) {
            Ok(()) => indexed.push(case_id.clone()),
            Err(e) => tracing::warn!(case = case_id, "not indexed for deduplication: {e}"),
        }
    }
    announcements.push(reported_announcement(&case_id, &report_id, &ticket, p, source));
    Ok(Ok(Intake { report: report_id, case: case_id, ticket, created: true, joined: false }))
}

/// The `case.reported` announcement: what a plugin needs to act on the report
/// (its words, category, address and grid) and, for a hotline call, a key
/// for the caller that tells repeat calls apart without the phone number.
fn reported_announcement(case: &str, report: &str, ticket: &str, p: &Pending, source: String) -> Announcement {
    let r = &p.report;
    let payload = CaseReported {
        case: case.to_owned(),
        report: report.to_owned(),
        ticket: ticket.to_owned(),
        channel: events::Channel::named(r.channel.name()),
        category_code: r.category_code.clone(),
        area: p.area.clone(),
        title: p.title.clone(),
        description: r.description.clone(),
        address: r.address.clone(),
        caller: r.caller.as_ref().map(|c| caller_key(&c.phone)),
    };
    Announcement { topic: CaseReported::TOPIC, source, location: r.location, payload: payload.to_json() }
}

/// The `case.joined` announcement of a report that joined open case `case`.
fn joined_announcement(case: &str, report: &str, p: &Pending, score: f64, source: String) -> Announcement {
    let r = &p.report;
    let payload = CaseJoined {
        case: case.to_owned(),
        report: report.to_owned(),
        channel: events::Channel::named(r.channel.name()),
        score,
    };
    Announcement { topic: CaseJoined::TOPIC, source, location: r.location, payload: payload.to_json() }
}

/// The first 16 hex digits of the sha256 of a phone number with everything
/// but its digits taken out, so `138-0000 0000` and `13800000000` match.
pub fn caller_key(phone: &str) -> String {
    use sha2::Digest;
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    hex::encode(&sha2::Sha256::digest(digits.as_bytes())[..8])
}

/// The answer for a report whose idempotency key an earlier one of its caller holds.
async fn taken(tx: &mut sqlx::AnyConnection, p: &Pending) -> Result<Result<Intake, ServiceError>, ServiceError> {
    let key = p.report.idempotency_key.as_deref().unwrap_or_default();
    let conflicted = || ServiceError::Storage(anyhow::anyhow!("idempotency key `{key}` conflicted but names no report"));
    let keyed = p.keyed.as_ref().ok_or_else(conflicted)?;
    earlier_report(&mut *tx, p.report.channel, key, keyed).await?.ok_or_else(conflicted)
}

/// Store the report of `p` under `case_id`; 0 when its idempotency key is taken.
async fn insert_report(tx: &mut sqlx::AnyConnection, id: &str, p: &Pending, title: &str, case_id: &str) -> Result<u64, sqlx::Error> {
    let marks: Vec<String> = (1..=REPORT_WIDTH + 3).map(|n| format!("${n}")).collect();
    let sql = format!(
        "INSERT INTO reports ({REPORT_COLUMNS}, idempotency_key, idempotency_scope, request_hash) VALUES ({}) \
         ON CONFLICT (channel, idempotency_scope, idempotency_key) DO NOTHING",
        marks.join(", ")
    );
    let done = bind_report(sqlx::query(sqlx::AssertSqlSafe(sql)), p, id, title, case_id)
        .bind(p.report.idempotency_key.as_deref())
        .bind(p.keyed.as_ref().map_or("", |k| k.scope.as_str()))
        .bind(p.keyed.as_ref().map(|k| k.hash.as_str()))
        .execute(&mut *tx)
        .await?;
    Ok(done.rows_affected())
}

/// The columns of a report row, in the order [`bind_report`] binds them.
const REPORT_COLUMNS: &str = "id, channel, reporter, caller_name, caller_phone, category_code, title, description, \
     lat, lon, address, evidence, received, case_id, device_id";
/// How many [`REPORT_COLUMNS`] there are.
const REPORT_WIDTH: usize = 15;

/// Bind the [`REPORT_COLUMNS`] of the report of `p`, stored as `id` under `case`.
fn bind_report<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    p: &'q Pending,
    id: &'q str,
    title: &'q str,
    case: &'q str,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let r = &p.report;
    q.bind(id)
        .bind(r.channel.name())
        .bind(p.reporter.as_deref())
        .bind(r.caller.as_ref().map(|c| c.name.as_str()))
        .bind(r.caller.as_ref().map(|c| c.phone.as_str()))
        .bind(&r.category_code)
        .bind(title)
        .bind(&r.description)
        .bind(r.location.map(|l| l.lat))
        .bind(r.location.map(|l| l.lon))
        .bind(r.address.as_deref())
        .bind(serde_json::to_string(&r.evidence).expect("strings serialise"))
        .bind(p.received)
        .bind(case)
        .bind(p.device.as_deref())
}
