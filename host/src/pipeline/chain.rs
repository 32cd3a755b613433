//! The filter chain. One thread owns every filter instance (WASM stores
//! are single-threaded) and moves batches through the filters in config
//! order, each filter taking the records its `match` selects, then hands
//! the result to the [`Router`]. Reloads swap filters here, between
//! batches. A filter with `dedupe` is given no record it was given before
//! (see [`super::dedupe`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::console::taps::Taps;
use super::dedupe::{self, Seen};
use super::queues::Taken;
use super::reload::ReloadError;
use super::router::Router;
use crate::core::dead_letter::DeadLetter;
use crate::core::metrics::catalogue::{
    FILTER_DEAD_LETTERS, FILTER_ERRORS, FILTER_RECORDS_IN, FILTER_RECORDS_OUT, FILTER_REPEATS, FILTER_RESTARTS,
};
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
    /// Records rejected one by one.
    rejected: Counter,
    restarts: Counter,
    /// Records given to the filter before, not given again (`dedupe`).
    repeats: Counter,
    /// Failed calls, and the records they took to dead letter, by kind.
    errors: HashMap<&'static str, (Counter, Counter)>,
    /// With `dedupe`: the identities of the records given to the filter.
    seen: Option<Seen>,
}

impl Stage {
    /// Wrap a configured instance.
    pub fn new(instance: FilterInstance) -> Self {
        let name = instance.name().to_string();
        let labels = [name.as_str()];
        Stage {
            matches: instance.spec().matches.clone(),
            stage_name: filter_stage(&name),
            records_in: registry().counter(&FILTER_RECORDS_IN, &labels),
            records_out: registry().counter(&FILTER_RECORDS_OUT, &labels),
            rejected: registry().counter(&FILTER_DEAD_LETTERS, &[&name, "rejected"]),
            restarts: registry().counter(&FILTER_RESTARTS, &labels),
            repeats: registry().counter(&FILTER_REPEATS, &labels),
            errors: HashMap::new(),
            seen: instance.spec().dedupe.map(|d| Seen::new(d.capacity)),
            instance,
        }
    }

    /// The identities remembered for `dedupe`, if it is on.
    pub fn seen(&self) -> Option<&Seen> {
        self.seen.as_ref()
    }

    /// Take the remembered identities over from `old`, the stage this one
    /// replaces with its state handed over, when both have `dedupe`.
    pub fn take_seen(&mut self, old: &mut Stage) {
        if let (Some(seen), Some(mut old_seen)) = (self.seen.as_mut(), old.seen.take()) {
            old_seen.set_capacity(seen.capacity());
            *seen = old_seen;
        }
    }

    /// Replace the remembered identities with `saved` (read at start-up),
    /// when `dedupe` is on.
    pub fn restore_seen(&mut self, saved: &[u8]) -> Result<(), String> {
        if let Some(seen) = &mut self.seen {
            *seen = Seen::from_bytes(saved, seen.capacity())?;
        }
        Ok(())
    }

    /// Drop the records given to this filter before, remembering the rest.
    fn drop_repeats(&mut self, records: Batch) -> Batch {
        let Some(seen) = &mut self.seen else { return records };
        let before = records.len();
        let kept: Batch = records.into_iter().filter(|r| dedupe::id(r).is_none_or(|id| seen.first_time(id))).collect();
        self.repeats.add((before - kept.len()) as u64);
        kept
    }

    /// Forget the records of a call that failed: they were not counted.
    fn forget(&mut self, records: &[Record]) {
        if let Some(seen) = &mut self.seen {
            records.iter().filter_map(dedupe::id).for_each(|id| seen.forget(id));
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

    /// Count a failed call that took `records` to dead letter.
    fn count_error(&mut self, error: &PluginError, records: usize) {
        let kind = error.kind();
        let name = self.instance.name();
        let (calls, dead_letters) = self.errors.entry(kind).or_insert_with(|| {
            (registry().counter(&FILTER_ERRORS, &[name, kind]), registry().counter(&FILTER_DEAD_LETTERS, &[name, kind]))
        });
        calls.add(1);
        dead_letters.add(records as u64);
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
            Ok(Processed { emitted, parents, rejected, recreated }) => {
                if let Some(taps) = taps {
                    taps.filter_batch(self.instance.name(), &chunk, &emitted, &parents);
                }
                self.records_out.add(emitted.len() as u64);
                if recreated > 0 {
                    // A Fluent Bit-ABI filter isolates its records itself.
                    self.restarts.add(recreated);
                    let first = rejected.first().map(|(_, reason)| reason.as_str()).unwrap_or_default();
                    tracing::warn!(filter = %self.instance.name(), recreated, first, "filter instance recreated after records trapped; those records sent to dead letter");
                }
                out.extend(emitted);
                if !rejected.is_empty() {
                    self.rejected.add(rejected.len() as u64);
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
                    self.count_error(&error, 0);
                    tracing::debug!(filter = %self.instance.name(), records = chunk.len(), %error, "filter call failed; splitting the batch to find the record at fault");
                    let mut first = chunk;
                    let second = first.split_off(first.len() / 2);
                    self.process_isolating(engine, first, dead_letter_tag, taps, out);
                    self.process_isolating(engine, second, dead_letter_tag, taps, out);
                    return;
                }
                tracing::warn!(filter = %self.instance.name(), records = chunk.len(), %error, "filter call failed; records sent to dead letter");
                // Not counted by the filter: a retry of them must not be taken for a repeat.
                self.forget(&chunk);
                self.count_error(&error, chunk.len());
                let reason = error.to_string();
                out.extend(
                    chunk.into_iter().map(|r| {
                        DeadLetter::of(r, self.stage_name.clone(), reason.clone()).into_record(dead_letter_tag)
                    }),
                );
            }
        }
    }

    /// After a call error (counted by the caller): recreate a poisoned
    /// instance. False when the instance is unusable (recreating it failed).
    fn recover(&mut self, engine: &PluginEngine, error: &PluginError) -> bool {
        if !error.poisons_instance() {
            return true;
        }
        self.restarts.add(1);
        // The state is lost: what was counted is no more.
        if let Some(seen) = &mut self.seen {
            seen.clear();
        }
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

    /// Receive batches until every input has stopped (marking each take on
    /// `taken`), ticking filters every `tick_interval` with the time from
    /// `now`, and applying reloads from `control` between batches. Returns when the input queue is closed
    /// and drained, or when the drain aborts: then what is still queued is
    /// abandoned (see [`Drain`](super::drain::Drain)).
    pub fn run(
        &mut self,
        runtime: &tokio::runtime::Handle,
        input: &mut mpsc::Receiver<Batch>,
        taken: &Taken,
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
                    taken.mark();
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
                FilterSlot::Replace { instance, hand_over } => {
                    let mut stage = Stage::new(*instance);
                    if let (true, Some(old)) = (hand_over, old.get_mut(stage.name())) {
                        stage.take_seen(old);
                    }
                    stage
                }
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
                    stage.count_error(&error, 0);
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
        // A repeat is dropped here: its acknowledgement goes with it, as for
        // a record the filter consumed.
        let selected = stage.drop_repeats(selected);
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
