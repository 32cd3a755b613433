//! Taps: bounded copies of what flows, for the console. The chain calls
//! [`Taps::filter_batch`] once per filter call; the router calls
//! [`Taps::routed`] once per batch; the router and the dead-letter route
//! call [`Taps::dead_letters`]. Each call takes a lock or two and copies at
//! most a few hundred records, whatever the batch size; nothing here parses
//! or counts per record, except the window samples (`samples.rs`), and only
//! at the filter `admin.samples` names.
//!
//! What is kept, and why it is bounded:
//! - **per filter**, a spread of up to [`INPUTS_PER_BATCH`] records of each
//!   batch that reached it, the last [`INPUT_RING`]: the playground's
//!   "take the last N that reached this filter";
//! - **per tag**, of what leaves the chain for the outputs, the last
//!   [`TAG_RING`] or [`TAG_RING_BYTES`] per tag, for [`MAX_TAGS`] tags, also
//!   pushed to the stream: every record of a *summary tag*, else a spread
//!   of [`SPREAD_PER_BATCH`] per batch. A summary tag is one a filter has
//!   emitted records with no parent under (aggregates: windows), or with a
//!   parent of a summary tag (what is derived from aggregates: alerts).
//!   So the charts see every window and alert even when a burst closes
//!   hundreds at once, while busy tags (statements, metric samples) cost a
//!   few copies per batch;
//! - the last [`DEAD_LETTER_RING`] dead letters.
//!
//! Bodies are copied (not shared) when kept, so a kept record never holds
//! a larger buffer alive; one over [`MAX_KEPT_BODY`] is skipped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use tokio::sync::broadcast;

use super::samples::SampleStore;
use crate::admin::api::{Sample, StreamEvent};
use crate::config::SampleSpec;
use crate::core::record::Record;

/// Records kept per batch that reaches a filter: enough to see variety,
/// few enough that the copy is noise next to the filter call.
pub const INPUTS_PER_BATCH: usize = 16;
/// Inputs kept per filter.
pub const INPUT_RING: usize = 256;
/// Records of a busy tag kept from one batch, as for a filter's inputs.
pub const SPREAD_PER_BATCH: usize = INPUTS_PER_BATCH;
/// Records kept per tag: 25 minutes of the scenario's 40 series of
/// one-minute windows.
pub const TAG_RING: usize = 1024;
/// Bytes of bodies kept per tag, whatever their count.
pub const TAG_RING_BYTES: usize = 1 << 20;
/// Tags kept; tags beyond (a plugin minting one per app, say) are not.
pub const MAX_TAGS: usize = 32;
/// Dead letters kept.
pub const DEAD_LETTER_RING: usize = 100;
/// Larger bodies are not kept: a sample is for reading, and a chunk of
/// megabytes would crowd out everything else.
pub const MAX_KEPT_BODY: usize = 64 << 10;
/// Stream events buffered per client before it is told it lagged.
const STREAM_BUFFER: usize = 1024;

/// A ring of the last records, bounded by count and bytes.
#[derive(Debug)]
pub struct Ring {
    records: VecDeque<Sample>,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
}

impl Ring {
    /// A ring of at most `max_records` records and `max_bytes` body bytes.
    pub fn new(max_records: usize, max_bytes: usize) -> Self {
        Ring { records: VecDeque::new(), bytes: 0, max_records, max_bytes }
    }

    /// Add `sample`, dropping the oldest past either bound.
    pub fn push(&mut self, sample: Sample) {
        self.bytes += sample.body.len();
        self.records.push_back(sample);
        while self.records.len() > self.max_records || self.bytes > self.max_bytes {
            match self.records.pop_front() {
                Some(old) => self.bytes -= old.body.len(),
                None => break,
            }
        }
    }

    /// How many records it holds.
    pub fn count(&self) -> usize {
        self.records.len()
    }

    /// The newest `limit` records, oldest first.
    pub fn last(&self, limit: usize) -> Vec<Sample> {
        self.records.iter().skip(self.records.len().saturating_sub(limit)).cloned().collect()
    }
}

