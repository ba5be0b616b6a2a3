//! `yiwang:gov/identity` for plugins.

use std::sync::Arc;

use crate::identity::Identity;
use crate::runtime::bindings::yiwang::gov::identity::{Department, Host, Principal, User};
use crate::runtime::bindings::yiwang::gov::types::Error;
use crate::runtime::state::Call;

/// What `yiwang:gov/identity` reaches: the identity service alone.
pub struct IdentityView {
    pub identity: Arc<Identity>,
}

impl Host for Call<'_, IdentityView> {
    async fn whoami(&mut self) -> Principal {
        let plugin = &self.ctx.plugin;
        Principal {
            id: plugin.principal.clone(),
            department: plugin.manifest.department.clone(),
            version: plugin.manifest.version.to_string(),
        }
    }

    async fn get_department(&mut self, code: String) -> Result<Department, Error> {
        match self.view.identity.department(&code).await {
            Ok(Some(d)) => Ok(Department { code: d.code, name: d.name }),
            Ok(None) => Err(Error::NotFound(format!("no department `{code}`"))),
            Err(e) => Err(self.ctx.unavailable("identity.department", e)),
        }
    }

    async fn users_with_role(&mut self, org_unit: String, role: String) -> Result<Vec<User>, Error> {
        self.ctx.authorize(self.ctx.grants().check_identity(&org_unit, &role)).await?;
        match self.view.identity.users_with_role(&org_unit, &role).await {
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
            Err(e) => Err(self.ctx.unavailable("identity.users-with-role", e)),
        }
    }
}
