//! The WIT types of `yiwang:gov/types`, with helpers.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::events::Payload;

pub use crate::__private::bindings::yiwang::gov::types::{
    Area, AreaShape, CaseDraft, Certainty, Circle, Event, GeoPoint, Severity, SourceChannel,
    Timestamp, Urgency, Warning, WarningCategory,
};

impl Event {
    /// An event for tests: `payload` serialised as JSON on `topic`.
    ///
    /// The id is `test-event-<n>`, unique in the process; the source is `host:test`;
    /// the time is now; there is no location. Change them with [`with_id`](Self::with_id),
    /// [`with_source`](Self::with_source), [`with_time`](Self::with_time) and
    /// [`with_location`](Self::with_location). A test calls the plugin's
    /// [`handle`](crate::Plugin::handle) or [`evaluate`](crate::Plugin::evaluate) with it,
    /// or hands it over as the host would with the [`mock`](crate::mock) host's
    /// `deliver`:
    ///
    /// ```
    /// use yiwang_sdk::prelude::*;
    ///
    /// let event = Event::test("iot.reading.water-level", json!({ "sensor": "wl-1", "value": 3.4 }))
    ///     .with_time(1_700_000_000_000)
    ///     .with_location(GeoPoint::new(32.04, 118.78));
    /// assert_eq!(event.topic, "iot.reading.water-level");
    /// assert_eq!(event.payload_value()?["value"], 3.4);
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If `payload` does not serialise as JSON (a map with non-string keys, a failing
    /// `Serialize` implementation): a test's input is then wrong, not the plugin.
    pub fn test<T: Serialize>(topic: &str, payload: T) -> Event {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let payload = serde_json::to_string(&payload)
            .unwrap_or_else(|err| panic!("test payload for `{topic}` does not serialise: {err}"));
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| Timestamp::try_from(d.as_millis()).unwrap_or(Timestamp::MAX));
        Event {
            id: format!("test-event-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            topic: topic.to_owned(),
            source: "host:test".into(),
            time,
            location: None,
            payload,
        }
    }

    /// The same event with id `id`.
    pub fn with_id(mut self, id: impl Into<String>) -> Event {
        self.id = id.into();
        self
    }

    /// The same event from `source`: `plugin:<name>`, `host:<service>` or `user:<id>`.
    pub fn with_source(mut self, source: impl Into<String>) -> Event {
        self.source = source.into();
        self
    }

    /// The same event at `time`, in milliseconds since the Unix epoch.
    pub fn with_time(mut self, time: Timestamp) -> Event {
        self.time = time;
        self
    }

    /// The same event at `location`.
    pub fn with_location(mut self, location: GeoPoint) -> Event {
        self.location = Some(location);
        self
    }

    /// The JSON payload as a [`serde_json::Value`]; a payload that is not JSON is
    /// [`Error::Invalid`].
    pub fn payload_value(&self) -> Result<serde_json::Value, Error> {
        self.payload_json()
    }

    /// Parses the JSON payload into `T`.
    ///
    /// A payload that is not JSON, or not of the expected shape, is [`Error::Invalid`].
    ///
    /// ```
    /// use yiwang_sdk::prelude::*;
    ///
    /// #[derive(Deserialize)]
    /// #[serde(crate = "yiwang_sdk::serde")]
    /// struct Reading {
    ///     value: f64,
    /// }
    ///
    /// let event = Event {
    ///     id: "e1".into(),
    ///     topic: "iot.reading.water-level".into(),
    ///     source: "host:iot".into(),
    ///     time: 0,
    ///     location: None,
    ///     payload: r#"{"value": 0.42}"#.into(),
    /// };
    /// let reading: Reading = event.payload_json()?;
    /// assert_eq!(reading.value, 0.42);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.payload).map_err(|err| {
            Error::Invalid(format!(
                "payload of event {} on `{}` is not the expected JSON: {err}",
                self.id, self.topic
            ))
        })
    }

    /// The payload as the contract's type for a topic the host publishes
    /// ([`events`](crate::events)): `event.payload::<CaseReported>()`.
    ///
    /// An event on a topic that does not carry `P`, or whose payload does not fit
    /// it, is [`Error::Invalid`] naming the event, its topic and what did not fit.
    ///
    /// ```
    /// use yiwang_sdk::events::Reading;
    /// use yiwang_sdk::prelude::*;
    ///
    /// let event = Event::test(
    ///     "iot.reading.water-level",
    ///     json!({ "sensor": "wl-1", "value": 3.4, "unit": "m", "time": 1_764_300_000_000_i64 }),
    /// );
    /// let reading: Reading = event.payload()?;
    /// assert_eq!((reading.sensor.as_str(), reading.value), ("wl-1", 3.4));
    ///
    /// let wrong = Event::test("iot.reading.water-level", json!({ "sensor": "wl-1" }));
    /// let Err(Error::Invalid(why)) = wrong.payload::<Reading>() else { panic!() };
    /// assert!(why.contains("`iot.reading.water-level`") && why.contains("missing field `value`"), "{why}");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn payload<P: Payload>(&self) -> Result<P, Error> {
        P::from_event(&self.topic, &self.payload).map_err(|err| {
            Error::Invalid(format!("payload of event {} on `{}`: {}", self.id, err.topic, err.message))
        })
    }
}

