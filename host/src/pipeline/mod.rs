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
//!
//! While it runs, a [`Reloader`] applies a new config: see [`reload`].

mod chain;
mod dead_letters;
mod dedupe;
mod error;
mod output_task;
pub mod reload;
mod router;
mod state;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub use error::PipelineError;

use crate::config::{Config, InputSpec, OutputSpec};
use crate::core::clock::Clock;
use crate::core::record::{Batch, Timestamp};
use crate::core::tag_match::TagMatch;
use crate::inputs::InputContext;
use crate::plugin::{FilterInstance, PluginEngine, file_digest};
use chain::{Chain, ChainCommand, Stage};
use dead_letters::DeadLetterRoute;
use reload::{ReloadError, ReloadPlan};
use router::Router;

/// The timestamp given to the last `tick` when every input has ended, so
/// time-driven filters flush everything they hold.
pub const END_OF_TIME: Timestamp = i64::MAX;

/// A built pipeline, ready to run.
pub struct Pipeline {
    config: Config,
    engine: PluginEngine,
    clock: Clock,
    stages: Vec<Stage>,
    reloads: mpsc::Receiver<ReloadRequest>,
    reloader: Reloader,
}

struct ReloadRequest {
    config: Config,
    reply: oneshot::Sender<Result<ReloadPlan, ReloadError>>,
}

/// Asks a running pipeline to apply a new config. Cheap to clone.
#[derive(Clone)]
pub struct Reloader(mpsc::Sender<ReloadRequest>);

impl Reloader {
    /// Apply `config`; returns what changed, or why nothing did.
    pub async fn reload(&self, config: Config) -> Result<ReloadPlan, ReloadError> {
        let (reply, outcome) = oneshot::channel();
        self.0.send(ReloadRequest { config, reply }).await.map_err(|_| ReloadError::Stopping)?;
        outcome.await.map_err(|_| ReloadError::Stopping)?
    }
}

impl Pipeline {
    /// Load and configure every filter, restoring saved state if any.
    pub fn build(config: Config, engine: PluginEngine, clock: Clock) -> Result<Pipeline, PipelineError> {
        let mut stages = Vec::with_capacity(config.filters.len());
        for spec in &config.filters {
            let mut stage = Stage::new(FilterInstance::new(&engine, spec, clock.clone())?);
            state::restore(&config, &mut stage)?;
            stages.push(stage);
        }
        // Reloads are rare and applied one at a time.
        let (tx, reloads) = mpsc::channel(4);
        Ok(Pipeline { config, engine, clock, stages, reloads, reloader: Reloader(tx) })
    }

    /// A handle to reload this pipeline once it runs.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Run until every input ends or `shutdown` fires; see the module docs.
    /// `ready` turns true once every output has started and every input
    /// listens, and false again when the pipeline starts to drain (what
    /// `/ready` serves).
    pub async fn run(self, shutdown: CancellationToken, ready: Arc<AtomicBool>) -> Result<(), PipelineError> {
        let Pipeline { config, engine, clock, stages, mut reloads, reloader } = self;
        drop(reloader);
        let dead_letters = DeadLetterRoute::new(config.dead_letter_tag.clone());
        let mut outputs = Outputs::default();
        for spec in &config.outputs {
            outputs.start(spec, config.pipeline.queue_capacity, &dead_letters).await?;
        }
        let routes = routes(&outputs.senders, &config.outputs);
        dead_letters.set_outputs(&routes);
        let router = Router::new(routes, config.dead_letter_tag.clone());
        let mut chain = Chain::new(stages, router, engine.clone(), config.pipeline.batch_max_records);

        let (input_tx, mut input_rx) = mpsc::channel(config.pipeline.queue_capacity);
        let (control, mut control_rx) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Handle::current();
        let tick_interval = config.pipeline.tick_interval;
        let chain_shutdown = shutdown.clone();
        let chain_clock = clock.clone();
        let chain_thread = std::thread::Builder::new()
            .name("weir-chain".into())
            .spawn(move || {
                chain.run(&runtime, &mut input_rx, &mut control_rx, tick_interval, || chain_clock.now());
                if !chain_shutdown.is_cancelled() {
                    chain.tick(END_OF_TIME);
                }
                chain
            })
            .map_err(PipelineError::Thread)?;

        let mut running = Running {
            config,
            engine,
            clock,
            inputs: Inputs::default(),
            outputs,
            dead_letters,
            control,
            input_tx,
            shutdown,
            digests: HashMap::new(),
        };
        running.digests = running.config.filters.iter().map(|f| (f.name.clone(), file_digest(&f.wasm))).collect();
        let mut listening = Vec::new();
        for spec in running.config.inputs.clone() {
            listening.push(running.start_input(&spec)?);
        }
        tokio::spawn(track_readiness(listening, running.shutdown.clone(), ready.clone()));
        loop {
            tokio::select! {
                finished = running.inputs.tasks.join_next() => match finished {
                    Some(Ok(id)) => running.inputs.finished(id),
                    Some(Err(error)) => tracing::error!(%error, "input task failed"),
                    None => break,
                },
                Some(request) = reloads.recv() => {
                    let _ = request.reply.send(running.reload(request.config).await);
                }
            }
        }
        drop(reloads);
        ready.store(false, Ordering::Release);
        let Running { config, outputs, input_tx, control, .. } = running;
        drop(input_tx);
        drop(control);
        let mut chain = tokio::task::spawn_blocking(move || chain_thread.join())
            .await
            .map_err(|_| PipelineError::ChainPanicked)?
            .map_err(|_| PipelineError::ChainPanicked)?;
        state::save(&config, &mut chain);
        drop(chain);
        outputs.finish().await;
        Ok(())
    }
}

