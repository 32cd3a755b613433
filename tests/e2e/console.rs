//! The console's JSON API (`/api/v1`) on the real binary running
//! `configs/quickstart-console.yaml`: the filter test endpoint with good
//! and bad input, what the taps show once traffic flows, reloads with a
//! replaced config block, and the admin token. The page itself is tested in
//! a real browser by `tests/browser/` (`just test-browser`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http_input::post;
use crate::util::{TestDir, free_port, http, repo, wait_for, weir};

/// `weir run -c configs/quickstart-console.yaml` on free ports.
struct Console {
    child: Child,
    admin: String,
    ingest: String,
    _dir: TestDir,
}

impl Console {
    fn start(config: &std::path::Path, env: &[(&str, &str)]) -> Console {
        let dir = TestDir::new();
        let (admin, http_port) = (free_port(), free_port());
        let mut child = weir()
            .args(["--log-format", "json", "run", "-c"])
            .arg(config)
            .env("ADMIN_ADDRESS", format!("127.0.0.1:{admin}"))
            .env("HTTP_ADDRESS", format!("127.0.0.1:{http_port}"))
            .env("OUT_DIR", dir.path("out"))
            .env("RUST_LOG", "warn,weir::pipeline=info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weir starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("pipeline ready") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(60)).expect("the pipeline gets ready");
        Console {
            child,
            admin: format!("http://127.0.0.1:{admin}"),
            ingest: format!("http://127.0.0.1:{http_port}/ingest"),
            _dir: dir,
        }
    }

    fn quickstart() -> Console {
        Console::start(&repo().join("configs/quickstart-console.yaml"), &[])
    }

    fn get(&self, path: &str) -> (u16, Value) {
        curl("GET", &format!("{}{path}", self.admin), &[], None)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        post(&format!("{}{path}", self.admin), &["content-type: application/json"], body.to_string().as_bytes())
    }

    /// Post generated chunks (16 minutes of traffic, iOS payments slow from
    /// minute 4 to 9) as one request, and a malformed chunk.
    fn feed(&self) {
        let chunks = weir()
            .args(["generate", "--chunks", "200", "--statements", "20", "--slow", "pay@ios=4m..9m"])
            .output()
            .expect("weir generate runs");
        let (status, answer) = post(&self.ingest, &["content-type: application/x-ndjson"], &chunks.stdout);
        assert_eq!(status, 200, "{answer}");
        let (status, _) = post(&self.ingest, &["content-type: application/x-ndjson"], br#"{"app":"shop","logs":17}"#);
        assert_eq!(status, 200);
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request with curl: status and JSON body (or the text as a string).
fn curl(method: &str, url: &str, headers: &[&str], body: Option<&str>) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-X", method, "-w", "\n%{http_code}"]);
    for header in headers {
        cmd.args(["-H", header]);
    }
    if let Some(body) = body {
        cmd.args(["--data-binary", body]);
    }
    let out = cmd.arg(url).output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = code.trim().parse().unwrap_or_else(|_| panic!("curl failed: {text}"));
    (status, serde_json::from_str(body).unwrap_or(Value::String(body.to_string())))
}

fn statement(text: &str) -> Value {
    json!({ "body": { "message": text, "os": "ios", "app_version": "4.2.1" }, "tag": "mobile.statements" })
}

#[test]
fn the_test_endpoint_runs_the_real_extract_plugin_and_refuses_bad_input_with_reasons() {
    let console = Console::quickstart();
    let (status, pipeline) = console.get("/api/v1/pipeline");
    assert_eq!(status, 200, "{pipeline}");
    let names: Vec<&str> =
        pipeline["filters"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["split", "extract", "percentiles", "threshold"]);
    let extract = &pipeline["filters"][1];
    assert!(extract["digest"].as_str().is_some_and(|d| d.len() == 32), "{extract}");
    assert_eq!(extract["limits"]["deadline_ms"], 1000);
    assert_eq!(pipeline["samples"]["key"], json!(["metric", "labels"]));

    // The running rules, on pasted statements.
    let (status, answer) = console.post(
        "/api/v1/filters/extract/test",
        &json!({ "records": [statement("2026-11-22T10:00:00Z txn=pay status=OK resp_ms=231"), statement("nothing here")] }),
    );
    assert_eq!(status, 200, "{answer}");
    let emitted = &answer["results"][0]["emitted"];
    assert_eq!(emitted[0]["body"]["extract"]["value"], 231, "the raw record, enriched");
    assert_eq!(emitted[1]["tag"], "metrics");
    assert_eq!(
        emitted[1]["body"],
        json!({"metric": "response_time_ms", "value": 231, "labels": {"app_version": "4.2.1", "os": "ios", "txn": "pay"}})
    );
    assert_eq!(answer["results"][1]["emitted"].as_array().unwrap().len(), 1, "unmatched: only the raw record");

    // Edited rules, with explain: where each group matched.
    let rules = json!({ "explain": true, "rules": [{ "metric": "rt", "pattern": "resp_ms=(?P<ms>\\d+)", "value": { "group": "ms", "type": "float" } }] });
    let (status, answer) = console.post(
        "/api/v1/filters/extract/test",
        &json!({ "config": rules, "records": [statement("txn=pay resp_ms=231")] }),
    );
    assert_eq!(status, 200, "{answer}");
    let metric = &answer["results"][0]["emitted"][1]["body"];
    assert_eq!(metric["value"], 231.0);
    assert_eq!(
        metric["match"],
        json!({"rule": 0, "source": "message", "start": 8, "end": 19, "groups": {"ms": [16, 19]}})
    );

    // An invalid regex: the plugin's own error, with the key and the position.
    let bad = json!({ "rules": [{ "metric": "rt", "pattern": "resp_ms=(?P<ms>\\d+", "value": { "group": "ms", "type": "integer" } }] });
    let (status, answer) =
        console.post("/api/v1/filters/extract/test", &json!({ "config": bad, "records": [statement("x")] }));
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["kind"], "config");
    assert_eq!(answer["error"]["field"], "rules[0].pattern");
    assert_eq!(answer["error"]["message"], "unclosed group at 8");

    // An unknown filter, a malformed body, too many records, a huge paste.
    let (status, answer) = console.post("/api/v1/filters/nope/test", &json!({ "records": [] }));
    assert_eq!(status, 404);
    assert_eq!(
        answer["error"]["message"],
        "no filter named \"nope\"; the filters are: split, extract, percentiles, threshold"
    );
    let (status, answer) = console.post("/api/v1/filters/extract/test", &json!({ "records": [{ "body": "text" }] }));
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().starts_with("request body: invalid type"), "{answer}");
    let many: Vec<Value> = (0..1001).map(|_| statement("x")).collect();
    let (status, answer) = console.post("/api/v1/filters/extract/test", &json!({ "records": many }));
    assert_eq!(status, 413);
    assert_eq!(answer["error"]["message"], "1001 records; at most 1000 per test");
    let huge = json!({ "records": [statement(&"x".repeat(2 << 20))] });
    let (status, answer) = console.post("/api/v1/filters/extract/test", &huge);
    assert_eq!(status, 413, "{answer}");
    let (status, _) = console.get("/api/v1/filters/nope/samples");
    assert_eq!(status, 404);

    // The page is served from the binary.
    let (status, page) = console.get("/console/");
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("<title>Weir console</title>"));
    assert_eq!(console.get("/console/vendor/uPlot.iife.min.js").0, 200);
    assert_eq!(console.get("/console/nope.js").0, 404);
}

