//! Unstructured media (非结构化数据): photos, audio, video clips and documents
//! in a content-addressed blob store, and the cases that hold them as evidence.
//!
//! A blob is the file `<dir>/<first two hex digits>/<sha256>`. An upload streams
//! into a temporary file under `<dir>/tmp` while it is hashed, counted against
//! the size limit and its first bytes sniffed for their type; the file is
//! fsynced and renamed into place, and only then is its row inserted. So a row
//! never lacks its blob, a refused or interrupted upload leaves no file behind,
//! and the same bytes uploaded again are stored once: the rename replaces a file
//! with identical content and the insert does nothing when the row exists.
//!
//! Blobs are never deleted, so a row, once committed, keeps its file.


use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clock::SharedClock;
use crate::db::Db;
use crate::error::ServiceError;

/// The largest upload unless configured otherwise: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// How many leading bytes are sniffed for the content type. Every signature
/// the store accepts lies well inside them.
const SNIFF_BYTES: usize = 8 * 1024;

/// The longest file name and evidence note, in characters.
const MAX_FILENAME_CHARS: usize = 255;
const MAX_NOTE_CHARS: usize = 2000;

/// A temporary upload file untouched for this long was left by a crash. The
/// margin is wide because with several nodes the folder is shared, and a slow
/// upload on another node must not be swept away.
const STALE_UPLOAD: Duration = Duration::from_secs(24 * 3600);

/// The folder of unfinished uploads, inside the media folder so that the
/// final rename never crosses file systems.
const INCOMING: &str = "tmp";

/// Where the store lives and how large an upload may be.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// The blob folder, `<data-dir>/media` by default.
    pub dir: PathBuf,
    /// The largest upload in bytes.
    pub max_bytes: u64,
}

impl MediaSettings {
    /// The store in `dir` with the default size limit.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        MediaSettings { dir: dir.into(), max_bytes: DEFAULT_MAX_BYTES }
    }
}

/// Why a media call failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The input is malformed; the text names what.
    #[error("{0}")]
    Invalid(String),
    /// The request body could not be read (the client went away, bad framing).
    #[error("cannot read the body: {0}")]
    Body(String),
    /// The named case or blob does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The upload passed the size limit; nothing was stored.
    #[error("the upload is larger than the limit of {limit} bytes; nothing was stored")]
    TooLarge { limit: u64 },
    /// The declared content type is not accepted or does not match the content.
    #[error("{0}")]
    Unsupported(String),
    /// The file system or the database failed.
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

impl From<sqlx::Error> for MediaError {
    fn from(e: sqlx::Error) -> Self {
        MediaError::Storage(e.into())
    }
}

impl From<MediaError> for ServiceError {
    /// For callers that are not HTTP (plugins): the body and size cases are
    /// the input's fault like any other invalid input.
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::NotFound(m) => ServiceError::NotFound(m),
            MediaError::Conflict(m) => ServiceError::Conflict(m),
            MediaError::Storage(e) => ServiceError::Storage(e),
            e @ (MediaError::Invalid(_) | MediaError::Body(_) | MediaError::TooLarge { .. } | MediaError::Unsupported(_)) => {
                ServiceError::Invalid(e.to_string())
            }
        }
    }
}

impl From<std::io::Error> for MediaError {
    fn from(e: std::io::Error) -> Self {
        MediaError::Storage(e.into())
    }
}

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Photo,
    Audio,
    Video,
    Document,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Photo => "photo",
            Kind::Audio => "audio",
            Kind::Video => "video",
            Kind::Document => "document",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        [Kind::Photo, Kind::Audio, Kind::Video, Kind::Document].into_iter().find(|k| k.name() == text)
    }
}

/// A content type the store accepts.
#[derive(Debug)]
pub struct MediaType {
    /// The canonical name, stored and served.
    pub name: &'static str,
    /// Other names clients send for the same type.
    aliases: &'static [&'static str],
    pub kind: Kind,
    /// The names `infer` gives content of this type; empty for plain text,
    /// which has no signature and is checked as UTF-8 instead.
    detected: &'static [&'static str],
}

impl MediaType {
    /// Plain text: no signature, checked as UTF-8.
    fn is_text(&self) -> bool {
        self.detected.is_empty()
    }
}

