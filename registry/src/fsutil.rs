//! Small filesystem helpers shared by the package, store and install modules:
//! durable writes (temp file, fsync, rename), unique hidden temp names, and an
//! advisory lock file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// An I/O error with the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", .path.display())]
pub struct PathError {
    /// The file or folder.
    pub path: PathBuf,
    /// What the OS said.
    #[source]
    pub source: io::Error,
}

/// Attach a path to an I/O error.
pub(crate) fn at(path: &Path) -> impl FnOnce(io::Error) -> PathError + '_ {
    move |source| PathError {
        path: path.to_owned(),
        source,
    }
}

/// A name for a temporary sibling of `target`: hidden (so the host's plugin
/// scan skips it) and unique within this process and across processes.
pub(crate) fn temp_sibling(target: &Path, tag: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let base = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!(".{base}.{tag}-{}-{n}-{nanos:x}", std::process::id());
    match target.parent() {
        Some(parent) => parent.join(name),
        None => PathBuf::from(name),
    }
}

/// Flush a folder's entries (new names, renames) to disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), PathError> {
    // Opening a folder for reading and syncing it is how POSIX makes a rename
    // durable; on platforms where that is refused there is nothing more to do.
    match File::open(dir) {
        Ok(f) => match f.sync_all() {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(22) => Ok(()),
            Err(e) => Err(PathError {
                path: dir.to_owned(),
                source: e,
            }),
        },
        Err(_) => Ok(()),
    }
}

/// Write `bytes` to a new file at `path`, fsync it; `mode` applies on unix.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PathError> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(at(path))?;
    file.write_all(bytes).map_err(at(path))?;
    file.sync_all().map_err(at(path))
}

/// Replace the file at `path` with `bytes`: readers see the old or the new
/// content, never a part.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PathError> {
    let temp = temp_sibling(path, "tmp");
    let result = write_new(&temp, bytes, mode).and_then(|()| fs::rename(&temp, path).map_err(at(path)));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// An exclusive advisory lock on a file, released on drop.
pub(crate) struct LockFile(File);

impl LockFile {
    /// Block until the lock at `path` (created if missing) is ours.
    pub(crate) fn acquire(path: &Path) -> Result<Self, PathError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(at(path))?;
        file.lock().map_err(at(path))?;
        Ok(LockFile(file))
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
