//! `yiwang plugin new`, `build` and `test`: from nothing to a component that
//! ran inside the real host.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use yiwang::app::{App, Options};
use yiwang::bus::Event;
use yiwang::runtime::{COMPONENT_FILE, HOST_WIT_VERSION, MANIFEST_FILE};
use yiwang_registry::{Manifest, TopicPattern};

/// What `yiwang plugin new` scaffolds.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Kind {
    /// An event handler: reacts to events (world `event-handler`).
    Handler,
    /// A warning model: turns readings into CAP-aligned warnings (world `warning-model`).
    Model,
}

/// The sources of the SDK and the contract crate this binary was built with,
/// embedded by `build.rs`, and the workspace's lockfile.
mod vendored {
    include!(concat!(env!("OUT_DIR"), "/vendored.rs"));
}

/// Where `plugin new` puts the SDK and the contract crate inside a new plugin
/// crate, relative to it: one folder per WIT version, holding `sdk/` and `wit/`
/// side by side as in the Yiwang workspace, so the SDK's `generate!` finds
/// `../wit` and its path dependency on the contract crate resolves.
fn vendored_dir() -> PathBuf {
    Path::new(".yiwang").join(format!("yiwang-gov-{HOST_WIT_VERSION}"))
}

/// Writes the embedded SDK and contract crate under `folder`; returns the SDK's
/// path relative to `folder`.
fn write_vendored(folder: &Path) -> anyhow::Result<PathBuf> {
    let dir = vendored_dir();
    for (path, bytes) in vendored::VENDORED {
        let target = folder.join(&dir).join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, bytes).with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(dir.join("sdk"))
}

const HANDLER_LIB: &str = r#"//! __NAME__: an event handler for department `__DEPARTMENT__`.
//!
//! Every report taken in (`case.reported`) in a category this plugin watches is
//! answered with a note on its case and an event on `__NAME__.seen`.

use yiwang_sdk::events::CaseReported;
use yiwang_sdk::prelude::*;

pub struct Plugin__TYPE__;

impl Plugin for Plugin__TYPE__ {
    fn init() -> Result<(), Error> {
        // Refuse to start without a usable configuration.
        watched().map(|_| ())
    }

    fn handle(event: Event) -> Result<(), Error> {
        let reported: CaseReported = event.payload()?;
        if !watched()?.iter().any(|prefix| reported.category_code.starts_with(prefix.as_str())) {
            return Ok(());
        }
        cases::add_note(&reported.case, "__NAME__: 已收到，正在核实")?;
        bus::publish("__NAME__.seen", &json!({ "case": reported.case }), event.location)?;
        info!("noted case {}", reported.case);
        Ok(())
    }
}

