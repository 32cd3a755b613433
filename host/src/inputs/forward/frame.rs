//! The Fluent Forward protocol's frames, pure: telling a frame's carrier
//! mode apart, reading its options, entries and times, and rendering its
//! msgpack records as JSON bodies. Where a frame ends in the byte stream
//! is found by [`crate::core::msgpack::Scan`].
//!
//! The spec is Fluentd's "Forward Protocol Specification v1"
//! (`docs/forward-protocol.md` says what Weir implements of it). A frame is
//! one msgpack array:
//!
//! | mode | shape |
//! |---|---|
//! | Message | `[tag, time, record, option?]` |
//! | Forward | `[tag, [[time, record], …], option?]` |
//! | PackedForward | `[tag, bin\|str of concatenated [time, record], option?]` |
//! | CompressedPackedForward | the same, gzipped, with option `compressed: "gzip"` |
//!
//! `time` is an integer or float of seconds, or the EventTime extension
//! (type 0: seconds and nanoseconds, 32-bit big-endian each). Fluent Bit's
//! own event format `[[time, metadata], record]` is read too (metadata is
//! dropped). A msgpack `nil` is a heartbeat. Sockets, acks and the
//! handshake are elsewhere (`server.rs`, `handshake.rs`).

use std::io::Read;

use rmpv::ValueRef;

use crate::core::msgpack::{Json, kind, text};
use crate::core::record::Timestamp;

/// Why a frame cannot be read. A bad frame closes its connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not msgpack, or msgpack of the wrong shape.
    #[error("{0}")]
    Shape(String),
    /// The gzip stream of a CompressedPackedForward frame is corrupt.
    #[error("entries do not gunzip: {0}")]
    Gzip(String),
    /// Decompressed entries are larger than the limit.
    #[error("entries decompress to more than {0} bytes")]
    TooLarge(usize),
}

fn shape(message: impl Into<String>) -> FrameError {
    FrameError::Shape(message.into())
}

/// A frame's `option` map: what Weir reads of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `chunk`: the client wants `{"ack": chunk}` once the events are taken.
    pub chunk: Option<String>,
    /// `compressed: "gzip"`: CompressedPackedForward.
    pub gzip: bool,
    /// Fluent Bit's `fluent_signal`: 0 for logs, else metrics or traces.
    pub signal: Option<u64>,
}

/// One frame of events, read but not yet turned into records.
#[derive(Debug)]
pub struct EventFrame<'a> {
    /// The tag all its events share.
    pub tag: &'a str,
    /// Its events, or why each one is unreadable (the frame stays good).
    pub entries: Vec<Result<Event, BadEntry>>,
    /// Its options.
    pub options: Options,
}

/// One event: its time and its record as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event time, ns since the epoch.
    pub time: Timestamp,
    /// The record, as one JSON object.
    pub body: Vec<u8>,
}

/// An entry of a good frame that is not `[time, record]`: dead-lettered
/// with the reason, the rest of the frame goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry {
    /// What is wrong with it.
    pub reason: String,
    /// The entry, rendered as JSON, for the dead letter.
    pub entry: Vec<u8>,
}

impl BadEntry {
    fn of(value: &ValueRef<'_>, reason: String) -> Self {
        BadEntry { reason, entry: serde_json::to_vec(&Json(value)).unwrap_or_default() }
    }
}

/// What a complete msgpack value read from a connection is.
#[derive(Debug)]
pub enum Frame<'a> {
    /// `nil`: a heartbeat; nothing to do.
    Heartbeat,
    /// Events in one of the four modes.
    Events(EventFrame<'a>),
    /// A handshake message (`PING`), as its array elements.
    Handshake(&'a str, Vec<ValueRef<'a>>),
}

