//! Test guest `reader` (department `police`): on `test.read` with
//! `{"dataset", "key"}` it reads that record, then queries the data set, and
//! publishes `{"dataset", "outcome", "value", "count"}` on `test.read.result`:
//! `found`, `missing`, or the error the host answered (`denied: …`).
//!
//! Its grants name `hazmat-routes` (shared with `police`) and
//! `vulnerable-residents` (private to `zongzhi`): the grant lets the call reach
//! the host, and the data set's sharing level still refuses the private one.

use yiwang_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
struct Ask {
    dataset: String,
    key: String,
}

struct Reader;

impl Plugin for Reader {
    fn handle(event: Event) -> Result<(), Error> {
        let ask: Ask = event.payload_json()?;
        let (outcome, value, count) = match data::get(&ask.dataset, &ask.key) {
            Ok(Some(record)) => {
                let count = data::query(&ask.dataset, &[], 0, 100)?.len();
                ("found".to_owned(), Some(record.value), count)
            }
            Ok(None) => ("missing".to_owned(), None, 0),
            Err(Error::Denied(why)) => (format!("denied: {why}"), None, 0),
            Err(other) => return Err(other),
        };
        let result = json!({ "dataset": ask.dataset, "outcome": outcome, "value": value, "count": count });
        bus::publish("test.read.result", &result, None)?;
        Ok(())
    }
}

export_plugin!(Reader);
