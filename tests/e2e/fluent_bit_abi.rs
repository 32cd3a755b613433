//! Fluent Bit's `filter_wasm` ABI in both directions, end to end:
//! - modules written to it in Rust (`wasm32-unknown-unknown`,
//!   `wasm32-wasip1`) and Go (`GOOS=wasip1`, `//go:wasmexport`), from
//!   `tests/fluent-bit/`, run as Weir filters, with Weir's answers to what
//!   Fluent Bit drops silently (traps, invalid returns) in the dead letter;
//! - the bundled `extract` and `split`, built as Fluent Bit modules by
//!   `just fluent-bit-module`, run under that same ABI and give what the
//!   components give.
//!
//! `just plugins` builds all of them into `$WEIR_PLUGIN_DIR/fluent-bit/`.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::util::{TestDir, plugin_dir, read_ndjson};

fn module(name: &str) -> PathBuf {
    let path = plugin_dir().join("fluent-bit").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: run `just plugins` first", path.display());
    path
}

/// Run `records` through one filter; (written records, dead letters).
fn run(filter: &str, records: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let dir = TestDir::new();
    let input: String = records.iter().map(|r| format!("{r}\n")).collect();
    dir.write("in.ndjson", &input);
    dir.run_config(&format!(
        "
pipeline: {{ batch_max_records: 100 }}
inputs:
  - {{ type: file, path: in.ndjson, tag: app.web }}
filters:
{filter}
outputs:
  - {{ type: file, path: out.ndjson, match: 'app.*', encoding: envelope }}
  - {{ type: file, name: dead, path: dead.ndjson, match: weir.dead_letter }}
"
    ));
    (read_ndjson(&dir.path("out.ndjson")), read_ndjson(&dir.path("dead.ndjson")))
}

fn misbehaving_records() -> Vec<Value> {
    vec![
        json!({"message": "page=home load=123ms"}),
        json!({"drop": true}),
        json!({"empty": true}),
        json!({"trap": true}),
        json!({"message": "after the trap, 5ms"}),
        json!({"invalid": true}),
        json!({"array": true}),
    ]
}

fn check_rust_module(name: &str, panic_message: bool) {
    let filter = format!(
        "  - {{ type: fluent-bit, path: {}, abi: fluent-bit, function: rust_filter, match: 'app.*' }}",
        module(name).display()
    );
    let (out, dead) = run(&filter, &misbehaving_records());
    let bodies: Vec<&Value> = out.iter().map(|r| &r["body"]).collect();
    assert_eq!(bodies.len(), 2, "two records pass, two are dropped, three dead-lettered: {out:?}");
    assert_eq!(bodies[0]["ms"], 123, "serde_json + regex run with no stack or heap tuning");
    assert_eq!(bodies[0]["fb_tag"], "app.web");
    assert_eq!(bodies[1]["ms"], 5, "the instance was recreated after the trap and went on");
    assert!(out.iter().all(|r| r["tag"] == "app.web"), "the ABI keeps the tag");
    assert_eq!(dead.len(), 3, "{dead:?}");
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("trapped in the fluent-bit filter function"), "{reasons:?}");
    if panic_message {
        assert!(reasons[0].contains("asked to trap"), "a WASI guest's panic message is in the reason: {reasons:?}");
    }
    assert!(reasons[1].contains("returned text is not JSON") && reasons[1].contains("this is not json"), "{reasons:?}");
    assert_eq!(
        reasons[2],
        "plugin fluent-bit: broke the contract in the fluent-bit filter function: returned JSON is not an object: [1,2]"
    );
    assert_eq!(dead[0]["record"], json!({"trap": true}), "the dead letter holds the record");
    assert!(dead.iter().all(|d| d["stage"] == "filter fluent-bit"));
}

#[test]
fn a_rust_module_for_wasm32_unknown_unknown_runs_with_fluent_bits_abi() {
    check_rust_module("rust-unknown-unknown", false);
}

#[test]
fn a_rust_module_for_wasm32_wasip1_runs_with_fluent_bits_abi() {
    check_rust_module("rust-wasip1", true);
}

