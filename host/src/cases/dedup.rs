//! Deduplication candidates (重复案件识别): the same incident reported from
//! several sources — a hotline call, a 随手拍 snapshot, a grid worker's patrol —
//! should become one case. Given a new report, [`DedupIndex::candidates`] finds
//! the open cases it may repeat: same category family, within the family's
//! radius and time window, scored by text similarity, distance and time, above
//! the family's threshold, best first. A dispatcher decides; this module only
//! proposes, and [`DedupRules::score`] says why two reports were matched.
//!
//! Pure and in memory: no database, no clock. The case engine fills the index
//! with the open cases at start ([`DedupIndex::from_cases`]), inserts a case
//! when it opens and removes it when it closes or is merged, and shares the
//! index behind a lock; lookups take `&self`.
//!
//! # Families
//!
//! Category codes are digit strings (`0101`). A family is a code prefix: the
//! longest configured family prefix a code starts with, or else the code's
//! first `family_digits` digits (by default 2, the major class) under the
//! fallback rule. Cases of different families never match.
//!
//! # Score
//!
//! For a report `a` and an open case `b` of the same family, with the family's
//! radius `r`, window `w` and the configured weights:
//!
//! ```text
//! text     = cosine similarity of the two texts' character-bigram sets
//!            (whitespace and punctuation removed, full-width ASCII folded,
//!             Latin letters lower-cased)
//! nearness = 1 − distance / r          (great-circle distance in metres)
//! recency  = 1 − |time_a − time_b| / w
//! category = 1 if the full category codes are equal, else 0
//! total    = (w_text·text + w_distance·nearness + w_time·recency + w_category·category)
//!            / (w_text + w_distance + w_time + w_category)
//! ```
//!
//! `b` is a candidate when it lies within `r` and `w` (so nearness and recency
//! are in 0..=1) and `total` reaches the family's threshold. Cosine rather than
//! Jaccard: a snapshot often adds words ("很危险") to what the hotline wrote,
//! and cosine punishes the longer text less. Shared address words
//! (`中山路12号`) raise the text similarity of different problems at one
//! place; the category term and the thresholds are there to keep those apart.
//!
//! # Memory
//!
//! The index keeps no text: each case holds a [`TextFeatures`] sketch of at
//! most [`SKETCH`] 16-bit bigram hashes (the smallest ones: a bottom-k sketch,
//! exact for texts of up to `SKETCH` distinct bigrams and an estimate beyond),
//! its code as a number, its location and time; a case id in the engine's
//! form (a lowercase UUID) is kept as 16 bytes. Locations go into one R-tree
//! per family as earth-centred 3-D coordinates in metres (`f32`, ~0.5 m
//! resolution), so a radius query is a sphere query with no projection
//! parameters and no seams. Distances are measured between those coordinates
//! (chord, then arc), by the index and by [`DedupRules::score`] alike. A tree
//! leaf takes as much room as an inner node (48 bytes) whatever it holds, so
//! the leaf carries the time and code too, and the time and distance tests
//! run on the leaf alone.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use geo::Haversine;
use hashbrown::HashTable;
use rstar::{AABB, Envelope, PointDistance, RTree, RTreeObject, SelectionFunction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bus::GeoPoint;

/// The most bigram hashes a [`TextFeatures`] keeps.
pub const SKETCH: usize = 24;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The largest radius a family may have: beyond it a lookup would scan a
/// district, and "the same incident" no longer means the same place.
const MAX_RADIUS_M: f64 = 10_000.0;
/// The longest window a family may have.
const MAX_WINDOW_MS: i64 = 366 * DAY_MS;
/// The most configured families.
const MAX_FAMILIES: usize = 10_000;

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

/// What makes two reports of one family the same incident.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FamilyRule {
    /// How far apart two reports may be, in metres (0 < r ≤ 10,000).
    pub radius_m: f64,
    /// How far apart in time, in milliseconds (0 < w ≤ 366 days).
    pub window_ms: i64,
    /// The least total score of a candidate, 0..=1.
    pub threshold: f64,
}

/// The weights of the score's parts; they are divided by their sum, so only
/// their ratios matter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    pub text: f64,
    pub distance: f64,
    pub time: f64,
    pub category: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { text: 0.5, distance: 0.15, time: 0.1, category: 0.25 }
    }
}

/// Rules as configured, e.g.
/// `{"family_digits": 2, "fallback": {"radius_m": 200, "window_ms": 259200000, "threshold": 0.6},
///   "families": {"0101": {"radius_m": 50, "window_ms": 604800000, "threshold": 0.55}}}`.
/// Omitted fields take the defaults of [`DedupConfig::default`]; a given
/// `families` replaces the default families whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    /// Digits of a code that make its family when no configured family
    /// matches: 1 to 4 (the major class, or the minor class).
    #[serde(default = "default_family_digits")]
    pub family_digits: u8,
    #[serde(default)]
    pub weights: Weights,
    /// The rule of a family with no entry in `families`.
    #[serde(default = "default_fallback")]
    pub fallback: FamilyRule,
    /// Rules by family prefix (1–16 digits, at most 10,000 of them); the
    /// longest matching prefix wins.
    #[serde(default = "default_families")]
    pub families: BTreeMap<String, FamilyRule>,
}

fn default_family_digits() -> u8 {
    2
}

fn default_fallback() -> FamilyRule {
    FamilyRule { radius_m: 200.0, window_ms: 3 * DAY_MS, threshold: 0.6 }
}

