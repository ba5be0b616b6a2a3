//! Unified identity (统一用户认证): departments, org units on the four command
//! levels, users and their roles.

pub mod auth;
pub mod lockout;
pub mod residents;

use std::fmt;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use crate::db::Db;
use crate::error::ServiceError;

/// What a person may do, held within an org unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A resident with an account (随手拍, ratings).
    Resident,
    /// A grid worker (网格员): patrols, checks.
    GridWorker,
    /// A dispatcher at a command centre (派遣员).
    Dispatcher,
    /// A department's case handler (处置人员).
    Handler,
    /// A supervisor (监督员/督办).
    Supervisor,
    /// A leader (领导): sees the situation, approves.
    Leader,
    /// A platform operator: loads and watches plugins, manages accounts.
    Operator,
    /// A plugin publisher (a vendor or a department developer).
    Publisher,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Resident,
        Role::GridWorker,
        Role::Dispatcher,
        Role::Handler,
        Role::Supervisor,
        Role::Leader,
        Role::Operator,
        Role::Publisher,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Resident => "resident",
            Role::GridWorker => "grid-worker",
            Role::Dispatcher => "dispatcher",
            Role::Handler => "handler",
            Role::Supervisor => "supervisor",
            Role::Leader => "leader",
            Role::Operator => "operator",
            Role::Publisher => "publisher",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == text)
    }
}

/// The kind of account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Staff,
    Resident,
    /// A plugin's service identity.
    Service,
}

impl AccountKind {
    pub const ALL: [AccountKind; 3] = [AccountKind::Staff, AccountKind::Resident, AccountKind::Service];

    /// The kind named `text` as stored (`staff`, `resident`, `service`).
    pub fn parse(text: &str) -> Option<AccountKind> {
        AccountKind::ALL.into_iter().find(|k| k.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            AccountKind::Staff => "staff",
            AccountKind::Resident => "resident",
            AccountKind::Service => "service",
        }
    }
}

/// The department that takes hotline calls and calls their callers back.
pub const HOTLINE_DEPARTMENT: &str = "hotline12345";

/// Who is calling: a user with their roles, as every route sees them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Principal {
    pub id: String,
    pub display_name: String,
    pub kind: AccountKind,
    pub department: Option<String>,
    pub org_unit: String,
    /// (role, org unit) pairs.
    pub roles: Vec<(Role, String)>,
    pub verified: bool,
}

impl Principal {
    /// Whether the principal is a member of staff (not a resident, not a plugin).
    pub fn is_staff(&self) -> bool {
        self.kind == AccountKind::Staff
    }

    /// Whether the principal calls hotline reporters back (回访): the staff
    /// of the 12345 hotline. Only they see a caller's name and phone.
    pub fn calls_back(&self) -> bool {
        self.is_staff() && self.department.as_deref() == Some(HOTLINE_DEPARTMENT)
    }

    /// Whether the principal is a resident.
    pub fn is_resident(&self) -> bool {
        self.kind == AccountKind::Resident
    }

    /// Whether the principal holds `role` anywhere.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|(r, _)| *r == role)
    }
}

/// The part of the city a principal may see records of: everything (a role held
/// at city level, a plugin, the host itself), or the subtrees of some org units.
/// Org unit codes below the city extend their parent's code (district 6 digits,
/// street 9, community 12, grid 14), so "within" is a prefix test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Units(Vec<String>),
}

impl Scope {
    /// Whether a thing placed in `area` is visible; a thing with no area belongs
    /// to no one place and is visible to every scope.
    pub fn covers(&self, area: Option<&str>) -> bool {
        match (self, area) {
            (Scope::All, _) | (_, None) => true,
            (Scope::Units(units), Some(area)) => units.iter().any(|u| area.starts_with(u.as_str())),
        }
    }

    /// Whether a case placed in `area` is within this scope. A case with no
    /// area (a hotline call with an address but no point) belongs to the
    /// command centre: only a city-wide scope covers it, never every scope.
    pub fn covers_case(&self, area: Option<&str>) -> bool {
        match (self, area) {
            (Scope::All, _) => true,
            (Scope::Units(_), None) => false,
            (Scope::Units(_), Some(_)) => self.covers(area),
        }
    }

    /// The units, or `None` for [`Scope::All`].
    pub fn units(&self) -> Option<&[String]> {
        match self {
            Scope::All => None,
            Scope::Units(u) => Some(u),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("the whole city"),
            Scope::Units(u) => write!(f, "org units {}", u.join(", ")),
        }
    }
}

/// A user to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewUser {
    /// 1-64 characters of `a-z0-9-_.`.
    pub id: String,
    /// 1-64 characters of `a-z0-9-_.`.
    pub username: String,
    pub display_name: String,
    /// At least 8 characters.
    pub password: String,
    /// A department code.
    pub department: Option<String>,
    /// An org unit code.
    pub org_unit: String,
    pub kind: AccountKind,
    /// (role, org unit) pairs.
    pub roles: Vec<(Role, String)>,
}

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
    /// Principals behind live tokens, as last read.
    sessions: Sessions,
    /// Strikes against user names for wrong passwords.
    pub(crate) lockout: lockout::Lockout,
}

/// How long a token's principal is kept in memory once read. A change made
/// through this service (log-out, revocation, verification, registration)
/// clears the cache at once; one made by another node sharing the database
/// shows within this time.
const SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// The principals behind recently seen tokens, by token hash.
#[derive(Default)]
pub(crate) struct Sessions {
    by_hash: parking_lot::Mutex<std::collections::HashMap<String, (std::time::Instant, i64, Principal)>>,
}