const fn media_type(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    detected: &'static [&'static str],
) -> MediaType {
    MediaType { name, aliases, kind, detected }
}

/// Every accepted type. HEIC is what phones shoot; Ogg Opus is sniffed as
/// `audio/opus` but is an Ogg stream; an `M4V` brand is MP4.
pub const TYPES: &[MediaType] = &[
    media_type("image/jpeg", &["image/jpg", "image/pjpeg"], Kind::Photo, &["image/jpeg"]),
    media_type("image/png", &[], Kind::Photo, &["image/png"]),
    media_type("image/webp", &[], Kind::Photo, &["image/webp"]),
    media_type("image/heic", &["image/heif"], Kind::Photo, &["image/heif"]),
    media_type("audio/mpeg", &["audio/mp3"], Kind::Audio, &["audio/mpeg"]),
    media_type("audio/wav", &["audio/x-wav", "audio/wave", "audio/vnd.wave"], Kind::Audio, &["audio/x-wav"]),
    media_type("audio/aac", &["audio/x-aac"], Kind::Audio, &["audio/aac"]),
    media_type("audio/amr", &[], Kind::Audio, &["audio/amr"]),
    media_type("audio/ogg", &[], Kind::Audio, &["audio/ogg", "audio/opus"]),
    media_type("video/mp4", &[], Kind::Video, &["video/mp4", "video/x-m4v"]),
    media_type("video/quicktime", &[], Kind::Video, &["video/quicktime"]),
    media_type("video/webm", &[], Kind::Video, &["video/webm"]),
    media_type("application/pdf", &[], Kind::Document, &["application/pdf"]),
    media_type("text/plain", &[], Kind::Document, &[]),
];

/// The accepted type a declared `Content-Type` names (parameters aside, case
/// ignored), or why it is refused. Plain text must be UTF-8.
pub fn accepted_type(declared: &str) -> Result<&'static MediaType, MediaError> {
    let mut parts = declared.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let Some(t) = TYPES.iter().find(|t| t.name == essence || t.aliases.contains(&essence.as_str())) else {
        let names: Vec<&str> = TYPES.iter().map(|t| t.name).collect();
        return Err(MediaError::Unsupported(format!(
            "content type `{}` is not accepted; accepted: {}",
            declared.trim(),
            names.join(", ")
        )));
    };
    if t.is_text() {
        for param in parts {
            if let Some((key, value)) = param.split_once('=')
                && key.trim().eq_ignore_ascii_case("charset")
            {
                let charset = value.trim().trim_matches('"');
                if !["utf-8", "utf8", "us-ascii"].iter().any(|c| charset.eq_ignore_ascii_case(c)) {
                    return Err(MediaError::Unsupported(format!(
                        "plain text must be UTF-8; charset `{charset}` is not accepted"
                    )));
                }
            }
        }
    }
    Ok(t)
}

/// What the first bytes of some content are, as a MIME type: `infer`'s
/// answer, or `text/plain` for UTF-8 without NUL bytes, or `None`. `head` may
/// end inside a UTF-8 sequence when it is a prefix of longer content.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if let Some(t) = infer::get(head) {
        return Some(t.mime_type());
    }
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        // Cut short at the end, not broken.
        Err(e) => e.error_len().is_none() && head.len() == SNIFF_BYTES,
    };
    (text && !head.contains(&0)).then_some("text/plain")
}

/// Refuse content whose first bytes are not of the declared type.
fn check_content(declared: &MediaType, given: &str, head: &[u8]) -> Result<(), MediaError> {
    let detected = sniff(head);
    let matches = match detected {
        Some("text/plain") => declared.is_text(),
        Some(d) => declared.detected.contains(&d),
        None => false,
    };
    if matches {
        return Ok(());
    }
    let given = given.split(';').next().unwrap_or_default().trim();
    Err(MediaError::Unsupported(match detected {
        Some(d) => format!("declared content type `{given}` does not match the content, which is `{d}`"),
        None => format!("declared content type `{given}` does not match the content, which is of no accepted type"),
    }))
}

/// Whether `s` is a sha256 digest as the store names blobs: 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_sha256(s: &str) -> Result<(), MediaError> {
    if is_sha256(s) {
        Ok(())
    } else {
        Err(MediaError::Invalid(format!("`{s}` is not a sha256 digest (64 lowercase hex digits)")))
    }
}

