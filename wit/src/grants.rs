//! What a plugin's `[grants]` allow, and the one decision for every guarded call.
//!
//! Grants are deny-by-default: whatever `plugin.toml` does not name, the plugin
//! cannot reach. The host and the SDK's mock host both ask [`Grants`] whether a
//! call is covered; a refusal is a [`Denial`], whose [`message`](Denial::message)
//! is the text of the `denied` error the plugin receives and whose parts are what
//! the host writes to its audit log. What the grants cannot decide alone (whether
//! a data set exists and is shared, whether a recipient exists) stays with the
//! host, after these checks.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::topic::{Topic, TopicPattern};

/// Whether `name` is a valid plugin, department or data set name: 1-64 of
/// `a-z`, `0-9`, `-`, `_`, not starting with `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with('-')
}

/// An operation on cases a plugin may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CaseOp {
    /// `cases.open-case`.
    Open,
    /// `cases.add-note`.
    Note,
    /// `cases.add-evidence`.
    Evidence,
    /// `cases.raise-warning`.
    Warn,
    /// `cases.suggest-route`.
    Route,
}

impl CaseOp {
    /// Every operation with its name in manifests and the host action it guards.
    const ALL: [(&'static str, CaseOp, &'static str); 5] = [
        ("open", CaseOp::Open, "cases.open-case"),
        ("note", CaseOp::Note, "cases.add-note"),
        ("evidence", CaseOp::Evidence, "cases.add-evidence"),
        ("warn", CaseOp::Warn, "cases.raise-warning"),
        ("route", CaseOp::Route, "cases.suggest-route"),
    ];

    fn entry(self) -> (&'static str, CaseOp, &'static str) {
        CaseOp::ALL.into_iter().find(|(_, op, _)| *op == self).expect("every operation is listed")
    }

    /// The name used in manifests: `open`, `note`, `evidence`, `warn`, `route`.
    pub fn name(self) -> &'static str {
        self.entry().0
    }

    /// The host action this operation guards, as named in denials: `cases.open-case`, ….
    pub fn action(self) -> &'static str {
        self.entry().2
    }

    /// The operation a manifest names; the error says which words are known.
    pub fn parse(name: &str) -> Result<CaseOp, String> {
        CaseOp::ALL.into_iter().find(|(n, _, _)| *n == name).map(|(_, op, _)| op).ok_or_else(|| {
            format!("unknown case operation `{name}`; expected open, note, evidence, warn or route")
        })
    }
}

/// Reading or writing, for data grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataAccess {
    /// `data.get`, `data.query`, `data.readings`: `[grants] data-read`.
    Read,
    /// `data.put`: `[grants] data-write`.
    Write,
}

impl DataAccess {
    /// The manifest field that grants this access.
    pub fn field(self) -> &'static str {
        match self {
            DataAccess::Read => "grants.data-read",
            DataAccess::Write => "grants.data-write",
        }
    }
}

/// What a plugin may read or write in the data foundation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataTarget {
    /// A structured data set, by name.
    Dataset(String),
    /// Readings of every sensor of a kind, e.g. `iot:water-level`.
    SensorKind(String),
}

impl DataTarget {
    /// A data grant as written in a manifest: a data set name, or `iot:<sensor-kind>`
    /// (for reading only: sensor readings are written by ingest, not by plugins).
    pub fn parse(text: &str, access: DataAccess) -> Result<DataTarget, String> {
        let (target, name) = match text.strip_prefix("iot:") {
            Some(kind) => (DataTarget::SensorKind(kind.to_owned()), kind),
            None => (DataTarget::Dataset(text.to_owned()), text),
        };
        if !valid_name(name) {
            return Err(format!("`{text}` is not a data set name or `iot:<sensor-kind>`"));
        }
        if access == DataAccess::Write && matches!(target, DataTarget::SensorKind(_)) {
            return Err("sensor readings are written by ingest, not by plugins".into());
        }
        Ok(target)
    }
}

