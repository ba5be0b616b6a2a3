//! Compiles every test guest in `tests/guests/` into a component and writes
//! `guests.rs`: one `Guest` per crate, naming its folder and its `.wasm`. The
//! `every_guest_is_used_by_a_test` test fails for a guest no test names.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_owned();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let built = yiwang_sdk::build::build_dir(&root, &manifest_dir.join("guests"), &root.join("target").join("guests"))
        .unwrap_or_else(|e| panic!("building the test guests failed:\n{e}"));
    let mut code = String::from("/// Every test guest, compiled.\npub static GUESTS: &[Guest] = &[\n");
    for b in &built {
        let dir = b.crate_dir.as_ref().expect("build_dir names each crate folder");
        writeln!(
            code,
            "    Guest {{ name: {:?}, dir: {:?}, wasm: {:?} }},",
            b.package,
            dir.display().to_string(),
            b.wasm_path.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    std::fs::write(out.join("guests.rs"), code).unwrap();
}
