//! The mock host, through a small plugin as a department would write it.

use std::sync::{Arc, Barrier};

use yiwang_sdk::cases::{CommandLevel, RouteSuggestion};
use yiwang_sdk::identity::User;
use yiwang_sdk::log::Level;
use yiwang_sdk::mock::{Change, MockHost, WarningOrigin};
use yiwang_sdk::prelude::*;

/// A water-level reading, as the example plugin receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
struct WaterLevel {
    sensor: String,
    value: f64,
    district: String,
}

/// The example plugin: on a reading above `warn-level` it stores the reading,
/// publishes `warning.flood`, opens a case and messages the district's leaders; its
/// model returns a warning above `danger-level`. On `test.sneaky` it publishes where
/// it may not.
struct Flood;

fn reading(event: &Event) -> Result<WaterLevel, Error> {
    event.payload_json()
}

fn area(at: GeoPoint) -> Area {
    Area::circle("水位站周边", at, 1.0)
}

fn warning(at: GeoPoint, value: f64) -> Warning {
    Warning {
        category: WarningCategory::Met,
        event: "内涝".into(),
        urgency: Urgency::Immediate,
        severity: Severity::Severe,
        certainty: Certainty::Observed,
        area: area(at),
        headline: format!("危险水位 {value:.2} m"),
        description: String::new(),
        instruction: String::new(),
        parameters: vec![("value".into(), format!("{value:.2}"))],
    }
}

impl Plugin for Flood {
    fn init() -> Result<(), Error> {
        let warn: f64 = config::get_parsed("warn-level")?;
        info!("warn level {warn}");
        Ok(())
    }

    fn handle(event: Event) -> Result<(), Error> {
        if event.topic == "test.sneaky" {
            bus::publish("secret.topic", &json!({ "from": event.id }), None)?;
            return Ok(());
        }
        let r = reading(&event)?;
        let warn: f64 = config::get_parsed("warn-level")?;
        data::put("levels", &r.sensor, &r)?;
        if r.value <= warn {
            debug!("{} below the warning level", r.sensor);
            return Ok(());
        }
        bus::publish(
            "warning.flood",
            &json!({ "sensor": r.sensor, "value": r.value }),
            event.location,
        )?;
        let case = cases::open_case(&CaseDraft {
            category_code: "0501".into(),
            title: format!("{} 积水", r.sensor),
            description: String::new(),
            location: event.location,
            channel: SourceChannel::Department,
            evidence: Vec::new(),
        })?;
        cases::add_note(&case, &format!("reading {}", r.value))?;
        messaging::send(
            &Recipient::Role((r.district.clone(), "leader".into())),
            "积水预警",
            &case,
        )?;
        Ok(())
    }

    fn evaluate(event: Event) -> Result<Vec<Warning>, Error> {
        let r = reading(&event)?;
        let danger: f64 = config::get_parsed("danger-level")?;
        match event.location {
            Some(at) if r.value > danger => Ok(vec![warning(at, r.value)]),
            _ => Ok(Vec::new()),
        }
    }
}

export_plugin!(Flood);

const MANIFEST: &str = r#"
name = "flood"
version = "0.3.1"
department = "yingji"
publisher = "yiwang-core"
world = "yiwang:gov/department-plugin@0.2.0"
subscribe = ["iot.reading.water-level"]

[grants]
publish = ["warning.*"]
data-read = ["levels", "iot:water-level"]
data-write = ["levels"]
cases = ["open", "note"]
message = ["role:*/leader"]

[config]
warn-level = 3.0
danger-level = 4.0
unit = "m"
"#;

const AT: GeoPoint = GeoPoint {
    lat: 32.04,
    lon: 118.78,
};

fn host() -> MockHost {
    MockHost::new()
        .manifest_text(MANIFEST)
        .expect("the test manifest parses")
}

fn level(sensor: &str, value: f64) -> Event {
    Event::test(
        "iot.reading.water-level",
        WaterLevel {
            sensor: sensor.into(),
            value,
            district: "320102".into(),
        },
    )
    .with_location(AT)
}

#[test]
fn publishes_are_recorded() -> Result<(), Error> {
    let host = host().install();
    Flood::handle(level("wl-1", 3.4))?;
    Flood::handle(level("wl-2", 2.0))?;
    let published = host.published();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0].id, "event-1");
    assert_eq!(published[0].topic, "warning.flood");
    assert_eq!(
        published[0].payload,
        json!({ "sensor": "wl-1", "value": 3.4 })
    );
    assert_eq!(published[0].location, Some(AT));
    assert!(host.denials().is_empty());
    Ok(())
}

