//! Hot reload under load: filters swapped at batch boundaries with their
//! state handed over, nothing lost or duplicated; broken configs, broken
//! plugins and failing handovers refused while the old pipeline runs on.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::metrics::{LATENESS_SECS, Series, WINDOW_SECS, chunk_line, iso, nearest_rank, oracle, traffic};
use crate::util::{Running, TestDir, free_port, http, plugin_dir, read_ndjson, wait_for};

fn tagger_config(admin: u16, plugin: &Path, tag: &str, version: &str, extra: &str) -> String {
    format!(
        "admin: {{ address: 127.0.0.1:{admin} }}
pipeline: {{ batch_max_records: 100 }}
inputs: [{{ type: file, path: in.ndjson, follow: true, poll_interval: 10ms, tag: raw }}]
filters:
  - {{ type: tagger, path: {plugin}, match: raw, config: {{ tag: {tag}, version: {version} {extra} }} }}
outputs:
  - {{ type: file, path: out.ndjson, match: '*', batch: {{ max_wait: 20ms }} }}
",
        plugin = plugin.display()
    )
}

/// Appends `{"n": i}` lines to `path` until stopped; returns how many.
fn writer(path: std::path::PathBuf, stop: Arc<AtomicBool>, written: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new().append(true).create(true).open(path).unwrap();
        let mut n = 0u64;
        while !stop.load(Ordering::Acquire) {
            let lines: String = (n..n + 50).map(|i| format!("{{\"n\":{i}}}\n")).collect();
            file.write_all(lines.as_bytes()).unwrap();
            n += 50;
            written.store(n, Ordering::Release);
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

#[test]
fn twenty_swaps_under_load_lose_nothing_duplicate_nothing_and_keep_state() {
    let dir = TestDir::new();
    dir.write("in.ndjson", "");
    let admin = free_port();
    let plugin = plugin_dir().join("tagger.wasm");
    let weir = Running::start(&dir, &tagger_config(admin, &plugin, "a", "v0", ""), admin);

    let (stop, written) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let load = writer(dir.path("in.ndjson"), stop.clone(), written.clone());
    for k in 1..=20 {
        std::thread::sleep(Duration::from_millis(60));
        let tag = if k % 2 == 0 { "a" } else { "b" };
        dir.write("weir.yaml", &tagger_config(admin, &plugin, tag, &format!("v{k}"), ""));
        let (status, body) = weir.reload();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["changes"]["filters"]["modified"], serde_json::json!(["tagger"]), "{body}");
        assert_eq!(
            body["changes"]["inputs"]["unchanged"],
            serde_json::json!(["file"]),
            "the input keeps running: {body}"
        );
    }
    std::thread::sleep(Duration::from_millis(60));
    stop.store(true, Ordering::Release);
    load.join().unwrap();
    let total = written.load(Ordering::Acquire);
    let out = dir.path("out.ndjson");
    assert!(wait_for(Duration::from_secs(30), || read_ndjson(&out).len() as u64 >= total), "not all records arrived");
    weir.stop();

    let records = read_ndjson(&out);
    let mut by_n: Vec<Option<&Value>> = vec![None; total as usize];
    for r in &records {
        let n = r["n"].as_u64().unwrap() as usize;
        assert!(by_n[n].replace(r).is_none(), "record {n} delivered twice");
    }
    let mut last_version = 0;
    let mut switches = 0;
    for (n, r) in by_n.iter().enumerate() {
        let r = r.unwrap_or_else(|| panic!("record {n} lost"));
        let version: u64 = r["version"].as_str().unwrap()[1..].parse().unwrap();
        assert!(version >= last_version, "record {n} went back from v{last_version} to v{version}");
        if version != last_version {
            switches += 1;
        }
        last_version = version;
        // The count carried by snapshot/restore across all 20 swaps.
        assert_eq!(r["seen"], n as u64 + 1, "record {n}: state was lost or repeated in a handover");
    }
    assert!(switches >= 15, "the swaps happened while records flowed: {switches} switch points");
    assert_eq!(last_version, 20);
}

#[test]
fn a_broken_config_is_refused_whole_and_the_old_pipeline_keeps_running() {
    let dir = TestDir::new();
    dir.write("in.ndjson", "{\"n\":0}\n");
    let admin = free_port();
    let plugin = plugin_dir().join("tagger.wasm");
    let good = tagger_config(admin, &plugin, "a", "v0", "");
    let weir = Running::start(&dir, &good, admin);
    let out = dir.path("out.ndjson");
    assert!(wait_for(Duration::from_secs(10), || read_ndjson(&out).len() == 1));

    dir.write("weir.yaml", &good.replace("batch: {", "bach: {"));
    let (status, body) = weir.reload();
    assert_eq!(status, 422);
    assert_eq!(body["reloaded"], false);
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("weir.yaml:7:") && error.contains("outputs[0].bach: unknown field `bach`"), "{error}");

    dir.write("weir.yaml", &tagger_config(admin, &plugin, "a", "v1", ", bogus: 1"));
    let (status, body) = weir.reload();
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().starts_with("plugin tagger: config"), "{body}");

    dir.write("weir.yaml", &tagger_config(admin, &plugin, "a", "v1", ", trap_on_restore: true"));
    let (status, body) = weir.reload();
    assert_eq!(status, 422);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("plugin tagger: trapped in restore") && error.contains("restore trapped on purpose"),
        "{error}"
    );

    std::fs::OpenOptions::new().append(true).open(dir.path("in.ndjson")).unwrap().write_all(b"{\"n\":1}\n").unwrap();
    assert!(wait_for(Duration::from_secs(10), || read_ndjson(&out).len() == 2));
    let (_, metrics) = http("GET", admin, "/metrics").unwrap();
    assert!(metrics.contains("weir_reloads_total{result=\"refused\"} 3"), "{metrics}");
    weir.stop();
    let records = read_ndjson(&out);
    assert_eq!(records[1]["version"], "v0", "the old version keeps processing");
    assert_eq!(records[1]["seen"], 2);
}