/// Defaults keyed by the two-digit major classes of 部件 codes (GB/T 30428.2).
/// A broken asset stays broken where it is until repaired, so a report of it a
/// month later still repeats the open case, from close by; the 市容环境 class
/// holds problems that come back (a full bin today is not last week's), so its
/// window is short and its radius wider.
fn default_families() -> BTreeMap<String, FamilyRule> {
    let rule = |radius_m, days, threshold| FamilyRule { radius_m, window_ms: days * DAY_MS, threshold };
    BTreeMap::from([
        // 公用设施: manhole covers, lamps, hydrants, boxes.
        ("01".to_owned(), rule(100.0, 30, 0.6)),
        // 道路交通: signs, guard rails, bus stops, road surface.
        ("02".to_owned(), rule(150.0, 30, 0.6)),
        // 市容环境: bins, public toilets, billboards.
        ("03".to_owned(), rule(200.0, 2, 0.6)),
        // 园林绿化: trees, green belts.
        ("04".to_owned(), rule(150.0, 14, 0.6)),
        // 房屋土地: buildings, land.
        ("05".to_owned(), rule(100.0, 30, 0.6)),
    ])
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            family_digits: default_family_digits(),
            weights: Weights::default(),
            fallback: default_fallback(),
            families: default_families(),
        }
    }
}

/// Rules that do not hold, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dedup rules: `{field}` {problem}")]
pub struct RulesError {
    /// The path of the field, e.g. `families.0101.radius_m`.
    pub field: String,
    pub problem: String,
}

fn refuse(field: impl Into<String>, problem: impl Into<String>) -> RulesError {
    RulesError { field: field.into(), problem: problem.into() }
}

/// Checked rules.
#[derive(Debug, Clone, PartialEq)]
pub struct DedupRules {
    config: DedupConfig,
    /// Weights divided by their sum.
    weights: Weights,
    /// Configured families, longest prefix first.
    families: Vec<(Code, FamilyRule)>,
}

impl Default for DedupRules {
    fn default() -> Self {
        DedupRules::new(&DedupConfig::default()).expect("the default rules are valid")
    }
}

impl DedupRules {
    /// Check `config`.
    pub fn new(config: &DedupConfig) -> Result<DedupRules, RulesError> {
        // With these two bounds the families number at most 10^4 + 10^3 + 10^2
        // + 10 + 10,000, so a family fits in the u16 each open case keeps.
        if !(1..=4).contains(&config.family_digits) {
            return Err(refuse("family_digits", "must be 1 to 4"));
        }
        if config.families.len() > MAX_FAMILIES {
            return Err(refuse("families", format!("must have at most {MAX_FAMILIES} entries")));
        }
        let w = config.weights;
        for (name, value) in [("text", w.text), ("distance", w.distance), ("time", w.time), ("category", w.category)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(refuse(format!("weights.{name}"), "must be a number at least 0"));
            }
        }
        let sum = w.text + w.distance + w.time + w.category;
        if sum <= 0.0 {
            return Err(refuse("weights", "must not all be 0"));
        }
        check_rule("fallback", &config.fallback)?;
        let mut families = Vec::with_capacity(config.families.len());
        for (prefix, rule) in &config.families {
            let code = Code::parse(prefix).ok_or_else(|| refuse(format!("families.{prefix}"), "must be a prefix of 1 to 16 digits"))?;
            check_rule(&format!("families.{prefix}"), rule)?;
            families.push((code, *rule));
        }
        families.sort_by_key(|f| std::cmp::Reverse(f.0.len));
        let weights = Weights { text: w.text / sum, distance: w.distance / sum, time: w.time / sum, category: w.category / sum };
        Ok(DedupRules { config: config.clone(), weights, families })
    }

    /// Parse and check rules from JSON; a misspelt or mistyped field is named
    /// by its path.
    pub fn from_json(text: &str) -> Result<DedupRules, RulesError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let config: DedupConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            refuse(if path == "." { "(document)".to_owned() } else { path }, e.into_inner().to_string())
        })?;
        DedupRules::new(&config)
    }

    /// The configuration these rules were built from.
    pub fn config(&self) -> &DedupConfig {
        &self.config
    }

    /// The family of `category_code` (its prefix) and that family's rule;
    /// `None` when the code is not 1–16 digits.
    pub fn family_of(&self, category_code: &str) -> Option<(String, FamilyRule)> {
        let (family, rule) = self.family(Code::parse(category_code)?);
        Some((family.to_string(), rule))
    }

    fn family(&self, code: Code) -> (Code, FamilyRule) {
        for (prefix, rule) in &self.families {
            if code.starts_with(*prefix) {
                return (*prefix, *rule);
            }
        }
        (code.prefix(self.config.family_digits), self.config.fallback)
    }

    /// How alike two reports are, part by part; `None` when either has an
    /// invalid code or location, or the two are of different families. The
    /// index proposes an open case for a report exactly when
    /// `score(report, case)` is `Some` and [`Score::matched`].
    pub fn score(&self, a: &Report<'_>, b: &Report<'_>) -> Option<Score> {
        let (code_a, code_b) = (Code::parse(a.category_code)?, Code::parse(b.category_code)?);
        a.location.validate().ok()?;
        b.location.validate().ok()?;
        let (family, rule) = self.family(code_a);
        if self.family(code_b).0 != family {
            return None;
        }
        let text = TextFeatures::of(a.text).similarity(&TextFeatures::of(b.text));
        let distance_m = arc_m(to_ecef(a.location), to_ecef(b.location));
        Some(combine(&self.weights, &rule, text, distance_m, a.reported_ms.abs_diff(b.reported_ms), code_a == code_b))
    }
}

