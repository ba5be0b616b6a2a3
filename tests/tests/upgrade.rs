//! Hot loading: packages that land in the watched plugins folder are applied
//! while events flow — swapped with no event lost or handled twice, refused
//! when they fail, held when they ask for more, rolled back by themselves when
//! they fail on probation — and the operator's admin routes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;
use yiwang::runtime::UpgradePolicy;
use yiwang::runtime::watch::WatchReport;
use yiwang_tests::{TestHost, TestOptions, collect, guest, install_guest};

/// Replace a file in one step (write beside it, then rename over it), as an
/// installer does, so the watcher never reads it half-written.
fn replace_file(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Install a guest in one step: written in a hidden folder, then moved into place.
fn install_whole(plugins: &Path, name: &str, edit: impl FnOnce(String) -> String) -> std::path::PathBuf {
    let staged = install_guest(&plugins.join(".staging"), name, edit);
    let folder = plugins.join(name);
    std::fs::rename(staged, &folder).unwrap();
    folder
}

/// Room for a steady 10,000 events a second.
fn roomy(manifest: String) -> String {
    manifest.replace("[grants]", "[limits]\nqueue = 65536\npublish-per-second = 1000000\n\n[grants]")
}

/// The `good` guest's manifest at another version, with an edit.
fn good_manifest(version: &str, edit: impl FnOnce(String) -> String) -> String {
    let text = std::fs::read_to_string(Path::new(guest("good").dir).join("plugin.toml")).unwrap();
    edit(text.replace("version = \"0.1.0\"", &format!("version = \"{version}\"")))
}

async fn watched_host(guests: &[&'static str], upgrade: UpgradePolicy) -> (TestHost, mpsc::UnboundedReceiver<WatchReport>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let host = TestHost::start(TestOptions { guests: guests.to_vec(), watch: Some(tx), upgrade, ..TestOptions::default() }).await;
    (host, rx)
}

/// The next report about plugin `name` that is not `unchanged`.
async fn next_report(reports: &mut mpsc::UnboundedReceiver<WatchReport>, name: &str) -> WatchReport {
    loop {
        let r = tokio::time::timeout(Duration::from_secs(20), reports.recv())
            .await
            .expect("the watcher reported nothing within 20 s")
            .expect("the watcher stopped");
        if r.outcome != "unchanged" && (r.plugin.as_deref() == Some(name) || r.plugin.is_none()) {
            return r;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_swapped_under_load_handles_every_event_exactly_once() {
    let (host, mut reports) = watched_host(&[], UpgradePolicy::default()).await;
    let mut echoes = host.subscribe("test.ok");
    let folder = install_whole(&host.plugins_dir(), "good", roomy);
    let r = next_report(&mut reports, "good").await;
    assert_eq!((r.outcome, r.version.as_deref()), ("loaded", Some("0.1.0")), "{r:?}");

    // About 10,000 events a second: 100 every 10 ms.
    const EVENTS: usize = 12_000;
    let bus = host.services.bus.clone();
    let clock = host.services.clock.clone();
    let publisher = tokio::spawn(async move {
        let mut ids = Vec::with_capacity(EVENTS);
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for burst in 0..EVENTS / 100 {
            tick.tick().await;
            for k in 0..100 {
                let id = format!("ev-{burst}-{k}");
                bus.publish(yiwang::bus::Event {
                    id: id.clone(),
                    topic: "test.in".into(),
                    source: "host:test".into(),
                    time: clock.now_ms(),
                    location: None,
                    payload: "{}".into(),
                })
                .await
                .unwrap();
                ids.push(id);
            }
        }
        ids
    });

    // Five upgrades while the events flow.
    for minor in 1..=5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let version = format!("0.1.{minor}");
        replace_file(&folder.join("plugin.toml"), good_manifest(&version, roomy).as_bytes());
        let r = next_report(&mut reports, "good").await;
        assert_eq!((r.outcome, r.version.as_deref()), ("upgraded", Some(version.as_str())), "{r:?}");
    }
    let published = publisher.await.unwrap();
    assert_eq!(published.len(), EVENTS);

    let got = collect(&mut echoes.events, EVENTS, Duration::from_secs(60)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in &got {
        let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        *seen.entry(payload["echo"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let lost: Vec<&String> = published.iter().filter(|id| !seen.contains_key(*id)).collect();
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(lost.is_empty(), "{} events lost, e.g. {:?}", lost.len(), lost.first());
    assert!(twice.is_empty(), "{} events handled twice, e.g. {:?}", twice.len(), twice.first());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(echoes.events.try_recv().is_err(), "an echo beyond the events published");

    let view = host.plugin_view("good").await;
    assert_eq!(view["version"], "0.1.5");
    assert_eq!(view["previous_version"], "0.1.4");
    let (status, history) = host.get_json("/api/plugins/good/history").await;
    assert_eq!(status, 200);
    let events: Vec<(&str, &str)> =
        history.as_array().unwrap().iter().map(|h| (h["event"].as_str().unwrap(), h["version"].as_str().unwrap())).collect();
    assert_eq!(
        events,
        [("loaded", "0.1.0"), ("upgraded", "0.1.1"), ("upgraded", "0.1.2"), ("upgraded", "0.1.3"), ("upgraded", "0.1.4"), ("upgraded", "0.1.5")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_whose_init_fails_is_refused_and_the_running_version_keeps_serving() {
    let (host, mut reports) = watched_host(&["good"], UpgradePolicy::default()).await;
    let folder = host.plugins_dir().join("good");
    // A component that is not one: refused at compilation.
    replace_file(&folder.join("plugin.wasm"), b"\0asm\x0d\x00\x01\x00 this is not a component");
    let r = next_report(&mut reports, "good").await;
    assert_eq!(r.outcome, "refused", "{r:?}");
    assert!(r.message.as_deref().unwrap().contains("not a valid component"), "{r:?}");

    // `warner` refuses to start without its configuration: `init` fails.
    let warner = install_whole(&host.plugins_dir(), "warner", |m| m);
    let r = next_report(&mut reports, "warner").await;
    assert_eq!(r.outcome, "loaded", "{r:?}");
    let text = std::fs::read_to_string(warner.join("plugin.toml")).unwrap();
    let broken = text.replace("version = \"0.1.0\"", "version = \"0.2.0\"").replace("threshold = 0.3", "threshold = \"high\"");
    assert_ne!(broken, text, "the edit applies");
    replace_file(&warner.join("plugin.toml"), broken.as_bytes());
    let r = next_report(&mut reports, "warner").await;
    assert_eq!(r.outcome, "refused", "{r:?}");
    assert!(r.message.as_deref().unwrap().contains("field `init`"), "{r:?}");
    assert_eq!(host.runtime.plugin("warner").unwrap().ctx.manifest.version.to_string(), "0.1.0");

    // The running `good` still answers.
    let mut echoes = host.subscribe("test.ok");
    let id = host.publish("test.in", serde_json::json!({})).await;
    let got = collect(&mut echoes.events, 1, Duration::from_secs(10)).await;
    assert!(got[0].payload.contains(&id));
    let (_, history) = host.get_json("/api/plugins/warner/history").await;
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["event"].as_str(), last["version"].as_str()), (Some("refused"), Some("0.2.0")), "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_fails_on_probation_is_rolled_back_by_itself() {
    let (host, mut reports) = watched_host(&["good"], UpgradePolicy::default()).await;
    let mut echoes = host.subscribe("test.ok");
    let folder = host.plugins_dir().join("good");

    // Version 0.2.0 of `good` is the `panicky` component: every call traps.
    let panicky = std::fs::read(guest("panicky").wasm).unwrap();
    let tmp = host.plugins_dir().join(".good-0.2.0");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("plugin.toml"), good_manifest("0.2.0", |m| m)).unwrap();
    std::fs::write(tmp.join("plugin.wasm"), &panicky).unwrap();
    std::fs::rename(&folder, host.plugins_dir().join(".good-0.1.0")).unwrap();
    std::fs::rename(&tmp, &folder).unwrap();
    let r = next_report(&mut reports, "good").await;
    assert_eq!((r.outcome, r.version.as_deref()), ("upgraded", Some("0.2.0")), "{r:?}");

    // Its first calls trap; the supervisor quarantines it, and since it is
    // on probation the worker puts 0.1.0 back, which gets the event 0.2.0
    // failed on, then the rest: none is lost.
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(host.publish("test.in", serde_json::json!({})).await);
    }
    let got = collect(&mut echoes.events, 10, Duration::from_secs(20)).await;
    let echoed: Vec<String> =
        got.iter().map(|e| serde_json::from_str::<serde_json::Value>(&e.payload).unwrap()["echo"].as_str().unwrap().to_owned()).collect();
    assert_eq!(echoed, ids, "every event is handled by 0.1.0, in order");
    let view = host.plugin_view("good").await;
    assert_eq!(view["version"], "0.1.0");
    let (_, history) = host.get_json("/api/plugins/good/history").await;
    let rolled = history.as_array().unwrap().iter().find(|h| h["event"] == "rolled-back").expect("a rollback in the history").clone();
    assert_eq!(rolled["version"], "0.2.0");
    assert_eq!(rolled["actor"], "host");
    assert!(rolled["detail"].as_str().unwrap().contains("quarantined on probation"), "{rolled}");

    // The same package is not taken again by itself.
    let touched = folder.join("plugin.toml");
    replace_file(&touched, &std::fs::read(&touched).unwrap());
    let r = next_report(&mut reports, "good").await;
    assert_eq!(r.outcome, "refused", "{r:?}");
    assert!(r.message.as_deref().unwrap().contains("was rolled back"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_asking_for_more_waits_for_an_operator_who_may_approve_and_roll_back() {
    let (host, mut reports) = watched_host(&["good"], UpgradePolicy::default()).await;
    let folder = host.plugins_dir().join("good");
    let wider = good_manifest("0.2.0", |m| m.replace("publish = [\"test.ok\"]", "publish = [\"test.ok\", \"test.more\"]"));
    replace_file(&folder.join("plugin.toml"), wider.as_bytes());
    let r = next_report(&mut reports, "good").await;
    assert_eq!((r.outcome, r.version.as_deref()), ("held", Some("0.2.0")), "{r:?}");
    let view = host.plugin_view("good").await;
    assert_eq!(view["version"], "0.1.0", "the running version keeps serving");
    assert_eq!(view["held"]["version"], "0.2.0");
    assert_eq!(view["held"]["widened"], serde_json::json!(["grants.publish: `test.more`"]));

    // Only an operator may approve.
    let (status, body) = host.call("POST", "/api/plugins/good/approve", None, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = host.call("POST", "/api/plugins/good/approve", Some(&host.token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], "0.2.0");
    assert_eq!(body["previous_version"], "0.1.0");
    assert!(body["held"].is_null());
    assert!(body["probation_until_ms"].is_i64());
    let (status, body) = host.call("POST", "/api/plugins/good/approve", Some(&host.token), None).await;
    assert_eq!(status, 409, "{body}");

    // An operator rolls it back, with a reason.
    let (status, body) =
        host.call("POST", "/api/plugins/good/rollback", Some(&host.token), Some(serde_json::json!({"reason": "回退：发布窗口外"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], "0.1.0");
    let (status, body) = host.call("POST", "/api/plugins/good/rollback", Some(&host.token), None).await;
    assert_eq!(status, 409, "no earlier version now: {body}");
    let (_, history) = host.get_json("/api/plugins/good/history").await;
    let events: Vec<(&str, &str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["event"].as_str().unwrap(), h["version"].as_str().unwrap(), h["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [
            ("loaded", "0.1.0", "host"),
            ("held", "0.2.0", "host"),
            ("approved", "0.2.0", "user:ops"),
            ("upgraded", "0.2.0", "user:ops"),
            ("rolled-back", "0.2.0", "user:ops"),
        ]
    );
    assert!(history[4]["detail"].as_str().unwrap().contains("回退：发布窗口外"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_plugin_gets_its_events_when_enabled_and_a_removed_folder_unloads_its_plugin() {
    let (host, mut reports) = watched_host(&["good"], UpgradePolicy::default()).await;
    let mut echoes = host.subscribe("test.ok");
    let (status, body) = host.call("POST", "/api/plugins/good/disable", Some(&host.token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], false);
    let kept = host.publish("test.in", serde_json::json!({})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(echoes.events.try_recv().is_err(), "a disabled plugin handles nothing");
    let (status, body) = host.call("POST", "/api/plugins/good/disable", Some(&host.token), None).await;
    assert_eq!(status, 409);
    assert_eq!(host.plugin_view("good").await["lag"]["waiting"], 1, "the event waits for it");
    let (status, body) = host.call("POST", "/api/plugins/good/enable", Some(&host.token), None).await;
    assert_eq!(status, 200, "{body}");
    let id = host.publish("test.in", serde_json::json!({})).await;
    let got = collect(&mut echoes.events, 2, Duration::from_secs(10)).await;
    assert!(got[0].payload.contains(&kept), "the event kept while it was disabled comes first");
    assert!(got[1].payload.contains(&id), "then the new one");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(echoes.events.try_recv().is_err());

    std::fs::remove_dir_all(host.plugins_dir().join("good")).unwrap();
    let r = next_report(&mut reports, "good").await;
    assert_eq!(r.outcome, "removed", "{r:?}");
    assert!(host.runtime.plugin("good").is_none());
    let (status, _) = host.get_json("/api/plugins/good").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_upgrades_from_the_registry_and_only_trusted_packages_load() {
    let work = tempfile::tempdir().unwrap();
    let key = yiwang_registry::KeyPair::generate("acme").unwrap();
    let mut trust = yiwang_registry::TrustPolicy::default();
    trust.admit("acme", key.public(), &["chengguan".to_owned()]);
    let registry = yiwang_registry::DirRegistry::open(work.path().join("registry")).unwrap();
    // `good`, versions 0.1.0 and 0.2.0, signed by `acme` and published.
    for version in ["0.1.0", "0.2.0"] {
        let staged = install_guest(&work.path().join(format!("src-{version}")), "good", |_| {
            good_manifest(version, |m| m.replace("publisher = \"yiwang-core\"", "publisher = \"acme\""))
        });
        let packed = yiwang_registry::pack(&staged, &work.path().join("dist"), Some(&key)).unwrap();
        registry.publish(&std::fs::read(&packed.path).unwrap()).unwrap();
    }
    let host = TestHost::start(TestOptions {
        trust: Some(trust.clone()),
        registry: Some(work.path().join("registry").display().to_string()),
        ..TestOptions::default()
    })
    .await;

    // An unsigned package is refused by a host with a trust policy.
    let e = host.load_guest("good", |m| m).await.err().expect("an unsigned package loaded");
    assert!(e.to_string().contains("not signed"), "{e}");
    std::fs::remove_dir_all(host.plugins_dir().join("good")).unwrap();

    // 0.1.0 installed from the registry loads.
    let r = yiwang_registry::Registry::open(&work.path().join("registry").display().to_string()).unwrap();
    let spec = yiwang_registry::PluginSpec::parse("good@0.1.0").unwrap();
    let installed = yiwang_registry::install(&r, &spec, &host.plugins_dir(), &trust).await.unwrap();
    host.runtime.apply_package(&installed.path, "host").await.map_err(|e| e.to_string()).unwrap();
    assert_eq!(host.plugin_view("good").await["version"], "0.1.0");

    // The operator upgrades through the admin API; a range nothing matches is a 404.
    let (status, body) =
        host.call("POST", "/api/plugins/good/upgrade", Some(&host.token), Some(serde_json::json!({"version": "^3"}))).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = host.call("POST", "/api/plugins/good/upgrade", Some(&host.token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], "0.2.0");
    assert_eq!(body["previous_version"], "0.1.0");
    let mut echoes = host.subscribe("test.ok");
    let id = host.publish("test.in", serde_json::json!({})).await;
    let got = collect(&mut echoes.events, 1, Duration::from_secs(10)).await;
    assert!(got[0].payload.contains(&id));
    let (_, history) = host.get_json("/api/plugins/good/history").await;
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["event"].as_str(), last["actor"].as_str()), (Some("upgraded"), Some("user:ops")), "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_of_an_installed_plugin_puts_the_earlier_version_back_on_disk() {
    let work = tempfile::tempdir().unwrap();
    let key = yiwang_registry::KeyPair::generate("acme").unwrap();
    let mut trust = yiwang_registry::TrustPolicy::default();
    trust.admit("acme", key.public(), &["chengguan".to_owned()]);
    // 0.1.0 is `good`; 0.2.0 is the `panicky` component under the same name.
    let mut archives = Vec::new();
    for (version, component) in [("0.1.0", "good"), ("0.2.0", "panicky")] {
        let staged = install_guest(&work.path().join(format!("src-{version}")), "good", |_| {
            good_manifest(version, |m| m.replace("publisher = \"yiwang-core\"", "publisher = \"acme\""))
        });
        std::fs::copy(guest(component).wasm, staged.join("plugin.wasm")).unwrap();
        archives.push(yiwang_registry::pack(&staged, &work.path().join("dist"), Some(&key)).unwrap().path);
    }
    let (tx, mut reports) = mpsc::unbounded_channel();
    let host = TestHost::start(TestOptions { trust: Some(trust.clone()), watch: Some(tx), ..TestOptions::default() }).await;
    let plugins = host.plugins_dir();
    yiwang_registry::install_archive(&std::fs::read(&archives[0]).unwrap(), &plugins, &trust).unwrap();
    let r = next_report(&mut reports, "good").await;
    assert_eq!((r.outcome, r.version.as_deref()), ("loaded", Some("0.1.0")), "{r:?}");
    yiwang_registry::install_archive(&std::fs::read(&archives[1]).unwrap(), &plugins, &trust).unwrap();
    let r = next_report(&mut reports, "good").await;
    assert_eq!((r.outcome, r.version.as_deref()), ("upgraded", Some("0.2.0")), "{r:?}");

    // 0.2.0 fails on probation and is rolled back by itself, on disk too.
    for _ in 0..5 {
        host.publish("test.in", serde_json::json!({})).await;
    }
    yiwang_tests::eventually("the rollback", Duration::from_secs(20), async || {
        host.runtime.plugin("good").unwrap().ctx.manifest.version.to_string() == "0.1.0"
    })
    .await;
    yiwang_tests::eventually("the plugins folder back at 0.1.0", Duration::from_secs(20), async || {
        let installed = yiwang_registry::installed(&plugins).unwrap();
        installed.iter().find(|p| p.name == "good").and_then(|p| p.active.clone()).map(|v| v.to_string()) == Some("0.1.0".into())
    })
    .await;
    let manifest = std::fs::read_to_string(plugins.join("good/plugin.toml")).unwrap();
    assert!(manifest.contains("version = \"0.1.0\""), "{manifest}");
}

/// Every report the watcher sends within `window`.
async fn reports_within(reports: &mut mpsc::UnboundedReceiver<WatchReport>, window: Duration) -> Vec<WatchReport> {
    let mut seen = Vec::new();
    let until = tokio::time::Instant::now() + window;
    while let Ok(Some(r)) = tokio::time::timeout_at(until, reports.recv()).await {
        seen.push(r);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_plugins_folder_is_not_read_again_and_again() {
    let (host, mut reports) = watched_host(&[], UpgradePolicy::default()).await;
    install_whole(&host.plugins_dir(), "good", |m| m);
    let r = next_report(&mut reports, "good").await;
    assert_eq!(r.outcome, "loaded", "{r:?}");
    // Loading read the package; reading is not a change, so nothing follows.
    let after = reports_within(&mut reports, Duration::from_secs(2)).await;
    assert!(after.is_empty(), "the watcher kept reacting to its own reads: {} reports, e.g. {:?}", after.len(), after.first());

    // A refused package is refused once, not over and over.
    install_whole(&host.plugins_dir(), "trivial", |m| m.replace("version = \"0.1.0\"", "version = \"one\""));
    let r = next_report(&mut reports, "trivial").await;
    assert_eq!(r.outcome, "refused", "{r:?}");
    let after = reports_within(&mut reports, Duration::from_secs(2)).await;
    assert!(after.is_empty(), "a refused package was read again and again: {} reports, e.g. {:?}", after.len(), after.first());
}
