//! `hotline12345` (12345 市民热线): what the hotline learns from the reports it takes.
//!
//! The plugin is an event handler. It reads every `case.reported` whose channel is in
//! `[config] channels` (the hotline, and 随手拍 snapshots), and every `case.close` and
//! `case.reopen`. Every parameter below is in the `[config]` table of `plugin.toml`,
//! which documents each one; `init` refuses a configuration that does not parse, naming
//! the key and, for the rule texts, the line.
//!
//! # 1. Classification (分类建议)
//!
//! The text is the title and the description of the report. The title is left out when
//! it is only the registered category's name, which the host fills in for a report
//! without a title: the operator's choice must not vote for itself. Text and rules are
//! compared after [`rules::fold`] (full-width ASCII to half-width, Latin letters lower
//! case).
//!
//! Each rule of `rules` is `<code> <department>[@<level>] <name>: <term>=<weight>, ...`.
//! A term is a keyword (`摆摊`) or a phrase whose parts must all occur (`井盖&丢`);
//! phrases are the stronger evidence and weigh more (`phrase-weight` against
//! `keyword-weight` when no weight is written).
//!
//! * score of a rule `s = Σ weight(t)` over its terms `t` found in the text, each once;
//! * the best rule wins (the earlier one on a tie) if `s_best ≥ min-score`; otherwise
//!   the report is not classified;
//! * route score (0..1) `= margin × strength`, with
//!   `margin = (s_best − s_second) / s_best` (`s_second` = the runner-up's score, 0 if
//!   none) and `strength = min(1, s_best / confident-score)`.
//!
//! A classified report gets a note `分类建议：<code> <name> → <department>，依据：…` (with
//! the runner-up, the urgency, and whether the operator's category differs), a suggested
//! route (the rule's department at the rule's level, or `route-level`; the reason names
//! the matched terms), and an event `hotline.classified`
//! `{case, category_code, category_name, department, level, score, points, matched,
//! runner_up, urgency, urgency_terms, registered_category, differs}`.
//!
//! # 2. Urgency (紧急程度)
//!
//! `urgency` lists terms for the levels `urgent` and `high`; the highest level with a
//! term found is the report's, otherwise `normal`. A term right after a negation word of
//! `negations` does not count (没有人受伤, 并未起火), with up to `negation-gap`
//! characters between them (无人员被困); punctuation ends a negation's reach. The
//! urgency is in the note and in `hotline.classified`; an urgent report's route goes
//! `urgent-raise-levels` command levels higher (at most `city`) and its reason says why.
//! A report that is urgent or high but not classified still gets a note.
//!
//! # 3. Repeat callers and addresses (重复来电 / 重复地址)
//!
//! Every handled report is remembered in the data set `hotline-cases` (see [`Remembered`]
//! for the record). For a new report at time `t` (the event's time):
//!
//! * `n_caller` = remembered reports with the same `caller` (hashed phone) and time in
//!   `[t − repeat-window-days, t]`, the report itself left out; likewise `n_address` for
//!   the same address key ([`address::key`]: spaces, widths and punctuation do not
//!   matter, 号/栋 forms are kept);
//! * `n_caller ≥ repeat-caller-min` gives a note `重复来电：…`, `n_address ≥
//!   repeat-address-min` a note `重复地址：…`; either publishes `hotline.repeat`
//!   `{case, caller, caller_count, caller_cases, address, address_count, address_cases,
//!   window_days, repeat}` (`repeat` lists `caller` and/or `address`).
//!
//! The reports counted come from two small records per report, read by key ([`Recent`]):
//! the recent reports of its caller (`caller:<hash>`) and of its address
//! (`address:<address key>`). Each holds what a later report can still use, and no
//! more: the reports of the last `repeat-window-days`, and at an address also the
//! cases closed in the last `false-rectification-days`, at most `history-limit` of
//! them (the latest). So what a report reads and writes does not grow with the history
//! of `hotline-cases`: the plugin never queries or scans the data set.
//!
//! # 4. 假性整改 (false rectification)
//!
//! `case.close` marks a remembered case closed: the event's time and the case's
//! department (from the event; when it names none, the department the case was
//! classified to); its address's recent reports keep it, closed, for
//! `false-rectification-days`. `case.reopen` marks it reopened: a reopened case was
//! already found wanting and is not a closure to check against. A new report at time
//! `t` is a 假性整改 of a remembered case `c` when
//!
//! * `c` has the same address key and is closed, at `t_close ≤ t`, with
//!   `t − t_close ≤ false-rectification-days`;
//! * the categories match: of the new report's codes (registered and classified) and
//!   `c`'s, two are equal (`category-match = "exact"`) or share their first 4 digits
//!   (`"family"`).
//!
//! Then, once per (closed case, new case): a supervision case is opened (category
//! `supervision-category`, channel `department`, title `假性整改督办：<address>
//! <category name>`, a description naming the closed case, its closing department and
//! the dates, at the new report's location or else the closed case's), its route is
//! suggested to the closing department (`supervision-fallback-department` if unknown) at
//! `supervision-level`, the new report's case gets a note pointing at it, and
//! `hotline.false-rectification` `{case, closed_case, supervision_case, department,
//! address, category_code, days_since_close, closed_at}` is published
//! (`days_since_close = (t − t_close) / 1 day`, to one decimal).
//!
//! # Bad input
//!
//! Malformed JSON, a missing or ill-typed field (`case`, `channel`, `category_code`,
//! `description` are required strings; `title`, `address`, `area`, `report` strings or
//! null; `caller` 16 hex digits or null), an empty description, an unknown channel, an
//! event time ≤ 0, a `case.close` or `case.reopen` for a case never seen or timed before
//! the case's report: each is skipped with a logged reason (`log::warn!`) and opens no
//! case and publishes nothing. A report seen before (a redelivered event: its record
//! exists) is skipped too, so nothing is done twice.
//!
//! Dates in texts are local dates (UTC+8).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use yiwang_sdk::cases::{CommandLevel, RouteSuggestion};
use yiwang_sdk::events::{CaseMoved, CaseReported, Channel};
use yiwang_sdk::serde_json::{self, Value};
use yiwang_sdk::prelude::*;

