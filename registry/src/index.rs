//! The registry index: what is known about each published version, plugin
//! specs such as `hotline12345@^1.2`, and semver resolution over the index.
//!
//! A registry keeps one index document per plugin, `index/<name>.json`:
//!
//! ```json
//! {
//!   "name": "hotline12345",
//!   "versions": [
//!     {
//!       "name": "hotline12345",
//!       "version": "1.2.0",
//!       "archive": "sha256:…",
//!       "archive_size": 48213,
//!       "digest": "sha256:…",
//!       "publisher": "yiwang-core",
//!       "key_id": "3f9c0a1b2c3d4e5f",
//!       "department": "hotline12345",
//!       "world": "yiwang:gov/event-handler@0.2.0",
//!       "description": "…",
//!       "subscribe": ["report.>"],
//!       "grants": { "publish": [], "data_read": [], "data_write": [], "cases": ["open"],
//!                   "message": [], "identity": false, "wasi": [] },
//!       "published_at_ms": 1767225600000,
//!       "yanked": false
//!     }
//!   ]
//! }
//! ```
//!
//! `archive` is the sha256 of the `.ywpkg` file (its blob name); `digest` is
//! the signed content digest.

use std::fmt;

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::fsutil::PathError;
use crate::manifest::valid_name;
use crate::package::{Digest, Package, PackageError};
use crate::sign::SignatureError;

/// A summary of a manifest's grants, for reviewing a version before install.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantsSummary {
    /// Topic patterns it may publish to.
    pub publish: Vec<String>,
    /// Data it may read.
    pub data_read: Vec<String>,
    /// Data sets it may write.
    pub data_write: Vec<String>,
    /// Case operations.
    pub cases: Vec<String>,
    /// Whom it may message.
    pub message: Vec<String>,
    /// Whether it may list users by role.
    pub identity: bool,
    /// WASI capabilities granted: `stdio`, `env`, `network`, `filesystem`.
    pub wasi: Vec<String>,
}

/// One published version of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The plugin.
    pub name: String,
    /// The version.
    pub version: Version,
    /// The sha256 of the archive (the blob's name).
    pub archive: Digest,
    /// The archive's size in bytes.
    pub archive_size: u64,
    /// The signed content digest.
    pub digest: Digest,
    /// The signing publisher.
    pub publisher: String,
    /// The signing key's id.
    pub key_id: String,
    /// The owning department.
    pub department: String,
    /// The world targeted, e.g. `yiwang:gov/event-handler@0.2.0`.
    pub world: String,
    /// The manifest's one-line description.
    #[serde(default)]
    pub description: String,
    /// Topics it subscribes to.
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// What it may do.
    #[serde(default)]
    pub grants: GrantsSummary,
    /// When it was published, in milliseconds since the Unix epoch.
    pub published_at_ms: u64,
    /// Whether it was withdrawn from resolution.
    #[serde(default)]
    pub yanked: bool,
}

impl IndexEntry {
    /// The index entry for a signed package and its archive; `None` when the
    /// package is unsigned (a registry never lists unsigned packages).
    pub fn for_package(package: &Package, archive: &[u8], published_at_ms: u64) -> Option<IndexEntry> {
        let signature = package.signature.as_ref()?;
        let m = &package.manifest;
        let g = &m.grants;
        let mut wasi = Vec::new();
        for (on, name) in [
            (g.wasi.stdio, "stdio"),
            (!g.wasi.env.is_empty(), "env"),
            (g.wasi.network, "network"),
            (g.wasi.filesystem, "filesystem"),
        ] {
            if on {
                wasi.push(name.to_owned());
            }
        }
        Some(IndexEntry {
            name: m.name.clone(),
            version: m.version.clone(),
            archive: Digest::of(archive),
            archive_size: archive.len() as u64,
            digest: package.digest,
            publisher: signature.publisher.clone(),
            key_id: signature.key_id.clone(),
            department: m.department.clone(),
            world: m.world.to_string(),
            description: m.description.clone(),
            subscribe: m.subscribe.iter().map(ToString::to_string).collect(),
            grants: GrantsSummary {
                publish: g.publish.iter().map(ToString::to_string).collect(),
                data_read: g.data_read.iter().map(ToString::to_string).collect(),
                data_write: g.data_write.iter().map(ToString::to_string).collect(),
                cases: g.cases.iter().map(|c| c.name().to_owned()).collect(),
                message: g.message.iter().map(ToString::to_string).collect(),
                identity: g.identity,
                wasi,
            },
            published_at_ms,
            yanked: false,
        })
    }
}

/// The index document of one plugin: all its published versions, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// The plugin.
    pub name: String,
    /// Its versions, sorted by version.
    pub versions: Vec<IndexEntry>,
}

/// A plugin and the versions wanted: `name`, `name@1.2.3` (exactly that
/// version), or `name@<requirement>` with any semver requirement (`^1.2`,
/// `~1.2`, `>=1.0, <2`, `=1.3.0-rc.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// The plugin.
    pub name: String,
    /// The versions wanted; `None` is the newest release.
    pub req: Option<VersionReq>,
}

