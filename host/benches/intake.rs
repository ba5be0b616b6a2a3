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

mod common;

use std::time::{Duration, Instant};

use common::{Host, Rng, client, report};

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
    let host = Host::start(plugins).await;
    let (addr, tokens, categories) = (host.addr.clone(), host.tokens.clone(), host.categories.clone());

    let mut rng = Rng(0x5eed_1234_abcd_0042);
    // Warm-up: a first thousand reports (not measured) load the indexes.
    let warm: Vec<String> = (0..1000).map(|n| report(&mut rng, &categories, n)).collect();
    client(addr.clone(), tokens[0].clone(), warm).await;
    if plugins {
        host.app.runtime.settle(Duration::from_secs(600)).await;
    }

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
    let loaded = host.app.runtime.plugins().len();
    println!(
        "intake over HTTP, SQLite, {loaded} plugins: {:>6.0} intakes/s  ({reports} reports in {:.2} s over {connections} connections; \
         {joined} joined an open case; latency p50 {:.1} ms, p99 {:.1} ms)",
        reports as f64 / took.as_secs_f64(),
        took.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
    );
    assert_eq!(host.stored().await, reports + 1000, "every report answered 201 is stored");
    if plugins {
        host.print_lag("when the load stopped");
        let caught = Instant::now();
        let settled = host.app.runtime.settle(Duration::from_secs(600)).await;
        println!(
            "  the plugins {} in {:.1} s",
            if settled { "caught up" } else { "had NOT caught up" },
            caught.elapsed().as_secs_f64()
        );
        host.print_plugins();
    }
    host.stop().await;
}
