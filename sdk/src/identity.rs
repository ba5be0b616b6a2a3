//! Unified identity (统一用户认证): who the plugin is and who is who in the city.

pub use crate::__private::bindings::yiwang::gov::identity::{Department, Principal, User};
use crate::Error;
use crate::sys;

/// The calling plugin's own identity. Always allowed.
///
/// Natively it is the identity given to the [`mock`](crate::mock) host
/// (`plugin:<name>`, department, version); with no mock installed it is
/// `plugin:native` with empty fields.
pub fn whoami() -> Principal {
    sys::identity::whoami()
}

/// Looks a department up by its code. Always allowed.
pub fn department(code: &str) -> Result<Department, Error> {
    sys::identity::get_department(code)
}

/// The users holding `role` in org unit `org_unit`. Needs `identity = true` in the grants.
pub fn users_with_role(org_unit: &str, role: &str) -> Result<Vec<User>, Error> {
    sys::identity::users_with_role(org_unit, role)
}
