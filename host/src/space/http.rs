//! Space routes: where is a point, which grids are near it, load the hierarchy.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{AreaRef, LoadReport};
use crate::api::auth::AuthUser;
use crate::api::{ApiError, AppState};
use crate::bus::GeoPoint;
use crate::identity::Role;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/space/at", get(at))
        .route("/api/space/grids", get(grids_near))
        .route("/api/space/areas/{code}", get(area))
        .route("/api/space/load", post(load))
}

#[derive(Deserialize)]
struct Point {
    lat: f64,
    lon: f64,
}

impl Point {
    fn checked(&self) -> Result<GeoPoint, ApiError> {
        GeoPoint { lat: self.lat, lon: self.lon }.validate().map_err(ApiError::BadRequest)
    }
}

/// The chain of areas holding a point: grid, community, street, district, city.
async fn at(State(state): State<AppState>, _user: AuthUser, Query(p): Query<Point>) -> Result<Json<Vec<AreaRef>>, ApiError> {
    Ok(Json(state.services.space.areas_at(p.checked()?)))
}

#[derive(Deserialize)]
struct Near {
    lat: f64,
    lon: f64,
    radius_m: f64,
}

/// Grid cells within `radius_m` metres of a point.
async fn grids_near(State(state): State<AppState>, _user: AuthUser, Query(q): Query<Near>) -> Result<Json<Vec<AreaRef>>, ApiError> {
    let centre = Point { lat: q.lat, lon: q.lon }.checked()?;
    Ok(Json(state.services.space.grids_within_radius(centre, q.radius_m)?))
}

/// One area with its geometry as GeoJSON.
async fn area(State(state): State<AppState>, _user: AuthUser, Path(code): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let a = state.services.space.area(&code).await?.ok_or_else(|| ApiError::NotFound(format!("no area `{code}`")))?;
    Ok(Json(serde_json::json!({
        "code": a.code, "name": a.name, "level": a.level, "parent": a.parent,
        "bbox": a.bbox, "geometry": a.geometry,
    })))
}

/// Load (or re-load) areas from a GeoJSON FeatureCollection; operators only.
async fn load(State(state): State<AppState>, user: AuthUser, body: String) -> Result<Json<LoadReport>, ApiError> {
    user.require(&state, Role::Operator, "space.load").await?;
    Ok(Json(state.services.space.load_geojson(&body).await?))
}
