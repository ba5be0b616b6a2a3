//! A mock host for unit tests of plugin logic, natively, with plain `cargo test`.
//!
//! Compiled natively there is no Yiwang host. [`MockHost`] stands in for it: build one
//! with the plugin's identity, configuration, grants and the data its calls should see,
//! then [`install`](MockHost::install) it. Until the returned [`InstalledHost`] is
//! dropped, every host call made on the same thread (`bus::publish`, `data::get`,
//! `cases::open_case`, `config::get`, the logging macros, ...) goes to the mock, which
//! answers like the host and records the call. The test then asks the
//! [`InstalledHost`] what happened: [`published`](InstalledHost::published),
//! [`cases_opened`](InstalledHost::cases_opened),
//! [`warnings_raised`](InstalledHost::warnings_raised),
//! [`denials`](InstalledHost::denials), [`logs`](InstalledHost::logs) and the others.
//!
//! ```
//! use yiwang_sdk::mock::{MockHost, WarningOrigin};
//! use yiwang_sdk::prelude::*;
//!
//! /// Publishes a flood alert and opens a case when the water is above `warn-level`.
//! struct Levels;
//!
//! impl Plugin for Levels {
//!     fn handle(event: Event) -> Result<(), Error> {
//!         let level: f64 = config::get_parsed("warn-level")?;
//!         let value: f64 = event.payload_value()?["value"].as_f64().unwrap_or(f64::NAN);
//!         if value > level {
//!             bus::publish("warning.flood", &json!({ "value": value }), event.location)?;
//!             cases::open_case(&CaseDraft {
//!                 category_code: "0501".into(),
//!                 title: "积水".into(),
//!                 description: format!("water at {value} m"),
//!                 location: event.location,
//!                 channel: SourceChannel::Department,
//!                 evidence: Vec::new(),
//!             })?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_plugin!(Levels);
//!
//! # fn main() -> Result<(), Error> {
//! // Grants, config and identity as `plugin.toml` would give them (or load the file
//! // itself with `MockHost::manifest("plugin.toml")`).
//! let host = MockHost::new()
//!     .plugin("levels")
//!     .department("yingji")
//!     .config("warn-level", "3.0")
//!     .grant_publish(["warning.*"])
//!     .grant_cases(["open"])
//!     .install();
//!
//! let at = GeoPoint::new(32.04, 118.78);
//! Levels::handle(Event::test("iot.reading.water-level", json!({ "value": 3.4 })).with_location(at))?;
//! Levels::handle(Event::test("iot.reading.water-level", json!({ "value": 2.1 })))?;
//!
//! let published = host.published();
//! assert_eq!(published.len(), 1);
//! assert_eq!(published[0].topic, "warning.flood");
//! assert_eq!(published[0].payload, json!({ "value": 3.4 }));
//! assert_eq!(published[0].location, Some(at));
//! assert_eq!(host.cases_opened()[0].id, "case-1");
//!
//! // Outside the grants, the mock answers `denied` like the host, and records it.
//! assert!(matches!(bus::publish("secret.topic", &json!({}), None), Err(Error::Denied(_))));
//! assert_eq!(host.denials()[0].action, "bus.publish");
//! assert_eq!(identity::whoami().id, "plugin:levels");
//!
//! // Dropped, the mock is gone: host calls answer `unavailable` again.
//! drop(host);
//! assert!(matches!(bus::publish("warning.flood", &json!({}), None), Err(Error::Unavailable(_))));
//! # Ok(())
//! # }
//! ```
//!
//! # What the mock models
//!
//! * **Grants.** With no grant given, every call is allowed. As soon as one is given
//!   ([`grant_publish`](MockHost::grant_publish) and friends,
//!   [`enforce_grants`](MockHost::enforce_grants), or a manifest loaded with
//!   [`manifest`](MockHost::manifest)), grants are deny-by-default as in the host: a call
//!   they do not cover answers [`Error::Denied`] with the host's message and is recorded
//!   in [`denials`](InstalledHost::denials). Topic patterns follow NATS (`*` is one
//!   segment, `>` as the last segment one or more); data sets are named exactly;
//!   sensors need `iot:<kind>` in `data-read`; case operations are `open`, `note`,
//!   `evidence`, `warn` and `route`; message grants are `user:<id>`,
//!   `role:<org-unit>/<role>`, `department:<code>` and `org-unit:<code>`, each part
//!   possibly `*`.
//! * **Checks of the arguments**, as the host makes them: topics (`[a-z0-9_-]`
//!   segments), payloads that are JSON (at most 256 KiB), locations on the globe,
//!   records that are JSON objects, query filters that are JSON scalars, evidence that
//!   is a lowercase sha256 digest, warnings with an event, a headline and a valid area,
//!   route suggestions with a known department, a score from 0 to 1 and a reason of
//!   1-500 characters, one pending suggestion per case.
//! * **State.** `cases::open_case` returns `case-1`, `case-2`, ...; notes, evidence
//!   and route suggestions need a case opened through the mock or declared with
//!   [`case`](MockHost::case) (otherwise [`Error::NotFound`]). `data::put` then
//!   `data::get` returns the record; `data::query` filters on (dotted) fields in key
//!   order. Other ids are `event-<n>`, `warning-<n>`, `suggestion-<n>`, `message-<n>`.
//!   A warning the plugin raised (or one declared with
//!   [`warning_of`](MockHost::warning_of)) may be updated and cancelled as the host
//!   allows: by its raiser alone ([`Error::Denied`] otherwise), not once cancelled
//!   ([`Error::Conflict`]); [`warning_changes`](InstalledHost::warning_changes)
//!   lists each change with the chain's earlier messages.
//!
//! The mock does not model data sharing between departments, the rate limits
//! (`publish-per-second`, `cases-`, `warnings-` and `messages-per-minute`), CPU or
//! memory limits, or the dispatcher settling route suggestions.
//!
//! # Threads
//!
//! An installed mock belongs to the thread that installed it. Tests run in parallel on
//! separate threads, so each test sees only its own host. Host calls made on another
//! thread (one the test spawns) see no mock and answer [`Error::Unavailable`].
//! Installing a second mock on the same thread shadows the first until the second is
//! dropped.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::rc::Rc;

use serde::Serialize;
use serde_json::Value;

use crate::cases::RouteSuggestion;
use crate::data::{FieldFilter, Reading, Record};
use crate::identity::{Department, Principal, User};
use crate::log::Level;
use crate::messaging::Recipient;
use crate::{AreaShape, CaseDraft, Error, Event, GeoPoint, Plugin, Timestamp, Warning};
use yiwang_wit::grants::{CaseOp, DataAccess, DataTarget, Grants, MessageTarget, Recipient as GrantRecipient};
use yiwang_wit::{Topic, TopicPattern};

