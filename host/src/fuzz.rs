//! Entry points for the fuzz targets under `fuzz/host/` (`just fuzz`), and
//! the replay of every input that once crashed one (`fuzz/host/regressions/`)
//! in plain `cargo test`: the fuzzer and the regression tests call the same
//! functions.
//!
//! Each entry takes arbitrary bytes, runs one of the parsers that reads what
//! clients and operators send (HTTP bodies and their encodings, `_bulk`,
//! the config and its `${VAR}`s, Fluent forward frames, OTLP requests, a
//! durable buffer's segment files as a crash may leave them), and
//! panics only when a parser does, or when what it accepts breaks a promise
//! the rest of the pipeline relies on (a record body is one well-formed JSON
//! object on one line). It owns no parsing rule itself.

use std::path::Path;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message as _;

use crate::core::msgpack::{Scan, Scanned};
use crate::inputs::buffer;
use crate::inputs::forward::frame::{Frame, read_frame};
use crate::inputs::http::decode::{self, BodyFormat, ContentEncoding, Limits};
use crate::inputs::otlp::map;

/// Limits small enough that the fuzzer reaches them.
const LIMITS: Limits = Limits { max_records: 64, max_line_bytes: 4096 };
/// Decompressed bytes a fuzzed body may grow to.
const MAX_DECOMPRESSED: usize = 1 << 20;

/// A fuzz target: its name and its entry point, which panics on a bug.
pub type Target = (&'static str, fn(&[u8]));

/// The targets, by name: what `fuzz/host/fuzz_targets/NAME.rs` calls and
/// what the regression test replays `fuzz/host/regressions/NAME/*` through.
pub const TARGETS: &[Target] = &[
    ("http_body", http_body),
    ("http_compressed", http_compressed),
    ("bulk", bulk),
    ("config", config),
    ("forward", forward),
    ("otlp", otlp),
    ("buffer_segment", buffer_segment),
];

/// An `/ingest` body: the first byte picks the format (or sniffing), the
/// rest is the body.
pub fn http_body(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let body = decode::without_bom(Bytes::copy_from_slice(body));
    let format = match pick % 4 {
        0 => BodyFormat::Ndjson,
        1 => BodyFormat::Json,
        2 => BodyFormat::Text,
        _ => BodyFormat::sniff(&body),
    };
    if let Ok(items) = decode::decode(&body, format, "message", LIMITS) {
        assert!(items.len() <= LIMITS.max_records);
        for item in items {
            check_record(&item.body);
        }
    }
}

/// A compressed `/ingest` body: the first byte picks gzip or deflate, the
/// rest is decompressed (within a limit) and decoded as sniffed.
pub fn http_compressed(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let encoding = if pick.is_multiple_of(2) { ContentEncoding::Gzip } else { ContentEncoding::Deflate };
    let Ok(plain) = decode::decompress(body, encoding, MAX_DECOMPRESSED, body.len()) else { return };
    assert!(plain.len() <= MAX_DECOMPRESSED);
    let format = BodyFormat::sniff(&plain);
    if let Ok(items) = decode::decode(&plain, format, "message", LIMITS) {
        items.iter().for_each(|item| check_record(&item.body));
    }
}

/// A `_bulk` body, with and without an index in the path.
pub fn bulk(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    for index in [None, Some("logs")] {
        if let Ok(items) = decode::decode_bulk(&body, index, LIMITS) {
            for doc in items.iter().filter_map(|item| item.doc.as_ref()) {
                check_record(doc);
            }
        }
    }
}

/// A config file's text, with every `${VAR}` set to a value that is text
/// a YAML parser would read as more than a scalar.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = |name: &str| name.len().is_multiple_of(2).then(|| "a: [b, {c: d}]\n# not a comment ${X}".to_string());
    let _ = crate::config::parse(Path::new("/nonexistent/fuzz.yaml"), text, env);
}

/// The bytes a Fluent forward connection sends: cut into msgpack values as
/// the input does, each read as a frame.
pub fn forward(data: &[u8]) {
    let mut rest = data;
    while !rest.is_empty() {
        let mut scan = Scan::default();
        let Scanned::Complete(n) = scan.advance(rest) else { return };
        let (value, tail) = rest.split_at(n);
        if let Ok(Frame::Events(frame)) = read_frame(value, MAX_DECOMPRESSED) {
            for event in frame.entries.into_iter().flatten() {
                check_record(&event.body);
            }
        }
        rest = tail;
    }
}

/// An OTLP logs export: the first byte picks protobuf or OTLP/JSON.
pub fn otlp(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let request = if pick.is_multiple_of(2) {
        ExportLogsServiceRequest::decode(body).ok()
    } else {
        serde_json::from_slice::<ExportLogsServiceRequest>(body).ok()
    };
    if let Some(request) = request {
        for item in map::items(&request) {
            if item.problem.is_none() {
                check_record(&item.body);
            }
        }
    }
}

/// What every input promises the pipeline of a record body.
/// A durable buffer segment as a crash or a failing disk may leave it:
/// frames are read as at start-up, until the end or the first damage, and
/// every frame read whole encodes back to the same bytes.
pub fn buffer_segment(data: &[u8]) {
    let mut reader = std::io::Cursor::new(data);
    let mut at = 0usize;
    while let Ok(Some((id, size, records))) = buffer::read_frame(&mut reader) {
        let size = usize::try_from(size).expect("a frame fits in memory");
        assert!(size > 0 && at + size <= data.len(), "a frame of {size} bytes at {at} of {}", data.len());
        let Some(records) = records else { break };
        assert_eq!(buffer::frame(&records, id), &data[at..at + size], "frame {id} round-trips");
        at += size;
    }
}

fn check_record(body: &[u8]) {
    assert!(!body.contains(&b'\n'), "a record body holds no newline: {:?}", String::from_utf8_lossy(body));
    // Well-formed JSON (RFC 8259), read as syntax: a number beyond f64's
    // range is valid JSON that Weir carries unchanged, though
    // `serde_json::Value` refuses it (plugins read it as not a number,
    // Elasticsearch dead-letters the document with its reason).
    let raw: &serde_json::value::RawValue = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("a record body is well-formed JSON ({e}): {:?}", String::from_utf8_lossy(body)));
    assert!(raw.get().starts_with('{'), "a record body is an object: {}", raw.get());
}

#[cfg(test)]
mod tests;
