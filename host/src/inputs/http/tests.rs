//! Tests of the HTTP input: [`decode`](super::decode) on canned bodies
//! (every bad-input case with its message), and the [`router`] with
//! `oneshot` for every status code, plus real sockets (port 0, TLS).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::HttpInputConfig;
use super::auth::Presented;
use super::decode::*;
use super::server::{HttpInputState, router, serve};
use super::tls::tls_acceptor;
use crate::core::clock::Clock;
use crate::core::record::{Batch, Record};
use crate::core::tls::TlsSettings;
use crate::inputs::InputContext;

const NOW: i64 = 1_700_000_000_000_000_000;
const LIMITS: Limits = Limits { max_records: 1000, max_line_bytes: 1 << 20 };

fn bodies(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| std::str::from_utf8(&i.body).unwrap()).collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn malformed(at: &str, reason: &str) -> DecodeError {
    DecodeError::Malformed { at: at.into(), reason: reason.into() }
}

// ---- decode: encodings ----

#[test]
fn content_encoding_is_parsed_case_insensitively_and_unknown_is_refused() {
    assert_eq!(ContentEncoding::parse(None), Ok(ContentEncoding::Identity));
    assert_eq!(ContentEncoding::parse(Some("identity")), Ok(ContentEncoding::Identity));
    assert_eq!(ContentEncoding::parse(Some(" GZIP ")), Ok(ContentEncoding::Gzip));
    assert_eq!(ContentEncoding::parse(Some("x-gzip")), Ok(ContentEncoding::Gzip));
    assert_eq!(ContentEncoding::parse(Some("Deflate")), Ok(ContentEncoding::Deflate));
    let error = ContentEncoding::parse(Some("br")).unwrap_err();
    assert_eq!(error.to_string(), "unsupported content encoding \"br\"; expected gzip, deflate or identity");
    assert_eq!(error.class(), ErrorClass::UnsupportedMedia);
}

#[test]
fn gzip_bodies_decompress_including_several_members() {
    let mut two = gzip(b"{\"a\":1}\n");
    two.extend(gzip(b"{\"a\":2}\n"));
    let out = decompress(&two[..], ContentEncoding::Gzip, 1 << 20, 0).unwrap();
    assert_eq!(&out[..], b"{\"a\":1}\n{\"a\":2}\n");
}

#[test]
fn deflate_bodies_decompress_as_zlib_or_raw() {
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    zlib.write_all(b"zlib wrapped").unwrap();
    let out = decompress(&zlib.finish().unwrap()[..], ContentEncoding::Deflate, 100, 0).unwrap();
    assert_eq!(&out[..], b"zlib wrapped");
    let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    raw.write_all(b"raw deflate").unwrap();
    let out = decompress(&raw.finish().unwrap()[..], ContentEncoding::Deflate, 100, 0).unwrap();
    assert_eq!(&out[..], b"raw deflate");
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    let bomb = gzip(&vec![0u8; 8 << 20]);
    assert!(bomb.len() < 64 << 10, "8 MiB of zeros compress to {} bytes", bomb.len());
    let error = decompress(&bomb[..], ContentEncoding::Gzip, 1 << 20, 0).unwrap_err();
    assert_eq!(error.to_string(), "the gzip body decompresses to more than 1048576 bytes (max_decompressed_bytes)");
    assert_eq!(error.class(), ErrorClass::TooLarge);
    // Exactly at the limit is fine.
    let out = decompress(&gzip(&[b'x'; 1000])[..], ContentEncoding::Gzip, 1000, 0).unwrap();
    assert_eq!(out.len(), 1000);
}

/// A reader that yields `data` a few bytes at a time, as a body arrives.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(3);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn a_body_arriving_in_pieces_decompresses_the_same() {
    let text = b"{\"a\":1}\n".repeat(500);
    for (encoding, compressed) in [(ContentEncoding::Gzip, gzip(&text)), (ContentEncoding::Identity, text.clone())] {
        assert_eq!(&decompress(Trickle(&compressed), encoding, 1 << 20, 10).unwrap()[..], &text[..]);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    zlib.write_all(&text).unwrap();
    let zlib = zlib.finish().unwrap();
    assert_eq!(&decompress(Trickle(&zlib), ContentEncoding::Deflate, 1 << 20, 0).unwrap()[..], &text[..]);
}

#[test]
fn a_truncated_compressed_body_is_corrupt_not_shorter() {
    let whole = gzip(&b"{\"a\":1}\n".repeat(500));
    let error = decompress(&whole[..whole.len() - 10], ContentEncoding::Gzip, 1 << 20, 0).unwrap_err();
    assert!(matches!(error, DecodeError::Corrupt { encoding: "gzip", .. }), "{error:?}");
}

#[test]
fn a_corrupt_compressed_body_is_a_bad_request() {
    let error = decompress(&b"\x1f\x8bnot gzip at all"[..], ContentEncoding::Gzip, 100, 0).unwrap_err();
    assert!(matches!(error, DecodeError::Corrupt { encoding: "gzip", .. }), "{error:?}");
    assert!(error.to_string().starts_with("the gzip body is corrupt: "), "{error}");
    assert_eq!(error.class(), ErrorClass::BadRequest);
}

// ---- decode: formats ----

#[test]
fn content_type_chooses_the_format_and_unknown_types_sniff() {
    use BodyFormat::*;
    assert_eq!(BodyFormat::from_content_type(Some("application/x-ndjson")), Some(Ndjson));
    assert_eq!(BodyFormat::from_content_type(Some("Application/JSON; charset=utf-8")), Some(Json));
    assert_eq!(BodyFormat::from_content_type(Some("text/plain;charset=UTF-8")), Some(Text));
    assert_eq!(BodyFormat::from_content_type(Some("application/x-www-form-urlencoded")), None);
    assert_eq!(BodyFormat::from_content_type(None), None);
    assert_eq!(BodyFormat::sniff(b"  [1]"), Json);
    assert_eq!(BodyFormat::sniff(b"{\n \"a\": 1\n}\n"), Json);
    assert_eq!(BodyFormat::sniff(b"{\"a\":1}\n{\"a\":2}"), Ndjson);
    assert_eq!(BodyFormat::sniff(b"GET /x 200"), Text);
    assert_eq!(BodyFormat::sniff(b""), Text);
}