pub mod address;
pub mod rules;

use rules::{Negation, Rule, RuleScore, Urgency, UrgencyRules, fold};

/// The data set of remembered cases.
pub const DATASET: &str = "hotline-cases";
/// Every channel the host knows; a report on another is bad input.
pub const KNOWN_CHANNELS: [&str; 7] = Channel::NAMES;
const DAY_MS: i64 = 86_400_000;
/// The longest record key the host takes, in bytes.
const MAX_KEY: usize = 256;
/// `kind` (and key prefix) of the recent reports of a caller.
pub const CALLER: &str = "caller";
/// `kind` (and key prefix) of the recent reports of an address.
pub const ADDRESS: &str = "address";
/// The longest route reason the host takes, in characters.
const MAX_REASON_CHARS: usize = 500;

/// The names of the categories of the host's `categories` table, for codes no rule
/// names.
const CATEGORY_NAMES: [(&str, &str); 25] = [
    ("020101", "暴露垃圾"),
    ("020102", "积存垃圾渣土"),
    ("020103", "道路不洁"),
    ("020104", "水域不洁"),
    ("020105", "焚烧垃圾树叶"),
    ("020106", "油烟污染"),
    ("020107", "噪声扰民"),
    ("020201", "非法小广告"),
    ("020202", "违章张贴悬挂广告"),
    ("020301", "施工扰民"),
    ("020302", "违法建设"),
    ("020303", "道路破损"),
    ("020401", "路面积水内涝"),
    ("020402", "燃气泄漏"),
    ("020403", "危化品运输异常"),
    ("020404", "火灾隐患"),
    ("020405", "井盖缺失致险"),
    ("020501", "占道经营"),
    ("020502", "无照经营游商"),
    ("020503", "机动车乱停放"),
    ("020504", "非机动车乱停放"),
    ("020601", "邻里纠纷"),
    ("020602", "安全隐患"),
    ("020603", "重点人员走访逾期"),
    ("020604", "其他"),
];

// -------------------------------------------------------------------------------------
// Parameters.

/// How the categories of two reports are compared for 假性整改.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryMatch {
    /// The same 6-digit code.
    Exact,
    /// The same first 4 digits (the category family).
    Family,
}

/// The plugin's parameters, from `[config]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub channels: Vec<String>,
    pub rules: Vec<Rule>,
    pub min_score: f64,
    pub confident_score: f64,
    pub route_level: CommandLevel,
    pub urgency: UrgencyRules,
    pub negation: Negation,
    pub urgent_raise_levels: usize,
    pub repeat_window_days: i64,
    pub repeat_caller_min: usize,
    pub repeat_address_min: usize,
    pub history_limit: u32,
    pub false_rectification_days: i64,
    pub category_match: CategoryMatch,
    pub supervision_category: String,
    pub supervision_level: CommandLevel,
    pub supervision_fallback_department: String,
}

fn invalid(key: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("config `{key}`: {why}"))
}

fn required(key: &str) -> Result<String, Error> {
    config::get(key).ok_or_else(|| invalid(key, "is not set"))
}

