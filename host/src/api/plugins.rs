//! Operator routes for the plugin runtime.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::runtime::upgrade::{ChangeError, HistoryEntry};
use crate::runtime::dead_letters::{self, DeadLetter, RetryOutcome};
use crate::runtime::{CacheOutcome, Slot};
use crate::runtime::plugin::StatsView;
use crate::runtime::supervisor::HealthView;
use crate::api::auth::AuthUser;
use crate::api::error::ErrorBody;
use crate::api::openapi::{Forbidden, Unauthorized};
use crate::api::{ApiError, AppState};
use crate::identity::Role;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins))
        .routes(routes!(get_plugin))
        .routes(routes!(plugin_history))
        .routes(routes!(enable_plugin))
        .routes(routes!(disable_plugin))
        .routes(routes!(approve_plugin))
        .routes(routes!(rollback_plugin))
        .routes(routes!(upgrade_plugin))
        .routes(routes!(list_dead_letters))
        .routes(routes!(retry_dead_letter, drop_dead_letter))
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
    /// sha256 of the component.
    pub digest: String,
    /// `sha256:<hex>` of the package (manifest and component).
    pub package_digest: String,
    pub path: String,
    /// What let the package load: `bundled`, `trust-policy` (signed by an
    /// admitted publisher) or `allow-unsigned` (nothing vouches for it: the
    /// server runs with `--allow-unsigned`).
    #[schema(value_type = String)]
    pub admitted_by: &'static str,
    /// Whether events reach the plugin.
    pub enabled: bool,
    /// The version a rollback returns to.
    pub previous_version: Option<String>,
    /// An upgrade that asks for more than this version, waiting for approval.
    pub held: Option<HeldView>,
    /// While the version is on probation: when that ends (it is rolled back by
    /// itself if too many of its calls fail before then).
    pub probation_until_ms: Option<i64>,
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
    /// How far behind the plugin is.
    pub lag: LagView,
}

/// Events kept for a plugin and not yet finished: while it is quarantined,
/// disabled, being upgraded or slower than the events come.
#[derive(Serialize, ToSchema, Default)]
pub struct LagView {
    /// Events waiting for the plugin (including the one it is handling).
    pub waiting: u64,
    /// When the oldest of those was published (ms since the epoch).
    pub oldest_waiting_ms: Option<i64>,
    /// Events in its in-memory queue (the rest wait in the event log).
    pub queued: usize,
    /// Events it has finished with since the server started.
    pub handled: u64,
    /// Events it failed on repeatedly, set aside for an operator.
    pub dead_letters: u64,
}

/// Each plugin's lag, from the bus and the dead letters.
async fn lags(state: &AppState) -> Result<std::collections::HashMap<String, LagView>, ApiError> {
    let dead = dead_letters::counts(&state.services.db).await?;
    let mut lags: std::collections::HashMap<String, LagView> = std::collections::HashMap::new();
    for s in state.services.bus.stats().into_iter().filter(|s| s.durable) {
        let lag = lags.entry(s.name.clone()).or_default();
        lag.waiting = s.waiting;
        lag.oldest_waiting_ms = s.oldest_waiting_ms;
        lag.queued = s.queued;
        lag.handled = s.handled;
    }
    for (plugin, n) in dead {
        lags.entry(plugin).or_default().dead_letters = n;
    }
    Ok(lags)
}

/// An upgrade held for approval.
#[derive(Serialize, ToSchema)]
pub struct HeldView {
    pub version: String,
    pub package_digest: String,
    /// What it would be granted that the running version is not.
    pub widened: Vec<String>,
    pub since_ms: i64,
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
    pub cases_per_minute: u32,
    /// Raised, returned by `evaluate`, updated and cancelled, together.
    pub warnings_per_minute: u32,
    pub messages_per_minute: u32,
}

fn view(slot: &Slot, lags: &mut std::collections::HashMap<String, LagView>) -> PluginView {
    let p = &slot.current();
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
        package_digest: p.origin.package_digest.clone(),
        path: p.origin.path.display().to_string(),
        admitted_by: p.origin.admitted.name(),
        enabled: slot.enabled(),
        previous_version: slot.previous().map(|p| p.ctx.manifest.version.to_string()),
        held: slot.held().map(|h| HeldView {
            version: h.plugin.ctx.manifest.version.to_string(),
            package_digest: h.plugin.origin.package_digest.clone(),
            widened: h.widened,
            since_ms: h.since,
        }),
        probation_until_ms: slot.probation_until(),
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
            cases_per_minute: m.limits.cases_per_minute,
            warnings_per_minute: m.limits.warnings_per_minute,
            messages_per_minute: m.limits.messages_per_minute,
        },
        health: p.health_view(),
        warm_instances: p.warm_instances(),
        counters: p.ctx.stats.view(),
        lag: lags.remove(&m.name).unwrap_or_default(),
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
    let mut lags = lags(&state).await?;
    Ok(Json(state.runtime.slots().iter().map(|s| view(s, &mut lags)).collect()))
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
    shown(&state, &name).await
}

