//! The wasmtime engine all plugins share: component model, cranelift, epoch
//! interruption driven by a ticker thread, a linker with WASI and the
//! `weir:filter/host` imports for components, another with WASI preview 1
//! for Fluent Bit-ABI core modules, and an on-disk cache of compiled code
//! so a restart does not recompile.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Module};

use super::bindings::{CONTRACT_VERSION, FILTER_EXPORT, Filter};
use super::error::{PluginError, PluginErrorKind};
use super::fluent_bit::ModuleState;
use super::host_api::HostState;
use super::limits::EPOCH_TICK;

/// The shared engine and linker. Cheap to clone.
#[derive(Clone)]
pub struct PluginEngine {
    pub(super) engine: Engine,
    pub(super) linker: Arc<Linker<HostState>>,
    pub(super) module_linker: Arc<wasmtime::Linker<ModuleState>>,
    cache_dir: Option<PathBuf>,
}

impl PluginEngine {
    /// An engine caching compiled components in `cache_dir` (none: no
    /// cache). It starts a thread that advances the epoch for deadlines
    /// every [`EPOCH_TICK`], living as long as the engine.
    ///
    /// # Errors
    /// When wasmtime refuses the settings, the WASI or host imports cannot
    /// be linked, or the thread cannot be spawned.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, wasmtime::Error> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Filter::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
        let mut module_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut module_linker, |state: &mut ModuleState| &mut state.wasi)?;
        spawn_epoch_ticker(&engine)?;
        Ok(PluginEngine { engine, linker: Arc::new(linker), module_linker: Arc::new(module_linker), cache_dir })
    }

    /// Compile the component at `path` for the filter `plugin`, or load it
    /// from the cache, and check its contract version.
    pub fn load(&self, plugin: &str, path: &Path) -> Result<Component, PluginError> {
        let bytes = read(plugin, path)?;
        if is_core_module(&bytes) {
            return Err(PluginError::new(
                plugin,
                PluginErrorKind::Contract {
                    path: path.into(),
                    reason: "is a core WebAssembly module, not a component; for a module written to Fluent Bit's filter_wasm ABI set `abi: fluent-bit` and `function:`".into(),
                },
            ));
        }
        let component = self.compile_cached(plugin, path, &bytes)?;
        self.check_contract(plugin, path, &component)?;
        Ok(component)
    }

    /// Compile `bytes` (a component or a core module), read from `path`,
    /// bypassing the cache.
    pub(super) fn compile<T: Compiled>(&self, plugin: &str, path: &Path, bytes: &[u8]) -> Result<T, PluginError> {
        T::compile(&self.engine, bytes).map_err(|e| {
            PluginError::new(plugin, PluginErrorKind::Compile { path: path.into(), reason: format!("{e:#}") })
        })
    }

    /// Compile the core module at `path` (a Fluent Bit-ABI filter), or load
    /// it from the cache.
    pub fn load_module(&self, plugin: &str, path: &Path) -> Result<Module, PluginError> {
        let bytes = read(plugin, path)?;
        if !is_core_module(&bytes) && bytes.starts_with(b"\0asm") {
            return Err(PluginError::new(
                plugin,
                PluginErrorKind::Contract {
                    path: path.into(),
                    reason: "is a component, not a core module; `abi: fluent-bit` takes the core module Fluent Bit loads (drop `abi:` for a Weir component)".into(),
                },
            ));
        }
        self.compile_cached(plugin, path, &bytes)
    }

    fn compile_cached<T: Compiled>(&self, plugin: &str, path: &Path, bytes: &[u8]) -> Result<T, PluginError> {
        let cached = self.cache_dir.as_ref().map(|dir| dir.join(format!("{}.cwasm", self.cache_key(bytes))));
        if let Some(compiled) = cached.as_deref().and_then(|file| self.load_cached(file)) {
            return Ok(compiled);
        }
        let compiled = self.compile::<T>(plugin, path, bytes)?;
        if let Some(file) = &cached {
            self.store_cached(file, &compiled);
        }
        Ok(compiled)
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

    fn load_cached<T: Compiled>(&self, file: &Path) -> Option<T> {
        if !file.is_file() {
            return None;
        }
        if let Err(why) = private_to_us(file) {
            tracing::warn!(file = %file.display(), why, "ignoring compiled-plugin cache entry others could have written");
            return None;
        }
        // SAFETY: a cache entry is native code Weir runs, so this trusts
        // whoever can write to the cache folder: Weir itself, and nobody else
        // as `private_to_us` checks. The file was written by `store_cached`
        // from `Component::serialize` of an engine with the same
        // compatibility hash (it is in the file name), and replaced
        // atomically, so it is never read half-written.
        match unsafe { T::deserialize_file(&self.engine, file) } {
            Ok(compiled) => Some(compiled),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "ignoring unusable compiled-plugin cache entry");
                None
            }
        }
    }

    fn store_cached<T: Compiled>(&self, file: &Path, compiled: &T) {
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            let bytes = compiled.serialize().map_err(std::io::Error::other)?;
            // Private to this user whatever the umask, as `private_to_us` expects.
            if let Some(dir) = file.parent() {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            }
            let tmp = file.with_extension(format!("tmp{}", std::process::id()));
            let mut out = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            out.write_all(&bytes)?;
            drop(out);
            std::fs::rename(&tmp, file)
        };
        if let Err(e) = write() {
            tracing::warn!(file = %file.display(), error = %e, "cannot cache the compiled plugin; it will be recompiled next start");
        }
    }

    /// Refuse a component that does not export the filter interface, or
    /// exports it for a contract this host is not compatible with; the
    /// error names both versions. Returns the component's version.
    pub(super) fn check_contract(
        &self,
        plugin: &str,
        path: &Path,
        component: &Component,
    ) -> Result<String, PluginError> {
        let contract =
            |reason: String| PluginError::new(plugin, PluginErrorKind::Contract { path: path.into(), reason });
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
            Ok(version)
        } else {
            Err(contract(format!(
                "built for contract weir:filter@{version}, but this host supports weir:filter@{CONTRACT_VERSION}; rebuild the plugin against a compatible wit/"
            )))
        }
    }
}

