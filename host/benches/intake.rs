//! Durable intakes per second over HTTP: `POST /api/reports` on a real host
//! with SQLite in a temporary folder and the production settings (WAL,
//! `synchronous = FULL`), so every report and its case are on disk before the
//! `201`. The target is at least 5,000 intakes/s on 2 cores.
//!
//! Two runs side by side, on the demonstration city (`yiwang demo`'s seed):
//! the host alone, then the host with the four bundled department plugins
//! loaded, which see every `case.reported`. After the second, the plugins'
//! lag (events kept for them and not yet handled) when the load stops, how
//! long they take to catch up, and their failures, dead letters and
//! quarantines. `INTAKE_BENCH_PLUGINS=without` or `=with` runs one only.
//!
//! Grid workers file patrol reports (`channel: patrol`) at random places in
//! the city, over 40 categories, with
//! varied text: each report is placed in its grid cell, checked against the
//! open cases for a repeat (deduplication), and either joins one or opens a
//! new case, as in operation. `INTAKE_BENCH_CONNECTIONS` keep-alive
//! connections (default 64) each send their share of `INTAKE_BENCH_REPORTS`
//! reports (default 50,000) one after another; the load generator runs in the
//! same process, on the same 2 cores.
//!
//! Run: `cargo bench -p yiwang --bench intake`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use yiwang::app::{App, Options};
use yiwang::demo::city::BOX;
use yiwang::identity::{AccountKind, NewUser, Role};

/// A small deterministic generator (xorshift), so every run files the same reports.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const PLACES: [&str; 8] = ["中山路", "太平南路", "洪武路", "长江路", "珠江路", "建邺路", "汉中路", "白下路"];
const PROBLEMS: [&str; 8] = ["井盖破损", "路灯不亮", "垃圾满溢", "占道经营", "违章搭建", "道路积水", "树木倒伏", "噪声扰民"];

fn report(rng: &mut Rng, categories: &[String], n: usize) -> String {
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
async fn client(addr: String, token: String, bodies: Vec<String>) -> (Vec<Duration>, usize) {
    let stream = TcpStream::connect(&addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut latencies = Vec::with_capacity(bodies.len());
    let mut joined = 0;
    let mut line = String::new();
    for body in bodies {
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

fn main() {
    let which = std::env::var("INTAKE_BENCH_PLUGINS").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if which != "with" {
        runtime.block_on(run(false));
    }
    if which != "without" {
        runtime.block_on(run(true));
    }
}

async fn run(plugins: bool) {
    let reports: usize = std::env::var("INTAKE_BENCH_REPORTS").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let connections: usize = std::env::var("INTAKE_BENCH_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    {
        let dir = tempfile::tempdir().unwrap();
        let mut options = Options::new(dir.path().join("data"));
        options.install_bundled = plugins;
        options.watch_plugins = false;
        let app = App::build(options, None).await.unwrap();
        assert!(app.load_report.iter().all(|r| r.is_ok()), "{:?}", app.load_report);
        let services = app.state.services.clone();
        let plugin_runtime = app.state.runtime.clone();
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
        let server = tokio::spawn(app.serve(listener, async move {
            let _ = stopped.await;
        }));

        let mut rng = Rng(0x5eed_1234_abcd_0042);
        // Warm-up: a first thousand reports (not measured) load the indexes.
        let warm: Vec<String> = (0..1000).map(|n| report(&mut rng, &categories, n)).collect();
        client(addr.clone(), tokens[0].clone(), warm).await;

        let mut shares: Vec<Vec<String>> = vec![Vec::new(); connections];
        for n in 0..reports {
            shares[n % connections].push(report(&mut rng, &categories, n + 1000));
        }
        let started = Instant::now();
        let clients: Vec<_> = shares
            .into_iter()
            .enumerate()
            .map(|(i, bodies)| tokio::spawn(client(addr.clone(), tokens[i % tokens.len()].clone(), bodies)))
            .collect();
        let mut latencies = Vec::with_capacity(reports);
        let mut joined = 0;
        for c in clients {
            let (l, j) = c.await.unwrap();
            latencies.extend(l);
            joined += j;
        }
        let took = started.elapsed();
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        let loaded = plugin_runtime.plugins().len();
        println!(
            "intake over HTTP, SQLite, {loaded} plugins: {:>6.0} intakes/s  ({reports} reports in {:.2} s over {connections} connections; \
             {joined} joined an open case; latency p50 {:.1} ms, p99 {:.1} ms)",
            reports as f64 / took.as_secs_f64(),
            took.as_secs_f64(),
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
        );
        let stored: i64 =
            sqlx::Row::get(&sqlx::query("SELECT COUNT(*) FROM reports").fetch_one(services.db.pool()).await.unwrap(), 0);
        assert_eq!(stored as usize, reports + 1000, "every report answered 201 is stored");
        if plugins {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
            for s in services.bus.stats().into_iter().filter(|s| s.durable) {
                let age = s.oldest_waiting_ms.map_or(0.0, |t| (now - t) as f64 / 1e3);
                println!("  lag when the load stopped: {:<14} {:>7} events waiting, oldest {age:.1} s", s.name, s.waiting);
            }
            let caught = Instant::now();
            let settled = plugin_runtime.settle(Duration::from_secs(600)).await;
            println!(
                "  the plugins {} in {:.1} s",
                if settled { "caught up" } else { "had NOT caught up" },
                caught.elapsed().as_secs_f64()
            );
            for p in plugin_runtime.plugins() {
                let v = p.ctx.stats.view();
                let failures: u64 = v.failures.values().sum();
                println!(
                    "  {:<14} {:>7} calls, mean {:>7.0} µs, {} guest errors, {failures} failures {:?}, {} dead letters, {} quarantines",
                    p.name(),
                    v.calls,
                    v.mean_latency_us,
                    v.guest_errors,
                    v.failures,
                    v.dead_letters,
                    v.quarantines
                );
            }
        }
        let _ = stop.send(());
        let _ = server.await;
    }
}
