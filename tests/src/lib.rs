//! Helpers for the end-to-end tests: the compiled test guests and a real host
//! (SQLite in a temporary folder, in-process bus, real HTTP on a free port).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use yiwang::app::{App, Options};
use yiwang::bus::{Event, Subscription};
use yiwang::clock::SharedClock;
use yiwang::identity::{AccountKind, NewUser, Role};
use yiwang::runtime::watch::WatchReport;
use yiwang::runtime::{LoadError, LoadedPlugin, Runtime, Supervision, UpgradePolicy};
use yiwang::services::Services;
use yiwang_registry::TopicPattern;

/// A compiled test guest.
#[derive(Debug)]
pub struct Guest {
    pub name: &'static str,
    /// The crate folder (holds `plugin.toml`).
    pub dir: &'static str,
    /// The compiled component.
    pub wasm: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The guest named `name`.
pub fn guest(name: &str) -> &'static Guest {
    GUESTS.iter().find(|g| g.name == name).unwrap_or_else(|| panic!("no test guest `{name}`"))
}

/// Copy a guest into `plugins_dir/<name>/` as a package folder, with an optional
/// change to its manifest text.
pub fn install_guest(plugins_dir: &Path, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let g = guest(name);
    let folder = plugins_dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let manifest = std::fs::read_to_string(Path::new(g.dir).join("plugin.toml")).unwrap();
    std::fs::write(folder.join("plugin.toml"), edit(manifest)).unwrap();
    std::fs::copy(g.wasm, folder.join("plugin.wasm")).unwrap();
    folder
}

/// A running host for one test.
pub struct TestHost {
    pub dir: tempfile::TempDir,
    pub runtime: Arc<Runtime>,
    pub services: Arc<Services>,
    pub base_url: String,
    /// A bearer token of the test operator `ops`.
    pub token: String,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The test operator's password.
pub const OPS_PASSWORD: &str = "运行-ops-password";

/// Settings for [`TestHost::start`].
#[derive(Default)]
pub struct TestOptions {
    pub bundled: bool,
    pub supervision: Supervision,
    pub clock: Option<SharedClock>,
    /// Guests to install before start.
    pub guests: Vec<&'static str>,
    /// Watch the plugins folder (hot loading); what the watcher does is sent here.
    pub watch: Option<mpsc::UnboundedSender<WatchReport>>,
    pub upgrade: UpgradePolicy,
    /// Only packages this policy trusts load (the host's `trust.toml`).
    pub trust: Option<yiwang_registry::TrustPolicy>,
    /// The registry operators upgrade from.
    pub registry: Option<String>,
    /// Start on the data folder of a host stopped with [`TestHost::stop`]
    /// (a restart), instead of a new one.
    pub data: Option<tempfile::TempDir>,
}

impl TestHost {
    /// Start a host with default options and these guests installed.
    pub async fn with_guests(guests: &[&'static str]) -> TestHost {
        TestHost::start(TestOptions { guests: guests.to_vec(), ..TestOptions::default() }).await
    }

    /// Start a host: build it, load its plugins folder, serve HTTP on 127.0.0.1:0.
    pub async fn start(o: TestOptions) -> TestHost {
        let restart = o.data.is_some();
        let dir = o.data.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let mut options = Options::new(dir.path().join("data"));
        options.install_bundled = o.bundled;
        options.runtime.supervision = o.supervision;
        options.runtime.upgrade = o.upgrade;
        options.watch_plugins = o.watch.is_some();
        options.watch_reports = o.watch;
        // Test guests are unsigned: they load as in development, unless
        // the test is about the trust policy.
        options.runtime.allow_unsigned = o.trust.is_none();
        options.runtime.trust = o.trust.map(Arc::new);
        options.runtime.registry = o.registry;
        std::fs::create_dir_all(options.plugins_dir()).unwrap();
        for g in &o.guests {
            install_guest(&options.plugins_dir(), g, |m| m);
        }
        let app = App::build(options, o.clock).await.unwrap();
        for r in &app.load_report {
            if let Err(e) = r {
                panic!("a test plugin was refused: {e}");
            }
        }
        let runtime = app.state.runtime.clone();
        let services = app.state.services.clone();
        let now = services.clock.now_ms();
        if !restart {
            services
            .identity
            .create_user(
                &NewUser {
                    id: "ops".into(),
                    username: "ops".into(),
                    display_name: "运维值班".into(),
                    password: OPS_PASSWORD.into(),
                    department: Some("command-center".into()),
                    org_unit: "320100".into(),
                    kind: AccountKind::Staff,
                    roles: vec![(Role::Operator, "320100".into())],
                },
                now,
            )
            .await
            .unwrap();
        }
        let (issued, _) = services.identity.login("ops", OPS_PASSWORD, now).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel();
        let served = tokio::spawn(app.serve(listener, async move {
            let _ = rx.await;
        }));
        TestHost {
            dir,
            runtime,
            services,
            base_url,
            token: issued.token,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            served: Some(served),
        }
    }

    /// Shut the server down as an operator's stop would (plugins stop being
    /// fed, positions in the event log are saved) and hand back its data
    /// folder, to start again on with [`TestOptions::data`].
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.unwrap().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    /// A staff account of `department` holding `role` in the whole city
    /// (`320100`); its bearer token.
    pub async fn staff(&self, id: &str, department: &str, role: Role) -> String {
        const PASSWORD: &str = "员工-test-password";
        let now = self.services.clock.now_ms();
        let user = NewUser {
            id: id.into(),
            username: id.into(),
            display_name: format!("用户 {id}"),
            password: PASSWORD.into(),
            department: Some(department.into()),
            org_unit: "320100".into(),
            kind: AccountKind::Staff,
            roles: vec![(role, "320100".into())],
        };
        self.services.identity.create_user(&user, now).await.unwrap();
        self.services.identity.login(id, PASSWORD, now).await.unwrap().0.token
    }

    /// Load the host's test city (`host/tests/data/city.geojson`: one
    /// district, two streets, four communities, sixteen grid cells).
    pub async fn load_test_city(&self) {
        let city = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../host/tests/data/city.geojson")).unwrap();
        self.services.space.load_geojson(&city).await.unwrap();
    }

    /// The plugins folder.
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("data").join("plugins")
    }

