//! The filter chain. One thread owns every filter instance (WASM stores
//! are single-threaded) and moves batches through the filters in config
//! order, each filter taking the records its `match` selects, then hands
//! the result to the [`Router`]. Reloads swap filters here, between
//! batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::console::taps::Taps;
use super::reload::ReloadError;
use super::router::Router;
use crate::core::dead_letter::DeadLetter;
use crate::core::metrics::{Counter, registry};
use crate::core::record::{Batch, Record, Timestamp};
use crate::core::tag_match::TagMatch;
use crate::plugin::{FilterInstance, PluginEngine, PluginError, Processed};

/// The `stage` of the dead letters of the filter named `name`.
pub fn filter_stage(name: &str) -> String {
    format!("filter {name}")
}

/// One filter in the chain.
pub struct Stage {
    instance: FilterInstance,
    matches: TagMatch,
    stage_name: String,
    records_in: Counter,
    records_out: Counter,
    dead_letters: Counter,
    restarts: Counter,
    errors: HashMap<&'static str, Counter>,
}

impl Stage {
    /// Wrap a configured instance.
    pub fn new(instance: FilterInstance) -> Self {
        let name = instance.name().to_string();
        let labels = [("filter", name.as_str())];
        Stage {
            matches: instance.spec().matches.clone(),
            stage_name: filter_stage(&name),
            records_in: registry().counter("weir_filter_records_in_total", "Records given to a filter.", &labels),
            records_out: registry().counter("weir_filter_records_out_total", "Records a filter emitted.", &labels),
            dead_letters: registry().counter(
                "weir_filter_dead_letters_total",
                "Records a filter rejected or failed on, sent to dead letter.",
                &labels,
            ),
            restarts: registry().counter(
                "weir_filter_restarts_total",
                "Filter instances recreated after a trap, deadline or memory cap.",
                &labels,
            ),
            errors: HashMap::new(),
            instance,
        }
    }

    /// The filter's name.
    pub fn name(&self) -> &str {
        self.instance.name()
    }

    /// The instance, e.g. for snapshots.
    pub fn instance_mut(&mut self) -> &mut FilterInstance {
        &mut self.instance
    }

    fn count_error(&mut self, error: &PluginError) {
        let kind = error.kind();
        let name = self.instance.name().to_string();
        self.errors
            .entry(kind)
            .or_insert_with(|| {
                registry().counter(
                    "weir_filter_errors_total",
                    "Filter calls that failed, by kind.",
                    &[("filter", &name), ("kind", kind)],
                )
            })
            .add(1);
    }

    /// Process `chunk`, appending what comes out to `out`. When a call
    /// traps, loops or bursts its memory on the chunk, the chunk is split in
    /// halves and each half tried again on a fresh instance, down to the
    /// single record that does it: that record alone is dead-lettered with
    /// the plugin's message and the rest of the chunk goes on. A record
    /// that poisons every instance is thus dead-lettered once per delivery
    /// (after a replay, once more), never retried forever. A chunk the
    /// plugin refuses as a whole (`err` from `process`) is its decision and
    /// is dead-lettered whole.
    fn process_isolating(
        &mut self,
        engine: &PluginEngine,
        chunk: Batch,
        dead_letter_tag: &Arc<str>,
        taps: Option<&Taps>,
        out: &mut Batch,
    ) {
        match self.instance.process(&chunk) {
            Ok(Processed { emitted, parents, rejected }) => {
                if let Some(taps) = taps {
                    taps.filter_batch(self.instance.name(), &chunk, &emitted, &parents);
                }
                self.records_out.add(emitted.len() as u64);
                out.extend(emitted);
                if !rejected.is_empty() {
                    self.dead_letters.add(rejected.len() as u64);
                    let mut chunk: Vec<Option<Record>> = chunk.into_iter().map(Some).collect();
                    for (index, reason) in rejected {
                        if let Some(record) = chunk[index].take() {
                            out.push(
                                DeadLetter::of(record, self.stage_name.clone(), reason).into_record(dead_letter_tag),
                            );
                        }
                    }
                }
            }
            Err(error) => {
                let usable = self.recover(engine, &error);
                if usable && error.poisons_instance() && chunk.len() > 1 {
                    tracing::debug!(filter = %self.instance.name(), records = chunk.len(), %error, "filter call failed; splitting the batch to find the record at fault");
                    let mut first = chunk;
                    let second = first.split_off(first.len() / 2);
                    self.process_isolating(engine, first, dead_letter_tag, taps, out);
                    self.process_isolating(engine, second, dead_letter_tag, taps, out);
                    return;
                }
                tracing::warn!(filter = %self.instance.name(), records = chunk.len(), %error, "filter call failed; records sent to dead letter");
                self.dead_letters.add(chunk.len() as u64);
                let reason = error.to_string();
                out.extend(
                    chunk.into_iter().map(|r| {
                        DeadLetter::of(r, self.stage_name.clone(), reason.clone()).into_record(dead_letter_tag)
                    }),
                );
            }
        }
    }

