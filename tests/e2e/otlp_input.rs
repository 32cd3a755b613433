//! The `otlp` input end to end: OpenTelemetry's official Python SDK exports
//! logs to the real `weir` over OTLP/gRPC and OTLP/HTTP (protobuf, gzip),
//! and a hand-written OTLP/JSON request checks partial success.

use serde_json::{Value, json};

use crate::util::{Background, TestDir, client, read_ndjson};

/// Start weir with an otlp input on free ports; its HTTP and gRPC addresses.
fn start(dir: &TestDir) -> (Background, String, String) {
    let config = "
inputs:
  - { type: otlp, tag: otel.logs, http_address: 127.0.0.1:0, grpc_address: 127.0.0.1:0 }
outputs:
  - { type: file, path: out.ndjson, match: otel.logs, encoding: envelope, batch: { max_records: 1, max_wait: 1ms } }
  - { type: file, name: dead, path: dead.ndjson, match: weir.dead_letter, batch: { max_records: 1, max_wait: 1ms } }
";
    let mut weir = Background::start(dir, config, "warn,weir::inputs::otlp=info");
    let listening = weir.wait_for_log("otlp input listening");
    let http = listening["http"].as_str().expect("an http address").to_string();
    let grpc = listening["grpc"].as_str().expect("a grpc address").to_string();
    (weir, http, grpc)
}

fn check_sdk_records(records: &[Value], transport: &str, count: usize) {
    let ours: Vec<&Value> = records.iter().filter(|r| r["body"]["attributes"]["transport"] == transport).collect();
    assert_eq!(ours.len(), count, "every exported record was written before the export succeeded");
    for (i, record) in ours.iter().enumerate() {
        assert_eq!(record["tag"], "otel.logs");
        let body = &record["body"];
        assert_eq!(body["body"], format!("payment {i} slow"));
        assert_eq!(body["severity_number"], 13);
        assert_eq!(body["severity_text"], "WARN");
        assert_eq!(body["event_name"], "payment.slow");
        assert_eq!(body["attributes"], json!({"i": i, "transport": transport, "ratio": 0.5, "tags": ["a", "b"]}));
        assert_eq!(body["scope"]["name"], "checkout");
        assert_eq!(body["scope"]["version"], "1.2.3");
        assert_eq!(body["resource"]["attributes"]["service.name"], "shop");
        assert_eq!(body["resource"]["attributes"]["deployment.environment"], "test");
        // The record's time is the log's own timestamp, to the nanosecond.
        assert_eq!(body["time_unix_nano"], 1_764_000_000_000_000_000u64 + i as u64);
        let time = if i == 0 { "2025-11-24T16:00:00Z".to_string() } else { format!("2025-11-24T16:00:00.{i:09}Z") };
        assert_eq!(record["time"], time);
    }
}

#[test]
fn the_opentelemetry_sdk_exports_logs_over_grpc_and_http() {
    let dir = TestDir::new();
    let (weir, http, grpc) = start(&dir);
    let over_grpc = client("otlp_client.py", &["sdk", "grpc", &format!("http://{grpc}"), "5"]);
    assert_eq!(over_grpc["results"], json!(vec!["SUCCESS"; 5]), "{}", weir.log_text());
    let over_http = client("otlp_client.py", &["sdk", "http", &format!("http://{http}/v1/logs"), "5"]);
    assert_eq!(over_http["results"], json!(vec!["SUCCESS"; 5]), "{}", weir.log_text());
    let records = read_ndjson(&dir.path("out.ndjson"));
    check_sdk_records(&records, "grpc", 5);
    check_sdk_records(&records, "http", 5);
    weir.stop();
}

#[test]
fn otlp_json_with_an_invalid_record_is_a_partial_success_and_the_record_is_kept() {
    let dir = TestDir::new();
    let (weir, http, _) = start(&dir);
    let answer = client("otlp_client.py", &["json", &format!("http://{http}/v1/logs")]);
    assert_eq!(answer["status"], 200, "{answer}");
    let partial = &answer["body"]["partialSuccess"];
    assert_eq!(partial["rejectedLogRecords"], "1", "int64 is a string in OTLP/JSON: {answer}");
    assert!(partial["errorMessage"].as_str().unwrap().contains("trace_id has 2 bytes"), "{answer}");
    let records = read_ndjson(&dir.path("out.ndjson"));
    assert_eq!(records.len(), 1);
    let body = &records[0]["body"];
    assert_eq!(body["body"], json!({"user": "ana"}));
    assert_eq!(body["attributes"]["n"], 42);
    assert_eq!(body["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(body["severity_text"], "ERROR");
    assert_eq!(body["resource"]["attributes"]["service.name"], "json-client");
    let dead = read_ndjson(&dir.path("dead.ndjson"));
    assert_eq!(dead.len(), 1, "the refused record is in the dead letter");
    assert_eq!(dead[0]["record"]["body"], "bad ids");
    weir.stop();
}