fn check_rule(field: &str, rule: &FamilyRule) -> Result<(), RulesError> {
    if !(rule.radius_m.is_finite() && rule.radius_m > 0.0 && rule.radius_m <= MAX_RADIUS_M) {
        return Err(refuse(format!("{field}.radius_m"), format!("must be more than 0 and at most {MAX_RADIUS_M} metres")));
    }
    if !(rule.window_ms > 0 && rule.window_ms <= MAX_WINDOW_MS) {
        return Err(refuse(format!("{field}.window_ms"), "must be more than 0 and at most 366 days (31,622,400,000 ms)"));
    }
    if !(rule.threshold.is_finite() && (0.0..=1.0).contains(&rule.threshold)) {
        return Err(refuse(format!("{field}.threshold"), "must be between 0 and 1"));
    }
    Ok(())
}

/// The parts of a score and the total; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    /// The weighted total, 0..=1.
    pub total: f64,
    /// Text similarity, 0..=1.
    pub text: f64,
    pub distance_m: f64,
    /// `1 − distance / radius`, 0 beyond the radius.
    pub nearness: f64,
    pub time_apart_ms: u64,
    /// `1 − time apart / window`, 0 beyond the window.
    pub recency: f64,
    /// Whether the full category codes are equal.
    pub same_code: bool,
    /// Within the family's radius and window, and the total reaches its threshold.
    pub matched: bool,
}

fn combine(w: &Weights, rule: &FamilyRule, text: f64, distance_m: f64, time_apart_ms: u64, same_code: bool) -> Score {
    let within = distance_m <= rule.radius_m && time_apart_ms <= rule.window_ms as u64;
    let nearness = (1.0 - distance_m / rule.radius_m).clamp(0.0, 1.0);
    let recency = (1.0 - time_apart_ms as f64 / rule.window_ms as f64).clamp(0.0, 1.0);
    let category = if same_code { 1.0 } else { 0.0 };
    let total = (w.text * text + w.distance * nearness + w.time * recency + w.category * category).clamp(0.0, 1.0);
    Score { total, text, distance_m, nearness, time_apart_ms, recency, same_code, matched: within && total >= rule.threshold }
}

// ---------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------

/// A category code or prefix as a number and its digit count, so leading
/// zeros count: `0101` is (101, 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Code {
    value: u64,
    len: u8,
}

impl Code {
    fn parse(s: &str) -> Option<Code> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Code { value: s.parse().ok()?, len: s.len() as u8 })
    }

    /// The first `digits` digits (all of them for a shorter code).
    fn prefix(self, digits: u8) -> Code {
        let digits = digits.min(self.len);
        Code { value: self.value / 10u64.pow(u32::from(self.len - digits)), len: digits }
    }

    fn starts_with(self, prefix: Code) -> bool {
        prefix.len <= self.len && self.prefix(prefix.len) == prefix
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0width$}", self.value, width = usize::from(self.len))
    }
}

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

/// A compact sketch of a text: the smallest [`SKETCH`] distinct 16-bit hashes
/// of its character bigrams, sorted, and how many distinct hashes the whole
/// text has. Whitespace and punctuation are dropped first, full-width ASCII is
/// folded (`１２号` = `12号`) and Latin letters lower-cased; a text of one
/// character is its own feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextFeatures {
    hashes: [u16; SKETCH],
    distinct: u16,
    kept: u8,
}

impl TextFeatures {
    /// The features of `text`.
    pub fn of(text: &str) -> TextFeatures {
        let mut chars = text.chars().filter_map(normalise);
        let mut all: Vec<u16> = Vec::new();
        if let Some(mut previous) = chars.next() {
            let mut single = true;
            for c in chars {
                all.push(bigram_hash(previous, c));
                previous = c;
                single = false;
            }
            if single {
                all.push(bigram_hash(previous, '\0'));
            }
        }
        all.sort_unstable();
        all.dedup();
        let kept = all.len().min(SKETCH);
        let mut hashes = [0; SKETCH];
        hashes[..kept].copy_from_slice(&all[..kept]);
        TextFeatures { hashes, distinct: all.len().min(usize::from(u16::MAX)) as u16, kept: kept as u8 }
    }

    /// Whether the text had nothing but whitespace and punctuation.
    pub fn is_empty(&self) -> bool {
        self.kept == 0
    }

    fn kept(&self) -> &[u16] {
        &self.hashes[..usize::from(self.kept)]
    }

    fn truncated(&self) -> bool {
        usize::from(self.distinct) > usize::from(self.kept)
    }

    /// Cosine similarity of the two bigram sets, `|A ∩ B| / √(|A|·|B|)`, 0..=1:
    /// exact when neither text has more than [`SKETCH`] distinct bigrams; else
    /// the Jaccard index `J` is estimated from the [`SKETCH`] smallest hashes
    /// of the union and `|A ∩ B| = J·(|A| + |B|) / (1 + J)`.
    pub fn similarity(&self, other: &TextFeatures) -> f64 {
        if self.is_empty() || other.is_empty() {
            return 0.0;
        }
        let truncated = self.truncated() || other.truncated();
        let limit = if truncated { SKETCH } else { usize::MAX };
        let (a, b) = (self.kept(), other.kept());
        let (mut i, mut j, mut union, mut both) = (0, 0, 0usize, 0usize);
        while union < limit && (i < a.len() || j < b.len()) {
            match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x == y => {
                    both += 1;
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x < y => i += 1,
                (Some(_), None) => i += 1,
                _ => j += 1,
            }
            union += 1;
        }
        let (na, nb) = (f64::from(self.distinct), f64::from(other.distinct));
        let common = if truncated {
            let jaccard = both as f64 / union as f64;
            jaccard * (na + nb) / (1.0 + jaccard)
        } else {
            both as f64
        };
        (common / (na * nb).sqrt()).min(1.0)
    }
}

