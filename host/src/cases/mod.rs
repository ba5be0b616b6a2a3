//! Cases (案件) and warnings. Every new case (from any channel, plugins
//! included, through the one intake in [`engine`]) and every warning is stored
//! first and then published on the bus (`case.reported`,
//! `warning.<category>`), so handlers can react to it.

pub mod alerts;
pub mod deadlines;
pub mod dedup;
pub mod dedup_rules;
pub mod engine;
pub(crate) mod history;
pub mod intake;
pub mod lifecycle;
pub mod public;
pub mod split;
pub mod suggest;
pub mod transition;
pub mod warnings;

use std::sync::Arc;

use serde::Serialize;
use yiwang_wit::events::{MsgType, Payload, WarningInfo, WarningRaised};
use sqlx::Row;

use crate::audit::Audit;
use crate::bus::{Bus, Event, GeoPoint};
use crate::clock::SharedClock;
use crate::db::Db;
use crate::error::{ServiceError, new_id};
use crate::space::Space;

/// What opens a case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseDraft {
    pub category_code: String,
    pub title: String,
    pub description: String,
    pub location: Option<GeoPoint>,
    /// The channel the case came in by, as the plugin says.
    pub channel: engine::Channel,
    pub evidence: Vec<String>,
}

/// A CAP-aligned warning as stored and published.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub category: String,
    pub event: String,
    pub urgency: String,
    pub severity: String,
    pub certainty: String,
    pub area: serde_json::Value,
    pub headline: String,
    pub description: String,
    pub instruction: String,
    pub parameters: Vec<(String, String)>,
}

/// What every warning needs, whoever raises it.
fn check_warning(w: &Warning) -> Result<(), ServiceError> {
    if w.headline.trim().is_empty() || w.event.trim().is_empty() {
        return Err(ServiceError::Invalid("a warning needs an event and a headline".into()));
    }
    Ok(())
}

fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl CaseDraft {
    fn validate(&self) -> Result<(), ServiceError> {
        let code = &self.category_code;
        if code.is_empty() || code.len() > 16 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ServiceError::Invalid(format!("category-code `{code}` must be 1-16 digits")));
        }
        if self.title.trim().is_empty() || self.title.chars().count() > 200 {
            return Err(ServiceError::Invalid("title must be 1-200 characters".into()));
        }
        if self.description.len() > 64 * 1024 {
            return Err(ServiceError::Invalid("description is longer than 64 KiB".into()));
        }
        if let Some(p) = self.location {
            p.validate().map_err(|m| ServiceError::Invalid(format!("location: {m}")))?;
        }
        if let Some(bad) = self.evidence.iter().find(|d| !is_digest(d)) {
            return Err(ServiceError::Invalid(format!("evidence `{bad}` is not a lowercase sha256 digest")));
        }
        Ok(())
    }
}

/// The case service (the part plugins reach; the lifecycle engine builds on it).
pub struct Cases {
    db: Db,
    clock: SharedClock,
    bus: Arc<dyn Bus>,
    space: Arc<Space>,
    audit: Arc<Audit>,
    /// Open cases for deduplication, loaded from storage on first use.
    dedup: intake::DedupCell,
    /// Held while the deduplication rules are replaced.
    dedup_rules_writer: tokio::sync::Mutex<()>,
    /// The intake writer, started on first use.
    writer: intake::WriterCell,
    /// Step limits and calendars, as last read.
    limits: deadlines::Cached<deadlines::StepLimits>,
    calendars: deadlines::Cached<deadlines::Calendars>,
    category_cache: deadlines::Cached<std::collections::BTreeMap<String, String>>,
}

impl Cases {
    /// The case service; `space` places reports in their grid cell, and every
    /// report and transition is recorded in `audit` in the transaction that
    /// stores it.
    pub fn new(db: Db, clock: SharedClock, bus: Arc<dyn Bus>, space: Arc<Space>, audit: Arc<Audit>) -> Self {
        Cases {
            db,
            clock,
            bus,
            space,
            audit,
            dedup: Default::default(),
            dedup_rules_writer: Default::default(),
            writer: Default::default(),
            limits: Default::default(),
            calendars: Default::default(),
            category_cache: Default::default(),
        }
    }

    /// Open a case for a plugin, through the one intake, on the channel the
    /// draft names; returns the case id.
    pub async fn open(&self, draft: &CaseDraft, opened_by: &str) -> Result<String, ServiceError> {
        draft.validate()?;
        let report = engine::NewReport {
            channel: draft.channel,
            idempotency_key: None,
            category_code: draft.category_code.clone(),
            title: Some(draft.title.clone()),
            description: if draft.description.trim().is_empty() { draft.title.clone() } else { draft.description.clone() },
            location: draft.location,
            address: None,
            evidence: draft.evidence.clone(),
            caller: None,
        };
        Ok(self.intake(&report, Some(opened_by)).await?.case)
    }

