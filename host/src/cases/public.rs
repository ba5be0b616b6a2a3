//! What the public request feed (Open311 GeoReport v2, open to anyone) reads
//! of the cases: one typed row per case with a ticket, never the caller.

use sqlx::Row;

use super::Cases;
use super::lifecycle::Stage;
use crate::error::ServiceError;

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct PublicFilter {
    /// Only these tickets (then the period is not applied).
    pub tickets: Option<Vec<String>>,
    /// Only this category code.
    pub service_code: Option<String>,
    /// Created in `[start, end)`, epoch milliseconds.
    pub start: i64,
    pub end: i64,
    /// Only open (`true`) or only finished (`false`) cases.
    pub open: Option<bool>,
}

/// One case as the public feed shows it.
#[derive(Debug, Clone)]
pub struct PublicRequest {
    pub ticket: String,
    pub stage: Stage,
    pub category_code: String,
    pub category_name: String,
    /// The case's description, except for hotline cases (a caller's words).
    pub description: Option<String>,
    /// The name of the department handling it.
    pub agency: Option<String>,
    pub created: i64,
    pub updated: i64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// The address of the case's first report.
    pub address: Option<String>,
}

impl Cases {
    /// The cases with a ticket matching `f`, newest first, at most 1,000.
    pub async fn public_requests(&self, f: &PublicFilter) -> Result<Vec<PublicRequest>, ServiceError> {
        let rows = sqlx::query(
            "SELECT c.ticket, c.status, c.category_code, k.name, c.description, c.channel, c.created, c.updated, c.lat, c.lon, \
             d.name, (SELECT r.address FROM reports r WHERE r.case_id = c.id ORDER BY r.received LIMIT 1) \
             FROM cases c JOIN categories k ON k.code = c.category_code LEFT JOIN departments d ON d.code = c.department \
             WHERE c.ticket IS NOT NULL AND c.created >= $1 AND c.created < $2 ORDER BY c.created DESC LIMIT 1000",
        )
        .bind(if f.tickets.is_some() { i64::MIN } else { f.start })
        .bind(if f.tickets.is_some() { i64::MAX } else { f.end })
        .fetch_all(self.db.pool())
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let ticket: String = r.try_get(0)?;
            if f.tickets.as_ref().is_some_and(|ids| !ids.contains(&ticket)) {
                continue;
            }
            let stage = Stage::parse(&r.try_get::<String, _>(1)?).unwrap_or(Stage::Reported);
            if f.open.is_some_and(|open| open != stage.is_open()) {
                continue;
            }
            let code: String = r.try_get(2)?;
            if f.service_code.as_deref().is_some_and(|c| c != code) {
                continue;
            }
            let channel: String = r.try_get(5)?;
            let description: String = r.try_get(4)?;
            out.push(PublicRequest {
                ticket,
                stage,
                category_code: code,
                category_name: r.try_get(3)?,
                description: (channel != "hotline").then_some(description),
                agency: r.try_get(10)?,
                created: r.try_get(6)?,
                updated: r.try_get(7)?,
                lat: r.try_get(8)?,
                lon: r.try_get(9)?,
                address: r.try_get(11)?,
            });
        }
        Ok(out)
    }
}
