//! Window samples: for a chart point (one series, one window), a few of the
//! records behind it. The host names no filter and knows no window, so it
//! keeps what `admin.samples` describes: for every record the configured
//! filter emits with a parent and a matching tag (e.g. `extract`'s metric
//! records), the values of its `key` fields name a series (e.g. `metric`
//! and `labels`, which `percentiles` copies onto its window records), and
//! its parent (the statement it was extracted from) goes into a reservoir
//! of [`PER_SERIES`] for that series and `bucket` of event time. The
//! console asks with a window record's key fields and its
//! `window_start`..`window_end`, and gets the samples of the buckets in
//! between.
//!
//! Bounded: [`PER_SERIES`] per series and bucket, [`MAX_SERIES_PER_BUCKET`]
//! series per bucket (as `percentiles` caps its own), [`MAX_BUCKETS`]
//! buckets and [`MAX_BYTES`] of bodies, the oldest buckets going first.
//! Reading the emitted record's key fields is the one per-record cost of
//! the console, paid only at that one filter: the top level is split
//! without decoding values, and the canonical series key is looked up by
//! the key fields' raw text, so a series is decoded once, not per record.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::taps::keep;
use crate::admin::api::Sample;
use crate::config::SampleSpec;
use crate::core::record::{Record, Timestamp};
use crate::core::tag_match::TagMatch;
use crate::core::template::write_value;

/// Samples kept per series and bucket: enough to read a window's typical
/// and odd statements.
pub const PER_SERIES: usize = 5;
/// Series per bucket; later series of a full bucket are not sampled.
pub const MAX_SERIES_PER_BUCKET: usize = 10_000;
/// Buckets kept: four hours of one-minute buckets.
pub const MAX_BUCKETS: usize = 240;
/// Body bytes kept in all.
pub const MAX_BYTES: usize = 32 << 20;

#[derive(Default)]
struct Reservoir {
    seen: u64,
    kept: Vec<Sample>,
}

/// The reservoirs, by bucket start and series.
pub struct SampleStore {
    key: Vec<String>,
    matches: TagMatch,
    bucket: i64,
    buckets: BTreeMap<Timestamp, HashMap<Arc<str>, Reservoir>>,
    /// Canonical series keys by the raw text of the key fields, as written.
    series: HashMap<Vec<u8>, Arc<str>>,
    bytes: usize,
    rng: fastrand::Rng,
}

impl SampleStore {
    /// An empty store for `spec`.
    pub fn new(spec: &SampleSpec) -> Self {
        SampleStore {
            key: spec.key.clone(),
            matches: spec.matches.clone(),
            bucket: i64::try_from(spec.bucket.as_nanos()).unwrap_or(i64::MAX).max(1),
            buckets: BTreeMap::new(),
            series: HashMap::new(),
            bytes: 0,
            // Fixed seed: which records are kept is repeatable for the same input.
            rng: fastrand::Rng::with_seed(0x5eed),
        }
    }

    /// The series key of a body: the canonical JSON of its key fields'
    /// values, in key order (null for a missing field).
    fn series(&self, body: &serde_json::Map<String, Value>) -> String {
        let values = Value::Array(self.key.iter().map(|k| body.get(k).cloned().unwrap_or(Value::Null)).collect());
        let mut out = String::new();
        write_value(&values, &mut out);
        out
    }

    /// The canonical series key of a body, through the cache of raw key
    /// texts; `None` for a body that is not a JSON object.
    fn series_of(&mut self, body: &[u8], raw: &mut Vec<u8>) -> Option<Arc<str>> {
        let Ok(fields) = serde_json::from_slice::<HashMap<&str, &RawValue>>(body) else {
            // Escaped keys cannot be borrowed: decode the whole object.
            let object = serde_json::from_slice::<serde_json::Map<String, Value>>(body).ok()?;
            return Some(self.series(&object).into());
        };
        raw.clear();
        for key in &self.key {
            raw.extend_from_slice(fields.get(key.as_str()).map_or("null", |v| v.get()).as_bytes());
            raw.push(0);
        }
        if let Some(series) = self.series.get(raw.as_slice()) {
            return Some(series.clone());
        }
        let object = serde_json::from_slice::<serde_json::Map<String, Value>>(body).ok()?;
        let series: Arc<str> = self.series(&object).into();
        if self.series.len() >= MAX_SERIES_PER_BUCKET {
            self.series.clear();
        }
        self.series.insert(raw.clone(), series.clone());
        Some(series)
    }

