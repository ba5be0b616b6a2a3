//! Compiles the bundled plugins (`plugins/*`) into WebAssembly components and
//! writes `bundled.rs`, which embeds them in the `yiwang` binary; writes
//! `vendored.rs`, which embeds the sources of the SDK and the contract crate for
//! `yiwang plugin new`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_owned();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // `sqlx::migrate!` embeds the migrations; a new file must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    let built = yiwang_sdk::build::build_dir(&root, &root.join("plugins"), &root.join("target").join("guests"))
        .unwrap_or_else(|e| panic!("building the bundled plugins failed:\n{e}"));
    let mut code = String::from("/// The bundled packages.\npub static BUNDLED: &[Bundled] = &[\n");
    for b in &built {
        let dir = b.crate_dir.as_ref().expect("build_dir names each crate folder");
        writeln!(
            code,
            "    Bundled {{ name: {:?}, manifest: include_str!({:?}), component: include_bytes!({:?}) }},",
            b.package,
            dir.join("plugin.toml").display().to_string(),
            b.wasm_path.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    std::fs::write(out.join("bundled.rs"), code).unwrap();
    vendor(&root, &out).unwrap_or_else(|e| panic!("embedding the SDK's sources failed: {e}"));
}

/// The crates a plugin crate builds against, by their folder in the workspace.
/// Their path dependencies on each other keep working in the copy, which keeps
/// the same folder names side by side.
const VENDORED: [&str; 2] = ["sdk", "wit"];

/// Writes `vendored.rs`: `VENDORED`, the files of the SDK and the contract crate
/// as (path under the copy's folder, bytes), each with a `Cargo.toml` that stands
/// alone (the workspace's versions, lints and package fields written in, no
/// `workspace = true` left), and `LOCKFILE`, the workspace's `Cargo.lock`, so a
/// plugin builds with the versions the SDK was tested with.
fn vendor(root: &Path, out: &Path) -> Result<(), String> {
    let workspace = read_toml(&root.join("Cargo.toml"))?;
    let ws = workspace.get("workspace").and_then(toml::Value::as_table).ok_or("Cargo.toml has no [workspace]")?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for name in VENDORED {
        let dir = root.join(name);
        let manifest = standalone(&read_toml(&dir.join("Cargo.toml"))?, ws)
            .map_err(|e| format!("{}: {e}", dir.join("Cargo.toml").display()))?;
        let generated = out.join("vendored").join(name);
        std::fs::create_dir_all(&generated).map_err(|e| format!("{}: {e}", generated.display()))?;
        // `[package]` first, as people write it; the writer sorts the other tables.
        let mut rest = manifest;
        let package = toml::Table::from_iter(rest.remove("package").map(|p| ("package".to_owned(), p)));
        let text = format!(
            "# Written by `yiwang plugin new` from the `{name}` crate of the Yiwang workspace\n\
             # it was built from; the workspace's shared fields are written in.\n\n{}\n{}",
            toml::to_string(&package).map_err(|e| e.to_string())?,
            toml::to_string(&rest).map_err(|e| e.to_string())?
        );
        std::fs::write(generated.join("Cargo.toml"), text).map_err(|e| e.to_string())?;
        files.push((format!("{name}/Cargo.toml"), generated.join("Cargo.toml")));
        for file in sources(&dir)? {
            let relative = file.strip_prefix(root).expect("a source lies in the workspace");
            files.push((relative.to_string_lossy().replace('\\', "/"), file));
        }
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());
    let mut code = String::from("/// The SDK's and the contract crate's files: (path, contents).\npub static VENDORED: &[(&str, &[u8])] = &[\n");
    for (path, file) in &files {
        writeln!(code, "    ({path:?}, include_bytes!({:?})),", file.display().to_string()).unwrap();
    }
    writeln!(code, "];\n/// The workspace's lockfile.\npub static LOCKFILE: &[u8] = include_bytes!({:?});", root.join("Cargo.lock").display().to_string()).unwrap();
    std::fs::write(out.join("vendored.rs"), code).map_err(|e| e.to_string())
}

fn read_toml(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.parse().map_err(|e| format!("{}: {e}", path.display()))
}

/// What a crate is built from, besides its manifest: `src/` and the files beside
/// the manifest that the build reads (`yiwang.wit`) or that explain it (`*.md`).
fn sources(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.join("src")];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "wit" || e == "md") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// A member's manifest with everything it inherits from the workspace written in.
fn standalone(member: &toml::Table, ws: &toml::Table) -> Result<toml::Table, String> {
    let inherited = |value: &toml::Value| value.get("workspace").and_then(toml::Value::as_bool) == Some(true);
    let mut out = member.clone();
    if let Some(package) = out.get_mut("package").and_then(toml::Value::as_table_mut) {
        let shared = ws.get("package").and_then(toml::Value::as_table);
        for (key, value) in package.iter_mut() {
            if inherited(value) {
                *value = shared.and_then(|p| p.get(key)).cloned().ok_or(format!("package.{key}: the workspace has no value"))?;
            }
        }
    }
    if out.get("lints").is_some_and(inherited) {
        let lints = ws.get("lints").cloned().ok_or("lints: the workspace has none")?;
        out.insert("lints".into(), lints);
    }
    let shared = ws.get("dependencies").and_then(toml::Value::as_table);
    let mut tables: Vec<&mut toml::Table> = Vec::new();
    let (targets, plain): (Vec<_>, Vec<_>) = out.iter_mut().partition(|(k, _)| k.as_str() == "target");
    for (key, value) in plain {
        if key.ends_with("dependencies") {
            tables.extend(value.as_table_mut());
        }
    }
    for (_, target) in targets {
        for (_, per_target) in target.as_table_mut().into_iter().flatten() {
            for (key, value) in per_target.as_table_mut().into_iter().flatten() {
                if key.ends_with("dependencies") {
                    tables.extend(value.as_table_mut());
                }
            }
        }
    }
    for deps in tables {
        for (name, dep) in deps.iter_mut() {
            if !inherited(dep) {
                continue;
            }
            let base = shared.and_then(|d| d.get(name)).ok_or(format!("dependency `{name}`: not in [workspace.dependencies]"))?;
            let mut resolved = match base {
                toml::Value::String(version) => toml::Table::from_iter([("version".to_owned(), toml::Value::String(version.clone()))]),
                toml::Value::Table(t) => t.clone(),
                other => return Err(format!("dependency `{name}`: unexpected {other}")),
            };
            if let Some(path) = resolved.get("path").and_then(toml::Value::as_str) {
                // Only the vendored crates are reachable from the copy, by their folder names.
                if !VENDORED.contains(&path) {
                    return Err(format!("dependency `{name}`: path `{path}` is not a vendored crate"));
                }
                resolved.insert("path".into(), toml::Value::String(format!("../{path}")));
            }
            for (key, value) in dep.as_table().into_iter().flatten().filter(|(k, _)| k.as_str() != "workspace") {
                match (key.as_str(), resolved.get_mut(key)) {
                    ("features", Some(toml::Value::Array(features))) => {
                        features.extend(value.as_array().into_iter().flatten().cloned());
                    }
                    _ => {
                        resolved.insert(key.clone(), value.clone());
                    }
                }
            }
            *dep = toml::Value::Table(resolved);
        }
    }
    Ok(out)
}
