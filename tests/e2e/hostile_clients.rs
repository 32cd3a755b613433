//! Hostile and broken clients on the `http` input, against the real binary
//! over raw sockets and curl: slowloris headers and bodies, idle
//! connections and the connection limit, a 100 MB line, a gzip bomb, JSON
//! nested 100,000 deep, invalid UTF-8 in a string, and a client hanging up
//! before its `delivered` answer. Each gets its status and message (when
//! there is anyone left to answer), its counter in `/metrics` moves, and a
//! well-behaved client posting at the same time is served normally.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http_input::post;
use crate::observability::Scrape;
use crate::util::{Running, TestDir, free_port, read_ndjson, wait_for};

/// An http input with short timeouts, straight to a file.
fn config(admin: u16, port: u16, extra: &str, batch_wait: &str) -> String {
    format!(
        r#"
admin: {{ address: 127.0.0.1:{admin} }}
inputs:
  - type: http
    name: web
    tag: logs
    address: 127.0.0.1:{port}
    header_read_timeout: 1s
    body_read_timeout: 2s
{extra}
outputs:
  - {{ type: file, path: out.ndjson, match: "*", batch: {{ max_wait: {batch_wait} }} }}
"#
    )
}

/// A client posting one good record at a time until stopped, checking
/// every answer is 200; it returns how many it sent.
struct GoodClient {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<usize>,
}

impl GoodClient {
    fn start(port: u16) -> GoodClient {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let url = format!("http://127.0.0.1:{port}/ingest");
            let mut sent = 0;
            while !flag.load(Ordering::Relaxed) {
                let body = format!("{{\"good\":{sent}}}");
                let started = Instant::now();
                let (status, answer) = post(&url, &["Content-Type: application/x-ndjson"], body.as_bytes());
                assert_eq!(status, 200, "the good client was refused: {answer}");
                assert!(started.elapsed() < Duration::from_secs(5), "the good client waited {:?}", started.elapsed());
                sent += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            sent
        });
        GoodClient { stop, thread }
    }

    /// Stop, and check the output holds each of its records exactly once.
    fn finish(self, dir: &TestDir) {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.thread.join().expect("the good client was served throughout");
        assert!(sent >= 3, "the good client posted {sent} times");
        let good = || -> Vec<u64> {
            let mut good: Vec<u64> =
                read_ndjson(&dir.path("out.ndjson")).iter().filter_map(|r| r["good"].as_u64()).collect();
            good.sort_unstable();
            good
        };
        assert!(wait_for(Duration::from_secs(10), || good().len() >= sent));
        assert_eq!(good(), (0..sent as u64).collect::<Vec<_>>(), "each good record delivered once");
    }
}

fn scrape(weir: &Running) -> Scrape {
    Scrape::parse(&weir.metrics())
}

fn refused(weir: &Running, reason: &str) -> f64 {
    scrape(weir).get("weir_input_requests_refused_total", &[("input", "web"), ("reason", reason)])
}