#[test]
fn a_replaced_plugin_file_is_reloaded_and_a_broken_one_refused() {
    let dir = TestDir::new();
    dir.write("in.ndjson", "{\"n\":0}\n");
    let admin = free_port();
    let plugin = dir.path("tagger.wasm");
    std::fs::copy(plugin_dir().join("tagger.wasm"), &plugin).unwrap();
    let weir = Running::start(&dir, &tagger_config(admin, &plugin, "a", "v0", ""), admin);
    let out = dir.path("out.ndjson");
    assert!(wait_for(Duration::from_secs(10), || read_ndjson(&out).len() == 1));
    let refused = || http("GET", admin, "/metrics").unwrap().1.contains("weir_reloads_total{result=\"refused\"} 1");
    let applied = || http("GET", admin, "/metrics").unwrap().1.contains("weir_reloads_total{result=\"applied\"} 1");

    // Broken: the watcher notices, the compile fails, the old instance runs on.
    std::fs::write(&plugin, b"\0asm garbage").unwrap();
    assert!(wait_for(Duration::from_secs(10), refused), "a broken plugin file is refused");
    std::fs::OpenOptions::new().append(true).open(dir.path("in.ndjson")).unwrap().write_all(b"{\"n\":1}\n").unwrap();
    assert!(wait_for(Duration::from_secs(10), || read_ndjson(&out).len() == 2));

    // Another plugin in its place (its config does not fit): refused too.
    std::fs::copy(plugin_dir().join("misbehave.wasm"), &plugin).unwrap();
    assert!(wait_for(Duration::from_secs(10), || http("GET", admin, "/metrics")
        .unwrap()
        .1
        .contains("weir_reloads_total{result=\"refused\"} 2")));

    // The real plugin back: a new instance, with the count handed over.
    std::fs::copy(plugin_dir().join("tagger.wasm"), &plugin).unwrap();
    assert!(wait_for(Duration::from_secs(10), applied), "a fixed plugin file is reloaded");
    std::fs::OpenOptions::new().append(true).open(dir.path("in.ndjson")).unwrap().write_all(b"{\"n\":2}\n").unwrap();
    assert!(wait_for(Duration::from_secs(10), || read_ndjson(&out).len() == 3));
    weir.stop();
    let seen: Vec<u64> = read_ndjson(&out).iter().map(|r| r["seen"].as_u64().unwrap()).collect();
    assert_eq!(seen, [1, 2, 3]);
}

