//! Warning chains: a warning, and the updates and cancel its raiser sends
//! after it (CAP 1.2 `msgType` `Update` and `Cancel`).
//!
//! Every message of a chain is a row of `warnings` of its own, with its own id
//! and time: the first (an `Alert`) is the chain's root; each later one takes
//! the next place in the chain and names the earlier messages, oldest first
//! (what its CAP `references` lists). An update is published on
//! `warning.<category>` as a warning with `msg_type` `Update`; a cancel on
//! `warning-cancelled.<category>`. A cancelled chain takes no more messages.
//! Who may change a chain (its raiser alone) is the caller's to check, with
//! [`WarningChain::source`].

use sqlx::Row;
use yiwang_wit::events::{MsgType, WarningCancelled};

use super::{Cases, Warning, check_warning};
use crate::bus::GeoPoint;
use crate::error::{ServiceError, new_id};

/// The longest reason a cancel may give, in characters.
pub const MAX_CANCEL_REASON: usize = 500;

/// One message of a chain, as written.
pub(super) struct Message<'a> {
    pub id: &'a str,
    pub source: &'a str,
    pub msg_type: MsgType,
    pub root: &'a str,
    pub position: i64,
    pub refs: &'a [String],
    pub note: &'a str,
}

/// A warning's chain as stored.
#[derive(Debug, Clone)]
pub struct WarningChain {
    /// Who raised the chain's first warning: `plugin:<name>`, or
    /// `cap:<sender>/<identifier>` for an imported alert.
    pub source: String,
    /// The ids of its messages, oldest first; the first is the root.
    pub messages: Vec<String>,
    /// Whether its last message is a cancel.
    pub cancelled: bool,
    /// The place of its last message.
    last_position: i64,
    /// The last message's category and stored body (what a cancel withdraws).
    last_category: String,
    last_body: String,
}

impl WarningChain {
    /// The chain's first warning.
    pub fn root(&self) -> &str {
        &self.messages[0]
    }
}

impl Cases {
    /// The chain the warning `id` (any of its messages) belongs to.
    pub async fn warning_chain(&self, id: &str) -> Result<Option<WarningChain>, ServiceError> {
        let root = sqlx::query("SELECT root FROM warnings WHERE id = $1").bind(id).fetch_optional(self.db.pool()).await?;
        let Some(root) = root else { return Ok(None) };
        let root: String = root.try_get(0)?;
        let rows = sqlx::query("SELECT id, source, msg_type, position, category, body FROM warnings WHERE root = $1 ORDER BY position")
            .bind(&root)
            .fetch_all(self.db.pool())
            .await?;
        let Some(last) = rows.last() else { return Ok(None) };
        let mut messages = Vec::with_capacity(rows.len());
        for r in &rows {
            messages.push(r.try_get::<String, _>(0)?);
        }
        Ok(Some(WarningChain {
            source: rows[0].try_get(1)?,
            cancelled: last.try_get::<String, _>(2)? == MsgType::Cancel.name(),
            last_position: last.try_get(3)?,
            last_category: last.try_get(4)?,
            last_body: last.try_get(5)?,
            messages,
        }))
    }

    /// Send `w` as an update of `chain` (CAP `Update`) from `source`, its raiser;
    /// returns the update's id. The update is published on `warning.<category>`
    /// with the ids of the chain's earlier messages.
    pub async fn update_warning(&self, chain: &WarningChain, source: &str, w: &Warning, location: Option<GeoPoint>) -> Result<String, ServiceError> {
        check_warning(w)?;
        let id = self.append_to_chain(chain, source, MsgType::Update, w, "").await?;
        self.announce_warning(&id, source, w, location, MsgType::Update, chain.messages.clone()).await?;
        Ok(id)
    }

    /// Cancel `chain` (CAP `Cancel`) as `source`, its raiser, for `reason`;
    /// returns the cancel's id. The cancel is published on
    /// `warning-cancelled.<category>`; nothing else changes (a case opened for
    /// the warning stays with whoever handles it).
    pub async fn cancel_warning(&self, chain: &WarningChain, source: &str, reason: &str) -> Result<String, ServiceError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_CANCEL_REASON {
            return Err(ServiceError::Invalid(format!("reason: 1-{MAX_CANCEL_REASON} characters, not blank")));
        }
        let last: Warning = stored_warning(&chain.last_category, &chain.last_body)?;
        let id = self.append_to_chain(chain, source, MsgType::Cancel, &last, reason).await?;
        let (communities, streets) = self.covered(&last.area);
        let payload = WarningCancelled {
            category: last.category.clone(),
            communities,
            reason: reason.to_owned(),
            references: chain.messages.clone(),
            source: source.to_owned(),
            streets,
            warning: id.clone(),
        };
        self.announce(&payload.topic(), source, None, &payload).await;
        Ok(id)
    }

    /// Write the next message of `chain`: `Conflict` when the chain was
    /// cancelled, or changed since it was read (its next place is taken).
    async fn append_to_chain(&self, chain: &WarningChain, source: &str, msg_type: MsgType, w: &Warning, note: &str) -> Result<String, ServiceError> {
        if chain.cancelled {
            return Err(ServiceError::Conflict(format!("warning `{}` was cancelled; it takes no more updates", chain.root())));
        }
        let id = new_id();
        let message = Message {
            id: &id,
            source,
            msg_type,
            root: chain.root(),
            position: chain.last_position + 1,
            refs: &chain.messages,
            note,
        };
        self.insert_warning(&message, w).await?;
        Ok(id)
    }

    /// Store one message of a chain.
    pub(super) async fn insert_warning(&self, m: &Message<'_>, w: &Warning) -> Result<(), ServiceError> {
        let body = serde_json::to_string(w).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let refs = serde_json::to_string(m.refs).expect("a list of strings serialises");
        sqlx::query(
            "INSERT INTO warnings (id, source, category, event, severity, urgency, certainty, headline, body, created, msg_type, root, position, refs, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(m.id)
        .bind(m.source)
        .bind(&w.category)
        .bind(&w.event)
        .bind(&w.severity)
        .bind(&w.urgency)
        .bind(&w.certainty)
        .bind(&w.headline)
        .bind(&body)
        .bind(self.clock.now_ms())
        .bind(m.msg_type.name())
        .bind(m.root)
        .bind(m.position)
        .bind(&refs)
        .bind(m.note)
        .execute(self.db.writer())
        .await
        .map_err(|e| match &e {
            // Another message took this place in the chain first.
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                ServiceError::Conflict(format!("warning `{}` changed meanwhile; read it again", m.root))
            }
            _ => e.into(),
        })?;
        Ok(())
    }
}

/// A stored warning body as the [`Warning`] it was written from.
fn stored_warning(category: &str, body: &str) -> Result<Warning, ServiceError> {
    let v: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| ServiceError::Storage(anyhow::anyhow!("a stored warning body is unusable: {e}")))?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
    let parameters = v
        .get("parameters")
        .and_then(|p| serde_json::from_value::<Vec<(String, String)>>(p.clone()).ok())
        .unwrap_or_default();
    Ok(Warning {
        category: category.to_owned(),
        event: text("event"),
        urgency: text("urgency"),
        severity: text("severity"),
        certainty: text("certainty"),
        area: v.get("area").cloned().unwrap_or(serde_json::Value::Null),
        headline: text("headline"),
        description: text("description"),
        instruction: text("instruction"),
        parameters,
    })
}
