//! CAP 1.2 (OASIS Common Alerting Protocol), the format warnings travel in:
//! [`parse`] reads an alert from XML and checks it, [`to_xml`] writes one.
//! This module is only the format: it knows nothing of storage, the bus or
//! HTTP. The case engine imports an alert (each `info` becomes a warning, and
//! the grid cells under each `area` get cases; an `Update` or `Cancel` finds
//! the original through its [`Reference`]s) and exports the warnings plugins
//! raise.
//!
//! Every [`CapError`] names the line (and column) of the element at fault and
//! what was expected there; a missing element is reported at its parent. Text
//! values are trimmed of surrounding whitespace; date-times keep their offset
//! so an alert written back reads the same, and also give epoch milliseconds.
//! Elements of other namespaces (an XML signature, extensions) are skipped;
//! unknown elements in the CAP namespace are errors.

use std::borrow::Cow;
use std::fmt;

use geo::{Destination, Haversine, LineString, Point, Polygon, Validation};
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use serde::{Deserialize, Serialize};

use crate::bus::GeoPoint;
use crate::calendar::{civil_from_days, days_from_civil};

/// The CAP 1.2 namespace; the root `<alert>` must be in it.
pub const NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";

/// The largest document `parse` reads. CAP alerts are a few KiB; the limit
/// leaves room for resources embedded with `derefUri`.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;

/// The deepest element nesting `parse` accepts. CAP itself nests five deep
/// (`alert/info/area/geocode/value`); the rest is room for skipped extensions.
pub const MAX_DEPTH: usize = 16;

/// Points a circle becomes in [`Area::to_geo_polygons`].
pub const CIRCLE_SEGMENTS: usize = 32;

/// The largest circle radius accepted, the same bound as a space query's.
pub const MAX_RADIUS_KM: f64 = crate::space::MAX_RADIUS_METRES / 1000.0;

/// Why a document is not an acceptable CAP 1.2 alert, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CapError {
    /// 1-based line of the element (or markup) at fault.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, naming what was expected.
    pub message: String,
}

/// A CAP `<alert>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub identifier: String,
    pub sender: String,
    pub sent: CapTime,
    pub status: Status,
    pub msg_type: MsgType,
    pub source: Option<String>,
    pub scope: Scope,
    /// Required when `scope` is `Restricted`.
    pub restriction: Option<String>,
    /// Required when `scope` is `Private`.
    pub addresses: Option<String>,
    pub codes: Vec<String>,
    pub note: Option<String>,
    /// The earlier alerts this one updates, cancels, acknowledges or answers.
    /// Required for `Update` and `Cancel`.
    pub references: Vec<Reference>,
    pub incidents: Option<String>,
    pub infos: Vec<Info>,
}

/// One entry of `<references>`: `sender,identifier,sent`. An alert is known by
/// its sender and identifier together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub sender: String,
    pub identifier: String,
    pub sent: CapTime,
}

/// A CAP `<info>`: one warning, in one language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// `en-US` when the document leaves it out, as CAP says.
    pub language: String,
    /// At least one.
    pub categories: Vec<Category>,
    pub event: String,
    pub response_types: Vec<ResponseType>,
    pub urgency: Urgency,
    pub severity: Severity,
    pub certainty: Certainty,
    pub audience: Option<String>,
    pub event_codes: Vec<NamedValue>,
    pub effective: Option<CapTime>,
    pub onset: Option<CapTime>,
    pub expires: Option<CapTime>,
    pub sender_name: Option<String>,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub instruction: Option<String>,
    pub web: Option<String>,
    pub contact: Option<String>,
    pub parameters: Vec<NamedValue>,
    pub resources: Vec<Resource>,
    pub areas: Vec<Area>,
}

/// A `valueName`/`value` pair (`eventCode`, `parameter`, `geocode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedValue {
    pub value_name: String,
    pub value: String,
}

/// A CAP `<resource>`: a file that goes with the warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub resource_desc: String,
    pub mime_type: String,
    /// Bytes.
    pub size: Option<u64>,
    pub uri: Option<String>,
    /// The content itself, base64.
    pub deref_uri: Option<String>,
    /// SHA-1 of the content, hex.
    pub digest: Option<String>,
}

/// A CAP `<area>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Area {
    pub area_desc: String,
    /// Closed rings (first point = last point), at least four points each.
    pub polygons: Vec<Vec<GeoPoint>>,
    pub circles: Vec<Circle>,
    pub geocodes: Vec<NamedValue>,
    /// Feet above mean sea level.
    pub altitude: Option<f64>,
    /// Feet above mean sea level; only with `altitude`.
    pub ceiling: Option<f64>,
}

/// A CAP `<circle>`: `lat,lon radius_km`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Circle {
    pub centre: GeoPoint,
    pub radius_km: f64,
}

/// A CAP date-time, `2027-01-15T08:00:00+08:00`: the instant and the offset it
/// was written with (`-00:00` for UTC; CAP 1.2 forbids `Z`). Whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CapTime {
    /// Milliseconds since 1970-01-01T00:00:00 UTC, a multiple of 1000.
    pub epoch_ms: i64,
    /// Minutes east of UTC.
    pub offset_minutes: i32,
}

/// Implemented by the CAP code lists.
pub trait CapEnum: Sized + Copy + 'static {
    /// Every value, in the order of the specification.
    const ALL: &'static [Self];
    /// The value as CAP writes it.
    fn as_str(self) -> &'static str;
    /// The value CAP writes as `s`, if any (case-sensitive, as in CAP).
    fn from_cap(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
}

macro_rules! cap_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl CapEnum for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

cap_enum!(
    /// `<status>`: how the alert is meant to be handled.
    Status { Actual = "Actual", Exercise = "Exercise", System = "System", Test = "Test", Draft = "Draft" }
);
cap_enum!(
    /// `<msgType>`.
    MsgType { Alert = "Alert", Update = "Update", Cancel = "Cancel", Ack = "Ack", Error = "Error" }
);
cap_enum!(
    /// `<scope>`: who may see the alert.
    Scope { Public = "Public", Restricted = "Restricted", Private = "Private" }
);
cap_enum!(
    /// `<category>`.
    Category {
        Geo = "Geo", Met = "Met", Safety = "Safety", Security = "Security", Rescue = "Rescue",
        Fire = "Fire", Health = "Health", Env = "Env", Transport = "Transport", Infra = "Infra",
        Cbrne = "CBRNE", Other = "Other",
    }
);
cap_enum!(
    /// `<responseType>`: what the audience should do.
    ResponseType {
        Shelter = "Shelter", Evacuate = "Evacuate", Prepare = "Prepare", Execute = "Execute",
        Avoid = "Avoid", Monitor = "Monitor", Assess = "Assess", AllClear = "AllClear", None = "None",
    }
);
cap_enum!(
    /// `<urgency>`.
    Urgency { Immediate = "Immediate", Expected = "Expected", Future = "Future", Past = "Past", Unknown = "Unknown" }
);
cap_enum!(
    /// `<severity>`.
    Severity { Extreme = "Extreme", Severe = "Severe", Moderate = "Moderate", Minor = "Minor", Unknown = "Unknown" }
);
cap_enum!(
    /// `<certainty>`.
    Certainty { Observed = "Observed", Likely = "Likely", Possible = "Possible", Unlikely = "Unlikely", Unknown = "Unknown" }
);