fn closed(weir: &Running, reason: &str) -> f64 {
    scrape(weir).get("weir_input_connections_closed_total", &[("input", "web"), ("reason", reason)])
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("weir accepts");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

/// Whether the server has sent something (or closed), without waiting.
fn answered(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut first = [0u8; 1];
    let answered = !matches!(stream.peek(&mut first), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    answered
}

/// Read until the server closes; the status and the JSON body, if any.
fn answer(stream: &mut TcpStream) -> (Option<u16>, Value) {
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok());
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn slowloris_headers_and_bodies_get_408_idle_connections_are_closed_and_a_good_client_is_served() {
    let dir = TestDir::new();
    let (admin, port) = (free_port(), free_port());
    let weir = Running::start(&dir, &config(admin, port, "", "20ms"), admin);
    let good = GoodClient::start(port);

    // Headers dribbled in, a byte every 200 ms: never complete within 1 s.
    let headers = std::thread::spawn(move || {
        let mut stream = connect(port);
        let started = Instant::now();
        for byte in b"POST /ingest HTTP/1.1\r\nHost: weir\r\nX-Slow: abcdefghijklmnopqrstuvwxyz".iter() {
            if stream.write_all(&[*byte]).is_err() || answered(&stream) || started.elapsed() > Duration::from_secs(3) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let took = started.elapsed();
        (answer(&mut stream), took)
    });
    // A body dribbled in: complete headers, then a byte every 200 ms.
    let body = std::thread::spawn(move || {
        let mut stream = connect(port);
        stream
            .write_all(b"POST /ingest HTTP/1.1\r\nHost: weir\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100\r\n\r\n")
            .unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(4) && stream.write_all(b" ").is_ok() {
            std::thread::sleep(Duration::from_millis(200));
        }
        answer(&mut stream)
    });
    // Connected, silent.
    let idle = std::thread::spawn(move || {
        let mut stream = connect(port);
        let started = Instant::now();
        (answer(&mut stream), started.elapsed())
    });

    let ((status, reason), took) = headers.join().unwrap();
    assert_eq!(status, Some(408), "{reason}");
    assert_eq!(reason["reason"], "the request headers did not arrive within 1s (header_read_timeout)");
    assert!(took < Duration::from_secs(3), "cut off after {took:?}");
    let (status, reason) = body.join().unwrap();
    assert_eq!(status, Some(408), "{reason}");
    let text = reason["reason"].as_str().unwrap();
    assert!(text.starts_with("the request body did not arrive within 2s (body_read_timeout); "), "{text}");
    let ((status, nothing), took) = idle.join().unwrap();
    assert_eq!((status, nothing), (None, Value::Null), "an idle connection is closed without an answer");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "idle closed after {took:?}");

    assert_eq!(closed(&weir, "header_timeout"), 1.0);
    assert!(closed(&weir, "idle_timeout") >= 1.0);
    assert_eq!(refused(&weir, "body_timeout"), 1.0);
    good.finish(&dir);
    weir.stop();
}

#[test]
fn a_thousand_idle_connections_leave_room_for_a_good_client_and_the_connection_limit_answers_503() {
    let dir = TestDir::new();
    let (admin, port) = (free_port(), free_port());
    // Long enough to open them all before the first is closed as idle.
    let extra = "    max_connections: 1010\n";
    let config = config(admin, port, extra, "20ms").replace("header_read_timeout: 1s", "header_read_timeout: 10s");
    let weir = Running::start(&dir, &config, admin);

    let idle: Vec<TcpStream> = (0..1000).map(|_| connect(port)).collect();
    let held = || scrape(&weir).get("weir_input_connections", &[("input", "web")]);
    assert!(wait_for(Duration::from_secs(8), || held() >= 1000.0), "weir holds {} connections, not 1000", held());
    let good = GoodClient::start(port);
    std::thread::sleep(Duration::from_millis(1000));
    good.finish(&dir);

    // Past the limit: answered 503 with the reason, and closed. About ten
    // slots are left; the connections given one stay silent.
    let mut extra: Vec<TcpStream> = (0..20).map(|_| connect(port)).collect();
    let mut refusals = 0;
    for stream in &mut extra {
        stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut first = [0u8; 1];
        if stream.peek(&mut first).is_ok_and(|n| n > 0) {
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let (status, reason) = answer(stream);
            assert_eq!(status, Some(503), "{reason}");
            assert_eq!(
                reason["reason"],
                "too many connections: this input holds 1010 (max_connections); retry after 1s"
            );
            refusals += 1;
        }
    }
    assert!((8..=12).contains(&refusals), "the connections past the limit are refused: {refusals} of 20");
    assert!(closed(&weir, "max_connections") >= f64::from(refusals));
    drop(extra);

    // The idle ones are closed after header_read_timeout, and counted;
    // then a client is served again.
    assert!(
        wait_for(Duration::from_secs(30), || closed(&weir, "idle_timeout") >= 1000.0),
        "idle connections closed: {}",
        closed(&weir, "idle_timeout")
    );
    for mut stream in idle {
        let (status, _) = answer(&mut stream);
        assert_eq!(status, None, "an idle connection gets no answer");
    }
    assert!(
        wait_for(Duration::from_secs(5), || scrape(&weir).get("weir_input_connections", &[("input", "web")]) == 0.0)
    );
    let (status, answer) =
        post(&format!("http://127.0.0.1:{port}/ingest"), &["Content-Type: application/x-ndjson"], b"{\"after\":1}");
    assert_eq!(status, 200, "{answer}");
    weir.stop();
}

/// `{"a":` nested `depth` deep around `1`.
fn nested(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

#[test]
fn a_100_mb_line_a_gzip_bomb_deep_json_and_invalid_utf8_are_refused_with_their_reason_and_counted() {
    let dir = TestDir::new();
    let (admin, port) = (free_port(), free_port());
    let weir = Running::start(&dir, &config(admin, port, "", "20ms"), admin);
    let good = GoodClient::start(port);
    let url = format!("http://127.0.0.1:{port}/ingest");
    let ndjson = "Content-Type: application/x-ndjson";

    let line = format!("{{\"m\":\"{}\"}}\n", "a".repeat(100_000_000));
    let (status, answer) = post(&url, &[ndjson], line.as_bytes());
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["reason"], "line 1 (byte offset 0) is 100000008 bytes, longer than max_line_bytes (1048576)");
    drop(line);

    // 256 MiB of zeros, about 250 KB gzipped.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b'0'; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let (status, answer) = post(&url, &[ndjson, "Content-Encoding: gzip"], &bomb);
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["reason"], "the gzip body decompresses to more than 104857600 bytes (max_decompressed_bytes)");

    let deep = nested(100_000);
    let (status, answer) = post(&url, &[ndjson], deep.as_bytes());
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["reason"], "line 1 (byte offset 635): JSON nested deeper than 127 levels");
    let (status, answer) = post(&url, &["Content-Type: application/json"], format!("[{deep}]").as_bytes());
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["reason"], "element 1 of the array (byte offset 636): JSON nested deeper than 127 levels");
    let bulk = format!("{{\"index\":{{\"_index\":\"x\"}}}}\n{deep}\n");
    let (status, answer) = post(&format!("http://127.0.0.1:{port}/_bulk"), &[ndjson], bulk.as_bytes());
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["reason"], "line 2 (byte offset 660): JSON nested deeper than 127 levels");
    let (status, answer) = post(&url, &[ndjson], nested(127).as_bytes());
    assert_eq!(status, 200, "127 levels are fine: {answer}");

    let (status, answer) = post(&url, &[ndjson], b"{\"m\":\"ok\"}\n{\"m\":\"caf\xe9 \xff\"}\n");
    assert_eq!(status, 400, "{answer}");
    let text = answer["reason"].as_str().unwrap();
    assert!(text.starts_with("line 2, column "), "{text}");
    assert!(text.ends_with("invalid JSON: invalid unicode code point"), "{text}");

    assert_eq!(refused(&weir, "line_too_long"), 1.0);
    assert_eq!(refused(&weir, "decompressed_too_large"), 1.0);
    assert_eq!(refused(&weir, "too_deep"), 3.0);
    assert_eq!(refused(&weir, "malformed"), 1.0);
    good.finish(&dir);
    let deepest = read_ndjson(&dir.path("out.ndjson")).into_iter().filter(|r| r.get("a").is_some()).count();
    assert_eq!(deepest, 1, "only the 127-deep record was accepted");
    weir.stop();
}