fn normalise(c: char) -> Option<char> {
    // Full-width forms of ASCII (U+FF01..U+FF5E) sit 0xFEE0 above it.
    let c = match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    };
    c.is_alphanumeric().then(|| c.to_ascii_lowercase())
}

/// A fixed hash (SplitMix64's finaliser), so sketches are the same in every
/// process and across restarts.
fn bigram_hash(a: char, b: char) -> u16 {
    let mut x = ((a as u64) << 32 | b as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 48) as u16
}

// ---------------------------------------------------------------------------
// Space
// ---------------------------------------------------------------------------

/// The great-circle distance between two earth-centred points.
fn arc_m(a: [f32; 3], b: [f32; 3]) -> f64 {
    let r = Haversine.radius();
    let chord = a.iter().zip(&b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum::<f64>().sqrt();
    2.0 * r * (chord / (2.0 * r)).min(1.0).asin()
}

/// Earth-centred coordinates in metres on the sphere `Haversine` measures on.
fn to_ecef(p: GeoPoint) -> [f32; 3] {
    let r = Haversine.radius();
    let (lat, lon) = (p.lat.to_radians(), p.lon.to_radians());
    [(r * lat.cos() * lon.cos()) as f32, (r * lat.cos() * lon.sin()) as f32, (r * lat.sin()) as f32]
}

/// The squared straight-line distance through the sphere that `metres` along
/// it span, with a metre of slack for the tree's `f32` arithmetic (the exact
/// test follows).
fn chord_2(metres: f64) -> f32 {
    let r = Haversine.radius();
    let chord = 2.0 * r * (metres / (2.0 * r)).min(std::f64::consts::FRAC_PI_2).sin() + 1.0;
    (chord * chord) as f32
}

// ---------------------------------------------------------------------------
// Index
// ---------------------------------------------------------------------------

/// A report as the index compares it: a new one, or an open case's first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report<'a> {
    pub category_code: &'a str,
    pub location: GeoPoint,
    /// Milliseconds since the Unix epoch.
    pub reported_ms: i64,
    /// Title and description as reported.
    pub text: &'a str,
}

/// An open case the report may repeat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub case_id: String,
    pub score: Score,
}

/// An open case the index refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("case `{case_id}`: `{field}` {problem}")]
pub struct InvalidCase {
    pub case_id: String,
    pub field: &'static str,
    pub problem: String,
}

/// A case in its family's tree: its point, time and code (what the time and
/// distance tests need) and the number of its slot.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    point: [f32; 3],
    slot: u32,
    reported_ms: i64,
    code: u64,
}

// 32 bytes fit in the room a leaf has anyway (see the module documentation).
const _: () = assert!(size_of::<Entry>() == 32);

impl RTreeObject for Entry {
    type Envelope = AABB<[f32; 3]>;

    fn envelope(&self) -> Self::Envelope {
        AABB::from_point(self.point)
    }
}

impl PointDistance for Entry {
    fn distance_2(&self, point: &[f32; 3]) -> f32 {
        self.point.distance_2(point)
    }
}

/// Selects the entry of one slot, found by its point.
struct SlotAt {
    point: [f32; 3],
    slot: u32,
}

impl SelectionFunction<Entry> for SlotAt {
    fn should_unpack_parent(&self, envelope: &AABB<[f32; 3]>) -> bool {
        envelope.contains_point(&self.point)
    }

    fn should_unpack_leaf(&self, leaf: &Entry) -> bool {
        leaf.slot == self.slot
    }
}

/// A case id: the 16 bytes of a UUID in its lowercase hyphenated text form
/// (the engine's ids), any other text as it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum CaseId {
    Uuid([u8; 16]),
    Text(Box<str>),
}

/// A case id as asked for, compared and hashed the way [`CaseId`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IdKey<'a> {
    Uuid([u8; 16]),
    Text(&'a str),
}

impl<'a> IdKey<'a> {
    fn of(id: &'a str) -> IdKey<'a> {
        let canonical = id.len() == 36 && !id.bytes().any(|b| b.is_ascii_uppercase());
        match Uuid::try_parse(id) {
            Ok(u) if canonical => IdKey::Uuid(u.into_bytes()),
            _ => IdKey::Text(id),
        }
    }
}

impl CaseId {
    fn key(&self) -> IdKey<'_> {
        match self {
            CaseId::Uuid(b) => IdKey::Uuid(*b),
            CaseId::Text(s) => IdKey::Text(s),
        }
    }

    fn vacant() -> CaseId {
        CaseId::Text(Box::from(""))
    }
}

impl From<IdKey<'_>> for CaseId {
    fn from(key: IdKey<'_>) -> CaseId {
        match key {
            IdKey::Uuid(b) => CaseId::Uuid(b),
            IdKey::Text(s) => CaseId::Text(s.into()),
        }
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseId::Uuid(b) => write!(f, "{}", Uuid::from_bytes(*b)),
            CaseId::Text(s) => f.write_str(s),
        }
    }
}

/// One open case, beside its tree entry. A vacant slot sits on the free list.
#[derive(Debug)]
struct Slot {
    id: CaseId,
    point: [f32; 3],
    text: TextFeatures,
    family: u16,
    code_len: u8,
}

#[derive(Debug)]
struct Family {
    tree: RTree<Entry>,
}