/// A call the grants refused, as the host audits it: the action, what the call
/// named, and why; [`Denial::message`] is the text of the plugin's `denied` error.
/// The decision and its words are the contract's (`yiwang_wit::grants`), which the
/// host shares.
pub use yiwang_wit::Denial;

/// The host's actions, as named in denials and accepted by [`MockHost::fail`].
const ACTIONS: [&str; 13] = [
    "identity.department",
    "identity.users-with-role",
    "bus.publish",
    "data.get",
    "data.query",
    "data.put",
    "data.readings",
    "cases.open-case",
    "cases.add-note",
    "cases.add-evidence",
    "cases.raise-warning",
    "cases.suggest-route",
    "messaging.send",
];

/// The largest payload a plugin may publish, as in the host.
const MAX_PAYLOAD: usize = 256 * 1024;
/// The largest page `data::query` returns, as in the host.
const MAX_PAGE: u32 = 1000;
/// The longest reason of a route suggestion, in characters.
const MAX_REASON_CHARS: usize = 500;
/// The longest note, in bytes.
const MAX_NOTE: usize = 64 * 1024;

// -------------------------------------------------------------------------------------
// What the test reads back.

/// An event the plugin published.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    /// The event's id, as returned to the plugin: `event-<n>`.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// The payload, parsed.
    pub payload: Value,
    /// Where it happened, if the plugin said.
    pub location: Option<GeoPoint>,
}

/// A case the plugin opened.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenedCase {
    /// The case's id, as returned to the plugin: `case-<n>`.
    pub id: String,
    /// What the plugin submitted.
    pub draft: CaseDraft,
}

/// A note the plugin added to a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseNote {
    /// The case.
    pub case_id: String,
    /// The note.
    pub text: String,
}

/// Evidence the plugin attached to a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseEvidence {
    /// The case.
    pub case_id: String,
    /// The blob's sha256 digest.
    pub digest: String,
}

/// How a warning reached the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WarningOrigin {
    /// Through [`cases::raise_warning`](crate::cases::raise_warning), which needs `warn`
    /// in the case grants.
    Raised,
    /// Returned by [`Plugin::evaluate`] and stored by [`InstalledHost::deliver`], as
    /// the host stores a model's warnings (no grant needed).
    Returned,
}

/// A warning the host stored for the plugin.
#[derive(Clone, Debug, PartialEq)]
pub struct RaisedWarning {
    /// The warning's id: `warning-<n>`.
    pub id: String,
    /// Whether the plugin raised it or returned it from `evaluate`.
    pub origin: WarningOrigin,
    /// The warning.
    pub warning: Warning,
}

/// A change the plugin made to a warning it raised.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// `cases::update_warning`: what the warning says now.
    Update(Warning),
    /// `cases::cancel_warning`: why.
    Cancel(String),
}

/// An update or cancel of a warning, as the host stores it: a message of the
/// warning's chain (CAP `Update` or `Cancel`).
#[derive(Clone, Debug, PartialEq)]
pub struct WarningChange {
    /// The change's own id: `warning-<n>`.
    pub id: String,
    /// The warning the call named.
    pub of: String,
    /// The ids of the chain's earlier messages, oldest first: what the change's CAP
    /// `references` names. The first is the warning as first raised.
    pub references: Vec<String>,
    /// What changed.
    pub change: Change,
}

/// A warning's chain: who raised it, its messages, whether it was cancelled.
#[derive(Clone, Debug)]
struct Chain {
    raiser: String,
    messages: Vec<String>,
    cancelled: bool,
}

/// A route the plugin suggested for a case.
#[derive(Clone, Debug, PartialEq)]
pub struct SuggestedRoute {
    /// The suggestion's id, as returned to the plugin: `suggestion-<n>`.
    pub id: String,
    /// The case.
    pub case_id: String,
    /// The suggestion.
    pub suggestion: RouteSuggestion,
}

/// A message the plugin sent.
#[derive(Clone, Debug, PartialEq)]
pub struct SentMessage {
    /// The message's id, as returned to the plugin: `message-<n>`.
    pub id: String,
    /// The recipient.
    pub to: Recipient,
    /// The subject.
    pub subject: String,
    /// The body.
    pub body: String,
}

/// A record the plugin wrote with `data::put`.
#[derive(Clone, Debug, PartialEq)]
pub struct DataWrite {
    /// The data set.
    pub dataset: String,
    /// The record's key.
    pub key: String,
    /// The value written.
    pub value: Value,
}

/// A line the plugin logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The level.
    pub level: Level,
    /// The line.
    pub message: String,
}

// -------------------------------------------------------------------------------------
// Grants.

/// Adds one entry of a `[grants]` list, parsed as the host parses `plugin.toml`.
fn add_grant(grants: &mut Grants, list: &str, entry: &str) -> Result<(), String> {
    match list {
        "publish" => grants.publish.push(TopicPattern::parse(entry).map_err(|e| e.to_string())?),
        "data-read" => grants.data_read.push(DataTarget::parse(entry, DataAccess::Read)?),
        "data-write" => grants.data_write.push(DataTarget::parse(entry, DataAccess::Write)?),
        "cases" => grants.cases.push(CaseOp::parse(entry)?),
        "message" => grants.message.push(MessageTarget::parse(entry)?),
        other => unreachable!("no grant list `{other}`"),
    }
    Ok(())
}

/// The recipient as the contract's grant rules see it.
fn contract_recipient(to: &Recipient) -> GrantRecipient {
    match to {
        Recipient::User(id) => GrantRecipient::User { id: id.clone() },
        Recipient::Role((org_unit, role)) => GrantRecipient::Role { org_unit: org_unit.clone(), role: role.clone() },
        Recipient::Department(code) => GrantRecipient::Department { code: code.clone() },
        Recipient::OrgUnit(code) => GrantRecipient::OrgUnit { code: code.clone() },
    }
}

// -------------------------------------------------------------------------------------
// The mock's state.

#[derive(Clone, Debug)]
struct Sensor {
    kind: String,
    unit: String,
    readings: Vec<(Timestamp, f64)>,
}

#[derive(Clone, Debug)]
struct StoredRecord {
    value: String,
    updated: Timestamp,
}

#[derive(Clone, Debug, Default)]
struct Counters {
    event: u64,
    case: u64,
    warning: u64,
    suggestion: u64,
    message: u64,
}

