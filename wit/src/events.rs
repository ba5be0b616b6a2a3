//! The payload of every topic the host publishes, as typed values.
//!
//! A plugin receives an event's payload as JSON text; these types are that JSON,
//! field for field, as the host writes it: the same names, the same optional
//! fields (written as `null` when empty, except where a type says it leaves them
//! out), the same number types (times and durations as integer milliseconds,
//! measures as floating point). The host serialises these same types, and fields
//! are declared in the order the host has always written them, so the bytes a
//! plugin receives are the bytes it received before there were types.
//!
//! [`Payload`] maps each type to the topic (or the family of topics) it travels
//! on. Times are milliseconds since the Unix epoch, UTC. Identifiers of cases,
//! reports, warnings, suggestions and messages are opaque strings.
//!
//! What is never carried: a hotline caller's phone number or name (only a
//! [`caller key`](CaseReported::caller)), a reporter's identity, passwords or
//! tokens, and the contents of media (only sha256 digests, and not on the bus).
//!
//! Within a WIT version's line (`0.2.x`) payloads only grow: a new optional
//! field, a new topic, a new value of a named set ([`Channel::Other`],
//! [`CommandLevel::Other`] keep an unknown one rather than failing).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::grants::Recipient;

/// A payload type and the topics it travels on.
pub trait Payload: Serialize + DeserializeOwned {
    /// The topic, or for a family the NATS pattern of its topics: `case.reported`,
    /// `warning.*`, `iot.reading.*`.
    const TOPIC: &'static str;

    /// Whether the host publishes this payload on `topic`.
    fn carried_on(topic: &str) -> bool {
        match Self::TOPIC.strip_suffix(".*") {
            Some(family) => topic
                .strip_prefix(family)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|last| !last.is_empty() && !last.contains('.')),
            None => topic == Self::TOPIC,
        }
    }

    /// Reads the payload of an event on `topic`: the error names the topic and
    /// says what did not fit (a topic this type does not travel on, or serde's
    /// message for the JSON, after the dotted path of the field it concerns).
    fn from_event(topic: &str, payload: &str) -> Result<Self, PayloadError> {
        if !Self::carried_on(topic) {
            return Err(PayloadError {
                topic: topic.to_owned(),
                message: format!("the host publishes this payload on `{}`, not on this topic", Self::TOPIC),
            });
        }
        let mut json = serde_json::Deserializer::from_str(payload);
        serde_path_to_error::deserialize(&mut json).map_err(|e| {
            // A missing field is named by serde itself, at the level above it.
            let message = match e.path().to_string() {
                path if path == "." => e.inner().to_string(),
                path => format!("field `{path}`: {}", e.inner()),
            };
            PayloadError { topic: topic.to_owned(), message }
        })
    }

    /// The payload as the JSON text the host publishes.
    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a payload serialises: its maps have string keys")
    }
}

/// A payload that does not fit its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload of `{topic}`: {message}")]
pub struct PayloadError {
    /// The event's topic.
    pub topic: String,
    /// What did not fit: serde's message, or the topic's.
    pub message: String,
}

/// How a report reached the platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// A call or message to the 12345 hotline.
    Hotline,
    /// A resident's photo report (随手拍).
    Snapshot,
    /// Found by a grid worker or patrol.
    Patrol,
    /// Opened by a department, or by a plugin of one.
    Department,
    /// Opened by a warning's response.
    Warning,
    /// Raised by an imported CAP alert, one case per grid cell.
    CapAlert,
    /// Through the Open311 GeoReport API.
    Open311,
    /// A channel this version of the contract does not know yet.
    #[serde(untagged)]
    Other(String),
}

