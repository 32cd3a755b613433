//! The record path: inputs -> filter chain -> outputs, with bounded queues
//! between them (backpressure), batching, acknowledgements and dead letters.
//!
//! [`Pipeline::build`] instantiates and configures every filter (so a bad
//! plugin or plugin config stops start-up with a clear error);
//! [`Pipeline::run`] starts outputs, the chain's threads ([`workers`]) and
//! inputs, and
//! returns when every input has ended (a file read once, stdin at EOF) or
//! `shutdown` fires, after draining what was queued. When the inputs ended
//! by themselves, filters get a last `tick` at the end of time so windows
//! still open are emitted; on shutdown, filter state is saved instead (when
//! `state_dir` is set) and restored at the next start. With a `kafka`
//! input's `checkpoints`, stateful filters keep their state per input
//! partition and it lives in Kafka instead (see [`keyed`]).
//!
//! While it runs, a [`Reloader`] applies a new config: see [`reload`].
//! [`DryRun`] runs a config's filters and routing alone, for `weir test`.
//! While it runs, a [`Reloader`] applies a new config: see [`reload`]; a
//! [`QueueWatch`] tells whether it has stalled: see [`queues`].

mod chain;
pub mod console;
mod dead_letters;
mod dedupe;
mod drain;
mod dry_run;
mod error;
mod keyed;
mod output_task;
mod partition;
pub mod queues;
pub mod reload;
mod router;
mod sequence;
mod state;
mod workers;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub use dry_run::{DryRun, DryRunOutput};
pub use error::PipelineError;
pub use queues::QueueWatch;

use crate::config::{Config, InputSpec, OutputSpec};
use crate::core::checkpoints::Checkpoints;
use crate::core::clock::Clock;
use crate::core::record::{Batch, Timestamp};
use crate::core::tag_match::TagMatch;
use crate::inputs::InputContext;
use crate::plugin::{PluginEngine, file_digest};
use chain::{Chain, ChainCommand, Filter};
use console::PipelineConsole;
use console::taps::Taps;
use dead_letters::DeadLetterRoute;
use drain::Drain;
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
    filters: Vec<Filter>,
    reloads: mpsc::Receiver<ReloadRequest>,
    reloader: Reloader,
    console: Option<Arc<PipelineConsole>>,
    queues: QueueWatch,
    checkpoints: Option<Arc<Checkpoints>>,
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
        let mut filters = Vec::with_capacity(config.filters.len());
        let checkpoints = config.checkpointed_input().map(|_| Checkpoints::new());
        for spec in &config.filters {
            let mut filter =
                Filter::build(&engine, spec, clock.clone(), config.pipeline.workers, checkpoints.as_ref())?;
            state::restore(&config, &mut filter)?;
            filters.push(filter);
        }
        // Reloads are rare and applied one at a time.
        let (tx, reloads) = mpsc::channel(4);
        // The taps cost a lock per batch; only an admin server reads them.
        let console = config.admin.as_ref().map(|admin| {
            let taps = Arc::new(Taps::new(admin.samples.clone()));
            Arc::new(PipelineConsole::new(&config, engine.clone(), clock.clone(), taps))
        });
        let queues = QueueWatch::new(config.pipeline.stall_timeout, config.pipeline.queue_capacity);
        Ok(Pipeline { config, engine, clock, filters, reloads, reloader: Reloader(tx), console, queues, checkpoints })
    }

    /// A handle to reload this pipeline once it runs.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// What the admin server's console reads, when `admin:` is set.
    pub fn console(&self) -> Option<Arc<dyn crate::admin::Console>> {
        self.console.clone().map(|c| c as Arc<dyn crate::admin::Console>)
    }

    /// Its queues, to ask whether it has stalled (what `/health` reports).
    pub fn queues(&self) -> QueueWatch {
        self.queues.clone()
    }

    /// Run until every input ends or `stop.shutdown` fires; see the module
    /// docs. After `shutdown` the drain is bounded by `shutdown_timeout`,
    /// and `stop.hurry` (a second signal) cuts it short; either way filter
    /// state is saved. `ready` turns true once every output has started and
    /// every input listens, and false again when the pipeline starts to
    /// drain (what `/ready` serves).
    ///
    /// # Errors
    /// [`PipelineError`] when an output, input or the chain cannot start, or
    /// a chain thread panics.
    pub async fn run(self, stop: Stop, ready: Arc<AtomicBool>) -> Result<Drained, PipelineError> {
        let Pipeline { config, engine, clock, filters, mut reloads, reloader, console, queues, checkpoints } = self;
        let Stop { shutdown, hurry } = stop;
        drop(reloader);
        let drain = Drain::default();
        let taps = console.as_ref().map(|c| c.taps());
        let dead_letters = DeadLetterRoute::new(config.dead_letter_tag.clone()).with_taps(taps.clone());
        let mut outputs = Outputs::default();
        for spec in &config.outputs {
            outputs.start(spec, config.pipeline.queue_capacity, &dead_letters, &drain, &queues).await?;
        }
        let routes = routes(&outputs.senders, &config.outputs);
        dead_letters.set_outputs(&routes);
        let router = Router::new(routes, config.dead_letter_tag.clone(), drain.clone()).with_taps(taps.clone());

        let (input_tx, input_rx) = mpsc::channel(config.pipeline.queue_capacity);
        let taken = queues.chain_queue(&input_tx);
        tokio::spawn(queues.clone().log_stalls(shutdown.clone()));
        let (control, control_rx) = mpsc::unbounded_channel();
        let settings = workers::Settings {
            workers: config.pipeline.workers,
            batch_max_records: config.pipeline.batch_max_records,
            tick_interval: config.pipeline.tick_interval,
            clock: clock.clone(),
            shutdown: shutdown.clone(),
            taps,
            taken,
            checkpoints: checkpoints.as_ref().and_then(|c| c.take_requests()),
        };
        let chain_thread = workers::start(Chain::new(filters), router, engine.clone(), settings, input_rx, control_rx)?;

        let mut running = Running {
            config,
            engine,
            clock,
            inputs: Inputs::default(),
            outputs,
            dead_letters,
            drain: drain.clone(),
            queues,
            control,
            input_tx,
            shutdown,
            digests: HashMap::new(),
            console,
            checkpoints,
        };
        running.digests = running.config.filters.iter().map(|f| (f.name.clone(), file_digest(&f.wasm))).collect();
        // The signal starts the clock of `shutdown_timeout` at once: inputs
        // themselves wait on acknowledgements (an HTTP request in
        // `delivered` mode) while they stop.
        let clock_starter = tokio::spawn({
            let (shutdown, drain) = (running.shutdown.clone(), drain.clone());
            let timeout = running.config.pipeline.shutdown_timeout;
            async move {
                shutdown.cancelled().await;
                drain.start(timeout, hurry);
            }
        });
        running.show_console();
        let mut listening = Vec::new();
        for spec in running.config.inputs.clone() {
            listening.push(running.start_input(&spec)?);
        }
        tokio::spawn(track_readiness(listening, running.shutdown.clone(), ready.clone()));
        loop {
            tokio::select! {
                finished = running.inputs.tasks.join_next() => match finished {
                    Some(Ok((id, failed))) => running.inputs.finished(id, failed),
                    Some(Err(error)) => {
                        running.inputs.failed += 1;
                        tracing::error!(%error, "input task failed");
                    }
                    None => break,
                },
                Some(request) = reloads.recv() => {
                    let outcome = running.reload(request.config).await;
                    if outcome.is_ok() {
                        running.show_console();
                    }
                    let _ = request.reply.send(outcome);
                }
            }
        }
        drop(reloads);
        ready.store(false, Ordering::Release);
        let failed_inputs = running.inputs.failed;
        let Running { config, outputs, input_tx, control, .. } = running;
        drop(input_tx);
        drop(control);
        let mut chain = tokio::task::spawn_blocking(move || chain_thread.join())
            .await
            .map_err(|_| PipelineError::ChainPanicked)?
            .map_err(|_| PipelineError::ChainPanicked)??;
        // State first: a hard kill while outputs drain then loses no window.
        state::save(&config, &mut chain);
        drop(chain);
        outputs.finish().await;
        clock_starter.abort();
        let abandoned = drain.abandoned();
        if abandoned > 0 {
            tracing::error!(
                records = abandoned,
                "drain incomplete: records were abandoned at shutdown_timeout (see the errors above)"
            );
        }
        if failed_inputs > 0 {
            tracing::error!(
                inputs = failed_inputs,
                "inputs stopped with an error during the run (see the errors above)"
            );
        }
        Ok(Drained { abandoned, failed_inputs })
    }
}