impl PluginSpec {
    /// Parse `name[@requirement]`. A bare version (`1.2.3`) means exactly it.
    pub fn parse(text: &str) -> Result<PluginSpec, RegistryError> {
        let bad = |message: String| RegistryError::InvalidSpec {
            spec: text.to_owned(),
            message,
        };
        let (name, req) = match text.split_once('@') {
            Some((name, req)) => (name.trim(), Some(req.trim())),
            None => (text.trim(), None),
        };
        if !valid_name(name) {
            return Err(bad(format!("`{name}` is not a plugin name")));
        }
        let req = match req {
            None => None,
            Some("") => return Err(bad("nothing after `@`; expected a version or requirement".into())),
            Some(r) => Some(if let Ok(v) = Version::parse(r) {
                VersionReq::parse(&format!("={v}")).map_err(|e| bad(e.to_string()))?
            } else {
                VersionReq::parse(r).map_err(|e| bad(format!("`{r}` is not a version requirement: {e}")))?
            }),
        };
        Ok(PluginSpec {
            name: name.to_owned(),
            req,
        })
    }

    /// A spec for exactly `version`.
    pub fn exact(name: &str, version: &Version) -> PluginSpec {
        let req = VersionReq {
            comparators: vec![semver::Comparator {
                op: semver::Op::Exact,
                major: version.major,
                minor: Some(version.minor),
                patch: Some(version.patch),
                pre: version.pre.clone(),
            }],
        };
        PluginSpec {
            name: name.to_owned(),
            req: Some(req),
        }
    }

    /// Whether `version` is wanted. Pre-releases match only a requirement that
    /// names a pre-release of the same major.minor.patch (semver's rule); a
    /// spec without requirement wants releases only.
    pub fn matches(&self, version: &Version) -> bool {
        match &self.req {
            Some(req) => req.matches(version),
            None => version.pre.is_empty(),
        }
    }

    /// The newest wanted, non-yanked version in `versions`.
    pub fn select<'a>(&self, versions: &'a [IndexEntry]) -> Result<&'a IndexEntry, RegistryError> {
        if versions.is_empty() {
            return Err(RegistryError::UnknownPlugin {
                plugin: self.name.clone(),
            });
        }
        versions
            .iter()
            .filter(|e| !e.yanked && self.matches(&e.version))
            .max_by(|a, b| a.version.cmp(&b.version))
            .ok_or_else(|| RegistryError::NoMatch {
                plugin: self.name.clone(),
                req: self.req_text(),
                known: versions
                    .iter()
                    .map(|e| {
                        if e.yanked {
                            format!("{} (yanked)", e.version)
                        } else {
                            e.version.to_string()
                        }
                    })
                    .collect(),
            })
    }

    fn req_text(&self) -> String {
        match &self.req {
            Some(r) => r.to_string(),
            None => "the newest release".into(),
        }
    }
}

impl fmt::Display for PluginSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.req {
            Some(r) => write!(f, "{}@{r}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl std::str::FromStr for PluginSpec {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        PluginSpec::parse(text)
    }
}

/// A registry operation that failed, whichever the registry's kind.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The package itself was refused.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// A published package must be signed.
    #[error("plugin `{plugin}` {version} is not signed; a registry accepts signed packages only")]
    Unsigned {
        /// The plugin.
        plugin: String,
        /// Its version.
        version: Version,
    },
    /// The package's signature does not hold.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The version is already published with other content.
    #[error(
        "plugin `{plugin}` {version} is already published with content {existing}; this package has {new}. Publish a new version instead"
    )]
    VersionConflict {
        /// The plugin.
        plugin: String,
        /// The version.
        version: Version,
        /// The content digest already published.
        existing: Digest,
        /// The content digest offered.
        new: Digest,
    },
    /// No such plugin in the registry.
    #[error("plugin `{plugin}` is not in the registry")]
    UnknownPlugin {
        /// The plugin.
        plugin: String,
    },
    /// No published version is wanted by the spec.
    #[error("no version of `{plugin}` matches `{req}`; known: {}", if .known.is_empty() { "none".to_owned() } else { .known.join(", ") })]
    NoMatch {
        /// The plugin.
        plugin: String,
        /// The requirement.
        req: String,
        /// The versions known, with `(yanked)` marks.
        known: Vec<String>,
    },
    /// The exact version is not published.
    #[error("plugin `{plugin}` has no version {version}")]
    UnknownVersion {
        /// The plugin.
        plugin: String,
        /// The version.
        version: Version,
    },
    /// A plugin spec could not be parsed.
    #[error("plugin spec `{spec}`: {message}")]
    InvalidSpec {
        /// The spec as given.
        spec: String,
        /// What was wrong.
        message: String,
    },
    /// A name is not a valid plugin name (and so cannot be looked up).
    #[error("`{0}` is not a plugin name")]
    InvalidName(String),
    /// An archive blob is missing.
    #[error("blob {0} is missing from the registry")]
    BlobMissing(Digest),
    /// An archive's bytes do not hash to its name.
    #[error("blob {expected} is corrupt: its content hashes to {actual}")]
    BlobCorrupt {
        /// The digest asked for.
        expected: Digest,
        /// The digest of what was read.
        actual: Digest,
    },
    /// The registry's files could not be read or written.
    #[error(transparent)]
    Io(#[from] PathError),
    /// An index document is unreadable.
    #[error("index {file}: {message}")]
    IndexCorrupt {
        /// The index file or URL.
        file: String,
        /// What was wrong.
        message: String,
    },
    /// A registry location could not be understood.
    #[error("registry location `{location}`: {message}")]
    Location {
        /// The location as given.
        location: String,
        /// What was wrong.
        message: String,
    },
    /// Publishing needs a token the caller lacks or got wrong.
    #[error("publishing to this registry needs a valid bearer token")]
    Unauthorized,
    /// An HTTP request failed (connection, protocol).
    #[error("registry request {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The HTTP registry answered with an error.
    #[error("registry {url} answered {status}: {message}")]
    Remote {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's `error` message.
        message: String,
    },
}