/// The open cases by family and place, for candidate lookups.
#[derive(Debug)]
pub struct DedupIndex {
    rules: DedupRules,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Slot numbers, hashed and compared by their case id.
    by_id: HashTable<u32>,
    hasher: RandomState,
    families: Vec<Family>,
    family_numbers: HashMap<Code, u16>,
}

impl DedupIndex {
    /// An empty index.
    pub fn new(rules: DedupRules) -> DedupIndex {
        DedupIndex {
            rules,
            slots: Vec::new(),
            free: Vec::new(),
            by_id: HashTable::new(),
            hasher: RandomState::new(),
            families: Vec::new(),
            family_numbers: HashMap::new(),
        }
    }

    /// An index of `cases` (id, first report), built in bulk: faster than one
    /// insert at a time, and the trees come out better packed. A repeated id
    /// keeps its last report.
    pub fn from_cases<'a, I>(rules: DedupRules, cases: I) -> Result<DedupIndex, InvalidCase>
    where
        I: IntoIterator<Item = (&'a str, Report<'a>)>,
    {
        let cases = cases.into_iter();
        let mut index = DedupIndex::new(rules);
        let mut entries: Vec<Entry> = Vec::with_capacity(cases.size_hint().0);
        index.slots.reserve(cases.size_hint().0);
        index.by_id.reserve(cases.size_hint().0, |_| 0);
        for (id, report) in cases {
            let (slot, mut entry) = index.check(id, &report)?;
            match index.find(id) {
                Some(at) => {
                    entry.slot = at;
                    index.slots[at as usize] = slot;
                    entries[at as usize] = entry;
                }
                None => {
                    entry.slot = index.place(slot);
                    entries.push(entry);
                }
            }
        }
        index.plant(entries);
        Ok(index)
    }

    /// The rules lookups apply.
    pub fn rules(&self) -> &DedupRules {
        &self.rules
    }

    /// Apply new rules to every case (families may change, so the trees are rebuilt).
    pub fn set_rules(&mut self, rules: DedupRules) {
        let entries: Vec<Entry> = self.families.drain(..).flat_map(|f| f.tree.into_iter()).collect();
        self.rules = rules;
        self.family_numbers.clear();
        for e in &entries {
            let code = Code { value: e.code, len: self.slots[e.slot as usize].code_len };
            self.slots[e.slot as usize].family = self.family_number(code);
        }
        self.plant(entries);
    }

    /// How many open cases the index holds.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether the index holds no case.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the index holds case `case_id`.
    pub fn contains(&self, case_id: &str) -> bool {
        self.find(case_id).is_some()
    }

    /// Add an open case, or replace its report if the index already holds it.
    pub fn insert(&mut self, case_id: &str, report: &Report<'_>) -> Result<(), InvalidCase> {
        let (slot, mut entry) = self.check(case_id, report)?;
        self.remove(case_id);
        let family = slot.family;
        entry.slot = self.place(slot);
        self.families[usize::from(family)].tree.insert(entry);
        Ok(())
    }

    /// Take out a case that was closed, voided or merged; whether it was there.
    pub fn remove(&mut self, case_id: &str) -> bool {
        let key = IdKey::of(case_id);
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        let Ok(found) = self.by_id.find_entry(hash, |&s| slots[s as usize].id.key() == key) else {
            return false;
        };
        let (s, _) = found.remove();
        let slot = &mut self.slots[s as usize];
        slot.id = CaseId::vacant();
        let select = SlotAt { point: slot.point, slot: s };
        self.families[usize::from(slot.family)].tree.remove_with_selection_function(select);
        self.free.push(s);
        true
    }

    /// The open cases `report` may repeat, best first (ties: nearer first,
    /// then by case id). A report with an invalid code or location finds none.
    pub fn candidates(&self, report: &Report<'_>) -> Vec<Candidate> {
        let Some(code) = Code::parse(report.category_code) else { return Vec::new() };
        if report.location.validate().is_err() {
            return Vec::new();
        }
        let (key, rule) = self.rules.family(code);
        let Some(&number) = self.family_numbers.get(&key) else { return Vec::new() };
        let family = &self.families[usize::from(number)];
        let text = TextFeatures::of(report.text);
        let window = rule.window_ms as u64;
        let point = to_ecef(report.location);
        let mut found: Vec<(u32, Score)> = family
            .tree
            .locate_within_distance(point, chord_2(rule.radius_m))
            .filter_map(|e| {
                let apart = report.reported_ms.abs_diff(e.reported_ms);
                if apart > window {
                    return None;
                }
                let distance_m = arc_m(point, e.point);
                if distance_m > rule.radius_m {
                    return None;
                }
                let slot = &self.slots[e.slot as usize];
                let same_code = e.code == code.value && slot.code_len == code.len;
                let score = combine(&self.rules.weights, &rule, text.similarity(&slot.text), distance_m, apart, same_code);
                score.matched.then_some((e.slot, score))
            })
            .collect();
        found.sort_by(|(sa, a), (sb, b)| {
            b.total
                .partial_cmp(&a.total)
                .unwrap_or(Ordering::Equal)
                .then(a.distance_m.partial_cmp(&b.distance_m).unwrap_or(Ordering::Equal))
                .then_with(|| self.slots[*sa as usize].id.cmp(&self.slots[*sb as usize].id))
        });
        found.into_iter().map(|(s, score)| Candidate { case_id: self.slots[s as usize].id.to_string(), score }).collect()
    }

