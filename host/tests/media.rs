//! Unstructured media: the content-addressed blob store and case evidence —
//! through the media service on SQLite and PostgreSQL, and through HTTP
//! against a real host.
//!
//! PostgreSQL tests need `YIWANG_TEST_POSTGRES` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); each test gets a fresh schema.
//! Without the variable the PostgreSQL variants say "skipped" and return.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use yiwang::bus::MemoryBus;
use yiwang::cases::engine::Channel;
use yiwang::cases::{CaseDraft, Cases};
use yiwang::db::Db;
use yiwang::media::{Kind, Linked, Media, MediaError, MediaSettings, Stored, Upload};

#[macro_use]
mod common;

use common::{Fixture, T0};

/// `len` bytes that start with `magic` and go on pseudo-randomly (seeded, so
/// two calls with the same arguments give the same bytes).
fn content(magic: &[u8], len: usize, seed: u64) -> Vec<u8> {
    let mut out = magic.to_vec();
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 24) as u8);
    }
    out.truncate(len);
    out
}

const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00];
const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

fn jpeg(len: usize, seed: u64) -> Vec<u8> {
    content(JPEG, len, seed)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `bytes` as a request body arriving in chunks of `size`.
fn chunks(bytes: &[u8], size: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>> + use<> {
    let parts: Vec<Result<Bytes, std::io::Error>> = bytes.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures::stream::iter(parts)
}

/// Every file (not folder) under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

async fn rows(db: &Db, table: &str) -> i64 {
    use sqlx::Row;
    let sql = format!("SELECT COUNT(*) FROM {table}");
    sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(db.pool()).await.unwrap().get(0)
}

/// A media service over the fixture's database, with its blobs in a fresh folder.
async fn media(f: &Fixture, max_bytes: u64) -> (Media, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let settings = MediaSettings { dir: dir.path().join("media"), max_bytes };
    let media = Media::new(f.db.clone(), f.clock.clone(), settings);
    media.prepare().await.unwrap();
    (media, dir)
}

fn upload<'a>(content_type: &'a str, filename: Option<&'a str>, uploaded_by: &'a str) -> Upload<'a> {
    Upload { content_type, filename, uploaded_by }
}