#[test]
fn a_go_module_with_wasmexport_runs_with_fluent_bits_abi() {
    let filter = format!(
        "  - {{ type: go, path: {}, abi: fluent-bit, function: go_filter, match: 'app.*' }}",
        module("go-wasip1").display()
    );
    let records =
        vec![json!({"n": 1}), json!({"drop": true}), json!({"trap": true}), json!({"n": 2, "nested": {"a": [1]}})];
    let (out, dead) = run(&filter, &records);
    let bodies: Vec<&Value> = out.iter().map(|r| &r["body"]).collect();
    assert_eq!(bodies.len(), 2, "{out:?}");
    assert_eq!(bodies[0]["n"], 1);
    assert_eq!(bodies[0]["go_tag"], "app.web");
    assert_eq!(bodies[1]["nested"], json!({"a": [1]}));
    // The file input gives each record its arrival time; Go saw it split
    // into seconds and nanoseconds.
    assert!(bodies[1]["go_time"].as_str().unwrap().contains('.'));
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(reason.contains("asked to trap"), "Go's panic message is in the reason: {reason}");
}

#[test]
fn msgpack_format_hands_over_a_map_and_reads_the_answer_by_its_length() {
    let filter = format!(
        "  - {{ type: mp, path: {}, abi: fluent-bit, function: rust_filter_msgpack, event_format: msgpack, match: 'app.*' }}",
        module("rust-wasip1").display()
    );
    let (out, dead) = run(&filter, &[json!({"a": 1, "s": "é", "l": [true, null]})]);
    assert!(dead.is_empty(), "{dead:?}");
    // `zero: 0` puts a NUL byte in the answer, which Fluent Bit would cut at.
    assert_eq!(out[0]["body"], json!({"a": 1, "s": "é", "l": [true, null], "fb_format": "msgpack", "zero": 0}));
}

#[test]
fn a_looping_or_memory_hungry_record_is_dead_lettered_alone() {
    let filter = format!(
        "  - {{ type: limits, path: {}, abi: fluent-bit, function: rust_filter, match: 'app.*', limits: {{ deadline: 200ms, memory: 32MiB }} }}",
        module("rust-wasip1").display()
    );
    let records = vec![json!({"loop": true}), json!({"grow": 64}), json!({"message": "fine 7ms"})];
    let (out, dead) = run(&filter, &records);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["body"]["ms"], 7);
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert_eq!(
        reasons,
        [
            "plugin limits: deadline of 200ms exceeded in the fluent-bit filter function",
            "plugin limits: memory cap of 33554432 bytes exceeded in the fluent-bit filter function",
        ]
    );
}

#[test]
fn extract_built_as_a_fluent_bit_module_enriches_records_as_the_component_does() {
    let records = vec![
        json!({"message": "txn=pay status=ok resp_ms=412", "os": "ios"}),
        json!({"message": "nothing to see", "os": "android"}),
    ];
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::util::repo().join("configs/fluent-bit/extract.json")).unwrap(),
    )
    .unwrap();
    let component = format!("  - {{ type: extract, match: 'app.*', config: {config} }}");
    let fluent_bit = format!(
        "  - {{ type: fb, path: {}, abi: fluent-bit, function: weir_filter, match: 'app.*' }}",
        module("extract").display()
    );
    let (from_component, _) = run(&component, &records);
    let (from_module, dead) = run(&fluent_bit, &records);
    assert!(dead.is_empty(), "{dead:?}");
    // The component also emits metric records under `metrics`, which the
    // output here does not match; the raw records are what the ABI returns.
    let raw: Vec<&Value> = from_component.iter().map(|r| &r["body"]).collect();
    let module_out: Vec<&Value> = from_module.iter().map(|r| &r["body"]).collect();
    assert_eq!(module_out, raw);
    assert_eq!(module_out[0]["extract"]["metric"], "response_time_ms", "{module_out:?}");
    assert_eq!(module_out[0]["extract"]["value"], 412, "{module_out:?}");
    assert_eq!(module_out[1].get("extract"), None, "no match, no enrichment");
}

#[test]
fn split_built_as_a_fluent_bit_module_returns_a_chunks_statements_as_one_record() {
    let chunk = json!({
        "app": "shop", "app_version": "4.2.1", "device": {"os": "ios"},
        "logs": ["2026-11-22T10:00:00Z a=1", "2026-11-22T10:00:01Z b=2"],
    });
    let filter = format!(
        "  - {{ type: fb, path: {}, abi: fluent-bit, function: weir_filter, match: 'app.*' }}",
        module("split").display()
    );
    let (out, dead) = run(&filter, &[chunk]);
    assert!(dead.is_empty(), "{dead:?}");
    let statements = out[0]["body"]["records"].as_array().expect("several records come back as `records`");
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[1]["message"], "2026-11-22T10:00:01Z b=2");
    assert_eq!(statements[1]["os"], "ios");
}