impl Channel {
    /// The names of the channels this version of the contract knows.
    pub const NAMES: [&'static str; 7] = ["hotline", "snapshot", "patrol", "department", "warning", "cap-alert", "open311"];

    /// The name as written in payloads: `hotline`, `cap-alert`, ….
    pub fn name(&self) -> &str {
        match self {
            Channel::Hotline => "hotline",
            Channel::Snapshot => "snapshot",
            Channel::Patrol => "patrol",
            Channel::Department => "department",
            Channel::Warning => "warning",
            Channel::CapAlert => "cap-alert",
            Channel::Open311 => "open311",
            Channel::Other(name) => name,
        }
    }

    /// The channel named `name`; [`Channel::Other`] when this contract does not know it.
    pub fn named(name: &str) -> Channel {
        serde_json::from_value(serde_json::Value::from(name)).unwrap_or_else(|_| Channel::Other(name.to_owned()))
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The four command levels (指挥层级) that handle cases, lowest first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandLevel {
    /// 社区.
    Community,
    /// 街道.
    Street,
    /// 区.
    District,
    /// 市.
    City,
    /// A level this version of the contract does not know yet.
    #[serde(untagged)]
    Other(String),
}

impl CommandLevel {
    /// The name as written in payloads: `community`, `street`, `district`, `city`.
    pub fn name(&self) -> &str {
        match self {
            CommandLevel::Community => "community",
            CommandLevel::Street => "street",
            CommandLevel::District => "district",
            CommandLevel::City => "city",
            CommandLevel::Other(name) => name,
        }
    }

    /// The level named `name`; [`CommandLevel::Other`] when this contract does not know it.
    pub fn named(name: &str) -> CommandLevel {
        serde_json::from_value(serde_json::Value::from(name)).unwrap_or_else(|_| CommandLevel::Other(name.to_owned()))
    }
}

impl fmt::Display for CommandLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `case.reported`: a report was taken in and opened a new case.
///
/// Published by the intake once the report and its case are committed, located
/// where the report was made. A report that repeats an open case is announced
/// on `case.joined` instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReported {
    /// The address the reporter gave, as written; `null` when none was given.
    #[serde(default)]
    pub address: Option<String>,
    /// The 14-digit grid cell code the report lies in (or the CAP area's cell it
    /// was raised for); `null` when it has no location or lies outside every cell.
    #[serde(default)]
    pub area: Option<String>,
    /// For a hotline call, the caller key: the first 16 hex digits of the sha256
    /// of the phone number's digits, so repeat calls can be told apart. The phone
    /// number and the caller's name are never carried. `null` for other reports.
    #[serde(default)]
    pub caller: Option<String>,
    /// The new case's id.
    pub case: String,
    /// The category code (`GET /api/categories`), e.g. `020501`.
    pub category_code: String,
    /// How the report arrived.
    pub channel: Channel,
    /// The report's text.
    pub description: String,
    /// The report's id.
    pub report: String,
    /// The public number the reporter follows the case by.
    pub ticket: String,
    /// The report's title, or its category's name when it had none.
    pub title: String,
}

impl Payload for CaseReported {
    const TOPIC: &'static str = "case.reported";
}

/// `case.joined`: a report repeated an open case and joined it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseJoined {
    /// The open case the report joined.
    pub case: String,
    /// How the report arrived.
    pub channel: Channel,
    /// The report's id.
    pub report: String,
    /// How closely it matched the case, from 0 to 1 (text, distance, time, code).
    pub score: f64,
}

impl Payload for CaseJoined {
    const TOPIC: &'static str = "case.joined";
}

/// The topics of the `case.` family that are not a case's move.
const CASE_TOPICS: [&str; 6] = ["reported", "joined", "join-confirmed", "split", "route-suggested", "overdue"];

/// `case.<action>` (`case.dispatch`, `case.close`, `case.call-in`, …): a case
/// moved through its lifecycle (GB/T 30428 stages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseMoved {
    /// The action taken, as in the topic: `accept`, `dispatch`, `transfer`,
    /// `dispose`, `close`, `reopen`, `escalate`, `call-in`, `merge`, ….
    pub action: String,
    /// Who took it: `user:<id>`, or the host's name for a move it made itself.
    pub actor: String,
    /// The case's id.
    pub case: String,
    /// The department the case is with after the move; `null` when none (not yet
    /// dispatched, returned, reopened). For `call-in`, the department it stays with.
    #[serde(default)]
    pub department: Option<String>,
    /// The stage before: `reported`, `accepted`, `registered`, `dispatched`,
    /// `in-progress`, `disposed`, `checking`, `checked`, `closed`, `rejected`, `voided`.
    pub from: String,
    /// The command level handling the case after the move; `null` before its
    /// first dispatch.
    #[serde(default)]
    pub level: Option<CommandLevel>,
    /// Why, as the actor wrote it; empty when the action needs no reason.
    #[serde(default)]
    pub reason: String,
    /// The route suggestion a dispatch accepted; `null` otherwise.
    #[serde(default)]
    pub suggestion: Option<String>,
    /// The stage after (the names of `from`).
    pub to: String,
}

