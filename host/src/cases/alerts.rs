//! CAP alerts in and out.
//!
//! - *Import* (`POST /api/cap/alerts`, XML): an `Alert` becomes a warning (one
//!   per `info`) and a case on the `cap-alert` channel for every grid cell its
//!   areas cover; an `Update` raises the updated warning and opens cases for
//!   grid cells the chain did not cover yet; a `Cancel` rejects the chain's
//!   cases still waiting to be accepted. Update and Cancel find the chain
//!   through `references`. Importing the same alert again changes nothing.
//! - Only an alert whose `status` is `Actual` acts. CAP 1.2 makes the others
//!   not actionable here (`Exercise` is for designated exercise participants,
//!   `System` for the alerting network itself, `Test` is to be disregarded,
//!   `Draft` is a preliminary template): they are stored and answered with
//!   their status, and raise no warning, open, update or cancel no case. An
//!   `Actual` Update or Cancel follows only `Actual` alerts.
//! - Who may import: the [`Importer`]'s area (the scope of its dispatcher,
//!   leader and operator roles) must cover every grid cell the alert reaches
//!   — the cells its areas cover and, for an Update or Cancel, the cells of
//!   the chain's cases (an `info` covering no cell is for a city-level role
//!   alone); an Update or Cancel must come from the `sender` of the
//!   alert it references. A sender on the operator's list of trusted senders
//!   (table `cap_trusted_senders`) is imported by the command centre alone (a
//!   role held at city level), so no one else speaks, updates or cancels in
//!   its name. Everything is checked before anything is written.
//!   The cases it opens and the moves a Cancel makes are recorded as the
//!   importer's.
//! - *Export* (`GET /api/warnings/{id}/cap`): a warning a plugin raised, as a
//!   CAP 1.2 alert.
//!
//! A case's category is the info's parameter `category_code` when it names a
//! known category, `020604` (其他) otherwise.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::Cases;
use crate::identity::Scope;
use crate::protocols::cap::{self, Alert, Area, CapEnum, CapTime, Category, Certainty, Circle, Info, MsgType, Severity, Status, Urgency};
use super::engine::{Channel, Move, NewReport, Who};
use super::lifecycle::{Action, Stage};
use crate::bus::GeoPoint;
use crate::error::ServiceError;

/// The category of a case opened for an alert without a `category_code` parameter.
const FALLBACK_CATEGORY: &str = "020604";
/// The `sender` of the CAP alerts the host exports for warnings plugins raised.
pub const CAP_SENDER: &str = "yiwang";
/// The most grid cells one alert may open cases for.
const MAX_GRIDS: usize = 2000;

/// Who imports an alert: the caller as recorded (`user:<id>`) and the part
/// of the city their importing roles cover.
#[derive(Debug, Clone)]
pub struct Importer {
    pub actor: String,
    pub scope: Scope,
}

/// The CAP senders the operator trusts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrustedSenders {
    pub senders: Vec<TrustedSender>,
}

/// A trusted CAP sender, as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrustedSender {
    /// The alert's `sender`, exactly.
    pub sender: String,
    pub note: String,
    /// Who put it on the list (`user:<id>`), and when (epoch ms).
    pub added_by: String,
    pub added: i64,
}

/// The list of trusted CAP senders to store, replacing the one before.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrustedSenders {
    pub senders: Vec<NewTrustedSender>,
}

/// A sender to trust.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrustedSender {
    /// The alert's `sender`, exactly: 1-256 characters.
    pub sender: String,
    /// Who it is (市气象台, …).
    #[serde(default)]
    pub note: String,
}

/// What importing an alert did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportedAlert {
    /// `sender/identifier`.
    pub alert: String,
    pub msg_type: String,
    /// The alert's CAP `status`; only `Actual` opens, updates or cancels cases.
    pub status: String,
    /// The first alert of its chain.
    pub root: String,
    pub warnings: Vec<String>,
    /// Cases opened, by id.
    pub cases_opened: Vec<String>,
    /// Cases rejected by a Cancel.
    pub cases_cancelled: Vec<String>,
    /// `false` when the alert had been imported before and nothing changed.
    pub created: bool}

