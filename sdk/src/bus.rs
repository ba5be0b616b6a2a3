//! The event bus: publish events on hierarchical topics.
//!
//! Topics are dot-separated (`iot.reading.water-level`). A plugin may publish only to
//! topics its `[grants] publish` patterns cover; anything else is [`Error::Denied`].

use serde::Serialize;

use crate::sys;
use crate::{Error, GeoPoint};

/// Publishes `payload`, serialised as JSON, on `topic`; returns the new event's id.
///
/// ```
/// use yiwang_sdk::prelude::*;
/// # let _host = yiwang_sdk::mock::MockHost::new().grant_publish(["test.ok"]).install();
///
/// let id = bus::publish("test.ok", &json!({ "echo": "e1" }), None)?;
/// # assert_eq!(id, "event-1");
/// # Ok::<(), Error>(())
/// ```
pub fn publish<T: Serialize + ?Sized>(
    topic: &str,
    payload: &T,
    location: Option<GeoPoint>,
) -> Result<String, Error> {
    let payload = serde_json::to_string(payload).map_err(|err| {
        Error::Invalid(format!("payload for `{topic}` does not serialise: {err}"))
    })?;
    sys::bus::publish(topic, &payload, location)
}

/// Publishes a payload that is already a JSON document; returns the new event's id.
pub fn publish_raw(
    topic: &str,
    payload_json: &str,
    location: Option<GeoPoint>,
) -> Result<String, Error> {
    sys::bus::publish(topic, payload_json, location)
}
