//! The contiguous-offset commit tracker: which Kafka offset of each assigned
//! partition may be committed, given acknowledgements that arrive out of
//! order. Pure (no rdkafka, no clock, no I/O), so every rule below is tested
//! on canned sequences; `consumer.rs` owns the calls into librdkafka.
//!
//! Rules:
//! - Every received message is tracked as in flight, in receive order.
//! - A partition's commit position is one past the last offset of the
//!   longest prefix of tracked messages that are all delivered. Acks after a
//!   gap wait for the gap; nothing is committed past unacknowledged data
//!   (Vector commits past failures: #24543, #24215).
//! - A failed delivery freezes the position at that offset and asks the
//!   consumer to rewind (seek) the partition to it. [`OffsetTracker::rewound`]
//!   then forgets everything from that offset on and starts a new epoch,
//!   so the acks of the abandoned copies are ignored and the replay is
//!   tracked afresh.
//! - Revoking a partition returns its last commit position and drops its
//!   tracker; acks that arrive later carry an old epoch and are ignored,
//!   even when the partition is assigned back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`/`partition`.
    pub fn new(topic: &str, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "topic {} partition {}", self.topic, self.partition)
    }
}

/// Identifies one tracking period of a partition: a new epoch starts on
/// every assignment and every rewind.
pub type Epoch = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    InFlight,
    Delivered,
    Failed,
}

#[derive(Debug)]
struct Partition {
    epoch: Epoch,
    /// Tracked offsets not yet folded into `position`, in offset order.
    pending: BTreeMap<i64, State>,
    /// One past the last contiguously delivered offset; `None` until the
    /// first delivery (the group's committed offset stays as it is).
    position: Option<i64>,
    /// The position last handed out for committing.
    committed: Option<i64>,
    /// The lowest failed offset, until the consumer rewinds to it.
    rewind: Option<i64>,
    /// Where the partition must start (a checkpoint's offset), until its
    /// first message is seen.
    start: Option<i64>,
}

impl Partition {
    fn advance(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.get() != State::Delivered {
                break;
            }
            let (offset, _) = entry.remove_entry();
            self.position = Some(offset + 1);
        }
    }
}