    /// Sample the parents of the matching records of `emitted`.
    pub fn add(&mut self, batch: &[Record], emitted: &[Record], parents: &[Option<usize>]) {
        let mut raw = Vec::new();
        for (record, parent) in emitted.iter().zip(parents) {
            let Some(parent) = parent.and_then(|p| batch.get(p)) else { continue };
            if !self.matches.matches(&record.tag) {
                continue;
            }
            let Some(series) = self.series_of(&record.body, &mut raw) else { continue };
            let start = record.time.div_euclid(self.bucket).saturating_mul(self.bucket);
            if self.buckets.len() >= MAX_BUCKETS && self.buckets.first_key_value().is_some_and(|(&s, _)| start < s) {
                continue;
            }
            let bucket = self.buckets.entry(start).or_default();
            if bucket.len() >= MAX_SERIES_PER_BUCKET && !bucket.contains_key(&series) {
                continue;
            }
            let reservoir = bucket.entry(series).or_default();
            reservoir.seen += 1;
            // Algorithm R: each of the `seen` records is kept with the same chance.
            let slot = if reservoir.kept.len() < PER_SERIES {
                None
            } else {
                match self.rng.u64(0..reservoir.seen) as usize {
                    j if j < PER_SERIES => Some(j),
                    _ => continue,
                }
            };
            let Some(sample) = keep(parent) else { continue };
            self.bytes += sample.body.len();
            match slot {
                None => reservoir.kept.push(sample),
                Some(j) => {
                    self.bytes -= reservoir.kept[j].body.len();
                    reservoir.kept[j] = sample;
                }
            }
        }
        while self.buckets.len() > MAX_BUCKETS || self.bytes > MAX_BYTES {
            let Some((_, oldest)) = self.buckets.pop_first() else { break };
            self.bytes -= oldest.values().flat_map(|r| &r.kept).map(|s| s.body.len()).sum::<usize>();
        }
    }

