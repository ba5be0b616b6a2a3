//! `yiwang plugin …`, `yiwang trust …` and `yiwang registry serve`: the plugin
//! author's and the operator's package commands, over `yiwang-registry`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use yiwang_registry::{KeyPair, PluginSpec, PublisherKey, Registry, TrustPolicy};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Scaffold a plugin crate from a template: manifest, code, unit tests
    /// against the SDK's mock host, and a file of sample events.
    New {
        /// The plugin's name, `[a-z0-9-_]`.
        name: String,
        /// `handler` or `model`.
        #[arg(long, value_enum, default_value = "handler")]
        kind: crate::authoring::Kind,
        /// The department it belongs to.
        #[arg(long, default_value = "chengguan")]
        department: String,
        /// The publisher that will sign it.
        #[arg(long, default_value = "my-department")]
        publisher: String,
        /// Where to create the crate folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The SDK folder (`sdk/` of a Yiwang checkout); by default the one this binary was built with.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build the component (`wasm32-wasip2`) as `plugin.wasm` beside `plugin.toml`,
    /// checking its world version against this host's.
    Build {
        /// The plugin crate folder.
        #[arg(default_value = ".")]
        folder: PathBuf,
        /// The cargo profile.
        #[arg(long, default_value = "release")]
        profile: String,
    },
    /// Run the built component inside a real host against a file of events
    /// (JSON lines: `{"topic": …, "payload": …, "location": {"lat", "lon"}}`),
    /// and show what it did: events published, cases opened, warnings,
    /// messages, denials. Fails if a call failed.
    Test {
        /// The plugin crate (or package) folder.
        #[arg(default_value = ".")]
        folder: PathBuf,
        #[arg(long, default_value = "events.jsonl")]
        events: PathBuf,
    },
    /// Make a signing key pair for a publisher: `<publisher>.key` (secret,
    /// mode 0600) and `<publisher>.pub` (give it to operators).
    Keygen {
        /// The publisher's name, as plugin manifests name it.
        #[arg(long)]
        publisher: String,
        /// Folder to write the two files to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Pack a package folder (`plugin.toml` + `plugin.wasm`) into
    /// `<name>-<version>.ywpkg`, signed when a key is given.
    Pack {
        /// The package folder.
        #[arg(default_value = ".")]
        folder: PathBuf,
        /// Folder to write the archive to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Sign with this secret key file.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Sign a packed archive in place.
    Sign {
        /// The `.ywpkg` archive.
        package: PathBuf,
        /// The publisher's secret key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Publish a signed archive to a registry.
    Publish {
        /// The `.ywpkg` archive.
        package: PathBuf,
        /// `http://host:port`, or a registry folder.
        #[arg(long, env = "YIWANG_REGISTRY")]
        registry: String,
        /// The registry's publish token, if it asks for one.
        #[arg(long, env = "YIWANG_REGISTRY_TOKEN")]
        token: Option<String>,
    },
    /// Install a plugin from a registry (`name`, `name@^1.2`, `name@1.2.3`), or
    /// a local `.ywpkg` file, into the plugins folder; a running server picks
    /// it up. Checked against the trust policy first.
    Install {
        /// What to install.
        spec: String,
        /// `http://host:port`, or a registry folder (not needed for a `.ywpkg` file).
        #[arg(long, env = "YIWANG_REGISTRY")]
        registry: Option<String>,
        #[command(flatten)]
        place: Place,
    },
    /// Upgrade an installed plugin to the newest version a range allows
    /// (`name` for the newest of all).
    Upgrade {
        /// `name` or `name@range`.
        spec: String,
        #[arg(long, env = "YIWANG_REGISTRY")]
        registry: String,
        #[command(flatten)]
        place: Place,
    },
    /// Return an installed plugin to the version active before the current one.
    Rollback {
        /// The plugin's name.
        name: String,
        #[command(flatten)]
        place: Place,
    },
    /// The events plugins failed on again and again (dead letters): list
    /// them, or ask the running server to retry one (within a second), or
    /// drop one for good.
    DeadLetters {
        /// Only this plugin's.
        #[arg(long)]
        plugin: Option<String>,
        /// Ask the running server to hand this dead letter to its plugin again.
        #[arg(long, conflicts_with = "drop")]
        retry: Option<String>,
        /// Drop this dead letter.
        #[arg(long)]
        drop: Option<String>,
        /// Data directory holding the SQLite database.
        #[arg(long, default_value = "./data", env = "YIWANG_DATA_DIR")]
        data_dir: PathBuf,
        /// Use this PostgreSQL database instead.
        #[arg(long, env = "YIWANG_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// List the installed plugins and their kept versions; with `--registry`,
    /// the registry's plugins and versions.
    List {
        #[arg(long, env = "YIWANG_REGISTRY")]
        registry: Option<String>,
        #[command(flatten)]
        place: Place,
    },
}

/// Where plugins are installed and which trust policy applies.
#[derive(clap::Args)]
pub struct Place {
    /// Data directory: plugins go to `<data-dir>/plugins`, the trust policy is
    /// `<data-dir>/trust.toml`.
    #[arg(long, default_value = "./data", env = "YIWANG_DATA_DIR")]
    data_dir: PathBuf,
    /// Install into this plugins folder instead.
    #[arg(long)]
    plugins_dir: Option<PathBuf>,
    /// Use this trust policy instead.
    #[arg(long)]
    trust: Option<PathBuf>,
}

impl Place {
    fn plugins_dir(&self) -> PathBuf {
        self.plugins_dir.clone().unwrap_or_else(|| self.data_dir.join("plugins"))
    }

    fn trust_file(&self) -> PathBuf {
        self.trust.clone().unwrap_or_else(|| self.data_dir.join(yiwang::app::TRUST_FILE))
    }

    fn policy(&self) -> anyhow::Result<TrustPolicy> {
        let file = self.trust_file();
        anyhow::ensure!(
            file.exists(),
            "no trust policy at {}: admit a publisher first with `yiwang trust admit --publisher NAME --key NAME.pub --departments CODE`",
            file.display()
        );
        Ok(TrustPolicy::load(&file)?)
    }
}

#[derive(Subcommand)]
pub enum TrustCommand {
    /// Admit a publisher's key for some departments (`*` for any).
    Admit {
        #[arg(long)]
        publisher: String,
        /// The publisher's public key file (`<publisher>.pub`).
        #[arg(long)]
        key: PathBuf,
        /// Department codes, comma-separated, or `*`.
        #[arg(long, value_delimiter = ',', required = true)]
        departments: Vec<String>,
        #[command(flatten)]
        place: Place,
    },
    /// Show the trust policy.
    Show {
        #[command(flatten)]
        place: Place,
    },
}

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Serve a registry folder over HTTP.
    Serve {
        /// The registry folder (created if missing).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: std::net::SocketAddr,
        /// Require this bearer token to publish.
        #[arg(long, env = "YIWANG_REGISTRY_TOKEN")]
        token: Option<String>,
    },
}

pub(crate) fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"))
        .with_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn open_registry(location: &str, token: Option<String>) -> anyhow::Result<Registry> {
    let registry = Registry::open(location).with_context(|| format!("registry `{location}`"))?;
    Ok(match (registry, token) {
        (Registry::Http(http), Some(token)) => Registry::Http(http.with_token(token)),
        (r, _) => r,
    })
}

pub async fn plugin(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::New { name, kind, department, publisher, dir, sdk } => {
            crate::authoring::new(&name, kind, &department, &publisher, &dir, sdk)
        }
        PluginCommand::Build { folder, profile } => crate::authoring::build(&folder, &profile).map(|_| ()),
        PluginCommand::Test { folder, events } => {
            let events = if events.is_relative() && !events.exists() { folder.join(&events) } else { events };
            match crate::authoring::test(&folder, &events).await? {
                true => Ok(()),
                false => anyhow::bail!("some events were not handled, or a call failed"),
            }
        }
        PluginCommand::Keygen { publisher, out } => {
            std::fs::create_dir_all(&out)?;
            let pair = KeyPair::generate(&publisher)?;
            let secret = out.join(format!("{publisher}.key"));
            let public = out.join(format!("{publisher}.pub"));
            pair.save(&secret)?;
            pair.publisher_key().save(&public)?;
            println!("key {} for publisher `{publisher}`", pair.key_id());
            println!("  secret: {} (keep it; mode 0600)", secret.display());
            println!("  public: {} (give it to operators: `yiwang trust admit`)", public.display());
            Ok(())
        }
        PluginCommand::Pack { folder, out, key } => {
            let signer = key.as_deref().map(KeyPair::load).transpose()?;
            std::fs::create_dir_all(&out)?;
            let bar = spinner(format!("packing {}", folder.display()));
            let info = yiwang_registry::pack(&folder, &out, signer.as_ref());
            bar.finish_and_clear();
            let info = info?;
            println!(
                "packed {} {} → {} ({} bytes; component {} bytes; {}{})",
                info.name,
                info.version,
                info.path.display(),
                info.archive_size,
                info.component_size,
                info.digest,
                if info.signed { ", signed" } else { ", not signed" }
            );
            Ok(())
        }
        PluginCommand::Sign { package, key } => {
            let pair = KeyPair::load(&key)?;
            let signature = yiwang_registry::sign_archive(&package, &pair)?;
            println!(
                "signed {} {} as `{}` (key {}); digest {}",
                signature.name, signature.version, signature.publisher, signature.key_id, signature.digest
            );
            Ok(())
        }
        PluginCommand::Publish { package, registry, token } => {
            let bytes = std::fs::read(&package).with_context(|| format!("cannot read {}", package.display()))?;
            let registry = open_registry(&registry, token)?;
            let bar = spinner(format!("publishing {}", package.display()));
            let entry = registry.publish(bytes).await;
            bar.finish_and_clear();
            let entry = entry?;
            println!("published {} {} ({}) by `{}`", entry.name, entry.version, entry.digest, entry.publisher);
            Ok(())
        }
        PluginCommand::Install { spec, registry, place } => {
            let policy = place.policy()?;
            let plugins = place.plugins_dir();
            std::fs::create_dir_all(&plugins)?;
            let bar = spinner(format!("installing {spec}"));
            let installed = if spec.ends_with(".ywpkg") && Path::new(&spec).exists() {
                let bytes = std::fs::read(&spec).with_context(|| format!("cannot read {spec}"))?;
                yiwang_registry::install_archive(&bytes, &plugins, &policy).map_err(anyhow::Error::from)
            } else {
                let location = registry.context("--registry is needed to install by name")?;
                let registry = open_registry(&location, None)?;
                let spec = PluginSpec::parse(&spec)?;
                yiwang_registry::install(&registry, &spec, &plugins, &policy).await.map_err(anyhow::Error::from)
            };
            bar.finish_and_clear();
            report_installed(&installed?);
            Ok(())
        }
        PluginCommand::Upgrade { spec, registry, place } => {
            let policy = place.policy()?;
            let plugins = place.plugins_dir();
            let spec = PluginSpec::parse(&spec)?;
            let before = yiwang_registry::installed(&plugins)?.into_iter().find(|p| p.name == spec.name);
            anyhow::ensure!(before.is_some(), "`{}` is not installed in {}", spec.name, plugins.display());
            let registry = open_registry(&registry, None)?;
            let bar = spinner(format!("upgrading {}", spec.name));
            let installed = yiwang_registry::install(&registry, &spec, &plugins, &policy).await;
            bar.finish_and_clear();
            report_installed(&installed?);
            Ok(())
        }
        PluginCommand::Rollback { name, place } => {
            let version = yiwang_registry::rollback(&place.plugins_dir(), &name)?;
            println!("{name}: version {version} is active again; a running server swaps it in");
            Ok(())
        }
        PluginCommand::DeadLetters { plugin, retry, drop, data_dir, database_url } => {
            use yiwang::runtime::dead_letters;
            let db = crate::open_existing(&data_dir, database_url).await?;
            if let Some(id) = retry {
                anyhow::ensure!(dead_letters::request_retry(&db, &id).await?, "no dead letter `{id}`");
                println!("{id}: the running server hands it to its plugin again within a second");
                return Ok(());
            }
            if let Some(id) = drop {
                anyhow::ensure!(dead_letters::drop_letter(&db, None, &id).await?, "no dead letter `{id}`");
                println!("{id}: dropped");
                return Ok(());
            }
            let letters = dead_letters::list(&db, plugin.as_deref()).await?;
            if letters.is_empty() {
                println!("no dead letters");
            }
            for l in letters {
                println!(
                    "{}  {}  seq {}  {}  event {}  {} attempts  {}{}",
                    l.id,
                    l.plugin,
                    l.seq,
                    l.topic,
                    l.event_id,
                    l.attempts,
                    l.error,
                    if l.state == "retry" { "  (retry asked)" } else { "" }
                );
            }
            Ok(())
        }
        PluginCommand::List { registry, place } => {
            if let Some(location) = registry {
                let registry = open_registry(&location, None)?;
                for name in registry.names().await? {
                    let versions = registry.versions(&name).await?;
                    let list: Vec<String> = versions
                        .iter()
                        .map(|v| if v.yanked { format!("{} (yanked)", v.version) } else { v.version.to_string() })
                        .collect();
                    println!("{name}: {}", list.join(", "));
                }
                return Ok(());
            }
            let plugins = place.plugins_dir();
            let installed = yiwang_registry::installed(&plugins)?;
            if installed.is_empty() {
                println!("no plugins installed in {}", plugins.display());
            }
            for p in installed {
                let kept: Vec<String> = p.versions.iter().map(ToString::to_string).collect();
                let active = p.active.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
                println!("{}: active {active}; kept {}", p.name, if kept.is_empty() { "-".into() } else { kept.join(", ") });
            }
            Ok(())
        }
    }
}

fn report_installed(i: &yiwang_registry::Installed) {
    let from = i.previous.as_ref().map(|v| format!(" (was {v})")).unwrap_or_default();
    println!(
        "installed {} {}{from} into {}; signed by `{}` (key {}) for `{}`; a running server swaps it in",
        i.name,
        i.version,
        i.path.display(),
        i.trusted.publisher,
        i.trusted.key_id,
        i.trusted.department
    );
}

pub fn trust(command: TrustCommand) -> anyhow::Result<()> {
    match command {
        TrustCommand::Admit { publisher, key, departments, place } => {
            let key = PublisherKey::load(&key)?;
            anyhow::ensure!(
                key.publisher == publisher,
                "the key file is `{}`'s, not `{publisher}`'s",
                key.publisher
            );
            let file = place.trust_file();
            let mut policy = TrustPolicy::load_or_default(&file)?;
            policy.admit(&publisher, key.key, &departments);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            policy.save(&file)?;
            println!(
                "admitted `{publisher}` (key {}) for {} in {}; restart the server to apply",
                key.key.key_id(),
                departments.join(", "),
                file.display()
            );
            Ok(())
        }
        TrustCommand::Show { place } => {
            let file = place.trust_file();
            let policy = TrustPolicy::load_or_default(&file)?;
            if policy.publishers.is_empty() {
                println!("no trust policy at {}: the server accepts unsigned packages", file.display());
            }
            for p in &policy.publishers {
                let keys: Vec<String> = p.keys.iter().map(|k| k.key_id()).collect();
                println!("{}: keys {}; departments {}", p.name, keys.join(", "), p.departments.join(", "));
            }
            Ok(())
        }
    }
}

pub async fn registry(command: RegistryCommand) -> anyhow::Result<()> {
    match command {
        RegistryCommand::Serve { dir, listen, token } => {
            let registry = yiwang_registry::DirRegistry::open(&dir)?;
            let router = yiwang_registry::server::router(registry, token.clone());
            let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            println!(
                "registry of {} serving on http://{}{}",
                dir.display(),
                listener.local_addr()?,
                if token.is_some() { " (publishing needs the token)" } else { "" }
            );
            yiwang::api::serve(listener, router, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            Ok(())
        }
    }
}
