//! `yiwang:gov/identity` for plugins.

use crate::runtime::bindings::yiwang::gov::identity::{Department, Host, Principal, User};
use crate::runtime::bindings::yiwang::gov::types::Error;
use crate::runtime::state::PluginState;

impl Host for PluginState {
    async fn whoami(&mut self) -> Principal {
        let m = &self.plugin.manifest;
        Principal {
            id: self.plugin.principal.clone(),
            department: m.department.clone(),
            version: m.version.to_string(),
        }
    }

    async fn get_department(&mut self, code: String) -> Result<Department, Error> {
        match self.services().identity.department(&code).await {
            Ok(Some(d)) => Ok(Department { code: d.code, name: d.name }),
            Ok(None) => Err(Error::NotFound(format!("no department `{code}`"))),
            Err(e) => Err(self.unavailable("identity.department", e)),
        }
    }

    async fn users_with_role(&mut self, org_unit: String, role: String) -> Result<Vec<User>, Error> {
        if !self.grants().identity {
            let subject = format!("{org_unit}/{role}");
            return Err(self.deny("identity.users-with-role", &subject, "grants.identity is false").await);
        }
        match self.services().identity.users_with_role(&org_unit, &role).await {
            Ok(users) => Ok(users
                .into_iter()
                .map(|u| User {
                    id: u.id,
                    display_name: u.display_name,
                    department: u.department,
                    org_unit: u.org_unit,
                    roles: u.roles,
                })
                .collect()),
            Err(e) => Err(self.unavailable("identity.users-with-role", e)),
        }
    }
}