/// Everything one mock host knows and has seen.
#[derive(Clone, Debug)]
struct State {
    name: String,
    department: String,
    version: String,
    /// The manifest's `world`, when one was loaded: it says which exports the host calls.
    world: Option<String>,
    config: BTreeMap<String, String>,
    /// `None`: everything is allowed.
    grants: Option<Grants>,
    departments: BTreeMap<String, String>,
    users: Vec<User>,
    datasets: BTreeMap<String, BTreeMap<String, StoredRecord>>,
    sensors: BTreeMap<String, Sensor>,
    /// Known cases, and whether this plugin has a suggestion pending for each.
    cases: BTreeMap<String, bool>,
    /// Warning chains by their first warning's id, and each message's chain.
    chains: BTreeMap<String, Chain>,
    chain_of: BTreeMap<String, String>,
    failures: BTreeMap<&'static str, Error>,
    now: Timestamp,
    ids: Counters,
    log: Calls,
}

/// The calls recorded so far.
#[derive(Clone, Debug, Default)]
struct Calls {
    published: Vec<Published>,
    opened: Vec<OpenedCase>,
    notes: Vec<CaseNote>,
    evidence: Vec<CaseEvidence>,
    warnings: Vec<RaisedWarning>,
    changes: Vec<WarningChange>,
    routes: Vec<SuggestedRoute>,
    messages: Vec<SentMessage>,
    writes: Vec<DataWrite>,
    denials: Vec<Denial>,
    logs: Vec<LogLine>,
}

fn system_now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            Timestamp::try_from(d.as_millis()).unwrap_or(Timestamp::MAX)
        })
}

fn next(counter: &mut u64, prefix: &str) -> String {
    *counter += 1;
    format!("{prefix}-{counter}")
}

fn check_point(p: GeoPoint) -> Result<(), String> {
    if !(p.lat.is_finite() && (-90.0..=90.0).contains(&p.lat)) {
        return Err(format!("latitude {} is outside -90..=90", p.lat));
    }
    if !(p.lon.is_finite() && (-180.0..=180.0).contains(&p.lon)) {
        return Err(format!("longitude {} is outside -180..=180", p.lon));
    }
    Ok(())
}

fn check_warning(w: &Warning) -> Result<(), String> {
    if w.area.shapes.is_empty() {
        return Err("a warning's area needs at least one circle or polygon".into());
    }
    for shape in &w.area.shapes {
        match shape {
            AreaShape::Circle(c) => {
                check_point(c.center)?;
                if !(c.radius_km.is_finite() && c.radius_km > 0.0) {
                    return Err(format!("circle radius {} km must be positive", c.radius_km));
                }
            }
            AreaShape::Polygon(ring) => {
                if ring.len() < 4 || ring.first() != ring.last() {
                    return Err("a polygon needs at least 4 points and must be closed".into());
                }
                for p in ring {
                    check_point(*p)?;
                }
            }
        }
    }
    if w.headline.trim().is_empty() || w.event.trim().is_empty() {
        return Err("a warning needs an event and a headline".into());
    }
    Ok(())
}

