//! The contract between the Yiwang host and its plugins, as Rust types.
//!
//! `yiwang.wit` beside this crate is the contract's interface: the functions a
//! plugin imports and exports. This crate holds what the WIT file cannot say and
//! what both sides must agree on, so that it is written once:
//!
//! - [`events`]: the payload of every topic the host publishes, typed, with the
//!   [`Payload`](events::Payload) trait mapping topics to payloads.
//! - [`topic`]: topics and the NATS-style patterns that match them.
//! - [`grants`]: what a plugin's `[grants]` allow, and the one decision (with the
//!   host's denial text) for each host call a grant guards.
//! - `manifest` (feature `manifest`): parsing and validating `plugin.toml`.
//!
//! It does no I/O apart from `Manifest::load`, which reads the one file it is
//! given, and depends on nothing that does. The crate's version is the WIT
//! package's version ([`WIT_VERSION`]): a change to either is a change to both.

#![deny(missing_docs)]

pub mod events;
pub mod grants;
#[cfg(feature = "manifest")]
pub mod manifest;
pub mod topic;

pub use grants::{CaseOp, DataAccess, DataTarget, Denial, Grants, MessageTarget, Recipient, WasiGrants};
pub use topic::{Topic, TopicError, TopicPattern};

/// The WIT package every plugin world lives in.
pub const WIT_PACKAGE: &str = "yiwang:gov";

/// The version of the WIT package in `yiwang.wit` (`package yiwang:gov@…;`).
pub const WIT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The manifest's file name inside a package folder.
pub const MANIFEST_FILE: &str = "plugin.toml";
/// The component's file name inside a package folder.
pub const COMPONENT_FILE: &str = "plugin.wasm";
/// The publisher's signature's file name inside a package folder.
pub const SIGNATURE_FILE: &str = "signature.toml";

#[cfg(test)]
mod tests {
    use super::*;

    /// The crate and the WIT file it describes carry one version.
    #[test]
    fn the_wit_package_line_names_this_version() {
        let wit = include_str!("../yiwang.wit");
        let line = wit
            .lines()
            .find(|l| l.starts_with("package "))
            .expect("yiwang.wit declares its package");
        assert_eq!(line, format!("package {WIT_PACKAGE}@{WIT_VERSION};"));
    }
}
