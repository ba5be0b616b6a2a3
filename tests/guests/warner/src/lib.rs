//! Test guest `warner`: a warning model for urban flooding (内涝).
//!
//! It reads water-level readings `{"sensor": "...", "value": <metres>, "unit": "m"}` and
//! raises one CAP warning when the value exceeds the `threshold` of its `[config]`; the
//! warning's area is a circle of `radius-km` around the event's location.

use yiwang_sdk::prelude::*;

/// The payload of an `iot.reading.*` event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct Reading {
    /// The sensor's id.
    pub sensor: String,
    /// The measured value.
    pub value: f64,
    /// The unit of `value`, e.g. `m`.
    pub unit: String,
}

/// The model's rule, from the plugin's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// A reading strictly above this value raises a warning.
    pub threshold: f64,
    /// Radius of the warning's area, in kilometres.
    pub radius_km: f64,
}

impl Rule {
    /// Reads the rule from the `threshold` and `radius-km` config keys.
    pub fn from_config() -> Result<Rule, Error> {
        let rule = Rule {
            threshold: config::get_parsed("threshold")?,
            radius_km: config::get_parsed("radius-km")?,
        };
        if !rule.threshold.is_finite() {
            return Err(Error::Invalid(
                "config key `threshold` must be a finite number".into(),
            ));
        }
        if !(rule.radius_km.is_finite() && rule.radius_km > 0.0) {
            return Err(Error::Invalid(
                "config key `radius-km` must be a positive number".into(),
            ));
        }
        Ok(rule)
    }

    /// The warning `reading` raises at `location`, if any.
    ///
    /// Without a location the area names the sensor but has no shape.
    pub fn assess(&self, reading: &Reading, location: Option<GeoPoint>) -> Option<Warning> {
        // NaN compares false, so a broken sensor raises nothing.
        let exceeds = reading.value > self.threshold;
        if !exceeds {
            return None;
        }
        let Reading {
            sensor,
            value,
            unit,
        } = reading;
        let description = format!("传感器 {sensor} 周边 {} 公里", self.radius_km);
        let area = match location {
            Some(center) => Area::circle(description, center, self.radius_km),
            None => Area {
                description,
                shapes: Vec::new(),
            },
        };
        Some(Warning {
            category: WarningCategory::Met,
            event: "内涝".into(),
            urgency: Urgency::Immediate,
            severity: Severity::Severe,
            certainty: Certainty::Observed,
            area,
            headline: format!("内涝预警：传感器 {sensor} 积水 {value} {unit}"),
            description: format!(
                "传感器 {sensor} 测得积水 {value} {unit}，超过阈值 {} {unit}。",
                self.threshold
            ),
            instruction: "请立即组织排水，车辆和行人绕行低洼路段。".into(),
            parameters: vec![
                ("sensor".into(), sensor.clone()),
                ("value".into(), value.to_string()),
                ("unit".into(), unit.clone()),
                ("threshold".into(), self.threshold.to_string()),
            ],
        })
    }
}

struct Warner;

impl Plugin for Warner {
    /// Refuses the load when the configuration is missing or malformed.
    fn init() -> Result<(), Error> {
        Rule::from_config().map(|_| ())
    }

    fn evaluate(event: Event) -> Result<Vec<Warning>, Error> {
        let rule = Rule::from_config()?;
        let reading: Reading = event.payload_json()?;
        Ok(rule.assess(&reading, event.location).into_iter().collect())
    }
}

export_plugin!(Warner);

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = Rule {
        threshold: 0.3,
        radius_km: 1.5,
    };

    fn reading(value: f64) -> Reading {
        Reading {
            sensor: "WL-310101-0007".into(),
            value,
            unit: "m".into(),
        }
    }

    #[test]
    fn below_or_at_the_threshold_no_warning() {
        let here = Some(GeoPoint::new(31.23, 121.47));
        assert_eq!(RULE.assess(&reading(0.1), here), None);
        assert_eq!(RULE.assess(&reading(0.3), here), None);
        assert_eq!(RULE.assess(&reading(f64::NAN), here), None);
    }

    #[test]
    fn above_the_threshold_one_warning_around_the_sensor() {
        let here = GeoPoint::new(31.23, 121.47);
        let warning = RULE.assess(&reading(0.45), Some(here)).expect("a warning");
        assert_eq!(warning.category, WarningCategory::Met);
        assert_eq!(warning.event, "内涝");
        assert_eq!(warning.urgency, Urgency::Immediate);
        assert_eq!(warning.severity, Severity::Severe);
        assert_eq!(warning.certainty, Certainty::Observed);
        assert!(warning.headline.contains("0.45"), "{}", warning.headline);
        assert_eq!(
            warning.area.shapes,
            vec![AreaShape::Circle(Circle {
                center: here,
                radius_km: 1.5
            })]
        );
    }

    #[test]
    fn without_a_location_the_area_has_no_shape() {
        let warning = RULE.assess(&reading(2.0), None).expect("a warning");
        assert!(warning.area.shapes.is_empty());
        assert!(warning.area.description.contains("WL-310101-0007"));
    }

    #[test]
    fn the_payload_parses() {
        let event = Event {
            id: "e1".into(),
            topic: "iot.reading.water-level".into(),
            source: "host:iot".into(),
            time: 0,
            location: None,
            payload: r#"{"sensor": "WL-1", "value": 0.5, "unit": "m"}"#.into(),
        };
        assert_eq!(
            event.payload_json::<Reading>(),
            Ok(Reading {
                sensor: "WL-1".into(),
                value: 0.5,
                unit: "m".into()
            })
        );
    }
}