    /// After a call error: recreate a poisoned instance. False when the
    /// instance is unusable (recreating it failed).
    fn recover(&mut self, engine: &PluginEngine, error: &PluginError) -> bool {
        self.count_error(error);
        if !error.poisons_instance() {
            return true;
        }
        self.restarts.add(1);
        match self.instance.recreate(engine) {
            Ok(()) => {
                tracing::warn!(filter = %self.instance.name(), %error, "filter instance recreated; its state was reset");
                true
            }
            Err(e) => {
                tracing::error!(filter = %self.instance.name(), error = %e, "cannot recreate filter instance; its batches will be dead-lettered");
                false
            }
        }
    }
}

/// A reload for the chain thread to apply between batches.
pub enum ChainCommand {
    /// Replace the filter list and the routes.
    Apply {
        /// The new chain, in order.
        filters: Vec<FilterSlot>,
        /// The new outputs.
        routes: Vec<(TagMatch, mpsc::Sender<Batch>)>,
        /// The new batch size.
        batch_max_records: usize,
        /// The new tick period.
        tick_interval: Duration,
        /// The outcome.
        reply: tokio::sync::oneshot::Sender<Result<(), ReloadError>>,
    },
}

/// One position of the chain after a reload.
pub enum FilterSlot {
    /// Keep the running filter of this name as it is.
    Keep(String),
    /// A new, configured instance; `hand_over` takes the state of the
    /// running filter of the same name.
    Replace {
        /// The new instance (boxed: a store is large, and slots move).
        instance: Box<FilterInstance>,
        /// Whether to restore the old instance's snapshot into it.
        hand_over: bool,
    },
}

/// The filters and the router: everything the chain thread owns.
pub struct Chain {
    stages: Vec<Stage>,
    router: Router,
    engine: PluginEngine,
    batch_max_records: usize,
    taps: Option<Arc<Taps>>,
}

impl Chain {
    /// A chain of `stages` feeding `router`.
    pub fn new(stages: Vec<Stage>, router: Router, engine: PluginEngine, batch_max_records: usize) -> Self {
        Chain { stages, router, engine, batch_max_records, taps: None }
    }

    /// Show the console what each filter takes and emits (once per call).
    pub fn with_taps(mut self, taps: Option<Arc<Taps>>) -> Self {
        self.taps = taps;
        self
    }

    /// The stages, e.g. for snapshots at shutdown.
    pub fn stages_mut(&mut self) -> &mut [Stage] {
        &mut self.stages
    }