impl Alert {
    /// Whether this alert replaces or withdraws earlier ones (its
    /// [`references`](Alert::references) name them).
    pub fn is_update_or_cancel(&self) -> bool {
        matches!(self.msg_type, MsgType::Update | MsgType::Cancel)
    }

    /// The identifiers of the alerts this one refers to, in document order.
    /// Identifiers are unique per sender only: match on the whole
    /// [`Reference`] (or its sender and identifier) where that matters.
    pub fn referenced_identifiers(&self) -> Vec<&str> {
        self.references.iter().map(|r| r.identifier.as_str()).collect()
    }

    /// How a later alert names this one in its `<references>`.
    pub fn as_reference(&self) -> Reference {
        Reference { sender: self.sender.clone(), identifier: self.identifier.clone(), sent: self.sent }
    }
}

impl Area {
    /// The area's shapes as polygons (`x` = longitude, `y` = latitude), for
    /// `Space::grids_within_polygon`: each polygon as given, then each circle
    /// as a [`CIRCLE_SEGMENTS`]-gon whose corners lie on the circle (so the
    /// polygon lies just inside it). `Space::grids_within_radius` answers a
    /// circle exactly, where that is preferred.
    pub fn to_geo_polygons(&self) -> Vec<Polygon<f64>> {
        let rings = self.polygons.iter().map(|ring| ring.iter().map(|p| (p.lon, p.lat)).collect::<Vec<_>>());
        let circles = self.circles.iter().map(Circle::ring);
        rings.chain(circles).map(|ring| Polygon::new(LineString::from(ring), Vec::new())).collect()
    }
}

impl Circle {
    /// The circle as a closed ring of `(lon, lat)` corners.
    fn ring(&self) -> Vec<(f64, f64)> {
        let centre = Point::new(self.centre.lon, self.centre.lat);
        let metres = self.radius_km * 1000.0;
        let mut ring: Vec<(f64, f64)> = (0..CIRCLE_SEGMENTS)
            .map(|i| {
                let bearing = 360.0 * i as f64 / CIRCLE_SEGMENTS as f64;
                Haversine.destination(centre, bearing, metres).x_y()
            })
            .collect();
        ring.push(ring[0]);
        ring
    }
}

impl CapTime {
    /// The instant `epoch_ms` (rounded down to the second) as written at
    /// `offset_minutes` east of UTC.
    pub fn from_epoch_ms(epoch_ms: i64, offset_minutes: i32) -> CapTime {
        CapTime { epoch_ms: epoch_ms.div_euclid(1000) * 1000, offset_minutes }
    }

    /// Read `YYYY-MM-DDThh:mm:ss±hh:mm`; the error says what was expected.
    pub fn parse(s: &str) -> Result<CapTime, String> {
        const FORM: &str = "a date-time like 2027-01-15T08:00:00+08:00";
        let b = s.as_bytes();
        if s.ends_with('Z') || s.ends_with('z') {
            return Err(format!(
                "must end in a UTC offset such as +08:00 (CAP 1.2 writes UTC as -00:00, never Z), not \"{s}\""
            ));
        }
        let shape_ok = b.len() == 25
            && b.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 | 22 => c == b':',
                19 => c == b'+' || c == b'-',
                _ => c.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(format!("must be {FORM} (with the offset, without fractions of a second), not \"{s}\""));
        }
        let num = |from: usize, to: usize| -> i64 { s[from..to].parse().unwrap_or(0) };
        let (year, month, day) = (num(0, 4), num(5, 7), num(8, 10));
        let (hour, minute, second) = (num(11, 13), num(14, 16), num(17, 19));
        let (off_h, off_m) = (num(20, 22), num(23, 25));
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(format!("has no such day: \"{s}\""));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(format!("has no such time of day: \"{s}\""));
        }
        if off_h > 23 || off_m > 59 {
            return Err(format!("has no such UTC offset: \"{s}\""));
        }
        let sign = if b[19] == b'-' { -1 } else { 1 };
        let offset_minutes = sign * (off_h * 60 + off_m);
        let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
        Ok(CapTime { epoch_ms: (local - offset_minutes * 60) * 1000, offset_minutes: offset_minutes as i32 })
    }
}

impl fmt::Display for CapTime {
    /// CAP form; an offset of zero is written `-00:00`, as CAP 1.2 asks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.epoch_ms.div_euclid(1000) + i64::from(self.offset_minutes) * 60;
        let (year, month, day) = civil_from_days(local.div_euclid(86_400));
        let secs = local.rem_euclid(86_400);
        let sign = if self.offset_minutes > 0 { '+' } else { '-' };
        let off = self.offset_minutes.unsigned_abs();
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            off / 60,
            off % 60
        )
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}


// ---------------------------------------------------------------------------
// Reading: XML → a small element tree → CAP values.
// ---------------------------------------------------------------------------

/// Read and check a CAP 1.2 alert.
pub fn parse(xml: &str) -> Result<Alert, CapError> {
    let lines = Lines::new(xml);
    if xml.len() > MAX_BYTES {
        let mut at = MAX_BYTES;
        while !xml.is_char_boundary(at) {
            at -= 1;
        }
        return Err(lines.error(at, format!("a CAP alert may be at most {MAX_BYTES} bytes; this one is {}", xml.len())));
    }
    let root = read_tree(xml, &lines)?;
    alert(&root)
}

/// Byte offset → line and column.
struct Lines<'a> {
    text: &'a str,
    /// Offsets of every `\n`.
    breaks: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { text, breaks: text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i).collect() }
    }

    fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.breaks.partition_point(|&b| b < offset);
        let start = if line == 0 { 0 } else { self.breaks[line - 1] + 1 };
        let column = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count()) + 1;
        Pos { line: line + 1, column }
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> CapError {
        self.pos(offset).error(message)
    }
}

#[derive(Debug, Clone, Copy)]
struct Pos {
    line: usize,
    column: usize,
}

impl Pos {
    fn error(self, message: impl Into<String>) -> CapError {
        CapError { line: self.line, column: self.column, message: message.into() }
    }
}

/// One element in the CAP namespace: as much of XML as CAP uses.
#[derive(Debug)]
struct Node {
    name: String,
    pos: Pos,
    text: String,
    /// Where the first non-blank text starts, for errors about stray text.
    text_pos: Option<Pos>,
    children: Vec<Node>,
}