fn key(sender: &str, identifier: &str) -> String {
    format!("{sender}/{identifier}")
}

impl Cases {
    /// Import one CAP alert for `importer` (see the module).
    pub async fn import_alert(&self, xml: &str, importer: &Importer) -> Result<ImportedAlert, AlertError> {
        let alert = cap::parse(xml).map_err(|e| AlertError::Format(e.to_string()))?;
        let this = key(&alert.sender, &alert.identifier);
        let actual = alert.status == Status::Actual;
        let root = match alert.msg_type {
            MsgType::Alert => this.clone(),
            _ => match self.referenced_root(&alert, actual).await? {
                Some(root) => root,
                // Not actionable: kept as its own chain when it names nothing stored.
                None if !actual => this.clone(),
                None => {
                    return Err(ServiceError::Invalid(format!(
                        "references: names no imported Actual alert ({})",
                        alert.referenced_identifiers().join(", ")
                    ))
                    .into());
                }
            },
        };
        let mut grids = Vec::new();
        for (i, info) in alert.infos.iter().enumerate() {
            let covered = self.grids_of(info)?;
            // An info that names no grid cell has a reach no area check can
            // bound (its warning still goes out): the command centre's alone.
            if covered.is_empty() && importer.scope != Scope::All && matches!(alert.msg_type, MsgType::Alert | MsgType::Update) {
                return Err(ServiceError::Forbidden(format!(
                    "info[{i}]: its area covers no grid cell, so its reach is not within {}; such an alert is imported by the command centre (a role held at city level)",
                    importer.scope
                ))
                .into());
            }
            grids.extend(covered);
        }
        self.check_reach(&alert, &root, &grids, importer).await?;

        let known = sqlx::query("SELECT msg_type, root, status FROM cap_alerts WHERE sender = $1 AND identifier = $2")
            .bind(&alert.sender)
            .bind(&alert.identifier)
            .fetch_optional(self.db.pool())
            .await
            .map_err(ServiceError::from)?;
        if let Some(r) = known {
            return Ok(ImportedAlert {
                alert: this,
                msg_type: r.try_get(0).map_err(ServiceError::from)?,
                status: r.try_get(2).map_err(ServiceError::from)?,
                root: r.try_get(1).map_err(ServiceError::from)?,
                warnings: vec![],
                cases_opened: vec![],
                cases_cancelled: vec![],
                created: false});
        }

        let mut out = ImportedAlert {
            alert: this.clone(),
            msg_type: alert.msg_type.as_str().to_owned(),
            status: alert.status.as_str().to_owned(),
            root: root.clone(),
            warnings: vec![],
            cases_opened: vec![],
            cases_cancelled: vec![],
            created: true};
        match alert.msg_type {
            _ if !actual => {}
            MsgType::Alert | MsgType::Update => {
                for info in &alert.infos {
                    out.warnings.push(self.raise_cap_warning(&alert, info).await?);
                    out.cases_opened.extend(self.open_for_area(info, &root, importer).await?);
                }
            }
            MsgType::Cancel => out.cases_cancelled = self.cancel_chain(&root, &this, &importer.actor).await?,
            MsgType::Ack | MsgType::Error => {}
        }
        sqlx::query(
            "INSERT INTO cap_alerts (sender, identifier, sent, msg_type, status, root, warning_id, xml, received, cancelled) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (sender, identifier) DO NOTHING",
        )
        .bind(&alert.sender)
        .bind(&alert.identifier)
        .bind(alert.sent.epoch_ms)
        .bind(alert.msg_type.as_str())
        .bind(alert.status.as_str())
        .bind(&root)
        .bind(out.warnings.first())
        .bind(xml)
        .bind(self.clock.now_ms())
        .bind(i64::from(actual && alert.msg_type == MsgType::Cancel))
        .execute(self.db.writer())
        .await
        .map_err(ServiceError::from)?;
        Ok(out)
    }

