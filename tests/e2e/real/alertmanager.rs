//! The `alertmanager` output against a real Alertmanager 0.25
//! (`tests/servers/alertmanager.sh`), driven by the real chain: window
//! records -> `threshold` -> alertmanager. Also in-test fake peers (HA pair,
//! resend timing), a closed port (bounded retries, dead letters, no stall),
//! and label validation at load and at runtime.
//!
//! Alertmanager keeps alerts between runs, so every test labels its alerts
//! with a unique `run` and queries by it. The webhook receiver
//! (127.0.0.1:19095, the script's default) is one listener shared by the
//! tests, on its own thread.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::alertmanager_url;
use crate::util::{TestDir, read_ndjson, run, wait_for, weir};

/// Where the Alertmanager started by the script posts notifications.
const WEBHOOK_ADDRESS: &str = "127.0.0.1:19095";

/// A label value no other run shares.
fn unique_run(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{test}_{}_{nanos}", std::process::id())
}

/// RFC 3339 for `now + offset_secs`, whole seconds.
fn at(offset_secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(offset_secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A `percentiles`-shaped window record of `latency_ms` for series `run`.
fn window(run: &str, start: &str, end: &str, p95: f64) -> String {
    json!({
        "window_start": start, "window_end": end, "metric": "latency_ms",
        "labels": { "run": run, "os": "ios" },
        "count": 100, "min": 1.0, "max": p95, "mean": p95 / 2.0, "p50": p95 / 2.0, "p95": p95,
    })
    .to_string()
}

/// A config: followed window file -> threshold (fires on p95 > 800 in one
/// window) -> `output` (YAML of one output, matching `alerts`), dead
/// letters to a file.
fn chain_config(dir: &TestDir, follow: bool, outputs: &str) -> String {
    format!(
        r#"
inputs:
  - {{ type: file, path: windows.ndjson, tag: metrics.window, follow: {follow}, poll_interval: 50ms }}
filters:
  - type: threshold
    match: metrics.window
    config:
      tag: alerts
      rules:
        - name: WeirE2eLatencyHigh
          metric: latency_ms
          stat: p95
          op: ">"
          value: 800
          labels: {{ severity: page }}
          annotations: {{ summary: "p95 on {{{{labels.os}}}} is {{{{value}}}}" }}
outputs:
{outputs}
  - {{ type: blackhole, name: windows, match: metrics.window }}
  - {{ type: file, name: dead_letter, match: weir.dead_letter, path: {dead} }}
"#,
        dead = dir.path("dead.ndjson").display()
    )
}

/// Append lines to a file (the followed input).
fn append(path: &std::path::Path, lines: &[String]) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

/// A running `weir run`, stopped with SIGTERM (drain) when dropped.
struct Running(Child);

impl Running {
    fn start(dir: &TestDir, config: &str) -> Self {
        let file = dir.write("weir.yaml", config);
        Running(weir().args(["run", "-c"]).arg(file).stdin(Stdio::null()).spawn().expect("weir starts"))
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let status = terminate(&mut self.0);
        std::mem::forget(self);
        status
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    child.wait().unwrap()
}

impl Drop for Running {
    fn drop(&mut self) {
        terminate(&mut self.0);
    }
}

/// The alerts Alertmanager shows for `run`.
fn am_alerts(run: &str) -> Vec<Value> {
    am_alerts_labelled("run", run)
}

/// The alerts Alertmanager shows with `label` = `value` (active ones:
/// resolved alerts leave `GET /api/v2/alerts` in 0.25).
pub(super) fn am_alerts_labelled(label: &str, value: &str) -> Vec<Value> {
    let url = format!("{}/api/v2/alerts", alertmanager_url());
    let response = blocking_get(&url, &[("filter", format!("{label}=\"{value}\""))]);
    match response {
        Value::Array(alerts) => alerts,
        other => panic!("GET {url}: expected an array, got {other}"),
    }
}

fn blocking_get(url: &str, query: &[(&str, String)]) -> Value {
    let (url, query) = (url.to_string(), query.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Vec<_>>());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let response = reqwest::Client::new().get(&url).query(&query).send().await.unwrap_or_else(|e| {
                panic!("GET {url}: {e} (is Alertmanager running? bash tests/servers/alertmanager.sh start)")
            });
            assert!(response.status().is_success(), "GET {url}: {}", response.status());
            response.json::<Value>().await.unwrap()
        })
    })
    .join()
    .unwrap()
}

