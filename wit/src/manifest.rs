//! The `plugin.toml` manifest: who a plugin is, what it targets, what it may touch.
//!
//! Grants are deny-by-default: whatever the manifest does not name, the plugin
//! cannot reach. Parsing checks everything that can be checked without the host
//! (names, versions, topic patterns, limits); the host then checks the grants
//! against what exists (departments, data sets) when it loads the plugin.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use semver::Version;
use serde::Deserialize;

pub use crate::WIT_PACKAGE;
pub use crate::grants::{CaseOp, DataAccess, DataTarget, Grants, MessageTarget, WasiGrants, valid_name};
use crate::topic::{TopicError, TopicPattern};

/// The version of the WIT package this crate describes, [`WIT_VERSION`](crate::WIT_VERSION)
/// as a [`Version`]: what a host built with it implements.
pub const WIT_SEMVER: Version = Version::new(
    decimal(env!("CARGO_PKG_VERSION_MAJOR")),
    decimal(env!("CARGO_PKG_VERSION_MINOR")),
    decimal(env!("CARGO_PKG_VERSION_PATCH")),
);

/// A version part as Cargo gives it (decimal digits), at compile time.
const fn decimal(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut value = 0;
    let mut i = 0;
    while i < bytes.len() {
        value = value * 10 + (bytes[i] - b'0') as u64;
        i += 1;
    }
    value
}

/// A manifest that could not be accepted, naming the file and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: field `{field}`: {message}", .file.display(), .plugin.as_deref().map(|p| format!(" (plugin `{p}`)")).unwrap_or_default())]
pub struct ManifestError {
    /// The manifest file.
    pub file: PathBuf,
    /// The plugin's name, when it was readable.
    pub plugin: Option<String>,
    /// The dotted field path, e.g. `grants.publish[2]`.
    pub field: String,
    /// What was wrong.
    pub message: String,
}

/// Which world a plugin targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorldKind {
    /// Exports `handler`: reacts to events.
    EventHandler,
    /// Exports `model`: turns events into warnings.
    WarningModel,
    /// Exports both.
    DepartmentPlugin,
}

impl WorldKind {
    /// The world's WIT name.
    pub fn name(self) -> &'static str {
        match self {
            WorldKind::EventHandler => "event-handler",
            WorldKind::WarningModel => "warning-model",
            WorldKind::DepartmentPlugin => "department-plugin",
        }
    }

    /// Whether plugins of this world export `handler`.
    pub fn handles(self) -> bool {
        matches!(self, WorldKind::EventHandler | WorldKind::DepartmentPlugin)
    }

    /// Whether plugins of this world export `model`.
    pub fn models(self) -> bool {
        matches!(self, WorldKind::WarningModel | WorldKind::DepartmentPlugin)
    }

    const ALL: [WorldKind; 3] =
        [WorldKind::EventHandler, WorldKind::WarningModel, WorldKind::DepartmentPlugin];
}

/// A world reference such as `yiwang:gov/event-handler@0.2.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldRef {
    /// Which world.
    pub kind: WorldKind,
    /// The WIT package version the plugin was built against.
    pub version: Version,
}

impl WorldRef {
    /// Parse `yiwang:gov/<world>@<semver>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (path, version) = text
            .split_once('@')
            .ok_or_else(|| format!("`{text}` has no version; expected `{WIT_PACKAGE}/<world>@<semver>`"))?;
        let (package, world) = path
            .split_once('/')
            .ok_or_else(|| format!("`{text}` has no world; expected `{WIT_PACKAGE}/<world>@<semver>`"))?;
        if package != WIT_PACKAGE {
            return Err(format!("unknown WIT package `{package}`; plugins target `{WIT_PACKAGE}`"));
        }
        let kind = WorldKind::ALL.into_iter().find(|k| k.name() == world).ok_or_else(|| {
            format!(
                "unknown world `{world}`; known worlds: {}",
                WorldKind::ALL.map(|k| k.name()).join(", ")
            )
        })?;
        let version = Version::parse(version)
            .map_err(|e| format!("world version `{version}` is not semver: {e}"))?;
        Ok(WorldRef { kind, version })
    }

    /// Whether a host implementing `host` can run a plugin built against this version:
    /// the same major (for `0.x`, the same minor) and no newer than the host.
    pub fn compatible_with(&self, host: &Version) -> bool {
        let same_line = if host.major == 0 {
            self.version.major == 0 && self.version.minor == host.minor
        } else {
            self.version.major == host.major
        };
        same_line && self.version <= *host
    }
}