    /// The root of the chain the first stored alert in `alert`'s references
    /// belongs to (only `Actual` alerts when `actual`); `Forbidden` when that
    /// alert came from another sender.
    async fn referenced_root(&self, alert: &Alert, actual: bool) -> Result<Option<String>, ServiceError> {
        for r in &alert.references {
            let row = sqlx::query("SELECT root, status FROM cap_alerts WHERE sender = $1 AND identifier = $2")
                .bind(&r.sender)
                .bind(&r.identifier)
                .fetch_optional(self.db.pool())
                .await?;
            let Some(row) = row else { continue };
            let status: String = row.try_get(1)?;
            if actual && status != Status::Actual.as_str() {
                continue;
            }
            if r.sender != alert.sender {
                return Err(ServiceError::Forbidden(format!(
                    "references: alert `{}` was sent by `{}`; an {} of it comes from the same sender, not `{}`",
                    r.identifier,
                    r.sender,
                    alert.msg_type.as_str(),
                    alert.sender
                )));
            }
            return Ok(Some(row.try_get(0)?));
        }
        Ok(None)
    }

    /// Refuse an alert reaching a grid cell outside the importer's area: the
    /// cells of its areas, and for an Update or Cancel those of its chain.
    async fn check_reach(&self, alert: &Alert, root: &str, grids: &[(String, GeoPoint)], importer: &Importer) -> Result<(), ServiceError> {
        let trusted = sqlx::query("SELECT 1 FROM cap_trusted_senders WHERE sender = $1")
            .bind(&alert.sender)
            .fetch_optional(self.db.pool())
            .await?
            .is_some();
        if trusted && importer.scope != Scope::All {
            return Err(ServiceError::Forbidden(format!(
                "sender: `{}` is a trusted sender; its alerts are imported by the command centre (a dispatcher, leader or operator role held at city level)",
                alert.sender
            )));
        }
        let mut reached: Vec<String> = grids.iter().map(|(g, _)| g.clone()).collect();
        if alert.msg_type != MsgType::Alert {
            let rows = sqlx::query("SELECT grid FROM cap_alert_cases WHERE root = $1").bind(root).fetch_all(self.db.pool()).await?;
            for r in &rows {
                reached.push(r.try_get(0)?);
            }
        }
        reached.sort();
        match reached.iter().find(|g| !importer.scope.covers(Some(g.as_str()))) {
            Some(outside) => Err(ServiceError::Forbidden(format!(
                "area: the alert reaches grid cell `{outside}`, outside {}; it is imported by a dispatcher, leader or operator whose area covers every cell it reaches",
                importer.scope
            ))),
            None => Ok(()),
        }
    }

    /// The grid cells `info`'s areas cover, each with the point its case is placed at.
    fn grids_of(&self, info: &Info) -> Result<Vec<(String, GeoPoint)>, ServiceError> {
        let mut grids: Vec<(String, GeoPoint)> = Vec::new();
        for area in &info.areas {
            for c in &area.circles {
                for g in self.space.grids_within_radius(c.centre, c.radius_km * 1000.0)? {
                    grids.push((g.code, c.centre));
                }
            }
            for ring in &area.polygons {
                let polygon = crate::space::polygon_from_ring(ring)?;
                for g in self.space.grids_within_polygon(&polygon)? {
                    grids.push((g.code, ring[0]));
                }
            }
        }
        grids.sort_by(|a, b| a.0.cmp(&b.0));
        grids.dedup_by(|a, b| a.0 == b.0);
        if grids.len() > MAX_GRIDS {
            return Err(ServiceError::Invalid(format!(
                "area: covers {} grid cells; at most {MAX_GRIDS} get a case each",
                grids.len()
            )));
        }
        Ok(grids)
    }

