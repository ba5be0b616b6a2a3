//! The registry's HTTP API over a [`DirRegistry`].
//!
//! | method and path               | answer                                         |
//! |-------------------------------|------------------------------------------------|
//! | `GET /v1/plugins`             | `{"plugins": ["name", …]}`                     |
//! | `GET /v1/index/{name}`        | the plugin's [`Index`]                        |
//! | `GET /v1/blobs/sha256/{hex}`  | the archive bytes (`application/octet-stream`) |
//! | `POST /v1/publish`            | body: the archive; answers the `IndexEntry`    |
//! | `POST /v1/yank`               | body: `{"name", "version", "yanked"}`          |
//!
//! The two `POST`s need `Authorization: Bearer <token>` when the server was
//! given a token. Errors answer 4xx with `{"error": "<message>"}` naming the
//! problem; on 5xx the message says only that the registry failed, and the
//! detail stays out of the response.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::index::{Index, IndexEntry, RegistryError};
use crate::package::{Digest, MAX_ARCHIVE_BYTES};
use crate::store::DirRegistry;

#[derive(Clone)]
struct AppState {
    registry: DirRegistry,
    token: Option<Arc<str>>,
}

/// The body of `POST /v1/yank`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct YankRequest {
    /// The plugin.
    pub name: String,
    /// The version.
    pub version: semver::Version,
    /// `true` to yank, `false` to restore.
    pub yanked: bool,
}

/// The answer of `GET /v1/plugins`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginList {
    /// Plugin names, sorted.
    pub plugins: Vec<String>,
}

/// The JSON body of an error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong.
    pub error: String,
}

/// The router of the registry API. With `publish_token`, publishing and
/// yanking need it as a bearer token; without, anyone who reaches the server
/// may publish (signatures are still required).
pub fn router(registry: DirRegistry, publish_token: Option<String>) -> Router {
    let state = AppState {
        registry,
        token: publish_token.map(Arc::from),
    };
    Router::new()
        .route("/v1/plugins", get(list_plugins))
        .route("/v1/index/{name}", get(get_index))
        .route("/v1/blobs/sha256/{hex}", get(get_blob))
        .route("/v1/publish", post(publish))
        .route("/v1/yank", post(yank))
        .layer(DefaultBodyLimit::max(MAX_ARCHIVE_BYTES as usize))
        .with_state(state)
}

/// A registry error as an HTTP answer: the one place errors meet HTTP.
struct ApiError(RegistryError);

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use RegistryError as E;
        let status = match &self.0 {
            E::Package(_) | E::Unsigned { .. } | E::Signature(_) | E::InvalidSpec { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            E::InvalidName(_) => StatusCode::BAD_REQUEST,
            E::VersionConflict { .. } => StatusCode::CONFLICT,
            E::UnknownPlugin { .. } | E::NoMatch { .. } | E::UnknownVersion { .. } | E::BlobMissing(_) => {
                StatusCode::NOT_FOUND
            }
            E::Unauthorized => StatusCode::UNAUTHORIZED,
            E::BlobCorrupt { .. }
            | E::Io(_)
            | E::IndexCorrupt { .. }
            | E::Location { .. }
            | E::Http { .. }
            | E::Remote { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let error = if status.is_server_error() {
            "the registry failed to answer; see its log".to_owned()
        } else {
            self.0.to_string()
        };
        (status, Json(ErrorBody { error })).into_response()
    }
}

/// Proof that a request may publish: it carries the configured bearer token,
/// or no token is configured.
struct PublishAuth;

impl FromRequestParts<AppState> for PublishAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(expected) = &state.token else {
            return Ok(PublishAuth);
        };
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            Ok(PublishAuth)
        } else {
            Err(ApiError(RegistryError::Unauthorized))
        }
    }
}

/// Compare without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Run blocking registry work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(ApiError),
        Err(e) => Err(ApiError(RegistryError::Http {
            url: "-".into(),
            message: format!("worker failed: {e}"),
        })),
    }
}

async fn list_plugins(State(state): State<AppState>) -> Result<Json<PluginList>, ApiError> {
    let plugins = blocking(move || state.registry.names()).await?;
    Ok(Json(PluginList { plugins }))
}

async fn get_index(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Index>, ApiError> {
    Ok(Json(blocking(move || state.registry.index(&name)).await?))
}

async fn get_blob(State(state): State<AppState>, Path(hex): Path<String>) -> Result<Response, ApiError> {
    let digest = Digest::from_hex(&hex).map_err(|_| ApiError(RegistryError::InvalidName(format!("sha256/{hex}"))))?;
    let bytes = blocking(move || state.registry.blob(&digest)).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn publish(State(state): State<AppState>, _auth: PublishAuth, body: Bytes) -> Result<Json<IndexEntry>, ApiError> {
    Ok(Json(blocking(move || state.registry.publish(&body)).await?))
}

async fn yank(
    State(state): State<AppState>,
    _auth: PublishAuth,
    Json(request): Json<YankRequest>,
) -> Result<Json<IndexEntry>, ApiError> {
    Ok(Json(
        blocking(move || state.registry.yank(&request.name, &request.version, request.yanked)).await?,
    ))
}
