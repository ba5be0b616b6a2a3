//! The `yiwang` command.

mod authoring;
mod commands;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use yiwang::app::{self, App, Options};

#[derive(Parser)]
#[command(name = "yiwang", version, about = "一网统管: an open runtime for unified city operations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server with its plugins.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Data directory (SQLite database, plugins, caches).
        #[arg(long, default_value = "./data", env = "YIWANG_DATA_DIR")]
        data_dir: PathBuf,
        /// Use PostgreSQL at this URL instead of SQLite in the data directory.
        #[arg(long, env = "YIWANG_DATABASE_URL")]
        database_url: Option<String>,
        /// Load plugins from this folder instead of `<data-dir>/plugins`.
        #[arg(long)]
        plugins_dir: Option<PathBuf>,
        /// Do not install the bundled plugins into the plugins folder.
        #[arg(long)]
        no_bundled: bool,
        /// Do not watch the plugins folder (packages that land there later are
        /// applied only at the next start).
        #[arg(long)]
        no_watch: bool,
        /// The registry operators upgrade plugins from through the admin API
        /// (`http://host:port` or a registry folder).
        #[arg(long, env = "YIWANG_REGISTRY")]
        registry: Option<String>,
        /// Load plugin packages that no trust policy admits, signed or not.
        /// For development only: the log and `/api/plugins` (`admitted_by`)
        /// say so. Without it and without `<data-dir>/trust.toml`, only the
        /// bundled plugins load.
        #[arg(long)]
        allow_unsigned: bool,
        /// The largest media upload (photo, audio, video, document) in bytes.
        #[arg(long, default_value_t = yiwang::media::DEFAULT_MAX_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
        media_max_bytes: u64,
    },
    /// Seed a demonstration city and replay a day in it — reports, hotline
    /// calls, patrols, sensor streams with a flood and a hazmat incident —
    /// through the bundled plugins and the case engine, then say what happened.
    Demo {
        /// Data directory (a new one: the demonstration city is written into it).
        #[arg(long, default_value = "./data", env = "YIWANG_DATA_DIR")]
        data_dir: PathBuf,
        /// The day to replay, `YYYY-MM-DD` in local time (UTC+8); yesterday by default.
        #[arg(long)]
        day: Option<String>,
        /// Keep serving afterwards, so that the screens show the day.
        #[arg(long)]
        serve: bool,
        /// Address to listen on with `--serve`.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Work with the data foundation's structured records.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Inspect the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Make, sign, publish, install, upgrade and roll back plugin packages.
    Plugin {
        #[command(subcommand)]
        command: commands::PluginCommand,
    },
    /// The trust policy: which publishers may ship plugins for which departments.
    Trust {
        #[command(subcommand)]
        command: commands::TrustCommand,
    },
    /// Run a plugin registry.
    Registry {
        #[command(subcommand)]
        command: commands::RegistryCommand,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Import a CSV or JSON file into a data set, all or nothing, with progress.
    Import {
        /// Data directory holding the SQLite database.
        #[arg(long, default_value = "./data", env = "YIWANG_DATA_DIR")]
        data_dir: PathBuf,
        /// Import into this PostgreSQL database instead.
        #[arg(long, env = "YIWANG_DATABASE_URL")]
        database_url: Option<String>,
        /// The data set to import into.
        #[arg(long)]
        dataset: String,
        /// `csv` or `json`; by default from the file's extension.
        #[arg(long)]
        format: Option<String>,
        /// The file: CSV with a header row, a JSON array, or JSON lines.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; report the first broken link.
    Verify {
        /// Data directory holding the SQLite database.
        #[arg(long, default_value = "./data", env = "YIWANG_DATA_DIR")]
        data_dir: PathBuf,
        /// Check this PostgreSQL database instead.
        #[arg(long, env = "YIWANG_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Recompute the KPIs of a period from the audit log alone, as JSON.
    Kpis {
        /// Data directory holding the SQLite database.
        #[arg(long, default_value = "./data", env = "YIWANG_DATA_DIR")]
        data_dir: PathBuf,
        /// Read this PostgreSQL database instead.
        #[arg(long, env = "YIWANG_DATABASE_URL")]
        database_url: Option<String>,
        /// Start of the period, ms since the epoch (inclusive).
        #[arg(long, default_value_t = 0)]
        from: i64,
        /// End of the period, ms since the epoch (exclusive); now by default.
        #[arg(long)]
        to: Option<i64>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo's summary is what it is for: the plugins' own lines (a few
    // hundred while a day is replayed) only when asked for with RUST_LOG.
    let default = match cli.command {
        Command::Demo { .. } => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)))
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve { listen, data_dir, database_url, plugins_dir, no_bundled, no_watch, registry, allow_unsigned, media_max_bytes } => {
                let mut options = Options::new(data_dir);
                options.database_url = database_url;
                options.plugins_dir = plugins_dir;
                options.install_bundled = !no_bundled;
                options.watch_plugins = !no_watch;
                options.runtime.registry = registry;
                options.runtime.allow_unsigned = allow_unsigned;
                options.media_max_bytes = media_max_bytes;
                serve(listen, options).await
            }
            Command::Demo { data_dir, day, serve, listen } => demo(data_dir, day, serve.then_some(listen)).await,
            Command::Data { command: DataCommand::Import { data_dir, database_url, dataset, format, file } } => {
                let db = open_existing(&data_dir, database_url).await?;
                import(db, &dataset, format.as_deref(), &file).await
            }
            Command::Audit { command: AuditCommand::Verify { data_dir, database_url } } => {
                let db = open_existing(&data_dir, database_url).await?;
                let audit = yiwang::audit::Audit::new(db, std::sync::Arc::new(yiwang::clock::SystemClock));
                match audit.verify().await? {
                    None => {
                        println!("audit chain intact: {} records", audit.count().await?);
                        Ok(())
                    }
                    Some(b) => {
                        println!("audit chain broken at record {}: {}", b.seq, b.reason);
                        std::process::exit(1)
                    }
                }
            }
            Command::Plugin { command } => commands::plugin(command).await,
            Command::Trust { command } => commands::trust(command),
            Command::Registry { command } => commands::registry(command).await,
            Command::Audit { command: AuditCommand::Kpis { data_dir, database_url, from, to } } => {
                let db = open_existing(&data_dir, database_url).await?;
                let to = to.unwrap_or_else(|| yiwang::clock::Clock::now_ms(&yiwang::clock::SystemClock));
                let evaluation = yiwang::evaluation::kpi::evaluate_audit_log(&db, from, to).await?;
                println!("{}", serde_json::to_string_pretty(&evaluation)?);
                Ok(())
            }
        }
    })
}