#[test]
fn the_taps_show_samples_windows_window_samples_dead_letters_and_counters_once_traffic_flows() {
    let console = Console::quickstart();
    console.feed();
    let (_, samples) = console.get("/api/v1/filters/extract/samples?limit=5");
    let records = samples["records"].as_array().unwrap();
    assert_eq!(records.len(), 5, "{samples}");
    assert_eq!(records[0]["tag"], "mobile.statements");
    assert!(records[0]["body"]["message"].is_string());

    // Windows of minutes 4..8 have closed for slow iOS payments, and alerts fired.
    let mut kept = Value::Null;
    assert!(wait_for(Duration::from_secs(20), || {
        kept = console.get("/api/v1/records?tags=metrics.window,alerts").1;
        kept["records"].as_array().is_some_and(|r| r.iter().any(|e| e["tag"] == "alerts"))
    }));
    let records = kept["records"].as_array().unwrap();
    let window = records
        .iter()
        .map(|e| &e["body"])
        .find(|b| {
            b["metric"] == "response_time_ms"
                && b["labels"]["txn"] == "pay"
                && b["labels"]["os"] == "ios"
                && b["window_start"] == "2026-11-22T10:05:00Z"
        })
        .expect("a window of slow iOS payments");
    let written =
        || std::fs::read_to_string(console._dir.path("out/windows.ndjson")).unwrap_or_default().lines().count();
    let kept_windows = || {
        let (_, kept) = console.get("/api/v1/records?tags=metrics.window");
        kept["records"].as_array().map_or(0, Vec::len)
    };
    assert!(wait_for(Duration::from_secs(5), || kept_windows() == written()), "every window is kept");
    let statements = kept["tags"].as_array().unwrap().iter().find(|t| t["tag"] == "mobile.statements").unwrap();
    assert!(statements["records"].as_u64().unwrap() < 4000, "busy tags are sampled: {statements}");

    // The statements behind that window.
    let key = json!({ "metric": window["metric"], "labels": window["labels"] }).to_string();
    let query = format!("/api/v1/samples?from=2026-11-22T10:05:00Z&to=2026-11-22T10:06:00Z&key={}", url_encode(&key));
    let (status, answer) = console.get(&query);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["seen"], window["count"], "every record of the window was seen");
    let kept = answer["samples"].as_array().unwrap();
    assert!(!kept.is_empty() && kept.len() <= 5, "{answer}");
    for sample in kept {
        let message = sample["body"]["message"].as_str().unwrap();
        assert!(message.starts_with("2026-11-22T10:05:") && message.contains("txn=pay"), "{message}");
        assert_eq!(sample["body"]["os"], "ios");
        assert_eq!(sample["body"]["app_version"], window["labels"]["app_version"]);
    }
    let (status, answer) = console.get("/api/v1/samples?from=yesterday&to=2026-11-22T10:06:00Z&key=%7B%7D");
    assert_eq!(status, 400);
    assert!(answer["error"]["message"].as_str().unwrap().starts_with("from: \"yesterday\" is not an RFC 3339 time"));

    // The malformed chunk, with its reason.
    let (_, letters) = console.get("/api/v1/dead-letters");
    let letter = &letters["records"][0]["body"];
    assert_eq!(letter["stage"], "filter split");
    assert_eq!(letter["reason"], "field \"logs\": expected an array or a string, found a number");

    // Counters, and the stream.
    let (_, pipeline) = console.get("/api/v1/pipeline");
    assert_eq!(pipeline["inputs"][0]["counters"]["records"], 201);
    assert_eq!(pipeline["filters"][1]["counters"]["in"], 4000);
    let stream = Command::new("curl")
        .args(["-sS", "-N", "--max-time", "2"])
        .arg(format!("{}/api/v1/stream", console.admin))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&stream.stdout);
    assert!(text.contains("event: stats\ndata: {"), "{text}");
}

