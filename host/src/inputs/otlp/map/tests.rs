//! The OTLP-to-record mapping on canned requests.

use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::json;

use super::*;

fn value(v: any_value::Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(value(v)), ..Default::default() }
}

fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", any_value::Value::StringValue("shop".into()))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "checkout".into(),
                    version: "1.2".into(),
                    ..Default::default()
                }),
                log_records: records,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn json_of(item: &Item) -> serde_json::Value {
    serde_json::from_slice(&item.body).unwrap()
}

#[test]
fn every_field_of_a_record_its_scope_and_resource_is_kept() {
    use any_value::Value as V;
    let record = LogRecord {
        time_unix_nano: 1_764_000_000_000_000_000,
        observed_time_unix_nano: 1_764_000_000_000_000_001,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(value(V::StringValue("GET /cart 200".into()))),
        attributes: vec![
            kv("http.status_code", V::IntValue(200)),
            kv("ratio", V::DoubleValue(1.0)),
            kv("ok", V::BoolValue(true)),
            kv("raw", V::BytesValue(vec![0, 255])),
            kv("list", V::ArrayValue(ArrayValue { values: vec![value(V::IntValue(1)), AnyValue { value: None }] })),
            kv("map", V::KvlistValue(KeyValueList { values: vec![kv("inf", V::DoubleValue(f64::INFINITY))] })),
        ],
        dropped_attributes_count: 2,
        flags: 1,
        trace_id: (1..=16).collect(),
        span_id: (1..=8).collect(),
        event_name: "checkout.done".into(),
    };
    let items = items(&request(vec![record]));
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].time, Some(1_764_000_000_000_000_000));
    assert_eq!(items[0].problem, None);
    assert_eq!(
        json_of(&items[0]),
        json!({
            "body": "GET /cart 200",
            "severity_number": 9,
            "severity_text": "INFO",
            "attributes": {
                "http.status_code": 200, "ratio": 1.0, "ok": true, "raw": "AP8=",
                "list": [1, null], "map": {"inf": "Infinity"},
            },
            "event_name": "checkout.done",
            "trace_id": "0102030405060708090a0b0c0d0e0f10",
            "span_id": "0102030405060708",
            "flags": 1,
            "time_unix_nano": 1_764_000_000_000_000_000u64,
            "observed_time_unix_nano": 1_764_000_000_000_000_001u64,
            "dropped_attributes_count": 2,
            "scope": {"name": "checkout", "version": "1.2", "schema_url": "https://opentelemetry.io/schemas/1.26.0"},
            "resource": {"attributes": {"service.name": "shop"}},
        })
    );
    // A double keeps its fraction, so it stays apart from an integer.
    assert!(std::str::from_utf8(&items[0].body).unwrap().contains(r#""ratio":1.0"#));
}

#[test]
fn a_structured_body_stays_structured_and_defaults_are_left_out() {
    use any_value::Value as V;
    let body = V::KvlistValue(KeyValueList { values: vec![kv("user", V::StringValue("ana".into()))] });
    let record = LogRecord { body: Some(value(body)), observed_time_unix_nano: 5, ..Default::default() };
    let items = items(&request(vec![record, LogRecord::default()]));
    assert_eq!(items[0].time, Some(5), "observed time when the event time is unset");
    let first = json_of(&items[0]);
    assert_eq!(first["body"], json!({"user": "ana"}));
    assert_eq!(first.get("severity_number"), None);
    assert_eq!(first.get("trace_id"), None);
    assert_eq!(items[1].time, None, "no time at all: the input uses the arrival time");
}

#[test]
fn ids_of_the_wrong_length_are_refused_with_the_reason() {
    let bad_trace = LogRecord { trace_id: vec![1; 5], ..Default::default() };
    let bad_span = LogRecord { span_id: vec![1; 16], ..Default::default() };
    let items = items(&request(vec![bad_trace, bad_span]));
    assert_eq!(items[0].problem.as_deref(), Some("trace_id has 5 bytes; OTLP trace ids have 16"));
    assert_eq!(items[1].problem.as_deref(), Some("span_id has 16 bytes; OTLP span ids have 8"));
}
