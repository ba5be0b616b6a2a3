//! The harness every storage test shares: a fixture on SQLite, a fixture on
//! PostgreSQL in a fresh schema (or "skipped" without `YIWANG_TEST_POSTGRES`), and
//! `storage_test!`, which runs one body on both.

#![allow(dead_code)]

pub mod http;

use std::sync::Arc;

use yiwang::clock::ManualClock;
use yiwang::db::{Backend, Db};

/// The injected clock's start: 2027-01-15T08:00:00Z.
pub const T0: i64 = 1_800_000_000_000;

/// The environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_ENV: &str = "YIWANG_TEST_POSTGRES";

pub struct Fixture {
    pub db: Db,
    pub clock: Arc<ManualClock>,
    pub _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(dir.path()).await.unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    Fixture { db, clock: ManualClock::new(T0), _dir: Some(dir) }
}

/// A fresh schema on the test server, or `None` (and a "skipped" line) without one.
pub async fn postgres(test: &str) -> Option<Fixture> {
    let Ok(base) = std::env::var(POSTGRES_ENV) else {
        println!("skipped: {test} on PostgreSQL ({POSTGRES_ENV} is not set)");
        return None;
    };
    let schema = format!("t_{}", uuid_like());
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let db = Db::connect(&url).await.unwrap();
    assert_eq!(db.backend(), Backend::Postgres);
    Some(Fixture { db, clock: ManualClock::new(T0), _dir: None })
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{:x}{:x}", n, std::process::id())
}

/// Define `$name` as a test body over a `Fixture`, run as `$name::sqlite` and `$name::postgres`.
#[allow(unused_macros)]
macro_rules! storage_test {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                ($body)(crate::common::sqlite().await).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(f) = crate::common::postgres(stringify!($name)).await {
                    ($body)(f).await;
                }
            }
        }
    };
}
