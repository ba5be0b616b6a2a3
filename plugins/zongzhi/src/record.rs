//! What the plugin remembers in the data set `zongzhi-events`.
//!
//! Three kinds of record share the data set, told apart by `kind`:
//!
//! * `case` (key = the case id): one grid event, from its `case.reported` on,
//!   kept up to date by the lifecycle events the plugin follows;
//! * `overdue-visit` (key = `visit-<resident key>-<due ms>`): one overdue period
//!   of one vulnerable resident and the case opened for it;
//! * `weekly-summary` (key = `summary-<week>`): that the week's report went out;
//! * `visit-case` (key = `opened-<case>`): the overdue visit that opened a case, so
//!   that the case's `case.reported` finds its community by key.
//!
//! The first three carry `week` (the ISO week, in local time, of the day it
//! happened); the weekly report counts the cases and visits of a week from the
//! week's tallies, kept beside them ([`tally`](crate::tally)).

use yiwang_sdk::prelude::*;

/// The data set of the plugin's memory.
pub const EVENTS: &str = "zongzhi-events";
/// The data set of the residents to visit.
pub const RESIDENTS: &str = "vulnerable-residents";

/// `kind` of a grid event.
pub const KIND_CASE: &str = "case";
/// `kind` of an overdue visit.
pub const KIND_VISIT: &str = "overdue-visit";
/// `kind` of a sent weekly report.
pub const KIND_SUMMARY: &str = "weekly-summary";
/// `kind` of the pointer from a case the plugin opened to its overdue visit.
pub const KIND_OPENED: &str = "visit-case";

/// The key of the pointer from `case`, opened for an overdue visit, to the visit.
pub fn opened_key(case: &str) -> String {
    format!("opened-{case}")
}

/// `status` of a case still being handled.
pub const OPEN: &str = "open";
/// `status` of a closed case (结案).
pub const CLOSED: &str = "closed";
/// `status` of a case voided, rejected or merged into another: it will not close.
pub const WITHDRAWN: &str = "withdrawn";
/// `status` of an overdue visit whose case is being opened.
pub const OPENING: &str = "opening";

/// A call-in (街道吹哨、部门报到) of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct CallIn {
    /// The department called in; `None` when a dispatcher called one in by hand.
    pub department: Option<String>,
    /// `return`, `fail-check`, `overdue`, `request-extension`, or `manual`.
    pub signal: String,
    pub reason: String,
    /// When, in milliseconds since the epoch.
    pub at: i64,
    /// The route suggestion made for it, if the host took it.
    pub suggestion: Option<String>,
}

/// One record of `zongzhi-events`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde", default)]
pub struct EventRecord {
    pub kind: String,
    /// The case: the grid event's, or the one opened for an overdue visit.
    pub case: Option<String>,
    /// The category code.
    pub category: String,
    /// The 14-digit grid code, when known.
    pub grid: Option<String>,
    /// The 12-digit community code.
    pub community: String,
    /// The 9-digit street code.
    pub street: String,
    /// ISO week in local time, `2026-W48`.
    pub week: String,
    /// When it happened (the report, the day checked), ms since the epoch.
    pub time: i64,
    /// `open`, `closed`, `withdrawn`; `opening` for a visit whose case is not open yet.
    pub status: String,
    /// Whether the case was escalated by a call-in (once per case).
    pub escalated: bool,

    /// The report's channel (`patrol`, `hotline`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The department the case is with, as the last lifecycle event said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The command level the case is handled at, when the plugin knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// The plugin's last route suggestion for the case, and the level it proposed:
    /// a dispatch that accepts it puts the case at that level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_level: Option<String>,
    /// Failed checks (返工) so far.
    pub fail_checks: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_in: Option<CallIn>,

    /// The resident's record key (overdue visits only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident: Option<String>,
    /// When the visit fell due, ms since the epoch: with `resident`, the overdue period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<i64>,
    /// The case opened for the overdue visit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overdue_case: Option<String>,

    /// Last change, ms since the epoch.
    pub updated: i64,
}

/// The record under `key`; one that is not the expected JSON is logged and treated as absent.
pub fn load(key: &str) -> Result<Option<EventRecord>, Error> {
    let Some(record) = data::get(EVENTS, key)? else {
        return Ok(None);
    };
    match record.value_json::<EventRecord>() {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            warn!("ignored record `{key}` of {EVENTS}: {e}");
            Ok(None)
        }
    }
}

/// Stores `record` under `key`.
pub fn store(key: &str, record: &EventRecord) -> Result<(), Error> {
    data::put(EVENTS, key, record)
}

/// The 12-digit community and 9-digit street of a 14-digit grid code.
pub fn community_of(grid: &str) -> Option<(String, String)> {
    is_code(grid, 14).then(|| (grid[..12].to_owned(), grid[..9].to_owned()))
}

/// Whether `code` is exactly `len` ASCII digits.
pub fn is_code(code: &str, len: usize) -> bool {
    code.len() == len && code.bytes().all(|b| b.is_ascii_digit())
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Every record of `EVENTS` (or another data set) matching `filters`, page by page,
/// at most `max_pages` pages; the records and whether the page limit cut them short.
pub fn query_all(
    dataset: &str,
    filters: &[data::FieldFilter],
    page_size: u32,
    max_pages: u32,
) -> Result<(Vec<data::Record>, bool), Error> {
    let mut all = Vec::new();
    for page in 0..max_pages {
        let records = data::query(dataset, filters, page * page_size, page_size)?;
        let last = (records.len() as u32) < page_size;
        all.extend(records);
        if last {
            return Ok((all, false));
        }
    }
    Ok((all, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_codes_give_community_and_street() {
        assert_eq!(
            community_of("32010200100101"),
            Some(("320102001001".into(), "320102001".into()))
        );
        for bad in [
            "3201020010010",
            "320102001001011",
            "3201020010010A",
            "",
            "３２０１０２００１００１０１",
        ] {
            assert_eq!(community_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn clipping_counts_characters() {
        assert_eq!(clip("街道吹哨", 10), "街道吹哨");
        assert_eq!(clip("街道吹哨部门报到", 5), "街道吹哨…");
    }

    #[test]
    fn records_read_back_with_defaults() {
        let r: EventRecord = yiwang_sdk::serde_json::from_str(r#"{"kind":"case","case":"c1"}"#).unwrap();
        assert_eq!(
            (r.kind.as_str(), r.case.as_deref(), r.fail_checks, r.escalated),
            ("case", Some("c1"), 0, false)
        );
        let text = yiwang_sdk::serde_json::to_value(&r).unwrap();
        for field in [
            "case",
            "category",
            "grid",
            "community",
            "street",
            "week",
            "time",
            "status",
            "escalated",
        ] {
            assert!(text.get(field).is_some(), "{field} is always written: {text}");
        }
    }
}
