//! `dedupe:` of a filter ([`DedupeSettings`](crate::plugin::DedupeSettings)):
//! the identities of the records the chain gave that filter, so a record
//! delivered twice (a client's retry, a replayed Kafka partition, a file
//! read again) is counted once by a filter that aggregates, as it is
//! indexed once by the Elasticsearch output, whose `_id` is the same
//! identity. No contract change: the filter never sees the repeat.
//!
//! Bounded: the last `capacity` identities, the oldest forgotten first (a
//! count, not a time, so a process stopped for a day forgets nothing).
//! Saved beside the filter's own state (`<state_dir>/<filter>.seen`, in
//! `state.rs`) at the same moment, so the two agree after a restart; a
//! reload that hands a filter's state over hands this over too, and a
//! filter instance recreated after a trap (its state lost) starts empty.

use std::collections::{HashSet, VecDeque};

use crate::core::record::Record;

/// What a record is known by: 64 bits of its identity. Among a million
/// remembered identities, a new record is taken for a repeat with a
/// probability of about 5 in 10^14.
pub fn id(record: &Record) -> Option<u64> {
    record.origin.as_ref()?;
    let identity = record.identity();
    Some(u64::from_le_bytes(identity[..8].try_into().expect("a SHA-256 has 32 bytes")))
}

/// The identities remembered for one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    capacity: usize,
    ids: HashSet<u64>,
    /// Oldest first.
    order: VecDeque<u64>,
}

/// Starts a saved set: a name and a format version.
const MAGIC: &[u8; 8] = b"weirseen";
const VERSION: u32 = 1;

impl Seen {
    /// An empty set remembering up to `capacity` identities.
    pub fn new(capacity: usize) -> Self {
        Seen { capacity: capacity.max(1), ids: HashSet::new(), order: VecDeque::new() }
    }

    /// Remember `id`; false when it was remembered already (a repeat).
    pub fn first_time(&mut self, id: u64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        self.trim();
        true
    }

    /// Forget `id`, e.g. of a record given to a call that failed.
    pub fn forget(&mut self, id: u64) {
        // Its place in `order` stays; forgetting that place later is harmless.
        self.ids.remove(&id);
    }

    /// Forget everything: the filter's state was lost.
    pub fn clear(&mut self) {
        self.ids.clear();
        self.order.clear();
    }

    /// How many identities it keeps at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keep at most `capacity` from now on, dropping the oldest now.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.trim();
    }

    /// How many identities are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    fn trim(&mut self) {
        while self.ids.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.ids.remove(&old);
                }
                None => break,
            }
        }
    }

    /// The saved form: [`MAGIC`], the version and the count (little-endian
    /// `u32`, `u64`), then each identity oldest first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let live: Vec<u64> = self.order.iter().copied().filter(|id| self.ids.contains(id)).collect();
        let mut out = Vec::with_capacity(20 + live.len() * 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(live.len() as u64).to_le_bytes());
        for id in live {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    /// Read a saved set, keeping the newest `capacity` identities.
    ///
    /// # Errors
    /// What is wrong with `bytes`.
    pub fn from_bytes(bytes: &[u8], capacity: usize) -> Result<Self, String> {
        let rest = bytes.strip_prefix(MAGIC).ok_or("not a saved dedupe set")?;
        let (version, rest) = rest.split_at_checked(4).ok_or("truncated")?;
        let version = u32::from_le_bytes(version.try_into().expect("split at 4"));
        if version != VERSION {
            return Err(format!("format version {version}; this weir reads {VERSION}"));
        }
        let (count, rest) = rest.split_at_checked(8).ok_or("truncated")?;
        let count = u64::from_le_bytes(count.try_into().expect("split at 8"));
        if rest.len() as u64 != count.saturating_mul(8) {
            return Err(format!("holds {} bytes of identities for a count of {count}", rest.len()));
        }
        let mut seen = Seen::new(capacity);
        for chunk in rest.chunks_exact(8) {
            seen.first_time(u64::from_le_bytes(chunk.try_into().expect("chunks of 8")));
        }
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::Origin;

    #[test]
    fn remembers_up_to_its_capacity_forgetting_the_oldest() {
        let mut seen = Seen::new(3);
        assert!(seen.first_time(1) && seen.first_time(2) && seen.first_time(3));
        assert!(!seen.first_time(2), "a repeat");
        assert!(seen.first_time(4));
        assert_eq!(seen.len(), 3);
        assert!(seen.first_time(1), "the oldest was forgotten");
        seen.forget(4);
        assert!(seen.first_time(4));
        seen.clear();
        assert!(seen.first_time(3));
    }

    #[test]
    fn saves_and_reads_back_keeping_the_newest() {
        let mut seen = Seen::new(10);
        for id in [5, 6, 7, 8] {
            seen.first_time(id);
        }
        seen.forget(6);
        let bytes = seen.to_bytes();
        assert_eq!(Seen::from_bytes(&bytes, 10).unwrap().to_bytes(), bytes);
        let mut smaller = Seen::from_bytes(&bytes, 2).unwrap();
        assert_eq!(smaller.len(), 2);
        assert!(!smaller.first_time(8) && smaller.first_time(5), "the oldest is dropped first");
        assert!(Seen::from_bytes(b"nonsense", 10).is_err());
        assert!(Seen::from_bytes(&bytes[..bytes.len() - 1], 10).unwrap_err().contains("count of 3"));
    }

    #[test]
    fn only_records_with_an_origin_have_an_id_and_it_follows_their_identity() {
        let record = |offset, body: &'static str| Record {
            time: 1,
            tag: "metrics".into(),
            body: body.into(),
            origin: Some(Origin { stream: "kafka:raw/3".into(), offset, lineage: 7 }),
            ack: None,
            arrival: None,
        };
        assert_eq!(id(&record(17, "{}")), id(&record(17, "{}")), "a replay is the same record");
        assert_ne!(id(&record(17, "{}")), id(&record(18, "{}")));
        assert_ne!(id(&record(17, "{}")), id(&record(17, "{\"a\":1}")));
        assert_eq!(id(&Record { origin: None, ..record(17, "{}") }), None);
    }
}