impl fmt::Display for DataTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataTarget::Dataset(name) => f.write_str(name),
            DataTarget::SensorKind(kind) => write!(f, "iot:{kind}"),
        }
    }
}

/// Whom a message grant reaches. `None` in a part means `*` (any).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageTarget {
    /// `user:<id>`.
    User(Option<String>),
    /// `role:<org-unit>/<role>`.
    Role {
        /// The org unit code, or any.
        org_unit: Option<String>,
        /// The role, or any.
        role: Option<String>,
    },
    /// `department:<code>`.
    Department(Option<String>),
    /// `org-unit:<code>`.
    OrgUnit(Option<String>),
}

impl MessageTarget {
    /// A message grant as written in a manifest; any part may be `*`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let part = |s: &str| -> Result<Option<String>, String> {
            match s {
                "" => Err(format!("`{text}` has an empty part")),
                "*" => Ok(None),
                s => Ok(Some(s.to_owned())),
            }
        };
        let (kind, rest) = text.split_once(':').ok_or_else(|| {
            format!("`{text}`: expected `user:<id>`, `role:<org-unit>/<role>`, `department:<code>` or `org-unit:<code>`")
        })?;
        match kind {
            "user" => Ok(MessageTarget::User(part(rest)?)),
            "department" => Ok(MessageTarget::Department(part(rest)?)),
            "org-unit" => Ok(MessageTarget::OrgUnit(part(rest)?)),
            "role" => {
                let (unit, role) = rest
                    .split_once('/')
                    .ok_or_else(|| format!("`{text}`: expected `role:<org-unit>/<role>`"))?;
                Ok(MessageTarget::Role { org_unit: part(unit)?, role: part(role)? })
            }
            other => Err(format!(
                "`{text}`: unknown recipient kind `{other}`; expected user, role, department or org-unit"
            )),
        }
    }

    /// Whether this grant reaches `to`: a part given must equal the recipient's
    /// whole part; a `*` part matches any.
    pub fn covers(&self, to: &Recipient) -> bool {
        fn part(grant: &Option<String>, value: &str) -> bool {
            grant.as_deref().is_none_or(|g| g == value)
        }
        match (self, to) {
            (MessageTarget::User(g), Recipient::User { id }) => part(g, id),
            (MessageTarget::Department(g), Recipient::Department { code }) => part(g, code),
            (MessageTarget::OrgUnit(g), Recipient::OrgUnit { code }) => part(g, code),
            (MessageTarget::Role { org_unit, role }, Recipient::Role { org_unit: u, role: r }) => {
                part(org_unit, u) && part(role, r)
            }
            _ => false,
        }
    }
}

impl fmt::Display for MessageTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let any = |p: &Option<String>| p.clone().unwrap_or_else(|| "*".into());
        match self {
            MessageTarget::User(id) => write!(f, "user:{}", any(id)),
            MessageTarget::Role { org_unit, role } => write!(f, "role:{}/{}", any(org_unit), any(role)),
            MessageTarget::Department(code) => write!(f, "department:{}", any(code)),
            MessageTarget::OrgUnit(code) => write!(f, "org-unit:{}", any(code)),
        }
    }
}

/// Whom a message is for: the recipient a message grant is checked against, and
/// the `to` of a `message.sent` payload.
///
/// In JSON it is an object tagged by `kind`: `{"id":"u-7","kind":"user"}`,
/// `{"kind":"role","org_unit":"320102","role":"leader"}`,
/// `{"code":"yingji","kind":"department"}`, `{"code":"320102","kind":"org-unit"}`.
/// Keys are written in that (sorted) order, as the host has always written them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Recipient {
    /// One person, by user id.
    User {
        /// The user's id.
        id: String,
    },
    /// Whoever holds `role` in org unit `org_unit`.
    Role {
        /// The org unit's code, e.g. `320102`.
        org_unit: String,
        /// The role, e.g. `leader`.
        role: String,
    },
    /// Everyone in a department.
    Department {
        /// The department's code, e.g. `yingji`.
        code: String,
    },
    /// Everyone in an org unit.
    OrgUnit {
        /// The org unit's code.
        code: String,
    },
}