impl CaseMoved {
    /// The topic the host publishes this move on: `case.<action>`.
    pub fn topic(&self) -> String {
        format!("case.{}", self.action)
    }
}

impl Payload for CaseMoved {
    const TOPIC: &'static str = "case.*";

    fn carried_on(topic: &str) -> bool {
        topic
            .strip_prefix("case.")
            .is_some_and(|action| !action.is_empty() && !action.contains('.') && !CASE_TOPICS.contains(&action))
    }
}

/// `case.join-confirmed`: a dispatcher confirmed that a joined report belongs to
/// its case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseJoinConfirmed {
    /// Who confirmed: `user:<id>`.
    pub actor: String,
    /// The case.
    pub case: String,
    /// Why, as the dispatcher wrote it (may be empty).
    #[serde(default)]
    pub reason: String,
    /// The report confirmed.
    pub report: String,
}

impl Payload for CaseJoinConfirmed {
    const TOPIC: &'static str = "case.join-confirmed";
}

/// `case.split`: a dispatcher split a joined report off into a new case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSplit {
    /// Who split it: `user:<id>`.
    pub actor: String,
    /// The new case's grid cell code; `null` when it has none.
    #[serde(default)]
    pub area: Option<String>,
    /// The case the report was split from.
    pub case: String,
    /// The report's category code.
    pub category_code: String,
    /// The new case's id.
    pub new_case: String,
    /// Why, as the dispatcher wrote it.
    pub reason: String,
    /// The report split off.
    pub report: String,
    /// The new case's public ticket.
    pub ticket: String,
}

impl Payload for CaseSplit {
    const TOPIC: &'static str = "case.split";
}

/// `case.route-suggested`: a plugin suggested where a case should go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteSuggested {
    /// The case.
    pub case: String,
    /// The department suggested, by code.
    pub department: String,
    /// The command level suggested.
    pub level: CommandLevel,
    /// The plugin that suggested it, by name.
    pub plugin: String,
    /// Why, in the dispatcher's words: 1-500 characters.
    pub reason: String,
    /// How sure the plugin is, from 0 to 1.
    pub score: f64,
    /// The suggestion's id, which a dispatch may accept.
    pub suggestion: String,
}

impl Payload for RouteSuggested {
    const TOPIC: &'static str = "case.route-suggested";
}

/// `case.overdue`: a case's current step ran past its deadline (published once
/// per step, by the minute sweep).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseOverdue {
    /// The case's grid cell code; `null` when it has none.
    #[serde(default)]
    pub area: Option<String>,
    /// The case.
    pub case: String,
    /// When the step was due, in ms since the epoch (working calendar applied);
    /// `null` when the deadline cannot be placed in the calendar.
    #[serde(default)]
    pub deadline: Option<i64>,
    /// The step's limit, in working milliseconds (extensions included).
    pub limit_ms: i64,
    /// The step: `accept`, `dispatch`, `dispose`, `check`, ….
    pub step: String,
    /// Working milliseconds used so far.
    pub used_ms: i64,
}

impl Payload for CaseOverdue {
    const TOPIC: &'static str = "case.overdue";
}

/// A shape of a warning's area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// `{"circle": {"lat", "lon", "radius_km"}}`.
    Circle {
        /// The centre's latitude, WGS 84 degrees.
        lat: f64,
        /// The centre's longitude, WGS 84 degrees.
        lon: f64,
        /// The radius in kilometres, positive.
        radius_km: f64,
    },
    /// `{"polygon": [[lat, lon], …]}`: a closed ring (first point = last), at
    /// least 4 points, each `[latitude, longitude]` in WGS 84 degrees.
    Polygon(Vec<[f64; 2]>),
}