/// The database of an existing installation.
async fn open_existing(data_dir: &std::path::Path, database_url: Option<String>) -> anyhow::Result<yiwang::db::Db> {
    match database_url {
        Some(url) => yiwang::db::Db::connect(&url).await,
        None => {
            anyhow::ensure!(
                data_dir.join("yiwang.db").exists(),
                "no database in {}: expected yiwang.db (start `yiwang serve --data-dir` once to create it)",
                data_dir.display()
            );
            yiwang::db::Db::open_sqlite(data_dir).await
        }
    }
}

/// `yiwang data import`: read, check and write with a progress bar per step.
async fn import(db: yiwang::db::Db, dataset: &str, format: Option<&str>, file: &std::path::Path) -> anyhow::Result<()> {
    use indicatif::{ProgressBar, ProgressStyle};
    use yiwang::data::import::Format;
    use yiwang::data::records::Progress;

    let format = match format {
        Some(f) => Format::parse(f).with_context(|| format!("--format `{f}`: expected csv or json"))?,
        None => file
            .extension()
            .and_then(|e| e.to_str())
            .and_then(Format::parse)
            .with_context(|| format!("{}: cannot tell the format from the extension; pass --format", file.display()))?,
    };
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let clock: yiwang::clock::SharedClock = std::sync::Arc::new(yiwang::clock::SystemClock);
    let space = std::sync::Arc::new(yiwang::space::Space::open(db.clone()).await?);
    let audit = yiwang::audit::Audit::new(db.clone(), clock.clone());
    let data = yiwang::data::Data::new(db, clock, space);
    let rows = data.parse_import(dataset, format, &bytes).await.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;

    let style = ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
        .expect("a valid template")
        .progress_chars("=> ");
    let checking = ProgressBar::new(rows.len() as u64).with_style(style.clone()).with_message("checking");
    let writing = ProgressBar::new(rows.len() as u64).with_style(style).with_message("writing");
    let mut on_progress = |p: Progress| match p {
        Progress::Checked(n, _) => checking.set_position(n as u64),
        Progress::Written(n, _) => {
            checking.finish();
            writing.set_position(n as u64)
        }
    };
    let writer = yiwang::data::Writer { actor: "host:data-import", scope: &yiwang::identity::Scope::All };
    let report = data.import(dataset, rows, writer, &mut on_progress).await;
    checking.finish();
    writing.finish();
    let report = report.map_err(|e| anyhow::anyhow!("{}: nothing was imported: {e}", file.display()))?;
    let detail = format!("{} inserted, {} updated from {}", report.inserted, report.updated, file.display());
    audit.record_host("data.import", dataset, "ok", &detail).await;
    println!("imported into `{dataset}`: {} inserted, {} updated", report.inserted, report.updated);
    Ok(())
}