/// Posts an in-test HTTP server received: (when, JSON body).
pub(super) type Posts = Arc<Mutex<Vec<(Instant, Value)>>>;

async fn record(State(posts): State<Posts>, Json(body): Json<Value>) -> &'static str {
    posts.lock().unwrap().push((Instant::now(), body));
    "ok"
}

/// Serve `path` on `address` on a thread of its own, recording JSON posts.
fn serve(address: &str, path: &'static str) -> (String, Posts) {
    let listener = TcpListener::bind(address).unwrap_or_else(|e| panic!("binding {address}: {e}"));
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let posts: Posts = Arc::default();
    let state = posts.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().route(path, post(record)).with_state(state);
            axum::serve(listener, app).await.unwrap();
        });
    });
    (base, posts)
}

/// A fake Alertmanager peer on a free port: its base URL and the alerts
/// posted to it, one entry per POST.
fn fake_alertmanager() -> (String, Posts) {
    serve("127.0.0.1:0", "/api/v2/alerts")
}

/// The shared webhook receiver: every notification Alertmanager sent.
pub(super) fn webhook() -> Posts {
    static POSTS: OnceLock<Posts> = OnceLock::new();
    POSTS.get_or_init(|| serve(WEBHOOK_ADDRESS, "/webhook").1).clone()
}

/// The `status` of each alert of `run` in notifications, in order.
fn notified(posts: &Posts, run: &str) -> Vec<String> {
    notified_labelled(posts, "run", run)
}

