//! The data foundation (城市数据一网共享): structured records in named data sets
//! with a sharing level, and IoT sensors with their readings (in [`iot`]).

pub mod http;
pub mod iot;
pub mod wit;

pub use iot::{Bucket, NewReading, Reading, Registered, Sensor, SensorFilter, SensorKind, Window};

use serde::Serialize;
use sqlx::Row;

use crate::clock::SharedClock;
use crate::db::{Backend, Db};
use crate::services::ServiceError;

/// How widely a data set is shared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    /// Every department may read it.
    Public,
    /// The owner and the listed departments may read it.
    Shared(Vec<String>),
    /// Only the owner may read it.
    Private,
}

/// A data set's header.
#[derive(Debug, Clone, Serialize)]
pub struct Dataset {
    pub name: String,
    pub title: String,
    pub owner_department: String,
    pub sharing: Sharing,
}

impl Dataset {
    /// Whether `department` may read this data set.
    pub fn readable_by(&self, department: &str) -> bool {
        self.owner_department == department
            || match &self.sharing {
                Sharing::Public => true,
                Sharing::Shared(list) => list.iter().any(|d| d == department),
                Sharing::Private => false,
            }
    }

    /// Whether `department` may write this data set: only its owner.
    pub fn writable_by(&self, department: &str) -> bool {
        self.owner_department == department
    }
}

/// One record.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub key: String,
    pub value: String,
    pub updated: i64,
}

/// A field name usable in a filter: letters, digits, `_` and `-` only, so that
/// it can never change the meaning of the query it is bound into.
fn valid_field(field: &str) -> bool {
    !field.is_empty()
        && field.len() <= 64
        && field.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The data service.
pub struct Data {
    db: Db,
    clock: SharedClock,
    announcer: iot::Announcer,
}

impl Data {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Data { db, clock, announcer: iot::Announcer::default() }
    }

    /// A data set's header.
    pub async fn dataset(&self, name: &str) -> Result<Option<Dataset>, ServiceError> {
        let row = sqlx::query("SELECT name, title, owner_department, sharing, shared_with FROM datasets WHERE name = $1")
            .bind(name)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(r) = row else { return Ok(None) };
        let sharing: String = r.try_get(3)?;
        let shared_with: String = r.try_get(4)?;
        let sharing = match sharing.as_str() {
            "public" => Sharing::Public,
            "shared" => Sharing::Shared(serde_json::from_str(&shared_with).unwrap_or_default()),
            _ => Sharing::Private,
        };
        Ok(Some(Dataset { name: r.try_get(0)?, title: r.try_get(1)?, owner_department: r.try_get(2)?, sharing }))
    }

    /// One record.
    pub async fn get(&self, dataset: &str, key: &str) -> Result<Option<Record>, ServiceError> {
        let row = sqlx::query("SELECT key, value, updated FROM records WHERE dataset = $1 AND key = $2")
            .bind(dataset)
            .bind(key)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(Record { key: r.try_get(0)?, value: r.try_get(1)?, updated: r.try_get(2)? }),
            None => None,
        })
    }

    /// Records whose JSON fields equal the given JSON scalars, in key order.
    pub async fn query(
        &self,
        dataset: &str,
        filters: &[(String, String)],
        offset: u32,
        limit: u32,
    ) -> Result<Vec<Record>, ServiceError> {
        let mut sql = String::from("SELECT key, value, updated FROM records WHERE dataset = $1");
        let mut binds: Vec<String> = vec![dataset.to_owned()];
        for (field, value) in filters {
            if !valid_field(field) {
                return Err(ServiceError::Invalid(format!(
                    "filter field `{field}` may hold only letters, digits, `_` and `-`"
                )));
            }
            let parsed: serde_json::Value = serde_json::from_str(value)
                .map_err(|e| ServiceError::Invalid(format!("filter `{field}`: value is not JSON: {e}")))?;
            if parsed.is_object() || parsed.is_array() {
                return Err(ServiceError::Invalid(format!("filter `{field}`: value must be a JSON scalar")));
            }
            let n = binds.len();
            match self.db.backend() {
                // Both sides become typed SQL values; the field path is a bound parameter.
                Backend::Sqlite => {
                    sql.push_str(&format!(
                        " AND json_extract(value, ${}) = json_extract(${}, '$[0]')",
                        n + 1,
                        n + 2
                    ));
                    binds.push(format!("$.\"{field}\""));
                    binds.push(format!("[{value}]"));
                }
                Backend::Postgres => {
                    sql.push_str(&format!(" AND (value::jsonb -> ${}) = (${})::jsonb", n + 1, n + 2));
                    binds.push(field.clone());
                    binds.push(value.clone());
                }
            }
        }
        let n = binds.len();
        sql.push_str(&format!(" ORDER BY key LIMIT ${} OFFSET ${}", n + 1, n + 2));
        // Only fixed fragments and numbered placeholders were appended; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.bind(i64::from(limit.min(1000))).bind(i64::from(offset)).fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| Ok(Record { key: r.try_get(0)?, value: r.try_get(1)?, updated: r.try_get(2)? }))
            .collect()
    }

    /// Insert or replace one record; `value` must be a JSON object.
    pub async fn put(&self, dataset: &str, key: &str, value: &str) -> Result<(), ServiceError> {
        let parsed: serde_json::Value =
            serde_json::from_str(value).map_err(|e| ServiceError::Invalid(format!("value is not JSON: {e}")))?;
        if !parsed.is_object() {
            return Err(ServiceError::Invalid("value must be a JSON object".into()));
        }
        if key.is_empty() || key.len() > 256 {
            return Err(ServiceError::Invalid("key must be 1-256 bytes".into()));
        }
        sqlx::query(
            "INSERT INTO records (dataset, key, value, updated) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (dataset, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        )
        .bind(dataset)
        .bind(key)
        .bind(value)
        .bind(self.clock.now_ms())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}
