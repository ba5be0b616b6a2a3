//! Signed packages from the command line, as the README's guide runs them:
//! `yiwang plugin keygen` → `pack` → `sign` → `publish` → `trust admit` →
//! `install` → a host loads it; then `upgrade`, `rollback`, a registry over
//! HTTP, and tampered and untrusted packages refused at install and at load.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use yiwang::app::{App, Options};

fn yiwang(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yiwang")).args(args).current_dir(dir).env_remove("YIWANG_DATA_DIR").output().unwrap()
}

/// Run `yiwang args…` in `dir`; it must succeed. Its standard output.
fn ok(args: &[&str], dir: &Path) -> String {
    let out = yiwang(args, dir);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "yiwang {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// Run `yiwang args…` in `dir`; it must fail. Its standard error.
fn fails(args: &[&str], dir: &Path) -> String {
    let out = yiwang(args, dir);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "yiwang {args:?} succeeded:\n{stdout}");
    stderr.into_owned()
}

/// The bundled `yingji` as a package folder of publisher `publisher`, at `version`.
fn yingji_folder(root: &Path, publisher: &str, version: &str) -> PathBuf {
    let b = yiwang::bundled::BUNDLED.iter().find(|b| b.name == "yingji").expect("yingji is bundled");
    let folder = root.join(format!("src-{publisher}-{version}"));
    std::fs::create_dir_all(&folder).unwrap();
    let manifest = b
        .manifest
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace("publisher = \"yiwang-core\"", &format!("publisher = \"{publisher}\""));
    assert!(manifest.contains(&format!("version = \"{version}\"")));
    std::fs::write(folder.join("plugin.toml"), manifest).unwrap();
    std::fs::write(folder.join("plugin.wasm"), b.component).unwrap();
    folder
}

/// Build a host on `data` (no bundled plugins) and say what became of `yingji`.
fn load(data: &Path) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut options = Options::new(data);
        options.install_bundled = false;
        let app = App::build(options, None).await.unwrap();
        let r = app.load_report.iter().find(|r| r.as_ref().map_or_else(|e| e.plugin.as_deref() == Some("yingji"), |n| n == "yingji"));
        match r {
            Some(Ok(_)) => Ok(app.state.runtime.plugin("yingji").unwrap().ctx.manifest.version.to_string()),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("no yingji package".into()),
        }
    })
}

#[test]
fn keygen_pack_sign_publish_admit_install_load_upgrade_and_roll_back() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = yingji_folder(root, "acme", "0.2.0");

    let out = ok(&["plugin", "keygen", "--publisher", "acme", "--out", "keys"], root);
    assert!(out.contains("key "), "{out}");
    assert!(root.join("keys/acme.key").exists() && root.join("keys/acme.pub").exists());
    let out = ok(&["plugin", "pack", src.to_str().unwrap(), "--out", "dist"], root);
    assert!(out.contains("not signed"), "{out}");
    let pkg = "dist/yingji-0.2.0.ywpkg";
    // An unsigned package is refused by the registry.
    let e = fails(&["plugin", "publish", pkg, "--registry", "reg"], root);
    assert!(e.contains("not signed") || e.contains("unsigned"), "{e}");
    let out = ok(&["plugin", "sign", pkg, "--key", "keys/acme.key"], root);
    assert!(out.contains("signed yingji 0.2.0 as `acme`"), "{out}");
    let out = ok(&["plugin", "publish", pkg, "--registry", "reg"], root);
    assert!(out.contains("published yingji 0.2.0"), "{out}");

    // Installing needs a trust policy that admits the publisher for 应急.
    let e = fails(&["plugin", "install", "yingji@^0.2", "--registry", "reg", "--data-dir", "data"], root);
    assert!(e.contains("no trust policy"), "{e}");
    ok(&["trust", "admit", "--publisher", "acme", "--key", "keys/acme.pub", "--departments", "chengguan", "--data-dir", "data"], root);
    let e = fails(&["plugin", "install", "yingji@^0.2", "--registry", "reg", "--data-dir", "data"], root);
    assert!(e.contains("acme") && e.contains("yingji"), "a vendor admitted for 城管 only may not ship for 应急: {e}");
    ok(&["trust", "admit", "--publisher", "acme", "--key", "keys/acme.pub", "--departments", "chengguan,yingji", "--data-dir", "data"], root);
    let out = ok(&["plugin", "install", "yingji@^0.2", "--registry", "reg", "--data-dir", "data"], root);
    assert!(out.contains("installed yingji 0.2.0"), "{out}");
    assert_eq!(load(&root.join("data")), Ok("0.2.0".to_owned()));

    // A second version: published, upgraded to, rolled back from.
    let src = yingji_folder(root, "acme", "0.2.1");
    ok(&["plugin", "pack", src.to_str().unwrap(), "--out", "dist", "--key", "keys/acme.key"], root);
    ok(&["plugin", "publish", "dist/yingji-0.2.1.ywpkg", "--registry", "reg"], root);
    let out = ok(&["plugin", "list", "--registry", "reg"], root);
    assert!(out.contains("yingji: 0.2.0, 0.2.1"), "{out}");
    let out = ok(&["plugin", "upgrade", "yingji", "--registry", "reg", "--data-dir", "data"], root);
    assert!(out.contains("installed yingji 0.2.1 (was 0.2.0)"), "{out}");
    assert_eq!(load(&root.join("data")), Ok("0.2.1".to_owned()));
    let out = ok(&["plugin", "list", "--data-dir", "data"], root);
    assert!(out.contains("yingji: active 0.2.1; kept 0.2.0, 0.2.1"), "{out}");
    let out = ok(&["plugin", "rollback", "yingji", "--data-dir", "data"], root);
    assert!(out.contains("version 0.2.0 is active again"), "{out}");
    assert_eq!(load(&root.join("data")), Ok("0.2.0".to_owned()));

    // A range nothing matches, and a version that does not parse.
    let e = fails(&["plugin", "install", "yingji@^3", "--registry", "reg", "--data-dir", "data"], root);
    assert!(e.contains("^3") && e.contains("0.2.1"), "{e}");
    let e = fails(&["plugin", "install", "yingji@not-a-version", "--registry", "reg", "--data-dir", "data"], root);
    assert!(e.contains("not-a-version"), "{e}");
}

