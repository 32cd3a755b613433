//! Where a filter's records go when it runs on several workers: its
//! [`Placement`], decided once per filter, and the [`Partitioner`] that sends
//! each record to the instance holding its key's state.
//!
//! The rule (the host never names a filter, so it goes by config and by
//! what the filter shows):
//! - `partition_by: [paths]`: one instance per partition, `pipeline.workers`
//!   partitions; a record goes to the partition of its key, the values at
//!   those paths, so every record of one key meets the same state;
//! - `partition_by: []`: one instance takes every record;
//! - no `partition_by`: a filter whose `snapshot()` is empty right after
//!   `configure` keeps no state (the SDK's default for a stateless filter)
//!   and runs one instance per worker, any record on any of them; any other
//!   filter runs as one instance, as with `partition_by: []`. So a filter
//!   that keeps state is never split across workers unless its config says
//!   by which key.
//!
//! Instances of a partitioned filter are numbered by partition; issue 18
//! will add partitions chosen by the input (a Kafka partition) beside the
//! hashed ones, with the same numbering.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::core::hash::{fnv1a, mix};
use crate::core::template::{FieldPath, write_value};

/// How a filter's instances share its records.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// Stateless: one instance per worker, any record to any of them.
    Parallel,
    /// One instance per partition, each record to its key's partition.
    Partitioned(Partitioner),
}

impl Placement {
    /// The placement of a filter with `partition_by` (`None` when not set),
    /// whose first instance had an empty snapshot after `configure` when
    /// `stateless`, in a pipeline of `workers`; see the module docs.
    pub fn decide(partition_by: Option<&[FieldPath]>, stateless: bool, workers: usize) -> Placement {
        match partition_by {
            Some([]) => Placement::Partitioned(Partitioner::single()),
            Some(paths) => Placement::Partitioned(Partitioner::new(paths.to_vec(), workers)),
            None if stateless => Placement::Parallel,
            None => Placement::Partitioned(Partitioner::single()),
        }
    }

    /// How many instances the filter runs with `workers`.
    pub fn instances(&self, workers: usize) -> usize {
        match self {
            Placement::Parallel => workers,
            Placement::Partitioned(p) => p.partitions(),
        }
    }
}

/// Sends a record to one of `partitions` by the values at `paths` in its
/// body. A missing path counts as a value of its own, so records lacking a
/// field still go to one partition together.
#[derive(Debug, Clone, PartialEq)]
pub struct Partitioner {
    paths: Vec<FieldPath>,
    partitions: usize,
    /// Top-level keys the paths can start at (`device` and `device.os` for
    /// `device.os`), the only body fields worth reading.
    keys: Vec<String>,
}

impl Partitioner {
    /// Partition by `paths` into `partitions` (at least 1).
    pub fn new(paths: Vec<FieldPath>, partitions: usize) -> Self {
        let mut keys: Vec<String> = paths.iter().map(|p| p.keys()[0].clone()).collect();
        keys.extend(paths.iter().filter(|p| p.keys().len() > 1).map(|p| p.as_str().to_string()));
        keys.sort();
        keys.dedup();
        Partitioner { paths, partitions: partitions.max(1), keys }
    }

    /// One partition: every record to the same instance.
    pub fn single() -> Self {
        Partitioner::new(Vec::new(), 1)
    }

    /// The number of partitions.
    pub fn partitions(&self) -> usize {
        self.partitions
    }

    /// The paths of the key, as configured.
    pub fn paths(&self) -> &[FieldPath] {
        &self.paths
    }

    /// The partition of a record with `body`, in `0..partitions`: the same
    /// for equal keys, in every run and on every platform. Values compare
    /// as `core::template` renders them (objects with sorted keys), so
    /// `{"labels": {"a": 1, "b": 2}}` and `{"labels": {"b": 2, "a": 1}}` meet.
    pub fn partition(&self, body: &[u8]) -> usize {
        if self.partitions == 1 {
            return 0;
        }
        let fields = Value::Object(top_level_fields(body, &self.keys));
        let mut key = String::new();
        for path in &self.paths {
            // A separator no rendered value ends with keeps ("ab", "c") and
            // ("a", "bc") apart; NUL stands for a missing value.
            if !path.lookup(&fields).is_some_and(|v| write_value(v, &mut key)) {
                key.push('\0');
            }
            key.push('\u{1f}');
        }
        let hash = mix(fnv1a(key.bytes()));
        // The high bits of the product: Lemire's "fast range", no division.
        ((u128::from(hash) * self.partitions as u128) >> 64) as usize
    }
}