fn read_tree(xml: &str, lines: &Lines<'_>) -> Result<Node, CapError> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    // Depth inside an element of another namespace, which is skipped whole.
    let mut skipping = 0usize;
    loop {
        let at = reader.buffer_position() as usize;
        let (ns, event) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => return Err(lines.error(reader.error_position() as usize, format!("not well-formed XML: {e}"))),
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_start = matches!(event, Event::Start(_));
                let name = e.local_name().as_ref().to_owned();
                let pos = lines.pos(at);
                if stack.len() + skipping >= MAX_DEPTH {
                    return Err(pos.error(format!("elements nest deeper than {MAX_DEPTH} levels")));
                }
                if skipping > 0 {
                    skipping += usize::from(is_start);
                    continue;
                }
                if root.is_some() {
                    return Err(pos.error(format!("expected nothing after </alert>, found <{name}>")));
                }
                match ns {
                    ResolveResult::Bound(Namespace(n)) if n == NAMESPACE => {}
                    ResolveResult::Bound(_) if !stack.is_empty() => {
                        // An extension or a signature: not ours to read.
                        skipping += usize::from(is_start);
                        continue;
                    }
                    ResolveResult::Bound(Namespace(n)) => {
                        return Err(pos.error(format!(
                            "expected <alert> in namespace {NAMESPACE}, found <{name}> in namespace {n}"
                        )));
                    }
                    ResolveResult::Unbound => {
                        return Err(
                            pos.error(format!("expected <{name}> in namespace {NAMESPACE}, found it in no namespace"))
                        );
                    }
                    ResolveResult::Unknown(prefix) => {
                        return Err(pos.error(format!("<{name}> uses the undeclared namespace prefix `{prefix}`")));
                    }
                }
                if stack.is_empty() && name != "alert" {
                    return Err(pos.error(format!("expected <alert> as the root element, found <{name}>")));
                }
                let node = Node { name, pos, text: String::new(), text_pos: None, children: Vec::new() };
                if is_start {
                    stack.push(node);
                } else {
                    close(node, &mut stack, &mut root);
                }
            }
            Event::End(_) => {
                if skipping > 0 {
                    skipping -= 1;
                } else if let Some(node) = stack.pop() {
                    close(node, &mut stack, &mut root);
                }
            }
            Event::Text(ref t) => {
                // Point at the first character that is not blank.
                let lead = t.len() - t.trim_start_matches(is_xml_space).len();
                add_text(&mut stack, skipping, &t.xml10_content(), lines.pos(at + lead))?;
            }
            Event::CData(ref t) => add_text(&mut stack, skipping, &t.xml10_content(), lines.pos(at))?,
            Event::GeneralRef(ref r) => {
                let pos = lines.pos(at);
                let resolved: Cow<'_, str> = match r.resolve_char_ref() {
                    Ok(Some(c)) => Cow::Owned(c.to_string()),
                    Ok(None) => match quick_xml::escape::resolve_xml_entity(r) {
                        Some(s) => Cow::Borrowed(s),
                        None => {
                            return Err(pos.error(format!(
                                "expected one of the entities &lt; &gt; &amp; &apos; &quot; or a character reference, found &{};",
                                &**r
                            )));
                        }
                    },
                    Err(e) => return Err(pos.error(format!("bad character reference &{};: {e}", &**r))),
                };
                add_text(&mut stack, skipping, &resolved, pos)?;
            }
            Event::DocType(_) => {
                return Err(lines.error(at, "expected no <!DOCTYPE>: CAP documents have no DTD"));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(open.pos.error(format!("<{}> is never closed", open.name)));
    }
    root.ok_or_else(|| lines.error(xml.len(), "expected a CAP <alert>, found no element"))
}

fn close(node: Node, stack: &mut [Node], root: &mut Option<Node>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
}

fn add_text(stack: &mut [Node], skipping: usize, text: &str, pos: Pos) -> Result<(), CapError> {
    if skipping > 0 {
        return Ok(());
    }
    let Some(node) = stack.last_mut() else {
        if is_blank(text) {
            return Ok(());
        }
        return Err(pos.error(format!("expected a CAP <alert>, found text \"{}\"", snippet(text))));
    };
    if node.text_pos.is_none() && !is_blank(text) {
        node.text_pos = Some(pos);
    }
    node.text.push_str(text);
    Ok(())
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_blank(s: &str) -> bool {
    s.chars().all(is_xml_space)
}

fn snippet(s: &str) -> String {
    let s = s.trim_matches(is_xml_space);
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

impl Node {
    fn error(&self, message: impl Into<String>) -> CapError {
        self.pos.error(message)
    }

    /// The trimmed text of an element that holds only text.
    fn text(&self) -> Result<&str, CapError> {
        if let Some(child) = self.children.first() {
            return Err(child.error(format!("expected text in <{}>, found <{}>", self.name, child.name)));
        }
        Ok(self.text.trim_matches(is_xml_space))
    }

    fn string(&self) -> Result<String, CapError> {
        self.text().map(str::to_owned)
    }

    /// Text that must not be empty.
    fn non_empty(&self) -> Result<String, CapError> {
        let text = self.text()?;
        if text.is_empty() {
            return Err(self.error(format!("expected a value in <{}>, found none", self.name)));
        }
        Ok(text.to_owned())
    }

    /// An `identifier` or `sender`: CAP forbids spaces, commas, `<` and `&`,
    /// since `<references>` is built from them.
    fn token(&self) -> Result<String, CapError> {
        let text = self.non_empty()?;
        if text.chars().any(|c| c.is_whitespace() || c == ',' || c == '<' || c == '&') {
            return Err(self.error(format!(
                "<{}> must not contain spaces, commas, < or &, not \"{}\"",
                self.name,
                snippet(&text)
            )));
        }
        Ok(text)
    }

    fn time(&self) -> Result<CapTime, CapError> {
        CapTime::parse(self.text()?).map_err(|e| self.error(format!("<{}> {e}", self.name)))
    }

    fn value<T: CapEnum>(&self) -> Result<T, CapError> {
        let text = self.text()?;
        T::from_cap(text).ok_or_else(|| {
            let all: Vec<&str> = T::ALL.iter().map(|v| v.as_str()).collect();
            self.error(format!("<{}> must be one of {}, not \"{}\"", self.name, all.join(", "), snippet(text)))
        })
    }

    fn number(&self) -> Result<f64, CapError> {
        let text = self.text()?;
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(n),
            _ => Err(self.error(format!("<{}> must be a decimal number, not \"{}\"", self.name, snippet(text)))),
        }
    }

    /// The children of a container element, sorted by the rules in `spec`.
    fn pick(&self, spec: &'static [(&'static str, Occurs)]) -> Result<Picked<'_>, CapError> {
        if let Some(pos) = self.text_pos {
            return Err(pos.error(format!("expected only elements in <{}>, found text", self.name)));
        }
        let mut found: Vec<Vec<&Node>> = vec![Vec::new(); spec.len()];
        for child in &self.children {
            let Some(i) = spec.iter().position(|(name, _)| *name == child.name) else {
                return Err(child.error(format!("unexpected <{}> in <{}>", child.name, self.name)));
            };
            if matches!(spec[i].1, Occurs::Required | Occurs::Optional) && !found[i].is_empty() {
                return Err(child.error(format!("<{}> may appear only once in <{}>", child.name, self.name)));
            }
            found[i].push(child);
        }
        for (i, (name, occurs)) in spec.iter().enumerate() {
            if matches!(occurs, Occurs::Required | Occurs::AtLeastOne) && found[i].is_empty() {
                return Err(self.error(format!("expected <{name}> in <{}>", self.name)));
            }
        }
        Ok(Picked { spec, found })
    }
}