async fn read_all(media: &Media, sha: &str) -> Vec<u8> {
    let info = media.info(sha).await.unwrap().expect("stored");
    let mut stream = std::pin::pin!(media.read(&info).await.unwrap());
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

storage_test!(upload_round_trip_and_dedupe, async |f: Fixture| {
    let (media, _dir) = media(&f, 1024 * 1024).await;
    let photo = jpeg(300_000, 7);
    let sha = sha256(&photo);

    let stored = media.store(&upload("image/jpeg", Some("井盖缺失.jpg"), "res.a"), chunks(&photo, 16_384)).await;
    let Ok(Stored::Created(info)) = stored else { panic!("{stored:?}") };
    assert_eq!(info.sha256, sha);
    assert_eq!((info.size, info.content_type.as_str(), info.kind), (300_000, "image/jpeg", Kind::Photo));
    assert_eq!(
        (info.filename.as_deref(), info.uploaded_by.as_str(), info.created),
        (Some("井盖缺失.jpg"), "res.a", T0)
    );

    // The blob is the file <dir>/<first two hex>/<sha256>, nothing else is left.
    let blob = media.dir().join(&sha[..2]).join(&sha);
    assert_eq!(files(media.dir()), std::slice::from_ref(&blob));
    assert_eq!(std::fs::read(&blob).unwrap(), photo);
    assert_eq!(read_all(&media, &sha).await, photo);
    assert_eq!(media.info(&sha).await.unwrap(), Some(info.clone()));

    // The same bytes again, cut differently, by someone else with another
    // name and an alias of the type: stored once, the first metadata kept.
    f.clock.advance(60_000);
    let again = media.store(&upload("image/jpg", Some("照片.jpg"), "res.b"), chunks(&photo, 999)).await.unwrap();
    assert_eq!(again, Stored::Existing(info.clone()));
    assert_eq!(files(media.dir()), [blob]);
    assert_eq!(rows(&f.db, "media").await, 1);
    // Both uploaders may read it back; nobody else counts as one.
    assert!(media.is_uploader(&sha, "res.a").await.unwrap());
    assert!(media.is_uploader(&sha, "res.b").await.unwrap());
    assert!(!media.is_uploader(&sha, "res.c").await.unwrap());
    assert_eq!(rows(&f.db, "media_uploads").await, 2);
    media.store(&upload("image/jpeg", None, "res.b"), chunks(&photo, 300_000)).await.unwrap();
    assert_eq!(rows(&f.db, "media_uploads").await, 2);

    // Different bytes, another blob; the unknown one has no metadata.
    let text = "井盖缺失，位于中山路与北京路交叉口。\n".repeat(500);
    let stored = media.store(&upload("text/plain; charset=UTF-8", None, "staff"), chunks(text.as_bytes(), 4096)).await;
    let Ok(Stored::Created(doc)) = stored else { panic!("{stored:?}") };
    assert_eq!((doc.content_type.as_str(), doc.kind, doc.filename), ("text/plain", Kind::Document, None));
    assert_eq!(read_all(&media, &doc.sha256).await, text.as_bytes());
    assert_eq!(files(media.dir()).len(), 2);
    assert_eq!(media.info(&sha256(b"nothing")).await.unwrap(), None);
    assert!(matches!(media.info("ABC").await, Err(MediaError::Invalid(m)) if m.contains("not a sha256")));
});

storage_test!(racing_identical_uploads_and_links_store_once, async |f: Fixture| {
    let (media, _dir) = media(&f, 1024 * 1024).await;
    let photo = jpeg(200_000, 21);
    let uploaders: Vec<String> = (0..8).map(|i| format!("res.{i}")).collect();
    let uploads: Vec<Upload<'_>> = uploaders.iter().map(|u| upload("image/jpeg", None, u)).collect();
    let stores = uploads.iter().map(|u| media.store(u, chunks(&photo, 8192)));
    let results = futures::future::join_all(stores).await;
    let created = results.iter().filter(|r| matches!(r, Ok(Stored::Created(_)))).count();
    let existing = results.iter().filter(|r| matches!(r, Ok(Stored::Existing(_)))).count();
    assert_eq!((created, existing), (1, 7), "{results:?}");
    assert_eq!(files(media.dir()).len(), 1);
    assert_eq!((rows(&f.db, "media").await, rows(&f.db, "media_uploads").await), (1, 8));

    let case = open_case(&f).await;
    let sha = sha256(&photo);
    let links = (0..8).map(|_| media.add_evidence(&case, &sha, "handler.1", "现场照片"));
    let results = futures::future::join_all(links).await;
    let added = results.iter().filter(|r| matches!(r, Ok(Linked::Added(_)))).count();
    let existing = results.iter().filter(|r| matches!(r, Ok(Linked::Existing(_)))).count();
    assert_eq!((added, existing), (1, 7), "{results:?}");
});

storage_test!(refused_uploads_leave_no_file_and_no_row, async |f: Fixture| {
    let limit = 100_000;
    let (media, _dir) = media(&f, limit).await;
    let photo = jpeg(limit as usize, 11);
    let refused = async |u: Upload<'_>, body: Vec<u8>| -> MediaError {
        match media.store(&u, chunks(&body, 8000)).await {
            Err(e) => e,
            Ok(s) => panic!("{} was stored: {s:?}", u.content_type),
        }
    };

    // One byte past the limit, whether it arrives in one chunk or many.
    let mut big = photo.clone();
    big.push(0);
    let e = refused(upload("image/jpeg", None, "res.a"), big.clone()).await;
    assert!(matches!(e, MediaError::TooLarge { limit: 100_000 }), "{e:?}");
    assert_eq!(e.to_string(), "the upload is larger than the limit of 100000 bytes; nothing was stored");
    let e = media.store(&upload("image/jpeg", None, "res.a"), chunks(&big, limit as usize + 1)).await.unwrap_err();
    assert!(matches!(e, MediaError::TooLarge { .. }), "{e:?}");

    // Declared and detected types must agree, both named in the refusal.
    let e = refused(upload("image/png", None, "res.a"), photo.clone()).await;
    assert_eq!(e.to_string(), "declared content type `image/png` does not match the content, which is `image/jpeg`");
    assert!(matches!(e, MediaError::Unsupported(_)));
    let e = refused(upload("application/pdf", None, "res.a"), content(b"", 5000, 3)).await;
    assert_eq!(
        e.to_string(),
        "declared content type `application/pdf` does not match the content, which is of no accepted type"
    );
    let e =
        refused(upload("text/plain", None, "res.a"), b"<!DOCTYPE html><html><script>alert(1)</script>".to_vec()).await;
    assert_eq!(e.to_string(), "declared content type `text/plain` does not match the content, which is `text/html`");
    let e = refused(upload("image/gif", None, "res.a"), b"GIF89a....".to_vec()).await;
    assert!(e.to_string().starts_with("content type `image/gif` is not accepted; accepted: image/jpeg, "), "{e}");
    let e = refused(upload("text/plain; charset=GBK", None, "res.a"), b"abc".to_vec()).await;
    assert_eq!(e.to_string(), "plain text must be UTF-8; charset `GBK` is not accepted");
    let e = refused(upload("image/jpeg", None, "res.a"), Vec::new()).await;
    assert_eq!(e.to_string(), "the body is empty; send the file's bytes");
    let e = refused(upload("image/jpeg", Some("../../etc/passwd"), "res.a"), photo.clone()).await;
    assert_eq!(e.to_string(), "filename must be a bare file name, without `/` or `\\`");
    let e = refused(upload("image/jpeg", Some("a\nb.jpg"), "res.a"), photo.clone()).await;
    assert_eq!(e.to_string(), "filename must not contain control characters");

    // A body that breaks off half-way.
    let broken =
        chunks(&photo[..50_000], 10_000).chain(futures::stream::iter([Err(std::io::Error::other("connection reset"))]));
    let e = media.store(&upload("image/jpeg", None, "res.a"), broken).await.unwrap_err();
    assert_eq!(e.to_string(), "cannot read the body: connection reset");

    // A mismatch is refused from the first bytes, without waiting for the rest.
    let png = upload("image/png", None, "res.a");
    let endless = chunks(&photo[..10_000], 10_000).chain(futures::stream::pending());
    let early = tokio::time::timeout(Duration::from_secs(10), media.store(&png, endless)).await;
    assert!(matches!(early, Ok(Err(MediaError::Unsupported(_)))), "{early:?}");

    // A request dropped half-way (the client went away) leaves nothing either.
    let jpeg_upload = upload("image/jpeg", None, "res.a");
    let stalled = chunks(&photo[..20_000], 5000).chain(futures::stream::pending());
    let cancelled = tokio::time::timeout(Duration::from_millis(200), media.store(&jpeg_upload, stalled)).await;
    assert!(cancelled.is_err(), "the stalled upload should still be waiting");

    assert_eq!(files(media.dir()), Vec::<PathBuf>::new());
    assert_eq!((rows(&f.db, "media").await, rows(&f.db, "media_uploads").await), (0, 0));

    // At exactly the limit it is accepted.
    let ok = media.store(&upload("image/jpeg", None, "res.a"), chunks(&photo, 8000)).await.unwrap();
    assert_eq!(ok.info().size, limit);
    assert_eq!(files(media.dir()).len(), 1);
});

