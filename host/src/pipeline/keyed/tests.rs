//! Keyed state with the bundled `percentiles` (build it first: `just
//! plugins`): units per partition, checkpoints with the offsets they cover,
//! a revoked partition restored elsewhere equal to one that never moved.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::core::clock::Clock;
use crate::core::record::Origin;
use crate::core::tag_match::TagMatch;
use crate::pipeline::END_OF_TIME;
use crate::plugin::{Abi, FilterSpec, Grants, Limits};

const MINUTE: i64 = 60_000_000_000;

fn percentiles(engine: &PluginEngine, hub: &Arc<Checkpoints>) -> Stage {
    let dir = std::env::var_os("WEIR_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let spec = FilterSpec {
        name: "percentiles".into(),
        wasm: dir.join("percentiles.wasm"),
        abi: Abi::Component,
        matches: TagMatch::new(vec!["metrics".into()]).unwrap(),
        config: json!({"window": "1m", "quantiles": ["p50"], "tag": "window"}),
        partition_by: None,
        limits: Limits::default(),
        grants: Grants::default(),
        dedupe: None,
    };
    assert!(spec.wasm.is_file(), "{} is missing: run `just plugins` first", spec.wasm.display());
    Stage::keyed(FilterInstance::new(engine, &spec, Clock::manual(10 * MINUTE)).unwrap(), hub.clone())
}

/// Sample `offset` of partition `partition`: value `offset`, at minute
/// `offset / 10`.
fn sample(partition: i32, offset: u64) -> Record {
    Record {
        time: (offset as i64 / 10) * MINUTE,
        tag: "metrics".into(),
        body: json!({"metric": "m", "value": offset + 1, "labels": {"p": partition.to_string()}})
            .to_string()
            .into_bytes()
            .into(),
        origin: Some(Origin { stream: format!("kafka:t/{partition}").into(), offset, lineage: 0 }),
        ack: None,
        arrival: None,
    }
}

fn run(stage: &mut Stage, engine: &PluginEngine, records: Vec<Record>) -> Vec<Record> {
    stage.run(engine, records, &"weir.dead_letter".into(), 1000, None)
}

/// Window bodies by (partition, start).
fn windows(records: &[Record]) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = records
        .iter()
        .filter(|r| &*r.tag == "window")
        .map(|r| {
            let origin = r.origin.as_ref().expect("a window carries its partition");
            assert_eq!(origin.offset, AGGREGATE_OFFSET);
            (origin.stream.to_string(), serde_json::from_slice(&r.body).unwrap())
        })
        .collect();
    out.sort_by_key(|(s, w)| (s.clone(), w["window_start"].as_str().unwrap().to_string()));
    out
}

#[test]
fn a_partition_checkpointed_revoked_and_restored_elsewhere_equals_one_that_never_moved() {
    let engine = PluginEngine::new(None).unwrap();
    let samples = |partition, range: std::ops::Range<u64>| range.map(move |o| sample(partition, o)).collect::<Vec<_>>();

    // One stage takes partitions 0 and 1 from start to end.
    let hub = Checkpoints::new();
    let mut whole = percentiles(&engine, &hub);
    let mut out = run(&mut whole, &engine, [samples(0, 0..25), samples(1, 0..25)].concat());
    out.extend(run(&mut whole, &engine, [samples(0, 25..50), samples(1, 25..50)].concat()));
    out.extend(whole.tick(&engine, END_OF_TIME, None));
    let expected = windows(&out);
    assert_eq!(expected.len(), 10, "5 windows per partition: {expected:?}");

    // Another takes the first half, then partition 1 is revoked from it and
    // restored into a third stage, as a new owner would.
    let hub = Checkpoints::new();
    let mut first = percentiles(&engine, &hub);
    let mut out = run(&mut first, &engine, [samples(0, 0..25), samples(1, 0..25)].concat());
    let revoked: Arc<str> = "kafka:t/1".into();
    let mut taken = Taken::default();
    first.keyed_mut().unwrap().checkpoint("percentiles", std::slice::from_ref(&revoked), &mut taken);
    let offsets: Vec<(String, i64)> =
        taken.checkpoints.iter().map(|c| (c.stream.to_string(), c.saved.offset)).collect();
    assert_eq!(offsets, [("kafka:t/0".to_string(), 25), ("kafka:t/1".to_string(), 25)], "both covered to offset 25");
    let moved = taken.checkpoints.into_iter().find(|c| c.stream == revoked).unwrap();
    // Late copies of the revoked partition are not counted here.
    assert!(windows(&run(&mut first, &engine, samples(1, 25..26))).is_empty());

    let other_hub = Checkpoints::new();
    other_hub.assigned(revoked.clone(), [("percentiles".to_string(), moved.saved)].into_iter().collect());
    let mut second = percentiles(&engine, &other_hub);
    // The consumer replays from a little before: those offsets are in the
    // state already and are not counted again.
    out.extend(run(&mut second, &engine, samples(1, 20..50)));
    out.extend(run(&mut first, &engine, samples(0, 25..50)));
    out.extend(first.tick(&engine, END_OF_TIME, None));
    out.extend(second.tick(&engine, END_OF_TIME, None));
    assert_eq!(windows(&out), expected);
}

