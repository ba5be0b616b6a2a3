//! Messaging (消息): messages addressed to a user, a role in an org unit, a
//! department or an org unit.


use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use yiwang_wit::events::{MessageSent, Payload};

use crate::bus::{Bus, Event};
use crate::identity::Principal;

use crate::clock::SharedClock;
use crate::db::Db;
use crate::identity::Identity;
use crate::error::{ServiceError, new_id};

/// Whom a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Recipient {
    User { id: String },
    Role { org_unit: String, role: String },
    Department { code: String },
    OrgUnit { code: String },
}

impl Recipient {
    /// `(kind, address)` as stored.
    pub fn parts(&self) -> (&'static str, String) {
        match self {
            Recipient::User { id } => ("user", id.clone()),
            Recipient::Role { org_unit, role } => ("role", format!("{org_unit}/{role}")),
            Recipient::Department { code } => ("department", code.clone()),
            Recipient::OrgUnit { code } => ("org-unit", code.clone()),
        }
    }
}

/// A message as its reader sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    pub id: String,
    /// `user:<id>` for a person, `plugin:<name>` for a plugin.
    pub sender: String,
    /// The recipient as `<kind>:<address>`, e.g. `role:320100/leader`.
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Milliseconds since the Unix epoch.
    pub created: i64,
    pub read: bool,
}

impl Recipient {
    /// The recipient as the contract names it (grant rules, `message.sent`).
    pub fn to_contract(&self) -> yiwang_wit::grants::Recipient {
        use yiwang_wit::grants::Recipient as R;
        match self.clone() {
            Recipient::User { id } => R::User { id },
            Recipient::Role { org_unit, role } => R::Role { org_unit, role },
            Recipient::Department { code } => R::Department { code },
            Recipient::OrgUnit { code } => R::OrgUnit { code },
        }
    }

    /// Whether a message to this recipient reaches `p`.
    pub fn reaches(&self, p: &Principal) -> bool {
        match self {
            Recipient::User { id } => *id == p.id,
            Recipient::Department { code } => p.department.as_deref() == Some(code),
            Recipient::OrgUnit { code } => p.org_unit == *code,
            Recipient::Role { org_unit, role } => {
                p.roles.iter().any(|(r, unit)| r.name() == role && unit == org_unit)
            }
        }
    }
}

/// The `(kind, address)` pairs under which messages reach `p`.
fn addresses(p: &Principal) -> Vec<(&'static str, String)> {
    let mut out = vec![("user", p.id.clone()), ("org-unit", p.org_unit.clone())];
    if let Some(d) = &p.department {
        out.push(("department", d.clone()));
    }
    out.extend(p.roles.iter().map(|(r, unit)| ("role", format!("{unit}/{}", r.name()))));
    out
}

/// The messaging service.
pub struct Messaging {
    db: Db,
    clock: SharedClock,
    bus: Arc<dyn Bus>,
}

impl Messaging {
    pub fn new(db: Db, clock: SharedClock, bus: Arc<dyn Bus>) -> Self {
        Messaging { db, clock, bus }
    }

    /// Messages that reach `p`, newest first; only unread ones if asked.
    pub async fn inbox(&self, p: &Principal, unread_only: bool, limit: i64) -> Result<Vec<Message>, ServiceError> {
        let addresses = addresses(p);
        let mut sql = String::from(
            "SELECT m.id, m.sender, m.recipient_kind, m.recipient, m.subject, m.body, m.created, r.read_at \
             FROM messages m LEFT JOIN message_reads r ON r.message_id = m.id AND r.user_id = $1 WHERE (",
        );
        for i in 0..addresses.len() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str(&format!("(m.recipient_kind = ${} AND m.recipient = ${})", 2 + 2 * i, 3 + 2 * i));
        }
        sql.push(')');
        if unread_only {
            sql.push_str(" AND r.read_at IS NULL");
        }
        sql.push_str(&format!(" ORDER BY m.created DESC, m.id DESC LIMIT ${}", 2 + 2 * addresses.len()));
        // Only placeholders were appended; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&p.id);
        for (kind, address) in &addresses {
            q = q.bind(*kind).bind(address);
        }
        let rows = q.bind(limit.clamp(1, 500)).fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get(2)?;
                let address: String = r.try_get(3)?;
                Ok(Message {
                    id: r.try_get(0)?,
                    sender: r.try_get(1)?,
                    to: format!("{kind}:{address}"),
                    subject: r.try_get(4)?,
                    body: r.try_get(5)?,
                    created: r.try_get(6)?,
                    read: r.try_get::<Option<i64>, _>(7)?.is_some(),
                })
            })
            .collect()
    }

    /// Mark a message read for `p`; it must reach them.
    pub async fn mark_read(&self, p: &Principal, id: &str) -> Result<(), ServiceError> {
        let visible = self.inbox(p, false, 500).await?.into_iter().any(|m| m.id == id);
        if !visible {
            return Err(ServiceError::NotFound(format!("no message `{id}` in your inbox")));
        }
        sqlx::query(
            "INSERT INTO message_reads (message_id, user_id, read_at) VALUES ($1, $2, $3) \
             ON CONFLICT (message_id, user_id) DO NOTHING",
        )
        .bind(id)
        .bind(&p.id)
        .bind(self.clock.now_ms())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Store a message for `to`; the recipient must exist. Returns its id.
    pub async fn send(
        &self,
        identity: &Identity,
        sender: &str,
        to: &Recipient,
        subject: &str,
        body: &str,
    ) -> Result<String, ServiceError> {
        if subject.trim().is_empty() || subject.chars().count() > 200 {
            return Err(ServiceError::Invalid("subject must be 1-200 characters".into()));
        }
        if body.len() > 64 * 1024 {
            return Err(ServiceError::Invalid("body is longer than 64 KiB".into()));
        }
        let exists = match to {
            Recipient::User { id } => identity.user_exists(id).await?,
            Recipient::Department { code } => identity.department(code).await?.is_some(),
            Recipient::OrgUnit { code } | Recipient::Role { org_unit: code, .. } => identity.org_unit_exists(code).await?,
        };
        let (kind, address) = to.parts();
        if !exists {
            return Err(ServiceError::NotFound(format!("no {kind} `{address}`")));
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO messages (id, sender, recipient_kind, recipient, subject, body, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(sender)
        .bind(kind)
        .bind(&address)
        .bind(subject)
        .bind(body)
        .bind(self.clock.now_ms())
        .execute(self.db.writer())
        .await
        .map_err(anyhow::Error::from)?;
        // Stored first, then announced: live inboxes (server-sent events) follow the bus.
        let payload = MessageSent { message: id.clone(), to: to.to_contract(), sender: sender.to_owned(), subject: subject.to_owned() };
        let event = Event {
            id: new_id(),
            topic: MessageSent::TOPIC.into(),
            source: sender.to_owned(),
            time: self.clock.now_ms(),
            location: None,
            payload: payload.to_json(),
        };
        if let Err(e) = self.bus.publish(event).await {
            tracing::error!("could not announce message {id}: {e}");
        }
        Ok(id)
    }
}
