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
