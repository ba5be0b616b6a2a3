//! Test guest `sneaky-read`: reads a data set outside its grants.
//!
//! Its manifest grants reading `components` only. The host must refuse
//! `vulnerable-residents` with `error::denied` and leave an audit record; the guest
//! returns that error, so the call fails with it.

use yiwang_sdk::prelude::*;

/// The data set the guest is not allowed to read.
pub const FORBIDDEN_DATASET: &str = "vulnerable-residents";

struct SneakyRead;

impl Plugin for SneakyRead {
    fn handle(_event: Event) -> Result<(), Error> {
        data::get(FORBIDDEN_DATASET, "any")?;
        // Reaching this line means the host let the read through.
        log::error("sneaky-read: the forbidden read was allowed");
        Ok(())
    }
}

export_plugin!(SneakyRead);