impl Params {
    /// Reads and checks the parameters; an error names the key (and the line of a rule).
    pub fn from_config() -> Result<Params, Error> {
        let keyword_weight: f64 = config::get_or("keyword-weight", 1.0)?;
        let phrase_weight: f64 = config::get_or("phrase-weight", 2.0)?;
        for (key, w) in [("keyword-weight", keyword_weight), ("phrase-weight", phrase_weight)] {
            if !(w.is_finite() && w > 0.0) {
                return Err(invalid(key, format!("{w} is not a positive number")));
            }
        }
        let rules = rules::parse_rules(&required("rules")?, keyword_weight, phrase_weight)
            .map_err(|e| invalid("rules", e))?;
        let urgency = rules::parse_urgency(&required("urgency")?).map_err(|e| invalid("urgency", e))?;
        let channels = rules::parse_list(&config::get("channels").unwrap_or_else(|| "hotline".into()));
        if let Some(bad) = channels.iter().find(|c| !KNOWN_CHANNELS.contains(&c.as_str())) {
            return Err(invalid("channels", format!("`{bad}` is not a channel ({})", KNOWN_CHANNELS.join(", "))));
        }
        let category_match = match config::get("category-match").as_deref().map(str::trim) {
            None | Some("family") => CategoryMatch::Family,
            Some("exact") => CategoryMatch::Exact,
            Some(other) => return Err(invalid("category-match", format!("`{other}` is neither `exact` nor `family`"))),
        };
        let p = Params {
            channels,
            rules,
            min_score: config::get_or("min-score", 3.0)?,
            confident_score: config::get_or("confident-score", 6.0)?,
            route_level: config::get_or("route-level", CommandLevel::Street)?,
            urgency,
            negation: Negation {
                words: rules::parse_list(&config::get("negations").unwrap_or_default()),
                gap: config::get_or("negation-gap", 2)?,
            },
            urgent_raise_levels: config::get_or("urgent-raise-levels", 1)?,
            repeat_window_days: config::get_or("repeat-window-days", 30)?,
            repeat_caller_min: config::get_or("repeat-caller-min", 1)?,
            repeat_address_min: config::get_or("repeat-address-min", 2)?,
            history_limit: config::get_or("history-limit", 2000)?,
            false_rectification_days: config::get_or("false-rectification-days", 15)?,
            category_match,
            supervision_category: config::get("supervision-category").unwrap_or_else(|| "020604".into()).trim().to_owned(),
            supervision_level: config::get_or("supervision-level", CommandLevel::District)?,
            supervision_fallback_department: config::get("supervision-fallback-department")
                .unwrap_or_else(|| "command-center".into())
                .trim()
                .to_owned(),
        };
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<(), Error> {
        if !(self.min_score.is_finite() && self.min_score > 0.0) {
            return Err(invalid("min-score", "must be a positive number"));
        }
        if !(self.confident_score.is_finite() && self.confident_score >= self.min_score) {
            return Err(invalid("confident-score", "must be a number at least `min-score`"));
        }
        for (key, days) in [("repeat-window-days", self.repeat_window_days), ("false-rectification-days", self.false_rectification_days)] {
            if days <= 0 {
                return Err(invalid(key, "must be a positive number of days"));
            }
        }
        if self.repeat_caller_min == 0 || self.repeat_address_min == 0 {
            return Err(invalid("repeat-caller-min", "and `repeat-address-min` must be at least 1"));
        }
        if self.history_limit == 0 {
            return Err(invalid("history-limit", "must be at least 1"));
        }
        let code = &self.supervision_category;
        if !(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid("supervision-category", format!("`{code}` is not a 6-digit category code")));
        }
        if !rules::is_code(&self.supervision_fallback_department) {
            return Err(invalid("supervision-fallback-department", "is not a department code"));
        }
        Ok(())
    }

    /// The category's name: from its rule, else from the host's table, else the code.
    pub fn category_name(&self, code: &str) -> String {
        self.rules
            .iter()
            .find(|r| r.code == code)
            .map(|r| r.name.clone())
            .or_else(|| CATEGORY_NAMES.iter().find(|(c, _)| *c == code).map(|(_, n)| (*n).to_owned()))
            .unwrap_or_else(|| code.to_owned())
    }

    /// Whether a report at `now` or later can still use `seen` among the recent
    /// reports of a caller or an address: one reported within the repeat window, or,
    /// at an address, closed within `false-rectification-days`. (A report timed
    /// after `now`, from an event delivered late, is kept.)
    pub fn keeps(&self, kind: &str, seen: &Seen, now: i64) -> bool {
        let window = self.repeat_window_days.saturating_mul(DAY_MS);
        let closure = self.false_rectification_days.saturating_mul(DAY_MS);
        now.saturating_sub(seen.time) <= window
            || (kind == ADDRESS && seen.closed.is_some_and(|c| now.saturating_sub(c) <= closure))
    }

    /// Whether two category codes match for 假性整改.
    pub fn same_category(&self, a: &str, b: &str) -> bool {
        match self.category_match {
            CategoryMatch::Exact => a == b,
            CategoryMatch::Family => a.len() >= 4 && b.len() >= 4 && a[..4] == b[..4],
        }
    }
}

// -------------------------------------------------------------------------------------
// Input.

/// A `case.reported` payload, checked: its text trimmed (a blank optional field
/// is none), its channel one the host knows, its category code 6 digits, its
/// caller key 16 lower-case hex digits. It reads as the payload itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Report(CaseReported);

impl std::ops::Deref for Report {
    type Target = CaseReported;

    fn deref(&self) -> &CaseReported {
        &self.0
    }
}

fn field<'v>(v: &'v Value, name: &str) -> Result<&'v str, String> {
    match v.get(name) {
        None | Some(Value::Null) => Err(format!("field `{name}` is missing")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(format!("field `{name}` is empty")),
        Some(Value::String(s)) => Ok(s.trim()),
        Some(other) => Err(format!("field `{name}` is not a string: {other}")),
    }
}

/// A channel's name, checked against the channels the host knows.
fn known_channel(name: &str) -> Result<Channel, String> {
    match Channel::named(name) {
        Channel::Other(_) => Err(format!("unknown channel `{name}`")),
        channel => Ok(channel),
    }
}

/// The channel of a payload, read before the rest: reports of channels this
/// plugin does not handle may have any shape.
fn channel_of(v: &Value) -> Result<Channel, String> {
    known_channel(field(v, "channel")?)
}

