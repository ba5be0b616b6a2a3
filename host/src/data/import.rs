//! Reading bulk imports: CSV and JSON files into [`ImportRow`]s.
//!
//! - **CSV** (UTF-8, a header row, a leading BOM ignored): each column is a field;
//!   a dotted header (`location.lat`) builds a nested object. A cell is typed by
//!   the field's declared type in the data set's schema (`integer`, `number`,
//!   `boolean`, `object`/`array` as JSON; a string otherwise); an empty cell leaves
//!   the field out. Errors name the line and column.
//! - **JSON**: an array of record objects, or one object per line (NDJSON).
//!
//! For a data set without a key field, the reserved field `_key` (a column, or a
//! member of each object) gives each record's key and is not stored.

use serde_json::{Map, Value};

use super::records::ImportRow;
use super::schema::CompiledSchema;
use super::{Data, Dataset};
use crate::error::ServiceError;

/// The formats an import may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    /// From a name (`csv`, `json`, `ndjson`) or a file extension.
    pub fn parse(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "csv" | "text/csv" => Some(Format::Csv),
            "json" | "ndjson" | "jsonl" | "application/json" | "application/x-ndjson" => Some(Format::Json),
            _ => None,
        }
    }
}

/// The reserved field naming a record's key.
pub const KEY: &str = "_key";

const MAX_PROBLEMS: usize = 20;

impl Data {
    /// Read an import for `dataset` from `bytes`.
    pub async fn parse_import(&self, dataset: &str, format: Format, bytes: &[u8]) -> Result<Vec<ImportRow>, ServiceError> {
        let set = self.dataset(dataset).await?.ok_or_else(|| ServiceError::NotFound(format!("no data set `{dataset}`")))?;
        let schema = self.schemas.get(&set.name, &set.schema)?;
        let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        let rows = match format {
            Format::Csv => parse_csv(&schema, bytes)?,
            Format::Json => parse_json(bytes)?,
        };
        rows.into_iter().map(|r| take_key(&set, r)).collect()
    }
}

/// Move `_key` out of the value.
fn take_key(set: &Dataset, mut row: ImportRow) -> Result<ImportRow, ServiceError> {
    let key = match row.value.as_object_mut().and_then(|o| o.remove(KEY)) {
        None => None,
        Some(Value::String(k)) => Some(k),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(ServiceError::Invalid(format!("{}: field `{KEY}` must be a string", row.origin))),
    };
    if key.is_some() && set.key_field.is_some() {
        return Err(ServiceError::Invalid(format!(
            "{}: data set `{}` keys its records by `{}`; drop the `{KEY}` field",
            row.origin,
            set.name,
            set.key_field.as_deref().unwrap_or_default()
        )));
    }
    row.key = key;
    Ok(row)
}

fn parse_json(bytes: &[u8]) -> Result<Vec<ImportRow>, ServiceError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ServiceError::Invalid(format!("the file is not UTF-8: {e}")))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(text)
            .map_err(|e| ServiceError::Invalid(format!("line {}, column {}: {e}", e.line(), e.column())))?;
        return Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, value)| ImportRow { origin: format!("item {}", i + 1), key: None, value })
            .collect());
    }
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| ServiceError::Invalid(format!("line {}, column {}: {e}", i + 1, e.column())))?;
        rows.push(ImportRow { origin: format!("line {}", i + 1), key: None, value });
    }
    Ok(rows)
}