/// The category code prefixes this plugin watches (`categories` in `[config]`).
fn watched() -> Result<Vec<String>, Error> {
    let list = config::get("categories").ok_or_else(|| Error::Invalid("config key `categories` is missing".into()))?;
    Ok(list.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

export_plugin!(Plugin__TYPE__);

#[cfg(test)]
mod tests {
    use super::*;
    use yiwang_sdk::mock::MockHost;

    /// A `case.reported` event as the host publishes it.
    fn reported(case: &str, category_code: &str) -> Event {
        let payload = json!({
            "case": case, "report": "r-1", "ticket": "T-1", "channel": "snapshot", "category_code": category_code,
            "area": null, "title": "路灯不亮", "description": "路灯不亮", "address": null, "caller": null,
        });
        Event::test("case.reported", payload)
    }

    #[test]
    fn a_watched_report_gets_a_note_and_an_event() {
        let host = MockHost::new().manifest("plugin.toml").unwrap().case("case-7").install();
        Plugin__TYPE__::init().unwrap();
        Plugin__TYPE__::handle(reported("case-7", "010101")).unwrap();
        assert_eq!(host.notes().len(), 1);
        assert_eq!(host.published()[0].topic, "__NAME__.seen");
    }

    #[test]
    fn other_categories_are_left_alone() {
        let host = MockHost::new().manifest("plugin.toml").unwrap().install();
        Plugin__TYPE__::handle(reported("case-8", "029999")).unwrap();
        assert!(host.published().is_empty());
    }
}
"#;

const MODEL_LIB: &str = r#"//! __NAME__: a warning model for department `__DEPARTMENT__`.
//!
//! A reading above `warn-level` (in `[config]`) raises a moderate warning
//! around the sensor; above `danger-level`, a severe one. Readings in another
//! unit, or outside the plausible range, are skipped with a logged reason.

use yiwang_sdk::events::Reading;
use yiwang_sdk::prelude::*;

pub struct Plugin__TYPE__;

impl Plugin for Plugin__TYPE__ {
    fn init() -> Result<(), Error> {
        Limits::from_config().map(|_| ())
    }

    fn evaluate(event: Event) -> Result<Vec<Warning>, Error> {
        let limits = Limits::from_config()?;
        let reading: Reading = event.payload()?;
        let Some(at) = event.location else {
            warn!("reading of {} has no location: skipped", reading.sensor);
            return Ok(vec![]);
        };
        if reading.unit != limits.unit || !reading.value.is_finite() || reading.value < -5.0 || reading.value > 60.0 {
            warn!("reading {} {} of {} is not plausible: skipped", reading.value, reading.unit, reading.sensor);
            return Ok(vec![]);
        }
        let severity = if reading.value >= limits.danger {
            Severity::Severe
        } else if reading.value >= limits.warn {
            Severity::Moderate
        } else {
            return Ok(vec![]);
        };
        Ok(vec![Warning {
            category: WarningCategory::Met,
            event: "积水预警".into(),
            severity,
            urgency: Urgency::Expected,
            certainty: Certainty::Observed,
            headline: format!("{} 水位 {:.2} {}", reading.sensor, reading.value, reading.unit),
            description: format!("水位 {:.2} {}，超过 {:.2}", reading.value, reading.unit, limits.warn),
            instruction: "请组织巡查和排涝，低洼路段绕行。".into(),
            area: Area::circle(format!("{} 周边 {} 公里", reading.sensor, limits.radius_km), at, limits.radius_km),
            parameters: vec![("sensor".into(), reading.sensor.clone()), ("value".into(), reading.value.to_string())],
        }])
    }
}

/// The model's parameters, from `[config]`.
struct Limits {
    unit: String,
    warn: f64,
    danger: f64,
    radius_km: f64,
}

impl Limits {
    fn from_config() -> Result<Limits, Error> {
        let limits = Limits {
            unit: config::get("unit").unwrap_or_else(|| "m".into()),
            warn: config::get_parsed("warn-level")?,
            danger: config::get_parsed("danger-level")?,
            radius_km: config::get_parsed("radius-km")?,
        };
        if !(limits.warn < limits.danger && limits.radius_km > 0.0) {
            return Err(Error::Invalid("config: warn-level must be below danger-level, radius-km positive".into()));
        }
        Ok(limits)
    }
}

export_plugin!(Plugin__TYPE__);

#[cfg(test)]
mod tests {
    use super::*;
    use yiwang_sdk::mock::MockHost;

    fn reading(value: f64, unit: &str) -> Event {
        Event::test("iot.reading.water-level", json!({ "sensor": "wl-1", "value": value, "unit": unit }))
            .with_location(GeoPoint { lat: 32.05, lon: 118.79 })
    }

    #[test]
    fn levels_raise_warnings_of_their_severity() {
        let _host = MockHost::new().manifest("plugin.toml").unwrap().install();
        Plugin__TYPE__::init().unwrap();
        assert!(Plugin__TYPE__::evaluate(reading(1.0, "m")).unwrap().is_empty());
        assert_eq!(Plugin__TYPE__::evaluate(reading(3.2, "m")).unwrap()[0].severity, Severity::Moderate);
        assert_eq!(Plugin__TYPE__::evaluate(reading(4.5, "m")).unwrap()[0].severity, Severity::Severe);
    }

    #[test]
    fn readings_in_other_units_or_implausible_are_skipped() {
        let host = MockHost::new().manifest("plugin.toml").unwrap().install();
        assert!(Plugin__TYPE__::evaluate(reading(450.0, "cm")).unwrap().is_empty());
        assert!(Plugin__TYPE__::evaluate(reading(999.0, "m")).unwrap().is_empty());
        assert_eq!(host.logs().len(), 2);
    }
}
"#;

fn manifest(name: &str, department: &str, publisher: &str, kind: Kind) -> String {
    let v = HOST_WIT_VERSION;
    match kind {
        Kind::Handler => format!(
            r#"name = "{name}"
version = "0.1.0"
department = "{department}"
publisher = "{publisher}"
world = "yiwang:gov/event-handler@{v}"
description = "Notes the reports of the watched categories and announces them."
subscribe = ["case.reported"]

[grants]
publish = ["{name}.seen"]
cases = ["note"]

[config]
# Category code prefixes to watch, comma-separated (0101: 公用设施).
categories = "0101"
"#
        ),
        Kind::Model => format!(
            r#"name = "{name}"
version = "0.1.0"
department = "{department}"
publisher = "{publisher}"
world = "yiwang:gov/warning-model@{v}"
description = "Water-level warnings: moderate above warn-level, severe above danger-level."
subscribe = ["iot.reading.water-level"]

[grants]

[config]
unit = "m"
warn-level = 3.0
danger-level = 4.0
radius-km = 1.0
"#
        ),
    }
}

fn sample_events(kind: Kind) -> &'static str {
    match kind {
        Kind::Handler => concat!(
            r#"{"topic": "case.reported", "payload": {"case": "sample-1", "report": "r-1", "ticket": "T-1", "channel": "snapshot", "category_code": "010101", "area": null, "title": "路灯不亮", "description": "路灯不亮", "address": null, "caller": null}}"#,
            "\n",
            r#"{"topic": "case.reported", "payload": {"case": "sample-2", "report": "r-2", "ticket": "T-2", "channel": "snapshot", "category_code": "020101", "area": null, "title": "乱堆物料", "description": "乱堆物料", "address": null, "caller": null}}"#,
            "\n"
        ),
        Kind::Model => concat!(
            r#"{"topic": "iot.reading.water-level", "payload": {"sensor": "wl-1", "value": 1.2, "unit": "m"}, "location": {"lat": 32.05, "lon": 118.79}}"#,
            "\n",
            r#"{"topic": "iot.reading.water-level", "payload": {"sensor": "wl-1", "value": 3.4, "unit": "m"}, "location": {"lat": 32.05, "lon": 118.79}}"#,
            "\n",
            r#"{"topic": "iot.reading.water-level", "payload": {"sensor": "wl-1", "value": 420, "unit": "cm"}, "location": {"lat": 32.05, "lon": 118.79}}"#,
            "\n"
        ),
    }
}

/// `yiwang plugin new`.
pub fn new(name: &str, kind: Kind, department: &str, publisher: &str, dir: &Path, sdk: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::ensure!(yiwang_registry::manifest::valid_name(name), "`{name}` is not a valid plugin name: use [a-z0-9-_], at most 64");
    // `--sdk PATH` builds against an SDK checkout (its developers' case); by
    // default the crate gets its own copy of the SDK this binary was built with.
    let sdk = match sdk {
        Some(sdk) => {
            let sdk = sdk.canonicalize().with_context(|| format!("--sdk {}", sdk.display()))?;
            anyhow::ensure!(sdk.join("Cargo.toml").exists(), "{} holds no Cargo.toml: not the SDK", sdk.display());
            Some(sdk)
        }
        None => None,
    };
    let folder = dir.join(name);
    anyhow::ensure!(!folder.exists(), "{} exists already", folder.display());
    std::fs::create_dir_all(folder.join("src"))?;
    let type_name: String = name
        .split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    let lib = match kind {
        Kind::Handler => HANDLER_LIB,
        Kind::Model => MODEL_LIB,
    };
    let lib = lib.replace("Plugin__TYPE__", &type_name).replace("__NAME__", name).replace("__DEPARTMENT__", department);
    let sdk_path = match &sdk {
        Some(sdk) => sdk.clone(),
        None => write_vendored(&folder)?,
    };
    // A path inside the crate is written with `/`, so the manifest reads the same everywhere.
    let sdk_path = sdk_path.to_string_lossy().replace('\\', "/");
    let cargo = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# A `cdylib` is the component for wasm32-wasip2; the `rlib` runs the unit tests natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
{sdk_comment}yiwang-sdk = {{ path = "{sdk_path}" }}

[profile.release]
opt-level = "s"
strip = true
codegen-units = 1
panic = "abort"

# A crate of its own, even when created inside another workspace.
[workspace]
"#,
        sdk_comment = match sdk {
            Some(_) => String::new(),
            None => format!(
                "# The SDK for WIT package {}@{HOST_WIT_VERSION}: a copy `yiwang plugin new` wrote\n\
                 # into `.yiwang/`, which belongs to this crate (keep it under version control).\n",
                yiwang_registry::manifest::WIT_PACKAGE
            ),
        },
    );
    std::fs::write(folder.join("Cargo.toml"), cargo)?;
    std::fs::write(folder.join(MANIFEST_FILE), manifest(name, department, publisher, kind))?;
    std::fs::write(folder.join("src/lib.rs"), lib)?;
    std::fs::write(folder.join("events.jsonl"), sample_events(kind))?;
    // The SDK's copy is part of the crate's source: never ignored, even by a
    // global ignore file that skips dot-folders.
    std::fs::write(folder.join(".gitignore"), "/target\n/plugin.wasm\n*.ywpkg\n!/.yiwang/\n")?;
    // The lockfile of the SDK's own workspace (or of the checkout `--sdk` names),
    // so the plugin builds with the versions the SDK was tested with.
    match sdk.as_ref().and_then(|s| s.parent()).map(|p| p.join("Cargo.lock")) {
        Some(lock) if lock.exists() => {
            std::fs::copy(lock, folder.join("Cargo.lock"))?;
        }
        Some(_) => {}
        None => std::fs::write(folder.join("Cargo.lock"), vendored::LOCKFILE)?,
    }
    println!("created {} ({:?}, department `{department}`, publisher `{publisher}`)", folder.display(), kind);
    println!("next:");
    println!("  cd {} && cargo test          # unit tests against the SDK's mock host", folder.display());
    println!("  yiwang plugin build          # the component, plugin.wasm");
    println!("  yiwang plugin test --events events.jsonl   # run it inside the real host");
    Ok(())
}

