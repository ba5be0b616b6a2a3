//! The operator's trust policy: which publishers, with which keys, may ship
//! plugins for which departments.
//!
//! The policy lives in `trust.toml`:
//!
//! ```toml
//! # The core team may ship for any department.
//! [[publisher]]
//! name = "yiwang-core"
//! keys = ["ed25519:…"]
//! departments = ["*"]
//!
//! # A vendor only for what the operator admits.
//! [[publisher]]
//! name = "acme-vendor"
//! keys = ["ed25519:…", "ed25519:…"]   # e.g. during a key rotation
//! departments = ["chengguan"]
//! ```
//!
//! - `name`: the publisher, as it appears in signatures and in the manifest's
//!   `publisher` field. Each name appears once.
//! - `keys`: the public keys (`ed25519:<base64>`) admitted for the publisher.
//!   A package signed by any other key is refused, even if the signature is
//!   valid.
//! - `departments`: department codes the publisher may ship plugins for;
//!   `"*"` admits every department. An empty list admits none.
//!
//! Nothing is trusted by default: an empty or missing policy refuses every
//! package.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{self, PathError, at};
use crate::package::Package;
use crate::sign::{PublicKey, SignatureError};

/// The department wildcard in `departments`.
pub const ANY_DEPARTMENT: &str = "*";

/// One publisher the operator trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedPublisher {
    /// The publisher's name.
    pub name: String,
    /// The keys admitted for it.
    #[serde(default)]
    pub keys: Vec<PublicKey>,
    /// The departments it may ship for; `*` is any.
    #[serde(default)]
    pub departments: Vec<String>,
}

impl TrustedPublisher {
    /// Whether the publisher may ship plugins for `department`.
    pub fn admits_department(&self, department: &str) -> bool {
        self.departments.iter().any(|d| d == ANY_DEPARTMENT || d == department)
    }
}

/// The trust policy: the publishers the operator trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicy {
    /// The trusted publishers.
    #[serde(default, rename = "publisher")]
    pub publishers: Vec<TrustedPublisher>,
}

/// Who vouched for a package that passed [`TrustPolicy::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedBy {
    /// The publisher.
    pub publisher: String,
    /// The key that signed.
    pub key_id: String,
    /// The department the plugin belongs to.
    pub department: String,
}

/// Why a package is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The package carries no signature.
    #[error("plugin `{plugin}` {version} is not signed; only signed packages from trusted publishers are accepted")]
    Unsigned {
        /// The plugin.
        plugin: String,
        /// Its version.
        version: semver::Version,
    },
    /// The signature does not hold.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The signer is not in the policy.
    #[error("plugin `{plugin}`: publisher `{publisher}` is not trusted; trusted publishers: {}", list_or_none(.trusted))]
    UnknownPublisher {
        /// The plugin.
        plugin: String,
        /// The signing publisher.
        publisher: String,
        /// The publishers the policy names.
        trusted: Vec<String>,
    },
    /// The signing key is not one admitted for the publisher.
    #[error("plugin `{plugin}`: key {key_id} is not admitted for publisher `{publisher}`; admitted keys: {}", list_or_none(.admitted))]
    KeyNotAdmitted {
        /// The plugin.
        plugin: String,
        /// The publisher.
        publisher: String,
        /// The signing key's id.
        key_id: String,
        /// The ids of the keys admitted for the publisher.
        admitted: Vec<String>,
    },
    /// The manifest claims another publisher than the one who signed.
    #[error("plugin `{plugin}`: the manifest names publisher `{manifest}` but the package is signed by `{signer}`")]
    PublisherMismatch {
        /// The plugin.
        plugin: String,
        /// The manifest's `publisher` field.
        manifest: String,
        /// The signing publisher.
        signer: String,
    },
    /// The publisher may not ship for the plugin's department.
    #[error(
        "plugin `{plugin}`: publisher `{publisher}` is not admitted for department `{department}`; it is admitted for: {}",
        list_or_none(.admitted)
    )]
    DepartmentNotAdmitted {
        /// The plugin.
        plugin: String,
        /// The publisher.
        publisher: String,
        /// The manifest's department.
        department: String,
        /// The departments the publisher is admitted for.
        admitted: Vec<String>,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// A trust file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TrustFileError {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// The file is malformed.
    #[error("trust policy {}: {message}", .file.display())]
    Malformed {
        /// The trust file.
        file: PathBuf,
        /// What was wrong.
        message: String,
    },
}

const HEADER: &str = "\
# Yiwang trust policy: the publishers whose signed plugins this host accepts.
# Each [[publisher]] names the publisher, the public keys admitted for it
# (`ed25519:<base64>`), and the department codes it may ship plugins for
# (`*` = any department). Anything not listed here is refused.
";

