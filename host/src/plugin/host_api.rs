//! The host side of the contract: the `weir:filter/host` imports (log,
//! clock, counters) and the sandbox's WASI context, which grants nothing
//! unless the config says so. The guest's stderr is kept (its last few KiB)
//! so a panic's message can be put in the trap's reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{HostImports, Level, TypesImports};
use super::limits::{Grants, MemoryCap};
use crate::core::clock::Clock;
use crate::core::metrics::catalogue::{FILTER_EVENTS, RECORDS_DROPPED};
use crate::core::metrics::{Counter, registry};

/// Everything a plugin's store holds.
pub struct HostState {
    pub(super) plugin: Arc<str>,
    pub(super) clock: Clock,
    pub(super) memory: MemoryCap,
    pub(super) stderr: GuestStderr,
    counters: HashMap<String, Counter>,
    /// Set while a `snapshot` is taken for a checkpoint: the instance goes
    /// on, so what the filter counts as handed over is not counted.
    pub(super) checkpointing: bool,
    wasi: WasiCtx,
    table: ResourceTable,
}

/// Counter names a plugin may create: beyond this, adds are dropped with a
/// warning so a plugin cannot blow up the metrics' cardinality.
const MAX_COUNTERS_PER_PLUGIN: usize = 64;

/// Counters named with this prefix and a reason are drops
/// (`weir_records_dropped_total`), not plugin events (see `wit/README.md`).
const DROPPED_PREFIX: &str = "dropped_";

impl HostState {
    /// A sandbox for the plugin named `plugin`.
    pub fn new(plugin: Arc<str>, clock: Clock, memory_limit: u64, grants: &Grants) -> Result<Self, std::io::Error> {
        let stderr = GuestStderr::default();
        let mut wasi = sandbox(&clock, grants, &stderr)?;
        if grants.network {
            // TCP and UDP are off in wasmtime-wasi until allowed, whatever
            // addresses the check lets through.
            wasi.inherit_network().allow_ip_name_lookup(true).allow_tcp(true).allow_udp(true);
        }
        Ok(HostState {
            plugin,
            clock,
            memory: MemoryCap::new(memory_limit),
            stderr,
            counters: HashMap::new(),
            checkpointing: false,
            wasi: wasi.build(),
            table: ResourceTable::new(),
        })
    }
}

/// The WASI context every plugin gets, components and core modules alike:
/// stderr (and stdout, which is Weir's own) kept for trap reasons, and
/// only the environment, folders and real clock that `grants` gives.
///
/// # Errors
/// When a granted folder cannot be opened.
pub(super) fn sandbox(clock: &Clock, grants: &Grants, stderr: &GuestStderr) -> std::io::Result<WasiCtxBuilder> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stderr.clone());
    wasi.stderr(stderr.clone());
    for (name, value) in &grants.env {
        wasi.env(name, value);
    }
    for dir in &grants.dirs {
        let perms = if dir.writable { wasmtime_wasi::FsPerms::ReadWrite } else { wasmtime_wasi::FsPerms::ReadOnly };
        wasi.preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| std::io::Error::other(format!("granting {}: {e}", dir.host.display())))?;
    }
    if !grants.wall_clock {
        wasi.wall_clock(HostClock(clock.clone()));
        wasi.monotonic_clock(HostClock(clock.clone()));
    }
    Ok(wasi)
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl TypesImports for HostState {}

impl HostImports for HostState {
    fn log(&mut self, level: Level, message: String) {
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn now(&mut self) -> i64 {
        self.clock.now()
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        if self.checkpointing {
            return;
        }
        if let Some(counter) = self.counters.get(&name) {
            counter.add(delta);
            return;
        }
        if self.counters.len() >= MAX_COUNTERS_PER_PLUGIN {
            tracing::warn!(plugin = &*self.plugin, counter = name, "too many counter names; dropping this one");
            return;
        }
        // `dropped_<reason>`: records the filter consumed on purpose without
        // emitting anything for them, counted with every other drop.
        let counter = match name.strip_prefix(DROPPED_PREFIX).filter(|reason| !reason.is_empty()) {
            Some(reason) => registry().counter(&RECORDS_DROPPED, &[&format!("filter {}", self.plugin), reason]),
            None => registry().counter(&FILTER_EVENTS, &[&self.plugin, &name]),
        };
        counter.add(delta);
        self.counters.insert(name, counter);
    }
}

/// The host clock seen through WASI's clocks, so a plugin that uses
/// `SystemTime::now()` still sees the time tests set.
struct HostClock(Clock);

impl HostWallClock for HostClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(u64::try_from(self.0.now()).unwrap_or(0))
    }
}

impl HostMonotonicClock for HostClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        u64::try_from(self.0.now()).unwrap_or(0)
    }
}

/// Bytes of the guest's stderr kept for trap reasons.
const STDERR_TAIL: usize = 4096;

/// The guest's stderr: never refuses a write (a failing stderr makes Rust's
/// `eprintln!` panic), keeps the last few KiB.
#[derive(Clone, Default)]
pub struct GuestStderr(Arc<Mutex<Vec<u8>>>);

impl GuestStderr {
    fn push(&self, bytes: &[u8]) {
        let mut tail = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tail.extend_from_slice(bytes);
        if tail.len() > STDERR_TAIL {
            let cut = tail.len() - STDERR_TAIL;
            tail.drain(..cut);
        }
    }

    /// Take what was written since the last call, as text.
    pub fn take(&self) -> String {
        let mut tail = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let text = String::from_utf8_lossy(&tail).trim().to_string();
        tail.clear();
        text
    }
}

impl IsTerminal for GuestStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStderr {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for GuestStderr {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(STDERR_TAIL)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestStderr {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestStderr {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
