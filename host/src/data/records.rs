//! Structured records (结构化数据): data set definitions, and records written
//! one at a time or imported in bulk, always through the same pipeline:
//!
//! 1. *check* each record on its own — a JSON object, a usable key (from the data
//!    set's key field when it has one), the data set's JSON Schema, its built-in
//!    checks (the 16-digit 部件 code), and its area: the `area` field, or else the
//!    grid cell under its `location`;
//! 2. *resolve* the org unit codes the batch names, in one query per 500;
//! 3. *authorise* against the writer's [`Scope`]: the new area and, for a record
//!    being replaced, the old one must both lie within it;
//! 4. *write* everything in one transaction of multi-row upserts.
//!
//! Nothing is written unless every record passes; errors name the record (key,
//! or the line of an imported file) and the field.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;

use super::schema::CompiledSchema;
use super::{Data, Dataset, DatasetSpec, Sharing};
use crate::bus::GeoPoint;
use crate::db::{Backend, placeholder};
use crate::identity::Scope;
use crate::error::{ServiceError, valid_id};

/// The built-in checks a data set may name in `checks`.
pub const CHECKS: [&str; 1] = [COMPONENT_CODE];

/// 部件 codes: 16 digits = 6 district (a known district or the city) + 2 major
/// class + 2 minor class (a known pair, equal to the `major` and `minor` fields)
/// + 6 serial.
const COMPONENT_CODE: &str = "component-code";

/// The most records one import may hold.
pub const MAX_IMPORT: usize = 1_000_000;

/// The most records one query answers.
pub const MAX_PAGE: u32 = 1000;

/// The most problems listed in one refusal.
const MAX_REPORTED: usize = 20;

/// Rows per multi-row upsert.
const CHUNK: usize = 128;

/// One record.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub key: String,
    /// The record as JSON text.
    pub value: String,
    /// The org unit (area code) it belongs to, if any.
    pub area: Option<String>,
    pub updated: i64,
    pub updated_by: String,
}

/// Who writes, and where they may.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    /// `user:<id>`, `plugin:<name>`, `host` …, kept as the record's `updated_by`.
    pub actor: &'a str,
    pub scope: &'a Scope,
}

/// Whether a write may replace an existing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Refuse (409) when the key exists.
    Insert,
    /// Insert or replace.
    Upsert,
}

/// What a single write did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Written {
    pub key: String,
    pub created: bool,
    pub area: Option<String>,
}

/// One record of an import, with where it came from for error messages.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// `line 12`, `item 3` …
    pub origin: String,
    /// The key, when the data set has no key field.
    pub key: Option<String>,
    pub value: Value,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub inserted: usize,
    pub updated: usize,
}

/// How far an import has got, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Records checked so far, of the total.
    Checked(usize, usize),
    /// Records written so far, of the total.
    Written(usize, usize),
}

/// A query over a data set's records.
#[derive(Debug, Clone)]
pub struct RecordQuery {
    /// Field (dotted path for nested objects) equals a JSON scalar.
    pub filters: Vec<(String, Value)>,
    /// Only records placed within this org unit.
    pub area: Option<String>,
    /// What the reader may see.
    pub scope: Scope,
    pub offset: u32,
    pub limit: u32,
}

impl RecordQuery {
    /// Everything, first page, for readers that see the whole city.
    pub fn all(limit: u32) -> Self {
        RecordQuery { filters: vec![], area: None, scope: Scope::All, offset: 0, limit }
    }
}

/// A page of records.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// Records matching the query (all pages).
    pub total: i64,
    pub records: Vec<Record>,
}

/// A class of 部件 (city component).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ComponentClass {
    /// Major and minor class, 4 digits: the middle of a component code.
    pub code: String,
    pub major: String,
    pub minor: String,
    pub major_name: String,
    pub name: String,
    /// The department that usually maintains it.
    pub department: Option<String>,
}