impl fmt::Display for WorldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{WIT_PACKAGE}/{}@{}", self.kind.name(), self.version)
    }
}

/// Resource limits of a plugin, checked on every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// CPU time per call, in milliseconds (epoch-based).
    pub cpu_ms: u64,
    /// Wall-clock time per call, in milliseconds.
    pub wall_ms: u64,
    /// Linear memory per instance, in MiB.
    pub memory_mib: u64,
    /// Events queued for the plugin before publishers wait.
    pub queue: usize,
    /// Events the plugin may publish per second (burst of the same size).
    pub publish_per_second: u32,
    /// Cases the plugin may open per minute (`cases.open-case`; burst of the same size).
    pub cases_per_minute: u32,
    /// Warnings the plugin may raise per minute: `cases.raise-warning`, the
    /// warnings its `evaluate` returns, and its updates and cancels of them
    /// (burst of the same size).
    pub warnings_per_minute: u32,
    /// Messages the plugin may send per minute (`messaging.send`; burst of the same size).
    pub messages_per_minute: u32,
}

impl Limits {
    /// The defaults: far above what a department plugin does at the intake's
    /// full speed, so that only a runaway plugin meets them.
    pub const DEFAULT: Limits = Limits {
        cpu_ms: 100,
        wall_ms: 1000,
        memory_mib: 64,
        queue: 1024,
        publish_per_second: 1000,
        cases_per_minute: 6000,
        warnings_per_minute: 6000,
        messages_per_minute: 120_000,
    };