/// A file name as metadata: up to 255 characters, no folders, no control
/// characters. It is never used as a path.
fn check_filename(name: &str) -> Result<(), MediaError> {
    let why = if name.trim().is_empty() {
        "must not be blank"
    } else if name.chars().count() > MAX_FILENAME_CHARS {
        "is longer than 255 characters"
    } else if name.contains(['/', '\\']) {
        "must be a bare file name, without `/` or `\\`"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(MediaError::Invalid(format!("filename {why}")))
}

/// A blob's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MediaInfo {
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    pub kind: Kind,
    pub filename: Option<String>,
    /// The first uploader's user id; `null` to a resident who is not that uploader.
    #[schema(value_type = Option<String>)]
    pub uploaded_by: String,
    pub created: i64,
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// The bytes are new.
    Created(MediaInfo),
    /// The same bytes were stored before; their metadata is unchanged.
    Existing(MediaInfo),
}

impl Stored {
    pub fn info(&self) -> &MediaInfo {
        match self {
            Stored::Created(i) | Stored::Existing(i) => i,
        }
    }
}

/// An upload's declared facts.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The `Content-Type` as declared.
    pub content_type: &'a str,
    pub filename: Option<&'a str>,
    /// The uploader's user id.
    pub uploaded_by: &'a str,
}

/// A blob held by a case as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    pub case_id: String,
    pub sha256: String,
    pub note: String,
    pub added_by: String,
    pub added_at: i64,
    pub media: MediaInfo,
}

/// What linking evidence did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linked {
    Added(Evidence),
    /// The case already held the blob with the same note.
    Existing(Evidence),
}

/// An upload being written: removed when dropped unless it was renamed into
/// place, so an error or a cancelled request leaves no file.
struct PartFile {
    path: PathBuf,
    file: tokio::fs::File,
    kept: bool,
}

impl PartFile {
    async fn create(dir: &Path) -> std::io::Result<PartFile> {
        tokio::fs::create_dir_all(dir).await?;
        let path = dir.join(format!("{}.part", crate::error::new_id()));
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
        Ok(PartFile { path, file, kept: false })
    }

    /// Make the content durable and move it to `dest` atomically.
    async fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        tokio::fs::rename(&self.path, dest).await?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.kept {
            // Unlinking an open file is fine on Unix; a write still in flight
            // lands in the unlinked file.
            if let Err(e) = std::fs::remove_file(&self.path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %self.path.display(), "cannot remove an unfinished upload: {e}");
            }
        }
    }
}

/// Make a folder's entries (a new file name, a rename) durable.
async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    tokio::fs::File::open(dir).await?.sync_all().await?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The media service.
pub struct Media {
    db: Db,
    clock: SharedClock,
    dir: PathBuf,
    max_bytes: u64,
}

impl Media {
    pub fn new(db: Db, clock: SharedClock, settings: MediaSettings) -> Self {
        Media { db, clock, dir: settings.dir, max_bytes: settings.max_bytes }
    }

