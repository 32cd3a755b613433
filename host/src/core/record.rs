//! The data model: [`Record`] and [`Batch`]. Nothing else moves between
//! stages. Bodies are JSON object bytes in a [`Bytes`] so fan-out to several
//! outputs clones a pointer, not the data.

use std::num::NonZeroU64;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::ack::AckToken;
use super::hash::fnv1a;

/// Nanoseconds since the Unix epoch, UTC: the unit of event time everywhere.
pub type Timestamp = i64;

/// One log record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Event time.
    pub time: Timestamp,
    /// Routing tag, matched by `match:` globs.
    pub tag: Arc<str>,
    /// One JSON object, UTF-8, no trailing newline.
    pub body: Bytes,
    /// Where the record came from; derived records inherit it.
    pub origin: Option<Origin>,
    /// Delivery acknowledgement of the accepted input this record derives
    /// from; `None` when the input does not track delivery.
    pub ack: Option<AckToken>,
    /// When the record entered the pipeline: set by the input context as it
    /// queues the record, inherited by what a filter derives from it, and
    /// set by the chain for what a filter emits without a parent. Read once
    /// per delivered batch for `weir_pipeline_latency_seconds`; `None` for
    /// records made outside a pipeline (tests, `weir bench`).
    pub arrival: Option<Arrival>,
}

/// When a record entered the pipeline, on the process's monotonic clock.
/// Eight bytes (an `Instant` takes sixteen), and `Option<Arrival>` too:
/// every record carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Arrival(NonZeroU64);

/// The instant arrivals count from: the first one read.
fn arrival_epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Arrival {
    /// Now.
    pub fn now() -> Self {
        let nanos = u64::try_from(arrival_epoch().elapsed().as_nanos()).unwrap_or(u64::MAX);
        Arrival(NonZeroU64::MIN.saturating_add(nanos))
    }

    /// The time since this arrival.
    pub fn elapsed(self) -> Duration {
        Arrival::now().0.get().checked_sub(self.0.get()).map_or(Duration::ZERO, Duration::from_nanos)
    }
}

impl Record {
    /// The record's identity, the same on every run for the same record:
    /// SHA-256 over its origin (input stream, offset and derivation lineage)
    /// when it has one, always together with its tag, event time and body.
    /// The origin keeps apart two identical statements on different lines;
    /// the content keeps apart different statements that reuse an origin, as
    /// lines of a rotated file do (line numbers restart). The Elasticsearch
    /// output's `_id` and filters' `dedupe` both use it, so a record is a
    /// repeat for one exactly when it is for the other.
    pub fn identity(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        match &self.origin {
            Some(origin) => {
                hash.update(b"o\0");
                hash.update(origin.stream.as_bytes());
                hash.update(b"\0");
                hash.update(origin.offset.to_le_bytes());
                hash.update(origin.lineage.to_le_bytes());
            }
            None => hash.update(b"c\0"),
        }
        hash.update(self.tag.as_bytes());
        hash.update(b"\0");
        hash.update(self.time.to_le_bytes());
        hash.update(&self.body);
        hash.finalize().into()
    }
}

/// A batch of records: the unit that moves through queues and filter calls.
pub type Batch = Vec<Record>;

/// The identity of a record: which input unit it came from and how it was
/// derived. Stable across replays, so outputs can build idempotent ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The input stream, e.g. `file:/var/log/app.ndjson` or `kafka:raw/3`.
    pub stream: Arc<str>,
    /// Position within the stream: a line number, a Kafka offset.
    pub offset: u64,
    /// Which derived record this is: 0 for the input record itself, then a
    /// hash of each fan-out step's child ordinal (see [`Origin::child`]).
    pub lineage: u64,
}

impl Origin {
    /// The origin of the `ordinal`-th record a filter derived from this one.
    /// FNV-1a over the parent lineage and the ordinal: cheap, deterministic
    /// across runs and platforms (std's hasher is randomly seeded).
    pub fn child(&self, ordinal: u32) -> Origin {
        let lineage = fnv1a(self.lineage.to_le_bytes().into_iter().chain(ordinal.to_le_bytes()));
        Origin { stream: self.stream.clone(), offset: self.offset, lineage }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.stream, self.offset)?;
        if self.lineage != 0 {
            write!(f, "#{:016x}", self.lineage)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin { stream: "file:a".into(), offset: 7, lineage: 0 }
    }

    #[test]
    fn child_lineage_is_deterministic_and_distinct_per_ordinal() {
        let o = origin();
        assert_eq!(o.child(1), o.child(1));
        assert_ne!(o.child(1).lineage, o.child(2).lineage);
        assert_ne!(o.child(1).child(0).lineage, o.child(0).child(1).lineage);
        assert_eq!(o.child(3).offset, 7);
    }

    #[test]
    fn an_arrival_takes_eight_bytes_and_tells_its_age() {
        assert_eq!(std::mem::size_of::<Option<Arrival>>(), 8);
        let then = Arrival::now();
        std::thread::sleep(Duration::from_millis(5));
        assert!(then.elapsed() >= Duration::from_millis(5));
        assert!(then < Arrival::now());
    }

    #[test]
    fn display_names_stream_and_offset() {
        assert_eq!(origin().to_string(), "file:a@7");
    }
}
