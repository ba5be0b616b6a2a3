//! Compiles the bundled plugins (`plugins/*`) into WebAssembly components and
//! writes `bundled.rs`, which embeds them in the `yiwang` binary.

use std::fmt::Write as _;
use std::path::PathBuf;

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
}