#[test]
fn a_publish_outside_the_grants_is_denied_and_recorded() {
    let host = host().install();
    let err = Flood::handle(Event::test("test.sneaky", json!({})).with_id("e7")).unwrap_err();
    assert_eq!(
        err,
        Error::Denied("bus.publish `secret.topic`: topic not in grants.publish".into())
    );
    let denials = host.denials();
    assert_eq!(denials.len(), 1);
    assert_eq!(
        (
            denials[0].action.as_str(),
            denials[0].subject.as_str(),
            denials[0].reason.as_str()
        ),
        ("bus.publish", "secret.topic", "topic not in grants.publish")
    );
    assert_eq!(denials[0].message(), err.message());
    assert!(host.published().is_empty());

    // Patterns are NATS subjects: `*` is one segment only.
    assert!(matches!(
        bus::publish("warning.flood.extra", &json!({}), None),
        Err(Error::Denied(_))
    ));
    // A malformed topic is invalid, not denied.
    assert!(matches!(
        bus::publish("Warning.flood", &json!({}), None),
        Err(Error::Invalid(_))
    ));
    assert_eq!(host.denials().len(), 2);
}

#[test]
fn without_grants_everything_is_allowed_and_enforce_grants_denies_everything() -> Result<(), Error>
{
    {
        let host = MockHost::new().config("warn-level", "1").install();
        Flood::handle(Event::test("test.sneaky", json!({})))?;
        assert_eq!(host.published()[0].topic, "secret.topic");
    }
    let host = MockHost::new().enforce_grants().install();
    assert!(matches!(
        bus::publish("a.b", &json!({}), None),
        Err(Error::Denied(_))
    ));
    assert!(matches!(data::get("levels", "k"), Err(Error::Denied(_))));
    assert!(matches!(
        identity::users_with_role("320102", "leader"),
        Err(Error::Denied(_))
    ));
    assert_eq!(host.denials().len(), 3);
    Ok(())
}

#[test]
fn config_comes_from_the_builder_or_the_manifest() -> Result<(), Error> {
    {
        let _host = MockHost::new().install();
        assert_eq!(
            Flood::init(),
            Err(Error::NotFound("config key `warn-level` is not set".into()))
        );
    }
    {
        let host = MockHost::new().config("warn-level", "2.5").install();
        Flood::init()?;
        assert_eq!(config::get_parsed::<f64>("warn-level")?, 2.5);
        host.set_config("warn-level", "high");
        assert!(matches!(Flood::init(), Err(Error::Invalid(_))));
    }
    // From a file, as `MockHost::new().manifest("plugin.toml")` reads it in a plugin crate.
    let path = std::env::temp_dir().join(format!("yiwang-sdk-mock-{}.toml", std::process::id()));
    std::fs::write(&path, MANIFEST).map_err(|e| Error::Unavailable(e.to_string()))?;
    let loaded = MockHost::new().manifest(&path);
    let _ = std::fs::remove_file(&path);
    let _host = loaded?.config("extra", "yes").install();
    assert_eq!(config::get("warn-level").as_deref(), Some("3.0"));
    assert_eq!(config::get("unit").as_deref(), Some("m"));
    assert_eq!(
        config::all()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["danger-level", "extra", "unit", "warn-level"]
    );
    let me = identity::whoami();
    assert_eq!(
        (me.id.as_str(), me.department.as_str(), me.version.as_str()),
        ("plugin:flood", "yingji", "0.3.1")
    );
    Ok(())
}