    async fn raise_cap_warning(&self, alert: &Alert, info: &Info) -> Result<String, ServiceError> {
        let shapes: Vec<serde_json::Value> = info
            .areas
            .iter()
            .flat_map(|a| {
                let circles = a.circles.iter().map(|c| {
                    serde_json::json!({ "circle": { "lat": c.centre.lat, "lon": c.centre.lon, "radius_km": c.radius_km } })
                });
                let polygons = a.polygons.iter().map(|ring| {
                    serde_json::json!({ "polygon": ring.iter().map(|p| [p.lat, p.lon]).collect::<Vec<_>>() })
                });
                circles.chain(polygons).collect::<Vec<_>>()
            })
            .collect();
        let description: Vec<&str> = info.areas.iter().map(|a| a.area_desc.as_str()).collect();
        let warning = super::Warning {
            category: info.categories.first().map(|c| c.as_str().to_lowercase()).unwrap_or_else(|| "other".into()),
            event: info.event.clone(),
            urgency: info.urgency.as_str().to_owned(),
            severity: info.severity.as_str().to_owned(),
            certainty: info.certainty.as_str().to_owned(),
            area: serde_json::json!({ "description": description.join("；"), "shapes": shapes }),
            headline: info.headline.clone().unwrap_or_else(|| info.event.clone()),
            description: info.description.clone().unwrap_or_default(),
            instruction: info.instruction.clone().unwrap_or_default(),
            parameters: info.parameters.iter().map(|p| (p.value_name.clone(), p.value.clone())).collect()};
        let location = info.areas.iter().flat_map(|a| a.circles.iter().map(|c| c.centre)).next();
        self.raise_warning(&format!("cap:{}", key(&alert.sender, &alert.identifier)), &warning, location).await
    }

    /// Open a case for each grid cell of `info`'s areas the chain does not cover yet.
    async fn open_for_area(&self, info: &Info, root: &str, importer: &Importer) -> Result<Vec<String>, ServiceError> {
        let grids = self.grids_of(info)?;
        let category = info
            .parameters
            .iter()
            .find(|p| p.value_name == "category_code")
            .map(|p| p.value.clone())
            .unwrap_or_else(|| FALLBACK_CATEGORY.to_owned());
        let mut opened = Vec::new();
        for (grid, point) in grids {
            let covered = sqlx::query("SELECT 1 FROM cap_alert_cases WHERE root = $1 AND grid = $2")
                .bind(root)
                .bind(&grid)
                .fetch_optional(self.db.pool())
                .await?;
            if covered.is_some() {
                continue;
            }
            let report = NewReport {
                channel: Channel::CapAlert,
                idempotency_key: Some(format!("{root}/{grid}")),
                category_code: category.clone(),
                title: Some(info.headline.clone().unwrap_or_else(|| info.event.clone())),
                description: info.description.clone().filter(|d| !d.trim().is_empty()).unwrap_or_else(|| info.event.clone()),
                location: Some(point),
                address: None,
                evidence: vec![],
                caller: None};
            let intake = self.intake_in(&report, Some(&importer.actor), Some(grid.clone()), None).await.map_err(|e| match e {
                ServiceError::Invalid(m) => ServiceError::Invalid(format!("parameter `category_code`: {m}")),
                other => other})?;
            sqlx::query("INSERT INTO cap_alert_cases (root, grid, case_id) VALUES ($1, $2, $3) ON CONFLICT (root, grid) DO NOTHING")
                .bind(root)
                .bind(&grid)
                .bind(&intake.case)
                .execute(self.db.writer())
                .await?;
            opened.push(intake.case);
        }
        Ok(opened)
    }