#[derive(Debug, Clone, Copy)]
enum Occurs {
    Required,
    Optional,
    Any,
    AtLeastOne,
}

/// A container's children by name, checked against its spec.
struct Picked<'n> {
    spec: &'static [(&'static str, Occurs)],
    found: Vec<Vec<&'n Node>>,
}

impl<'n> Picked<'n> {
    fn all(&self, name: &str) -> &[&'n Node] {
        let i = self.spec.iter().position(|(n, _)| *n == name);
        // Every name asked for is in the spec; an unknown one finds nothing.
        i.map_or(&[][..], |i| &self.found[i])
    }

    fn opt(&self, name: &str) -> Option<&'n Node> {
        self.all(name).first().copied()
    }

    /// A required element; `pick` has made sure it is there.
    fn one(&self, name: &str) -> &'n Node {
        self.all(name)[0]
    }

    fn opt_string(&self, name: &str) -> Result<Option<String>, CapError> {
        self.opt(name).map(Node::string).transpose()
    }

    fn opt_time(&self, name: &str) -> Result<Option<CapTime>, CapError> {
        self.opt(name).map(Node::time).transpose()
    }
}

use Occurs::{Any, AtLeastOne, Optional, Required};

const ALERT: &[(&str, Occurs)] = &[
    ("identifier", Required),
    ("sender", Required),
    ("sent", Required),
    ("status", Required),
    ("msgType", Required),
    ("source", Optional),
    ("scope", Required),
    ("restriction", Optional),
    ("addresses", Optional),
    ("code", Any),
    ("note", Optional),
    ("references", Optional),
    ("incidents", Optional),
    ("info", Any),
];

const INFO: &[(&str, Occurs)] = &[
    ("language", Optional),
    ("category", AtLeastOne),
    ("event", Required),
    ("responseType", Any),
    ("urgency", Required),
    ("severity", Required),
    ("certainty", Required),
    ("audience", Optional),
    ("eventCode", Any),
    ("effective", Optional),
    ("onset", Optional),
    ("expires", Optional),
    ("senderName", Optional),
    ("headline", Optional),
    ("description", Optional),
    ("instruction", Optional),
    ("web", Optional),
    ("contact", Optional),
    ("parameter", Any),
    ("resource", Any),
    ("area", Any),
];

const NAMED_VALUE: &[(&str, Occurs)] = &[("valueName", Required), ("value", Required)];

const RESOURCE: &[(&str, Occurs)] = &[
    ("resourceDesc", Required),
    ("mimeType", Required),
    ("size", Optional),
    ("uri", Optional),
    ("derefUri", Optional),
    ("digest", Optional),
];

const AREA: &[(&str, Occurs)] = &[
    ("areaDesc", Required),
    ("polygon", Any),
    ("circle", Any),
    ("geocode", Any),
    ("altitude", Optional),
    ("ceiling", Optional),
];

fn alert(node: &Node) -> Result<Alert, CapError> {
    let c = node.pick(ALERT)?;
    let scope: Scope = c.one("scope").value()?;
    let msg_type: MsgType = c.one("msgType").value()?;
    let restriction = c.opt_string("restriction")?;
    let addresses = c.opt_string("addresses")?;
    if scope == Scope::Restricted && restriction.is_none() {
        return Err(node.error("expected <restriction> in <alert>, as <scope> is Restricted"));
    }
    if scope == Scope::Private && addresses.is_none() {
        return Err(node.error("expected <addresses> in <alert>, as <scope> is Private"));
    }
    let references = match c.opt("references") {
        Some(r) => references(r)?,
        None => Vec::new(),
    };
    if references.is_empty() && matches!(msg_type, MsgType::Update | MsgType::Cancel) {
        return Err(node.error(format!("expected <references> in <alert>, as <msgType> is {msg_type}")));
    }
    Ok(Alert {
        identifier: c.one("identifier").token()?,
        sender: c.one("sender").token()?,
        sent: c.one("sent").time()?,
        status: c.one("status").value()?,
        msg_type,
        source: c.opt_string("source")?,
        scope,
        restriction,
        addresses,
        codes: c.all("code").iter().map(|n| n.string()).collect::<Result<_, _>>()?,
        note: c.opt_string("note")?,
        references,
        incidents: c.opt_string("incidents")?,
        infos: c.all("info").iter().map(|n| info(n)).collect::<Result<_, _>>()?,
    })
}

fn references(node: &Node) -> Result<Vec<Reference>, CapError> {
    let text = node.text()?;
    let mut out = Vec::new();
    for entry in text.split(is_xml_space).filter(|s| !s.is_empty()) {
        let parts: Vec<&str> = entry.split(',').collect();
        let [sender, identifier, sent] = parts[..] else {
            return Err(node.error(format!(
                "<references> must be space-separated sender,identifier,sent triples, not \"{}\"",
                snippet(entry)
            )));
        };
        if sender.is_empty() || identifier.is_empty() {
            return Err(
                node.error(format!("<references> entry \"{}\" has an empty sender or identifier", snippet(entry)))
            );
        }
        let sent = CapTime::parse(sent)
            .map_err(|e| node.error(format!("<references> entry \"{}\": sent {e}", snippet(entry))))?;
        out.push(Reference { sender: sender.to_owned(), identifier: identifier.to_owned(), sent });
    }
    Ok(out)
}

