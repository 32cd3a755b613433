//! The hub where a `kafka` input with `checkpoints:` and the filter chain
//! meet (`pipeline/keyed.rs` keeps filter state per input partition; the
//! `kafka` input reads and writes it): state read on assignment, waiting for
//! its partition's instances; the partitions revoked; and requests for a
//! checkpoint barrier. Plain data and channels, so both sides can use it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::ack::Delivery;

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
    /// Where the checkpoints go; closed when the requester gave up waiting,
    /// and then the barrier is not taken (a revocation that timed out must
    /// not drop the units of a partition assigned again since).
    pub reply: oneshot::Sender<Taken>,
}

/// What the `kafka` input and the chain share: state read from the
/// checkpoint topic on assignment, waiting for its units; the streams
/// revoked; and the way to ask the chain for a barrier.
pub struct Checkpoints {
    restores: Mutex<HashMap<Arc<str>, Assignment>>,
    revoked: Mutex<HashSet<Arc<str>>>,
    requests: mpsc::UnboundedSender<Request>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Request>>>,
}

/// The state read for one assigned stream, by filter, and the filters
/// that took what the assignment gave them (state or none).
#[derive(Default)]
struct Assignment {
    saved: HashMap<String, Saved>,
    taken: HashSet<String>,
}

/// How often a blocked wait looks again.
const POLL: Duration = Duration::from_millis(2);

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
    pub fn take_requests(&self) -> Option<mpsc::UnboundedReceiver<Request>> {
        lock(&self.receiver).take()
    }

    /// `stream` is assigned, with the state each filter checkpointed for it
    /// (by filter name; empty for none). Call before any record of the
    /// stream is sent.
    pub fn assigned(&self, stream: Arc<str>, saved: HashMap<String, Saved>) {
        lock(&self.revoked).remove(&stream);
        lock(&self.restores).insert(stream, Assignment { saved, taken: HashSet::new() });
    }

    /// Ask the chain for a barrier (see [`Request`]) and wait up to
    /// `timeout` for its checkpoints; `None` when the chain has stopped or
    /// did not answer in time. Blocking: call it off the async runtime's
    /// tasks, or from librdkafka's callbacks.
    pub fn barrier(&self, revoke: &[Arc<str>], timeout: Duration) -> Option<Taken> {
        let (reply, mut taken) = oneshot::channel();
        self.requests.send(Request { revoke: revoke.to_vec(), reply }).ok()?;
        // Polled: this may run on a runtime thread (librdkafka's callbacks),
        // where a blocking receive is not allowed.
        let deadline = Instant::now() + timeout;
        loop {
            match taken.try_recv() {
                Ok(checkpoints) => return Some(checkpoints),
                Err(oneshot::error::TryRecvError::Closed) => return None,
                Err(oneshot::error::TryRecvError::Empty) if Instant::now() >= deadline => return None,
                Err(oneshot::error::TryRecvError::Empty) => std::thread::sleep(POLL),
            }
        }
    }

    /// From now on, records of `streams` are dropped until assigned again.
    pub fn revoke(&self, streams: &[Arc<str>]) {
        lock(&self.revoked).extend(streams.iter().cloned());
    }

    /// Whether `stream` was revoked and not assigned again since.
    pub fn is_revoked(&self, stream: &str) -> bool {
        lock(&self.revoked).contains(stream)
    }

    /// What the newest assignment of `stream` gives `filter`, once:
    /// `Some(Some(state))`, `Some(None)` for no state (start empty), `None`
    /// when `filter` took it already (or the stream was never assigned).
    pub fn take_restore(&self, filter: &str, stream: &str) -> Option<Option<Saved>> {
        let mut restores = lock(&self.restores);
        let assignment = restores.get_mut(stream)?;
        assignment.taken.insert(filter.to_string()).then(|| assignment.saved.remove(filter))
    }

    /// Streams whose newest assignment `filter` has not taken yet.
    pub fn waiting(&self, filter: &str) -> Vec<Arc<str>> {
        lock(&self.restores).iter().filter(|(_, a)| !a.taken.contains(filter)).map(|(s, _)| s.clone()).collect()
    }
}
