//! The plugin runtime: loads packages, checks them against the WIT contract and
//! the host's catalogue, runs their instances under limits, and feeds them
//! events from the bus.

pub mod bindings;
pub mod engine;
pub mod plugin;
pub mod state;
pub mod supervisor;
pub mod http;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use semver::Version;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};
use yiwang_registry::manifest::{DataTarget, MessageTarget, WIT_PACKAGE};
use yiwang_registry::{Manifest, ManifestError};

use bindings::DepartmentPlugin;
use bindings::exports::yiwang::gov::{handler, lifecycle, model};
pub use engine::{CacheOutcome, ComponentCache, EngineSettings};
pub use plugin::{CallOutcome, FailureKind, LoadedPlugin, Origin, PluginContext};
use plugin::Exports;
use state::PluginState;
pub use supervisor::Supervision;

use crate::services::Services;

/// The version of the WIT package this host implements.
pub const HOST_WIT_VERSION: Version = Version::new(0, 1, 0);

/// The manifest's file name inside a package folder.
pub const MANIFEST_FILE: &str = "plugin.toml";
/// The component's file name inside a package folder.
pub const COMPONENT_FILE: &str = "plugin.wasm";

/// A plugin that could not be loaded: which plugin, which file, which field, why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{}`: {}: field `{field}`: {message}", .plugin.as_deref().unwrap_or("?"), .file.display())]
pub struct LoadError {
    pub plugin: Option<String>,
    pub file: PathBuf,
    pub field: String,
    pub message: String,
}

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
}

/// The plugin runtime.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    cache: ComponentCache,
    services: Arc<Services>,
    settings: RuntimeSettings,
    plugins: RwLock<BTreeMap<String, Arc<LoadedPlugin>>>,
}

