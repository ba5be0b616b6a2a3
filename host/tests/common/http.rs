//! A real host on SQLite in a temporary directory, serving on a free port, and a
//! plain HTTP/1.1 client for it: requests are written by hand over a fresh TCP
//! connection so that tests see exactly what a client would.

use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yiwang::app::{App, Options};
use yiwang::identity::{AccountKind, NewUser, Role};
use yiwang::services::Services;

pub struct Host {
    pub addr: String,
    pub services: Arc<Services>,
    pub dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub const PASSWORD: &str = "测试-password";

/// A response: status, headers (lower-case names) and body text.
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        if self.body.is_empty() { Value::Null } else { serde_json::from_str(&self.body).unwrap() }
    }
}

pub async fn start(bundled: bool) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path().join("data"));
    options.install_bundled = bundled;
    let app = App::build(options, None).await.unwrap();
    assert!(app.load_report.iter().all(|r| r.is_ok()));
    let services = app.state.services.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async move {
        let _ = rx.await;
    }));
    Host { addr, services, dir, _shutdown: tx }
}

impl Host {
    /// Create a user whose roles are all held in `unit`, and log them in; returns the token.
    pub async fn user(&self, id: &str, department: Option<&str>, kind: AccountKind, roles: &[Role], unit: &str) -> String {
        let now = self.services.clock.now_ms();
        let user = NewUser {
            id: id.into(),
            username: id.into(),
            display_name: format!("用户 {id}"),
            password: PASSWORD.into(),
            department: department.map(Into::into),
            org_unit: unit.into(),
            kind,
            roles: roles.iter().map(|r| (*r, unit.to_owned())).collect(),
        };
        self.services.identity.create_user(&user, now).await.unwrap();
        self.services.identity.login(id, PASSWORD, now).await.unwrap().0.token
    }

    /// One request with a raw body over a fresh connection.
    pub async fn raw(&self, method: &str, path: &str, token: &str, content_type: &str, body: &[u8]) -> Response {
        let mut s = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let auth = if token.is_empty() { String::new() } else { format!("Authorization: Bearer {token}\r\n") };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let head = head.to_ascii_lowercase();
        let body = if head.contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
        Response { status, head, body }
    }

    /// A JSON request: (status, JSON body or null).
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let r = self.raw(method, path, token, "application/json", body.as_bytes()).await;
        (r.status, r.json())
    }

    /// Take `action` on `case` as `token`, with the body's other fields from `extra`.
    pub async fn transition(&self, case: &str, token: &str, action: &str, extra: Value) -> (u16, Value) {
        let mut body = serde_json::json!({ "action": action });
        for (k, v) in extra.as_object().expect("extra fields are an object") {
            body[k] = v.clone();
        }
        self.post(&format!("/api/cases/{case}/transitions"), token, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, token, Some(body)).await
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// The message of an error answer.
pub fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_else(|| panic!("no error message in {body}"))
}