/// A kept copy of `record`, or `None` when its body is too large to keep.
pub fn keep(record: &Record) -> Option<Sample> {
    (record.body.len() <= MAX_KEPT_BODY).then(|| Sample {
        time: record.time,
        tag: record.tag.clone(),
        body: Bytes::copy_from_slice(&record.body),
    })
}

/// The indices of `records` by tag, in order of first appearance. A batch
/// has a few tags, and tags are shared `Arc`s, so a list beats a map.
fn by_tag(records: &[Record]) -> Vec<(&Arc<str>, Vec<usize>)> {
    let mut by_tag: Vec<(&Arc<str>, Vec<usize>)> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        match by_tag.iter_mut().find(|(tag, _)| Arc::ptr_eq(tag, &record.tag) || **tag == record.tag) {
            Some((_, indices)) => indices.push(i),
            None => by_tag.push((&record.tag, vec![i])),
        }
    }
    by_tag
}

/// Up to `n` indices spread evenly over `0..len`, always with the last.
fn spread(len: usize, n: usize) -> impl Iterator<Item = usize> {
    let step = len.div_ceil(n.max(1)).max(1);
    let first = len.saturating_sub(1) % step;
    (first..len).step_by(step)
}

fn input_ring() -> Ring {
    Ring::new(INPUT_RING, INPUT_RING * MAX_KEPT_BODY)
}

/// Every tap of a running pipeline; shared by the chain, the router, the
/// dead-letter route and the console.
pub struct Taps {
    filters: Mutex<HashMap<Arc<str>, Ring>>,
    tags: Mutex<HashMap<Arc<str>, Ring>>,
    /// Summary tags: those of aggregates and of what derives from them.
    summary_tags: RwLock<HashSet<Arc<str>>>,
    dead_letters: Mutex<Ring>,
    samples: Option<(SampleSpec, Mutex<SampleStore>)>,
    events: broadcast::Sender<StreamEvent>,
}

impl Taps {
    /// Taps, keeping window samples as `samples` says.
    pub fn new(samples: Option<SampleSpec>) -> Self {
        let samples = samples.map(|spec| {
            let store = SampleStore::new(&spec);
            (spec, Mutex::new(store))
        });
        Taps {
            filters: Mutex::default(),
            tags: Mutex::default(),
            summary_tags: RwLock::default(),
            dead_letters: Mutex::new(Ring::new(DEAD_LETTER_RING, DEAD_LETTER_RING * MAX_KEPT_BODY)),
            samples,
            events: broadcast::channel(STREAM_BUFFER).0,
        }
    }

