//! Shutdown with an output down: the drain ends within `shutdown_timeout`,
//! filter state is saved, what could not be delivered is abandoned with its
//! inputs told, and the exit status says so.
//! See: ../shared/cases/sigterm-with-output-down (vectordotdev/vector#9739).

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::http_input::post;
use crate::util::{TestDir, free_port, http, sigterm, wait_for, weir};

/// HTTP (accepted) -> split -> extract -> percentiles, raw statements to an
/// Elasticsearch where nothing listens, windows to a file; state in
/// `state_dir`.
fn config(dir: &TestDir, http_port: u16, shutdown_timeout: &str) -> String {
    let dead = free_port();
    format!(
        r#"state_dir: {state}
pipeline: {{ batch_max_records: 10, queue_capacity: 1, shutdown_timeout: {shutdown_timeout} }}
inputs:
  - {{ type: http, tag: chunks, address: 127.0.0.1:{http_port}, ack: accepted, queue_wait: 200ms }}
filters:
  - {{ type: split, match: chunks, config: {{ time: {{ regex: '^(?P<time>\S+)' }}, tag: statements }} }}
  - type: extract
    match: statements
    config:
      metric_tag: metrics
      rules:
        - {{ metric: rt, pattern: 'txn=(?P<txn>\w+) ms=(?P<ms>\d+)', value: {{ group: ms, type: integer }}, labels: {{ groups: [txn] }} }}
  - {{ type: percentiles, match: metrics, config: {{ window: 15m, allowed_lateness: 1m, tag: windows }} }}
outputs:
  - {{ type: elasticsearch, name: raw, match: statements, hosts: ["http://127.0.0.1:{dead}"], index: raw, batch: {{ max_records: 10, max_wait: 10ms }} }}
  - {{ type: blackhole, name: samples, match: metrics }}
  - {{ type: file, name: windows, match: windows, path: {windows} }}
"#,
        state = dir.path("state").display(),
        windows = dir.path("windows.ndjson").display(),
    )
}

/// Start weir and fill it until the HTTP input answers 429 (backpressure).
fn start_full(dir: &TestDir, shutdown_timeout: &str) -> Child {
    let port = free_port();
    let file = dir.write("weir.yaml", &config(dir, port, shutdown_timeout));
    let child = weir().args(["run", "-c"]).arg(&file).stdin(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    assert!(wait_for(Duration::from_secs(20), || http("GET", port, "/health").is_some_and(|(s, _)| s == 200)));
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let logs: Vec<String> = (0..10).map(|j| format!("{now} txn=pay ms={}", 300 + j)).collect();
    let chunk = serde_json::to_vec(&serde_json::json!({ "app": "shop", "logs": logs })).unwrap();
    let url = format!("http://127.0.0.1:{port}/ingest");
    let full = (0..500).any(|_| post(&url, &["Content-Type: application/json"], &chunk).0 == 429);
    assert!(full, "the pipeline never filled up");
    child
}

fn stderr_of(child: Child) -> (std::process::ExitStatus, String) {
    let out = child.wait_with_output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn sigterm_with_an_output_down_ends_within_the_timeout_and_keeps_filter_state() {
    let dir = TestDir::new();
    let child = start_full(&dir, "3s");
    let started = Instant::now();
    sigterm(child.id());
    let (status, stderr) = stderr_of(child);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "the drain took {took:?} with shutdown_timeout 3s");
    assert_eq!(status.code(), Some(1), "the exit status says the drain was incomplete:\n{stderr}");
    assert!(dir.path("state/percentiles.state").is_file(), "percentiles state was saved:\n{stderr}");
    assert!(stderr.contains("records abandoned at shutdown"), "abandoned records are reported:\n{stderr}");
    assert!(stderr.contains("\"output raw\""), "the output that held them is named:\n{stderr}");
}

#[test]
fn a_second_signal_cuts_the_drain_short_and_still_saves_filter_state() {
    let dir = TestDir::new();
    let child = start_full(&dir, "60s");
    let started = Instant::now();
    sigterm(child.id());
    std::thread::sleep(Duration::from_millis(500));
    sigterm(child.id());
    let (status, stderr) = stderr_of(child);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "a second signal should end the drain at once, took {took:?}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(dir.path("state/percentiles.state").is_file(), "percentiles state was saved:\n{stderr}");
}
