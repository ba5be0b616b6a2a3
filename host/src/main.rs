//! The `yiwang` command.

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
        /// The largest media upload (photo, audio, video, document) in bytes.
        #[arg(long, default_value_t = yiwang::media::DEFAULT_MAX_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
        media_max_bytes: u64,
    },
    /// Inspect the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve { listen, data_dir, database_url, plugins_dir, no_bundled, media_max_bytes } => {
                let mut options = Options::new(data_dir);
                options.database_url = database_url;
                options.plugins_dir = plugins_dir;
                options.install_bundled = !no_bundled;
                options.media_max_bytes = media_max_bytes;
                serve(listen, options).await
            }
            Command::Audit { command: AuditCommand::Verify { data_dir, database_url } } => {
                let db = match database_url {
                    Some(url) => yiwang::db::Db::connect(&url).await?,
                    None => {
                        anyhow::ensure!(
                            data_dir.join("yiwang.db").exists(),
                            "no database in {}: expected yiwang.db",
                            data_dir.display()
                        );
                        yiwang::db::Db::open_sqlite(&data_dir).await?
                    }
                };
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
        }
    })
}

async fn serve(listen: SocketAddr, options: Options) -> anyhow::Result<()> {
    let data_dir = app::display(&options.data_dir);
    let app = App::build(options, None).await?;
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
