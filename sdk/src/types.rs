//! The WIT types of `yiwang:gov/types`, with helpers.

use serde::de::DeserializeOwned;

use crate::Error;

pub use crate::__private::bindings::yiwang::gov::types::{
    Area, AreaShape, CaseDraft, Certainty, Circle, Event, GeoPoint, Severity, SourceChannel,
    Timestamp, Urgency, Warning, WarningCategory,
};

impl Event {
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
    fn polygon_is_closed() {
        let a = GeoPoint::new(31.0, 121.0);
        let b = GeoPoint::new(31.1, 121.0);
        let c = GeoPoint::new(31.1, 121.1);
        let area = Area::polygon("三角", vec![a, b, c]);
        assert_eq!(area.shapes, vec![AreaShape::Polygon(vec![a, b, c, a])]);
    }
}
