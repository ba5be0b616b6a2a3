//! Reading a GeoJSON FeatureCollection of areas and checking it before anything
//! is written: each feature on its own ([`parse`]), then the file against
//! itself and what is stored ([`check_hierarchy`]). Every refusal names the
//! feature (its index in `features` and its code) and the field.

use std::collections::HashMap;
use std::fmt;

use geo::{BoundingRect, MultiPolygon, Polygon, Validation};
use geojson::{Geometry, GeometryValue, Position};
use serde_json::{Map, Value};

use super::Level;
use crate::error::ServiceError;

/// The longest name accepted, in characters.
const MAX_NAME_CHARS: usize = 200;

/// One checked feature, ready to store.
#[derive(Debug)]
pub(super) struct Feature {
    /// Its index in the file's `features`.
    pub index: usize,
    pub code: String,
    pub name: String,
    pub level: Level,
    pub parent: Option<String>,
    /// The geometry as stored: compact GeoJSON.
    pub geometry_json: String,
    /// `[min_lon, min_lat, max_lon, max_lat]`.
    pub bbox: [f64; 4],
}

/// A refusal about one feature.
fn refuse(index: usize, code: Option<&str>, field: &str, problem: impl fmt::Display) -> ServiceError {
    match code {
        Some(code) => ServiceError::Invalid(format!("feature {index} (code `{code}`): {field}: {problem}")),
        None => ServiceError::Invalid(format!("feature {index}: {field}: {problem}")),
    }
}

/// Parse `text` and check every feature on its own.
pub(super) fn parse(text: &str) -> Result<Vec<Feature>, ServiceError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| ServiceError::Invalid(format!("not JSON: {e}")))?;
    if doc.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(ServiceError::Invalid("type: expected a GeoJSON FeatureCollection".into()));
    }
    let Some(items) = doc.get("features").and_then(Value::as_array) else {
        return Err(ServiceError::Invalid("features: expected an array".into()));
    };
    items.iter().enumerate().map(|(index, item)| parse_feature(index, item)).collect()
}

fn parse_feature(index: usize, item: &Value) -> Result<Feature, ServiceError> {
    let Some(obj) = item.as_object() else { return Err(refuse(index, None, "feature", "expected an object")) };
    if obj.get("type").and_then(Value::as_str) != Some("Feature") {
        return Err(refuse(index, None, "type", "expected \"Feature\""));
    }
    let empty = Map::new();
    let props = match obj.get("properties") {
        Some(Value::Object(p)) => p,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err(refuse(index, None, "properties", "expected an object")),
    };

    // The code first, so that every later refusal can name it.
    let code = match props.get("code") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => return Err(refuse(index, None, "properties.code", "missing")),
        Some(other) => {
            return Err(refuse(index, None, "properties.code", format!("expected a string of digits, got {other}")));
        }
    };
    let who = Some(code.as_str());
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse(index, who, "properties.code", "must be a string of digits"));
    }

    let level = match props.get("level") {
        Some(Value::String(s)) => Level::parse(s).ok_or_else(|| {
            refuse(
                index,
                who,
                "properties.level",
                format!("`{s}` is not one of city, district, street, community, grid"),
            )
        })?,
        None | Some(Value::Null) => return Err(refuse(index, who, "properties.level", "missing")),
        Some(other) => return Err(refuse(index, who, "properties.level", format!("expected a string, got {other}"))),
    };
    if code.len() != level.code_len() {
        return Err(refuse(
            index,
            who,
            "properties.code",
            format!("a {level} code has {} digits{}, got {}", level.code_len(), code_layout(level), code.len()),
        ));
    }

    let name = match props.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_NAME_CHARS => s.clone(),
        Some(Value::String(_)) => {
            return Err(refuse(index, who, "properties.name", format!("must be 1..={MAX_NAME_CHARS} characters")));
        }
        None | Some(Value::Null) => return Err(refuse(index, who, "properties.name", "missing")),
        Some(other) => return Err(refuse(index, who, "properties.name", format!("expected a string, got {other}"))),
    };

    let parent = match props.get("parent") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(refuse(index, who, "properties.parent", format!("expected a string, got {other}"))),
    };
    match (level, &parent) {
        (Level::City, Some(p)) => {
            return Err(refuse(index, who, "properties.parent", format!("a city has no parent, got `{p}`")));
        }
        (Level::City, None) => {}
        (_, None) => {
            let expected = level.parent().unwrap_or(Level::City);
            return Err(refuse(index, who, "properties.parent", format!("missing: a {level} needs its {expected}")));
        }
        (_, Some(_)) => {}
    }

    let geometry = match obj.get("geometry") {
        None | Some(Value::Null) => return Err(refuse(index, who, "geometry", "missing")),
        Some(g) => g,
    };
    let geometry: Geometry = serde_json::from_value(geometry.clone()).map_err(|e| refuse(index, who, "geometry", e))?;
    let shape = checked_shape(&geometry).map_err(|(field, problem)| refuse(index, who, &field, problem))?;
    let bbox = shape
        .bounding_rect()
        .map(|r| [r.min().x, r.min().y, r.max().x, r.max().y])
        .ok_or_else(|| refuse(index, who, "geometry", "is empty"))?;
    // Stored as read, without any bbox or foreign members the file carried.
    let geometry_json = serde_json::to_string(&Geometry::new(geometry.value))
        .map_err(|e| ServiceError::Storage(anyhow::anyhow!("serialising a geometry: {e}")))?;

    Ok(Feature { index, code, name, level, parent, geometry_json, bbox })
}