/// The `status` of each alert with `label` = `value` in notifications, in order.
pub(super) fn notified_labelled(posts: &Posts, label: &str, value: &str) -> Vec<String> {
    let posts = posts.lock().unwrap();
    posts
        .iter()
        .flat_map(|(_, body)| body["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"][label] == value)
        .map(|a| a["status"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The alerts of `run` in each POST a fake peer received.
fn posted(posts: &Posts, run: &str) -> Vec<(Instant, Value)> {
    let posts = posts.lock().unwrap();
    posts
        .iter()
        .flat_map(|(t, body)| body.as_array().cloned().unwrap_or_default().into_iter().map(move |a| (*t, a)))
        .filter(|(_, a)| a["labels"]["run"] == run)
        .collect()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn alert_fires_and_resolves_in_alertmanager_and_reaches_the_webhook() {
    let hook = webhook();
    let run = unique_run("lifecycle");
    let dir = TestDir::new();
    dir.write("windows.ndjson", "");
    let output = format!(
        r#"  - type: alertmanager
    match: alerts
    urls: ["{}"]
    resend_interval: 1s
    labels: {{ source: weir_e2e, severity: ticket }}
    generator_url: "http://grafana.test/d/latency?os={{labels.os}}&run={{labels.run}}""#,
        alertmanager_url()
    );
    let weir = Running::start(&dir, &chain_config(&dir, true, &output));
    append(&dir.path("windows.ndjson"), &[window(&run, &at(-120), &at(-60), 912.0)]);

    assert!(wait_for(Duration::from_secs(10), || !am_alerts(&run).is_empty()), "the alert never reached alertmanager");
    let alerts = am_alerts(&run);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    assert_eq!(alert["labels"]["alertname"], "WeirE2eLatencyHigh");
    assert_eq!(alert["labels"]["metric"], "latency_ms");
    assert_eq!(alert["labels"]["os"], "ios");
    assert_eq!(alert["labels"]["severity"], "page", "the alert's own label wins over the static one");
    assert_eq!(alert["labels"]["source"], "weir_e2e", "static labels are added");
    assert_eq!(alert["annotations"]["summary"], "p95 on ios is 912");
    assert_eq!(alert["generatorURL"], format!("http://grafana.test/d/latency?os=ios&run={run}"));
    // Sent with a lease of 4 resend intervals, not the 5m resolve_timeout.
    let ends = chrono::DateTime::parse_from_rfc3339(alert["endsAt"].as_str().unwrap()).unwrap();
    assert!(ends.with_timezone(&Utc) < Utc::now() + chrono::Duration::seconds(10), "endsAt is a short lease: {alert}");
    assert!(
        wait_for(Duration::from_secs(10), || notified(&hook, &run).contains(&"firing".to_string())),
        "no firing webhook"
    );

    append(&dir.path("windows.ndjson"), &[window(&run, &at(-60), &at(0), 120.0)]);
    assert!(
        wait_for(Duration::from_secs(10), || am_alerts(&run).is_empty()),
        "the alert never resolved: {:?}",
        am_alerts(&run)
    );
    assert!(
        wait_for(Duration::from_secs(10), || notified(&hook, &run).last().map(String::as_str) == Some("resolved")),
        "no resolved webhook after the firing one: {:?}",
        notified(&hook, &run)
    );
    assert_eq!(notified(&hook, &run).first().map(String::as_str), Some("firing"));
    assert!(weir.stop().success());
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn active_alert_is_re_sent_every_interval_to_every_peer_of_an_ha_pair() {
    let (fake, posts) = fake_alertmanager();
    let run = unique_run("resend");
    let dir = TestDir::new();
    dir.write("windows.ndjson", "");
    let output = format!(
        "  - {{ type: alertmanager, match: alerts, urls: [\"{}\", \"{fake}\"], resend_interval: 200ms }}",
        alertmanager_url()
    );
    let weir = Running::start(&dir, &chain_config(&dir, true, &output));
    append(&dir.path("windows.ndjson"), &[window(&run, &at(-120), &at(-60), 950.0)]);
    assert!(wait_for(Duration::from_secs(10), || !posted(&posts, &run).is_empty()), "the fake peer got nothing");
    assert!(wait_for(Duration::from_secs(10), || am_alerts(&run).len() == 1), "the real peer got nothing");
    std::thread::sleep(Duration::from_millis(1200));

    let sends = posted(&posts, &run);
    assert!((5..=9).contains(&sends.len()), "about one post per 200ms over ~1.2s, got {}", sends.len());
    for pair in sends.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= Duration::from_millis(150) && gap <= Duration::from_millis(450), "resend gap {gap:?}");
    }
    for (_, alert) in &sends {
        assert!(alert.get("endsAt").is_some(), "every firing post carries a lease: {alert}");
        assert_eq!(alert["labels"]["alertname"], "WeirE2eLatencyHigh");
    }
    // The lease keeps the real Alertmanager's alert active about 800ms ahead.
    let ends = chrono::DateTime::parse_from_rfc3339(am_alerts(&run)[0]["endsAt"].as_str().unwrap()).unwrap();
    let ahead = ends.with_timezone(&Utc) - Utc::now();
    assert!(ahead > chrono::Duration::zero() && ahead <= chrono::Duration::seconds(2), "lease {ahead:?}");

    let resolved_at = at(0);
    append(&dir.path("windows.ndjson"), &[window(&run, &at(-60), &resolved_at, 100.0)]);
    assert!(wait_for(Duration::from_secs(10), || am_alerts(&run).is_empty()), "the real peer never saw the resolve");
    assert!(
        wait_for(Duration::from_secs(5), || posted(&posts, &run)
            .last()
            .is_some_and(|(_, a)| a["endsAt"] == resolved_at.as_str())),
        "the fake peer got the resolve with the window's end as endsAt"
    );
    let after_resolve = posted(&posts, &run).len();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(posted(&posts, &run).len(), after_resolve, "no resend after the resolve");
    assert!(weir.stop().success());
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn down_alertmanager_dead_letters_after_bounded_retries_without_stalling_the_pipeline() {
    let (fake, posts) = fake_alertmanager();
    let run = unique_run("down");
    let dir = TestDir::new();
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let windows = [window(&run, &at(-180), &at(-120), 900.0), window(&run, &at(-120), &at(-60), 100.0)];
    dir.write("windows.ndjson", &(windows.join("\n") + "\n"));
    let logs: Vec<String> = (0..500).map(|i| json!({ "message": format!("line {i}") }).to_string()).collect();
    dir.write("logs.ndjson", &(logs.join("\n") + "\n"));
    let outputs = format!(
        r#"  - {{ type: alertmanager, name: down, match: alerts, urls: ["{closed}"], max_attempts: 3 }}
  - {{ type: alertmanager, name: half_down, match: alerts, urls: ["{closed}", "{fake}"], max_attempts: 2 }}
  - {{ type: file, name: logs, match: logs, path: {} }}"#,
        dir.path("logs-out.ndjson").display()
    );
    let config = chain_config(&dir, true, &outputs).replacen(
        "inputs:\n",
        &format!(
            "inputs:\n  - {{ type: file, name: logs, path: {}, tag: logs, follow: true }}\n",
            dir.path("logs.ndjson").display()
        ),
        1,
    );
    // Followed inputs and a wait before stopping: at the end of input, an
    // output's late dead letters can miss a dead-letter output that has
    // already shut down (a pipeline shutdown-order limit, not this output's).
    let weir = Running::start(&dir, &config);
    let dead_down = || read_ndjson(&dir.path("dead.ndjson")).iter().filter(|d| d["stage"] == "output down").count();
    let started = Instant::now();
    assert!(
        wait_for(Duration::from_secs(15), || dead_down() == 2),
        "bounded retries end in dead letters: {:?}",
        read_ndjson(&dir.path("dead.ndjson"))
    );
    assert!(started.elapsed() < Duration::from_secs(10), "bounded retries: took {:?}", started.elapsed());
    assert!(wait_for(Duration::from_secs(10), || read_ndjson(&dir.path("logs-out.ndjson")).len() == 500));
    assert!(wait_for(Duration::from_secs(5), || posted(&posts, &run).len() >= 2));
    assert!(weir.stop().success());

    assert_eq!(read_ndjson(&dir.path("logs-out.ndjson")).len(), 500, "other outputs keep flowing");
    let dead = read_ndjson(&dir.path("dead.ndjson"));
    let down: Vec<&Value> = dead.iter().filter(|d| d["stage"] == "output down").collect();
    assert_eq!(down.len(), 2, "the firing and the resolved alert: {dead:?}");
    for letter in &down {
        let reason = letter["reason"].as_str().unwrap();
        assert!(reason.starts_with("no alertmanager accepted the alerts (3 attempts): "), "{reason}");
        assert!(reason.contains(&closed), "the reason names the url: {reason}");
        assert_eq!(letter["record"]["labels"]["run"], run.as_str());
    }
    assert!(!dead.iter().any(|d| d["stage"] == "output half_down"), "one peer of two accepting is delivery: {dead:?}");
    let statuses: Vec<bool> = posted(&posts, &run).iter().map(|(_, a)| a["endsAt"].is_string()).collect();
    assert!(statuses.len() >= 2, "the live peer got the firing and the resolved alert: {statuses:?}");
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn invalid_label_in_a_record_is_dead_lettered_and_the_rest_is_sent() {
    let run = unique_run("labels");
    let dir = TestDir::new();
    let records = [
        json!({ "labels": { "alertname": "WeirE2eValid", "run": run }, "annotations": { "summary": "ok" }, "startsAt": at(-10) }),
        json!({ "labels": { "alertname": "WeirE2eBad", "run": run, "os-version": "17" }, "startsAt": at(-10) }),
        json!({ "labels": { "run": run, "severity": "page" } }),
        json!({ "labels": { "alertname": "WeirE2eBad", "run": run, "code": 500 } }),
    ];
    let lines: Vec<String> = records.iter().map(Value::to_string).collect();
    dir.write("alerts.ndjson", &(lines.join("\n") + "\n"));
    let config = format!(
        r#"
inputs:
  - {{ type: file, path: alerts.ndjson, tag: alerts, follow: true, poll_interval: 50ms }}
outputs:
  - {{ type: alertmanager, name: am, match: alerts, urls: ["{}"] }}
  - {{ type: file, name: dead_letter, match: weir.dead_letter, path: dead.ndjson }}
"#,
        alertmanager_url()
    );
    let weir = Running::start(&dir, &config);
    assert!(wait_for(Duration::from_secs(10), || read_ndjson(&dir.path("dead.ndjson")).len() == 3));
    assert!(wait_for(Duration::from_secs(10), || !am_alerts(&run).is_empty()));
    assert!(weir.stop().success());
    let reasons: Vec<String> = read_ndjson(&dir.path("dead.ndjson"))
        .iter()
        .map(|d| format!("{}: {}", d["stage"].as_str().unwrap(), d["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            r#"output am: labels: invalid label name "os-version": must match [a-zA-Z_][a-zA-Z0-9_]*"#,
            "output am: alert record has no `labels.alertname`; alertmanager needs one to route and show it",
            "output am: labels.code: expected a string value, got 500",
        ]
    );
    let alerts = am_alerts(&run);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["labels"]["alertname"], "WeirE2eValid");
}

#[test]
#[ignore = "needs the real servers: just test-full"]
fn invalid_static_label_name_fails_validate_naming_the_key() {
    let dir = TestDir::new();
    let file = dir.write(
        "weir.yaml",
        "inputs: [{ type: stdin }]\noutputs:\n  - type: alertmanager\n    match: alerts\n    urls: [http://127.0.0.1:19094]\n    labels: { team: mobile, on-call: yes }\n",
    );
    let out = run(&["validate", "-c", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(r#"outputs[0].labels: invalid label name "on-call": must match [a-zA-Z_][a-zA-Z0-9_]*"#),
        "{stderr}"
    );
}