async fn serve(listen: SocketAddr, options: Options) -> anyhow::Result<()> {
    let app = App::build(options.clone(), None).await?;
    serve_app(app, listen, &options).await
}

/// `yiwang demo`: seed the city, replay the day, print the summary, and serve
/// if asked.
async fn demo(data_dir: PathBuf, day: Option<String>, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    use yiwang::demo;
    let day = match day {
        Some(text) => demo::Day::parse(&text)?,
        None => demo::Day::before(yiwang::clock::Clock::now_ms(&yiwang::clock::SystemClock)),
    };
    let clock = yiwang::clock::ReplayClock::new(day.at(6, 0));
    let mut options = Options::new(data_dir);
    options.watch_plugins = listen.is_some();
    let app = App::build(options.clone(), Some(clock.clone() as yiwang::clock::SharedClock)).await?;
    for r in &app.load_report {
        if let Err(e) = r {
            anyhow::bail!("a bundled plugin was refused, so the day cannot be replayed: {e}");
        }
    }
    let services = app.state.services.clone();
    let runtime = app.state.runtime.clone();
    let replayed = sqlx::query("SELECT COUNT(*) FROM cases WHERE created >= $1 AND created < $2")
        .bind(day.start)
        .bind(day.at(24, 0))
        .fetch_one(services.db.pool())
        .await
        .and_then(|r| sqlx::Row::try_get::<i64, _>(&r, 0))?;
    if replayed > 0 {
        println!("{} was already replayed in {}: showing it as it is", day.date, app::display(&options.data_dir));
    } else {
        let layout = demo::city::layout();
        demo::city::seed(&services, &layout, &day.date).await?;
        let (mut events, subscription) = demo::collect(&services);
        let mut replay = demo::Replay::new(&services, &runtime, &clock, day.clone());
        let spinner = commands::spinner(format!("replaying {} in the demonstration city", day.date));
        replay.run().await?;
        spinner.finish_and_clear();
        drop(subscription);
        let summary = replay.summary(&demo::drain(&mut events)).await?;
        println!("{}", demo::describe(&summary, &layout));
    }
    clock.release();
    match listen {
        Some(listen) => serve_app(app, listen, &options).await,
        None => Ok(()),
    }
}

async fn serve_app(app: App, listen: SocketAddr, options: &Options) -> anyhow::Result<()> {
    let data_dir = app::display(&options.data_dir);
    let mut refused = 0;
    for r in &app.load_report {
        if let Err(e) = r {
            refused += 1;
            eprintln!("refused: {e}");
        }
    }
    if let Some(file) = &app.admin_password_file {
        println!("created the first operator account `admin`; its password is in {}", file.display());
    }
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let loaded = app.state.runtime.plugins().len();
    println!(
        "yiwang serving on http://{} (data in {data_dir}; {loaded} plugins loaded, {refused} refused)",
        listener.local_addr()?
    );
    app.serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