/// The bytes of the component file at `path`, for the filter `plugin`.
pub(super) fn read(plugin: &str, path: &Path) -> Result<Vec<u8>, PluginError> {
    std::fs::read(path).map_err(|source| PluginError::new(plugin, PluginErrorKind::Read { path: path.into(), source }))
}

/// Whether `bytes` are a core module: the `\0asm` magic, then version 1
/// (a component's header has layer 1 there instead).
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm\x01\0\0\0")
}

/// What the compile cache holds: compiled components and core modules.
pub(super) trait Compiled: Sized {
    fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self>;
    /// # Safety
    /// As [`Component::deserialize_file`]: the file must come from
    /// [`Compiled::serialize`] of a compatible engine.
    unsafe fn deserialize_file(engine: &Engine, file: &Path) -> wasmtime::Result<Self>;
    fn serialize(&self) -> wasmtime::Result<Vec<u8>>;
}

impl Compiled for Component {
    fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        Component::new(engine, bytes)
    }
    unsafe fn deserialize_file(engine: &Engine, file: &Path) -> wasmtime::Result<Self> {
        // SAFETY: passed on to the caller (see the trait).
        unsafe { Component::deserialize_file(engine, file) }
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Component::serialize(self)
    }
}

impl Compiled for Module {
    fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        Module::new(engine, bytes)
    }
    unsafe fn deserialize_file(engine: &Engine, file: &Path) -> wasmtime::Result<Self> {
        // SAFETY: passed on to the caller (see the trait).
        unsafe { Module::deserialize_file(engine, file) }
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Module::serialize(self)
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

/// Whether neither `file` nor its folder is writable by group or others:
/// a cache entry anyone else could write would let them run native code as
/// Weir.
fn private_to_us(file: &Path) -> Result<(), &'static str> {
    use std::os::unix::fs::PermissionsExt;
    let writable_by_others =
        |path: &Path| std::fs::metadata(path).map_or(true, |m| m.permissions().mode() & 0o022 != 0);
    if writable_by_others(file) {
        return Err("the file is writable by group or others");
    }
    match file.parent() {
        Some(dir) if writable_by_others(dir) => Err("its folder is writable by group or others"),
        _ => Ok(()),
    }
}

/// Advance the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
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
        .map(drop)
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