    /// The blob folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The largest upload in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where the blob `sha256` lives.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2]).join(sha256)
    }

    /// Create the folders and remove uploads a crash left unfinished; run at start.
    pub async fn prepare(&self) -> std::io::Result<()> {
        let incoming = self.dir.join(INCOMING);
        tokio::fs::create_dir_all(&incoming).await?;
        let mut entries = tokio::fs::read_dir(&incoming).await?;
        while let Some(entry) = entries.next_entry().await? {
            let stale = entry
                .metadata()
                .await?
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > STALE_UPLOAD);
            if stale {
                tracing::info!(path = %entry.path().display(), "removing an unfinished upload");
                tokio::fs::remove_file(entry.path()).await?;
            }
        }
        Ok(())
    }

    /// Store `body` as a blob: refused with nothing written when the declared
    /// type is not accepted or does not match the content, when the body is
    /// empty, or when it passes the size limit. Returns whether the bytes were
    /// new, with their metadata.
    pub async fn store<S, E>(&self, upload: &Upload<'_>, body: S) -> Result<Stored, MediaError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let declared = accepted_type(upload.content_type)?;
        if let Some(name) = upload.filename {
            check_filename(name)?;
        }
        let mut part = PartFile::create(&self.dir.join(INCOMING)).await?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        let mut sniffed = false;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| MediaError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > self.max_bytes {
                return Err(MediaError::TooLarge { limit: self.max_bytes });
            }
            if !sniffed {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                // Refuse a mismatch before receiving the rest.
                if head.len() == SNIFF_BYTES {
                    check_content(declared, upload.content_type, &head)?;
                    sniffed = true;
                }
            }
            hasher.update(&chunk);
            part.file.write_all(&chunk).await?;
        }
        if size == 0 {
            return Err(MediaError::Invalid("the body is empty; send the file's bytes".into()));
        }
        if !sniffed {
            check_content(declared, upload.content_type, &head)?;
        }

        let sha256 = hex::encode(hasher.finalize());
        let folder = self.dir.join(&sha256[..2]);
        if !tokio::fs::try_exists(&folder).await? {
            tokio::fs::create_dir_all(&folder).await?;
            sync_dir(&self.dir).await?;
        }
        part.persist(&self.blob_path(&sha256)).await?;
        sync_dir(&folder).await?;

        // The blob is durable; now the row, once.
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO media (sha256, size, content_type, kind, filename, uploaded_by, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&sha256)
        .bind(size as i64)
        .bind(declared.name)
        .bind(declared.kind.name())
        .bind(upload.filename)
        .bind(upload.uploaded_by)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        sqlx::query(
            "INSERT INTO media_uploads (sha256, user_id, at) VALUES ($1, $2, $3) \
             ON CONFLICT (sha256, user_id) DO NOTHING",
        )
        .bind(&sha256)
        .bind(upload.uploaded_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let info = fetch_info(&mut tx, &sha256).await?.ok_or_else(|| anyhow::anyhow!("media row {sha256} vanished"))?;
        tx.commit().await?;
        Ok(if inserted { Stored::Created(info) } else { Stored::Existing(info) })
    }

    /// A blob's metadata, if it is stored.
    pub async fn info(&self, sha256: &str) -> Result<Option<MediaInfo>, MediaError> {
        check_sha256(sha256)?;
        let mut conn = self.db.pool().acquire().await?;
        fetch_info(&mut conn, sha256).await
    }

    /// Whether `user_id` uploaded the blob (first or again).
    pub async fn is_uploader(&self, sha256: &str, user_id: &str) -> Result<bool, MediaError> {
        let row = sqlx::query("SELECT 1 FROM media_uploads WHERE sha256 = $1 AND user_id = $2")
            .bind(sha256)
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.is_some())
    }

    /// A stored blob's bytes, as a stream of chunks.
    pub async fn read(
        &self,
        info: &MediaInfo,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + use<>, MediaError> {
        let path = self.blob_path(&info.sha256);
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            // A row without its file: the store was damaged or, with several
            // nodes, the folder is not the shared one.
            anyhow::anyhow!("blob {} has a row but its file {} cannot be opened: {e}", info.sha256, path.display())
        })?;
        Ok(futures::stream::try_unfold(file, |mut file| async move {
            let mut buf = vec![0; 64 * 1024];
            let n = file.read(&mut buf).await?;
            buf.truncate(n);
            Ok((n > 0).then(|| (Bytes::from(buf), file)))
        }))
    }

    /// Make the blob `sha256` evidence of a case, with a note (which may be
    /// empty). Linking it again with the same note changes nothing; with
    /// another note it is a conflict.
    pub async fn add_evidence(
        &self,
        case_id: &str,
        sha256: &str,
        added_by: &str,
        note: &str,
    ) -> Result<Linked, MediaError> {
        check_sha256(sha256)?;
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(MediaError::Invalid(format!("note is longer than {MAX_NOTE_CHARS} characters")));
        }
        // The link is one statement, so it needs no transaction: a transaction
        // that reads before it writes can fail at once on SQLite when another
        // connection writes in between. The foreign keys still hold it to an
        // existing case and blob; the checks first are for a clear refusal.
        let mut conn = self.db.pool().acquire().await?;
        require_case(&mut conn, case_id).await?;
        if fetch_info(&mut conn, sha256).await?.is_none() {
            return Err(MediaError::NotFound(format!("no media `{sha256}`")));
        }
        let inserted = sqlx::query(
            "INSERT INTO case_evidence (case_id, sha256, added_by, added_at, note) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (case_id, sha256) DO NOTHING",
        )
        .bind(case_id)
        .bind(sha256)
        .bind(added_by)
        .bind(self.clock.now_ms())
        .bind(note)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        let evidence = fetch_evidence(&mut conn, case_id, Some(sha256))
            .await?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("evidence {sha256} of case {case_id} vanished"))?;
        if inserted {
            Ok(Linked::Added(evidence))
        } else if evidence.note == note {
            Ok(Linked::Existing(evidence))
        } else {
            Err(MediaError::Conflict(format!(
                "media `{sha256}` is already evidence of case `{case_id}`, with another note"
            )))
        }
    }

    /// The areas of the cases that hold blob `sha256`, as evidence or as a
    /// report's photo (`None` for a case with no area): whom it may be shown to.
    pub async fn case_areas(&self, sha256: &str) -> Result<Vec<Option<String>>, MediaError> {
        check_sha256(sha256)?;
        let rows = sqlx::query(
            "SELECT c.area FROM case_evidence e JOIN cases c ON c.id = e.case_id WHERE e.sha256 = $1 \
             UNION ALL SELECT c.area FROM reports r JOIN cases c ON c.id = r.case_id WHERE r.evidence LIKE $2",
        )
        .bind(sha256)
        .bind(format!("%\"{sha256}\"%"))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(|r| r.try_get::<Option<String>, _>(0).map_err(MediaError::from)).collect()
    }

    /// The evidence a case holds, in the order it was added.
    pub async fn evidence(&self, case_id: &str) -> Result<Vec<Evidence>, MediaError> {
        let mut conn = self.db.pool().acquire().await?;
        require_case(&mut conn, case_id).await?;
        fetch_evidence(&mut conn, case_id, None).await
    }
}

