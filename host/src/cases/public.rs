//! What the public request feed (Open311 GeoReport v2, open to anyone) reads
//! of the cases: one typed row per case with a ticket, never the caller.

use sqlx::Row;

use super::Cases;
use super::lifecycle::Stage;
use crate::db::Marks;
use crate::error::ServiceError;

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct PublicFilter {
    /// Only these tickets; when given, the other filters are not applied
    /// (GeoReport v2: `service_request_id` overrides every other argument).
    pub tickets: Option<Vec<String>>,
    /// Only these category codes.
    pub service_codes: Option<Vec<String>>,
    /// Created in `[start, end)`, epoch milliseconds.
    pub start: i64,
    pub end: i64,
    /// Only open (`true`) or only finished (`false`) cases; both when `None`.
    pub open: Option<bool>,
}

/// The most requests one answer lists.
pub const MAX_REQUESTS: i64 = 1000;

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
    /// The cases with a ticket matching `f`, newest first, at most
    /// [`MAX_REQUESTS`]; every filter is applied by the query, before the limit.
    pub async fn public_requests(&self, f: &PublicFilter) -> Result<Vec<PublicRequest>, ServiceError> {
        let mut marks = Marks::new(self.db.backend());
        let mut sql = String::from(
            "SELECT c.ticket, c.status, c.category_code, k.name, c.description, c.channel, c.created, c.updated, c.lat, c.lon, \
             d.name, (SELECT r.address FROM reports r WHERE r.case_id = c.id ORDER BY r.received LIMIT 1) \
             FROM cases c JOIN categories k ON k.code = c.category_code LEFT JOIN departments d ON d.code = c.department \
             WHERE c.ticket IS NOT NULL",
        );
        let finished: Vec<&str> = Stage::ALL.iter().filter(|s| !s.is_open()).map(|s| s.name()).collect();
        let mut texts: Vec<&str> = Vec::new();
        let mut period = None;
        if let Some(tickets) = &f.tickets {
            if tickets.is_empty() {
                return Ok(vec![]);
            }
            if tickets.len() as i64 > MAX_REQUESTS {
                return Err(ServiceError::Invalid(format!(
                    "service_request_id: {} ids; at most {MAX_REQUESTS} at once",
                    tickets.len()
                )));
            }
            sql.push_str(&format!(" AND c.ticket IN ({})", marks.list(tickets.len())));
            texts.extend(tickets.iter().map(String::as_str));
        } else {
            sql.push_str(&format!(" AND c.created >= {} AND c.created < {}", marks.mark(), marks.mark()));
            period = Some((f.start, f.end));
            if let Some(codes) = f.service_codes.as_ref().filter(|c| !c.is_empty()) {
                sql.push_str(&format!(" AND c.category_code IN ({})", marks.list(codes.len())));
                texts.extend(codes.iter().map(String::as_str));
            }
            if let Some(open) = f.open {
                let not = if open { "NOT " } else { "" };
                sql.push_str(&format!(" AND c.status {not}IN ({})", marks.list(finished.len())));
                texts.extend(finished.iter().copied());
            }
        }
        sql.push_str(&format!(" ORDER BY c.created DESC LIMIT {MAX_REQUESTS}"));
        // The period's two marks come first, then the texts, in the order written.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some((start, end)) = period {
            q = q.bind(start).bind(end);
        }
        for t in texts {
            q = q.bind(t);
        }
        let rows = q.fetch_all(self.db.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let stage_name: String = r.try_get(1)?;
            let stage = Stage::parse(&stage_name)
                .ok_or_else(|| ServiceError::Storage(anyhow::anyhow!("case with ticket: unknown stage `{stage_name}`")))?;
            let channel: String = r.try_get(5)?;
            let description: String = r.try_get(4)?;
            out.push(PublicRequest {
                ticket: r.try_get(0)?,
                stage,
                category_code: r.try_get(2)?,
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
