//! The `http` input end to end: the real `weir` on a port it picks itself
//! (`address: 127.0.0.1:0`, read back from its JSON log), posted to with
//! curl and with the official Elasticsearch Python client.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{TestDir, python_clients, read_ndjson, wait_for, weir};

/// A running `weir` with an http input.
pub struct Running {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log: Arc<Mutex<String>>,
}

impl Running {
    fn start(dir: &TestDir, config: &str) -> Running {
        Running::start_with_env(dir, config, &[("WEIR_TEST_HTTP_TOKEN", "s3cret")])
    }

    /// Start `weir run` on `config` with extra environment variables.
    pub fn start_with_env(dir: &TestDir, config: &str, env: &[(&str, &str)]) -> Running {
        let file = dir.write("weir.yaml", config);
        let mut child = weir()
            .args(["--log-format", "json", "run", "-c"])
            .arg(&file)
            .env("RUST_LOG", "warn,weir::inputs::http=info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weir starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == "http input listening"
                {
                    let _ = tx.send(event["address"].as_str().unwrap_or_default().to_string());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let address = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                panic!("weir did not report its http address:\n{}", log.lock().unwrap());
            }
        };
        Running { child, url: format!("http://{address}"), log }
    }

    /// SIGTERM, then expect a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "weir exits cleanly on SIGTERM:\n{}", self.log.lock().unwrap());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POST `body` with curl; returns the status and the response body.
pub fn post(url: &str, headers: &[&str], body: &[u8]) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-X", "POST", "--data-binary", "@-", "-w", "\n%{http_code}"]);
    for header in headers {
        cmd.args(["-H", header]);
    }
    let mut child = cmd.arg(url).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("curl runs");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = code.trim().parse().unwrap_or_else(|_| panic!("curl failed: {text}"));
    (status, serde_json::from_str(body).unwrap_or(Value::String(body.to_string())))
}

fn chunk(app: &str, statements: &[String]) -> String {
    json!({ "app": app, "logs": statements }).to_string()
}

const SPLIT_TO_FILE: &str = "
inputs:
  - type: http
    name: web
    tag: chunks
    address: 127.0.0.1:0
    auth_token: ${WEIR_TEST_HTTP_TOKEN}
    max_records: 100
filters:
  - { type: split, match: chunks, config: { context: [app] } }
outputs:
  - { type: file, path: out.ndjson, match: chunks, batch: { max_wait: 20ms } }
";

const AUTH: &str = "Authorization: Bearer s3cret";

#[test]
fn posted_statements_reach_the_file_exactly_once_and_delivered_answers_after_the_write() {
    let dir = TestDir::new();
    let weir = Running::start(&dir, SPLIT_TO_FILE);
    let url = format!("{}/ingest", weir.url);
    let out = dir.path("out.ndjson");
    let mut expected = Vec::new();
    for request in 0..6 {
        let mut body = String::new();
        for c in 0..3 {
            let statements: Vec<String> = (0..4).map(|s| format!("r{request} c{c} s{s} resp_ms={s}")).collect();
            expected.extend(statements.iter().cloned());
            body.push_str(&chunk("shop", &statements));
            body.push('\n');
        }
        let (status, answer) = if request % 2 == 0 {
            post(&url, &[AUTH, "Content-Type: application/x-ndjson"], body.as_bytes())
        } else {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(body.as_bytes()).unwrap();
            post(&url, &[AUTH, "Content-Encoding: gzip"], &gz.finish().unwrap())
        };
        assert_eq!((status, &answer["records"]), (200, &json!(3)), "{answer}");
        // Delivered mode: the 200 came after the file write.
        let written = read_ndjson(&out).len();
        assert_eq!(written, expected.len(), "request {request} was answered before its records were written");
    }
    let messages: Vec<String> = read_ndjson(&out).iter().map(|r| r["message"].as_str().unwrap().to_string()).collect();
    assert_eq!(messages, expected, "every statement exactly once, in order");
    assert!(read_ndjson(&out).iter().all(|r| r["app"] == "shop"));
    weir.stop();
}

