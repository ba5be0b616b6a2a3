//! The plugin runtime: loads packages, checks them against the WIT contract and
//! the host's catalogue, runs their instances under limits, and feeds them
//! events from the bus.

pub mod bindings;
pub mod dead_letters;
pub mod engine;
pub mod plugin;
pub mod state;
pub mod supervisor;
pub mod slot;
pub mod upgrade;
pub mod watch;
pub mod wit;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use semver::Version;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use yiwang_registry::manifest::{DataTarget, MessageTarget, WIT_PACKAGE};
use yiwang_registry::{Manifest, ManifestError};

use bindings::exports::yiwang::gov::{handler, lifecycle, model};
pub use engine::{CacheOutcome, ComponentCache, EngineSettings};
pub use plugin::{Admission, CallOutcome, FailureKind, LoadedPlugin, Origin, PluginContext, Rated};
use plugin::Exports;
use state::PluginState;
use wit::PluginHost;
pub use slot::{Held, Slot, UpgradePolicy};
pub use supervisor::Supervision;
pub use upgrade::{Applied, HistoryEntry, Package};

use crate::services::Services;

/// Calls that fail in the sandbox on one event before it becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 3;

/// The version of the WIT package this host implements: the contract crate's.
pub const HOST_WIT_VERSION: Version = yiwang_registry::manifest::WIT_SEMVER;

/// A package folder's file names, as the package format defines them.
pub use yiwang_registry::package::{COMPONENT_FILE, MANIFEST_FILE};

/// A plugin that could not be loaded: which plugin, which file, which field, why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{}`: {}: field `{field}`: {message}", .plugin.as_deref().unwrap_or("?"), .file.display())]
pub struct LoadError {
    pub plugin: Option<String>,
    pub file: PathBuf,
    pub field: String,
    pub message: String}

impl From<ManifestError> for LoadError {
    fn from(e: ManifestError) -> Self {
        LoadError { plugin: e.plugin, file: e.file, field: e.field, message: e.message }
    }
}

/// Runtime settings.
#[derive(Debug, Clone, Default)]
pub struct RuntimeSettings {
    pub engine: EngineSettings,
    pub supervision: Supervision,
    /// Folder for precompiled components; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Folder under which plugins granted a filesystem get their own folder.
    pub files_dir: Option<PathBuf>,
    /// Throw every instance away after one event instead of keeping it warm
    /// (for measuring what warm instances save).
    pub fresh_instance_per_event: bool,
    /// When a fresh version is rolled back by itself.
    pub upgrade: UpgradePolicy,
    /// Which publishers may ship plugins for which departments: every
    /// package but the bundled ones must be signed by a publisher it admits
    /// for the package's department.
    pub trust: Option<Arc<yiwang_registry::TrustPolicy>>,
    /// Load packages no trust policy admits, signed or not (development
    /// only; `yiwang serve --allow-unsigned`). Without it and without a
    /// policy, only the bundled plugins load.
    pub allow_unsigned: bool,
    /// The registry operators upgrade from (`POST /api/plugins/{name}/upgrade`):
    /// `http://…` or a registry folder.
    pub registry: Option<String>,
    /// The plugins folder upgrades are installed into.
    pub plugins_dir: Option<PathBuf>}

/// The plugin runtime.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    cache: ComponentCache,
    services: Arc<Services>,
    /// The capability views every plugin shares.
    host: Arc<PluginHost>,
    settings: RuntimeSettings,
    plugins: RwLock<BTreeMap<String, Arc<Slot>>>}

