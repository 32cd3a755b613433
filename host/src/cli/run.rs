//! `weir run -c FILE`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::config;
use crate::pipeline::Pipeline;
use crate::pipeline::clock::Clock;
use crate::plugin::PluginEngine;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The pipeline config (YAML).
    #[arg(short, long, env = "WEIR_CONFIG")]
    config: PathBuf,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let config = config::load(&args.config)?;
        let engine = PluginEngine::new(Some(config.cache_dir.clone())).map_err(|e| anyhow::anyhow!("starting the WebAssembly engine: {e:#}"))?;
        let admin_address = config.admin;
        let pipeline = Pipeline::build(config, engine, Clock::system())?;

        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        let state = AdminState::default();
        if let Some(address) = admin_address {
            let listener = admin::serve(address, state.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(error) = listener.await {
                    tracing::error!(%address, %error, "admin API failed");
                }
            });
        }
        state.ready.store(true, Ordering::Release);
        tracing::info!(config = %args.config.display(), "pipeline running");
        pipeline.run(shutdown.clone()).await?;
        shutdown.cancel();
        tracing::info!("pipeline stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// First SIGINT/SIGTERM: drain and stop. Second: exit at once.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("cannot listen for signals; stop weir with SIGKILL");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("stopping: draining queued records (signal again to exit at once)");
    shutdown.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    std::process::exit(130);
}
