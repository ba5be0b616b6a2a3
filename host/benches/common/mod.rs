//! What the HTTP benchmarks share: the demonstration city's reports and a
//! keep-alive client that posts them.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use yiwang::demo::city::BOX;

/// A small deterministic generator (xorshift), so every run files the same reports.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const PLACES: [&str; 8] = ["中山路", "太平南路", "洪武路", "长江路", "珠江路", "建邺路", "汉中路", "白下路"];
const PROBLEMS: [&str; 8] = ["井盖破损", "路灯不亮", "垃圾满溢", "占道经营", "违章搭建", "道路积水", "树木倒伏", "噪声扰民"];

pub fn report(rng: &mut Rng, categories: &[String], n: usize) -> String {
    let category = &categories[rng.next() as usize % categories.len()];
    // The demonstration city's central districts, where the reports pile up.
    let [s0, w0, n0, e0] = BOX;
    let lat = s0 + (n0 - s0) * (0.3 + 0.4 * rng.unit());
    let lon = w0 + (e0 - w0) * (0.3 + 0.4 * rng.unit());
    let place = PLACES[rng.next() as usize % PLACES.len()];
    let problem = PROBLEMS[rng.next() as usize % PROBLEMS.len()];
    format!(
        r#"{{"channel":"patrol","category_code":"{category}","description":"{place}{}号附近{problem}，巡查发现（第{n}条）","location":{{"lat":{lat:.6},"lon":{lon:.6}}}}}"#,
        rng.next() % 400
    )
}

/// One keep-alive connection: POST each body, read each answer; the latencies.
/// With `every`, one body per `every` (a steady rate), else as fast as the
/// answers come.
pub async fn client(addr: String, token: String, bodies: Vec<String>) -> (Vec<Duration>, usize) {
    paced_client(addr, token, bodies, None).await
}

pub async fn paced_client(addr: String, token: String, bodies: Vec<String>, every: Option<Duration>) -> (Vec<Duration>, usize) {
    let mut ticks = every.map(|d| {
        let mut t = tokio::time::interval(d);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let stream = TcpStream::connect(&addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut latencies = Vec::with_capacity(bodies.len());
    let mut joined = 0;
    let mut line = String::new();
    for body in bodies {
        if let Some(t) = ticks.as_mut() {
            t.tick().await;
        }
        let started = Instant::now();
        let head = format!(
            "POST /api/reports HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        write.write_all(format!("{head}{body}").as_bytes()).await.unwrap();
        line.clear();
        read.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("HTTP/1.1 201"), "{line}");
        let mut length = 0;
        loop {
            line.clear();
            read.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0; length];
        read.read_exact(&mut answer).await.unwrap();
        if answer.windows(13).any(|w| w == b"\"joined\":true") {
            joined += 1;
        }
        latencies.push(started.elapsed());
    }
    (latencies, joined)
}


/// A host serving on 127.0.0.1 with SQLite in a temporary folder, the
/// demonstration city seeded, and eight grid workers to file reports.
pub struct Host {
    pub app: yiwang::api::AppState,
    pub addr: String,
    pub tokens: Vec<String>,
    pub categories: Vec<String>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Host {
    /// With the four bundled department plugins loaded, or none.
    pub async fn start(plugins: bool) -> Host {
        use yiwang::identity::{AccountKind, NewUser, Role};
        let dir = tempfile::tempdir().unwrap();
        let mut options = yiwang::app::Options::new(dir.path().join("data"));
        options.install_bundled = plugins;
        options.watch_plugins = false;
        let app = yiwang::app::App::build(options, None).await.unwrap();
        assert!(app.load_report.iter().all(|r| r.is_ok()), "{:?}", app.load_report);
        let services = app.state.services.clone();
        let layout = yiwang::demo::city::layout();
        yiwang::demo::city::seed(&services, &layout, "2026-12-01").await.unwrap();
        let categories: Vec<String> = services.cases.categories().await.unwrap().into_iter().map(|c| c.code).take(40).collect();
        let now = services.clock.now_ms();
        let mut tokens = Vec::new();
        for w in 0..8 {
            let user = NewUser {
                id: format!("bench-grid-{w}"),
                username: format!("bench-grid-{w}"),
                display_name: format!("网格员{w}"),
                password: "bench-password".into(),
                department: None,
                org_unit: "320100".into(),
                kind: AccountKind::Staff,
                roles: vec![(Role::GridWorker, "320100".into())],
            };
            services.identity.create_user(&user, now).await.unwrap();
            tokens.push(services.identity.login(&user.username, "bench-password", now).await.unwrap().0.token);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = app.state.clone();
        let server = tokio::spawn(app.serve(listener, async move {
            let _ = stopped.await;
        }));
        Host { app: state, addr, tokens, categories, stop, server, _dir: dir }
    }

    /// How many reports are stored.
    pub async fn stored(&self) -> usize {
        let row = sqlx::query("SELECT COUNT(*) FROM reports").fetch_one(self.app.services.db.pool()).await.unwrap();
        sqlx::Row::get::<i64, _>(&row, 0) as usize
    }

    /// Each plugin's lag now, one line each.
    pub fn print_lag(&self, when: &str) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        for s in self.app.services.bus.stats().into_iter().filter(|s| s.durable) {
            let age = s.oldest_waiting_ms.map_or(0.0, |t| (now - t) as f64 / 1e3);
            println!("  lag {when}: {:<14} {:>7} events waiting, oldest {age:.1} s", s.name, s.waiting);
        }
    }

    /// Each plugin's counters, one line each; the totals of skipped events,
    /// dead letters and quarantines.
    pub fn print_plugins(&self) -> (u64, u64, u64) {
        let (mut skipped, mut dead, mut quarantines) = (0, 0, 0);
        for p in self.app.runtime.plugins() {
            let v = p.ctx.stats.view();
            let failures: u64 = v.failures.values().sum();
            skipped += v.skipped;
            dead += v.dead_letters;
            quarantines += v.quarantines;
            println!(
                "  {:<14} {:>8} calls, mean {:>7.0} µs, {} guest errors, {failures} failures {:?}, {} skipped, {} dead letters, {} quarantines",
                p.name(),
                v.calls,
                v.mean_latency_us,
                v.guest_errors,
                v.failures,
                v.skipped,
                v.dead_letters,
                v.quarantines
            );
        }
        (skipped, dead, quarantines)
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// The resident memory of this process, in MiB.
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
