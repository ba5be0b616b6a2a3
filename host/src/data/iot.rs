//! Spatio-temporal IoT data (物联感知数据): the sensor registry and the reading
//! time series — batched ingest, latest value, time windows and bucketed
//! aggregates — and the announcement of every stored reading on the bus.
//!
//! Ingest is two steps so that a caller can authorise in between:
//! [`Data::prepare_readings`] validates a whole batch and resolves its sensors
//! without writing anything; [`Data::commit_readings`] writes it in one
//! transaction with multi-row upserts; only then does [`Data::announce_readings`]
//! publish one `iot.reading.<kind>` event per stored reading.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::sync::Semaphore;
use yiwang_wit::events::{self, Payload};
use utoipa::ToSchema;

use super::Data;
use crate::bus::{Bus, Event, GeoPoint};
use crate::db::{Backend, placeholder};
use crate::error::{ServiceError, new_id, valid_id};

/// The most readings one ingest batch may hold.
pub const MAX_BATCH: usize = 10_000;

/// The most readings one window query returns.
pub const MAX_WINDOW: usize = 10_000;

/// The most buckets one aggregate query may span.
pub const MAX_BUCKETS: i64 = 10_000;

/// The latest accepted reading time: the last millisecond of the year 9999. A
/// time beyond it is almost certainly in microseconds or nanoseconds.
pub const MAX_TIME: i64 = 253_402_300_799_999;

/// Rows per multi-row `INSERT` at most. Every statement holds a power of two of
/// rows up to this, so each connection prepares at most a dozen distinct
/// statements. 3 parameters a row keeps even the largest statement far below
/// SQLite's limit of 32,766 parameters (PostgreSQL allows 65,535).
const MAX_CHUNK_ROWS: usize = 1024;

/// Sensor ids per `IN (...)` lookup at most (a power of two, see `lookup_sensors`).
const MAX_LOOKUP_IDS: usize = 256;

/// Readings announced but not yet handed to the bus, at most. Beyond it an
/// ingest waits for the backlog to drain, so a stalled subscriber bounds the
/// host's memory instead of growing it.
const MAX_PENDING_EVENTS: usize = 100_000;

/// A registered sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sensor {
    /// 1-64 characters of `a-z0-9-_.`.
    pub id: String,
    /// A kind from `sensor_kinds`, e.g. `water-level`.
    pub kind: String,
    /// The kind's unit, e.g. `m`.
    pub unit: String,
    /// Latitude, WGS 84.
    pub lat: f64,
    /// Longitude, WGS 84.
    pub lon: f64,
    /// The owning department's code.
    pub department: String,
}

impl Sensor {
    /// Where the sensor stands.
    pub fn location(&self) -> GeoPoint {
        GeoPoint { lat: self.lat, lon: self.lon }
    }
}

/// A kind of sensor the data foundation accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SensorKind {
    pub kind: String,
    pub unit: String,
    pub title: String,
}

/// Which sensors to list.
#[derive(Debug, Clone, Default)]
pub struct SensorFilter {
    pub kind: Option<String>,
    pub department: Option<String>,
    /// Only ids after this one (paging).
    pub after: Option<String>,
    /// At most this many (capped at 10,000).
    pub limit: u32,
}

/// One stored reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Reading {
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    pub value: f64,
}

/// One reading as a client sends it.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReading {
    /// A registered sensor's id.
    pub sensor: String,
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    pub value: f64,
    /// Where a moving sensor (a vehicle's GPS) took the reading, WGS 84
    /// degrees; both or neither. A fixed sensor leaves them out and is
    /// where the registry says.
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
}

impl NewReading {
    /// A reading of a fixed sensor.
    pub fn new(sensor: impl Into<String>, time: i64, value: f64) -> Self {
        NewReading { sensor: sensor.into(), time, value, lat: None, lon: None }
    }

    /// A reading of a moving sensor taken at `at`.
    pub fn at(sensor: impl Into<String>, time: i64, value: f64, at: GeoPoint) -> Self {
        NewReading { sensor: sensor.into(), time, value, lat: Some(at.lat), lon: Some(at.lon) }
    }
}