/// Read one complete msgpack value (as [`Scan`](crate::core::msgpack::Scan) delimited it) as a frame.
/// `max_decompressed` bounds CompressedPackedForward entries.
///
/// # Errors
/// A [`FrameError`] when the value is not a frame; a bad entry inside a good
/// frame is an `Err` in [`EventFrame::entries`] instead.
pub fn read_frame(bytes: &[u8], max_decompressed: usize) -> Result<Frame<'_>, FrameError> {
    let value = decode_one(bytes)?;
    let items = match value {
        ValueRef::Nil => return Ok(Frame::Heartbeat),
        ValueRef::Array(items) => items,
        other => return Err(shape(format!("expected an array, got {}", kind(&other)))),
    };
    let mut items = items.into_iter();
    let tag = match items.next() {
        Some(ValueRef::String(s)) => s.into_str().ok_or_else(|| shape("tag is not UTF-8"))?,
        Some(other) => return Err(shape(format!("expected a tag string first, got {}", kind(&other)))),
        None => return Err(shape("empty array")),
    };
    if matches!(tag, "PING" | "HELO" | "PONG") {
        return Ok(Frame::Handshake(tag, items.collect()));
    }
    let Some(second) = items.next() else { return Err(shape("a tag with no events")) };
    let rest: Vec<ValueRef<'_>> = items.collect();
    let (entries, option) = match second {
        // Message mode: [tag, time, record, option?]
        time @ (ValueRef::Integer(_) | ValueRef::F32(_) | ValueRef::F64(_) | ValueRef::Ext(..)) => {
            let mut rest = rest.into_iter();
            let record = rest.next().ok_or_else(|| shape("message mode without a record"))?;
            let entry = event_time(&time)
                .and_then(|time| Ok(Event { time, body: record_json(&record)? }))
                .map_err(|reason| BadEntry::of(&ValueRef::Array(vec![time.clone(), record.clone()]), reason));
            (vec![entry], rest.next())
        }
        // Forward mode: [tag, [[time, record], …], option?]
        ValueRef::Array(entries) => (entries.iter().map(entry).collect(), rest.into_iter().next()),
        // (Compressed)PackedForward: [tag, bin|str stream, option?]
        ValueRef::Binary(stream) => return packed(tag, stream, rest.into_iter().next(), max_decompressed),
        ValueRef::String(stream) => {
            return packed(tag, stream.as_bytes(), rest.into_iter().next(), max_decompressed);
        }
        other => return Err(shape(format!("the second element is {}, which is no carrier mode", kind(&other)))),
    };
    let options = read_options(option.as_ref())?;
    if options.gzip {
        return Err(shape("option `compressed` is set but the entries are not a binary stream"));
    }
    Ok(Frame::Events(EventFrame { tag, entries, options }))
}

fn packed<'a>(
    tag: &'a str,
    stream: &[u8],
    option: Option<ValueRef<'_>>,
    max_decompressed: usize,
) -> Result<Frame<'a>, FrameError> {
    let options = read_options(option.as_ref())?;
    if let Some(signal) = options.signal.filter(|&s| s != 0) {
        // Fluent Bit's metrics and traces travel as cmetrics/ctraces
        // payloads: one dead letter says so, and the sender gets its ack.
        let reason = format!("fluent_signal {signal}: Fluent Bit metrics or traces, which weir does not take");
        let entry = serde_json::to_vec(&serde_json::json!({ "fluent_signal": signal, "bytes": stream.len() }))
            .expect("a small object serialises");
        return Ok(Frame::Events(EventFrame { tag, entries: vec![Err(BadEntry { reason, entry })], options }));
    }
    let inflated;
    let mut stream = if options.gzip {
        inflated = gunzip(stream, max_decompressed)?;
        &inflated[..]
    } else {
        stream
    };
    let mut entries = Vec::new();
    while !stream.is_empty() {
        // A broken entry stream cannot be resynchronised: the frame is bad.
        let value = rmpv::decode::read_value_ref(&mut stream)
            .map_err(|e| shape(format!("entry {} of the packed stream: {e}", entries.len())))?;
        entries.push(entry(&value));
    }
    Ok(Frame::Events(EventFrame { tag, entries, options }))
}

fn decode_one(bytes: &[u8]) -> Result<ValueRef<'_>, FrameError> {
    let mut rest = bytes;
    let value = rmpv::decode::read_value_ref(&mut rest).map_err(|e| shape(format!("not msgpack: {e}")))?;
    if !rest.is_empty() {
        return Err(shape("trailing bytes after the frame"));
    }
    Ok(value)
}

