//! The package format: a plugin's two files, their content digest, and the
//! `.ywpkg` archive that carries them (with a signature) between machines.
//!
//! A package folder, as the host loads it, holds [`MANIFEST_FILE`] and
//! [`COMPONENT_FILE`], and [`SIGNATURE_FILE`] when signed. The archive is a
//! gzip'd tar whose entries all sit in one folder named `<name>-<version>`:
//!
//! ```text
//! hotline12345-1.2.0/plugin.toml
//! hotline12345-1.2.0/plugin.wasm
//! hotline12345-1.2.0/signature.toml   (when signed)
//! ```
//!
//! Archives are deterministic (sorted entries, mtime 0, mode 0644, uid/gid 0),
//! so packing the same folder twice gives the same bytes and the same archive
//! digest. What is signed is the *content digest* ([`content_digest`]), which
//! covers the manifest and the component but not the archive's framing, so it
//! can be recomputed from an installed folder at load time.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use semver::Version;
use sha2::{Digest as _, Sha256};

use crate::fsutil::{self, PathError, at};
use crate::manifest::{Manifest, ManifestError};
use crate::sign::{KeyPair, Signature};

/// The file names inside a package folder, as the contract crate fixes them.
pub use yiwang_wit::{COMPONENT_FILE, MANIFEST_FILE, SIGNATURE_FILE};
/// The archive's file extension (without the dot).
pub const ARCHIVE_EXTENSION: &str = "ywpkg";

/// The largest component accepted, in bytes.
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;
/// The largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The largest signature file accepted, in bytes.
pub const MAX_SIGNATURE_BYTES: u64 = 64 << 10;
/// The largest archive accepted (compressed), in bytes.
pub const MAX_ARCHIVE_BYTES: u64 = MAX_COMPONENT_BYTES + MAX_MANIFEST_BYTES + MAX_SIGNATURE_BYTES + (1 << 20);

/// The prefix of the content digest's input, so the digest cannot be confused
/// with the hash of anything else.
const CONTENT_DOMAIN: &[u8] = b"yiwang-package-v1\0";

/// The first eight bytes of a WebAssembly component: magic, then the
/// component-model version (`0x0d`) and layer (`1`).
const COMPONENT_HEADER: [u8; 8] = *b"\0asm\x0d\x00\x01\x00";