/// How a code of `level` is made up, for messages.
fn code_layout(level: Level) -> &'static str {
    match level {
        Level::City | Level::District => " (GB/T 2260)",
        Level::Street => " (6 district + 3 street)",
        Level::Community => " (6 district + 3 street + 3 community)",
        Level::Grid => " (6 district + 3 street + 3 community + 2 grid)",
    }
}

/// Check a Polygon or MultiPolygon position by position and ring by ring, then
/// as a whole with geo's validity rules. On failure: the field and the problem.
fn checked_shape(geometry: &Geometry) -> Result<MultiPolygon<f64>, (String, String)> {
    match &geometry.value {
        GeometryValue::Polygon { coordinates } => check_rings(coordinates, "geometry.coordinates")?,
        GeometryValue::MultiPolygon { coordinates } => {
            if coordinates.is_empty() {
                return Err(("geometry.coordinates".into(), "a MultiPolygon needs at least one polygon".into()));
            }
            for (i, polygon) in coordinates.iter().enumerate() {
                check_rings(polygon, &format!("geometry.coordinates[{i}]"))?;
            }
        }
        other => {
            return Err((
                "geometry.type".into(),
                format!("expected Polygon or MultiPolygon, got {}", other.type_name()),
            ));
        }
    }
    let shape = to_shape(&geometry.value).map_err(|e| ("geometry".to_string(), e))?;
    shape.check_validation().map_err(|e| ("geometry".to_string(), format!("invalid polygon: {e}")))?;
    Ok(shape)
}

fn check_rings(rings: &[Vec<Position>], path: &str) -> Result<(), (String, String)> {
    if rings.is_empty() {
        return Err((path.to_string(), "a polygon needs an exterior ring".into()));
    }
    for (r, ring) in rings.iter().enumerate() {
        let ring_path = format!("{path}[{r}]");
        for (k, position) in ring.iter().enumerate() {
            let p = position.as_slice();
            let field = || format!("{ring_path}[{k}]");
            if p.len() < 2 {
                return Err((field(), "a position needs a longitude and a latitude".into()));
            }
            let (lon, lat) = (p[0], p[1]);
            if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
                return Err((field(), format!("longitude {lon} is outside -180..=180")));
            }
            if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
                return Err((field(), format!("latitude {lat} is outside -90..=90")));
            }
        }
        if ring.len() < 4 {
            return Err((
                ring_path,
                format!("a ring needs at least 4 positions (the last repeating the first), got {}", ring.len()),
            ));
        }
        let (first, last) = (ring[0].as_slice(), ring[ring.len() - 1].as_slice());
        if first[..2] != last[..2] {
            return Err((
                ring_path,
                format!(
                    "the ring is not closed: its first position [{}, {}] differs from its last [{}, {}]",
                    first[0], first[1], last[0], last[1]
                ),
            ));
        }
    }
    Ok(())
}