/// A record that passed its own checks, waiting for its org unit to be resolved.
struct Checked {
    origin: String,
    key: String,
    value: String,
    area: Option<String>,
    /// Org units this record names, with the field that named them and whether
    /// it must be a district (or the city).
    units: Vec<(String, &'static str, bool)>,
}

/// A field name usable in a filter: dot-separated segments of letters, digits,
/// `_` and `-`, so that it can never change the meaning of the query it is bound into.
pub fn valid_field(field: &str) -> bool {
    !field.is_empty()
        && field.len() <= 128
        && field.split('.').all(|seg| {
            !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

fn valid_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 256 {
        return Err("key must be 1-256 bytes".into());
    }
    if key.chars().any(char::is_control) {
        return Err("key must not hold control characters".into());
    }
    Ok(())
}

fn record_from(r: &sqlx::any::AnyRow) -> Result<Record, sqlx::Error> {
    Ok(Record {
        key: r.try_get(0)?,
        value: r.try_get(1)?,
        area: r.try_get(2)?,
        updated: r.try_get(3)?,
        updated_by: r.try_get(4)?,
    })
}

const RECORD_COLUMNS: &str = "key, value, area, updated, updated_by";

/// Check a spec before it is stored; the error names the field.
fn check_spec(spec: &DatasetSpec) -> Result<CompiledSchema, ServiceError> {
    let bad = |m: String| Err(ServiceError::Invalid(m));
    if !valid_id(&spec.name) {
        return bad(format!("name `{}`: must be 1-64 characters of a-z, 0-9, `-`, `_`, `.`", spec.name));
    }
    if spec.title.trim().is_empty() || spec.title.chars().count() > 200 {
        return bad("title: must be 1-200 characters".into());
    }
    match spec.sharing.as_str() {
        "public" | "private" if spec.shared_with.is_empty() => {}
        "public" | "private" => return bad(format!("shared_with: only a `shared` data set lists departments, not a `{}` one", spec.sharing)),
        "shared" if !spec.shared_with.is_empty() => {}
        "shared" => return bad("shared_with: a `shared` data set lists at least one department".into()),
        other => return bad(format!("sharing: `{other}` is not one of `public`, `shared`, `private`")),
    }
    if let Some(k) = &spec.key_field
        && !valid_field(k)
    {
        return bad(format!("key_field `{k}`: letters, digits, `_` and `-` only"));
    }
    for c in &spec.checks {
        if !CHECKS.contains(&c.as_str()) {
            return bad(format!("checks: `{c}` is not a known check (known: {})", CHECKS.join(", ")));
        }
    }
    if let Some(h) = spec.update_interval_hours
        && h <= 0
    {
        return bad(format!("update_interval_hours: {h} must be positive"));
    }
    CompiledSchema::compile(&spec.schema)
}

impl Data {
    /// Create a data set; 409 when the name is taken. Departments are checked.
    pub async fn create_dataset(&self, spec: &DatasetSpec) -> Result<(), ServiceError> {
        check_spec(spec)?;
        self.check_departments(spec).await?;
        let mut tx = self.db.begin_write().await?;
        let taken = sqlx::query("SELECT 1 FROM datasets WHERE name = $1").bind(&spec.name).fetch_optional(&mut *tx).await?;
        if taken.is_some() {
            return Err(ServiceError::Conflict(format!("data set `{}` exists", spec.name)));
        }
        self.store_spec(&mut tx, spec).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Insert or replace a checked definition.
    async fn store_spec(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, spec: &DatasetSpec) -> Result<(), ServiceError> {
        sqlx::query(
            "INSERT INTO datasets (name, title, owner_department, sharing, shared_with, schema, key_field, checks, \
             update_interval_hours, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (name) DO UPDATE SET title = excluded.title, owner_department = excluded.owner_department, \
             sharing = excluded.sharing, shared_with = excluded.shared_with, schema = excluded.schema, \
             key_field = excluded.key_field, checks = excluded.checks, \
             update_interval_hours = excluded.update_interval_hours",
        )
        .bind(&spec.name)
        .bind(&spec.title)
        .bind(&spec.owner_department)
        .bind(&spec.sharing)
        .bind(serde_json::to_string(&spec.shared_with).expect("strings serialise"))
        .bind(spec.schema.to_string())
        .bind(spec.key_field.as_deref())
        .bind(serde_json::to_string(&spec.checks).expect("strings serialise"))
        .bind(spec.update_interval_hours)
        .bind(self.clock.now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Replace a data set's definition. A new schema must accept every stored
    /// record: otherwise nothing changes and the error names the first records
    /// that would break it.
    pub async fn update_dataset(&self, spec: &DatasetSpec) -> Result<(), ServiceError> {
        let schema = check_spec(spec)?;
        self.check_departments(spec).await?;
        let Some(old) = self.dataset(&spec.name).await? else {
            return Err(ServiceError::NotFound(format!("no data set `{}`", spec.name)));
        };
        let mut tx = self.db.begin_write().await?;
        if old.schema != spec.schema || old.key_field != spec.key_field {
            let rows = sqlx::query("SELECT key, value FROM records WHERE dataset = $1 ORDER BY key")
                .bind(&spec.name)
                .fetch_all(&mut *tx)
                .await?;
            let mut problems = Vec::new();
            for r in &rows {
                let key: String = r.try_get(0)?;
                let text: String = r.try_get(1)?;
                let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if let Some(v) = schema.violations(&value).into_iter().next() {
                    problems.push(format!("record `{key}`: {v}"));
                } else if let Some(k) = &spec.key_field
                    && key_of(&value, k).as_deref() != Some(key.as_str())
                {
                    problems.push(format!("record `{key}`: field `{k}` does not hold its key"));
                }
                if problems.len() == 5 {
                    break;
                }
            }
            if !problems.is_empty() {
                return Err(ServiceError::Invalid(format!(
                    "the new definition does not fit the stored records: {}",
                    problems.join("; ")
                )));
            }
        }
        self.store_spec(&mut tx, spec).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn check_departments(&self, spec: &DatasetSpec) -> Result<(), ServiceError> {
        for (field, d) in std::iter::once(("owner_department", &spec.owner_department))
            .chain(spec.shared_with.iter().map(|d| ("shared_with", d)))
        {
            let known = sqlx::query("SELECT 1 FROM departments WHERE code = $1").bind(d).fetch_optional(self.db.pool()).await?;
            if known.is_none() {
                return Err(ServiceError::Invalid(format!("{field}: unknown department `{d}`")));
            }
        }
        Ok(())
    }

    async fn known_dataset(&self, name: &str) -> Result<Dataset, ServiceError> {
        self.dataset(name).await?.ok_or_else(|| ServiceError::NotFound(format!("no data set `{name}`")))
    }

    /// One record.
    pub async fn get(&self, dataset: &str, key: &str) -> Result<Option<Record>, ServiceError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE dataset = $1 AND key = $2"
        )))
        .bind(dataset)
        .bind(key)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.as_ref().map(record_from).transpose()?)
    }

    /// Records matching every filter, within the reader's scope, in key order,
    /// with the number of all matches.
    pub async fn query(&self, dataset: &str, q: &RecordQuery) -> Result<Page, ServiceError> {
        let backend = self.db.backend();
        let mut clause = String::from(" FROM records WHERE dataset = $1");
        let mut binds: Vec<String> = vec![dataset.to_owned()];
        for (field, value) in &q.filters {
            if !valid_field(field) {
                return Err(ServiceError::Invalid(format!(
                    "filter field `{field}`: letters, digits, `_`, `-` and `.` between names only"
                )));
            }
            if value.is_object() || value.is_array() {
                return Err(ServiceError::Invalid(format!("filter `{field}`: the value must be a JSON scalar")));
            }
            let n = binds.len();
            match backend {
                // Both sides become typed SQL values; the field path is a bound parameter.
                Backend::Sqlite => {
                    clause.push_str(&format!(
                        " AND json_extract(value, ${}) = json_extract(${}, '$[0]')",
                        n + 1,
                        n + 2
                    ));
                    let path: String = field.split('.').map(|seg| format!(".\"{seg}\"")).collect();
                    binds.push(format!("${path}"));
                    binds.push(format!("[{value}]"));
                }
                Backend::Postgres => {
                    clause.push_str(&format!(
                        " AND (value::jsonb #> string_to_array(${}, '.')) = (${})::jsonb",
                        n + 1,
                        n + 2
                    ));
                    binds.push(field.clone());
                    binds.push(value.to_string());
                }
            }
        }
        if let Some(area) = &q.area {
            if !area.bytes().all(|b| b.is_ascii_digit()) || area.is_empty() || area.len() > 14 {
                return Err(ServiceError::Invalid(format!("area `{area}`: an org unit code is 6-14 digits")));
            }
            clause.push_str(&format!(" AND area LIKE ${}", binds.len() + 1));
            binds.push(format!("{area}%"));
        }
        if let Some(units) = q.scope.units() {
            // Codes are digits only, so `%` and `_` cannot appear in them.
            let mut alternatives = vec!["area IS NULL".to_owned()];
            for u in units {
                alternatives.push(format!("area LIKE ${}", binds.len() + 1));
                binds.push(format!("{u}%"));
            }
            clause.push_str(&format!(" AND ({})", alternatives.join(" OR ")));
        }
        let count_sql = format!("SELECT COUNT(*){clause}");
        // Only fixed fragments and numbered placeholders were appended; every value is bound.
        let mut count = sqlx::query(sqlx::AssertSqlSafe(count_sql));
        for b in &binds {
            count = count.bind(b);
        }
        let total: i64 = count.fetch_one(self.db.pool()).await?.try_get(0)?;

        let n = binds.len();
        let sql = format!("SELECT {RECORD_COLUMNS}{clause} ORDER BY key LIMIT ${} OFFSET ${}", n + 1, n + 2);
        let mut select = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &binds {
            select = select.bind(b);
        }
        let rows = select
            .bind(i64::from(q.limit.min(MAX_PAGE)))
            .bind(i64::from(q.offset))
            .fetch_all(self.db.pool())
            .await?;
        let records = rows.iter().map(record_from).collect::<Result<_, _>>()?;
        Ok(Page { total, records })
    }

    /// Write one record: `value` is its JSON text, `key` its key (or `None` to
    /// take it from the data set's key field).
    pub async fn write(
        &self,
        dataset: &str,
        key: Option<&str>,
        value: &str,
        mode: WriteMode,
        writer: Writer<'_>,
    ) -> Result<Written, ServiceError> {
        let parsed: Value =
            serde_json::from_str(value).map_err(|e| ServiceError::Invalid(format!("value is not JSON: {e}")))?;
        let origin = match key {
            Some(k) => format!("record `{k}`"),
            None => "record".to_owned(),
        };
        let row = ImportRow { origin, key: key.map(str::to_owned), value: parsed };
        let set = self.known_dataset(dataset).await?;
        let checked = self.check_rows(&set, vec![row], &mut |_| {}).await?;
        let mut tx = self.db.begin_write().await?;
        let existing = self.existing(&mut tx, dataset, &checked).await?;
        let c = &checked[0];
        if mode == WriteMode::Insert && existing.contains_key(&c.key) {
            return Err(ServiceError::Conflict(format!("data set `{dataset}` already holds key `{}`", c.key)));
        }
        authorise(&checked, &existing, writer.scope)?;
        self.upsert(&mut tx, dataset, &checked, writer.actor, &mut |_| {}).await?;
        tx.commit().await?;
        Ok(Written { key: c.key.clone(), created: !existing.contains_key(&c.key), area: c.area.clone() })
    }

    /// [`Data::write`] with an upsert and the key given: the plugin interface's `put`.
    pub async fn put(&self, dataset: &str, key: &str, value: &str, writer: Writer<'_>) -> Result<Written, ServiceError> {
        self.write(dataset, Some(key), value, WriteMode::Upsert, writer).await
    }

    /// Delete one record within the writer's scope; whether it existed.
    pub async fn delete(&self, dataset: &str, key: &str, writer: Writer<'_>) -> Result<bool, ServiceError> {
        self.known_dataset(dataset).await?;
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query("SELECT area FROM records WHERE dataset = $1 AND key = $2")
            .bind(dataset)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let area: Option<String> = row.try_get(0)?;
        if !writer.scope.covers(area.as_deref()) {
            return Err(outside(&format!("record `{key}`"), "the stored record", area.as_deref(), writer.scope));
        }
        sqlx::query("DELETE FROM records WHERE dataset = $1 AND key = $2").bind(dataset).bind(key).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Import many records at once, all or nothing: every row is checked before
    /// anything is written, and the writes are one transaction. `progress` is
    /// told how far checking and writing have got.
    pub async fn import(
        &self,
        dataset: &str,
        rows: Vec<ImportRow>,
        writer: Writer<'_>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<ImportReport, ServiceError> {
        if rows.is_empty() {
            return Err(ServiceError::Invalid("the import holds no records".into()));
        }
        if rows.len() > MAX_IMPORT {
            return Err(ServiceError::Invalid(format!(
                "the import holds {} records; at most {MAX_IMPORT} go in one",
                rows.len()
            )));
        }
        let set = self.known_dataset(dataset).await?;
        let checked = self.check_rows(&set, rows, progress).await?;
        let mut seen = HashSet::with_capacity(checked.len());
        let mut problems = Vec::new();
        for c in &checked {
            if !seen.insert(c.key.as_str()) && problems.len() < MAX_REPORTED {
                problems.push(format!("{}: key `{}` appears more than once", c.origin, c.key));
            }
        }
        refuse(problems)?;
        let mut tx = self.db.begin_write().await?;
        let existing = self.existing(&mut tx, dataset, &checked).await?;
        authorise(&checked, &existing, writer.scope)?;
        self.upsert(&mut tx, dataset, &checked, writer.actor, progress).await?;
        tx.commit().await?;
        let updated = existing.len();
        Ok(ImportReport { inserted: checked.len() - updated, updated })
    }

    /// Steps 1-3 of the pipeline for a batch; the first problems are reported
    /// together.
    async fn check_rows(
        &self,
        set: &Dataset,
        rows: Vec<ImportRow>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Vec<Checked>, ServiceError> {
        let schema = self.schemas.get(&set.name, &set.schema)?;
        let classes = if set.checks.iter().any(|c| c == COMPONENT_CODE) { self.component_classes().await? } else { HashSet::new() };
        let index = self.space.index();
        let total = rows.len();
        let mut problems = Vec::new();
        let mut checked = Vec::with_capacity(total);
        for (i, row) in rows.into_iter().enumerate() {
            match check_one(set, &schema, &classes, &index, row) {
                Ok(c) => checked.push(c),
                Err(mut p) => {
                    problems.append(&mut p);
                    if problems.len() >= MAX_REPORTED {
                        break;
                    }
                }
            }
            if (i + 1) % 1000 == 0 || i + 1 == total {
                progress(Progress::Checked(i + 1, total));
            }
        }
        refuse(problems)?;

        // Resolve every org unit named, in few queries.
        let mut wanted: Vec<&str> = checked.iter().flat_map(|c| c.units.iter().map(|(u, _, _)| u.as_str())).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut levels: HashMap<String, String> = HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(500) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| placeholder(self.db.backend(), i)).collect();
            let sql = format!("SELECT code, level FROM org_units WHERE code IN ({})", list.join(", "));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for code in chunk {
                q = q.bind(*code);
            }
            for r in q.fetch_all(self.db.pool()).await? {
                levels.insert(r.try_get(0)?, r.try_get(1)?);
            }
        }
        let mut problems = Vec::new();
        for c in &checked {
            for (unit, field, district) in &c.units {
                let level = levels.get(unit).map(String::as_str);
                let problem = if *district {
                    if matches!(level, Some("district" | "city")) {
                        continue;
                    }
                    format!("{}: field `{field}`: `{unit}` is not a known district", c.origin)
                } else if level.is_none() {
                    format!("{}: field `{field}`: `{unit}` is not a known org unit", c.origin)
                } else {
                    continue;
                };
                if problems.len() < MAX_REPORTED {
                    problems.push(problem);
                }
            }
        }
        refuse(problems)?;
        Ok(checked)
    }

    /// The 部件 classes, by code.
    pub async fn component_class_list(&self) -> Result<Vec<ComponentClass>, ServiceError> {
        let rows = sqlx::query(
            "SELECT major, minor, major_name, name, department FROM component_classes ORDER BY major, minor",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let (major, minor): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                Ok(ComponentClass {
                    code: format!("{major}{minor}"),
                    major,
                    minor,
                    major_name: r.try_get(2)?,
                    name: r.try_get(3)?,
                    department: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// The pairs (major, minor) of the 部件 classes.
    async fn component_classes(&self) -> Result<HashSet<(String, String)>, ServiceError> {
        let rows = sqlx::query("SELECT major, minor FROM component_classes").fetch_all(self.db.pool()).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    /// The stored area of every key of the batch that exists.
    async fn existing(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        dataset: &str,
        checked: &[Checked],
    ) -> Result<HashMap<String, Option<String>>, ServiceError> {
        let mut found = HashMap::new();
        for chunk in checked.chunks(500) {
            let list: Vec<String> = (2..chunk.len() + 2).map(|i| placeholder(self.db.backend(), i)).collect();
            let sql = format!(
                "SELECT key, area FROM records WHERE dataset = {} AND key IN ({})",
                placeholder(self.db.backend(), 1),
                list.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(dataset);
            for c in chunk {
                q = q.bind(&c.key);
            }
            for r in q.fetch_all(&mut **tx).await? {
                found.insert(r.try_get(0)?, r.try_get(1)?);
            }
        }
        Ok(found)
    }

    async fn upsert(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        dataset: &str,
        checked: &[Checked],
        actor: &str,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(), ServiceError> {
        let now = self.clock.now_ms();
        let backend = self.db.backend();
        let mut done = 0;
        for chunk in checked.chunks(CHUNK) {
            let mut sql = String::from("INSERT INTO records (dataset, key, value, area, updated, updated_by) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                let p: Vec<String> = (1..=6).map(|k| placeholder(backend, i * 6 + k)).collect();
                sql.push_str(&format!("({})", p.join(", ")));
            }
            sql.push_str(
                " ON CONFLICT (dataset, key) DO UPDATE SET value = excluded.value, area = excluded.area, \
                 updated = excluded.updated, updated_by = excluded.updated_by",
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for c in chunk {
                q = q.bind(dataset).bind(&c.key).bind(&c.value).bind(c.area.as_deref()).bind(now).bind(actor);
            }
            q.execute(&mut **tx).await?;
            done += chunk.len();
            progress(Progress::Written(done, checked.len()));
        }
        Ok(())
    }
}

fn refuse(problems: Vec<String>) -> Result<(), ServiceError> {
    if problems.is_empty() {
        return Ok(());
    }
    let more = if problems.len() >= MAX_REPORTED { " (and maybe more)" } else { "" };
    Err(ServiceError::Invalid(format!("{}{more}", problems.join("; "))))
}

/// Step 3: every record's new area, and the area of the record it replaces,
/// must lie within the writer's scope.
fn authorise(checked: &[Checked], existing: &HashMap<String, Option<String>>, scope: &Scope) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    for c in checked {
        if !scope.covers(c.area.as_deref()) {
            problems.push(outside(&c.origin, "the record", c.area.as_deref(), scope).to_string());
        }
        if let Some(old_area) = existing.get(&c.key)
            && !scope.covers(old_area.as_deref())
        {
            problems.push(outside(&c.origin, "the stored record", old_area.as_deref(), scope).to_string());
        }
        if problems.len() >= MAX_REPORTED {
            break;
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(ServiceError::Forbidden(problems.join("; "))) }
}

fn outside(origin: &str, what: &str, area: Option<&str>, scope: &Scope) -> ServiceError {
    ServiceError::Forbidden(format!(
        "{origin}: {what} belongs to org unit `{}`, outside {scope}",
        area.unwrap_or("-")
    ))
}

/// The key a record's key field holds: a string, or an integer written out.
fn key_of(value: &Value, field: &str) -> Option<String> {
    let mut node = value;
    for seg in field.split('.') {
        node = node.get(seg)?;
    }
    match node {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// Step 1 for one record.
fn check_one(
    set: &Dataset,
    schema: &CompiledSchema,
    classes: &HashSet<(String, String)>,
    index: &crate::space::SpaceIndex,
    row: ImportRow,
) -> Result<Checked, Vec<String>> {
    let origin = row.origin;
    let fail = |m: String| vec![format!("{origin}: {m}")];
    let Value::Object(object) = &row.value else {
        return Err(fail("a record must be a JSON object".into()));
    };
    let key = match (&set.key_field, row.key) {
        (Some(field), given) => {
            let Some(own) = key_of(&row.value, field) else {
                return Err(fail(format!("field `{field}` (the data set's key field) must hold a string")));
            };
            if let Some(given) = given
                && given != own
            {
                return Err(fail(format!("field `{field}` holds `{own}`, but the record's key is `{given}`")));
            }
            own
        }
        (None, Some(given)) => given,
        (None, None) => {
            return Err(fail(format!("data set `{}` has no key field, so each record needs a key", set.name)));
        }
    };
    valid_key(&key).map_err(|m| fail(format!("key `{key}`: {m}")))?;
    let origin = if origin.contains(&format!("`{key}`")) { origin } else { format!("{origin} (key `{key}`)") };
    let fail = |m: String| vec![format!("{origin}: {m}")];

    let violations = schema.violations(&row.value);
    if !violations.is_empty() {
        return Err(violations.into_iter().map(|v| format!("{origin}: {v}")).collect());
    }

    let mut units = Vec::new();
    if set.checks.iter().any(|c| c == COMPONENT_CODE) {
        check_component(object, classes, &mut units).map_err(&fail)?;
    }

    // The area: named, or found under the location.
    let area = match object.get("area") {
        Some(Value::String(code)) => {
            if code.is_empty() || code.len() > 14 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail(format!("field `area`: `{code}` is not an org unit code (6-14 digits)")));
            }
            units.push((code.clone(), "area", false));
            Some(code.clone())
        }
        Some(Value::Null) | None => match location(object).map_err(&fail)? {
            Some(p) => index.grid_at(p).map(|g| g.code.clone()),
            None => None,
        },
        Some(_) => return Err(fail("field `area`: must be an org unit code string".into())),
    };
    Ok(Checked { origin, key, value: row.value.to_string(), area, units })
}

/// The record's `location` (`{"lat", "lon"}`), range-checked.
fn location(object: &Map<String, Value>) -> Result<Option<GeoPoint>, String> {
    let Some(loc) = object.get("location") else { return Ok(None) };
    let (Some(lat), Some(lon)) = (loc.get("lat").and_then(Value::as_f64), loc.get("lon").and_then(Value::as_f64)) else {
        return Err("field `location`: must be an object with numbers `lat` and `lon`".into());
    };
    let p = GeoPoint { lat, lon };
    p.validate().map_err(|m| format!("field `location`: {m}"))?;
    Ok(Some(p))
}

/// The 部件 code check.
fn check_component(
    object: &Map<String, Value>,
    classes: &HashSet<(String, String)>,
    units: &mut Vec<(String, &'static str, bool)>,
) -> Result<(), String> {
    let text = |f: &str| object.get(f).and_then(Value::as_str).unwrap_or("");
    let code = text("code");
    if code.len() != 16 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("field `code`: `{code}` is not a 16-digit component code"));
    }
    let (district, major, minor, serial) = (&code[..6], &code[6..8], &code[8..10], &code[10..]);
    if major != text("major") || minor != text("minor") {
        return Err(format!(
            "field `code`: its class digits {major}{minor} differ from `major` `{}` and `minor` `{}`",
            text("major"),
            text("minor")
        ));
    }
    if !classes.contains(&(major.to_owned(), minor.to_owned())) {
        return Err(format!("field `minor`: {major}{minor} is not a known component class (see /api/component-classes)"));
    }
    if serial == "000000" {
        return Err("field `code`: the serial (last 6 digits) starts at 000001".into());
    }
    units.push((district.to_owned(), "code", true));
    Ok(())
}

impl Sharing {
    /// The storage name.
    pub fn name(&self) -> &'static str {
        match self {
            Sharing::Public => "public",
            Sharing::Shared(_) => "shared",
            Sharing::Private => "private",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_cannot_carry_sql() {
        for good in ["class", "location.lat", "a-b_c.d1"] {
            assert!(valid_field(good), "{good}");
        }
        for bad in ["", "a..b", ".a", "a.", "class') OR 1=1 --", "a b", "a\"b", "a$b"] {
            assert!(!valid_field(bad), "{bad}");
        }
    }

    #[test]
    fn scope_covers_by_code_prefix() {
        let street = Scope::Units(vec!["320102001".into()]);
        assert!(street.covers(Some("32010200100101")));
        assert!(street.covers(None));
        assert!(!street.covers(Some("320102002001")));
        assert!(Scope::All.covers(Some("anything")));
    }
}
