//! Installing plugins into a plugins folder, with version history and rollback.
//!
//! ```text
//! <plugins>/<name>/                     the active version: what the host loads
//! <plugins>/.versions/<name>/<version>/ every installed version, kept
//! <plugins>/.versions/<name>/history    activation stack, one version a line
//! <plugins>/.versions/.lock             serializes installs, also across processes
//! ```
//!
//! The active folder is a full copy of the version's folder (manifest,
//! component, signature), not a link, so the host needs nothing but
//! `<plugins>/<name>/`. It is switched by writing the new copy beside it and
//! renaming it into place; a failure before that leaves the active folder
//! untouched. Hidden names (starting with `.`) are never plugins.
//!
//! `history` is a stack: activating pushes a version, [`rollback`] pops the
//! active one and activates the one below it.

use std::fs;
use std::path::{Path, PathBuf};

use semver::Version;

use crate::client::Registry;
use crate::fsutil::{self, LockFile, PathError, at};
use crate::index::{IndexEntry, PluginSpec, RegistryError};
use crate::manifest::{Manifest, valid_name};
use crate::package::{self, Digest, MANIFEST_FILE, Package, PackageError};
use crate::sign::SignatureError;
use crate::store::check_fetched;
use crate::trust::{TrustError, TrustPolicy, TrustedBy};

/// The folder of kept versions inside a plugins folder.
pub const VERSIONS_DIR: &str = ".versions";
/// The activation history file inside `.versions/<name>/`.
pub const HISTORY_FILE: &str = "history";

/// An install, activation or rollback that failed. The active folder is
/// unchanged whenever one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Resolving or fetching failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The package was refused.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The package is not trusted.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A kept version no longer matches its signature.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Reading or writing the plugins folder failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// Not a valid plugin name.
    #[error("`{0}` is not a plugin name")]
    InvalidName(String),
    /// The version is not kept in `.versions`.
    #[error("plugin `{plugin}` {version} is not installed; installed versions: {}", list(.installed))]
    NotInstalled {
        /// The plugin.
        plugin: String,
        /// The version asked for.
        version: Version,
        /// The versions kept.
        installed: Vec<Version>,
    },
    /// Nothing to roll back to.
    #[error("plugin `{plugin}` has no earlier active version to roll back to")]
    NoPrevious {
        /// The plugin.
        plugin: String,
    },
    /// The same version is already kept with other content.
    #[error(
        "plugin `{plugin}` {version} is already installed with content {installed}, but this package has {new}; versions are immutable"
    )]
    VersionConflict {
        /// The plugin.
        plugin: String,
        /// The version.
        version: Version,
        /// The content digest kept.
        installed: Digest,
        /// The content digest offered.
        new: Digest,
    },
}

fn list(items: &[Version]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// The result of a successful install.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The plugin.
    pub name: String,
    /// The version now active.
    pub version: Version,
    /// The version active before, if any.
    pub previous: Option<Version>,
    /// The package's content digest.
    pub digest: Digest,
    /// Who vouched for it.
    pub trusted: TrustedBy,
    /// The active folder, `<plugins>/<name>`.
    pub path: PathBuf,
}

/// What is installed of one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPlugin {
    /// The plugin.
    pub name: String,
    /// The version in the active folder, if it is there and readable.
    pub active: Option<Version>,
    /// The kept versions, oldest first.
    pub versions: Vec<Version>,
    /// The activation stack, oldest first (the last is the active one).
    pub history: Vec<Version>,
}

struct Layout {
    plugins: PathBuf,
}

impl Layout {
    fn new(plugins: &Path) -> Self {
        Layout {
            plugins: plugins.to_owned(),
        }
    }

    fn versions_root(&self) -> PathBuf {
        self.plugins.join(VERSIONS_DIR)
    }

    fn plugin_versions(&self, name: &str) -> PathBuf {
        self.versions_root().join(name)
    }

    fn version_dir(&self, name: &str, version: &Version) -> PathBuf {
        self.plugin_versions(name).join(version.to_string())
    }

