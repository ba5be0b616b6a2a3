//! Test guest `greedy`: runs into its rate limits in one call.
//!
//! A `test.greedy` event `{"cases": n, "warnings": n, "messages": n, "returned": n}`
//! makes `handle` try to open `cases` cases, raise `warnings` warnings and send
//! `messages` messages, and `evaluate` return `returned` warnings. `handle`
//! answers on `greedy.result` with, for each kind, how many calls succeeded,
//! how many got `error::limit`, and the first other error; the host decides
//! what becomes of the returned warnings.

use yiwang_sdk::prelude::*;
use yiwang_sdk::serde_json;

#[derive(Deserialize, Default)]
#[serde(crate = "yiwang_sdk::serde", default)]
struct Ask {
    cases: u32,
    warnings: u32,
    messages: u32,
    returned: u32,
}

fn ask(event: &Event) -> Result<Ask, Error> {
    serde_json::from_str(&event.payload).map_err(|e| Error::Invalid(e.to_string()))
}

/// How `n` tries of one call went.
fn tally(n: u32, mut call: impl FnMut(u32) -> Result<String, Error>) -> serde_json::Value {
    let (mut ok, mut limited, mut other) = (0u32, 0u32, None::<String>);
    for i in 0..n {
        match call(i) {
            Ok(_) => ok += 1,
            Err(Error::Limit(_)) => limited += 1,
            Err(e) => {
                other.get_or_insert(e.to_string());
            }
        }
    }
    json!({ "ok": ok, "limited": limited, "other": other })
}

fn warning(i: u32) -> Warning {
    let at = GeoPoint { lat: 32.05 + f64::from(i) * 1e-4, lon: 118.79 };
    Warning {
        category: WarningCategory::Env,
        event: "垃圾满溢".into(),
        urgency: Urgency::Expected,
        severity: Severity::Minor,
        certainty: Certainty::Likely,
        area: Area::circle(format!("测试点 {i}"), at, 0.2),
        headline: format!("测试预警 {i}"),
        description: String::new(),
        instruction: String::new(),
        parameters: vec![("i".into(), i.to_string())],
    }
}

struct Greedy;

impl Plugin for Greedy {
    fn handle(event: Event) -> Result<(), Error> {
        let a = ask(&event)?;
        let cases = tally(a.cases, |i| {
            cases::open_case(&CaseDraft {
                category_code: "020101".into(),
                title: format!("测试案件 {i}"),
                description: format!("测试案件 {i}：暴露垃圾"),
                location: Some(GeoPoint { lat: 32.0 + f64::from(i) * 1e-3, lon: 118.7 }),
                channel: SourceChannel::Department,
                evidence: Vec::new(),
            })
        });
        let warnings = tally(a.warnings, |i| cases::raise_warning(&warning(i)));
        let messages = tally(a.messages, |i| {
            messaging::send(&Recipient::Department("chengguan".into()), &format!("测试消息 {i}"), "测试")
        });
        let answer = json!({ "event": event.id, "cases": cases, "warnings": warnings, "messages": messages });
        bus::publish("greedy.result", &answer, None)?;
        Ok(())
    }

    fn evaluate(event: Event) -> Result<Vec<Warning>, Error> {
        Ok((0..ask(&event)?.returned).map(|i| warning(1000 + i)).collect())
    }
}

export_plugin!(Greedy);