/// `yiwang plugin build`: the component for `wasm32-wasip2`, as `plugin.wasm`.
pub fn build(folder: &Path, profile: &str) -> anyhow::Result<PathBuf> {
    let manifest = Manifest::load(&folder.join(MANIFEST_FILE))?;
    anyhow::ensure!(
        manifest.world.compatible_with(&HOST_WIT_VERSION),
        "{}: the manifest targets {} but this host implements {}@{HOST_WIT_VERSION}",
        folder.join(MANIFEST_FILE).display(),
        manifest.world,
        yiwang_registry::manifest::WIT_PACKAGE
    );
    let bar = indicatif::ProgressBar::new_spinner()
        .with_style(indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"))
        .with_message(format!("cargo build --target wasm32-wasip2 --profile {profile}"));
    bar.enable_steady_tick(Duration::from_millis(100));
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--lib", "--target", "wasm32-wasip2", "--profile", profile, "--message-format", "json-render-diagnostics"])
        .current_dir(folder)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run cargo (install Rust and `rustup target add wasm32-wasip2`)")?;
    bar.finish_and_clear();
    anyhow::ensure!(out.status.success(), "cargo build failed in {}", folder.display());
    let wasm = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        .context("cargo built no .wasm: is the crate a `cdylib`?")?;
    let bytes = std::fs::read(&wasm)?;
    yiwang_registry::package::check_component(&bytes).map_err(|m| anyhow::anyhow!("{}: {m}", wasm.display()))?;
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::new(&engine, &bytes).map_err(|e| anyhow::anyhow!("{}: {e:#}", wasm.display()))?;
    yiwang::runtime::check_component_imports(&engine, &component).map_err(|m| anyhow::anyhow!("{}: {m}", wasm.display()))?;
    let target = folder.join(COMPONENT_FILE);
    std::fs::write(&target, &bytes)?;
    println!("built {} {} → {} ({} bytes)", manifest.name, manifest.version, target.display(), bytes.len());
    Ok(target)
}

/// One line of an events file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TestEvent {
    topic: String,
    #[serde(default)]
    payload: serde_json::Value,
    #[serde(default)]
    location: Option<yiwang::bus::GeoPoint>,
    #[serde(default)]
    id: Option<String>,
}

