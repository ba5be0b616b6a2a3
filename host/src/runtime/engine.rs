//! The wasmtime engine: pooling allocator, epoch interruption, and the on-disk
//! cache of precompiled components.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; CPU deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Frames kept in the backtrace of a trap (enough to recognise deep recursion).
pub const BACKTRACE_FRAMES: usize = 64;

/// Engine-wide limits.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Component instances the pool holds at once, over all plugins.
    pub max_instances: u32,
    /// The largest linear memory any plugin may be granted, in MiB.
    pub max_memory_mib: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings { max_instances: 256, max_memory_mib: 1024 }
    }
}

/// Build the engine every plugin runs in and start its epoch ticker.
pub fn build_engine(settings: &EngineSettings) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    let n = settings.max_instances;
    pool.total_component_instances(n)
        // A Rust component has a handful of core instances (the program, the
        // WASI adapter, shims); each may have a memory and a table.
        .total_core_instances(n * 8)
        .total_memories(n * 2)
        .total_tables(n * 8)
        .total_stacks(n)
        .max_memory_size((settings.max_memory_mib as usize) << 20)
        // Keep a little of each freed slot resident so that reuse is cheap
        // without letting idle memory grow.
        .linear_memory_keep_resident(64 << 10)
        .table_keep_resident(16 << 10);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(512 << 10)
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(BACKTRACE_FRAMES))
        .async_stack_size(1 << 20)
        // Reserve only what the largest memory needs; bounds checks cover the rest.
        .memory_reservation(settings.max_memory_mib << 20)
        .memory_guard_size(64 << 10)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config)?;
    let weak = engine.weak();
    std::thread::Builder::new().name("yiwang-epoch".into()).spawn(move || {
        loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        }
    })?;
    Ok(engine)
}

/// Epoch ticks for a CPU budget in milliseconds (at least one).
pub fn ticks_for(cpu_ms: u64) -> u64 {
    cpu_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1)
}

/// The sha256 of a component, lowercase hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded precompiled from the cache.
    Hit,
    /// Compiled now (and stored, if the cache has a folder).
    Compiled,
}

/// Precompiled components on disk, keyed by engine compatibility and content
/// digest: `<dir>/<engine-hash>/<sha256>.cwasm`. A different wasmtime version or
/// configuration gets a different folder, so a stale artefact is never loaded.
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    /// A cache under `base`, or none (compile every time) when `base` is `None`.
    pub fn new(engine: &Engine, base: Option<&Path>) -> Self {
        let dir = base.map(|b| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            b.join(format!("{:016x}", h.finish()))
        });
        ComponentCache { dir }
    }

    /// Load the component with this digest, compiling it if it is not cached.
    pub fn load(&self, engine: &Engine, bytes: &[u8], digest: &str) -> anyhow::Result<(Component, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
        };
        let path = dir.join(format!("{digest}.cwasm"));
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(path = %path.display(), "cached component unusable, recompiling: {e:#}"),
            }
        }
        // Compile first: bytes that are not a component fail here, before anything is written.
        let serialized = engine.precompile_component(bytes)?;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!("{digest}.cwasm.tmp-{}", std::process::id()));
        std::fs::write(&tmp, &serialized)?;
        std::fs::rename(&tmp, &path)?;
        Ok((deserialize(engine, &path)?, CacheOutcome::Compiled))
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // Read, rather than map, the file: a mapped file that someone truncates
    // while the host runs would crash it (SIGBUS); a copy in memory cannot.
    let bytes = std::fs::read(path)?;
    // SAFETY: the file was written by `precompile_component` of an engine with the
    // same compatibility hash (the folder name), into the host's own data
    // directory, by an atomic rename; wasmtime still checks its header and version.
    Ok(unsafe { Component::deserialize(engine, &bytes)? })
}
