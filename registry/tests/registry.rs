//! Packages, signatures, trust, registries (directory and HTTP) and installs,
//! on real files in temporary folders and a real server on 127.0.0.1.

#![allow(clippy::result_large_err)]

use std::fs;
use std::path::{Path, PathBuf};

use semver::Version;
use tempfile::TempDir;
use yiwang_registry::index::PluginSpec;
use yiwang_registry::install::{self, InstallError};
use yiwang_registry::package::{self, PackageError};
use yiwang_registry::sign::{self, KeyPair, PublisherKey, SignatureError};
use yiwang_registry::trust::{TrustError, TrustPolicy};
use yiwang_registry::{DirRegistry, HttpRegistry, Registry, RegistryError};

// ---------------------------------------------------------------- helpers

/// A component header followed by `extra`: enough for the format checks.
fn component(extra: &[u8]) -> Vec<u8> {
    let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
    bytes.extend_from_slice(extra);
    bytes
}

fn manifest(name: &str, version: &str, department: &str, publisher: &str) -> String {
    format!(
        r#"name = "{name}"
version = "{version}"
department = "{department}"
publisher = "{publisher}"
world = "yiwang:gov/event-handler@0.2.0"
description = "A test plugin."
subscribe = ["report.>"]

[grants]
cases = ["open", "note"]
publish = ["warning.*"]
"#
    )
}

fn key(publisher: &str, seed: u8) -> KeyPair {
    KeyPair::from_seed(publisher, [seed; 32]).expect("valid publisher")
}

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write a plugin folder and return its path.
    fn folder(&self, name: &str, version: &str, department: &str, publisher: &str, wasm: &[u8]) -> PathBuf {
        let dir = self.path(&format!("src/{name}-{version}-{}", wasm.len()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("plugin.toml"), manifest(name, version, department, publisher)).unwrap();
        fs::write(dir.join("plugin.wasm"), wasm).unwrap();
        dir
    }

    /// Pack (and sign with `key`, if any) a plugin; return the archive bytes.
    fn archive(&self, name: &str, version: &str, department: &str, key: Option<&KeyPair>, wasm: &[u8]) -> Vec<u8> {
        let publisher = key.map(|k| k.publisher.clone()).unwrap_or_else(|| "yiwang-core".into());
        let folder = self.folder(name, version, department, &publisher, wasm);
        let info = package::pack(&folder, &self.path("out"), key).expect("pack");
        fs::read(info.path).unwrap()
    }
}

/// A trust policy: `core` for any department, `vendor` for chengguan only.
fn policy(core: &KeyPair, vendor: &KeyPair) -> TrustPolicy {
    let mut trust = TrustPolicy::default();
    trust.admit(&core.publisher, core.public(), &["*".into()]);
    trust.admit(&vendor.publisher, vendor.public(), &["chengguan".into()]);
    trust
}

/// One archive entry for [`raw_archive`].
struct RawEntry<'a> {
    path: &'a [u8],
    kind: tar::EntryType,
    data: &'a [u8],
    link: Option<&'a str>,
}

fn file<'a>(path: &'a str, data: &'a [u8]) -> RawEntry<'a> {
    RawEntry {
        path: path.as_bytes(),
        kind: tar::EntryType::Regular,
        data,
        link: None,
    }
}

