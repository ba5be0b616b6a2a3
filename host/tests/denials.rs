//! Refusals are audited, but a refusal cannot flood the log: a denial record
//! is small whatever the request named, and the same refusal repeated within
//! a minute is counted rather than recorded again.

mod common;

use common::http::start;
use yiwang::audit::{MAX_DENIAL_DETAIL, MAX_DENIAL_SUBJECT};
use yiwang::identity::{AccountKind, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_and_oversized_refusals_leave_few_small_records() {
    let host = start(false).await;
    let resident = host.user("res.zhou", None, AccountKind::Resident, &[Role::Resident], "320100").await;
    let denied = async || host.services.audit.find(Some("user:res.zhou"), Some("iot.read"), 10_000).await.unwrap();

    // A resident asks for a sensor 500 times: 500 refusals, one record.
    for _ in 0..500 {
        let (status, _) = host.get("/api/sensors/wl-01", &resident).await;
        assert_eq!(status, 403);
    }
    let records = denied().await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].outcome, "denied");

    // A path of 20,000 characters is refused too, and its record stays small.
    let long = "x".repeat(20_000);
    let (status, _) = host.get(&format!("/api/sensors/{long}"), &resident).await;
    assert_eq!(status, 403);
    let records = denied().await;
    assert_eq!(records.len(), 2, "{records:?}");
    let record = &records[0];
    assert!(record.subject.chars().count() < MAX_DENIAL_SUBJECT + 40, "subject of {} characters", record.subject.len());
    assert!(record.subject.contains("19800 more characters"), "{}", record.subject);
    assert!(record.detail.chars().count() <= MAX_DENIAL_DETAIL + 80, "detail of {} characters", record.detail.len());

    // Another refusal (another subject) is recorded at once.
    let (status, _) = host.get("/api/sensors/wl-02", &resident).await;
    assert_eq!(status, 403);
    assert_eq!(denied().await.len(), 3);
    assert!(host.services.audit.verify().await.unwrap().is_none());
}

/// Send `path` the headers of a `size`-byte body and only its first kilobyte,
/// then wait for the answer: a server that checks the caller first answers
/// at once; one that reads the body first waits for bytes that never come.
async fn refused_before_the_body(host: &common::http::Host, path: &str, token: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(&host.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/xml\r\n\
         Content-Length: {size}\r\n\r\n",
        host.addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[b'x'; 1024]).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer before the body was sent: the body is read before the caller is checked"))
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_caller_s_body_is_never_read() {
    let host = start(false).await;
    let resident = host.user("res.zhou", None, AccountKind::Resident, &[Role::Resident], "320100").await;
    for path in ["/api/cap/alerts", "/api/datasets/components/import?format=csv"] {
        let answer = refused_before_the_body(&host, path, &resident, 60 * 1024 * 1024).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{path}: {answer}");
    }
}