/// A text field trimmed; `None` when it is blank.
fn trimmed(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

impl Report {
    /// Checks a `case.reported` event; the error says what is wrong.
    pub fn parse(event: &Event) -> Result<Report, String> {
        let mut r: CaseReported = event.payload().map_err(|e| e.message().to_owned())?;
        for (name, text) in [("case", &mut r.case), ("category_code", &mut r.category_code), ("description", &mut r.description)] {
            *text = text.trim().to_owned();
            if text.is_empty() {
                return Err(format!("field `{name}` is empty"));
            }
        }
        known_channel(r.channel.name())?;
        if !(r.category_code.len() == 6 && r.category_code.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!("category_code `{}` is not 6 digits", r.category_code));
        }
        r.caller = trimmed(r.caller).map(|c| c.to_ascii_lowercase());
        if let Some(c) = &r.caller
            && !(c.len() == 16 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!("caller `{c}` is not 16 hex digits"));
        }
        r.title = r.title.trim().to_owned();
        r.report = r.report.trim().to_owned();
        r.area = trimmed(r.area);
        r.address = trimmed(r.address);
        Ok(Report(r))
    }
}

/// A position as stored in a record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

/// One remembered case: a record of `hotline-cases`, keyed by the case id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct Remembered {
    pub case: String,
    #[serde(default)]
    pub report: Option<String>,
    pub channel: String,
    /// The category the operator registered.
    pub category: String,
    /// The category this plugin classified the text as, if any.
    #[serde(default)]
    pub classified: Option<String>,
    /// The address as reported, and its comparison key ([`address::key`]).
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub address_key: Option<String>,
    #[serde(default)]
    pub area: Option<String>,
    /// The caller's hashed phone.
    #[serde(default)]
    pub caller: Option<String>,
    /// When it was reported (the event's time, ms).
    pub time: i64,
    /// `open`, `closed` or `reopened`.
    pub status: String,
    /// When it was last closed.
    #[serde(default)]
    pub closed: Option<i64>,
    /// The responsible department: the classified one, then the one that closed it.
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub urgency: Option<String>,
    #[serde(default)]
    pub location: Option<Point>,
    /// Supervision cases opened for 假性整改 of this case: new case → supervision case.
    #[serde(default)]
    pub supervisions: BTreeMap<String, String>,
}

impl Remembered {
    fn codes(&self) -> Vec<&str> {
        std::iter::once(self.category.as_str()).chain(self.classified.as_deref()).collect()
    }

    /// The case as its address's recent reports hold it.
    fn seen(&self) -> Seen {
        Seen {
            case: self.case.clone(),
            time: self.time,
            codes: self.codes().into_iter().map(str::to_owned).collect(),
            closed: self.closed.filter(|_| self.status == "closed"),
        }
    }
}

/// One report among the recent reports of a caller or an address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct Seen {
    pub case: String,
    /// When it was reported (the event's time, ms).
    pub time: i64,
    /// Its category codes, registered then classified (at an address only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
    /// When it was closed, while it is closed (at an address only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<i64>,
}

impl Seen {
    /// The latest time the report counts by: its closure, else its report.
    fn last(&self) -> i64 {
        self.closed.map_or(self.time, |c| c.max(self.time))
    }
}

/// The recent reports of one caller or one address: a record of `hotline-cases`
/// under [`Recent::key`], read and written by key for each report of the caller or at
/// the address. It keeps only what a later report can use ([`Params::keeps`]), at
/// most `history-limit` reports, so its size does not grow with the history.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde", default)]
pub struct Recent {
    /// [`CALLER`] or [`ADDRESS`].
    pub kind: String,
    /// The caller's hashed phone, or the address key.
    pub subject: String,
    /// Oldest first.
    pub reports: Vec<Seen>,
}

impl Recent {
    /// The record key: `caller:<hash>`, `address:<address key>`, or for an address key
    /// the host would not take in a record key (too long, or with control characters),
    /// `address#<64-bit FNV-1a of it, in hex>`.
    pub fn key(kind: &str, subject: &str) -> String {
        let key = format!("{kind}:{subject}");
        if key.len() <= MAX_KEY && !key.chars().any(char::is_control) {
            return key;
        }
        let hash = subject.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        format!("{kind}#{hash:016x}")
    }

    /// The recent reports of `subject`; none yet if the record is absent, unreadable
    /// (logged) or, under a hashed key, another subject's.
    pub fn load(kind: &str, subject: &str) -> Result<Recent, Error> {
        let key = Recent::key(kind, subject);
        let empty = Recent { kind: kind.to_owned(), subject: subject.to_owned(), reports: Vec::new() };
        match data::get_json::<Recent>(DATASET, &key) {
            Ok(Some(r)) if r.kind == kind && r.subject == subject => Ok(r),
            Ok(Some(_)) => {
                warn!("record `{key}` holds another {kind}'s reports; started afresh");
                Ok(empty)
            }
            Ok(None) => Ok(empty),
            Err(Error::Invalid(m)) => {
                warn!("record `{key}` is unreadable ({m}); started afresh");
                Ok(empty)
            }
            Err(e) => Err(e),
        }
    }