/// Gunzip every member of `stream` (the spec allows concatenated members),
/// refusing more than `max` bytes out.
fn gunzip(stream: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(stream)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| FrameError::Gzip(e.to_string()))?;
    if out.len() > max {
        return Err(FrameError::TooLarge(max));
    }
    Ok(out)
}

fn read_options(option: Option<&ValueRef<'_>>) -> Result<Options, FrameError> {
    let mut options = Options::default();
    let pairs = match option {
        None | Some(ValueRef::Nil) => return Ok(options),
        Some(ValueRef::Map(pairs)) => pairs,
        Some(other) => return Err(shape(format!("option is {}, not a map", kind(other)))),
    };
    for (key, value) in pairs {
        match (text(key), value) {
            (Some("chunk"), ValueRef::String(s)) => {
                options.chunk = Some(s.as_str().ok_or_else(|| shape("option `chunk` is not UTF-8"))?.to_string());
            }
            (Some("chunk"), other) => return Err(shape(format!("option `chunk` is {}, not a string", kind(other)))),
            (Some("compressed"), v) => options.gzip = text(v) == Some("gzip"),
            (Some("fluent_signal"), ValueRef::Integer(n)) => options.signal = n.as_u64(),
            _ => {}
        }
    }
    Ok(options)
}

/// One `[time, record]` entry (or Fluent Bit's `[[time, metadata], record]`).
fn entry(value: &ValueRef<'_>) -> Result<Event, BadEntry> {
    read_entry(value).map_err(|reason| BadEntry::of(value, reason))
}

fn read_entry(value: &ValueRef<'_>) -> Result<Event, String> {
    let ValueRef::Array(pair) = value else { return Err(format!("entry is {}, not [time, record]", kind(value))) };
    let [time, record] = pair.as_slice() else {
        return Err(format!("entry has {} elements, not [time, record]", pair.len()));
    };
    let time = match time {
        ValueRef::Array(header) => event_time(header.first().ok_or("entry header [time, metadata] is empty")?)?,
        time => event_time(time)?,
    };
    Ok(Event { time, body: record_json(record)? })
}

/// Seconds (integer or float) or EventTime, as ns since the epoch.
fn event_time(value: &ValueRef<'_>) -> Result<Timestamp, String> {
    const NS: i64 = 1_000_000_000;
    match value {
        ValueRef::Integer(n) => {
            n.as_i64().and_then(|s| s.checked_mul(NS)).ok_or_else(|| format!("time {n} is out of range"))
        }
        ValueRef::F64(s) => float_seconds(*s),
        ValueRef::F32(s) => float_seconds(f64::from(*s)),
        ValueRef::Ext(0, data) => {
            let bytes: &[u8; 8] =
                (*data).try_into().map_err(|_| format!("EventTime has {} bytes, not 8", data.len()))?;
            let seconds = i64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
            let nanos = i64::from(u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]));
            if nanos >= NS {
                return Err(format!("EventTime nanoseconds {nanos} are not below one second"));
            }
            Ok(seconds * NS + nanos)
        }
        ValueRef::Ext(kind, _) => Err(format!("time is extension type {kind}, not EventTime (0)")),
        other => Err(format!("time is {}, not a number or EventTime", kind(other))),
    }
}

fn float_seconds(seconds: f64) -> Result<Timestamp, String> {
    let ns = (seconds * 1e9).round();
    // i64 nanoseconds reach the year 2262.
    if ns.is_finite() && ns.abs() < 9.2e18 { Ok(ns as i64) } else { Err(format!("time {seconds} is out of range")) }
}

/// A record (a msgpack map) as JSON object bytes.
fn record_json(record: &ValueRef<'_>) -> Result<Vec<u8>, String> {
    if !matches!(record, ValueRef::Map(_)) {
        return Err(format!("record is {}, not a map", kind(record)));
    }
    serde_json::to_vec(&Json(record)).map_err(|e| format!("record does not render as JSON: {e}"))
}

/// `{"ack": chunk}`, the answer to a frame whose option carried `chunk`.
pub fn ack(chunk: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() + 8);
    rmp::encode::write_map_len(&mut out, 1).expect("writing to a Vec cannot fail");
    rmp::encode::write_str(&mut out, "ack").expect("writing to a Vec cannot fail");
    rmp::encode::write_str(&mut out, chunk).expect("writing to a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests;