fn info(node: &Node) -> Result<Info, CapError> {
    let c = node.pick(INFO)?;
    Ok(Info {
        language: match c.opt("language") {
            Some(n) => n.non_empty()?,
            None => "en-US".to_owned(),
        },
        categories: c.all("category").iter().map(|n| n.value()).collect::<Result<_, _>>()?,
        event: c.one("event").non_empty()?,
        response_types: c.all("responseType").iter().map(|n| n.value()).collect::<Result<_, _>>()?,
        urgency: c.one("urgency").value()?,
        severity: c.one("severity").value()?,
        certainty: c.one("certainty").value()?,
        audience: c.opt_string("audience")?,
        event_codes: c.all("eventCode").iter().map(|n| named_value(n)).collect::<Result<_, _>>()?,
        effective: c.opt_time("effective")?,
        onset: c.opt_time("onset")?,
        expires: c.opt_time("expires")?,
        sender_name: c.opt_string("senderName")?,
        headline: c.opt_string("headline")?,
        description: c.opt_string("description")?,
        instruction: c.opt_string("instruction")?,
        web: c.opt_string("web")?,
        contact: c.opt_string("contact")?,
        parameters: c.all("parameter").iter().map(|n| named_value(n)).collect::<Result<_, _>>()?,
        resources: c.all("resource").iter().map(|n| resource(n)).collect::<Result<_, _>>()?,
        areas: c.all("area").iter().map(|n| area(n)).collect::<Result<_, _>>()?,
    })
}

fn named_value(node: &Node) -> Result<NamedValue, CapError> {
    let c = node.pick(NAMED_VALUE)?;
    Ok(NamedValue { value_name: c.one("valueName").string()?, value: c.one("value").string()? })
}

fn resource(node: &Node) -> Result<Resource, CapError> {
    let c = node.pick(RESOURCE)?;
    let size = match c.opt("size") {
        Some(n) => {
            let text = n.text()?;
            let size = text
                .parse::<u64>()
                .map_err(|_| n.error(format!("<size> must be a whole number of bytes, not \"{}\"", snippet(text))))?;
            Some(size)
        }
        None => None,
    };
    Ok(Resource {
        resource_desc: c.one("resourceDesc").non_empty()?,
        mime_type: c.one("mimeType").non_empty()?,
        size,
        uri: c.opt_string("uri")?,
        deref_uri: c.opt_string("derefUri")?,
        digest: c.opt_string("digest")?,
    })
}

fn area(node: &Node) -> Result<Area, CapError> {
    let c = node.pick(AREA)?;
    let altitude = c.opt("altitude").map(Node::number).transpose()?;
    let ceiling = c.opt("ceiling").map(Node::number).transpose()?;
    if let (Some(ceiling), None) = (ceiling, altitude) {
        return Err(node.error(format!("expected <altitude> in <area>, as it has <ceiling> {ceiling}")));
    }
    Ok(Area {
        area_desc: c.one("areaDesc").non_empty()?,
        polygons: c.all("polygon").iter().map(|n| polygon(n)).collect::<Result<_, _>>()?,
        circles: c.all("circle").iter().map(|n| circle(n)).collect::<Result<_, _>>()?,
        geocodes: c.all("geocode").iter().map(|n| named_value(n)).collect::<Result<_, _>>()?,
        altitude,
        ceiling,
    })
}

/// `lat,lon`, on Earth.
fn point(node: &Node, pair: &str) -> Result<GeoPoint, CapError> {
    let bad = || {
        node.error(format!(
            "<{}> points must be \"latitude,longitude\" in decimal degrees, not \"{}\"",
            node.name,
            snippet(pair)
        ))
    };
    let (lat, lon) = pair.split_once(',').ok_or_else(bad)?;
    let lat = lat.parse::<f64>().map_err(|_| bad())?;
    let lon = lon.parse::<f64>().map_err(|_| bad())?;
    GeoPoint { lat, lon }.validate().map_err(|e| node.error(format!("<{}> point \"{pair}\": {e}", node.name)))
}

fn polygon(node: &Node) -> Result<Vec<GeoPoint>, CapError> {
    let text = node.text()?;
    let ring =
        text.split(is_xml_space).filter(|s| !s.is_empty()).map(|p| point(node, p)).collect::<Result<Vec<_>, _>>()?;
    if ring.len() < 4 {
        return Err(node.error(format!("<polygon> needs at least 4 points (a closed ring), found {}", ring.len())));
    }
    if ring.first() != ring.last() {
        return Err(node.error("<polygon> must be closed: its last point must repeat its first"));
    }
    let shape = Polygon::new(ring.iter().map(|p| (p.lon, p.lat)).collect::<Vec<_>>().into(), Vec::new());
    shape.check_validation().map_err(|e| node.error(format!("<polygon> is not a simple ring: {e}")))?;
    Ok(ring)
}

fn circle(node: &Node) -> Result<Circle, CapError> {
    let text = node.text()?;
    let mut parts = text.split(is_xml_space).filter(|s| !s.is_empty());
    let (Some(centre), Some(radius), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(node.error(format!("<circle> must be \"latitude,longitude radius_km\", not \"{}\"", snippet(text))));
    };
    let centre = point(node, centre)?;
    match radius.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= MAX_RADIUS_KM => Ok(Circle { centre, radius_km: r }),
        _ => Err(node.error(format!(
            "<circle> radius must be a number of kilometres above 0 and at most {MAX_RADIUS_KM}, not \"{}\"",
            snippet(radius)
        ))),
    }
}

// ---------------------------------------------------------------------------
// Writing.
// ---------------------------------------------------------------------------

/// Write an alert as CAP 1.2 XML (UTF-8, indented, elements in the order of
/// the CAP schema). The result is valid CAP when the alert holds what
/// [`parse`] requires (for instance at least one category per info); `parse`
/// reads it back to an equal alert.
pub fn to_xml(alert: &Alert) -> String {
    let mut w = Writer { out: String::with_capacity(2048), depth: 0 };
    w.out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    w.out.push_str(&format!("<alert xmlns=\"{NAMESPACE}\">\n"));
    w.depth = 1;
    w.leaf("identifier", &alert.identifier);
    w.leaf("sender", &alert.sender);
    w.leaf("sent", &alert.sent.to_string());
    w.leaf("status", alert.status.as_str());
    w.leaf("msgType", alert.msg_type.as_str());
    w.opt("source", &alert.source);
    w.leaf("scope", alert.scope.as_str());
    w.opt("restriction", &alert.restriction);
    w.opt("addresses", &alert.addresses);
    for code in &alert.codes {
        w.leaf("code", code);
    }
    w.opt("note", &alert.note);
    if !alert.references.is_empty() {
        let refs: Vec<String> =
            alert.references.iter().map(|r| format!("{},{},{}", r.sender, r.identifier, r.sent)).collect();
        w.leaf("references", &refs.join(" "));
    }
    w.opt("incidents", &alert.incidents);
    for info in &alert.infos {
        w.info(info);
    }
    w.out.push_str("</alert>\n");
    w.out
}

struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.indent();
        let escaped = quick_xml::escape::escape(text);
        // A carriage return would be read back as a line feed.
        let escaped = escaped.replace('\r', "&#13;");
        self.out.push_str(&format!("<{name}>{escaped}</{name}>\n"));
    }

    fn opt(&mut self, name: &str, text: &Option<String>) {
        if let Some(text) = text {
            self.leaf(name, text);
        }
    }

    fn opt_time(&mut self, name: &str, time: Option<CapTime>) {
        if let Some(time) = time {
            self.leaf(name, &time.to_string());
        }
    }

    fn open(&mut self, name: &str) {
        self.indent();
        self.out.push_str(&format!("<{name}>\n"));
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.out.push_str(&format!("</{name}>\n"));
    }

    fn named_value(&mut self, name: &str, nv: &NamedValue) {
        self.open(name);
        self.leaf("valueName", &nv.value_name);
        self.leaf("value", &nv.value);
        self.close(name);
    }

    fn info(&mut self, info: &Info) {
        self.open("info");
        self.leaf("language", &info.language);
        for c in &info.categories {
            self.leaf("category", c.as_str());
        }
        self.leaf("event", &info.event);
        for r in &info.response_types {
            self.leaf("responseType", r.as_str());
        }
        self.leaf("urgency", info.urgency.as_str());
        self.leaf("severity", info.severity.as_str());
        self.leaf("certainty", info.certainty.as_str());
        self.opt("audience", &info.audience);
        for code in &info.event_codes {
            self.named_value("eventCode", code);
        }
        self.opt_time("effective", info.effective);
        self.opt_time("onset", info.onset);
        self.opt_time("expires", info.expires);
        self.opt("senderName", &info.sender_name);
        self.opt("headline", &info.headline);
        self.opt("description", &info.description);
        self.opt("instruction", &info.instruction);
        self.opt("web", &info.web);
        self.opt("contact", &info.contact);
        for p in &info.parameters {
            self.named_value("parameter", p);
        }
        for r in &info.resources {
            self.open("resource");
            self.leaf("resourceDesc", &r.resource_desc);
            self.leaf("mimeType", &r.mime_type);
            if let Some(size) = r.size {
                self.leaf("size", &size.to_string());
            }
            self.opt("uri", &r.uri);
            self.opt("derefUri", &r.deref_uri);
            self.opt("digest", &r.digest);
            self.close("resource");
        }
        for a in &info.areas {
            self.area(a);
        }
        self.close("info");
    }

    fn area(&mut self, area: &Area) {
        self.open("area");
        self.leaf("areaDesc", &area.area_desc);
        for ring in &area.polygons {
            let points: Vec<String> = ring.iter().map(|p| format!("{},{}", p.lat, p.lon)).collect();
            self.leaf("polygon", &points.join(" "));
        }
        for c in &area.circles {
            self.leaf("circle", &format!("{},{} {}", c.centre.lat, c.centre.lon, c.radius_km));
        }
        for g in &area.geocodes {
            self.named_value("geocode", g);
        }
        if let Some(a) = area.altitude {
            self.leaf("altitude", &a.to_string());
        }
        if let Some(c) = area.ceiling {
            self.leaf("ceiling", &c.to_string());
        }
        self.close("area");
    }
}

#[cfg(test)]
mod tests {
    use geo::{Contains, Distance};

    use super::*;

    /// A city weather service's rainstorm warning for low-lying streets.
    const FLOOD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2" xmlns:ext="urn:example:ext">
  <identifier>32010041600000_20270715080000</identifier>
  <sender>weather.nanjing@example.cn</sender>
  <sent>2027-07-15T08:00:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <source>南京市气象台</source>
  <scope>Public</scope>
  <code>CN-12379</code>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <category>Infra</category>
    <event>暴雨</event>
    <responseType>Prepare</responseType>
    <responseType>Avoid</responseType>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <eventCode><valueName>GB/T 27962</valueName><value>11B03</value></eventCode>
    <effective>2027-07-15T08:00:00+08:00</effective>
    <onset>2027-07-15T09:00:00+08:00</onset>
    <expires>2027-07-15T20:00:00+08:00</expires>
    <senderName>南京市气象台</senderName>
    <headline>南京市气象台发布暴雨橙色预警信号</headline>
    <description>
      预计未来3小时内秦淮区、鼓楼区降雨量将达50毫米以上，低洼路段可能出现内涝 &amp; 积水。
    </description>
    <instruction><![CDATA[<停止>户外作业，车辆绕行下穿通道。]]></instruction>
    <web>https://weather.example.cn/alerts/32010041600000_20270715080000</web>
    <contact>12121</contact>
    <parameter><valueName>预警颜色</valueName><value>橙色</value></parameter>
    <resource>
      <resourceDesc>雷达回波图</resourceDesc>
      <mimeType>image/png</mimeType>
      <size>20480</size>
      <uri>https://weather.example.cn/radar/20270715.png</uri>
    </resource>
    <area>
      <areaDesc>秦淮区、鼓楼区低洼易涝路段</areaDesc>
      <polygon>32.02,118.76 32.02,118.82 32.07,118.82 32.07,118.76 32.02,118.76</polygon>
      <circle>32.0456,118.7968 2.5</circle>
      <geocode><valueName>GB/T 2260</valueName><value>320104</value></geocode>
      <geocode><valueName>GB/T 2260</valueName><value>320106</value></geocode>
    </area>
  </info>
  <ext:signature><ext:note>skipped</ext:note></ext:signature>
</alert>
"#;

    const UPDATE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>32010041600000_20270715110000</identifier>
  <sender>weather.nanjing@example.cn</sender>
  <sent>2027-07-15T11:00:00+08:00</sent>
  <status>Actual</status>
  <msgType>Update</msgType>
  <scope>Public</scope>
  <references>weather.nanjing@example.cn,32010041600000_20270715080000,2027-07-15T08:00:00+08:00</references>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨</event>
    <urgency>Immediate</urgency>
    <severity>Extreme</severity>
    <certainty>Observed</certainty>
    <headline>南京市气象台将暴雨橙色预警信号升级为红色</headline>
    <area>
      <areaDesc>秦淮区</areaDesc>
      <circle>32.0456,118.7968 5</circle>
    </area>
  </info>
</alert>
"#;

    const CANCEL: &str = r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>32010041600000_20270715180000</identifier>
  <sender>weather.nanjing@example.cn</sender>
  <sent>2027-07-15T18:00:00+08:00</sent>
  <status>Actual</status>
  <msgType>Cancel</msgType>
  <scope>Public</scope>
  <references>
    weather.nanjing@example.cn,32010041600000_20270715080000,2027-07-15T08:00:00+08:00
    weather.nanjing@example.cn,32010041600000_20270715110000,2027-07-15T11:00:00+08:00
  </references>
</alert>"#;

    /// 2027-07-15T00:00:00Z in epoch milliseconds.
    const JULY_15_UTC: i64 = 1_815_609_600_000;

