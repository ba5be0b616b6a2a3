//! Bad packages are refused at load with an error naming the plugin, the file
//! and the field; plugins already running keep running.

use serde_json::json;
use yiwang::runtime::LoadError;
use yiwang_tests::{GUESTS, TestHost, collect};

/// One bad package: the guest it starts from, an edit, and what the error must say.
struct Case {
    what: &'static str,
    edit: fn(String) -> String,
    file: &'static str,
    field: &'static str,
    message: &'static str,
}

fn set(manifest: String, key: &str, value: &str) -> String {
    manifest
        .lines()
        .map(|l| if l.starts_with(&format!("{key} =")) { format!("{key} = {value}") } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
}

const CASES: &[Case] = &[
    Case {
        what: "bad semver",
        edit: |m| set(m, "version", "\"1.x\""),
        file: "plugin.toml",
        field: "version",
        message: "not a semver version",
    },
    Case {
        what: "unknown world",
        edit: |m| set(m, "world", "\"yiwang:gov/teapot@0.2.0\""),
        file: "plugin.toml",
        field: "world",
        message: "unknown world `teapot`",
    },
    Case {
        what: "unknown world version",
        edit: |m| set(m, "world", "\"yiwang:gov/event-handler@0.3.0\""),
        file: "plugin.toml",
        field: "world",
        message: "plugin targets yiwang:gov/event-handler@0.3.0 but this host implements yiwang:gov@0.2.1",
    },
    Case {
        what: "unparsable topic pattern",
        edit: |m| set(m, "subscribe", "[\"test.in\", \"test.>.x\"]"),
        file: "plugin.toml",
        field: "subscribe[1]",
        message: "`>` may only be the last segment",
    },
    Case {
        what: "grant on a data set that does not exist",
        edit: |m| set(m, "data-read", "[\"no-such-set\"]"),
        file: "plugin.toml",
        field: "grants.data-read[0]",
        message: "no data set or sensor kind `no-such-set`",
    },
    Case {
        what: "grant to message a department that does not exist",
        edit: |m| set(m, "message", "[\"department:nowhere\"]"),
        file: "plugin.toml",
        field: "grants.message[0]",
        message: "unknown department `nowhere`",
    },
    Case {
        what: "unknown department",
        edit: |m| set(m, "department", "\"nowhere\""),
        file: "plugin.toml",
        field: "department",
        message: "unknown department `nowhere`",
    },
    Case {
        what: "unknown grant kind",
        edit: |m| m.replace("[grants]", "[grants]\nteleport = true"),
        file: "plugin.toml",
        field: "grants.teleport",
        message: "unknown field `teleport`",
    },
];

fn check(case: &Case, e: &LoadError, name: &str) {
    assert_eq!(e.plugin.as_deref(), Some(name), "{}: {e}", case.what);
    assert!(e.file.ends_with(case.file), "{}: {e}", case.what);
    assert_eq!(e.field, case.field, "{}: {e}", case.what);
    assert!(e.message.contains(case.message), "{}: {e}", case.what);
    let text = e.to_string();
    assert!(text.contains(name) && text.contains(case.file) && text.contains(case.field), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_packages_are_refused_and_running_plugins_keep_running() {
    let host = TestHost::with_guests(&["good"]).await;
    for case in CASES {
        // The same guest (`trivial`) under a new name each time, so that every
        // refusal is about the edit and not about a duplicate.
        let name = "trivial";
        let e = host.load_guest(name, case.edit).await.err().unwrap_or_else(|| panic!("{} was accepted", case.what));
        check(case, &e, name);
        assert!(host.runtime.plugin(name).is_none(), "{}: nothing half-loaded", case.what);
    }

    // Bytes that are not a component.
    let folder = yiwang_tests::install_guest(&host.plugins_dir(), "trivial", |m| m);
    std::fs::write(folder.join("plugin.wasm"), b"\0asm not really").unwrap();
    let e = host.runtime.load_package(&folder).await.err().expect("garbage accepted");
    assert_eq!((e.plugin.as_deref(), e.field.as_str()), (Some("trivial"), "component"), "{e}");
    assert!(e.file.ends_with("plugin.wasm") && e.message.contains("not a valid component"), "{e}");

    // A duplicate name.
    let e = host.load_guest("good", |m| m).await.err().expect("duplicate accepted");
    assert_eq!(e.field, "name", "{e}");

    // `good` still answers.
    let mut ok = host.subscribe("test.ok");
    host.publish("test.in", json!({})).await;
    collect(&mut ok.events, 1, std::time::Duration::from_secs(30)).await;
    assert_eq!(host.runtime.plugins().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_packages_loads_the_good_and_reports_the_bad() {
    let host = TestHost::with_guests(&[]).await;
    let dir = host.plugins_dir();
    yiwang_tests::install_guest(&dir, "good", |m| m);
    yiwang_tests::install_guest(&dir, "trivial", |m| set(m, "version", "\"one\""));
    let results = host.runtime.load_dir(&dir).await;
    assert_eq!(results.len(), 2);
    assert!(results[0].as_ref().is_ok_and(|p| p.name() == "good"));
    let e = results[1].as_ref().err().unwrap();
    assert_eq!((e.plugin.as_deref(), e.field.as_str()), (Some("trivial"), "version"));
}

#[test]
fn every_guest_is_used_by_a_test() {
    // Each guest folder must be named by some test file here, so none rots unseen.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let sources: String = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let mut bench = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/bin/yiwang-bench.rs")).unwrap();
    bench.push_str(&sources);
    for g in GUESTS {
        assert!(bench.contains(&format!("\"{}\"", g.name)), "test guest `{}` is used by no test", g.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_a_package_is_refused_without_waiting_on_it() {
    let host = TestHost::with_guests(&[]).await;
    let dir = host.plugins_dir();
    let folder = yiwang_tests::install_guest(&dir, "good", |m| m);
    // Nobody will ever write to this FIFO: opening it to read would wait for ever.
    let manifest = folder.join("plugin.toml");
    std::fs::remove_file(&manifest).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&manifest).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    let loaded = tokio::time::timeout(std::time::Duration::from_secs(10), host.runtime.load_dir(&dir))
        .await
        .expect("reading a FIFO named plugin.toml hung the loader");
    let e = loaded[0].as_ref().err().expect("a FIFO is no manifest");
    assert!(e.message.contains("not a regular file"), "{e}");
    // The server kept serving meanwhile, and still does.
    assert_eq!(host.get_json("/healthz").await.0, 200);
}