/// Build an archive with the tar crate's low-level header API, writing the
/// name field directly so paths the builder would refuse (`..`, `/abs`) get in.
fn raw_archive(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for e in entries {
        let mut header = tar::Header::new_old();
        let name = &mut header.as_old_mut().name;
        name[..e.path.len()].copy_from_slice(e.path);
        header.set_entry_type(e.kind);
        header.set_size(e.data.len() as u64);
        header.set_mode(0o644);
        if let Some(link) = e.link {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        builder.append(&header, e.data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn good_manifest() -> String {
    manifest("demo", "1.0.0", "chengguan", "yiwang-core")
}

// ---------------------------------------------------------------- package format

#[test]
fn pack_is_deterministic_and_unpacks_to_the_same_package() {
    let fx = Fixture::new();
    let folder = fx.folder("demo", "1.0.0", "chengguan", "yiwang-core", &component(b"code"));
    let a = package::pack(&folder, &fx.path("a"), None).unwrap();
    let b = package::pack(&folder, &fx.path("b"), None).unwrap();
    assert_eq!(a.archive_digest, b.archive_digest, "packing twice gives the same bytes");
    assert_eq!(a.path.file_name().unwrap(), "demo-1.0.0.ywpkg");
    assert_eq!((a.name.as_str(), a.version.to_string()), ("demo", "1.0.0".into()));
    assert!(!a.signed);
    assert_eq!(a.component_size, 12);
    assert!(a.digest.to_string().starts_with("sha256:") && a.digest.to_string().len() == 7 + 64);

    let bytes = fs::read(&a.path).unwrap();
    let p = package::unpack(&bytes).unwrap();
    assert_eq!(p.digest, a.digest);
    assert_eq!(
        p.digest,
        package::content_digest(p.manifest_text.as_bytes(), &p.component)
    );
    assert!(p.signature.is_none());

    let names: Vec<String> = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]))
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            assert_eq!(e.header().mode().unwrap(), 0o644);
            assert_eq!(e.header().mtime().unwrap(), 0);
            e.path().unwrap().display().to_string()
        })
        .collect();
    assert_eq!(names, ["demo-1.0.0/plugin.toml", "demo-1.0.0/plugin.wasm"]);

    // An installed folder gives back the same digest.
    let installed = fx.path("installed/demo");
    p.write_folder(&installed).unwrap();
    assert_eq!(package::read_folder(&installed).unwrap().digest, a.digest);
    // Writing again replaces the folder whole.
    p.write_folder(&installed).unwrap();
    let leftovers: Vec<_> = fs::read_dir(fx.path("installed")).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temp folders left behind");
}

#[test]
fn pack_refuses_core_modules_bad_manifests_and_foreign_signers() {
    let fx = Fixture::new();
    let core_module = b"\0asm\x01\x00\x00\x00".to_vec();
    let folder = fx.folder("demo", "1.0.0", "chengguan", "yiwang-core", &core_module);
    let err = package::pack(&folder, &fx.path("out"), None).unwrap_err();
    assert!(matches!(err, PackageError::NotAComponent { .. }), "{err}");
    assert!(err.to_string().contains("core WebAssembly module"), "{err}");
    assert!(err.to_string().contains("plugin.wasm"), "{err}");

    let folder = fx.folder("demo", "1.0.0", "chengguan", "yiwang-core", b"MZ not wasm");
    let err = package::pack(&folder, &fx.path("out"), None).unwrap_err();
    assert!(err.to_string().contains("magic"), "{err}");

    let folder = fx.folder("demo", "1.0.0", "chengguan", "yiwang-core", &component(b""));
    fs::write(
        folder.join("plugin.toml"),
        good_manifest().replace("version = \"1.0.0\"", "version = \"1.0\""),
    )
    .unwrap();
    let err = package::pack(&folder, &fx.path("out"), None).unwrap_err();
    match &err {
        PackageError::Manifest(m) => assert_eq!(m.field, "version", "{err}"),
        other => panic!("expected a manifest error, got {other}"),
    }

    let folder = fx.folder("demo", "1.0.0", "chengguan", "yiwang-core", &component(b""));
    let err = package::pack(&folder, &fx.path("out"), Some(&key("acme-vendor", 2))).unwrap_err();
    assert!(matches!(err, PackageError::PublisherMismatch { .. }), "{err}");
    assert!(
        !fx.path("out").join("demo-1.0.0.ywpkg").exists(),
        "nothing written on failure"
    );
}

