//! The chain on several workers gives the results of one: window records,
//! alerts and dead letters equal the single-worker run and the oracle with
//! 1, 2 and 8 workers on traffic with late and out-of-order events; a
//! filter keeping state is never split across workers unless partitioned,
//! and each key keeps its input order; state is saved per partition,
//! continues after a restart, and is refused under another layout.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::metrics::{
    LATENESS_SECS, Statement, WINDOW_SECS, alert_transitions, assert_oracle, chunk_line, oracle, traffic_of,
};
use crate::util::{Running, TestDir, free_port, http, read_ndjson, repo, sigterm, wait_for, weir};

/// Sixteen series: eight transactions on two systems, so each of 8
/// partitions holds a few of them.
const TXNS: [&str; 8] = ["pay", "search", "login", "cart", "browse", "refund", "profile", "logout"];

/// `configs/mobile-metrics.yaml` (split -> extract -> percentiles
/// partitioned by series -> threshold) with `pipeline` settings and `extra`
/// top-level lines.
fn mobile_metrics(pipeline: &str, extra: &str) -> String {
    let base = std::fs::read_to_string(repo().join("configs/mobile-metrics.yaml")).unwrap();
    assert!(base.contains("partition_by: [metric, labels]"), "the shipped config changed shape; update this test");
    format!("pipeline: {{ {pipeline} }}\n{extra}{base}")
}

/// What one run wrote.
struct Outputs {
    windows: Vec<Value>,
    alerts: Vec<Value>,
    dead: Vec<Value>,
}

impl Outputs {
    fn read(dir: &Path) -> Self {
        Outputs {
            windows: read_ndjson(&dir.join("windows.ndjson")),
            alerts: read_ndjson(&dir.join("alerts.ndjson")),
            dead: read_ndjson(&dir.join("dead-letter.ndjson")),
        }
    }

    /// Window records in a fixed order: which worker finished first does
    /// not matter, their content does.
    fn windows_sorted(&self) -> Vec<String> {
        let mut windows: Vec<String> = self.windows.iter().map(Value::to_string).collect();
        windows.sort();
        windows
    }

    /// Dead letters without their reason: a late event's reason names the
    /// watermark of the instance that refused it.
    fn dead_sorted(&self) -> Vec<String> {
        let mut dead: Vec<String> =
            self.dead.iter().map(|d| format!("{} {} {} {}", d["stage"], d["tag"], d["time"], d["record"])).collect();
        dead.sort();
        dead
    }
}

