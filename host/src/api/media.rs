//! Media routes: upload and download of blobs, their metadata, and the
//! evidence a case holds.
//!
//! Who may do what: any signed-in account uploads (residents too: 随手拍
//! reports carry photos); a blob and its metadata are readable by whoever
//! uploaded those bytes, and by staff whose scope covers the area of a case
//! that holds the blob (as evidence or as a report's photo; city-level staff
//! everywhere); a case's evidence is linked and listed by staff whose scope
//! covers the case. A caller who may not read a blob is refused whether or not
//! it exists, so a digest reveals nothing.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::media::{Evidence, Linked, MediaError, MediaInfo, Stored, Upload, accepted_type, is_sha256};
use crate::api::ApiQuery;
use crate::api::auth::AuthUser;
use crate::api::error::ErrorBody;
use crate::api::openapi::{BadRequest, Forbidden, Unauthorized};
use crate::api::{ApiError, AppState, JsonBody};
use crate::audit::Entry;
use crate::identity::{Principal, Scope};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_media))
        .routes(routes!(download_media))
        .routes(routes!(media_meta))
        .routes(routes!(list_evidence, add_evidence))
}

/// Refuse `action` on case `case_id` unless the caller is staff whose scope
/// covers the case's area (404 when there is no such case).
async fn case_in_scope(state: &AppState, user: &AuthUser, action: &str, case_id: &str) -> Result<(), ApiError> {
    user.require_staff(state, action, case_id).await?;
    let area = state.services.cases.area_of(case_id).await?.ok_or_else(|| ApiError::NotFound(format!("no case `{case_id}`")))?;
    let scope = state.services.identity.scope(&user.principal).await?;
    if !scope.covers_case(area.as_deref()) {
        let why = format!("case `{case_id}` lies in org unit `{}`, outside {scope}", area.as_deref().unwrap_or("-"));
        return Err(user.deny(state, action, case_id, why).await);
    }
    Ok(())
}

/// Metadata as a caller sees it: the first uploader is named to staff and to
/// that uploader only, since an identical upload must not reveal who else
/// holds the same file.
fn view(info: &MediaInfo, caller: &Principal) -> Value {
    let mut v = json!(info);
    if !caller.is_staff() && info.uploaded_by != caller.id {
        v["uploaded_by"] = Value::Null;
    }
    v
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
    if !media.is_uploader(sha256, &p.id).await? {
        let why = "media are readable by their uploaders, and by staff within the area of a case that holds them";
        if !p.is_staff() {
            return Err(user.deny(state, ACTION, sha256, why.to_owned()).await);
        }
        let scope = state.services.identity.scope(p).await?;
        if scope != Scope::All {
            let areas = media.case_areas(sha256).await?;
            if !areas.iter().any(|a| scope.covers_case(a.as_deref())) {
                return Err(user.deny(state, ACTION, sha256, format!("{why}; none lies within {scope}")).await);
            }
        }
    }
    media.info(sha256).await?.ok_or_else(|| ApiError::NotFound(format!("no media `{sha256}`")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// The original file name, kept as metadata.
    filename: Option<String>,
}

/// Upload a blob.
///
/// The file is the raw body, with its `Content-Type`: `image/jpeg`,
/// `image/png`, `image/webp`, `image/heic`, `audio/mpeg`, `audio/wav`,
/// `audio/aac`, `audio/amr`, `audio/ogg`, `video/mp4`, `video/quicktime`,
/// `video/webm`, `application/pdf` or `text/plain` (UTF-8); the declared type
/// must match the content's magic bytes. `201` with the metadata when the bytes
/// are new, `200` with the stored metadata when they were uploaded before. Any
/// signed-in account.
#[utoipa::path(
    post,
    path = "/api/media",
    tag = "media",
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file, with its own Content-Type"),
    responses(
        (status = 201, description = "Stored", body = MediaInfo),
        (status = 200, description = "Already stored", body = MediaInfo),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, description = "Larger than the size limit", body = ErrorBody),
        (status = 415, description = "A type not accepted, or not the content's", body = ErrorBody),
        (status = 422, description = "An empty body or a bad file name", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn upload_media(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
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

/// Download a blob.
///
/// The bytes with their content type. The content never changes, so it may be
/// cached for good; it is never sniffed or run. Staff, or an uploader of
/// those bytes.
#[utoipa::path(
    get,
    path = "/api/media/{sha256}",
    tag = "media",
    params(("sha256" = String, Path, description = "The blob's lowercase sha256")),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such blob", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn download_media(
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

/// A blob's metadata.
///
/// Size, type, kind, file name, uploader and time. Staff, or an uploader of
/// those bytes.
#[utoipa::path(
    get,
    path = "/api/media/{sha256}/meta",
    tag = "media",
    params(("sha256" = String, Path, description = "The blob's lowercase sha256")),
    responses(
        (status = 200, description = "The metadata", body = MediaInfo),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such blob", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn media_meta(
    State(state): State<AppState>,
    user: AuthUser,
    Path(sha256): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let info = readable(&state, &user, &sha256).await?;
    Ok(Json(view(&info, &user.principal)))
}

/// A blob to hold as a case's evidence.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddEvidence {
    /// The blob's lowercase sha256.
    sha256: String,
    /// Why it is evidence.
    #[serde(default)]
    note: String,
}

/// Add evidence to a case.
///
/// `201` with the link when added, `200` when the case already held the blob
/// with that note, `409` when it held it with another note. Staff only.
#[utoipa::path(
    post,
    path = "/api/cases/{id}/evidence",
    tag = "media",
    params(("id" = String, Path, description = "The case")),
    request_body = AddEvidence,
    responses(
        (status = 201, description = "Added", body = Evidence),
        (status = 200, description = "Already held with this note", body = Evidence),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such case or blob", body = ErrorBody),
        (status = 409, description = "Held with another note", body = ErrorBody),
        (status = 422, description = "A bad note", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn add_evidence(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case_id): Path<String>,
    JsonBody(body): JsonBody<AddEvidence>,
) -> Result<(StatusCode, Json<Evidence>), ApiError> {
    const ACTION: &str = "case.evidence.add";
    case_in_scope(&state, &user, ACTION, &case_id).await?;
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

/// A case's evidence.
#[derive(Serialize, ToSchema)]
pub struct EvidenceList {
    pub case: String,
    /// In the order added.
    pub evidence: Vec<Evidence>,
}

/// A case's evidence.
///
/// In the order added, each with its note and the blob's metadata. Staff only.
#[utoipa::path(
    get,
    path = "/api/cases/{id}/evidence",
    tag = "media",
    params(("id" = String, Path, description = "The case")),
    responses(
        (status = 200, description = "The evidence", body = EvidenceList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such case", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn list_evidence(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case_id): Path<String>,
) -> Result<Json<EvidenceList>, ApiError> {
    case_in_scope(&state, &user, "case.evidence.read", &case_id).await?;
    let evidence = state.services.media.evidence(&case_id).await?;
    Ok(Json(EvidenceList { case: case_id, evidence }))
}
