//! The Elasticsearch output on canned inputs: index templates, ids and
//! `@timestamp` (bulk.rs), every class of `_bulk` item (response.rs), config
//! errors, and whole writes against a canned server on port 0.

use std::sync::{Arc, Mutex};

use axum::body::Bytes as AxumBytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::any;
use serde_json::{Value, json};

use super::bulk::{
    BulkAction, BulkEncoder, IndexTemplate, ItemMeta, OutOfRange, TimeBounds, document_id, splice_timestamp, timestamp,
};
use super::response::{ItemOutcome, classify};
use super::*;
use crate::core::record::Origin;

/// 2026-11-22T23:59:59.999Z in nanoseconds.
const LAST_MS_OF_NOV_22: i64 = 1_795_391_999_999_000_000;

fn record(time: i64, body: &str, origin: Option<(&str, u64, u64)>) -> Record {
    Record {
        time,
        tag: "mobile.statements".into(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        origin: origin.map(|(s, offset, lineage)| Origin { stream: s.into(), offset, lineage }),
        ack: None,
        arrival: None,
    }
}

// ---------------------------------------------------------------- bulk.rs

#[test]
fn daily_indices_follow_event_time_in_utc_across_midnight() {
    let t = IndexTemplate::parse("mobile-logs-%Y.%m.%d").unwrap();
    assert_eq!(t.render(LAST_MS_OF_NOV_22, None, None).unwrap(), "mobile-logs-2026.11.22");
    assert_eq!(t.render(LAST_MS_OF_NOV_22 + 1_000_000, None, None).unwrap(), "mobile-logs-2026.11.23");
    // Out of order: the cached day must not leak into another day.
    assert_eq!(t.render(LAST_MS_OF_NOV_22, None, None).unwrap(), "mobile-logs-2026.11.22");
    assert_eq!(t.render(0, None, None).unwrap(), "mobile-logs-1970.01.01");
    assert_eq!(t.render(-1, None, None).unwrap(), "mobile-logs-1969.12.31", "before the epoch");
    let hourly = IndexTemplate::parse("logs-%Y.%m.%d-%H").unwrap();
    assert_eq!(hourly.render(LAST_MS_OF_NOV_22, None, None).unwrap(), "logs-2026.11.22-23");
    assert_eq!(hourly.render(LAST_MS_OF_NOV_22 - 3_600_000_000_000, None, None).unwrap(), "logs-2026.11.22-22");
    let literal = IndexTemplate::parse("100%%-logs").unwrap();
    assert_eq!(literal.render(0, None, None).unwrap(), "100%-logs");
}

#[test]
fn index_fields_come_from_the_body_with_a_fallback_or_a_reason() {
    let t = IndexTemplate::parse("logs-{app}-{device.os}-%Y.%m").unwrap();
    assert!(t.uses_fields());
    let body = json!({ "app": "shop", "device": { "os": "ios" } });
    assert_eq!(t.render(LAST_MS_OF_NOV_22, Some(&body), None).unwrap(), "logs-shop-ios-2026.11");
    let dotted = json!({ "app": 7, "device.os": "android" });
    assert_eq!(t.render(LAST_MS_OF_NOV_22, Some(&dotted), None).unwrap(), "logs-7-android-2026.11");
    let missing = json!({ "app": "shop", "device": { "os": null } });
    assert_eq!(t.render(LAST_MS_OF_NOV_22, Some(&missing), Some("unknown")).unwrap(), "logs-shop-unknown-2026.11");
    let error = t.render(LAST_MS_OF_NOV_22, Some(&missing), None).unwrap_err();
    assert!(
        error.contains("field `device.os` is missing") && error.contains("logs-{app}-{device.os}-%Y.%m"),
        "{error}"
    );
}

#[test]
fn malformed_index_templates_are_refused_with_what_is_wrong() {
    for (source, expected) in [
        ("", "empty"),
        ("logs-{app", "unclosed `{`"),
        ("logs-{}", "invalid field reference"),
        ("logs-{a..b}", "invalid field reference"),
        ("logs-%", "lone `%`"),
        ("logs-%Q", "invalid strftime specifier"),
    ] {
        let error = IndexTemplate::parse(source).unwrap_err();
        assert!(error.contains(expected), "{source:?}: {error}");
    }
}

#[test]
fn ids_are_stable_across_runs_and_distinct_across_records() {
    let base = record(LAST_MS_OF_NOV_22, r#"{"message":"a"}"#, Some(("file:/x", 7, 0)));
    // A literal: the id must not change between runs, builds or platforms,
    // or a replay after an upgrade would duplicate every document.
    assert_eq!(document_id(&base), "93f5fb2cb836a6e8bc747cb6ddcf4a34");
    assert_eq!(document_id(&base), document_id(&base.clone()));
    let variants = [
        record(LAST_MS_OF_NOV_22, r#"{"message":"a"}"#, Some(("file:/x", 8, 0))),
        record(LAST_MS_OF_NOV_22, r#"{"message":"a"}"#, Some(("file:/x", 7, 1))),
        record(LAST_MS_OF_NOV_22, r#"{"message":"a"}"#, Some(("file:/y", 7, 0))),
        record(LAST_MS_OF_NOV_22, r#"{"message":"b"}"#, Some(("file:/x", 7, 0))),
        record(LAST_MS_OF_NOV_22 + 1, r#"{"message":"a"}"#, Some(("file:/x", 7, 0))),
        record(LAST_MS_OF_NOV_22, r#"{"message":"a"}"#, None),
        record(LAST_MS_OF_NOV_22, r#"{"message":"b"}"#, None),
    ];
    let mut ids: Vec<String> = variants.iter().map(document_id).collect();
    ids.push(document_id(&base));
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    assert!(ids.iter().all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    // Without an origin, the same content is the same document.
    assert_eq!(document_id(&variants[5]), document_id(&record(LAST_MS_OF_NOV_22, r#"{"message":"a"}"#, None)));
}

#[test]
fn timestamps_are_spliced_in_unless_present() {
    assert_eq!(timestamp(LAST_MS_OF_NOV_22 + 999_999), "2026-11-22T23:59:59.999Z", "truncated to milliseconds");
    let splice = |body: &str| {
        let mut out = Vec::new();
        splice_timestamp(body.as_bytes(), LAST_MS_OF_NOV_22, &mut out).map(|()| String::from_utf8(out).unwrap())
    };
    assert_eq!(splice(r#"{"n":1,"s":"x"}"#).unwrap(), r#"{"@timestamp":"2026-11-22T23:59:59.999Z","n":1,"s":"x"}"#);
    assert_eq!(splice(" { } ").unwrap(), r#"{"@timestamp":"2026-11-22T23:59:59.999Z" } "#);
    assert_eq!(
        splice(r#"{"@timestamp":"2020-01-01T00:00:00Z","n":1}"#).unwrap(),
        r#"{"@timestamp":"2020-01-01T00:00:00Z","n":1}"#
    );
    assert_eq!(
        splice(r#"{"inner":{"@timestamp":1},"msg":"\"@timestamp\""}"#).unwrap(),
        r#"{"@timestamp":"2026-11-22T23:59:59.999Z","inner":{"@timestamp":1},"msg":"\"@timestamp\""}"#,
        "only a top-level key counts"
    );
    assert_eq!(
        splice("{\n\"n\": 1\r\n}").unwrap(),
        r#"{"@timestamp":"2026-11-22T23:59:59.999Z", "n": 1  }"#,
        "one line per document"
    );
    assert!(splice("[1]").unwrap_err().contains("not a JSON object"));
}

fn encoder(index: &str) -> BulkEncoder {
    BulkEncoder {
        action: BulkAction::Create,
        index: IndexTemplate::parse(index).unwrap(),
        index_fallback: None,
        id_field: None,
        time_bounds: None,
        metadata_key: None,
    }
}

const DAY: i64 = 86_400_000_000_000;

fn bounds(out_of_range: OutOfRange) -> TimeBounds {
    TimeBounds { max_future: DAY, max_past: 30 * DAY, out_of_range }
}

#[test]
fn event_times_far_from_the_host_clock_do_not_choose_the_index() {
    let now = LAST_MS_OF_NOV_22;
    let dead = bounds(OutOfRange::DeadLetter);
    assert_eq!(dead.index_time(now - 29 * DAY, now), Ok(now - 29 * DAY), "within bounds: the event time");
    assert_eq!(dead.index_time(now + DAY, now), Ok(now + DAY), "the bound itself is within");
    let year_2099 = 4_102_444_800_000_000_000;
    let error = dead.index_time(year_2099, now).unwrap_err();
    assert_eq!(
        error,
        "event time 2100-01-01T00:00:00.000Z is more than 1day ahead of the host clock (2026-11-22T23:59:59.999Z, max_future); not indexed by it"
    );
    let error = dead.index_time(0, now).unwrap_err();
    assert!(
        error.starts_with("event time 1970-01-01T00:00:00.000Z is more than 30days behind")
            && error.contains("max_past"),
        "{error}"
    );
    let now_bounds = bounds(OutOfRange::Now);
    assert_eq!(now_bounds.index_time(year_2099, now), Ok(now), "the host clock chooses the index");
    assert_eq!(now_bounds.index_time(-1, now), Ok(now));
}

#[test]
fn an_out_of_range_record_is_dead_lettered_or_indexed_by_the_host_clock_keeping_its_timestamp() {
    let now = LAST_MS_OF_NOV_22;
    let r = record(0, r#"{"n":1}"#, None);
    let mut e = BulkEncoder { time_bounds: Some(bounds(OutOfRange::DeadLetter)), ..encoder("logs-%Y.%m.%d") };
    let mut out = Vec::new();
    assert!(e.encode(0, &r, now, &mut out).unwrap_err().contains("max_past"));
    assert!(out.is_empty(), "nothing written for a refused record");
    let mut e = BulkEncoder { time_bounds: Some(bounds(OutOfRange::Now)), ..encoder("logs-%Y.%m.%d") };
    let meta = e.encode(0, &r, now, &mut out).unwrap();
    assert_eq!(meta.index, "logs-2026.11.22");
    assert!(String::from_utf8(out).unwrap().contains(r#""@timestamp":"1970-01-01T00:00:00.000Z""#));
}

#[test]
fn documents_are_encoded_as_action_and_source_lines_with_typed_fields() {
    let r = record(LAST_MS_OF_NOV_22, r#"{"ms":812,"ratio":0.5,"ok":true,"txn":"pay"}"#, Some(("file:/x", 1, 0)));
    let mut out = Vec::new();
    let meta = encoder("mobile-logs-%Y.%m.%d").encode(3, &r, LAST_MS_OF_NOV_22, &mut out).unwrap();
    assert_eq!(
        meta,
        ItemMeta { position: 3, index: "mobile-logs-2026.11.22".into(), id: document_id(&r), replayed: None }
    );
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    let action: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(action, json!({ "create": { "_index": "mobile-logs-2026.11.22", "_id": document_id(&r) } }));
    let source: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(
        source,
        json!({ "@timestamp": "2026-11-22T23:59:59.999Z", "ms": 812, "ratio": 0.5, "ok": true, "txn": "pay" })
    );
}

#[test]
fn id_field_takes_the_id_from_the_body_or_refuses_the_record() {
    let mut e = encoder("logs");
    e.action = BulkAction::Index;
    e.id_field = Some(FieldPath::parse("req.id").unwrap());
    let mut out = Vec::new();
    let meta = e.encode(0, &record(0, r#"{"req":{"id":"abc-1"}}"#, None), LAST_MS_OF_NOV_22, &mut out).unwrap();
    assert_eq!(meta.id, "abc-1");
    assert!(out.starts_with(br#"{"index":{"_index":"logs","_id":"abc-1"}}"#));
    let before = out.len();
    let error = e.encode(1, &record(0, r#"{"req":{}}"#, None), LAST_MS_OF_NOV_22, &mut out).unwrap_err();
    assert!(error.contains("index logs: `id_field` req.id is missing"), "{error}");
    assert_eq!(out.len(), before, "nothing written for a refused record");
    let error = e.encode(2, &record(0, "not json", None), LAST_MS_OF_NOV_22, &mut out).unwrap_err();
    assert!(error.contains("not JSON"), "{error}");
}

// ---------------------------------------------------------------- response.rs

fn metas(n: usize) -> Vec<ItemMeta> {
    (0..n)
        .map(|i| ItemMeta { position: i * 2, index: "logs-2026.11.22".into(), id: format!("id{i}"), replayed: None })
        .collect()
}

#[test]
fn an_answer_without_errors_delivers_everything() {
    let body = br#"{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}"#;
    assert_eq!(
        classify(body, &metas(2), BulkAction::Create).unwrap(),
        [ItemOutcome::Delivered, ItemOutcome::Delivered]
    );
}

#[test]
fn every_item_class_is_told_apart() {
    let body = json!({ "took": 3, "errors": true, "items": [
        { "create": { "_index": "logs-2026.11.22", "_id": "id0", "status": 201 } },
        { "create": { "_index": "logs-2026.11.22", "_id": "id1", "status": 409, "error": {
            "type": "version_conflict_engine_exception", "reason": "[id1]: version conflict, document already exists" } } },
        { "create": { "status": 429, "error": { "type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation" } } },
        { "create": { "status": 503, "error": { "type": "unavailable_shards_exception", "reason": "primary shard is not active" } } },
        { "create": { "status": 400, "error": {
            "type": "document_parsing_exception", "reason": "[1:30] failed to parse field [ms] of type [long] in document with id 'id4'",
            "caused_by": { "type": "illegal_argument_exception", "reason": "For input string: \"slow\"" } } } },
        { "create": { "status": 404, "error": { "type": "index_not_found_exception", "reason": "no such index [logs-2026.11.22]" } } },
        { "create": { "status": 200 } },
    ] });
    let outcomes = classify(body.to_string().as_bytes(), &metas(7), BulkAction::Create).unwrap();
    assert_eq!(outcomes[0], ItemOutcome::Delivered);
    assert_eq!(outcomes[1], ItemOutcome::Delivered, "409 on create: our deterministic id is already there");
    assert!(
        matches!(&outcomes[2], ItemOutcome::Retry(r) if r.contains("status 429: es_rejected_execution_exception")),
        "{:?}",
        outcomes[2]
    );
    assert!(matches!(&outcomes[3], ItemOutcome::Retry(r) if r.contains("status 503")), "{:?}", outcomes[3]);
    let ItemOutcome::Rejected(reason) = &outcomes[4] else { panic!("{:?}", outcomes[4]) };
    assert_eq!(
        reason,
        "elasticsearch refused the document: index logs-2026.11.22, _id id4: status 400: document_parsing_exception: \
         [1:30] failed to parse field [ms] of type [long] in document with id 'id4' \
         (caused by illegal_argument_exception: For input string: \"slow\")"
    );
    assert!(matches!(&outcomes[5], ItemOutcome::Rejected(r) if r.contains("index_not_found_exception")));
    assert_eq!(outcomes[6], ItemOutcome::Delivered);
}

#[test]
fn a_conflict_on_an_index_action_is_not_a_success() {
    let body = br#"{"errors":true,"items":[{"index":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"x"}}}]}"#;
    assert!(matches!(&classify(body, &metas(1), BulkAction::Index).unwrap()[0], ItemOutcome::Rejected(_)));
    let other =
        br#"{"errors":true,"items":[{"create":{"status":409,"error":{"type":"something_else","reason":"x"}}}]}"#;
    assert!(matches!(&classify(other, &metas(1), BulkAction::Create).unwrap()[0], ItemOutcome::Rejected(_)));
}

#[test]
fn answers_that_do_not_match_the_request_fail_the_whole_request() {
    let short = br#"{"errors":false,"items":[{"create":{"status":201}}]}"#;
    assert_eq!(
        classify(short, &metas(2), BulkAction::Create).unwrap_err(),
        "the _bulk response has 1 items for 2 documents"
    );
    assert!(
        classify(b"<html>proxy error</html>", &metas(1), BulkAction::Create)
            .unwrap_err()
            .starts_with("unreadable _bulk response")
    );
    let empty = br#"{"errors":true,"items":[{}]}"#;
    assert!(classify(empty, &metas(1), BulkAction::Create).unwrap_err().contains("_id id0 is empty"));
}

// ---------------------------------------------------------------- config

fn config(yaml: &str) -> Result<ElasticsearchOutputConfig, String> {
    let value: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        format!("{path}: {}", e.into_inner())
    })
}

#[test]
fn a_minimal_config_gets_the_defaults() {
    let c = config("{ hosts: [\"http://127.0.0.1:19200\"], index: logs }").unwrap();
    assert_eq!(c.hosts[0].0.as_str(), "http://127.0.0.1:19200/");
    assert_eq!(c.mode, EsMode::Index);
    assert_eq!(c.action, BulkAction::Create);
    assert!(c.gzip);
    assert_eq!(c.max_bytes, ByteSize(10 << 20));
    assert_eq!(c.timeout, HumanDuration(Duration::from_secs(60)));
    assert_eq!((c.max_future, c.max_past), (HumanDuration::parse("1d").unwrap(), HumanDuration::parse("10y").unwrap()));
    assert_eq!(c.out_of_range, OutOfRange::DeadLetter);
    let c = config("{ hosts: [\"https://u:p@es:9200/prefix\"], index: x, auth: { api_key: abc }, template: { name: t, file: t.json } }").unwrap();
    assert_eq!(c.hosts[0].0.path(), "/prefix/", "a path prefix keeps its last segment when joined");
    assert!(matches!(c.auth, Some(Auth::ApiKey { ref key }) if key.expose() == "abc"));
    let c = config("{ hosts: [\"http://es:9200\"], index: x, auth: { user: u, password: p } }").unwrap();
    assert_eq!(
        format!("{:?}", c.auth),
        "Some(Basic { username: \"u\", password: <redacted> })",
        "no secrets in debug output"
    );
}

#[test]
fn config_errors_name_the_key_and_what_was_expected() {
    for (yaml, expected) in [
        ("{ index: logs }", "missing field `hosts`"),
        ("{ hosts: [], index: logs }", "hosts: no hosts; expected at least one URL"),
        ("{ hosts: [\"htp//x\"], index: logs }", "hosts[0]: invalid url \"htp//x\""),
        ("{ hosts: [\"ftp://x\"], index: logs }", "expected http:// or https://"),
        ("{ hosts: [\"http://x\"] }", "missing field `index`"),
        ("{ hosts: [\"http://x\"], index: \"logs-{app\" }", "index: unclosed `{`"),
        ("{ hosts: [\"http://x\"], index: logs, mode: stream }", "mode: unknown variant `stream`"),
        ("{ hosts: [\"http://x\"], index: logs, action: update }", "action: unknown variant `update`"),
        ("{ hosts: [\"http://x\"], index: logs, max_bytes: lots }", "max_bytes: invalid size"),
        ("{ hosts: [\"http://x\"], index: logs, auth: { token: x } }", "unknown field `token`"),
        (
            "{ hosts: [\"http://x\"], index: logs, auth: { user: x } }",
            "auth: expected exactly one of `basic: {username, password}`, `bearer: {token}` or `api_key: KEY`",
        ),
        (
            "{ hosts: [\"http://x\"], index: logs, auth: { user: x, password: y, api_key: z } }",
            "auth: expected exactly one of",
        ),
        ("{ hosts: [\"http://x\"], index: logs, template: { name: t } }", "template: missing field `file`"),
        ("{ hosts: [\"http://x\"], index: logs, indx: y }", "unknown field `indx`"),
    ] {
        let error = config(yaml).unwrap_err();
        assert!(error.contains(expected), "{yaml}: {error}");
    }
}

#[test]
fn the_config_loader_positions_elasticsearch_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("weir.yaml");
    let text = "inputs: [{ type: stdin }]\noutputs:\n  - type: elasticsearch\n    match: '*'\n    hosts: [\"http://x:9200\"]\n    index: \"logs-%Q\"\n";
    let error = crate::config::parse(&file, text, |_| None).unwrap_err().to_string();
    assert!(error.contains(":6:") && error.contains("outputs[0].index: invalid strftime specifier"), "{error}");
}

#[test]
fn contradicting_or_unreadable_settings_fail_the_build() {
    let c = config("{ hosts: [\"http://x\"], index: logs, mode: data_stream, action: index }").unwrap();
    let error = c.build("es").err().unwrap().to_string();
    // The output's name is added once, by `OutputError`.
    assert_eq!(error, "output es: action: data streams accept only `create`");
    let c = config("{ hosts: [\"http://x\"], index: logs, template: { name: t, file: /nonexistent/t.json } }").unwrap();
    let error = c.build("es").err().unwrap().to_string();
    assert!(error.starts_with("output es: cannot read template file /nonexistent/t.json"), "{error}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    let c = config("{ hosts: [\"https://x\"], index: logs, ca_file: ca.pem }").unwrap().rebase(dir.path());
    assert!(c.build("es").err().unwrap().to_string().contains("ca.pem: no PEM certificate"));
}

#[test]
fn the_shipped_metrics_template_is_a_valid_template_body() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/elasticsearch/metrics-template.json");
    let template: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(template["index_patterns"].is_array());
    let mapping = &template["template"]["mappings"];
    assert_eq!(mapping["properties"]["window_start"]["type"], "date");
    assert_eq!(mapping["properties"]["count"]["type"], "long");
    let dynamic = mapping["dynamic_templates"].to_string();
    assert!(dynamic.contains("\"p*\"") && dynamic.contains("double"), "{dynamic}");
}

// ---------------------------------------------------------------- writes

/// A canned Elasticsearch: records each request (gunzipped) and answers
/// `_bulk` by calling `answer` with the documents' statuses chosen by it.
#[derive(Clone, Default)]
struct Canned {
    requests: Arc<Mutex<Vec<(String, String, String)>>>,
    /// Status per document, consumed in order; 201 when exhausted.
    statuses: Arc<Mutex<Vec<u16>>>,
    /// Whole-request statuses, popped per request; 200 (answer normally) when exhausted.
    whole: Arc<Mutex<Vec<u16>>>,
}

async fn canned(State(c): State<Canned>, uri: Uri, headers: HeaderMap, body: AxumBytes) -> (StatusCode, String) {
    let text = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut out).unwrap();
        out
    } else {
        String::from_utf8(body.to_vec()).unwrap()
    };
    let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    c.requests.lock().unwrap().push((uri.to_string(), auth, text.clone()));
    let whole = { c.whole.lock().unwrap().pop() };
    if let Some(status) = whole.filter(|&s| s != 200) {
        return (StatusCode::from_u16(status).unwrap(), r#"{"error":"canned"}"#.into());
    }
    if !uri.path().ends_with("_bulk") {
        return (StatusCode::OK, r#"{"acknowledged":true}"#.into());
    }
    let items: Vec<Value> = text
        .lines()
        .step_by(2)
        .map(|_| {
            let status = { c.statuses.lock().unwrap().pop().unwrap_or(201) };
            match status {
                201 => json!({ "create": { "status": 201 } }),
                429 => json!({ "create": { "status": 429, "error": { "type": "es_rejected_execution_exception", "reason": "busy" } } }),
                s => json!({ "create": { "status": s, "error": { "type": "document_parsing_exception", "reason": "bad [ms]" } } }),
            }
        })
        .collect();
    let errors = items.iter().any(|i| i["create"]["status"] != 201);
    (StatusCode::OK, json!({ "errors": errors, "items": items }).to_string())
}

async fn serve(c: Canned) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(any(canned)).with_state(c);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

/// A port with nothing listening.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn batch(n: usize) -> Vec<Record> {
    (0..n).map(|i| record(LAST_MS_OF_NOV_22, &format!(r#"{{"n":{i}}}"#), Some(("file:/x", i as u64, 0)))).collect()
}

#[tokio::test]
async fn a_write_reports_retries_and_rejections_by_position_and_installs_the_template_once() {
    let c = Canned::default();
    // Popped from the end: documents 0..4 get 201, 429, 400, 201, (201).
    *c.statuses.lock().unwrap() = vec![201, 400, 429, 201];
    let url = serve(c.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.json"), r#"{"index_patterns":["x-*"]}"#).unwrap();
    let yaml = format!(
        "{{ hosts: [\"{}\", \"{url}\"], index: \"x-%Y\", auth: {{ user: elastic, password: pw }}, template: {{ name: x, file: t.json }} }}",
        closed_port()
    );
    let mut output = config(&yaml).unwrap().rebase(dir.path()).build("es").unwrap();
    let mut records = batch(5);
    records[4].body = Bytes::from_static(b"[not an object]");
    let report = output.write(&records).await.unwrap();
    assert_eq!(report.retry, [1]);
    assert_eq!(report.rejected.len(), 2);
    assert_eq!(report.rejected[0].0, 4, "refused before sending");
    assert!(report.rejected[0].1.starts_with("output es: index x-2026, _id "), "{}", report.rejected[0].1);
    assert_eq!(report.rejected[1].0, 2);
    assert!(report.rejected[1].1.contains("document_parsing_exception: bad [ms]"), "{}", report.rejected[1].1);
    output.write(&batch(1)).await.unwrap();
    let requests = c.requests.lock().unwrap();
    let paths: Vec<&str> = requests.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/_index_template/x",
            "/_bulk?filter_path=errors,items.*.status,items.*.error",
            "/_bulk?filter_path=errors,items.*.status,items.*.error"
        ],
        "the closed first host is failed over"
    );
    assert!(requests.iter().all(|(_, auth, _)| auth == "Basic ZWxhc3RpYzpwdw=="));
    assert_eq!(requests[1].2.lines().count(), 8, "four documents, two lines each");
}

#[tokio::test]
async fn bogus_clocks_create_no_index_per_bogus_day_and_are_counted() {
    let c = Canned::default();
    let url = serve(c.clone()).await;
    let mut output =
        config(&format!("{{ hosts: [\"{url}\"], index: \"logs-%Y.%m.%d\" }}")).unwrap().build("es").unwrap();
    output.clock = crate::core::clock::Clock::manual(LAST_MS_OF_NOV_22);
    let year_2099 = 4_102_444_800_000_000_000;
    let records = [
        record(LAST_MS_OF_NOV_22, r#"{"n":0}"#, None),
        record(year_2099, r#"{"n":1}"#, None),
        record(0, r#"{"n":2}"#, None),
        record(LAST_MS_OF_NOV_22 - 86_400_000_000_000, r#"{"n":3}"#, None),
    ];
    let report = output.write(&records).await.unwrap();
    let rejected: Vec<usize> = report.rejected.iter().map(|(p, _)| *p).collect();
    assert_eq!(rejected, [1, 2], "dead-lettered by default: {:?}", report.rejected);
    assert!(report.rejected[0].1.contains("max_future"), "{}", report.rejected[0].1);
    assert_eq!(output.out_of_range.get(), 2);
    let requests = c.requests.lock().unwrap();
    let indices: Vec<String> = requests[0]
        .2
        .lines()
        .step_by(2)
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["create"]["_index"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(indices, ["logs-2026.11.22", "logs-2026.11.21"], "only real days have indices");
}

#[tokio::test]
async fn a_large_batch_is_split_by_max_bytes_and_a_failed_part_is_retried() {
    let c = Canned::default();
    let url = serve(c.clone()).await;
    // Each document's two lines are about 112 bytes: three fit in 400.
    let yaml = format!("{{ hosts: [\"{url}\"], index: x, max_bytes: 400, gzip: false }}");
    let mut output = config(&yaml).unwrap().build("es").unwrap();
    let report = output.write(&batch(7)).await.unwrap();
    assert_eq!(report, WriteReport::default());
    let sizes: Vec<usize> = c.requests.lock().unwrap().iter().map(|(_, _, b)| b.lines().count() / 2).collect();
    assert_eq!(sizes, [3, 3, 1]);
    assert!(c.requests.lock().unwrap().iter().all(|(_, _, b)| b.len() <= 400));

    // The second request fails as a whole: its documents and the rest retry.
    c.requests.lock().unwrap().clear();
    *c.whole.lock().unwrap() = vec![503, 200];
    let report = output.write(&batch(7)).await.unwrap();
    assert_eq!(report.retry, [3, 4, 5, 6]);
    assert_eq!(c.requests.lock().unwrap().len(), 2, "nothing more is sent once the cluster fails");

    // The first request fails: nothing was acknowledged, so the write fails.
    *c.whole.lock().unwrap() = vec![429];
    let error = output.write(&batch(2)).await.unwrap_err().to_string();
    assert!(error.starts_with(&format!("output es: _bulk {url}/_bulk: elasticsearch answered 429")), "{error}");
}

#[tokio::test]
async fn an_unreachable_cluster_fails_the_whole_write_naming_the_host() {
    let closed = closed_port();
    let mut output = config(&format!("{{ hosts: [\"{closed}\"], index: x }}")).unwrap().build("es").unwrap();
    let error = output.write(&batch(1)).await.unwrap_err().to_string();
    assert!(error.starts_with(&format!("output es: _bulk {closed}/_bulk: ")), "{error}");
    assert!(error.to_lowercase().contains("connect"), "{error}");
}

#[test]
fn records_carrying_bulk_metadata_are_replayed_as_their_own_action() {
    let mut e = BulkEncoder { metadata_key: Some("_es".into()), ..encoder("configured") };
    let mut out = Vec::new();
    let update = record(
        0,
        r#"{"doc":{"m":2},"doc_as_upsert":true,"_es":{"index":"a","action":"update","id":"1","routing":"u"}}"#,
        None,
    );
    let delete = record(0, r#"{"_es":{"index":"a","action":"delete","id":"2"}}"#, None);
    let index = record(0, r#"{"m":1,"_es":{"index":"b","action":"index","pipeline":"p"}}"#, None);
    let plain = record(0, r#"{"m":3}"#, None);
    let metas: Vec<ItemMeta> = [&update, &delete, &index, &plain]
        .iter()
        .enumerate()
        .map(|(i, r)| e.encode(i, r, 0, &mut out).unwrap())
        .collect();
    let lines: Vec<Value> = String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0], json!({"update": {"_index": "a", "_id": "1", "routing": "u"}}));
    assert_eq!(lines[1], json!({"doc": {"m": 2}, "doc_as_upsert": true}), "an update's body as sent, no @timestamp");
    assert_eq!(lines[2], json!({"delete": {"_index": "a", "_id": "2"}}), "a delete has no source line");
    assert_eq!(lines[3], json!({"index": {"_index": "b", "_id": document_id(&index), "pipeline": "p"}}));
    assert_eq!(lines[4], json!({"@timestamp": "1970-01-01T00:00:00.000Z", "m": 1}));
    assert_eq!(lines[5]["create"]["_index"], "configured", "records without the field are written as configured");
    assert_eq!(lines.len(), 7);
    assert_eq!(
        metas.iter().map(|m| m.replayed).collect::<Vec<_>>(),
        [Some("update"), Some("delete"), Some("index"), None]
    );
    let bad = record(0, r#"{"_es":{"index":"a","action":"update"}}"#, None);
    assert_eq!(e.encode(0, &bad, 0, &mut Vec::new()).unwrap_err(), "index a: `_es`: update without an id");

    // A replayed delete of a missing document is delivered; a replayed
    // update's version conflict is retried.
    let answer = br#"{"errors":true,"items":[{"delete":{"_index":"a","_id":"2","result":"not_found","status":404}},
        {"update":{"_index":"a","_id":"1","status":409,"error":{"type":"version_conflict_engine_exception","reason":"x"}}}]}"#;
    let sent = [metas[1].clone(), metas[0].clone()];
    let outcomes = classify(answer, &sent, BulkAction::Create).unwrap();
    assert_eq!(outcomes[0], ItemOutcome::Delivered);
    assert!(matches!(outcomes[1], ItemOutcome::Retry(_)), "{outcomes:?}");
}
