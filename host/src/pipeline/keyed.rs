//! Filter state kept per input partition, so it can follow its Kafka
//! partition through consumer-group rebalances, crashes and scaling (a
//! `kafka` input with `checkpoints:`; see the README's "Scale-out").
//!
//! - A stateful filter (one whose instance keeps state and that has no
//!   `partition_by`) runs one instance per input partition, a *unit*,
//!   created from the filter's first instance when the partition's first
//!   record or restored state arrives. A record goes to the unit of its
//!   origin's stream (`kafka:<topic>/<partition>`); records of other inputs
//!   go to the filter's own instance, as without checkpoints.
//! - What a unit emits without a parent (a window, an alert) carries the
//!   partition as its origin stream (offset [`AGGREGATE_OFFSET`]), so the
//!   next stateful filter keeps it in the same partition's unit.
//! - A checkpoint is taken at a barrier of the chain (no record between
//!   filters): each unit's `snapshot`, its dedupe set, and the offset it
//!   covers, one past the last record of its partition it was given.
//! - Every record a unit emits holds the unit's current *epoch* token as
//!   well as its own acknowledgement. The barrier starts a new epoch and
//!   hands the old one's outcome with the checkpoint: the checkpoint may be
//!   made durable only once everything emitted before it was delivered, or
//!   a crash after the write would lose what was still queued.
//! - A revoked partition's units are checkpointed and dropped at the same
//!   barrier; until it is assigned again its records (late copies still
//!   queued) are dropped, as its new owner replays them.
//! - A record below the offset its unit's state covers is in that state
//!   already (the consumer replays from the checkpoint, or rewinds after a
//!   failed delivery) and is dropped: each offset is counted once.
//!
//! The Kafka side (reading, writing, seeking) is the `kafka` input's; this
//! module only moves state between units and [`Checkpoints`], the hub they
//! share (in `core`, below both).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::chain::Stage;

#[cfg(test)]
mod tests;
use super::dedupe;
use crate::core::ack::{AckToken, Delivery};
pub(super) use crate::core::checkpoints::{AGGREGATE_OFFSET, Checkpoint, Checkpoints, Request, Saved, Taken};
use crate::core::record::{Batch, Origin, Record};
use crate::plugin::{FilterInstance, PluginEngine, PluginError};

/// The partition of a record for keyed state: its origin's stream, when
/// it came from a Kafka partition.
fn stream_of(record: &Record) -> Option<&Arc<str>> {
    record.origin.as_ref().map(|o| &o.stream).filter(|s| s.starts_with("kafka:"))
}

/// The outcome of everything emitted in one epoch.
struct Epoch {
    token: AckToken,
    done: oneshot::Receiver<Delivery>,
}

impl Epoch {
    fn new() -> Self {
        let (token, done) = AckToken::channel();
        Epoch { token, done }
    }

    /// `ack` and this epoch together: delivered when both are.
    fn join(&self, ack: Option<AckToken>) -> AckToken {
        match ack {
            None => self.token.clone(),
            Some(ack) => {
                let epoch = self.token.clone();
                AckToken::new(move |outcome| {
                    if outcome == Delivery::Failed {
                        ack.fail();
                        epoch.fail();
                    }
                })
            }
        }
    }
}

/// One partition's instance.
struct Unit {
    stage: Stage,
    /// One past the last offset given to the instance or covered by its
    /// restored state; `None` before either (nothing to checkpoint yet).
    next_offset: Option<i64>,
    /// Why the filter refused the partition's checkpoint, if it did: the
    /// partition's records are then dead-lettered with that reason and no
    /// checkpoint of it is written, so the refused one stays in the topic
    /// (a config rolled back takes it, as a restart with `state_dir` does).
    refused: Option<String>,
}

/// The units of one stateful filter; held by its [`Stage`].
pub(super) struct Keyed {
    hub: Arc<Checkpoints>,
    units: BTreeMap<Arc<str>, Unit>,
    /// State handed over by a reload, waiting for its units.
    pending: BTreeMap<Arc<str>, Saved>,
    epoch: Epoch,
}

impl Keyed {
    pub(super) fn new(hub: Arc<Checkpoints>) -> Self {
        Keyed { hub, units: BTreeMap::new(), pending: BTreeMap::new(), epoch: Epoch::new() }
    }

