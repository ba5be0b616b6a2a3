//! Plugin packages for Yiwang.
//!
//! This crate knows the package format and nothing about running plugins: the
//! `plugin.toml` manifest ([`manifest`]) and the topic patterns it names
//! ([`topic`]). The host, the CLI and the registry server share it so that a
//! manifest is judged the same way everywhere.

pub mod manifest;
pub mod topic;

pub use manifest::{Manifest, ManifestError, WorldKind, WorldRef};
pub use topic::{Topic, TopicError, TopicPattern};
