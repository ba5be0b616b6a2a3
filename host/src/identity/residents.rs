//! Residents and service identities.
//!
//! - A resident registers an account (随手拍, following a case, rating it). It
//!   may carry a real name and a resident identity card number (GB 11643: 17
//!   digits and a check character); the number is checked, then kept only
//!   masked and as a salted hash. The account is *verified* (实名认证) once a
//!   dispatcher or operator has seen the card and confirms the number. An
//!   anonymous reporter has no account at all.
//! - Every loaded plugin has a *service identity*: an account `plugin.<name>`
//!   of kind `service` in its department, with no password, so that it cannot
//!   log in; it names the plugin wherever people see who did something.

use serde::Deserialize;
use utoipa::ToSchema;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{AccountKind, Identity, NewUser, Role};
use crate::error::ServiceError;

/// What a resident gives to register.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub username: String,
    pub password: String,
    pub display_name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub real_name: Option<String>,
    #[serde(default)]
    pub id_number: Option<String>}

/// Check a resident identity card number (GB 11643): 17 digits, a date of birth
/// in digits 7-14, and the ISO 7064 MOD 11-2 check character (`0-9` or `X`).
pub fn check_id_number(number: &str) -> Result<(), String> {
    let b = number.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
        return Err("id_number: a resident identity card number has 17 digits and a check digit or `X`".into());
    }
    let (month, day) = (&number[10..12], &number[12..14]);
    let month: u32 = month.parse().unwrap_or(0);
    let day: u32 = day.parse().unwrap_or(0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err("id_number: digits 7-14 are not a date of birth".into());
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = b[..17].iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    let expected = b"10X98765432"[(sum % 11) as usize];
    if b[17] != expected {
        return Err("id_number: the check character does not match; the number is mistyped".into());
    }
    Ok(())
}

fn id_hash(user: &str, number: &str) -> String {
    hex::encode(Sha256::digest(format!("{user}:{number}").as_bytes()))
}

fn masked(number: &str) -> String {
    format!("{}{}{}", &number[..4], "*".repeat(10), &number[14..])
}

impl Identity {
    /// Register a resident; returns the new account's id. The account holds
    /// the `resident` role at city level and is not verified.
    pub async fn register_resident(&self, r: &Registration, now: i64) -> Result<String, ServiceError> {
        let real = match (&r.real_name, &r.id_number) {
            (Some(name), Some(number)) => {
                if name.trim().is_empty() || name.chars().count() > 50 {
                    return Err(ServiceError::Invalid("real_name: must be 1-50 characters".into()));
                }
                check_id_number(number).map_err(ServiceError::Invalid)?;
                Some((name.trim().to_owned(), number.clone()))
            }
            (None, None) => None,
            _ => return Err(ServiceError::Invalid("real_name and id_number go together".into()))};
        if let Some(phone) = &r.phone
            && !(phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ServiceError::Invalid(format!("phone: `{phone}` is not an 11-digit mobile number")));
        }
        let city = self.city().await?;
        let id = format!("resident.{}", r.username);
        let user = NewUser {
            id: id.clone(),
            username: r.username.clone(),
            display_name: r.display_name.clone(),
            password: r.password.clone(),
            department: None,
            org_unit: city.clone(),
            kind: AccountKind::Resident,
            roles: vec![(Role::Resident, city)]};
        self.create_user(&user, now).await?;
        sqlx::query(
            "UPDATE users SET phone = $2, real_name = $3, id_number_masked = $4, id_number_hash = $5, created = $6 \
             WHERE id = $1",
        )
        .bind(&id)
        .bind(r.phone.as_deref())
        .bind(real.as_ref().map(|(n, _)| n.as_str()))
        .bind(real.as_ref().map(|(_, num)| masked(num)))
        .bind(real.as_ref().map(|(_, num)| id_hash(&id, num)))
        .bind(now)
        .execute(self.db.writer())
        .await?;
        self.sessions.forget_all();
        Ok(id)
    }

    /// Confirm a resident's real name: `id_number` is the number on the card
    /// the verifier saw. A resident who registered without one gets it now,
    /// with `real_name`.
    pub async fn verify_resident(
        &self,
        id: &str,
        id_number: &str,
        real_name: Option<&str>,
        verifier: &str,
    ) -> Result<(), ServiceError> {
        check_id_number(id_number).map_err(ServiceError::Invalid)?;
        let row = sqlx::query("SELECT kind, id_number_hash, real_name FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no user `{id}`")))?;
        let kind: String = row.try_get(0)?;
        if AccountKind::parse(&kind) != Some(AccountKind::Resident) {
            return Err(ServiceError::Invalid(format!("`{id}` is not a resident account")));
        }
        let stored: Option<String> = row.try_get(1)?;
        let name = match (stored, real_name) {
            (Some(hash), _) if hash != id_hash(id, id_number) => {
                return Err(ServiceError::Conflict("id_number: does not match the number the resident registered".into()));
            }
            (Some(_), _) => row.try_get::<Option<String>, _>(2)?,
            (None, Some(name)) if !name.trim().is_empty() => Some(name.trim().to_owned()),
            (None, _) => {
                return Err(ServiceError::Invalid(
                    "real_name: the resident registered no real name, so give the one on the card".into(),
                ));
            }
        };
        sqlx::query(
            "UPDATE users SET verified = 1, verified_by = $2, real_name = $3, id_number_masked = $4, \
             id_number_hash = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(verifier)
        .bind(name)
        .bind(masked(id_number))
        .bind(id_hash(id, id_number))
        .execute(self.db.writer())
        .await?;
        self.sessions.forget_all();
        Ok(())
    }

    /// Create or refresh the service identity of plugin `name`.
    pub async fn ensure_service_account(&self, name: &str, department: &str, now: i64) -> Result<String, ServiceError> {
        let id = format!("plugin.{name}");
        let city = self.city().await?;
        sqlx::query(
            "INSERT INTO users (id, display_name, department, org_unit, username, password_hash, kind, verified, \
             disabled, created) VALUES ($1, $2, $3, $4, $1, NULL, 'service', 0, 0, $5) \
             ON CONFLICT (id) DO UPDATE SET department = excluded.department",
        )
        .bind(&id)
        .bind(format!("插件 {name}"))
        .bind(department)
        .bind(&city)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        self.sessions.forget_all();
        Ok(id)
    }

    /// The city's org unit (the first city-level one).
    async fn city(&self) -> Result<String, ServiceError> {
        let row = sqlx::query("SELECT code FROM org_units WHERE level = 'city' ORDER BY code LIMIT 1")
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| ServiceError::Storage(anyhow::anyhow!("no city-level org unit is stored")))?;
        Ok(row.try_get(0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_are_checked() {
        // The GB 11643 example number.
        assert_eq!(check_id_number("11010519491231002X"), Ok(()));
        assert!(check_id_number("110105194912310021").unwrap_err().contains("check character"));
        assert!(check_id_number("11010519491331002X").unwrap_err().contains("date of birth"));
        assert!(check_id_number("1101051949123100").is_err());
        assert_eq!(masked("11010519491231002X"), "1101**********002X");
    }
}
