//! Hot loading: the plugins folder is watched (`notify`), and a package that
//! appears or changes there is applied — checked, compiled (or taken
//! precompiled from the cache), `init` run, and swapped in — while the city
//! keeps running. A folder that disappears unloads its plugin.
//!
//! Changes are gathered until the folder has been quiet for a moment, so a
//! package written file by file, or moved into place as a folder, is applied
//! once, whole. A half-written package that fails its checks is refused, and
//! applied when its last write lands (its digest is then another).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::{Applied, Runtime, hidden};

/// How long the folder must be quiet before a change is applied.
pub const DEFAULT_QUIET: Duration = Duration::from_millis(10);

/// How long a plugin's folder must stay gone before the plugin is unloaded.
const REMOVAL_GRACE: Duration = Duration::from_millis(200);

/// Whether a file-system event changes what the folder holds: a file or folder
/// created, written, renamed or removed, or its permissions changed; not an
/// open, a read, a close after reading, or a new access time.
fn changes(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
    use notify::EventKind;
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

/// Watches a plugins folder while it lives; dropping it stops the watching.
pub struct PluginWatcher {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PluginWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the watcher did about one folder (also sent to `on_applied`, for tests
/// and benchmarks that wait for a change to land).
#[derive(Debug, Clone)]
pub struct WatchReport {
    pub folder: PathBuf,
    /// `loaded`, `upgraded`, `unchanged`, `held`, `refused` or `removed`.
    pub outcome: &'static str,
    pub plugin: Option<String>,
    pub version: Option<String>,
    pub message: Option<String>,
}

impl Runtime {
    /// Watch `dir` and apply every package that appears or changes in it.
    /// `reports` receives what was done about each folder.
    pub fn watch(
        self: &Arc<Self>,
        dir: &Path,
        quiet: Duration,
        reports: Option<mpsc::UnboundedSender<WatchReport>>,
    ) -> notify::Result<PluginWatcher> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
        let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            // Reading a package (as applying one does) is no change to it:
            // reacting to reads would read it again, for ever.
            Ok(event) if !changes(&event.kind) => {}
            Ok(event) => {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
            Err(e) => tracing::warn!("plugins folder watch error: {e}"),
        })?;
        watcher.watch(&dir, RecursiveMode::Recursive)?;
        let runtime = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut touched = BTreeSet::new();
                touched.extend(top_folder(&dir, &first));
                // Gather until the folder is quiet.
                loop {
                    match tokio::time::timeout(quiet, rx.recv()).await {
                        Ok(Some(path)) => touched.extend(top_folder(&dir, &path)),
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                let Some(runtime) = runtime.upgrade() else { return };
                for folder in touched {
                    let report = runtime.reconcile(&folder).await;
                    if let Some(reports) = &reports {
                        let _ = reports.send(report);
                    }
                }
            }
        });
        Ok(PluginWatcher { _watcher: watcher, task })
    }

    /// Bring the runtime in line with one folder of the plugins folder.
    async fn reconcile(self: &Arc<Self>, folder: &Path) -> WatchReport {
        let report = |outcome, plugin: Option<&str>, version: Option<String>, message: Option<String>| WatchReport {
            folder: folder.to_owned(),
            outcome,
            plugin: plugin.map(str::to_owned),
            version,
            message,
        };
        if !folder.join(super::MANIFEST_FILE).exists() {
            return self.gone(folder).await;
        }
        match self.apply_package(folder, "host").await {
            Ok(applied) => {
                let p = applied.plugin().clone();
                let (outcome, version) = match &applied {
                    Applied::Loaded(p) => ("loaded", p.ctx.manifest.version.to_string()),
                    Applied::Upgraded { plugin, .. } => ("upgraded", plugin.ctx.manifest.version.to_string()),
                    Applied::Unchanged(p) => ("unchanged", p.ctx.manifest.version.to_string()),
                    Applied::Held { held, .. } => ("held", held.plugin.ctx.manifest.version.to_string()),
                };
                if outcome == "loaded" {
                    tracing::info!(plugin = p.name(), version, "plugin loaded");
                }
                report(outcome, Some(p.name()), Some(version), None)
            }
            // A package that vanished while it was read is being removed.
            Err(e) if folder.join(super::MANIFEST_FILE).exists() => {
                tracing::error!("plugin refused: {e}");
                report("refused", e.plugin.as_deref(), None, Some(e.to_string()))
            }
            Err(_) => self.gone(folder).await,
        }
    }

    /// A folder without a package: once it is gone altogether, unload the
    /// plugin that was loaded from it, if any.
    async fn gone(self: &Arc<Self>, folder: &Path) -> WatchReport {
        let report = |outcome, plugin: Option<&str>, version: Option<String>| WatchReport {
            folder: folder.to_owned(),
            outcome,
            plugin: plugin.map(str::to_owned),
            version,
            message: None,
        };
        let loaded = self.slots().into_iter().map(|s| s.current()).find(|p| p.origin.path.file_name() == folder.file_name());
        if loaded.is_some() && !folder.exists() {
            // An installer replacing the folder moves the old one out and the
            // new one in: give it a moment before taking the gap for a removal.
            tokio::time::sleep(REMOVAL_GRACE).await;
        }
        match loaded {
            Some(p) if !folder.exists() => {
                let name = p.name().to_owned();
                self.note(&p, "removed", "host", "its folder was removed").await;
                self.unload(&name).await;
                tracing::info!(plugin = name, "plugin unloaded: its folder was removed");
                report("removed", Some(&name), Some(p.ctx.manifest.version.to_string()))
            }
            _ => report("unchanged", None, None),
        }
    }
}

/// The folder directly under `dir` that `path` lies in, unless it is hidden.
fn top_folder(dir: &Path, path: &Path) -> Option<PathBuf> {
    let first = path.strip_prefix(dir).ok()?.components().next()?;
    let folder = dir.join(first);
    (!hidden(&folder)).then_some(folder)
}