impl Runtime {
    pub fn new(services: Arc<Services>, settings: RuntimeSettings) -> anyhow::Result<Arc<Self>> {
        let engine = engine::build_engine(&settings.engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wit::add_to_linker(&mut linker)?;
        let cache = ComponentCache::new(&engine, settings.cache_dir.as_deref());
        let host = PluginHost::new(&services);
        Ok(Arc::new(Runtime { engine, linker, cache, services, host, settings, plugins: RwLock::default() }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    pub fn settings(&self) -> &RuntimeSettings {
        &self.settings
    }

    /// Every loaded plugin, by name, in the version serving now.
    pub fn plugins(&self) -> Vec<Arc<LoadedPlugin>> {
        self.plugins.read().values().map(|s| s.current()).collect()
    }

    /// The version of `name` serving now.
    pub fn plugin(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.read().get(name).map(|s| s.current())
    }

    /// A plugin's slot: its versions, held upgrade and probation.
    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.plugins.read().get(name).cloned()
    }

    /// Every slot, by name.
    pub fn slots(&self) -> Vec<Arc<Slot>> {
        self.plugins.read().values().cloned().collect()
    }

    /// Load every package folder under `dir` (each with `plugin.toml` and
    /// `plugin.wasm`; folders whose names start with `.` are the registry's
    /// own). A bad package is reported and skipped; the others load.
    pub async fn load_dir(self: &Arc<Self>, dir: &Path) -> Vec<Result<Arc<LoadedPlugin>, LoadError>> {
        let mut folders: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !hidden(p))
                .collect(),
            Err(e) => {
                return vec![Err(LoadError {
                    plugin: None,
                    file: dir.to_owned(),
                    field: "-".into(),
                    message: format!("cannot read the plugins folder: {e}")})];
            }
        };
        folders.sort();
        let mut results = Vec::new();
        for folder in folders {
            let r = self.apply_package(&folder, "host").await.map(|applied| applied.plugin().clone());
            match &r {
                Ok(p) => tracing::info!(plugin = p.name(), version = %p.ctx.manifest.version, "plugin loaded"),
                Err(e) => tracing::error!("plugin refused: {e}")}
            results.push(r);
        }
        results
    }

    /// Load one package folder as a new plugin (an error if one of that name
    /// is loaded; [`Runtime::apply_package`] upgrades instead).
    pub async fn load_package(self: &Arc<Self>, folder: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
        let package = Package::read_off_runtime(folder).await?;
        if self.plugins.read().contains_key(&package.manifest().name) {
            let name = package.manifest().name.clone();
            return Err(package.error("name", format!("a plugin named `{name}` is already loaded")));
        }
        let plugin = self.prepare(package).await?;
        self.start(plugin.clone(), "host").await?;
        Ok(plugin)
    }

    /// Check a package and make it ready to serve: catalogue, world version,
    /// compilation (or the precompiled cache), imports and exports, and one
    /// instance with `init` run. Nothing is subscribed yet.
    pub(crate) async fn prepare(self: &Arc<Self>, package: Package) -> Result<Arc<LoadedPlugin>, LoadError> {
        let package_digest = package.digest();
        let signature_file = package.manifest_path.with_file_name(yiwang_registry::package::SIGNATURE_FILE);
        let refuse = |message: String| LoadError {
            plugin: Some(package.manifest().name.clone()),
            file: signature_file.clone(),
            field: "signature".into(),
            message};
        let admitted = if crate::bundled::is_bundled(&package_digest) {
            Admission::Bundled
        } else if let Some(policy) = &self.settings.trust {
            policy.check(&package.inner).map_err(|e| refuse(e.to_string()))?;
            Admission::TrustPolicy
        } else if self.settings.allow_unsigned {
            tracing::warn!(plugin = %package.manifest().name, "loaded with --allow-unsigned: no trust policy vouches for it");
            Admission::AllowUnsigned
        } else {
            return Err(refuse(
                "no trust policy: only the bundled plugins load. Name the publishers you trust in \
                 <data-dir>/trust.toml (`yiwang trust admit`), or start the server with --allow-unsigned \
                 (development only)"
                    .into(),
            ));
        };
        let Package { manifest_path, wasm_path, inner, .. } = package;
        let yiwang_registry::Package { manifest, component: bytes, .. } = inner;
        let name = manifest.name.clone();
        let err = |file: &Path, field: &str, message: String| LoadError {
            plugin: Some(name.clone()),
            file: file.to_owned(),
            field: field.to_owned(),
            message};
        if !manifest.world.compatible_with(&HOST_WIT_VERSION) {
            return Err(err(
                &manifest_path,
                "world",
                format!(
                    "plugin targets {} but this host implements {WIT_PACKAGE}@{HOST_WIT_VERSION}",
                    manifest.world
                ),
            ));
        }
        self.check_catalogue(&manifest, &manifest_path).await?;
        self.services
            .identity
            .ensure_service_account(&manifest.name, &manifest.department, self.services.clock.now_ms())
            .await
            .map_err(|e| err(&manifest_path, "-", format!("cannot record the plugin's service identity: {e}")))?;

        let digest = engine::digest(&bytes);
        let (component, compiled) = self
            .cache
            .load(&self.engine, &bytes, &digest)
            .map_err(|e| err(&wasm_path, "component", format!("not a valid component: {e:#}")))?;
        check_component_imports(&self.engine, &component).map_err(|m| err(&wasm_path, "component", m))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| err(&wasm_path, "component", format!("imports something this host does not offer: {e:#}")))?;
        let world = manifest.world.kind;
        let missing = |what: &str, e: wasmtime::Error| {
            err(&wasm_path, "world", format!("manifest says {} but the component does not export {what}: {e:#}", manifest.world))
        };
        let exports = Exports {
            lifecycle: lifecycle::GuestIndices::new(&pre).map_err(|e| missing("lifecycle", e))?,
            handler: if world.handles() {
                Some(handler::GuestIndices::new(&pre).map_err(|e| missing("handler", e))?)
            } else {
                None
            },
            model: if world.models() { Some(model::GuestIndices::new(&pre).map_err(|e| missing("model", e))?) } else { None }};
        let files_dir = self.settings.files_dir.as_ref().map(|d| d.join(&name));
        let ctx = PluginContext::new(manifest, self.host.clone(), &self.services.metrics);
        let plugin = Arc::new(LoadedPlugin::new(
            ctx,
            Origin {
                digest,
                admitted,
                package_digest,
                path: manifest_path.parent().unwrap_or(Path::new(".")).to_owned(),
                compiled},
            self.engine.clone(),
            pre,
            exports,
            files_dir,
            self.settings.supervision,
            !self.settings.fresh_instance_per_event,
        ));
        // One instance now: it proves instantiation and `init` work, and stays warm.
        let warm = plugin
            .instantiate()
            .await
            .map_err(|(kind, m)| err(&wasm_path, "init", format!("{}: {m}", kind.name())))?;
        plugin.checkin(warm);
        Ok(plugin)
    }

