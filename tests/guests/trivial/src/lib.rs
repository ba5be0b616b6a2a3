//! Test guest `trivial`: a handler that does nothing.
//!
//! It measures what the host itself costs per event: dispatch, instance reuse, the call
//! across the component boundary and back.

use yiwang_sdk::prelude::*;

struct Trivial;

impl Plugin for Trivial {
    fn handle(_event: Event) -> Result<(), Error> {
        Ok(())
    }
}

export_plugin!(Trivial);