#[test]
fn bad_manifests_name_the_field() {
    let err = MockHost::new()
        .manifest_text("[grants]\ncases = [\"close\"]\n")
        .unwrap_err();
    assert!(err.message().contains("grants.cases[0]"), "{err}");
    let err = MockHost::new()
        .manifest_text("[grants]\nmessage = [\"pager:1\"]\n")
        .unwrap_err();
    assert!(err.message().contains("grants.message[0]"), "{err}");
    let err = MockHost::new()
        .manifest_text("[grants]\npublish = [\"a.>.b\"]\n")
        .unwrap_err();
    assert!(err.message().contains("grants.publish[0]"), "{err}");
    assert!(matches!(
        MockHost::new().manifest("/no/such/plugin.toml"),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn data_round_trips() -> Result<(), Error> {
    let host = host()
        .data(
            "levels",
            "wl-0",
            json!({ "sensor": "wl-0", "value": 1.0, "district": "320104" }),
        )
        .now(1_000)
        .install();
    Flood::handle(level("wl-1", 2.0))?;
    Flood::handle(level("wl-2", 3.5))?;
    let stored: Option<WaterLevel> = data::get_json("levels", "wl-1")?;
    assert_eq!(stored.map(|r| r.value), Some(2.0));
    assert_eq!(data::get("levels", "wl-1")?.map(|r| r.updated), Some(1_000));
    assert_eq!(data::get("levels", "nobody")?, None);
    assert_eq!(host.record("levels", "wl-2").unwrap()["value"], 3.5);

    let writes = host.data_written();
    assert_eq!(
        writes.iter().map(|w| w.key.as_str()).collect::<Vec<_>>(),
        ["wl-1", "wl-2"]
    );
    assert_eq!(writes[1].value["district"], "320102");

    // Seeded and written records, filtered, in key order, a page at a time.
    let keys = |records: Vec<yiwang_sdk::data::Record>| {
        records.into_iter().map(|r| r.key).collect::<Vec<_>>()
    };
    assert_eq!(
        keys(data::query("levels", &[], 0, 10)?),
        ["wl-0", "wl-1", "wl-2"]
    );
    assert_eq!(
        keys(data::query(
            "levels",
            &[data::eq("district", "320102")],
            0,
            10
        )?),
        ["wl-1", "wl-2"]
    );
    assert_eq!(
        keys(data::query(
            "levels",
            &[data::eq("district", "320102")],
            1,
            10
        )?),
        ["wl-2"]
    );
    assert_eq!(
        keys(data::query("levels", &[data::eq("value", 1.0)], 0, 10)?),
        ["wl-0"]
    );
    assert!(matches!(
        data::query("levels", &[data::eq("district", json!(["a"]))], 0, 10),
        Err(Error::Invalid(_))
    ));

    // Records are JSON objects; other data sets are outside the grants.
    assert!(matches!(
        data::put("levels", "x", &json!([1, 2])),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        data::put("residents", "x", &json!({})),
        Err(Error::Denied(_))
    ));
    assert!(matches!(data::get("residents", "x"), Err(Error::Denied(_))));
    assert_eq!(
        host.denials()
            .iter()
            .map(|d| d.action.as_str())
            .collect::<Vec<_>>(),
        ["data.put", "data.get"]
    );
    Ok(())
}

#[test]
fn readings_need_the_sensor_kind_in_the_grants() -> Result<(), Error> {
    let host = host()
        .sensor(
            "wl-1",
            "water-level",
            "m",
            [(3_000, 1.3), (1_000, 1.1), (2_000, 1.2)],
        )
        .sensor("aq-1", "air-quality", "µg/m³", [(1_000, 35.0)])
        .install();
    let got = data::readings("wl-1", 1_000, 3_000)?;
    assert_eq!(
        got.iter().map(|r| (r.time, r.value)).collect::<Vec<_>>(),
        [(1_000, 1.1), (2_000, 1.2)]
    );
    assert_eq!(got[0].unit, "m");
    assert_eq!(got[0].sensor, "wl-1");
    assert_eq!(
        data::readings("aq-1", 0, 10_000),
        Err(Error::Denied(
            "data.readings `aq-1`: `iot:air-quality` not in grants.data-read".into()
        ))
    );
    assert!(matches!(
        data::readings("wl-9", 0, 1),
        Err(Error::NotFound(_))
    ));
    assert_eq!(host.denials().len(), 1);
    Ok(())
}

#[test]
fn cases_are_opened_noted_and_routed() -> Result<(), Error> {
    let host = host().install();
    Flood::handle(level("wl-1", 3.4))?;
    let opened = host.cases_opened();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].id, "case-1");
    assert_eq!(opened[0].draft.title, "wl-1 积水");
    assert_eq!(opened[0].draft.location, Some(AT));
    let notes = host.notes();
    assert_eq!(
        (notes[0].case_id.as_str(), notes[0].text.as_str()),
        ("case-1", "reading 3.4")
    );

    // The grants name `open` and `note` only.
    let digest = "ab".repeat(32);
    assert!(matches!(
        cases::add_evidence("case-1", &digest),
        Err(Error::Denied(_))
    ));
    let suggestion = RouteSuggestion::new("housing", CommandLevel::District, 0.8, "施工");
    assert!(matches!(
        cases::suggest_route("case-1", &suggestion),
        Err(Error::Denied(_))
    ));
    assert!(host.evidence().is_empty());

    // With every operation granted: evidence, suggestions, and the host's checks.
    let host = MockHost::new()
        .plugin("router")
        .grant_cases(["evidence", "route", "note"])
        .known_department("housing", "住房和城乡建设局")
        .case("c-42")
        .install();
    cases::add_evidence("c-42", &digest)?;
    assert!(matches!(
        cases::add_evidence("c-42", "not-a-digest"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        cases::add_note("c-43", "hello"),
        Err(Error::NotFound(_))
    ));
    assert_eq!(cases::suggest_route("c-42", &suggestion)?, "suggestion-1");
    assert!(matches!(
        cases::suggest_route("c-42", &suggestion),
        Err(Error::Conflict(_))
    ));
    let elsewhere = RouteSuggestion::new("parks", CommandLevel::Street, 0.5, "绿化");
    assert!(
        matches!(cases::suggest_route("c-42", &elsewhere), Err(Error::Invalid(m)) if m.contains("parks"))
    );
    let unsure = RouteSuggestion::new("housing", CommandLevel::Street, 1.5, "施工");
    assert!(
        matches!(cases::suggest_route("c-42", &unsure), Err(Error::Invalid(m)) if m.starts_with("score"))
    );
    assert_eq!(host.evidence()[0].digest, digest);
    let routes = host.route_suggestions();
    assert_eq!(routes.len(), 1);
    assert_eq!(
        (routes[0].case_id.as_str(), routes[0].suggestion.level),
        ("c-42", CommandLevel::District)
    );
    Ok(())
}

#[test]
fn warnings_from_evaluate_and_from_raise_warning() -> Result<(), Error> {
    let host = host().install();
    // A model's returned warnings need no `warn` grant: `deliver` stores them as the host does.
    host.deliver::<Flood>(level("wl-1", 4.6))?;
    host.deliver::<Flood>(level("wl-2", 3.9))?;
    let warnings = host.warnings_raised();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].origin, WarningOrigin::Returned);
    assert_eq!(warnings[0].id, "warning-1");
    assert_eq!(warnings[0].warning.headline, "危险水位 4.60 m");
    // `deliver` ran `handle` too (the world is `department-plugin`).
    assert_eq!(host.published().len(), 2);

    // Raising one directly needs `warn`, which this manifest does not grant.
    assert_eq!(
        cases::raise_warning(&warning(AT, 5.0)),
        Err(Error::Denied(
            "cases.raise-warning `内涝`: `warn` not in grants.cases".into()
        ))
    );

    let host = MockHost::new().grant_cases(["warn"]).install();
    assert_eq!(cases::raise_warning(&warning(AT, 5.0))?, "warning-1");
    let mut bad = warning(AT, 5.0);
    bad.area.shapes.clear();
    assert!(matches!(cases::raise_warning(&bad), Err(Error::Invalid(_))));
    let raised = host.warnings_raised();
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].origin, WarningOrigin::Raised);
    Ok(())
}

