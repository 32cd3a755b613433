//! Local inputs and outputs: files read once and followed, stdin, NDJSON
//! files out, dead letters with reasons, routing and clean shutdown.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::util::{TestDir, ndjson, read_ndjson, sigterm, wait_for, weir};

const SPLIT_TO_FILES: &str = "
inputs:
  - { type: file, path: in.ndjson, tag: chunks }
filters:
  - { type: split, match: chunks, config: { context: [app] } }
outputs:
  - { type: file, path: out.ndjson, match: chunks }
  - { type: file, name: dead_letter, path: dead.ndjson, match: weir.dead_letter }
";

#[test]
fn every_input_line_is_delivered_or_dead_lettered_with_its_reason() {
    let dir = TestDir::new();
    dir.write(
        "in.ndjson",
        concat!(
            "{\"app\":\"a\",\"logs\":[\"s1\",\"s2\"]}\n",
            "{\"app\":\"a\",\"logs\":[\"s3\"]\n",
            "\n",
            "{\"app\":\"b\",\"logs\":5}\n",
            "[1,2]\n",
            "{\"app\":\"b\",\"logs\":[\"s4\",\"s5\",\"s6\"]}",
        ),
    );
    dir.run_config(SPLIT_TO_FILES);
    let out = read_ndjson(&dir.path("out.ndjson"));
    let messages: Vec<&str> = out.iter().map(|r| r["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["s1", "s2", "s4", "s5", "s6"], "the last line has no newline and still counts");
    assert_eq!(out[4]["app"], "b");

    let dead = read_ndjson(&dir.path("dead.ndjson"));
    let reasons: Vec<(&str, &str)> =
        dead.iter().map(|d| (d["stage"].as_str().unwrap(), d["reason"].as_str().unwrap())).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0].0, "input file");
    assert!(reasons[0].1.starts_with("line 2: invalid JSON"), "{reasons:?}");
    assert!(reasons[1].1.starts_with("line 5: expected a JSON object"), "{reasons:?}");
    assert_eq!(dead[1]["record"], serde_json::json!([1, 2]), "valid JSON is kept as JSON");
    assert_eq!(reasons[2].0, "filter split");
    assert!(reasons[2].1.contains("logs"), "{reasons:?}");
    assert_eq!(dead[2]["record"]["logs"], 5, "the original chunk is kept");
    assert!(dead[2]["origin"].as_str().unwrap().ends_with("in.ndjson@4"), "{}", dead[2]["origin"]);
}

#[test]
fn records_no_output_matches_are_dead_lettered() {
    let dir = TestDir::new();
    dir.write("in.ndjson", "{\"n\":1}\n");
    dir.run_config(
        "inputs: [{ type: file, path: in.ndjson, tag: lonely }]\noutputs: [{ type: file, name: dead_letter, path: dead.ndjson, match: weir.dead_letter }]\n",
    );
    let dead = read_ndjson(&dir.path("dead.ndjson"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["reason"], "no output matches tag \"lonely\"");
    assert_eq!(dead[0]["record"]["n"], 1);
}

#[test]
fn stdin_lines_become_records_until_eof() {
    let dir = TestDir::new();
    let config = dir.write(
        "weir.yaml",
        "inputs: [{ type: stdin, format: lines, message_key: log }]\noutputs: [{ type: stdout, match: stdin, encoding: envelope }]\n",
    );
    let out = run_with_stdin(&config, b"hello \"world\"\r\nsecond\n", "warn");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records = ndjson(&out.stdout);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["body"]["log"], "hello \"world\"");
    assert_eq!(records[0]["tag"], "stdin");
    assert!(records[0]["time"].as_str().unwrap().ends_with('Z'));
}

