//! What the host does by the clock: once a minute while serving, overdue steps
//! are announced (and their supervisors told) and the calendar ticks
//! (`time.day`, `time.week`) that fell due are published. It stands above the
//! capabilities it drives, so none of them needs the whole service bundle.

use std::sync::Arc;

use sqlx::Row;

use crate::error::ServiceError;
use crate::identity::Role;
use crate::messaging::Recipient;
use crate::services::Services;

/// Run [`sweep_overdue`] and the calendar ticks every minute until aborted.
pub fn every_minute(services: Arc<Services>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = sweep_overdue(&services).await {
                tracing::warn!("the overdue sweep failed: {e}");
            }
            if let Err(e) = crate::ticks::publish_due(&services.db, &*services.bus, services.clock.now_ms()).await {
                tracing::warn!("the calendar ticks failed: {e}");
            }
        }
    })
}

/// Announce overdue steps and tell the supervisors of the case's street and of
/// the city. Run by the host once a minute; tests call it with their clock.
pub async fn sweep_overdue(services: &Services) -> Result<usize, ServiceError> {
    let now = services.clock.now_ms();
    let overdue = services.cases.mark_overdue(now).await?;
    let city: Option<String> = sqlx::query("SELECT code FROM org_units WHERE level = 'city' ORDER BY code LIMIT 1")
        .fetch_optional(services.db.pool())
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    for (case, area, step) in &overdue {
        let mut units: Vec<String> = city.iter().cloned().collect();
        if let Some(street) = area.as_deref().filter(|a| a.len() >= 9).map(|a| a[..9].to_owned()) {
            units.push(street);
        }
        for unit in units {
            let to = Recipient::Role { org_unit: unit, role: Role::Supervisor.name().to_owned() };
            let subject = format!("案件超期：{step}");
            let body = format!("案件 {case} 的「{step}」环节已超过时限，请督办。");
            if let Err(e) = services.messaging.send(&services.identity, "host", &to, &subject, &body).await {
                tracing::warn!(case, "could not notify the supervisors of an overdue step: {e}");
            }
        }
    }
    Ok(overdue.len())
}