#[test]
fn bad_requests_are_refused_with_a_reason_and_deliver_nothing() {
    let dir = TestDir::new();
    let weir = Running::start(&dir, SPLIT_TO_FILE);
    let url = format!("{}/ingest", weir.url);
    let good = chunk("a", &["fine".to_string()]);

    let (status, answer) = post(&url, &["Content-Type: application/x-ndjson"], good.as_bytes());
    assert_eq!(status, 401, "{answer}");

    let body = format!("{good}\n{{\"app\": \"a\", \"logs\": [}}\n");
    let (status, answer) = post(&url, &[AUTH, "Content-Type: application/x-ndjson"], body.as_bytes());
    assert_eq!(status, 400, "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    assert!(reason.starts_with("line 2, column 23 (byte offset "), "{reason}");
    assert!(reason.contains("invalid JSON"), "{reason}");

    let (status, answer) = post(&url, &[AUTH, "Content-Encoding: br"], good.as_bytes());
    assert_eq!((status, answer["status"].as_u64()), (415, Some(415)), "{answer}");

    let many: String = (0..101).map(|_| format!("{good}\n")).collect();
    let (status, answer) = post(&url, &[AUTH], many.as_bytes());
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["reason"], "more than 100 records in one request (max_records)");

    let (status, _) = post(&format!("{}/ingest/bad*tag", weir.url), &[AUTH], good.as_bytes());
    assert_eq!(status, 400);

    let health = Command::new("curl").args(["-sS", &format!("{}/health", weir.url)]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&health.stdout), "{\"status\":\"ok\"}");
    weir.stop();
    assert!(read_ndjson(&dir.path("out.ndjson")).is_empty(), "nothing from a refused request was delivered");
}

/// A FIFO `name` in `dir` for a file output, and its reader: it opens the
/// FIFO (so weir's open succeeds) but reads nothing until told through the
/// sender, then everything until weir closes it, which the handle returns.
/// Until then the output blocks once the pipe buffer is full.
pub fn held_fifo(dir: &TestDir, name: &str) -> (mpsc::Sender<()>, std::thread::JoinHandle<String>) {
    let fifo = dir.path(name);
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (go, wait_for_go) = mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let mut file = std::fs::File::open(&fifo).unwrap();
        wait_for_go.recv().unwrap();
        let mut all = String::new();
        file.read_to_string(&mut all).unwrap();
        all
    });
    (go, reader)
}