    fn active(&self, name: &str) -> PathBuf {
        self.plugins.join(name)
    }

    fn history_file(&self, name: &str) -> PathBuf {
        self.plugin_versions(name).join(HISTORY_FILE)
    }

    fn lock(&self) -> Result<LockFile, InstallError> {
        let root = self.versions_root();
        fs::create_dir_all(&root).map_err(at(&root))?;
        Ok(LockFile::acquire(&root.join(".lock"))?)
    }

    fn read_history(&self, name: &str) -> Result<Vec<Version>, InstallError> {
        let path = self.history_file(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(PathError { path, source: e }.into()),
        };
        // Lines that are not versions (hand edits) are ignored rather than fatal.
        Ok(text.lines().filter_map(|l| Version::parse(l.trim()).ok()).collect())
    }

    fn write_history(&self, name: &str, history: &[Version]) -> Result<(), InstallError> {
        let text: String = history.iter().map(|v| format!("{v}\n")).collect();
        fsutil::write_atomic(&self.history_file(name), text.as_bytes(), 0o644)?;
        Ok(())
    }

    fn kept_versions(&self, name: &str) -> Result<Vec<Version>, InstallError> {
        let dir = self.plugin_versions(name);
        let mut versions = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(versions),
            Err(e) => return Err(PathError { path: dir, source: e }.into()),
        };
        for entry in entries {
            let entry = entry.map_err(at(&dir))?;
            if !entry.path().join(MANIFEST_FILE).is_file() {
                continue;
            }
            if let Some(v) = entry.file_name().to_str().and_then(|n| Version::parse(n).ok()) {
                versions.push(v);
            }
        }
        versions.sort();
        Ok(versions)
    }

    /// The version in the active folder, if there and readable.
    fn active_version(&self, name: &str) -> Option<Version> {
        Manifest::load(&self.active(name).join(MANIFEST_FILE))
            .ok()
            .map(|m| m.version)
    }

    /// Read a kept version and check its integrity (digest against signature).
    fn read_kept(&self, name: &str, version: &Version) -> Result<Package, InstallError> {
        let dir = self.version_dir(name, version);
        if !dir.join(MANIFEST_FILE).is_file() {
            return Err(InstallError::NotInstalled {
                plugin: name.to_owned(),
                version: version.clone(),
                installed: self.kept_versions(name)?,
            });
        }
        let package = package::read_folder(&dir)?;
        if let Some(signature) = &package.signature {
            signature.verify(&package)?;
        }
        Ok(package)
    }

    /// Make `package` the active version and push it on the history.
    fn switch(&self, package: &Package, history: &mut Vec<Version>) -> Result<(), InstallError> {
        let name = package.manifest.name.clone();
        package.write_folder(&self.active(&name))?;
        if history.last() != Some(&package.manifest.version) {
            history.push(package.manifest.version.clone());
        }
        self.write_history(&name, history)
    }

    /// Keep the unmanaged folder now active (e.g. a bundled plugin) as a
    /// version, so a rollback can return to it.
    fn adopt_active(&self, name: &str, history: &mut Vec<Version>) -> Result<(), InstallError> {
        let Ok(current) = package::read_folder(&self.active(name)) else {
            return Ok(());
        };
        if current.manifest.name != name {
            return Ok(());
        }
        let version = current.manifest.version.clone();
        let dir = self.version_dir(name, &version);
        if !dir.join(MANIFEST_FILE).is_file() {
            current.write_folder(&dir)?;
        }
        if history.last() != Some(&version) {
            history.push(version);
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), InstallError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(InstallError::InvalidName(name.to_owned()))
    }
}

/// Resolve `spec` in `registry`, fetch the archive, check it against the
/// index entry, verify its signature and `trust`, keep it under
/// `.versions/<name>/<version>/` and make it the active version.
pub async fn install(
    registry: &Registry,
    spec: &PluginSpec,
    plugins_dir: &Path,
    trust: &TrustPolicy,
) -> Result<Installed, InstallError> {
    let entry: IndexEntry = registry.resolve(spec).await?;
    let archive = registry.fetch(&entry).await?;
    let package = check_fetched(&entry, &archive)?;
    install_package(package, plugins_dir, trust)
}

