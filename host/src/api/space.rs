//! Space routes: where is a point, which grids are near it, load the hierarchy.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::space::{Area, AreaRef, LoadReport};
use crate::api::auth::AuthUser;
use crate::api::error::{ApiQuery, ErrorBody, TextBody};
use crate::api::openapi::{Forbidden, Unauthorized};
use crate::api::{ApiError, AppState};
use crate::bus::GeoPoint;
use crate::identity::Role;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(areas_at))
        .routes(routes!(grids_near))
        .routes(routes!(get_area))
        .routes(routes!(load_areas))
}

/// A point, WGS 84.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Point {
    /// Latitude, -90..=90.
    lat: f64,
    /// Longitude, -180..=180.
    lon: f64,
}

impl Point {
    fn checked(&self) -> Result<GeoPoint, ApiError> {
        GeoPoint { lat: self.lat, lon: self.lon }.validate().map_err(ApiError::BadRequest)
    }
}

/// The areas holding a point.
///
/// The chain of areas holding a point: grid, community, street, district, city.
#[utoipa::path(
    get,
    path = "/api/space/at",
    tag = "space",
    params(Point),
    responses(
        (status = 200, description = "The areas, grid first; empty outside the city", body = Vec<AreaRef>),
        (status = 400, description = "A missing, malformed or out-of-range `lat` or `lon`", body = ErrorBody),
        (status = 401, response = Unauthorized),
    ),
    security(("bearer" = [])),
)]
async fn areas_at(
    State(state): State<AppState>,
    _user: AuthUser,
    ApiQuery(p): ApiQuery<Point>,
) -> Result<Json<Vec<AreaRef>>, ApiError> {
    Ok(Json(state.services.space.areas_at(p.checked()?)))
}

/// A circle, WGS 84.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Near {
    /// Latitude of the centre, -90..=90.
    lat: f64,
    /// Longitude of the centre, -180..=180.
    lon: f64,
    /// The radius in metres, 0..=1,000,000.
    radius_m: f64,
}

/// Grid cells near a point.
///
/// Grid cells within `radius_m` metres of a point.
#[utoipa::path(
    get,
    path = "/api/space/grids",
    tag = "space",
    params(Near),
    responses(
        (status = 200, description = "The grid cells, by code", body = Vec<AreaRef>),
        (status = 400, description = "A missing or malformed parameter, or a centre out of range", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 422, description = "The radius is out of range", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn grids_near(State(state): State<AppState>, _user: AuthUser, ApiQuery(q): ApiQuery<Near>) -> Result<Json<Vec<AreaRef>>, ApiError> {
    let centre = Point { lat: q.lat, lon: q.lon }.checked()?;
    Ok(Json(state.services.space.grids_within_radius(centre, q.radius_m)?))
}

/// One area.
///
/// One area with its geometry as GeoJSON.
#[utoipa::path(
    get,
    path = "/api/space/areas/{code}",
    tag = "space",
    params(("code" = String, Path, description = "The area code, e.g. `320102`")),
    responses(
        (status = 200, description = "The area", body = Area),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such area", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn get_area(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(code): Path<String>,
) -> Result<Json<Area>, ApiError> {
    let a = state.services.space.area(&code).await?.ok_or_else(|| ApiError::NotFound(format!("no area `{code}`")))?;
    Ok(Json(a))
}

/// Load areas.
///
/// Load (or re-load) areas from a GeoJSON FeatureCollection; operators only.
/// All or nothing: an error names the feature and the field.
#[utoipa::path(
    post,
    path = "/api/space/load",
    tag = "space",
    request_body(
        content = Object,
        content_type = "application/json",
        description = "A GeoJSON FeatureCollection; each feature's properties hold `code`, `name`, `level` and \
            `parent` (none for the city), its geometry a Polygon or MultiPolygon",
    ),
    responses(
        (status = 200, description = "What the load did", body = LoadReport),
        (status = 400, description = "The body is not UTF-8", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, description = "The body is larger than 2 MiB", body = ErrorBody),
        (status = 422, description = "A feature is invalid; nothing was stored", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn load_areas(State(state): State<AppState>, user: AuthUser, TextBody(body): TextBody) -> Result<Json<LoadReport>, ApiError> {
    user.require(&state, Role::Operator, "space.load").await?;
    Ok(Json(state.services.space.load_geojson(&body).await?))
}
