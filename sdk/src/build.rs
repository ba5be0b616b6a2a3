//! Compiling guest crates into components, from a build script.
//!
//! The host and the end-to-end tests embed plugins that live in the same workspace.
//! Their build scripts call [`build_dir`] (or the lower-level [`discover_packages`] and
//! [`build_components`]), which runs a nested
//! `cargo build --target wasm32-wasip2 --profile guest` in a target directory of its
//! own, so that it never waits on the lock of the outer build.
//!
//! ```no_run
//! // build.rs of a crate that embeds the test guests.
//! use std::path::PathBuf;
//!
//! fn main() -> Result<(), String> {
//!     let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
//!     let root = manifest_dir.parent().unwrap();
//!     let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
//!     let guests = yiwang_sdk::build::build_dir(
//!         root,
//!         &root.join("tests/guests"),
//!         &root.join("target/guests"),
//!     )?;
//!     yiwang_sdk::build::write_paths_module(&guests, &out_dir.join("guests.rs"))
//! }
//! ```
//!
//! The component of package `foo-bar` is
//! `<target_dir>/wasm32-wasip2/guest/foo_bar.wasm`: for `wasm32-wasip2`, rustc links a
//! `cdylib` straight into a component.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// The target guests are compiled for.
pub const TARGET: &str = "wasm32-wasip2";

/// The cargo profile guests are compiled with (`[profile.guest]` of the workspace).
pub const PROFILE: &str = "guest";

/// One compiled guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltComponent {
    /// The cargo package name, which is also the plugin's name.
    pub package: String,
    /// The component file.
    pub wasm_path: PathBuf,
    /// The crate's folder (holding `Cargo.toml` and `plugin.toml`), when known.
    pub crate_dir: Option<PathBuf>,
}

/// Environment variables that an outer cargo sets for a build script and that would
/// leak into the nested build: flags meant for the native target, the outer target
/// directory, and the outer package's own description.
const LEAKING_VARS: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "RUSTC_LINKER",
    // `cargo clippy` and coverage tools wrap rustc for the workspace; the guests are
    // built as plain artifacts.
    "RUSTC_WORKSPACE_WRAPPER",
];

/// Prefixes of further leaking variables (the outer package's metadata, features, cfgs).
const LEAKING_PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_FEATURE_", "CARGO_CFG_", "DEP_"];

/// The packages of the crates directly under `dir`: each `dir/*/Cargo.toml`, as
/// `(package name, crate folder)`, sorted by name.
pub fn discover_packages(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let entries =
        fs::read_dir(dir).map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
        let crate_dir = entry.path();
        let manifest = crate_dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = fs::read_to_string(&manifest)
            .map_err(|err| format!("cannot read {}: {err}", manifest.display()))?;
        let doc: toml::Table = text
            .parse()
            .map_err(|err| format!("{} is not valid TOML: {err}", manifest.display()))?;
        let name = doc
            .get("package")
            .and_then(|package| package.get("name"))
            .and_then(|name| name.as_str())
            .ok_or_else(|| format!("{} has no `package.name`", manifest.display()))?;
        found.push((name.to_owned(), crate_dir));
    }
    found.sort();
    Ok(found)
}

/// Prints `cargo:rerun-if-changed` for what every guest is built from: the guest crate
/// folders, `wit/`, the SDK's sources and the workspace manifest.
pub fn emit_rerun_if_changed(workspace_root: &Path, crate_dirs: &[PathBuf]) {
    for dir in crate_dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    for shared in ["wit", "sdk/src", "sdk/Cargo.toml", "Cargo.toml"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace_root.join(shared).display()
        );
    }
}

