//! The record path: inputs -> filter chain -> outputs, with bounded queues
//! between them (backpressure), batching, acknowledgements and dead letters.
//!
//! [`Pipeline::build`] instantiates and configures every filter (so a bad
//! plugin or plugin config stops start-up with a clear error);
//! [`Pipeline::run`] starts outputs, the chain thread and inputs, and
//! returns when every input has ended (a file read once, stdin at EOF) or
//! `shutdown` fires, after draining what was queued. When the inputs ended
//! by themselves, filters get a last `tick` at the end of time so windows
//! still open are emitted; on shutdown, filter state is saved instead (when
//! `state_dir` is set) and restored at the next start.

pub mod ack;
pub mod clock;
pub mod dead_letter;
mod error;
pub mod graph;
pub mod output_task;
pub mod record;
pub mod routing;

use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use error::PipelineError;

use crate::config::Config;
use crate::inputs::InputContext;
use crate::plugin::{FilterInstance, PluginEngine};
use clock::Clock;
use graph::{Chain, Router, Stage};
use output_task::{DeadLetterRoute, RetryPolicy};
use record::Timestamp;

/// A built pipeline, ready to run.
pub struct Pipeline {
    config: Config,
    clock: Clock,
    chain: Chain,
    output_queues: Vec<mpsc::Receiver<record::Batch>>,
    router_targets: Vec<(routing::TagMatch, mpsc::Sender<record::Batch>)>,
}

/// The timestamp given to the last `tick` when every input has ended, so
/// time-driven filters flush everything they hold.
pub const END_OF_TIME: Timestamp = i64::MAX;

impl Pipeline {
    /// Load and configure every filter, restoring saved state if any.
    pub fn build(config: Config, engine: PluginEngine, clock: Clock) -> Result<Pipeline, PipelineError> {
        let mut stages = Vec::with_capacity(config.filters.len());
        for spec in &config.filters {
            let mut instance = FilterInstance::new(&engine, spec, clock.clone())?;
            if let Some(file) = state_file(&config, &spec.name)
                && file.is_file()
            {
                let state = std::fs::read(&file).map_err(|source| PipelineError::State { file: file.clone(), source })?;
                instance.restore(&state).map_err(|e| PipelineError::Restore { file: file.clone(), source: e })?;
                tracing::info!(filter = spec.name, file = %file.display(), bytes = state.len(), "restored filter state");
            }
            stages.push(Stage::new(instance));
        }
        let mut output_queues = Vec::new();
        let mut router_targets = Vec::new();
        for spec in &config.outputs {
            let (tx, rx) = mpsc::channel(config.pipeline.queue_capacity);
            router_targets.push((spec.matches.clone(), tx));
            output_queues.push(rx);
        }
        let router = Router::new(router_targets.clone(), config.dead_letter_tag.clone());
        let chain = Chain::new(stages, router, engine, config.pipeline.batch_max_records);
        Ok(Pipeline { config, clock, chain, output_queues, router_targets })
    }

    /// Run until every input ends or `shutdown` fires; see the module docs.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), PipelineError> {
        let Pipeline { config, clock, mut chain, output_queues, router_targets } = self;

        let mut outputs = Vec::new();
        let mut dead_letter_outputs = Vec::new();
        for (spec, queue) in config.outputs.iter().zip(output_queues) {
            let output = spec.config.build(&spec.name).await?;
            let route = DeadLetterRoute::new(&router_targets, config.dead_letter_tag.clone());
            let retry = RetryPolicy { max_attempts: spec.retry.max_attempts };
            let task = tokio::spawn(output_task::run(spec.name.clone(), output, queue, spec.batch, retry, route));
            if spec.matches.matches(&config.dead_letter_tag) {
                dead_letter_outputs.push(task);
            } else {
                outputs.push(task);
            }
        }
        // Outputs that take dead letters stay open until the others have
        // finished: an output still draining at shutdown can refuse records,
        // and their dead letters must still have somewhere to go.
        let keep_dead_letter_queues_open: Vec<_> = router_targets
            .iter()
            .filter(|(m, _)| m.matches(&config.dead_letter_tag))
            .map(|(_, sender)| sender.clone())
            .collect();
        // Otherwise the chain's router holds the only senders from here on,
        // so output queues close when the chain finishes.
        drop(router_targets);

        let (input_tx, mut input_rx) = mpsc::channel(config.pipeline.queue_capacity);
        let mut inputs = Vec::new();
        for spec in &config.inputs {
            let input = spec.config.build()?;
            let ctx = InputContext::new(
                &spec.name,
                spec.tag.clone(),
                config.pipeline.batch_max_records,
                clock.clone(),
                shutdown.clone(),
                input_tx.clone(),
                config.dead_letter_tag.clone(),
            );
            let name = spec.name.clone();
            inputs.push(tokio::spawn(async move {
                if let Err(error) = input.run(ctx).await {
                    tracing::error!(input = name, %error, "input stopped");
                }
            }));
        }
        drop(input_tx);

        let runtime = tokio::runtime::Handle::current();
        let tick_interval = config.pipeline.tick_interval;
        let chain_shutdown = shutdown.clone();
        let chain_clock = clock.clone();
        let chain_thread = std::thread::Builder::new()
            .name("weir-chain".into())
            .spawn(move || {
                chain.run(&runtime, &mut input_rx, tick_interval, || chain_clock.now());
                if !chain_shutdown.is_cancelled() {
                    chain.tick(END_OF_TIME);
                }
                chain
            })
            .map_err(PipelineError::Thread)?;

        for input in inputs {
            let _ = input.await;
        }
        let mut chain = tokio::task::spawn_blocking(move || chain_thread.join())
            .await
            .map_err(|_| PipelineError::ChainPanicked)?
            .map_err(|_| PipelineError::ChainPanicked)?;
        save_state(&config, &mut chain);
        drop(chain);
        for output in outputs {
            let _ = output.await;
        }
        drop(keep_dead_letter_queues_open);
        for output in dead_letter_outputs {
            let _ = output.await;
        }
        Ok(())
    }
}

fn state_file(config: &Config, filter: &str) -> Option<PathBuf> {
    config.state_dir.as_ref().map(|dir| dir.join(format!("{filter}.state")))
}

fn save_state(config: &Config, chain: &mut Chain) {
    for stage in chain.stages_mut() {
        let instance = stage.instance_mut();
        let Some(file) = state_file(config, instance.name()) else { return };
        let result = instance.snapshot().map_err(|e| e.to_string()).and_then(|state| {
            let tmp = file.with_extension("state.tmp");
            std::fs::create_dir_all(file.parent().unwrap_or(&file))
                .and_then(|()| std::fs::write(&tmp, &state))
                .and_then(|()| std::fs::rename(&tmp, &file))
                .map_err(|e| e.to_string())
        });
        match result {
            Ok(()) => tracing::info!(filter = %instance.name(), file = %file.display(), "saved filter state"),
            Err(error) => tracing::error!(filter = %instance.name(), file = %file.display(), error, "cannot save filter state; it is lost"),
        }
    }
}
