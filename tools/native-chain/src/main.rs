//! `weir-native-chain CHUNKS.ndjson`: `split` -> `extract` -> `percentiles`
//! on the pure cores of the bundled plugins, compiled natively, in batches
//! of 1,000 as the host makes them. Prints CPU µs per statement per stage:
//! what the chain costs with no WebAssembly, no boundary and no host, to
//! set against `weir bench -c configs/bench/split-extract-percentiles.yaml`
//! (BENCHMARKS.md). The filters' configs are that file's; the counts line
//! lets `tools/bench.py` check that both runs did the same work.

use std::time::Instant;

use weir_plugin_extract::filter::{Event, ExtractFilter};
use weir_plugin_percentiles::config::PercentilesConfig;
use weir_plugin_percentiles::engine::Percentiles;
use weir_plugin_sdk::InputEvent;
use weir_plugin_split::chunk::{Chunk, split_batch};
use weir_plugin_split::config::SplitFilterConfig;

// The `config:` blocks of configs/bench/split-extract-percentiles.yaml, as JSON.
const SPLIT: &str = r#"{"context":["app","app_version",{"from":"device.os","to":"os"}],
  "time":{"regex":"^(?P<time>\\S+)"},"tag":"statements"}"#;
const EXTRACT: &str = r#"{"metric_tag":"metrics","rules":[
  {"metric":"response_time_ms","pattern":"txn=(?P<txn>\\w+) status=(?P<status>\\w+) resp_ms=(?P<ms>\\d+)",
   "value":{"group":"ms","type":"integer"},"labels":{"groups":["txn","status"],"fields":["os","app_version"]}},
  {"metric":"page_load_ms","pattern":"page=(?P<page>\\w+) load=(?P<load>\\d+ms)",
   "value":{"group":"load","type":"duration","unit":"ms"},"labels":{"groups":["page"],"fields":["os"]}},
  {"metric":"cold_start_ms","pattern":"cold_start=(?P<d>[0-9.]+s)",
   "value":{"group":"d","type":"duration","unit":"ms"},"labels":{"fields":["os","app_version"]}}]}"#;
const PERCENTILES: &str = r#"{"window":"1m","tag":"windows"}"#;
const BATCH: usize = 1000;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: weir-native-chain CHUNKS.ndjson   (from `weir generate`)");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("weir-native-chain: cannot read {path}: {e}");
        std::process::exit(1);
    });
    let chunks: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let split = SplitFilterConfig::from_json(SPLIT).expect("split config");
    let extract = ExtractFilter::configure(EXTRACT).expect("extract config");
    let mut percentiles = Percentiles::new(PercentilesConfig::parse(PERCENTILES).expect("percentiles config"));
    // A host clock past every generated time, so no record is in the future.
    let now = i64::MAX / 2;
    let (mut split_s, mut extract_s, mut percentiles_s) = (0f64, 0f64, 0f64);
    let (mut statements, mut metrics, mut windows) = (0usize, 0usize, 0usize);
    for batch in chunks.chunks(BATCH) {
        let started = Instant::now();
        let outcome =
            split_batch(&split, batch.iter().map(|b| Chunk { time: now, tag: "chunks", body: b.as_bytes() }), now);
        split_s += started.elapsed().as_secs_f64();
        statements += outcome.emitted.len();
        let mut pending: Vec<Event> =
            outcome.emitted.into_iter().map(|s| Event { time: s.time, tag: s.tag, body: s.body }).collect();
        while !pending.is_empty() {
            let rest = pending.split_off(pending.len().min(BATCH));
            let started = Instant::now();
            let (emitted, _) = extract.process(std::mem::replace(&mut pending, rest));
            extract_s += started.elapsed().as_secs_f64();
            let started = Instant::now();
            let inputs: Vec<InputEvent<'_>> = emitted
                .iter()
                .filter(|e| e.event.tag == "metrics")
                .map(|e| InputEvent { time: e.event.time, body: &e.event.body })
                .collect();
            metrics += inputs.len();
            windows += percentiles.process(&inputs, now).windows.len();
            percentiles_s += started.elapsed().as_secs_f64();
        }
    }
    windows += percentiles.tick(now).windows.len();
    let per = |seconds: f64| seconds * 1e6 / statements.max(1) as f64;
    println!("{} chunks -> {statements} statements -> {metrics} metric records -> {windows} windows", chunks.len());
    println!(
        "native CPU µs per statement: split {:.2}, extract {:.2}, percentiles {:.2}, total {:.2}",
        per(split_s),
        per(extract_s),
        per(percentiles_s),
        per(split_s + extract_s + percentiles_s)
    );
}
