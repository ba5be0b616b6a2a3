//! The week's figures, kept as they happen: what the weekly report reads.
//!
//! Every case and every overdue visit with a case that the weekly report counts
//! ([`summary`](crate::summary)) has an [`Entry`] in the record
//! `tally-<week>-<community>` of its ISO week and community ([`CommunityWeek`]),
//! under the key of its own record: its kind, category, status and whether it was
//! escalated. The plugin keeps the entry whenever it stores a change of what it says
//! ([`keep`]), so the entry says what the record says. The record `tally-<week>`
//! ([`WeekCommunities`]) lists the communities that have one for the week.
//!
//! On `time.week` the report reads these by key ([`records_of`]): what it reads is
//! the week's, however long the plugin has run, where a query of the week's records
//! would scan every record the plugin has ever kept. Weeks up to the one in which the
//! plugin kept its first entry (record `tally-since`, [`Since`]) may hold records from
//! before the tallies: they are counted from their records, as they always were
//! ([`tallied`]).
//!
//! Keeping an entry is idempotent: an event delivered again, or handled again after a
//! failure, sets the same entry.

use std::collections::BTreeMap;

use yiwang_sdk::prelude::*;

use crate::calendar::{self, LocalTime};
use crate::record::{self, EventRecord};

/// `kind` of a community's tally for a week.
pub const KIND_TALLY: &str = "week-tally";
/// `kind` of the list of communities with a tally for a week.
pub const KIND_WEEK: &str = "week-communities";
/// `kind` of the record saying since when the tallies are kept.
pub const KIND_SINCE: &str = "tally-since";
/// The key of the [`Since`] record.
pub const SINCE_KEY: &str = "tally-since";

/// What the weekly report counts of one record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde", default)]
pub struct Entry {
    /// `case` or `overdue-visit`.
    pub kind: String,
    pub category: String,
    /// A case's status: `open`, `closed` or `withdrawn`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Whether a case was escalated by a call-in.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub escalated: bool,
}

impl Entry {
    /// The entry of `r`, if the weekly report counts it: a case, or an overdue visit
    /// for which a case was opened.
    pub fn of(r: &EventRecord) -> Option<Entry> {
        match r.kind.as_str() {
            record::KIND_CASE => Some(Entry {
                kind: r.kind.clone(),
                category: r.category.clone(),
                status: r.status.clone(),
                escalated: r.escalated,
            }),
            record::KIND_VISIT if r.overdue_case.is_some() => Some(Entry {
                kind: r.kind.clone(),
                category: r.category.clone(),
                status: String::new(),
                escalated: false,
            }),
            _ => None,
        }
    }
}

/// The tally of one community for one week, key `tally-<week>-<community>`: its
/// size is the community's cases and visits of that week.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde", default)]
pub struct CommunityWeek {
    /// Always [`KIND_TALLY`].
    pub kind: String,
    pub week: String,
    pub community: String,
    pub street: String,
    /// By the key of the record counted.
    pub entries: BTreeMap<String, Entry>,
}

/// The communities with a tally for a week, key `tally-<week>`, in code order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde", default)]
pub struct WeekCommunities {
    /// Always [`KIND_WEEK`].
    pub kind: String,
    pub week: String,
    pub communities: Vec<String>,
}

/// Since when the tallies are kept, key [`SINCE_KEY`]: the week of the event that
/// kept the first entry. The weeks after it are all tallied.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde", default)]
pub struct Since {
    /// Always [`KIND_SINCE`].
    pub kind: String,
    pub week: String,
}

fn tally_key(week: &str, community: &str) -> String {
    format!("tally-{week}-{community}")
}

fn week_key(week: &str) -> String {
    format!("tally-{week}")
}

/// A record of `zongzhi-events` as `T`; one that does not parse is logged and absent.
fn load<T: for<'de> Deserialize<'de>>(key: &str) -> Result<Option<T>, Error> {
    match data::get_json::<T>(record::EVENTS, key) {
        Ok(found) => Ok(found),
        Err(Error::Invalid(m)) => {
            warn!("ignored record `{key}` of {}: {m}", record::EVENTS);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Keeps the entry of record `key` (just stored as `r`) in its week's tally. `now` is
/// the time of the event being handled. Does nothing for a record the report does not
/// count, and writes nothing when the entry is unchanged.
pub fn keep(local: LocalTime, key: &str, r: &EventRecord, now: i64) -> Result<(), Error> {
    let Some(entry) = Entry::of(r) else { return Ok(()) };
    // The report leaves these out (and says so when it reads the records).
    if !record::is_code(&r.community, 12) || calendar::parse_week(&r.week).is_none() {
        return Ok(());
    }
    let tkey = tally_key(&r.week, &r.community);
    let mut tally = match load::<CommunityWeek>(&tkey)? {
        Some(t) => t,
        None => {
            list_community(local, &r.week, &r.community, now)?;
            CommunityWeek {
                kind: KIND_TALLY.into(),
                week: r.week.clone(),
                community: r.community.clone(),
                street: r.street.clone(),
                entries: BTreeMap::new(),
            }
        }
    };
    if tally.entries.get(key) == Some(&entry) {
        return Ok(());
    }
    tally.entries.insert(key.to_owned(), entry);
    data::put(record::EVENTS, &tkey, &tally)
}

/// Lists `community` among the week's, before its tally is first written (so that a
/// tally is never left out of the report); the first list ever marks [`Since`].
fn list_community(local: LocalTime, week: &str, community: &str, now: i64) -> Result<(), Error> {
    let key = week_key(week);
    let mut listed = match load::<WeekCommunities>(&key)? {
        Some(w) => w,
        None => {
            if load::<Since>(SINCE_KEY)?.is_none() {
                let since = Since {
                    kind: KIND_SINCE.into(),
                    week: local.week_of(now),
                };
                data::put(record::EVENTS, SINCE_KEY, &since)?;
            }
            WeekCommunities {
                kind: KIND_WEEK.into(),
                week: week.to_owned(),
                communities: Vec::new(),
            }
        }
    };
    match listed.communities.binary_search_by(|c| c.as_str().cmp(community)) {
        Ok(_) => Ok(()),
        Err(at) => {
            listed.communities.insert(at, community.to_owned());
            data::put(record::EVENTS, &key, &listed)
        }
    }
}

/// Whether every record of `week` is in its tallies: the week comes after the one of
/// [`Since`]. Otherwise the week may hold records from before the tallies.
pub fn tallied(week: &str) -> Result<bool, Error> {
    let Some(since) = load::<Since>(SINCE_KEY)? else { return Ok(false) };
    Ok(match (calendar::parse_week(week), calendar::parse_week(&since.week)) {
        (Some(w), Some(s)) => w > s,
        _ => false,
    })
}

/// The week's counted records as the tallies hold them (what the report needs of
/// each), community by community, read by key.
pub fn records_of(week: &str) -> Result<Vec<EventRecord>, Error> {
    let Some(listed) = load::<WeekCommunities>(&week_key(week))? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for community in &listed.communities {
        let Some(tally) = load::<CommunityWeek>(&tally_key(week, community))? else {
            continue;
        };
        for (key, e) in tally.entries {
            let visit = e.kind == record::KIND_VISIT;
            out.push(EventRecord {
                kind: e.kind,
                category: e.category,
                community: tally.community.clone(),
                street: tally.street.clone(),
                week: week.to_owned(),
                status: e.status,
                escalated: e.escalated,
                // The report counts a visit that has a case; which one it does not say.
                overdue_case: visit.then_some(key),
                ..EventRecord::default()
            });
        }
    }
    Ok(out)
}
