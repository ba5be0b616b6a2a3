//! Test guest `reviser`: a warning's chain, driven by events.
//!
//! An event `{"op": "raise"}` raises a warning; `{"op": "update", "id", "severity"}`
//! updates warning `id` with that severity (`minor`, `moderate`, `severe`,
//! `extreme`); `{"op": "cancel", "id", "reason"}` cancels it. Each answers on
//! `test.revised` with `{"by": <principal>, "id": <new id>}` or
//! `{"by": <principal>, "error": <message>}`.

use yiwang_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
struct Ask {
    op: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    reason: String,
}

fn warning(severity: Severity) -> Warning {
    let at = GeoPoint { lat: 32.05, lon: 118.79 };
    Warning {
        category: WarningCategory::Env,
        event: "垃圾满溢".into(),
        urgency: Urgency::Expected,
        severity,
        certainty: Certainty::Likely,
        area: Area::circle("中山路 88 号周边", at, 0.3),
        headline: format!("垃圾满溢预警（{severity:?}）"),
        description: "垃圾桶满溢。".into(),
        instruction: "请安排清运。".into(),
        parameters: vec![("bin".into(), "b-1".into())],
    }
}

fn severity(name: &str) -> Result<Severity, Error> {
    Ok(match name {
        "minor" => Severity::Minor,
        "moderate" => Severity::Moderate,
        "severe" => Severity::Severe,
        "extreme" => Severity::Extreme,
        other => return Err(Error::Invalid(format!("severity: unknown `{other}`"))),
    })
}

struct Reviser;

impl Plugin for Reviser {
    fn handle(event: Event) -> Result<(), Error> {
        let ask: Ask = serde_json_from(&event.payload)?;
        let result = match ask.op.as_str() {
            "raise" => cases::raise_warning(&warning(Severity::Moderate)),
            "update" => severity(&ask.severity).and_then(|s| cases::update_warning(&ask.id, &warning(s))),
            "cancel" => cases::cancel_warning(&ask.id, &ask.reason),
            other => Err(Error::Invalid(format!("op: unknown `{other}`"))),
        };
        let by = identity::whoami().id;
        let answer = match result {
            Ok(id) => json!({ "by": by, "id": id }),
            Err(e) => json!({ "by": by, "error": e.to_string() }),
        };
        bus::publish("test.revised", &answer, None)?;
        Ok(())
    }
}

fn serde_json_from(text: &str) -> Result<Ask, Error> {
    yiwang_sdk::serde_json::from_str(text).map_err(|e| Error::Invalid(e.to_string()))
}

export_plugin!(Reviser);