/// A model whose warning the host refuses: its area has no shape.
struct Shapeless;

impl Plugin for Shapeless {
    fn evaluate(_event: Event) -> Result<Vec<Warning>, Error> {
        let mut w = warning(AT, 9.0);
        w.area.shapes.clear();
        Ok(vec![w])
    }
}

#[test]
fn deliver_refuses_a_bad_warning_and_follows_the_world() {
    let host = MockHost::new().install();
    let err = host
        .deliver::<Shapeless>(Event::test("x.y", json!({})))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.starts_with("warning refused:")),
        "{err}"
    );
    assert!(host.warnings_raised().is_empty());

    // An event handler's `evaluate` is never called by the host, nor by `deliver`.
    let handler = MANIFEST.replace("department-plugin", "event-handler");
    let host = MockHost::new().manifest_text(&handler).unwrap().install();
    host.deliver::<Flood>(level("wl-1", 4.6)).unwrap();
    assert!(host.warnings_raised().is_empty());
    assert_eq!(host.published().len(), 1);
}

#[test]
fn messages_follow_the_message_grants() -> Result<(), Error> {
    let host = host().install();
    Flood::handle(level("wl-1", 3.4))?;
    let sent = host.messages_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].id, "message-1");
    assert_eq!(
        sent[0].to,
        Recipient::Role(("320102".into(), "leader".into()))
    );
    assert_eq!(
        (sent[0].subject.as_str(), sent[0].body.as_str()),
        ("积水预警", "case-1")
    );
    assert_eq!(
        messaging::send(&Recipient::User("u-1".into()), "hi", "there"),
        Err(Error::Denied(
            "messaging.send `user:u-1`: recipient not in grants.message".into()
        ))
    );
    assert_eq!(host.messages_sent().len(), 1);
    Ok(())
}

