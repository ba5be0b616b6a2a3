//! The data foundation (城市数据一网共享): structured records in named data sets
//! with a sharing level, and IoT sensors with their readings (in [`iot`]).

pub mod accountability;
pub mod import;
pub mod iot;
pub mod records;
pub(crate) mod schema;

use std::sync::Arc;

pub use iot::{Bucket, NewReading, Reading, Registered, Sensor, SensorFilter, SensorKind, Window};
pub use records::{ImportReport, ImportRow, Page, Record, RecordQuery, WriteMode, Writer, Written};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

use crate::clock::SharedClock;
use crate::db::Db;
use crate::error::ServiceError;
use crate::space::Space;

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

/// A data set: its header, its declared schema and how its records are kept.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub title: String,
    pub owner_department: String,
    pub sharing: Sharing,
    /// A JSON Schema every record must satisfy.
    pub schema: Value,
    /// The field whose value is a record's key, if the key is not given apart.
    pub key_field: Option<String>,
    /// Built-in checks beyond the schema (see [`records::CHECKS`]).
    pub checks: Vec<String>,
    /// How often the owner promises to update it, for sharing accountability.
    pub update_interval_hours: Option<i64>,
}

/// A data set as it is written and read over HTTP.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// 1-64 of `a-z0-9-_.`.
    pub name: String,
    pub title: String,
    pub owner_department: String,
    /// `public`, `shared` (with `shared_with`) or `private`.
    pub sharing: String,
    #[serde(default)]
    pub shared_with: Vec<String>,
    /// A JSON Schema for the records (type object); `{}` accepts any object.
    #[serde(default = "any_object")]
    #[schema(value_type = Object)]
    pub schema: Value,
    #[serde(default)]
    pub key_field: Option<String>,
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default)]
    pub update_interval_hours: Option<i64>,
}

fn any_object() -> Value {
    serde_json::json!({"type": "object"})
}

impl From<&Dataset> for DatasetSpec {
    fn from(d: &Dataset) -> Self {
        let (sharing, shared_with) = match &d.sharing {
            Sharing::Public => ("public", vec![]),
            Sharing::Shared(list) => ("shared", list.clone()),
            Sharing::Private => ("private", vec![]),
        };
        DatasetSpec {
            name: d.name.clone(),
            title: d.title.clone(),
            owner_department: d.owner_department.clone(),
            sharing: sharing.to_owned(),
            shared_with,
            schema: d.schema.clone(),
            key_field: d.key_field.clone(),
            checks: d.checks.clone(),
            update_interval_hours: d.update_interval_hours,
        }
    }
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

/// The data service.
pub struct Data {
    db: Db,
    clock: SharedClock,
    space: Arc<Space>,
    announcer: iot::Announcer,
    schemas: schema::SchemaCache,
}

const DATASET_COLUMNS: &str =
    "name, title, owner_department, sharing, shared_with, schema, key_field, checks, update_interval_hours";

fn dataset_from(r: &sqlx::any::AnyRow) -> Result<Dataset, ServiceError> {
    let name: String = r.try_get(0)?;
    let sharing: String = r.try_get(3)?;
    let shared_with: String = r.try_get(4)?;
    let corrupt = |what: &str, e: serde_json::Error| {
        ServiceError::Storage(anyhow::anyhow!("data set `{name}`: stored {what} is not JSON: {e}"))
    };
    let sharing = match sharing.as_str() {
        "public" => Sharing::Public,
        "shared" => Sharing::Shared(serde_json::from_str(&shared_with).map_err(|e| corrupt("shared_with", e))?),
        _ => Sharing::Private,
    };
    let schema: String = r.try_get(5)?;
    let checks: String = r.try_get(7)?;
    Ok(Dataset {
        title: r.try_get(1)?,
        owner_department: r.try_get(2)?,
        sharing,
        schema: serde_json::from_str(&schema).map_err(|e| corrupt("schema", e))?,
        key_field: r.try_get(6)?,
        checks: serde_json::from_str(&checks).map_err(|e| corrupt("checks", e))?,
        update_interval_hours: r.try_get(8)?,
        name,
    })
}

impl Data {
    /// The data service; `space` places records that carry a location.
    pub fn new(db: Db, clock: SharedClock, space: Arc<Space>) -> Self {
        Data { db, clock, space, announcer: iot::Announcer::default(), schemas: schema::SchemaCache::default() }
    }

    /// A data set.
    pub async fn dataset(&self, name: &str) -> Result<Option<Dataset>, ServiceError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE name = $1")))
            .bind(name)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(dataset_from).transpose()
    }

    /// The compiled schema of a data set.
    pub(crate) fn schema(&self, set: &Dataset) -> Result<Arc<schema::CompiledSchema>, ServiceError> {
        self.schemas.get(&set.name, &set.schema)
    }

    /// Every data set, by name.
    pub async fn datasets(&self) -> Result<Vec<Dataset>, ServiceError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DATASET_COLUMNS} FROM datasets ORDER BY name")))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(dataset_from).collect()
    }
}
