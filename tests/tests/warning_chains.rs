//! A plugin updates and cancels the warnings it raised (CAP `Update` and
//! `Cancel`): each change is a message of the warning's chain, published with
//! the chain's earlier messages and exported as CAP with `references`; another
//! plugin's change is denied and audited.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use yiwang::protocols::cap::{self, MsgType};
use yiwang_tests::{TestHost, collect, guest};

const WAIT: Duration = Duration::from_secs(60);

/// Ask `topic`'s plugin for one change and wait for its answer.
async fn ask(host: &TestHost, answers: &mut yiwang::bus::Subscription, topic: &str, body: Value) -> Value {
    host.publish(topic, body).await;
    let got = collect(&mut answers.events, 1, WAIT).await;
    serde_json::from_str(&got[0].payload).unwrap()
}

fn id(answer: &Value) -> String {
    answer["id"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned()
}

/// The next event on `sub`, its payload.
async fn next(sub: &mut yiwang::bus::Subscription) -> (String, Value) {
    let got = collect(&mut sub.events, 1, WAIT).await;
    (got[0].topic.clone(), serde_json::from_str(&got[0].payload).unwrap())
}

/// Warning `id` as the CAP the host exports.
async fn exported(host: &TestHost, id: &str) -> cap::Alert {
    let (status, xml) = host.get_text(&format!("/api/warnings/{id}/cap")).await;
    assert_eq!(status, 200, "{xml}");
    cap::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"))
}

/// The reviser's component as another plugin, `intruder`, listening on `test.intrude`.
async fn load_intruder(host: &TestHost) {
    let g = guest("reviser");
    let folder = host.plugins_dir().join("intruder");
    std::fs::create_dir_all(&folder).unwrap();
    let manifest = std::fs::read_to_string(Path::new(g.dir).join("plugin.toml"))
        .unwrap()
        .replace("name = \"reviser\"", "name = \"intruder\"")
        .replace("subscribe = [\"test.revise\"]", "subscribe = [\"test.intrude\"]");
    std::fs::write(folder.join("plugin.toml"), manifest).unwrap();
    std::fs::copy(g.wasm, folder.join("plugin.wasm")).unwrap();
    host.runtime.load_package(&folder).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_is_updated_and_cancelled_by_its_raiser_alone() {
    let host = TestHost::with_guests(&["reviser"]).await;
    host.load_test_city().await;
    load_intruder(&host).await;
    let mut answers = host.subscribe("test.revised");
    let mut raised = host.subscribe("warning.env");
    let mut cancelled = host.subscribe("warning-cancelled.>");

    let first = id(&ask(&host, &mut answers, "test.revise", json!({ "op": "raise" })).await);
    let (_, alert) = next(&mut raised).await;
    assert_eq!(alert["warning"], json!(first));
    assert!(alert.get("msg_type").is_none() && alert.get("references").is_none(), "a new warning: {alert}");

    let update = json!({ "op": "update", "id": first, "severity": "severe" });
    let u1 = id(&ask(&host, &mut answers, "test.revise", update).await);
    let (topic, payload) = next(&mut raised).await;
    assert_eq!(topic, "warning.env");
    assert_eq!((&payload["warning"], &payload["msg_type"]), (&json!(u1), &json!("Update")), "{payload}");
    assert_eq!(payload["references"], json!([first]), "{payload}");
    assert_eq!(payload["info"]["severity"], "Severe", "{payload}");
    assert_eq!(payload["source"], "plugin:reviser");

    // Any message of the chain names it; the chain grows by one.
    let u2 = id(&ask(&host, &mut answers, "test.revise", json!({ "op": "update", "id": first, "severity": "extreme" })).await);
    let (_, payload) = next(&mut raised).await;
    assert_eq!(payload["references"], json!([first, u1]), "{payload}");

    // Another plugin may neither update nor cancel it.
    for op in [json!({ "op": "update", "id": u1, "severity": "minor" }), json!({ "op": "cancel", "id": first, "reason": "误报" })] {
        let answer = ask(&host, &mut answers, "test.intrude", op).await;
        assert_eq!(answer["by"], "plugin:intruder");
        let error = answer["error"].as_str().unwrap_or_else(|| panic!("{answer}"));
        assert!(error.starts_with("denied: cases.") && error.contains("only its raiser"), "{error}");
        assert!(error.contains(&format!("warning `{first}` was raised by `plugin:reviser`")), "{error}");
    }
    for action in ["cases.update-warning", "cases.cancel-warning"] {
        let audit = host.services.audit.find(Some("plugin:intruder"), Some(action), 10).await.unwrap();
        assert_eq!(audit.len(), 1, "{action}: {audit:?}");
        assert_eq!(audit[0].outcome, "denied");
    }
    assert_eq!(host.plugin_view("intruder").await["counters"]["denials"], 2);

    let cancel = json!({ "op": "cancel", "id": u2, "reason": "垃圾已清运" });
    let c = id(&ask(&host, &mut answers, "test.revise", cancel).await);
    let (topic, payload) = next(&mut cancelled).await;
    assert_eq!(topic, "warning-cancelled.env");
    assert_eq!(
        payload,
        json!({
            "category": "env", "communities": payload["communities"], "reason": "垃圾已清运",
            "references": [first, u1, u2], "source": "plugin:reviser", "streets": payload["streets"], "warning": c,
        })
    );
    assert!(!payload["communities"].as_array().unwrap().is_empty(), "the area reaches the test city: {payload}");
    let audit = host.services.audit.find(Some("plugin:reviser"), Some("cases.cancel-warning"), 10).await.unwrap();
    assert_eq!((audit.len(), audit[0].outcome.as_str(), audit[0].subject.as_str()), (1, "ok", first.as_str()));

    // A cancelled warning takes no more changes.
    let late = ask(&host, &mut answers, "test.revise", json!({ "op": "update", "id": first, "severity": "minor" })).await;
    assert!(late["error"].as_str().unwrap().starts_with("conflict:"), "{late}");
    let unknown = ask(&host, &mut answers, "test.revise", json!({ "op": "cancel", "id": "no-such", "reason": "x" })).await;
    assert!(unknown["error"].as_str().unwrap().starts_with("not-found:"), "{unknown}");

    // The CAP export: the Alert, then Updates and the Cancel naming the chain.
    let a = exported(&host, &first).await;
    assert_eq!((a.msg_type, a.references.len()), (MsgType::Alert, 0));
    let sent_first = a.sent.clone();
    let e1 = exported(&host, &u1).await;
    assert_eq!(e1.msg_type, MsgType::Update);
    assert_eq!(e1.references.len(), 1);
    assert_eq!((e1.references[0].sender.as_str(), e1.references[0].identifier.as_str()), (a.sender.as_str(), first.as_str()));
    assert_eq!(e1.references[0].sent, sent_first, "a reference names the earlier message's own `sent`");
    let e2 = exported(&host, &u2).await;
    assert_eq!(e2.referenced_identifiers(), vec![first.as_str(), u1.as_str()]);
    assert_eq!(e2.references[1].sent, e1.sent);
    let ec = exported(&host, &c).await;
    assert_eq!(ec.msg_type, MsgType::Cancel);
    assert_eq!(ec.referenced_identifiers(), vec![first.as_str(), u1.as_str(), u2.as_str()]);
    assert_eq!(ec.note.as_deref(), Some("垃圾已清运"));
    assert_eq!(ec.infos[0].severity, cap::Severity::Extreme, "the cancel withdraws the warning as last updated");
    // The XML says it as CAP 1.2 does: space-separated `sender,identifier,sent`.
    let (_, xml) = host.get_text(&format!("/api/warnings/{u2}/cap")).await;
    let expected = format!("<references>{},{first},{} {},{u1},{}</references>", a.sender, a.sent, a.sender, e1.sent);
    assert!(xml.contains(&expected), "{xml}\nlacks {expected}");
    assert!(xml.contains("<msgType>Update</msgType>"), "{xml}");
    assert!(host.services.audit.verify().await.unwrap().is_none());
}