    /// Adds `seen`, or replaces the report of its case (a redelivered event), in time order.
    pub fn note(&mut self, seen: Seen) {
        self.reports.retain(|s| s.case != seen.case);
        let at = self.reports.partition_point(|s| s.time <= seen.time);
        self.reports.insert(at, seen);
    }

    /// Keeps the reports a report at `now` or later can use, at most `limit` of them
    /// (those that count latest), and stores the record.
    pub fn save(mut self, p: &Params, now: i64) -> Result<(), Error> {
        let kind = self.kind.clone();
        self.reports.retain(|s| p.keeps(&kind, s, now));
        let limit = p.history_limit as usize;
        if self.reports.len() > limit {
            let mut by_last: Vec<i64> = self.reports.iter().map(Seen::last).collect();
            by_last.sort_unstable();
            // Drop the reports that count earliest; of those that count at `cut`, the
            // earlier reported.
            let cut = by_last[by_last.len() - limit];
            let below = by_last.iter().filter(|t| **t < cut).count();
            let mut ties = self.reports.len() - limit - below;
            self.reports.retain(|s| match s.last().cmp(&cut) {
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal if ties > 0 => {
                    ties -= 1;
                    false
                }
                _ => true,
            });
        }
        data::put(DATASET, &Recent::key(&kind, &self.subject), &self)
    }
}

// -------------------------------------------------------------------------------------
// The models, pure.

/// The rules with a positive score, best first (the earlier rule first on a tie).
pub fn rank<'r>(rules: &'r [Rule], text: &str) -> Vec<RuleScore<'r>> {
    let mut scores: Vec<RuleScore<'r>> = rules.iter().map(|r| r.score(text)).filter(|s| s.score > 0.0).collect();
    scores.sort_by(|a, b| b.score.total_cmp(&a.score));
    scores
}

/// `margin × strength`: `margin = (best − second) / best`,
/// `strength = min(1, best / confident)`; two decimals.
pub fn route_score(best: f64, second: f64, confident: f64) -> f64 {
    if best <= 0.0 {
        return 0.0;
    }
    let margin = ((best - second) / best).clamp(0.0, 1.0);
    let strength = (best / confident).min(1.0);
    (margin * strength * 100.0).round() / 100.0
}

/// `level` raised by `by` command levels, at most `city`.
pub fn raise(level: CommandLevel, by: usize) -> CommandLevel {
    let at = CommandLevel::ALL.iter().position(|l| *l == level).unwrap_or(0);
    CommandLevel::ALL[(at + by).min(CommandLevel::ALL.len() - 1)]
}

/// The text to classify: title and description, folded; the title left out when it
/// is only the registered category's name.
pub fn text_of(p: &Params, r: &Report) -> String {
    let title = if r.title.is_empty() || r.title == p.category_name(&r.category_code) { "" } else { r.title.as_str() };
    fold(&format!("{title}\n{}", r.description))
}

/// The earlier remembered reports of `history` within the repeat window before `time`,
/// the case itself left out; their case ids, oldest first.
pub fn earlier_within(history: &[Seen], case: &str, time: i64, window_days: i64) -> Vec<String> {
    let mut found: Vec<&Seen> = history
        .iter()
        .filter(|h| h.case != case && h.time <= time && time - h.time <= window_days * DAY_MS)
        .collect();
    found.sort_by_key(|h| h.time);
    found.into_iter().map(|h| h.case.clone()).collect()
}

/// A closed case that the new report repeats: the case and the category that matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Relapse<'h> {
    pub closed: &'h Seen,
    pub category: String,
    pub days: f64,
}

/// The 假性整改 among the recent reports at the new report's address: closed cases
/// of a matching category closed at most `false-rectification-days` before `time`.
pub fn relapses<'h>(p: &Params, history: &'h [Seen], case: &str, codes: &[&str], time: i64) -> Vec<Relapse<'h>> {
    history
        .iter()
        .filter(|h| h.case != case)
        .filter_map(|h| {
            let closed = h.closed?;
            let since = time - closed;
            if since < 0 || since > p.false_rectification_days.saturating_mul(DAY_MS) {
                return None;
            }
            let category = h.codes.iter().find(|c| codes.iter().any(|n| p.same_category(c, n)))?;
            Some(Relapse { closed: h, category: category.to_owned(), days: (since as f64 / DAY_MS as f64 * 10.0).round() / 10.0 })
        })
        .collect()
}

/// China Standard Time, the city's clock (no daylight saving).
const CST: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// `YYYY-MM-DD` in UTC+8 of a time in ms (clamped to ±8e15 ms, about ±250,000
/// years, inside chrono's range).
pub fn local_date(ms: i64) -> String {
    const LIMIT_MS: i64 = 8_000_000_000_000_000;
    let utc = DateTime::from_timestamp_millis(ms.clamp(-LIMIT_MS, LIMIT_MS)).unwrap_or_default();
    utc.with_timezone(&CST).format("%Y-%m-%d").to_string()
}

fn terms_text(terms: &[&rules::Term]) -> String {
    terms.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join("、")
}

fn weighted_text(terms: &[&rules::Term]) -> String {
    terms.iter().map(|t| format!("{}({})", t.text, number(t.weight))).collect::<Vec<_>>().join("、")
}