/// A window of readings, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    pub readings: Vec<Reading>,
    /// Whether more readings lie in the window than were returned; continue
    /// from the last time + 1.
    pub truncated: bool,
}

/// The readings of one bucket, `[start, start + bucket_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Bucket {
    /// Milliseconds since the Unix epoch.
    pub start: i64,
    pub count: i64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    /// (last − first) / hours between them, in the sensor's unit per hour;
    /// none (`null`) with fewer than two readings.
    pub rate_per_hour: Option<f64>,
}

/// Whether a registration created the sensor or updated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Created,
    Updated,
}

/// A validated ingest batch, its sensors resolved; nothing is written yet.
#[derive(Debug)]
pub struct Batch {
    /// The distinct sensors, in order of first use.
    sensors: Vec<Sensor>,
    /// For each sensor, the index in the batch of its first reading.
    first_use: Vec<usize>,
    /// The readings with duplicates of (sensor, time) folded, the last value
    /// winning: (index into `sensors`, time, value).
    rows: Vec<(usize, i64, f64)>,
    /// Where each row's reading was taken, for moving sensors (same order).
    positions: Vec<Option<GeoPoint>>,
    /// How many readings the batch held.
    received: usize,
}

impl Batch {
    /// The distinct sensors with the batch index of each one's first reading.
    pub fn sensors(&self) -> impl Iterator<Item = (usize, &Sensor)> {
        self.first_use.iter().copied().zip(&self.sensors)
    }

    /// How many readings the batch held.
    pub fn len(&self) -> usize {
        self.received
    }

    pub fn is_empty(&self) -> bool {
        self.received == 0
    }
}

/// A committed batch, ready to announce.
#[derive(Debug)]
pub struct Committed(Batch);

impl Committed {
    /// How many readings were accepted (duplicates included).
    pub fn accepted(&self) -> usize {
        self.0.received
    }

    /// How many distinct (sensor, time) rows were written.
    pub fn stored(&self) -> usize {
        self.0.rows.len()
    }

    /// One `iot.reading.<kind>` event per stored reading, in batch order:
    /// payload `{"sensor","value","unit","time"}` (and `"lat","lon"` for a
    /// moving sensor's reading), located where the reading was taken (the
    /// sensor's registered place for a fixed one), timed at the reading.
    pub fn events(&self, source: &str) -> Vec<Event> {
        (0..self.0.rows.len()).map(|i| self.event(i, source)).collect()
    }

    fn event(&self, row: usize, source: &str) -> Event {
        let (s, time, value) = self.0.rows[row];
        let sensor = &self.0.sensors[s];
        let at = self.0.positions[row];
        let payload = events::Reading {
            sensor: sensor.id.clone(),
            value,
            unit: sensor.unit.clone(),
            time: Some(time),
            lat: at.map(|p| p.lat),
            lon: at.map(|p| p.lon),
        };
        Event {
            id: new_id(),
            topic: events::Reading::topic(&sensor.kind),
            source: source.to_owned(),
            time,
            location: Some(at.unwrap_or_else(|| sensor.location())),
            payload: payload.to_json(),
        }
    }
}

/// Keeps announcements in the order they were handed over (each batch's
/// after the previous batch's) and bounds how many wait for the bus.
pub(crate) struct Announcer {
    /// The previous announcement's completion; the next one waits for it.
    tail: parking_lot::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    /// One permit per event not yet handed to the bus.
    pending: Arc<Semaphore>,
}

impl Default for Announcer {
    fn default() -> Self {
        Announcer { tail: parking_lot::Mutex::new(None), pending: Arc::new(Semaphore::new(MAX_PENDING_EVENTS)) }
    }
}

const SENSOR_COLUMNS: &str = "id, kind, unit, lat, lon, department";

fn sensor_from(r: &sqlx::any::AnyRow) -> Result<Sensor, sqlx::Error> {
    Ok(Sensor {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        unit: r.try_get(2)?,
        lat: r.try_get(3)?,
        lon: r.try_get(4)?,
        department: r.try_get(5)?,
    })
}

fn backend_slot(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 0,
        Backend::Postgres => 1,
    }
}