    fn find(&self, case_id: &str) -> Option<u32> {
        let key = IdKey::of(case_id);
        let hash = self.hasher.hash_one(key);
        self.by_id.find(hash, |&s| self.slots[s as usize].id.key() == key).copied()
    }

    /// Check a case and make its slot and tree entry, the entry's slot number
    /// still to be set (registering its family if new).
    fn check(&mut self, case_id: &str, report: &Report<'_>) -> Result<(Slot, Entry), InvalidCase> {
        let invalid = |field, problem: String| InvalidCase { case_id: case_id.to_owned(), field, problem };
        if case_id.is_empty() {
            return Err(invalid("case_id", "is empty".into()));
        }
        let code = Code::parse(report.category_code)
            .ok_or_else(|| invalid("category_code", format!("`{}` must be 1-16 digits", report.category_code)))?;
        report.location.validate().map_err(|m| invalid("location", m))?;
        let family = self.family_number(code);
        let point = to_ecef(report.location);
        let slot = Slot { id: IdKey::of(case_id).into(), point, text: TextFeatures::of(report.text), family, code_len: code.len };
        Ok((slot, Entry { point, slot: 0, reported_ms: report.reported_ms, code: code.value }))
    }

    fn family_number(&mut self, code: Code) -> u16 {
        let (key, _) = self.rules.family(code);
        if let Some(&n) = self.family_numbers.get(&key) {
            return n;
        }
        // `DedupRules::new` bounds the number of families well below 2^16.
        let n = u16::try_from(self.families.len()).expect("fewer than 2^16 families");
        self.families.push(Family { tree: RTree::new() });
        self.family_numbers.insert(key, n);
        n
    }

    /// Store a slot (reusing a vacant one) and index its id; no tree entry.
    fn place(&mut self, slot: Slot) -> u32 {
        let hash = self.hasher.hash_one(slot.id.key());
        let s = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = slot;
                s
            }
            None => {
                let s = u32::try_from(self.slots.len()).expect("fewer than 2^32 open cases");
                self.slots.push(slot);
                s
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_id.insert_unique(hash, s, |&t| hasher.hash_one(slots[t as usize].id.key()));
        s
    }