/// The top-level fields of JSON object `body` named in `keys`, without
/// building the others; empty when `body` is not a JSON object.
fn top_level_fields(body: &[u8], keys: &[String]) -> Map<String, Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    Fields(keys).deserialize(&mut deserializer).unwrap_or_default()
}

struct Fields<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Map::new();
        while let Some(wanted) = map.next_key_seed(Key(self.0))? {
            match wanted {
                Some(i) => {
                    fields.insert(self.0[i].clone(), map.next_value()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// A key of the body: the index of the wanted key it equals, if any, read
/// without allocating.
struct Key<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|k| k == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(texts: &[&str]) -> Vec<FieldPath> {
        texts.iter().map(|t| FieldPath::parse(t).unwrap()).collect()
    }

    fn by(texts: &[&str], partitions: usize) -> Partitioner {
        Partitioner::new(paths(texts), partitions)
    }

    #[test]
    fn records_of_one_key_meet_whatever_else_they_hold() {
        let p = by(&["metric", "labels"], 8);
        let a = p.partition(br#"{"metric":"rt","value":1,"labels":{"os":"ios","txn":"pay"}}"#);
        let b = p.partition(br#"{"labels":{"txn":"pay","os":"ios"},"value":999,"time":"x","metric":"rt"}"#);
        assert_eq!(a, b, "label order and other fields do not matter");
        let other = p.partition(br#"{"metric":"rt","value":1,"labels":{"os":"android","txn":"pay"}}"#);
        assert!(other < 8 && a < 8);
    }

    #[test]
    fn keys_spread_over_every_partition() {
        for partitions in [2, 3, 8, 16] {
            let p = by(&["labels.txn"], partitions);
            let mut counts = vec![0usize; partitions];
            for i in 0..4000 {
                counts[p.partition(format!(r#"{{"labels":{{"txn":"t{i}"}}}}"#).as_bytes())] += 1;
            }
            let fair = 4000 / partitions;
            assert!(
                counts.iter().all(|&c| c > fair * 3 / 4 && c < fair * 5 / 4),
                "{partitions} partitions: {counts:?}"
            );
        }
    }

    #[test]
    fn nested_and_flattened_paths_and_missing_fields_are_keys_too() {
        let p = by(&["device.os"], 16);
        assert_eq!(p.partition(br#"{"device":{"os":"ios"}}"#), p.partition(br#"{"device.os":"ios"}"#));
        let missing = p.partition(br#"{"x":1}"#);
        assert_eq!(missing, p.partition(b"not json"), "no value: one partition for all of them");
        assert_eq!(missing, p.partition(br#"{"device":{"os":null}}"#));
        let p = by(&["a", "b"], 1 << 20);
        assert_ne!(p.partition(br#"{"a":"xy","b":"z"}"#), p.partition(br#"{"a":"x","b":"yz"}"#));
        assert_ne!(p.partition(br#"{"a":"x"}"#), p.partition(br#"{"b":"x"}"#));
    }

    #[test]
    fn one_partition_takes_everything_without_reading_bodies() {
        assert_eq!(Partitioner::single().partition(b"anything"), 0);
    }

    #[test]
    fn a_filter_keeping_state_is_split_only_by_its_configured_key() {
        let key = paths(&["metric"]);
        assert_eq!(Placement::decide(None, true, 4), Placement::Parallel);
        assert_eq!(Placement::decide(None, false, 4), Placement::Partitioned(Partitioner::single()));
        assert_eq!(Placement::decide(Some(&[]), true, 4).instances(4), 1);
        let keyed = Placement::decide(Some(&key), false, 4);
        assert_eq!(keyed, Placement::Partitioned(Partitioner::new(key.clone(), 4)));
        assert_eq!(keyed.instances(4), 4);
        assert_eq!(Placement::Parallel.instances(4), 4);
    }
}