    /// Add a note or an evidence reference to an existing case.
    pub async fn add_note(&self, case_id: &str, author: &str, kind: &str, body: &str) -> Result<(), ServiceError> {
        if kind == "evidence" && !is_digest(body) {
            return Err(ServiceError::Invalid(format!("`{body}` is not a lowercase sha256 digest")));
        }
        if body.trim().is_empty() || body.len() > 64 * 1024 {
            return Err(ServiceError::Invalid("note must be 1 byte to 64 KiB".into()));
        }
        let mut tx = self.db.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM cases WHERE id = $1").bind(case_id).fetch_optional(&mut *tx).await?;
        if exists.is_none() {
            return Err(ServiceError::NotFound(format!("no case `{case_id}`")));
        }
        insert_note(&mut tx, case_id, self.clock.now_ms(), author, kind, body).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The status of a case, if it exists.
    pub async fn status(&self, case_id: &str) -> Result<Option<String>, ServiceError> {
        let row = sqlx::query("SELECT status FROM cases WHERE id = $1").bind(case_id).fetch_optional(self.db.pool()).await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Store a warning and publish it on `warning.<category>`; returns its id.
    pub async fn raise_warning(&self, source: &str, w: &Warning, location: Option<GeoPoint>) -> Result<String, ServiceError> {
        check_warning(w)?;
        let id = new_id();
        let message = warnings::Message { id: &id, source, msg_type: MsgType::Alert, root: &id, position: 0, refs: &[], note: "" };
        self.insert_warning(&message, w).await?;
        self.announce_warning(&id, source, w, location, MsgType::Alert, Vec::new()).await?;
        Ok(id)
    }

    /// Publish a stored warning (an Alert or an Update) on `warning.<category>`.
    async fn announce_warning(
        &self,
        id: &str,
        source: &str,
        w: &Warning,
        location: Option<GeoPoint>,
        msg_type: MsgType,
        references: Vec<String>,
    ) -> Result<(), ServiceError> {
        let (communities, streets) = self.covered(&w.area);
        let info: WarningInfo = serde_json::from_value(serde_json::to_value(w).expect("a warning serialises"))
            .map_err(|e| anyhow::anyhow!("warning `{id}` does not fit the event contract: {e}"))?;
        let payload = WarningRaised { warning: id.to_owned(), source: source.to_owned(), info, msg_type, references, communities, streets };
        self.announce(&payload.topic(), source, location, &payload).await;
        Ok(())
    }

    /// The communities and streets whose grid cells a warning's area (its
    /// circles and polygons, as stored) reaches, each list sorted by code:
    /// who a warning must be fanned out to.
    fn covered(&self, area: &serde_json::Value) -> (Vec<String>, Vec<String>) {
        use crate::space::Level;
        let index = self.space.index();
        let mut grids = Vec::new();
        for shape in area.get("shapes").and_then(|s| s.as_array()).into_iter().flatten() {
            if let Some(c) = shape.get("circle") {
                let (Some(lat), Some(lon), Some(r)) =
                    (c["lat"].as_f64(), c["lon"].as_f64(), c["radius_km"].as_f64())
                else {
                    continue;
                };
                grids.extend(index.grids_within_radius(GeoPoint { lat, lon }, r * 1000.0));
            } else if let Some(ring) = shape.get("polygon").and_then(|p| p.as_array()) {
                let coords: Vec<geo::Coord<f64>> = ring
                    .iter()
                    .filter_map(|p| Some(geo::coord! { x: p.get(1)?.as_f64()?, y: p.get(0)?.as_f64()? }))
                    .collect();
                if coords.len() >= 4 {
                    grids.extend(index.grids_within_polygon(&geo::Polygon::new(coords.into(), Vec::new())));
                }
            }
        }
        let mut communities = std::collections::BTreeSet::new();
        let mut streets = std::collections::BTreeSet::new();
        for grid in grids {
            for a in index.chain(&grid.code) {
                match a.level {
                    Level::Community => communities.insert(a.code.clone()),
                    Level::Street => streets.insert(a.code.clone()),
                    _ => false,
                };
            }
        }
        (communities.into_iter().collect(), streets.into_iter().collect())
    }

    /// Publish `payload` on `topic`, one of the topics its contract type travels on.
    async fn announce<P: Payload>(&self, topic: &str, source: &str, location: Option<GeoPoint>, payload: &P) {
        debug_assert!(P::carried_on(topic), "{topic} does not carry {}", P::TOPIC);
        announce(&*self.bus, &self.clock, topic, source, location, payload.to_json()).await;
    }
}

/// Publish what was just committed; a bus fault is logged, not undone.
async fn announce(bus: &dyn Bus, clock: &SharedClock, topic: &str, source: &str, location: Option<GeoPoint>, payload: String) {
    let event = Event {
        id: new_id(),
        topic: topic.to_owned(),
        source: source.to_owned(),
        time: clock.now_ms(),
        location,
        payload,
    };
    if let Err(e) = bus.publish(event).await {
        tracing::error!(topic, "could not announce: {e}");
    }
}

async fn insert_note(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    case_id: &str,
    at: i64,
    author: &str,
    kind: &str,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO case_notes (case_id, at, author, kind, body) VALUES ($1, $2, $3, $4, $5)")
        .bind(case_id)
        .bind(at)
        .bind(author)
        .bind(kind)
        .bind(body)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