fn is_digest(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn valid_field(field: &str) -> bool {
    !field.is_empty()
        && field.split('.').all(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// JSON scalars compared as the database compares them: `1` equals `1.0`.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl State {
    fn new() -> Self {
        State {
            name: "test-plugin".into(),
            department: String::new(),
            version: "0.0.0".into(),
            world: None,
            config: BTreeMap::new(),
            grants: None,
            departments: BTreeMap::new(),
            users: Vec::new(),
            datasets: BTreeMap::new(),
            sensors: BTreeMap::new(),
            cases: BTreeMap::new(),
            chains: BTreeMap::new(),
            chain_of: BTreeMap::new(),
            failures: BTreeMap::new(),
            now: system_now(),
            ids: Counters::default(),
            log: Calls::default(),
        }
    }

    fn grants_mut(&mut self) -> &mut Grants {
        self.grants.get_or_insert_with(Grants::default)
    }

    /// Refuses a call outside the grants: records it and returns the host's error.
    fn deny(&mut self, denial: Denial) -> Error {
        let error = Error::Denied(denial.message());
        self.log.denials.push(denial);
        error
    }

    /// Asks the grants, when they are enforced, whether a call may go on.
    fn guard(&mut self, check: impl FnOnce(&Grants) -> Result<(), Denial>) -> Result<(), Error> {
        match self.grants.as_ref().map(check) {
            Some(Err(denial)) => Err(self.deny(denial)),
            _ => Ok(()),
        }
    }

    /// The failure the test asked `action` to answer, if any.
    fn injected(&self, action: &str) -> Result<(), Error> {
        match self.failures.get(action) {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    fn check_case_op(&mut self, op: CaseOp, subject: &str) -> Result<(), Error> {
        self.guard(|g| g.check_case_op(op, subject))?;
        self.injected(op.action())
    }

    fn check_dataset(&mut self, action: &str, dataset: &str, access: DataAccess) -> Result<(), Error> {
        self.guard(|g| g.check_dataset(access, action, dataset))?;
        self.injected(action)
    }

    fn known_case(&self, case_id: &str, prefix: &str) -> Result<(), Error> {
        if self.cases.contains_key(case_id) {
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "{prefix}no case `{case_id}` (open it through the mock or declare it with `MockHost::case`)"
            )))
        }
    }

    fn store_warning(&mut self, warning: &Warning, origin: WarningOrigin) -> Result<String, Error> {
        check_warning(warning).map_err(Error::Invalid)?;
        let id = next(&mut self.ids.warning, "warning");
        let raiser = format!("plugin:{}", self.name);
        self.chains.insert(id.clone(), Chain { raiser, messages: vec![id.clone()], cancelled: false });
        self.chain_of.insert(id.clone(), id.clone());
        self.log.warnings.push(RaisedWarning {
            id: id.clone(),
            origin,
            warning: warning.clone(),
        });
        Ok(id)
    }

    // The host calls, in the order of `wit/yiwang.wit`.

    fn whoami(&self) -> Principal {
        Principal {
            id: format!("plugin:{}", self.name),
            department: self.department.clone(),
            version: self.version.clone(),
        }
    }

    fn get_department(&mut self, code: &str) -> Result<Department, Error> {
        self.injected("identity.department")?;
        match self.departments.get(code) {
            Some(name) => Ok(Department {
                code: code.to_owned(),
                name: name.clone(),
            }),
            None => Err(Error::NotFound(format!("no department `{code}`"))),
        }
    }

    fn users_with_role(&mut self, org_unit: &str, role: &str) -> Result<Vec<User>, Error> {
        const ACTION: &str = "identity.users-with-role";
        self.guard(|g| g.check_identity(org_unit, role))?;
        self.injected(ACTION)?;
        Ok(self
            .users
            .iter()
            .filter(|u| u.org_unit == org_unit && u.roles.iter().any(|r| r == role))
            .cloned()
            .collect())
    }

    fn publish(
        &mut self,
        topic: &str,
        payload: &str,
        location: Option<GeoPoint>,
    ) -> Result<String, Error> {
        const ACTION: &str = "bus.publish";
        let topic = Topic::parse(topic).map_err(|err| Error::Invalid(err.to_string()))?;
        self.guard(|g| g.check_publish(&topic))?;
        self.injected(ACTION)?;
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::Limit(format!(
                "payload of {} bytes exceeds {MAX_PAYLOAD}",
                payload.len()
            )));
        }
        let payload: Value = serde_json::from_str(payload)
            .map_err(|err| Error::Invalid(format!("payload is not JSON: {err}")))?;
        if let Some(p) = location {
            check_point(p).map_err(Error::Invalid)?;
        }
        let id = next(&mut self.ids.event, "event");
        self.log.published.push(Published {
            id: id.clone(),
            topic: topic.as_str().to_owned(),
            payload,
            location,
        });
        Ok(id)
    }

    fn data_get(&mut self, dataset: &str, key: &str) -> Result<Option<Record>, Error> {
        self.check_dataset("data.get", dataset, DataAccess::Read)?;
        Ok(self
            .datasets
            .get(dataset)
            .and_then(|set| set.get(key))
            .map(|r| Record {
                key: key.to_owned(),
                value: r.value.clone(),
                updated: r.updated,
            }))
    }

    fn data_query(
        &mut self,
        dataset: &str,
        filters: &[FieldFilter],
        offset: u32,
        limit: u32,
    ) -> Result<Vec<Record>, Error> {
        self.check_dataset("data.query", dataset, DataAccess::Read)?;
        let mut wanted = Vec::with_capacity(filters.len());
        for f in filters {
            let value: Value = serde_json::from_str(&f.value).map_err(|err| {
                Error::Invalid(format!("filter `{}`: value is not JSON: {err}", f.field))
            })?;
            if !valid_field(&f.field) {
                return Err(Error::Invalid(format!(
                    "filter field `{}`: letters, digits, `_`, `-` and `.` between names only",
                    f.field
                )));
            }
            if value.is_object() || value.is_array() {
                return Err(Error::Invalid(format!(
                    "filter `{}`: the value must be a JSON scalar",
                    f.field
                )));
            }
            wanted.push((f.field.split('.').collect::<Vec<_>>(), value));
        }
        let Some(set) = self.datasets.get(dataset) else {
            return Ok(Vec::new());
        };
        let matches = |text: &str| {
            let Ok(record) = serde_json::from_str::<Value>(text) else {
                return false;
            };
            wanted.iter().all(|(path, value)| {
                path.iter()
                    .try_fold(&record, |v, name| v.get(name))
                    .is_some_and(|v| same(v, value))
            })
        };
        Ok(set
            .iter()
            .filter(|(_, r)| matches(&r.value))
            .skip(offset as usize)
            .take(limit.min(MAX_PAGE) as usize)
            .map(|(key, r)| Record {
                key: key.clone(),
                value: r.value.clone(),
                updated: r.updated,
            })
            .collect())
    }

    fn data_put(&mut self, dataset: &str, key: &str, value: &str) -> Result<(), Error> {
        self.check_dataset("data.put", dataset, DataAccess::Write)?;
        let parsed: Value = serde_json::from_str(value)
            .map_err(|err| Error::Invalid(format!("value is not JSON: {err}")))?;
        if !parsed.is_object() {
            return Err(Error::Invalid(format!(
                "record `{key}`: a record must be a JSON object"
            )));
        }
        if key.is_empty() {
            return Err(Error::Invalid("a record needs a key".into()));
        }
        self.datasets.entry(dataset.to_owned()).or_default().insert(
            key.to_owned(),
            StoredRecord {
                value: value.to_owned(),
                updated: self.now,
            },
        );
        self.log.writes.push(DataWrite {
            dataset: dataset.to_owned(),
            key: key.to_owned(),
            value: parsed,
        });
        Ok(())
    }

    fn readings(
        &mut self,
        sensor: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Reading>, Error> {
        const ACTION: &str = "data.readings";
        // An unknown sensor is "denied" rather than "not found" to a plugin with no
        // sensor grant at all, as in the host, so that it cannot probe which exist.
        let kind = self.sensors.get(sensor).map(|s| s.kind.clone());
        self.guard(|g| g.check_readings(sensor, kind.as_deref()))?;
        self.injected(ACTION)?;
        if kind.is_none() {
            return Err(Error::NotFound(format!("no sensor `{sensor}`")));
        }
        let Sensor { unit, readings, .. } = &self.sensors[sensor];
        let mut out: Vec<Reading> = readings
            .iter()
            .filter(|(time, _)| (from..to).contains(time))
            .map(|&(time, value)| Reading {
                sensor: sensor.to_owned(),
                time,
                value,
                unit: unit.clone(),
            })
            .collect();
        out.sort_by_key(|r| r.time);
        Ok(out)
    }

    fn open_case(&mut self, draft: &CaseDraft) -> Result<String, Error> {
        self.check_case_op(CaseOp::Open, &draft.category_code)?;
        if draft.category_code.trim().is_empty() || draft.title.trim().is_empty() {
            return Err(Error::Invalid(
                "a case needs a category code and a title".into(),
            ));
        }
        if let Some(p) = draft.location {
            check_point(p).map_err(Error::Invalid)?;
        }
        if let Some(bad) = draft.evidence.iter().find(|d| !is_digest(d)) {
            return Err(Error::Invalid(format!(
                "`{bad}` is not a lowercase sha256 digest"
            )));
        }
        let id = next(&mut self.ids.case, "case");
        self.cases.insert(id.clone(), false);
        self.log.opened.push(OpenedCase {
            id: id.clone(),
            draft: draft.clone(),
        });
        Ok(id)
    }

    fn add_note(&mut self, case_id: &str, text: &str) -> Result<(), Error> {
        self.check_case_op(CaseOp::Note, case_id)?;
        if text.trim().is_empty() || text.len() > MAX_NOTE {
            return Err(Error::Invalid("note must be 1 byte to 64 KiB".into()));
        }
        self.known_case(case_id, "")?;
        self.log.notes.push(CaseNote {
            case_id: case_id.to_owned(),
            text: text.to_owned(),
        });
        Ok(())
    }

    fn add_evidence(&mut self, case_id: &str, digest: &str) -> Result<(), Error> {
        self.check_case_op(CaseOp::Evidence, case_id)?;
        if !is_digest(digest) {
            return Err(Error::Invalid(format!(
                "`{digest}` is not a lowercase sha256 digest"
            )));
        }
        self.known_case(case_id, "")?;
        self.log.evidence.push(CaseEvidence {
            case_id: case_id.to_owned(),
            digest: digest.to_owned(),
        });
        Ok(())
    }

    fn raise_warning(&mut self, warning: &Warning) -> Result<String, Error> {
        self.check_case_op(CaseOp::Warn, &warning.event)?;
        self.store_warning(warning, WarningOrigin::Raised)
    }

    /// A change to the chain of warning `id`, as the host makes it: the `warn`
    /// grant, a known warning, its raiser, a chain not cancelled.
    fn change_warning(&mut self, action: &str, id: &str, change: Change) -> Result<String, Error> {
        self.guard(|g| g.check_case_op(CaseOp::Warn, id).map_err(|d| Denial { action: action.to_owned(), ..d }))?;
        self.injected(action)?;
        let Some(root) = self.chain_of.get(id).cloned() else {
            return Err(Error::NotFound(format!("warning `{id}`")));
        };
        let chain = self.chains[&root].clone();
        let caller = format!("plugin:{}", self.name);
        if let Err(denial) = yiwang_wit::grants::check_warning_raiser(action, id, &root, &chain.raiser, &caller) {
            return Err(self.deny(denial));
        }
        if chain.cancelled {
            return Err(Error::Conflict(format!("warning `{root}` was cancelled; it takes no more updates")));
        }
        match &change {
            Change::Update(w) => check_warning(w).map_err(Error::Invalid)?,
            Change::Cancel(reason) => {
                let n = reason.trim().chars().count();
                if n == 0 || n > 500 {
                    return Err(Error::Invalid("reason: 1-500 characters, not blank".into()));
                }
            }
        }
        let new = next(&mut self.ids.warning, "warning");
        let entry = self.chains.get_mut(&root).expect("the chain of a known warning");
        entry.messages.push(new.clone());
        entry.cancelled = matches!(change, Change::Cancel(_));
        self.chain_of.insert(new.clone(), root);
        self.log.changes.push(WarningChange { id: new.clone(), of: id.to_owned(), references: chain.messages, change });
        Ok(new)
    }

    fn update_warning(&mut self, id: &str, warning: &Warning) -> Result<String, Error> {
        self.change_warning("cases.update-warning", id, Change::Update(warning.clone()))
    }

    fn cancel_warning(&mut self, id: &str, reason: &str) -> Result<String, Error> {
        self.change_warning("cases.cancel-warning", id, Change::Cancel(reason.trim().to_owned()))
    }

    fn suggest_route(&mut self, case_id: &str, s: &RouteSuggestion) -> Result<String, Error> {
        self.check_case_op(CaseOp::Route, case_id)?;
        let bad = |m: String| Err(Error::Invalid(m));
        if s.department.trim().is_empty() {
            return bad("department: must name a department".into());
        }
        if !(s.score.is_finite() && (0.0..=1.0).contains(&s.score)) {
            return bad(format!("score: {} is not between 0 and 1", s.score));
        }
        let n = s.reason.chars().count();
        if s.reason.trim().is_empty() || n > MAX_REASON_CHARS {
            return bad(format!(
                "reason: must be 1-{MAX_REASON_CHARS} characters, not {n}"
            ));
        }
        self.known_case(case_id, "case_id: ")?;
        if !self.departments.contains_key(&s.department) {
            return bad(format!(
                "department: unknown department `{}` (declare it with `MockHost::known_department`)",
                s.department
            ));
        }
        if self.cases.get(case_id) == Some(&true) {
            let earlier = self
                .log
                .routes
                .iter()
                .rev()
                .find(|r| r.case_id == case_id)
                .map(|r| r.id.clone())
                .unwrap_or_default();
            return Err(Error::Conflict(format!(
                "case_id: `{}` already has suggestion `{earlier}` pending for case `{case_id}`",
                self.name
            )));
        }
        self.cases.insert(case_id.to_owned(), true);
        let id = next(&mut self.ids.suggestion, "suggestion");
        self.log.routes.push(SuggestedRoute {
            id: id.clone(),
            case_id: case_id.to_owned(),
            suggestion: s.clone(),
        });
        Ok(id)
    }

    fn send(&mut self, to: &Recipient, subject: &str, body: &str) -> Result<String, Error> {
        const ACTION: &str = "messaging.send";
        let recipient = contract_recipient(to);
        self.guard(|g| g.check_message(&recipient))?;
        self.injected(ACTION)?;
        let id = next(&mut self.ids.message, "message");
        self.log.messages.push(SentMessage {
            id: id.clone(),
            to: to.clone(),
            subject: subject.to_owned(),
            body: body.to_owned(),
        });
        Ok(id)
    }

    fn log_line(&mut self, level: Level, message: &str) {
        self.log.logs.push(LogLine {
            level,
            message: message.to_owned(),
        });
    }
}