    /// Reject the chain's cases still waiting to be accepted, as `actor` (the
    /// importer, whose area and sender were checked for the whole chain).
    async fn cancel_chain(&self, root: &str, by: &str, actor: &str) -> Result<Vec<String>, ServiceError> {
        let rows = sqlx::query(
            "SELECT a.case_id FROM cap_alert_cases a JOIN cases c ON c.id = a.case_id WHERE a.root = $1 AND c.status = $2",
        )
        .bind(root)
        .bind(Stage::Reported.name())
        .fetch_all(self.db.pool())
        .await?;
        let mut cancelled = Vec::new();
        for r in &rows {
            let id: String = r.try_get(0)?;
            let mv = Move { action: Action::Reject, reason: format!("CAP Cancel {by}"), department: None, extension_hours: None, into: None, suggestion: None };
            match self.transition(&id, &mv, Who::System(actor)).await {
                Ok(_) => cancelled.push(id),
                // Moved meanwhile: it stays with the people handling it.
                Err(ServiceError::Conflict(_)) => {}
                Err(e) => return Err(e)}
        }
        sqlx::query("UPDATE cap_alerts SET cancelled = 1 WHERE sender || '/' || identifier = $1").bind(root).execute(self.db.writer()).await?;
        Ok(cancelled)
    }

    /// The trusted CAP senders, by sender.
    pub async fn trusted_senders(&self) -> Result<TrustedSenders, ServiceError> {
        let rows = sqlx::query("SELECT sender, note, added_by, added FROM cap_trusted_senders ORDER BY sender")
            .fetch_all(self.db.pool())
            .await?;
        let mut senders = Vec::with_capacity(rows.len());
        for r in &rows {
            senders.push(TrustedSender { sender: r.try_get(0)?, note: r.try_get(1)?, added_by: r.try_get(2)?, added: r.try_get(3)? });
        }
        Ok(TrustedSenders { senders })
    }

