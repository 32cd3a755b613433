//! The wasmtime engine all plugins share: component model, cranelift, epoch
//! interruption driven by a ticker thread, a linker with WASI and the
//! `weir:filter/host` imports, and an on-disk cache of compiled components
//! so a restart does not recompile.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::bindings::{CONTRACT_VERSION, FILTER_EXPORT, Filter};
use super::error::PluginError;
use super::host_api::HostState;
use super::limits::EPOCH_TICK;

/// The shared engine and linker. Cheap to clone.
#[derive(Clone)]
pub struct PluginEngine {
    pub(super) engine: Engine,
    pub(super) linker: Arc<Linker<HostState>>,
    cache_dir: Option<PathBuf>,
}

impl PluginEngine {
    /// An engine caching compiled components in `cache_dir` (none: no cache).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, wasmtime::Error> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Filter::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
        spawn_epoch_ticker(&engine);
        Ok(PluginEngine { engine, linker: Arc::new(linker), cache_dir })
    }

    /// Compile the component at `path` for the filter `plugin`, or load it
    /// from the cache, and check its contract version.
    pub fn load(&self, plugin: &str, path: &Path) -> Result<Component, PluginError> {
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read {
            plugin: plugin.into(),
            path: path.into(),
            source,
        })?;
        let cached = self.cache_dir.as_ref().map(|dir| dir.join(format!("{}.cwasm", self.cache_key(&bytes))));
        let component = match cached.as_deref().and_then(|file| self.load_cached(file)) {
            Some(component) => component,
            None => {
                let component = Component::new(&self.engine, &bytes).map_err(|e| PluginError::Compile {
                    plugin: plugin.into(),
                    path: path.into(),
                    reason: format!("{e:#}"),
                })?;
                if let Some(file) = &cached {
                    self.store_cached(file, &component);
                }
                component
            }
        };
        self.check_contract(plugin, path, &component)?;
        Ok(component)
    }

    /// The cache key: the component's bytes and everything about the engine
    /// that makes compiled code incompatible (wasmtime version, settings).
    fn cache_key(&self, bytes: &[u8]) -> String {
        let mut engine_hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut engine_hasher);
        let mut sha = Sha256::new();
        sha.update(engine_hasher.finish().to_le_bytes());
        sha.update(bytes);
        hex::encode(&sha.finalize()[..16])
    }

    fn load_cached(&self, file: &Path) -> Option<Component> {
        if !file.is_file() {
            return None;
        }
        // SAFETY: the file was written by `store_cached` from
        // `Component::serialize` of an engine with the same compatibility
        // hash (it is in the file name), and is replaced atomically.
        match unsafe { Component::deserialize_file(&self.engine, file) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "ignoring unusable compiled-plugin cache entry");
                None
            }
        }
    }

    fn store_cached(&self, file: &Path, component: &Component) {
        let write = || -> std::io::Result<()> {
            let bytes = component.serialize().map_err(std::io::Error::other)?;
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = file.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, file)
        };
        if let Err(e) = write() {
            tracing::warn!(file = %file.display(), error = %e, "cannot cache the compiled plugin; it will be recompiled next start");
        }
    }

    fn check_contract(&self, plugin: &str, path: &Path, component: &Component) -> Result<(), PluginError> {
        let contract = |reason: String| PluginError::Contract { plugin: plugin.into(), path: path.into(), reason };
        let ty = component.component_type();
        let mut found = None;
        for (name, _) in ty.exports(&self.engine) {
            if let Some(version) = name.strip_prefix(FILTER_EXPORT).and_then(|v| v.strip_prefix('@')) {
                found = Some(version.to_string());
            }
        }
        let Some(version) = found else {
            return Err(contract(format!(
                "does not export {FILTER_EXPORT}@{CONTRACT_VERSION}; is it a Weir filter built against wit/filter.wit?"
            )));
        };
        if compatible(&version, CONTRACT_VERSION) {
            Ok(())
        } else {
            Err(contract(format!(
                "built for contract weir:filter@{version}, but this host supports weir:filter@{CONTRACT_VERSION}; rebuild the plugin against a compatible wit/"
            )))
        }
    }
}

/// A digest of the file at `path` (`None` when unreadable), to notice a
/// plugin replaced on disk.
pub fn file_digest(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(hex::encode(&Sha256::digest(&bytes)[..16]))
}

/// Semver compatibility of a plugin's contract with the host's: the same
/// major and a minor no newer than the host's (it may import what this host
/// lacks); for 0.x the same minor, as a 0.x minor bump is breaking.
pub fn compatible(plugin: &str, host: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split(['.', '-', '+']);
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (parse(plugin), parse(host)) {
        (Some((0, pm)), Some((0, hm))) => pm == hm,
        (Some((pa, pm)), Some((ha, hm))) => pa == ha && pm <= hm,
        _ => false,
    }
}

/// Advance the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("weir-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread only fails when the OS is out of threads");
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn contract_versions_follow_semver() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.0.0", "1.4.0"));
        assert!(!compatible("1.4.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.9.0"));
        assert!(!compatible("garbage", "0.1.0"));
    }
}