/// The area a warning covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningArea {
    /// The area in words (CAP `areaDesc`; several joined by `；`).
    pub description: String,
    /// Its circles and polygons; at least one.
    pub shapes: Vec<Shape>,
}

/// A CAP 1.2-aligned warning as the host stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningInfo {
    /// Where it applies.
    pub area: WarningArea,
    /// The CAP category in lower case: `geo`, `met`, `safety`, `security`,
    /// `rescue`, `fire`, `health`, `env`, `transport`, `infra`, `cbrne`, `other`.
    pub category: String,
    /// CAP certainty: `Observed`, `Likely`, `Possible`, `Unlikely`, `Unknown`.
    pub certainty: String,
    /// What is happening, in more words.
    pub description: String,
    /// The kind of event, e.g. `积水预警`.
    pub event: String,
    /// One line for people.
    pub headline: String,
    /// What to do (may be empty).
    pub instruction: String,
    /// Name and value pairs, each written as a two-string array.
    pub parameters: Vec<(String, String)>,
    /// CAP severity: `Extreme`, `Severe`, `Moderate`, `Minor`, `Unknown`.
    pub severity: String,
    /// CAP urgency: `Immediate`, `Expected`, `Future`, `Past`, `Unknown`.
    pub urgency: String,
}

/// A warning message's place in its chain, CAP 1.2 `msgType`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MsgType {
    /// The first message of a warning.
    #[default]
    Alert,
    /// Replaces what the earlier messages of its chain said.
    Update,
    /// Withdraws the earlier messages of its chain.
    Cancel,
}

impl MsgType {
    /// Whether this is [`MsgType::Alert`] (the field is left out then).
    pub fn is_alert(&self) -> bool {
        *self == MsgType::Alert
    }

    /// The CAP name: `Alert`, `Update`, `Cancel`.
    pub fn name(self) -> &'static str {
        match self {
            MsgType::Alert => "Alert",
            MsgType::Update => "Update",
            MsgType::Cancel => "Cancel",
        }
    }
}

/// `warning.<category>`: a warning was stored (raised by a plugin, returned by a
/// warning model, or imported from a CAP alert), or a plugin updated one it
/// raised (`msg_type` `Update`, since 0.2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningRaised {
    /// The codes of the communities whose grid cells the area reaches, sorted.
    #[serde(default)]
    pub communities: Vec<String>,
    /// The warning itself.
    pub info: WarningInfo,
    /// `Update` when this replaces an earlier warning of the same plugin; left
    /// out for a new warning (`Alert`). Since 0.2.1.
    #[serde(default, skip_serializing_if = "MsgType::is_alert")]
    pub msg_type: MsgType,
    /// For an update, the ids of the earlier messages of its chain, oldest first:
    /// the first is the warning as first raised. Left out when empty. Since 0.2.1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// Who raised it: `plugin:<name>`, or `cap:<sender>/<identifier>` for an alert.
    pub source: String,
    /// The codes of the streets whose grid cells the area reaches, sorted.
    #[serde(default)]
    pub streets: Vec<String>,
    /// The warning's id.
    pub warning: String,
}

impl WarningRaised {
    /// The topic the host publishes this warning on: `warning.<category>`.
    pub fn topic(&self) -> String {
        format!("warning.{}", self.info.category)
    }
}

impl Payload for WarningRaised {
    const TOPIC: &'static str = "warning.*";
}

/// `warning-cancelled.<category>`: a plugin cancelled a warning it raised (CAP
/// `Cancel`). Since 0.2.1. A plugin that answered the warning (a case opened,
/// people told) reads this to say so where it answered; the host closes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningCancelled {
    /// The category of the warning cancelled, as in `warning.<category>`.
    pub category: String,
    /// The codes of the communities whose grid cells its area reached, sorted.
    pub communities: Vec<String>,
    /// Why, in the plugin's words.
    pub reason: String,
    /// The ids of the messages cancelled, oldest first: the first is the warning
    /// as first raised, then its updates.
    pub references: Vec<String>,
    /// Who cancelled it (its raiser): `plugin:<name>`.
    pub source: String,
    /// The codes of the streets whose grid cells its area reached, sorted.
    pub streets: Vec<String>,
    /// The cancel's own id (the CAP identifier of the Cancel message).
    pub warning: String,
}

