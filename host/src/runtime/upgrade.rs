//! Versions of a running plugin: upgrade in place, hold an upgrade that asks
//! for more than the running version has until an operator approves it, roll
//! back (by an operator, or by itself when a fresh version fails), enable and
//! disable; and the version history, kept in `plugin_history`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sqlx::Row;
use yiwang_registry::Manifest;
use yiwang_registry::manifest::Grants;

use super::slot::{Held, Slot};
use super::{COMPONENT_FILE, LoadError, LoadedPlugin, MANIFEST_FILE, Runtime};
use crate::error::new_id;

/// A package folder as read from disk: its manifest, component and, when
/// signed, the signature (checked against the contents as it is read).
pub struct Package {
    pub manifest_path: PathBuf,
    pub wasm_path: PathBuf,
    /// Manifest, manifest text, component, content digest and signature.
    pub inner: yiwang_registry::Package,
}

impl Package {
    /// Read `folder/plugin.toml`, `folder/plugin.wasm` and, if present,
    /// `folder/signature.toml`, each once into memory (regular files only,
    /// within the package limits); the grants, the digest and the signature
    /// check all use exactly those bytes. A signature that does not match the
    /// contents (a tampered package) is refused here. This reads files: call
    /// it off the async runtime ([`Package::read_off_runtime`]).
    pub fn read(folder: &Path) -> Result<Package, LoadError> {
        use yiwang_registry::package::{MAX_COMPONENT_BYTES, MAX_MANIFEST_BYTES, MAX_SIGNATURE_BYTES, SIGNATURE_FILE};
        let manifest_path = folder.join(MANIFEST_FILE);
        let unnamed = |file: &Path, field: &str, message: String| LoadError {
            plugin: None,
            file: file.to_owned(),
            field: field.to_owned(),
            message,
        };
        let text = yiwang_registry::package::read_package_file(&manifest_path, MAX_MANIFEST_BYTES)
            .map_err(|e| unnamed(&manifest_path, "-", format!("cannot read: {e}")))?;
        let text = String::from_utf8(text).map_err(|_| unnamed(&manifest_path, "-", "not UTF-8".into()))?;
        let manifest = Manifest::parse(&text, &manifest_path)?;
        let error = |file: &Path, field: &str, message: String| LoadError { plugin: Some(manifest.name.clone()), ..unnamed(file, field, message) };
        let wasm_path = folder.join(COMPONENT_FILE);
        let bytes = yiwang_registry::package::read_package_file(&wasm_path, MAX_COMPONENT_BYTES)
            .map_err(|e| error(&wasm_path, "component", format!("cannot read: {e}")))?;
        let digest = yiwang_registry::content_digest(text.as_bytes(), &bytes);
        let signature_path = folder.join(SIGNATURE_FILE);
        let signature = match yiwang_registry::package::read_package_file(&signature_path, MAX_SIGNATURE_BYTES) {
            Ok(sig) => {
                let sig = std::str::from_utf8(&sig)
                    .map_err(|_| "not UTF-8".to_owned())
                    .and_then(yiwang_registry::Signature::from_toml)
                    .map_err(|m| error(&signature_path, "signature", format!("malformed: {m}")))?;
                sig.verify_parts(&manifest.name, &manifest.version, &digest)
                    .map_err(|e| error(&signature_path, "signature", e.to_string()))?;
                Some(sig)
            }
            Err(yiwang_registry::PackageError::Io(e)) if e.source.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(error(&signature_path, "signature", format!("cannot read: {e}"))),
        };
        let inner = yiwang_registry::Package { manifest, manifest_text: text, component: bytes, digest, signature };
        Ok(Package { manifest_path, wasm_path, inner })
    }

