//! Test guest `flood`: publishes as fast as it can.
//!
//! On each event it tries [`ATTEMPTS`] publishes to `flood.out`. The host must let
//! through no more than the manifest's `publish-per-second` and answer the rest with
//! `error::limit`, which the guest counts and otherwise ignores. Any other error ends
//! the call with that error.

use yiwang_sdk::prelude::*;

/// Publishes tried per event.
pub const ATTEMPTS: u32 = 100_000;

struct Flood;

impl Plugin for Flood {
    fn handle(event: Event) -> Result<(), Error> {
        let mut sent: u32 = 0;
        let mut limited: u32 = 0;
        for i in 0..ATTEMPTS {
            match bus::publish("flood.out", &json!({ "from": event.id, "i": i }), None) {
                Ok(_) => sent += 1,
                Err(Error::Limit(_)) => limited += 1,
                Err(other) => return Err(other),
            }
        }
        info!("flood: {sent} published, {limited} refused by the rate limit");
        Ok(())
    }
}

export_plugin!(Flood);