#[test]
fn identity_answers_from_the_mock() -> Result<(), Error> {
    let leader = User {
        id: "u-1".into(),
        display_name: "王主任".into(),
        department: Some("yingji".into()),
        org_unit: "320102".into(),
        roles: vec!["leader".into()],
    };
    let _host = MockHost::new()
        .department("yingji")
        .known_department("yingji", "应急管理局")
        .grant_identity()
        .user(leader.clone())
        .user(User {
            id: "u-2".into(),
            roles: vec!["grid-worker".into()],
            ..leader.clone()
        })
        .install();
    assert_eq!(identity::whoami().id, "plugin:test-plugin");
    assert_eq!(identity::department("yingji")?.name, "应急管理局");
    assert!(matches!(
        identity::department("nasa"),
        Err(Error::NotFound(_))
    ));
    assert_eq!(identity::users_with_role("320102", "leader")?, vec![leader]);
    assert!(identity::users_with_role("320104", "leader")?.is_empty());
    Ok(())
}

#[test]
fn logs_are_recorded() -> Result<(), Error> {
    let host = host().install();
    Flood::init()?;
    Flood::handle(level("wl-1", 1.0))?;
    let logs = host.logs();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(
        (logs[0].level, logs[0].message.as_str()),
        (Level::Info, "warn level 3")
    );
    assert_eq!(
        (logs[1].level, logs[1].message.as_str()),
        (Level::Debug, "wl-1 below the warning level")
    );
    host.clear_calls();
    assert!(host.logs().is_empty());
    Ok(())
}

#[test]
fn injected_failures_reach_the_plugin() {
    let host = host()
        .fail("data.put", Error::Unavailable("storage down".into()))
        .install();
    assert_eq!(
        Flood::handle(level("wl-1", 3.4)),
        Err(Error::Unavailable("storage down".into()))
    );
    assert!(host.data_written().is_empty());
    assert!(host.published().is_empty());
}

#[test]
#[should_panic(expected = "unknown action `bus.publsh`")]
fn an_unknown_failing_action_is_a_setup_error() {
    let _ = MockHost::new().fail("bus.publsh", Error::Limit("x".into()));
}

#[test]
fn each_thread_has_its_own_host() {
    // Both threads hold their mock at the same time, and a third has none.
    let together = Arc::new(Barrier::new(3));
    let worker = |name: &'static str, events: usize| {
        let together = together.clone();
        std::thread::spawn(move || {
            let host = MockHost::new()
                .plugin(name)
                .config("warn-level", "0")
                .install();
            together.wait();
            for i in 0..events {
                let event = Event::test(
                    "iot.reading.water-level",
                    json!({ "sensor": name, "value": i as f64 + 1.0, "district": "1" }),
                );
                Flood::handle(event).unwrap();
            }
            together.wait();
            (
                identity::whoami().id,
                host.published().len(),
                host.cases_opened().len(),
                host.published()[0].payload["sensor"].clone(),
            )
        })
    };
    let a = worker("alpha", 3);
    let b = worker("beta", 5);
    together.wait();
    // This thread has no mock while the others do.
    assert!(matches!(
        bus::publish("a.b", &json!({}), None),
        Err(Error::Unavailable(_))
    ));
    together.wait();
    assert_eq!(
        a.join().unwrap(),
        ("plugin:alpha".into(), 3, 3, json!("alpha"))
    );
    assert_eq!(
        b.join().unwrap(),
        ("plugin:beta".into(), 5, 5, json!("beta"))
    );
}

