//! Containment in a running pipeline: a filter that traps, loops or
//! exhausts its memory loses only the batch it failed on (dead-lettered with
//! the reason), its instance is recreated, and every other record flows.

use serde_json::Value;

use crate::util::{TestDir, read_ndjson};

fn contained(mode: &str, limits: &str, reason: &str) {
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
  - {{ type: misbehave, match: t, limits: {limits}, config: {{ mode: {mode} }} }}
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
        assert_eq!(d["stage"], "filter misbehave");
    }
    assert!(out.iter().any(|r| n(r) > 60), "records after the failure still flow through the recreated instance");
}

#[test]
fn a_trapping_filter_loses_only_its_batch() {
    contained("trap", "{}", "plugin misbehave: trapped in process: ");
    contained("trap", "{}", "poisoned record");
}

#[test]
fn a_looping_filter_is_cut_off_at_its_deadline() {
    contained("loop", "{ deadline: 200ms }", "plugin misbehave: deadline of 200ms exceeded in process");
}

#[test]
fn a_memory_hungry_filter_is_capped() {
    contained("memory_bomb", "{ memory: 32MiB }", "plugin misbehave: memory cap of 33554432 bytes exceeded in process");
}

#[test]
fn a_plugin_writing_to_stderr_while_configured_starts_and_runs() {
    // WASI output from `configure` at start-up once panicked the runtime.
    let dir = TestDir::new();
    dir.write("in.ndjson", "{\"n\":1}\n");
    let out = dir.run_config(
        "
inputs: [{ type: file, path: in.ndjson, tag: t }]
filters:
  - { type: misbehave, match: t, config: { mode: trap, noisy: true } }
outputs:
  - { type: file, path: out.ndjson, match: t }
",
    );
    assert_eq!(read_ndjson(&dir.path("out.ndjson")).len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
}
