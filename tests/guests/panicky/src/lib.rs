//! Test guest `panicky`: a handler that panics on every event.
//!
//! Guests are built with `panic = "abort"`, so the panic traps the instance. The host
//! must throw the instance away, count the failure, and quarantine the plugin when the
//! failures repeat.

use yiwang_sdk::prelude::*;

/// The panic message, for tests that look for it in the host's log.
pub const PANIC_MESSAGE: &str = "panicky: this guest panics on every event";

struct Panicky;

impl Plugin for Panicky {
    fn handle(event: Event) -> Result<(), Error> {
        panic!("{PANIC_MESSAGE} (event {})", event.id);
    }
}

export_plugin!(Panicky);