// -------------------------------------------------------------------------------------
// Installation.

thread_local! {
    /// The mocks installed on this thread; the last one answers.
    static INSTALLED: RefCell<Vec<Rc<RefCell<State>>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the mock installed on this thread; `None` when there is none.
fn with_current<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    let current = INSTALLED
        .try_with(|stack| stack.borrow().last().cloned())
        .ok()
        .flatten()?;
    let mut state = current.borrow_mut();
    Some(f(&mut state))
}

/// The builder of a mock host: the plugin's identity, configuration and grants, and the
/// city data its calls see. [`install`](Self::install) makes it this thread's host.
///
/// See the [module documentation](self) for an example and what the mock models.
#[derive(Clone, Debug)]
#[must_use = "a mock host does nothing until it is installed"]
pub struct MockHost {
    state: State,
}

impl Default for MockHost {
    fn default() -> Self {
        MockHost::new()
    }
}

impl MockHost {
    /// A mock of plugin `test-plugin`, version `0.0.0`, of no department: no
    /// configuration, no data, no grants (everything allowed), the clock at the time
    /// of the call.
    pub fn new() -> Self {
        MockHost {
            state: State::new(),
        }
    }

    /// The plugin's name: [`identity::whoami`](crate::identity::whoami) answers
    /// `plugin:<name>`.
    pub fn plugin(mut self, name: impl Into<String>) -> Self {
        self.state.name = name.into();
        self
    }