/// A weight without a needless `.0`.
fn number(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x}") }
}

fn truncate(text: String, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text;
    }
    let mut out: String = text.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

// -------------------------------------------------------------------------------------
// Host calls.

/// Logs a failed call that should not stop the rest (a note, a route suggestion).
fn soft(result: Result<impl Sized, Error>, what: &str) {
    if let Err(e) = result {
        warn!("{what} failed: {e}");
    }
}

fn point(p: GeoPoint) -> Point {
    Point { lat: p.lat, lon: p.lon }
}

// -------------------------------------------------------------------------------------
// The handlers.

struct Hotline;

impl EventHandler for Hotline {
    fn init() -> Result<(), Error> {
        Params::from_config().map(|_| ())
    }

    fn handle(event: Event) -> Result<(), Error> {
        let p = Params::from_config()?;
        if event.time <= 0 {
            warn!("skipped event {} on `{}`: its time {} is not a time", event.id, event.topic, event.time);
            return Ok(());
        }
        let payload: Value = match serde_json::from_str(&event.payload) {
            Ok(v) => v,
            Err(e) => {
                warn!("skipped event {} on `{}`: the payload is not JSON: {e}", event.id, event.topic);
                return Ok(());
            }
        };
        match event.topic.as_str() {
            "case.reported" => on_reported(&p, &event, &payload),
            "case.close" => on_close(&p, &event),
            "case.reopen" => on_reopen(&p, &event),
            other => {
                warn!("skipped event {} on `{other}`: not a topic this plugin handles", event.id);
                Ok(())
            }
        }
    }
}

export_handler!(Hotline);