    /// Replace the trusted CAP senders with `list`, in one transaction; a
    /// sender already on the list keeps who added it and when, a new one is
    /// added by `actor` now.
    pub async fn set_trusted_senders(&self, list: &NewTrustedSenders, actor: &str) -> Result<TrustedSenders, ServiceError> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, s) in list.senders.iter().enumerate() {
            if s.sender.trim().is_empty() || s.sender.len() > 256 || s.sender.chars().any(char::is_control) {
                return Err(ServiceError::Invalid(format!("senders[{i}].sender: 1-256 characters, not blank, no control characters")));
            }
            if !seen.insert(s.sender.as_str()) {
                return Err(ServiceError::Invalid(format!("senders[{i}].sender: `{}` is listed twice", s.sender)));
            }
        }
        let before: std::collections::BTreeMap<String, TrustedSender> =
            self.trusted_senders().await?.senders.into_iter().map(|s| (s.sender.clone(), s)).collect();
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM cap_trusted_senders").execute(&mut *tx).await?;
        for s in &list.senders {
            let (added_by, added) = before.get(&s.sender).map_or((actor, now), |b| (b.added_by.as_str(), b.added));
            sqlx::query("INSERT INTO cap_trusted_senders (sender, note, added_by, added) VALUES ($1, $2, $3, $4)")
                .bind(&s.sender)
                .bind(&s.note)
                .bind(added_by)
                .bind(added)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.trusted_senders().await
    }

    /// A stored warning as a CAP 1.2 alert.
    ///
    /// An update or a cancel a plugin sent is an `Update` or `Cancel` whose
    /// `references` name every earlier message of its chain, oldest first (CAP
    /// 1.2: `sender,identifier,sent`, space-separated); a cancel's reason is its
    /// `note`, and its `info` the warning it withdraws, as last updated.
    pub async fn warning_as_cap(&self, id: &str) -> Result<Option<Alert>, ServiceError> {
        let row = sqlx::query("SELECT body, created, msg_type, refs, note FROM warnings WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(r) = row else { return Ok(None) };
        let body: String = r.try_get(0)?;
        let created: i64 = r.try_get(1)?;
        let msg_type = match r.try_get::<String, _>(2)?.as_str() {
            "Update" => MsgType::Update,
            "Cancel" => MsgType::Cancel,
            _ => MsgType::Alert,
        };
        let refs: Vec<String> = serde_json::from_str(&r.try_get::<String, _>(3)?)
            .map_err(|e| ServiceError::Storage(anyhow::anyhow!("warning `{id}`: stored references are unusable: {e}")))?;
        let note: String = r.try_get(4)?;
        let mut references = Vec::with_capacity(refs.len());
        for earlier in &refs {
            let sent = sqlx::query("SELECT created FROM warnings WHERE id = $1").bind(earlier).fetch_one(self.db.pool()).await?;
            references.push(cap::Reference {
                sender: CAP_SENDER.into(),
                identifier: earlier.clone(),
                sent: CapTime::from_epoch_ms(sent.try_get(0)?, 480),
            });
        }
        let w: StoredWarning = serde_json::from_str(&body)
            .map_err(|e| ServiceError::Storage(anyhow::anyhow!("warning `{id}`: stored body is unusable: {e}")))?;
        let mut area = Area { area_desc: w.area.description.clone(), polygons: vec![], circles: vec![], geocodes: vec![], altitude: None, ceiling: None };
        for shape in &w.area.shapes {
            if let Some(c) = &shape.circle {
                area.circles.push(Circle { centre: GeoPoint { lat: c.lat, lon: c.lon }, radius_km: c.radius_km });
            }
            if let Some(ring) = &shape.polygon {
                area.polygons.push(ring.iter().map(|p| GeoPoint { lat: p[0], lon: p[1] }).collect());
            }
        }
        let category = Category::ALL.iter().copied().find(|c| c.as_str().eq_ignore_ascii_case(&w.category)).unwrap_or(Category::Other);
        let info = Info {
            language: "zh-CN".into(),
            categories: vec![category],
            event: w.event.clone(),
            response_types: vec![],
            urgency: Urgency::from_cap(&w.urgency).unwrap_or(Urgency::Unknown),
            severity: Severity::from_cap(&w.severity).unwrap_or(Severity::Unknown),
            certainty: Certainty::from_cap(&w.certainty).unwrap_or(Certainty::Unknown),
            audience: None,
            event_codes: vec![],
            effective: None,
            onset: None,
            expires: None,
            sender_name: Some("一网统管".into()),
            headline: Some(w.headline.clone()),
            description: Some(w.description.clone()).filter(|d| !d.is_empty()),
            instruction: Some(w.instruction.clone()).filter(|d| !d.is_empty()),
            web: None,
            contact: None,
            parameters: w.parameters.iter().map(|(n, v)| cap::NamedValue { value_name: n.clone(), value: v.clone() }).collect(),
            resources: vec![],
            areas: vec![area]};
        Ok(Some(Alert {
            identifier: id.to_owned(),
            sender: CAP_SENDER.into(),
            sent: CapTime::from_epoch_ms(created, 480),
            status: Status::Actual,
            msg_type,
            source: None,
            scope: cap::Scope::Public,
            restriction: None,
            addresses: None,
            codes: vec![],
            note: Some(note).filter(|n| !n.is_empty()),
            references,
            incidents: None,
            infos: vec![info]}))
    }
}

/// A warning as `warnings.body` holds it.
#[derive(serde::Deserialize)]
struct StoredWarning {
    category: String,
    event: String,
    urgency: String,
    severity: String,
    certainty: String,
    area: StoredArea,
    headline: String,
    description: String,
    instruction: String,
    parameters: Vec<(String, String)>}

#[derive(serde::Deserialize)]
struct StoredArea {
    description: String,
    shapes: Vec<StoredShape>}

#[derive(serde::Deserialize)]
struct StoredShape {
    circle: Option<StoredCircle>,
    /// `[lat, lon]` points.
    polygon: Option<Vec<[f64; 2]>>}

#[derive(serde::Deserialize)]
struct StoredCircle {
    lat: f64,
    lon: f64,
    radius_km: f64}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// Not CAP 1.2: the message names the line and what was expected.
    #[error("{0}")]
    Format(String),
    #[error(transparent)]
    Service(#[from] ServiceError)}
