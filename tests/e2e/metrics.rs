//! The metric path of `configs/mobile-metrics.yaml` (split -> extract ->
//! percentiles -> threshold) against an oracle computed here: exact
//! nearest-rank percentiles from the sorted values of each series and
//! window, late events classified from the watermark, and the alert
//! lifecycle from the oracle's own windows. And that a record delivered
//! twice (a client's retry, a replay after a restart) counts once.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Timelike, Utc};
use serde_json::Value;

use crate::http_input::{Running, post};
use crate::util::{TestDir, read_ndjson, repo, sigterm, wait_for, weir};

pub const WINDOW_SECS: i64 = 60;
pub const LATENESS_SECS: i64 = 30;
pub const THRESHOLD: f64 = 800.0;
pub const QUANTILES: [(&str, f64); 5] = [("p50", 0.50), ("p75", 0.75), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99)];

/// xorshift64*, seeded: the same traffic every run.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone)]
pub struct Statement {
    pub time: DateTime<Utc>,
    pub txn: &'static str,
    pub os: &'static str,
    pub ms: u64,
}

/// Ten minutes of traffic, ten statements a second in chunks of ten, with
/// payment latency on iOS shifted above the threshold in minutes 3 to 5;
/// some statements 10 s out of order (within lateness) and a few 5 min late.
pub fn traffic() -> (Vec<Vec<Statement>>, usize) {
    traffic_of(&["pay", "search", "login"])
}

/// [`traffic`] with each statement's transaction drawn from `txns`.
pub fn traffic_of(txns: &[&'static str]) -> (Vec<Vec<Statement>>, usize) {
    let start = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let mut rng = Rng(0x5eed);
    let mut chunks = Vec::new();
    let mut late = 0;
    for second in 0..600i64 {
        let os = if second % 2 == 0 { "ios" } else { "android" };
        let chunk = (0..10)
            .map(|i| {
                let mut time = start + Duration::seconds(second) + Duration::milliseconds(i * 100);
                let txn = txns[rng.below(txns.len() as u64) as usize];
                let slow = txn == "pay" && os == "ios" && (180..360).contains(&second);
                let ms = if slow { 700 + rng.below(800) } else { 50 + rng.below(400) };
                match rng.below(100) {
                    0..=2 => time -= Duration::seconds(10),
                    3 if second > 400 => {
                        time -= Duration::minutes(5);
                        late += 1;
                    }
                    _ => {}
                }
                Statement { time, txn, os, ms }
            })
            .collect();
        chunks.push(chunk);
    }
    (chunks, late)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn chunk_line(os: &str, statements: &[Statement]) -> String {
    let logs: Vec<String> =
        statements.iter().map(|s| format!("{} txn={} status=ok resp_ms={}", rfc3339(s.time), s.txn, s.ms)).collect();
    serde_json::json!({ "app": "shop", "app_version": "4.2.1", "device": { "os": os }, "logs": logs }).to_string()
}

/// (metric window start, txn, os) -> values, and the number of late events,
/// replaying the watermark in arrival order as the plugin must.
pub type Series = BTreeMap<(i64, String, String), Vec<u64>>;

pub fn oracle(chunks: &[Vec<Statement>]) -> (Series, usize) {
    let mut series = Series::new();
    let mut max_seen = i64::MIN;
    let mut late = 0;
    for statement in chunks.iter().flatten() {
        let t = statement.time.timestamp_millis();
        let window_start = t.div_euclid(WINDOW_SECS * 1000) * WINDOW_SECS * 1000;
        let window_end = window_start + WINDOW_SECS * 1000;
        if max_seen != i64::MIN && window_end <= max_seen - LATENESS_SECS * 1000 {
            late += 1;
            continue;
        }
        max_seen = max_seen.max(t);
        series
            .entry((window_start, statement.txn.to_string(), statement.os.to_string()))
            .or_default()
            .push(statement.ms);
    }
    (series, late)
}

/// Nearest rank: the value at 1-based rank ceil(q * n) of the sorted values.
pub fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank - 1]
}