/// A new report: classification, urgency, repeats, 假性整改, then it is remembered.
fn on_reported(p: &Params, event: &Event, payload: &Value) -> Result<(), Error> {
    if !payload.is_object() {
        warn!("skipped case.reported {}: the payload is not a JSON object", event.id);
        return Ok(());
    }
    // Channels first: reports of channels this plugin does not handle may have any shape.
    match channel_of(payload) {
        Ok(c) if !p.channels.iter().any(|handled| handled == c.name()) => {
            debug!("ignored report on channel `{c}`");
            return Ok(());
        }
        Ok(_) => {}
        Err(why) => {
            warn!("skipped case.reported {}: {why}", event.id);
            return Ok(());
        }
    }
    let report = match Report::parse(event) {
        Ok(r) => r,
        Err(why) => {
            warn!("skipped case.reported {}: {why}", event.id);
            return Ok(());
        }
    };
    if data::get(DATASET, &report.case)?.is_some() {
        info!("case {} is remembered already: event {} was handled before", report.case, event.id);
        return Ok(());
    }
    let time = event.time;
    let text = text_of(p, &report);

    // 1 and 2: classification and urgency.
    let ranked = rank(&p.rules, &text);
    let (urgency, urgency_terms) = p.urgency.assess(&text, &p.negation);
    let best = ranked.first().filter(|b| b.score >= p.min_score);
    let urgency_text = match urgency {
        Urgency::Normal => format!("紧急程度：{}", urgency.label()),
        _ => format!("紧急程度：{}（{}）", urgency.label(), terms_text(&urgency_terms)),
    };
    let mut department = None;
    let mut classified = None;
    match best {
        Some(best) => {
            let rule = best.rule;
            let second = ranked.get(1);
            let score = route_score(best.score, second.map_or(0.0, |s| s.score), p.confident_score);
            let base_level = rule.level.unwrap_or(p.route_level);
            let level = if urgency == Urgency::Urgent { raise(base_level, p.urgent_raise_levels) } else { base_level };
            let differs = rule.code != report.category_code;
            let mut note = format!(
                "分类建议：{} {} → {}，依据：{}；得分 {}",
                rule.code,
                rule.name,
                rule.department,
                weighted_text(&best.matched),
                number(best.score)
            );
            if let Some(s) = second {
                note.push_str(&format!("，次选 {} {}（{}）", s.rule.code, s.rule.name, number(s.score)));
            }
            note.push_str(&format!("；建议层级 {level}，置信度 {score:.2}；{urgency_text}"));
            if differs {
                note.push_str(&format!(
                    "；与登记类别 {} {} 不同，请核实",
                    report.category_code,
                    p.category_name(&report.category_code)
                ));
            }
            note.push('。');
            soft(cases::add_note(&report.case, &note), "the classification note");
            let mut reason = format!("关键词：{}（得分 {}", weighted_text(&best.matched), number(best.score));
            match second {
                Some(s) => reason.push_str(&format!("，次选 {} {} 得分 {}）", s.rule.code, s.rule.name, number(s.score))),
                None => reason.push('）'),
            }
            reason.push_str(&format!("，归 {} {}", rule.code, rule.name));
            match urgency {
                Urgency::Urgent if level != base_level => {
                    reason.push_str(&format!("；紧急（{}），层级由 {base_level} 提至 {level}", terms_text(&urgency_terms)))
                }
                Urgency::Urgent => reason.push_str(&format!("；紧急（{}）", terms_text(&urgency_terms))),
                Urgency::High => reason.push_str(&format!("；较急（{}）", terms_text(&urgency_terms))),
                Urgency::Normal => {}
            }
            let suggestion = RouteSuggestion::new(rule.department.clone(), level, score, truncate(reason, MAX_REASON_CHARS));
            soft(cases::suggest_route(&report.case, &suggestion), "the route suggestion");
            bus::publish(
                "hotline.classified",
                &json!({
                    "case": report.case,
                    "category_code": rule.code,
                    "category_name": rule.name,
                    "department": rule.department,
                    "level": level.name(),
                    "score": score,
                    "points": best.score,
                    "matched": best.matched.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
                    "runner_up": second.map(|s| json!({ "category_code": s.rule.code, "points": s.score })),
                    "urgency": urgency.name(),
                    "urgency_terms": urgency_terms.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
                    "registered_category": report.category_code,
                    "differs": differs,
                }),
                event.location,
            )?;
            department = Some(rule.department.clone());
            classified = Some(rule.code.clone());
        }
        None => {
            let top = ranked.first().map_or(0.0, |b| b.score);
            debug!("case {} not classified: best score {top} below {}", report.case, p.min_score);
            if urgency != Urgency::Normal {
                let note = format!("{urgency_text}；未能自动分类（最高得分 {} 低于 {}），请人工判断。", number(top), number(p.min_score));
                soft(cases::add_note(&report.case, &note), "the urgency note");
            }
        }
    }

    // 3: repeat callers and addresses, from their recent reports (read by key).
    let address_key = report.address.as_deref().and_then(address::key);
    let of_caller = report.caller.as_deref().map(|c| Recent::load(CALLER, c)).transpose()?;
    let at_address = address_key.as_deref().map(|k| Recent::load(ADDRESS, k)).transpose()?;
    fn recent(r: &Option<Recent>) -> &[Seen] {
        r.as_ref().map_or(&[], |r| r.reports.as_slice())
    }
    let by_caller = earlier_within(recent(&of_caller), &report.case, time, p.repeat_window_days);
    let by_address = earlier_within(recent(&at_address), &report.case, time, p.repeat_window_days);
    let mut repeat = Vec::new();
    if by_caller.len() >= p.repeat_caller_min {
        repeat.push("caller");
        let note = format!(
            "重复来电：同一来电人 {} 天内此前已反映 {} 次（案件 {}），本次为第 {} 次。",
            p.repeat_window_days,
            by_caller.len(),
            by_caller.join("、"),
            by_caller.len() + 1
        );
        soft(cases::add_note(&report.case, &note), "the repeat caller note");
    }
    if by_address.len() >= p.repeat_address_min {
        repeat.push("address");
        let note = format!(
            "重复地址：{} {} 天内此前已有 {} 次反映（案件 {}）。",
            report.address.as_deref().unwrap_or_default(),
            p.repeat_window_days,
            by_address.len(),
            by_address.join("、")
        );
        soft(cases::add_note(&report.case, &note), "the repeat address note");
    }
    if !repeat.is_empty() {
        bus::publish(
            "hotline.repeat",
            &json!({
                "case": report.case,
                "caller": report.caller,
                "caller_count": by_caller.len(),
                "caller_cases": by_caller,
                "address": report.address,
                "address_count": by_address.len(),
                "address_cases": by_address,
                "window_days": p.repeat_window_days,
                "repeat": repeat,
            }),
            event.location,
        )?;
    }

    // 4: 假性整改.
    let codes: Vec<&str> = std::iter::once(report.category_code.as_str()).chain(classified.as_deref()).collect();
    for relapse in relapses(p, recent(&at_address), &report.case, &codes, time) {
        supervise(p, event, &report, &relapse)?;
    }

    // Remembered last: a report that failed half-way is handled again if redelivered
    // (and then replaces its own entry in the recent reports).
    let remembered = Remembered {
        case: report.case.clone(),
        report: Some(report.report.clone()).filter(|r| !r.is_empty()),
        channel: report.channel.name().to_owned(),
        category: report.category_code.clone(),
        classified,
        address: report.address.clone(),
        address_key,
        area: report.area.clone(),
        caller: report.caller.clone(),
        time,
        status: "open".into(),
        closed: None,
        department,
        urgency: Some(urgency.name().to_owned()),
        location: event.location.map(point),
        supervisions: BTreeMap::new(),
    };
    if let Some(mut r) = of_caller {
        r.note(Seen { case: report.case.clone(), time, codes: Vec::new(), closed: None });
        r.save(p, time)?;
    }
    if let Some(mut r) = at_address {
        r.note(remembered.seen());
        r.save(p, time)?;
    }
    data::put(DATASET, &report.case, &remembered)
}

