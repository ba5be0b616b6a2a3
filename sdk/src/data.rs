//! The data foundation (城市数据一网共享): structured records and IoT readings.
//!
//! Reading a data set needs it in the `[grants] data-read` list, writing it in
//! `data-write`; sensor readings need `iot:<sensor-kind>` in `data-read`.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::__private::bindings::yiwang::gov::data::{FieldFilter, Reading, Record};
use crate::sys;
use crate::{Error, Timestamp};

impl Record {
    /// Parses the record's JSON value into `T`; a mismatch is [`Error::Invalid`].
    pub fn value_json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.value).map_err(|err| {
            Error::Invalid(format!(
                "record `{}` is not the expected JSON: {err}",
                self.key
            ))
        })
    }
}

/// A filter for [`query`]: the field `field` equals `value`.
///
/// ```
/// let filter = yiwang_sdk::data::eq("district", "310101");
/// assert_eq!(filter.value, r#""310101""#);
/// assert_eq!(yiwang_sdk::data::eq("floors", 6).value, "6");
/// ```
pub fn eq(field: &str, value: impl Into<serde_json::Value>) -> FieldFilter {
    FieldFilter {
        field: field.to_owned(),
        value: value.into().to_string(),
    }
}

/// Reads one record, or `None` if the key is absent.
pub fn get(dataset: &str, key: &str) -> Result<Option<Record>, Error> {
    sys::data::get(dataset, key)
}

/// Reads one record and parses its value into `T`.
pub fn get_json<T: DeserializeOwned>(dataset: &str, key: &str) -> Result<Option<T>, Error> {
    get(dataset, key)?
        .map(|record| record.value_json())
        .transpose()
}

/// Records whose fields equal every filter, in key order, `limit` at most from `offset`.
pub fn query(
    dataset: &str,
    filters: &[FieldFilter],
    offset: u32,
    limit: u32,
) -> Result<Vec<Record>, Error> {
    sys::data::query(dataset, filters, offset, limit)
}

/// Inserts or replaces one record, serialising `value` as a JSON object.
pub fn put<T: Serialize + ?Sized>(dataset: &str, key: &str, value: &T) -> Result<(), Error> {
    let value = serde_json::to_string(value).map_err(|err| {
        Error::Invalid(format!(
            "value for `{dataset}/{key}` does not serialise: {err}"
        ))
    })?;
    sys::data::put(dataset, key, &value)
}

/// Inserts or replaces one record whose value is already a JSON document.
pub fn put_raw(dataset: &str, key: &str, value_json: &str) -> Result<(), Error> {
    sys::data::put(dataset, key, value_json)
}

/// Readings of `sensor` with `from <= time < to` (milliseconds since the epoch), oldest
/// first.
pub fn readings(sensor: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Reading>, Error> {
    sys::data::readings(sensor, from, to)
}
