//! Plugin packages for Yiwang.
//!
//! This crate knows the package format and how packages travel, and nothing
//! about running plugins. The host, the CLI and the registry server share it
//! so that a package is judged the same way everywhere.
//!
//! - [`manifest`]: the `plugin.toml` manifest; [`topic`]: topics and patterns
//!   (both from `yiwang-wit`, the contract crate, re-exported here unchanged).
//! - [`package`]: the package folder, its content digest, `.ywpkg` archives.
//! - [`sign`](mod@sign): publisher keys and ed25519 signatures over the content digest.
//! - [`trust`]: the operator's `trust.toml`: publishers, keys, departments.
//! - [`index`]: index entries, plugin specs (`name@^1.2`) and resolution.
//! - [`store`]: [`DirRegistry`], a registry in a plain directory.
//! - [`server`]: the registry's HTTP API; [`client`]: [`HttpRegistry`] and
//!   [`Registry`], which treats directories and URLs alike.
//! - [`install`](mod@install): installing into a plugins folder, with history and rollback.
//!
//! The library prints nothing; every failure is a typed error whose message
//! names the file, archive entry, plugin, version or publisher concerned.

#![deny(missing_docs)]
// The errors carry the digests and versions they name (two sha256 digests are
// 64 bytes); they are returned on the cold paths of I/O-bound operations, so
// their size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod client;
mod fsutil;
pub mod index;
pub mod install;
pub use yiwang_wit::manifest;
pub mod package;
pub mod server;
pub mod sign;
pub mod store;
pub use yiwang_wit::topic;
pub mod trust;

pub use client::{HttpRegistry, Registry};
pub use fsutil::PathError;
pub use index::{GrantsSummary, Index, IndexEntry, PluginSpec, RegistryError};
pub use install::{InstallError, Installed, InstalledPlugin, activate, install, install_archive, installed, rollback};
pub use manifest::{Manifest, ManifestError, WorldKind, WorldRef};
pub use package::{Digest, PackInfo, Package, PackageError, content_digest, pack, read_folder, unpack};
pub use sign::{KeyError, KeyPair, PublicKey, PublisherKey, Signature, SignatureError, sign, sign_archive};
pub use store::DirRegistry;
pub use topic::{Topic, TopicError, TopicPattern};
pub use trust::{TrustError, TrustFileError, TrustPolicy, TrustedBy, TrustedPublisher};