    /// Put a prepared plugin in service under a new name: its slot, its
    /// subscription and its worker.
    pub(crate) async fn start(self: &Arc<Self>, plugin: Arc<LoadedPlugin>, actor: &str) -> Result<Arc<Slot>, LoadError> {
        let name = plugin.name().to_owned();
        let slot = Arc::new(Slot::new(plugin.clone()));
        {
            let mut plugins = self.plugins.write();
            if plugins.contains_key(&name) {
                return Err(LoadError {
                    plugin: Some(name.clone()),
                    file: plugin.origin.path.join(MANIFEST_FILE),
                    field: "name".into(),
                    message: format!("a plugin named `{name}` is already loaded")});
            }
            plugins.insert(name.clone(), slot.clone());
        }
        // An operator's "disabled" outlasts a restart: the plugin is
        // registered (events are kept for it) but not fed.
        let run = !self.disabled_by_operator(&name).await;
        if let Err(e) = self.subscribe_as(&slot, run).await {
            self.plugins.write().remove(&name);
            return Err(LoadError {
                plugin: Some(name.clone()),
                file: plugin.origin.path.join(MANIFEST_FILE),
                field: "subscribe".into(),
                message: format!("cannot subscribe the plugin to its topics: {e}"),
            });
        }
        let detail = format!("version {} digest {}", plugin.ctx.manifest.version, plugin.origin.digest);
        self.services.audit.record_host("plugin.load", &plugin.ctx.principal, "ok", &detail).await;
        self.note(&plugin, "loaded", actor, "").await;
        Ok(slot)
    }