/// Set `ready` once every input of `listening` listens (outputs have
/// started before inputs), and clear it when `shutdown` fires. An input that
/// stops before it listens keeps the pipeline not ready.
async fn track_readiness(listening: Vec<oneshot::Receiver<()>>, shutdown: CancellationToken, ready: Arc<AtomicBool>) {
    for input in listening {
        tokio::select! {
            heard = input => if heard.is_err() { return },
            () = shutdown.cancelled() => return,
        }
    }
    ready.store(true, Ordering::Release);
    tracing::info!("pipeline ready: every output started, every input listening");
    shutdown.cancelled().await;
    ready.store(false, Ordering::Release);
}

/// Running outputs by name, and every output task to await at the end.
#[derive(Default)]
struct Outputs {
    senders: HashMap<String, mpsc::Sender<Batch>>,
    /// Each task by output name, and whether it receives dead letters.
    tasks: Vec<(String, JoinHandle<()>, bool)>,
}

impl Outputs {
    async fn start(
        &mut self,
        spec: &OutputSpec,
        capacity: usize,
        dead_letters: &DeadLetterRoute,
    ) -> Result<(), crate::outputs::OutputError> {
        let output = spec.config.build(&spec.name).await?;
        let (tx, rx) = mpsc::channel(capacity);
        let task =
            tokio::spawn(output_task::run(spec.name.clone(), output, rx, spec.batch, spec.retry, dead_letters.clone()));
        self.tasks.push((spec.name.clone(), task, spec.matches.matches(dead_letters.tag())));
        self.senders.insert(spec.name.clone(), tx);
        Ok(())
    }

    /// Close every queue and wait for the tasks to drain and flush: first
    /// the outputs that do not take dead letters, since what they refuse
    /// while draining still needs a dead-letter output to go to (output
    /// tasks reach those through weak senders, which do not keep them open).
    async fn finish(self) {
        let Outputs { mut senders, tasks } = self;
        let (dead_letter_outputs, others): (Vec<_>, Vec<_>) = tasks.into_iter().partition(|(_, _, dl)| *dl);
        for (name, _, _) in &others {
            senders.remove(name);
        }
        for (name, task, _) in others {
            joined(&name, task.await);
        }
        drop(senders);
        for (name, task, _) in dead_letter_outputs {
            joined(&name, task.await);
        }
    }
}

/// An output task that panicked is a bug in weir: say so, with what it held
/// at stake, rather than let the drain look clean.
fn joined(output: &str, result: Result<(), tokio::task::JoinError>) {
    if let Err(error) = result {
        tracing::error!(output, %error, "output task panicked; records it held were not delivered (a bug in weir)");
    }
}

/// Each output's globs and queue, in config order, for those of `specs`
/// that have a running queue in `senders`.
fn routes(
    senders: &HashMap<String, mpsc::Sender<Batch>>,
    specs: &[OutputSpec],
) -> Vec<(TagMatch, mpsc::Sender<Batch>)> {
    specs.iter().filter_map(|s| Some((s.matches.clone(), senders.get(&s.name)?.clone()))).collect()
}

/// Running inputs: each with its own stop token, tracked by a task id so a
/// replaced input's old task finishing is not mistaken for the new one.
#[derive(Default)]
struct Inputs {
    tasks: JoinSet<u64>,
    running: HashMap<String, (u64, CancellationToken)>,
    next_id: u64,
}

impl Inputs {
    fn finished(&mut self, id: u64) {
        self.running.retain(|_, (task, _)| *task != id);
    }

    fn stop(&mut self, name: &str) {
        if let Some((_, token)) = self.running.remove(name) {
            token.cancel();
        }
    }
}

/// Everything `run` owns while the pipeline runs.
struct Running {
    config: Config,
    engine: PluginEngine,
    clock: Clock,
    inputs: Inputs,
    outputs: Outputs,
    dead_letters: DeadLetterRoute,
    control: mpsc::UnboundedSender<ChainCommand>,
    input_tx: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
    /// Plugin file digests of the running filters, to notice replaced files.
    digests: HashMap<String, Option<String>>,
}

impl Running {
    /// Start an input; the receiver hears once it listens.
    fn start_input(&mut self, spec: &InputSpec) -> Result<oneshot::Receiver<()>, crate::inputs::InputError> {
        let input = spec.config.build()?;
        let token = self.shutdown.child_token();
        let (on_listening, listening) = oneshot::channel();
        let ctx = InputContext::new(
            &spec.name,
            spec.tag.clone(),
            self.config.pipeline.batch_max_records,
            self.clock.clone(),
            token.clone(),
            self.input_tx.clone(),
            self.config.dead_letter_tag.clone(),
        )
        .notify_listening(on_listening);
        let id = self.inputs.next_id;
        self.inputs.next_id += 1;
        let name = spec.name.clone();
        self.inputs.tasks.spawn(async move {
            if let Err(error) = input.run(ctx).await {
                tracing::error!(input = name, %error, "input stopped");
            }
            id
        });
        self.inputs.running.insert(spec.name.clone(), (id, token));
        Ok(listening)
    }
}