    /// Run `selected` (records the filter's `match` selected): those of a
    /// Kafka partition through its unit, the others through `plain`, the
    /// filter's own instance. What comes out is appended to `out`.
    pub(super) fn run(
        &mut self,
        plain: &mut Stage,
        engine: &PluginEngine,
        selected: Batch,
        dead_letter_tag: &Arc<str>,
        run: &mut dyn FnMut(&mut Stage, Batch, &mut Batch),
        out: &mut Batch,
    ) {
        let mut by_stream: BTreeMap<Arc<str>, Batch> = BTreeMap::new();
        let mut others = Batch::new();
        for record in selected {
            match stream_of(&record) {
                Some(stream) => by_stream.entry(stream.clone()).or_default().push(record),
                None => others.push(record),
            }
        }
        if !others.is_empty() {
            run(plain, others, out);
        }
        for (stream, records) in by_stream {
            if self.hub.is_revoked(&stream) {
                // Queued before the revocation: the new owner replays them.
                tracing::debug!(filter = %plain.name(), %stream, records = records.len(), "records of a revoked partition dropped");
                continue;
            }
            let Some(unit) = self.unit(plain.instance_mut(), engine, &stream) else {
                let reason = "no instance of the filter could be made for the record's partition (see the log)";
                out.extend(records.into_iter().map(|r| plain.unit_failed(r, reason, dead_letter_tag)));
                continue;
            };
            if let Some(reason) = &unit.refused {
                out.extend(records.into_iter().map(|r| plain.unit_failed(r, reason, dead_letter_tag)));
                continue;
            }
            // Below the offset the state covers: in the state already (a
            // replay from the checkpoint, a rewind), so not given again.
            let covered = unit.next_offset.and_then(|o| u64::try_from(o).ok()).unwrap_or(0);
            let (records, repeats): (Batch, Batch) = records
                .into_iter()
                .partition(|r| r.origin.as_ref().is_none_or(|o| o.offset == AGGREGATE_OFFSET || o.offset >= covered));
            if !repeats.is_empty() {
                tracing::debug!(filter = %plain.name(), %stream, records = repeats.len(), covered, "records the partition's state covers dropped");
            }
            let last = records
                .iter()
                .filter_map(|r| r.origin.as_ref())
                .map(|o| o.offset)
                .filter(|o| *o != AGGREGATE_OFFSET)
                .max();
            if let Some(offset) = last.and_then(|o| i64::try_from(o).ok()) {
                unit.next_offset = Some(unit.next_offset.map_or(offset + 1, |next| next.max(offset + 1)));
            }
            let mut emitted = Batch::new();
            run(&mut unit.stage, records, &mut emitted);
            self.stamp(&stream, emitted, out);
        }
    }

    /// Tick every unit, creating first those whose state is waiting (so a
    /// partition restored with no new records still closes its windows).
    pub(super) fn tick(
        &mut self,
        template: &mut FilterInstance,
        engine: &PluginEngine,
        tick: &mut dyn FnMut(&mut Stage) -> Batch,
        out: &mut Batch,
    ) {
        let filter = template.name().to_string();
        let waiting: Vec<Arc<str>> =
            self.hub.waiting(&filter).into_iter().chain(self.pending.keys().cloned()).collect();
        for stream in waiting {
            if !self.hub.is_revoked(&stream) {
                self.unit(template, engine, &stream);
            }
        }
        let streams: Vec<Arc<str>> = self.units.keys().cloned().collect();
        for stream in streams {
            let unit = self.units.get_mut(&stream).expect("listed above");
            if unit.refused.is_none() {
                let emitted = tick(&mut unit.stage);
                self.stamp(&stream, emitted, out);
            }
        }
    }

    /// Mark what a unit of `stream` emitted: its partition, and this epoch.
    fn stamp(&self, stream: &Arc<str>, emitted: Batch, out: &mut Batch) {
        out.extend(emitted.into_iter().map(|mut record| {
            if record.origin.is_none() {
                record.origin = Some(Origin { stream: stream.clone(), offset: AGGREGATE_OFFSET, lineage: 0 });
            }
            record.ack = Some(self.epoch.join(record.ack.take()));
            record
        }));
    }

    /// The unit of `stream`, created (from `template`) and restored if new;
    /// `None` when no instance can be made.
    fn unit(&mut self, template: &mut FilterInstance, engine: &PluginEngine, stream: &Arc<str>) -> Option<&mut Unit> {
        // A new assignment's state (or its lack) supersedes a unit left from
        // an earlier one (a revocation whose barrier was never taken).
        let assigned = self.hub.take_restore(template.name(), stream);
        if assigned.is_some() || !self.units.contains_key(stream) {
            let instance = match template.replicate(engine) {
                Ok(instance) => instance,
                Err(error) => {
                    tracing::error!(filter = %template.name(), %stream, %error, "cannot create the partition's instance; its records are dead-lettered");
                    return None;
                }
            };
            let mut stage = Stage::new(instance);
            let saved = match assigned {
                Some(assigned) => assigned,
                None => self.pending.remove(stream),
            };
            let mut next_offset = None;
            let mut refused = None;
            if let Some(saved) = saved {
                next_offset = (saved.offset != UNKNOWN_OFFSET).then_some(saved.offset);
                refused = restore(&mut stage, &saved, stream).err();
            }
            self.units.insert(stream.clone(), Unit { stage, next_offset, refused });
        }
        self.units.get_mut(stream)
    }

