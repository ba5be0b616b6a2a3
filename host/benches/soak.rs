//! A soak: the host with the four bundled department plugins, taking
//! patrol reports over HTTP at a steady rate for a long time (default 2,000
//! reports/s for 10 minutes, `SOAK_RATE`, `SOAK_SECONDS`), on the
//! demonstration city with SQLite in a temporary folder. Every minute it
//! prints the plugins' lag and the process's resident memory; at the end the
//! memory at start and end, and each plugin's skipped events (must be 0),
//! dead letters and quarantines (must be 0), after the plugins caught up.
//!
//! Run: `cargo bench -p yiwang --bench soak`.

mod common;

use std::time::{Duration, Instant};

use common::{Host, Rng, paced_client, report, rss_mib};

fn main() {
    let rate: usize = std::env::var("SOAK_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let seconds: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let host = Host::start(true).await;
        let connections = 32;
        let total = rate * seconds as usize;
        let mut rng = Rng(0x50a4_0000_0000_0001);
        let mut shares: Vec<Vec<String>> = vec![Vec::new(); connections];
        for n in 0..total {
            shares[n % connections].push(report(&mut rng, &host.categories, n));
        }
        let every = Duration::from_secs_f64(connections as f64 / rate as f64);
        let rss_start = rss_mib();
        println!("soak: {rate} reports/s for {seconds} s over {connections} connections; resident memory at the start {rss_start:.1} MiB");
        let started = Instant::now();
        let clients: Vec<_> = shares
            .into_iter()
            .enumerate()
            .map(|(i, bodies)| tokio::spawn(paced_client(host.addr.clone(), host.tokens[i % host.tokens.len()].clone(), bodies, Some(every))))
            .collect();
        let mut minute = tokio::time::interval(Duration::from_secs(60));
        minute.tick().await;
        let all = futures::future::join_all(clients);
        tokio::pin!(all);
        let results = loop {
            tokio::select! {
                r = &mut all => break r,
                _ = minute.tick() => {
                    println!("after {:.0} s: {} reports stored, resident {:.1} MiB", started.elapsed().as_secs_f64(), host.stored().await, rss_mib());
                    host.print_lag("now");
                }
            }
        };
        let took = started.elapsed();
        let mut latencies: Vec<Duration> = results.into_iter().flat_map(|r| r.unwrap().0).collect();
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        println!(
            "sent {total} reports in {:.1} s ({:.0}/s); latency p50 {:.1} ms, p99 {:.1} ms",
            took.as_secs_f64(),
            total as f64 / took.as_secs_f64(),
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3
        );
        host.print_lag("when the load stopped");
        let caught = Instant::now();
        let settled = host.app.runtime.settle(Duration::from_secs(1800)).await;
        println!("the plugins {} in {:.1} s", if settled { "caught up" } else { "had NOT caught up" }, caught.elapsed().as_secs_f64());
        let (skipped, dead, quarantines) = host.print_plugins();
        println!(
            "resident memory: {rss_start:.1} MiB at the start, {:.1} MiB at the end; skipped {skipped}, dead letters {dead}, quarantines {quarantines}",
            rss_mib()
        );
        assert_eq!(host.stored().await, total, "every report answered 201 is stored");
        host.stop().await;
    });
}