#[test]
fn a_blocked_output_makes_requests_429_and_nothing_accepted_is_lost() {
    let dir = TestDir::new();
    let (go, reader) = held_fifo(&dir, "out.fifo");
    let weir = Running::start(
        &dir,
        "
pipeline: { queue_capacity: 1, batch_max_records: 1000 }
inputs:
  - { type: http, address: 127.0.0.1:0, ack: accepted, queue_wait: 50ms }
outputs:
  - { type: file, path: out.fifo, match: '*', batch: { max_records: 20, max_wait: 10ms } }
",
    );
    let url = format!("{}/ingest", weir.url);
    let padding = "x".repeat(1000);
    let request_body = |n: usize| -> String {
        (0..20).map(|i| format!("{{\"req\":{n},\"i\":{i},\"pad\":\"{padding}\"}}\n")).collect()
    };
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for n in 0..400 {
        let (status, answer) = post(&url, &[], request_body(n).as_bytes());
        match status {
            200 => accepted.push(n),
            429 => {
                assert!(answer["reason"].as_str().unwrap().starts_with("the pipeline is full"), "{answer}");
                refused.push(n);
                if refused.len() == 3 {
                    break;
                }
            }
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert!(!refused.is_empty(), "no 429 after {} accepted requests", accepted.len());

    // Unblock the output; the refused requests are retried until accepted.
    go.send(()).unwrap();
    for &n in &refused {
        let ok = wait_for(Duration::from_secs(10), || post(&url, &[], request_body(n).as_bytes()).0 == 200);
        assert!(ok, "request {n} was never accepted");
    }
    weir.stop();
    let delivered = reader.join().unwrap();
    let mut counts: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    for line in delivered.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        *counts.entry((record["req"].as_u64().unwrap(), record["i"].as_u64().unwrap())).or_default() += 1;
    }
    let sent = accepted.len() + refused.len();
    assert_eq!(counts.len(), sent * 20, "every record of every accepted request arrived");
    assert!(counts.values().all(|&c| c == 1), "none twice: a 429 queued nothing");
}

/// With `ack: accepted` and a durable buffer, a 200 survives kill -9:
/// while the output is blocked the buffer fills up to `max_bytes` (then
/// 429, and 413 for a request that could never fit), weir is killed with
/// SIGKILL, and the next start sends every accepted record on.
#[test]
fn a_buffered_accepted_request_survives_kill_9_and_a_full_buffer_answers_429() {
    let dir = TestDir::new();
    let (go, reader) = held_fifo(&dir, "out.fifo");
    let admin = crate::util::free_port();
    let config = |path: &str| {
        format!(
            "
admin: {{ address: 127.0.0.1:{admin} }}
pipeline: {{ queue_capacity: 1, batch_max_records: 1000 }}
inputs:
  - {{ type: http, address: 127.0.0.1:0, ack: accepted, buffer: {{ dir: buffer, max_bytes: 256KiB }} }}
outputs:
  - {{ type: file, path: {path}, match: '*', batch: {{ max_records: 20, max_wait: 10ms }} }}
"
        )
    };
    let weir = Running::start(&dir, &config("out.fifo"));
    let url = format!("{}/ingest", weir.url);
    let padding = "x".repeat(1000);
    let request_body = |n: usize, records: usize| -> String {
        (0..records).map(|i| format!("{{\"req\":{n},\"i\":{i},\"pad\":\"{padding}\"}}\n")).collect()
    };
    let (status, answer) = post(&url, &[], request_body(9999, 300).as_bytes());
    assert_eq!(status, 413, "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("more than buffer.max_bytes"), "{answer}");
    let mut accepted = Vec::new();
    for n in 0..400 {
        let (status, answer) = post(&url, &[], request_body(n, 20).as_bytes());
        match status {
            200 => accepted.push(n),
            429 => {
                assert!(answer["reason"].as_str().unwrap().contains("durable buffer is full"), "{answer}");
                break;
            }
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert!(accepted.len() > 8 && accepted.len() < 400, "the buffer filled after {} requests", accepted.len());
    let first_log = weir.log.lock().unwrap().clone();
    drop(weir); // SIGKILL: what the output had not taken lives only in the buffer
    go.send(()).unwrap();
    let before_kill = reader.join().unwrap();

    let weir = Running::start_with_env(&dir, &config("out.ndjson"), &[("RUST_LOG", "warn,weir::inputs=info")]);
    let wanted = accepted.len() * 20;
    let mut delivered: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    let arrived = wait_for(Duration::from_secs(30), || {
        delivered.clear();
        let after = std::fs::read_to_string(dir.path("out.ndjson")).unwrap_or_default();
        // The kill may cut a write into the FIFO, and the file may be read
        // mid-write: a partial line is no record (its batch was not acked).
        for record in before_kill.lines().chain(after.lines()).filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
            *delivered.entry((record["req"].as_u64().unwrap(), record["i"].as_u64().unwrap())).or_default() += 1;
        }
        delivered.len() >= wanted
    });
    let log = weir.log.lock().unwrap().clone();
    let metrics = crate::util::http("GET", admin, "/metrics").expect("the admin API answers").1;
    weir.stop();
    assert!(arrived, "{} of {wanted} accepted records arrived after the kill:\n{log}\n{first_log}", delivered.len());
    let expected: std::collections::BTreeSet<(u64, u64)> =
        accepted.iter().flat_map(|&n| (0..20).map(move |i| (n as u64, i))).collect();
    assert_eq!(
        delivered.keys().copied().collect::<std::collections::BTreeSet<_>>(),
        expected,
        "the accepted ones, no others"
    );
    assert!(log.contains("sending again what was not acknowledged"), "{log}");
    let sample = |name: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{input=\"http\"")))
            .unwrap_or_else(|| panic!("{name} not served:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(sample("weir_buffer_replayed_total") >= 1.0, "{metrics}");
    assert!(sample("weir_buffer_bytes") >= 0.0 && sample("weir_buffer_units") >= 0.0);
    assert!(metrics.contains("weir_buffer_truncated_total{input=\"http\",reason=\"torn\"}"), "{metrics}");
    assert!(
        metrics.contains("weir_input_requests_refused_total{input=\"http\",reason=\"buffer_full\"} 0"),
        "refusals restart at 0"
    );
}

const ES_BULK_SCRIPT: &str = r#"
import json, sys
from elasticsearch import Elasticsearch, helpers
es = Elasticsearch(sys.argv[1], bearer_auth="s3cret", request_timeout=20)
info = es.info()
actions = ({"_index": "applogs", "_id": f"id-{i}", "_source": {"n": i, "msg": f"statement {i}"}} for i in range(500))
ok, errors = helpers.bulk(es, actions, chunk_size=100)
print(json.dumps({"version": info["version"]["number"], "ok": ok, "errors": errors}))
"#;

#[test]
fn the_elasticsearch_python_clients_bulk_helper_succeeds_against_weir() {
    let python = python_clients();
    let dir = TestDir::new();
    let weir = Running::start(
        &dir,
        "
inputs:
  - { type: http, address: 127.0.0.1:0, auth_token: '${WEIR_TEST_HTTP_TOKEN}' }
outputs:
  - { type: file, path: out.ndjson, match: 'es.*', encoding: envelope, batch: { max_wait: 20ms } }
",
    );
    let out = Command::new(python).args(["-c", ES_BULK_SCRIPT, &weir.url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report, json!({"version": "8.15.0", "ok": 500, "errors": []}));
    // Delivered mode: the helper's success means the records are written.
    let records = read_ndjson(&dir.path("out.ndjson"));
    assert_eq!(records.len(), 500);
    assert!(records.iter().all(|r| r["tag"] == "es.applogs"));
    let mut ns: Vec<u64> = records.iter().map(|r| r["body"]["n"].as_u64().unwrap()).collect();
    ns.sort_unstable();
    assert_eq!(ns, (0..500).collect::<Vec<_>>());
    weir.stop();
}

/// POST the file `body` to `url` with curl (chunked when asked, so no
/// Content-Length announces the size); returns the status and the answer.
fn post_file(url: &str, body: &Path, chunked: bool) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "120", "-H", "Content-Type: application/x-ndjson", "-w", "\n%{http_code}"]);
    if chunked {
        cmd.args(["-H", "Transfer-Encoding: chunked"]);
    }
    let data = format!("@{}", body.display());
    let out = cmd.args(["--data-binary", &data, url]).output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or_else(|_| panic!("curl failed: {text}")),
        serde_json::from_str(answer).unwrap_or(Value::Null),
    )
}

