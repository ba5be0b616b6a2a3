//! A data set's declared schema, compiled once per schema text: JSON Schema
//! validation with errors that name the field, the declared type of a field (for
//! typing CSV cells and query-string filters), and the fields a department is
//! expected to fill (for completeness).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use crate::error::ServiceError;

/// A compiled schema.
pub struct CompiledSchema {
    text: String,
    validator: jsonschema::Validator,
    raw: Value,
}

/// The most errors reported for one record.
const MAX_ERRORS: usize = 5;

impl CompiledSchema {
    /// Compile `raw`; an invalid schema is refused with what is wrong with it.
    pub fn compile(raw: &Value) -> Result<CompiledSchema, ServiceError> {
        if !raw.is_object() {
            return Err(ServiceError::Invalid("schema: must be a JSON Schema object".into()));
        }
        if raw.get("type").and_then(Value::as_str).is_some_and(|t| t != "object") {
            return Err(ServiceError::Invalid("schema: records are JSON objects, so `type` must be `object`".into()));
        }
        if let Err(e) = jsonschema::meta::validate(raw) {
            return Err(ServiceError::Invalid(format!("schema{}: {e}", pointer_suffix(&e.instance_path().to_string()))));
        }
        let validator =
            jsonschema::validator_for(raw).map_err(|e| ServiceError::Invalid(format!("schema: {e}")))?;
        Ok(CompiledSchema { text: raw.to_string(), validator, raw: raw.clone() })
    }

    /// The schema's violations by `value`, each naming the field: at most five.
    pub fn violations(&self, value: &Value) -> Vec<String> {
        self.validator
            .iter_errors(value)
            .take(MAX_ERRORS)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() { format!("{e}") } else { format!("field `{path}`: {e}") }
            })
            .collect()
    }

    /// The declared JSON type of the field at a dotted path (`location.lat`), if
    /// the schema says; a union type gives its first non-null member.
    pub fn field_type(&self, dotted: &str) -> Option<&str> {
        let mut node = &self.raw;
        for part in dotted.split('.') {
            node = node.get("properties")?.get(part)?;
        }
        match node.get("type")? {
            Value::String(t) => Some(t.as_str()),
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
            _ => None,
        }
    }

    /// The top-level fields a record is expected to fill: `required` and the
    /// `x-expected` extension (fields a write may omit but the owner should fill).
    pub fn expected_fields(&self) -> Vec<String> {
        let list = |k: &str| -> Vec<String> {
            self.raw.get(k).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
        };
        let mut fields = list("required");
        for f in list("x-expected") {
            if !fields.contains(&f) {
                fields.push(f);
            }
        }
        fields
    }
}

fn pointer_suffix(path: &str) -> String {
    if path.is_empty() { String::new() } else { format!(" at `{path}`") }
}

/// Compiled schemas by data set, recompiled when the stored text changes (so a
/// schema changed by another node is picked up on the next write).
#[derive(Default)]
pub struct SchemaCache {
    by_dataset: Mutex<HashMap<String, Arc<CompiledSchema>>>,
}

impl SchemaCache {
    pub fn get(&self, dataset: &str, raw: &Value) -> Result<Arc<CompiledSchema>, ServiceError> {
        let text = raw.to_string();
        if let Some(s) = self.by_dataset.lock().get(dataset)
            && s.text == text
        {
            return Ok(s.clone());
        }
        let compiled = Arc::new(CompiledSchema::compile(raw).map_err(|e| match e {
            ServiceError::Invalid(m) => {
                ServiceError::Storage(anyhow::anyhow!("data set `{dataset}`: the stored schema is unusable: {m}"))
            }
            other => other,
        })?);
        self.by_dataset.lock().insert(dataset.to_owned(), compiled.clone());
        Ok(compiled)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn violations_name_the_field() {
        let s = CompiledSchema::compile(&json!({
            "type": "object",
            "required": ["code"],
            "properties": {
                "code": {"type": "string", "pattern": "^[0-9]{16}$"},
                "location": {"type": "object", "properties": {"lat": {"type": "number", "maximum": 90}}}
            }
        }))
        .unwrap();
        assert!(s.violations(&json!({"code": "3201020101000001"})).is_empty());
        let v = s.violations(&json!({"code": "12", "location": {"lat": 200}}));
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().any(|m| m.starts_with("field `/code`")), "{v:?}");
        assert!(v.iter().any(|m| m.starts_with("field `/location/lat`") && m.contains("90")), "{v:?}");
        let missing = s.violations(&json!({}));
        assert!(missing[0].contains("code"), "{missing:?}");
        assert_eq!(s.field_type("location.lat"), Some("number"));
        assert_eq!(s.field_type("nope"), None);
    }

    #[test]
    fn bad_schemas_are_refused() {
        for bad in [json!([1]), json!({"type": "array"}), json!({"type": "object", "properties": {"a": {"type": 5}}})] {
            assert!(matches!(CompiledSchema::compile(&bad), Err(ServiceError::Invalid(_))), "{bad}");
        }
    }
}