/// Each odd archive is refused; the message names the entry and the problem.
#[test]
fn unpack_refuses_odd_archives() {
    let m = good_manifest();
    let m = m.as_bytes();
    let wasm = component(b"x");
    let big = vec![b'#'; (1 << 20) + 1];
    let cases: Vec<(&str, Vec<RawEntry<'_>>, &str)> = vec![
        (
            "dot-dot",
            vec![file("demo-1.0.0/plugin.toml", m), file("../x", &wasm)],
            "`..`",
        ),
        (
            "dot-dot inside",
            vec![file("demo-1.0.0/../../etc/plugin.wasm", &wasm)],
            "`..`",
        ),
        ("absolute", vec![file("/abs/plugin.toml", m)], "absolute path"),
        (
            "symlink",
            vec![
                file("demo-1.0.0/plugin.toml", m),
                RawEntry {
                    path: b"demo-1.0.0/plugin.wasm",
                    kind: tar::EntryType::Symlink,
                    data: b"",
                    link: Some("/etc/passwd"),
                },
            ],
            "symbolic link",
        ),
        (
            "hard link",
            vec![RawEntry {
                path: b"demo-1.0.0/plugin.wasm",
                kind: tar::EntryType::Link,
                data: b"",
                link: Some("demo-1.0.0/plugin.toml"),
            }],
            "hard link",
        ),
        (
            "device",
            vec![RawEntry {
                path: b"demo-1.0.0/plugin.wasm",
                kind: tar::EntryType::Char,
                data: b"",
                link: None,
            }],
            "device",
        ),
        (
            "unknown file",
            vec![
                file("demo-1.0.0/plugin.toml", m),
                file("demo-1.0.0/run.sh", b"#!/bin/sh"),
            ],
            "unknown file `run.sh`",
        ),
        (
            "duplicate",
            vec![file("demo-1.0.0/plugin.toml", m), file("demo-1.0.0/plugin.toml", m)],
            "appears twice",
        ),
        (
            "two top folders",
            vec![
                file("demo-1.0.0/plugin.toml", m),
                file("other-1.0.0/plugin.wasm", &wasm),
            ],
            "outside the package folder",
        ),
        (
            "missing component",
            vec![file("demo-1.0.0/plugin.toml", m)],
            "lacks plugin.wasm",
        ),
        (
            "oversized manifest",
            vec![file("demo-1.0.0/plugin.toml", &big)],
            "more than the limit",
        ),
        (
            "folder name differs from manifest",
            vec![file("demo-2.0.0/plugin.toml", m), file("demo-2.0.0/plugin.wasm", &wasm)],
            "expected `demo-1.0.0/`",
        ),
        (
            "sub-folder",
            vec![file("demo-1.0.0/lib/plugin.wasm", &wasm)],
            "not a file directly inside",
        ),
    ];
    for (label, entries, expected) in cases {
        let bytes = raw_archive(&entries);
        let err = package::unpack(&bytes).expect_err(label);
        let text = err.to_string();
        assert!(text.contains(expected), "{label}: `{text}` lacks `{expected}`");
        if !matches!(err, PackageError::Archive { .. }) {
            let first = String::from_utf8_lossy(entries.last().unwrap().path).into_owned();
            let named = entries.iter().any(|e| text.contains(&*String::from_utf8_lossy(e.path)))
                || text.contains("demo-2.0.0/");
            assert!(named, "{label}: `{text}` names no entry (e.g. `{first}`)");
        }
    }

    // The happy path of the same helper, so the cases above fail for their reason.
    let ok = raw_archive(&[file("demo-1.0.0/plugin.toml", m), file("demo-1.0.0/plugin.wasm", &wasm)]);
    package::unpack(&ok).expect("a plain archive unpacks");
    let err = package::unpack(b"not gzip at all").unwrap_err();
    assert!(err.to_string().contains("not a gzip file"), "{err}");
}

// ---------------------------------------------------------------- keys and signatures

#[test]
fn keys_save_load_and_sign_archives_in_place() {
    let fx = Fixture::new();
    let kp = KeyPair::generate("acme-vendor").unwrap();
    let secret = fx.path("acme.key");
    kp.save(&secret).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(
        matches!(kp.save(&secret), Err(sign::KeyError::Exists(_))),
        "a key is never overwritten"
    );
    let loaded = KeyPair::load(&secret).unwrap();
    assert_eq!(loaded.public(), kp.public());
    assert_eq!(loaded.publisher, "acme-vendor");
    assert_eq!(kp.key_id().len(), 16);

    let public = fx.path("acme.pub");
    kp.publisher_key().save(&public).unwrap();
    let pk = PublisherKey::load(&public).unwrap();
    assert_eq!(pk.key, kp.public());
    assert_eq!(pk.key.to_string().parse::<sign::PublicKey>().unwrap(), kp.public());
    assert!(pk.key.to_string().starts_with("ed25519:"));
    fs::write(
        &public,
        fs::read_to_string(&public)
            .unwrap()
            .replace(&kp.key_id(), "0000000000000000"),
    )
    .unwrap();
    assert!(
        PublisherKey::load(&public)
            .unwrap_err()
            .to_string()
            .contains("does not match the key")
    );

    // Sign an unsigned archive in place.
    let folder = fx.folder("demo", "1.0.0", "chengguan", "acme-vendor", &component(b"v"));
    let info = package::pack(&folder, &fx.path("out"), None).unwrap();
    let signature = sign::sign_archive(&info.path, &loaded).unwrap();
    let p = package::Package::read_archive(&info.path).unwrap();
    assert_eq!(p.signature.as_ref(), Some(&signature));
    signature.verify(&p).unwrap();
    assert_eq!(
        signature.digest, info.digest,
        "signing does not change the content digest"
    );
    assert!(signature.to_toml().contains("digest = \"sha256:"));

    // A key of another publisher cannot sign it.
    let err = sign::sign_archive(&info.path, &key("someone-else", 9)).unwrap_err();
    assert!(matches!(err, PackageError::PublisherMismatch { .. }), "{err}");
}