/// Install a `.ywpkg` archive given as bytes (e.g. a local file), with the
/// same checks as [`install`] except the index.
pub fn install_archive(archive: &[u8], plugins_dir: &Path, trust: &TrustPolicy) -> Result<Installed, InstallError> {
    install_package(package::unpack(archive)?, plugins_dir, trust)
}

/// Install an unpacked package: check `trust`, keep it and activate it.
pub fn install_package(package: Package, plugins_dir: &Path, trust: &TrustPolicy) -> Result<Installed, InstallError> {
    let trusted = trust.check(&package)?;
    let layout = Layout::new(plugins_dir);
    let _lock = layout.lock()?;
    let name = package.manifest.name.clone();
    let version = package.manifest.version.clone();

    let mut history = layout.read_history(&name)?;
    let previous = layout.active_version(&name);
    layout.adopt_active(&name, &mut history)?;

    let dir = layout.version_dir(&name, &version);
    if dir.join(MANIFEST_FILE).is_file() {
        let kept = package::read_folder(&dir)?;
        if kept.digest != package.digest {
            return Err(InstallError::VersionConflict {
                plugin: name,
                version,
                installed: kept.digest,
                new: package.digest,
            });
        }
    }
    // The kept copy is rewritten even when present, so its signature is the
    // one just checked.
    package.write_folder(&dir)?;
    layout.switch(&package, &mut history)?;
    Ok(Installed {
        path: layout.active(&name),
        name,
        version,
        previous,
        digest: package.digest,
        trusted,
    })
}

/// Make the kept `version` of `name` the active one. Its digest is checked
/// against its signature (integrity); trust is the loader's check.
pub fn activate(plugins_dir: &Path, name: &str, version: &Version) -> Result<(), InstallError> {
    check_name(name)?;
    let layout = Layout::new(plugins_dir);
    let _lock = layout.lock()?;
    let package = layout.read_kept(name, version)?;
    let mut history = layout.read_history(name)?;
    layout.adopt_active(name, &mut history)?;
    layout.switch(&package, &mut history)
}

/// Switch `name` back to the version active before the current one; returns
/// that version. The current version stays kept, and leaves the history.
pub fn rollback(plugins_dir: &Path, name: &str) -> Result<Version, InstallError> {
    check_name(name)?;
    let layout = Layout::new(plugins_dir);
    let _lock = layout.lock()?;
    let mut history = layout.read_history(name)?;
    let current = layout.active_version(name).or_else(|| history.last().cloned());
    while history.last().is_some() && history.last() == current.as_ref() {
        history.pop();
    }
    let kept = layout.kept_versions(name)?;
    // Versions removed by hand since are skipped.
    while let Some(top) = history.last() {
        if kept.contains(top) {
            break;
        }
        history.pop();
    }
    let target = history.last().cloned().ok_or_else(|| InstallError::NoPrevious {
        plugin: name.to_owned(),
    })?;
    let package = layout.read_kept(name, &target)?;
    layout.switch(&package, &mut history)?;
    Ok(target)
}

/// Every plugin with kept versions in `plugins_dir`, sorted by name.
pub fn installed(plugins_dir: &Path) -> Result<Vec<InstalledPlugin>, InstallError> {
    let layout = Layout::new(plugins_dir);
    let root = layout.versions_root();
    let entries = match fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PathError { path: root, source: e }.into()),
    };
    let mut plugins = Vec::new();
    for entry in entries {
        let entry = entry.map_err(at(&root))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !valid_name(&name) || !entry.path().is_dir() {
            continue;
        }
        plugins.push(InstalledPlugin {
            active: layout.active_version(&name),
            versions: layout.kept_versions(&name)?,
            history: layout.read_history(&name)?,
            name,
        });
    }
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(plugins)
}