pub fn iso(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).unwrap().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Assert that window record `w` of the window starting at `start` (ms)
/// holds the exact statistics of `values`: count, min, max and mean exactly,
/// quantiles within the histogram's precision of the nearest-rank value.
pub fn check_window(w: &Value, start: i64, values: &[u64]) {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    assert_eq!(w["window_end"], iso(start + WINDOW_SECS * 1000), "{w}");
    assert_eq!(w["count"], sorted.len() as u64, "{w}");
    assert_eq!(w["min"], sorted[0], "{w}");
    assert_eq!(w["max"], *sorted.last().unwrap(), "{w}");
    let mean = sorted.iter().sum::<u64>() as f64 / sorted.len() as f64;
    assert!((w["mean"].as_f64().unwrap() - mean).abs() < 1e-6, "mean {w} vs {mean}");
    for (name, q) in QUANTILES {
        let exact = nearest_rank(&sorted, q) as f64;
        let reported = w[name].as_f64().unwrap();
        // 3 significant digits: within 0.1% of the exact value, at any magnitude.
        assert!((reported - exact).abs() <= exact * 1e-3, "{name}: {reported} vs exact {exact} in {w}");
    }
}

/// `windows` hold every window of the oracle over `chunks`, exactly once,
/// with its exact statistics (`what` names the run in failures).
pub fn assert_oracle(windows: &[Value], chunks: &[Vec<Statement>], what: &str) {
    let (expected, _) = oracle(chunks);
    let mut got: BTreeMap<(String, String, String), &Value> = BTreeMap::new();
    for w in windows.iter().filter(|w| w["metric"] == "response_time_ms") {
        let key = (
            w["window_start"].as_str().unwrap().to_string(),
            w["labels"]["txn"].as_str().unwrap().to_string(),
            w["labels"]["os"].as_str().unwrap().to_string(),
        );
        assert!(got.insert(key.clone(), w).is_none(), "{what}: window {key:?} emitted twice");
        assert_eq!(w["labels"].as_object().unwrap().len(), 2, "{what}: labels are exactly txn and os: {w}");
    }
    assert_eq!(got.len(), expected.len(), "{what}: one window record per series and window");
    for ((start, txn, os), values) in &expected {
        let w = got
            .get(&(iso(*start), txn.clone(), os.clone()))
            .unwrap_or_else(|| panic!("{what}: no window {} {txn} {os}", iso(*start)));
        check_window(w, *start, values);
    }
}

/// Dead letters counted by the stage that made them (`filter split`, ...).
pub fn dead_letter_stages(dead: &[Value]) -> BTreeMap<String, usize> {
    dead.iter().fold(BTreeMap::new(), |mut stages, letter| {
        *stages.entry(letter["stage"].as_str().unwrap().to_string()).or_default() += 1;
        stages
    })
}

/// The PaymentLatencyHigh alerts the oracle's windows imply, as
/// (os, "firing" | "resolved", window end): firing after 2 consecutive
/// windows with p95 above the threshold, resolved at the first window below.
pub fn alert_transitions(expected: &Series) -> Vec<(String, &'static str, String)> {
    let mut by_series: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
    for ((start, txn, os), values) in expected {
        let mut sorted = values.clone();
        sorted.sort_unstable();
        by_series.entry((txn.clone(), os.clone())).or_default().push((*start, nearest_rank(&sorted, 0.95) as f64));
    }
    let mut transitions = Vec::new();
    for ((txn, os), windows) in &by_series {
        if txn != "pay" {
            continue;
        }
        let (mut run, mut firing) = (0, false);
        for &(start, p95) in windows {
            let end = iso(start + WINDOW_SECS * 1000);
            if p95 > THRESHOLD {
                run += 1;
                if run == 2 && !firing {
                    firing = true;
                    transitions.push((os.clone(), "firing", end));
                }
            } else {
                run = 0;
                if firing {
                    firing = false;
                    transitions.push((os.clone(), "resolved", end));
                }
            }
        }
    }
    transitions
}

