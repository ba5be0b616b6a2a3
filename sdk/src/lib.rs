//! The SDK for Yiwang plugins (一网统管插件开发包).
//!
//! A plugin is a Rust crate built as a WebAssembly component for `wasm32-wasip2`. It
//! depends on this crate only: the WIT bindings, the export glue and the host services
//! are all reached through it.
//!
//! ```
//! use yiwang_sdk::prelude::*;
//!
//! struct Echo;
//!
//! impl Plugin for Echo {
//!     fn handle(event: Event) -> Result<(), Error> {
//!         info!("echoing {}", event.id);
//!         bus::publish("test.ok", &json!({ "echo": event.id }), event.location)?;
//!         Ok(())
//!     }
//! }
//!
//! export_plugin!(Echo);
//! ```
//!
//! Every component built with this SDK targets the `department-plugin` world: it exports
//! `lifecycle`, `handler` and `model`. A plugin overrides the [`Plugin`] methods it needs;
//! the others keep their defaults (ignore the event, raise no warning). The `world` field
//! of `plugin.toml` says which role the plugin plays, and the host checks it. A plugin
//! that plays one role may say so in its type instead: implement [`EventHandler`] and
//! export it with [`export_handler!`], or [`WarningModel`] with [`export_model!`].
//!
//! Host calls reach the host only inside it. Compiled natively, for unit tests with
//! plain `cargo test`, they go to the [`mock`] host installed on the test's thread,
//! which answers like the host (grants included) and records every call for the
//! test to check:
//!
//! ```
//! use yiwang_sdk::mock::MockHost;
//! use yiwang_sdk::prelude::*;
//! # struct Echo;
//! # impl Plugin for Echo {
//! #     fn handle(event: Event) -> Result<(), Error> {
//! #         bus::publish("test.ok", &json!({ "echo": event.id }), event.location)?;
//! #         Ok(())
//! #     }
//! # }
//!
//! let host = MockHost::new().grant_publish(["test.ok"]).install();
//! Echo::handle(Event::test("test.in", json!({})).with_id("e1"))?;
//! assert_eq!(host.published()[0].payload, json!({ "echo": "e1" }));
//! # Ok::<(), Error>(())
//! ```
//!
//! With no mock installed, the host services answer [`Error::Unavailable`], the
//! logging functions print to standard error and the configuration is empty. The mock
//! needs no feature and no extra dependency: a plugin's own `#[cfg(test)]` tests and
//! its `tests/` folder use it as they are. It is not compiled for `wasm32`.
//!
//! With the `build` feature (and without the default `guest` feature), the `build`
//! module compiles guest crates into components from a build script.
#![deny(missing_docs)]

#[cfg(feature = "guest")]
mod error;
#[cfg(feature = "guest")]
mod plugin;
#[cfg(feature = "guest")]
mod sys;
#[cfg(feature = "guest")]
mod types;

#[cfg(feature = "guest")]
pub mod bus;
#[cfg(feature = "guest")]
pub mod cases;
#[cfg(feature = "guest")]
pub mod config;
#[cfg(feature = "guest")]
pub mod data;
#[cfg(feature = "guest")]
pub mod identity;
#[cfg(feature = "guest")]
pub mod log;
#[cfg(feature = "guest")]
pub mod messaging;
#[cfg(all(feature = "guest", not(target_arch = "wasm32")))]
pub mod mock;

#[cfg(feature = "build")]
pub mod build;

#[cfg(feature = "guest")]
pub use error::Error;
#[cfg(feature = "guest")]
pub use plugin::{AsHandler, AsModel, EventHandler, Plugin, WarningModel};
#[cfg(feature = "guest")]
pub use types::{
    Area, AreaShape, CaseDraft, Certainty, Circle, Event, GeoPoint, Severity, SourceChannel,
    Timestamp, Urgency, Warning, WarningCategory,
};

/// The payload of every topic the host publishes, typed: read one with
/// [`Event::payload`], e.g. `event.payload::<events::CaseReported>()`.
#[cfg(feature = "guest")]
pub use yiwang_wit::events;
/// The WIT package and version this SDK's bindings were generated from.
#[cfg(feature = "guest")]
pub use yiwang_wit::{WIT_PACKAGE, WIT_VERSION};

/// Re-exported so a plugin can derive `Serialize`/`Deserialize` without its own
/// dependency: `#[derive(Deserialize)] #[serde(crate = "yiwang_sdk::serde")]`.
#[cfg(feature = "guest")]
pub use serde;
/// Re-exported for payloads: [`serde_json::json!`], [`serde_json::Value`].
#[cfg(feature = "guest")]
pub use serde_json;

/// Everything a plugin needs, in one import: `use yiwang_sdk::prelude::*;`.
#[cfg(feature = "guest")]
pub mod prelude {
    pub use crate::messaging::Recipient;
    pub use crate::serde::{Deserialize, Serialize};
    pub use crate::serde_json::json;
    pub use crate::{
        Area, AreaShape, CaseDraft, Certainty, Circle, Error, Event, GeoPoint, Plugin, Severity,
        SourceChannel, Timestamp, Urgency, Warning, WarningCategory, export_plugin,
        EventHandler, WarningModel, export_handler, export_model,
    };
    pub use crate::{bus, cases, config, data, identity, log, messaging};
    pub use crate::{debug, error, info, trace, warn};
}

/// Plumbing used by [`export_plugin!`]. Not part of the API: it changes without notice.
#[doc(hidden)]
#[cfg(feature = "guest")]
pub mod __private {
    pub use crate::plugin::{Adapter, assert_plugin};

    /// The one `wit_bindgen::generate!` of the SDK, over the `department-plugin` world.
    #[allow(missing_docs, unsafe_code, unused_unsafe, clippy::all)]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "department-plugin",
            // `export_plugin!` expands this macro inside the plugin crate.
            pub_export_macro: true,
            export_macro_name: "__export_department_plugin",
            default_bindings_module: "yiwang_sdk::__private::bindings",
            // The SDK's own error type, so that it has a readable `Display`.
            with: {
                "yiwang:gov/types@0.2.1/error": crate::Error,
            },
            additional_derives: [PartialEq],
            generate_all,
        });
    }
}

#[cfg(all(test, feature = "guest"))]
mod tests {
    /// The SDK's major and minor version are the WIT package's it binds to.
    #[test]
    fn the_sdk_version_follows_the_wit_version() {
        let line = |v: &'static str| v.rsplit_once('.').map(|(line, _)| line);
        assert_eq!(line(env!("CARGO_PKG_VERSION")), line(crate::WIT_VERSION));
    }
}