    /// The largest value of a rate limit (`publish-per-second`, `*-per-minute`).
    pub const MAX_RATE: u32 = 1_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A parsed and validated `plugin.toml`.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Unique plugin name, `[a-z0-9-]{1,64}`.
    pub name: String,
    /// The plugin's own version.
    pub version: Version,
    /// Owning department code.
    pub department: String,
    /// Who published it.
    pub publisher: String,
    /// The world it targets.
    pub world: WorldRef,
    /// A one-line description.
    pub description: String,
    /// Topics it receives.
    pub subscribe: Vec<TopicPattern>,
    /// What it may do.
    pub grants: Grants,
    /// What it may use.
    pub limits: Limits,
    /// Its configuration, every value as text.
    pub config: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    department: String,
    publisher: String,
    world: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    grants: RawGrants,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    config: toml::Table,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawGrants {
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    data_read: Vec<String>,
    #[serde(default)]
    data_write: Vec<String>,
    #[serde(default)]
    cases: Vec<String>,
    #[serde(default)]
    message: Vec<String>,
    #[serde(default)]
    identity: bool,
    #[serde(default)]
    wasi: RawWasi,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWasi {
    #[serde(default)]
    stdio: bool,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    network: bool,
    #[serde(default)]
    filesystem: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLimits {
    cpu_ms: Option<u64>,
    wall_ms: Option<u64>,
    memory_mib: Option<u64>,
    queue: Option<usize>,
    publish_per_second: Option<u32>,
    cases_per_minute: Option<u32>,
    warnings_per_minute: Option<u32>,
    messages_per_minute: Option<u32>,
}

struct Checker<'a> {
    file: &'a Path,
    plugin: Option<String>,
}

impl Checker<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> ManifestError {
        ManifestError {
            file: self.file.to_owned(),
            plugin: self.plugin.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn patterns(&self, field: &str, items: &[String]) -> Result<Vec<TopicPattern>, ManifestError> {
        items
            .iter()
            .enumerate()
            .map(|(i, t)| {
                TopicPattern::parse(t).map_err(|e: TopicError| self.err(format!("{field}[{i}]"), e.to_string()))
            })
            .collect()
    }

    fn data(&self, field: &str, items: &[String], access: DataAccess) -> Result<Vec<DataTarget>, ManifestError> {
        items
            .iter()
            .enumerate()
            .map(|(i, t)| DataTarget::parse(t, access).map_err(|m| self.err(format!("{field}[{i}]"), m)))
            .collect()
    }

    fn limit<T: PartialOrd + Copy + fmt::Display>(
        &self,
        field: &str,
        value: Option<T>,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, ManifestError> {
        let v = value.unwrap_or(default);
        if v < min || v > max {
            return Err(self.err(format!("limits.{field}"), format!("{v} is outside {min}..={max}")));
        }
        Ok(v)
    }
}

impl Manifest {
    /// Read and validate a manifest file.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            file: path.to_owned(),
            plugin: None,
            field: "-".into(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Whether the host delivers events on `topic` to this plugin: one of its
    /// `subscribe` patterns matches it.
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscribe.iter().any(|p| p.matches(topic))
    }

    /// Validate manifest text; `file` is used in error messages only.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ManifestError> {
        let mut c = Checker { file, plugin: None };
        // Syntax first, then the schema: a manifest that is valid TOML but has a
        // wrong field still gets its plugin named in the error.
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            c.err("-", e.to_string().trim().replace('\n', " "))
        })?;
        c.plugin = table.get("name").and_then(|n| n.as_str()).map(str::to_owned);
        let raw: RawManifest = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().to_string().lines().next().unwrap_or_default().to_owned();
            // At the top level a missing field's name is only in the message.
            let field = if path == "." {
                message.split('`').nth(1).unwrap_or("-").to_owned()
            } else {
                path
            };
            c.err(field, message)
        })?;
        if !valid_name(&raw.name) {
            return Err(c.err("name", format!("`{}` must be 1-64 characters of a-z, 0-9, `-`, `_`", raw.name)));
        }
        c.plugin = Some(raw.name.clone());
        let version = Version::parse(&raw.version)
            .map_err(|e| c.err("version", format!("`{}` is not a semver version: {e}", raw.version)))?;
        if !valid_name(&raw.department) {
            return Err(c.err("department", format!("`{}` is not a department code", raw.department)));
        }
        if raw.publisher.trim().is_empty() {
            return Err(c.err("publisher", "must not be empty"));
        }
        let world = WorldRef::parse(&raw.world).map_err(|m| c.err("world", m))?;
        let subscribe = c.patterns("subscribe", &raw.subscribe)?;

        let g = raw.grants;
        let cases = g
            .cases
            .iter()
            .enumerate()
            .map(|(i, op)| CaseOp::parse(op).map_err(|m| c.err(format!("grants.cases[{i}]"), m)))
            .collect::<Result<_, _>>()?;
        let message = g
            .message
            .iter()
            .enumerate()
            .map(|(i, m)| MessageTarget::parse(m).map_err(|e| c.err(format!("grants.message[{i}]"), e)))
            .collect::<Result<_, _>>()?;
        let grants = Grants {
            publish: c.patterns("grants.publish", &g.publish)?,
            data_read: c.data("grants.data-read", &g.data_read, DataAccess::Read)?,
            data_write: c.data("grants.data-write", &g.data_write, DataAccess::Write)?,
            cases,
            message,
            identity: g.identity,
            wasi: WasiGrants {
                stdio: g.wasi.stdio,
                env: g.wasi.env,
                network: g.wasi.network,
                filesystem: g.wasi.filesystem,
            },
        };

