//! Containment in a running pipeline: a filter that traps, loops or
//! exhausts its memory loses only the batch it failed on (dead-lettered with
//! the reason), its instance is recreated, and every other record flows.
//! In Rust (`tests/plugins/misbehave`) and in Go (`go-misbehave`).

use serde_json::Value;

use crate::util::{TestDir, read_ndjson};

fn contained(plugin: &str, mode: &str, limits: &str, reason: &str) {
    let dir = TestDir::new();
    let lines: String = (0..200)
        .map(|i| if i == 57 { "{\"n\":57,\"m\":\"poison\"}\n".to_string() } else { format!("{{\"n\":{i}}}\n") })
        .collect();
    dir.write("in.ndjson", &lines);
    dir.run_config(&format!(
        "
pipeline: {{ batch_max_records: 10 }}
inputs: [{{ type: file, path: in.ndjson, tag: t }}]
filters:
  - {{ type: {plugin}, match: t, limits: {limits}, config: {{ mode: {mode} }} }}
outputs:
  - {{ type: file, path: out.ndjson, match: t }}
  - {{ type: file, name: dead_letter, path: dead.ndjson, match: weir.dead_letter }}
"
    ));
    let out = read_ndjson(&dir.path("out.ndjson"));
    let dead = read_ndjson(&dir.path("dead.ndjson"));
    let n = |r: &Value| r["n"].as_i64().unwrap();
    let mut all: Vec<i64> = out.iter().map(n).chain(dead.iter().map(|d| n(&d["record"]))).collect();
    all.sort();
    assert_eq!(all, (0..200).collect::<Vec<_>>(), "every record is delivered or dead-lettered, once");
    assert!(!dead.is_empty() && dead.len() <= 10, "only the failing batch is dead-lettered: {}", dead.len());
    assert!(dead.iter().any(|d| n(&d["record"]) == 57));
    for d in &dead {
        let text = d["reason"].as_str().unwrap();
        assert!(text.contains(reason), "reason {text:?} does not contain {reason:?}");
        assert_eq!(d["stage"], format!("filter {plugin}"));
    }
    assert!(out.iter().any(|r| n(r) > 60), "records after the failure still flow through the recreated instance");
}

#[test]
fn a_trapping_filter_loses_only_its_batch() {
    contained("misbehave", "trap", "{}", "plugin misbehave: trapped in process: ");
    contained("misbehave", "trap", "{}", "poisoned record");
    contained("go-misbehave", "trap", "{}", "plugin go-misbehave: trapped in process: ");
}

#[test]
fn a_looping_filter_is_cut_off_at_its_deadline() {
    contained("misbehave", "loop", "{ deadline: 200ms }", "plugin misbehave: deadline of 200ms exceeded in process");
    contained(
        "go-misbehave",
        "loop",
        "{ deadline: 200ms }",
        "plugin go-misbehave: deadline of 200ms exceeded in process",
    );
}

#[test]
fn a_memory_hungry_filter_is_capped() {
    contained(
        "misbehave",
        "memory_bomb",
        "{ memory: 32MiB }",
        "plugin misbehave: memory cap of 33554432 bytes exceeded in process",
    );
    contained(
        "go-misbehave",
        "memory_bomb",
        "{ memory: 32MiB }",
        "plugin go-misbehave: memory cap of 33554432 bytes exceeded in process",
    );
}