    /// The plugin's department code. The department is also known to
    /// [`identity::department`](crate::identity::department) (its name is the code
    /// unless [`known_department`](Self::known_department) says otherwise).
    pub fn department(mut self, code: impl Into<String>) -> Self {
        let code = code.into();
        self.state
            .departments
            .entry(code.clone())
            .or_insert_with(|| code.clone());
        self.state.department = code;
        self
    }

    /// The plugin's version, as `whoami` reports it.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.state.version = version.into();
        self
    }

    /// One configuration value, as written in the `[config]` table (numbers as text:
    /// `"3.0"`).
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.state.config.insert(key.into(), value.into());
        self
    }

    /// Reads a `plugin.toml`: its name, version, department and world, its `[config]`
    /// and its `[grants]`. The grants are then enforced, deny-by-default, even where
    /// the manifest has no `[grants]` table, as in the host. Values set before are
    /// overwritten; builder calls after it add to what the manifest says.
    ///
    /// A relative path is relative to the working directory, which `cargo test` sets
    /// to the crate's folder: `MockHost::new().manifest("plugin.toml")?`.
    ///
    /// A file that cannot be read is [`Error::NotFound`]; one that does not parse, or
    /// names a grant the host would refuse, is [`Error::Invalid`], naming the field.
    pub fn manifest(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|err| Error::NotFound(format!("{}: cannot read: {err}", path.display())))?;
        self.manifest_text(&text)
            .map_err(|err| Error::Invalid(format!("{}: {}", path.display(), err.message())))
    }

    /// [`manifest`](Self::manifest) from the text of a `plugin.toml`.
    pub fn manifest_text(mut self, text: &str) -> Result<Self, Error> {
        let table: toml::Table = text
            .parse()
            .map_err(|err: toml::de::Error| Error::Invalid(err.message().to_owned()))?;
        let field = |name: &str, why: &str| Error::Invalid(format!("field `{name}`: {why}"));
        let string = |name: &str| -> Result<Option<String>, Error> {
            match table.get(name) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(field(name, "must be a string")),
            }
        };
        if let Some(name) = string("name")? {
            self.state.name = name;
        }
        if let Some(version) = string("version")? {
            self.state.version = version;
        }
        if let Some(department) = string("department")? {
            self = self.department(department);
        }
        self.state.world = string("world")?;

        let mut grants = Grants::default();
        match table.get("grants") {
            None => {}
            Some(toml::Value::Table(g)) => {
                let list = |name: &str| -> Result<Vec<String>, Error> {
                    let path = format!("grants.{name}");
                    match g.get(name) {
                        None => Ok(Vec::new()),
                        Some(toml::Value::Array(items)) => items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| match item {
                                toml::Value::String(s) => Ok(s.clone()),
                                _ => Err(field(&format!("{path}[{i}]"), "must be a string")),
                            })
                            .collect(),
                        Some(_) => Err(field(&path, "must be a list of strings")),
                    }
                };
                let each = |name: &str, add: &mut dyn FnMut(&str) -> Result<(), String>| {
                    list(name)?.iter().enumerate().try_for_each(|(i, item)| {
                        add(item).map_err(|why| field(&format!("grants.{name}[{i}]"), &why))
                    })
                };
                for name in ["publish", "data-read", "data-write", "cases", "message"] {
                    each(name, &mut |entry| add_grant(&mut grants, name, entry))?;
                }
                grants.identity = match g.get("identity") {
                    None => false,
                    Some(toml::Value::Boolean(b)) => *b,
                    Some(_) => return Err(field("grants.identity", "must be true or false")),
                };
            }
            Some(_) => return Err(field("grants", "must be a table")),
        }
        self.state.grants = Some(grants);

        match table.get("config") {
            None => {}
            Some(toml::Value::Table(config)) => {
                for (key, value) in config {
                    let text = match value {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    self.state.config.insert(key.clone(), text);
                }
            }
            Some(_) => return Err(field("config", "must be a table")),
        }
        Ok(self)
    }

    /// Enforces grants, deny-by-default, even if none is given: with no other grant,
    /// every call that needs one is denied.
    pub fn enforce_grants(mut self) -> Self {
        self.state.grants_mut();
        self
    }

    /// Topic patterns the plugin may publish to (`[grants] publish`), e.g. `warning.*`.
    ///
    /// # Panics
    ///
    /// On a pattern the host would refuse.
    pub fn grant_publish<S: AsRef<str>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        for p in patterns {
            let p = p.as_ref();
            if let Err(why) = add_grant(self.state.grants_mut(), "publish", p) {
                panic!("grant_publish: {why}");
            }
        }
        self
    }

    /// Data sets the plugin may read, and `iot:<sensor kind>` for readings
    /// (`[grants] data-read`).
    ///
    /// # Panics
    ///
    /// On an empty name or `iot:` without a kind.
    pub fn grant_data_read<S: AsRef<str>>(mut self, targets: impl IntoIterator<Item = S>) -> Self {
        for t in targets {
            if let Err(why) = add_grant(self.state.grants_mut(), "data-read", t.as_ref()) {
                panic!("grant_data_read: {why}");
            }
        }
        self
    }

    /// Data sets the plugin may write (`[grants] data-write`).
    ///
    /// # Panics
    ///
    /// On an empty name or `iot:<kind>`: readings are written by ingest, not plugins.
    pub fn grant_data_write<S: AsRef<str>>(
        mut self,
        datasets: impl IntoIterator<Item = S>,
    ) -> Self {
        for d in datasets {
            if let Err(why) = add_grant(self.state.grants_mut(), "data-write", d.as_ref()) {
                panic!("grant_data_write: {why}");
            }
        }
        self
    }

    /// Case operations (`[grants] cases`): `open`, `note`, `evidence`, `warn`, `route`.
    ///
    /// # Panics
    ///
    /// On any other word.
    pub fn grant_cases<S: AsRef<str>>(mut self, ops: impl IntoIterator<Item = S>) -> Self {
        for op in ops {
            if let Err(why) = add_grant(self.state.grants_mut(), "cases", op.as_ref()) {
                panic!("grant_cases: {why}");
            }
        }
        self
    }

    /// Whom the plugin may message (`[grants] message`): `user:<id>`,
    /// `role:<org-unit>/<role>`, `department:<code>`, `org-unit:<code>`, any part `*`.
    ///
    /// # Panics
    ///
    /// On an entry the host would refuse.
    pub fn grant_message<S: AsRef<str>>(mut self, targets: impl IntoIterator<Item = S>) -> Self {
        for t in targets {
            if let Err(why) = add_grant(self.state.grants_mut(), "message", t.as_ref()) {
                panic!("grant_message: {why}");
            }
        }
        self
    }

    /// Lets the plugin list users by role (`[grants] identity = true`).
    pub fn grant_identity(mut self) -> Self {
        self.state.grants_mut().identity = true;
        self
    }

    /// A department of the city, for `identity::department` and route suggestions.
    pub fn known_department(mut self, code: impl Into<String>, name: impl Into<String>) -> Self {
        self.state.departments.insert(code.into(), name.into());
        self
    }

    /// A person, for `identity::users_with_role` (matched on `org_unit` and `roles`).
    pub fn user(mut self, user: User) -> Self {
        self.state.users.push(user);
        self
    }

    /// A record of `dataset`, for `data::get` and `data::query`.
    ///
    /// # Panics
    ///
    /// If `value` does not serialise as a JSON object.
    pub fn data(
        mut self,
        dataset: impl Into<String>,
        key: impl Into<String>,
        value: impl Serialize,
    ) -> Self {
        let (dataset, key) = (dataset.into(), key.into());
        let value = match serde_json::to_value(value) {
            Ok(v @ Value::Object(_)) => v.to_string(),
            Ok(other) => {
                panic!("data `{dataset}/{key}`: a record must be a JSON object, not {other}")
            }
            Err(err) => panic!("data `{dataset}/{key}` does not serialise: {err}"),
        };
        let updated = self.state.now;
        self.state
            .datasets
            .entry(dataset)
            .or_default()
            .insert(key, StoredRecord { value, updated });
        self
    }

    /// A sensor of `kind` (its grant is `iot:<kind>`) measuring in `unit`, with its
    /// readings as (time, value), for `data::readings`. Called again for the same
    /// sensor, it adds readings.
    pub fn sensor(
        mut self,
        id: impl Into<String>,
        kind: impl Into<String>,
        unit: impl Into<String>,
        readings: impl IntoIterator<Item = (Timestamp, f64)>,
    ) -> Self {
        let sensor = self
            .state
            .sensors
            .entry(id.into())
            .or_insert_with(|| Sensor {
                kind: String::new(),
                unit: String::new(),
                readings: Vec::new(),
            });
        sensor.kind = kind.into();
        sensor.unit = unit.into();
        sensor.readings.extend(readings);
        self
    }

    /// A warning another plugin raised (`source` is its principal, `plugin:<name>`),
    /// so that a test sees `cases::update_warning` and `cancel_warning` refuse it as
    /// the host does.
    pub fn warning_of(mut self, id: impl Into<String>, source: impl Into<String>) -> Self {
        let id = id.into();
        let chain = Chain { raiser: source.into(), messages: vec![id.clone()], cancelled: false };
        self.state.chains.insert(id.clone(), chain);
        self.state.chain_of.insert(id.clone(), id);
        self
    }

    /// An open case the plugin did not open itself (one it hears of on
    /// `case.reported`), so that notes, evidence and route suggestions may name it.
    pub fn case(mut self, id: impl Into<String>) -> Self {
        self.state.cases.insert(id.into(), false);
        self
    }

    /// The host's clock, in milliseconds since the Unix epoch: the `updated` time of
    /// records. The default is the time [`new`](Self::new) was called.
    pub fn now(mut self, now: Timestamp) -> Self {
        self.state.now = now;
        self
    }

    /// Makes every call of `action` answer `error`, after its grant check: to test how
    /// the plugin copes with a host that is down (`Error::Unavailable`) or a quota
    /// (`Error::Limit`).
    ///
    /// The actions are `bus.publish`, `data.get`, `data.query`, `data.put`,
    /// `data.readings`, `cases.open-case`, `cases.add-note`, `cases.add-evidence`,
    /// `cases.raise-warning`, `cases.suggest-route`, `messaging.send`,
    /// `identity.department` and `identity.users-with-role`.
    ///
    /// # Panics
    ///
    /// On any other action.
    pub fn fail(mut self, action: &str, error: Error) -> Self {
        let Some(action) = ACTIONS.iter().find(|a| **a == action) else {
            panic!(
                "fail: unknown action `{action}`; expected one of {}",
                ACTIONS.join(", ")
            );
        };
        self.state.failures.insert(action, error);
        self
    }

    /// Makes this mock the host of the current thread until the returned handle is
    /// dropped. A mock already installed on the thread is shadowed meanwhile.
    pub fn install(self) -> InstalledHost {
        let state = Rc::new(RefCell::new(self.state));
        INSTALLED.with(|stack| stack.borrow_mut().push(state.clone()));
        InstalledHost { state }
    }
}