    /// The samples of series `key` (an object of the key fields) with event
    /// times in `from..to`, up to `limit`, by time; and how many records of
    /// the series the buckets saw (`seen`, which counts whole buckets).
    ///
    /// # Errors
    /// When `key` is not a JSON object.
    pub fn query(&self, key: &str, from: Timestamp, to: Timestamp, limit: usize) -> Result<Value, String> {
        let key: serde_json::Map<String, Value> =
            serde_json::from_str(key).map_err(|e| format!("key: expected a JSON object of the series' fields: {e}"))?;
        let series: Arc<str> = self.series(&key).into();
        let first = from.div_euclid(self.bucket).saturating_mul(self.bucket);
        let mut seen = 0;
        let mut samples: Vec<&Sample> = Vec::new();
        for reservoir in self.buckets.range(first..to.max(first)).filter_map(|(_, b)| b.get(&series)) {
            seen += reservoir.seen;
            samples.extend(reservoir.kept.iter().filter(|s| (from..to).contains(&s.time)));
        }
        samples.sort_by_key(|s| s.time);
        samples.truncate(limit);
        Ok(json!({ "seen": seen, "samples": samples }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MINUTE: i64 = 60_000_000_000;

    fn store() -> SampleStore {
        SampleStore::new(&SampleSpec {
            filter: "extract".into(),
            matches: TagMatch::new(vec!["metrics".into()]).unwrap(),
            key: vec!["metric".into(), "labels".into()],
            bucket: Duration::from_secs(60),
        })
    }

    fn record(time: i64, tag: &str, body: &str) -> Record {
        Record { time, tag: tag.into(), body: body.to_string().into(), origin: None, ack: None, arrival: None }
    }

    #[test]
    fn the_parent_of_a_matching_record_is_kept_per_series_and_bucket() {
        let mut store = store();
        let batch = vec![
            record(MINUTE + 1, "s", r#"{"message":"pay ios"}"#),
            record(MINUTE + 2, "s", r#"{"message":"pay android"}"#),
        ];
        let emitted = vec![
            record(MINUTE + 1, "s", r#"{"message":"pay ios","extract":{}}"#),
            record(MINUTE + 1, "metrics", r#"{"metric":"rt","value":1,"labels":{"txn":"pay","os":"ios"}}"#),
            record(MINUTE + 2, "metrics", r#"{"metric":"rt","value":2,"labels":{"os":"android","txn":"pay"}}"#),
        ];
        store.add(&batch, &emitted, &[Some(0), Some(0), Some(1)]);
        // Label order in the query does not matter: keys are canonical.
        let answer =
            store.query(r#"{"labels":{"txn":"pay","os":"ios"},"metric":"rt"}"#, MINUTE, 2 * MINUTE, 10).unwrap();
        assert_eq!(answer["seen"], 1);
        assert_eq!(answer["samples"][0]["body"]["message"], "pay ios");
        let other = store.query(r#"{"metric":"rt","labels":{"os":"android","txn":"pay"}}"#, 0, 2 * MINUTE, 10).unwrap();
        assert_eq!(other["samples"][0]["body"]["message"], "pay android");
        let outside = store.query(r#"{"metric":"rt","labels":{"os":"ios","txn":"pay"}}"#, 2 * MINUTE, 3 * MINUTE, 10);
        assert_eq!(outside.unwrap()["seen"], 0);
        assert!(store.query("[1]", 0, 1, 1).unwrap_err().starts_with("key: expected a JSON object"));
    }

    #[test]
    fn a_series_is_the_same_however_its_body_is_written() {
        let mut store = store();
        let mut raw = Vec::new();
        let plain = store.series_of(br#"{"metric":"m","value":1,"labels":{"a":"1","b":"2"}}"#, &mut raw).unwrap();
        let spaced =
            store.series_of(br#"{"labels": {"b": "2", "a": "1"}, "metric": "m", "value": 2}"#, &mut raw).unwrap();
        let escaped = store.series_of(br#"{"metric":"m","labels":{"a":"1","b":"2"}}"#, &mut raw).unwrap();
        assert_eq!(plain, spaced);
        assert_eq!(plain, escaped);
        assert_eq!(&*plain, r#"["m",{"a":"1","b":"2"}]"#);
        assert!(store.series_of(b"[1]", &mut raw).is_none());
    }

    #[test]
    fn a_reservoir_keeps_at_most_its_size_of_many() {
        let mut store = store();
        let batch: Vec<Record> = (0..1000).map(|i| record(i, "s", &format!(r#"{{"n":{i}}}"#))).collect();
        let emitted: Vec<Record> = (0..1000).map(|i| record(i, "metrics", r#"{"metric":"m","labels":{}}"#)).collect();
        let parents: Vec<Option<usize>> = (0..1000).map(Some).collect();
        store.add(&batch, &emitted, &parents);
        let answer = store.query(r#"{"metric":"m","labels":{}}"#, 0, MINUTE, 100).unwrap();
        assert_eq!(answer["seen"], 1000);
        let kept = answer["samples"].as_array().unwrap();
        assert_eq!(kept.len(), PER_SERIES);
        assert!(kept.iter().any(|s| s["body"]["n"].as_i64().unwrap() >= PER_SERIES as i64), "later records get in");
    }

    #[test]
    fn old_buckets_go_first_past_the_bound() {
        let mut store = store();
        for minute in 0..(MAX_BUCKETS as i64 + 5) {
            let t = minute * MINUTE;
            store.add(&[record(t, "s", "{}")], &[record(t, "metrics", r#"{"metric":"m"}"#)], &[Some(0)]);
        }
        assert_eq!(store.buckets.len(), MAX_BUCKETS);
        assert_eq!(*store.buckets.first_key_value().unwrap().0, 5 * MINUTE);
        // A record for a bucket older than everything kept is not sampled.
        store.add(&[record(0, "s", "{}")], &[record(0, "metrics", r#"{"metric":"m"}"#)], &[Some(0)]);
        assert_eq!(*store.buckets.first_key_value().unwrap().0, 5 * MINUTE);
    }
}