impl TrustPolicy {
    /// Parse `trust.toml` text; `file` is used in errors only.
    pub fn parse(text: &str, file: &Path) -> Result<TrustPolicy, TrustFileError> {
        let bad = |message: String| TrustFileError::Malformed {
            file: file.to_owned(),
            message,
        };
        let policy: TrustPolicy = toml::from_str(text).map_err(|e| bad(e.to_string().trim().replace('\n', " ")))?;
        for (i, p) in policy.publishers.iter().enumerate() {
            if p.name.trim().is_empty() {
                return Err(bad(format!("publisher[{i}]: `name` must not be empty")));
            }
            if policy.publishers[..i].iter().any(|q| q.name == p.name) {
                return Err(bad(format!(
                    "publisher `{}` is listed twice; list its keys in one entry",
                    p.name
                )));
            }
            if let Some(d) = p
                .departments
                .iter()
                .find(|d| *d != ANY_DEPARTMENT && !crate::manifest::valid_name(d))
            {
                return Err(bad(format!(
                    "publisher `{}`: `{d}` is not a department code or `*`",
                    p.name
                )));
            }
        }
        Ok(policy)
    }

    /// Load `trust.toml`.
    pub fn load(path: &Path) -> Result<TrustPolicy, TrustFileError> {
        let text = std::fs::read_to_string(path).map_err(at(path))?;
        TrustPolicy::parse(&text, path)
    }

    /// Load `trust.toml`, or an empty policy (which trusts nobody) when the
    /// file does not exist yet.
    pub fn load_or_default(path: &Path) -> Result<TrustPolicy, TrustFileError> {
        match std::fs::read_to_string(path) {
            Ok(text) => TrustPolicy::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrustPolicy::default()),
            Err(e) => Err(PathError {
                path: path.to_owned(),
                source: e,
            }
            .into()),
        }
    }

    /// The policy as `trust.toml` text, with a header comment explaining it.
    pub fn to_toml(&self) -> String {
        // A policy of strings and lists of strings always serializes.
        let body = toml::to_string(self).unwrap_or_default();
        format!("{HEADER}\n{body}")
    }

    /// Save the policy to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), TrustFileError> {
        fsutil::write_atomic(path, self.to_toml().as_bytes(), 0o644)?;
        Ok(())
    }

    /// The entry for `publisher`, if trusted.
    pub fn publisher(&self, publisher: &str) -> Option<&TrustedPublisher> {
        self.publishers.iter().find(|p| p.name == publisher)
    }

    /// Admit `key` for `publisher` and let it ship for `departments` (`*` for
    /// any), adding to what the publisher already has.
    pub fn admit(&mut self, publisher: &str, key: PublicKey, departments: &[String]) {
        let index = match self.publishers.iter().position(|p| p.name == publisher) {
            Some(i) => i,
            None => {
                self.publishers.push(TrustedPublisher {
                    name: publisher.to_owned(),
                    keys: Vec::new(),
                    departments: Vec::new(),
                });
                self.publishers.len() - 1
            }
        };
        let entry = &mut self.publishers[index];
        if !entry.keys.contains(&key) {
            entry.keys.push(key);
        }
        for d in departments {
            if !entry.departments.contains(d) {
                entry.departments.push(d.clone());
            }
        }
    }

    /// Withdraw one key of a publisher; returns whether it was admitted.
    pub fn revoke_key(&mut self, publisher: &str, key: &PublicKey) -> bool {
        match self.publishers.iter_mut().find(|p| p.name == publisher) {
            Some(p) => {
                let before = p.keys.len();
                p.keys.retain(|k| k != key);
                p.keys.len() != before
            }
            None => false,
        }
    }

    /// Remove a publisher altogether; returns whether it was trusted.
    pub fn remove(&mut self, publisher: &str) -> bool {
        let before = self.publishers.len();
        self.publishers.retain(|p| p.name != publisher);
        self.publishers.len() != before
    }

    /// Decide whether `package` may be installed or loaded: it is signed, the
    /// signature holds for its content, the signer is a trusted publisher
    /// using an admitted key, the manifest names that publisher, and the
    /// publisher is admitted for the manifest's department.
    pub fn check(&self, package: &Package) -> Result<TrustedBy, TrustError> {
        let m = &package.manifest;
        let signature = package.signature.as_ref().ok_or_else(|| TrustError::Unsigned {
            plugin: m.name.clone(),
            version: m.version.clone(),
        })?;
        signature.verify(package)?;
        let publisher = self
            .publisher(&signature.publisher)
            .ok_or_else(|| TrustError::UnknownPublisher {
                plugin: m.name.clone(),
                publisher: signature.publisher.clone(),
                trusted: self.publishers.iter().map(|p| p.name.clone()).collect(),
            })?;
        if !publisher.keys.contains(&signature.public_key) {
            return Err(TrustError::KeyNotAdmitted {
                plugin: m.name.clone(),
                publisher: publisher.name.clone(),
                key_id: signature.key_id.clone(),
                admitted: publisher.keys.iter().map(PublicKey::key_id).collect(),
            });
        }
        if m.publisher != signature.publisher {
            return Err(TrustError::PublisherMismatch {
                plugin: m.name.clone(),
                manifest: m.publisher.clone(),
                signer: signature.publisher.clone(),
            });
        }
        if !publisher.admits_department(&m.department) {
            return Err(TrustError::DepartmentNotAdmitted {
                plugin: m.name.clone(),
                publisher: publisher.name.clone(),
                department: m.department.clone(),
                admitted: publisher.departments.clone(),
            });
        }
        Ok(TrustedBy {
            publisher: publisher.name.clone(),
            key_id: signature.key_id.clone(),
            department: m.department.clone(),
        })
    }
}