    #[test]
    fn reads_a_flood_alert() {
        let a = parse(FLOOD).unwrap();
        assert_eq!(a.identifier, "32010041600000_20270715080000");
        assert_eq!(a.sent, CapTime { epoch_ms: JULY_15_UTC, offset_minutes: 480 });
        assert_eq!((a.status, a.msg_type, a.scope), (Status::Actual, MsgType::Alert, Scope::Public));
        assert_eq!(a.source.as_deref(), Some("南京市气象台"));
        assert_eq!(a.codes, ["CN-12379"]);
        assert!(!a.is_update_or_cancel());
        assert!(a.references.is_empty());
        let [info] = &a.infos[..] else { panic!("one info expected, got {}", a.infos.len()) };
        assert_eq!(info.categories, [Category::Met, Category::Infra]);
        assert_eq!(info.event, "暴雨");
        assert_eq!(info.response_types, [ResponseType::Prepare, ResponseType::Avoid]);
        assert_eq!(
            (info.urgency, info.severity, info.certainty),
            (Urgency::Immediate, Severity::Severe, Certainty::Likely)
        );
        assert_eq!(info.event_codes, [NamedValue { value_name: "GB/T 27962".into(), value: "11B03".into() }]);
        assert_eq!(info.expires.unwrap().epoch_ms, JULY_15_UTC + 12 * 3_600_000);
        assert_eq!(
            info.description.as_deref(),
            Some("预计未来3小时内秦淮区、鼓楼区降雨量将达50毫米以上，低洼路段可能出现内涝 & 积水。")
        );
        assert_eq!(info.instruction.as_deref(), Some("<停止>户外作业，车辆绕行下穿通道。"));
        assert_eq!(info.parameters[0].value, "橙色");
        assert_eq!(info.resources[0].size, Some(20480));
        let area = &info.areas[0];
        assert_eq!(area.polygons[0].len(), 5);
        assert_eq!(area.polygons[0][2], GeoPoint { lat: 32.07, lon: 118.82 });
        assert_eq!(area.circles, [Circle { centre: GeoPoint { lat: 32.0456, lon: 118.7968 }, radius_km: 2.5 }]);
        assert_eq!(area.geocodes.iter().map(|g| g.value.as_str()).collect::<Vec<_>>(), ["320104", "320106"]);
    }

    #[test]
    fn update_and_cancel_name_the_original() {
        let original = parse(FLOOD).unwrap();
        let update = parse(UPDATE).unwrap();
        assert!(update.is_update_or_cancel());
        assert_eq!(update.references, [original.as_reference()]);
        assert_eq!(update.referenced_identifiers(), ["32010041600000_20270715080000"]);

        let cancel = parse(CANCEL).unwrap();
        assert!(cancel.is_update_or_cancel());
        assert!(cancel.infos.is_empty());
        assert_eq!(cancel.references, [original.as_reference(), update.as_reference()]);
    }

