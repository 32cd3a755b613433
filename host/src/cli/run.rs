//! `weir run -c FILE`: run a pipeline, and reload it on SIGHUP, on
//! `POST /-/reload`, when a plugin file changes, and (with `--watch`) when
//! the config file changes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::config;
use crate::core::clock::Clock;
use crate::core::metrics::catalogue::RELOADS;
use crate::core::metrics::registry;
use crate::pipeline::{Pipeline, Reloader, Stop};
use crate::plugin::PluginEngine;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The pipeline config (YAML).
    #[arg(short, long, env = "WEIR_CONFIG")]
    config: PathBuf,
    /// Reload when the config file changes (plugin files are always watched).
    #[arg(long)]
    watch: bool,
}

/// How often watched files are checked. Changes must look the same on two
/// checks in a row before a reload, so a file still being written is not
/// read half-way.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let config = config::load(&args.config)?;
        let engine = PluginEngine::new(Some(config.cache_dir.clone()))
            .map_err(|e| anyhow::anyhow!("starting the WebAssembly engine: {e:#}"))?;
        let admin = config.admin.clone();
        let plugin_files: Vec<PathBuf> = config.filters.iter().map(|f| f.wasm.clone()).collect();
        // Off the runtime's threads: a plugin that writes to stderr while it
        // is configured makes WASI block on the runtime, which panics there.
        let pipeline = tokio::task::spawn_blocking(move || Pipeline::build(config, engine, Clock::system()))
            .await
            .context("building the pipeline")??;
        let trigger = ReloadTrigger {
            config: args.config.clone(),
            reloader: pipeline.reloader(),
            plugin_files: Arc::new(Mutex::new(plugin_files)),
        };

        let shutdown = CancellationToken::new();
        let hurry = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone(), hurry.clone()));
        tokio::spawn(trigger.clone().on_sighup());
        tokio::spawn(trigger.clone().watch_plugins());
        if args.watch {
            tokio::spawn(trigger.clone().watch_config());
        }
        let reload_trigger = trigger.clone();
        let queues = pipeline.queues();
        let state = AdminState {
            reload: Some(Arc::new(move |overrides| {
                let trigger = reload_trigger.clone();
                Box::pin(async move { trigger.reload_with("admin API", overrides).await })
            })),
            console: pipeline.console(),
            token: admin.as_ref().and_then(|a| a.token.clone()),
            health: Some(Arc::new(move || queues.stalls().iter().map(ToString::to_string).collect())),
            ..AdminState::default()
        };
        if let Some(address) = admin.map(|a| a.address) {
            let listener = admin::serve(address, state.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(error) = listener.await {
                    tracing::error!(%address, %error, "admin API failed");
                }
            });
        }
        tracing::info!(config = %args.config.display(), "pipeline starting");
        let stop = Stop { shutdown: shutdown.clone(), hurry };
        let drained = pipeline.run(stop, state.ready.clone()).await?;
        shutdown.cancel();
        tracing::info!(abandoned = drained.abandoned, failed_inputs = drained.failed_inputs, "pipeline stopped");
        // Exit 1 says the run was incomplete: records were given up, or an
        // input stopped with an error (what it was to read was not read), so
        // a supervisor or a batch job sees the failure.
        let complete = drained.abandoned == 0 && drained.failed_inputs == 0;
        Ok(if complete { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}

/// Re-reads the config file and hands it to the running pipeline.
#[derive(Clone)]
struct ReloadTrigger {
    config: PathBuf,
    reloader: Reloader,
    /// The plugin files of the running filters, for the watcher.
    plugin_files: Arc<Mutex<Vec<PathBuf>>>,
}

impl ReloadTrigger {
    /// Reload, logging and counting the outcome (`weir_reloads_total`).
    async fn reload(&self, cause: &str) -> Result<serde_json::Value, String> {
        self.reload_with(cause, serde_json::Map::new()).await
    }

    /// Reload with the config blocks of the filters named in `overrides`
    /// replaced (the console's "apply"). The file is not written: the next
    /// reload from it goes back to what it says.
    async fn reload_with(
        &self,
        cause: &str,
        overrides: serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        tracing::info!(cause, config = %self.config.display(), "reloading");
        let outcome =
            match config::load(&self.config).map_err(|e| e.to_string()).and_then(|c| replace_blocks(c, overrides)) {
                Err(error) => Err(error),
                Ok(config) => {
                    let files: Vec<PathBuf> = config.filters.iter().map(|f| f.wasm.clone()).collect();
                    let plan = self.reloader.reload(config).await.map_err(|e| e.to_string());
                    if plan.is_ok() {
                        *self.plugin_files.lock().unwrap_or_else(|p| p.into_inner()) = files;
                    }
                    plan.map(|plan| serde_json::to_value(plan).unwrap_or_default())
                }
            };
        let result = match &outcome {
            Ok(changes) => {
                tracing::info!(cause, %changes, "reloaded");
                "applied"
            }
            Err(error) => {
                tracing::warn!(cause, %error, "reload refused; the running pipeline is unchanged");
                "refused"
            }
        };
        registry().counter(&RELOADS, &[result]).add(1);
        outcome
    }

    async fn on_sighup(self) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload through the admin API instead");
            return;
        };
        while hup.recv().await.is_some() {
            let _ = self.reload("SIGHUP").await;
        }
    }

    async fn watch_config(self) {
        let path = self.config.clone();
        watch(move || vec![path.clone()], || async { self.reload("config file changed").await.is_ok() }).await;
    }

    async fn watch_plugins(self) {
        let files = self.plugin_files.clone();
        watch(
            move || files.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            || async { self.reload("plugin file changed").await.is_ok() },
        )
        .await;
    }
}

/// `config` with the `config:` blocks of the filters named in `overrides`
/// replaced.
fn replace_blocks(
    mut config: config::Config,
    overrides: serde_json::Map<String, serde_json::Value>,
) -> Result<config::Config, String> {
    for (name, block) in overrides {
        let filter = config.filters.iter_mut().find(|f| f.name == name);
        filter.ok_or_else(|| format!("no filter named {name:?} in {}", "the config"))?.config = block;
    }
    Ok(config)
}

/// Poll the files `paths()` names; when their metadata changed and then
/// held still for one interval, call `changed`.
async fn watch<F, Fut>(paths: impl Fn() -> Vec<PathBuf>, changed: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let stamp = |paths: &[PathBuf]| -> Vec<Option<(std::time::SystemTime, u64)>> {
        paths.iter().map(|p| stamp_of(p)).collect()
    };
    let mut seen = stamp(&paths());
    let mut pending: Option<Vec<Option<(std::time::SystemTime, u64)>>> = None;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let now = stamp(&paths());
        match &pending {
            Some(previous) if *previous == now => {
                pending = None;
                // Refused reloads are logged by the pipeline; wait for the next change.
                changed().await;
                seen = stamp(&paths());
            }
            _ if now != seen => pending = Some(now),
            _ => pending = None,
        }
    }
}

fn stamp_of(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// First SIGINT/SIGTERM: drain and stop, within `shutdown_timeout`.
/// Second: cut the drain short, still saving filter state. Third: exit at
/// once.
async fn stop_on_signal(shutdown: CancellationToken, hurry: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("cannot listen for signals; stop weir with SIGKILL");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("stopping: draining queued records (signal again to stop sooner, saving filter state)");
    shutdown.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::warn!("second signal: giving up what is still queued, saving filter state (a third exits at once)");
    hurry.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    // 128 + SIGINT, as shells report a process stopped by Ctrl-C.
    std::process::exit(130);
}
