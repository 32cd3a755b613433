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
//! Instances of a partitioned filter are numbered by partition. State kept
//! per Kafka partition (a `kafka` input's `checkpoints`) is another matter:
//! one instance (placement as without `partition_by`) holding a unit per
//! input partition, see [`super::keyed`].

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::core::hash::{Fnv1a, mix};
use crate::core::template::FieldPath;

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
/// body. A missing path counts as a value of its own (as does `null`), so
/// records lacking a field still go to one partition together.
#[derive(Debug, Clone, PartialEq)]
pub struct Partitioner {
    paths: Vec<FieldPath>,
    partitions: usize,
    /// Where each path's value may be: path `i` nested (`device` then `os`)
    /// in slot `2i`, flattened (one key `device.os`) in slot `2i + 1`.
    wants: Vec<(usize, Vec<String>)>,
}

/// The hash of a missing or `null` value.
const MISSING: u64 = 0;

impl Partitioner {
    /// Partition by `paths` into `partitions` (at least 1).
    pub fn new(paths: Vec<FieldPath>, partitions: usize) -> Self {
        let mut wants = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            wants.push((2 * i, path.keys().to_vec()));
            if path.keys().len() > 1 {
                wants.push((2 * i + 1, vec![path.as_str().to_string()]));
            }
        }
        Partitioner { paths, partitions: partitions.max(1), wants }
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
    /// for equal keys, in every run and on every platform. A value is
    /// hashed as parsed, objects with their keys sorted, so
    /// `{"labels": {"a": 1, "b": 2}}` and `{"labels": {"b": 2, "a": 1}}`
    /// meet; a nested path (`device.os`) is looked up nested first, then as
    /// one flattened key. The body is read once, building nothing but the
    /// hashes (this runs for every record entering a partitioned filter).
    pub fn partition(&self, body: &[u8]) -> usize {
        if self.partitions == 1 {
            return 0;
        }
        let mut found = vec![None; 2 * self.paths.len()];
        let wants = self.wants.iter().map(|(slot, keys)| (*slot, keys.as_slice())).collect();
        let node = Node::new(wants, false, &mut found);
        if node.deserialize(&mut serde_json::Deserializer::from_slice(body)).is_err() {
            // Not a JSON object: no value at any path.
            found.fill(None);
        }
        let mut key = Fnv1a::default();
        for pair in found.chunks(2) {
            key.write_u64(pair[0].or(pair[1]).unwrap_or(MISSING));
        }
        let hash = mix(key.finish());
        // The high bits of the product: Lemire's "fast range", no division.
        ((u128::from(hash) * self.partitions as u128) >> 64) as usize
    }
}

/// Reads one JSON value: its canonical hash when `hash` (else 0), and into
/// `found` the hashes of the values the `wants` (a slot, and the keys left
/// to follow from here) reach.
struct Node<'p, 'f> {
    wants: Vec<(usize, &'p [String])>,
    hash: bool,
    found: &'f mut [Option<u64>],
}

impl<'p, 'f> Node<'p, 'f> {
    /// A value inside one being hashed when `inside_hashed`; hashed itself
    /// also when a want ends here.
    fn new(wants: Vec<(usize, &'p [String])>, inside_hashed: bool, found: &'f mut [Option<u64>]) -> Self {
        let hash = inside_hashed || wants.iter().any(|(_, keys)| keys.is_empty());
        Node { wants, hash, found }
    }

    /// `hash` of the value just read: noted in the slots that want it here.
    fn done(self, hash: u64) -> u64 {
        for (slot, keys) in self.wants {
            if keys.is_empty() {
                self.found[slot] = Some(hash);
            }
        }
        hash
    }

    fn leaf(self, tag: u8, bytes: &[u8]) -> u64 {
        let mut hasher = Fnv1a::default();
        hasher.write(&[tag]);
        hasher.write(bytes);
        self.done(hasher.finish())
    }

    /// Whether the value must be read at all (else it is skipped).
    fn needed(&self) -> bool {
        self.hash || !self.wants.is_empty()
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        if self.needed() {
            deserializer.deserialize_any(self)
        } else {
            IgnoredAny::deserialize(deserializer).map(|_| 0)
        }
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<u64, E> {
        Ok(self.done(MISSING))
    }

    fn visit_bool<E>(self, value: bool) -> Result<u64, E> {
        Ok(self.leaf(b'b', &[u8::from(value)]))
    }

    fn visit_u64<E>(self, value: u64) -> Result<u64, E> {
        Ok(self.leaf(b'u', &value.to_le_bytes()))
    }

    fn visit_i64<E>(self, value: i64) -> Result<u64, E> {
        Ok(self.leaf(b'i', &value.to_le_bytes()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<u64, E> {
        Ok(self.leaf(b'f', &value.to_bits().to_le_bytes()))
    }

    fn visit_str<E>(self, value: &str) -> Result<u64, E> {
        Ok(self.leaf(b's', value.as_bytes()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut hasher = Fnv1a::default();
        hasher.write(b"[");
        while let Some(item) = seq.next_element_seed(Node::new(Vec::new(), self.hash, &mut []))? {
            hasher.write_u64(item);
        }
        Ok(self.done(hasher.finish()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut entries: Vec<(Cow<'de, str>, u64)> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let wants: Vec<(usize, &[String])> = self
                .wants
                .iter()
                .filter(|(_, keys)| keys.first().is_some_and(|k| *k == key))
                .map(|(slot, keys)| (*slot, &keys[1..]))
                .collect();
            let hash = map.next_value_seed(Node::new(wants, self.hash, &mut *self.found))?;
            if self.hash {
                entries.push((key, hash));
            }
        }
        entries.sort_unstable();
        let mut hasher = Fnv1a::default();
        hasher.write(b"{");
        for (key, hash) in &entries {
            hasher.write(key.as_bytes());
            // No key holds 0xff (not UTF-8), so ("ab", h) and ("a", ..) stay apart.
            hasher.write(&[0xff]);
            hasher.write_u64(*hash);
        }
        Ok(self.done(hasher.finish()))
    }
}

/// An object key, borrowed from the body unless it has escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_string()))
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
    fn values_meet_as_parsed_not_as_written() {
        let p = by(&["labels"], 1 << 20);
        let plain = p.partition(br#"{"labels":{"a":"x","n":{"p":1,"q":[1,"y"]}}}"#);
        let written_otherwise = br#"{ "labels" : { "n" : {"q":[1,"\u0079"],"p":1}, "\u0061": "\u0078" } }"#;
        assert_eq!(plain, p.partition(written_otherwise), "escapes, spaces and key order at any depth");
        assert_ne!(plain, p.partition(br#"{"labels":{"a":"x","n":{"p":1,"q":["y",1]}}}"#), "array order counts");
        assert_ne!(plain, p.partition(br#"{"labels":{"a":"x","n":{"p":2,"q":[1,"y"]}}}"#));
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