/// How a running pipeline is told to stop.
pub struct Stop {
    /// Stop the inputs and drain (the first SIGTERM or SIGINT).
    pub shutdown: CancellationToken,
    /// Cut the drain short, still saving filter state (a second signal).
    pub hurry: CancellationToken,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Records given up at `shutdown_timeout` (their inputs were told); 0
    /// means everything accepted was delivered or dead-lettered.
    pub abandoned: u64,
    /// Inputs that stopped with an error (a port in use, a file that cannot
    /// be read), each logged when it stopped: what they were to read was
    /// not read.
    pub failed_inputs: u64,
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
        drain: &Drain,
        queues: &QueueWatch,
    ) -> Result<(), crate::outputs::OutputError> {
        let output = spec.config.build(&spec.name).await?;
        let (tx, rx) = mpsc::channel(capacity);
        let driver = output_task::OutputDriver {
            name: spec.name.clone(),
            batch: spec.batch,
            retry: spec.retry,
            dead_letters: dead_letters.clone(),
            drain: drain.clone(),
            taken: queues.output_queue(&spec.name, &tx),
        };
        let task = tokio::spawn(output_task::run(driver, output, rx));
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
    /// Each task ends with its id and whether its input failed.
    tasks: JoinSet<(u64, bool)>,
    running: HashMap<String, (u64, CancellationToken)>,
    next_id: u64,
    /// Inputs that stopped with an error so far.
    failed: u64,
}

impl Inputs {
    fn finished(&mut self, id: u64, failed: bool) {
        self.running.retain(|_, (task, _)| *task != id);
        self.failed += u64::from(failed);
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
    drain: Drain,
    queues: QueueWatch,
    control: mpsc::UnboundedSender<ChainCommand>,
    input_tx: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
    /// Plugin file digests of the running filters, to notice replaced files.
    digests: HashMap<String, Option<String>>,
    console: Option<Arc<PipelineConsole>>,
    /// Shared with the `kafka` input that has `checkpoints`, if any.
    checkpoints: Option<Arc<Checkpoints>>,
}

impl Running {
    /// Show the console what runs now.
    fn show_console(&self) {
        if let Some(console) = &self.console {
            console.set_running(&self.config, &self.digests, &self.input_tx, &self.outputs.senders);
        }
    }

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
        .notify_listening(on_listening)
        .with_checkpoints(self.checkpoints.clone());
        let id = self.inputs.next_id;
        self.inputs.next_id += 1;
        let name = spec.name.clone();
        self.inputs.tasks.spawn(async move {
            let outcome = input.run(ctx).await;
            if let Err(error) = &outcome {
                tracing::error!(input = name, %error, "input stopped");
            }
            (id, outcome.is_err())
        });
        self.inputs.running.insert(spec.name.clone(), (id, token));
        Ok(listening)
    }
}
