//! Weir's own observability on the real binary: the metrics a run serves
//! are exactly the catalogue's (`weir::core::metrics::catalogue`), move as
//! the records do, and cover every query of the Grafana dashboard
//! (`deploy/grafana/weir.json`); the README's table lists the catalogue;
//! `/health` reports a stalled pipeline and its recovery.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use weir::core::metrics::catalogue::{self, Kind};

use crate::http_input::post;
use crate::metrics::{chunk_line, oracle, traffic};
use crate::util::{TestDir, free_port, http, read_ndjson, repo, sigterm, wait_for, weir};

/// One scrape of `/metrics`: the `# TYPE` of each family and every sample.
pub struct Scrape {
    types: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_string(), kind.to_string());
            } else if !line.starts_with('#') && !line.is_empty() {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, labels_of(labels.strip_suffix('}').unwrap())),
                    None => (series, BTreeMap::new()),
                };
                samples.push((name.to_string(), labels, value.parse().unwrap_or_else(|_| panic!("{line}"))));
            }
        }
        Scrape { types, samples }
    }

    /// The value of the sample `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, v)| *v)
    }

    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }
}

/// `k="v",...` (values escaped as the exposition format does).
fn labels_of(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => value.push(chars.next().map(|(_, c)| if c == 'n' { '\n' } else { c }).unwrap()),
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {text}"),
            }
        };
        labels.insert(key.trim_start_matches(',').to_string(), value);
        rest = &after[end + 1..];
    }
    labels
}

fn scrape(admin: u16) -> Scrape {
    let (status, text) = http("GET", admin, "/metrics").expect("the admin API answers");
    assert_eq!(status, 200, "{text}");
    Scrape::parse(&text)
}

pub fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo().join("deploy/grafana/weir.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every panel, those inside rows included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

/// Each metric an expression selects, with its equality matchers on fixed
/// values (`{counter="windows_opened"}`, not `{instance=~"$instance"}`).
pub fn selectors(expr: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("weir_") {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = tail[..end].to_string();
        let mut matchers = Vec::new();
        if let Some(inside) = tail[end..].strip_prefix('{') {
            let inside = &inside[..inside.find('}').expect("a closed selector")];
            for matcher in inside.split(',') {
                if let Some((k, v)) = matcher.split_once("=\"")
                    && !k.ends_with(['!', '=', '~'])
                    && !v.contains('$')
                {
                    matchers.push((k.trim().to_string(), v.trim_end_matches('"').to_string()));
                }
            }
        }
        out.push((name, matchers));
        rest = &tail[end..];
    }
    out
}

/// Read by the file input before the traffic: a malformed line, and a
/// series of its own whose one window closes early on, so the series is
/// forgotten.
const REPLAY_CHUNK: &str = r#"{"app":"shop","app_version":"4.2.1","device":{"os":"ios"},"logs":["2026-11-22T10:00:00Z txn=once status=ok resp_ms=5"]}"#;

/// A pipeline with every kind of component the dashboard shows: HTTP and
/// file inputs, the mobile-metrics filters (late events dropped), an
/// Elasticsearch and an Alertmanager nobody answers for, files for windows
/// and dead letters.
fn full_config(dir: &TestDir, admin: u16, port: u16) -> String {
    let dead = free_port();
    format!(
        r#"
admin: {{ address: 127.0.0.1:{admin} }}
inputs:
  - {{ type: http, name: apps, tag: mobile.chunks, address: 127.0.0.1:{port} }}
  - {{ type: file, name: replay, tag: mobile.chunks, path: {replay} }}
filters:
  - type: split
    match: mobile.chunks
    config: {{ context: [app, app_version, {{ from: device.os, to: os }}], time: {{ regex: '^(?P<time>\S+)' }}, tag: mobile.statements }}
  - type: extract
    match: mobile.statements
    config:
      metric_tag: metrics
      rules:
        - {{ metric: response_time_ms, pattern: 'txn=(?P<txn>\w+) status=\w+ resp_ms=(?P<ms>\d+)', value: {{ group: ms, type: integer }}, labels: {{ groups: [txn], fields: [os] }} }}
  - {{ type: percentiles, match: metrics, config: {{ window: 1m, allowed_lateness: 30s, late: drop, tag: metrics.window }} }}
  - type: threshold
    match: metrics.window
    config:
      tag: alerts
      rules:
        - {{ name: PaymentLatencyHigh, metric: response_time_ms, match: {{ txn: pay }}, stat: p95, op: ">", value: 800, for: 2 }}
outputs:
  - {{ type: elasticsearch, name: logs, match: mobile.statements, hosts: ["http://127.0.0.1:{dead}"], index: logs, retry: {{ max_attempts: 2 }} }}
  - {{ type: blackhole, name: samples, match: metrics }}
  - {{ type: file, name: windows, match: metrics.window, path: {windows} }}
  - {{ type: alertmanager, name: pager, match: alerts, urls: ["http://127.0.0.1:{dead}"], max_attempts: 1 }}
  - {{ type: file, name: dead_letter, match: weir.dead_letter, path: {dead_letters} }}
"#,
        replay = dir.write("replay.ndjson", &format!("{{not json\n{REPLAY_CHUNK}\n")).display(),
        windows = dir.path("windows.ndjson").display(),
        dead_letters = dir.path("dead.ndjson").display(),
    )
}

/// A `weir run` that is killed if the test fails before stopping it.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start(dir: &TestDir, config: &str, admin: u16) -> Running {
    let file = dir.write("weir.yaml", config);
    let log = std::fs::File::create(dir.path("weir.log")).unwrap();
    let child = Running(weir().args(["run", "-c"]).arg(&file).stdin(Stdio::null()).stderr(log).spawn().unwrap());
    assert!(
        wait_for(Duration::from_secs(20), || http("GET", admin, "/ready").is_some_and(|(s, _)| s == 200)),
        "weir never became ready: {}",
        std::fs::read_to_string(dir.path("weir.log")).unwrap_or_default()
    );
    child
}