impl Serialize for Recipient {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // Keys in sorted order: the host wrote recipients through a JSON map,
        // which sorts them, and the payload's bytes stay as they were.
        let entries: &[(&str, &str)] = match self {
            Recipient::User { id } => &[("id", id), ("kind", "user")],
            Recipient::Role { org_unit, role } => &[("kind", "role"), ("org_unit", org_unit), ("role", role)],
            Recipient::Department { code } => &[("code", code), ("kind", "department")],
            Recipient::OrgUnit { code } => &[("code", code), ("kind", "org-unit")],
        };
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (key, value) in entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl fmt::Display for Recipient {
    /// `user:<id>`, `role:<org-unit>/<role>`, `department:<code>`, `org-unit:<code>`:
    /// the subject of a denial and the `to` of a stored message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::User { id } => write!(f, "user:{id}"),
            Recipient::Role { org_unit, role } => write!(f, "role:{org_unit}/{role}"),
            Recipient::Department { code } => write!(f, "department:{code}"),
            Recipient::OrgUnit { code } => write!(f, "org-unit:{code}"),
        }
    }
}

/// WASI capabilities beyond the Yiwang interfaces; all off unless granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WasiGrants {
    /// Whether the plugin's stdout and stderr go to the host log.
    pub stdio: bool,
    /// Environment variables the plugin sees (names and values as granted).
    pub env: BTreeMap<String, String>,
    /// Whether outbound TCP, UDP and name lookups are allowed.
    pub network: bool,
    /// Whether the plugin gets a private writable folder at `/data`.
    pub filesystem: bool,
}

/// A call the grants refuse. The host audits it (action, subject, reason) and
/// answers the plugin `denied` with [`message`](Denial::message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The host action: `bus.publish`, `data.get`, `cases.open-case`, ….
    pub action: String,
    /// What the call named: the topic, the data set, the case, the recipient, ….
    pub subject: String,
    /// Why it was refused, e.g. `topic not in grants.publish`.
    pub reason: String,
}

impl Denial {
    fn new(action: &str, subject: &str, reason: impl Into<String>) -> Denial {
        Denial { action: action.to_owned(), subject: subject.to_owned(), reason: reason.into() }
    }

    /// The message of the `denied` error the plugin receives:
    /// ``bus.publish `secret.topic`: topic not in grants.publish``.
    pub fn message(&self) -> String {
        format!("{} `{}`: {}", self.action, self.subject, self.reason)
    }
}

/// The one rule for changing a warning (`cases.update-warning`,
/// `cases.cancel-warning`): only the plugin that raised the warning's chain
/// (`raiser`, `plugin:<name>`) updates or cancels it; `caller` is the calling
/// plugin's principal, `id` the warning the call named, `root` its chain's first.
pub fn check_warning_raiser(action: &str, id: &str, root: &str, raiser: &str, caller: &str) -> Result<(), Denial> {
    if raiser == caller {
        return Ok(());
    }
    Err(Denial::new(action, id, format!("warning `{root}` was raised by `{raiser}`; only its raiser updates or cancels it")))
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Denial {}

/// Everything a plugin may do beyond computing on its inputs.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Topics the plugin may publish to.
    pub publish: Vec<TopicPattern>,
    /// Data it may read.
    pub data_read: Vec<DataTarget>,
    /// Data sets it may write.
    pub data_write: Vec<DataTarget>,
    /// Case operations.
    pub cases: Vec<CaseOp>,
    /// Whom it may message.
    pub message: Vec<MessageTarget>,
    /// Whether it may list users by role.
    pub identity: bool,
    /// WASI capabilities.
    pub wasi: WasiGrants,
}