#[test]
fn ndjson_lines_become_records_numbered_by_line_without_copying() {
    let body = Bytes::from_static(b"{\"a\":1}\r\n\n  \n {\"a\":2} \n{\"a\":3}");
    let items = decode(&body, BodyFormat::Ndjson, "message", LIMITS).unwrap();
    assert_eq!(bodies(&items), ["{\"a\":1}", "{\"a\":2}", "{\"a\":3}"]);
    assert_eq!(items.iter().map(|i| i.position).collect::<Vec<_>>(), [1, 4, 5]);
    assert_eq!(items[0].body.as_ptr(), body.as_ptr(), "a slice of the request body");
}

#[test]
fn malformed_ndjson_names_line_column_and_byte_offset() {
    let body = Bytes::from_static(b"{\"a\":1}\n{\"b\":}\n");
    assert_eq!(
        decode(&body, BodyFormat::Ndjson, "m", LIMITS),
        Err(malformed("line 2, column 6 (byte offset 13)", "invalid JSON: expected value"))
    );
    let body = Bytes::from_static(b"{\"a\":1}\n\n[1]\n");
    assert_eq!(
        decode(&body, BodyFormat::Ndjson, "m", LIMITS),
        Err(malformed("line 3 (byte offset 9)", "expected a JSON object"))
    );
    let error = decode(&Bytes::from_static(b"{\"a\":1} x\n"), BodyFormat::Ndjson, "m", LIMITS).unwrap_err();
    assert_eq!(error.to_string(), "line 1, column 9 (byte offset 8): invalid JSON: trailing characters");
    assert_eq!(error.class(), ErrorClass::BadRequest);
}