fn run(dir: &TestDir, name: &str, config: &str, input: &Path) -> Outputs {
    let file = dir.write(&format!("{name}.yaml"), config);
    let out = dir.path(name);
    let result = weir()
        .args(["run", "-c"])
        .arg(&file)
        .env("INPUT", input)
        .env("OUT_DIR", &out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(result.status.success(), "{name}: {}", String::from_utf8_lossy(&result.stderr));
    Outputs::read(&out)
}

/// Replays the watermark in arrival order, as `oracle` does, and counts
/// (late events, late events that are late even against the watermark of
/// their own series alone, on-time events that came after a later one).
fn lateness(chunks: &[Vec<Statement>]) -> (usize, usize, usize) {
    let lateness = LATENESS_SECS * 1000;
    let (mut max_seen, mut series_max) = (i64::MIN, HashMap::new());
    let (mut late, mut late_alone, mut reordered) = (0, 0, 0);
    for s in chunks.iter().flatten() {
        let t = s.time.timestamp_millis();
        let window_end = t.div_euclid(WINDOW_SECS * 1000) * WINDOW_SECS * 1000 + WINDOW_SECS * 1000;
        let series = (s.txn, s.os);
        if max_seen != i64::MIN && window_end <= max_seen - lateness {
            late += 1;
            if series_max.get(&series).is_some_and(|m| window_end <= m - lateness) {
                late_alone += 1;
            }
            continue;
        }
        if t < max_seen {
            reordered += 1;
        }
        max_seen = max_seen.max(t);
        let m = series_max.entry(series).or_insert(t);
        *m = (*m).max(t);
    }
    (late, late_alone, reordered)
}

#[test]
fn windows_alerts_and_dead_letters_equal_one_worker_and_the_oracle_with_1_2_and_8_workers() {
    let (chunks, _) = traffic_of(&TXNS);
    let (expected, late) = oracle(&chunks);
    // A partition's watermark trails the single worker's (it sees only its
    // series), so equality holds when lateness decisions agree. They agree
    // for every partitioning when each late event is late even against its
    // own series alone (on-time events stay on time under a lower
    // watermark); the traffic is built so, and is not trivial.
    let (late_again, late_alone, reordered) = lateness(&chunks);
    assert_eq!(late_again, late);
    assert_eq!(late_alone, late, "every late event is late for its own series alone, so for any partition");
    assert!(late >= 3, "late events to refuse: {late}");
    assert!(reordered >= 100, "out-of-order events within the lateness: {reordered}");
    assert!(expected.len() >= 150, "windows of 16 series: {}", expected.len());

    let dir = TestDir::new();
    let input = dir
        .write("chunks.ndjson", &(chunks.iter().map(|c| chunk_line(c[0].os, c)).collect::<Vec<_>>().join("\n") + "\n"));
    // Small items, so the workers interleave many of them.
    let runs: Vec<(usize, Outputs)> = [1, 2, 8]
        .into_iter()
        .map(|workers| {
            let config = mobile_metrics(&format!("workers: {workers}, batch_max_records: 20"), "");
            (workers, run(&dir, &format!("w{workers}"), &config, &input))
        })
        .collect();
    let single = &runs[0].1;
    assert_eq!(alert_transitions(&expected).len(), 2, "the traffic fires and resolves one alert");
    assert_eq!(single.alerts.len(), 2, "{:?}", single.alerts);
    assert_eq!(single.dead.len(), late, "late events are dead-lettered");
    for (workers, outputs) in &runs {
        let what = format!("{workers} workers");
        assert_oracle(&outputs.windows, &chunks, &what);
        assert_eq!(outputs.windows_sorted(), single.windows_sorted(), "{what}: the window records of one worker");
        assert_eq!(outputs.alerts, single.alerts, "{what}: the alerts of one worker");
        assert_eq!(outputs.dead_sorted(), single.dead_sorted(), "{what}: the dead letters of one worker");
    }
}

/// chunks of two statements `n=<i>.0`, `n=<i>.1` on 12 devices -> split
/// (stateless) -> the `tagger` test filter, which counts what its instance
/// has seen (`seen`), with `partition_by`; in input order, on `workers`.
fn counted(workers: usize, partition_by: &str) -> Vec<Value> {
    let dir = TestDir::new();
    let lines: Vec<String> = (0..300)
        .map(|i| {
            let logs = [format!("2026-11-22T10:00:00Z n={i}.0"), format!("2026-11-22T10:00:01Z n={i}.1")];
            serde_json::json!({ "device": format!("d{}", i % 12), "logs": logs }).to_string()
        })
        .collect();
    dir.write("in.ndjson", &(lines.join("\n") + "\n"));
    dir.run_config(&format!(
        r#"
pipeline: {{ workers: {workers}, batch_max_records: 7 }}
inputs: [{{ type: file, path: in.ndjson, tag: chunks }}]
filters:
  - {{ type: split, match: chunks, config: {{ context: [device], time: {{ regex: '^(?P<time>\S+)' }}, tag: statements }} }}
  - {{ type: tagger, match: statements, {partition_by} config: {{ tag: counted, version: v1 }} }}
outputs:
  - {{ type: file, path: out.ndjson, match: counted, batch: {{ max_wait: 10ms }} }}
"#
    ));
    let out = read_ndjson(&dir.path("out.ndjson"));
    assert_eq!(out.len(), 600, "every statement once");
    out
}

fn label(record: &Value) -> (usize, usize) {
    let n = record["message"].as_str().unwrap().split("n=").nth(1).unwrap();
    let (i, j) = n.split_once('.').unwrap();
    (i.parse().unwrap(), j.parse().unwrap())
}

#[test]
fn a_filter_keeping_state_without_partition_by_runs_as_one_instance_in_input_order() {
    let out = counted(4, "");
    let labels: Vec<(usize, usize)> = out.iter().map(label).collect();
    let input_order: Vec<(usize, usize)> = (0..300).flat_map(|i| [(i, 0), (i, 1)]).collect();
    assert_eq!(labels, input_order, "outputs receive records in input order");
    let seen: Vec<u64> = out.iter().map(|r| r["seen"].as_u64().unwrap()).collect();
    assert_eq!(seen, (1..=600).collect::<Vec<u64>>(), "one instance saw every record, in input order");
}

#[test]
fn a_partitioned_filter_sees_each_key_in_input_order_on_its_own_instance() {
    let out = counted(4, "partition_by: [device],");
    let mut by_device: BTreeMap<&str, Vec<(usize, u64)>> = BTreeMap::new();
    for r in &out {
        let (i, j) = label(r);
        by_device.entry(r["device"].as_str().unwrap()).or_default().push((i * 2 + j, r["seen"].as_u64().unwrap()));
    }
    assert_eq!(by_device.len(), 12);
    for (device, records) in &by_device {
        assert!(records.windows(2).all(|w| w[0].0 < w[1].0), "{device}: records in input order: {records:?}");
        assert!(records.windows(2).all(|w| w[0].1 < w[1].1), "{device}: its instance saw them in order: {records:?}");
    }
    // Each partition's instance counts its own records from 1.
    let instances = out.iter().filter(|r| r["seen"] == 1).count();
    assert!((2..=4).contains(&instances), "{instances} instances counted; expected one per partition in use");
}

#[test]
fn state_is_saved_per_partition_continues_after_a_restart_and_is_refused_under_another_layout() {
    let (chunks, _) = traffic_of(&TXNS);
    let lines: Vec<String> = chunks.iter().map(|c| chunk_line(c[0].os, c)).collect();
    let half = lines.len() / 2;
    let statements_first_half: usize = chunks[..half].iter().map(Vec::len).sum();
    let dir = TestDir::new();
    let first = dir.write("first.ndjson", &(lines[..half].join("\n") + "\n"));
    let second = dir.write("second.ndjson", &(lines[half..].join("\n") + "\n"));
    let state = format!("state_dir: {}\n", dir.path("state").display());

    // First half, then SIGTERM: no flush at the end, the open windows are saved.
    let admin = free_port();
    let following = mobile_metrics("workers: 2", &format!("{state}admin: {{ address: 127.0.0.1:{admin} }}\n"))
        .replace("tag: mobile.chunks }", "tag: mobile.chunks, follow: true, poll_interval: 10ms }");
    let file = dir.write("first.yaml", &following);
    let child = weir()
        .args(["run", "-c"])
        .arg(&file)
        .env("INPUT", &first)
        .env("OUT_DIR", dir.path("first"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let all_in = format!("weir_filter_records_in_total{{filter=\"percentiles\"}} {statements_first_half}\n");
    assert!(
        wait_for(Duration::from_secs(30), || http("GET", admin, "/metrics").is_some_and(|(_, m)| m.contains(&all_in))),
        "percentiles took the first half"
    );
    sigterm(child.id());
    assert!(child.wait_with_output().unwrap().status.success());
    for file in ["percentiles.0.state", "percentiles.1.state", "percentiles.partitions", "threshold.state"] {
        assert!(dir.path("state").join(file).is_file(), "{file} saved");
    }
    assert!(!dir.path("state/percentiles.state").exists());
    let layout: Value =
        serde_json::from_slice(&std::fs::read(dir.path("state/percentiles.partitions")).unwrap()).unwrap();
    assert_eq!(layout, serde_json::json!({ "partitions": 2, "partition_by": ["metric", "labels"] }));

    // Three partitions cannot take two partitions' series: refused, saying so.
    let file = dir.write("other.yaml", &mobile_metrics("workers: 3", &state));
    let refused =
        weir().args(["run", "-c"]).arg(&file).env("INPUT", &second).env("OUT_DIR", dir.path("other")).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(r#"filter percentiles saved its state as 2 partitions by ["metric", "labels"] but is configured as 3 partitions by ["metric", "labels"]"#),
        "{stderr}"
    );

    // The second half on the same layout: the windows of both runs are the
    // oracle's over all the traffic, each once, and so are the alerts.
    let second_run = run(&dir, "second", &mobile_metrics("workers: 2", &state), &second);
    let first_run = Outputs::read(&dir.path("first"));
    assert!(!first_run.windows.is_empty() && !second_run.windows.is_empty(), "windows closed in both runs");
    let windows: Vec<Value> = first_run.windows.into_iter().chain(second_run.windows).collect();
    assert_oracle(&windows, &chunks, "two runs");
    let (expected, late) = oracle(&chunks);
    assert_eq!(first_run.alerts.len() + second_run.alerts.len(), alert_transitions(&expected).len());
    assert_eq!(first_run.dead.len() + second_run.dead.len(), late);
}

#[test]
fn a_reload_that_would_move_state_between_partitions_is_refused() {
    let dir = TestDir::new();
    let admin = free_port();
    let input = dir.write("in.ndjson", "");
    let config = mobile_metrics("workers: 2", &format!("admin: {{ address: 127.0.0.1:{admin} }}\n"))
        .replace("${INPUT:-sample/mobile-chunks.ndjson}", &input.display().to_string())
        .replace("${OUT_DIR:-out}", "out")
        .replace("tag: mobile.chunks }", "tag: mobile.chunks, follow: true, poll_interval: 10ms }");
    let weir = Running::start(&dir, &config, admin);
    dir.write("weir.yaml", &config.replace("partition_by: [metric, labels]", "partition_by: [metric]"));
    let (status, body) = weir.reload();
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.starts_with("filter percentiles: its partitioning changed"), "{error}");
    dir.write("weir.yaml", &config.replace("allowed_lateness: 30s", "allowed_lateness: 40s"));
    let (status, body) = weir.reload();
    assert_eq!(status, 200, "the same partitioning hands state over partition by partition: {body}");
    weir.stop();
}
