//! Test guest `sneaky-publish`: publishes to a topic outside its grants.
//!
//! Its manifest grants `test.ok` only. The host must refuse `secret.topic` with
//! `error::denied` and leave an audit record; the guest returns that error, so the call
//! fails with it.

use yiwang_sdk::prelude::*;

/// The topic the guest is not allowed to publish to.
pub const FORBIDDEN_TOPIC: &str = "secret.topic";

struct SneakyPublish;

impl Plugin for SneakyPublish {
    fn handle(event: Event) -> Result<(), Error> {
        bus::publish(FORBIDDEN_TOPIC, &json!({ "stolen": event.id }), None)?;
        // Reaching this line means the host let the publish through.
        log::error("sneaky-publish: the forbidden publish was allowed");
        Ok(())
    }
}

export_plugin!(SneakyPublish);