    /// Install a guest (with a manifest edit) and load it.
    pub async fn load_guest(
        &self,
        name: &str,
        edit: impl FnOnce(String) -> String,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        let folder = install_guest(&self.plugins_dir(), name, edit);
        self.runtime.load_package(&folder).await
    }

    /// Subscribe the test to a topic pattern.
    pub fn subscribe(&self, pattern: &str) -> Subscription {
        self.services.bus.subscribe("test", vec![TopicPattern::parse(pattern).unwrap()], 100_000)
    }

    /// Publish an event as the host.
    pub async fn publish(&self, topic: &str, payload: serde_json::Value) -> String {
        let id = yiwang::error::new_id();
        self.services
            .bus
            .publish(Event {
                id: id.clone(),
                topic: topic.into(),
                source: "host:test".into(),
                time: self.services.clock.now_ms(),
                location: None,
                payload: payload.to_string(),
            })
            .await
            .unwrap();
        id
    }

    /// Send a request as `token` (or anonymously) and parse the JSON body (`null` when empty).
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.base_url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    /// GET a path as the test operator and parse the JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        self.call("GET", path, Some(&self.token), None).await
    }

    /// GET a path as the test operator, as text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.client.get(format!("{}{path}", self.base_url)).bearer_auth(&self.token).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The plugin's counters as the admin API shows them.
    pub async fn plugin_view(&self, name: &str) -> serde_json::Value {
        let (status, body) = self.get_json(&format!("/api/plugins/{name}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Receive `n` events, or panic after `timeout` saying how many came.
pub async fn collect(events: &mut mpsc::Receiver<Arc<Event>>, n: usize, timeout: Duration) -> Vec<Arc<Event>> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(e)) => got.push(e),
            Ok(None) => panic!("subscription closed after {} of {n} events", got.len()),
            Err(_) => panic!("only {} of {n} events within {timeout:?}", got.len()),
        }
    }
    got
}

/// Wait until `check` holds, polling; panic with `what` after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `p`-quantile (0..=1) of sorted durations, by the nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