fn stop(mut running: Running, dir: &TestDir) {
    sigterm(running.0.id());
    let status = running.0.wait().unwrap();
    assert!(status.success(), "{status}: {}", std::fs::read_to_string(dir.path("weir.log")).unwrap_or_default());
}

#[test]
fn a_run_serves_the_catalogued_metrics_they_move_with_the_records_and_the_dashboard_queries_only_them() {
    let (chunks, _) = traffic();
    let (_, late) = oracle(&chunks);
    let statements: usize = chunks.iter().map(Vec::len).sum();
    let dir = TestDir::new();
    let (admin, port) = (free_port(), free_port());
    let config = full_config(&dir, admin, port);
    let child = start(&dir, &config, admin);
    let url = format!("http://127.0.0.1:{port}/ingest");
    for requests in chunks.chunks(30) {
        let body: Vec<String> = requests.iter().map(|c| chunk_line(c[0].os, c)).collect();
        let (status, answer) = post(&url, &["content-type: application/x-ndjson"], body.join("\n").as_bytes());
        assert_eq!(status, 200, "{answer}");
    }
    let (status, reloaded) = http("POST", admin, "/-/reload").unwrap();
    assert_eq!(status, 200, "{reloaded}");

    // Wait until every window emitted so far has been written.
    let settled = |m: &Scrape| {
        let closed = m.value("weir_filter_events_total", &[("filter", "percentiles"), ("counter", "windows_closed")]);
        closed.is_some_and(|c| c > 0.0 && m.value("weir_output_records_total", &[("output", "windows")]) == Some(c))
    };
    assert!(wait_for(Duration::from_secs(30), || settled(&scrape(admin))), "windows never all written");
    let m = scrape(admin);

    // Exactly the catalogue: every family it lists, with its type, and no
    // other. Some need what this run does not have: a Kafka broker (the
    // lag, checked in `real::kafka`), a filter call that fails, a `forward`
    // input (bad frames, checked in `forward_input`), a durable buffer
    // (checked in `http_input::a_buffered_accepted_request_survives_kill_9…`),
    // and a `kafka` input with `checkpoints`.
    let needs_more = [
        "weir_kafka_consumer_lag_messages",
        "weir_filter_errors_total",
        "weir_input_bad_frames_total",
        "weir_buffer_bytes",
        "weir_buffer_units",
        "weir_buffer_replayed_total",
        "weir_buffer_truncated_total",
        // A `kafka` input's checkpoints: checked in `real::scale_out`.
        "weir_checkpoints_total",
        "weir_checkpoint_bytes",
        "weir_checkpoint_duration_seconds",
        "weir_checkpoint_lag_seconds",
        "weir_checkpoint_restore_seconds",
        "weir_checkpoint_restored_total",
    ];
    for metric in catalogue::ALL {
        match m.types.get(metric.name) {
            Some(kind) => assert_eq!(kind, metric.kind.as_str(), "{}", metric.name),
            None => assert!(needs_more.contains(&metric.name), "{} is catalogued but not served", metric.name),
        }
    }
    for (name, kind) in &m.types {
        let metric = catalogue::family_of(name).unwrap_or_else(|| panic!("{name} is served but not catalogued"));
        assert_eq!(kind, metric.kind.as_str(), "{name}");
    }
    for (name, labels, _) in &m.samples {
        let metric = catalogue::family_of(name).unwrap_or_else(|| panic!("sample {name} of no catalogued family"));
        let mut expected: BTreeSet<&str> = metric.labels.iter().copied().collect();
        if name.ends_with("_bucket") {
            expected.insert("le");
        }
        assert_eq!(labels.keys().map(String::as_str).collect::<BTreeSet<_>>(), expected, "labels of {name}");
    }

    // The figures follow the records.
    assert_eq!(m.get("weir_input_records_total", &[("input", "apps")]), chunks.len() as f64);
    assert_eq!(m.get("weir_input_dead_letters_total", &[("input", "replay"), ("reason", "malformed")]), 1.0);
    assert_eq!(m.get("weir_filter_records_in_total", &[("filter", "split")]), chunks.len() as f64 + 1.0);
    assert_eq!(m.get("weir_filter_records_out_total", &[("filter", "split")]), statements as f64 + 1.0);
    assert_eq!(
        m.get("weir_records_dropped_total", &[("stage", "filter percentiles"), ("reason", "late")]),
        late as f64
    );
    assert_eq!(
        m.get("weir_output_dead_letters_total", &[("output", "logs"), ("reason", "retries_exhausted")]),
        statements as f64 + 1.0,
        "nobody answers for Elasticsearch: every statement dead-lettered after its retry"
    );
    assert!(m.get("weir_output_retries_total", &[("output", "logs")]) >= 1.0);
    assert_eq!(m.get("weir_output_dead_letters_total", &[("output", "logs"), ("reason", "rejected")]), 0.0);
    assert!(m.get("weir_output_dead_letters_total", &[("output", "pager"), ("reason", "rejected")]) >= 1.0, "alerts");
    assert_eq!(m.get("weir_reloads_total", &[("result", "applied")]), 1.0);
    assert_eq!(m.get("weir_queue_capacity_batches", &[]), 8.0);
    assert_eq!(m.get("weir_pipeline_stalled", &[]), 0.0);
    assert_eq!(m.get("weir_input_requests_in_flight", &[("input", "apps")]), 0.0);
    let event = |counter| m.get("weir_filter_events_total", &[("filter", "percentiles"), ("counter", counter)]);
    let windows = read_ndjson(&dir.path("windows.ndjson"));
    assert_eq!(event("windows_closed"), windows.len() as f64, "every closed window was emitted");
    assert!(event("windows_opened") > event("windows_closed"), "the last windows are still open");
    assert!(event("series_forgotten") >= 1.0, "the replayed series was forgotten once its window closed");
    assert!(event("series_opened") > event("series_forgotten"), "the traffic's series are still open");
    for (histogram, labels) in [
        ("weir_pipeline_latency_seconds", [("output", "windows")]),
        ("weir_output_write_seconds", [("output", "logs")]),
        ("weir_input_send_wait_seconds", [("input", "apps")]),
    ] {
        let count = m.get(&format!("{histogram}_count"), &labels);
        assert!(count > 0.0, "{histogram}{labels:?} observed nothing");
        assert_eq!(m.get(&format!("{histogram}_bucket"), &[labels[0], ("le", "+Inf")]), count);
    }
    assert!(m.get("weir_filter_call_seconds_count", &[("filter", "split"), ("call", "process")]) >= 20.0);
    assert!(m.get("weir_filter_call_seconds_count", &[("filter", "split"), ("call", "configure")]) >= 1.0);

    // Every query of the dashboard selects catalogued metrics this run
    // serves (or, for Kafka, that `real::kafka` checks), with label values
    // that occur.
    let board = dashboard();
    let mut queried = BTreeSet::new();
    for panel in panels(&board) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else { continue };
            for (name, matchers) in selectors(expr) {
                let metric = catalogue::family_of(&name)
                    .unwrap_or_else(|| panic!("panel {:?} queries {name}, which weir does not have", panel["title"]));
                queried.insert(metric.name);
                if metric.name.starts_with("weir_kafka_") {
                    continue;
                }
                assert!(m.types.contains_key(metric.name), "panel {:?}: {name} not served", panel["title"]);
                let matched = m
                    .samples
                    .iter()
                    .any(|(n, l, _)| *n == name && matchers.iter().all(|(k, v)| l.get(k).is_some_and(|got| got == v)));
                assert!(matched, "panel {:?}: no sample {name}{matchers:?}", panel["title"]);
            }
        }
    }
    assert!(queried.len() >= 20, "the dashboard shows most of the catalogue: {queried:?}");

    // The Elasticsearch panel reads fields the window records have (the
    // Elasticsearch output adds `@timestamp`, the window start).
    let record = windows.iter().find(|w| w["labels"]["txn"] == "pay").expect("a pay window");
    for panel in panels(&board).into_iter().filter(|p| p["datasource"]["type"] == "elasticsearch") {
        for target in panel["targets"].as_array().unwrap() {
            let mut fields: Vec<&str> = vec![target["timeField"].as_str().unwrap()];
            for agg in target["metrics"].as_array().unwrap().iter().chain(target["bucketAggs"].as_array().unwrap()) {
                fields.extend(agg["field"].as_str());
            }
            let query = target["query"].as_str().unwrap();
            fields.extend(query.split(" AND ").map(|clause| clause.split(':').next().unwrap()));
            for field in fields.into_iter().filter(|f| *f != "@timestamp") {
                let value = field.split('.').fold(record, |v, key| &v[key]);
                assert!(
                    !value.is_null(),
                    "panel {:?} reads {field}, which window records lack: {record}",
                    panel["title"]
                );
            }
        }
    }
    stop(child, &dir);
}