    /// [`Package::read`] on a blocking thread, so that a slow or stuck file
    /// system never stalls the async runtime (and the HTTP server with it).
    pub async fn read_off_runtime(folder: &Path) -> Result<Package, LoadError> {
        let owned = folder.to_owned();
        tokio::task::spawn_blocking(move || Package::read(&owned)).await.unwrap_or_else(|e| {
            Err(LoadError {
                plugin: None,
                file: folder.join(MANIFEST_FILE),
                field: "-".into(),
                message: format!("reading the package failed: {e}"),
            })
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// `sha256:<hex>` over the manifest and the component.
    pub fn digest(&self) -> String {
        self.inner.digest.to_string()
    }

    /// A load error about this package's manifest.
    pub(crate) fn error(&self, field: &str, message: String) -> LoadError {
        LoadError {
            plugin: Some(self.inner.manifest.name.clone()),
            file: self.manifest_path.clone(),
            field: field.to_owned(),
            message,
        }
    }
}

/// What applying a package folder came to.
pub enum Applied {
    /// A plugin not running before now runs.
    Loaded(Arc<LoadedPlugin>),
    /// The new version serves; the old one is kept for a rollback.
    Upgraded { plugin: Arc<LoadedPlugin>, from: semver::Version },
    /// The same package is already serving.
    Unchanged(Arc<LoadedPlugin>),
    /// The new version asks for more than the running one; it waits for an
    /// operator, and the running version keeps serving.
    Held { running: Arc<LoadedPlugin>, held: Held },
}

impl Applied {
    /// The version serving after the change.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        match self {
            Applied::Loaded(p) | Applied::Upgraded { plugin: p, .. } | Applied::Unchanged(p) => p,
            Applied::Held { running, .. } => running,
        }
    }
}

/// One line of a plugin's version history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub version: String,
    pub digest: String,
    /// `loaded`, `upgraded`, `held`, `approved`, `refused`, `rolled-back`,
    /// `disabled`, `enabled` or `removed`.
    pub event: String,
    pub at_ms: i64,
    /// `host` (the watcher, an automatic rollback) or `user:<id>`.
    pub actor: String,
    pub detail: String,
}

/// Why an operator's request on a plugin was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no plugin `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Storage or the event log failed.
    #[error("{0}")]
    Unavailable(String),
}

/// What `new` is granted that `old` is not, one line each.
pub fn widened(old: &Manifest, new: &Manifest) -> Vec<String> {
    let mut more = Vec::new();
    let (o, n): (&Grants, &Grants) = (&old.grants, &new.grants);
    fn added<T: ToString>(more: &mut Vec<String>, field: &str, old: &[T], new: &[T]) {
        let old: Vec<String> = old.iter().map(ToString::to_string).collect();
        for item in new.iter().map(ToString::to_string) {
            if !old.contains(&item) {
                more.push(format!("grants.{field}: `{item}`"));
            }
        }
    }
    if old.department != new.department {
        more.push(format!("department: `{}` instead of `{}`", new.department, old.department));
    }
    added(&mut more, "publish", &o.publish, &n.publish);
    added(&mut more, "data-read", &o.data_read, &n.data_read);
    added(&mut more, "data-write", &o.data_write, &n.data_write);
    let names = |ops: &[yiwang_registry::manifest::CaseOp]| ops.iter().map(|c| c.name()).collect::<Vec<_>>();
    added(&mut more, "cases", &names(&o.cases), &names(&n.cases));
    added(&mut more, "message", &o.message, &n.message);
    for (field, was, is) in [
        ("identity", o.identity, n.identity),
        ("wasi.stdio", o.wasi.stdio, n.wasi.stdio),
        ("wasi.network", o.wasi.network, n.wasi.network),
        ("wasi.filesystem", o.wasi.filesystem, n.wasi.filesystem),
    ] {
        if is && !was {
            more.push(format!("grants.{field}: true"));
        }
    }
    for key in n.wasi.env.keys().filter(|k| !o.wasi.env.contains_key(*k)) {
        more.push(format!("grants.wasi.env: `{key}`"));
    }
    more
}

impl Runtime {
    /// Bring the package in `folder` into service: load it if no plugin of its
    /// name runs, upgrade in place if one does (unless it is the same
    /// package), or hold it for approval if it asks for more. A package that
    /// fails any check, or whose `init` fails, is refused and the running
    /// version keeps serving.
    pub async fn apply_package(self: &Arc<Self>, folder: &Path, actor: &str) -> Result<Applied, LoadError> {
        let package = Package::read_off_runtime(folder).await?;
        let name = package.manifest().name.clone();
        let Some(slot) = self.slot(&name) else {
            self.refuse_rolled_back(&package).await?;
            let plugin = self.prepare(package).await?;
            self.start(plugin.clone(), actor).await?;
            return Ok(Applied::Loaded(plugin));
        };
        let _changing = slot.changing.lock().await;
        let running = slot.current();
        if running.origin.package_digest == package.digest() {
            return Ok(Applied::Unchanged(running));
        }
        if let Some(held) = slot.held()
            && held.plugin.origin.package_digest == package.digest()
        {
            return Ok(Applied::Held { running, held });
        }
        self.refuse_rolled_back(&package).await?;
        let (version, digest) = (package.manifest().version.to_string(), package.digest());
        let more = widened(&running.ctx.manifest, package.manifest());
        let prepared = match self.prepare(package).await {
            Ok(p) => p,
            Err(e) => {
                self.note_version(&name, &version, &digest, "refused", actor, &e.to_string()).await;
                return Err(e);
            }
        };
        if !more.is_empty() {
            let held = Held { plugin: prepared, widened: more, since: self.services.clock.now_ms() };
            slot.hold(Some(held.clone()));
            let detail = format!("asks for more than version {}: {}", running.ctx.manifest.version, held.widened.join("; "));
            tracing::warn!(plugin = name, version, "upgrade held for an operator: {detail}");
            self.note(&held.plugin, "held", actor, &detail).await;
            return Ok(Applied::Held { running, held });
        }
        slot.hold(None);
        Ok(self.swap_in(&slot, prepared, actor, "upgraded").await)
    }