        let l = raw.limits;
        let d = Limits::DEFAULT;
        let rate = |field: &str, value: Option<u32>, default: u32| c.limit(field, value, default, 0, Limits::MAX_RATE);
        let cpu_ms = c.limit("cpu-ms", l.cpu_ms, d.cpu_ms, 1, 60_000)?;
        let limits = Limits {
            cpu_ms,
            wall_ms: c.limit("wall-ms", l.wall_ms, d.wall_ms.max(cpu_ms), cpu_ms, 300_000)?,
            memory_mib: c.limit("memory-mib", l.memory_mib, d.memory_mib, 1, 4096)?,
            queue: c.limit("queue", l.queue, d.queue, 1, 1_000_000)?,
            publish_per_second: rate("publish-per-second", l.publish_per_second, d.publish_per_second)?,
            cases_per_minute: rate("cases-per-minute", l.cases_per_minute, d.cases_per_minute)?,
            warnings_per_minute: rate("warnings-per-minute", l.warnings_per_minute, d.warnings_per_minute)?,
            messages_per_minute: rate("messages-per-minute", l.messages_per_minute, d.messages_per_minute)?,
        };

        let mut config = BTreeMap::new();
        for (key, value) in raw.config {
            let text = match value {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            config.insert(key, text);
        }

        Ok(Manifest {
            name: raw.name,
            version,
            department: raw.department,
            publisher: raw.publisher,
            world,
            description: raw.description,
            subscribe,
            grants,
            limits,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "yingji"
version = "1.2.3"
department = "yingji"
publisher = "yiwang-core"
world = "yiwang:gov/warning-model@0.2.0"
subscribe = ["iot.reading.>"]

[grants]
publish = ["warning.*"]
data-read = ["components", "iot:water-level"]
cases = ["open", "warn", "route"]
message = ["department:yingji", "role:*/leader"]

[limits]
memory-mib = 32

[config]
threshold = 3.5
unit = "m"
"#;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("plugins/x/plugin.toml"))
    }

    #[test]
    fn good_manifest_parses() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.name, "yingji");
        assert_eq!(m.world.kind, WorldKind::WarningModel);
        assert_eq!(m.limits.memory_mib, 32);
        assert_eq!(m.limits.cpu_ms, 100);
        assert_eq!(m.config["threshold"], "3.5");
        assert_eq!(m.config["unit"], "m");
        assert_eq!(m.grants.data_read[1], DataTarget::SensorKind("water-level".into()));
        assert_eq!(m.grants.cases, [CaseOp::Open, CaseOp::Warn, CaseOp::Route]);
        assert_eq!(CaseOp::Route.name(), "route");
        assert_eq!(
            m.grants.message[1],
            MessageTarget::Role { org_unit: None, role: Some("leader".into()) }
        );
        assert_eq!(m.grants.message[1].to_string(), "role:*/leader");
    }