/// `yiwang plugin test`: run the built component inside a real host (SQLite in
/// a temporary folder) against a file of events, and show what it did.
pub async fn test(folder: &Path, events: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(events).with_context(|| format!("cannot read {}", events.display()))?;
    let mut inputs = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let e: TestEvent = serde_json::from_str(line).with_context(|| format!("{}:{}: not an event", events.display(), n + 1))?;
        TopicPattern::parse(&e.topic).map_err(|m| anyhow::anyhow!("{}:{}: topic: {m}", events.display(), n + 1))?;
        inputs.push(e);
    }
    let tmp = tempfile::tempdir()?;
    let mut options = Options::new(tmp.path());
    options.install_bundled = false;
    // The author's own package, built a moment ago: nothing to vouch for it.
    options.runtime.allow_unsigned = true;
    let app = App::build(options, None).await?;
    let services = app.state.services.clone();
    let mut seen = services.bus.subscribe("plugin-test", vec![TopicPattern::parse(">").expect("a pattern")], 65_536);
    let plugin = app.state.runtime.load_package(folder).await.map_err(|e| anyhow::anyhow!("refused: {e}"))?;
    let name = plugin.name().to_owned();
    println!("loaded {name} {} ({})", plugin.ctx.manifest.version, plugin.ctx.manifest.world);
    for (i, e) in inputs.iter().enumerate() {
        services
            .bus
            .publish(Event {
                id: e.id.clone().unwrap_or_else(|| format!("test-{}", i + 1)),
                topic: e.topic.clone(),
                source: "host:plugin-test".into(),
                time: services.clock.now_ms(),
                location: e.location,
                payload: e.payload.to_string(),
            })
            .await?;
    }
    let wanted = inputs.iter().filter(|e| plugin.ctx.manifest.subscribe.iter().any(|p| p.matches(&e.topic))).count() as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while plugin.ctx.stats.calls.get() + plugin.ctx.stats.skipped.get() < wanted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;

    let principal = format!("plugin:{name}");
    let mut published = Vec::new();
    while let Ok(e) = seen.events.try_recv() {
        if e.source == principal {
            published.push(e);
        }
    }
    let stats = plugin.ctx.stats.view();
    println!(
        "events: {} in the file, {wanted} for its subscriptions, {} handled ({} error values, {} failures, {} skipped)",
        inputs.len(),
        stats.calls,
        stats.guest_errors,
        stats.failures.values().sum::<u64>(),
        stats.skipped
    );
    println!("published: {}", published.len());
    for e in &published {
        println!("  {} {}", e.topic, e.payload);
    }
    let db = services.db.pool();
    let cases: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE opened_by = $1").bind(&principal).fetch_one(db).await?;
    let warnings: Vec<(String, String, String)> =
        sqlx::query_as("SELECT severity, event, headline FROM warnings WHERE source = $1 ORDER BY created").bind(&principal).fetch_all(db).await?;
    let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE sender = $1").bind(&principal).fetch_one(db).await?;
    let denials: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT action, subject, detail FROM audit_log WHERE actor = $1 AND outcome = 'denied' ORDER BY seq",
    )
    .bind(&principal)
    .fetch_all(db)
    .await?;
    println!("cases opened: {cases}");
    println!("warnings raised: {}", warnings.len());
    for (severity, event, headline) in &warnings {
        println!("  [{severity}] {event}: {headline}");
    }
    println!("messages sent: {messages}");
    println!("denials: {}", denials.len());
    for (action, subject, detail) in &denials {
        println!("  {action} {subject}: {detail}");
    }
    let failures: u64 = stats.failures.values().sum();
    Ok(failures == 0 && stats.calls >= wanted)
}
