//! Unified identity (统一用户认证): departments, org units on the four command
//! levels, users and their roles.

pub mod wit;

use serde::Serialize;
use sqlx::Row;

use crate::db::Db;

/// A department.
#[derive(Debug, Clone, Serialize)]
pub struct Department {
    pub code: String,
    pub name: String,
}

/// A user, without personal data beyond the display name.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub display_name: String,
    pub department: Option<String>,
    pub org_unit: String,
    pub roles: Vec<String>,
}

/// The identity service.
pub struct Identity {
    db: Db,
}

impl Identity {
    pub fn new(db: Db) -> Self {
        Identity { db }
    }

    /// A department by code.
    pub async fn department(&self, code: &str) -> anyhow::Result<Option<Department>> {
        let row = sqlx::query("SELECT code, name FROM departments WHERE code = $1")
            .bind(code)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(Department { code: r.try_get(0)?, name: r.try_get(1)? }),
            None => None,
        })
    }

    /// Whether an org unit exists.
    pub async fn org_unit_exists(&self, code: &str) -> anyhow::Result<bool> {
        let row = sqlx::query("SELECT 1 FROM org_units WHERE code = $1")
            .bind(code)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Whether a user exists.
    pub async fn user_exists(&self, id: &str) -> anyhow::Result<bool> {
        let row = sqlx::query("SELECT 1 FROM users WHERE id = $1").bind(id).fetch_optional(self.db.pool()).await?;
        Ok(row.is_some())
    }

    /// Users holding `role` in `org_unit`, by id.
    pub async fn users_with_role(&self, org_unit: &str, role: &str) -> anyhow::Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT u.id, u.display_name, u.department, u.org_unit FROM users u \
             JOIN user_roles r ON r.user_id = u.id WHERE r.org_unit = $1 AND r.role = $2 ORDER BY u.id",
        )
        .bind(org_unit)
        .bind(role)
        .fetch_all(self.db.pool())
        .await?;
        let mut users = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get(0)?;
            let roles = sqlx::query("SELECT DISTINCT role FROM user_roles WHERE user_id = $1 ORDER BY role")
                .bind(&id)
                .fetch_all(self.db.pool())
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>()?;
            users.push(User {
                id,
                display_name: r.try_get(1)?,
                department: r.try_get(2)?,
                org_unit: r.try_get(3)?,
                roles,
            });
        }
        Ok(users)
    }
}