/// Windows open across reloads of `extract` and `percentiles` still equal
/// the oracle: the percentiles state is handed over, and no sample is lost
/// or counted twice.
#[test]
fn windows_spanning_reloads_of_extract_and_percentiles_equal_the_oracle() {
    windows_spanning_reloads("");
}

/// The same on eight workers: every reload waits until no batch is between
/// filters, and each of the eight partitions hands its series over.
#[test]
fn windows_spanning_reloads_on_eight_workers_equal_the_oracle() {
    windows_spanning_reloads("pipeline: { workers: 8, batch_max_records: 20 }\n");
}

fn windows_spanning_reloads(pipeline: &str) {
    let (chunks, _) = traffic();
    let dir = TestDir::new();
    let admin = free_port();
    let base = std::fs::read_to_string(crate::util::repo().join("configs/mobile-metrics.yaml"))
        .unwrap()
        .replace(
            "${INPUT:-sample/mobile-chunks.ndjson}\", tag: mobile.chunks }",
            "in.ndjson\", tag: mobile.chunks, follow: true, poll_interval: 10ms }",
        )
        .replace("${OUT_DIR:-out}", "out")
        .replace("${WEIR_PLUGIN_DIR:-../target/plugins}", &plugin_dir().display().to_string());
    let config = format!("{pipeline}admin: {{ address: 127.0.0.1:{admin} }}\n{base}");
    assert!(config.contains("follow: true"), "the shipped config changed shape; update this test");
    dir.write("in.ndjson", "");
    let weir = Running::start(&dir, &config, admin);

    let lines: Vec<String> = chunks.iter().map(|c| chunk_line(c[0].os, c)).collect();
    let thirds = lines.len() / 3;
    let mut input = std::fs::OpenOptions::new().append(true).open(dir.path("in.ndjson")).unwrap();
    let modified = [
        // A new extract rule that never matches: extract is rebuilt.
        config.replace("        - metric: cold_start_ms", "        - metric: never\n          pattern: 'x{1000}'\n          value: { group: v, type: integer }\n        - metric: cold_start_ms").replace("'x{1000}'", "'(?P<v>x{1000})'"),
        // A different series cap: percentiles is rebuilt, its windows handed over.
        config.replace("allowed_lateness: 30s", "allowed_lateness: 30s\n      max_series: 20000"),
    ];
    for (part, next) in lines.chunks(thirds).zip(modified.iter().map(Some).chain([None, None])) {
        input.write_all((part.join("\n") + "\n").as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        if let Some(next) = next {
            dir.write("weir.yaml", next);
            let (status, body) = weir.reload();
            assert_eq!(status, 200, "{body}");
        }
    }
    // Windows close when the watermark passes them: compare every window
    // that ends before the last event minus the lateness.
    let (expected, _) = oracle(&chunks);
    let last_event = chunks.iter().flatten().map(|s| s.time.timestamp_millis()).max().unwrap();
    let closed: Series = expected
        .into_iter()
        .filter(|((start, _, _), _)| start + WINDOW_SECS * 1000 <= last_event - LATENESS_SECS * 1000)
        .collect();
    let out = dir.path("out/windows.ndjson");
    let response_windows = || read_ndjson(&out).into_iter().filter(|w| w["metric"] == "response_time_ms").count();
    assert!(
        wait_for(Duration::from_secs(30), || response_windows() >= closed.len()),
        "{} < {}",
        response_windows(),
        closed.len()
    );
    weir.stop();
    let windows: Vec<Value> = read_ndjson(&out).into_iter().filter(|w| w["metric"] == "response_time_ms").collect();
    assert_eq!(windows.len(), closed.len());
    for ((start, txn, os), values) in &closed {
        let w = windows
            .iter()
            .find(|w| w["window_start"] == iso(*start) && w["labels"]["txn"] == *txn && w["labels"]["os"] == *os)
            .unwrap_or_else(|| panic!("no window {} {txn} {os}", iso(*start)));
        let mut sorted = values.clone();
        sorted.sort_unstable();
        assert_eq!(w["count"], sorted.len() as u64, "{w}");
        assert_eq!(w["min"], sorted[0]);
        assert_eq!(w["max"], *sorted.last().unwrap());
        let p95 = nearest_rank(&sorted, 0.95) as f64;
        assert!((w["p95"].as_f64().unwrap() - p95).abs() <= p95 * 1e-3 + 1.0, "{w} vs {p95}");
    }
}

/// One HTTP/1.1 request on an open keep-alive connection; the status.
fn post_on(stream: &mut std::net::TcpStream, body: &str) -> u16 {
    use std::io::{BufRead, BufReader, Read};
    write!(
        stream,
        "POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header == "\r\n" {
            break;
        }
        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut rest = vec![0; length];
    reader.read_exact(&mut rest).unwrap();
    status_line.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_filter_only_reload_keeps_http_connections_open() {
    let dir = TestDir::new();
    let (admin, port) = (free_port(), free_port());
    let plugin = plugin_dir().join("tagger.wasm");
    let config = |version: &str| {
        format!(
            "admin: {{ address: 127.0.0.1:{admin} }}
inputs: [{{ type: http, address: 127.0.0.1:{port}, tag: raw }}]
filters:
  - {{ type: tagger, path: {plugin}, match: raw, config: {{ tag: t, version: {version} }} }}
outputs: [{{ type: file, path: out.ndjson, match: '*', batch: {{ max_wait: 10ms }} }}]
",
            plugin = plugin.display()
        )
    };
    let weir = Running::start(&dir, &config("v0"), admin);
    let mut connection = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    connection.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(post_on(&mut connection, "{\"n\":0}\n"), 200);

    dir.write("weir.yaml", &config("v1"));
    let (status, body) = weir.reload();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changes"]["inputs"]["unchanged"], serde_json::json!(["http"]), "{body}");

    // The same TCP connection still works: the listener was not restarted.
    assert_eq!(post_on(&mut connection, "{\"n\":1}\n"), 200);
    weir.stop();
    let versions: Vec<Value> = read_ndjson(&dir.path("out.ndjson")).iter().map(|r| r["version"].clone()).collect();
    assert_eq!(versions, [serde_json::json!("v0"), serde_json::json!("v1")]);
}

/// An input with a durable buffer, modified by a reload, gets its log back
/// (one folder, one log per process): it keeps answering, and what it
/// accepted before and after the reload arrives, once each.
#[test]
fn a_reloaded_input_keeps_its_durable_buffer() {
    let dir = TestDir::new();
    let (admin, port) = (free_port(), free_port());
    let config = |max_body: &str| {
        format!(
            "admin: {{ address: 127.0.0.1:{admin} }}
inputs: [{{ type: http, address: 127.0.0.1:{port}, tag: raw, ack: accepted, max_body_bytes: {max_body}, buffer: {{ dir: buffer }} }}]
outputs: [{{ type: file, path: out.ndjson, match: '*', batch: {{ max_wait: 10ms }} }}]
"
        )
    };
    let weir = Running::start(&dir, &config("5MiB"), admin);
    let post = |n: u32| {
        let mut connection = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        connection.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        post_on(&mut connection, &format!("{{\"n\":{n}}}\n"))
    };
    assert_eq!(post(0), 200);
    dir.write("weir.yaml", &config("6MiB"));
    let (status, body) = weir.reload();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changes"]["inputs"]["modified"], serde_json::json!(["http"]), "{body}");
    let mut last = None;
    let answered = wait_for(Duration::from_secs(10), || {
        last = std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|mut c| post_on(&mut c, "{\"n\":1}\n"));
        last == Some(200)
    });
    assert!(answered, "the reloaded input answers: {last:?}");
    let out = dir.path("out.ndjson");
    assert!(wait_for(Duration::from_secs(10), || read_ndjson(&out).len() >= 2));
    weir.stop();
    let ns: Vec<Value> = read_ndjson(&out).iter().map(|r| r["n"].clone()).collect();
    assert_eq!(ns, [serde_json::json!(0), serde_json::json!(1)], "each once, in order");
}