    /// Refuse a package that was rolled back before (by its digest).
    async fn refuse_rolled_back(&self, package: &Package) -> Result<(), LoadError> {
        let row = sqlx::query(
            "SELECT at, detail FROM plugin_history WHERE plugin = $1 AND digest = $2 AND event = 'rolled-back' \
             ORDER BY at DESC LIMIT 1",
        )
        .bind(&package.manifest().name)
        .bind(package.digest())
        .fetch_optional(self.services.db.pool())
        .await
        .map_err(|e| package.error("-", format!("cannot read the version history: {e}")))?;
        match row {
            None => Ok(()),
            Some(r) => {
                let detail: String = r.try_get(1).unwrap_or_default();
                Err(package.error(
                    "version",
                    format!(
                        "version {} ({}) was rolled back ({detail}); install another version",
                        package.manifest().version,
                        package.digest()
                    ),
                ))
            }
        }
    }

    /// Make `next` serve in `slot`, on probation; the old version stays as the
    /// rollback target.
    async fn swap_in(self: &Arc<Self>, slot: &Arc<Slot>, next: Arc<LoadedPlugin>, actor: &str, event: &str) -> Applied {
        let until = self.services.clock.now_ms() + self.settings.upgrade.probation_ms;
        let old = slot.swap(next.clone(), Some(until), true);
        let from = old.ctx.manifest.version.clone();
        let detail = format!("from version {from} ({})", old.origin.package_digest);
        tracing::info!(plugin = next.name(), from = %from, to = %next.ctx.manifest.version, "plugin {event}");
        let audit_detail = format!("version {} digest {}; {detail}", next.ctx.manifest.version, next.origin.digest);
        self.services.audit.record_host("plugin.upgrade", &next.ctx.principal, "ok", &audit_detail).await;
        self.note(&next, event, actor, &detail).await;
        Applied::Upgraded { plugin: next, from }
    }

    /// Approve the upgrade held for `name`: it starts serving.
    pub async fn approve(self: &Arc<Self>, name: &str, actor: &str) -> Result<Applied, ChangeError> {
        let slot = self.slot(name).ok_or_else(|| ChangeError::NotFound(name.to_owned()))?;
        let _changing = slot.changing.lock().await;
        let held = slot.take_held().ok_or_else(|| ChangeError::Conflict(format!("no upgrade of `{name}` waits for approval")))?;
        let widened = held.widened.join("; ");
        self.note(&held.plugin, "approved", actor, &widened).await;
        Ok(self.swap_in(&slot, held.plugin, actor, "upgraded").await)
    }

    /// Return `name` to the version before the current one.
    pub async fn rollback(self: &Arc<Self>, name: &str, actor: &str, reason: &str) -> Result<Arc<LoadedPlugin>, ChangeError> {
        let slot = self.slot(name).ok_or_else(|| ChangeError::NotFound(name.to_owned()))?;
        let _changing = slot.changing.lock().await;
        let current = slot.current();
        let previous =
            slot.previous().ok_or_else(|| ChangeError::Conflict(format!("`{name}` has no earlier version to roll back to")))?;
        self.roll_back_to(&slot, &current, previous.clone(), actor, reason).await;
        Ok(previous)
    }

    /// Roll back a version on probation that failed; called by the plugin's
    /// worker between two events, so no event is lost or handled twice.
    pub(crate) async fn roll_back_failing(self: &Arc<Self>, slot: &Arc<Slot>, failing: &Arc<LoadedPlugin>, reason: &str) {
        let _changing = slot.changing.lock().await;
        if !Arc::ptr_eq(&slot.current(), failing) {
            return;
        }
        let Some(previous) = slot.previous() else { return };
        tracing::error!(plugin = failing.name(), version = %failing.ctx.manifest.version, "rolled back by itself: {reason}");
        self.roll_back_to(slot, failing, previous, "host", reason).await;
    }