    /// Each bad manifest names its field; the message says what was wrong.
    #[test]
    fn bad_manifests_name_the_field() {
        let cases = [
            (r#"version = "1.2""#, "version", "not a semver"),
            (r#"world = "yiwang:gov/teapot@0.2.0""#, "world", "unknown world `teapot`"),
            (r#"world = "other:pkg/event-handler@0.2.0""#, "world", "unknown WIT package"),
            (r#"world = "yiwang:gov/event-handler@x""#, "world", "not semver"),
            (r#"subscribe = ["iot..x"]"#, "subscribe[0]", "empty segment"),
            (r#"name = "Bad Name""#, "name", "must be 1-64"),
        ];
        for (line, field, message) in cases {
            let key = line.split(' ').next().unwrap();
            let text: String = GOOD
                .lines()
                .map(|l| if l.starts_with(&format!("{key} =")) { line } else { l })
                .collect::<Vec<_>>()
                .join("\n");
            let err = parse(&text).unwrap_err();
            assert_eq!(err.field, field, "{line}: {err}");
            assert!(err.message.contains(message), "{line}: {err}");
            assert!(err.to_string().contains("plugins/x/plugin.toml"), "{err}");
        }
    }

    #[test]
    fn bad_grants_and_limits_name_the_field() {
        for (from, to, field) in [
            (r#"cases = ["open", "warn", "route"]"#, r#"cases = ["open", "fly"]"#, "grants.cases[1]"),
            (r#"publish = ["warning.*"]"#, r#"publish = ["warning.>.x"]"#, "grants.publish[0]"),
            (r#"memory-mib = 32"#, r#"memory-mib = 0"#, "limits.memory-mib"),
            (r#"message = ["department:yingji", "role:*/leader"]"#, r#"message = ["pager:1"]"#, "grants.message[0]"),
            (r#"data-read = ["components", "iot:water-level"]"#, r#"data-read = ["Bad Set"]"#, "grants.data-read[0]"),
        ] {
            let err = parse(&GOOD.replace(from, to)).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert_eq!(err.plugin.as_deref(), Some("yingji"));
        }
        let err = parse(&GOOD.replace("[limits]", "[limits]\nturbo = true")).unwrap_err();
        assert!(err.message.contains("turbo"), "{err}");
    }

    /// The rate limits: defaults when absent, the value given when in range, and
    /// an error naming the key and the range otherwise (0 is allowed: none at all).
    #[test]
    fn rate_limits_parse_and_bad_ones_name_the_key() {
        let m = parse(GOOD).unwrap();
        assert_eq!(
            (m.limits.cases_per_minute, m.limits.warnings_per_minute, m.limits.messages_per_minute),
            (6000, 6000, 120_000)
        );
        assert_eq!(m.limits.publish_per_second, 1000);
        let lowered = "[limits]\ncases-per-minute = 5\nwarnings-per-minute = 0\nmessages-per-minute = 7";
        let m = parse(&GOOD.replace("[limits]", lowered)).unwrap();
        assert_eq!((m.limits.cases_per_minute, m.limits.warnings_per_minute, m.limits.messages_per_minute), (5, 0, 7));
        assert_eq!(m.limits.memory_mib, 32, "the other limits are kept");
        for (line, field, message) in [
            ("cases-per-minute = 1000001", "limits.cases-per-minute", "1000001 is outside 0..=1000000"),
            ("warnings-per-minute = 2000000", "limits.warnings-per-minute", "outside 0..=1000000"),
            ("messages-per-minute = 1000001", "limits.messages-per-minute", "outside 0..=1000000"),
            ("publish-per-second = 1000001", "limits.publish-per-second", "outside 0..=1000000"),
        ] {
            let err = parse(&GOOD.replace("[limits]", &format!("[limits]\n{line}"))).unwrap_err();
            assert_eq!(err.field, field, "{line}: {err}");
            assert!(err.message.contains(message), "{line}: {err}");
            assert!(err.to_string().contains(field), "the message names the key: {err}");
        }
        for line in ["cases-per-minute = -1", "messages-per-minute = \"many\"", "warnings-per-minute = 1.5"] {
            let err = parse(&GOOD.replace("[limits]", &format!("[limits]\n{line}"))).unwrap_err();
            let key = line.split(' ').next().unwrap();
            assert_eq!(err.field, format!("limits.{key}"), "{line}: {err}");
        }
        let err = parse(&GOOD.replace("[limits]", "[limits]\ncases-per-second = 5")).unwrap_err();
        assert!(err.message.contains("cases-per-second"), "an unknown key is named: {err}");
    }

    #[test]
    fn world_compatibility() {
        let w = WorldRef::parse("yiwang:gov/event-handler@0.2.0").unwrap();
        assert!(w.compatible_with(&Version::new(0, 2, 0)));
        assert!(w.compatible_with(&Version::new(0, 2, 5)));
        assert!(!w.compatible_with(&Version::new(0, 3, 0)));
        let newer = WorldRef::parse("yiwang:gov/event-handler@0.2.3").unwrap();
        assert!(!newer.compatible_with(&Version::new(0, 2, 2)));
        let older = WorldRef::parse("yiwang:gov/event-handler@0.1.0").unwrap();
        assert!(!older.compatible_with(&WIT_SEMVER), "0.1 plugins do not run on a 0.2 host");
        assert_eq!(WIT_SEMVER.to_string(), crate::WIT_VERSION);
    }

    #[test]
    fn subscriptions_match_topics() {
        let m = parse(GOOD).unwrap();
        assert!(m.subscribes_to("iot.reading.water-level"));
        assert!(!m.subscribes_to("case.reported"));
    }
}