    /// After filter `filter` processed `batch` into `emitted` (with each
    /// one's parent index in `parents`).
    pub fn filter_batch<'a>(
        &self,
        filter: &Arc<str>,
        batch: &[Record],
        emitted: &'a [Record],
        parents: &[Option<usize>],
    ) {
        let kept: Vec<Sample> = spread(batch.len(), INPUTS_PER_BATCH).filter_map(|i| keep(&batch[i])).collect();
        {
            let mut filters = self.filters.lock().unwrap_or_else(|p| p.into_inner());
            let ring = filters.entry(filter.clone()).or_insert_with(input_ring);
            for sample in kept {
                ring.push(sample);
            }
        }
        if let Some((spec, store)) = &self.samples
            && *spec.filter == **filter
        {
            store.lock().unwrap_or_else(|p| p.into_inner()).add(batch, emitted, parents);
        }
        // Only a batch with summaries among its inputs can derive one.
        let summaries_in: Vec<&Arc<str>> = {
            let known = self.summary_tags.read().unwrap_or_else(|p| p.into_inner());
            by_tag(batch).into_iter().map(|(tag, _)| tag).filter(|tag| known.contains(*tag)).collect()
        };
        let derived = |parent: usize| batch.get(parent).is_some_and(|r| summaries_in.contains(&&r.tag));
        let summary = |(record, parent): (&'a Record, &Option<usize>)| match parent {
            None => Some(record),
            Some(p) if !summaries_in.is_empty() && derived(*p) => Some(record),
            Some(_) => None,
        };
        self.summaries(emitted.iter().zip(parents).filter_map(summary));
    }

    /// Records that are summaries (aggregates a filter emitted, from
    /// `process` or `tick`, or records derived from summaries): their tags
    /// are summary tags from now on.
    pub fn summaries<'a>(&self, records: impl Iterator<Item = &'a Record>) {
        let mut new: Vec<&Arc<str>> = Vec::new();
        {
            let known = self.summary_tags.read().unwrap_or_else(|p| p.into_inner());
            for record in records {
                if !known.contains(&record.tag) && !new.contains(&&record.tag) {
                    new.push(&record.tag);
                }
            }
        }
        if !new.is_empty() {
            let mut known = self.summary_tags.write().unwrap_or_else(|p| p.into_inner());
            for tag in new {
                if known.len() < MAX_TAGS {
                    known.insert(tag.clone());
                }
            }
        }
    }

    /// A batch on its way to the outputs (dead letters aside).
    pub fn routed(&self, records: &[Record], dead_letter_tag: &Arc<str>) {
        let mut kept: Vec<Sample> = Vec::new();
        {
            let summary = self.summary_tags.read().unwrap_or_else(|p| p.into_inner());
            for (tag, indices) in by_tag(records) {
                if tag == dead_letter_tag {
                    continue;
                }
                if summary.contains(tag) {
                    // Whole, up to what its ring can hold.
                    let skip = indices.len().saturating_sub(TAG_RING);
                    kept.extend(indices[skip..].iter().filter_map(|&i| keep(&records[i])));
                } else {
                    kept.extend(spread(indices.len(), SPREAD_PER_BATCH).filter_map(|i| keep(&records[indices[i]])));
                }
            }
        }
        if kept.is_empty() {
            return;
        }
        {
            let mut tags = self.tags.lock().unwrap_or_else(|p| p.into_inner());
            for sample in &kept {
                if !tags.contains_key(&sample.tag) && tags.len() >= MAX_TAGS {
                    continue;
                }
                tags.entry(sample.tag.clone())
                    .or_insert_with(|| Ring::new(TAG_RING, TAG_RING_BYTES))
                    .push(sample.clone());
            }
        }
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(StreamEvent::Records(kept));
        }
    }

    /// Dead letters on their way to outputs (their bodies are the envelopes).
    pub fn dead_letters<'a>(&self, letters: impl Iterator<Item = &'a Record>) {
        let kept: Vec<Sample> = letters.filter_map(keep).collect();
        if kept.is_empty() {
            return;
        }
        let mut ring = self.dead_letters.lock().unwrap_or_else(|p| p.into_inner());
        for sample in kept {
            ring.push(sample.clone());
            if self.events.receiver_count() > 0 {
                let _ = self.events.send(StreamEvent::DeadLetter(sample));
            }
        }
    }

    /// The newest `limit` records that reached `filter`, or `None` if none has.
    pub fn inputs(&self, filter: &str, limit: usize) -> Option<Vec<Sample>> {
        self.filters.lock().unwrap_or_else(|p| p.into_inner()).get(filter).map(|r| r.last(limit))
    }

    /// The newest `limit` records of each of `tags` (every kept tag when
    /// empty), by event time.
    pub fn records(&self, tags: &[&str], limit: usize) -> Vec<Sample> {
        let rings = self.tags.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<Sample> = rings
            .iter()
            .filter(|(tag, _)| tags.is_empty() || tags.contains(&&***tag))
            .flat_map(|(_, ring)| ring.last(limit))
            .collect();
        all.sort_by_key(|s| s.time);
        all
    }

    /// The tags kept, with how many records of each.
    pub fn tags(&self) -> Vec<(String, usize)> {
        let rings = self.tags.lock().unwrap_or_else(|p| p.into_inner());
        let mut tags: Vec<(String, usize)> = rings.iter().map(|(tag, ring)| (tag.to_string(), ring.count())).collect();
        tags.sort();
        tags
    }

    /// The newest `limit` dead letters, oldest first.
    pub fn last_dead_letters(&self, limit: usize) -> Vec<Sample> {
        self.dead_letters.lock().unwrap_or_else(|p| p.into_inner()).last(limit)
    }

    /// The window samples, if configured.
    pub fn samples(&self) -> Option<(&SampleSpec, &Mutex<SampleStore>)> {
        self.samples.as_ref().map(|(spec, store)| (spec, store))
    }

    /// A receiver of newly kept routed records and dead letters.
    pub fn subscribe(&self) -> broadcast::Receiver<StreamEvent> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: i64, body: &str) -> Record {
        Record { time, tag: "t".into(), body: Bytes::from(body.to_string()), origin: None, ack: None, arrival: None }
    }

    #[test]
    fn spread_takes_evenly_and_always_the_last() {
        assert_eq!(spread(0, 16).count(), 0);
        assert_eq!(spread(1, 16).collect::<Vec<_>>(), [0]);
        assert_eq!(spread(5, 16).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        let picks: Vec<usize> = spread(1000, 16).collect();
        assert!(picks.len() <= 16, "{picks:?}");
        assert_eq!(picks.last(), Some(&999));
    }

    #[test]
    fn rings_are_bounded_by_count_and_bytes() {
        let mut ring = Ring::new(3, 10);
        for i in 0..5 {
            ring.push(keep(&record(i, "ab")).unwrap());
        }
        assert_eq!(ring.last(10).iter().map(|s| s.time).collect::<Vec<_>>(), [2, 3, 4]);
        ring.push(keep(&record(5, "0123456789")).unwrap());
        assert_eq!(ring.last(10).iter().map(|s| s.time).collect::<Vec<_>>(), [5], "bytes bound");
        assert_eq!(ring.last(0).len(), 0);
    }

    #[test]
    fn a_filter_call_keeps_a_spread_of_its_inputs() {
        let taps = Taps::new(None);
        let name: Arc<str> = "f".into();
        let batch: Vec<Record> = (0..100).map(|i| record(i, "{}")).collect();
        taps.filter_batch(&name, &batch, &[], &[]);
        let inputs = taps.inputs("f", 1000).unwrap();
        assert!(inputs.len() <= INPUTS_PER_BATCH && inputs.last().unwrap().time == 99);
        assert!(taps.inputs("other", 10).is_none());
    }

    #[test]
    fn summaries_are_kept_whole_and_streamed_and_busy_tags_sampled() {
        let taps = Taps::new(None);
        let mut events = taps.subscribe();
        let tagged = |time, tag: &str| Record { tag: tag.into(), ..record(time, "{}") };
        // A filter emits a window with no parent: `windows` is a summary tag;
        // another derives an alert from a window: so is `alerts`; and a
        // metric record from a statement: `metrics` is not.
        let window = tagged(0, "windows");
        taps.filter_batch(&"percentiles".into(), &[], std::slice::from_ref(&window), &[None]);
        taps.filter_batch(&"threshold".into(), &[window], &[tagged(0, "alerts")], &[Some(0)]);
        taps.filter_batch(&"extract".into(), &[tagged(0, "statements")], &[tagged(0, "metrics")], &[Some(0)]);
        let mut batch: Vec<Record> = (0..1000).map(|i| tagged(i, "metrics")).collect();
        batch.extend((0..300).map(|i| tagged(i, "alerts")));
        batch.extend((0..600).map(|i| tagged(i, "windows")));
        batch.push(tagged(7, "dlq"));
        taps.routed(&batch, &"dlq".into());
        assert_eq!(taps.records(&["alerts"], 1000).len(), 300, "derived from summaries: kept whole");
        assert_eq!(taps.records(&["windows"], 1000).len(), 600, "aggregates: kept whole");
        let metrics = taps.records(&["metrics"], 10_000).len();
        assert!(metrics <= SPREAD_PER_BATCH && metrics > SPREAD_PER_BATCH / 2, "a busy tag is sampled: {metrics}");
        assert!(taps.records(&["dlq"], 10).is_empty(), "dead letters have their own ring");
        assert_eq!(taps.tags().len(), 3);
        assert!(matches!(events.try_recv().unwrap(), StreamEvent::Records(r) if r.len() == metrics + 900));
    }

    #[test]
    fn large_bodies_are_not_kept() {
        let big = "x".repeat(MAX_KEPT_BODY + 1);
        assert!(keep(&record(0, &big)).is_none());
        let taps = Taps::new(None);
        taps.dead_letters([record(0, &big), record(1, "{}")].iter());
        assert_eq!(taps.last_dead_letters(10).len(), 1);
    }
}
