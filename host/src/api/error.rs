//! The one error shape of the HTTP API: `{"error": {"code": ..., "message": ...}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every failure: `{"error": {"code": "not-found", "message": "…"}}`.
/// Responses are built from this type, so the `Error` schema in the OpenAPI
/// document is the shape the API sends.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    #[schema(inline)]
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    #[schema(inline)]
    pub code: ErrorCode,
    /// For people: names the field, the resource or the missing role; never internals.
    pub message: String,
}

/// The machine-readable kind of a failure, one per HTTP status: `bad-request`
/// 400, `unauthorized` 401, `forbidden` 403, `not-found` 404, `conflict` 409,
/// `unprocessable` 422, `payload-too-large` 413, `unsupported-media-type` 415,
/// `internal` 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    Unprocessable,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Internal,
}

/// Every failure an HTTP handler can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    /// The body is larger than the route accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body's declared type is not accepted or does not match its content.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many requests from this client or for this account: `429` with
    /// `Retry-After` in whole seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    /// Anything else: logged in full, answered without internals.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Read a request body by hand, after the route's permission check, so that
/// a refused caller's body is never read into memory: at most `limit` bytes,
/// `413` past that.
pub async fn read_body(body: axum::body::Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return ApiError::PayloadTooLarge(format!("the body is larger than the limit of {limit} bytes"));
            }
            source = s.source();
        }
        ApiError::BadRequest(format!("cannot read the body: {e}"))
    })
}

impl ApiError {
    fn parts(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Unprocessable),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!("internal error: {e:#}");
                "internal error; see the server log".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(ErrorBody { error: ErrorDetail { code, message } })).into_response();
        if let ApiError::TooManyRequests { retry_after_secs, .. } = &self
            && let Ok(value) = axum::http::HeaderValue::from_str(&retry_after_secs.max(&1).to_string())
        {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<crate::error::ServiceError> for ApiError {
    fn from(e: crate::error::ServiceError) -> Self {
        use crate::error::ServiceError as E;
        match e {
            E::Invalid(m) => ApiError::Unprocessable(m),
            E::NotFound(m) => ApiError::NotFound(m),
            E::Conflict(m) => ApiError::Conflict(m),
            E::Forbidden(m) => ApiError::Forbidden(m),
            E::Storage(e) => ApiError::Internal(e),
        }
    }
}

impl From<crate::media::MediaError> for ApiError {
    fn from(e: crate::media::MediaError) -> Self {
        use crate::media::MediaError as E;
        match e {
            E::Invalid(m) => ApiError::Unprocessable(m),
            E::Body(_) => ApiError::BadRequest(e.to_string()),
            E::NotFound(m) => ApiError::NotFound(m),
            E::Conflict(m) => ApiError::Conflict(m),
            E::TooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
            E::Unsupported(m) => ApiError::UnsupportedMediaType(m),
            E::Storage(e) => ApiError::Internal(e),
        }
    }
}

/// A JSON request body whose errors name the offending field:
/// `400 {"error": {"code": "bad-request", "message": "field `roles[0]`: …"}}`.
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut de).map(JsonBody).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                ApiError::BadRequest(format!("body: {inner}"))
            } else {
                ApiError::BadRequest(format!("field `{path}`: {inner}"))
            }
        })
    }
}

/// A query string whose errors come in the one error shape:
/// `400 {"error": {"code": "bad-request", "message": "…"}}`.
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(t)| ApiQuery(t))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// A UTF-8 text body whose errors come in the one error shape: `400` when it
/// is not UTF-8, `413` when it is larger than the route accepts.
pub struct TextBody(pub String);

impl<S> axum::extract::FromRequest<S> for TextBody
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!("the body is too large: {}", e.body_text()))
            } else {
                ApiError::BadRequest(format!("cannot read the body: {}", e.body_text()))
            }
        })?;
        String::from_utf8(bytes.to_vec()).map(TextBody).map_err(|e| {
            ApiError::BadRequest(format!("the body is not UTF-8 (byte {} is not)", e.utf8_error().valid_up_to()))
        })
    }
}
