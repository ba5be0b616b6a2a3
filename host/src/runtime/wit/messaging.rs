//! `yiwang:gov/messaging` for plugins.

use std::sync::Arc;


use crate::identity::Identity;
use crate::messaging::{Messaging, Recipient};

use crate::runtime::bindings::yiwang::gov::messaging::{Host, Recipient as WitRecipient};
use crate::runtime::bindings::yiwang::gov::types::Error;
use crate::runtime::Rated;
use crate::runtime::state::Call;

/// What `yiwang:gov/messaging` reaches: the messaging service, and identity to
/// find who a role or unit reaches.
pub struct MessagingView {
    pub messaging: Arc<Messaging>,
    pub identity: Arc<Identity>,
}

impl Host for Call<'_, MessagingView> {
    async fn send(&mut self, to: WitRecipient, subject: String, body: String) -> Result<String, Error> {
        let to = match to {
            WitRecipient::User(id) => Recipient::User { id },
            WitRecipient::Role((org_unit, role)) => Recipient::Role { org_unit, role },
            WitRecipient::Department(code) => Recipient::Department { code },
            WitRecipient::OrgUnit(code) => Recipient::OrgUnit { code },
        };
        let target = to.to_contract();
        self.ctx.authorize(self.ctx.grants().check_message(&target)).await?;
        self.ctx.rate_limit(Rated::Messages, "messaging.send", &target.to_string()).await?;
        let sender = self.ctx.plugin.principal.clone();
        let sent = self.view.messaging.send(&self.view.identity, &sender, &to, &subject, &body).await;
        sent.map_err(|e| self.ctx.service_error("messaging.send", e))
    }
}