#[test]
fn tampered_and_untrusted_packages_are_refused_at_install_and_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    ok(&["plugin", "keygen", "--publisher", "acme", "--out", "keys"], root);
    ok(&["plugin", "keygen", "--publisher", "mallory", "--out", "keys"], root);
    ok(&["trust", "admit", "--publisher", "acme", "--key", "keys/acme.pub", "--departments", "yingji", "--data-dir", "data"], root);
    // A key file of another publisher is not admitted under this name.
    let e = fails(&["trust", "admit", "--publisher", "acme", "--key", "keys/mallory.pub", "--departments", "*", "--data-dir", "data"], root);
    assert!(e.contains("mallory"), "{e}");

    // Signed by a publisher the operator never admitted.
    let src = yingji_folder(root, "mallory", "0.3.0");
    ok(&["plugin", "pack", src.to_str().unwrap(), "--out", "dist", "--key", "keys/mallory.key"], root);
    let e = fails(&["plugin", "install", "dist/yingji-0.3.0.ywpkg", "--data-dir", "data"], root);
    assert!(e.contains("publisher `mallory` is not trusted"), "{e}");

    // Tampered after signing: one byte of the component changed in the archive.
    let src = yingji_folder(root, "acme", "0.3.1");
    let good = yiwang_registry::pack(&src, &root.join("dist"), Some(&yiwang_registry::KeyPair::load(&root.join("keys/acme.key")).unwrap()))
        .unwrap();
    let mut package = yiwang_registry::Package::read_archive(&good.path).unwrap();
    let last = package.component.len() - 1;
    package.component[last] ^= 0xff;
    std::fs::create_dir_all(root.join("evil")).unwrap();
    let evil = yiwang_registry::package::write_archive(&package, &root.join("evil")).unwrap();
    let e = fails(&["plugin", "install", evil.path.to_str().unwrap(), "--data-dir", "data"], root);
    assert!(e.contains("digest") || e.contains("tampered"), "{e}");

    // The good one installs and loads; tampered on disk afterwards, the host refuses it.
    ok(&["plugin", "install", good.path.to_str().unwrap(), "--data-dir", "data"], root);
    assert_eq!(load(&root.join("data")), Ok("0.3.1".to_owned()));
    let wasm = root.join("data/plugins/yingji/plugin.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&wasm, bytes).unwrap();
    let e = load(&root.join("data")).unwrap_err();
    assert!(e.contains("field `signature`") && e.contains("digest"), "{e}");
    // Unsigned, with a trust policy in place: refused at load.
    std::fs::remove_file(root.join("data/plugins/yingji/signature.toml")).unwrap();
    let e = load(&root.join("data")).unwrap_err();
    assert!(e.contains("field `signature`") && e.contains("not signed"), "{e}");
}