#[test]
fn the_dashboard_is_importable_with_a_data_source_of_each_kind() {
    let board = dashboard();
    assert!(board["uid"].is_string() && board["schemaVersion"].as_u64() >= Some(36));
    let variables = board["templating"]["list"].as_array().unwrap();
    let source = |kind: &str| {
        variables.iter().find(|v| v["type"] == "datasource" && v["query"] == kind).unwrap_or_else(|| panic!("{kind}"))
    };
    let (prometheus, elasticsearch) = (source("prometheus"), source("elasticsearch"));
    let mut ids = BTreeSet::new();
    for panel in panels(&board) {
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "panel id {} twice", panel["id"]);
        assert!(panel["gridPos"]["w"].as_u64().is_some_and(|w| w <= 24), "{}", panel["title"]);
        if panel["type"] == "row" {
            continue;
        }
        let uid = panel["datasource"]["uid"].as_str().unwrap();
        let variable = if panel["datasource"]["type"] == "elasticsearch" { elasticsearch } else { prometheus };
        assert_eq!(uid, format!("${{{}}}", variable["name"].as_str().unwrap()), "{}", panel["title"]);
        assert!(!panel["targets"].as_array().unwrap().is_empty(), "{}", panel["title"]);
        assert!(!panel["description"].as_str().unwrap_or_default().is_empty(), "{} says what it shows", panel["title"]);
    }
}

