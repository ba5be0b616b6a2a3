//! `yiwang:gov/messaging` for plugins.

use std::sync::Arc;

use yiwang_registry::manifest::MessageTarget;

use crate::identity::Identity;
use crate::messaging::{Messaging, Recipient};

use crate::runtime::bindings::yiwang::gov::messaging::{Host, Recipient as WitRecipient};
use crate::runtime::bindings::yiwang::gov::types::Error;
use crate::runtime::state::Call;

/// What `yiwang:gov/messaging` reaches: the messaging service, and identity to
/// find who a role or unit reaches.
pub struct MessagingView {
    pub messaging: Arc<Messaging>,
    pub identity: Arc<Identity>,
}

fn part_ok(grant: &Option<String>, value: &str) -> bool {
    grant.as_deref().is_none_or(|g| g == value)
}

/// Whether one grant entry covers a recipient.
pub fn grant_covers(grant: &MessageTarget, to: &Recipient) -> bool {
    match (grant, to) {
        (MessageTarget::User(g), Recipient::User { id }) => part_ok(g, id),
        (MessageTarget::Department(g), Recipient::Department { code }) => part_ok(g, code),
        (MessageTarget::OrgUnit(g), Recipient::OrgUnit { code }) => part_ok(g, code),
        (MessageTarget::Role { org_unit, role }, Recipient::Role { org_unit: u, role: r }) => {
            part_ok(org_unit, u) && part_ok(role, r)
        }
        _ => false,
    }
}

impl Host for Call<'_, MessagingView> {
    async fn send(&mut self, to: WitRecipient, subject: String, body: String) -> Result<String, Error> {
        let to = match to {
            WitRecipient::User(id) => Recipient::User { id },
            WitRecipient::Role((org_unit, role)) => Recipient::Role { org_unit, role },
            WitRecipient::Department(code) => Recipient::Department { code },
            WitRecipient::OrgUnit(code) => Recipient::OrgUnit { code },
        };
        let (kind, address) = to.parts();
        let subject_text = format!("{kind}:{address}");
        let decision = match self.ctx.grants().message.iter().any(|g| grant_covers(g, &to)) {
            true => Ok(()),
            false => Err("recipient not in grants.message".to_owned()),
        };
        self.ctx.authorize("messaging.send", &subject_text, decision).await?;
        let sender = self.ctx.plugin.principal.clone();
        let sent = self.view.messaging.send(&self.view.identity, &sender, &to, &subject, &body).await;
        sent.map_err(|e| self.ctx.service_error("messaging.send", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_whole_parts_only() {
        let role_any_unit = MessageTarget::Role { org_unit: None, role: Some("leader".into()) };
        let leader = Recipient::Role { org_unit: "320102".into(), role: "leader".into() };
        let worker = Recipient::Role { org_unit: "320102".into(), role: "grid-worker".into() };
        assert!(grant_covers(&role_any_unit, &leader));
        assert!(!grant_covers(&role_any_unit, &worker));
        let dept = MessageTarget::Department(Some("yingji".into()));
        assert!(grant_covers(&dept, &Recipient::Department { code: "yingji".into() }));
        assert!(!grant_covers(&dept, &Recipient::Department { code: "police".into() }));
        assert!(!grant_covers(&dept, &Recipient::OrgUnit { code: "yingji".into() }));
    }
}
