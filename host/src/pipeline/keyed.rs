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
//! module only moves state between units and [`Checkpoints`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::chain::Stage;

#[cfg(test)]
mod tests;
use super::dedupe;
use crate::core::ack::{AckToken, Delivery};
use crate::core::record::{Batch, Origin, Record};
use crate::plugin::{FilterInstance, PluginEngine, PluginError};

/// The offset of a record a unit emitted without a parent: not a position
/// in the partition, a mark that it aggregates the partition's records.
pub const AGGREGATE_OFFSET: u64 = u64::MAX;

/// One filter's state for one partition, as checkpointed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The partition's offset the state covers: every record before it was
    /// given to the filter, none from it on.
    pub offset: i64,
    /// The filter's `snapshot`.
    pub state: Vec<u8>,
    /// The dedupe set, with `dedupe:` on.
    pub seen: Option<Vec<u8>>,
}

/// One filter's checkpoint of one partition.
#[derive(Debug)]
pub struct Checkpoint {
    /// The filter's name.
    pub filter: String,
    /// The partition, as a record origin's stream (`kafka:<topic>/<partition>`).
    pub stream: Arc<str>,
    /// The state.
    pub saved: Saved,
}

/// What a barrier hands the checkpoint writer.
#[derive(Debug, Default)]
pub struct Taken {
    /// The checkpoints taken.
    pub checkpoints: Vec<Checkpoint>,
    /// One outcome per filter: whether everything its units emitted before
    /// the barrier was delivered.
    pub delivered: Vec<oneshot::Receiver<Delivery>>,
}

/// A request for a barrier: checkpoint every unit, and drop those of
/// `revoke` after checkpointing them.
pub struct Request {
    /// Streams whose units go.
    pub revoke: Vec<Arc<str>>,
    /// Where the checkpoints go.
    pub reply: std::sync::mpsc::SyncSender<Taken>,
}