#[test]
fn every_catalogued_metric_is_in_the_readme_table_and_nothing_else_is() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme.split("\n### Metrics\n").nth(1).expect("a Metrics section").split("\n## ").next().unwrap();
    let mut documented = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `weir_")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`');
        let labels: Vec<&str> =
            cells[3].split(',').map(|l| l.trim().trim_matches('`')).filter(|l| !l.is_empty()).collect();
        documented.insert(name.to_string(), (cells[2].to_string(), labels));
    }
    for metric in catalogue::ALL {
        let (kind, labels) =
            documented.remove(metric.name).unwrap_or_else(|| panic!("{} is not in the README table", metric.name));
        assert_eq!(kind, metric.kind.as_str(), "{}", metric.name);
        assert_eq!(labels, metric.labels, "labels of {}", metric.name);
    }
    assert!(documented.is_empty(), "the README documents metrics weir does not have: {documented:?}");
    assert!(catalogue::ALL.iter().any(|m| m.kind == Kind::Histogram));
}

/// An Elasticsearch that accepts connections and reads requests but
/// answers none until `answer` is set, then answers each `_bulk` (sent
/// without gzip) with "created" for every document.
fn silent_elasticsearch(answer: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = answer.clone();
            std::thread::spawn(move || serve_when(stream, &answer));
        }
    });
    port
}

