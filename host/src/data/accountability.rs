//! Sharing accountability (数据共享考核): for each data set and for each owning
//! department, how fresh its updates are and how complete its records are. The
//! paper makes both part of a department's evaluation.
//!
//! - *Freshness*: the last update, its age, how many records were updated within
//!   the promised interval (`update_interval_hours`), and `fresh` — whether the
//!   last update is within that interval (`null` when nothing was promised).
//! - *Completeness*: over the fields a record is expected to fill (the schema's
//!   `required` and `x-expected`), the share filled — present and not null, not
//!   an empty string, array or object — per field and over all.

use futures::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::Data;
use super::schema::CompiledSchema;
use crate::error::ServiceError;

/// How many records fill one expected field.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldFill {
    pub field: String,
    pub filled: i64,
    /// `filled / records`; 1 for an empty data set.
    pub share: f64,
}

/// One data set's accountability.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatasetAccountability {
    pub dataset: String,
    pub title: String,
    pub owner_department: String,
    pub records: i64,
    /// Milliseconds since the epoch.
    pub last_update: Option<i64>,
    pub age_hours: Option<f64>,
    pub update_interval_hours: Option<i64>,
    /// Records updated within the interval (or the last 30 days without one).
    pub recently_updated: i64,
    /// Whether the last update is within the promised interval.
    pub fresh: Option<bool>,
    /// Share of expected fields filled over all records; `None` with none expected.
    pub completeness: Option<f64>,
    pub fields: Vec<FieldFill>,
}

/// One department's accountability over the data sets it owns.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DepartmentAccountability {
    pub department: String,
    pub datasets: usize,
    pub records: i64,
    /// Expected fields filled over all its records and data sets.
    pub completeness: Option<f64>,
    /// Share of its data sets with a promised interval that are fresh.
    pub fresh_share: Option<f64>,
    /// Its data sets whose last update is older than promised.
    pub stale: Vec<String>,
}

/// Both views.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Accountability {
    pub at: i64,
    pub departments: Vec<DepartmentAccountability>,
    pub datasets: Vec<DatasetAccountability>,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

fn filled(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

impl Data {
    /// Accountability for every data set (of `department` only, when given).
    pub async fn accountability(&self, department: Option<&str>) -> Result<Accountability, ServiceError> {
        let now = self.clock.now_ms();
        let mut datasets = Vec::new();
        for set in self.datasets().await? {
            if department.is_some_and(|d| d != set.owner_department) {
                continue;
            }
            let schema = self.schemas.get(&set.name, &set.schema)?;
            datasets.push(self.dataset_accountability(&set, &schema, now).await?);
        }
        let mut owners: Vec<&str> = datasets.iter().map(|d| d.owner_department.as_str()).collect();
        owners.sort_unstable();
        owners.dedup();
        let departments = owners
            .into_iter()
            .map(|owner| {
                let own: Vec<&DatasetAccountability> = datasets.iter().filter(|d| d.owner_department == owner).collect();
                let (mut cells, mut filled_cells) = (0i64, 0i64);
                for d in &own {
                    cells += d.records * d.fields.len() as i64;
                    filled_cells += d.fields.iter().map(|f| f.filled).sum::<i64>();
                }
                let promised: Vec<&&DatasetAccountability> = own.iter().filter(|d| d.fresh.is_some()).collect();
                DepartmentAccountability {
                    department: owner.to_owned(),
                    datasets: own.len(),
                    records: own.iter().map(|d| d.records).sum(),
                    completeness: (cells > 0).then(|| filled_cells as f64 / cells as f64),
                    fresh_share: (!promised.is_empty()).then(|| {
                        promised.iter().filter(|d| d.fresh == Some(true)).count() as f64 / promised.len() as f64
                    }),
                    stale: own.iter().filter(|d| d.fresh == Some(false)).map(|d| d.dataset.clone()).collect(),
                }
            })
            .collect();
        Ok(Accountability { at: now, departments, datasets })
    }

    async fn dataset_accountability(
        &self,
        set: &super::Dataset,
        schema: &CompiledSchema,
        now: i64,
    ) -> Result<DatasetAccountability, ServiceError> {
        let expected = schema.expected_fields();
        let window = set.update_interval_hours.map(|h| h * 3600 * 1000).unwrap_or(30 * DAY_MS);
        let mut fills = vec![0i64; expected.len()];
        let (mut records, mut recent, mut last) = (0i64, 0i64, None::<i64>);
        let mut rows =
            sqlx::query("SELECT value, updated FROM records WHERE dataset = $1").bind(&set.name).fetch(self.db.pool());
        while let Some(r) = rows.try_next().await? {
            let text: String = r.try_get(0)?;
            let updated: i64 = r.try_get(1)?;
            records += 1;
            last = Some(last.map_or(updated, |l| l.max(updated)));
            if now - updated <= window {
                recent += 1;
            }
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            for (i, field) in expected.iter().enumerate() {
                if filled(value.get(field)) {
                    fills[i] += 1;
                }
            }
        }
        let share = |n: i64| if records == 0 { 1.0 } else { n as f64 / records as f64 };
        let fields: Vec<FieldFill> = expected
            .iter()
            .zip(&fills)
            .map(|(f, &n)| FieldFill { field: f.clone(), filled: n, share: share(n) })
            .collect();
        let cells = records * fields.len() as i64;
        let completeness = if fields.is_empty() {
            None
        } else if cells == 0 {
            Some(1.0)
        } else {
            Some(fills.iter().sum::<i64>() as f64 / cells as f64)
        };
        let age_ms = last.map(|l| (now - l).max(0));
        Ok(DatasetAccountability {
            dataset: set.name.clone(),
            title: set.title.clone(),
            owner_department: set.owner_department.clone(),
            records,
            last_update: last,
            age_hours: age_ms.map(|a| a as f64 / 3_600_000.0),
            update_interval_hours: set.update_interval_hours,
            recently_updated: recent,
            fresh: set.update_interval_hours.map(|h| age_ms.is_some_and(|a| a <= h * 3_600_000)),
            completeness,
            fields,
        })
    }
}