fn parse_csv(schema: &CompiledSchema, bytes: &[u8]) -> Result<Vec<ImportRow>, ServiceError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ServiceError::Invalid(format!("the header row: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    for (i, h) in headers.iter().enumerate() {
        if h != KEY && !super::records::valid_field(h) {
            return Err(ServiceError::Invalid(format!(
                "the header row, column {}: `{h}` is not a field name (letters, digits, `_`, `-`, `.` between names)",
                i + 1
            )));
        }
        if headers[..i].contains(h) {
            return Err(ServiceError::Invalid(format!("the header row: column `{h}` appears twice")));
        }
    }
    let types: Vec<Option<String>> = headers.iter().map(|h| schema.field_type(h).map(str::to_owned)).collect();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            ServiceError::Invalid(format!("line {line}: {e}"))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let mut object = Map::new();
        for ((header, ty), cell) in headers.iter().zip(&types).zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            match typed(cell, ty.as_deref()) {
                Ok(v) => insert_dotted(&mut object, header, v),
                Err(m) => {
                    if problems.len() < MAX_PROBLEMS {
                        problems.push(format!("line {line}, column `{header}`: {m}"));
                    }
                }
            }
        }
        rows.push(ImportRow { origin: format!("line {line}"), key: None, value: Value::Object(object) });
    }
    if !problems.is_empty() {
        return Err(ServiceError::Invalid(problems.join("; ")));
    }
    Ok(rows)
}

fn typed(cell: &str, ty: Option<&str>) -> Result<Value, String> {
    match ty {
        Some("integer") => cell.parse::<i64>().map(Value::from).map_err(|_| format!("`{cell}` is not an integer")),
        Some("number") => cell
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{cell}` is not a number")),
        Some("boolean") => match cell.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "是" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "否" => Ok(Value::Bool(false)),
            _ => Err(format!("`{cell}` is not a boolean (true/false)")),
        },
        Some("object" | "array") => serde_json::from_str(cell).map_err(|e| format!("`{cell}` is not JSON: {e}")),
        _ => Ok(Value::String(cell.to_owned())),
    }
}

fn insert_dotted(object: &mut Map<String, Value>, dotted: &str, value: Value) {
    match dotted.split_once('.') {
        None => {
            object.insert(dotted.to_owned(), value);
        }
        Some((head, rest)) => {
            let child = object.entry(head.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            if let Value::Object(m) = child {
                insert_dotted(m, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn csv_cells_are_typed_by_the_schema_and_nested_by_dots() {
        let schema = CompiledSchema::compile(&json!({
            "type": "object",
            "properties": {
                "n": {"type": "integer"},
                "ok": {"type": "boolean"},
                "location": {"type": "object", "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}}
            }
        }))
        .unwrap();
        let csv = "code,n,ok,location.lat,location.lon,note\n0001,3,是,32.05,118.78,\n0002,4,false,32.06,118.79,路口\n";
        let rows = parse_csv(&schema, csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].origin, "line 2");
        assert_eq!(rows[0].value, json!({"code": "0001", "n": 3, "ok": true, "location": {"lat": 32.05, "lon": 118.78}}));
        assert_eq!(rows[1].value["note"], "路口");

        let bad = "code,n\n0001,three\n0002,4.5\n";
        let err = parse_csv(&schema, bad.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("line 2, column `n`: `three` is not an integer"), "{err}");
        assert!(err.contains("line 3, column `n`"), "{err}");

        let ragged = "code,n\n0001\n";
        assert!(parse_csv(&schema, ragged.as_bytes()).unwrap_err().to_string().contains("line 2"));
        let header = "code,bad name\n";
        assert!(parse_csv(&schema, header.as_bytes()).unwrap_err().to_string().contains("`bad name`"));
    }

    #[test]
    fn json_arrays_and_lines() {
        let rows = parse_json(br#"[{"a": 1}, {"a": 2}]"#).unwrap();
        assert_eq!((rows.len(), rows[1].origin.as_str()), (2, "item 2"));
        let rows = parse_json(b"{\"a\": 1}\n\n{\"a\": 2}\n").unwrap();
        assert_eq!(rows[1].origin, "line 3");
        let err = parse_json(b"{\"a\": 1}\n{\"a\": \n").unwrap_err().to_string();
        assert!(err.starts_with("line 2"), "{err}");
    }
}