#[test]
fn windows_and_alerts_match_the_oracle() {
    let (chunks, generated_late) = traffic();
    assert!(generated_late >= 3, "the traffic must contain late events to test them");
    let dir = TestDir::new();
    let mut input: Vec<String> = chunks.iter().map(|c| chunk_line(c[0].os, c)).collect();
    // Malformed chunks the pipeline must dead-letter, not drop or crash on.
    input.insert(100, r#"{"app":"shop","logs":17}"#.to_string());
    input.insert(200, "{not json".to_string());
    dir.write("chunks.ndjson", &(input.join("\n") + "\n"));

    let out = weir()
        .args(["run", "-c"])
        .arg(repo().join("configs/mobile-metrics.yaml"))
        .env("INPUT", dir.path("chunks.ndjson"))
        .env("OUT_DIR", dir.path("out"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let (expected, late) = oracle(&chunks);
    assert!(late >= 3 && expected.len() >= 50, "a meaningful oracle: {late} late, {} windows", expected.len());
    assert_oracle(&read_ndjson(&dir.path("out/windows.ndjson")), &chunks, "one run");

    // Dead letters: exactly the two malformed chunks and the late events.
    let dead = read_ndjson(&dir.path("out/dead-letter.ndjson"));
    let stages = dead_letter_stages(&dead);
    assert_eq!(stages.get("input file"), Some(&1), "{stages:?}");
    assert_eq!(stages.get("filter split"), Some(&1), "{stages:?}");
    assert_eq!(
        stages.get("filter percentiles").copied().unwrap_or(0),
        late,
        "late events are dead-lettered: {stages:?}"
    );
    assert_eq!(dead.len(), 2 + late);

    let expected_alerts = alert_transitions(&expected);
    assert_eq!(expected_alerts.len(), 2, "the traffic fires and resolves exactly one alert: {expected_alerts:?}");
    let alerts = read_ndjson(&dir.path("out/alerts.ndjson"));
    let got_alerts: Vec<(String, &str, String)> = alerts
        .iter()
        .map(|a| {
            assert_eq!(a["labels"]["alertname"], "PaymentLatencyHigh");
            assert_eq!(a["labels"]["severity"], "page");
            assert_eq!(a["labels"]["txn"], "pay");
            let os = a["labels"]["os"].as_str().unwrap().to_string();
            match a.get("endsAt") {
                Some(end) => (os, "resolved", end.as_str().unwrap().to_string()),
                None => (os, "firing", a["startsAt"].as_str().unwrap().to_string()),
            }
        })
        .collect();
    assert_eq!(got_alerts, expected_alerts);
    let summary = alerts[0]["annotations"]["summary"].as_str().unwrap();
    assert!(summary.starts_with("p95 payment latency on ios is ") && summary.contains("(threshold 800)"), "{summary}");
}

/// chunks -> split -> extract (`value` of `name=<number>`) -> percentiles
/// (1m windows, `percentiles` extra config) -> window and dead-letter files.
fn metric_config(percentiles: &str) -> String {
    format!(
        r#"
inputs:
  - {{ type: file, path: in.ndjson, tag: chunks }}
filters:
  - {{ type: split, match: chunks, config: {{ time: {{ regex: '^(?P<time>\S+)' }}, tag: statements }} }}
  - type: extract
    match: statements
    config:
      metric_tag: metrics
      rules:
        - {{ metric: cold_start_s, pattern: 'cold_start=(?P<d>[0-9.]+s)', value: {{ group: d, type: duration, unit: s }} }}
        - {{ metric: value, pattern: ' (?P<name>\w+)=(?P<v>[0-9.e+-]+)$', value: {{ group: v, type: float }}, labels: {{ groups: [name] }} }}
  - {{ type: percentiles, match: metrics, config: {{ window: 1m, tag: windows{percentiles} }} }}
outputs:
  - {{ type: blackhole, name: raw, match: [statements, metrics] }}
  - {{ type: file, name: windows, match: windows, path: windows.ndjson }}
  - {{ type: file, name: dead_letter, match: weir.dead_letter, path: dead.ndjson }}
"#
    )
}

fn iso_secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Nearest rank over floats: the value at 1-based rank ceil(q * n).
fn nearest_rank_of(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank - 1]
}

#[test]
fn quantiles_of_values_from_a_millionth_to_a_billion_keep_three_significant_digits() {
    // Cold starts in seconds, as the case reports them, and values over 15
    // decades, a few hundred per series, 6 significant digits as logged.
    let start = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let mut rng = Rng(0xf1a7);
    let mut logs = Vec::new();
    for (i, cold) in ["0.2", "0.4", "0.6", "0.8", "1.0"].iter().enumerate() {
        logs.push(format!("{} cold_start={cold}s", iso_secs(start + Duration::seconds(i as i64))));
    }
    let mut values: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for i in 0..900 {
        let name = ["tiny", "mixed", "huge"][i % 3];
        let decades = match name {
            "tiny" => -6.0 + (rng.below(6_000) as f64) / 1000.0,
            "huge" => 3.0 + (rng.below(6_000) as f64) / 1000.0,
            _ => -6.0 + (rng.below(15_000) as f64) / 1000.0,
        };
        let text = format!("{:.5e}", 10f64.powf(decades));
        values.entry(name).or_default().push(text.parse().unwrap());
        logs.push(format!("{} {name}={text}", iso_secs(start + Duration::milliseconds(i as i64 * 50))));
    }
    let dir = TestDir::new();
    dir.write("in.ndjson", &(serde_json::json!({"logs": logs}).to_string() + "\n"));
    dir.run_config(&metric_config(", quantiles: [p1, p50, p75, p90, p99, p99.9]"));

    let windows = read_ndjson(&dir.path("windows.ndjson"));
    let cold = windows.iter().find(|w| w["metric"] == "cold_start_s").expect("a cold start window");
    assert_eq!((cold["p50"].as_f64(), cold["p75"].as_f64(), cold["p90"].as_f64()), (Some(0.6), Some(0.8), Some(1.0)));
    for (name, mut sorted) in values {
        sorted.sort_by(f64::total_cmp);
        let w = windows.iter().find(|w| w["labels"]["name"] == name).unwrap_or_else(|| panic!("no window of {name}"));
        assert_eq!(w["count"], sorted.len());
        assert_eq!((w["min"].as_f64().unwrap(), w["max"].as_f64().unwrap()), (sorted[0], sorted[sorted.len() - 1]));
        for (field, q) in [("p1", 0.01), ("p50", 0.5), ("p75", 0.75), ("p90", 0.9), ("p99", 0.99), ("p99_9", 0.999)] {
            let exact = nearest_rank_of(&sorted, q);
            let reported = w[field].as_f64().unwrap();
            assert!((reported - exact).abs() <= exact * 1e-3, "{name} {field}: {reported} vs exact {exact}");
        }
    }
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());
}

#[test]
fn a_device_whose_clock_is_a_day_fast_does_not_make_other_devices_late() {
    // Device A in a minute that ended a minute ago, device B a day ahead,
    // then A again, seconds after its first statements.
    let now = Utc::now();
    let minute = now - Duration::seconds(i64::from(now.second())) - Duration::nanoseconds(i64::from(now.nanosecond()));
    let t0 = minute - Duration::minutes(3);
    let a = |from: i64| -> Vec<String> {
        (0..5).map(|i| format!("{} pay={}", iso_secs(t0 + Duration::seconds(from + 4 * i)), 300 + i)).collect()
    };
    let b = vec![format!("{} pay=999", iso_secs(now + Duration::days(1)))];
    let chunks: Vec<String> =
        [a(0), b, a(25)].iter().map(|logs| serde_json::json!({"logs": logs}).to_string()).collect();
    let dir = TestDir::new();
    dir.write("in.ndjson", &(chunks.join("\n") + "\n"));
    dir.run_config(&metric_config(", allowed_lateness: 30s"));

    let windows = read_ndjson(&dir.path("windows.ndjson"));
    let counts: Vec<(String, u64)> = windows
        .iter()
        .map(|w| (w["window_start"].as_str().unwrap().to_string(), w["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(counts, [(iso_secs(t0), 10)], "all ten of A's values, none of B's");
    let dead = read_ndjson(&dir.path("dead.ndjson"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["stage"], "filter percentiles");
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with(r#"future event for value{name="pay"} at "#), "{reason}");
    assert!(reason.contains("ahead of the host clock") && reason.ends_with("more than max_future 5m"), "{reason}");
}

/// The `filters:` section of `configs/mobile-metrics.yaml`, as shipped
/// (with its `dedupe: true` on `percentiles`).
fn shipped_filters() -> String {
    let text = std::fs::read_to_string(repo().join("configs/mobile-metrics.yaml")).unwrap();
    let start = text.find("\nfilters:").unwrap();
    let end = text.find("\noutputs:").unwrap();
    text[start..end].to_string()
}

/// The response-time windows in `path`, by (start, txn, os); panics on a
/// window emitted twice.
fn windows_in(path: &std::path::Path) -> BTreeMap<(String, String, String), Value> {
    let mut got = BTreeMap::new();
    for w in read_ndjson(path).into_iter().filter(|w| w["metric"] == "response_time_ms") {
        let key = (
            w["window_start"].as_str().unwrap().to_string(),
            w["labels"]["txn"].as_str().unwrap().to_string(),
            w["labels"]["os"].as_str().unwrap().to_string(),
        );
        assert!(!got.contains_key(&key), "window {key:?} emitted twice");
        got.insert(key, w);
    }
    got
}

/// Every window of `expected` whose end the watermark of `arrived` passed.
fn closed_windows(expected: &Series, arrived: &[Vec<Statement>]) -> Series {
    let last_event = arrived.iter().flatten().map(|s| s.time.timestamp_millis()).max().unwrap();
    expected
        .iter()
        .filter(|((start, _, _), _)| start + WINDOW_SECS * 1000 <= last_event - LATENESS_SECS * 1000)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn a_retried_request_counts_once_and_a_repeated_one_with_a_new_key_twice() {
    let (chunks, _) = traffic();
    let dir = TestDir::new();
    let config = format!(
        "inputs: [{{ type: http, address: 127.0.0.1:0, tag: mobile.chunks }}]{}\noutputs:\n  \
         - {{ type: blackhole, match: mobile.statements }}\n  \
         - {{ type: file, name: windows, match: metrics.window, path: windows.ndjson, batch: {{ max_wait: 20ms }} }}\n  \
         - {{ type: blackhole, name: rest, match: [alerts, weir.dead_letter] }}\n",
        shipped_filters()
    );
    let weir = Running::start_with_env(&dir, &config, &[]);
    let url = format!("{}/ingest", weir.url);
    let json = "Content-Type: application/x-ndjson";
    // What the pipeline is given, in order; the oracle counts each once.
    let mut arrived: Vec<Vec<Statement>> = Vec::new();
    for (i, request) in chunks.chunks(10).enumerate() {
        let body: String = request.iter().map(|c| chunk_line(c[0].os, c) + "\n").collect();
        let once = |headers: &[&str]| assert_eq!(post(&url, headers, body.as_bytes()).0, 200, "request {i}");
        match i % 10 {
            // A client retry: the same body again (its first answer lost).
            2 | 5 => {
                once(&[json]);
                once(&[json]);
            }
            // A retry naming its request.
            7 => {
                once(&[json, "Idempotency-Key: req-7"]);
                once(&[json, "Idempotency-Key: \"req-7\""]);
            }
            // The same body sent twice on purpose, as two requests.
            9 => {
                once(&[json, &format!("Idempotency-Key: first-{i}")]);
                once(&[json, &format!("Idempotency-Key: second-{i}")]);
                arrived.extend(request.iter().cloned());
            }
            _ => once(&[json]),
        }
        arrived.extend(request.iter().cloned());
    }
    let (expected, _) = oracle(&arrived);
    let closed = closed_windows(&expected, &arrived);
    assert!(closed.len() >= 50, "{} closed windows", closed.len());
    let out = dir.path("windows.ndjson");
    assert!(wait_for(Duration::seconds(20).to_std().unwrap(), || windows_in(&out).len() >= closed.len()));
    weir.stop();
    let got = windows_in(&out);
    assert_eq!(got.len(), closed.len(), "every closed window, once");
    for ((start, txn, os), values) in &closed {
        let w = got.get(&(iso(*start), txn.clone(), os.clone())).unwrap_or_else(|| panic!("no window {}", iso(*start)));
        check_window(w, *start, values);
    }
}

#[test]
fn a_replay_after_a_restart_counts_once() {
    // As a Kafka consumer replays a partition from its last committed
    // offset: the second run reads the file again from the start, with the
    // first run's filter state (and dedupe set) restored.
    let (chunks, _) = traffic();
    let lines: Vec<String> = chunks.iter().map(|c| chunk_line(c[0].os, c)).collect();
    let half = chunks.len() / 2;
    let dir = TestDir::new();
    dir.write("chunks.ndjson", &(lines[..half].join("\n") + "\n"));
    let config = |follow: bool| {
        format!(
            "state_dir: state\ninputs: [{{ type: file, path: chunks.ndjson, follow: {follow}, poll_interval: 20ms, tag: mobile.chunks }}]{}\noutputs:\n  \
             - {{ type: file, name: raw, match: mobile.statements, path: statements.ndjson, batch: {{ max_wait: 20ms }} }}\n  \
             - {{ type: file, name: windows, match: metrics.window, path: windows.ndjson }}\n  \
             - {{ type: file, name: dead_letter, match: weir.dead_letter, path: dead.ndjson }}\n  \
             - {{ type: blackhole, match: alerts }}\n",
            shipped_filters()
        )
    };
    let file = dir.write("weir.yaml", &config(true));
    let mut first = weir().args(["run", "-c"]).arg(&file).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let first_statements: usize = chunks[..half].iter().map(Vec::len).sum();
    let raw = dir.path("statements.ndjson");
    assert!(wait_for(std::time::Duration::from_secs(30), || read_ndjson(&raw).len() == first_statements));
    sigterm(first.id());
    assert!(first.wait().unwrap().success());
    // `percentiles.seen`, or one per partition (`percentiles.<n>.seen`) on several workers.
    let seen = std::fs::read_dir(dir.path("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("percentiles.") && name.ends_with(".seen"))
        .count();
    assert!(seen > 0, "the dedupe set is saved beside the state");

    // The whole file, its first half replayed; read once, so every window closes.
    dir.write("chunks.ndjson", &(lines.join("\n") + "\n"));
    dir.run_config(&config(false));
    assert_eq!(read_ndjson(&raw).len(), first_statements * 2 + (chunks.len() - half) * 10, "outputs see the replay");
    let (expected, late) = oracle(&chunks);
    let got = windows_in(&dir.path("windows.ndjson"));
    assert_eq!(got.len(), expected.len(), "one window record per series and window, across both runs");
    for ((start, txn, os), values) in &expected {
        let w = got.get(&(iso(*start), txn.clone(), os.clone())).unwrap_or_else(|| panic!("no window {}", iso(*start)));
        check_window(w, *start, values);
    }
    // Replayed statements of windows closed in the first run are repeats,
    // not late: only the traffic's own late events are dead-lettered.
    let stages = dead_letter_stages(&read_ndjson(&dir.path("dead.ndjson")));
    assert_eq!(stages.get("filter percentiles").copied().unwrap_or(0), late, "{stages:?}");
}
