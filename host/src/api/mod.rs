//! The HTTP surface: the one router, the one error shape, the OpenAPI
//! document, and the routes that belong to no single capability (health,
//! metrics). Each capability adds its own routes from its `http` module.

pub mod alerts;
pub mod auth;
pub mod cases;
pub mod data;
pub mod dedup_rules;
pub mod error;
pub mod identity;
pub mod limits;
pub mod media;
pub mod messaging;
pub mod open311;
pub mod openapi;
pub mod plugins;
pub mod records;
pub mod residents;
pub mod space;
pub mod split;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ApiQuery, JsonBody};

use crate::runtime::Runtime;
use crate::services::Services;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    pub runtime: Arc<Runtime>,
    /// Limits per client address and device on the anonymous routes.
    pub limits: Arc<limits::ClientLimits>,
    /// Set once the bundled and installed plugins have been loaded.
    pub ready: Arc<AtomicBool>,
}

/// Every route, each registered together with its OpenAPI description.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .routes(routes!(openapi::openapi_json))
        .merge(identity::router())
        .merge(residents::router())
        .merge(messaging::router())
        .merge(space::router())
        .merge(data::router())
        .merge(records::router())
        .merge(media::router())
        .merge(cases::router())
        .merge(open311::router())
        .merge(alerts::router())
        .merge(dedup_rules::router())
        .merge(split::router())
        .merge(plugins::router())
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let (router, document) = routes().split_for_parts();
    router
        .layer(Extension(openapi::Document::new(&document)))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(state)
}

/// Serve `router` on `listener` until `shutdown` resolves.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    // The peer's address reaches handlers (`limits::ClientAddress`).
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Whether the host is serving.
#[derive(Serialize, ToSchema)]
struct Health {
    status: Readiness,
    /// Plugins loaded.
    plugins: usize,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Readiness {
    /// The plugins are loaded.
    Ready,
    /// The plugins are still loading.
    Starting,
}

/// Readiness.
///
/// `200` with `ready` once the bundled and installed plugins are loaded, `503`
/// with `starting` before.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "system",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Still loading plugins", body = Health),
    ),
)]
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let plugins = state.runtime.plugins().len();
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, axum::Json(Health { status: Readiness::Ready, plugins }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Health { status: Readiness::Starting, plugins }))
    }
}

/// Prometheus metrics.
///
/// OpenMetrics text: per-plugin calls, guest errors, failures by kind,
/// denials, rate-limit hits, skipped events, quarantines and latency; bus
/// queue depth and drops.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    responses((
        status = 200,
        description = "The metrics",
        body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )),
)]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = state.services.metrics.render();
    // Bus queues are read at scrape time, summed per subscriber name: every
    // live inbox stream is one series (`sse:inbox`), so the series neither
    // name who is online nor grow with the number of connections.
    let mut stats: Vec<crate::bus::SubscriberStats> = Vec::new();
    for s in state.services.bus.stats() {
        match stats.iter_mut().find(|t| t.name == s.name) {
            Some(t) => {
                t.queued += s.queued;
                t.dropped += s.dropped;
                t.delivered += s.delivered;
            }
            None => stats.push(s),
        }
    }
    if !stats.is_empty() {
        let mut extra = String::new();
        extra.push_str("# HELP yiwang_bus_queued Events waiting in a subscriber's queue.\n# TYPE yiwang_bus_queued gauge\n");
        for s in &stats {
            extra.push_str(&format!("yiwang_bus_queued{{subscriber=\"{}\"}} {}\n", s.name, s.queued));
        }
        extra.push_str("# HELP yiwang_bus_dropped_total Times a live subscriber of this name was cut off because its queue was full.\n# TYPE yiwang_bus_dropped_total counter\n");
        for s in &stats {
            extra.push_str(&format!("yiwang_bus_dropped_total{{subscriber=\"{}\"}} {}\n", s.name, s.dropped));
        }
        let durable: Vec<&crate::bus::SubscriberStats> = stats.iter().filter(|s| s.durable).collect();
        if !durable.is_empty() {
            // Ages on the server's own clock, as the log stamps events.
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            extra.push_str("# HELP yiwang_bus_waiting Events kept for a durable subscriber (a plugin) and not yet finished.\n# TYPE yiwang_bus_waiting gauge\n");
            for s in &durable {
                extra.push_str(&format!("yiwang_bus_waiting{{subscriber=\"{}\"}} {}\n", s.name, s.waiting));
            }
            extra.push_str("# HELP yiwang_bus_oldest_waiting_seconds Age of the oldest event a durable subscriber has not finished (0 when none waits).\n# TYPE yiwang_bus_oldest_waiting_seconds gauge\n");
            for s in &durable {
                let age = s.oldest_waiting_ms.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
                extra.push_str(&format!("yiwang_bus_oldest_waiting_seconds{{subscriber=\"{}\"}} {age}\n", s.name));
            }
        }
        // Keep the exposition's `# EOF` last.
        let eof = body.rfind("# EOF").unwrap_or(body.len());
        body.insert_str(eof, &extra);
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
}