impl WarningCancelled {
    /// The topic the host publishes it on: `warning-cancelled.<category>`.
    pub fn topic(&self) -> String {
        format!("warning-cancelled.{}", self.category)
    }
}

impl Payload for WarningCancelled {
    const TOPIC: &'static str = "warning-cancelled.*";
}

/// `iot.reading.<kind>` (`iot.reading.water-level`, `.gas`, `.bin-fill`,
/// `.vehicle-gps`, …): one stored sensor reading. The event is located where the
/// reading was taken and timed at it.
///
/// Unlike the other payloads, its keys are in this order and `lat`/`lon` are
/// left out (not `null`) for a fixed sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The sensor's id.
    pub sensor: String,
    /// The value measured, in `unit`.
    pub value: f64,
    /// The sensor kind's unit: `m`, `%LEL`, `%`, `deg`, ….
    pub unit: String,
    /// When it was measured, ms since the epoch. The host always sends it; a
    /// payload without it (one built by hand) is read as taken at the event's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// Where a moving sensor was, WGS 84 latitude; left out for a fixed sensor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// Where a moving sensor was, WGS 84 longitude; left out for a fixed sensor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

impl Reading {
    /// The topic of a reading of sensor kind `kind`: `iot.reading.<kind>`.
    pub fn topic(kind: &str) -> String {
        format!("iot.reading.{kind}")
    }
}

impl Payload for Reading {
    const TOPIC: &'static str = "iot.reading.*";
}

/// `message.sent`: a message was stored for its recipients (live inboxes follow it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageSent {
    /// The message's id.
    pub message: String,
    /// Who sent it: `user:<id>` or `plugin:<name>`.
    pub sender: String,
    /// The subject, 1-200 characters. The body is not carried.
    pub subject: String,
    /// Whom it is for.
    pub to: Recipient,
}

impl Payload for MessageSent {
    const TOPIC: &'static str = "message.sent";
}

/// `time.day`: a local day (UTC+8) ended. Published at local midnight; a host
/// that was down publishes the days it missed (at most 7) when it is back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayEnded {
    /// The day that ended, `YYYY-MM-DD`, local date.
    pub day: String,
    /// Its end (the next local midnight), ms since the epoch.
    pub end: i64,
    /// Its start (local midnight), ms since the epoch.
    pub start: i64,
}

impl Payload for DayEnded {
    const TOPIC: &'static str = "time.day";
}

/// `time.week`: an ISO week (Monday to Sunday, local time) ended. Published at
/// the local midnight that ends its Sunday; missed weeks (at most 7) are caught up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekEnded {
    /// Its end (the next Monday's local midnight), ms since the epoch.
    pub end: i64,
    /// Its start (its Monday's local midnight), ms since the epoch.
    pub start: i64,
    /// The ISO 8601 week that ended, `YYYY-Www`, e.g. `2026-W48`.
    pub week: String,
}

