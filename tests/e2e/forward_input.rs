//! The `forward` input end to end: the real `weir` on a port it picks, fed
//! by Fluentd's own Python client (`fluent-logger`) and by frames built by
//! hand from the Forward protocol spec (`clients/forward_client.py`).

use serde_json::Value;

use crate::util::{Background, TestDir, client, free_port, http, read_ndjson, wait_for};

/// Start weir with a forward input on a free port; its `host`, `port`.
fn start(dir: &TestDir, input: &str, outputs: &str) -> (Background, String, String) {
    let config = format!("inputs:\n  - {{ type: forward, address: 127.0.0.1:0, {input} }}\noutputs:\n{outputs}");
    let mut weir = Background::start(dir, &config, "warn,weir::inputs::forward=info");
    let listening = weir.wait_for_log("forward input listening");
    let address = listening["address"].as_str().expect("an address").to_string();
    let (host, port) = address.rsplit_once(':').expect("host:port");
    (weir, host.to_string(), port.to_string())
}

const FILE_OUT: &str =
    "  - { type: file, path: out.ndjson, match: '*', encoding: envelope, batch: { max_records: 1, max_wait: 1ms } }\n";

#[test]
fn fluent_logger_events_arrive_with_their_tag_and_nanosecond_time() {
    let dir = TestDir::new();
    let (weir, host, port) = start(&dir, "tag_prefix: 'fluent.'", FILE_OUT);
    let sent = client("forward_client.py", &["logger", &host, &port, "app", "20"]);
    assert_eq!(sent["error"], Value::Null, "{sent}");
    let out = dir.path("out.ndjson");
    assert!(wait_for(std::time::Duration::from_secs(20), || read_ndjson(&out).len() == 20), "{}", weir.log_text());
    let records = read_ndjson(&out);
    for (record, sent) in records.iter().zip(sent["sent"].as_array().unwrap()) {
        assert_eq!(record["tag"], "fluent.app.web");
        assert_eq!(record["body"]["i"], sent["i"]);
        // EventTime's nanoseconds survive: the envelope's RFC 3339 time has them.
        let ns = sent["time"].as_i64().unwrap();
        let expected = chrono::DateTime::from_timestamp(ns / 1_000_000_000, (ns % 1_000_000_000) as u32).unwrap();
        assert_eq!(record["time"], expected.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true), "{record}");
    }
    weir.stop();
}

#[test]
fn forward_packed_and_compressed_frames_are_acked_only_once_written() {
    let dir = TestDir::new();
    let (weir, host, port) = start(&dir, "ack: delivered", FILE_OUT);
    let out = dir.path("out.ndjson");
    let results = client("forward_client.py", &["frames", &host, &port, out.to_str().unwrap()]);
    for result in results.as_array().unwrap() {
        assert_eq!(result["acked"], true, "{result}");
        assert_eq!(result["written_at_ack"], 10, "the ack came after all 10 records were written: {result}");
    }
    let records = read_ndjson(&out);
    assert_eq!(records.len(), 30);
    let compressed: Vec<&Value> = records.iter().filter(|r| r["tag"] == "app.compressed").collect();
    let mut is: Vec<u64> = compressed.iter().map(|r| r["body"]["i"].as_u64().unwrap()).collect();
    is.sort_unstable();
    assert_eq!(is, (0..10).collect::<Vec<_>>(), "both gzip members were read");
    weir.stop();
}

#[test]
fn a_sender_that_hangs_up_before_its_ack_loses_nothing_and_its_resend_is_acked() {
    let dir = TestDir::new();
    // Records wait 300 ms in the output's batch, so the ack is still owed
    // when the first connection closes.
    let outputs = "  - { type: file, path: out.ndjson, match: '*', encoding: envelope, batch: { max_records: 1000, max_wait: 300ms } }\n";
    let (weir, host, port) = start(&dir, "ack: delivered", outputs);
    let result = client("forward_client.py", &["disconnect", &host, &port, dir.path("out.ndjson").to_str().unwrap()]);
    assert_eq!(result["acked"], true, "the resend on a new connection is acked: {}", weir.log_text());
    // At least once: the abandoned chunk was still delivered, and so was the resend.
    let out = dir.path("out.ndjson");
    assert!(wait_for(std::time::Duration::from_secs(10), || read_ndjson(&out).len() == 10), "{}", weir.log_text());
    assert!(read_ndjson(&out).iter().all(|r| r["tag"] == "app.resent" && r["body"]["resent"] == true));
    weir.stop();
}

#[test]
fn a_bad_frame_closes_only_its_connection_and_is_counted() {
    let dir = TestDir::new();
    let admin = free_port();
    let config = format!(
        "admin: {{ address: 127.0.0.1:{admin} }}\ninputs:\n  - {{ type: forward, address: 127.0.0.1:0, max_frame_bytes: 64KiB }}\noutputs:\n{FILE_OUT}"
    );
    let mut weir = Background::start(&dir, &config, "warn,weir::inputs::forward=info");
    let address = weir.wait_for_log("forward input listening")["address"].as_str().unwrap().to_string();
    let (host, port) = address.rsplit_once(':').unwrap();
    let result = client("forward_client.py", &["bad-frame", host, port]);
    assert_eq!(result["bad_closed"], true, "{result}");
    assert_eq!(result["big_closed"], true, "{result}");
    assert_eq!(result["good_acked"], true, "the other connection went on: {result}");
    let (_, metrics) = http("GET", admin, "/metrics").expect("admin answers");
    assert!(
        metrics.lines().any(|l| l.starts_with("weir_input_bad_frames_total{input=\"forward\"} 2")),
        "both bad frames counted:\n{metrics}"
    );
    let log = weir.log_text();
    assert!(log.contains("not msgpack (byte 0xc1)"), "the reason is logged:\n{log}");
    assert!(log.contains("frame exceeds max_frame_bytes (65536 bytes)"), "{log}");
    weir.stop();
}

#[test]
fn the_shared_key_handshake_admits_the_key_and_refuses_another() {
    let dir = TestDir::new();
    let input = "shared_key: s3cret, self_hostname: weir.test";
    let (weir, host, port) = start(&dir, input, FILE_OUT);
    let result = client("forward_client.py", &["handshake", &host, &port, "s3cret", "wrong"]);
    assert_eq!(result["helo"], "HELO");
    assert_eq!(result["pong_ok"], true);
    assert_eq!(result["server_proved_key"], true, "PONG's digest proves weir knows the key");
    assert_eq!(result["acked"], true);
    assert_eq!(result["wrong_pong_ok"], false);
    assert_eq!(result["wrong_reason"], "shared key mismatch (client \"client.example\")");
    assert_eq!(result["wrong_closed"], true);
    assert_eq!(read_ndjson(&dir.path("out.ndjson")).len(), 1, "only the authenticated record");
    weir.stop();
}

#[test]
fn frames_arrive_over_tls() {
    let dir = TestDir::new();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    dir.write("cert.pem", &cert.pem());
    dir.write("key.pem", &signing_key.serialize_pem());
    let (weir, host, port) = start(&dir, "tls: { cert: cert.pem, key: key.pem }", FILE_OUT);
    let out = dir.path("out.ndjson");
    let ca = dir.path("cert.pem");
    let results = client("forward_client.py", &["frames", &host, &port, out.to_str().unwrap(), ca.to_str().unwrap()]);
    assert!(results.as_array().unwrap().iter().all(|r| r["acked"] == true), "{results}");
    assert_eq!(read_ndjson(&out).len(), 30);
    weir.stop();
}
