//! The HTTP surface: the one router, the one error shape, and the routes that
//! belong to no single capability (health, metrics). Each capability adds its
//! own routes from its `http` module.

pub mod auth;
pub mod error;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

pub use error::{ApiError, JsonBody};

use crate::runtime::Runtime;
use crate::services::Services;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    pub runtime: Arc<Runtime>,
    /// Set once the bundled and installed plugins have been loaded.
    pub ready: Arc<AtomicBool>,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::identity::http::router())
        .merge(crate::identity::residents::router())
        .merge(crate::messaging::http::router())
        .merge(crate::space::http::router())
        .merge(crate::data::http::router())
        .merge(crate::data::records_http::router())
        .merge(crate::media::http::router())
        .merge(crate::runtime::http::router())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let plugins = state.runtime.plugins().len();
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, axum::Json(serde_json::json!({ "status": "ready", "plugins": plugins })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({ "status": "starting", "plugins": plugins })))
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = state.services.metrics.render();
    // Bus queues are read at scrape time.
    let stats = state.services.bus.stats();
    if !stats.is_empty() {
        let mut extra = String::new();
        extra.push_str("# HELP yiwang_bus_queued Events waiting in a subscriber's queue.\n# TYPE yiwang_bus_queued gauge\n");
        for s in &stats {
            extra.push_str(&format!("yiwang_bus_queued{{subscriber=\"{}\"}} {}\n", s.name, s.queued));
        }
        extra.push_str("# HELP yiwang_bus_dropped_total Events dropped because a subscriber's queue stayed full.\n# TYPE yiwang_bus_dropped_total counter\n");
        for s in &stats {
            extra.push_str(&format!("yiwang_bus_dropped_total{{subscriber=\"{}\"}} {}\n", s.name, s.dropped));
        }
        // Keep the exposition's `# EOF` last.
        let eof = body.rfind("# EOF").unwrap_or(body.len());
        body.insert_str(eof, &extra);
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
}