/// `INSERT ... VALUES ($1, $2, $3), ...` upserting `2^exp` readings, built once.
fn upsert_sql(backend: Backend, exp: usize) -> &'static str {
    static SQL: [[OnceLock<String>; 16]; 2] = [const { [const { OnceLock::new() }; 16] }; 2];
    SQL[backend_slot(backend)][exp].get_or_init(|| {
        let rows = 1usize << exp;
        let mut sql = String::with_capacity(64 + rows * 24 + 80);
        sql.push_str("INSERT INTO readings (sensor, time, value) VALUES ");
        for i in 0..rows {
            let p = i * 3;
            if i > 0 {
                sql.push_str(", ");
            }
            let [a, b, c] = [1, 2, 3].map(|k| placeholder(backend, p + k));
            sql.push_str(&format!("({a}, {b}, {c})"));
        }
        sql.push_str(" ON CONFLICT (sensor, time) DO UPDATE SET value = excluded.value");
        sql
    })
}

/// `SELECT ... FROM sensors WHERE id IN ($1, ...)` for `2^exp` ids, built once.
fn lookup_sql(backend: Backend, exp: usize) -> &'static str {
    static SQL: [[OnceLock<String>; 16]; 2] = [const { [const { OnceLock::new() }; 16] }; 2];
    SQL[backend_slot(backend)][exp].get_or_init(|| {
        let ids: Vec<String> = (1..=(1usize << exp)).map(|i| placeholder(backend, i)).collect();
        format!("SELECT {SENSOR_COLUMNS} FROM sensors WHERE id IN ({})", ids.join(", "))
    })
}

/// A half-open window `[from, to)`, checked.
fn check_window(from: i64, to: i64) -> Result<(), ServiceError> {
    if from > to {
        return Err(ServiceError::Invalid(format!("window start {from} is after its end {to}")));
    }
    Ok(())
}

impl Data {
    /// The kinds of sensor the data foundation accepts.
    pub async fn sensor_kinds(&self) -> Result<Vec<SensorKind>, ServiceError> {
        let rows =
            sqlx::query("SELECT kind, unit, title FROM sensor_kinds ORDER BY kind").fetch_all(self.db.pool()).await?;
        rows.iter().map(|r| Ok(SensorKind { kind: r.try_get(0)?, unit: r.try_get(1)?, title: r.try_get(2)? })).collect()
    }

    /// Whether any sensor kind of this name is known.
    pub async fn sensor_kind_exists(&self, kind: &str) -> Result<bool, ServiceError> {
        Ok(self.sensor_kind_unit(kind).await?.is_some())
    }