    /// Bulk-load the trees with `entries`, each into its slot's family.
    fn plant(&mut self, entries: Vec<Entry>) {
        let mut by_family: Vec<Vec<Entry>> = vec![Vec::new(); self.families.len()];
        for e in entries {
            by_family[usize::from(self.slots[e.slot as usize].family)].push(e);
        }
        for (family, entries) in self.families.iter_mut().zip(by_family) {
            family.tree = RTree::bulk_load(entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const HERE: GeoPoint = GeoPoint { lat: 32.0415, lon: 118.7841 };

    fn report<'a>(code: &'a str, location: GeoPoint, reported_ms: i64, text: &'a str) -> Report<'a> {
        Report { category_code: code, location, reported_ms, text }
    }

    /// `metres` north and `east` metres east of `p`, near enough on a city's scale.
    fn moved(p: GeoPoint, north: f64, east: f64) -> GeoPoint {
        let r = Haversine.radius();
        GeoPoint {
            lat: p.lat + (north / r).to_degrees(),
            lon: p.lon + (east / (r * p.lat.to_radians().cos())).to_degrees(),
        }
    }

    fn ids(found: &[Candidate]) -> Vec<&str> {
        found.iter().map(|c| c.case_id.as_str()).collect()
    }

    /// The hotline's wording of a missing manhole cover, an open case for the tests.
    fn hotline() -> Report<'static> {
        report("0101", HERE, T0, "中山路12号门前井盖缺失")
    }

    #[test]
    fn the_same_incident_from_the_hotline_and_a_snapshot_is_matched() {
        let mut index = DedupIndex::new(DedupRules::default());
        index.insert("case-hotline", &hotline()).unwrap();
        let snapshot = report("0101", moved(HERE, 25.0, -10.0), T0 + 3 * HOUR_MS, "中山路12号井盖丢了，很危险！");
        let found = index.candidates(&snapshot);
        assert_eq!(ids(&found), ["case-hotline"]);
        let s = found[0].score;
        assert!(s.matched && s.same_code);
        assert!((s.distance_m - 26.9).abs() < 0.5, "{s:?}");
        assert!(s.text > 0.5 && s.total >= 0.6, "{s:?}");
        // The score the index found is the one the rules explain.
        assert_eq!(index.rules().score(&snapshot, &hotline()), Some(s));
    }

    #[test]
    fn other_families_places_times_and_texts_are_not_matched() {
        let mut index = DedupIndex::new(DedupRules::default());
        index.insert("case-hotline", &hotline()).unwrap();
        let near = moved(HERE, 20.0, 0.0);
        let cases = [
            // 03 is another family, although the text is the same.
            ("other family", report("0301", near, T0, "中山路12号门前井盖缺失")),
            // 01 has a 100 m radius.
            ("far away", report("0101", moved(HERE, 150.0, 0.0), T0, "中山路12号门前井盖缺失")),
            // 01 has a 30-day window.
            ("too old", report("0101", near, T0 + 31 * DAY_MS, "中山路12号门前井盖缺失")),
            ("different text", report("0101", near, T0 + HOUR_MS, "路边垃圾桶满了没人清理")),
            // The address is shared, the problem (a street lamp, 0109) is not.
            ("another problem at the address", report("0109", near, T0 + HOUR_MS, "中山路12号门前路灯不亮")),
            ("no text", report("0101", near, T0 + HOUR_MS, "，。！")),
            ("invalid code", report("01a1", near, T0, "中山路12号门前井盖缺失")),
            ("invalid location", report("0101", GeoPoint { lat: 91.0, lon: 0.0 }, T0, "中山路12号门前井盖缺失")),
        ];
        for (what, r) in cases {
            assert!(index.candidates(&r).is_empty(), "{what}: {:?}", index.candidates(&r));
        }
    }

    #[test]
    fn candidates_come_best_first() {
        let mut index = DedupIndex::new(DedupRules::default());
        index.insert("a-far", &report("0101", moved(HERE, 80.0, 0.0), T0, "中山路12号门前井盖缺失")).unwrap();
        index.insert("b-near", &report("0101", moved(HERE, 5.0, 0.0), T0, "中山路12号门前井盖缺失")).unwrap();
        index.insert("c-other-wording", &report("0101", moved(HERE, 5.0, 0.0), T0, "中山路12号井盖没了")).unwrap();
        let found = index.candidates(&hotline());
        assert_eq!(ids(&found), ["b-near", "a-far", "c-other-wording"]);
        assert!(found.windows(2).all(|w| w[0].score.total >= w[1].score.total));
    }

    #[test]
    fn remove_and_replace() {
        let mut index = DedupIndex::new(DedupRules::default());
        index.insert("x", &hotline()).unwrap();
        index.insert("y", &hotline()).unwrap();
        assert_eq!(index.len(), 2);
        assert!(index.remove("x"));
        assert!(!index.remove("x"));
        assert!(!index.contains("x") && index.contains("y"));
        assert_eq!(ids(&index.candidates(&hotline())), ["y"]);
        // A vacant slot is reused; the case it held stays gone.
        index.insert("z", &hotline()).unwrap();
        assert_eq!(ids(&index.candidates(&hotline())), ["y", "z"]);
        // Inserting a known id replaces its report: `y` moves away.
        index.insert("y", &report("0101", moved(HERE, 5_000.0, 0.0), T0, "中山路12号门前井盖缺失")).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(ids(&index.candidates(&hotline())), ["z"]);
        assert!(index.remove("y") && index.remove("z"));
        assert!(index.is_empty() && index.candidates(&hotline()).is_empty());
    }

    /// The sizes the memory figures in BENCHMARKS.md rest on.
    #[test]
    fn layout() {
        assert_eq!(size_of::<rstar::RTreeNode<Entry>>(), 48);
        assert_eq!(size_of::<Slot>(), 96);
    }

    #[test]
    fn uuid_ids_are_kept_compact_and_given_back_as_they_came() {
        let lower = "01890a5d-ac96-774b-bcce-b302099a8057";
        let upper = "01890A5D-AC96-774B-BCCE-B302099A8058";
        assert_eq!(IdKey::of(lower), IdKey::Uuid(Uuid::parse_str(lower).unwrap().into_bytes()));
        assert_eq!(IdKey::of(upper), IdKey::Text(upper));
        let mut index = DedupIndex::new(DedupRules::default());
        index.insert(lower, &hotline()).unwrap();
        index.insert(upper, &hotline()).unwrap();
        assert_eq!(ids(&index.candidates(&hotline())), [lower, upper]);
        assert!(index.remove(lower) && !index.contains(lower) && index.contains(upper));
    }

    #[test]
    fn refuses_invalid_cases_naming_the_field() {
        let mut index = DedupIndex::new(DedupRules::default());
        let err = index.insert("", &hotline()).unwrap_err();
        assert_eq!(err.field, "case_id");
        let err = index.insert("c1", &report("01-1", HERE, T0, "x")).unwrap_err();
        assert_eq!(err.to_string(), "case `c1`: `category_code` `01-1` must be 1-16 digits");
        let err = index.insert("c1", &report("0101", GeoPoint { lat: 0.0, lon: 181.0 }, T0, "x")).unwrap_err();
        assert_eq!(err.field, "location");
        assert!(index.is_empty());
    }

    #[test]
    fn families_are_the_longest_configured_prefix_or_the_major_class() {
        let rules = DedupRules::from_json(
            r#"{"families": {"01": {"radius_m": 100, "window_ms": 86400000, "threshold": 0.6},
                             "0101": {"radius_m": 30, "window_ms": 86400000, "threshold": 0.5}}}"#,
        )
        .unwrap();
        assert_eq!(rules.family_of("010105").unwrap().0, "0101");
        assert_eq!(rules.family_of("0102").unwrap().0, "01");
        assert_eq!(rules.family_of("0701").unwrap().0, "07");
        assert_eq!(rules.family_of("7").unwrap().0, "7");
        assert_eq!(rules.family_of("0701").unwrap().1, default_fallback());
        assert_eq!(rules.family_of("x"), None);
        // 0101 and 0102 are different families now.
        let mut index = DedupIndex::new(rules.clone());
        index.insert("c", &report("0102", HERE, T0, "中山路12号门前井盖缺失")).unwrap();
        assert!(index.candidates(&hotline()).is_empty());
        assert!(rules.score(&hotline(), &report("0102", HERE, T0, "中山路12号门前井盖缺失")).is_none());
        // New rules re-key the open cases: with the defaults, both are in 01.
        index.set_rules(DedupRules::default());
        assert_eq!(ids(&index.candidates(&hotline())), ["c"]);
    }