    /// Checkpoint every unit, dropping those of `revoke`; what was handed
    /// over or restored and has no unit yet is handed back as it is when
    /// revoked (it is the partition's state), and left waiting otherwise.
    pub(super) fn checkpoint(&mut self, filter: &str, revoke: &[Arc<str>], taken: &mut Taken) {
        let epoch = std::mem::replace(&mut self.epoch, Epoch::new());
        taken.delivered.push(epoch.done);
        let revoked: HashSet<&Arc<str>> = revoke.iter().collect();
        for (stream, unit) in self.units.iter_mut().filter(|(_, unit)| unit.refused.is_none()) {
            // A revoked unit hands its state over and ends; the others go on.
            let ends = revoked.contains(stream);
            match save(&mut unit.stage, unit.next_offset, ends) {
                Ok(saved) => {
                    taken.checkpoints.push(Checkpoint { filter: filter.to_string(), stream: stream.clone(), saved })
                }
                Err(error) => {
                    tracing::error!(filter, %stream, %error, "cannot checkpoint the partition's state; the last checkpoint stays")
                }
            }
        }
        self.units.retain(|stream, _| !revoked.contains(stream));
        self.hub.revoke(revoke);
        for stream in revoke {
            let saved = match self.hub.take_restore(filter, stream) {
                Some(assigned) => assigned,
                None => self.pending.remove(stream),
            };
            if let Some(saved) = saved {
                taken.checkpoints.push(Checkpoint { filter: filter.to_string(), stream: stream.clone(), saved });
            }
        }
    }

    /// Take over `old`'s units (a reload): their state waits for this
    /// filter's units, and the epoch goes on.
    pub(super) fn adopt(&mut self, filter: &str, old: &mut Keyed) -> Result<(), PluginError> {
        for (stream, unit) in old.units.iter_mut().filter(|(_, unit)| unit.refused.is_none()) {
            let saved = save(&mut unit.stage, unit.next_offset, true)?;
            self.pending.insert(stream.clone(), saved);
        }
        self.pending.append(&mut old.pending);
        std::mem::swap(&mut self.epoch, &mut old.epoch);
        tracing::debug!(filter, partitions = self.pending.len(), "partition state handed over");
        Ok(())
    }
}

/// At a barrier every filter's state of a partition covers the same input:
/// what was taken from the input queue. A filter whose records are all
/// aggregates (`threshold` after `percentiles`) saw no offset itself, so each
/// checkpoint of a stream gets the largest offset any filter saw of it (the
/// consumer starts the partition at the smallest on assignment).
/// A stream none of whose filters has seen a record or restored state has
/// nothing to checkpoint: it is left out (its next owner starts where the
/// consumer group's committed offset says, as without checkpoints).
pub(super) fn align_offsets(checkpoints: &mut Vec<Checkpoint>) {
    let mut covered: HashMap<Arc<str>, i64> = HashMap::new();
    for c in checkpoints.iter().filter(|c| c.saved.offset != UNKNOWN_OFFSET) {
        let offset = covered.entry(c.stream.clone()).or_insert(c.saved.offset);
        *offset = (*offset).max(c.saved.offset);
    }
    checkpoints.retain_mut(|c| match covered.get(&c.stream) {
        Some(offset) => {
            c.saved.offset = *offset;
            true
        }
        None => false,
    });
}

/// The offset of a unit that has seen no record and restored no state.
const UNKNOWN_OFFSET: i64 = -1;

/// The state of `stage`, covering up to `offset`; `ends` when the instance
/// hands it over and goes (a snapshot), rather than going on (a checkpoint).
fn save(stage: &mut Stage, offset: Option<i64>, ends: bool) -> Result<Saved, PluginError> {
    let seen = stage.seen().map(dedupe::Seen::to_bytes);
    let instance = stage.instance_mut();
    let state = if ends { instance.snapshot()? } else { instance.checkpoint()? };
    Ok(Saved { offset: offset.unwrap_or(UNKNOWN_OFFSET), state, seen })
}

/// Restore `saved` into a new unit; `Err` with the dead letters' reason
/// when the filter refuses it (see [`Unit::refused`]).
fn restore(stage: &mut Stage, saved: &Saved, stream: &str) -> Result<(), String> {
    let name = stage.name().to_string();
    let started = std::time::Instant::now();
    if let Err(error) = stage.instance_mut().restore(&saved.state) {
        tracing::error!(filter = name, stream, %error,
            "the partition's checkpoint was refused: its records are dead-lettered and its checkpoint kept until the filter takes it (fix or roll back the filter's config; rename the filter to start it empty)");
        return Err(format!(
            "the filter refused this partition's checkpoint ({error}); fix or roll back its config, or rename the filter to start it empty"
        ));
    }
    if let Some(seen) = &saved.seen
        && let Err(error) = stage.restore_seen(seen)
    {
        tracing::warn!(filter = name, stream, error, "the partition's dedupe set was refused; it starts empty");
    }
    tracing::info!(filter = name, stream, offset = saved.offset, bytes = saved.state.len(), took = ?started.elapsed(), "partition state restored");
    Ok(())
}
