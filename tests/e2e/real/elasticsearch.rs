//! The Elasticsearch output against a real Elasticsearch
//! (`tests/servers/elasticsearch.sh start`), through the real `weir`
//! binary: documents counted against the statements written, typed fields
//! and `@timestamp`, replays, a restart of Elasticsearch mid-ingest, faults
//! injected by `tests/servers/es-proxy.py` (429 items, partial failures,
//! 503s, bounded retries), mapping errors, the metrics index template and
//! data streams. Each test writes under its own index prefix.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::elasticsearch_url;
use crate::util::{TestDir, read_ndjson, repo, wait_for, weir};

/// Taken for writing by the test that restarts Elasticsearch, for reading by
/// every other test, so none of them sees the outage.
pub(super) static SERVER: RwLock<()> = RwLock::new(());

/// A unique, lowercase index prefix per test and run.
fn prefix(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("weir-{test}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `curl -X METHOD ES/path` with an optional JSON body: (status, answer).
fn es(method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}", "-X", method]).arg(format!(
        "{}/{}",
        elasticsearch_url(),
        path.trim_start_matches('/')
    ));
    if let Some(body) = body {
        cmd.args(["-H", "content-type: application/json", "--data-binary"]).arg(body.to_string());
    }
    let out = cmd.output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let (answer, status) = text.trim_end().rsplit_once('\n').unwrap_or(("", text.trim()));
    let status: u16 = status.parse().unwrap_or_else(|_| {
        panic!(
            "Elasticsearch at {} does not answer ({}); run tests/servers/elasticsearch.sh start",
            elasticsearch_url(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (status, serde_json::from_str(answer).unwrap_or(Value::Null))
}

/// Documents in `index` (a name or pattern) once refreshed; 0 when none
/// exists. Waits out shards still recovering after a restart (503).
pub(super) fn count(index: &str) -> u64 {
    let mut last = Value::Null;
    let answered = wait_for(Duration::from_secs(30), || {
        es("POST", &format!("{index}/_refresh?allow_no_indices=true&ignore_unavailable=true"), None);
        let (status, answer) =
            es("GET", &format!("{index}/_count?allow_no_indices=true&ignore_unavailable=true"), None);
        last = answer;
        status == 200
    });
    assert!(answered, "no count for {index}: {last}");
    last["count"].as_u64().unwrap()
}

/// Every document of `index` (at most 10,000), refreshed first.
pub(super) fn documents(index: &str) -> Vec<Value> {
    es("POST", &format!("{index}/_refresh"), None);
    let (status, answer) = es("GET", &format!("{index}/_search?size=10000&version=true"), None);
    assert_eq!(status, 200, "{answer}");
    answer["hits"]["hits"].as_array().unwrap().clone()
}

/// The mapped type of `field` (a dotted path) in the indices matching `index`.
fn mapped_type(index: &str, field: &str) -> String {
    let (status, answer) = es("GET", &format!("{index}/_mapping/field/{field}"), None);
    assert_eq!(status, 200, "{answer}");
    let mapping = answer.as_object().and_then(|m| m.values().next()).expect("an index");
    let leaf = field.rsplit('.').next().unwrap();
    mapping["mappings"][field]["mapping"][leaf]["type"]
        .as_str()
        .unwrap_or_else(|| panic!("{field} not mapped: {answer}"))
        .to_string()
}

/// Remove what a test created (best effort: this Elasticsearch build cannot
/// delete data streams, so those and their templates stay until the next
/// fresh start of the server).
pub(super) struct Cleanup(pub(super) String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        es("DELETE", &format!("{}*", self.0), None);
        es("DELETE", &format!("_index_template/{}*", self.0), None);
    }
}

/// `weir generate` chunks into `dir/name`: (path, statements per chunk as
/// (event time, message)).
fn generate(dir: &TestDir, name: &str, chunks: u32, statements: u32, seed: u32) -> (PathBuf, Vec<(String, String)>) {
    let out = weir()
        .args([
            "generate",
            "--chunks",
            &chunks.to_string(),
            "--statements",
            &statements.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = dir.write(name, std::str::from_utf8(&out.stdout).unwrap());
    let mut messages = Vec::new();
    for chunk in crate::util::ndjson(&out.stdout) {
        for line in chunk["logs"].as_array().unwrap() {
            let line = line.as_str().unwrap();
            messages.push((line.split(' ').next().unwrap().to_string(), line.to_string()));
        }
    }
    (path, messages)
}

/// split -> extract, as in `configs/file-to-elasticsearch.yaml`.
const FILTERS: &str = r#"
filters:
  - type: split
    match: chunks
    config: { context: [app, { from: device.os, to: os }], time: { regex: '^(?P<time>\S+)' }, tag: statements }
  - type: extract
    match: statements
    config:
      metric_tag: metrics
      rules:
        - { metric: response_time_ms, pattern: 'txn=(?P<txn>\w+) status=\w+ resp_ms=(?P<ms>\d+)', value: { group: ms, type: integer }, labels: { groups: [txn], fields: [os] } }
        - { metric: page_load_ms, pattern: 'page=(?P<page>\w+) load=(?P<load>\d+ms)', value: { group: load, type: duration, unit: ms }, labels: { groups: [page], fields: [os] } }
"#;

/// A config: chunks from `input` -> split -> extract -> Elasticsearch at
/// `url` into `index`, with `extra` output settings; dead letters to a file.
fn statements_config(input: &Path, follow: bool, url: &str, index: &str, extra: &str) -> String {
    format!(
        "pipeline: {{ queue_capacity: 2 }}\n\
         inputs: [{{ type: file, path: {input:?}, follow: {follow}, poll_interval: 20ms, tag: chunks }}]\n\
         {FILTERS}\n\
         outputs:\n  \
           - {{ type: elasticsearch, name: es, match: statements, hosts: [\"{url}\"], index: \"{index}\", batch: {{ max_records: 200, max_wait: 50ms }}{extra} }}\n  \
           - {{ type: blackhole, match: metrics }}\n  \
           - {{ type: file, name: dlq, match: weir.dead_letter, path: dead.ndjson }}\n"
    )
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn every_statement_is_indexed_once_with_typed_fields_and_its_event_time() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("typed");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    let (input, statements) = generate(&dir, "chunks.ndjson", 50, 20, 1);
    dir.run_config(&statements_config(&input, false, &elasticsearch_url(), &format!("{p}-logs-%Y.%m.%d"), ""));
    assert_eq!(count(&format!("{p}-logs-*")), statements.len() as u64);
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());

    // Daily indices from event time: the generated statements start at
    // 2026-11-22T10:00:00Z, 250 ms apart, so all fall on that day.
    let (_, indices) = es("GET", &format!("_cat/indices/{p}-*?format=json"), None);
    let names: Vec<&str> = indices.as_array().unwrap().iter().map(|i| i["index"].as_str().unwrap()).collect();
    assert_eq!(names, [format!("{p}-logs-2026.11.22")]);

    // Numbers stay numbers; strings are text with a keyword.
    assert!(["float", "double", "long"].contains(&mapped_type(&format!("{p}-logs-*"), "extract.value").as_str()));
    assert_eq!(mapped_type(&format!("{p}-logs-*"), "@timestamp"), "date");

    // @timestamp is each statement's own event time, to the millisecond.
    let expected: std::collections::HashMap<&str, &str> =
        statements.iter().map(|(t, m)| (m.as_str(), t.as_str())).collect();
    let docs = documents(&format!("{p}-logs-*"));
    assert_eq!(docs.len(), statements.len());
    for doc in &docs {
        let source = &doc["_source"];
        let message = source["message"].as_str().unwrap();
        assert_eq!(source["@timestamp"].as_str(), expected.get(message).copied(), "{source}");
        assert!(source["extract"]["value"].is_number() || source.get("extract").is_none(), "{source}");
    }
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn replaying_the_same_input_duplicates_nothing() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("replay");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    let (input, statements) = generate(&dir, "chunks.ndjson", 20, 20, 2);
    let config = statements_config(&input, false, &elasticsearch_url(), &format!("{p}-logs-%Y.%m.%d"), "");
    dir.run_config(&config);
    assert_eq!(count(&format!("{p}-*")), statements.len() as u64);
    dir.run_config(&config);
    assert_eq!(count(&format!("{p}-*")), statements.len() as u64, "the replay found every document already there");
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());
}

/// A spawned `weir`, killed if the test fails before it stops it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn restarting_elasticsearch_mid_ingest_loses_and_duplicates_nothing() {
    let _exclusive = SERVER.write().unwrap_or_else(|e| e.into_inner());
    let p = prefix("restart");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    let (source, statements) = generate(&dir, "source.ndjson", 120, 10, 3);
    let chunks: Vec<String> = std::fs::read_to_string(&source).unwrap().lines().map(|l| format!("{l}\n")).collect();
    let input = dir.path("app.ndjson");
    std::fs::write(&input, "").unwrap();
    let config = dir
        .write("weir.yaml", &statements_config(&input, true, &elasticsearch_url(), &format!("{p}-logs-%Y.%m.%d"), ""));
    let mut child =
        Running(weir().args(["run", "-c"]).arg(&config).stdin(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());

    // A writer keeps appending while Elasticsearch goes down and comes back.
    let writer = {
        let input = input.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new().append(true).open(&input).unwrap();
            for chunk in chunks {
                file.write_all(chunk.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(150));
            }
        })
    };
    assert!(wait_for(Duration::from_secs(30), || count(&format!("{p}-*")) > 0), "nothing indexed before the restart");
    let restart =
        Command::new("bash").arg(repo().join("tests/servers/elasticsearch.sh")).arg("restart").output().unwrap();
    assert!(restart.status.success(), "restart failed: {}", String::from_utf8_lossy(&restart.stderr));
    writer.join().unwrap();

    let total = statements.len() as u64;
    let done = wait_for(Duration::from_secs(60), || count(&format!("{p}-*")) >= total);
    Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    let status = child.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(done, "only {} of {total} documents after the restart; weir said:\n{stderr}", count(&format!("{p}-*")));
    assert!(status.success(), "{stderr}");
    assert_eq!(count(&format!("{p}-*")), total, "nothing duplicated");
    assert!(stderr.contains("retrying"), "the outage was seen and retried:\n{stderr}");
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());
}