#[test]
fn a_reload_from_the_console_replaces_a_filter_config_block_or_says_why_not() {
    let console = Console::quickstart();
    let rules = json!({ "rules": [{ "metric": "rt", "pattern": "resp_ms=(?P<ms>\\d+)", "value": { "group": "ms", "type": "integer" } }] });
    let (status, answer) = console.post("/api/v1/reload", &json!({ "filters": { "extract": { "config": rules } } }));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["reloaded"], true);
    assert_eq!(answer["changes"]["filters"]["modified"], json!(["extract"]));
    let (_, pipeline) = console.get("/api/v1/pipeline");
    assert_eq!(pipeline["filters"][1]["config"], rules);

    let bad = json!({ "rules": [{ "metric": "rt", "pattern": "(", "value": { "group": "ms", "type": "integer" } }] });
    let (status, answer) = console.post("/api/v1/reload", &json!({ "filters": { "extract": { "config": bad } } }));
    assert_eq!(status, 422);
    assert_eq!(answer["reloaded"], false);
    assert!(
        answer["error"].as_str().unwrap().contains("config field `rules[0].pattern`: unclosed group at 0"),
        "{answer}"
    );
    let (status, answer) = console.post("/api/v1/reload", &json!({ "filters": { "nope": { "config": {} } } }));
    assert_eq!(status, 422);
    assert!(answer["error"].as_str().unwrap().starts_with("no filter named \"nope\""), "{answer}");

    // A plain reload goes back to the file.
    let (status, answer) = console.post("/api/v1/reload", &json!({}));
    assert_eq!((status, &answer["changes"]["filters"]["modified"]), (200, &json!(["extract"])), "{answer}");
}

#[test]
fn an_admin_token_guards_the_api_and_metrics_but_not_health_or_the_page() {
    let dir = TestDir::new();
    let text = std::fs::read_to_string(repo().join("configs/quickstart-console.yaml")).unwrap();
    let config = dir.write(
        "weir.yaml",
        &text
            .replace("# token: ${WEIR_ADMIN_TOKEN}", "token: ${WEIR_ADMIN_TOKEN}")
            .replace("${WEIR_PLUGIN_DIR:-../target/plugins}", "${WEIR_PLUGIN_DIR}"),
    );
    let console = Console::start(&config, &[("WEIR_ADMIN_TOKEN", "s3cret")]);
    let url = |path: &str| format!("{}{path}", console.admin);
    let (status, answer) = curl("GET", &url("/api/v1/pipeline"), &[], None);
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["message"], "missing or wrong bearer token (admin.token)");
    assert_eq!(curl("GET", &url("/api/v1/pipeline"), &["Authorization: Bearer wrong"], None).0, 401);
    assert_eq!(curl("GET", &url("/api/v1/pipeline"), &["Authorization: Bearer s3cret"], None).0, 200);
    assert_eq!(curl("GET", &url("/metrics"), &[], None).0, 401);
    assert_eq!(curl("POST", &url("/-/reload"), &[], None).0, 401);
    let port: u16 = console.admin.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(http("GET", port, "/health").unwrap().0, 200);
    assert_eq!(http("GET", port, "/console/").unwrap().0, 200);
    assert_eq!(http("GET", port, "/").unwrap().0, 303, "/ leads to the console");
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