impl Runtime {
    pub fn new(services: Arc<Services>, settings: RuntimeSettings) -> anyhow::Result<Arc<Self>> {
        let engine = engine::build_engine(&settings.engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        DepartmentPlugin::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |s| s)?;
        let cache = ComponentCache::new(&engine, settings.cache_dir.as_deref());
        Ok(Arc::new(Runtime { engine, linker, cache, services, settings, plugins: RwLock::default() }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Every loaded plugin, by name.
    pub fn plugins(&self) -> Vec<Arc<LoadedPlugin>> {
        self.plugins.read().values().cloned().collect()
    }

    pub fn plugin(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.read().get(name).cloned()
    }

    /// Load every package folder under `dir` (each with `plugin.toml` and
    /// `plugin.wasm`). A bad package is reported and skipped; the others load.
    pub async fn load_dir(self: &Arc<Self>, dir: &Path) -> Vec<Result<Arc<LoadedPlugin>, LoadError>> {
        let mut folders: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect(),
            Err(e) => {
                return vec![Err(LoadError {
                    plugin: None,
                    file: dir.to_owned(),
                    field: "-".into(),
                    message: format!("cannot read the plugins folder: {e}"),
                })];
            }
        };
        folders.sort();
        let mut results = Vec::new();
        for folder in folders {
            let r = self.load_package(&folder).await;
            match &r {
                Ok(p) => tracing::info!(plugin = p.name(), version = %p.ctx.manifest.version, "plugin loaded"),
                Err(e) => tracing::error!("plugin refused: {e}"),
            }
            results.push(r);
        }
        results
    }

    /// Load one package folder.
    pub async fn load_package(self: &Arc<Self>, folder: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
        let manifest_path = folder.join(MANIFEST_FILE);
        let manifest = Manifest::load(&manifest_path)?;
        let wasm_path = folder.join(COMPONENT_FILE);
        let bytes = std::fs::read(&wasm_path).map_err(|e| LoadError {
            plugin: Some(manifest.name.clone()),
            file: wasm_path.clone(),
            field: "component".into(),
            message: format!("cannot read: {e}"),
        })?;
        self.load(manifest, &manifest_path, &bytes, &wasm_path).await
    }

    /// Load a plugin from a parsed manifest and component bytes, check it, run
    /// `init` once, and subscribe it to its topics.
    pub async fn load(
        self: &Arc<Self>,
        manifest: Manifest,
        manifest_path: &Path,
        bytes: &[u8],
        wasm_path: &Path,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        let name = manifest.name.clone();
        let err = |file: &Path, field: &str, message: String| LoadError {
            plugin: Some(name.clone()),
            file: file.to_owned(),
            field: field.to_owned(),
            message,
        };
        if self.plugins.read().contains_key(&name) {
            return Err(err(manifest_path, "name", format!("a plugin named `{name}` is already loaded")));
        }
        if !manifest.world.compatible_with(&HOST_WIT_VERSION) {
            return Err(err(
                manifest_path,
                "world",
                format!(
                    "plugin targets {} but this host implements {WIT_PACKAGE}@{HOST_WIT_VERSION}",
                    manifest.world
                ),
            ));
        }
        self.check_catalogue(&manifest, manifest_path).await?;
        self.services
            .identity
            .ensure_service_account(&manifest.name, &manifest.department, self.services.clock.now_ms())
            .await
            .map_err(|e| err(manifest_path, "-", format!("cannot record the plugin's service identity: {e}")))?;

        let digest = engine::digest(bytes);
        let (component, compiled) = self
            .cache
            .load(&self.engine, bytes, &digest)
            .map_err(|e| err(wasm_path, "component", format!("not a valid component: {e:#}")))?;
        check_component_imports(&self.engine, &component).map_err(|m| err(wasm_path, "component", m))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| err(wasm_path, "component", format!("imports something this host does not offer: {e:#}")))?;
        let world = manifest.world.kind;
        let missing = |what: &str, e: wasmtime::Error| {
            err(wasm_path, "world", format!("manifest says {} but the component does not export {what}: {e:#}", manifest.world))
        };
        let exports = Exports {
            lifecycle: lifecycle::GuestIndices::new(&pre).map_err(|e| missing("lifecycle", e))?,
            handler: if world.handles() {
                Some(handler::GuestIndices::new(&pre).map_err(|e| missing("handler", e))?)
            } else {
                None
            },
            model: if world.models() { Some(model::GuestIndices::new(&pre).map_err(|e| missing("model", e))?) } else { None },
        };
        let files_dir = self.settings.files_dir.as_ref().map(|d| d.join(&name));
        let subscribe = manifest.subscribe.clone();
        let queue = manifest.limits.queue;
        let ctx = PluginContext::new(manifest, self.services.clone());
        let plugin = Arc::new(LoadedPlugin::new(
            ctx,
            Origin { digest, path: manifest_path.parent().unwrap_or(Path::new(".")).to_owned(), compiled },
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
            .map_err(|(kind, m)| err(wasm_path, "init", format!("{}: {m}", kind.name())))?;
        plugin.checkin(warm);

        let mut subscription = self.services.bus.subscribe(&name, subscribe, queue);
        *plugin.subscription.lock() = Some(subscription.handle);
        {
            let mut plugins = self.plugins.write();
            if plugins.contains_key(&name) {
                return Err(err(manifest_path, "name", format!("a plugin named `{name}` is already loaded")));
            }
            plugins.insert(name.clone(), plugin.clone());
        }
        let worker = plugin.clone();
        tokio::spawn(async move {
            while let Some(event) = subscription.events.recv().await {
                worker.deliver(&event).await;
            }
        });
        let detail = format!("version {} digest {}", plugin.ctx.manifest.version, plugin.origin.digest);
        self.services.audit.record_host("plugin.load", &plugin.ctx.principal, "ok", &detail).await;
        Ok(plugin)
    }

    /// Stop delivering to a plugin and forget it. Events already queued for it are dropped.
    pub fn unload(&self, name: &str) -> bool {
        let Some(plugin) = self.plugins.write().remove(name) else { return false };
        plugin.subscription.lock().take();
        plugin.drain_pool();
        self.services.metrics.remove_plugin(name);
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
                    DataTarget::SensorKind(kind) => s.data.sensor_kind_exists(kind).await.map_err(|e| storage(e.into()))?,
                };
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
                _ => (true, String::new()),
            };
            if !exists {
                return Err(err(format!("grants.message[{i}]"), format!("unknown {what}")));
            }
        }
        Ok(())
    }
}

/// Refuse a component built against another version of `yiwang:gov`, naming both.
fn check_component_imports(engine: &Engine, component: &Component) -> Result<(), String> {
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
