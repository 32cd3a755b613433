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

pub mod ack;
pub mod clock;
pub mod dead_letter;
mod error;
pub mod graph;
pub mod output_task;
pub mod record;
pub mod reload;
pub mod routing;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub use error::PipelineError;

use crate::config::{Config, InputSpec, OutputSpec};
use crate::inputs::InputContext;
use crate::plugin::{FilterInstance, PluginEngine, file_digest};
use clock::Clock;
use graph::{Chain, ChainCommand, FilterSlot, Router, Stage};
use output_task::{DeadLetterRoute, RetryPolicy};
use record::{Batch, Timestamp};
use reload::{ReloadError, ReloadPlan};
use routing::TagMatch;

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
            let mut instance = FilterInstance::new(&engine, spec, clock.clone())?;
            if let Some(file) = state_file(&config, &spec.name)
                && file.is_file()
            {
                let state =
                    std::fs::read(&file).map_err(|source| PipelineError::State { file: file.clone(), source })?;
                instance.restore(&state).map_err(|e| PipelineError::Restore { file: file.clone(), source: e })?;
                tracing::info!(filter = spec.name, file = %file.display(), bytes = state.len(), "restored filter state");
            }
            stages.push(Stage::new(instance));
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
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), PipelineError> {
        let Pipeline { config, engine, clock, stages, mut reloads, reloader } = self;
        drop(reloader);
        let dead_letters = DeadLetterRoute::new(config.dead_letter_tag.clone());
        let mut outputs = Outputs::default();
        for spec in &config.outputs {
            outputs.start(spec, config.pipeline.queue_capacity, &dead_letters).await?;
        }
        let routes = outputs.routes(&config.outputs);
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
        for spec in running.config.inputs.clone() {
            running.start_input(&spec)?;
        }
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
        let Running { config, outputs, input_tx, control, .. } = running;
        drop(input_tx);
        drop(control);
        let mut chain = tokio::task::spawn_blocking(move || chain_thread.join())
            .await
            .map_err(|_| PipelineError::ChainPanicked)?
            .map_err(|_| PipelineError::ChainPanicked)?;
        save_state(&config, &mut chain);
        drop(chain);
        outputs.finish().await;
        Ok(())
    }
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
        let retry = RetryPolicy { max_attempts: spec.retry.max_attempts };
        let task =
            tokio::spawn(output_task::run(spec.name.clone(), output, rx, spec.batch, retry, dead_letters.clone()));
        self.tasks.push((spec.name.clone(), task, spec.matches.matches(dead_letters.tag())));
        self.senders.insert(spec.name.clone(), tx);
        Ok(())
    }

    fn routes(&self, specs: &[OutputSpec]) -> Vec<(TagMatch, mpsc::Sender<Batch>)> {
        specs.iter().filter_map(|s| Some((s.matches.clone(), self.senders.get(&s.name)?.clone()))).collect()
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
        for (_, task, _) in others {
            let _ = task.await;
        }
        drop(senders);
        for (_, task, _) in dead_letter_outputs {
            let _ = task.await;
        }
    }
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
    fn start_input(&mut self, spec: &InputSpec) -> Result<(), crate::inputs::InputError> {
        let input = spec.config.build()?;
        let token = self.shutdown.child_token();
        let ctx = InputContext::new(
            &spec.name,
            spec.tag.clone(),
            self.config.pipeline.batch_max_records,
            self.clock.clone(),
            token.clone(),
            self.input_tx.clone(),
            self.config.dead_letter_tag.clone(),
        );
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
        Ok(())
    }

    /// Apply `new`: see [`reload`]. All or nothing up to the swap: filters
    /// and outputs are built first, and any failure leaves everything as it
    /// was.
    async fn reload(&mut self, new: Config) -> Result<ReloadPlan, ReloadError> {
        if self.shutdown.is_cancelled() {
            return Err(ReloadError::Stopping);
        }
        let digests: HashMap<String, Option<String>> =
            new.filters.iter().map(|f| (f.name.clone(), file_digest(&f.wasm))).collect();
        let changed: HashSet<String> = digests
            .iter()
            .filter(|(name, digest)| self.digests.get(*name).is_some_and(|old| old != *digest))
            .map(|(name, _)| name.clone())
            .collect();
        let plan = reload::plan(&self.config, &new, &changed)?;
        if plan.is_empty() {
            return Ok(plan);
        }

        // Compile and configure new filter instances off the hot path.
        let engine = self.engine.clone();
        let clock = self.clock.clone();
        let build: Vec<_> = new.filters.iter().filter(|f| plan.filters.builds(&f.name)).cloned().collect();
        let mut built: HashMap<String, FilterInstance> = tokio::task::spawn_blocking(move || {
            build
                .iter()
                .map(|spec| FilterInstance::new(&engine, spec, clock.clone()).map(|i| (spec.name.clone(), i)))
                .collect::<Result<HashMap<_, _>, _>>()
        })
        .await
        .map_err(|_| ReloadError::Stopping)??;
        let filters: Vec<FilterSlot> = new
            .filters
            .iter()
            .map(|f| match built.remove(&f.name) {
                Some(instance) => FilterSlot::Replace {
                    instance: Box::new(instance),
                    hand_over: plan.filters.modified.contains(&f.name),
                },
                None => FilterSlot::Keep(f.name.clone()),
            })
            .collect();

        // Start new and modified outputs beside the old ones.
        let mut started = Outputs::default();
        for spec in new.outputs.iter().filter(|o| plan.outputs.builds(&o.name)) {
            if let Err(error) = started.start(spec, new.pipeline.queue_capacity, &self.dead_letters).await {
                started.finish().await;
                return Err(error.into());
            }
        }
        let mut senders = self.outputs.senders.clone();
        senders.extend(started.senders.iter().map(|(k, v)| (k.clone(), v.clone())));
        let routes: Vec<_> =
            new.outputs.iter().filter_map(|s| Some((s.matches.clone(), senders.get(&s.name)?.clone()))).collect();

        // Swap at a batch boundary.
        let (reply, outcome) = oneshot::channel();
        let command = ChainCommand::Apply {
            filters,
            routes: routes.clone(),
            batch_max_records: new.pipeline.batch_max_records,
            tick_interval: new.pipeline.tick_interval,
            reply,
        };
        let swapped = match self.control.send(command) {
            Ok(()) => outcome.await.map_err(|_| ReloadError::Stopping).and_then(|r| r.map_err(ReloadError::from)),
            Err(_) => Err(ReloadError::Stopping),
        };
        if let Err(error) = swapped {
            started.finish().await;
            return Err(error);
        }

        // Committed: retire removed and replaced outputs (their queues
        // drain), adopt the new ones, then move the inputs.
        for name in plan.outputs.removed.iter().chain(&plan.outputs.modified) {
            self.outputs.senders.remove(name);
        }
        self.outputs.senders.extend(started.senders);
        self.outputs.tasks.extend(started.tasks);
        self.dead_letters.set_outputs(&routes);
        for name in plan.inputs.removed.iter().chain(&plan.inputs.modified) {
            self.inputs.stop(name);
        }
        self.config = new;
        self.digests = digests;
        for spec in self.config.inputs.clone().iter().filter(|i| plan.inputs.builds(&i.name)) {
            self.start_input(spec)?;
        }
        Ok(plan)
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
            Err(error) => {
                tracing::error!(filter = %instance.name(), file = %file.display(), error, "cannot save filter state; it is lost")
            }
        }
    }
}
