//! Batched reading ingest through the data service, as `POST /api/readings`
//! runs it: validate the batch and resolve its sensors, write it in one
//! transaction with multi-row upserts, commit, and hand its events to the bus
//! (an in-process bus without subscribers, so the bus costs next to nothing).
//! The target is at least 100,000 rows/s on SQLite.
//!
//! SQLite runs with the production settings (a file in a temporary folder, WAL,
//! `synchronous = FULL`); PostgreSQL runs too when `YIWANG_TEST_POSTGRES`
//! names a server (a fresh schema, dropped afterwards).
//!
//! A second figure per backend is the same through HTTP: a real host on
//! 127.0.0.1:0, one `POST /api/readings` per batch (JSON prepared beforehand,
//! one connection each) by an operator, answered after the commit.
//!
//! Run: `cargo bench -p yiwang --bench ingest`. `INGEST_BENCH_ROWS` sets the
//! rows per measurement (default 200,000), `INGEST_BENCH_BATCH` one batch size
//! instead of both 1,000 and 10,000.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yiwang::app::{App, Options};
use yiwang::bus::{Bus, MemoryBus};
use yiwang::clock::SystemClock;
use yiwang::data::{Data, NewReading, Sensor};
use yiwang::db::Db;
use yiwang::identity::{AccountKind, NewUser, Role};

const POSTGRES_ENV: &str = "YIWANG_TEST_POSTGRES";
const SENSORS: usize = 100;
/// 2026-01-01T00:00:00Z, where the synthetic series start.
const START: i64 = 1_767_225_600_000;

/// `rows` readings in batches of `batch`: each batch covers every sensor
/// round-robin with fresh times (one reading a sensor a second), so every
/// row is a new one, as in steady operation.
fn batches(rows: usize, batch: usize, offset: i64) -> Vec<Vec<NewReading>> {
    (0..rows.div_ceil(batch))
        .map(|b| {
            (0..batch.min(rows - b * batch))
                .map(|i| {
                    let n = b * batch + i;
                    let s = n % SENSORS;
                    let step = (n / SENSORS) as i64;
                    NewReading::new(
                        format!("wl-bench-{s:03}"),
                        START + offset + step * 1000,
                        1.0 + ((n * 7919) % 1000) as f64 / 1000.0,
                    )
                })
                .collect()
        })
        .collect()
}

struct Run {
    rows: usize,
    prepare: Duration,
    commit: Duration,
    total: Duration,
}

async fn run(data: &Data, bus: &Arc<dyn Bus>, batches: &[Vec<NewReading>]) -> Run {
    let (mut prepare, mut commit) = (Duration::ZERO, Duration::ZERO);
    let started = Instant::now();
    let mut rows = 0;
    for b in batches {
        let t0 = Instant::now();
        let prepared = data.prepare_readings(b).await.expect("a valid batch");
        let t1 = Instant::now();
        let committed = data.commit_readings(prepared).await.expect("the batch commits");
        let t2 = Instant::now();
        rows += committed.accepted();
        data.announce_readings(bus.clone(), "user:bench".to_owned(), committed).await;
        prepare += t1 - t0;
        commit += t2 - t1;
    }
    Run { rows, prepare, commit, total: started.elapsed() }
}

fn sensor(s: usize) -> Sensor {
    Sensor {
        id: format!("wl-bench-{s:03}"),
        kind: "water-level".into(),
        unit: "m".into(),
        lat: 32.0 + s as f64 * 0.001,
        lon: 118.7,
        department: "yingji".into(),
    }
}

/// The batch sizes to measure.
fn sizes() -> Vec<usize> {
    match std::env::var("INGEST_BENCH_BATCH") {
        Ok(v) => vec![v.parse().expect("INGEST_BENCH_BATCH is a number")],
        Err(_) => vec![1000, 10_000],
    }
}