fn serve_when(stream: TcpStream, answer: &AtomicBool) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        while !answer.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Two lines per document: the action, then the source.
        let documents = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() / 2;
        let items = vec![r#"{"create":{"status":201}}"#; documents].join(",");
        let reply = format!(r#"{{"errors":false,"items":[{items}]}}"#);
        let head =
            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", reply.len());
        if stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(reply.as_bytes())).is_err() {
            return;
        }
    }
}

#[test]
fn health_reports_a_stalled_pipeline_until_it_moves_again() {
    let answer = Arc::new(AtomicBool::new(false));
    let es = silent_elasticsearch(answer.clone());
    let dir = TestDir::new();
    let (admin, port) = (free_port(), free_port());
    let config = format!(
        r#"
admin: {{ address: 127.0.0.1:{admin} }}
pipeline: {{ batch_max_records: 10, queue_capacity: 1, stall_timeout: 1s }}
inputs:
  - {{ type: http, name: apps, tag: app, address: 127.0.0.1:{port}, ack: accepted, queue_wait: 100ms }}
outputs:
  - {{ type: elasticsearch, name: es, match: app, hosts: ["http://127.0.0.1:{es}"], index: app, gzip: false, batch: {{ max_records: 10 }} }}
"#
    );
    let child = start(&dir, &config, admin);
    assert_eq!(http("GET", admin, "/health").unwrap(), (200, "ok\n".to_string()));

    // Fill every queue: the output waits on an answer that does not come.
    let url = format!("http://127.0.0.1:{port}/ingest");
    let record = br#"{"msg":"hello"}"#;
    let full = (0..200).any(|_| post(&url, &["content-type: application/json"], record).0 == 429);
    assert!(full, "the pipeline never filled up");
    assert!(
        wait_for(Duration::from_secs(10), || http("GET", admin, "/health").is_some_and(|(s, _)| s == 503)),
        "a full pipeline that does not move is reported"
    );
    let (_, body) = http("GET", admin, "/health").unwrap();
    assert!(body.starts_with("stalled: "), "{body}");
    assert!(body.contains("output es: full (1 of 1 batches), nothing taken for "), "names the output: {body}");
    assert_eq!(scrape(admin).get("weir_pipeline_stalled", &[]), 1.0);
    assert_eq!(scrape(admin).get("weir_output_queue_batches", &[("output", "es")]), 1.0);
    let log = || std::fs::read_to_string(dir.path("weir.log")).unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || log().contains("pipeline stalled")),
        "the stall is logged for the operator: {}",
        log()
    );

    // Elasticsearch answers: the pipeline moves, and is healthy again.
    answer.store(true, Ordering::Release);
    assert!(
        wait_for(Duration::from_secs(20), || http("GET", admin, "/health") == Some((200, "ok\n".to_string()))),
        "the stall ends once records move: {:?}",
        http("GET", admin, "/health")
    );
    assert_eq!(scrape(admin).get("weir_pipeline_stalled", &[]), 0.0);
    stop(child, &dir);
}
