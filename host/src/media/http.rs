//! Media routes: upload and download of blobs, their metadata, and the
//! evidence a case holds.
//!
//! Who may do what: any signed-in account uploads (residents too: 随手拍
//! reports carry photos); a blob and its metadata are readable by staff
//! accounts and by whoever uploaded those bytes; a case's evidence is linked
//! and listed by staff accounts. A non-staff caller who did not upload a blob
//! is refused whether or not it exists, so a digest reveals nothing.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Evidence, Linked, MediaError, MediaInfo, Stored, Upload, accepted_type, is_sha256};
use crate::api::auth::AuthUser;
use crate::api::{ApiError, AppState, JsonBody};
use crate::audit::Entry;
use crate::identity::Principal;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/media", post(upload))
        .route("/api/media/{sha256}", get(download))
        .route("/api/media/{sha256}/meta", get(meta))
        .route("/api/cases/{id}/evidence", get(list_evidence).post(add_evidence))
}

fn is_staff(p: &Principal) -> bool {
    p.kind == "staff"
}

/// Metadata as a caller sees it: the first uploader is named to staff and to
/// that uploader only, since an identical upload must not reveal who else
/// holds the same file.
fn view(info: &MediaInfo, caller: &Principal) -> Value {
    let mut v = json!(info);
    if !is_staff(caller) && info.uploaded_by != caller.id {
        v["uploaded_by"] = Value::Null;
    }
    v
}

async fn require_staff(state: &AppState, user: &AuthUser, action: &str, subject: &str) -> Result<(), ApiError> {
    if is_staff(&user.principal) {
        return Ok(());
    }
    Err(user.deny(state, action, subject, format!("{action} is open to staff accounts only")).await)
}

/// A blob the caller may read, or why not: 400 for a malformed digest, 403
/// (audited) for a non-staff caller who did not upload it, 404 when unknown.
async fn readable(state: &AppState, user: &AuthUser, sha256: &str) -> Result<MediaInfo, ApiError> {
    const ACTION: &str = "media.read";
    if !is_sha256(sha256) {
        return Err(ApiError::BadRequest(format!("`{sha256}` is not a sha256 digest (64 lowercase hex digits)")));
    }
    let media = &state.services.media;
    let p = &user.principal;
    if !is_staff(p) && !media.is_uploader(sha256, &p.id).await? {
        let why = "media are readable by staff accounts and by their uploaders".to_owned();
        return Err(user.deny(state, ACTION, sha256, why).await);
    }
    media.info(sha256).await?.ok_or_else(|| ApiError::NotFound(format!("no media `{sha256}`")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    filename: Option<String>,
}

/// `POST /api/media?filename=` with the file as the raw body and its
/// `Content-Type`: 201 with the metadata when the bytes are new, 200 with the
/// stored metadata when they were uploaded before. The type and a declared
/// `Content-Length` are checked before any byte is read.
async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    q: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let q = q.map(|Query(q)| q).map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let declared = match headers.get(header::CONTENT_TYPE) {
        None => {
            return Err(
                MediaError::Unsupported("a `Content-Type` header naming the file's type is required".into()).into()
            );
        }
        Some(v) => v.to_str().map_err(|_| MediaError::Unsupported("the `Content-Type` header is not text".into()))?,
    };
    accepted_type(declared)?;
    let media = &state.services.media;
    let declared_length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > media.max_bytes()) {
        return Err(MediaError::TooLarge { limit: media.max_bytes() }.into());
    }
    let upload = Upload {
        content_type: declared,
        filename: q.filename.as_deref().filter(|f| !f.is_empty()),
        uploaded_by: &user.principal.id,
    };
    let (status, info) = match media.store(&upload, body.into_data_stream()).await? {
        Stored::Created(info) => (StatusCode::CREATED, info),
        Stored::Existing(info) => (StatusCode::OK, info),
    };
    let location = format!("/api/media/{}", info.sha256);
    Ok((status, [(header::LOCATION, location)], Json(view(&info, &user.principal))).into_response())
}

/// `GET /api/media/{sha256}`: the bytes with their content type. The content
/// never changes, so it may be cached for good; it is never sniffed or run.
async fn download(
    State(state): State<AppState>,
    user: AuthUser,
    Path(sha256): Path<String>,
) -> Result<Response, ApiError> {
    let info = readable(&state, &user, &sha256).await?;
    let stream = state.services.media.read(&info).await?;
    let content_type = match info.content_type.as_str() {
        "text/plain" => "text/plain; charset=utf-8".to_owned(),
        other => other.to_owned(),
    };
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_LENGTH, info.size.to_string()),
        (header::ETAG, format!("\"{}\"", info.sha256)),
        (header::CACHE_CONTROL, "private, max-age=31536000, immutable".to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::CONTENT_SECURITY_POLICY, "sandbox".to_owned()),
    ];
    Ok((headers, Body::from_stream(stream)).into_response())
}

/// `GET /api/media/{sha256}/meta`: size, type, kind, file name, uploader, time.
async fn meta(
    State(state): State<AppState>,
    user: AuthUser,
    Path(sha256): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let info = readable(&state, &user, &sha256).await?;
    Ok(Json(view(&info, &user.principal)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddEvidence {
    sha256: String,
    #[serde(default)]
    note: String,
}

/// `POST /api/cases/{id}/evidence` with `{"sha256", "note"}`: 201 with the
/// link when added, 200 when the case already held the blob with that note,
/// 409 when it held it with another note.
async fn add_evidence(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case_id): Path<String>,
    JsonBody(body): JsonBody<AddEvidence>,
) -> Result<(StatusCode, Json<Evidence>), ApiError> {
    const ACTION: &str = "case.evidence.add";
    require_staff(&state, &user, ACTION, &case_id).await?;
    let p = &user.principal;
    let linked = state.services.media.add_evidence(&case_id, &body.sha256, &p.id, &body.note).await?;
    let (status, evidence) = match linked {
        Linked::Added(e) => {
            let actor = format!("user:{}", p.id);
            let entry = Entry { actor: &actor, action: ACTION, subject: &case_id, outcome: "ok", detail: &e.sha256 };
            state.services.audit.record(entry).await;
            (StatusCode::CREATED, e)
        }
        Linked::Existing(e) => (StatusCode::OK, e),
    };
    Ok((status, Json(evidence)))
}

/// `GET /api/cases/{id}/evidence`: the case's evidence in the order added,
/// each with its note and the blob's metadata.
async fn list_evidence(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&state, &user, "case.evidence.read", &case_id).await?;
    let evidence = state.services.media.evidence(&case_id).await?;
    Ok(Json(json!({ "case": case_id, "evidence": evidence })))
}