#[test]
fn a_registry_served_over_http_publishes_with_its_token_and_installs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .args(["registry", "serve", "--dir", "reg", "--listen", &listen, "--token", "s3cret"])
        .current_dir(root)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{listen}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(std::time::Instant::now() < deadline, "the registry did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ok(&["plugin", "keygen", "--publisher", "acme", "--out", "keys"], root);
    let src = yingji_folder(root, "acme", "1.0.0");
    ok(&["plugin", "pack", src.to_str().unwrap(), "--out", "dist", "--key", "keys/acme.key"], root);
    let e = fails(&["plugin", "publish", "dist/yingji-1.0.0.ywpkg", "--registry", &url], root);
    assert!(e.contains("401") || e.contains("token"), "{e}");
    ok(&["plugin", "publish", "dist/yingji-1.0.0.ywpkg", "--registry", &url, "--token", "s3cret"], root);
    ok(&["trust", "admit", "--publisher", "acme", "--key", "keys/acme.pub", "--departments", "*", "--data-dir", "data"], root);
    let out = ok(&["plugin", "install", "yingji@1", "--registry", &url, "--data-dir", "data"], root);
    assert!(out.contains("installed yingji 1.0.0"), "{out}");
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(load(&root.join("data")), Ok("1.0.0".to_owned()));
}

#[test]
fn plugin_new_build_test_then_pack_install_and_load_as_the_guide_says() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // The plugin crate's build output stays between runs of this test.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugin-authoring");
    let run = |args: &[&str], dir: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_yiwang"))
            .args(args)
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("YIWANG_DATA_DIR")
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert!(out.status.success(), "yiwang {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    };
    let out = run(&["plugin", "new", "flood-watch", "--kind", "model", "--department", "yingji", "--publisher", "acme"], root);
    assert!(out.contains("created"), "{out}");
    let crate_dir = root.join("flood-watch");
    // The crate lives outside the repository and builds without it: its manifest
    // names no path of the checkout, only the copy of the SDK it carries.
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().canonicalize().unwrap();
    assert!(!crate_dir.canonicalize().unwrap().starts_with(&repository));
    let cargo_toml = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(!cargo_toml.contains(&*repository.to_string_lossy()), "{cargo_toml}");
    let vendored = format!(".yiwang/yiwang-gov-{}", yiwang::runtime::HOST_WIT_VERSION);
    assert!(cargo_toml.contains(&format!("path = \"{vendored}/sdk\"")), "{cargo_toml}");
    for file in ["sdk/Cargo.toml", "sdk/src/lib.rs", "wit/Cargo.toml", "wit/yiwang.wit", "wit/src/events.rs"] {
        let copied = crate_dir.join(&vendored).join(file);
        let text = std::fs::read_to_string(&copied).unwrap_or_else(|e| panic!("{}: {e}", copied.display()));
        assert!(!text.contains("workspace = true") && !text.contains(&*repository.to_string_lossy()), "{file}");
    }
    let ignored = std::fs::read_to_string(crate_dir.join(".gitignore")).unwrap();
    assert!(ignored.lines().any(|l| l == "!/.yiwang/"), "{ignored}");
    let e = fails(&["plugin", "new", "flood-watch"], root);
    assert!(e.contains("exists already"), "{e}");
    let e = fails(&["plugin", "new", "Flood Watch"], root);
    assert!(e.contains("not a valid plugin name"), "{e}");

    // Its unit tests run natively against the SDK's mock host.
    let unit = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&unit.stdout);
    assert!(unit.status.success(), "the scaffold's tests failed:\n{stdout}\n{}", String::from_utf8_lossy(&unit.stderr));
    assert!(stdout.contains("2 passed"), "{stdout}");

    let out = run(&["plugin", "build"], &crate_dir);
    assert!(out.contains("built flood-watch 0.1.0"), "{out}");
    assert!(crate_dir.join("plugin.wasm").exists());
    // The sample events: a reading below the warning level, one above it, one in centimetres.
    let out = run(&["plugin", "test", "--events", "events.jsonl"], &crate_dir);
    assert!(out.contains("3 handled (0 error values, 0 failures, 0 skipped)"), "{out}");
    assert!(out.contains("warnings raised: 1") && out.contains("[Moderate]"), "{out}");
    assert!(out.contains("denials: 0"), "{out}");

    run(&["plugin", "keygen", "--publisher", "acme", "--out", "keys"], root);
    run(&["plugin", "pack", "flood-watch", "--out", "dist", "--key", "keys/acme.key"], root);
    run(&["trust", "admit", "--publisher", "acme", "--key", "keys/acme.pub", "--departments", "yingji", "--data-dir", "data"], root);
    let out = run(&["plugin", "install", "dist/flood-watch-0.1.0.ywpkg", "--data-dir", "data"], root);
    assert!(out.contains("installed flood-watch 0.1.0"), "{out}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let loaded = rt.block_on(async {
        let mut options = Options::new(root.join("data"));
        options.install_bundled = false;
        let app = App::build(options, None).await.unwrap();
        app.state.runtime.plugin("flood-watch").map(|p| p.ctx.manifest.version.to_string())
    });
    assert_eq!(loaded.as_deref(), Some("0.1.0"));
}