    #[test]
    fn rules_errors_name_the_field() {
        let check = |json: &str, field: &str| {
            let err = DedupRules::from_json(json).unwrap_err();
            assert_eq!(err.field, field, "{json}: {err}");
        };
        check(r#"{"family_digits": 0}"#, "family_digits");
        check(r#"{"family_digits": 5}"#, "family_digits");
        check(r#"{"weights": {"text": -1}}"#, "weights.text");
        check(r#"{"weights": {"text": 0, "distance": 0, "time": 0, "category": 0}}"#, "weights");
        check(r#"{"weights": {"txt": 1}}"#, "weights.txt");
        check(r#"{"fallback": {"radius_m": 0, "window_ms": 1, "threshold": 0.5}}"#, "fallback.radius_m");
        check(r#"{"fallback": {"radius_m": 20000, "window_ms": 1, "threshold": 0.5}}"#, "fallback.radius_m");
        check(r#"{"fallback": {"radius_m": 10, "window_ms": 0, "threshold": 0.5}}"#, "fallback.window_ms");
        check(r#"{"fallback": {"radius_m": 10, "window_ms": 1, "threshold": 1.5}}"#, "fallback.threshold");
        check(r#"{"fallback": {"radius_m": 10, "window_ms": 1}}"#, "fallback");
        check(r#"{"families": {"01x": {"radius_m": 10, "window_ms": 1, "threshold": 0.5}}}"#, "families.01x");
        check(r#"{"families": {"03": {"radius_m": 10, "window_ms": -5, "threshold": 0.5}}}"#, "families.03.window_ms");
        check(r#"{"families": {"03": {"radius_m": "far", "window_ms": 1, "threshold": 0.5}}}"#, "families.03.radius_m");
        check(r#"{"familes": {}}"#, "familes");
        check("42", "(document)");
        let err = DedupRules::from_json(r#"{"fallback": {"radius_m": 10, "window_ms": 1, "threshold": 2}}"#).unwrap_err();
        assert_eq!(err.to_string(), "dedup rules: `fallback.threshold` must be between 0 and 1");
        // The defaults round-trip through their own configuration format.
        let json = serde_json::to_string(DedupRules::default().config()).unwrap();
        assert_eq!(DedupRules::from_json(&json).unwrap(), DedupRules::default());
    }

    #[test]
    fn text_similarity() {
        let sim = |a: &str, b: &str| TextFeatures::of(a).similarity(&TextFeatures::of(b));
        assert_eq!(sim("中山路12号门前井盖缺失", "中山路12号门前井盖缺失"), 1.0);
        // Whitespace, punctuation, full-width digits and case do not count.
        assert_eq!(sim("中山路 12号，井盖缺失！", "中山路１２号井盖缺失"), 1.0);
        assert_eq!(sim("Zhongshan Rd", "zhongshanrd"), 1.0);
        // 6 shared bigrams of 11 and 12: 6 / √132.
        assert!((sim("中山路12号门前井盖缺失", "中山路12号井盖丢了，很危险") - 6.0 / 132f64.sqrt()).abs() < 1e-9);
        assert_eq!(sim("井盖缺失", "垃圾满溢"), 0.0);
        assert_eq!(sim("", "井盖"), 0.0);
        assert_eq!(sim("井", "井"), 1.0);
        // Long texts are sketched; the estimate stays near the truth.
        let long_a: String = (0..200).map(|i| char::from_u32(0x4E00 + (i * 7) % 500).unwrap()).collect();
        let long_b: String = long_a.chars().take(150).chain("另外的内容完全不同的一段话".chars()).collect();
        let a = TextFeatures::of(&long_a);
        assert_eq!(usize::from(a.kept), SKETCH);
        assert!(a.truncated());
        let estimated = sim(&long_a, &long_b);
        assert!((0.6..=0.95).contains(&estimated), "{estimated}");
    }

    /// The index proposes exactly the open cases the rules match, on a small
    /// random city: the R-tree pruning loses nothing.
    #[test]
    fn index_agrees_with_the_rules_pairwise() {
        let words = ["中山路", "汉中路", "12号", "门前", "井盖", "缺失", "丢了", "路灯", "不亮", "垃圾", "满溢", "很危险"];
        let codes = ["0101", "0102", "0201", "0301", "0701", "0101"];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut cases: Vec<(String, String, GeoPoint, i64, String)> = Vec::new();
        for i in 0..600 {
            let text: String = (0..3 + next(3)).map(|_| words[next(words.len() as u64) as usize]).collect();
            let p = moved(HERE, next(600) as f64, next(600) as f64);
            let code = codes[next(codes.len() as u64) as usize].to_owned();
            cases.push((format!("c{i}"), code, p, T0 + next(10 * DAY_MS as u64) as i64, text));
        }
        let rules = DedupRules::default();
        let mut index = DedupIndex::from_cases(
            rules.clone(),
            cases.iter().map(|(id, code, p, t, text)| (id.as_str(), report(code, *p, *t, text))),
        )
        .unwrap();
        // Some churn, so slots are reused and trees see single inserts too.
        for (id, code, p, t, text) in cases.iter().take(100) {
            assert!(index.remove(id));
            index.insert(id, &report(code, *p, *t, text)).unwrap();
        }
        let mut matched = 0;
        for (_, code, p, t, text) in cases.iter().step_by(7) {
            let probe = report(code, moved(*p, 10.0, -10.0), t + HOUR_MS, text);
            let mut expected: Vec<&str> = cases
                .iter()
                .filter(|(_, c, q, u, x)| rules.score(&probe, &report(c, *q, *u, x)).is_some_and(|s| s.matched))
                .map(|(id, ..)| id.as_str())
                .collect();
            let found = index.candidates(&probe);
            let mut got = ids(&found);
            expected.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, expected);
            matched += got.len();
        }
        assert!(matched >= 86, "the probes should find their own cases at least: {matched}");
    }
}