/// What the `kafka` input and the chain share: state read from the
/// checkpoint topic on assignment, waiting for its units; the streams
/// revoked; and the way to ask the chain for a barrier.
pub struct Checkpoints {
    restores: Mutex<HashMap<Arc<str>, HashMap<String, Saved>>>,
    revoked: Mutex<HashSet<Arc<str>>>,
    requests: mpsc::UnboundedSender<Request>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Request>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps: a panic elsewhere cannot leave them half-updated.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Checkpoints {
    /// A new hub, its barrier requests not yet taken by a chain.
    pub fn new() -> Arc<Self> {
        let (requests, receiver) = mpsc::unbounded_channel();
        Arc::new(Checkpoints {
            restores: Mutex::default(),
            revoked: Mutex::default(),
            requests,
            receiver: Mutex::new(Some(receiver)),
        })
    }

    /// The barrier requests, for the chain that serves them (once).
    pub(super) fn take_requests(&self) -> Option<mpsc::UnboundedReceiver<Request>> {
        lock(&self.receiver).take()
    }

    /// `stream` is assigned, with the state each filter checkpointed for it
    /// (by filter name; empty for none). Call before any record of the
    /// stream is sent.
    pub fn assigned(&self, stream: Arc<str>, saved: HashMap<String, Saved>) {
        lock(&self.revoked).remove(&stream);
        lock(&self.restores).insert(stream, saved);
    }

    /// Ask the chain for a barrier (see [`Request`]) and wait up to
    /// `timeout` for its checkpoints; `None` when the chain has stopped or
    /// did not answer in time. Blocking: call it off the async runtime's
    /// tasks, or from librdkafka's callbacks.
    pub fn barrier(&self, revoke: &[Arc<str>], timeout: Duration) -> Option<Taken> {
        let (reply, taken) = std::sync::mpsc::sync_channel(1);
        self.requests.send(Request { revoke: revoke.to_vec(), reply }).ok()?;
        taken.recv_timeout(timeout).ok()
    }

    /// From now on, records of `streams` are dropped until assigned again.
    fn revoke(&self, streams: &[Arc<str>]) {
        lock(&self.revoked).extend(streams.iter().cloned());
    }

    fn is_revoked(&self, stream: &str) -> bool {
        lock(&self.revoked).contains(stream)
    }

    /// The state `filter` saved for `stream`, taken out.
    fn take_restore(&self, filter: &str, stream: &str) -> Option<Saved> {
        lock(&self.restores).get_mut(stream)?.remove(filter)
    }

    /// Streams assigned with state for `filter` not yet in a unit.
    fn waiting(&self, filter: &str) -> Vec<Arc<str>> {
        lock(&self.restores).iter().filter(|(_, saved)| saved.contains_key(filter)).map(|(s, _)| s.clone()).collect()
    }
}

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
    /// One past the last offset given to the instance.
    next_offset: i64,
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
                out.extend(records.into_iter().map(|r| plain.unit_failed(r, dead_letter_tag)));
                continue;
            };
            // Below the offset the state covers: in the state already (a
            // replay from the checkpoint, a rewind), so not given again.
            let covered = u64::try_from(unit.next_offset).unwrap_or(0);
            let (records, repeats): (Batch, Batch) = records.into_iter().partition(|r| {
                r.origin.as_ref().is_none_or(|o| o.offset == AGGREGATE_OFFSET || o.offset >= covered)
            });
            if !repeats.is_empty() {
                tracing::debug!(filter = %plain.name(), %stream, records = repeats.len(), covered, "records the partition's state covers dropped");
            }
            let last = records.iter().filter_map(|r| r.origin.as_ref()).map(|o| o.offset).filter(|o| *o != AGGREGATE_OFFSET).max();
            if let Some(offset) = last.and_then(|o| i64::try_from(o).ok()) {
                unit.next_offset = unit.next_offset.max(offset + 1);
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
            let emitted = tick(&mut self.units.get_mut(&stream).expect("listed above").stage);
            self.stamp(&stream, emitted, out);
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
        if !self.units.contains_key(stream) {
            let instance = match template.replicate(engine) {
                Ok(instance) => instance,
                Err(error) => {
                    tracing::error!(filter = %template.name(), %stream, %error, "cannot create the partition's instance; its records are dead-lettered");
                    return None;
                }
            };
            let mut stage = Stage::new(instance);
            let saved = self.pending.remove(stream).or_else(|| self.hub.take_restore(template.name(), stream));
            let mut next_offset = 0;
            if let Some(saved) = saved {
                next_offset = saved.offset;
                restore(&mut stage, &saved, stream);
            }
            self.units.insert(stream.clone(), Unit { stage, next_offset });
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
        for (stream, unit) in &mut self.units {
            // A revoked unit hands its state over and ends; the others go on.
            let ends = revoked.contains(stream);
            match save(&mut unit.stage, unit.next_offset, ends) {
                Ok(saved) => taken.checkpoints.push(Checkpoint { filter: filter.to_string(), stream: stream.clone(), saved }),
                Err(error) => tracing::error!(filter, %stream, %error, "cannot checkpoint the partition's state; the last checkpoint stays"),
            }
        }
        self.units.retain(|stream, _| !revoked.contains(stream));
        self.hub.revoke(revoke);
        for stream in revoke {
            let saved = self.pending.remove(stream).or_else(|| self.hub.take_restore(filter, stream));
            if let Some(saved) = saved {
                taken.checkpoints.push(Checkpoint { filter: filter.to_string(), stream: stream.clone(), saved });
            }
        }
    }

    /// Take over `old`'s units (a reload): their state waits for this
    /// filter's units, and the epoch goes on.
    pub(super) fn adopt(&mut self, filter: &str, old: &mut Keyed) -> Result<(), PluginError> {
        for (stream, unit) in &mut old.units {
            let saved = save(&mut unit.stage, unit.next_offset, true)?;
            self.pending.insert(stream.clone(), saved);
        }
        self.pending.append(&mut old.pending);
        std::mem::swap(&mut self.epoch, &mut old.epoch);
        tracing::debug!(filter, partitions = self.pending.len(), "partition state handed over");
        Ok(())
    }

}

/// The state of `stage`, covering up to `offset`; `ends` when the instance
/// hands it over and goes (a snapshot), rather than going on (a checkpoint).
fn save(stage: &mut Stage, offset: i64, ends: bool) -> Result<Saved, PluginError> {
    let seen = stage.seen().map(dedupe::Seen::to_bytes);
    let instance = stage.instance_mut();
    let state = if ends { instance.snapshot()? } else { instance.checkpoint()? };
    Ok(Saved { offset, state, seen })
}

/// Restore `saved` into a new unit; a refusal is logged and the unit starts
/// empty (its records are replayed from the checkpoint's offset either way).
fn restore(stage: &mut Stage, saved: &Saved, stream: &str) {
    let name = stage.name().to_string();
    if let Err(error) = stage.instance_mut().restore(&saved.state) {
        tracing::error!(filter = name, stream, %error, "the partition's checkpoint was refused; its state starts empty");
        return;
    }
    if let Some(seen) = &saved.seen
        && let Err(error) = stage.restore_seen(seen)
    {
        tracing::warn!(filter = name, stream, error, "the partition's dedupe set was refused; it starts empty");
    }
    tracing::info!(filter = name, stream, offset = saved.offset, bytes = saved.state.len(), "partition state restored");
}