    /// The unit of a sensor kind, if the kind is known.
    async fn sensor_kind_unit(&self, kind: &str) -> Result<Option<String>, ServiceError> {
        let row = sqlx::query("SELECT unit FROM sensor_kinds WHERE kind = $1")
            .bind(kind)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// A sensor by id.
    pub async fn sensor(&self, id: &str) -> Result<Option<Sensor>, ServiceError> {
        let row = sqlx::query("SELECT id, kind, unit, lat, lon, department FROM sensors WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(sensor_from).transpose()?)
    }

    /// Sensors by id, filtered by kind and department.
    pub async fn sensors(&self, f: &SensorFilter) -> Result<Vec<Sensor>, ServiceError> {
        let mut sql = format!("SELECT {SENSOR_COLUMNS} FROM sensors WHERE 1 = 1");
        let mut binds: Vec<&str> = Vec::new();
        for (column, value) in [("kind", &f.kind), ("department", &f.department)] {
            if let Some(v) = value {
                binds.push(v);
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        if let Some(after) = &f.after {
            binds.push(after);
            sql.push_str(&format!(" AND id > ${}", binds.len()));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", binds.len() + 1));
        // Only fixed column names and numbered placeholders were appended; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let rows = q.bind(i64::from(f.limit.min(10_000))).fetch_all(self.db.pool()).await?;
        Ok(rows.iter().map(sensor_from).collect::<Result<_, _>>()?)
    }

    /// Register a sensor, or update it. The kind must be known and the unit
    /// must be the kind's; the location must be on Earth; the department must
    /// exist. A sensor that has readings keeps its kind.
    pub async fn register_sensor(&self, s: &Sensor) -> Result<Registered, ServiceError> {
        if !valid_id(&s.id) {
            return Err(ServiceError::Invalid("id: must be 1-64 characters of a-z, 0-9, `-`, `_`, `.`".into()));
        }
        let Some(unit) = self.sensor_kind_unit(&s.kind).await? else {
            return Err(ServiceError::Invalid(format!("kind: unknown sensor kind `{}`", s.kind)));
        };
        if s.unit != unit {
            return Err(ServiceError::Invalid(format!(
                "unit: `{}` is not the unit of kind `{}`, which is `{unit}`",
                s.unit, s.kind
            )));
        }
        s.location().validate().map_err(ServiceError::Invalid)?;
        let department = sqlx::query("SELECT 1 FROM departments WHERE code = $1")
            .bind(&s.department)
            .fetch_optional(self.db.pool())
            .await?;
        if department.is_none() {
            return Err(ServiceError::Invalid(format!("department: unknown department `{}`", s.department)));
        }
        let existing = self.sensor(&s.id).await?;
        if let Some(old) = &existing
            && old.kind != s.kind
        {
            let any = sqlx::query("SELECT 1 FROM readings WHERE sensor = $1 LIMIT 1")
                .bind(&s.id)
                .fetch_optional(self.db.pool())
                .await?;
            if any.is_some() {
                return Err(ServiceError::Invalid(format!(
                    "kind: sensor `{}` has readings of kind `{}`; register the `{}` sensor under a new id",
                    s.id, old.kind, s.kind
                )));
            }
        }
        sqlx::query(
            "INSERT INTO sensors (id, kind, unit, lat, lon, department) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, unit = excluded.unit, lat = excluded.lat, \
             lon = excluded.lon, department = excluded.department",
        )
        .bind(&s.id)
        .bind(&s.kind)
        .bind(&s.unit)
        .bind(s.lat)
        .bind(s.lon)
        .bind(&s.department)
        .execute(self.db.writer())
        .await?;
        Ok(if existing.is_some() { Registered::Updated } else { Registered::Created })
    }

    /// Register a sensor (or update it); see [`Data::register_sensor`].
    pub async fn upsert_sensor(&self, s: &Sensor) -> Result<(), ServiceError> {
        self.register_sensor(s).await.map(|_| ())
    }

    /// Validate a batch and resolve its sensors, writing nothing. Every reading
    /// needs a registered sensor, a time in `0..=MAX_TIME` and a finite value.
    /// The error names the first bad reading by index, e.g.
    /// ``readings[17].sensor: unknown sensor `x` ``, and counts the others.
    pub async fn prepare_readings(&self, readings: &[NewReading]) -> Result<Batch, ServiceError> {
        if readings.len() > MAX_BATCH {
            return Err(ServiceError::Invalid(format!(
                "readings: {} readings in one batch; at most {MAX_BATCH}",
                readings.len()
            )));
        }
        // Problems as (index, text); the first by index is reported.
        let mut problems: Vec<(usize, String)> = Vec::new();
        // Each distinct sensor id gets a number, in order of first use.
        let mut numbers: HashMap<&str, usize> = HashMap::new();
        let mut ids: Vec<&str> = Vec::new();
        let mut first_use: Vec<usize> = Vec::new();
        let mut number_of: Vec<usize> = Vec::with_capacity(readings.len());
        for (i, r) in readings.iter().enumerate() {
            if !(0..=MAX_TIME).contains(&r.time) {
                problems.push((
                    i,
                    format!("readings[{i}].time: {} is not milliseconds since 1970 before the year 10000", r.time),
                ));
            }
            if !r.value.is_finite() {
                problems.push((i, format!("readings[{i}].value: {} is not a finite number", r.value)));
            }
            match (r.lat, r.lon) {
                (None, None) => {}
                (Some(lat), Some(lon)) => {
                    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
                        problems.push((i, format!("readings[{i}].lat: {lat} is not a latitude (-90..=90)")));
                    }
                    if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
                        problems.push((i, format!("readings[{i}].lon: {lon} is not a longitude (-180..=180)")));
                    }
                }
                (Some(_), None) => problems.push((i, format!("readings[{i}].lon: missing; a position needs lat and lon"))),
                (None, Some(_)) => problems.push((i, format!("readings[{i}].lat: missing; a position needs lat and lon"))),
            }
            let n = *numbers.entry(&r.sensor).or_insert_with(|| {
                ids.push(&r.sensor);
                first_use.push(i);
                ids.len() - 1
            });
            number_of.push(n);
        }
        let mut found: HashMap<String, Sensor> =
            self.lookup_sensors(&ids).await?.into_iter().map(|s| (s.id.clone(), s)).collect();
        let resolved: Vec<Option<Sensor>> = ids.iter().map(|id| found.remove(*id)).collect();
        for (i, r) in readings.iter().enumerate() {
            if resolved[number_of[i]].is_none() {
                problems.push((i, format!("readings[{i}].sensor: unknown sensor `{}`", r.sensor)));
            }
        }
        if !problems.is_empty() {
            let mut bad: Vec<usize> = problems.iter().map(|(i, _)| *i).collect();
            bad.sort_unstable();
            bad.dedup();
            let (_, first) = problems.into_iter().min_by_key(|(i, _)| *i).expect("a problem");
            return Err(ServiceError::Invalid(match bad.len() {
                1 => format!("{first} (nothing was stored)"),
                n => format!("{first} (and {} more invalid readings; nothing was stored)", n - 1),
            }));
        }
        let sensors: Vec<Sensor> = resolved.into_iter().map(|s| s.expect("every sensor was found")).collect();
        // Fold duplicate (sensor, time) pairs: the last value wins, in the place of the first.
        let mut rows: Vec<(usize, i64, f64)> = Vec::with_capacity(readings.len());
        let mut positions: Vec<Option<GeoPoint>> = Vec::with_capacity(readings.len());
        let mut seen: HashMap<(usize, i64), usize> = HashMap::with_capacity(readings.len());
        for (r, &s) in readings.iter().zip(&number_of) {
            let at = r.lat.zip(r.lon).map(|(lat, lon)| GeoPoint { lat, lon });
            match seen.entry((s, r.time)) {
                Entry::Occupied(o) => {
                    rows[*o.get()].2 = r.value;
                    positions[*o.get()] = at;
                }
                Entry::Vacant(v) => {
                    v.insert(rows.len());
                    rows.push((s, r.time, r.value));
                    positions.push(at);
                }
            }
        }
        Ok(Batch { sensors, first_use, rows, positions, received: readings.len() })
    }

    /// The registered sensors among `ids` (distinct), in no particular order.
    async fn lookup_sensors(&self, ids: &[&str]) -> Result<Vec<Sensor>, ServiceError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_LOOKUP_IDS) {
            // One statement of the next power of two of placeholders, the
            // last id repeated to fill it: one round trip per chunk, and
            // still only a few distinct statements to prepare.
            let exp = chunk.len().next_power_of_two().trailing_zeros() as usize;
            let mut q = sqlx::query(lookup_sql(self.db.backend(), exp));
            for i in 0..1 << exp {
                q = q.bind(chunk[i.min(chunk.len() - 1)]);
            }
            for r in q.fetch_all(self.db.pool()).await? {
                out.push(sensor_from(&r)?);
            }
        }
        Ok(out)
    }

    /// Write a prepared batch in one transaction: all of it or, on any error,
    /// none of it. A reading for a (sensor, time) already stored replaces it.
    pub async fn commit_readings(&self, batch: Batch) -> Result<Committed, ServiceError> {
        if batch.rows.is_empty() {
            return Ok(Committed(batch));
        }
        let mut tx = self.db.begin_write().await?;
        for chunk in crate::db::runs(&batch.rows, MAX_CHUNK_ROWS) {
            let exp = chunk.len().trailing_zeros() as usize;
            let mut q = sqlx::query(upsert_sql(self.db.backend(), exp));
            for &(s, time, value) in chunk {
                q = q.bind(batch.sensors[s].id.as_str()).bind(time).bind(value);
            }
            q.execute(&mut *tx).await?;
        }
        // Moving sensors' positions: few rows (vehicles), one statement each.
        let upsert = "INSERT INTO reading_positions (sensor, time, lat, lon) VALUES ($1, $2, $3, $4) \
                      ON CONFLICT (sensor, time) DO UPDATE SET lat = excluded.lat, lon = excluded.lon";
        for (&(s, time, _), at) in batch.rows.iter().zip(&batch.positions) {
            if let Some(at) = at {
                sqlx::query(upsert).bind(batch.sensors[s].id.as_str()).bind(time).bind(at.lat).bind(at.lon).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(Committed(batch))
    }

    /// Publish a committed batch's events (see [`Committed::events`]) from a
    /// task of their own, after those of earlier batches, so that a slow
    /// subscriber does not hold the caller. The events are made in that task
    /// too. Waits only while more than `MAX_PENDING_EVENTS` events are still
    /// to be handed to the bus.
    pub async fn announce_readings(
        &self,
        bus: Arc<dyn Bus>,
        source: String,
        committed: Committed,
    ) -> tokio::task::JoinHandle<()> {
        let wanted = committed.stored().min(MAX_PENDING_EVENTS) as u32;
        let permits =
            self.announcer.pending.clone().acquire_many_owned(wanted).await.expect("the semaphore is never closed");
        let (done, finished) = tokio::sync::oneshot::channel();
        let previous = self.announcer.tail.lock().replace(finished);
        tokio::spawn(async move {
            if let Some(previous) = previous {
                // An error means the earlier task is gone (its runtime ended); go on.
                let _ = previous.await;
            }
            for i in 0..committed.stored() {
                if let Err(e) = bus.publish(committed.event(i, &source)).await {
                    tracing::error!("could not announce a reading: {e}");
                }
            }
            drop(permits);
            let _ = done.send(());
        })
    }

    /// Validate, store and announce a batch: [`Data::prepare_readings`],
    /// [`Data::commit_readings`] and [`Data::announce_readings`] in a row.
    /// Returns how many readings were accepted.
    pub async fn ingest(
        &self,
        readings: &[NewReading],
        bus: Arc<dyn Bus>,
        source: &str,
    ) -> Result<usize, ServiceError> {
        let committed = self.commit_readings(self.prepare_readings(readings).await?).await?;
        let accepted = committed.accepted();
        self.announce_readings(bus, source.to_owned(), committed).await;
        Ok(accepted)
    }

    /// Store readings of one sensor in one transaction (not announced).
    pub async fn insert_readings(&self, sensor: &str, readings: &[Reading]) -> Result<(), ServiceError> {
        let batch: Vec<NewReading> =
            readings.iter().map(|r| NewReading::new(sensor, r.time, r.value)).collect();
        self.commit_readings(self.prepare_readings(&batch).await?).await?;
        Ok(())
    }

    /// The newest reading of a sensor.
    pub async fn latest(&self, sensor: &str) -> Result<Option<Reading>, ServiceError> {
        let row = sqlx::query("SELECT time, value FROM readings WHERE sensor = $1 ORDER BY time DESC LIMIT 1")
            .bind(sensor)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(Reading { time: r.try_get(0)?, value: r.try_get(1)? }),
            None => None,
        })
    }

    /// Readings with `from <= time < to`, oldest first, at most `limit` (capped
    /// at `MAX_WINDOW`).
    pub async fn window(&self, sensor: &str, from: i64, to: i64, limit: usize) -> Result<Window, ServiceError> {
        check_window(from, to)?;
        let limit = limit.min(MAX_WINDOW);
        let rows = sqlx::query(
            "SELECT time, value FROM readings WHERE sensor = $1 AND time >= $2 AND time < $3 ORDER BY time LIMIT $4",
        )
        .bind(sensor)
        .bind(from)
        .bind(to)
        .bind(limit as i64 + 1)
        .fetch_all(self.db.pool())
        .await?;
        let mut readings: Vec<Reading> = rows
            .iter()
            .map(|r| Ok(Reading { time: r.try_get(0)?, value: r.try_get(1)? }))
            .collect::<Result<_, sqlx::Error>>()?;
        let truncated = readings.len() > limit;
        readings.truncate(limit);
        Ok(Window { readings, truncated })
    }

    /// Readings with `from <= time < to`, oldest first, at most 10,000.
    pub async fn readings(&self, sensor: &str, from: i64, to: i64) -> Result<Vec<Reading>, ServiceError> {
        Ok(self.window(sensor, from, to, MAX_WINDOW).await?.readings)
    }

    /// Aggregates of `from <= time < to` in buckets of `bucket_ms` counted
    /// from `from` (bucket `i` is `[from + i·bucket_ms, from + (i+1)·bucket_ms)`;
    /// `from` must not be negative),
    /// oldest first; buckets without readings are left out. Computed in SQL:
    /// one grouped scan of the window, then the first and last reading of each
    /// bucket by primary key for the rate of change.
    pub async fn aggregate(
        &self,
        sensor: &str,
        from: i64,
        to: i64,
        bucket_ms: i64,
    ) -> Result<Vec<Bucket>, ServiceError> {
        check_window(from, to)?;
        if from < 0 {
            return Err(ServiceError::Invalid(format!("from: {from} is before 1970")));
        }
        if bucket_ms <= 0 {
            return Err(ServiceError::Invalid(format!(
                "bucket_ms: {bucket_ms} is not a positive number of milliseconds"
            )));
        }
        // No reading is later than MAX_TIME; a later end changes nothing but the arithmetic.
        let to = to.min(MAX_TIME + 1);
        let span = to - from;
        let buckets = span / bucket_ms + i64::from(span % bucket_ms != 0);
        if buckets > MAX_BUCKETS {
            return Err(ServiceError::Invalid(format!(
                "bucket_ms: the window spans {buckets} buckets of {bucket_ms} ms; at most {MAX_BUCKETS}"
            )));
        }
        // `time - from` is never negative here, so integer division floors in
        // both SQLite and PostgreSQL.
        let rows = sqlx::query(
            "SELECT b.start, b.n, b.lo, b.hi, b.mean, f.time, f.value, l.time, l.value FROM \
             (SELECT ((time - $2) / $4) * $4 + $2 AS start, COUNT(*) AS n, MIN(value) AS lo, MAX(value) AS hi, \
                     AVG(value) AS mean, MIN(time) AS t0, MAX(time) AS t1 \
              FROM readings WHERE sensor = $1 AND time >= $2 AND time < $3 GROUP BY 1) b \
             JOIN readings f ON f.sensor = $1 AND f.time = b.t0 \
             JOIN readings l ON l.sensor = $1 AND l.time = b.t1 \
             ORDER BY b.start",
        )
        .bind(sensor)
        .bind(from)
        .bind(to)
        .bind(bucket_ms)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let count: i64 = r.try_get(1)?;
                let (t0, v0): (i64, f64) = (r.try_get(5)?, r.try_get(6)?);
                let (t1, v1): (i64, f64) = (r.try_get(7)?, r.try_get(8)?);
                let rate_per_hour = (count >= 2 && t1 > t0).then(|| (v1 - v0) / ((t1 - t0) as f64 / 3_600_000.0));
                Ok(Bucket {
                    start: r.try_get(0)?,
                    count,
                    min: r.try_get(2)?,
                    max: r.try_get(3)?,
                    avg: r.try_get(4)?,
                    rate_per_hour,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_have_the_right_placeholders() {
        let pg = Backend::Postgres;
        assert_eq!(
            upsert_sql(pg, 1),
            "INSERT INTO readings (sensor, time, value) VALUES ($1, $2, $3), ($4, $5, $6) \
             ON CONFLICT (sensor, time) DO UPDATE SET value = excluded.value"
        );
        assert!(
            upsert_sql(pg, 10)
                .ends_with("($3070, $3071, $3072) ON CONFLICT (sensor, time) DO UPDATE SET value = excluded.value")
        );
        assert_eq!(
            lookup_sql(pg, 2),
            "SELECT id, kind, unit, lat, lon, department FROM sensors WHERE id IN ($1, $2, $3, $4)"
        );
        assert_eq!(
            upsert_sql(Backend::Sqlite, 1),
            "INSERT INTO readings (sensor, time, value) VALUES (?, ?, ?), (?, ?, ?) \
             ON CONFLICT (sensor, time) DO UPDATE SET value = excluded.value"
        );
        assert_eq!(
            lookup_sql(Backend::Sqlite, 1),
            "SELECT id, kind, unit, lat, lon, department FROM sensors WHERE id IN (?, ?)"
        );
    }
}