/// Tracks every assigned partition; see the module docs.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<TopicPartition, Partition>,
    next_epoch: Epoch,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    fn new_epoch(&mut self) -> Epoch {
        self.next_epoch += 1;
        self.next_epoch
    }

    /// Start tracking `tp` (on assignment). An already tracked partition
    /// keeps its state.
    pub fn assign(&mut self, tp: TopicPartition) {
        if self.partitions.contains_key(&tp) {
            return;
        }
        let epoch = self.new_epoch();
        self.partitions.insert(
            tp,
            Partition { epoch, pending: BTreeMap::new(), position: None, committed: None, rewind: None, start: None },
        );
    }

    /// `tp` must start at `offset` (its checkpoint covers what is before).
    pub fn expect_start(&mut self, tp: &TopicPartition, offset: i64) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.start = Some(offset);
        }
    }

    /// Whether `offset`, the first message of `tp` since its assignment,
    /// lies past the offset it had to start at: the consumer skipped
    /// messages the partition's state does not cover (librdkafka reset an
    /// offset it took for out of range). The partition is then rewound to
    /// the start (see [`Self::rewinds`]) and the start returned.
    pub fn skipped_ahead(&mut self, tp: &TopicPartition, offset: i64) -> Option<i64> {
        let p = self.partitions.get_mut(tp)?;
        let start = p.start.take().filter(|start| offset > *start)?;
        p.rewind = Some(p.rewind.map_or(start, |r| r.min(start)));
        Some(start)
    }

    /// Stop tracking `tp` (on revocation). Returns the position to commit
    /// if it moved since the last commit.
    pub fn revoke(&mut self, tp: &TopicPartition) -> Option<i64> {
        let p = self.partitions.remove(tp)?;
        p.position.filter(|pos| Some(*pos) != p.committed)
    }

    /// Track a received message. Returns the epoch its ack must carry, or
    /// `None` when the partition is not assigned or is waiting for a
    /// rewind (the message is a copy that will be replayed: do not send it).
    pub fn track(&mut self, tp: &TopicPartition, offset: i64) -> Option<Epoch> {
        let p = self.partitions.get_mut(tp)?;
        if p.rewind.is_some() {
            return None;
        }
        // Below the position: already delivered (a stale prefetched copy).
        if p.position.is_some_and(|pos| offset < pos) {
            return None;
        }
        p.pending.insert(offset, State::InFlight);
        Some(p.epoch)
    }

    /// Record the outcome of `offset`. Acks from another epoch (a revoked
    /// or rewound partition) are ignored. Returns true when this ack asks
    /// for a rewind.
    pub fn ack(&mut self, tp: &TopicPartition, epoch: Epoch, offset: i64, delivered: bool) -> bool {
        let Some(p) = self.partitions.get_mut(tp) else {
            return false;
        };
        if p.epoch != epoch {
            return false;
        }
        let Some(state) = p.pending.get_mut(&offset) else {
            return false;
        };
        if delivered {
            *state = State::Delivered;
            p.advance();
            false
        } else {
            *state = State::Failed;
            let first = p.rewind.is_none();
            p.rewind = Some(p.rewind.map_or(offset, |r| r.min(offset)));
            first
        }
    }

    /// Partitions to rewind, and the offset to seek each to.
    pub fn rewinds(&self) -> Vec<(TopicPartition, i64)> {
        let mut out: Vec<_> =
            self.partitions.iter().filter_map(|(tp, p)| p.rewind.map(|offset| (tp.clone(), offset))).collect();
        out.sort();
        out
    }

    /// The consumer has seeked `tp` back to `offset`: forget everything
    /// from there on and start a new epoch.
    pub fn rewound(&mut self, tp: &TopicPartition, offset: i64) {
        let epoch = self.new_epoch();
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        p.pending.retain(|&o, _| o < offset);
        p.rewind = None;
        p.epoch = epoch;
        p.advance();
    }

    /// Positions that moved since they were last handed out, marked as
    /// handed out. Failed commits are handed back by [`Self::commit_failed`].
    pub fn take_commits(&mut self) -> Vec<(TopicPartition, i64)> {
        let mut out = Vec::new();
        for (tp, p) in &mut self.partitions {
            if let Some(pos) = p.position
                && p.committed != Some(pos)
            {
                p.committed = Some(pos);
                out.push((tp.clone(), pos));
            }
        }
        out.sort();
        out
    }

    /// A commit of `tp` at `offset` failed: hand it out again next time.
    pub fn commit_failed(&mut self, tp: &TopicPartition, offset: i64) {
        if let Some(p) = self.partitions.get_mut(tp)
            && p.committed == Some(offset)
        {
            p.committed = None;
        }
    }

    /// Messages tracked and not yet delivered, over the given partitions
    /// (all when `None`).
    pub fn in_flight(&self, only: Option<&[TopicPartition]>) -> usize {
        self.partitions
            .iter()
            .filter(|(tp, _)| only.is_none_or(|o| o.contains(tp)))
            .map(|(_, p)| p.pending.values().filter(|s| **s == State::InFlight).count())
            .sum()
    }

    /// The partitions being tracked.
    pub fn assigned(&self) -> Vec<TopicPartition> {
        let mut out: Vec<_> = self.partitions.keys().cloned().collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("raw", p)
    }

    fn tracker_with(offsets: std::ops::Range<i64>) -> (OffsetTracker, Epoch) {
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        let mut epoch = 0;
        for o in offsets {
            epoch = t.track(&tp(0), o).unwrap();
        }
        (t, epoch)
    }

    #[test]
    fn nothing_is_committed_before_the_first_delivery() {
        let (mut t, _) = tracker_with(10..13);
        assert!(t.take_commits().is_empty());
        assert_eq!(t.in_flight(None), 3);
    }

    #[test]
    fn out_of_order_acks_commit_only_the_contiguous_prefix() {
        let (mut t, e) = tracker_with(10..15);
        t.ack(&tp(0), e, 12, true);
        t.ack(&tp(0), e, 13, true);
        assert!(t.take_commits().is_empty(), "10 and 11 are still in flight");
        t.ack(&tp(0), e, 10, true);
        assert_eq!(t.take_commits(), [(tp(0), 11)]);
        t.ack(&tp(0), e, 11, true);
        assert_eq!(t.take_commits(), [(tp(0), 14)], "11 closes the gap up to 13");
        assert!(t.take_commits().is_empty(), "a position is handed out once");
        assert_eq!(t.in_flight(None), 1);
    }

    #[test]
    fn gaps_in_offsets_do_not_block_the_position() {
        // Compacted topics and transaction markers skip offsets.
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        let e = t.track(&tp(0), 5).unwrap();
        t.track(&tp(0), 9).unwrap();
        t.ack(&tp(0), e, 9, true);
        t.ack(&tp(0), e, 5, true);
        assert_eq!(t.take_commits(), [(tp(0), 10)]);
    }

    #[test]
    fn a_failure_stops_the_position_and_asks_for_a_rewind() {
        let (mut t, e) = tracker_with(0..5);
        t.ack(&tp(0), e, 0, true);
        assert!(t.ack(&tp(0), e, 1, false), "the first failure asks for a rewind");
        assert!(!t.ack(&tp(0), e, 3, false), "one rewind per partition at a time");
        t.ack(&tp(0), e, 2, true);
        t.ack(&tp(0), e, 4, true);
        assert_eq!(t.take_commits(), [(tp(0), 1)], "never past the failed offset 1");
        assert_eq!(t.rewinds(), [(tp(0), 1)]);
        assert_eq!(t.track(&tp(0), 5), None, "messages before the rewind are not sent");

        t.rewound(&tp(0), 1);
        assert!(t.rewinds().is_empty());
        let e2 = t.track(&tp(0), 1).unwrap();
        assert_ne!(e, e2);
        t.ack(&tp(0), e, 1, true);
        assert!(t.take_commits().is_empty(), "an ack of the abandoned copy is ignored");
        t.ack(&tp(0), e2, 1, true);
        assert_eq!(t.take_commits(), [(tp(0), 2)]);
    }

    #[test]
    fn revoking_returns_the_contiguous_position_and_ignores_late_acks() {
        let (mut t, e) = tracker_with(0..4);
        t.ack(&tp(0), e, 0, true);
        t.ack(&tp(0), e, 1, true);
        t.ack(&tp(0), e, 3, true);
        assert_eq!(t.revoke(&tp(0)), Some(2));
        assert!(t.assigned().is_empty());
        t.ack(&tp(0), e, 2, true);
        assert!(t.take_commits().is_empty(), "acks of a revoked partition are ignored");

        t.assign(tp(0));
        let e2 = t.track(&tp(0), 2).unwrap();
        t.ack(&tp(0), e, 2, true);
        assert!(t.take_commits().is_empty(), "an old-epoch ack is ignored after reassignment too");
        t.ack(&tp(0), e2, 2, true);
        assert_eq!(t.take_commits(), [(tp(0), 3)]);
    }

    #[test]
    fn revoking_a_committed_position_returns_nothing() {
        let (mut t, e) = tracker_with(0..1);
        t.ack(&tp(0), e, 0, true);
        assert_eq!(t.take_commits(), [(tp(0), 1)]);
        assert_eq!(t.revoke(&tp(0)), None);
    }

    #[test]
    fn a_failed_commit_is_handed_out_again() {
        let (mut t, e) = tracker_with(0..1);
        t.ack(&tp(0), e, 0, true);
        assert_eq!(t.take_commits(), [(tp(0), 1)]);
        t.commit_failed(&tp(0), 1);
        assert_eq!(t.take_commits(), [(tp(0), 1)]);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        t.assign(tp(1));
        let e0 = t.track(&tp(0), 0).unwrap();
        let e1 = t.track(&tp(1), 0).unwrap();
        t.track(&tp(1), 1).unwrap();
        t.ack(&tp(1), e1, 0, false);
        t.ack(&tp(0), e0, 0, true);
        t.ack(&tp(1), e1, 1, true);
        assert_eq!(t.take_commits(), [(tp(0), 1)]);
        assert_eq!(t.rewinds(), [(tp(1), 0)]);
        assert_eq!(t.in_flight(Some(&[tp(1)])), 0);
        assert_eq!(t.track(&TopicPartition::new("other", 0), 0), None, "unassigned partitions are not tracked");
    }

    #[test]
    fn stale_copies_below_the_position_are_not_tracked() {
        let (mut t, e) = tracker_with(0..2);
        t.ack(&tp(0), e, 0, true);
        t.ack(&tp(0), e, 1, true);
        assert_eq!(t.track(&tp(0), 1), None);
        assert_eq!(t.track(&tp(0), 2), Some(e));
    }

    #[test]
    fn a_partition_that_starts_past_its_checkpoint_is_rewound_to_it() {
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        t.assign(tp(1));
        t.expect_start(&tp(0), 100);
        t.expect_start(&tp(1), 100);
        // Started where it should: nothing to do, and only the first message counts.
        assert_eq!(t.skipped_ahead(&tp(1), 100), None);
        assert_eq!(t.skipped_ahead(&tp(1), 500), None);
        // Started past it: rewound, and nothing is tracked until then.
        assert_eq!(t.skipped_ahead(&tp(0), 180), Some(100));
        assert_eq!(t.rewinds(), [(tp(0), 100)]);
        assert!(t.track(&tp(0), 181).is_none());
        t.rewound(&tp(0), 100);
        assert!(t.track(&tp(0), 100).is_some());
    }
}