/// An upload a crash left in the incoming folder is swept at start once it is
/// old; a recent one may belong to another node sharing the folder.
#[tokio::test]
async fn start_sweeps_only_old_unfinished_uploads() {
    let f = common::sqlite().await;
    let (media, _dir) = media(&f, 1024).await;
    let incoming = media.dir().join("tmp");
    let old = incoming.join("crashed.part");
    let recent = incoming.join("in-flight.part");
    std::fs::write(&old, b"half a photo").unwrap();
    std::fs::write(&recent, b"half a photo").unwrap();
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(48 * 3600);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(two_days_ago).unwrap();
    media.prepare().await.unwrap();
    assert_eq!(files(media.dir()), [recent]);
}

/// Each accepted type with content of that type, under its canonical name or an alias.
#[tokio::test]
async fn every_accepted_type_is_recognised_by_its_content() {
    let mut heic = vec![0, 0, 0, 24];
    heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
    let mut opus = b"OggS\x00\x02".to_vec();
    opus.resize(28, 0);
    opus.extend_from_slice(b"OpusHead");
    assert_eq!(yiwang::media::sniff(&content(&opus, 100, 1)), Some("audio/opus"));
    let mut webm = vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01];
    webm.extend_from_slice(b"\x42\x82\x84webm");
    let cases: &[(&str, Vec<u8>, &str, Kind)] = &[
        ("image/jpeg", jpeg(5000, 1), "image/jpeg", Kind::Photo),
        ("IMAGE/PNG", content(PNG, 5000, 2), "image/png", Kind::Photo),
        ("image/webp", content(b"RIFF\x24\x00\x00\x00WEBPVP8 ", 5000, 3), "image/webp", Kind::Photo),
        ("image/heic", content(&heic, 5000, 4), "image/heic", Kind::Photo),
        ("image/heif", content(&heic, 5001, 4), "image/heic", Kind::Photo),
        ("audio/mpeg", content(b"ID3\x04\x00", 5000, 5), "audio/mpeg", Kind::Audio),
        ("audio/x-wav", content(b"RIFF\x24\x00\x00\x00WAVEfmt ", 5000, 6), "audio/wav", Kind::Audio),
        ("audio/aac", content(&[0xFF, 0xF1, 0x50, 0x80], 5000, 7), "audio/aac", Kind::Audio),
        ("audio/amr", content(b"#!AMR\n", 5000, 8), "audio/amr", Kind::Audio),
        ("audio/ogg", content(b"OggS\x00\x02", 5000, 9), "audio/ogg", Kind::Audio),
        ("audio/ogg", content(&opus, 5000, 9), "audio/ogg", Kind::Audio),
        ("video/mp4", content(b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2mp41", 50_000, 10), "video/mp4", Kind::Video),
        ("video/quicktime", content(b"\0\0\0\x14ftypqt  \0\0\x02\0qt  ", 50_000, 11), "video/quicktime", Kind::Video),
        ("video/webm", content(&webm, 50_000, 12), "video/webm", Kind::Video),
        ("application/pdf", content(b"%PDF-1.7\n", 5000, 13), "application/pdf", Kind::Document),
        ("text/plain", "12345 热线工单：路灯不亮。\r\n".repeat(1000).into_bytes(), "text/plain", Kind::Document),
    ];
    let f = common::sqlite().await;
    let (media, _dir) = media(&f, 1024 * 1024).await;
    for (declared, bytes, stored_as, kind) in cases {
        assert!(yiwang::media::sniff(&bytes[..bytes.len().min(8192)]).is_some(), "{declared}: nothing detected");
        match media.store(&upload(declared, None, "staff"), chunks(bytes, 3000)).await {
            Ok(s) => {
                let info = s.info();
                assert_eq!((info.content_type.as_str(), info.kind), (*stored_as, *kind), "{declared}");
                assert_eq!(info.sha256, sha256(bytes), "{declared}");
            }
            Err(e) => panic!("{declared}: {e}"),
        }
    }
    // Text cut at the sniffing boundary inside a character is still text;
    // bytes that are not UTF-8 are not.
    let text = "路".repeat(4000);
    assert_eq!(yiwang::media::sniff(&text.as_bytes()[..8192]), Some("text/plain"));
    assert_eq!(yiwang::media::sniff(&text.as_bytes()[..8191]), None);
    assert_eq!(yiwang::media::sniff(b"abc\0def"), None);
    let e = media.store(&upload("text/plain", None, "staff"), chunks(b"\xC0\xAFabc", 10)).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "declared content type `text/plain` does not match the content, which is of no accepted type"
    );
}