async fn bench(name: &str, db: Db, rows: usize) {
    let data = Data::new(db.clone(), Arc::new(SystemClock), Arc::new(yiwang::space::Space::new(db.clone())));
    for s in 0..SENSORS {
        data.register_sensor(&sensor(s)).await.unwrap();
    }
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::default());
    // Warm up: connections, prepared statements, page cache.
    run(&data, &bus, &batches(20_000, 1000, -10_000_000_000)).await;
    for (k, batch) in sizes().into_iter().enumerate() {
        let input = batches(rows, batch, k as i64 * 1_000_000_000);
        let r = run(&data, &bus, &input).await;
        let per_s = |d: Duration| r.rows as f64 / d.as_secs_f64();
        println!(
            "{name:<15} batches of {batch:>6}: {:>7.0} rows/s  ({} rows in {:.2} s; validate {:.2} s, \
             write+commit {:.2} s, alone {:.0} rows/s)",
            per_s(r.total),
            r.rows,
            r.total.as_secs_f64(),
            r.prepare.as_secs_f64(),
            r.commit.as_secs_f64(),
            per_s(r.commit),
        );
    }
}

/// A batch as the JSON body of `POST /api/readings`.
fn body(batch: &[NewReading]) -> String {
    let readings: Vec<String> =
        batch.iter().map(|r| format!(r#"{{"sensor":"{}","time":{},"value":{}}}"#, r.sensor, r.time, r.value)).collect();
    format!(r#"{{"readings":[{}]}}"#, readings.join(","))
}

/// POST `body` and return the status line.
async fn post(addr: &str, token: &str, body: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/readings HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

async fn bench_http(name: &str, database_url: Option<String>, rows: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path().join("data"));
    options.install_bundled = false;
    options.database_url = database_url;
    let app = App::build(options, None).await.unwrap();
    let services = app.state.services.clone();
    for s in 0..SENSORS {
        services.data.register_sensor(&sensor(s)).await.unwrap();
    }
    let now = services.clock.now_ms();
    let user = NewUser {
        id: "bench".into(),
        username: "bench".into(),
        display_name: "压测".into(),
        password: "bench-password".into(),
        department: Some("command-center".into()),
        org_unit: "320100".into(),
        kind: AccountKind::Staff,
        roles: vec![(Role::Operator, "320100".into())],
    };
    services.identity.create_user(&user, now).await.unwrap();
    let token = services.identity.login("bench", "bench-password", now).await.unwrap().0.token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    for b in batches(20_000, 1000, -10_000_000_000) {
        assert!(post(&addr, &token, &body(&b)).await.contains(" 200 "));
    }
    for (k, batch) in sizes().into_iter().enumerate() {
        let bodies: Vec<String> = batches(rows, batch, k as i64 * 1_000_000_000).iter().map(|b| body(b)).collect();
        let bytes: usize = bodies.iter().map(String::len).sum();
        let started = Instant::now();
        for b in &bodies {
            let status = post(&addr, &token, b).await;
            assert!(status.contains(" 200 "), "{status}");
        }
        let took = started.elapsed();
        println!(
            "{name:<15} batches of {batch:>6}: {:>7.0} rows/s  ({rows} rows in {:.2} s; {:.1} MB of JSON)",
            rows as f64 / took.as_secs_f64(),
            took.as_secs_f64(),
            bytes as f64 / 1e6,
        );
    }
    let _ = stop.send(());
    let _ = server.await;
}

/// A fresh schema on the PostgreSQL server: its URL and name.
async fn schema(admin: &sqlx::AnyPool, base: &str, name: &str) -> String {
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(admin).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{name}")
}

fn main() {
    let rows: usize = std::env::var("INGEST_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        bench("sqlite", Db::open_sqlite(dir.path()).await.unwrap(), rows).await;
        bench_http("sqlite http", None, rows).await;
        match std::env::var(POSTGRES_ENV) {
            Ok(base) => {
                sqlx::any::install_default_drivers();
                let admin = sqlx::AnyPool::connect(&base).await.unwrap();
                let (service, http) =
                    (format!("bench_ingest_{}", std::process::id()), format!("bench_http_{}", std::process::id()));
                let db = Db::connect(&schema(&admin, &base, &service).await).await.unwrap();
                bench("postgres", db.clone(), rows).await;
                db.pool().close().await;
                bench_http("postgres http", Some(schema(&admin, &base, &http).await), rows).await;
                for name in [service, http] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
                        .execute(&admin)
                        .await
                        .unwrap();
                }
            }
            Err(_) => println!("postgres        skipped ({POSTGRES_ENV} is not set)"),
        }
    });
}
