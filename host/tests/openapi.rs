//! The OpenAPI document at `/openapi.json`, fetched from a real host (SQLite,
//! port 0): it is OpenAPI 3.x, lists the routes with their methods and
//! security, every `$ref` resolves, every failure uses the one `Error` schema,
//! and the document agrees with the router: each documented operation is
//! routed, and answers `401` without a token exactly when it says it needs one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yiwang::app::{App, Options};
use yiwang::identity::{AccountKind, NewUser, Role};
use yiwang::services::Services;

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

struct Host {
    addr: String,
    services: Arc<Services>,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path().join("data"));
    options.install_bundled = false;
    let app = App::build(options, None).await.unwrap();
    let services = app.state.services.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async move {
        let _ = rx.await;
    }));
    Host { addr, services, _dir: dir, _shutdown: tx }
}

struct Reply {
    status: u16,
    /// Header names in lower case.
    headers: HashMap<String, String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Host {
    /// One request over a fresh connection.
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Reply {
        let mut s = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        // The server may answer (and close) before it has read a refused body.
        let _ = s.write_all(body).await;
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response to {method} {path}"));
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let body = if headers.get("transfer-encoding").is_some_and(|v| v == "chunked") {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Reply { status, headers, body }
    }

    async fn document(&self) -> Value {
        let reply = self.call("GET", "/openapi.json", None, b"").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.headers.get("content-type").map(String::as_str), Some("application/json"));
        reply.json()
    }

    /// A staff operator, logged in; returns the token.
    async fn operator(&self) -> String {
        let now = self.services.clock.now_ms();
        let user = NewUser {
            id: "op".into(),
            username: "op".into(),
            display_name: "Operator".into(),
            password: "a long enough password".into(),
            department: None,
            org_unit: "320100".into(),
            kind: AccountKind::Staff,
            roles: vec![(Role::Operator, "320100".into())],
        };
        self.services.identity.create_user(&user, now).await.unwrap();
        self.services.identity.login("op", "a long enough password", now).await.unwrap().0.token
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((size, rest)) = body.split_once("\r\n") else { return out };
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// Every operation in the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method.to_owned(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// Whether an operation requires the bearer token.
fn secured(op: &Value) -> bool {
    match op.get("security") {
        None => false,
        Some(Value::Array(requirements)) => {
            assert_eq!(requirements, &vec![json!({ "bearer": [] })], "only the bearer scheme is used");
            true
        }
        Some(other) => panic!("security is not a list: {other}"),
    }
}

/// Resolve a local `$ref` (`#/components/...`) as a JSON pointer.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

/// Every `$ref` in `value`, with where it was found.
fn refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push((at.to_owned(), v.as_str().expect("a $ref is a string").to_owned()));
                } else {
                    refs(v, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The known routes: (method, path, needs a token). New routes may be added to
/// the document without being listed here; every one listed must be there.
const KNOWN: &[(&str, &str, bool)] = &[
    ("get", "/healthz", false),
    ("get", "/metrics", false),
    ("get", "/openapi.json", false),
    ("post", "/api/auth/login", false),
    ("post", "/api/auth/logout", true),
    ("get", "/api/auth/me", true),
    ("post", "/api/users", true),
    ("get", "/api/messages", true),
    ("post", "/api/messages", true),
    ("get", "/api/messages/stream", true),
    ("post", "/api/messages/{id}/read", true),
    ("get", "/api/sensor-kinds", true),
    ("get", "/api/sensors", true),
    ("post", "/api/sensors", true),
    ("get", "/api/sensors/{id}", true),
    ("get", "/api/sensors/{id}/latest", true),
    ("get", "/api/sensors/{id}/readings", true),
    ("get", "/api/sensors/{id}/aggregate", true),
    ("post", "/api/readings", true),
    ("get", "/api/space/at", true),
    ("get", "/api/space/grids", true),
    ("get", "/api/space/areas/{code}", true),
    ("post", "/api/space/load", true),
    ("get", "/api/plugins", true),
    ("get", "/api/plugins/{name}", true),
    ("get", "/api/plugins/{name}/history", true),
    ("post", "/api/plugins/{name}/enable", true),
    ("post", "/api/plugins/{name}/disable", true),
    ("post", "/api/plugins/{name}/approve", true),
    ("post", "/api/plugins/{name}/rollback", true),
    ("post", "/api/plugins/{name}/upgrade", true),
    ("post", "/api/residents", false),
    ("post", "/api/residents/{id}/verify", true),
    ("get", "/api/datasets", true),
    ("post", "/api/datasets", true),
    ("get", "/api/datasets/{name}", true),
    ("put", "/api/datasets/{name}", true),
    ("get", "/api/datasets/{name}/records", true),
    ("post", "/api/datasets/{name}/records", true),
    ("get", "/api/datasets/{name}/records/{key}", true),
    ("put", "/api/datasets/{name}/records/{key}", true),
    ("delete", "/api/datasets/{name}/records/{key}", true),
    ("post", "/api/datasets/{name}/import", true),
    ("get", "/api/component-classes", true),
    ("get", "/api/data/accountability", true),
    ("post", "/api/media", true),
    ("get", "/api/media/{sha256}", true),
    ("get", "/api/media/{sha256}/meta", true),
    ("get", "/api/cases/{id}/evidence", true),
    ("post", "/api/cases/{id}/evidence", true),
    ("post", "/api/reports", true),
    ("get", "/api/categories", true),
    ("get", "/api/cases/{id}", true),
    ("post", "/api/cases/{id}/transitions", true),
    ("post", "/api/cases/{id}/reports/{report}/confirm", true),
    ("post", "/api/cases/{id}/reports/{report}/split", true),
    ("get", "/api/dedup/rules", true),
    ("put", "/api/dedup/rules", true),
    ("get", "/api/tickets/{ticket}", false),
];

#[tokio::test]
async fn the_document_is_openapi_3_with_the_known_routes_and_their_security() {
    let host = start().await;
    let doc = host.document().await;

    let version = doc["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3."), "OpenAPI 3.x, not {version}");
    assert_eq!(doc["info"]["title"], "Yiwang");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["info"]["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(doc.get("security").is_none(), "no document-wide requirement: log-in must stay public");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"], json!({
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }));

    let ops = operations(&doc);
    let listed: BTreeSet<(String, String)> = ops.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();
    for (method, path, needs_token) in KNOWN {
        let (_, _, op) = ops
            .iter()
            .find(|(m, p, _)| m == method && p == path)
            .unwrap_or_else(|| panic!("{method} {path} is missing from the document; it lists {listed:?}"));
        assert_eq!(secured(op), *needs_token, "{method} {path}: bearer requirement");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has responses");
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path} has a summary");
        assert!(op["tags"].as_array().is_some_and(|t| t.len() == 1), "{method} {path} has one tag");
    }

    // The architecture's invariant, as the document states it: every `/api/*`
    // operation but log-in, resident registration and following a ticket
    // takes a token, and nothing outside `/api` does.
    for (method, path, op) in &ops {
        let public = !path.starts_with("/api/")
            || ["/api/auth/login", "/api/residents", "/api/tickets/{ticket}"].contains(&path.as_str());
        assert_eq!(secured(op), !public, "{method} {path}: bearer requirement");
        if secured(op) {
            assert!(op["responses"].get("401").is_some(), "{method} {path} documents its 401");
        }
    }

    // Operation ids name operations uniquely (client generators rely on it).
    let mut ids = BTreeSet::new();
    for (method, path, op) in &ops {
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has an operationId"));
        assert!(ids.insert(id.to_owned()), "operationId `{id}` is used twice");
    }

    // A few operations in detail.
    let op = |method: &str, path: &str| doc["paths"][path][method].clone();
    let names = |params: &Value, place: &str| -> BTreeSet<String> {
        params
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == place)
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let aggregate = op("get", "/api/sensors/{id}/aggregate");
    assert_eq!(names(&aggregate["parameters"], "path"), set(&["id"]));
    assert_eq!(names(&aggregate["parameters"], "query"), set(&["bucket_ms", "from", "to"]));
    assert!(aggregate["parameters"].as_array().unwrap().iter().all(|p| p["required"] == true));
    assert_eq!(
        aggregate["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ReadingAggregate"
    );
    let readings = op("post", "/api/readings");
    assert_eq!(readings["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Ingest");
    assert_eq!(names(&op("get", "/api/sensors")["parameters"], "query"), set(&["after", "department", "kind", "limit"]));
    let login = op("post", "/api/auth/login");
    assert_eq!(login["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Login");
    assert!(login["responses"].get("200").is_some() && login["responses"].get("401").is_some());
    assert!(op("get", "/api/messages/stream")["responses"]["200"]["content"].get("text/event-stream").is_some());
    let metrics = op("get", "/metrics")["responses"]["200"]["content"].as_object().unwrap().clone();
    assert!(metrics.keys().any(|k| k.starts_with("application/openmetrics-text")), "{metrics:?}");
    let create = op("post", "/api/sensors");
    assert!(["200", "201", "403", "422"].iter().all(|s| create["responses"].get(s).is_some()), "{create}");

    // Schemas derived from the service types.
    let schemas = &doc["components"]["schemas"];
    let props = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"].as_object().unwrap_or_else(|| panic!("schema {name}")).keys().cloned().collect()
    };
    assert_eq!(props("Sensor"), set(&["department", "id", "kind", "lat", "lon", "unit"]));
    assert_eq!(props("Principal"), set(&["department", "display_name", "id", "kind", "org_unit", "roles", "verified"]));
    assert_eq!(props("LoggedIn"), set(&["expires_ms", "token", "user"]));
}

#[tokio::test]
async fn every_ref_resolves_and_every_failure_uses_the_error_schema() {
    let host = start().await;
    let doc = host.document().await;

    let mut found = Vec::new();
    refs(&doc, "#", &mut found);
    assert!(found.len() > 50, "the document refers to its components: {} refs", found.len());
    for (at, reference) in &found {
        assert!(reference.starts_with("#/components/"), "{at}: `{reference}` is not local");
        assert!(resolve(&doc, reference).is_some(), "{at}: `{reference}` does not resolve");
    }

    // The one error shape.
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], json!(["error"]));
    let detail = &error["properties"]["error"];
    assert_eq!(detail["required"], json!(["code", "message"]));
    let codes: BTreeSet<String> =
        detail["properties"]["code"]["enum"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    let expected = [
        "bad-request",
        "conflict",
        "forbidden",
        "internal",
        "not-found",
        "payload-too-large",
        "too-many-requests",
        "unauthorized",
        "unprocessable",
        "unsupported-media-type",
    ];
    assert_eq!(codes, set(&expected));

    // Every 4xx/5xx answered in JSON is the `Error` schema, directly or through
    // a shared response.
    let mut checked = 0;
    for (method, path, op) in operations(&doc) {
        for (status, response) in op["responses"].as_object().unwrap() {
            // `/healthz` answers 503 with its own body while plugins load; Open311
            // answers in the Open311 error form its clients expect.
            if !(status.starts_with('4') || status.starts_with('5'))
                || (path == "/healthz" && status == "503")
                || path.starts_with("/open311/")
            {
                continue;
            }
            let response = match response.get("$ref") {
                Some(r) => resolve(&doc, r.as_str().unwrap()).unwrap(),
                None => response,
            };
            let Some(content) = response["content"].get("application/json") else {
                // The plain-text answers axum gives before a handler runs.
                assert!(response["content"].get("text/plain").is_some(), "{method} {path} {status}: {response}");
                continue;
            };
            assert_eq!(content["schema"]["$ref"], "#/components/schemas/Error", "{method} {path} {status}");
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} error responses checked");
}

/// The document against the router: each documented operation is routed
/// (never the fallback 404), and without a token answers 401 in the one error
/// shape exactly when the document says it needs one.
#[tokio::test]
async fn every_documented_operation_is_routed_and_secured_as_documented() {
    let host = start().await;
    let doc = host.document().await;
    let ops = operations(&doc);
    assert!(ops.len() >= KNOWN.len());
    for (method, path, op) in &ops {
        // Every path parameter becomes `x`.
        let concrete: String = path
            .split('/')
            .map(|segment| if segment.starts_with('{') && segment.ends_with('}') { "x" } else { segment })
            .collect::<Vec<_>>()
            .join("/");
        let reply = host.call(&method.to_ascii_uppercase(), &concrete, None, b"").await;
        assert_ne!(reply.status, 405, "{method} {path} is documented but not routed for {method}");
        if secured(op) {
            assert_eq!(reply.status, 401, "{method} {path} without a token: {}", reply.body);
            assert_eq!(reply.json()["error"]["code"], "unauthorized", "{method} {path}");
        } else {
            assert_ne!(reply.status, 401, "{method} {path} is documented as public: {}", reply.body);
            assert!(
                !(reply.status == 404 && reply.body.contains("no such route")),
                "{method} {path} is documented but not routed"
            );
        }
    }

    // Outside the document, the fallback still answers 404 in the one shape.
    let reply = host.call("GET", "/api/nothing-here", None, b"").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json(), json!({ "error": { "code": "not-found", "message": "no such route" } }));
}

/// Registering routes through the document keeps their layers: ingest accepts
/// bodies up to 8 MiB, other JSON routes keep axum's 2 MiB default.
#[tokio::test]
async fn body_limits_are_kept() {
    let host = start().await;
    let token = host.operator().await;
    let padded = |size: usize, json: &str| {
        let mut body = json.as_bytes().to_vec();
        body.resize(size, b' ');
        body
    };
    let three_mib = 3 * 1024 * 1024;

    let reply = host.call("POST", "/api/readings", Some(&token), &padded(three_mib, r#"{"readings": []}"#)).await;
    assert_eq!((reply.status, reply.json()), (200, json!({ "accepted": 0 })));

    let reply = host.call("POST", "/api/readings", Some(&token), &padded(9 * 1024 * 1024, r#"{"readings": []}"#)).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.json()["error"]["message"].as_str().unwrap().starts_with("cannot read the body"), "{}", reply.body);

    let send = r#"{"to": {"kind": "user", "id": "op"}, "subject": "s", "body": "b"}"#;
    let reply = host.call("POST", "/api/messages", Some(&token), &padded(three_mib, send)).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.json()["error"]["message"].as_str().unwrap().starts_with("cannot read the body"), "{}", reply.body);
    let reply = host.call("POST", "/api/messages", Some(&token), send.as_bytes()).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}