    async fn roll_back_to(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        current: &Arc<LoadedPlugin>,
        previous: Arc<LoadedPlugin>,
        actor: &str,
        reason: &str,
    ) {
        slot.swap(previous.clone(), None, false);
        self.activate_on_disk(&previous);
        let detail = format!("back to version {}: {reason}", previous.ctx.manifest.version);
        let audit_detail = format!("version {} digest {}; {detail}", current.ctx.manifest.version, current.origin.digest);
        self.services.audit.record_host("plugin.rollback", &current.ctx.principal, "ok", &audit_detail).await;
        self.note(current, "rolled-back", actor, &detail).await;
    }

    /// After a rollback, make the plugins folder hold the version serving
    /// again, so that a restart serves it too. Only a plugin installed by
    /// `yiwang plugin install` keeps its versions (`.versions/<name>/`); a
    /// plain folder keeps the rolled-back package, which is then refused at
    /// the next start by its digest.
    fn activate_on_disk(&self, plugin: &LoadedPlugin) {
        let Some(dir) = &self.settings.plugins_dir else { return };
        let name = plugin.name();
        if !dir.join(".versions").join(name).exists() {
            tracing::warn!(plugin = name, "the plugins folder keeps the rolled-back package: it was not installed with its versions");
            return;
        }
        let version = &plugin.ctx.manifest.version;
        match yiwang_registry::activate(dir, name, version) {
            Ok(()) => tracing::info!(plugin = name, %version, "the plugins folder holds the version serving again"),
            Err(e) => tracing::warn!(plugin = name, %version, "could not make the plugins folder hold the version serving again: {e}"),
        }
    }

    /// Stop (`false`) or resume (`true`) delivering events to `name`. Events
    /// published while a plugin is disabled are kept for it and delivered, in
    /// order, when it is enabled again.
    pub async fn set_enabled(self: &Arc<Self>, name: &str, enabled: bool, actor: &str) -> Result<(), ChangeError> {
        let slot = self.slot(name).ok_or_else(|| ChangeError::NotFound(name.to_owned()))?;
        let _changing = slot.changing.lock().await;
        if slot.enabled() == enabled {
            return Err(ChangeError::Conflict(format!(
                "`{name}` is already {}",
                if enabled { "enabled" } else { "disabled" }
            )));
        }
        if enabled {
            self.subscribe(&slot).await.map_err(|e| ChangeError::Unavailable(format!("cannot resume delivery: {e}")))?;
        } else {
            slot.stop_worker();
        }
        let plugin = slot.current();
        let event = if enabled { "enabled" } else { "disabled" };
        self.services.audit.record_host(&format!("plugin.{}", &event[..event.len() - 1]), &plugin.ctx.principal, "ok", "").await;
        self.note(&plugin, event, actor, "").await;
        Ok(())
    }

    /// The version history of `name`, oldest first.
    pub async fn history(&self, name: &str) -> anyhow::Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT version, digest, event, at, actor, detail FROM plugin_history WHERE plugin = $1 ORDER BY at, id",
        )
        .bind(name)
        .fetch_all(self.services.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    version: r.try_get(0)?,
                    digest: r.try_get(1)?,
                    event: r.try_get(2)?,
                    at_ms: r.try_get(3)?,
                    actor: r.try_get(4)?,
                    detail: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Record a line of `plugin`'s history.
    pub(crate) async fn note(&self, plugin: &LoadedPlugin, event: &str, actor: &str, detail: &str) {
        let version = plugin.ctx.manifest.version.to_string();
        self.note_version(plugin.name(), &version, &plugin.origin.package_digest, event, actor, detail).await;
    }

    pub(crate) async fn note_version(&self, name: &str, version: &str, digest: &str, event: &str, actor: &str, detail: &str) {
        let written = sqlx::query(
            "INSERT INTO plugin_history (id, plugin, version, digest, event, at, actor, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(name)
        .bind(version)
        .bind(digest)
        .bind(event)
        .bind(self.services.clock.now_ms())
        .bind(actor)
        .bind(detail)
        .execute(self.services.db.writer())
        .await;
        if let Err(e) = written {
            tracing::error!(plugin = name, event, "could not record the version history: {e}");
        }
    }
}