/// A JSON body that may be left out: `None` when empty.
fn optional_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|e| ApiError::BadRequest(format!("body: {e}")))
}

/// A plugin as the admin API shows it, after a change.
async fn shown(state: &AppState, name: &str) -> Result<Json<PluginView>, ApiError> {
    let slot = state.runtime.slot(name).ok_or_else(|| ApiError::NotFound(format!("no plugin `{name}`")))?;
    let mut lags = lags(state).await?;
    Ok(Json(view(&slot, &mut lags)))
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::NotFound(name) => ApiError::NotFound(format!("no plugin `{name}`")),
            ChangeError::Conflict(m) => ApiError::Conflict(m),
            ChangeError::Unavailable(m) => ApiError::Internal(anyhow::anyhow!(m)),
        }
    }
}

/// A plugin's version history.
///
/// Every load, upgrade, hold, approval, refusal, rollback, enabling and
/// disabling, oldest first. Operators only.
#[utoipa::path(
    get,
    path = "/api/plugins/{name}/history",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin name")),
    responses(
        (status = 200, description = "The history", body = Vec<HistoryEntry>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
async fn plugin_history(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    user.require(&state, Role::Operator, "plugins.history").await?;
    Ok(Json(state.runtime.history(&name).await?))
}

/// Enable a plugin.
///
/// Events reach it again (those published while it was disabled do not).
/// Operators only; `409` if it is enabled already.
#[utoipa::path(
    post,
    path = "/api/plugins/{name}/enable",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin name")),
    responses(
        (status = 200, description = "Enabled", body = PluginView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 409, description = "Already enabled", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn enable_plugin(State(state): State<AppState>, user: AuthUser, Path(name): Path<String>) -> Result<Json<PluginView>, ApiError> {
    set_enabled(state, user, name, true).await
}

/// Disable a plugin.
///
/// It stays loaded, but events stop reaching it. Operators only; `409` if it
/// is disabled already.
#[utoipa::path(
    post,
    path = "/api/plugins/{name}/disable",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin name")),
    responses(
        (status = 200, description = "Disabled", body = PluginView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 409, description = "Already disabled", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn disable_plugin(State(state): State<AppState>, user: AuthUser, Path(name): Path<String>) -> Result<Json<PluginView>, ApiError> {
    set_enabled(state, user, name, false).await
}

async fn set_enabled(state: AppState, user: AuthUser, name: String, enabled: bool) -> Result<Json<PluginView>, ApiError> {
    let action = if enabled { "plugins.enable" } else { "plugins.disable" };
    user.require(&state, Role::Operator, action).await?;
    state.runtime.set_enabled(&name, enabled, &format!("user:{}", user.principal.id)).await?;
    shown(&state, &name).await
}

/// Approve a held upgrade.
///
/// The upgrade that asks for more grants than the running version starts
/// serving (on probation). Operators only; `409` if none is held.
#[utoipa::path(
    post,
    path = "/api/plugins/{name}/approve",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin name")),
    responses(
        (status = 200, description = "The new version serves", body = PluginView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 409, description = "No upgrade is held", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn approve_plugin(State(state): State<AppState>, user: AuthUser, Path(name): Path<String>) -> Result<Json<PluginView>, ApiError> {
    user.require(&state, Role::Operator, "plugins.approve").await?;
    state.runtime.approve(&name, &format!("user:{}", user.principal.id)).await?;
    shown(&state, &name).await
}

/// Why an operator rolls a plugin back.
#[derive(serde::Deserialize, ToSchema)]
pub struct RollbackRequest {
    /// Recorded in the history and the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Roll a plugin back.
///
/// The version before the current one serves again; the current one is
/// remembered as rolled back and not loaded again by itself. Operators only;
/// `409` if there is no earlier version.
#[utoipa::path(
    post,
    path = "/api/plugins/{name}/rollback",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin name")),
    request_body(content = RollbackRequest, description = "Optional reason"),
    responses(
        (status = 200, description = "The earlier version serves", body = PluginView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 409, description = "No earlier version", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn rollback_plugin(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<PluginView>, ApiError> {
    user.require(&state, Role::Operator, "plugins.rollback").await?;
    let request: Option<RollbackRequest> = optional_body(&body)?;
    let reason = request.and_then(|r| r.reason).unwrap_or_else(|| "rolled back by an operator".to_owned());
    state.runtime.rollback(&name, &format!("user:{}", user.principal.id), &reason).await?;
    shown(&state, &name).await
}

/// Which version an operator upgrades to.
#[derive(serde::Deserialize, ToSchema)]
pub struct UpgradeRequest {
    /// A semver range (`^1.2`, `1.2.3`, `~1.2`); the newest version by default.
    #[serde(default)]
    pub version: Option<String>,
}

/// Upgrade a plugin from the registry.
///
/// Resolves the range in the host's registry (`yiwang serve --registry`),
/// checks the package's digest, signature and publisher against the trust
/// policy, installs it into the plugins folder (the version before is kept
/// for a rollback) and applies it: it serves at once, or waits for approval
/// when it asks for more grants. Operators only; `409` without a registry or
/// a trust policy, `422` for a package refused, `404` for no match.
#[utoipa::path(
    post,
    path = "/api/plugins/{name}/upgrade",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin name")),
    request_body(content = UpgradeRequest, description = "Optional version range"),
    responses(
        (status = 200, description = "Upgraded, unchanged, or held for approval (see `held`)", body = PluginView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such plugin or no version matches", body = ErrorBody),
        (status = 409, description = "No registry or trust policy configured", body = ErrorBody),
        (status = 422, description = "The package was refused; the message says why", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn upgrade_plugin(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<PluginView>, ApiError> {
    user.require(&state, Role::Operator, "plugins.upgrade").await?;
    let request = optional_body::<UpgradeRequest>(&body)?.unwrap_or(UpgradeRequest { version: None });
    let runtime = &state.runtime;
    runtime.slot(&name).ok_or_else(|| ApiError::NotFound(format!("no plugin `{name}`")))?;
    let settings = runtime.settings();
    let location = settings.registry.clone().ok_or_else(|| {
        ApiError::Conflict("this host has no registry to upgrade from: start it with `--registry URL`".into())
    })?;
    let policy = settings.trust.clone().ok_or_else(|| {
        ApiError::Conflict("this host has no trust policy (`<data-dir>/trust.toml`): it installs only packages it can check".into())
    })?;
    let plugins_dir = settings.plugins_dir.clone().ok_or_else(|| ApiError::Conflict("this host has no plugins folder".into()))?;
    let spec = match &request.version {
        Some(range) => format!("{name}@{range}"),
        None => name.clone(),
    };
    let spec = yiwang_registry::PluginSpec::parse(&spec).map_err(|e| ApiError::Unprocessable(format!("version: {e}")))?;
    let registry = yiwang_registry::Registry::open(&location)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("registry `{location}`: {e}")))?;
    let installed = yiwang_registry::install(&registry, &spec, &plugins_dir, &policy).await.map_err(|e| match &e {
        yiwang_registry::InstallError::Registry(
            yiwang_registry::RegistryError::NoMatch { .. } | yiwang_registry::RegistryError::UnknownPlugin { .. },
        ) => ApiError::NotFound(e.to_string()),
        _ => ApiError::Unprocessable(e.to_string()),
    })?;
    let actor = format!("user:{}", user.principal.id);
    runtime.apply_package(&installed.path, &actor).await.map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    shown(&state, &name).await
}

/// A plugin's dead letters.
///
/// Events the plugin failed on again and again (traps, CPU, memory, stack or
/// timeouts, each tried three times), oldest first, each whole. Operators only:
/// events carry what was reported, by whom and where.
#[utoipa::path(
    get,
    path = "/api/plugins/{name}/dead-letters",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin name")),
    responses(
        (status = 200, description = "The dead letters", body = Vec<DeadLetter>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
async fn list_dead_letters(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    user.require(&state, Role::Operator, "plugins.dead-letters").await?;
    Ok(Json(dead_letters::list(&state.services.db, Some(&name)).await?))
}

/// Retry a dead letter.
///
/// Hands the event to the plugin's serving version now. Handled: the dead
/// letter is gone. Failed again: it stays, with one more attempt and the new
/// error. Operators only.
#[utoipa::path(
    post,
    path = "/api/plugins/{name}/dead-letters/{id}",
    tag = "plugins",
    params(
        ("name" = String, Path, description = "The plugin name"),
        ("id" = String, Path, description = "The dead letter's id"),
    ),
    responses(
        (status = 200, description = "What the retry came to", body = RetryOutcome),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such plugin or dead letter", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn retry_dead_letter(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<RetryOutcome>, ApiError> {
    user.require(&state, Role::Operator, "plugins.dead-letters.retry").await?;
    let actor = format!("user:{}", user.principal.id);
    match state.runtime.retry_dead_letter(&name, &id, &actor).await? {
        Some(outcome) => Ok(Json(outcome)),
        None => Err(ApiError::NotFound(format!("plugin `{name}` is not loaded or has no dead letter `{id}`"))),
    }
}

/// Drop a dead letter.
///
/// The event is not handed to the plugin again. Operators only; audited.
#[utoipa::path(
    delete,
    path = "/api/plugins/{name}/dead-letters/{id}",
    tag = "plugins",
    params(
        ("name" = String, Path, description = "The plugin name"),
        ("id" = String, Path, description = "The dead letter's id"),
    ),
    responses(
        (status = 204, description = "Dropped"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such dead letter", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn drop_dead_letter(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, id)): Path<(String, String)>,
) -> Result<axum::http::StatusCode, ApiError> {
    user.require(&state, Role::Operator, "plugins.dead-letters.drop").await?;
    let db = &state.services.db;
    if !dead_letters::drop_letter(db, Some(&name), &id).await? {
        return Err(ApiError::NotFound(format!("plugin `{name}` has no dead letter `{id}`")));
    }
    let actor = format!("user:{}", user.principal.id);
    state.services.audit.record_host("plugin.dead-letter.drop", &actor, "ok", &format!("{name}: {id}")).await;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