    /// Receive batches until every input has stopped, ticking filters every
    /// `tick_interval` with the time from `now`, and applying reloads from
    /// `control` between batches. Returns when the input queue is closed
    /// and drained, or when the drain aborts: then what is still queued is
    /// abandoned (see [`Drain`](super::drain::Drain)).
    pub fn run(
        &mut self,
        runtime: &tokio::runtime::Handle,
        input: &mut mpsc::Receiver<Batch>,
        control: &mut mpsc::UnboundedReceiver<ChainCommand>,
        mut tick_interval: Duration,
        now: impl Fn() -> Timestamp,
    ) {
        enum Next {
            Batch(Option<Batch>),
            Command(Option<ChainCommand>),
            Tick,
            Abort,
        }
        let drain = self.router.drain().clone();
        let mut control_open = true;
        let mut next_tick = Instant::now() + tick_interval;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let next = runtime.block_on(async {
                tokio::select! {
                    // Reloads first: a swap waits for at most one batch.
                    biased;
                    () = drain.abort.cancelled() => Next::Abort,
                    command = control.recv(), if control_open => Next::Command(command),
                    batch = input.recv() => Next::Batch(batch),
                    () = tokio::time::sleep(wait) => Next::Tick,
                }
            });
            match next {
                Next::Batch(Some(mut batch)) => {
                    // Coalesce what is already waiting, up to one full batch.
                    while batch.len() < self.batch_max_records {
                        match input.try_recv() {
                            Ok(more) => batch.extend(more),
                            Err(_) => break,
                        }
                    }
                    self.process(batch);
                }
                Next::Batch(None) => return,
                Next::Command(Some(ChainCommand::Apply {
                    filters,
                    routes,
                    batch_max_records,
                    tick_interval: tick,
                    reply,
                })) => {
                    let result = self.apply(filters, routes);
                    if result.is_ok() {
                        self.batch_max_records = batch_max_records;
                        tick_interval = tick;
                    }
                    let _ = reply.send(result);
                }
                Next::Command(None) => control_open = false,
                Next::Tick => {}
                Next::Abort => {
                    // Refuse new batches, and fail the acks of those queued:
                    // dropped unread, they would report "delivered".
                    input.close();
                    while let Ok(batch) = input.try_recv() {
                        drain.abandon(batch, "input queue", "shutdown_timeout ran out before the filters reached them");
                    }
                    return;
                }
            }
            if Instant::now() >= next_tick {
                self.tick(now());
                next_tick = Instant::now() + tick_interval;
            }
        }
    }

    /// Swap in a new filter list and routes, at a batch boundary. Every
    /// replaced filter first hands its state to its successor; if any
    /// handover fails nothing changes and the error is returned.
    fn apply(
        &mut self,
        mut filters: Vec<FilterSlot>,
        routes: Vec<(TagMatch, mpsc::Sender<Batch>)>,
    ) -> Result<(), ReloadError> {
        let started = Instant::now();
        for slot in &mut filters {
            match slot {
                FilterSlot::Keep(name) => {
                    if !self.stages.iter().any(|s| s.name() == name) {
                        return Err(ReloadError::NotRunning { filter: name.clone() });
                    }
                }
                FilterSlot::Replace { instance, hand_over } => {
                    let old = self.stages.iter_mut().find(|s| s.name() == &**instance.name());
                    if let (true, Some(old)) = (*hand_over, old) {
                        instance.take_over(&mut old.instance)?;
                    }
                }
            }
        }
        let mut old: HashMap<String, Stage> = self.stages.drain(..).map(|s| (s.name().to_string(), s)).collect();
        self.stages = filters
            .into_iter()
            .map(|slot| match slot {
                FilterSlot::Keep(name) => old.remove(&name).expect("checked above that every kept filter runs"),
                FilterSlot::Replace { instance, .. } => Stage::new(*instance),
            })
            .collect();
        self.router.set_routes(routes);
        tracing::info!(filters = self.stages.len(), took = ?started.elapsed(), "reload applied at a batch boundary");
        Ok(())
    }

    /// Run a batch through every stage and route the result.
    pub fn process(&mut self, batch: Batch) {
        let out = self.run_stages(0, batch);
        self.router.route_blocking(out);
    }

    /// Tick every filter; what a filter emits passes through the filters after it.
    pub fn tick(&mut self, now: Timestamp) {
        for i in 0..self.stages.len() {
            let stage = &mut self.stages[i];
            let records = match stage.instance.tick(now) {
                Ok(records) => records,
                Err(error) => {
                    tracing::warn!(filter = %stage.instance.name(), %error, "tick failed");
                    stage.recover(&self.engine, &error);
                    continue;
                }
            };
            if records.is_empty() {
                continue;
            }
            if let Some(taps) = &self.taps {
                taps.summaries(records.iter());
            }
            stage.records_out.add(records.len() as u64);
            let out = self.run_stages(i + 1, records);
            self.router.route_blocking(out);
        }
    }

    fn run_stages(&mut self, from: usize, mut records: Batch) -> Batch {
        for i in from..self.stages.len() {
            records = self.run_stage(i, records);
        }
        records
    }

    fn run_stage(&mut self, i: usize, records: Batch) -> Batch {
        let dead_letter_tag = self.router.dead_letter_tag().clone();
        let stage = &mut self.stages[i];
        let (selected, mut out): (Batch, Batch) =
            records.into_iter().partition(|r| r.tag != dead_letter_tag && stage.matches.matches(&r.tag));
        if selected.is_empty() {
            return out;
        }
        let mut selected = selected.into_iter().peekable();
        while selected.peek().is_some() {
            let chunk: Batch = selected.by_ref().take(self.batch_max_records).collect();
            stage.records_in.add(chunk.len() as u64);
            stage.process_isolating(&self.engine, chunk, &dead_letter_tag, self.taps.as_deref(), &mut out);
        }
        out
    }
}
