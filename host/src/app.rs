//! Assembling the host: database, bus, services, runtime, plugins, HTTP.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::bus::MemoryBus;
use crate::clock::{SharedClock, SystemClock};
use crate::db::Db;
use crate::media::MediaSettings;
use crate::runtime::{LoadError, Runtime, RuntimeSettings};
use crate::services::Services;

/// The trust policy's file in the data directory (`yiwang trust admit` writes it).
pub const TRUST_FILE: &str = "trust.toml";

/// How to start the host.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the SQLite database, caches and installed plugins live.
    pub data_dir: PathBuf,
    /// A `postgres://` URL to use instead of SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Where plugin packages are loaded from; default `<data_dir>/plugins`.
    pub plugins_dir: Option<PathBuf>,
    /// Whether to install the plugins bundled with this binary into the plugins folder.
    pub install_bundled: bool,
    /// Runtime settings (cache and files folders default into `data_dir`).
    pub runtime: RuntimeSettings,
    /// The largest media upload in bytes; blobs live in `<data_dir>/media`.
    pub media_max_bytes: u64,
    /// Limits per client address and device on the anonymous routes.
    pub client_limits: crate::api::limits::ClientLimitSettings,
    /// Watch the plugins folder and apply packages that appear or change
    /// there (hot loading). `yiwang serve` turns it on; tests that load
    /// packages themselves leave it off.
    pub watch_plugins: bool,
    /// Where the watcher reports what it did about each folder (tests,
    /// benchmarks).
    pub watch_reports: Option<tokio::sync::mpsc::UnboundedSender<crate::runtime::watch::WatchReport>>,
}

impl Options {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Options {
            data_dir: data_dir.into(),
            database_url: None,
            plugins_dir: None,
            install_bundled: true,
            runtime: RuntimeSettings::default(),
            media_max_bytes: crate::media::DEFAULT_MAX_BYTES,
            client_limits: crate::api::limits::ClientLimitSettings::default(),
            watch_plugins: false,
            watch_reports: None,
        }
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.plugins_dir.clone().unwrap_or_else(|| self.data_dir.join("plugins"))
    }
}

/// A built host, ready to serve.
pub struct App {
    pub state: AppState,
    /// What happened to each plugin package at start.
    pub load_report: Vec<Result<String, LoadError>>,
    /// Where the generated password of the first operator, `admin`, was written
    /// (only on the start that created it).
    pub admin_password_file: Option<PathBuf>,
    /// The plugins folder's watcher, while hot loading is on.
    pub watcher: Option<crate::runtime::watch::PluginWatcher>,
}

impl App {
    /// Open storage, start the runtime, install the bundled plugins if asked, and
    /// load every package in the plugins folder.
    pub async fn build(options: Options, clock: Option<SharedClock>) -> anyhow::Result<App> {
        std::fs::create_dir_all(&options.data_dir)?;
        let db = match &options.database_url {
            Some(url) => Db::connect(url).await?,
            None => Db::open_sqlite(&options.data_dir).await?,
        };
        let clock = clock.unwrap_or_else(|| Arc::new(SystemClock));
        let media = MediaSettings { dir: options.data_dir.join("media"), max_bytes: options.media_max_bytes };
        // The event log lives beside everything else: what a plugin has not
        // finished with survives a restart.
        let bus = MemoryBus::durable(db.clone()).await?;
        let services = Services::new(db, clock, Arc::new(bus), media);
        services.media.prepare().await?;
        let mut settings = options.runtime.clone();
        settings.cache_dir.get_or_insert_with(|| options.data_dir.join("cache"));
        settings.files_dir.get_or_insert_with(|| options.data_dir.join("plugin-files"));
        if settings.trust.is_none() {
            let file = options.data_dir.join(TRUST_FILE);
            if file.exists() {
                let policy = yiwang_registry::TrustPolicy::load(&file)?;
                settings.trust = Some(Arc::new(policy));
            } else if settings.allow_unsigned {
                tracing::warn!(
                    "ALLOW-UNSIGNED: no trust policy at {} and --allow-unsigned given: any plugin package loads, \
                     whoever made it (development only)",
                    file.display()
                );
            } else {
                tracing::info!("no trust policy at {}: only the bundled plugins load", file.display());
            }
        }
        settings.plugins_dir.get_or_insert_with(|| options.plugins_dir());
        services.space.reload_index().await?;
        let runtime = Runtime::new(services.clone(), settings)?;
        let admin_password_file = match services.identity.ensure_operator(services.clock.now_ms()).await? {
            Some(password) => {
                let file = options.data_dir.join("initial-admin-password");
                write_private(&file, &password)?;
                Some(file)
            }
            None => None,
        };

        let plugins_dir = options.plugins_dir();
        std::fs::create_dir_all(&plugins_dir)?;
        if options.install_bundled {
            crate::bundled::install(&plugins_dir)?;
        }
        let load_report = runtime
            .load_dir(&plugins_dir)
            .await
            .into_iter()
            .map(|r| r.map(|p| p.name().to_owned()))
            .collect();
        // Watched from after the first load: what lands from now on is applied.
        let watcher = match options.watch_plugins {
            true => Some(runtime.watch(&plugins_dir, crate::runtime::watch::DEFAULT_QUIET, options.watch_reports.clone())?),
            false => None,
        };
        let limits = Arc::new(crate::api::limits::ClientLimits::new(options.client_limits));
        let state = AppState { services, runtime, limits, ready: Arc::new(AtomicBool::new(false)) };
        Ok(App { state, load_report, admin_password_file, watcher })
    }

    /// Serve HTTP on `listener` until `shutdown` resolves.
    pub async fn serve(mut self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let router = api::router(self.state.clone());
        self.state.ready.store(true, Ordering::Release);
        // Overdue steps and calendar ticks are looked for once a minute while serving.
        let sweeper = crate::schedule::every_minute(self.state.services.clone());
        let watcher = self.watcher.take();
        let retries = self.state.runtime.start_retry_sweeper();
        let limits = self.state.limits.clone();
        let shrinking = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                limits.shrink();
            }
        });
        let served = api::serve(listener, router, shutdown).await;
        drop(watcher);
        sweeper.abort();
        retries.abort();
        shrinking.abort();
        // Every plugin's place in the event log, saved before the process goes.
        self.state.runtime.stop_workers();
        self.state.services.bus.flush().await;
        served?;
        Ok(())
    }
}

/// Write a secret readable by the owner only.
fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    writeln!(f, "{secret}")
}

/// Resolve a data directory for messages.
pub fn display(path: &Path) -> String {
    path.canonicalize().unwrap_or_else(|_| path.to_owned()).display().to_string()
}