impl Grants {
    /// `bus.publish` to `topic`: a `publish` pattern must match it.
    pub fn check_publish(&self, topic: &Topic) -> Result<(), Denial> {
        if self.publish.iter().any(|p| p.matches(topic.as_str())) {
            Ok(())
        } else {
            Err(Denial::new("bus.publish", topic.as_str(), "topic not in grants.publish"))
        }
    }

    /// `action` (`data.get`, `data.query`, `data.put`) on data set `dataset`: the
    /// grant for `access` must name it. The host then checks that the data set
    /// exists and that its owner shares it with the plugin's department.
    pub fn check_dataset(&self, access: DataAccess, action: &str, dataset: &str) -> Result<(), Denial> {
        let granted = match access {
            DataAccess::Read => &self.data_read,
            DataAccess::Write => &self.data_write,
        };
        if granted.iter().any(|t| matches!(t, DataTarget::Dataset(name) if name == dataset)) {
            Ok(())
        } else {
            Err(Denial::new(action, dataset, format!("data set not in {}", access.field())))
        }
    }

    /// `data.readings` of `sensor`, whose kind is `kind`, or `None` when no such
    /// sensor exists. An unknown sensor is denied to a plugin with no `iot:<kind>`
    /// grant at all, so that it cannot probe which sensors exist; to any other it
    /// passes here, and the host answers `not-found`.
    pub fn check_readings(&self, sensor: &str, kind: Option<&str>) -> Result<(), Denial> {
        const ACTION: &str = "data.readings";
        match kind {
            None if self.data_read.iter().any(|t| matches!(t, DataTarget::SensorKind(_))) => Ok(()),
            None => Err(Denial::new(ACTION, sensor, "no iot:<kind> in grants.data-read")),
            Some(kind) if self.data_read.iter().any(|t| matches!(t, DataTarget::SensorKind(k) if k == kind)) => {
                Ok(())
            }
            Some(kind) => Err(Denial::new(ACTION, sensor, format!("`iot:{kind}` not in grants.data-read"))),
        }
    }

    /// A case operation; `subject` is what the call names (the category code of a
    /// case to open, the case of a note, evidence or route, the event of a warning).
    pub fn check_case_op(&self, op: CaseOp, subject: &str) -> Result<(), Denial> {
        if self.cases.contains(&op) {
            Ok(())
        } else {
            Err(Denial::new(op.action(), subject, format!("`{}` not in grants.cases", op.name())))
        }
    }

    /// `messaging.send` to `to`: a `message` grant must cover it.
    pub fn check_message(&self, to: &Recipient) -> Result<(), Denial> {
        if self.message.iter().any(|m| m.covers(to)) {
            Ok(())
        } else {
            Err(Denial::new("messaging.send", &to.to_string(), "recipient not in grants.message"))
        }
    }