/// A case to hold evidence.
async fn open_case(f: &Fixture) -> String {
    let cases = Cases::new(f.db.clone(), f.clock.clone(), Arc::new(MemoryBus::default()), Arc::new(yiwang::space::Space::new(f.db.clone())), Arc::new(yiwang::audit::Audit::new(f.db.clone(), f.clock.clone())));
    let draft = CaseDraft {
        category_code: "010101".into(),
        title: "井盖缺失".into(),
        description: "中山路与北京路交叉口东南角井盖缺失".into(),
        location: None,
        channel: Channel::Department,
        evidence: Vec::new(),
    };
    cases.open(&draft, "user:res.a").await.unwrap()
}

storage_test!(cases_hold_media_as_evidence, async |f: Fixture| {
    let (media, _dir) = media(&f, 1024 * 1024).await;
    let case = open_case(&f).await;
    let other_case = open_case(&f).await;
    let photo = media.store(&upload("image/jpeg", Some("现场.jpg"), "res.a"), chunks(&jpeg(20_000, 1), 4096)).await;
    let photo = photo.unwrap().info().clone();
    let clip = content(b"#!AMR\n", 9000, 2);
    let voice = media.store(&upload("audio/amr", None, "grid.1"), chunks(&clip, 4096)).await.unwrap().info().clone();

    assert_eq!(media.evidence(&case).await.unwrap(), []);
    let Linked::Added(first) = media.add_evidence(&case, &photo.sha256, "handler.1", "现场照片").await.unwrap()
    else {
        panic!("not added")
    };
    assert_eq!(
        (first.case_id.as_str(), first.note.as_str(), first.added_by.as_str(), first.added_at),
        (case.as_str(), "现场照片", "handler.1", T0)
    );
    assert_eq!(first.media, photo);
    f.clock.advance(1000);
    let linked = media.add_evidence(&case, &voice.sha256, "handler.1", "").await.unwrap();
    assert!(matches!(linked, Linked::Added(_)), "{linked:?}");
    // The same link again changes nothing; another note for it is a conflict.
    f.clock.advance(1000);
    let again = media.add_evidence(&case, &photo.sha256, "handler.2", "现场照片").await.unwrap();
    assert_eq!(again, Linked::Existing(first.clone()));
    let e = media.add_evidence(&case, &photo.sha256, "handler.2", "另一个说明").await.unwrap_err();
    assert!(matches!(e, MediaError::Conflict(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("media `{}` is already evidence of case `{case}`, with another note", photo.sha256)
    );

    let listed = media.evidence(&case).await.unwrap();
    let shas: Vec<&str> = listed.iter().map(|e| e.sha256.as_str()).collect();
    assert_eq!(shas, [photo.sha256.as_str(), voice.sha256.as_str()], "in the order added");
    assert_eq!(listed[0], first);
    assert_eq!((listed[1].media.kind, listed[1].added_at), (Kind::Audio, T0 + 1000));
    // The same blob may be evidence of another case.
    media.add_evidence(&other_case, &photo.sha256, "handler.1", "同一照片").await.unwrap();
    assert_eq!(media.evidence(&other_case).await.unwrap().len(), 1);

    // Unknown cases and blobs, malformed digests and notes are refused, named.
    let unknown = sha256(b"not stored");
    let e = media.add_evidence("no-such-case", &photo.sha256, "handler.1", "").await.unwrap_err();
    assert!(matches!(&e, MediaError::NotFound(m) if m == "no case `no-such-case`"), "{e:?}");
    let e = media.add_evidence(&case, &unknown, "handler.1", "").await.unwrap_err();
    assert!(matches!(&e, MediaError::NotFound(m) if *m == format!("no media `{unknown}`")), "{e:?}");
    let e = media.add_evidence(&case, "abc", "handler.1", "").await.unwrap_err();
    assert!(matches!(&e, MediaError::Invalid(m) if m.starts_with("`abc` is not a sha256 digest")), "{e:?}");
    let e = media.add_evidence(&case, &voice.sha256, "handler.1", &"长".repeat(2001)).await.unwrap_err();
    assert!(matches!(&e, MediaError::Invalid(m) if m == "note is longer than 2000 characters"), "{e:?}");
    let e = media.evidence("no-such-case").await.unwrap_err();
    assert!(matches!(&e, MediaError::NotFound(_)), "{e:?}");
    assert_eq!(rows(&f.db, "case_evidence").await, 3);

    // The database refuses evidence without its blob even past the service.
    let orphan = sqlx::query(
        "INSERT INTO case_evidence (case_id, sha256, added_by, added_at, note) VALUES ($1, $2, 'x', 0, '')",
    )
    .bind(&case)
    .bind(&unknown)
    .execute(f.db.pool())
    .await;
    assert!(orphan.is_err(), "a link to a missing blob must break the foreign key");
});

/// The HTTP surface against a real host (SQLite, port 0).
mod http {
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use yiwang::app::{App, Options};
    use yiwang::identity::{AccountKind, NewUser, Role};
    use yiwang::services::Services;

    use super::*;

    /// The size limit of the test host.
    const LIMIT: usize = 64 * 1024;
    const PASSWORD: &str = "测试-password";

    struct Host {
        addr: String,
        services: Arc<Services>,
        media_dir: PathBuf,
        _dir: tempfile::TempDir,
        _shutdown: tokio::sync::oneshot::Sender<()>,
    }

    /// An answer: status, head (lowercased), body bytes.
    struct Answer {
        status: u16,
        head: String,
        body: Vec<u8>,
    }

    impl Answer {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
        }

        fn message(&self) -> String {
            let v = self.json();
            v["error"]["message"].as_str().unwrap_or_else(|| panic!("no error message in {v}")).to_owned()
        }

        fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")))
        }
    }

    /// How a request body is sent.
    enum Framing {
        Length,
        Chunked,
    }

    async fn start() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let mut options = Options::new(dir.path().join("data"));
        options.install_bundled = false;
        options.media_max_bytes = LIMIT as u64;
        let media_dir = options.data_dir.join("media");
        let app = App::build(options, None).await.unwrap();
        let services = app.state.services.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.serve(listener, async move {
            let _ = rx.await;
        }));
        Host { addr, services, media_dir, _dir: dir, _shutdown: tx }
    }

    impl Host {
        /// Create a user and log them in; returns the token.
        async fn user(&self, id: &str, kind: AccountKind, roles: &[Role]) -> String {
            let now = self.services.clock.now_ms();
            let department = (kind == AccountKind::Staff).then(|| "chengguan".to_owned());
            let user = NewUser {
                id: id.into(),
                username: id.into(),
                display_name: format!("用户 {id}"),
                password: PASSWORD.into(),
                department,
                org_unit: "320100".into(),
                kind,
                roles: roles.iter().map(|r| (*r, "320100".to_owned())).collect(),
            };
            self.services.identity.create_user(&user, now).await.unwrap();
            self.services.identity.login(id, PASSWORD, now).await.unwrap().0.token
        }

        /// One request over a fresh connection. The body is written while the
        /// answer is read, so a refusal before the whole body is sent arrives.
        async fn send(
            &self,
            method: &str,
            path: &str,
            token: Option<&str>,
            content_type: Option<&str>,
            body: &[u8],
            framing: Framing,
        ) -> Answer {
            let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
            if let Some(t) = token {
                head.push_str(&format!("Authorization: Bearer {t}\r\n"));
            }
            if let Some(c) = content_type {
                head.push_str(&format!("Content-Type: {c}\r\n"));
            }
            let mut out = Vec::new();
            match framing {
                Framing::Length => {
                    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                    out.extend_from_slice(head.as_bytes());
                    out.extend_from_slice(body);
                }
                Framing::Chunked => {
                    head.push_str("Transfer-Encoding: chunked\r\n\r\n");
                    out.extend_from_slice(head.as_bytes());
                    for c in body.chunks(4096) {
                        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                        out.extend_from_slice(c);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                }
            }
            let stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
            let (mut rd, mut wr) = stream.into_split();
            // The write half stays open until the answer is read.
            let writer = tokio::spawn(async move {
                let _ = wr.write_all(&out).await;
                wr
            });
            let mut raw = Vec::new();
            rd.read_to_end(&mut raw).await.unwrap();
            drop(writer.await.unwrap());
            let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP head");
            let head = String::from_utf8(raw[..split].to_vec()).unwrap().to_ascii_lowercase();
            let mut body = raw[split + 4..].to_vec();
            if head.contains("transfer-encoding: chunked") {
                body = dechunk(&body);
            }
            let status = head.split(' ').nth(1).unwrap().parse().unwrap();
            Answer { status, head, body }
        }

        async fn upload(&self, token: &str, path: &str, content_type: &str, body: &[u8]) -> Answer {
            self.send("POST", path, Some(token), Some(content_type), body, Framing::Length).await
        }

        async fn get(&self, path: &str, token: &str) -> Answer {
            self.send("GET", path, Some(token), None, b"", Framing::Length).await
        }

        async fn post_json(&self, path: &str, token: &str, body: Value) -> Answer {
            let body = body.to_string();
            self.send("POST", path, Some(token), Some("application/json"), body.as_bytes(), Framing::Length).await
        }
    }

    fn dechunk(mut body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line = body.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&body[..line]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                return out;
            }
            let rest = &body[line + 2..];
            out.extend_from_slice(&rest[..size]);
            body = &rest[size + 2..];
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upload_download_and_who_may_read() {
        let host = start().await;
        let handler = host.user("cg.handler", AccountKind::Staff, &[Role::Handler]).await;
        let res_a = host.user("res.a", AccountKind::Resident, &[Role::Resident]).await;
        let res_b = host.user("res.b", AccountKind::Resident, &[Role::Resident]).await;
        let photo = jpeg(40_000, 5);
        let sha = sha256(&photo);

        // Without a token: 401, for upload and download alike.
        let a = host.send("POST", "/api/media", None, Some("image/jpeg"), &photo, Framing::Length).await;
        assert_eq!(a.status, 401);
        assert_eq!(host.send("GET", &format!("/api/media/{sha}"), None, None, b"", Framing::Length).await.status, 401);
        assert_eq!(host.get(&format!("/api/media/{sha}"), "yw_not-a-token").await.status, 401);

        // A resident's snapshot photo.
        let a = host.upload(&res_a, "/api/media?filename=%E4%BA%95%E7%9B%96.jpg", "image/jpeg", &photo).await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(a.header("location"), Some(format!("/api/media/{sha}").as_str()));
        let meta = a.json();
        assert_eq!(
            meta,
            json!({
                "sha256": sha, "size": 40_000, "content_type": "image/jpeg", "kind": "photo",
                "filename": "井盖.jpg", "uploaded_by": "res.a", "created": meta["created"],
            })
        );

        // The uploader and staff read it back, bytes and type intact.
        for token in [&res_a, &handler] {
            let a = host.get(&format!("/api/media/{sha}"), token).await;
            assert_eq!(a.status, 200);
            assert_eq!(sha256(&a.body), sha);
            assert_eq!(a.body, photo);
            assert_eq!(a.header("content-type"), Some("image/jpeg"));
            assert_eq!(a.header("content-length"), Some("40000"));
            assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
            let m = host.get(&format!("/api/media/{sha}/meta"), token).await;
            assert_eq!((m.status, m.json()), (200, meta.clone()));
        }

        // Another resident may not, and the refusal is audited.
        let a = host.get(&format!("/api/media/{sha}"), &res_b).await;
        assert_eq!(a.status, 403);
        assert_eq!(a.message(), "media are readable by their uploaders, and by staff within the area of a case that holds them");
        assert_eq!(host.get(&format!("/api/media/{sha}/meta"), &res_b).await.status, 403);
        // The same refusal again within a minute is counted, not recorded again.
        let refused = host.services.audit.find(Some("user:res.b"), Some("media.read"), 10).await.unwrap();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused.iter().all(|r| r.outcome == "denied" && r.subject == sha), "{refused:?}");

        // Uploading the same bytes stores nothing new and answers 200 with the
        // stored metadata (without naming the first uploader to another
        // resident); after that the second resident may read them too.
        let a = host.upload(&res_b, "/api/media?filename=copy.jpg", "image/jpeg", &photo).await;
        assert_eq!(a.status, 200);
        let mut seen = meta.clone();
        seen["uploaded_by"] = Value::Null;
        assert_eq!(a.json(), seen);
        assert_eq!(host.get(&format!("/api/media/{sha}"), &res_b).await.body, photo);
        assert_eq!(files(&host.media_dir), [host.media_dir.join(&sha[..2]).join(&sha)]);

        // Unknown and malformed digests.
        let unknown = sha256(b"never uploaded");
        let a = host.get(&format!("/api/media/{unknown}"), &handler).await;
        assert_eq!((a.status, a.message()), (404, format!("no media `{unknown}`")));
        assert_eq!(host.get(&format!("/api/media/{unknown}/meta"), &handler).await.status, 404);
        // A resident learns nothing about digests they did not upload.
        assert_eq!(host.get(&format!("/api/media/{unknown}"), &res_a).await.status, 403);
        for bad in ["abc", &sha.to_uppercase(), &format!("{sha}0"), "..%2F..%2Fyiwang.db"] {
            let a = host.get(&format!("/api/media/{bad}"), &handler).await;
            assert_eq!(a.status, 400, "{bad}");
            assert!(a.message().contains("is not a sha256 digest"), "{}", a.message());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_uploads_name_the_problem_and_store_nothing() {
        let host = start().await;
        let res = host.user("res.a", AccountKind::Resident, &[Role::Resident]).await;
        let photo = jpeg(LIMIT, 9);
        let mut big = photo.clone();
        big.push(0);

        // Past the limit: refused from the declared length before reading, and
        // while streaming when no length is declared.
        let a = host.upload(&res, "/api/media", "image/jpeg", &big).await;
        assert_eq!(a.status, 413);
        assert_eq!(a.json()["error"]["code"], "payload-too-large");
        assert_eq!(a.message(), "the upload is larger than the limit of 65536 bytes; nothing was stored");
        let a = host.send("POST", "/api/media", Some(&res), Some("image/jpeg"), &big, Framing::Chunked).await;
        assert_eq!(
            (a.status, a.message()),
            (413, "the upload is larger than the limit of 65536 bytes; nothing was stored".into())
        );

        // Types: mismatched, not accepted, missing.
        let a = host.upload(&res, "/api/media", "image/png", &photo).await;
        assert_eq!(a.status, 415);
        assert_eq!(a.json()["error"]["code"], "unsupported-media-type");
        assert_eq!(a.message(), "declared content type `image/png` does not match the content, which is `image/jpeg`");
        let a = host.send("POST", "/api/media", Some(&res), Some("video/mp4"), &photo, Framing::Chunked).await;
        assert_eq!(a.status, 415);
        assert!(a.message().contains("`video/mp4`") && a.message().contains("`image/jpeg`"), "{}", a.message());
        let a = host.upload(&res, "/api/media", "image/svg+xml", b"<svg/>").await;
        assert_eq!(a.status, 415);
        assert!(a.message().starts_with("content type `image/svg+xml` is not accepted; accepted: "), "{}", a.message());
        let a = host.send("POST", "/api/media", Some(&res), None, &photo, Framing::Length).await;
        assert_eq!((a.status, a.message()), (415, "a `Content-Type` header naming the file's type is required".into()));

        // Malformed uploads.
        let a = host.upload(&res, "/api/media", "image/jpeg", b"").await;
        assert_eq!((a.status, a.message()), (422, "the body is empty; send the file's bytes".into()));
        let a = host.upload(&res, "/api/media?filename=a%2Fb.jpg", "image/jpeg", &photo).await;
        assert_eq!((a.status, a.message()), (422, "filename must be a bare file name, without `/` or `\\`".into()));
        let a = host.upload(&res, "/api/media?name=a.jpg", "image/jpeg", &photo).await;
        assert_eq!(a.status, 400);
        assert!(a.message().contains("name"), "{}", a.message());

        // Nothing of any of them is on disk or in the database.
        assert_eq!(files(&host.media_dir), Vec::<PathBuf>::new());
        assert_eq!(rows(&host.services.db, "media").await, 0);

        // Exactly at the limit, streamed: accepted.
        let a = host.send("POST", "/api/media", Some(&res), Some("image/jpeg"), &photo, Framing::Chunked).await;
        assert_eq!(a.status, 201);
        assert_eq!(a.json()["size"], LIMIT);
        assert_eq!(files(&host.media_dir).len(), 1);
        assert_eq!(rows(&host.services.db, "media").await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn staff_link_evidence_to_cases() {
        let host = start().await;
        let handler = host.user("cg.handler", AccountKind::Staff, &[Role::Handler]).await;
        let res = host.user("res.a", AccountKind::Resident, &[Role::Resident]).await;
        let draft = CaseDraft {
            category_code: "010101".into(),
            title: "井盖缺失".into(),
            description: "随手拍：中山路井盖缺失".into(),
            location: None,
            channel: Channel::Department,
            evidence: Vec::new(),
        };
        let case = host.services.cases.open(&draft, "user:res.a").await.unwrap();
        let photo = jpeg(30_000, 3);
        let sha = sha256(&photo);
        assert_eq!(host.upload(&res, "/api/media?filename=photo.jpg", "image/jpeg", &photo).await.status, 201);
        let path = format!("/api/cases/{case}/evidence");

        let a = host.post_json(&path, &handler, json!({ "sha256": sha, "note": "市民随手拍现场照片" })).await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
        let linked = a.json();
        assert_eq!(
            (&linked["case_id"], &linked["sha256"], &linked["note"], &linked["added_by"]),
            (&json!(case), &json!(sha), &json!("市民随手拍现场照片"), &json!("cg.handler"))
        );
        assert_eq!(linked["media"]["filename"], "photo.jpg");
        let added = host.services.audit.find(Some("user:cg.handler"), Some("case.evidence.add"), 10).await.unwrap();
        assert_eq!((added.len(), added[0].outcome.as_str()), (1, "ok"));
        // Again with the same note: 200, nothing changes; another note: 409.
        let a = host.post_json(&path, &handler, json!({ "sha256": sha, "note": "市民随手拍现场照片" })).await;
        assert_eq!((a.status, a.json()), (200, linked.clone()));
        let a = host.post_json(&path, &handler, json!({ "sha256": sha, "note": "改" })).await;
        assert_eq!(a.status, 409);

        let a = host.get(&path, &handler).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json(), json!({ "case": case, "evidence": [linked] }));

        // Residents neither link nor list; refusals are audited.
        let a = host.post_json(&path, &res, json!({ "sha256": sha })).await;
        assert_eq!((a.status, a.message()), (403, "case.evidence.add is open to staff accounts only".into()));
        assert_eq!(host.get(&path, &res).await.status, 403);
        let refused = host.services.audit.find(Some("user:res.a"), None, 10).await.unwrap();
        assert_eq!(refused.iter().filter(|r| r.outcome == "denied").count(), 2, "{refused:?}");

        // The case and the blob must exist; the body must be well-formed.
        let unknown = sha256(b"never uploaded");
        let a = host.post_json("/api/cases/nope/evidence", &handler, json!({ "sha256": sha })).await;
        assert_eq!((a.status, a.message()), (404, "no case `nope`".into()));
        assert_eq!(host.get("/api/cases/nope/evidence", &handler).await.status, 404);
        let a = host.post_json(&path, &handler, json!({ "sha256": unknown })).await;
        assert_eq!((a.status, a.message()), (404, format!("no media `{unknown}`")));
        let a = host.post_json(&path, &handler, json!({ "sha256": "abc" })).await;
        assert_eq!(a.status, 422);
        let a = host.post_json(&path, &handler, json!({ "note": "没有照片" })).await;
        assert_eq!(a.status, 400);
        assert!(a.message().contains("sha256"), "{}", a.message());
        assert_eq!(rows(&host.services.db, "case_evidence").await, 1);
    }
}