impl GeoPoint {
    /// A point at `lat`, `lon` in decimal degrees (WGS 84).
    pub const fn new(lat: f64, lon: f64) -> Self {
        GeoPoint { lat, lon }
    }
}

impl Area {
    /// An area of one CAP circle: `radius_km` around `center`.
    pub fn circle(description: impl Into<String>, center: GeoPoint, radius_km: f64) -> Self {
        Area {
            description: description.into(),
            shapes: vec![AreaShape::Circle(Circle { center, radius_km })],
        }
    }

    /// An area of one CAP polygon. The ring is closed if its last point differs from
    /// its first.
    pub fn polygon(description: impl Into<String>, mut ring: Vec<GeoPoint>) -> Self {
        if let (Some(first), Some(last)) = (ring.first().copied(), ring.last().copied())
            && first != last
        {
            ring.push(first);
        }
        Area {
            description: description.into(),
            shapes: vec![AreaShape::Polygon(ring)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: &str) -> Event {
        Event {
            id: "e1".into(),
            topic: "test.in".into(),
            source: "user:1".into(),
            time: 0,
            location: None,
            payload: payload.into(),
        }
    }

    #[test]
    fn payload_json_maps_parse_failures_to_invalid() {
        let err = event("not json")
            .payload_json::<serde_json::Value>()
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(ref m) if m.contains("e1") && m.contains("test.in")));
        let value: serde_json::Value = event(r#"{"a": 1}"#).payload_json().unwrap();
        assert_eq!(value["a"], 1);
    }

    #[test]
    fn test_events_carry_a_typed_payload() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Reading {
            sensor: String,
            value: f64,
        }
        let sent = Reading { sensor: "wl-1".into(), value: 3.5 };
        let a = Event::test("iot.reading.water-level", &sent);
        let b = Event::test("iot.reading.water-level", &sent)
            .with_id("e9")
            .with_source("user:7")
            .with_time(42)
            .with_location(GeoPoint::new(32.0, 118.0));
        assert_ne!(a.id, Event::test("x", ()).id);
        assert!(a.id.starts_with("test-event-"), "{}", a.id);
        assert_eq!(a.source, "host:test");
        assert!(a.time > 1_600_000_000_000, "{}", a.time);
        assert_eq!(a.payload_json::<Reading>(), Ok(sent));
        assert_eq!((b.id.as_str(), b.source.as_str(), b.time), ("e9", "user:7", 42));
        assert_eq!(b.location, Some(GeoPoint::new(32.0, 118.0)));
        assert_eq!(b.payload_value().unwrap()["value"], 3.5);
    }

    #[test]
    fn polygon_is_closed() {
        let a = GeoPoint::new(31.0, 121.0);
        let b = GeoPoint::new(31.1, 121.0);
        let c = GeoPoint::new(31.1, 121.1);
        let area = Area::polygon("三角", vec![a, b, c]);
        assert_eq!(area.shapes, vec![AreaShape::Polygon(vec![a, b, c, a])]);
    }
}
