//! A registry in a plain directory:
//!
//! ```text
//! <root>/blobs/sha256/<hex>   archives, named by the sha256 of their bytes
//! <root>/index/<name>.json    one index document per plugin (see `index`)
//! <root>/.lock                serializes writers, also across processes
//! ```
//!
//! Every file is written to a temporary sibling, fsynced and renamed, so a
//! reader sees a complete blob or index or none. Blobs are re-hashed on read.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use semver::Version;

use crate::fsutil::{self, LockFile, PathError, at};
use crate::index::{Index, IndexEntry, PluginSpec, RegistryError};
use crate::manifest::valid_name;
use crate::package::{self, Digest, MAX_ARCHIVE_BYTES, Package};

/// A registry kept in a local directory.
#[derive(Debug, Clone)]
pub struct DirRegistry {
    root: PathBuf,
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl DirRegistry {
    /// Open (creating if needed) the registry at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<DirRegistry, RegistryError> {
        let root = root.into();
        for dir in [root.join("blobs").join("sha256"), root.join("index")] {
            fs::create_dir_all(&dir).map_err(at(&dir))?;
        }
        Ok(DirRegistry { root })
    }

    /// The registry's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    fn index_path(&self, name: &str) -> Result<PathBuf, RegistryError> {
        // Names are checked before they become paths: `..` or `/` never reach the filesystem.
        if !valid_name(name) {
            return Err(RegistryError::InvalidName(name.to_owned()));
        }
        Ok(self.root.join("index").join(format!("{name}.json")))
    }

    fn lock(&self) -> Result<LockFile, RegistryError> {
        Ok(LockFile::acquire(&self.root.join(".lock"))?)
    }

    fn read_index(&self, name: &str) -> Result<Option<Index>, RegistryError> {
        let path = self.index_path(name)?;
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PathError { path, source: e }.into()),
        };
        let index: Index = serde_json::from_str(&text).map_err(|e| RegistryError::IndexCorrupt {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Some(index))
    }

    fn write_index(&self, index: &Index) -> Result<(), RegistryError> {
        let path = self.index_path(&index.name)?;
        let json = serde_json::to_vec_pretty(index).map_err(|e| RegistryError::IndexCorrupt {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        fsutil::write_atomic(&path, &json, 0o644)?;
        Ok(())
    }

    /// Publish an archive; see [`DirRegistry::publish_at`].
    pub fn publish(&self, archive: &[u8]) -> Result<IndexEntry, RegistryError> {
        self.publish_at(archive, now_ms())
    }

    /// Publish an archive, recording `published_at_ms` as its time.
    ///
    /// The archive is unpacked with every check of
    /// [`unpack`](crate::package::unpack) and must carry a valid signature
    /// (integrity; whether to trust the publisher is the installer's
    /// decision). Publishing a version again with the same content is a
    /// no-op returning the existing entry; with different content it is
    /// refused. The blob is stored before the index names it.
    pub fn publish_at(&self, archive: &[u8], published_at_ms: u64) -> Result<IndexEntry, RegistryError> {
        let package = package::unpack(archive)?;
        let signature = package.signature.as_ref().ok_or_else(|| RegistryError::Unsigned {
            plugin: package.manifest.name.clone(),
            version: package.manifest.version.clone(),
        })?;
        signature.verify(&package)?;
        let mut entry =
            IndexEntry::for_package(&package, archive, published_at_ms).ok_or_else(|| RegistryError::Unsigned {
                plugin: package.manifest.name.clone(),
                version: package.manifest.version.clone(),
            })?;

        let _lock = self.lock()?;
        let mut index = self.read_index(&entry.name)?.unwrap_or_else(|| Index {
            name: entry.name.clone(),
            versions: Vec::new(),
        });
        if let Some(existing) = index.versions.iter().find(|e| e.version == entry.version) {
            if existing.digest == entry.digest {
                return Ok(existing.clone());
            }
            return Err(RegistryError::VersionConflict {
                plugin: entry.name.clone(),
                version: entry.version.clone(),
                existing: existing.digest,
                new: entry.digest,
            });
        }
        self.put_blob(archive, &entry.archive)?;
        entry.yanked = false;
        index.versions.push(entry.clone());
        index.versions.sort_by(|a, b| a.version.cmp(&b.version));
        self.write_index(&index)?;
        Ok(entry)
    }

    fn put_blob(&self, bytes: &[u8], digest: &Digest) -> Result<(), RegistryError> {
        let path = self.blob_path(digest);
        if let Ok(existing) = fs::read(&path)
            && Digest::of(&existing) == *digest
        {
            return Ok(());
        }
        fsutil::write_atomic(&path, bytes, 0o644)?;
        Ok(())
    }

    /// The names of all plugins in the registry, sorted.
    pub fn names(&self) -> Result<Vec<String>, RegistryError> {
        let dir = self.root.join("index");
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(at(&dir))? {
            let entry = entry.map_err(at(&dir))?;
            let file = entry.file_name();
            let file = file.to_string_lossy();
            if let Some(name) = file.strip_suffix(".json")
                && valid_name(name)
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The index of `name`: all its versions, oldest first (yanked included).
    pub fn index(&self, name: &str) -> Result<Index, RegistryError> {
        self.read_index(name)?.ok_or_else(|| RegistryError::UnknownPlugin {
            plugin: name.to_owned(),
        })
    }

    /// All versions of `name`, oldest first (yanked included).
    pub fn versions(&self, name: &str) -> Result<Vec<IndexEntry>, RegistryError> {
        Ok(self.index(name)?.versions)
    }

    /// The newest non-yanked version wanted by `spec`.
    pub fn resolve(&self, spec: &PluginSpec) -> Result<IndexEntry, RegistryError> {
        let versions = self.versions(&spec.name)?;
        spec.select(&versions).cloned()
    }

    /// The archive of `entry`, re-hashed against its digest.
    pub fn fetch(&self, entry: &IndexEntry) -> Result<Vec<u8>, RegistryError> {
        self.blob(&entry.archive)
    }

    /// The blob named `digest`, re-hashed; a mismatch is refused.
    pub fn blob(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RegistryError::BlobMissing(*digest)),
            Err(e) => return Err(PathError { path, source: e }.into()),
        };
        if bytes.len() as u64 > MAX_ARCHIVE_BYTES {
            return Err(RegistryError::BlobCorrupt {
                expected: *digest,
                actual: Digest::of(&bytes),
            });
        }
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(RegistryError::BlobCorrupt {
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Mark `name` `version` yanked (or not): a yanked version stays
    /// fetchable by its entry but is skipped by resolution.
    pub fn yank(&self, name: &str, version: &Version, yanked: bool) -> Result<IndexEntry, RegistryError> {
        let _lock = self.lock()?;
        let mut index = self.index(name)?;
        let entry = index
            .versions
            .iter_mut()
            .find(|e| e.version == *version)
            .ok_or_else(|| RegistryError::UnknownVersion {
                plugin: name.to_owned(),
                version: version.clone(),
            })?;
        entry.yanked = yanked;
        let entry = entry.clone();
        self.write_index(&index)?;
        Ok(entry)
    }

    /// Unpack and check a fetched archive against its index entry: the
    /// package's name, version and content digest must be the entry's.
    pub fn open_package(entry: &IndexEntry, archive: &[u8]) -> Result<Package, RegistryError> {
        check_fetched(entry, archive)
    }
}

/// Unpack a fetched archive and check it is what `entry` describes.
pub(crate) fn check_fetched(entry: &IndexEntry, archive: &[u8]) -> Result<Package, RegistryError> {
    let actual = Digest::of(archive);
    if actual != entry.archive {
        return Err(RegistryError::BlobCorrupt {
            expected: entry.archive,
            actual,
        });
    }
    let package = package::unpack(archive)?;
    if package.manifest.name != entry.name || package.manifest.version != entry.version {
        return Err(RegistryError::IndexCorrupt {
            file: format!("index of `{}`", entry.name),
            message: format!(
                "entry {} points at an archive of `{}` {}",
                entry.version, package.manifest.name, package.manifest.version
            ),
        });
    }
    if package.digest != entry.digest {
        return Err(RegistryError::IndexCorrupt {
            file: format!("index of `{}`", entry.name),
            message: format!(
                "entry {} says content {} but the archive holds {}",
                entry.version, entry.digest, package.digest
            ),
        });
    }
    Ok(package)
}