impl Payload for WeekEnded {
    const TOPIC: &'static str = "time.week";
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Each payload as the host builds it today (the same `json!` and structs as
    /// in `host/src`), with the topic it travels on: the typed value parses it,
    /// and writes back the very same bytes.
    fn check<P: Payload + PartialEq + fmt::Debug>(topic: &str, host_json: &str) -> P {
        let parsed = P::from_event(topic, host_json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.to_json(), host_json, "{topic}");
        assert_eq!(P::from_event(topic, &parsed.to_json()).unwrap(), parsed);
        parsed
    }

    #[test]
    fn case_reported_as_the_intake_builds_it() {
        let caller_key = "a1b2c3d4e5f60718";
        let host = json!({
            "case": "c-1", "report": "r-1", "ticket": "YW202611280001", "channel": "hotline",
            "category_code": "020501", "area": "32010200100101", "title": "占道经营",
            "description": "门口天天有人摆摊", "address": "中山路 88 号", "caller": caller_key,
        });
        let r: CaseReported = check("case.reported", &host.to_string());
        assert_eq!((r.channel, r.caller.as_deref()), (Channel::Hotline, Some(caller_key)));
        // A report with no place, no address and no caller carries nulls.
        let bare = json!({
            "case": "c-2", "report": "r-2", "ticket": "T2", "channel": "cap-alert", "category_code": "0501",
            "area": null, "title": "暴雨", "description": "暴雨", "address": null, "caller": null,
        });
        let r: CaseReported = check("case.reported", &bare.to_string());
        assert_eq!((r.channel, r.area), (Channel::CapAlert, None));
    }

    #[test]
    fn case_joined_split_confirmed_suggested_and_overdue() {
        let joined = json!({ "case": "c-1", "report": "r-9", "channel": "snapshot", "score": 0.83 });
        assert_eq!(check::<CaseJoined>("case.joined", &joined.to_string()).score, 0.83);
        let confirmed = json!({ "case": "c-1", "report": "r-9", "actor": "user:d1", "reason": "" });
        check::<CaseJoinConfirmed>("case.join-confirmed", &confirmed.to_string());
        let split = json!({
            "case": "c-1", "report": "r-9", "new_case": "c-3", "ticket": "T3",
            "category_code": "020501", "area": null, "actor": "user:d1", "reason": "另一处",
        });
        check::<CaseSplit>("case.split", &split.to_string());
        let suggested = json!({
            "case": "c-1", "suggestion": "s-1", "plugin": "zongzhi", "department": "housing",
            "level": "district", "score": 0.7, "reason": "街道吹哨",
        });
        let s: RouteSuggested = check("case.route-suggested", &suggested.to_string());
        assert_eq!(s.level, CommandLevel::District);
        let overdue = json!({
            "case": "c-1", "step": "dispose", "deadline": 1_764_300_000_000_i64, "used_ms": 7_200_001,
            "limit_ms": 7_200_000, "area": "32010200100101",
        });
        check::<CaseOverdue>("case.overdue", &overdue.to_string());
    }

    #[test]
    fn case_moves_travel_on_their_action() {
        let host = json!({
            "case": "c-1", "action": "dispatch", "from": "registered", "to": "dispatched",
            "department": "chengguan", "level": "street", "actor": "user:d1", "reason": "", "suggestion": null,
        });
        let m: CaseMoved = check("case.dispatch", &host.to_string());
        assert_eq!((m.topic(), m.level), ("case.dispatch".to_owned(), Some(CommandLevel::Street)));
        let undispatched = json!({
            "case": "c-1", "action": "accept", "from": "reported", "to": "accepted",
            "department": null, "level": null, "actor": "user:d1", "reason": "", "suggestion": null,
        });
        check::<CaseMoved>("case.accept", &undispatched.to_string());
        for topic in ["case.reported", "case.overdue", "case.split", "warning.met", "case.a.b"] {
            assert!(!CaseMoved::carried_on(topic), "{topic}");
        }
        let wrong = CaseMoved::from_event("case.reported", &host.to_string()).unwrap_err();
        assert!(wrong.to_string().starts_with("payload of `case.reported`: the host publishes"), "{wrong}");
    }

    #[test]
    fn warnings_as_stored_and_announced() {
        // `info` is the host's `Warning` struct, its area as `warning_from_wit` builds it.
        let info = json!({
            "category": "met", "event": "积水预警", "urgency": "Expected", "severity": "Moderate",
            "certainty": "Observed",
            "area": { "description": "wl-1 周边 1 公里", "shapes": [
                { "circle": { "lat": 32.05, "lon": 118.79, "radius_km": 1.0 } },
                { "polygon": [[32.0, 118.7], [32.1, 118.7], [32.1, 118.8], [32.0, 118.7]] },
            ] },
            "headline": "wl-1 水位 3.40 m", "description": "水位 3.40 m", "instruction": "",
            "parameters": [["sensor", "wl-1"], ["value", "3.4"]],
        });
        let host = json!({
            "warning": "w-1", "source": "plugin:yingji", "info": info,
            "communities": ["320102001001"], "streets": ["320102001"],
        });
        let w: WarningRaised = check("warning.met", &host.to_string());
        assert_eq!(w.topic(), "warning.met");
        assert_eq!(w.info.parameters[1], ("value".to_owned(), "3.4".to_owned()));
        assert!(matches!(w.info.area.shapes[0], Shape::Circle { radius_km, .. } if radius_km == 1.0));
        assert!(!WarningRaised::carried_on("warning"));
        assert_eq!(w.msg_type, MsgType::Alert, "a payload without `msg_type` is a new warning");

        // An update names its chain; a new warning's bytes are as they were.
        let update = json!({
            "communities": [], "info": info, "msg_type": "Update", "references": ["w-1", "w-2"],
            "source": "plugin:yingji", "streets": [], "warning": "w-3",
        });
        let u: WarningRaised = check("warning.met", &update.to_string());
        assert_eq!((u.msg_type, u.references.len()), (MsgType::Update, 2));
        assert!(!w.to_json().contains("msg_type") && !w.to_json().contains("references"));

        let cancel = json!({
            "category": "met", "communities": ["320102001001"], "reason": "水位已回落",
            "references": ["w-1", "w-3"], "source": "plugin:yingji", "streets": ["320102001"], "warning": "w-4",
        });
        let c: WarningCancelled = check("warning-cancelled.met", &cancel.to_string());
        assert_eq!(c.topic(), "warning-cancelled.met");
        assert!(!WarningCancelled::carried_on("warning.met") && !WarningRaised::carried_on("warning-cancelled.met"));
    }

    #[test]
    fn readings_keep_their_order_and_leave_out_a_fixed_sensors_place() {
        // As `Committed::event` writes them: a struct, not a JSON map.
        let fixed = r#"{"sensor":"wl-1","value":3.4,"unit":"m","time":1764300000000}"#;
        let r: Reading = check("iot.reading.water-level", fixed);
        assert_eq!((r.lat, r.time), (None, Some(1_764_300_000_000)));
        let moving = r#"{"sensor":"gps-1","value":0.0,"unit":"deg","time":1764300000000,"lat":32.05,"lon":118.79}"#;
        check::<Reading>("iot.reading.vehicle-gps", moving);
        assert_eq!(Reading::topic("gas"), "iot.reading.gas");
        assert!(!Reading::carried_on("iot.reading.gas.extra"));
        let bad = Reading::from_event("iot.reading.gas", r#"{"sensor":"g-1","unit":"%LEL"}"#).unwrap_err();
        assert_eq!(bad.topic, "iot.reading.gas");
        assert!(bad.message.contains("missing field `value`"), "{bad}");
        let bad = Reading::from_event("iot.reading.gas", r#"{"sensor":7,"value":1.0,"unit":"%LEL"}"#).unwrap_err();
        assert!(bad.message.starts_with("field `sensor`: invalid type: integer `7`"), "{bad}");
    }

    #[test]
    fn messages_and_calendar_ticks() {
        let to = Recipient::Role { org_unit: "320102".into(), role: "leader".into() };
        let host = json!({ "message": "m-1", "to": to, "sender": "plugin:yingji", "subject": "积水预警" });
        let m: MessageSent = check("message.sent", &host.to_string());
        assert_eq!(m.to, to);
        let day = json!({ "day": "2026-11-28", "start": 1_764_259_200_000_i64, "end": 1_764_345_600_000_i64 });
        assert_eq!(check::<DayEnded>("time.day", &day.to_string()).day, "2026-11-28");
        let week = json!({ "week": "2026-W48", "start": 1_763_913_600_000_i64, "end": 1_764_518_400_000_i64 });
        assert_eq!(check::<WeekEnded>("time.week", &week.to_string()).week, "2026-W48");
    }

    /// Names this contract does not know yet are kept, not refused.
    #[test]
    fn unknown_channels_and_levels_are_kept() {
        let c: Channel = serde_json::from_str(r#""kiosk""#).unwrap();
        assert_eq!((c.name(), serde_json::to_string(&c).unwrap()), ("kiosk", r#""kiosk""#.to_owned()));
        let l: CommandLevel = serde_json::from_str(r#""province""#).unwrap();
        assert_eq!(l, CommandLevel::Other("province".into()));
        assert_eq!(serde_json::to_string(&Channel::Open311).unwrap(), r#""open311""#);
        for name in Channel::NAMES {
            assert!(!matches!(Channel::named(name), Channel::Other(_)), "{name}");
            assert_eq!(Channel::named(name).name(), name);
        }
    }
}
