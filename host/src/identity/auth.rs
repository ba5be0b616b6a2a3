//! Log-in and bearer tokens: one log-in for every screen and app.
//!
//! Passwords are stored as argon2id PHC strings. A token is 244 random bits,
//! shown once; only its sha256 is stored, with an expiry and a revocation time.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Identity, Principal, Role};
use crate::error::ServiceError;

/// How long a token lives.
pub const TOKEN_LIFETIME_MS: i64 = 12 * 3600 * 1000;

/// Why a log-in or a token was refused. Deliberately vague towards the caller:
/// a wrong user name and a wrong password look the same.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong user name or password")]
    BadCredentials,
    /// Too many wrong passwords for this user name: refused until then (ms).
    #[error("too many wrong passwords for this user name: try again in {} s", (.until - .now + 999) / 1000)]
    Locked { until: i64, now: i64 },
    #[error("missing, unknown, expired or revoked token")]
    BadToken,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Service(e.into())
    }
}

/// A token as issued.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Issued {
    pub token: String,
    pub expires_ms: i64,
}

/// Hash a password for storage.
pub fn hash_password(password: &str) -> Result<String, ServiceError> {
    if password.chars().count() < 8 {
        return Err(ServiceError::Invalid("password must be at least 8 characters".into()));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Storage(anyhow::anyhow!("hashing failed: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    format!("yw_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

impl Identity {
    /// Check a user name and password; issue a token.
    pub async fn login(&self, username: &str, password: &str, now: i64) -> Result<(Issued, Principal), AuthError> {
        self.lockout.check(username, now).map_err(|until| AuthError::Locked { until, now })?;
        let outcome = self.check_password(username, password, now).await;
        match &outcome {
            Ok(_) => self.lockout.success(username),
            Err(AuthError::BadCredentials) => {
                if let Some(until) = self.lockout.failure(username, now) {
                    return Err(AuthError::Locked { until, now });
                }
            }
            Err(_) => {}
        }
        outcome
    }

    async fn check_password(&self, username: &str, password: &str, now: i64) -> Result<(Issued, Principal), AuthError> {
        let row = sqlx::query("SELECT id, password_hash, disabled FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = row else {
            // Spend the same time as a real check, so that timing does not reveal names.
            let _ = verify_password(password, DUMMY_HASH);
            return Err(AuthError::BadCredentials);
        };
        let id: String = row.try_get(0)?;
        let hash: Option<String> = row.try_get(1)?;
        let disabled: i64 = row.try_get(2)?;
        let ok = hash.as_deref().is_some_and(|h| verify_password(password, h));
        if !ok || disabled != 0 {
            return Err(AuthError::BadCredentials);
        }
        let token = new_token();
        let expires_ms = now + TOKEN_LIFETIME_MS;
        sqlx::query("INSERT INTO tokens (hash, user_id, created, expires, revoked) VALUES ($1, $2, $3, $4, NULL)")
            .bind(token_hash(&token))
            .bind(&id)
            .bind(now)
            .bind(expires_ms)
            .execute(self.db.writer())
            .await?;
        let principal = self.principal(&id).await?.ok_or(AuthError::BadCredentials)?;
        Ok((Issued { token, expires_ms }, principal))
    }

    /// The principal behind a live token.
    pub async fn authenticate(&self, token: &str, now: i64) -> Result<Principal, AuthError> {
        let hash = token_hash(token);
        if let Some(principal) = self.sessions.get(&hash, now) {
            return Ok(principal);
        }
        let row = sqlx::query(
            "SELECT t.user_id, t.expires FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.hash = $1 AND t.revoked IS NULL AND t.expires > $2 AND u.disabled = 0",
        )
        .bind(&hash)
        .bind(now)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Err(AuthError::BadToken) };
        let id: String = row.try_get(0)?;
        let expires: i64 = row.try_get(1)?;
        let principal = self.principal(&id).await?.ok_or(AuthError::BadToken)?;
        self.sessions.keep(hash, expires, principal.clone());
        Ok(principal)
    }

    /// Revoke one token (log-out).
    pub async fn revoke(&self, token: &str, now: i64) -> Result<bool, AuthError> {
        let done = sqlx::query("UPDATE tokens SET revoked = $1 WHERE hash = $2 AND revoked IS NULL")
            .bind(now)
            .bind(token_hash(token))
            .execute(self.db.writer())
            .await?;
        self.sessions.forget_all();
        Ok(done.rows_affected() == 1)
    }

    /// Revoke every token of a user (password change, disabled account).
    pub async fn revoke_all(&self, user_id: &str, now: i64) -> Result<u64, AuthError> {
        let done = sqlx::query("UPDATE tokens SET revoked = $1 WHERE user_id = $2 AND revoked IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(self.db.writer())
            .await?;
        self.sessions.forget_all();
        Ok(done.rows_affected())
    }

    /// Create the first platform operator, `admin`, at the city unit, unless an
    /// operator exists. Returns the generated password when one was created.
    pub async fn ensure_operator(&self, now: i64) -> Result<Option<String>, ServiceError> {
        let existing = sqlx::query("SELECT 1 FROM user_roles WHERE role = $1 LIMIT 1")
            .bind(Role::Operator.name())
            .fetch_optional(self.db.pool())
            .await?;
        if existing.is_some() {
            return Ok(None);
        }
        let city: String = sqlx::query("SELECT code FROM org_units WHERE level = 'city' ORDER BY code LIMIT 1")
            .fetch_one(self.db.pool())
            .await?
            .try_get(0)?;
        let password = format!("{}", uuid::Uuid::new_v4().simple());
        let new = super::NewUser {
            id: "admin".into(),
            username: "admin".into(),
            display_name: "平台管理员".into(),
            password: password.clone(),
            department: Some("command-center".into()),
            org_unit: city.clone(),
            kind: super::AccountKind::Staff,
            roles: vec![(Role::Operator, city)],
        };
        self.create_user(&new, now).await?;
        Ok(Some(password))
    }
}

/// An argon2id hash of a random string, checked against when the user name is
/// unknown so that a miss costs as long as a hit.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Bq0s9sB1kPNOVX8oVVFQ6G1Tn0pDOZPmTlbPiNtUSHk";