impl Sessions {
    /// The principal behind a token hash, if read within the TTL and not expired at `now`.
    pub(crate) fn get(&self, hash: &str, now: i64) -> Option<Principal> {
        let map = self.by_hash.lock();
        let (read, expires, principal) = map.get(hash)?;
        (read.elapsed() < SESSION_TTL && *expires > now).then(|| principal.clone())
    }

    pub(crate) fn keep(&self, hash: String, expires: i64, principal: Principal) {
        let mut map = self.by_hash.lock();
        if map.len() >= 100_000 {
            map.retain(|_, (read, _, _)| read.elapsed() < SESSION_TTL);
        }
        map.insert(hash, (std::time::Instant::now(), expires, principal));
    }

    /// Forget every cached principal (after any change to users, roles or tokens).
    pub(crate) fn forget_all(&self) {
        self.by_hash.lock().clear();
    }
}

impl Identity {
    pub fn new(db: Db) -> Self {
        Identity { db, sessions: Sessions::default(), lockout: lockout::Lockout::default() }
    }

    /// Create a user with a password and roles, in one transaction.
    pub async fn create_user(&self, u: &NewUser, now: i64) -> Result<(), ServiceError> {
        if !crate::error::valid_id(&u.id) || !crate::error::valid_id(&u.username) {
            return Err(ServiceError::Invalid("id and username must be 1-64 characters of a-z, 0-9, `-`, `_`, `.`".into()));
        }
        if u.display_name.trim().is_empty() {
            return Err(ServiceError::Invalid("display_name must not be empty".into()));
        }
        let hash = auth::hash_password(&u.password)?;
        if let Some(d) = &u.department
            && self.department(d).await?.is_none()
        {
            return Err(ServiceError::NotFound(format!("unknown department `{d}`")));
        }
        for unit in std::iter::once(&u.org_unit).chain(u.roles.iter().map(|(_, unit)| unit)) {
            if !self.org_unit_exists(unit).await? {
                return Err(ServiceError::NotFound(format!("unknown org unit `{unit}`")));
            }
        }
        let mut tx = self.db.begin_write().await?;
        let taken = sqlx::query("SELECT 1 FROM users WHERE id = $1 OR username = $2")
            .bind(&u.id)
            .bind(&u.username)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(ServiceError::Invalid(format!("user `{}` or username `{}` exists", u.id, u.username)));
        }
        sqlx::query(
            "INSERT INTO users (id, display_name, department, org_unit, username, password_hash, kind, verified, disabled) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0)",
        )
        .bind(&u.id)
        .bind(&u.display_name)
        .bind(u.department.as_deref())
        .bind(&u.org_unit)
        .bind(&u.username)
        .bind(&hash)
        .bind(u.kind.name())
        .execute(&mut *tx)
        .await?;
        for (role, unit) in &u.roles {
            sqlx::query("INSERT INTO user_roles (user_id, role, org_unit) VALUES ($1, $2, $3)")
                .bind(&u.id)
                .bind(role.name())
                .bind(unit)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.sessions.forget_all();
        let _ = now;
        Ok(())
    }

    /// A user's principal (roles included), if the user exists.
    pub async fn principal(&self, id: &str) -> Result<Option<Principal>, ServiceError> {
        let row = sqlx::query("SELECT id, display_name, kind, department, org_unit, verified FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(r) = row else { return Ok(None) };
        let roles = sqlx::query("SELECT role, org_unit FROM user_roles WHERE user_id = $1 ORDER BY role, org_unit")
            .bind(id)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .filter_map(|r| {
                let role: String = r.try_get(0).ok()?;
                Some((Role::parse(&role)?, r.try_get::<String, _>(1).ok()?))
            })
            .collect();
        Ok(Some(Principal {
            id: r.try_get(0)?,
            display_name: r.try_get(1)?,
            kind: {
                let kind: String = r.try_get(2)?;
                AccountKind::parse(&kind).ok_or_else(|| anyhow::anyhow!("user `{id}` has an unknown account kind `{kind}`"))?
            },
            department: r.try_get(3)?,
            org_unit: r.try_get(4)?,
            roles,
            verified: r.try_get::<i64, _>(5)? != 0,
        }))
    }

    /// What `p` may see: the org units its roles are held in (its home unit when it
    /// holds none), or everything when one of them is the city level.
    pub async fn scope(&self, p: &Principal) -> Result<Scope, ServiceError> {
        let mut units: Vec<String> = p.roles.iter().map(|(_, u)| u.clone()).collect();
        if units.is_empty() {
            units.push(p.org_unit.clone());
        }
        units.sort();
        units.dedup();
        for unit in &units {
            if self.org_unit_level(unit).await?.as_deref() == Some("city") {
                return Ok(Scope::All);
            }
        }
        // Drop units inside another listed unit.
        let outer: Vec<String> =
            units.iter().filter(|u| !units.iter().any(|o| o != *u && u.starts_with(o.as_str()))).cloned().collect();
        Ok(Scope::Units(outer))
    }

    /// The level of an org unit (`city`, `district`, `street`, `community`, `grid`).
    pub async fn org_unit_level(&self, code: &str) -> Result<Option<String>, ServiceError> {
        Ok(sqlx::query("SELECT level FROM org_units WHERE code = $1")
            .bind(code)
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    /// Whether org unit `unit` is `ancestor` or lies below it.
    pub async fn unit_within(&self, unit: &str, ancestor: &str) -> Result<bool, ServiceError> {
        let mut current = Some(unit.to_owned());
        // The hierarchy has five levels; the bound guards against a cycle in bad data.
        for _ in 0..16 {
            let Some(code) = current else { return Ok(false) };
            if code == ancestor {
                return Ok(true);
            }
            current = sqlx::query("SELECT parent FROM org_units WHERE code = $1")
                .bind(&code)
                .fetch_optional(self.db.pool())
                .await?
                .and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten());
        }
        Ok(false)
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
