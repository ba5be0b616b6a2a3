//! Test guest `filer`: the plugin path into cases, driven by events.
//!
//! - `test.file` `{"channel", "category", "title", "evidence": [digest, …]}`
//!   (with the event's location) opens a case on that channel;
//! - `test.evidence` `{"case", "digest"}` adds a stored blob to a case as evidence.
//!
//! Each answers on `test.filed` with `{"case": id}` or `{"error": message}`, so a
//! test can check what the host made of a plugin's channel and evidence.

use yiwang_sdk::prelude::*;

#[derive(Deserialize)]
struct File {
    channel: String,
    category: String,
    title: String,
    #[serde(default)]
    evidence: Vec<String>,
}

#[derive(Deserialize)]
struct AddEvidence {
    case: String,
    digest: String,
}

fn channel(name: &str) -> Result<SourceChannel, Error> {
    Ok(match name {
        "hotline" => SourceChannel::Hotline,
        "snapshot" => SourceChannel::Snapshot,
        "patrol" => SourceChannel::Patrol,
        "department" => SourceChannel::Department,
        "warning" => SourceChannel::Warning,
        "cap-alert" => SourceChannel::CapAlert,
        other => return Err(Error::Invalid(format!("channel: unknown `{other}`"))),
    })
}

fn answer(result: Result<String, Error>) -> Result<(), Error> {
    let body = match result {
        Ok(case) => json!({ "case": case }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    bus::publish("test.filed", &body, None)?;
    Ok(())
}

struct Filer;

impl Plugin for Filer {
    fn handle(event: Event) -> Result<(), Error> {
        match event.topic.as_str() {
            "test.file" => {
                let f: File = serde_json::from_str(&event.payload).map_err(|e| Error::Invalid(e.to_string()))?;
                let opened = channel(&f.channel).and_then(|channel| {
                    cases::open_case(&CaseDraft {
                        category_code: f.category,
                        title: f.title.clone(),
                        description: f.title,
                        location: event.location,
                        channel,
                        evidence: f.evidence,
                    })
                });
                answer(opened)
            }
            "test.evidence" => {
                let a: AddEvidence = serde_json::from_str(&event.payload).map_err(|e| Error::Invalid(e.to_string()))?;
                answer(cases::add_evidence(&a.case, &a.digest).map(|()| a.case))
            }
            _ => Ok(()),
        }
    }
}

export_plugin!(Filer);
