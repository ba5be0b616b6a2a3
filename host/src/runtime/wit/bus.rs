//! `yiwang:gov/bus` for plugins.

use std::sync::Arc;

use yiwang_registry::Topic;

use crate::bus::{Bus, Event, GeoPoint};
use crate::clock::SharedClock;
use crate::error::new_id;
use crate::runtime::bindings::yiwang::gov::bus::Host;
use crate::runtime::bindings::yiwang::gov::types::{self as wit, Error};
use crate::runtime::Rated;
use crate::runtime::state::Call;

/// The largest payload a plugin may publish.
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// What `yiwang:gov/bus` reaches: the bus, and the clock that stamps events.
pub struct BusView {
    pub bus: Arc<dyn Bus>,
    pub clock: SharedClock,
}

impl Host for Call<'_, BusView> {
    async fn publish(&mut self, topic: String, payload: String, location: Option<wit::GeoPoint>) -> Result<String, Error> {
        let topic = Topic::parse(&topic).map_err(|e| Error::Invalid(e.to_string()))?;
        self.ctx.authorize(self.ctx.grants().check_publish(&topic)).await?;
        self.ctx.rate_limit(Rated::Publish, "bus.publish", topic.as_str()).await?;
        let plugin = &self.ctx.plugin;
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
            source: plugin.principal.clone(),
            time: self.view.clock.now_ms(),
            location,
            payload,
        };
        match self.view.bus.publish(event).await {
            Ok(()) => Ok(id),
            Err(e) => Err(self.ctx.unavailable("bus.publish", e.into())),
        }
    }
}