/// `tests/servers/es-proxy.py` in front of Elasticsearch, steered by a control file.
struct Proxy {
    child: Child,
    url: String,
    control: PathBuf,
}

impl Proxy {
    fn start(dir: &TestDir, faults: Value) -> Proxy {
        Proxy::start_on(dir, faults, "127.0.0.1:0")
    }

    /// On a given `host:port`, so it can be stopped and started again where
    /// a client expects Elasticsearch (an outage).
    fn start_on(dir: &TestDir, faults: Value, listen: &str) -> Proxy {
        let control = dir.write("control.json", &faults.to_string());
        let mut child = Command::new("python3")
            .arg(repo().join("tests/servers/es-proxy.py"))
            .args(["--listen", listen, "--upstream", &elasticsearch_url(), "--control-file"])
            .arg(&control)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("es-proxy listening on ")
            .unwrap_or_else(|| panic!("es-proxy said {line:?}"))
            .to_string();
        Proxy { child, url, control }
    }

    /// The faults not yet used up.
    fn remaining(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.control).unwrap()).unwrap_or(Value::Null)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn throttled_items_are_retried_until_indexed() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("throttled");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    let proxy = Proxy::start(&dir, json!({ "bulk_429_items": 2 }));
    let (input, statements) = generate(&dir, "chunks.ndjson", 10, 10, 4);
    let out = dir.run_config(&statements_config(&input, false, &proxy.url, &format!("{p}-logs"), ""));
    assert_eq!(proxy.remaining(), json!({}), "both throttled answers were used");
    assert_eq!(count(&format!("{p}-*")), statements.len() as u64);
    assert!(String::from_utf8_lossy(&out.stderr).contains("es_rejected_execution_exception"));
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn a_partial_failure_retries_only_the_failed_item() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("partial");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    let proxy = Proxy::start(&dir, json!({ "bulk_fail_first_item_429": 1 }));
    let (input, statements) = generate(&dir, "chunks.ndjson", 5, 10, 5);
    // `index` overwrites and bumps _version, so a document sent twice would show it.
    dir.run_config(&statements_config(&input, false, &proxy.url, &format!("{p}-logs"), ", action: index"));
    assert_eq!(proxy.remaining(), json!({}));
    let docs = documents(&format!("{p}-logs"));
    assert_eq!(docs.len(), statements.len());
    let resent: Vec<&Value> = docs.iter().filter(|d| d["_version"] != 1).collect();
    assert!(resent.is_empty(), "documents written twice: {resent:?}");
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn a_mapping_error_is_dead_lettered_with_the_reason_and_the_rest_indexed() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("mapping");
    let _cleanup = Cleanup(p.clone());
    let index = format!("{p}-typed");
    let (status, answer) =
        es("PUT", &index, Some(&json!({ "mappings": { "properties": { "ms": { "type": "long" } } } })));
    assert_eq!(status, 200, "{answer}");
    let dir = TestDir::new();
    let input = dir.write("in.ndjson", "{\"ms\":12}\n{\"ms\":\"slow\"}\n{\"ms\":30}\n");
    dir.run_config(&format!(
        "inputs: [{{ type: file, path: {input:?} }}]\n\
         outputs:\n  \
           - {{ type: elasticsearch, match: file, hosts: [\"{}\"], index: {index} }}\n  \
           - {{ type: file, name: dlq, match: weir.dead_letter, path: dead.ndjson }}\n",
        elasticsearch_url()
    ));
    assert_eq!(count(&index), 2);
    let dead = read_ndjson(&dir.path("dead.ndjson"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["record"], json!({ "ms": "slow" }));
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("output elasticsearch: elasticsearch refused the document: index {index}, _id ")),
        "{reason}"
    );
    assert!(
        reason.contains("status 400: document_parsing_exception")
            && reason.contains("failed to parse field [ms] of type [long]"),
        "{reason}"
    );
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn whole_request_503s_are_retried() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("unavailable");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    let proxy = Proxy::start(&dir, json!({ "status_503": 3 }));
    let (input, statements) = generate(&dir, "chunks.ndjson", 10, 10, 6);
    let out = dir.run_config(&statements_config(&input, false, &proxy.url, &format!("{p}-logs"), ""));
    assert_eq!(proxy.remaining(), json!({}));
    assert_eq!(count(&format!("{p}-*")), statements.len() as u64);
    assert!(String::from_utf8_lossy(&out.stderr).contains("elasticsearch answered 503"));
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn bounded_retries_dead_letter_after_max_attempts() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("bounded");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    let proxy = Proxy::start(&dir, json!({ "status_503": 1000 }));
    let (input, statements) = generate(&dir, "chunks.ndjson", 2, 10, 7);
    dir.run_config(&statements_config(&input, false, &proxy.url, &format!("{p}-logs"), ", retry: { max_attempts: 3 }"));
    let dead = read_ndjson(&dir.path("dead.ndjson"));
    assert_eq!(dead.len(), statements.len());
    for letter in &dead {
        let reason = letter["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("gave up after 3 attempts: output es: _bulk ")
                && reason.contains("elasticsearch answered 503"),
            "{reason}"
        );
    }
    let used = 1000 - proxy.remaining()["status_503"].as_u64().unwrap();
    assert!(used >= 3 && used.is_multiple_of(3), "three attempts per write, {used} requests");
    assert_eq!(count(&format!("{p}-*")), 0);
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn window_records_land_in_a_metrics_index_with_percentiles_mapped_as_numbers() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("metrics");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    // The shipped template, pointed at this test's indices.
    let shipped = std::fs::read_to_string(repo().join("configs/elasticsearch/metrics-template.json")).unwrap();
    let mut template: Value = serde_json::from_str(&shipped).unwrap();
    template["index_patterns"] = json!([format!("{p}-metrics-*")]);
    dir.write("template.json", &template.to_string());
    let (input, _) = generate(&dir, "chunks.ndjson", 40, 20, 8);
    dir.run_config(&format!(
        "inputs: [{{ type: file, path: {input:?}, tag: chunks }}]\n\
         {FILTERS}\n  \
         - {{ type: percentiles, match: metrics, config: {{ window: 1m, allowed_lateness: 30s, quantiles: [p50, p90, p95, p99], tag: windows }} }}\n\
         outputs:\n  \
           - {{ type: elasticsearch, name: metrics, match: windows, hosts: [\"{url}\"], index: \"{p}-metrics-%Y.%m.%d\", template: {{ name: {p}-metrics, file: template.json }} }}\n  \
           - {{ type: blackhole, match: [statements, metrics] }}\n  \
           - {{ type: file, name: dlq, match: weir.dead_letter, path: dead.ndjson }}\n",
        url = elasticsearch_url()
    ));
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());
    let docs = documents(&format!("{p}-metrics-*"));
    assert!(docs.len() >= 4, "{} window records", docs.len());
    let index = format!("{p}-metrics-*");
    for stat in ["p50", "p90", "p95", "p99", "min", "max", "mean"] {
        assert_eq!(mapped_type(&index, stat), "double", "{stat}");
    }
    assert_eq!(mapped_type(&index, "count"), "long");
    assert_eq!(mapped_type(&index, "window_start"), "date");
    assert_eq!(mapped_type(&index, "metric"), "keyword");
    assert_eq!(mapped_type(&index, "labels.os"), "keyword");
    for doc in &docs {
        assert!(doc["_source"]["p95"].is_number() && doc["_source"]["@timestamp"].is_string(), "{doc}");
    }
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn data_stream_mode_appends_to_a_data_stream() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("stream");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    dir.write(
        "template.json",
        &json!({ "index_patterns": [format!("{p}-ds*")], "data_stream": {}, "priority": 300 }).to_string(),
    );
    let (input, statements) = generate(&dir, "chunks.ndjson", 5, 10, 9);
    let extra = format!(", mode: data_stream, template: {{ name: {p}-ds, file: template.json }}");
    let config = statements_config(&input, false, &elasticsearch_url(), &format!("{p}-ds"), &extra);
    dir.run_config(&config);
    dir.run_config(&config);
    // This Elasticsearch build has no GET /_data_stream; _resolve says the same.
    let (status, answer) = es("GET", &format!("_resolve/index/{p}-ds"), None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data_streams"][0]["name"], format!("{p}-ds"), "{answer}");
    assert_eq!(count(&format!("{p}-ds")), statements.len() as u64, "created once, replay included");
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());
}

