//! Test guest `good`: a well-behaved handler.
//!
//! Every event on `test.in` is answered on `test.ok` with `{"echo": <event id>}`, so a
//! test can check that an event went in, was handled once, and came back out.

use yiwang_sdk::prelude::*;

struct Good;

impl Plugin for Good {
    fn handle(event: Event) -> Result<(), Error> {
        bus::publish("test.ok", &json!({ "echo": event.id }), event.location)?;
        Ok(())
    }
}

export_plugin!(Good);