#[test]
fn text_lines_become_message_records() {
    let body = Bytes::from_static(b"GET / 200\r\n\nsaid \"hi\"\n");
    let items = decode(&body, BodyFormat::Text, "log", LIMITS).unwrap();
    assert_eq!(bodies(&items), [r#"{"log":"GET / 200"}"#, r#"{"log":"said \"hi\""}"#]);
    assert_eq!(items[1].position, 3);
    let bad = Bytes::from_static(b"ok\n\xffbad\n");
    assert_eq!(decode(&bad, BodyFormat::Text, "log", LIMITS), Err(malformed("line 2 (byte offset 3)", "not UTF-8")));
}

#[test]
fn json_objects_and_arrays_become_records_compacted_to_one_line() {
    let body = Bytes::from_static(b"{\n  \"a\": \"x y\",\n  \"b\": [1, 2]\n}\n");
    let items = decode(&body, BodyFormat::Json, "m", LIMITS).unwrap();
    assert_eq!(bodies(&items), [r#"{"a":"x y","b":[1,2]}"#]);
    let body = Bytes::from_static(b"[{\"a\":1}, {\"a\":2}]");
    let items = decode(&body, BodyFormat::Json, "m", LIMITS).unwrap();
    assert_eq!(bodies(&items), ["{\"a\":1}", "{\"a\":2}"]);
    assert_eq!(items[1].position, 2);
    let body = Bytes::from_static(b"{\"a\":1}\n{\"a\":2}\n");
    let items = decode(&body, BodyFormat::Json, "m", LIMITS).unwrap();
    assert_eq!(bodies(&items), ["{\"a\":1}", "{\"a\":2}"], "NDJSON sent as application/json");
}

#[test]
fn bad_json_bodies_say_what_and_where() {
    let json = |b: &'static [u8]| decode(&Bytes::from_static(b), BodyFormat::Json, "m", LIMITS);
    assert_eq!(
        json(b"[\n  {\"a\": 1},\n  {\"a\": }\n]"),
        Err(malformed("line 3, column 9 (byte offset 22)", "invalid JSON: expected value"))
    );
    assert_eq!(json(b"[{\"a\":1}, 2]"), Err(malformed("element 2 of the array (byte offset 10)", "not a JSON object")));
    assert_eq!(json(b"\n 42"), Err(malformed("line 2, column 2 (byte offset 2)", "expected a JSON object or array")));
    let empty = json(b"  \n").unwrap_err();
    assert_eq!(empty.to_string(), "the request body is empty; expected a JSON object or array");
}

#[test]
fn limits_on_lines_and_records_are_413_naming_the_line() {
    let small = Limits { max_records: 2, max_line_bytes: 10 };
    let long = decode(&Bytes::from_static(b"short\n0123456789ab\n"), BodyFormat::Text, "m", small).unwrap_err();
    assert_eq!(long.to_string(), "line 2 (byte offset 6) is 12 bytes, longer than max_line_bytes (10)");
    assert_eq!(long.class(), ErrorClass::TooLarge);
    let many = decode(&Bytes::from_static(b"a\nb\nc\n"), BodyFormat::Text, "m", small).unwrap_err();
    assert_eq!(many.to_string(), "more than 2 records in one request (max_records)");
    assert_eq!(many.class(), ErrorClass::TooLarge);
    let array = decode(&Bytes::from_static(b"[{},{},{}]"), BodyFormat::Json, "m", small).unwrap_err();
    assert_eq!(array, DecodeError::TooManyRecords { max: 2 });
    let element = decode(&Bytes::from_static(b"[{\"a\":\"0123456789\"}]"), BodyFormat::Json, "m", small).unwrap_err();
    assert_eq!(
        element.to_string(),
        "element 1 of the array (byte offset 1) is 18 bytes, longer than max_line_bytes (10)"
    );
}

#[test]
fn json_nested_deeper_than_serde_json_reads_is_refused_naming_where() {
    let nested = |depth: usize| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let deep = Bytes::from(nested(100_000));
    let refused = decode(&deep, BodyFormat::Ndjson, "m", LIMITS).unwrap_err();
    assert_eq!(refused, DecodeError::TooDeep { at: "line 1 (byte offset 635)".into(), max: 127 });
    assert_eq!(refused.class(), ErrorClass::BadRequest);
    assert_eq!(refused.reason(), "too_deep");
    let array = Bytes::from(format!("[{{}}, {}]", nested(200)));
    assert_eq!(
        decode(&array, BodyFormat::Json, "m", LIMITS).unwrap_err().to_string(),
        "element 2 of the array (byte offset 640): JSON nested deeper than 127 levels"
    );
    let bulk = Bytes::from(format!("{{\"index\":{{\"_index\":\"x\"}}}}\n{}\n", nested(128)));
    assert_eq!(
        decode_bulk(&bulk, None, LIMITS).unwrap_err().to_string(),
        "line 2 (byte offset 660): JSON nested deeper than 127 levels"
    );
    // Brackets inside strings do not nest; the deepest accepted is what
    // serde_json (every SDK filter) reads.
    let strings = Bytes::from(format!("{{\"a\":\"{}\\\"{}\"}}", "[{".repeat(500), "{".repeat(10)));
    assert_eq!(decode(&strings, BodyFormat::Ndjson, "m", LIMITS).unwrap().len(), 1);
    let deepest = Bytes::from(nested(MAX_DEPTH));
    let items = decode(&deepest, BodyFormat::Ndjson, "m", LIMITS).unwrap();
    serde_json::from_slice::<Value>(&items[0].body).expect("serde_json reads the deepest accepted record");
}

#[test]
fn invalid_utf8_inside_a_string_is_refused_naming_the_line() {
    let body = Bytes::from_static(b"{\"m\":\"ok\"}\n{\"m\":\"caf\xe9 \xff\"}\n");
    let refused = decode(&body, BodyFormat::Ndjson, "m", LIMITS).unwrap_err();
    assert_eq!(refused, malformed("line 2, column 10 (byte offset 20)", "invalid JSON: invalid unicode code point"));
    assert_eq!(refused.class(), ErrorClass::BadRequest);
    let text = decode(&Bytes::from_static(b"ok\nnot \xff utf-8\n"), BodyFormat::Text, "m", LIMITS).unwrap_err();
    assert_eq!(text, malformed("line 2 (byte offset 7)", "not UTF-8"));
}

// ---- decode: _bulk ----

#[test]
fn bulk_actions_pair_with_their_documents() {
    let body = Bytes::from_static(
        b"{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"m\":1}\n{\"create\":{\"_id\":7}}\n{\"m\":2}\n{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"update\":{\"_id\":\"2\"}}\n{\"doc\":{\"m\":3}}\n",
    );
    let items = decode_bulk(&body, Some("dflt"), LIMITS).unwrap();
    let summary: Vec<_> = items
        .iter()
        .map(|i| {
            (
                i.action,
                i.index.as_str(),
                i.id.as_deref(),
                i.doc.as_ref().map(|d| std::str::from_utf8(d).unwrap()),
                i.line,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (BulkAction::Index, "a", Some("1"), Some("{\"m\":1}"), 2),
            (BulkAction::Create, "dflt", Some("7"), Some("{\"m\":2}"), 4),
            (BulkAction::Delete, "a", Some("1"), None, 5),
            (BulkAction::Update, "dflt", Some("2"), Some("{\"doc\":{\"m\":3}}"), 7),
        ]
    );
}

#[test]
fn bad_bulk_bodies_say_what_and_where() {
    let bulk = |b: &'static [u8], index: Option<&str>| decode_bulk(&Bytes::from_static(b), index, LIMITS);
    assert_eq!(
        bulk(b"{\"upsert\":{}}\n{}\n", Some("i")).unwrap_err().to_string(),
        "line 1 (byte offset 0): malformed action/metadata line, expected one of [create, delete, index, update] but found [upsert]"
    );
    let missing = bulk(b"{\"index\":{}}\n{}\n", None).unwrap_err();
    assert_eq!(missing.to_string(), "line 1: index is missing; give `_index` in the action or POST to /{index}/_bulk");
    assert_eq!(missing.es_type(), "action_request_validation_exception");
    assert_eq!(
        bulk(b"{\"index\":{\"_index\":\"a\"}}\n", None).unwrap_err().to_string(),
        "line 1 (byte offset 0): the index action has no document line after it"
    );
    assert_eq!(
        bulk(b"{\"index\":{}}\n\"text\"\n", Some("a")),
        Err(malformed("line 2 (byte offset 13)", "expected a JSON object"))
    );
    assert_eq!(
        bulk(b"{\"index\":{}\n", Some("a")).unwrap_err().to_string(),
        "line 1 (byte offset 0): malformed action/metadata line: EOF while parsing an object"
    );
    assert_eq!(
        bulk(b"{\"index\":{},\"create\":{}}\n{}\n", Some("a")).unwrap_err().to_string(),
        "line 1 (byte offset 0): malformed action/metadata line: expected one action such as {\"index\":{}}"
    );
    assert_eq!(
        bulk(b"\n", Some("a")).unwrap_err().to_string(),
        "the request body is empty; expected _bulk action and document lines"
    );
    let small = Limits { max_records: 1, max_line_bytes: 1 << 20 };
    let many = decode_bulk(&Bytes::from_static(b"{\"index\":{}}\n{}\n{\"index\":{}}\n{}\n"), Some("a"), small);
    assert_eq!(many, Err(DecodeError::TooManyRecords { max: 1 }));
}

// ---- credentials and tags ----

#[test]
fn credentials_come_from_bearer_apikey_or_basic() {
    let secret = |v: &[u8]| Presented::parse(v).map(|p| p.secret().to_vec());
    assert_eq!(secret(b"Bearer s3cret").as_deref(), Some(&b"s3cret"[..]));
    assert_eq!(secret(b"ApiKey s3cret").as_deref(), Some(&b"s3cret"[..]));
    // base64("elastic:s3cret")
    assert_eq!(
        Presented::parse(b"Basic ZWxhc3RpYzpzM2NyZXQ="),
        Some(Presented::Basic { user: b"elastic".to_vec(), password: b"s3cret".to_vec() })
    );
    assert_eq!(secret(b"Digest x"), None);
    assert_eq!(secret(b"Basic a"), None, "invalid base64");
}

// ---- router ----

struct Harness {
    app: Router,
    rx: mpsc::Receiver<Batch>,
    tx: mpsc::Sender<Batch>,
}

fn harness(yaml: &str, capacity: usize) -> Harness {
    harness_batched(yaml, capacity, 1000)
}

/// A harness whose input cuts batches of `batch_max_records`.
fn harness_batched(yaml: &str, capacity: usize, batch_max_records: usize) -> Harness {
    let config: HttpInputConfig = serde_norway::from_str(yaml).unwrap();
    let (tx, rx) = mpsc::channel(capacity);
    let ctx = InputContext::new(
        "web",
        "http".into(),
        batch_max_records,
        Clock::manual(NOW),
        CancellationToken::new(),
        tx.clone(),
        "weir.dead_letter".into(),
    );
    let state = HttpInputState::new(&config, "test", ctx).unwrap();
    Harness { app: router(state), rx, tx }
}

fn accepted() -> Harness {
    harness("ack: accepted", 8)
}

fn post(path: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post(path);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    request.body(body.into()).unwrap()
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap();
    let value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap() };
    (status, headers, value)
}

fn drain(rx: &mut mpsc::Receiver<Batch>) -> Vec<Record> {
    let mut out = Vec::new();
    while let Ok(batch) = rx.try_recv() {
        out.extend(batch);
    }
    out
}

fn body_of(record: &Record) -> Value {
    serde_json::from_slice(&record.body).unwrap()
}

#[tokio::test]
async fn health_answers_ok_for_load_balancers() {
    let h = harness("auth_token: t", 8);
    let (status, _, body) = send(&h.app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "no token needed");
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn ndjson_lines_are_queued_with_tag_time_and_origin() {
    let mut h = accepted();
    let (status, _, body) =
        send(&h.app, post("/ingest", Some("application/x-ndjson"), "{\"n\":1}\n\n{\"n\":2}\n")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"records": 2, "ack": "accepted"}));
    let records = drain(&mut h.rx);
    assert_eq!(records.len(), 2);
    assert_eq!(&*records[0].tag, "http", "the configured tag");
    assert_eq!(records[0].time, NOW);
    let origin = records[1].origin.as_ref().unwrap();
    assert!(origin.stream.starts_with("http:test/http/"), "{origin}");
    assert_eq!(origin.offset, 3, "line 3 of the request");
    let next = send(&h.app, post("/ingest", None, "{\"n\":3}")).await;
    assert_eq!(next.0, StatusCode::OK);
    let third = drain(&mut h.rx);
    assert_ne!(third[0].origin.as_ref().unwrap().stream, origin.stream, "another body, another identity");
    // A retry of the same body is the same request: same origins, so
    // outputs with deterministic ids do not store it twice.
    send(&h.app, post("/ingest", Some("application/x-ndjson"), "{\"n\":1}\n\n{\"n\":2}\n")).await;
    let retried = drain(&mut h.rx);
    assert_eq!(retried[1].origin.as_ref(), Some(origin));
}

/// The origin stream of the records of one request.
async fn origin_of(h: &mut Harness, path: &str, key: Option<&str>, body: &'static str) -> String {
    let mut request = Request::post(path).header("content-type", "application/x-ndjson");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let (status, _, answer) = send(&h.app, request.body(Body::from(body)).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    drain(&mut h.rx)[0].origin.as_ref().unwrap().stream.to_string()
}

#[tokio::test]
async fn an_idempotency_key_names_the_request_else_its_body_does() {
    let mut h = accepted();
    let body = "{\"n\":1}\n";
    let by_body = origin_of(&mut h, "/ingest", None, body).await;
    assert_eq!(origin_of(&mut h, "/ingest", None, body).await, by_body, "a retry is the same request");
    let first = origin_of(&mut h, "/ingest", Some("8e03978e-40d5-43e8"), body).await;
    assert!(first.starts_with("http:test/http/key-"), "{first}");
    assert_eq!(
        origin_of(&mut h, "/ingest", Some("\"8e03978e-40d5-43e8\""), body).await,
        first,
        "quoted as the draft writes it"
    );
    let second = origin_of(&mut h, "/ingest", Some("another-key"), body).await;
    assert_ne!(second, first, "an identical body with another key is another request");
    assert_ne!(first, by_body);
    // _bulk without `_id`: the same rules.
    let bulk = "{\"create\":{\"_index\":\"logs\"}}\n{\"n\":1}\n";
    let retried = origin_of(&mut h, "/_bulk", None, bulk).await;
    assert!(retried.starts_with("http:test/_bulk/"), "{retried}");
    assert_eq!(origin_of(&mut h, "/_bulk", None, bulk).await, retried);
    assert_ne!(
        origin_of(&mut h, "/_bulk", Some("k1"), bulk).await,
        origin_of(&mut h, "/_bulk", Some("k2"), bulk).await
    );
    for bad in ["", "\"\"", &"x".repeat(256)] {
        let request = Request::post("/ingest").header("idempotency-key", bad).body(Body::from(body)).unwrap();
        let (status, _, answer) = send(&h.app, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(answer["reason"].as_str().unwrap().starts_with("invalid Idempotency-Key"), "{answer}");
    }
}

#[tokio::test]
async fn the_tag_comes_from_the_path_then_the_header_then_the_config() {
    let mut h = accepted();
    let tagged = |path: &str, header: Option<&str>| {
        let mut request = Request::post(path);
        if let Some(tag) = header {
            request = request.header("x-weir-tag", tag);
        }
        request.body(Body::from("{}")).unwrap()
    };
    for (path, header, expected) in [
        ("/ingest/from.path", Some("from.header"), "from.path"),
        ("/ingest", Some("from.header"), "from.header"),
        ("/ingest", None, "http"),
    ] {
        assert_eq!(send(&h.app, tagged(path, header)).await.0, StatusCode::OK);
        assert_eq!(&*drain(&mut h.rx)[0].tag, expected);
    }
    let (status, _, body) = send(&h.app, tagged("/ingest", Some("a*b"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["reason"].as_str().unwrap().starts_with("invalid tag \"a*b\""), "{body}");
}

#[tokio::test]
async fn text_json_and_sniffed_bodies_are_accepted() {
    let mut h = harness("ack: accepted\nmessage_key: log", 8);
    assert_eq!(send(&h.app, post("/ingest", Some("text/plain"), "one\ntwo\n")).await.0, StatusCode::OK);
    let texts: Vec<Value> = drain(&mut h.rx).iter().map(body_of).collect();
    assert_eq!(texts, [json!({"log": "one"}), json!({"log": "two"})]);
    assert_eq!(
        send(&h.app, post("/ingest", Some("application/json"), "[{\"a\":1},{\"a\":2}]")).await.0,
        StatusCode::OK
    );
    assert_eq!(drain(&mut h.rx).len(), 2);
    // curl -d sends application/x-www-form-urlencoded: sniffed.
    let sniffed =
        send(&h.app, post("/ingest", Some("application/x-www-form-urlencoded"), "{\"a\":1}\n{\"a\":2}")).await;
    assert_eq!(sniffed.2["records"], 2);
    assert_eq!(drain(&mut h.rx).len(), 2);
}

/// The UTF-8 byte order mark.
const BOM: &str = "\u{feff}";

#[tokio::test]
async fn a_leading_byte_order_mark_is_ignored_in_every_format() {
    let mut h = accepted();
    for (content_type, body, expected) in [
        (Some("application/json; charset=utf-8"), "{\"a\":1}", vec![json!({"a": 1})]),
        (Some("application/json"), "[{\"a\":1},{\"a\":2}]", vec![json!({"a": 1}), json!({"a": 2})]),
        (Some("application/x-ndjson"), "{\"a\":1}\n{\"a\":2}\n", vec![json!({"a": 1}), json!({"a": 2})]),
        (Some("text/plain"), "one\ntwo", vec![json!({"message": "one"}), json!({"message": "two"})]),
        (None, "{\"a\":1}", vec![json!({"a": 1})]),
        (None, "{\"a\":1}\n{\"a\":2}", vec![json!({"a": 1}), json!({"a": 2})]),
        (None, "[{\"a\":1}]", vec![json!({"a": 1})]),
        (None, "plain words", vec![json!({"message": "plain words"})]),
    ] {
        let with_bom = format!("{BOM}{body}");
        let (status, _, answer) = send(&h.app, post("/ingest", content_type, with_bom.clone())).await;
        assert_eq!(status, StatusCode::OK, "{content_type:?} {body}: {answer}");
        let got: Vec<Value> = drain(&mut h.rx).iter().map(body_of).collect();
        assert_eq!(got, expected, "{content_type:?} {body}");
        // Compressed too: the mark is in the decompressed text.
        let request = Request::post("/ingest").header("content-encoding", "gzip");
        let request = match content_type {
            Some(ct) => request.header("content-type", ct),
            None => request,
        };
        let (status, _, _) = send(&h.app, request.body(Body::from(gzip(with_bom.as_bytes()))).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(drain(&mut h.rx).iter().map(body_of).collect::<Vec<_>>(), expected);
    }
    // A mark inside the text is a character like any other.
    let (status, _, _) = send(&h.app, post("/ingest", Some("text/plain"), format!("a{BOM}b"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body_of(&drain(&mut h.rx)[0]), json!({"message": format!("a{BOM}b")}));
    // And _bulk.
    let bulk = format!("{BOM}{{\"index\":{{\"_index\":\"logs\"}}}}\n{{\"a\":1}}\n");
    let (status, _, answer) = send(&h.app, post("/_bulk", Some("application/x-ndjson"), bulk)).await;
    assert_eq!((status, &answer["errors"]), (StatusCode::OK, &json!(false)), "{answer}");
    assert_eq!(body_of(&drain(&mut h.rx)[0]), json!({"a": 1}));
}

#[tokio::test]
async fn gzip_and_deflate_bodies_are_decompressed_and_unknown_encodings_are_415() {
    let mut h = accepted();
    let request = |encoding: &str, body: Vec<u8>| {
        Request::post("/ingest").header("content-encoding", encoding).body(Body::from(body)).unwrap()
    };
    assert_eq!(send(&h.app, request("gzip", gzip(b"{\"z\":1}\n"))).await.0, StatusCode::OK);
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    zlib.write_all(b"{\"z\":2}\n").unwrap();
    assert_eq!(send(&h.app, request("deflate", zlib.finish().unwrap())).await.0, StatusCode::OK);
    let zs: Vec<Value> = drain(&mut h.rx).iter().map(|r| body_of(r)["z"].clone()).collect();
    assert_eq!(zs, [json!(1), json!(2)]);
    let (status, _, body) = send(&h.app, request("br", b"x".to_vec())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["status"], 415);
    assert_eq!(body["reason"], "unsupported content encoding \"br\"; expected gzip, deflate or identity");
}

#[tokio::test]
async fn malformed_bodies_are_400_and_nothing_is_queued() {
    let mut h = accepted();
    let (status, _, body) = send(&h.app, post("/ingest", Some("application/x-ndjson"), "{\"a\":1}\n{\"b\":}\n")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"status": 400, "error": "bad request", "reason": "line 2, column 6 (byte offset 13): invalid JSON: expected value"})
    );
    assert!(drain(&mut h.rx).is_empty(), "the good first line was not queued either");
}

#[tokio::test]
async fn limits_answer_413_with_a_reason() {
    let mut h = harness(
        "ack: accepted\nmax_body_bytes: 64\nmax_decompressed_bytes: 1KiB\nmax_records: 2\nmax_line_bytes: 20",
        8,
    );
    let cases: Vec<(Request<Body>, &str)> = vec![
        (
            // Refused on the declared length, before reading.
            Request::post("/ingest").header("content-length", "65").body(Body::from(vec![b'a'; 65])).unwrap(),
            "the request body is larger than max_body_bytes (64 bytes)",
        ),
        // No Content-Length: reading stops at the limit.
        (post("/ingest", None, vec![b'a'; 100]), "the request body is larger than max_body_bytes (64 bytes)"),
        (
            Request::post("/ingest").header("content-encoding", "gzip").body(Body::from(gzip(&[b'\n'; 4096]))).unwrap(),
            "the gzip body decompresses to more than 1024 bytes (max_decompressed_bytes)",
        ),
        (post("/ingest", Some("text/plain"), "a\nb\nc\n"), "more than 2 records in one request (max_records)"),
        (
            post("/ingest", Some("text/plain"), "a\n0123456789012345678901\n"),
            "line 2 (byte offset 2) is 22 bytes, longer than max_line_bytes (20)",
        ),
    ];
    for (request, reason) in cases {
        let (status, _, body) = send(&h.app, request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["reason"], reason);
    }
    assert!(drain(&mut h.rx).is_empty());
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let mut h = harness("ack: accepted\nauth_token: s3cret", 8);
    let with = |auth: Option<&str>| {
        let mut request = Request::post("/ingest");
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.body(Body::from("{}")).unwrap()
    };
    for auth in [None, Some("Bearer wrong"), Some("Bearer s3cre"), Some("s3cret")] {
        let (status, headers, body) = send(&h.app, with(auth)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(headers["www-authenticate"], "Bearer realm=\"weir\"");
        assert_eq!(body["status"], 401);
    }
    for auth in ["Bearer s3cret", "ApiKey s3cret", "Basic ZWxhc3RpYzpzM2NyZXQ="] {
        assert_eq!(send(&h.app, with(Some(auth))).await.0, StatusCode::OK, "{auth}");
    }
    assert_eq!(drain(&mut h.rx).len(), 3);
    let (status, headers, body) = send(&h.app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "ES endpoints too");
    assert_eq!(headers["x-elastic-product"], "Elasticsearch");
    assert_eq!(body["error"]["type"], "security_exception");
}

#[tokio::test]
async fn a_full_pipeline_answers_429_with_retry_after_and_queues_nothing() {
    let mut h = harness("ack: accepted\nqueue_wait: 20ms", 1);
    h.tx.try_send(Vec::new()).unwrap();
    let (status, headers, body) = send(&h.app, post("/ingest", None, "{\"n\":1}")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    assert!(body["reason"].as_str().unwrap().starts_with("the pipeline is full"), "{body}");
    let (status, headers, body) = send(&h.app, post("/_bulk", None, "{\"index\":{\"_index\":\"a\"}}\n{}\n")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"]["type"], "es_rejected_execution_exception");
    assert_eq!(h.rx.try_recv().unwrap().len(), 0, "only the batch that filled the queue");
    assert!(h.rx.try_recv().is_err());
    // With room again, the retry is accepted.
    assert_eq!(send(&h.app, post("/ingest", None, "{\"n\":1}")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_stopped_pipeline_answers_503() {
    let h = accepted();
    drop(h.rx);
    let (status, _, body) = send(&h.app, post("/ingest", None, "{}")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["reason"], "the pipeline is shutting down; retry later");
}

#[tokio::test]
async fn delivered_mode_answers_only_after_every_record_is_delivered() {
    let mut h = harness("{}", 8);
    let delivered = Arc::new(AtomicBool::new(false));
    let flag = delivered.clone();
    tokio::spawn(async move {
        let batch = h.rx.recv().await.unwrap();
        assert!(batch.iter().all(|r| r.ack.is_some()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        flag.store(true, Ordering::Release);
        drop(batch);
    });
    let (status, _, body) = send(&h.app, post("/ingest", None, "{\"a\":1}\n{\"a\":2}\n")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"records": 2, "ack": "delivered"}));
    assert!(delivered.load(Ordering::Acquire), "answered before the records were delivered");
}

#[tokio::test]
async fn a_failed_delivery_answers_503() {
    let mut h = harness("{}", 8);
    tokio::spawn(async move {
        let batch = h.rx.recv().await.unwrap();
        batch[1].ack.as_ref().unwrap().fail();
    });
    let (status, _, body) = send(&h.app, post("/ingest", None, "{\"a\":1}\n{\"a\":2}\n")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["reason"], "at least one record of this request could not be delivered; retry");
}

#[tokio::test]
async fn an_ack_timeout_answers_504_and_says_the_records_may_still_arrive() {
    let mut h = harness("ack_timeout: 50ms", 8);
    let (status, _, body) = send(&h.app, post("/ingest", None, "{}")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(body["reason"].as_str().unwrap().contains("may still be delivered"), "{body}");
    assert_eq!(drain(&mut h.rx).len(), 1, "the record stays queued");
    let (status, _, body) = send(&h.app, post("/_bulk", None, "{\"index\":{\"_index\":\"a\"}}\n{}\n")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "ES clients retry 503");
    assert_eq!(body["error"]["type"], "timeout_exception");
}

#[tokio::test]
async fn bulk_answers_per_item_like_elasticsearch() {
    let mut h = harness("ack: accepted\nbulk_metadata_key: _es", 8);
    let body = "{\"index\":{\"_index\":\"logs\",\"_id\":\"a1\"}}\n{\"m\":1}\n{\"create\":{}}\n{\"m\":2}\n{\"delete\":{\"_id\":\"a1\"}}\n{\"update\":{\"_id\":\"a1\"}}\n{\"doc\":{}}\n";
    let (status, headers, answer) =
        send(&h.app, post("/other/_bulk", Some("application/vnd.elasticsearch+x-ndjson; compatible-with=8"), body))
            .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(headers["x-elastic-product"], "Elasticsearch");
    assert_eq!(answer["errors"], false);
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    let first = &items[0]["index"];
    assert_eq!(
        (first["_index"].as_str(), first["_id"].as_str(), first["status"].as_u64()),
        (Some("logs"), Some("a1"), Some(201))
    );
    assert_eq!(first["result"], "created");
    assert_eq!(first["_shards"]["successful"], 1);
    assert!(first["_seq_no"].is_u64() && first["_primary_term"] == 1);
    assert_eq!(items[1]["create"]["_index"], "other", "the path's index");
    assert!(items[1]["create"]["_id"].as_str().is_some_and(|id| !id.is_empty()), "an id is generated");
    assert_eq!(
        (items[2]["delete"]["status"].as_u64(), items[2]["delete"]["result"].as_str()),
        (Some(200), Some("deleted"))
    );
    assert_eq!(
        (items[3]["update"]["status"].as_u64(), items[3]["update"]["result"].as_str()),
        (Some(200), Some("updated"))
    );
    assert!(items.iter().all(|i| i.as_object().unwrap().values().all(|a| a.get("_type").is_none())), "8.x: no _type");

    let records = drain(&mut h.rx);
    assert_eq!(records.len(), 4);
    assert_eq!(&*records[0].tag, "es.logs");
    assert_eq!(&*records[1].tag, "es.other");
    assert_eq!(body_of(&records[0]), json!({"m": 1, "_es": {"index": "logs", "id": "a1", "action": "index"}}));
    assert_eq!(body_of(&records[2]), json!({"_es": {"index": "other", "id": "a1", "action": "delete"}}));
    assert_eq!(body_of(&records[3]), json!({"doc": {}, "_es": {"index": "other", "id": "a1", "action": "update"}}));
    assert_eq!(records[0].origin.as_ref().unwrap().to_string(), "http:test/logs/a1@0", "the _id makes the origin");
    assert_eq!(records[1].origin.as_ref().unwrap().offset, 4, "else the line");
}

#[tokio::test]
async fn bad_bulk_requests_answer_in_elasticsearch_error_shape() {
    let mut h = accepted();
    let (status, headers, body) = send(&h.app, post("/_bulk", None, "{\"index\":{}}\n{}\n")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-elastic-product"], "Elasticsearch");
    assert_eq!(body["status"], 400);
    assert_eq!(body["error"]["type"], "action_request_validation_exception");
    assert_eq!(
        body["error"]["reason"],
        "line 1: index is missing; give `_index` in the action or POST to /{index}/_bulk"
    );
    assert_eq!(body["error"]["root_cause"][0]["type"], "action_request_validation_exception");
    let (status, _, body) = send(&h.app, post("/a/_bulk", None, "{\"index\":{}}\n{\"x\":}\n")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["reason"], "line 2, column 6 (byte offset 18): invalid JSON: expected value");
    assert!(drain(&mut h.rx).is_empty());
}

#[tokio::test]
async fn es_clients_find_an_elasticsearch_8_on_connect() {
    let h = accepted();
    let (status, headers, body) = send(&h.app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-elastic-product"], "Elasticsearch");
    assert_eq!(body["version"]["number"], "8.15.0");
    assert_eq!(body["tagline"], "You Know, for Search");
    let (status, headers, _) = send(&h.app, Request::head("/").body(Body::empty()).unwrap()).await;
    assert_eq!((status, &headers["x-elastic-product"]), (StatusCode::OK, &"Elasticsearch".parse().unwrap()));
    for path in ["/_license", "/_xpack", "/_nodes/http", "/_cluster/health"] {
        let (status, headers, _) = send(&h.app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["x-elastic-product"], "Elasticsearch", "{path}");
    }
    let (status, _, body) = send(&h.app, Request::get("/_index_template/x").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "resource_not_found_exception");
}

fn real_state(yaml: &str) -> (HttpInputState, mpsc::Receiver<Batch>) {
    let config: HttpInputConfig = serde_norway::from_str(yaml).unwrap();
    let (tx, rx) = mpsc::channel(8);
    let ctx = InputContext::new("web", "http".into(), 1000, Clock::system(), CancellationToken::new(), tx, "dl".into());
    (HttpInputState::new(&config, "test", ctx).unwrap(), rx)
}

const RAW_POST: &[u8] =
    b"POST /ingest/real HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{\"n\":1}";

#[tokio::test]
async fn serves_on_a_real_port_until_shutdown() {
    let (state, mut rx) = real_state("ack: accepted");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(listener, None, state, shutdown.clone()));
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(RAW_POST).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(&*rx.recv().await.unwrap()[0].tag, "real");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    use tokio_rustls::rustls;
    let dir = tempfile::tempdir().unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), signing_key.serialize_pem()).unwrap();
    let tls = TlsSettings {
        cert: Some(dir.path().join("cert.pem")),
        key: Some(dir.path().join("key.pem")),
        ..TlsSettings::default()
    };
    let acceptor = tls_acceptor(&tls).unwrap();

    let (state, mut rx) = real_state("ack: accepted");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(listener, Some(acceptor), state, shutdown.clone()));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(name, tcp).await.unwrap();
    stream.write_all(RAW_POST).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(body_of(&rx.recv().await.unwrap()[0]), json!({"n": 1}));

    // Plain HTTP on the TLS port gets nothing useful.
    let mut plain = tokio::net::TcpStream::connect(address).await.unwrap();
    plain.write_all(RAW_POST).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), plain.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap().unwrap();
}

#[test]
fn unreadable_tls_files_are_named_in_the_error() {
    let tls = TlsSettings {
        cert: Some("/nonexistent/cert.pem".into()),
        key: Some("/nonexistent/key.pem".into()),
        ..TlsSettings::default()
    };
    let error = tls_acceptor(&tls).err().unwrap().to_string();
    assert!(error.starts_with("tls: /nonexistent/cert.pem: "), "{error}");
}

// ---- config ----

#[test]
fn config_takes_the_token_from_the_environment_and_rebases_tls_paths() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("weir.yaml");
    let text = "inputs:\n  - type: http\n    auth_token: ${TOKEN}\n    tls: { cert: c.pem, key: k.pem }\n    ack: accepted\n    max_body_bytes: 1MiB\noutputs:\n  - { type: blackhole, match: '*' }\n";
    let env = |name: &str| (name == "TOKEN").then(|| "from-env".to_string());
    let config = crate::config::parse(&file, text, env).unwrap();
    let crate::inputs::InputConfig::Http(http) = &config.inputs[0].config else { panic!("not http") };
    assert_eq!(http.auth_token.as_ref().map(|t| t.expose()), Some("from-env"));
    assert_eq!(http.tls.as_ref().unwrap().cert, Some(dir.path().join("c.pem")));
    assert_eq!(http.ack, super::AckMode::Accepted);
    assert_eq!(http.max_body_bytes.0, 1 << 20);
    assert_eq!(http.address.to_string(), "127.0.0.1:9880");
    assert_eq!(&*config.inputs[0].tag, "http", "the default tag is the input's name");

    let error = crate::config::parse(&file, &text.replace("ack: accepted", "ack: acepted"), env).unwrap_err();
    assert!(error.to_string().contains("inputs[0].ack"), "{error}");
    let error = crate::config::parse(&file, &text.replace("ack: accepted", "acks: accepted"), env).unwrap_err();
    assert!(error.to_string().contains("unknown field `acks`"), "{error}");
}

#[tokio::test]
async fn update_and_delete_are_refused_per_item_without_bulk_metadata_key_or_id() {
    let mut h = accepted();
    let body = "{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"index\":{\"_index\":\"a\"}}\n{\"m\":1}\n{\"update\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{\"doc\":{\"m\":2}}";
    let (status, _, answer) = send(&h.app, post("/_bulk", None, body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["errors"], true);
    assert_eq!(answer["items"][0]["delete"]["status"], 400);
    assert_eq!(
        answer["items"][0]["delete"]["error"]["reason"],
        "delete (line 1) was not applied: set bulk_metadata_key on the http input to carry update and delete actions to the outputs"
    );
    assert_eq!(answer["items"][1]["index"]["status"], 201, "the rest goes through");
    assert_eq!(answer["items"][2]["update"]["error"]["type"], "illegal_argument_exception");
    assert_eq!(drain(&mut h.rx).len(), 1);

    let mut h = harness("ack: accepted\nbulk_metadata_key: _es", 8);
    let body = "{\"delete\":{\"_index\":\"a\"}}\n{\"update\":{\"_index\":\"a\"}}\n{\"doc\":{}}\n";
    let (_, _, answer) = send(&h.app, post("/_bulk", None, body)).await;
    for (i, action) in [(0, "delete"), (1, "update")] {
        let item = &answer["items"][i][action];
        assert_eq!(item["status"], 400);
        assert_eq!(item["error"]["type"], "action_request_validation_exception");
        assert_eq!(item["error"]["reason"], "Validation Failed: 1: id is missing;");
    }
    assert!(drain(&mut h.rx).is_empty());
}

#[tokio::test]
async fn routing_and_pipeline_reach_the_metadata_and_query_parameters_are_defaults() {
    let mut h = harness("ack: accepted\nbulk_metadata_key: _es", 8);
    let body = "{\"index\":{\"_index\":\"a\",\"_id\":\"1\",\"routing\":\"u1\",\"pipeline\":\"p1\",\"_type\":\"_doc\",\"if_seq_no\":3}}\n{}\n{\"create\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{}";
    let (status, _, answer) = send(&h.app, post("/_bulk?routing=u0&pipeline=p0&refresh=wait_for", None, body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let records = drain(&mut h.rx);
    assert_eq!(
        body_of(&records[0])["_es"],
        json!({"index": "a", "id": "1", "action": "index", "routing": "u1", "pipeline": "p1"})
    );
    assert_eq!(
        body_of(&records[1])["_es"],
        json!({"index": "a", "id": "2", "action": "create", "routing": "u0", "pipeline": "p0"})
    );
    let (status, _, answer) = send(&h.app, post("/_bulk?refresh=soon", None, body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["type"], "illegal_argument_exception");
    assert_eq!(answer["error"]["reason"], "unknown value for refresh: [soon]; expected true, false or wait_for");
}

#[tokio::test]
async fn filter_path_trims_the_bulk_answer_as_logstash_asks() {
    let h = accepted();
    let body = "{\"index\":{\"_index\":\"a\"}}\n{}\n{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n";
    let path = "/_bulk?filter_path=errors,items.*.error.type,items.*.status";
    let (status, _, answer) = send(&h.app, post(path, None, body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"errors": true, "items": [
            {"index": {"status": 201}},
            {"delete": {"status": 400, "error": {"type": "illegal_argument_exception"}}},
        ]})
    );
}

#[tokio::test]
async fn a_pipeline_that_stalls_part_way_answers_429_for_only_the_items_it_did_not_take() {
    // Room for two batches of one record, and nothing drains.
    let mut h = harness_batched("ack: accepted\nqueue_wait: 20ms", 2, 1);
    let body: String =
        (0..4).map(|i| format!("{{\"index\":{{\"_index\":\"a\",\"_id\":\"{i}\"}}}}\n{{\"n\":{i}}}\n")).collect();
    let (status, _, answer) = send(&h.app, post("/_bulk", None, body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["errors"], true);
    let statuses: Vec<u64> =
        answer["items"].as_array().unwrap().iter().map(|i| i["index"]["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [201, 201, 429, 429]);
    assert_eq!(answer["items"][2]["index"]["error"]["type"], "es_rejected_execution_exception");
    assert_eq!(answer["items"][2]["index"]["_id"], "2");
    let records = drain(&mut h.rx);
    assert_eq!(records.iter().map(|r| body_of(r)["n"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1]);
    // Nothing taken at all: the whole request is 429, as on /ingest.
    for _ in 0..2 {
        h.tx.try_send(Vec::new()).unwrap();
    }
    let (status, headers, answer) = send(&h.app, post("/_bulk", None, body)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(answer["error"]["type"], "es_rejected_execution_exception");
}

#[tokio::test]
async fn a_7x_version_is_claimed_and_answered_with_types() {
    let h = harness("ack: accepted\nes_version: 7.17.0", 8);
    let (_, _, root) = send(&h.app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(root["version"]["number"], "7.17.0");
    assert_eq!(root["version"]["minimum_wire_compatibility_version"], "6.8.0");
    let (_, _, answer) =
        send(&h.app, post("/_bulk", None, "{\"index\":{\"_index\":\"a\",\"_type\":\"_doc\"}}\n{}\n")).await;
    assert_eq!(answer["items"][0]["index"]["_type"], "_doc");
    for bad in ["6.8.0", "8.15", "8.x.0", ""] {
        let error = serde_norway::from_str::<HttpInputConfig>(&format!("es_version: '{bad}'")).unwrap_err();
        assert!(
            error.to_string().contains("expected MAJOR.MINOR.PATCH with a major version of 7, 8 or 9"),
            "{bad}: {error}"
        );
    }
}

#[tokio::test]
async fn templates_policies_and_pipelines_are_found_once_put_as_shippers_check() {
    let h = harness("ack: accepted\nauth_token: t", 8);
    let request = |method: &str, path: &str, body: &'static str| {
        Request::builder().method(method).uri(path).header("authorization", "Bearer t").body(Body::from(body)).unwrap()
    };
    for (path, put, get_key) in [
        (
            "/_index_template/logs",
            "{\"index_patterns\":[\"logs-*\"]}",
            "/index_templates/0/index_template/index_patterns/0",
        ),
        ("/_template/logs", "{\"index_patterns\":[\"logs-*\"]}", "/logs/index_patterns/0"),
        ("/_component_template/logs", "{\"template\":{}}", "/component_templates/0/name"),
        ("/_ilm/policy/logs", "{\"policy\":{\"phases\":{}}}", "/logs/policy/phases"),
        ("/_ingest/pipeline/logs", "{\"processors\":[]}", "/logs/processors"),
    ] {
        let (status, headers, _) = send(&h.app, request("HEAD", path, "")).await;
        assert_eq!(
            (status, &headers["x-elastic-product"]),
            (StatusCode::NOT_FOUND, &"Elasticsearch".parse().unwrap()),
            "{path}"
        );
        let (status, _, answer) = send(&h.app, request("PUT", path, put)).await;
        assert_eq!((status, &answer), (StatusCode::OK, &json!({"acknowledged": true})), "{path}");
        let (status, _, _) = send(&h.app, request("HEAD", path, "")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let (status, _, answer) = send(&h.app, request("GET", path, "")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(answer.pointer(get_key).is_some(), "{path}: {answer}");
        let (status, _, _) = send(&h.app, request("DELETE", path, "")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _, answer) = send(&h.app, request("GET", "/_index_template/none", "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"]["reason"], "index template matching [none] not found");
    let (status, _, answer) = send(&h.app, request("PUT", "/_ilm/policy/x", "[1]")).await;
    assert_eq!(
        (status, answer["error"]["reason"].as_str()),
        (StatusCode::BAD_REQUEST, Some("the body is not a JSON object"))
    );
    let unauthorised = Request::get("/_ilm/policy/logs").body(Body::empty()).unwrap();
    assert_eq!(send(&h.app, unauthorised).await.0, StatusCode::UNAUTHORIZED);
    let (_, _, xpack) = send(&h.app, request("GET", "/_xpack", "")).await;
    assert_eq!(xpack["features"]["ilm"]["available"], true);
}