    /// `identity.users-with-role`: needs `identity = true`.
    pub fn check_identity(&self, org_unit: &str, role: &str) -> Result<(), Denial> {
        if self.identity {
            Ok(())
        } else {
            Err(Denial::new("identity.users-with-role", &format!("{org_unit}/{role}"), "grants.identity is false"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> Grants {
        Grants {
            publish: vec![TopicPattern::parse("warning.*").unwrap()],
            data_read: vec![
                DataTarget::parse("components", DataAccess::Read).unwrap(),
                DataTarget::parse("iot:water-level", DataAccess::Read).unwrap(),
            ],
            data_write: vec![DataTarget::parse("yingji-tracks", DataAccess::Write).unwrap()],
            cases: vec![CaseOp::Open, CaseOp::Warn],
            message: vec![MessageTarget::parse("role:*/leader").unwrap()],
            identity: false,
            wasi: WasiGrants::default(),
        }
    }

    /// Each guarded call, allowed and refused, with the host's denial text.
    #[test]
    fn every_check_allows_what_is_granted_and_names_what_is_not() {
        let g = grants();
        let topic = |t: &str| Topic::parse(t).unwrap();
        assert_eq!(g.check_publish(&topic("warning.met")), Ok(()));
        let cases: [(Result<(), Denial>, &str); 8] = [
            (g.check_publish(&topic("secret.topic")), "bus.publish `secret.topic`: topic not in grants.publish"),
            (
                g.check_dataset(DataAccess::Read, "data.get", "residents"),
                "data.get `residents`: data set not in grants.data-read",
            ),
            (
                g.check_dataset(DataAccess::Write, "data.put", "components"),
                "data.put `components`: data set not in grants.data-write",
            ),
            (g.check_readings("aq-1", Some("air-quality")), "data.readings `aq-1`: `iot:air-quality` not in grants.data-read"),
            (g.check_case_op(CaseOp::Note, "case-1"), "cases.add-note `case-1`: `note` not in grants.cases"),
            (
                g.check_message(&Recipient::Role { org_unit: "320102".into(), role: "grid-worker".into() }),
                "messaging.send `role:320102/grid-worker`: recipient not in grants.message",
            ),
            (
                g.check_identity("320102", "leader"),
                "identity.users-with-role `320102/leader`: grants.identity is false",
            ),
            (
                Grants::default().check_readings("wl-9", None),
                "data.readings `wl-9`: no iot:<kind> in grants.data-read",
            ),
        ];
        for (result, message) in cases {
            assert_eq!(result.unwrap_err().message(), message);
        }
        assert_eq!(g.check_dataset(DataAccess::Read, "data.query", "components"), Ok(()));
        assert_eq!(g.check_dataset(DataAccess::Write, "data.put", "yingji-tracks"), Ok(()));
        assert_eq!(g.check_readings("wl-1", Some("water-level")), Ok(()));
        assert_eq!(g.check_readings("wl-9", None), Ok(()));
        assert_eq!(g.check_case_op(CaseOp::Warn, "积水"), Ok(()));
        assert_eq!(g.check_message(&Recipient::Role { org_unit: "320102".into(), role: "leader".into() }), Ok(()));
    }

    #[test]
    fn message_grants_cover_whole_parts() {
        let dept = MessageTarget::parse("department:yingji").unwrap();
        assert!(dept.covers(&Recipient::Department { code: "yingji".into() }));
        assert!(!dept.covers(&Recipient::Department { code: "police".into() }));
        assert!(!dept.covers(&Recipient::OrgUnit { code: "yingji".into() }));
        for bad in ["pager:1", "role:320102", "user:", "nothing"] {
            assert!(MessageTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_and_case_grants_parse_or_say_why_not() {
        assert_eq!(
            DataTarget::parse("iot:gas", DataAccess::Write).unwrap_err(),
            "sensor readings are written by ingest, not by plugins"
        );
        assert!(DataTarget::parse("Bad Set", DataAccess::Read).unwrap_err().contains("not a data set name"));
        assert!(DataTarget::parse("iot:", DataAccess::Read).is_err());
        assert_eq!(CaseOp::parse("route"), Ok(CaseOp::Route));
        assert_eq!(CaseOp::Route.action(), "cases.suggest-route");
        assert!(CaseOp::parse("fly").unwrap_err().contains("expected open, note, evidence, warn or route"));
    }

    /// Recipients keep the key order the host's JSON maps gave them.
    #[test]
    fn recipients_round_trip_with_sorted_keys() {
        for (recipient, json) in [
            (Recipient::User { id: "u-7".into() }, r#"{"id":"u-7","kind":"user"}"#),
            (
                Recipient::Role { org_unit: "320102".into(), role: "leader".into() },
                r#"{"kind":"role","org_unit":"320102","role":"leader"}"#,
            ),
            (Recipient::Department { code: "yingji".into() }, r#"{"code":"yingji","kind":"department"}"#),
            (Recipient::OrgUnit { code: "320102".into() }, r#"{"code":"320102","kind":"org-unit"}"#),
        ] {
            assert_eq!(serde_json::to_string(&recipient).unwrap(), json);
            assert_eq!(serde_json::from_str::<Recipient>(json).unwrap(), recipient);
        }
    }
}