#[test]
fn what_units_emit_holds_the_epoch_until_delivered() {
    let engine = PluginEngine::new(None).unwrap();
    let hub = Checkpoints::new();
    let mut stage = percentiles(&engine, &hub);
    // Minute 0 then minute 2: the first window closes and is emitted.
    let out = run(&mut stage, &engine, vec![sample(0, 0), sample(0, 20)]);
    assert_eq!(windows(&out).len(), 1);
    let mut taken = Taken::default();
    stage.keyed_mut().unwrap().checkpoint("percentiles", &[], &mut taken);
    let mut delivered = taken.delivered.pop().unwrap();
    assert!(delivered.try_recv().is_err(), "the window is not delivered yet");
    drop(out);
    assert_eq!(delivered.try_recv().unwrap(), Delivery::Delivered);
}

#[test]
fn every_filter_of_a_partition_is_checkpointed_at_the_offset_its_input_reached() {
    let checkpoint = |filter: &str, stream: &str, offset| Checkpoint {
        filter: filter.into(),
        stream: stream.into(),
        saved: Saved { offset, state: vec![1], seen: None },
    };
    // `threshold` only ever saw aggregates of partition 0; partition 1's
    // units saw nothing at all.
    let mut checkpoints = vec![
        checkpoint("percentiles", "kafka:t/0", 120),
        checkpoint("threshold", "kafka:t/0", UNKNOWN_OFFSET),
        checkpoint("percentiles", "kafka:t/1", UNKNOWN_OFFSET),
        checkpoint("threshold", "kafka:t/1", UNKNOWN_OFFSET),
    ];
    align_offsets(&mut checkpoints);
    let got: Vec<_> = checkpoints.iter().map(|c| (c.filter.as_str(), &*c.stream, c.saved.offset)).collect();
    assert_eq!(got, [("percentiles", "kafka:t/0", 120), ("threshold", "kafka:t/0", 120)]);
}

#[test]
fn a_refused_checkpoint_dead_letters_the_partition_and_is_never_overwritten() {
    let engine = PluginEngine::new(None).unwrap();
    let hub = Checkpoints::new();
    let stream: Arc<str> = "kafka:t/0".into();
    let garbage = Saved { offset: 7, state: b"not a snapshot".to_vec(), seen: None };
    hub.assigned(stream.clone(), [("percentiles".to_string(), garbage)].into_iter().collect());
    let mut stage = percentiles(&engine, &hub);
    let out = run(&mut stage, &engine, vec![sample(0, 7), sample(0, 8)]);
    assert_eq!(out.len(), 2);
    for letter in &out {
        assert_eq!(&*letter.tag, "weir.dead_letter");
        let body: Value = serde_json::from_slice(&letter.body).unwrap();
        assert!(body["reason"].as_str().unwrap().contains("refused this partition's checkpoint"), "{body}");
    }
    let mut taken = Taken::default();
    stage.keyed_mut().unwrap().checkpoint("percentiles", std::slice::from_ref(&stream), &mut taken);
    assert!(taken.checkpoints.is_empty(), "the refused checkpoint stays the newest: {:?}", taken.checkpoints);
}