    /// Subscribe a slot durably to its current version's topics and start its
    /// worker: one event at a time, to whichever version is serving when it
    /// is taken, from where the plugin stopped (events it has not finished
    /// with were kept for it).
    pub(crate) async fn subscribe(self: &Arc<Self>, slot: &Arc<Slot>) -> Result<(), crate::bus::BusError> {
        self.subscribe_as(slot, true).await
    }

    /// [`Runtime::subscribe`]; with `run` false the subscription is only
    /// registered (events are kept for the plugin) and no worker starts.
    async fn subscribe_as(self: &Arc<Self>, slot: &Arc<Slot>, run: bool) -> Result<(), crate::bus::BusError> {
        let plugin = slot.current();
        let subscription = self
            .services
            .bus
            .subscribe_durable(plugin.name(), plugin.ctx.manifest.subscribe.clone(), plugin.ctx.manifest.limits.queue)
            .await?;
        if !run {
            return Ok(());
        }
        let mut queue = subscription.queue;
        let worker = slot.clone();
        let runtime = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            while let Some(delivery) = queue.next().await {
                let Some(runtime) = runtime.upgrade() else { break };
                runtime.feed(&worker, &delivery).await;
                queue.ack(delivery.seq);
            }
        });
        let previous = slot.worker.lock().replace(slot::Worker { subscription: subscription.handle, task: task.abort_handle() });
        if let Some(previous) = previous {
            previous.task.abort();
        }
        Ok(())
    }

    /// Stop feeding every plugin (at shutdown, before the bus saves where
    /// each stopped): an event being handled is handed out again at the next start.
    pub fn stop_workers(&self) {
        for slot in self.slots() {
            slot.stop_worker();
        }
    }

    /// Whether an operator's last word on `name` was to disable it.
    async fn disabled_by_operator(&self, name: &str) -> bool {
        let last: Result<Option<String>, sqlx::Error> = sqlx::query_scalar(
            "SELECT event FROM plugin_history WHERE plugin = $1 AND event IN ('enabled', 'disabled') \
             ORDER BY at DESC, id DESC LIMIT 1",
        )
        .bind(name)
        .fetch_optional(self.services.db.pool())
        .await;
        match last {
            Ok(last) => last.as_deref() == Some("disabled"),
            Err(e) => {
                tracing::warn!(plugin = name, "could not read whether the plugin was disabled: {e}");
                false
            }
        }
    }

    /// Hand one event to the plugin until it is handled: a quarantine is
    /// waited out (the event stays first in line), a call that fails in the
    /// sandbox is tried again, and after [`MAX_ATTEMPTS`] failures the event
    /// goes to the plugin's dead letters so that the next one can come.
    async fn feed(self: &Arc<Self>, slot: &Arc<Slot>, delivery: &crate::bus::Delivery) {
        let mut attempts = 0;
        loop {
            let plugin = slot.current();
            if let Some(until) = plugin.quarantined_until() {
                let now = self.services.clock.now_ms();
                let wait = (until - now).clamp(1, 100) as u64;
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                continue;
            }
            let outcome = plugin.deliver(&delivery.event).await;
            let now = self.services.clock.now_ms();
            if let Some(reason) = slot.observe(&plugin, &outcome, now, &self.settings.upgrade) {
                self.roll_back_failing(slot, &plugin, &reason).await;
                // The version it failed on is gone: the restored one gets
                // the event afresh.
                attempts = 0;
                continue;
            }
            match outcome {
                CallOutcome::Failed(kind, message) => {
                    attempts += 1;
                    if attempts >= MAX_ATTEMPTS {
                        let error = format!("{}: {message}", kind.name());
                        dead_letters::record(self, plugin.name(), delivery, attempts, &error).await;
                        return;
                    }
                }
                CallOutcome::Skipped => continue,
                CallOutcome::Ok | CallOutcome::GuestError(_) => return,
            }
        }
    }

    /// Wait until every enabled plugin has finished every event kept for it,
    /// and so every event those published in turn: `false` if that takes
    /// longer than `timeout` (a quarantined plugin does not finish until its
    /// quarantine ends). Events published from other tasks meanwhile (a
    /// reading batch still being announced) are not waited for.
    pub async fn settle(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let waiting: std::collections::HashMap<String, u64> =
                self.services.bus.stats().into_iter().filter(|s| s.durable).map(|s| (s.name, s.waiting)).collect();
            let busy = self
                .slots()
                .iter()
                .any(|slot| slot.enabled() && waiting.get(slot.current().name()).is_some_and(|&w| w > 0));
            if !busy {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Stop delivering to a plugin and forget it, with the events kept for it
    /// (its dead letters stay until an operator drops them).
    pub async fn unload(&self, name: &str) -> bool {
        let Some(slot) = self.plugins.write().remove(name) else { return false };
        slot.stop_worker();
        slot.current().drain_pool();
        if let Err(e) = self.services.bus.forget_durable(name).await {
            tracing::warn!(plugin = name, "could not forget the plugin's place in the event log: {e}");
        }
        self.services.metrics.remove_plugin(name, &FailureKind::ALL.map(FailureKind::name), &Rated::ALL.map(Rated::name));
        true
    }

    /// Check the grants name things that exist: the department, data sets,
    /// sensor kinds and message recipients.
    async fn check_catalogue(&self, m: &Manifest, file: &Path) -> Result<(), LoadError> {
        let s = &self.services;
        let err = |field: String, message: String| LoadError { plugin: Some(m.name.clone()), file: file.to_owned(), field, message };
        let storage = |e: anyhow::Error| err("-".into(), format!("catalogue lookup failed: {e:#}"));
        if s.identity.department(&m.department).await.map_err(storage)?.is_none() {
            return Err(err("department".into(), format!("unknown department `{}`", m.department)));
        }
        for (field, list) in [("grants.data-read", &m.grants.data_read), ("grants.data-write", &m.grants.data_write)] {
            for (i, target) in list.iter().enumerate() {
                let exists = match target {
                    DataTarget::Dataset(name) => s.data.dataset(name).await.map_err(|e| storage(e.into()))?.is_some(),
                    DataTarget::SensorKind(kind) => s.data.sensor_kind_exists(kind).await.map_err(|e| storage(e.into()))?};
                if !exists {
                    return Err(err(format!("{field}[{i}]"), format!("no data set or sensor kind `{target}`")));
                }
            }
        }
        for (i, target) in m.grants.message.iter().enumerate() {
            let (exists, what) = match target {
                MessageTarget::User(Some(id)) => (s.identity.user_exists(id).await.map_err(storage)?, format!("user `{id}`")),
                MessageTarget::Department(Some(code)) => {
                    (s.identity.department(code).await.map_err(storage)?.is_some(), format!("department `{code}`"))
                }
                MessageTarget::OrgUnit(Some(code)) | MessageTarget::Role { org_unit: Some(code), .. } => {
                    (s.identity.org_unit_exists(code).await.map_err(storage)?, format!("org unit `{code}`"))
                }
                _ => (true, String::new())};
            if !exists {
                return Err(err(format!("grants.message[{i}]"), format!("unknown {what}")));
            }
        }
        Ok(())
    }
}

/// Refuse a component built against another version of `yiwang:gov`, naming both.
pub fn check_component_imports(engine: &Engine, component: &Component) -> Result<(), String> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        let Some(rest) = name.strip_prefix(&format!("{WIT_PACKAGE}/")) else { continue };
        let Some((interface, version)) = rest.split_once('@') else {
            return Err(format!("imports `{name}` without a version; this host implements {WIT_PACKAGE}@{HOST_WIT_VERSION}"));
        };
        let compatible = Version::parse(version).is_ok_and(|v| {
            yiwang_registry::WorldRef { kind: yiwang_registry::WorldKind::EventHandler, version: v }
                .compatible_with(&HOST_WIT_VERSION)
        });
        if !compatible {
            return Err(format!(
                "built against {WIT_PACKAGE}@{version} (imports `{interface}`), but this host implements {WIT_PACKAGE}@{HOST_WIT_VERSION}"
            ));
        }
    }
    Ok(())
}

/// Whether a folder is hidden (the registry keeps its versions and temporary
/// folders under names starting with `.`).
pub(crate) fn hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'))
}