/// A sha256 digest, written `sha256:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The sha256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits (no prefix).
    pub fn from_hex(text: &str) -> Result<Digest, String> {
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!("`{text}` is not 64 lowercase hex digits"));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|e| format!("`{text}`: {e}"))?;
        Ok(Digest(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("`{text}` is not a digest; expected `sha256:<64 hex digits>`"))?;
        Digest::from_hex(hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The content digest of a package: sha256 over `yiwang-package-v1\0`, then
/// for the manifest and then the component: the file name, a NUL, the length
/// as 8 bytes little-endian, and the bytes.
pub fn content_digest(manifest: &[u8], component: &[u8]) -> Digest {
    let mut hash = Sha256::new();
    hash.update(CONTENT_DOMAIN);
    for (name, bytes) in [(MANIFEST_FILE, manifest), (COMPONENT_FILE, component)] {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    Digest(hash.finalize().into())
}

/// Check that `bytes` look like a WebAssembly component (not a core module).
pub fn check_component(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < COMPONENT_HEADER.len() || bytes[..4] != COMPONENT_HEADER[..4] {
        return Err("does not start with the WebAssembly magic `\\0asm`".into());
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err("is a core WebAssembly module, not a component; build it as a component (wasm32-wasip2)".into());
    }
    if bytes[4..8] != COMPONENT_HEADER[4..] {
        return Err(format!(
            "has an unknown WebAssembly version/layer {:02x} {:02x} {:02x} {:02x}; expected a component (0d 00 01 00)",
            bytes[4], bytes[5], bytes[6], bytes[7]
        ));
    }
    Ok(())
}

/// A package that could not be read, packed or written.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The component is not a WebAssembly component.
    #[error("{file}: not a WebAssembly component: it {reason}")]
    NotAComponent {
        /// The file or archive entry.
        file: String,
        /// What was wrong.
        reason: String,
    },
    /// An archive entry was refused.
    #[error("archive entry `{entry}`: {message}")]
    Entry {
        /// The entry's path as written in the archive.
        entry: String,
        /// What was wrong.
        message: String,
    },
    /// The archive as a whole was refused (corrupt, truncated, files missing).
    #[error("package archive{}: {message}", .source_name.as_deref().map(|s| format!(" {s}")).unwrap_or_default())]
    Archive {
        /// The archive's file or folder name, when known.
        source_name: Option<String>,
        /// What was wrong.
        message: String,
    },
    /// A package file is not a regular file (a FIFO, a device, a folder, …).
    #[error("{file}: not a regular file")]
    NotAFile {
        /// The file.
        file: String,
    },
    /// A file is too large.
    #[error("{file}: {size} bytes is more than the limit of {limit} bytes")]
    TooLarge {
        /// The file or archive entry.
        file: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The signing key belongs to another publisher than the manifest names.
    #[error("plugin `{plugin}`: the manifest's publisher is `{manifest}` but the signing key belongs to `{key}`")]
    PublisherMismatch {
        /// The plugin.
        plugin: String,
        /// The manifest's `publisher`.
        manifest: String,
        /// The key's publisher.
        key: String,
    },
    /// The signature file is not a valid signature record.
    #[error("{file}: {message}")]
    SignatureFile {
        /// The file or archive entry.
        file: String,
        /// What was wrong.
        message: String,
    },
}

/// A package in memory: validated manifest, component and optional signature.
///
/// Its [`digest`](Package::digest) is always computed from the bytes it holds,
/// never taken from a signature or an index.
#[derive(Debug, Clone)]
pub struct Package {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The manifest exactly as written (the signed bytes).
    pub manifest_text: String,
    /// The component's bytes.
    pub component: Vec<u8>,
    /// The content digest of manifest and component.
    pub digest: Digest,
    /// The publisher's signature, when the package is signed.
    pub signature: Option<Signature>,
}

/// What [`pack`] wrote.
#[derive(Debug, Clone)]
pub struct PackInfo {
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: Version,
    /// The archive written.
    pub path: PathBuf,
    /// The sha256 of the archive file.
    pub archive_digest: Digest,
    /// The content digest (what a signature signs).
    pub digest: Digest,
    /// The archive's size in bytes.
    pub archive_size: u64,
    /// The manifest's size in bytes.
    pub manifest_size: u64,
    /// The component's size in bytes.
    pub component_size: u64,
    /// Whether the archive carries a signature.
    pub signed: bool,
}

impl Package {
    /// Build a package from its files, validating the manifest and the
    /// component; `origin` (a folder or archive name) is used in errors.
    pub fn from_parts(
        manifest_text: String,
        component: Vec<u8>,
        signature: Option<Signature>,
        origin: &Path,
    ) -> Result<Package, PackageError> {
        let manifest = Manifest::parse(&manifest_text, &origin.join(MANIFEST_FILE))?;
        check_component(&component).map_err(|reason| PackageError::NotAComponent {
            file: origin.join(COMPONENT_FILE).display().to_string(),
            reason,
        })?;
        let digest = content_digest(manifest_text.as_bytes(), &component);
        Ok(Package {
            manifest,
            manifest_text,
            component,
            digest,
            signature,
        })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &Version {
        &self.manifest.version
    }

    /// `<name>-<version>`: the archive's top folder.
    pub fn folder_name(&self) -> String {
        format!("{}-{}", self.manifest.name, self.manifest.version)
    }

    /// `<name>-<version>.ywpkg`: the archive's file name.
    pub fn archive_name(&self) -> String {
        format!("{}.{ARCHIVE_EXTENSION}", self.folder_name())
    }

    /// The package's files as (name, bytes), sorted by name.
    fn files(&self) -> Result<Vec<(&'static str, Vec<u8>)>, PackageError> {
        let mut files = vec![
            (MANIFEST_FILE, self.manifest_text.as_bytes().to_vec()),
            (COMPONENT_FILE, self.component.clone()),
        ];
        if let Some(signature) = &self.signature {
            files.push((SIGNATURE_FILE, signature.to_toml().into_bytes()));
        }
        Ok(files)
    }

    /// The deterministic `.ywpkg` archive of this package.
    pub fn to_archive(&self) -> Result<Vec<u8>, PackageError> {
        let folder = self.folder_name();
        let archive_err = |e: std::io::Error| PackageError::Archive {
            source_name: Some(self.archive_name()),
            message: format!("cannot build: {e}"),
        };
        let gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(gz);
        for (name, bytes) in self.files()? {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            builder
                .append_data(&mut header, format!("{folder}/{name}"), bytes.as_slice())
                .map_err(archive_err)?;
        }
        let gz = builder.into_inner().map_err(archive_err)?;
        gz.finish().map_err(archive_err)
    }

    /// Read a `.ywpkg` file (all of [`unpack`]'s checks apply).
    pub fn read_archive(path: &Path) -> Result<Package, PackageError> {
        let bytes = read_package_file(path, MAX_ARCHIVE_BYTES)?;
        unpack_named(&bytes, Some(path.display().to_string()))
    }

    /// Write the package as an installed folder at `dest`.
    ///
    /// The files go into a hidden temporary sibling first and are fsynced;
    /// then the folder is renamed into place. An older folder at `dest` is
    /// moved aside first and removed afterwards, so `dest` never holds a mix
    /// of two versions (it may be absent for an instant between the renames).
    pub fn write_folder(&self, dest: &Path) -> Result<(), PackageError> {
        let temp = fsutil::temp_sibling(dest, "new");
        let result = self
            .write_files(&temp)
            .and_then(|()| replace_dir(&temp, dest).map_err(PackageError::from));
        if result.is_err() {
            let _ = fs::remove_dir_all(&temp);
        }
        result
    }

    fn write_files(&self, dir: &Path) -> Result<(), PackageError> {
        fs::create_dir_all(dir).map_err(at(dir))?;
        for (name, bytes) in self.files()? {
            fsutil::write_new(&dir.join(name), &bytes, 0o644)?;
        }
        fsutil::sync_dir(dir)?;
        Ok(())
    }

    /// Read an installed package folder: its manifest, component and optional
    /// signature; the content digest is recomputed from the files.
    pub fn read_folder(path: &Path) -> Result<Package, PackageError> {
        read_folder(path)
    }
}

/// Move the folder `from` to `to`, replacing a folder already at `to`.
pub(crate) fn replace_dir(from: &Path, to: &Path) -> Result<(), PathError> {
    let old = fsutil::temp_sibling(to, "old");
    let had_old = match fs::rename(to, &old) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(PathError {
                path: to.to_owned(),
                source: e,
            });
        }
    };
    if let Err(e) = fs::rename(from, to) {
        // Put the old folder back so a failed switch leaves things as they were.
        if had_old {
            let _ = fs::rename(&old, to);
        }
        return Err(PathError {
            path: to.to_owned(),
            source: e,
        });
    }
    if let Some(parent) = to.parent() {
        fsutil::sync_dir(parent)?;
    }
    if had_old {
        let _ = fs::remove_dir_all(&old);
    }
    Ok(())
}

/// Read one file of a package folder, once, into memory: a regular file of at
/// most `limit` bytes. Anything else — a FIFO, a device, a folder — is refused
/// without being waited on (it is opened non-blocking), so that a planted FIFO
/// cannot hang whoever reads the folder. Use the bytes returned for every
/// check and for the digest: reading a file twice could see two contents.
pub fn read_package_file(path: &Path, limit: u64) -> Result<Vec<u8>, PackageError> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(at(path))?;
    let meta = file.metadata().map_err(at(path))?;
    if !meta.is_file() {
        return Err(PackageError::NotAFile { file: path.display().to_string() });
    }
    let size = meta.len();
    if size > limit {
        return Err(PackageError::TooLarge {
            file: path.display().to_string(),
            size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(at(path))?;
    if bytes.len() as u64 > limit {
        return Err(PackageError::TooLarge {
            file: path.display().to_string(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Read an installed package folder (see [`Package::read_folder`]).
pub fn read_folder(path: &Path) -> Result<Package, PackageError> {
    let manifest_path = path.join(MANIFEST_FILE);
    let manifest_bytes = read_package_file(&manifest_path, MAX_MANIFEST_BYTES)?;
    let manifest_text = String::from_utf8(manifest_bytes).map_err(|_| PackageError::Archive {
        source_name: Some(path.display().to_string()),
        message: format!("{MANIFEST_FILE} is not UTF-8"),
    })?;
    let component = read_package_file(&path.join(COMPONENT_FILE), MAX_COMPONENT_BYTES)?;
    let signature_path = path.join(SIGNATURE_FILE);
    let signature = if signature_path.exists() {
        let bytes = read_package_file(&signature_path, MAX_SIGNATURE_BYTES)?;
        Some(parse_signature(&bytes, &signature_path.display().to_string())?)
    } else {
        None
    };
    Package::from_parts(manifest_text, component, signature, path)
}

fn parse_signature(bytes: &[u8], file: &str) -> Result<Signature, PackageError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PackageError::SignatureFile {
        file: file.to_owned(),
        message: "not UTF-8".into(),
    })?;
    Signature::from_toml(text).map_err(|message| PackageError::SignatureFile {
        file: file.to_owned(),
        message,
    })
}

/// Pack the package folder `folder` (with `plugin.toml` and `plugin.wasm`)
/// into `<out_dir>/<name>-<version>.ywpkg`, signed with `signer` if given.
///
/// The manifest is validated and the component checked before anything is
/// written; the archive is written atomically.
pub fn pack(folder: &Path, out_dir: &Path, signer: Option<&KeyPair>) -> Result<PackInfo, PackageError> {
    let mut package = read_folder(folder)?;
    // A stale signature of the folder is never carried along: only a fresh
    // one from `signer` goes into the archive.
    package.signature = None;
    if let Some(key) = signer {
        crate::sign::check_signer(&package, key)?;
        package.signature = Some(crate::sign::sign(&package, key));
    }
    write_archive(&package, out_dir)
}

/// Write `package` as `<out_dir>/<name>-<version>.ywpkg` (atomically).
pub fn write_archive(package: &Package, out_dir: &Path) -> Result<PackInfo, PackageError> {
    let archive = package.to_archive()?;
    fs::create_dir_all(out_dir).map_err(at(out_dir))?;
    let path = out_dir.join(package.archive_name());
    fsutil::write_atomic(&path, &archive, 0o644)?;
    Ok(PackInfo {
        name: package.manifest.name.clone(),
        version: package.manifest.version.clone(),
        path,
        archive_digest: Digest::of(&archive),
        digest: package.digest,
        archive_size: archive.len() as u64,
        manifest_size: package.manifest_text.len() as u64,
        component_size: package.component.len() as u64,
        signed: package.signature.is_some(),
    })
}

/// Read a `.ywpkg` archive from memory and validate everything in it.
///
/// Refused: entries outside one top folder, absolute paths, `..` or `.`
/// segments, links, devices and other special entries, unknown files,
/// duplicate entries, missing files, entries over their size limit, a top
/// folder other than `<name>-<version>` of the manifest inside, an invalid
/// manifest or component, and a malformed signature file. A signature is
/// parsed but not verified here: see [`Signature::verify`].
pub fn unpack(bytes: &[u8]) -> Result<Package, PackageError> {
    unpack_named(bytes, None)
}

fn unpack_named(bytes: &[u8], source_name: Option<String>) -> Result<Package, PackageError> {
    let archive_err = |message: String| PackageError::Archive {
        source_name: source_name.clone(),
        message,
    };
    if bytes.len() as u64 > MAX_ARCHIVE_BYTES {
        return Err(PackageError::TooLarge {
            file: source_name.clone().unwrap_or_else(|| "package archive".into()),
            size: bytes.len() as u64,
            limit: MAX_ARCHIVE_BYTES,
        });
    }
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(archive_err("not a gzip file".into()));
    }
    // The decompressed stream is bounded too, so a small archive cannot
    // expand without limit.
    let gz = flate2::read::GzDecoder::new(bytes).take(MAX_ARCHIVE_BYTES * 2);
    let mut archive = tar::Archive::new(gz);
    let entries = archive
        .entries()
        .map_err(|e| archive_err(format!("not a tar archive: {e}")))?;

    let mut top: Option<String> = None;
    let mut files: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_err(format!("corrupt or truncated: {e}")))?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let bad = |message: String| PackageError::Entry {
            entry: raw_path.clone(),
            message,
        };
        let kind = entry.header().entry_type();
        let is_dir = kind.is_dir();
        if !(kind.is_file() || is_dir) {
            let what = if kind.is_symlink() {
                "is a symbolic link".to_owned()
            } else if kind.is_hard_link() {
                "is a hard link".to_owned()
            } else if kind.is_character_special() || kind.is_block_special() {
                "is a device".to_owned()
            } else if kind.is_fifo() {
                "is a FIFO".to_owned()
            } else {
                format!("has entry type {:?}", kind.as_byte() as char)
            };
            return Err(bad(format!("{what}; a package holds regular files only")));
        }
        if raw_path.starts_with('/') || raw_path.starts_with('\\') || raw_path.contains(':') {
            return Err(bad(
                "is an absolute path; entries must stay inside the package folder".into()
            ));
        }
        let trimmed = if is_dir {
            raw_path.strip_suffix('/').unwrap_or(&raw_path)
        } else {
            raw_path.as_str()
        };
        let segments: Vec<&str> = trimmed.split('/').collect();
        if segments.contains(&"..") {
            return Err(bad("contains `..`; entries must stay inside the package folder".into()));
        }
        if segments.iter().any(|s| s.is_empty() || *s == "." || s.contains('\\')) {
            return Err(bad("has an empty, `.` or backslash path segment".into()));
        }
        let folder = segments[0];
        match &top {
            Some(t) if t != folder => {
                return Err(bad(format!(
                    "is outside the package folder `{t}/`; an archive holds one folder"
                )));
            }
            Some(_) => {}
            None => top = Some(folder.to_owned()),
        }
        if is_dir {
            if segments.len() != 1 {
                return Err(bad("is a sub-folder; a package holds no sub-folders".into()));
            }
            continue;
        }
        if segments.len() != 2 {
            return Err(bad(format!(
                "is not a file directly inside the package folder `{folder}/`"
            )));
        }
        let (name, limit) = match segments[1] {
            MANIFEST_FILE => (MANIFEST_FILE, MAX_MANIFEST_BYTES),
            COMPONENT_FILE => (COMPONENT_FILE, MAX_COMPONENT_BYTES),
            SIGNATURE_FILE => (SIGNATURE_FILE, MAX_SIGNATURE_BYTES),
            other => {
                return Err(bad(format!(
                    "unknown file `{other}`; a package holds {MANIFEST_FILE}, {COMPONENT_FILE} and optionally {SIGNATURE_FILE}"
                )));
            }
        };
        if files.contains_key(name) {
            return Err(bad("appears twice in the archive".into()));
        }
        let size = entry.header().size().map_err(|e| bad(format!("bad size field: {e}")))?;
        if size > limit {
            return Err(PackageError::TooLarge {
                file: raw_path.clone(),
                size,
                limit,
            });
        }
        let mut data = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        if data.len() as u64 != size {
            return Err(bad(format!("holds {} bytes but its header says {size}", data.len())));
        }
        files.insert(name, data);
    }

    let top = top.ok_or_else(|| archive_err("is empty".into()))?;
    let missing: Vec<&str> = [MANIFEST_FILE, COMPONENT_FILE]
        .into_iter()
        .filter(|f| !files.contains_key(f))
        .collect();
    if !missing.is_empty() {
        return Err(archive_err(format!("`{top}/` lacks {}", missing.join(" and "))));
    }
    let manifest_bytes = files.remove(MANIFEST_FILE).unwrap_or_default();
    let component = files.remove(COMPONENT_FILE).unwrap_or_default();
    let manifest_text = String::from_utf8(manifest_bytes).map_err(|_| PackageError::Entry {
        entry: format!("{top}/{MANIFEST_FILE}"),
        message: "is not UTF-8".into(),
    })?;
    let signature = match files.remove(SIGNATURE_FILE) {
        Some(bytes) => Some(parse_signature(&bytes, &format!("{top}/{SIGNATURE_FILE}"))?),
        None => None,
    };
    let package = Package::from_parts(manifest_text, component, signature, Path::new(&top))?;
    let expected = package.folder_name();
    if top != expected {
        return Err(PackageError::Entry {
            entry: format!("{top}/"),
            message: format!(
                "the folder name does not match the manifest inside, which says `{}` version {}: expected `{expected}/`",
                package.manifest.name, package.manifest.version
            ),
        });
    }
    Ok(package)
}

/// Write `bytes` as a package archive file atomically (used when an archive is
/// rewritten in place, e.g. to add a signature).
pub(crate) fn write_archive_file(path: &Path, bytes: &[u8]) -> Result<(), PackageError> {
    fsutil::write_atomic(path, bytes, 0o644)?;
    Ok(())
}