/// Run `weir run -c config` to its end with `input` on stdin, logging at `log`.
fn run_with_stdin(config: &std::path::Path, input: &[u8], log: &str) -> std::process::Output {
    let mut child = weir()
        .args(["run", "-c"])
        .arg(config)
        .env("RUST_LOG", log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Start `weir run` on `config` (written to weir.yaml), with no stdin.
fn spawn(dir: &TestDir, config: &str) -> std::process::Child {
    let config = dir.write("weir.yaml", config);
    weir().args(["run", "-c"]).arg(&config).stdin(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn a_followed_file_is_read_as_it_grows_and_across_rotation() {
    let dir = TestDir::new();
    let log = dir.write("app.log", "first\n");
    let mut child = spawn(
        &dir,
        "inputs: [{ type: file, path: app.log, follow: true, poll_interval: 20ms, format: lines }]\noutputs: [{ type: file, path: out.ndjson, match: '*', batch: { max_wait: 10ms } }]\n",
    );
    let out = dir.path("out.ndjson");
    let messages = || read_ndjson(&out).iter().map(|r| r["message"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert!(wait_for(Duration::from_secs(10), || messages().len() == 1), "{:?}", messages());

    // Grows, including a line written in two parts.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(b"second\nthi").unwrap();
    file.flush().unwrap();
    assert!(wait_for(Duration::from_secs(10), || messages().len() == 2), "{:?}", messages());
    file.write_all(b"rd\n").unwrap();
    assert!(wait_for(Duration::from_secs(10), || messages().len() == 3), "{:?}", messages());

    // Rotated: renamed away, a new file at the same path.
    std::fs::rename(&log, dir.path("app.log.1")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(&log, "after rotation\n").unwrap();
    assert!(wait_for(Duration::from_secs(10), || messages().len() == 4), "{:?}", messages());

    sigterm(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "weir exits cleanly on SIGTERM");
    assert_eq!(messages(), ["first", "second", "third", "after rotation"]);
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

#[test]
fn a_byte_order_mark_starting_a_file_or_stdin_is_ignored_also_after_rotation() {
    let dir = TestDir::new();
    let log = dir.path("app.ndjson");
    // The mark arrives in two writes, split inside itself.
    std::fs::write(&log, &BOM[..2]).unwrap();
    let mut child = spawn(
        &dir,
        "inputs: [{ type: file, path: app.ndjson, follow: true, poll_interval: 20ms }]\noutputs:\n  - { type: file, path: out.ndjson, match: file, batch: { max_wait: 10ms } }\n  - { type: file, name: dead_letter, path: dead.ndjson, match: weir.dead_letter }\n",
    );
    let out = dir.path("out.ndjson");
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    file.write_all(b"\xbf{\"n\":1}\n").unwrap();
    assert!(wait_for(Duration::from_secs(10), || read_ndjson(&out).len() == 1));
    std::fs::rename(&log, dir.path("app.ndjson.1")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(&log, [BOM, b"{\"n\":2}\n"].concat()).unwrap();
    assert!(wait_for(Duration::from_secs(10), || read_ndjson(&out).len() == 2));
    sigterm(child.id());
    assert!(child.wait().unwrap().success());
    assert_eq!(read_ndjson(&out), [serde_json::json!({"n": 1}), serde_json::json!({"n": 2})]);
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty(), "nothing dead-lettered");

    // stdin, as text lines: the mark is not in the message.
    let config = dir
        .write("stdin.yaml", "inputs: [{ type: stdin, format: lines }]\noutputs: [{ type: stdout, match: stdin }]\n");
    let out = run_with_stdin(&config, &[BOM, b"hello\n"].concat(), "warn");
    assert_eq!(ndjson(&out.stdout), [serde_json::json!({"message": "hello"})]);
}

/// Run `weir` with records on stdin and a file output to `path`, with and
/// without `fsync`; returns its stdout and stderr, having checked it exits 0.
fn run_to(dir: &TestDir, path: &str, fsync: bool) -> (String, String) {
    let config = dir.write(
        "device.yaml",
        &format!(
            "inputs: [{{ type: stdin }}]\noutputs: [{{ type: file, path: \"{path}\", fsync: {fsync}, match: stdin }}]\n"
        ),
    );
    let out = run_with_stdin(&config, b"{\"n\":1}\n{\"n\":2}\n", "info");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{path}: {stderr}");
    (String::from_utf8_lossy(&out.stdout).to_string(), stderr)
}

#[test]
fn a_file_output_to_a_device_or_a_fifo_writes_and_shuts_down_without_errors() {
    let dir = TestDir::new();
    let fifo = dir.path("pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for fsync in [false, true] {
        let (_, stderr) = run_to(&dir, "/dev/null", fsync);
        assert!(!stderr.contains("ERROR") && !stderr.contains("WARN"), "/dev/null: {stderr}");
        let (stdout, stderr) = run_to(&dir, "/dev/stdout", fsync);
        assert!(!stderr.contains("ERROR") && !stderr.contains("WARN"), "/dev/stdout: {stderr}");
        assert_eq!(ndjson(stdout.as_bytes()), [serde_json::json!({"n": 1}), serde_json::json!({"n": 2})]);
        let reader = std::thread::spawn({
            let fifo = fifo.clone();
            move || std::fs::read(&fifo).unwrap()
        });
        let (_, stderr) = run_to(&dir, fifo.to_str().unwrap(), fsync);
        assert!(!stderr.contains("ERROR") && !stderr.contains("WARN"), "fifo: {stderr}");
        assert_eq!(ndjson(&reader.join().unwrap()).len(), 2);
        // A regular file is still synced: nothing to see but no error either.
        let (_, stderr) = run_to(&dir, "regular.ndjson", fsync);
        assert!(!stderr.contains("ERROR"), "{stderr}");
    }
    assert_eq!(read_ndjson(&dir.path("regular.ndjson")).len(), 4);
}

#[test]
fn sigterm_drains_queued_records_before_exit() {
    let dir = TestDir::new();
    let lines: String = (0..5000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    dir.write("in.ndjson", &lines);
    let config = dir.write(
        "weir.yaml",
        "inputs: [{ type: file, path: in.ndjson, follow: true, poll_interval: 20ms }]\noutputs: [{ type: file, path: out.ndjson, match: '*' }]\n",
    );
    let mut child = weir().args(["run", "-c"]).arg(&config).stdin(Stdio::null()).spawn().unwrap();
    let out = dir.path("out.ndjson");
    assert!(wait_for(Duration::from_secs(10), || !read_ndjson(&out).is_empty()));
    sigterm(child.id());
    assert!(child.wait().unwrap().success());
    let numbers: Vec<i64> = read_ndjson(&out).iter().map(|r| r["n"].as_i64().unwrap()).collect();
    assert_eq!(numbers, (0..5000).collect::<Vec<_>>(), "everything read was delivered, in order");
}

#[test]
fn output_batches_flush_by_time_when_not_full() {
    let dir = TestDir::new();
    dir.write("app.log", "one\n");
    let config = dir.write(
        "weir.yaml",
        "inputs: [{ type: file, path: app.log, follow: true, poll_interval: 20ms, format: lines }]\noutputs: [{ type: file, path: out.ndjson, match: '*', batch: { max_records: 1000, max_wait: 50ms } }]\n",
    );
    let mut child = weir().args(["run", "-c"]).arg(&config).stdin(Stdio::null()).spawn().unwrap();
    let delivered = wait_for(Duration::from_secs(5), || read_ndjson(&dir.path("out.ndjson")).len() == 1);
    sigterm(child.id());
    child.wait().unwrap();
    assert!(delivered, "one record is written within max_wait although the batch is not full");
    let record: &Value = &read_ndjson(&dir.path("out.ndjson"))[0];
    assert_eq!(record["message"], "one");
}