/// A mock host installed on the current thread: the test's view of what the plugin
/// did. Dropping it uninstalls the mock.
///
/// The inspectors return copies, in the order of the calls.
#[must_use = "dropping the handle uninstalls the mock host at once"]
pub struct InstalledHost {
    state: Rc<RefCell<State>>,
}

impl fmt::Debug for InstalledHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstalledHost")
            .field("state", &self.state.borrow())
            .finish()
    }
}

impl Drop for InstalledHost {
    fn drop(&mut self) {
        // `try_with`: the handle may outlive the thread-local during thread exit.
        let _ = INSTALLED.try_with(|stack| {
            stack.borrow_mut().retain(|s| !Rc::ptr_eq(s, &self.state));
        });
    }
}

impl InstalledHost {
    fn read<R>(&self, f: impl FnOnce(&Calls) -> R) -> R {
        f(&self.state.borrow().log)
    }

    /// Hands `event` to plugin `P` as the host does: `P::handle`, then `P::evaluate`,
    /// storing every warning `evaluate` returns (checked like a raised one, but with
    /// no `warn` grant needed) with origin [`WarningOrigin::Returned`].
    ///
    /// When a manifest was loaded, its `world` decides which of the two run, as in the
    /// host (`event-handler`: `handle` only; `warning-model`: `evaluate` only);
    /// otherwise both run. The first error is returned; a warning the host would refuse
    /// is [`Error::Invalid`], `warning refused: ...`.
    pub fn deliver<P: Plugin>(&self, event: Event) -> Result<(), Error> {
        let world = self.state.borrow().world.clone();
        let name = world.as_deref().map(|w| {
            let w = w.split('@').next().unwrap_or(w);
            w.rsplit('/').next().unwrap_or(w).to_owned()
        });
        let (handles, models) = match name.as_deref() {
            Some("event-handler") => (true, false),
            Some("warning-model") => (false, true),
            _ => (true, true),
        };
        if handles {
            P::handle(event.clone())?;
        }
        if models {
            // No borrow is held while the plugin runs: its host calls need the state.
            let warnings = P::evaluate(event)?;
            let mut state = self.state.borrow_mut();
            for w in &warnings {
                state
                    .store_warning(w, WarningOrigin::Returned)
                    .map_err(|err| Error::Invalid(format!("warning refused: {}", err.message())))?;
            }
        }
        Ok(())
    }