#[test]
fn signatures_bind_name_version_digest_and_key() {
    let fx = Fixture::new();
    let core = key("yiwang-core", 1);
    let p = package::unpack(&fx.archive("demo", "1.0.0", "chengguan", Some(&core), &component(b"a"))).unwrap();
    let sig = p.signature.clone().unwrap();
    sig.verify(&p).unwrap();

    let other = package::unpack(&fx.archive("demo", "1.0.1", "chengguan", Some(&core), &component(b"a"))).unwrap();
    assert!(matches!(sig.verify(&other), Err(SignatureError::NameMismatch { .. })));

    let mut forged = sig.clone();
    forged.public_key = key("yiwang-core", 7).public();
    assert!(matches!(forged.verify(&p), Err(SignatureError::KeyIdMismatch { .. })));
    forged.key_id = forged.public_key.key_id();
    let err = forged.verify(&p).unwrap_err();
    assert!(matches!(err, SignatureError::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains("yiwang-core"), "{err}");
}

// ---------------------------------------------------------------- trust

#[test]
fn tampered_archive_is_refused_everywhere() {
    let fx = Fixture::new();
    let core = key("yiwang-core", 1);
    let bytes = fx.archive("demo", "1.0.0", "chengguan", Some(&core), &component(b"original"));
    let mut p = package::unpack(&bytes).unwrap();
    // Change one byte of plugin.wasm after signing, keep the signature.
    let last = p.component.len() - 1;
    p.component[last] ^= 1;
    let tampered_bytes = {
        let sig_text = p.signature.as_ref().unwrap().to_toml();
        raw_archive(&[
            file("demo-1.0.0/plugin.toml", p.manifest_text.as_bytes()),
            file("demo-1.0.0/plugin.wasm", &p.component),
            file("demo-1.0.0/signature.toml", sig_text.as_bytes()),
        ])
    };
    let tampered = package::unpack(&tampered_bytes).unwrap();
    let trust = policy(&core, &key("acme-vendor", 2));
    let err = trust.check(&tampered).unwrap_err();
    assert!(
        matches!(err, TrustError::Signature(SignatureError::DigestMismatch { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("changed after it was signed"), "{err}");

    let registry = DirRegistry::open(fx.path("reg")).unwrap();
    let err = registry.publish(&tampered_bytes).unwrap_err();
    assert!(
        matches!(err, RegistryError::Signature(SignatureError::DigestMismatch { .. })),
        "{err}"
    );

    let plugins = fx.path("plugins");
    let err = install::install_archive(&tampered_bytes, &plugins, &trust).unwrap_err();
    assert!(matches!(err, InstallError::Trust(TrustError::Signature(_))), "{err}");
    assert!(!plugins.join("demo").exists());
}

/// Each case is (signing key, department, expected error text); the policy
/// trusts `yiwang-core` (key 1) for any department and `acme-vendor` (key 2)
/// for chengguan.
#[test]
fn trust_policy_decisions() {
    let fx = Fixture::new();
    let core = key("yiwang-core", 1);
    let vendor = key("acme-vendor", 2);
    let trust = policy(&core, &vendor);
    let check = |signer: Option<&KeyPair>, department: &str, version: &str| {
        let bytes = fx.archive("demo", version, department, signer, &component(b"z"));
        trust.check(&package::unpack(&bytes).unwrap())
    };

    let ok = check(Some(&core), "yingji", "1.0.0").unwrap();
    assert_eq!(
        (ok.publisher.as_str(), ok.department.as_str()),
        ("yiwang-core", "yingji")
    );
    assert_eq!(ok.key_id, core.key_id());
    check(Some(&vendor), "chengguan", "1.0.1").unwrap();

    let err = check(None, "chengguan", "1.0.2").unwrap_err();
    assert!(matches!(err, TrustError::Unsigned { .. }), "{err}");

    let err = check(Some(&key("stranger", 3)), "chengguan", "1.0.3").unwrap_err();
    assert!(matches!(err, TrustError::UnknownPublisher { .. }), "{err}");
    assert!(err.to_string().contains("`stranger` is not trusted"), "{err}");

    // Right publisher name, wrong key.
    let err = check(Some(&key("yiwang-core", 4)), "chengguan", "1.0.4").unwrap_err();
    match &err {
        TrustError::KeyNotAdmitted {
            publisher, admitted, ..
        } => {
            assert_eq!(publisher, "yiwang-core");
            assert_eq!(admitted, &[core.key_id()]);
        }
        other => panic!("expected KeyNotAdmitted, got {other}"),
    }

    let err = check(Some(&vendor), "yingji", "1.0.5").unwrap_err();
    assert!(matches!(err, TrustError::DepartmentNotAdmitted { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("`acme-vendor`") && text.contains("department `yingji`") && text.contains("chengguan"),
        "{text}"
    );

    // A manifest claiming the core team, signed by the vendor.
    let folder = fx.folder("demo", "1.0.6", "chengguan", "yiwang-core", &component(b"q"));
    let mut p = package::read_folder(&folder).unwrap();
    p.signature = Some(sign::sign(&p, &vendor));
    let err = trust.check(&p).unwrap_err();
    assert!(matches!(err, TrustError::PublisherMismatch { .. }), "{err}");
}

#[test]
fn trust_file_round_trip_and_errors() {
    let fx = Fixture::new();
    let core = key("yiwang-core", 1);
    let vendor = key("acme-vendor", 2);
    let mut trust = policy(&core, &vendor);
    trust.admit(
        "acme-vendor",
        key("acme-vendor", 5).public(),
        &["chengguan".into(), "zongzhi".into()],
    );
    let path = fx.path("trust.toml");
    trust.save(&path).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# Yiwang trust policy"), "{text}");
    assert!(text.contains("[[publisher]]"), "{text}");
    let loaded = TrustPolicy::load(&path).unwrap();
    assert_eq!(loaded, trust);
    let v = loaded.publisher("acme-vendor").unwrap();
    assert_eq!(v.keys.len(), 2);
    assert_eq!(v.departments, ["chengguan", "zongzhi"]);

    assert_eq!(
        TrustPolicy::load_or_default(&fx.path("none.toml")).unwrap(),
        TrustPolicy::default()
    );
    for (text, expected) in [
        ("[[publisher]]\nname = \"a\"\nkeys = [\"rsa:abc\"]\n", "ed25519:"),
        (
            "[[publisher]]\nname = \"a\"\n[[publisher]]\nname = \"a\"\n",
            "listed twice",
        ),
        (
            "[[publisher]]\nname = \"a\"\ndepartments = [\"Bad Dept\"]\n",
            "not a department code",
        ),
        ("[[publisher]]\nname = \"a\"\nkeyz = []\n", "keyz"),
    ] {
        let err = TrustPolicy::parse(text, Path::new("trust.toml")).unwrap_err();
        assert!(
            err.to_string().contains(expected) && err.to_string().contains("trust.toml"),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------- directory registry

#[test]
fn publish_refuses_unsigned_conflicting_and_unparsable_versions() {
    let fx = Fixture::new();
    let core = key("yiwang-core", 1);
    let registry = DirRegistry::open(fx.path("reg")).unwrap();

    let unsigned = fx.archive("demo", "1.0.0", "chengguan", None, &component(b"u"));
    let err = registry.publish(&unsigned).unwrap_err();
    assert!(matches!(err, RegistryError::Unsigned { .. }), "{err}");

    let first = fx.archive("demo", "1.0.0", "chengguan", Some(&core), &component(b"first"));
    let entry = registry.publish_at(&first, 1000).unwrap();
    assert_eq!(entry.published_at_ms, 1000);
    assert_eq!(entry.key_id, core.key_id());
    assert_eq!(entry.grants.cases, ["open", "note"]);
    assert_eq!(entry.world, "yiwang:gov/event-handler@0.2.0");
    // Same content again: idempotent, the first entry stands.
    assert_eq!(registry.publish_at(&first, 2000).unwrap(), entry);

    let second = fx.archive("demo", "1.0.0", "chengguan", Some(&core), &component(b"second"));
    let err = registry.publish(&second).unwrap_err();
    assert!(matches!(err, RegistryError::VersionConflict { .. }), "{err}");
    assert!(err.to_string().contains("already published"), "{err}");
    assert_eq!(registry.versions("demo").unwrap().len(), 1);

    // A version that is not semver never gets past the manifest.
    let bad_manifest = manifest("demo", "1.2", "chengguan", "yiwang-core");
    let bad = raw_archive(&[
        file("demo-1.2/plugin.toml", bad_manifest.as_bytes()),
        file("demo-1.2/plugin.wasm", &component(b"")),
    ]);
    let err = registry.publish(&bad).unwrap_err();
    match &err {
        RegistryError::Package(PackageError::Manifest(m)) => {
            assert_eq!(m.field, "version");
            assert!(m.message.contains("not a semver"), "{err}");
        }
        other => panic!("expected a manifest error, got {other}"),
    }

    // Index names are checked before they become paths.
    assert!(matches!(
        registry.versions("../etc"),
        Err(RegistryError::InvalidName(_))
    ));
    assert!(matches!(
        registry.versions("nothing"),
        Err(RegistryError::UnknownPlugin { .. })
    ));
    assert_eq!(registry.names().unwrap(), ["demo"]);

    // A corrupted blob is refused on read.
    let blob = fx.path("reg/blobs/sha256").join(entry.archive.hex());
    let mut bytes = fs::read(&blob).unwrap();
    bytes[10] ^= 0xff;
    fs::write(&blob, bytes).unwrap();
    assert!(matches!(registry.fetch(&entry), Err(RegistryError::BlobCorrupt { .. })));
}

/// Each case is (spec, expected version or the start of the error).
#[test]
fn resolution_follows_semver_skips_yanked_and_prereleases() {
    let fx = Fixture::new();
    let core = key("yiwang-core", 1);
    let registry = DirRegistry::open(fx.path("reg")).unwrap();
    for v in ["1.0.0", "1.2.0", "1.2.5", "1.3.0", "1.4.0", "2.0.0-rc.1"] {
        registry
            .publish(&fx.archive("demo", v, "chengguan", Some(&core), &component(v.as_bytes())))
            .unwrap();
    }
    registry.yank("demo", &Version::new(1, 4, 0), true).unwrap();

    let cases = [
        ("demo", Ok("1.3.0")),
        ("demo@^1.2", Ok("1.3.0")),
        ("demo@~1.2", Ok("1.2.5")),
        ("demo@1.2.0", Ok("1.2.0")),
        ("demo@=1.2.0", Ok("1.2.0")),
        ("demo@>=1.0, <1.2", Ok("1.0.0")),
        ("demo@2.0.0-rc.1", Ok("2.0.0-rc.1")),
        ("demo@>=2.0.0-rc.1", Ok("2.0.0-rc.1")),
        (
            "demo@^2",
            Err("no version of `demo` matches `^2`; known: 1.0.0, 1.2.0, 1.2.5, 1.3.0, 1.4.0 (yanked), 2.0.0-rc.1"),
        ),
        ("demo@^1.4", Err("no version of `demo` matches `^1.4`")),
        ("other", Err("plugin `other` is not in the registry")),
        ("demo@", Err("plugin spec `demo@`: nothing after `@`")),
        ("demo@^x", Err("plugin spec `demo@^x`")),
        ("Bad Name", Err("plugin spec `Bad Name`")),
    ];
    for (spec, expected) in cases {
        let got = PluginSpec::parse(spec).and_then(|s| registry.resolve(&s));
        match (got, expected) {
            (Ok(entry), Ok(v)) => assert_eq!(entry.version.to_string(), v, "{spec}"),
            (Err(e), Err(text)) => assert!(
                e.to_string().starts_with(text),
                "{spec}: `{e}` does not start with `{text}`"
            ),
            (got, expected) => panic!("{spec}: got {got:?}, expected {expected:?}"),
        }
    }
    registry.yank("demo", &Version::new(1, 4, 0), false).unwrap();
    assert_eq!(
        registry.resolve(&PluginSpec::parse("demo").unwrap()).unwrap().version,
        Version::new(1, 4, 0)
    );
    let err = registry.yank("demo", &Version::new(9, 9, 9), true).unwrap_err();
    assert!(matches!(err, RegistryError::UnknownVersion { .. }), "{err}");
}

// ---------------------------------------------------------------- install, history, rollback

#[tokio::test]
async fn dir_round_trip_install_rollback_and_activate() {
    let fx = Fixture::new();
    let core = key("yiwang-core", 1);
    let vendor = key("acme-vendor", 2);
    let trust = policy(&core, &vendor);
    let location = format!("dir:{}", fx.path("reg").display());
    let registry = Registry::open(&location).unwrap();
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        let bytes = fx.archive("demo", v, "chengguan", Some(&vendor), &component(v.as_bytes()));
        registry.publish(bytes).await.unwrap();
    }
    let plugins = fx.path("plugins");
    let spec = |s: &str| PluginSpec::parse(s).unwrap();

    let first = install::install(&registry, &spec("demo@1.0.0"), &plugins, &trust)
        .await
        .unwrap();
    assert_eq!((first.version.to_string(), first.previous), ("1.0.0".into(), None));
    assert_eq!(first.trusted.publisher, "acme-vendor");
    let second = install::install(&registry, &spec("demo@~1.1"), &plugins, &trust)
        .await
        .unwrap();
    assert_eq!(second.previous, Some(Version::new(1, 0, 0)));
    install::install(&registry, &spec("demo"), &plugins, &trust)
        .await
        .unwrap();

    // What the host loads: a plain folder with the three files, verifiable at load.
    let active = package::read_folder(&plugins.join("demo")).unwrap();
    assert_eq!(active.manifest.version, Version::new(1, 2, 0));
    trust.check(&active).unwrap();
    let mut files: Vec<String> = fs::read_dir(plugins.join("demo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["plugin.toml", "plugin.wasm", "signature.toml"]);
    let visible: Vec<String> = fs::read_dir(&plugins)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(visible, ["demo"], "only the active folder is visible to the host");

    let list = install::installed(&plugins).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].active, Some(Version::new(1, 2, 0)));
    assert_eq!(list[0].versions.len(), 3);

    assert_eq!(install::rollback(&plugins, "demo").unwrap(), Version::new(1, 1, 0));
    assert_eq!(install::rollback(&plugins, "demo").unwrap(), Version::new(1, 0, 0));
    let err = install::rollback(&plugins, "demo").unwrap_err();
    assert!(matches!(err, InstallError::NoPrevious { .. }), "{err}");
    assert_eq!(
        package::read_folder(&plugins.join("demo")).unwrap().manifest.version,
        Version::new(1, 0, 0)
    );

    install::activate(&plugins, "demo", &Version::new(1, 2, 0)).unwrap();
    assert_eq!(
        install::installed(&plugins).unwrap()[0].history,
        [Version::new(1, 0, 0), Version::new(1, 2, 0)]
    );
    assert_eq!(install::rollback(&plugins, "demo").unwrap(), Version::new(1, 0, 0));
    let err = install::activate(&plugins, "demo", &Version::new(3, 0, 0)).unwrap_err();
    assert!(
        err.to_string().contains("installed versions: 1.0.0, 1.1.0, 1.2.0"),
        "{err}"
    );

    // A failing install leaves the active folder as it was.
    let stranger = key("stranger", 3);
    let bytes = fx.archive("demo", "9.0.0", "chengguan", Some(&stranger), &component(b"evil"));
    let err = install::install_archive(&bytes, &plugins, &trust).unwrap_err();
    assert!(
        matches!(err, InstallError::Trust(TrustError::UnknownPublisher { .. })),
        "{err}"
    );
    assert_eq!(
        package::read_folder(&plugins.join("demo")).unwrap().manifest.version,
        Version::new(1, 0, 0)
    );

    // A kept version changed on disk is refused on activation.
    let kept = plugins.join(".versions/demo/1.1.0/plugin.wasm");
    fs::write(&kept, component(b"changed")).unwrap();
    let err = install::activate(&plugins, "demo", &Version::new(1, 1, 0)).unwrap_err();
    assert!(
        matches!(err, InstallError::Signature(SignatureError::DigestMismatch { .. })),
        "{err}"
    );
    assert_eq!(
        package::read_folder(&plugins.join("demo")).unwrap().manifest.version,
        Version::new(1, 0, 0)
    );
    assert!(matches!(
        install::rollback(&plugins, "../x"),
        Err(InstallError::InvalidName(_))
    ));
}

#[test]
fn installing_over_an_unmanaged_folder_keeps_it_for_rollback() {
    let fx = Fixture::new();
    let core = key("yiwang-core", 1);
    let trust = policy(&core, &key("acme-vendor", 2));
    let plugins = fx.path("plugins");
    // A folder put there by other means (e.g. the host's bundled plugins).
    let bundled = package::unpack(&fx.archive("demo", "0.1.0", "yingji", None, &component(b"bundled"))).unwrap();
    bundled.write_folder(&plugins.join("demo")).unwrap();

    let bytes = fx.archive("demo", "0.2.0", "yingji", Some(&core), &component(b"new"));
    let installed = install::install_archive(&bytes, &plugins, &trust).unwrap();
    assert_eq!(installed.previous, Some(Version::new(0, 1, 0)));
    assert_eq!(install::rollback(&plugins, "demo").unwrap(), Version::new(0, 1, 0));
    assert_eq!(
        package::read_folder(&plugins.join("demo")).unwrap().digest,
        bundled.digest
    );
}

// ---------------------------------------------------------------- HTTP registry

async fn serve(registry: DirRegistry, token: Option<&str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = yiwang_registry::server::router(registry, token.map(str::to_owned));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn http_round_trip_with_token() {
    let fx = Fixture::new();
    let core = key("yiwang-core", 1);
    let vendor = key("acme-vendor", 2);
    let trust = policy(&core, &vendor);
    let url = serve(DirRegistry::open(fx.path("reg")).unwrap(), Some("s3cret")).await;

    let anonymous = HttpRegistry::new(&url).unwrap();
    let client = HttpRegistry::new(&format!("{url}/")).unwrap().with_token("s3cret");
    let v1 = fx.archive("hotline12345", "1.2.0", "hotline12345", Some(&core), &component(b"one"));
    let err = anonymous.publish(v1.clone()).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized), "{err}");
    let wrong = HttpRegistry::new(&url).unwrap().with_token("guess");
    assert!(matches!(
        wrong.publish(v1.clone()).await,
        Err(RegistryError::Unauthorized)
    ));

    let entry = client.publish(v1).await.unwrap();
    assert_eq!(entry.version, Version::new(1, 2, 0));
    client
        .publish(fx.archive(
            "hotline12345",
            "1.3.0-beta.1",
            "hotline12345",
            Some(&core),
            &component(b"b"),
        ))
        .await
        .unwrap();
    assert_eq!(anonymous.names().await.unwrap(), ["hotline12345"]);

    // Errors come back as 4xx with the server's message.
    let unsigned = fx.archive("hotline12345", "1.2.1", "hotline12345", None, &component(b"u"));
    match client.publish(unsigned).await.unwrap_err() {
        RegistryError::Remote { status, message, .. } => {
            assert_eq!(status, 422);
            assert!(message.contains("not signed"), "{message}");
        }
        other => panic!("expected a remote error, got {other}"),
    }
    let conflict = fx.archive("hotline12345", "1.2.0", "hotline12345", Some(&core), &component(b"two"));
    match client.publish(conflict).await.unwrap_err() {
        RegistryError::Remote { status, message, .. } => {
            assert_eq!(status, 409);
            assert!(message.contains("already published"), "{message}");
        }
        other => panic!("expected a remote error, got {other}"),
    }
    assert!(matches!(
        anonymous.versions("missing").await,
        Err(RegistryError::UnknownPlugin { .. })
    ));
    let err = anonymous
        .resolve(&PluginSpec::parse("hotline12345@^2").unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("no version of `hotline12345` matches `^2`"),
        "{err}"
    );
    let missing = yiwang_registry::Digest::of(b"nothing");
    assert!(matches!(
        anonymous.blob(&missing).await,
        Err(RegistryError::BlobMissing(_))
    ));

    // Resolution and install through the generic handle.
    let registry = Registry::open(&url).unwrap();
    let newest = registry
        .resolve(&PluginSpec::parse("hotline12345").unwrap())
        .await
        .unwrap();
    assert_eq!(newest.version, Version::new(1, 2, 0), "pre-releases only when asked");
    let beta = registry
        .resolve(&PluginSpec::parse("hotline12345@1.3.0-beta.1").unwrap())
        .await
        .unwrap();
    assert!(!beta.version.pre.is_empty());
    let archive = registry.fetch(&newest).await.unwrap();
    assert_eq!(yiwang_registry::Digest::of(&archive), newest.archive);

    let plugins = fx.path("plugins");
    let installed = install::install(
        &registry,
        &PluginSpec::parse("hotline12345@^1.2").unwrap(),
        &plugins,
        &trust,
    )
    .await
    .unwrap();
    assert_eq!(installed.version, Version::new(1, 2, 0));
    assert_eq!(installed.digest, newest.digest);
    assert!(plugins.join("hotline12345/plugin.wasm").is_file());

    // Yanking over HTTP needs the token too.
    assert!(matches!(
        anonymous.yank("hotline12345", &Version::new(1, 2, 0), true).await,
        Err(RegistryError::Unauthorized)
    ));
    client.yank("hotline12345", &Version::new(1, 2, 0), true).await.unwrap();
    let err = registry
        .resolve(&PluginSpec::parse("hotline12345").unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1.2.0 (yanked)"), "{err}");

    assert!(matches!(
        Registry::open("https://example.invalid"),
        Err(RegistryError::Location { .. })
    ));
}
