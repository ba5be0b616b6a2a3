//! The OpenAPI document: its header, the bearer-token scheme, the error
//! responses every capability shares, and `GET /openapi.json`.
//!
//! No path is written here. Each handler carries `#[utoipa::path(...)]` and is
//! registered with `routes!` into an `OpenApiRouter`, so the router and the
//! document are built from the same registrations (see `api::routes`).

use axum::Extension;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

use super::error::ErrorBody;

/// The name of the bearer-token security scheme. An operation whose handler
/// takes `AuthUser` declares `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

/// The document's header and shared components; the paths are added by the
/// routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Yiwang",
        version = env!("CARGO_PKG_VERSION"),
        description = "The HTTP API of Yiwang (一网统管), the open runtime for unified city operations: \
            identity, messaging, the IoT data foundation, the spatial hierarchy and the plugin runtime.\n\n\
            Sign in with `POST /api/auth/login` and send the token as `Authorization: Bearer <token>`. \
            Every failure answers with one shape, the `Error` schema: \
            `{\"error\": {\"code\": \"not-found\", \"message\": \"…\"}}`; besides the failures each \
            operation lists, any operation may answer `500` (`internal`), without internals."
    ),
    tags(
        (name = "system", description = "Health, metrics and this document."),
        (name = "identity", description = "Log-in, tokens and accounts."),
        (name = "messaging", description = "Messages to users, roles, departments and org units."),
        (name = "iot", description = "The sensor registry, reading ingest and aggregates."),
        (name = "data", description = "Data sets, structured records, bulk import and sharing accountability."),
        (name = "media", description = "The content-addressed blob store and case evidence."),
        (name = "cases", description = "One intake for every report, and the case lifecycle."),
        (name = "open311", description = "Open311 GeoReport v2, in JSON and XML; failures in the Open311 error form."),
        (name = "space", description = "The spatial hierarchy: city, district, street, community, grid."),
        (name = "plugins", description = "The plugin runtime, for operators."),
    ),
    components(schemas(ErrorBody), responses(BadRequest, Unauthorized, Forbidden)),
    modifiers(&BearerScheme),
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("A token from `POST /api/auth/login`, valid 12 hours."))
            .build();
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// The request is malformed: the body or the query does not parse, or a value
/// is out of range. The message names the field.
#[derive(ToResponse)]
pub struct BadRequest(pub ErrorBody);

/// No valid bearer token: it is missing, unknown, expired or revoked.
#[derive(ToResponse)]
pub struct Unauthorized(pub ErrorBody);

/// The caller is signed in but may not do this; the refusal is audited.
#[derive(ToResponse)]
pub struct Forbidden(pub ErrorBody);

/// The document as served, serialised once when the router is built.
#[derive(Clone)]
pub struct Document(Bytes);

impl Document {
    pub fn new(openapi: &utoipa::openapi::OpenApi) -> Self {
        Document(Bytes::from(serde_json::to_vec(openapi).expect("an OpenAPI document serialises to JSON")))
    }
}

/// This document.
///
/// The OpenAPI 3.1 description of every route, generated from the same
/// registrations as the router.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "system",
    responses((status = 200, description = "The OpenAPI document", body = Object, content_type = "application/json")),
)]
pub(super) async fn openapi_json(Extension(document): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document.0)
}