/// Chunks POSTed over HTTP -> split -> extract -> Elasticsearch; then the
/// same request again, as a client retry after a lost answer: the request's
/// content is its identity, so the retry indexes nothing twice.
#[test]
#[ignore = "needs the real servers: just test-full"]
fn chunks_posted_over_http_are_indexed_once_even_when_the_client_retries() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("http");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    let (input, statements) = generate(&dir, "chunks.ndjson", 30, 20, 7);
    let port = crate::util::free_port();
    let config = dir.write(
        "weir.yaml",
        &format!(
            "inputs: [{{ type: http, address: 127.0.0.1:{port}, tag: chunks }}]\n{FILTERS}\noutputs:\n  \
             - {{ type: elasticsearch, name: es, match: statements, hosts: [\"{url}\"], index: \"{p}-logs-%Y.%m.%d\", batch: {{ max_records: 200, max_wait: 50ms }} }}\n  \
             - {{ type: blackhole, match: metrics }}\n  \
             - {{ type: file, name: dlq, match: weir.dead_letter, path: dead.ndjson }}\n",
            url = elasticsearch_url()
        ),
    );
    let mut child = weir().args(["run", "-c"]).arg(&config).stdin(Stdio::null()).spawn().unwrap();
    let post = || {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "content-type: application/x-ndjson",
                "--data-binary",
            ])
            .arg(format!("@{}", input.display()))
            .arg(format!("http://127.0.0.1:{port}/ingest"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(wait_for(Duration::from_secs(30), || post() == "200"), "weir answers 200 once running");
    // `delivered` acknowledgement: the 200 came after Elasticsearch acknowledged.
    assert_eq!(count(&format!("{p}-logs-*")), statements.len() as u64);
    assert_eq!(post(), "200");
    assert_eq!(count(&format!("{p}-logs-*")), statements.len() as u64, "the retry duplicated documents");
    crate::util::sigterm(child.id());
    assert!(child.wait().unwrap().success());
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn updates_and_deletes_posted_to_weirs_bulk_are_applied_by_the_elasticsearch_output() {
    use crate::http_input::{Running, post};
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("replay");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    let config = format!(
        "inputs: [{{ type: http, address: 127.0.0.1:0, bulk_metadata_key: _es }}]\n\
         outputs:\n  \
           - {{ type: elasticsearch, match: 'es.*', hosts: [\"{url}\"], index: {p}-unused, bulk_metadata_key: _es, batch: {{ max_wait: 20ms }} }}\n  \
           - {{ type: file, name: dlq, match: weir.dead_letter, path: dead.ndjson }}\n",
        url = elasticsearch_url()
    );
    let weir = Running::start_with_env(&dir, &config, &[]);
    let bulk = format!("{}/_bulk", weir.url);
    let index = format!("{p}-a");
    let first = format!(
        "{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"d1\"}}}}\n{{\"msg\":\"first\",\"n\":1}}\n\
         {{\"index\":{{\"_index\":\"{index}\",\"_id\":\"d2\"}}}}\n{{\"msg\":\"second\"}}\n"
    );
    let (status, answer) = post(&bulk, &["Content-Type: application/x-ndjson"], first.as_bytes());
    assert_eq!((status, &answer["errors"]), (200, &json!(false)), "{answer}");
    // Delivered mode: the first request's documents are in before this one.
    let second = format!(
        "{{\"update\":{{\"_index\":\"{index}\",\"_id\":\"d1\"}}}}\n{{\"doc\":{{\"msg\":\"edited\"}}}}\n\
         {{\"delete\":{{\"_index\":\"{index}\",\"_id\":\"d2\"}}}}\n\
         {{\"delete\":{{\"_index\":\"{index}\",\"_id\":\"never-there\"}}}}\n\
         {{\"update\":{{\"_index\":\"{index}\",\"_id\":\"d3\"}}}}\n{{\"doc\":{{\"msg\":\"upserted\"}},\"doc_as_upsert\":true}}\n"
    );
    let (status, answer) = post(&bulk, &["Content-Type: application/x-ndjson"], second.as_bytes());
    assert_eq!((status, &answer["errors"]), (200, &json!(false)), "{answer}");
    weir.stop();
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty(), "a delete of nothing is no failure");
    let (_, d1) = es("GET", &format!("{index}/_doc/d1"), None);
    assert_eq!((&d1["_source"]["msg"], &d1["_source"]["n"]), (&json!("edited"), &json!(1)), "{d1}");
    assert!(d1["_source"].get("_es").is_none(), "the metadata field is not indexed: {d1}");
    assert_eq!(es("GET", &format!("{index}/_doc/d2"), None).0, 404, "deleted");
    let (_, d3) = es("GET", &format!("{index}/_doc/d3"), None);
    assert_eq!(d3["_source"]["msg"], "upserted", "{d3}");
    assert_eq!(count(&format!("{p}-unused")), 0, "replayed records go to their own index");
}

/// The durable buffer's promise (issue 16): with `ack: accepted` and
/// `buffer:`, a 200 survives kill -9. Two clients post chunks (retrying
/// until 200, as shippers do) while weir is killed with SIGKILL ten times
/// and Elasticsearch is unreachable for three of those stretches (the
/// proxy in front of it stopped). Every statement ends up in Elasticsearch
/// exactly once: what was answered 200 came back from the buffer after
/// each kill, and what was sent again (the buffer's at-least-once replay,
/// a client's retry of a request whose answer was lost) kept its `_id`.
#[test]
#[ignore = "needs the real servers: just test-full"]
fn accepted_requests_survive_ten_kill_9s_and_outages_exactly_once() {
    let _shared = SERVER.read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("buffer");
    let _cleanup = Cleanup(p.clone());
    let dir = TestDir::new();
    let (source, statements) = generate(&dir, "chunks.ndjson", 120, 5, 11);
    let chunks: Vec<String> = std::fs::read_to_string(&source).unwrap().lines().map(str::to_string).collect();
    let bodies: Vec<String> = chunks.chunks(2).map(|pair| pair.join("\n") + "\n").collect();
    let proxy_listen = format!("127.0.0.1:{}", crate::util::free_port());
    let mut proxy = Some(Proxy::start_on(&dir, json!({}), &proxy_listen));
    let port = crate::util::free_port();
    let config = dir.write(
        "weir.yaml",
        &format!(
            "pipeline: {{ queue_capacity: 2 }}\n\
             inputs: [{{ type: http, address: 127.0.0.1:{port}, tag: chunks, ack: accepted, buffer: {{ dir: buffer, max_bytes: 64MiB }} }}]\n\
             {FILTERS}\n\
             outputs:\n  \
               - {{ type: elasticsearch, name: es, match: statements, hosts: [\"http://{proxy_listen}\"], index: \"{p}-logs-%Y.%m.%d\", batch: {{ max_records: 200, max_wait: 50ms }} }}\n  \
               - {{ type: blackhole, match: metrics }}\n  \
               - {{ type: file, name: dlq, match: weir.dead_letter, path: dead.ndjson }}\n"
        ),
    );
    let start = |run: usize| {
        let log = std::fs::File::create(dir.path(&format!("weir-{run}.log"))).unwrap();
        let child = Running(weir().args(["run", "-c"]).arg(&config).stdin(Stdio::null()).stderr(log).spawn().unwrap());
        assert!(
            wait_for(Duration::from_secs(30), || crate::util::http("GET", port, "/health").is_some()),
            "weir run {run} did not start listening"
        );
        child
    };
    let mut weir_process = start(0);

    let url = format!("http://127.0.0.1:{port}/ingest");
    let clients: Vec<_> = [0, 1]
        .into_iter()
        .map(|client| {
            let mine: Vec<String> = bodies.iter().skip(client).step_by(2).cloned().collect();
            let url = url.clone();
            std::thread::spawn(move || {
                let mut refused = 0u32;
                for body in mine {
                    loop {
                        let out = Command::new("curl")
                            .args(["-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}"])
                            .args(["-H", "content-type: application/x-ndjson", "--data-binary", &body, &url])
                            .output()
                            .unwrap();
                        if out.stdout == b"200" {
                            break;
                        }
                        refused += 1;
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    std::thread::sleep(Duration::from_millis(400));
                }
                refused
            })
        })
        .collect();

    // Ten kill -9s, each after 1.5 to 3 s of traffic; Elasticsearch out of
    // reach across kills 2, 5 and 8, so accepted records pile up in the
    // buffer when the process dies.
    for kill in 1..=10usize {
        std::thread::sleep(Duration::from_millis(1500 + (kill as u64 * 577) % 1500));
        if kill % 3 == 2 {
            proxy = None;
        }
        drop(weir_process); // SIGKILL, then reaped
        weir_process = start(kill);
        if kill % 3 == 2 {
            std::thread::sleep(Duration::from_secs(2));
            proxy = Some(Proxy::start_on(&dir, json!({}), &proxy_listen));
        }
    }
    let refused: u32 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(proxy.is_some());

    let total = statements.len() as u64;
    let index = format!("{p}-logs-*");
    let done = wait_for(Duration::from_secs(120), || count(&index) >= total);
    let logs = || {
        (0..=10)
            .map(|run| std::fs::read_to_string(dir.path(&format!("weir-{run}.log"))).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(done, "{} of {total} statements indexed; weir said:\n{}", count(&index), logs());
    crate::util::sigterm(weir_process.0.id());
    let status = weir_process.0.wait().unwrap();
    assert!(status.success(), "{}", logs());
    assert_eq!(count(&index), total, "nothing indexed twice");
    let replays = logs().matches("sending again what was not acknowledged").count();
    eprintln!(
        "{total} statements, {replays} of 10 restarts sent a backlog again, {refused} posts refused or unanswered"
    );
    assert!(replays > 0, "no start found accepted records left in the buffer: the kills did not test it");
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());
}
