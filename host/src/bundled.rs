//! The plugins bundled with this binary, compiled to components by the build
//! script and embedded, so that `yiwang serve` runs them on a fresh machine.

use std::path::Path;

use yiwang_registry::package::{COMPONENT_FILE, MANIFEST_FILE};

/// One bundled package.
pub struct Bundled {
    pub name: &'static str,
    pub manifest: &'static str,
    pub component: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// Write each bundled package into `plugins_dir/<name>/` unless a package of
/// that name is already there: an operator's installed version wins.
pub fn install(plugins_dir: &Path) -> std::io::Result<Vec<&'static str>> {
    let mut installed = Vec::new();
    for b in BUNDLED {
        let folder = plugins_dir.join(b.name);
        if folder.join(MANIFEST_FILE).exists() {
            continue;
        }
        std::fs::create_dir_all(&folder)?;
        // Component first, manifest last: a folder without a manifest is not a package yet.
        write_atomic(&folder.join(COMPONENT_FILE), b.component)?;
        write_atomic(&folder.join(MANIFEST_FILE), b.manifest.as_bytes())?;
        installed.push(b.name);
    }
    Ok(installed)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Whether `digest` (`sha256:<hex>` of manifest and component) is the digest
/// of a package bundled with this binary: those load without a signature.
pub fn is_bundled(digest: &str) -> bool {
    static DIGESTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    DIGESTS
        .get_or_init(|| BUNDLED.iter().map(|b| yiwang_registry::content_digest(b.manifest.as_bytes(), b.component).to_string()).collect())
        .iter()
        .any(|d| d == digest)
}
