//! The filter chain: the filters in config order, each as its instances
//! ([`Filter`]: one per worker or one per partition, see
//! [`Placement`]), and what one instance does with the records its `match`
//! selects ([`Stage`]). The worker threads that move batches through them
//! are [`super::workers`]'; reloads swap filters here ([`Chain::apply`]),
//! while no batch is between filters. A filter with `dedupe` is
//! given no record it was given before (see [`super::dedupe`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::console::taps::Taps;
use super::dedupe::{self, Seen};
use super::keyed::{self, Checkpoints, Keyed, Taken};
use super::partition::Placement;
use super::reload::ReloadError;
use crate::core::clock::Clock;
use crate::core::dead_letter::DeadLetter;
use crate::core::metrics::catalogue::{
    FILTER_DEAD_LETTERS, FILTER_ERRORS, FILTER_RECORDS_IN, FILTER_RECORDS_OUT, FILTER_REPEATS, FILTER_RESTARTS,
};
use crate::core::metrics::{Counter, registry};
use crate::core::record::{Batch, Record, Timestamp};
use crate::core::tag_match::TagMatch;
use crate::plugin::{FilterInstance, FilterSpec, PluginEngine, PluginError, Processed};

/// The `stage` of the dead letters of the filter named `name`.
pub fn filter_stage(name: &str) -> String {
    format!("filter {name}")
}