    /// Events published with `bus::publish`.
    pub fn published(&self) -> Vec<Published> {
        self.read(|c| c.published.clone())
    }

    /// Cases opened with `cases::open_case`.
    pub fn cases_opened(&self) -> Vec<OpenedCase> {
        self.read(|c| c.opened.clone())
    }

    /// Notes added with `cases::add_note`.
    pub fn notes(&self) -> Vec<CaseNote> {
        self.read(|c| c.notes.clone())
    }

    /// Evidence attached with `cases::add_evidence`.
    pub fn evidence(&self) -> Vec<CaseEvidence> {
        self.read(|c| c.evidence.clone())
    }

    /// Warnings stored: raised with `cases::raise_warning`, or returned from
    /// `evaluate` through [`deliver`](Self::deliver).
    pub fn warnings_raised(&self) -> Vec<RaisedWarning> {
        self.read(|c| c.warnings.clone())
    }

    /// Updates and cancels of warnings, with `cases::update_warning` and
    /// `cases::cancel_warning`, in the order made.
    pub fn warning_changes(&self) -> Vec<WarningChange> {
        self.read(|c| c.changes.clone())
    }

    /// Routes suggested with `cases::suggest_route`.
    pub fn route_suggestions(&self) -> Vec<SuggestedRoute> {
        self.read(|c| c.routes.clone())
    }

    /// Messages sent with `messaging::send`.
    pub fn messages_sent(&self) -> Vec<SentMessage> {
        self.read(|c| c.messages.clone())
    }

    /// Records written with `data::put`.
    pub fn data_written(&self) -> Vec<DataWrite> {
        self.read(|c| c.writes.clone())
    }

    /// Calls the grants refused.
    pub fn denials(&self) -> Vec<Denial> {
        self.read(|c| c.denials.clone())
    }

    /// Lines logged with the logging macros or `log::log`.
    pub fn logs(&self) -> Vec<LogLine> {
        self.read(|c| c.logs.clone())
    }

    /// The current value of a record, whether seeded or written by the plugin.
    pub fn record(&self, dataset: &str, key: &str) -> Option<Value> {
        let state = self.state.borrow();
        let record = state.datasets.get(dataset)?.get(key)?;
        serde_json::from_str(&record.value).ok()
    }

    /// Sets one configuration value, for the calls that follow.
    pub fn set_config(&self, key: impl Into<String>, value: impl Into<String>) {
        self.state
            .borrow_mut()
            .config
            .insert(key.into(), value.into());
    }

    /// Moves the host's clock to `now`.
    pub fn set_now(&self, now: Timestamp) {
        self.state.borrow_mut().now = now;
    }

    /// Forgets the calls recorded so far (the data, cases and ids stay).
    pub fn clear_calls(&self) {
        self.state.borrow_mut().log = Calls::default();
    }
}

// -------------------------------------------------------------------------------------
// The entry points of `sys::native`: each answers `None` when no mock is installed.

pub(crate) fn whoami() -> Option<Principal> {
    with_current(|s| s.whoami())
}

pub(crate) fn get_department(code: &str) -> Option<Result<Department, Error>> {
    with_current(|s| s.get_department(code))
}

pub(crate) fn users_with_role(org_unit: &str, role: &str) -> Option<Result<Vec<User>, Error>> {
    with_current(|s| s.users_with_role(org_unit, role))
}

pub(crate) fn publish(
    topic: &str,
    payload: &str,
    location: Option<GeoPoint>,
) -> Option<Result<String, Error>> {
    with_current(|s| s.publish(topic, payload, location))
}

pub(crate) fn data_get(dataset: &str, key: &str) -> Option<Result<Option<Record>, Error>> {
    with_current(|s| s.data_get(dataset, key))
}

pub(crate) fn data_query(
    dataset: &str,
    filters: &[FieldFilter],
    offset: u32,
    limit: u32,
) -> Option<Result<Vec<Record>, Error>> {
    with_current(|s| s.data_query(dataset, filters, offset, limit))
}

pub(crate) fn data_put(dataset: &str, key: &str, value: &str) -> Option<Result<(), Error>> {
    with_current(|s| s.data_put(dataset, key, value))
}

pub(crate) fn readings(
    sensor: &str,
    from: Timestamp,
    to: Timestamp,
) -> Option<Result<Vec<Reading>, Error>> {
    with_current(|s| s.readings(sensor, from, to))
}

pub(crate) fn open_case(draft: &CaseDraft) -> Option<Result<String, Error>> {
    with_current(|s| s.open_case(draft))
}

pub(crate) fn add_note(case_id: &str, text: &str) -> Option<Result<(), Error>> {
    with_current(|s| s.add_note(case_id, text))
}

pub(crate) fn add_evidence(case_id: &str, digest: &str) -> Option<Result<(), Error>> {
    with_current(|s| s.add_evidence(case_id, digest))
}

pub(crate) fn raise_warning(warning: &Warning) -> Option<Result<String, Error>> {
    with_current(|s| s.raise_warning(warning))
}

pub(crate) fn update_warning(id: &str, warning: &Warning) -> Option<Result<String, Error>> {
    with_current(|s| s.update_warning(id, warning))
}

pub(crate) fn cancel_warning(id: &str, reason: &str) -> Option<Result<String, Error>> {
    with_current(|s| s.cancel_warning(id, reason))
}

pub(crate) fn suggest_route(
    case_id: &str,
    suggestion: &RouteSuggestion,
) -> Option<Result<String, Error>> {
    with_current(|s| s.suggest_route(case_id, suggestion))
}

pub(crate) fn send(to: &Recipient, subject: &str, body: &str) -> Option<Result<String, Error>> {
    with_current(|s| s.send(to, subject, body))
}

/// Records a log line; `false` when no mock is installed.
pub(crate) fn log(level: Level, message: &str) -> bool {
    with_current(|s| s.log_line(level, message)).is_some()
}

pub(crate) fn config_get(key: &str) -> Option<Option<String>> {
    with_current(|s| s.config.get(key).cloned())
}

pub(crate) fn config_all() -> Option<Vec<(String, String)>> {
    with_current(|s| {
        s.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_fields() {
        assert!(is_digest(&"ab".repeat(32)));
        assert!(!is_digest(&"AB".repeat(32)));
        assert!(!is_digest("abc"));
        assert!(valid_field("address.district"));
        assert!(!valid_field("a..b"));
        assert!(!valid_field("a b"));
    }
}