async fn require_case(conn: &mut sqlx::AnyConnection, case_id: &str) -> Result<(), MediaError> {
    let row = sqlx::query("SELECT 1 FROM cases WHERE id = $1").bind(case_id).fetch_optional(&mut *conn).await?;
    match row {
        Some(_) => Ok(()),
        None => Err(MediaError::NotFound(format!("no case `{case_id}`"))),
    }
}

const INFO_COLUMNS: &str = "m.sha256, m.size, m.content_type, m.kind, m.filename, m.uploaded_by, m.created";

fn info_from_row(row: &sqlx::any::AnyRow) -> Result<MediaInfo, MediaError> {
    let kind: String = row.try_get("kind")?;
    let size: i64 = row.try_get("size")?;
    Ok(MediaInfo {
        sha256: row.try_get("sha256")?,
        size: size as u64,
        content_type: row.try_get("content_type")?,
        kind: Kind::parse(&kind).ok_or_else(|| anyhow::anyhow!("unknown media kind `{kind}` in the database"))?,
        filename: row.try_get("filename")?,
        uploaded_by: row.try_get("uploaded_by")?,
        created: row.try_get("created")?,
    })
}

async fn fetch_info(conn: &mut sqlx::AnyConnection, sha256: &str) -> Result<Option<MediaInfo>, MediaError> {
    let sql = format!("SELECT {INFO_COLUMNS} FROM media m WHERE m.sha256 = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(sha256).fetch_optional(&mut *conn).await?;
    row.as_ref().map(info_from_row).transpose()
}

/// The evidence of a case, or just the link to `sha256`.
async fn fetch_evidence(
    conn: &mut sqlx::AnyConnection,
    case_id: &str,
    sha256: Option<&str>,
) -> Result<Vec<Evidence>, MediaError> {
    let sql = format!(
        "SELECT e.case_id, e.note, e.added_by, e.added_at, {INFO_COLUMNS} \
         FROM case_evidence e JOIN media m ON m.sha256 = e.sha256 \
         WHERE e.case_id = $1 AND ($2 IS NULL OR e.sha256 = $2) \
         ORDER BY e.added_at, e.sha256"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(case_id).bind(sha256).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            let media = info_from_row(row)?;
            Ok(Evidence {
                case_id: row.try_get("case_id")?,
                sha256: media.sha256.clone(),
                note: row.try_get("note")?,
                added_by: row.try_get("added_by")?,
                added_at: row.try_get("added_at")?,
                media,
            })
        })
        .collect()
}