    #[test]
    fn round_trips() {
        for doc in [FLOOD, UPDATE, CANCEL] {
            let a = parse(doc).unwrap();
            let xml = to_xml(&a);
            assert!(xml.contains(r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">"#), "{xml}");
            assert_eq!(parse(&xml).unwrap(), a, "{xml}");
        }
    }

    #[test]
    fn round_trips_what_the_engine_builds() {
        let mut a = parse(FLOOD).unwrap();
        a.note = Some("a \"quoted\" <note> & 'more'\r\nsecond line".into());
        a.sent = CapTime::from_epoch_ms(JULY_15_UTC + 1_234, 0);
        a.scope = Scope::Restricted;
        a.restriction = Some("仅限城市运行管理中心".into());
        a.infos[0].areas[0].altitude = Some(0.0);
        a.infos[0].areas[0].ceiling = Some(1500.5);
        a.infos.push(Info { language: "en-US".into(), event: "Rainstorm".into(), ..a.infos[0].clone() });
        let xml = to_xml(&a);
        assert!(xml.contains("<sent>2027-07-15T00:00:01-00:00</sent>"), "{xml}");
        assert!(xml.contains("&lt;note&gt; &amp;"), "{xml}");
        assert_eq!(parse(&xml).unwrap(), a, "{xml}");
    }

    #[test]
    fn times() {
        let t = |s: &str| CapTime::parse(s);
        assert_eq!(t("1970-01-01T00:00:00-00:00"), Ok(CapTime { epoch_ms: 0, offset_minutes: 0 }));
        assert_eq!(t("1970-01-01T08:00:00+08:00").unwrap().epoch_ms, 0);
        assert_eq!(t("1969-12-31T19:30:00-04:30").unwrap().epoch_ms, 0);
        assert_eq!(t("2028-02-29T12:00:00+08:00").unwrap().to_string(), "2028-02-29T12:00:00+08:00");
        assert_eq!(t("2027-01-15T08:00:00+00:00").unwrap().to_string(), "2027-01-15T08:00:00-00:00");
        for bad in [
            "2027-02-29T12:00:00+08:00",
            "2027-07-15T24:00:00+08:00",
            "2027-07-15T08:00:00",
            "2027-07-15T08:00:00Z",
            "2027-07-15T08:00:00.5+08:00",
            "2027-7-15T08:00:00+08:00",
        ] {
            assert!(t(bad).is_err(), "{bad} was accepted");
        }
        for days in [-800_000, -1, 0, 1, 59, 10_957, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn areas_become_polygons() {
        let a = parse(FLOOD).unwrap();
        let area = &a.infos[0].areas[0];
        let shapes = area.to_geo_polygons();
        assert_eq!(shapes.len(), 2);
        // The given ring, as x = longitude, y = latitude.
        assert!(shapes[0].contains(&Point::new(118.79, 32.05)));
        assert!(!shapes[0].contains(&Point::new(118.79, 32.10)));
        // The circle: 32 corners on the circle, closed, around the centre.
        let centre = Point::new(118.7968, 32.0456);
        let ring = shapes[1].exterior();
        assert_eq!(ring.0.len(), CIRCLE_SEGMENTS + 1);
        assert!(ring.is_closed());
        for c in ring.coords() {
            let d = Haversine.distance(centre, Point::from(*c));
            assert!((d - 2500.0).abs() < 1.0, "corner {c:?} is {d} m from the centre");
        }
        assert!(shapes[1].contains(&centre));
        assert!(shapes.iter().all(|p| p.is_valid()));
    }

    /// Parse `doc`, which must fail at the line holding `at` (its first
    /// occurrence) with a message containing `expected`.
    #[track_caller]
    fn check_error(doc: &str, at: &str, expected: &str) {
        let line =
            doc.lines().position(|l| l.contains(at)).unwrap_or_else(|| panic!("`{at}` is not in the document")) + 1;
        match parse(doc) {
            Ok(_) => panic!("accepted; expected an error at line {line} containing `{expected}`"),
            Err(e) => {
                assert_eq!(e.line, line, "{e}");
                assert!(e.message.contains(expected), "`{e}` does not contain `{expected}`");
                assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
            }
        }
    }

    /// `FLOOD` with `from` (which must occur) replaced by `to`.
    fn flood_with(from: &str, to: &str) -> String {
        assert!(FLOOD.contains(from), "`{from}` is not in the flood alert");
        FLOOD.replacen(from, to, 1)
    }

    #[test]
    fn bad_documents() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // (replace, with, line marker, expected message part)
            (
                "<urgency>Immediate</urgency>",
                "<urgency>Soon</urgency>",
                "<urgency>",
                r#"<urgency> must be one of Immediate, Expected, Future, Past, Unknown, not "Soon""#,
            ),
            (
                "<category>Infra</category>",
                "<category>Flood</category>",
                "<category>Flood",
                "<category> must be one of Geo, Met,",
            ),
            (
                "<msgType>Alert</msgType>",
                "<msgType>Alarm</msgType>",
                "<msgType>",
                "<msgType> must be one of Alert, Update,",
            ),
            (
                "  <identifier>32010041600000_20270715080000</identifier>\n",
                "\n",
                "<alert xmlns",
                "expected <identifier> in <alert>",
            ),
            ("    <event>暴雨</event>\n", "\n", "<info>", "expected <event> in <info>"),
            ("<valueName>预警颜色</valueName>", "", "<parameter>", "expected <valueName> in <parameter>"),
            (
                "<sent>2027-07-15T08:00:00+08:00</sent>",
                "<sent>2027-07-15 08:00</sent>",
                "<sent>",
                "<sent> must be a date-time like 2027-01-15T08:00:00+08:00",
            ),
            (
                "<expires>2027-07-15T20:00:00+08:00</expires>",
                "<expires>2027-07-15T20:00:00Z</expires>",
                "<expires>",
                "never Z",
            ),
            (
                "<onset>2027-07-15T09:00:00+08:00</onset>",
                "<onset>2027-07-32T09:00:00+08:00</onset>",
                "<onset>",
                "has no such day",
            ),
            ("32.07,118.76 32.02,118.76</polygon>", "32.07,118.76</polygon>", "<polygon>", "must be closed"),
            (
                "32.02,118.76 32.02,118.82 32.07,118.82 32.07,118.76 32.02,118.76",
                "32.02,118.76 32.02,118.82 32.02,118.76",
                "<polygon>",
                "at least 4 points",
            ),
            (
                "32.02,118.82 32.07,118.82",
                "32.02,118.82 95.07,118.82",
                "<polygon>",
                "latitude 95.07 is outside -90..=90",
            ),
            ("32.07,118.82 32.07,118.76", "32.07,118.76 32.07,118.82", "<polygon>", "not a simple ring"),
            (
                "<circle>32.0456,118.7968 2.5</circle>",
                "<circle>32.0456,118.7968 0</circle>",
                "<circle>",
                "radius must be a number of kilometres above 0",
            ),
            (
                "<circle>32.0456,118.7968 2.5</circle>",
                "<circle>32.0456;118.7968 2.5</circle>",
                "<circle>",
                "\"latitude,longitude\"",
            ),
            (
                "<contact>12121</contact>",
                "<contact>12121</contact><contact>110</contact>",
                "<contact>",
                "<contact> may appear only once in <info>",
            ),
            ("<contact>12121</contact>", "<phone>12121</phone>", "<phone>", "unexpected <phone> in <info>"),
            ("<headline>南京市", "<headline><b>!</b>南京市", "<headline>", "expected text in <headline>, found <b>"),
            (
                "<scope>Public</scope>",
                "<scope>Private</scope>",
                "<alert xmlns",
                "expected <addresses> in <alert>, as <scope> is Private",
            ),
            (
                "<msgType>Alert</msgType>",
                "<msgType>Cancel</msgType>",
                "<alert xmlns",
                "expected <references> in <alert>, as <msgType> is Cancel",
            ),
            ("<size>20480</size>", "<size>20 KB</size>", "<size>", "<size> must be a whole number of bytes"),
            (
                "<sender>weather.nanjing@example.cn</sender>",
                "<sender>南京 气象台</sender>",
                "<sender>",
                "must not contain spaces",
            ),
            (
                "  <code>CN-12379</code>",
                "  oops <code>CN-12379</code>",
                "oops",
                "expected only elements in <alert>, found text",
            ),
            ("内涝 &amp; 积水", "内涝 &nbsp; 积水", "&nbsp;", "found &nbsp;"),
            (
                "urn:oasis:names:tc:emergency:cap:1.2",
                "urn:oasis:names:tc:emergency:cap:1.1",
                "<alert xmlns",
                "expected <alert> in namespace urn:oasis:names:tc:emergency:cap:1.2, found <alert> in namespace urn:oasis:names:tc:emergency:cap:1.1",
            ),
            (r#" xmlns="urn:oasis:names:tc:emergency:cap:1.2""#, "", "<alert", "found it in no namespace"),
            ("</description>", "</instruction>", "</instruction>", "not well-formed XML"),
            ("</alert>\n", "</alert>\n<alert/>\n", "<alert/>", "expected nothing after </alert>"),
        ];
        for (from, to, at, expected) in cases {
            check_error(&flood_with(from, to), at, expected);
        }
    }

    #[test]
    fn bad_references() {
        let doc = UPDATE.replace(",2027-07-15T08:00:00+08:00</references>", "</references>");
        check_error(&doc, "<references>", "sender,identifier,sent triples");
        let doc = UPDATE.replace(",2027-07-15T08:00:00+08:00</references>", ",yesterday</references>");
        check_error(&doc, "<references>", "sent must be a date-time");
    }

    #[test]
    fn not_xml_at_all() {
        check_error("{\"alert\": {\"identifier\": \"x\"}}", "{", "expected a CAP <alert>, found text");
        let e = parse("").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (1, "expected a CAP <alert>, found no element"));
        check_error(
            "<?xml version=\"1.0\"?>\n<feed xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"/>",
            "<feed",
            "expected <alert> as the root element",
        );
        check_error(
            "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\n  <identifier>x",
            "<identifier>",
            "<identifier> is never closed",
        );
        check_error("<!DOCTYPE alert [<!ENTITY e \"x\">]>\n<alert/>", "DOCTYPE", "no <!DOCTYPE>");
    }

    #[test]
    fn limits() {
        let deep = format!(
            "<alert xmlns=\"{NAMESPACE}\" xmlns:x=\"urn:x\">\n{}{}</alert>",
            "<x:a>".repeat(MAX_DEPTH),
            "</x:a>".repeat(MAX_DEPTH)
        );
        check_error(&deep, "<x:a>", "deeper than 16 levels");
        let big = FLOOD.replacen("  <code>", &format!("  <note>{}</note>\n  <code>", "雨".repeat(MAX_BYTES / 3)), 1);
        let e = parse(&big).unwrap_err();
        assert!(e.message.contains("at most 2097152 bytes"), "{e}");
    }
}