/// `n` `_bulk` items of about 1 KiB each, as a large Logstash bulk.
fn bulk_of(n: usize) -> String {
    let pad = "x".repeat(980);
    (0..n)
        .map(|i| format!("{{\"create\":{{\"_index\":\"logs-app\"}}}}\n{{\"n\":{i},\"message\":\"{pad}\"}}\n"))
        .collect()
}

/// The `http` input with its defaults, as a collector first meets it.
const BULK_TO_NOWHERE: &str =
    "inputs: [{ type: http, address: 127.0.0.1:0 }]\noutputs: [{ type: blackhole, match: 'es.*' }]\n";

/// Elasticsearch's default `http.max_content_length`, Weir's default
/// `max_body_bytes`.
const ES_MAX_CONTENT_LENGTH: usize = 100 << 20;

#[test]
fn a_bulk_the_size_shippers_send_is_accepted_with_the_default_limits() {
    let dir = TestDir::new();
    let weir = Running::start(&dir, BULK_TO_NOWHERE);
    let bulk = bulk_of(12_500);
    assert!(bulk.len() > 12 << 20, "{} bytes", bulk.len());
    let file = dir.write("bulk", &bulk);
    for chunked in [false, true] {
        let (status, answer) = post_file(&format!("{}/_bulk", weir.url), &file, chunked);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["errors"], false);
        assert_eq!(answer["items"].as_array().unwrap().len(), 12_500);
    }
    weir.stop();
}

#[test]
fn a_bulk_one_byte_over_the_default_limit_is_413_in_elasticsearchs_error_shape() {
    let dir = TestDir::new();
    let weir = Running::start(&dir, BULK_TO_NOWHERE);
    let mut bulk = bulk_of(ES_MAX_CONTENT_LENGTH / 1040).into_bytes();
    bulk.resize(ES_MAX_CONTENT_LENGTH + 1, b'\n');
    let file = dir.path("bulk");
    std::fs::write(&file, &bulk).unwrap();
    // Announced by Content-Length (refused before reading), and chunked
    // (refused while reading).
    for chunked in [false, true] {
        let (status, answer) = post_file(&format!("{}/_bulk", weir.url), &file, chunked);
        assert_eq!(status, 413, "chunked: {chunked}: {answer}");
        assert_eq!(answer["status"], 413);
        assert_eq!(answer["error"]["type"], "content_too_long_exception");
        assert_eq!(answer["error"]["root_cause"][0]["type"], "content_too_long_exception");
        assert_eq!(answer["error"]["reason"], "the request body is larger than max_body_bytes (104857600 bytes)");
    }
    // Exactly at the limit is accepted.
    bulk.truncate(ES_MAX_CONTENT_LENGTH);
    std::fs::write(&file, &bulk).unwrap();
    let (status, answer) = post_file(&format!("{}/_bulk", weir.url), &file, false);
    assert_eq!((status, &answer["errors"]), (200, &json!(false)));
    weir.stop();
}
