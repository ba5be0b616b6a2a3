//! Operator routes for the plugin runtime.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{CacheOutcome, LoadedPlugin};
use super::plugin::StatsView;
use super::supervisor::HealthView;
use crate::api::auth::AuthUser;
use crate::api::error::ErrorBody;
use crate::api::openapi::{Forbidden, Unauthorized};
use crate::api::{ApiError, AppState};
use crate::identity::Role;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_plugins)).routes(routes!(get_plugin))
}

/// A plugin as the admin API shows it.
#[derive(Serialize, ToSchema)]
pub struct PluginView {
    pub name: String,
    pub version: String,
    pub department: String,
    pub publisher: String,
    pub world: String,
    pub description: String,
    pub digest: String,
    pub path: String,
    /// `cache` when the component came precompiled from the cache, `compiled` otherwise.
    #[schema(value_type = String)]
    pub compiled_from: &'static str,
    pub loaded_at_ms: i64,
    pub subscribe: Vec<String>,
    pub grants: GrantsView,
    pub limits: LimitsView,
    pub health: HealthView,
    pub warm_instances: usize,
    pub counters: StatsView,
}

/// What a plugin is granted, from its manifest.
#[derive(Serialize, ToSchema)]
pub struct GrantsView {
    pub publish: Vec<String>,
    pub data_read: Vec<String>,
    pub data_write: Vec<String>,
    #[schema(value_type = Vec<String>)]
    pub cases: Vec<&'static str>,
    pub message: Vec<String>,
    pub identity: bool,
    pub wasi_stdio: bool,
    /// The names of the environment variables the plugin sees.
    pub wasi_env: Vec<String>,
    pub wasi_network: bool,
    pub wasi_filesystem: bool,
}

/// A plugin's resource limits, from its manifest.
#[derive(Serialize, ToSchema)]
pub struct LimitsView {
    pub cpu_ms: u64,
    pub wall_ms: u64,
    pub memory_mib: u64,
    pub queue: usize,
    pub publish_per_second: u32,
}

fn view(p: &LoadedPlugin) -> PluginView {
    let m = &p.ctx.manifest;
    let g = &m.grants;
    PluginView {
        name: m.name.clone(),
        version: m.version.to_string(),
        department: m.department.clone(),
        publisher: m.publisher.clone(),
        world: m.world.to_string(),
        description: m.description.clone(),
        digest: p.origin.digest.clone(),
        path: p.origin.path.display().to_string(),
        compiled_from: match p.origin.compiled {
            CacheOutcome::Hit => "cache",
            CacheOutcome::Compiled => "compiled",
        },
        loaded_at_ms: p.loaded_at,
        subscribe: m.subscribe.iter().map(|t| t.to_string()).collect(),
        grants: GrantsView {
            publish: g.publish.iter().map(|t| t.to_string()).collect(),
            data_read: g.data_read.iter().map(|t| t.to_string()).collect(),
            data_write: g.data_write.iter().map(|t| t.to_string()).collect(),
            cases: g.cases.iter().map(|c| c.name()).collect(),
            message: g.message.iter().map(|t| t.to_string()).collect(),
            identity: g.identity,
            wasi_stdio: g.wasi.stdio,
            wasi_env: g.wasi.env.keys().cloned().collect(),
            wasi_network: g.wasi.network,
            wasi_filesystem: g.wasi.filesystem,
        },
        limits: LimitsView {
            cpu_ms: m.limits.cpu_ms,
            wall_ms: m.limits.wall_ms,
            memory_mib: m.limits.memory_mib,
            queue: m.limits.queue,
            publish_per_second: m.limits.publish_per_second,
        },
        health: p.health_view(),
        warm_instances: p.warm_instances(),
        counters: p.ctx.stats.view(),
    }
}

/// List plugins.
///
/// Every plugin: version, world, digest, grants, limits, health and counters.
/// Operators only.
#[utoipa::path(
    get,
    path = "/api/plugins",
    tag = "plugins",
    responses(
        (status = 200, description = "The plugins", body = Vec<PluginView>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
async fn list_plugins(State(state): State<AppState>, user: AuthUser) -> Result<Json<Vec<PluginView>>, ApiError> {
    user.require(&state, Role::Operator, "plugins.list").await?;
    Ok(Json(state.runtime.plugins().iter().map(|p| view(p)).collect()))
}

/// One plugin.
///
/// Operators only.
#[utoipa::path(
    get,
    path = "/api/plugins/{name}",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin name")),
    responses(
        (status = 200, description = "The plugin", body = PluginView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn get_plugin(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<PluginView>, ApiError> {
    user.require(&state, Role::Operator, "plugins.get").await?;
    let p = state.runtime.plugin(&name).ok_or_else(|| ApiError::NotFound(format!("no plugin `{name}`")))?;
    Ok(Json(view(&p)))
}
