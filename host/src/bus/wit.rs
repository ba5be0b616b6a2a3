//! `yiwang:gov/bus` for plugins.

use yiwang_registry::Topic;

use super::{Event, GeoPoint};
use crate::runtime::bindings::yiwang::gov::bus::Host;
use crate::runtime::bindings::yiwang::gov::types::{self as wit, Error};
use crate::runtime::state::PluginState;
use crate::services::new_id;

/// The largest payload a plugin may publish.
pub const MAX_PAYLOAD: usize = 256 * 1024;

impl Host for PluginState {
    async fn publish(&mut self, topic: String, payload: String, location: Option<wit::GeoPoint>) -> Result<String, Error> {
        let topic = Topic::parse(&topic).map_err(|e| Error::Invalid(e.to_string()))?;
        if !self.grants().publish.iter().any(|p| p.matches(topic.as_str())) {
            return Err(self.deny("bus.publish", topic.as_str(), "topic not in grants.publish").await);
        }
        if !self.plugin.take_publish_token() {
            self.plugin.stats.rate_limited.inc();
            let rate = self.plugin.manifest.limits.publish_per_second;
            return Err(Error::Limit(format!("publish rate limit of {rate}/s reached")));
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::Limit(format!("payload of {} bytes exceeds {MAX_PAYLOAD}", payload.len())));
        }
        serde_json::from_str::<serde::de::IgnoredAny>(&payload)
            .map_err(|e| Error::Invalid(format!("payload is not JSON: {e}")))?;
        let location = match location {
            Some(p) => Some(GeoPoint { lat: p.lat, lon: p.lon }.validate().map_err(Error::Invalid)?),
            None => None,
        };
        let id = new_id();
        let event = Event {
            id: id.clone(),
            topic: topic.as_str().to_owned(),
            source: self.plugin.principal.clone(),
            time: self.services().clock.now_ms(),
            location,
            payload,
        };
        let bus = self.plugin.services.bus.clone();
        match bus.publish(event).await {
            Ok(()) => Ok(id),
            Err(e) => Err(self.unavailable("bus.publish", e.into())),
        }
    }
}