/// One instance of a filter, with the filter's counters.
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
    /// With a `kafka` input's `checkpoints`: one unit per input partition
    /// (see [`super::keyed`]); this stage's own instance then takes the
    /// records of other inputs and is the template of the units.
    keyed: Option<Box<Keyed>>,
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
            keyed: None,
        }
    }

    /// Wrap a configured instance whose state is kept per input partition
    /// through `hub` (see [`super::keyed`]).
    pub fn keyed(instance: FilterInstance, hub: Arc<Checkpoints>) -> Self {
        Stage { keyed: Some(Box::new(Keyed::new(hub))), ..Stage::new(instance) }
    }

    /// The units per input partition, when state is kept so.
    #[cfg(test)]
    pub(super) fn keyed_mut(&mut self) -> Option<&mut Keyed> {
        self.keyed.as_deref_mut()
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

    /// The filter's `match`.
    pub fn matches(&self) -> &TagMatch {
        &self.matches
    }

    /// Run the records this filter selects (by tag; never dead letters)
    /// through it in calls of at most `batch_max_records`; the others pass
    /// first, in their order, then what the filter emitted and rejected.
    /// `taps`, when given, see each call (the console).
    pub fn run(
        &mut self,
        engine: &PluginEngine,
        records: Batch,
        dead_letter_tag: &Arc<str>,
        batch_max_records: usize,
        taps: Option<&Taps>,
    ) -> Batch {
        let (selected, mut out): (Batch, Batch) =
            records.into_iter().partition(|r| r.tag != *dead_letter_tag && self.matches.matches(&r.tag));
        let mut run = |stage: &mut Stage, selected: Batch, out: &mut Batch| {
            stage.run_selected(engine, selected, dead_letter_tag, batch_max_records, taps, out);
        };
        match self.keyed.take() {
            None => run(self, selected, &mut out),
            Some(mut keyed) => {
                keyed.run(self, engine, selected, dead_letter_tag, &mut run, &mut out);
                self.keyed = Some(keyed);
            }
        }
        out
    }

    /// Run records the filter selected, appending what comes out to `out`.
    fn run_selected(
        &mut self,
        engine: &PluginEngine,
        selected: Batch,
        dead_letter_tag: &Arc<str>,
        batch_max_records: usize,
        taps: Option<&Taps>,
        out: &mut Batch,
    ) {
        // A repeat is dropped here: its acknowledgement goes with it, as for
        // a record the filter consumed.
        let selected = self.drop_repeats(selected);
        let mut selected = selected.into_iter().peekable();
        while selected.peek().is_some() {
            let chunk: Batch = selected.by_ref().take(batch_max_records).collect();
            self.records_in.add(chunk.len() as u64);
            self.process_isolating(engine, chunk, dead_letter_tag, taps, out);
        }
    }

    /// A record its partition's instance cannot take (none could be made, or
    /// it refused the partition's checkpoint), dead-lettered with `reason`.
    pub(super) fn unit_failed(&self, record: Record, reason: &str, dead_letter_tag: &Arc<str>) -> Record {
        DeadLetter::of(record, self.stage_name.clone(), reason.to_string()).into_record(dead_letter_tag)
    }

    /// Tick the instance with host time `now`; what it emits, or nothing
    /// when the call failed (the instance is then recreated if poisoned).
    /// `taps`, when given, see what it emits (the console's summaries).
    pub fn tick(&mut self, engine: &PluginEngine, now: Timestamp, taps: Option<&Taps>) -> Batch {
        let mut out = self.tick_instance(engine, now, taps);
        if let Some(mut keyed) = self.keyed.take() {
            keyed.tick(&mut self.instance, engine, &mut |unit| unit.tick_instance(engine, now, taps), &mut out);
            self.keyed = Some(keyed);
        }
        out
    }

    /// Tick this stage's own instance.
    fn tick_instance(&mut self, engine: &PluginEngine, now: Timestamp, taps: Option<&Taps>) -> Batch {
        match self.instance.tick(now) {
            Ok(records) => {
                if let (Some(taps), false) = (taps, records.is_empty()) {
                    taps.summaries(records.iter());
                }
                self.records_out.add(records.len() as u64);
                records
            }
            Err(error) => {
                tracing::warn!(filter = %self.instance.name(), %error, "tick failed");
                self.count_error(&error, 0);
                self.recover(engine, &error);
                Vec::new()
            }
        }
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

/// A filter of the chain: how its instances share records, and the
/// instances, indexed by worker ([`Placement::Parallel`]) or by partition.
pub struct Filter {
    /// How records are shared among the instances.
    pub placement: Placement,
    /// The instances, at least one.
    pub instances: Vec<Stage>,
}

impl Filter {
    /// Load and configure `spec`'s instances for a pipeline of `workers`:
    /// the first decides the placement (an empty `snapshot` right after
    /// `configure` means stateless, see [`Placement`]), the others are
    /// replicas of it.
    ///
    /// # Errors
    /// Those of [`FilterInstance::new`] and of the first `snapshot`.
    pub fn build(
        engine: &PluginEngine,
        spec: &FilterSpec,
        clock: Clock,
        workers: usize,
        checkpoints: Option<&Arc<Checkpoints>>,
    ) -> Result<Filter, PluginError> {
        let mut first = FilterInstance::new(engine, spec, clock)?;
        // The host's own dedupe set is state too.
        let stateless = spec.dedupe.is_none() && first.snapshot()?.is_empty();
        let placement = Placement::decide(spec.partition_by.as_deref(), stateless, workers);
        if spec.partition_by.is_none() && !stateless && workers > 1 {
            tracing::info!(
                filter = %spec.name,
                "filter keeps state (its snapshot is not empty) and has no partition_by: it runs as one instance, on one worker"
            );
        }
        if let (Some(hub), false, None) = (checkpoints, stateless, &spec.partition_by) {
            return Ok(Filter { placement, instances: vec![Stage::keyed(first, hub.clone())] });
        }
        if checkpoints.is_some() && !stateless {
            tracing::warn!(filter = %spec.name, "filter has partition_by: its state is kept per partition_by key, not per Kafka partition, and is not checkpointed");
        }
        let count = placement.instances(workers);
        let mut instances = Vec::with_capacity(count);
        for _ in 1..count {
            instances.push(Stage::new(first.replicate(engine)?));
        }
        instances.insert(0, Stage::new(first));
        Ok(Filter { placement, instances })
    }

    /// The filter's name.
    pub fn name(&self) -> &str {
        self.instances[0].name()
    }

    /// Take over `old`'s dedupe sets instance by instance, when both are
    /// placed alike (a filter with `dedupe` is never stateless).
    fn take_seen(&mut self, old: &mut Filter) {
        if self.placement == old.placement && self.instances.len() == old.instances.len() {
            for (new, old) in self.instances.iter_mut().zip(&mut old.instances) {
                new.take_seen(old);
            }
        }
    }

    /// Take over `old`'s state instance by instance (partition by partition).
    /// When the placements differ, state can move only if there is none.
    fn take_over(&mut self, old: &mut Filter) -> Result<(), ReloadError> {
        if self.placement != old.placement || self.instances.len() != old.instances.len() {
            for stage in &mut old.instances {
                if !stage.instance.snapshot()?.is_empty() {
                    return Err(ReloadError::Repartition { filter: self.name().to_string() });
                }
            }
            return Ok(());
        }
        for (new, old) in self.instances.iter_mut().zip(&mut old.instances) {
            new.instance.take_over(&mut old.instance)?;
            if let (Some(keyed), Some(old_keyed)) = (new.keyed.as_mut(), old.keyed.as_mut()) {
                keyed.adopt(old.instance.name(), old_keyed)?;
            }
        }
        Ok(())
    }
}

/// A reload for the chain to apply between batches.
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
    /// New, configured instances; `hand_over` takes the state of the
    /// running filter of the same name, instance by instance.
    Replace {
        /// The new filter (boxed: stores are large, and slots move).
        filter: Box<Filter>,
        /// Whether to restore the old instances' snapshots into it.
        hand_over: bool,
    },
}

/// Every filter, in order.
pub struct Chain {
    filters: Vec<Filter>,
}

impl Chain {
    /// A chain of `filters`, in order.
    pub fn new(filters: Vec<Filter>) -> Self {
        Chain { filters }
    }

    /// The filters.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// The filters, e.g. for snapshots at shutdown.
    pub fn filters_mut(&mut self) -> &mut [Filter] {
        &mut self.filters
    }

    /// Take the filters, to spread them over workers.
    pub fn into_filters(self) -> Vec<Filter> {
        self.filters
    }

    /// Checkpoint every filter whose state is kept per input partition, and
    /// drop the partitions of `revoke` (see [`super::keyed`]); call at a
    /// barrier, with no record between filters.
    pub fn checkpoint(&mut self, revoke: &[Arc<str>]) -> Taken {
        let mut taken = Taken::default();
        for stage in self.filters.iter_mut().flat_map(|f| f.instances.iter_mut()) {
            let name = stage.name().to_string();
            if let Some(keyed) = stage.keyed.as_mut() {
                keyed.checkpoint(&name, revoke, &mut taken);
            }
        }
        keyed::align_offsets(&mut taken.checkpoints);
        taken
    }

    /// Swap in a new filter list. Every replaced filter first hands its
    /// state to its successor; if any handover fails nothing changes and the
    /// error is returned.
    pub fn apply(&mut self, mut filters: Vec<FilterSlot>) -> Result<(), ReloadError> {
        for slot in &mut filters {
            match slot {
                FilterSlot::Keep(name) => {
                    if !self.filters.iter().any(|f| f.name() == name) {
                        return Err(ReloadError::NotRunning { filter: name.clone() });
                    }
                }
                FilterSlot::Replace { filter, hand_over } => {
                    let old = self.filters.iter_mut().find(|f| f.name() == filter.name());
                    if let (true, Some(old)) = (*hand_over, old) {
                        filter.take_over(old)?;
                    }
                }
            }
        }
        let mut old: HashMap<String, Filter> = self.filters.drain(..).map(|f| (f.name().to_string(), f)).collect();
        self.filters = filters
            .into_iter()
            .map(|slot| match slot {
                FilterSlot::Keep(name) => old.remove(&name).expect("checked above that every kept filter runs"),
                FilterSlot::Replace { mut filter, hand_over } => {
                    if let (true, Some(old)) = (hand_over, old.get_mut(filter.name())) {
                        filter.take_seen(old);
                    }
                    *filter
                }
            })
            .collect();
        Ok(())
    }
}