#[test]
fn a_client_hanging_up_before_its_delivered_answer_has_its_records_delivered_once() {
    let dir = TestDir::new();
    let (admin, port) = (free_port(), free_port());
    // The output writes to a FIFO nobody reads yet: once the pipe's buffer
    // (64 KiB) is full, delivery waits, and so does the `delivered` answer.
    let (go, reader) = crate::http_input::held_fifo(&dir, "out.fifo");
    let config = config(admin, port, "", "10ms").replace("path: out.ndjson", "path: out.fifo");
    let weir = Running::start(&dir, &config, admin);

    let padding = "x".repeat(1000);
    let body: String = (0..100).map(|i| format!("{{\"gone\":{i},\"pad\":\"{padding}\"}}\n")).collect();
    let mut stream = connect(port);
    write!(
        stream,
        "POST /ingest HTTP/1.1\r\nHost: weir\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Queued (counted as accepted), then gone before the answer.
    assert!(wait_for(Duration::from_secs(5), || scrape(&weir).get("weir_input_records_total", &[("input", "web")])
        >= 100.0));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!answered(&stream), "the answer waits for delivery");
    drop(stream);
    assert!(
        wait_for(Duration::from_secs(5), || closed(&weir, "client_gone") == 1.0),
        "the hang-up is counted: {}",
        closed(&weir, "client_gone")
    );

    // The output drains; a good client is then served as usual.
    go.send(()).unwrap();
    let (status, answer) =
        post(&format!("http://127.0.0.1:{port}/ingest"), &["Content-Type: application/x-ndjson"], b"{\"good\":0}");
    assert_eq!(status, 200, "{answer}");
    weir.stop();

    let written = crate::util::ndjson(reader.join().unwrap().as_bytes());
    let mut gone: Vec<u64> = written.iter().filter_map(|r| r["gone"].as_u64()).collect();
    gone.sort_unstable();
    assert_eq!(gone, (0..100).collect::<Vec<_>>(), "every record of the request delivered exactly once");
    assert_eq!(written.iter().filter(|r| r["good"] == 0).count(), 1);
}