fn to_shape(value: &GeometryValue) -> Result<MultiPolygon<f64>, String> {
    match value {
        GeometryValue::Polygon { .. } => {
            Polygon::<f64>::try_from(value).map(|p| MultiPolygon::new(vec![p])).map_err(|e| e.to_string())
        }
        GeometryValue::MultiPolygon { .. } => MultiPolygon::<f64>::try_from(value).map_err(|e| e.to_string()),
        other => Err(format!("expected Polygon or MultiPolygon, got {}", other.type_name())),
    }
}

/// The shape of a stored geometry (written by [`parse`], so already checked).
pub(super) fn shape_from_json(text: &str) -> Result<MultiPolygon<f64>, String> {
    let geometry: Geometry = serde_json::from_str(text).map_err(|e| e.to_string())?;
    to_shape(&geometry.value)
}

/// The prefix every district code of `city` shares: the city's GB/T 2260 code
/// less its trailing `00` pairs (`320100` → `3201`, `110000` → `11`).
fn city_prefix(city: &str) -> &str {
    let mut prefix = city;
    while prefix.len() > 2 && prefix.ends_with("00") {
        prefix = &prefix[..prefix.len() - 2];
    }
    prefix
}

/// Check the file against itself and against what is stored: codes unique, a
/// stored code keeps its level, every parent exists at the level above, and
/// every code extends its parent's.
pub(super) fn check_hierarchy(features: &[Feature], stored: &HashMap<String, Level>) -> Result<(), ServiceError> {
    let mut in_file: HashMap<&str, &Feature> = HashMap::with_capacity(features.len());
    for f in features {
        if let Some(first) = in_file.insert(&f.code, f) {
            return Err(refuse(
                f.index,
                Some(&f.code),
                "properties.code",
                format!("the code appears twice (first at feature {})", first.index),
            ));
        }
        if let Some(&was) = stored.get(&f.code)
            && was != f.level
        {
            return Err(refuse(
                f.index,
                Some(&f.code),
                "properties.level",
                format!("`{}` differs from the stored level `{was}` of this code", f.level),
            ));
        }
    }
    for f in features {
        let (Some(parent), Some(expected)) = (&f.parent, f.level.parent()) else { continue };
        let who = Some(f.code.as_str());
        let extends = match expected {
            Level::City => f.code.starts_with(city_prefix(parent)) && f.code != *parent,
            _ => f.code.starts_with(parent.as_str()),
        };
        if !extends {
            return Err(refuse(
                f.index,
                who,
                "properties.code",
                format!("`{}` does not extend the code of its parent {expected} `{parent}`", f.code),
            ));
        }
        let level = match in_file.get(parent.as_str()) {
            Some(p) => p.level,
            None => match stored.get(parent) {
                Some(&l) => l,
                None => {
                    return Err(refuse(
                        f.index,
                        who,
                        "properties.parent",
                        format!("unknown area `{parent}`: neither in this file nor stored"),
                    ));
                }
            },
        };
        if level != expected {
            return Err(refuse(
                f.index,
                who,
                "properties.parent",
                format!("`{parent}` is a {level}, but the parent of a {} must be a {expected}", f.level),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::city_prefix;

    #[test]
    fn city_prefixes() {
        assert_eq!(city_prefix("320100"), "3201");
        assert_eq!(city_prefix("110000"), "11");
        assert_eq!(city_prefix("320102"), "320102");
    }
}