#[test]
fn dropping_the_host_uninstalls_it() {
    let outer = MockHost::new()
        .plugin("outer")
        .config("k", "outer")
        .install();
    {
        let inner = MockHost::new().plugin("inner").install();
        assert_eq!(identity::whoami().id, "plugin:inner");
        assert_eq!(config::get("k"), None);
        bus::publish("a.b", &json!({}), None).unwrap();
        assert_eq!(inner.published().len(), 1);
    }
    // The shadowed mock answers again, and saw nothing of the inner one's calls.
    assert_eq!(identity::whoami().id, "plugin:outer");
    assert_eq!(config::get("k").as_deref(), Some("outer"));
    assert!(outer.published().is_empty());
    drop(outer);
    assert_eq!(identity::whoami().id, "plugin:native");
    assert_eq!(config::get("k"), None);
    assert!(config::all().is_empty());
    assert!(matches!(
        bus::publish("a.b", &json!({}), None),
        Err(Error::Unavailable(_))
    ));
    assert!(matches!(
        cases::open_case(&CaseDraft {
            category_code: "0501".into(),
            title: "t".into(),
            description: String::new(),
            location: None,
            channel: SourceChannel::Patrol,
            evidence: Vec::new(),
        }),
        Err(Error::Unavailable(_))
    ));
}

/// A model updates and cancels its own warning as the host lets it: each change
/// names the chain's earlier messages; another plugin's warning is refused with
/// the host's denial; a cancelled warning takes no more changes.
#[test]
fn a_plugin_updates_and_cancels_only_its_own_warnings() {
    let host = MockHost::new()
        .manifest_text(&MANIFEST.replace(r#"cases = ["open", "note"]"#, r#"cases = ["warn"]"#))
        .unwrap()
        .warning_of("w-other", "plugin:yingji")
        .install();
    let first = cases::raise_warning(&warning(AT, 4.2)).unwrap();
    let update = cases::update_warning(&first, &warning(AT, 4.6)).unwrap();
    // Any message of the chain names it.
    let again = cases::update_warning(&first, &warning(AT, 4.9)).unwrap();
    let cancel = cases::cancel_warning(&update, "  水位已回落  ").unwrap();
    let changes = host.warning_changes();
    assert_eq!(changes.len(), 3);
    assert_eq!((changes[0].id.as_str(), changes[0].references.clone()), (update.as_str(), vec![first.clone()]));
    assert_eq!(changes[1].references, vec![first.clone(), update.clone()]);
    assert!(matches!(&changes[1].change, Change::Update(w) if w.headline == "危险水位 4.90 m"));
    assert_eq!((changes[2].id.as_str(), changes[2].of.as_str()), (cancel.as_str(), update.as_str()));
    assert_eq!(changes[2].references, vec![first.clone(), update.clone(), again.clone()]);
    assert_eq!(changes[2].change, Change::Cancel("水位已回落".into()));

    let after = cases::update_warning(&again, &warning(AT, 5.0)).unwrap_err();
    assert!(matches!(&after, Error::Conflict(m) if m.contains("cancelled")), "{after}");
    let twice = cases::cancel_warning(&first, "再次").unwrap_err();
    assert!(matches!(twice, Error::Conflict(_)), "{twice}");

    let foreign = cases::update_warning("w-other", &warning(AT, 4.2)).unwrap_err();
    assert_eq!(
        foreign,
        Error::Denied(
            "cases.update-warning `w-other`: warning `w-other` was raised by `plugin:yingji`; only its raiser updates or cancels it"
                .into()
        )
    );
    assert!(matches!(cases::cancel_warning("w-other", "误报"), Err(Error::Denied(_))));
    let denials = host.denials();
    assert_eq!(denials.len(), 2, "{denials:?}");
    assert_eq!((denials[1].action.as_str(), denials[1].subject.as_str()), ("cases.cancel-warning", "w-other"));

    assert!(matches!(cases::cancel_warning("w-none", "误报"), Err(Error::NotFound(_))));
    let first2 = cases::raise_warning(&warning(AT, 4.1)).unwrap();
    assert!(matches!(cases::cancel_warning(&first2, "   "), Err(Error::Invalid(_))), "a blank reason");
    assert_eq!(host.warning_changes().len(), 3, "refused changes are not recorded");
}

/// Without `warn` in its grants a plugin changes no warning, its own included.
#[test]
fn changing_a_warning_needs_the_warn_grant() {
    let host = MockHost::new().manifest_text(MANIFEST).unwrap().install();
    let err = cases::update_warning("warning-1", &warning(AT, 4.2)).unwrap_err();
    assert_eq!(err, Error::Denied("cases.update-warning `warning-1`: `warn` not in grants.cases".into()));
    let err = cases::cancel_warning("warning-1", "误报").unwrap_err();
    assert_eq!(err, Error::Denied("cases.cancel-warning `warning-1`: `warn` not in grants.cases".into()));
    assert_eq!(host.denials().len(), 2);
}