/// Opens the supervision case of one 假性整改, once per (closed case, new case).
fn supervise(p: &Params, event: &Event, report: &Report, relapse: &Relapse<'_>) -> Result<(), Error> {
    // The closed case's own record, by key: its department, location and supervisions.
    let Some(mut record) = data::get_json::<Remembered>(DATASET, &relapse.closed.case)? else {
        warn!("case {} is among the recent reports at its address but not remembered; not supervised", relapse.closed.case);
        return Ok(());
    };
    let closed_case = record.case.clone();
    if let Some(existing) = record.supervisions.get(&report.case) {
        info!("假性整改 of {} by {} is supervised already in {existing}", closed_case, report.case);
        return Ok(());
    }
    let (Some(closed_at), "closed") = (record.closed, record.status.as_str()) else {
        debug!("case {} is no longer closed: no 假性整改 against it", record.case);
        return Ok(());
    };
    let address = report.address.clone().unwrap_or_default();
    let name = p.category_name(&relapse.category);
    let department = record
        .department
        .clone()
        .filter(|d| rules::is_code(d))
        .unwrap_or_else(|| p.supervision_fallback_department.clone());
    let description = format!(
        "{address}的{name}问题（案件 {closed_case}，{reported} 受理）已于 {closed_date} 由 {department} 办结，{days} 天后（{now}）市民再次反映（案件 {case}），疑似假性整改。请 {department} 复核整改情况并反馈。",
        reported = local_date(record.time),
        closed_date = local_date(closed_at),
        days = relapse.days,
        now = local_date(event.time),
        case = report.case,
    );
    let draft = CaseDraft {
        category_code: p.supervision_category.clone(),
        title: truncate(format!("假性整改督办：{address} {name}"), 200),
        description,
        location: event.location.or(record.location.map(|l| GeoPoint::new(l.lat, l.lon))),
        channel: SourceChannel::Department,
        evidence: Vec::new(),
    };
    let supervision = cases::open_case(&draft)?;
    record.supervisions.insert(report.case.clone(), supervision.clone());
    data::put(DATASET, &closed_case, &record)?;
    let reason = format!(
        "假性整改：案件 {} 于 {} 由 {department} 办结，{} 天后同址同类（{} {name}）再次被反映，由原办结部门复核",
        closed_case,
        local_date(closed_at),
        relapse.days,
        relapse.category
    );
    let suggestion = RouteSuggestion::new(department.clone(), p.supervision_level, 1.0, truncate(reason, MAX_REASON_CHARS));
    soft(cases::suggest_route(&supervision, &suggestion), "the supervision route suggestion");
    let note = format!(
        "假性整改提示：同址同类案件 {} 已于 {} 由 {department} 办结，{} 天后再次被反映；已开督办案件 {supervision}。",
        closed_case,
        local_date(closed_at),
        relapse.days
    );
    soft(cases::add_note(&report.case, &note), "the 假性整改 note");
    bus::publish(
        "hotline.false-rectification",
        &json!({
            "case": report.case,
            "closed_case": closed_case,
            "supervision_case": supervision,
            "department": department,
            "address": address,
            "category_code": relapse.category,
            "days_since_close": relapse.days,
            "closed_at": closed_at,
        }),
        draft.location,
    )?;
    Ok(())
}

/// The move a lifecycle event carries, or why it is skipped (logged).
fn moved(event: &Event) -> Option<CaseMoved> {
    match event.payload::<CaseMoved>() {
        Ok(m) => Some(m),
        Err(e) => {
            warn!("skipped {} {}: {}", event.topic, event.id, e.message());
            None
        }
    }
}

/// The remembered case a lifecycle event names, or why it is skipped.
fn remembered_for(event: &Event, moved: &CaseMoved) -> Result<Option<Remembered>, Error> {
    let case = moved.case.trim();
    if case.is_empty() {
        warn!("skipped {} {}: field `case` is empty", event.topic, event.id);
        return Ok(None);
    }
    let Some(record) = data::get_json::<Remembered>(DATASET, case)? else {
        warn!("skipped {} {}: case {case} is not a case this plugin has seen reported", event.topic, event.id);
        return Ok(None);
    };
    if event.time < record.time {
        warn!(
            "skipped {} {}: its time {} is before case {case} was reported ({})",
            event.topic, event.id, event.time, record.time
        );
        return Ok(None);
    }
    Ok(Some(record))
}

/// `case.close`: the case is closed now, by its department.
fn on_close(p: &Params, event: &Event) -> Result<(), Error> {
    let Some(moved) = moved(event) else { return Ok(()) };
    let Some(mut record) = remembered_for(event, &moved)? else { return Ok(()) };
    record.status = "closed".into();
    record.closed = Some(event.time);
    if let Some(department) = trimmed(moved.department) {
        record.department = Some(department);
    }
    data::put(DATASET, &record.case.clone(), &record)?;
    // Its address keeps it, closed, for the reports of the next N days (it may have
    // left the address's recent reports already: it is added back).
    match &record.address_key {
        Some(k) => {
            let mut recent = Recent::load(ADDRESS, k)?;
            recent.note(record.seen());
            recent.save(p, event.time)
        }
        None => Ok(()),
    }
}

/// `case.reopen`: the case is open again; its closure no longer counts.
fn on_reopen(p: &Params, event: &Event) -> Result<(), Error> {
    let Some(moved) = moved(event) else { return Ok(()) };
    let Some(mut record) = remembered_for(event, &moved)? else { return Ok(()) };
    record.status = "reopened".into();
    data::put(DATASET, &record.case.clone(), &record)?;
    let Some(k) = &record.address_key else { return Ok(()) };
    let mut recent = Recent::load(ADDRESS, k)?;
    match recent.reports.iter_mut().find(|s| s.case == record.case) {
        Some(seen) if seen.closed.is_some() => {
            seen.closed = None;
            recent.save(p, event.time)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