/// Builds `packages` of the workspace at `workspace_root` into components, in
/// `target_dir`.
///
/// Runs `$CARGO build --target wasm32-wasip2 --profile guest -p <package>...` (`cargo`
/// when `CARGO` is unset) without the variables an outer build script would leak into
/// it. `target_dir` must not be the outer build's own target directory (the nested
/// build would wait on its lock); a folder beside it, such as `target/guests`, is right.
/// Fails with a hint when the `wasm32-wasip2` target is not installed, and with cargo's
/// diagnostics when a guest does not compile.
pub fn build_components(
    workspace_root: &Path,
    packages: &[&str],
    target_dir: &Path,
) -> Result<Vec<BuiltComponent>, String> {
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    // The outer build holds the lock of its own target directory for as long as the
    // build script runs: a nested build in the same directory would wait forever.
    if let Some(out_dir) = env::var_os("OUT_DIR")
        && Path::new(&out_dir).starts_with(target_dir)
    {
        return Err(format!(
            "{} is the target directory of the build running this script; \
             build the guests in a directory of their own, such as `target/guests`",
            target_dir.display()
        ));
    }
    check_target_installed()?;

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root)
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace_root.join("Cargo.toml"))
        .args(["--target", TARGET, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    for var in LEAKING_VARS {
        cmd.env_remove(var);
    }
    for (var, _) in env::vars_os() {
        if let Some(var) = var.to_str()
            && LEAKING_PREFIXES
                .iter()
                .any(|prefix| var.starts_with(prefix))
        {
            cmd.env_remove(var);
        }
    }

    let output = cmd
        .output()
        .map_err(|err| format!("cannot run {}: {err}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("target may not be installed") {
            return Err(missing_target_message());
        }
        return Err(format!(
            "building the guests {packages:?} for {TARGET} failed ({}):\n{stderr}",
            output.status
        ));
    }

    let out = target_dir.join(TARGET).join(PROFILE);
    packages
        .iter()
        .map(|package| {
            let wasm_path = out.join(format!("{}.wasm", package.replace('-', "_")));
            if !wasm_path.is_file() {
                return Err(format!(
                    "guest `{package}` built, but {} is missing: is it a `cdylib`?",
                    wasm_path.display()
                ));
            }
            Ok(BuiltComponent {
                package: (*package).to_owned(),
                wasm_path,
                crate_dir: None,
            })
        })
        .collect()
}

/// Builds every crate directly under `guests_dir` into a component, in `target_dir`.
///
/// Also prints `cargo:rerun-if-changed` for the guests' folders, `wit/`, the SDK, and
/// every workspace file their dep-info lists, so the build script reruns exactly when a
/// guest may have changed.
pub fn build_dir(
    workspace_root: &Path,
    guests_dir: &Path,
    target_dir: &Path,
) -> Result<Vec<BuiltComponent>, String> {
    println!("cargo:rerun-if-changed={}", guests_dir.display());
    let found = discover_packages(guests_dir)?;
    let dirs: Vec<PathBuf> = found.iter().map(|(_, dir)| dir.clone()).collect();
    emit_rerun_if_changed(workspace_root, &dirs);

    let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    let mut built = build_components(workspace_root, &names, target_dir)?;
    let mut seen = BTreeSet::new();
    for (component, (_, dir)) in built.iter_mut().zip(&found) {
        component.crate_dir = Some(dir.clone());
        for file in dep_info(&component.wasm_path) {
            if file.starts_with(workspace_root) && seen.insert(file.clone()) {
                println!("cargo:rerun-if-changed={}", file.display());
            }
        }
    }
    Ok(built)
}

/// Writes a Rust file of constants naming the components, for `include!`:
/// `pub const GOOD: &str = "<path>/good.wasm";` per guest (the package name in upper
/// case, `-` as `_`), `GOOD_DIR` for its crate folder when known, and
/// `pub const ALL: &[(&str, &str)]` of `(package, component path)`.
pub fn write_paths_module(components: &[BuiltComponent], out_file: &Path) -> Result<(), String> {
    let mut code = String::from("// Generated by yiwang_sdk::build. Do not edit.\n");
    let mut all = String::from(
        "/// Every guest: (package, component path).\npub const ALL: &[(&str, &str)] = &[\n",
    );
    for component in components {
        let ident = component.package.replace('-', "_").to_uppercase();
        let wasm = component.wasm_path.display().to_string();
        let _ = writeln!(code, "/// The component of guest `{}`.", component.package);
        let _ = writeln!(code, "pub const {ident}: &str = {wasm:?};");
        if let Some(dir) = &component.crate_dir {
            let dir = dir.display().to_string();
            let _ = writeln!(
                code,
                "/// The crate folder of guest `{}`.",
                component.package
            );
            let _ = writeln!(code, "pub const {ident}_DIR: &str = {dir:?};");
        }
        let _ = writeln!(all, "    ({:?}, {ident}),", component.package);
    }
    all.push_str("];\n");
    code.push_str(&all);
    fs::write(out_file, code).map_err(|err| format!("cannot write {}: {err}", out_file.display()))
}

fn check_target_installed() -> Result<(), String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|err| format!("cannot run {}: {err}", Path::new(&rustc).display()))?;
    if !output.status.success() {
        return Err(missing_target_message());
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let has_std = fs::read_dir(&libdir)
        .map(|entries| {
            entries.flatten().any(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with("libstd-"))
            })
        })
        .unwrap_or(false);
    if has_std {
        Ok(())
    } else {
        Err(missing_target_message())
    }
}

fn missing_target_message() -> String {
    format!(
        "the `{TARGET}` target is not installed for this toolchain; \
         run `rustup target add {TARGET}`"
    )
}

/// The files cargo's dep-info (`<artifact>.d`) lists for an artifact.
fn dep_info(artifact: &Path) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string(artifact.with_extension("d")) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for line in text.lines() {
        let Some((_, deps)) = line.split_once(": ") else {
            continue;
        };
        // Spaces inside a path are escaped as `\ `.
        let mut current = String::new();
        for part in deps.split(' ') {
            if let Some(stripped) = part.strip_suffix('\\') {
                current.push_str(stripped);
                current.push(' ');
            } else {
                current.push_str(part);
                if !current.is_empty() {
                    files.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_unescapes_spaces() {
        let dir = env::temp_dir().join(format!("yiwang-sdk-dep-info-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let artifact = dir.join("good.wasm");
        fs::write(
            dir.join("good.d"),
            "/t/good.wasm: /w/src/lib.rs /w/my\\ dir/a.rs\n\n/w/src/lib.rs:\n",
        )
        .unwrap();
        assert_eq!(
            dep_info(&artifact),
            vec![
                PathBuf::from("/w/src/lib.rs"),
                PathBuf::from("/w/my dir/a.rs")
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn paths_module_names_each_guest() {
        let dir = env::temp_dir().join(format!("yiwang-sdk-paths-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let out = dir.join("guests.rs");
        let components = [BuiltComponent {
            package: "sneaky-read".into(),
            wasm_path: PathBuf::from("/t/sneaky_read.wasm"),
            crate_dir: Some(PathBuf::from("/w/tests/guests/sneaky-read")),
        }];
        write_paths_module(&components, &out).unwrap();
        let code = fs::read_to_string(&out).unwrap();
        assert!(code.contains("pub const SNEAKY_READ: &str = \"/t/sneaky_read.wasm\";"));
        assert!(
            code.contains("pub const SNEAKY_READ_DIR: &str = \"/w/tests/guests/sneaky-read\";")
        );
        assert!(code.contains("(\"sneaky-read\", SNEAKY_READ),"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
