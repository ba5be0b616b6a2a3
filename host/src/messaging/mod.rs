//! Messaging (消息): messages addressed to a user, a role in an org unit, a
//! department or an org unit.

pub mod wit;

use serde::Serialize;

use crate::clock::SharedClock;
use crate::db::Db;
use crate::identity::Identity;
use crate::services::{ServiceError, new_id};

/// Whom a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
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

/// The messaging service.
pub struct Messaging {
    db: Db,
    clock: SharedClock,
}

impl Messaging {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Messaging { db, clock }
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
        .execute(self.db.pool())
        .await
        .map_err(anyhow::Error::from)?;
        Ok(id)
    }
}
