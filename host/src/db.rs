//! The database: SQLite (WAL) in the data directory by default, PostgreSQL when a
//! URL names one. Both run the same migrations through sqlx's `Any` driver, so
//! every query in the host is written once in SQL both understand.

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// A handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// Where writes go. On SQLite one connection: writers queue for it in
    /// the process, in order, instead of each taking SQLite's write lock on
    /// a connection of its own and sleeping in SQLite's busy handler (1 ms,
    /// 2 ms, … 100 ms) while another holds it. On PostgreSQL, `pool`.
    writer: AnyPool,
    backend: Backend,
}

/// Which database is behind a [`Db`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// The scaled-out choice.
    Postgres,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Db {
    /// Open (creating if needed) the SQLite database `yiwang.db` in `data_dir`.
    pub async fn open_sqlite(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("yiwang.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url).await
    }

    /// Connect to `url` (`sqlite://…` or `postgres://…`) and run the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("unsupported database URL `{url}`: expected sqlite:// or postgres://");
        };
        let options = AnyConnectOptions::from_str(url)?;
        let sqlite = |connections: u32| {
            AnyPoolOptions::new()
                    .max_connections(connections)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; FULL makes a commit
                            // durable before it returns, which the intake promises.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
        };
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                let pool = sqlite(8).connect_with(options.clone()).await?;
                MIGRATOR.run(&pool).await?;
                let writer = sqlite(1).connect_with(options).await?;
                (pool, writer)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new().max_connections(16).connect_with(options).await?;
                MIGRATOR.run(&pool).await?;
                (pool.clone(), pool)
            }
        };
        Ok(Db { pool, writer, backend })
    }

    /// The connection pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begin a transaction that will write. On SQLite it takes the write lock
    /// at once (`BEGIN IMMEDIATE`), so a transaction that reads before it writes
    /// waits its turn instead of failing when another writer committed between
    /// its read and its write.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// The pool for a write of one statement outside a transaction (see
    /// [`Db`]'s `writer`). Never take it while holding a write transaction.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// The `i`-th (from 1) placeholder of a statement built at run time. SQLite
/// gets anonymous `?`: sqlx names every parameter of a statement through
/// `sqlite3_bind_parameter_name`, which scans a list of the numbered ones, so
/// binding many `$n` costs time quadratic in their number; an anonymous `?` is
/// not in that list, and is bound by position. PostgreSQL knows only `$n`.
pub fn placeholder(backend: Backend, i: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => format!("${i}"),
    }
}

/// The placeholders of a statement built at run time, numbered in the order
/// the values are bound (see [`placeholder`]).
pub struct Marks {
    backend: Backend,
    next: usize,
}

impl Marks {
    pub fn new(backend: Backend) -> Marks {
        Marks { backend, next: 0 }
    }

    /// Marks for a statement to run on `conn`.
    pub fn for_conn(conn: &sqlx::AnyConnection) -> Marks {
        Marks::new(if conn.backend_name() == "SQLite" { Backend::Sqlite } else { Backend::Postgres })
    }

    /// The next mark.
    pub fn mark(&mut self) -> String {
        self.next += 1;
        placeholder(self.backend, self.next)
    }

    /// `(m, m, …)`: `n` marks in parentheses.
    pub fn row(&mut self, n: usize) -> String {
        format!("({})", self.list(n))
    }

    /// `m, m, …`: `n` marks.
    pub fn list(&mut self, n: usize) -> String {
        let marks: Vec<String> = (0..n).map(|_| self.mark()).collect();
        marks.join(", ")
    }
}

/// Split `items` into runs of powers of two, largest first, none longer than
/// `max` (a power of two): a multi-row statement then has one of a few
/// shapes, and each shape is prepared once per connection and reused.
pub fn runs<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    debug_assert!(max.is_power_of_two());
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = max.min(1 << rest.len().ilog2());
        let (run, more) = rest.split_at(n);
        rest = more;
        Some(run)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_are_powers_of_two_largest_first() {
        let items: Vec<u32> = (0..300).collect();
        let sizes: Vec<usize> = super::runs(&items, 128).map(<[u32]>::len).collect();
        assert_eq!(sizes, [128, 128, 32, 8, 4]);
        let flat: Vec<u32> = super::runs(&items, 128).flatten().copied().collect();
        assert_eq!(flat, items);
        assert_eq!(super::runs(&items[..0], 128).count(), 0);
        assert_eq!(super::runs(&items[..7], 128).map(<[u32]>::len).collect::<Vec<_>>(), [4, 2, 1]);
    }
}
