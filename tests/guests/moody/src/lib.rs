//! Test guest `moody`: every `test.mood` event `{"n": <number>}` is answered on
//! `test.ok` with `{"echo": <event id>, "n": <number>}`; an event with
//! `"fail": true` traps the instance instead (a poison event), so a test can
//! quarantine the plugin, fill its backlog, and check that every event came
//! through once and in order.

use yiwang_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
struct Mood {
    #[serde(default)]
    n: u64,
    #[serde(default)]
    fail: bool,
}

struct Moody;

impl Plugin for Moody {
    fn handle(event: Event) -> Result<(), Error> {
        let mood: Mood = event.payload_json()?;
        if mood.fail {
            panic!("moody: asked to fail on event {}", event.id);
        }
        bus::publish("test.ok", &json!({ "echo": event.id, "n": mood.n }), None)?;
        Ok(())
    }
}

export_plugin!(Moody);
