//! Pure decoding of HTTP input bodies: `Content-Encoding` (gzip, deflate)
//! with a cap on the decompressed size, the body format chosen by
//! `Content-Type` or sniffed, NDJSON, a JSON object, a JSON array, raw text
//! lines, and Elasticsearch's `_bulk` format.
//!
//! No I/O and no pipeline types: bytes in, record bodies or a
//! [`DecodeError`] saying what is wrong and where (line, column, byte
//! offset) out. The server turns errors into status codes with
//! [`DecodeError::class`]. Record bodies are slices of the request body
//! where possible (no copy), re-serialised only when a pretty-printed JSON
//! value spans lines (a record body never holds a newline).

use std::borrow::Cow;
use std::io::{BufRead, Read};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::core::bom;

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// `Content-Encoding` names something other than gzip, deflate or identity.
    #[error("unsupported content encoding {0:?}; expected gzip, deflate or identity")]
    UnsupportedEncoding(String),
    /// The compressed stream is not valid.
    #[error("the {encoding} body is corrupt: {reason}")]
    Corrupt {
        /// `gzip` or `deflate`.
        encoding: &'static str,
        /// What the decompressor said.
        reason: String,
    },
    /// Decompression passed `max_decompressed_bytes` (a bomb guard).
    #[error("the {encoding} body decompresses to more than {max} bytes (max_decompressed_bytes)")]
    DecompressedTooLarge {
        /// `gzip` or `deflate`.
        encoding: &'static str,
        /// The limit.
        max: usize,
    },
    /// The body is empty where something was required.
    #[error("the request body is empty; {expected}")]
    Empty {
        /// What was expected instead.
        expected: &'static str,
    },
    /// The body is not what its format requires.
    #[error("{at}: {reason}")]
    Malformed {
        /// Where: `line 3, column 7 (byte offset 120)`, `element 2 of the array (byte offset 9)`.
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// A line or record is longer than `max_line_bytes`.
    #[error("{at} is {len} bytes, longer than max_line_bytes ({max})")]
    LineTooLong {
        /// `line 3 (byte offset 120)` or `element 2 of the array (byte offset 9)`.
        at: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More records than `max_records`.
    #[error("more than {max} records in one request (max_records)")]
    TooManyRecords {
        /// The limit.
        max: usize,
    },
    /// A JSON value nested deeper than [`MAX_DEPTH`].
    #[error("{at}: JSON nested deeper than {max} levels")]
    TooDeep {
        /// `line 3 (byte offset 120)` or `element 2 of the array (byte offset 9)`, with the offset where it got too deep.
        at: String,
        /// The limit.
        max: usize,
    },
    /// A `_bulk` action names no index and the path gives none.
    #[error("line {line}: index is missing; give `_index` in the action or POST to /{{index}}/_bulk")]
    MissingIndex {
        /// The action's line.
        line: u64,
    },
}

/// How a decode error is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 400: malformed input.
    BadRequest,
    /// 413: over a configured limit.
    TooLarge,
    /// 415: an encoding Weir does not read.
    UnsupportedMedia,
}

impl DecodeError {
    /// The class of HTTP answer this error gets.
    pub fn class(&self) -> ErrorClass {
        match self {
            DecodeError::UnsupportedEncoding(_) => ErrorClass::UnsupportedMedia,
            DecodeError::DecompressedTooLarge { .. }
            | DecodeError::LineTooLong { .. }
            | DecodeError::TooManyRecords { .. } => ErrorClass::TooLarge,
            DecodeError::Corrupt { .. }
            | DecodeError::Empty { .. }
            | DecodeError::Malformed { .. }
            | DecodeError::TooDeep { .. }
            | DecodeError::MissingIndex { .. } => ErrorClass::BadRequest,
        }
    }

    /// The Elasticsearch error `type` for this error on `_bulk`.
    pub fn es_type(&self) -> &'static str {
        match self {
            DecodeError::UnsupportedEncoding(_) => "content_type_header_exception",
            DecodeError::Corrupt { .. } | DecodeError::Empty { .. } => "parse_exception",
            DecodeError::Malformed { .. } | DecodeError::TooDeep { .. } => "illegal_argument_exception",
            DecodeError::MissingIndex { .. } => "action_request_validation_exception",
            DecodeError::DecompressedTooLarge { .. }
            | DecodeError::LineTooLong { .. }
            | DecodeError::TooManyRecords { .. } => "content_too_long_exception",
        }
    }
}

impl DecodeError {
    /// A short fixed name of the error's kind, the `reason` of
    /// `weir_input_requests_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::UnsupportedEncoding(_) => "unsupported_encoding",
            DecodeError::Corrupt { .. } => "corrupt",
            DecodeError::DecompressedTooLarge { .. } => "decompressed_too_large",
            DecodeError::Empty { .. } => "empty",
            DecodeError::Malformed { .. } => "malformed",
            DecodeError::TooDeep { .. } => "too_deep",
            DecodeError::LineTooLong { .. } => "line_too_long",
            DecodeError::TooManyRecords { .. } => "too_many_records",
            DecodeError::MissingIndex { .. } => "missing_index",
        }
    }
}

/// Deepest nesting of arrays and objects a record may have: the most
/// serde_json's recursion limit (128) lets it read, so every filter built
/// on serde_json (the SDK's) can read what this input accepts, and no
/// recursive reader downstream meets a body built to exhaust its stack.
pub const MAX_DEPTH: usize = 127;

/// The offset in `json` (valid JSON) where its nesting passes `max`, if it
/// does: one pass over the bytes, strings skipped.
fn too_deep_at(json: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b, in_string) in json_bytes(json) {
        match b {
            _ if in_string => {}
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Some(i);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Each byte of `json` with its offset and whether it is inside a string
/// (quotes included).
fn json_bytes(json: &[u8]) -> impl Iterator<Item = (usize, u8, bool)> + '_ {
    let mut in_string = false;
    let mut escaped = false;
    json.iter().enumerate().map(move |(i, &b)| {
        let inside = in_string || b == b'"';
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        }
        (i, b, inside)
    })
}

/// A `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// Not compressed.
    Identity,
    /// gzip (RFC 1952), one or more members.
    Gzip,
    /// `deflate`: zlib (RFC 1950) as HTTP specifies, or raw deflate (RFC
    /// 1951) as some clients send, told apart by the zlib header.
    Deflate,
}

impl ContentEncoding {
    /// Parse the header's value; `None` is identity.
    pub fn parse(header: Option<&str>) -> Result<Self, DecodeError> {
        let value = header.map(|h| h.trim().to_ascii_lowercase());
        match value.as_deref() {
            None | Some("" | "identity") => Ok(ContentEncoding::Identity),
            Some("gzip" | "x-gzip") => Ok(ContentEncoding::Gzip),
            Some("deflate") => Ok(ContentEncoding::Deflate),
            Some(other) => Err(DecodeError::UnsupportedEncoding(other.to_string())),
        }
    }
}

/// Decompress what `reader` yields (the body as sent, read as it arrives)
/// into one buffer, refusing to produce more than `max` bytes: the body is
/// held once, decompressed, and the compressed form never whole.
/// `capacity` is a first guess of the decompressed size.
pub fn decompress(
    reader: impl Read,
    encoding: ContentEncoding,
    max: usize,
    capacity: usize,
) -> Result<Bytes, DecodeError> {
    let mut reader = std::io::BufReader::new(reader);
    let corrupt = |encoding, e: std::io::Error| DecodeError::Corrupt { encoding, reason: e.to_string() };
    let (name, reader): (&'static str, Box<dyn Read + '_>) = match encoding {
        ContentEncoding::Identity => ("identity", Box::new(reader)),
        ContentEncoding::Gzip => ("gzip", Box::new(flate2::bufread::MultiGzDecoder::new(reader))),
        // The zlib header is in the first two bytes; `fill_buf` peeks at
        // them (a body of one byte is corrupt either way).
        ContentEncoding::Deflate if is_zlib(reader.fill_buf().map_err(|e| corrupt("deflate", e))?) => {
            ("deflate", Box::new(flate2::bufread::ZlibDecoder::new(reader)))
        }
        ContentEncoding::Deflate => ("deflate", Box::new(flate2::bufread::DeflateDecoder::new(reader))),
    };
    let mut out = Vec::with_capacity(capacity.min(max));
    // One byte past the limit tells "exactly max" from "more than max"
    // without ever holding more than that.
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(limit).read_to_end(&mut out).map_err(|e| corrupt(name, e))?;
    if out.len() > max {
        return Err(DecodeError::DecompressedTooLarge { encoding: name, max });
    }
    Ok(out.into())
}

/// `body` without a leading byte order mark ([`bom`]), a slice of it.
pub fn without_bom(body: Bytes) -> Bytes {
    let skip = body.len() - bom::strip(&body).len();
    body.slice(skip..)
}

fn is_zlib(body: &[u8]) -> bool {
    // RFC 1950: CM = 8 (deflate) in the low nibble, and the 16-bit header
    // is a multiple of 31.
    matches!(body, [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0)
}

/// How a body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// One JSON object per line.
    Ndjson,
    /// One JSON object, or an array of objects. An object followed by more
    /// objects (NDJSON sent as `application/json`) is read as NDJSON.
    Json,
    /// Each non-blank line is a statement: `{"<message_key>": "<line>"}`.
    Text,
}

impl BodyFormat {
    /// The format a `Content-Type` names; `None` when it names none of them
    /// (absent, `application/octet-stream`, a form type…): sniff then.
    pub fn from_content_type(content_type: Option<&str>) -> Option<Self> {
        let essence = content_type?.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonlines"
            | "application/x-jsonlines"
            | "application/json-seq" => Some(BodyFormat::Ndjson),
            "application/json" => Some(BodyFormat::Json),
            "text/plain" => Some(BodyFormat::Text),
            _ => None,
        }
    }

    /// Guess from the body: `[` is a JSON array; `{` is a JSON object when
    /// the whole body is one, else NDJSON; anything else is text.
    pub fn sniff(body: &[u8]) -> Self {
        match first_non_space(body).map(|i| body[i]) {
            Some(b'[') => BodyFormat::Json,
            Some(b'{') if serde_json::from_slice::<&RawValue>(body).is_ok() => BodyFormat::Json,
            Some(b'{') => BodyFormat::Ndjson,
            _ => BodyFormat::Text,
        }
    }
}

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most records per body.
    pub max_records: usize,
    /// Longest line or record, in bytes.
    pub max_line_bytes: usize,
}

/// One record body and where it was in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// A JSON object without newlines.
    pub body: Bytes,
    /// 1-based line number (NDJSON, text) or array element number (JSON).
    pub position: u64,
}

/// Decode `body` in `format` into record bodies.
pub fn decode(body: &Bytes, format: BodyFormat, message_key: &str, limits: Limits) -> Result<Vec<Item>, DecodeError> {
    match format {
        BodyFormat::Ndjson => decode_ndjson(body, limits),
        BodyFormat::Text => decode_text(body, message_key, limits),
        BodyFormat::Json => decode_json(body, limits),
    }
}

/// The non-blank lines of `body` with their 1-based number and byte
/// offset, `\r\n` endings trimmed, each checked against `max_line_bytes`.
fn lines(body: &[u8], max_line_bytes: usize) -> impl Iterator<Item = Result<Line, DecodeError>> + '_ {
    let mut offset = 0usize;
    let mut number = 0u64;
    std::iter::from_fn(move || {
        loop {
            if offset >= body.len() {
                return None;
            }
            let start = offset;
            let end = body[start..].iter().position(|&b| b == b'\n').map_or(body.len(), |i| start + i);
            offset = end + 1;
            number += 1;
            let mut line_end = end;
            if line_end > start && body[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            if body[start..line_end].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let len = line_end - start;
            if len > max_line_bytes {
                return Some(Err(DecodeError::LineTooLong {
                    at: format!("line {number} (byte offset {start})"),
                    len,
                    max: max_line_bytes,
                }));
            }
            return Some(Ok(Line { number, start, end: line_end }));
        }
    })
}

struct Line {
    number: u64,
    start: usize,
    end: usize,
}

fn count_check(items: &[Item], limits: Limits) -> Result<(), DecodeError> {
    if items.len() >= limits.max_records {
        return Err(DecodeError::TooManyRecords { max: limits.max_records });
    }
    Ok(())
}

fn decode_ndjson(body: &Bytes, limits: Limits) -> Result<Vec<Item>, DecodeError> {
    let mut items = Vec::new();
    for line in lines(body, limits.max_line_bytes) {
        let line = line?;
        count_check(&items, limits)?;
        let (start, end) = trim(body, line.start, line.end);
        let text = &body[start..end];
        check_json_object(text, &format!("line {}", line.number), start)?;
        items.push(Item { body: body.slice(start..end), position: line.number });
    }
    Ok(items)
}

fn decode_text(body: &Bytes, message_key: &str, limits: Limits) -> Result<Vec<Item>, DecodeError> {
    let mut items = Vec::new();
    for line in lines(body, limits.max_line_bytes) {
        let line = line?;
        count_check(&items, limits)?;
        let text = std::str::from_utf8(&body[line.start..line.end]).map_err(|e| DecodeError::Malformed {
            at: format!("line {} (byte offset {})", line.number, line.start + e.valid_up_to()),
            reason: "not UTF-8".into(),
        })?;
        let mut map = serde_json::Map::with_capacity(1);
        map.insert(message_key.to_string(), serde_json::Value::String(text.to_string()));
        let json = serde_json::to_vec(&map).expect("a map of strings serialises");
        items.push(Item { body: json.into(), position: line.number });
    }
    Ok(items)
}

fn decode_json(body: &Bytes, limits: Limits) -> Result<Vec<Item>, DecodeError> {
    let Some(first) = first_non_space(body) else {
        return Err(DecodeError::Empty { expected: "expected a JSON object or array" });
    };
    match body[first] {
        b'{' => match serde_json::from_slice::<&RawValue>(body) {
            Ok(raw) => {
                let item = element(body, raw, 1, "the object", limits)?;
                Ok(vec![item])
            }
            // NDJSON sent as application/json (common): an object, then more.
            Err(e) if e.to_string().starts_with("trailing characters") => decode_ndjson(body, limits),
            Err(e) => Err(json_error(body, &e)),
        },
        b'[' => {
            let elements: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| json_error(body, &e))?;
            if elements.len() > limits.max_records {
                return Err(DecodeError::TooManyRecords { max: limits.max_records });
            }
            elements
                .into_iter()
                .zip(1u64..)
                .map(|(raw, n)| element(body, raw, n, &format!("element {n} of the array"), limits))
                .collect()
        }
        _ => Err(DecodeError::Malformed {
            at: position_of(body, first),
            reason: "expected a JSON object or array".into(),
        }),
    }
}

/// One JSON value found inside `body`, as a record body.
fn element(body: &Bytes, raw: &RawValue, position: u64, what: &str, limits: Limits) -> Result<Item, DecodeError> {
    let text = raw.get().as_bytes();
    // `raw` borrows from `body`, so its address gives its offset.
    let start = (text.as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
    let at = || format!("{what} (byte offset {start})");
    if text.len() > limits.max_line_bytes {
        return Err(DecodeError::LineTooLong { at: at(), len: text.len(), max: limits.max_line_bytes });
    }
    if text.first() != Some(&b'{') {
        return Err(DecodeError::Malformed { at: at(), reason: "not a JSON object".into() });
    }
    if let Some(deep) = too_deep_at(text, MAX_DEPTH) {
        return Err(DecodeError::TooDeep { at: format!("{what} (byte offset {})", start + deep), max: MAX_DEPTH });
    }
    let record = if text.contains(&b'\n') || text.contains(&b'\r') {
        Bytes::from(compact(text))
    } else {
        body.slice(start..start + text.len())
    };
    Ok(Item { body: record, position })
}

/// Check that `text` (at byte `offset` of the body) is one JSON object.
fn check_json_object(text: &[u8], at: &str, offset: usize) -> Result<(), DecodeError> {
    if text.first() != Some(&b'{') {
        return Err(DecodeError::Malformed {
            at: format!("{at} (byte offset {offset})"),
            reason: "expected a JSON object".into(),
        });
    }
    serde_json::from_slice::<&RawValue>(text).map_err(|e| {
        let column = e.column();
        DecodeError::Malformed {
            at: format!("{at}, column {column} (byte offset {})", offset + column.saturating_sub(1)),
            reason: format!("invalid JSON: {}", json_message(&e)),
        }
    })?;
    match too_deep_at(text, MAX_DEPTH) {
        Some(deep) => Err(DecodeError::TooDeep { at: format!("{at} (byte offset {})", offset + deep), max: MAX_DEPTH }),
        None => Ok(()),
    }
}

/// A serde_json error on a whole (possibly multi-line) body, with its place.
fn json_error(body: &[u8], e: &serde_json::Error) -> DecodeError {
    let line_start =
        body.split_inclusive(|&b| b == b'\n').take(e.line().saturating_sub(1)).map(<[u8]>::len).sum::<usize>();
    let offset = line_start + e.column().saturating_sub(1);
    DecodeError::Malformed {
        at: format!("line {}, column {} (byte offset {offset})", e.line(), e.column()),
        reason: format!("invalid JSON: {}", json_message(e)),
    }
}

/// serde_json's message without its own " at line L column C" suffix.
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_string(),
        None => text,
    }
}

fn position_of(body: &[u8], offset: usize) -> String {
    let line = body[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
    let column = offset - body[..offset].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column} (byte offset {offset})")
}

fn first_non_space(body: &[u8]) -> Option<usize> {
    body.iter().position(|b| !b.is_ascii_whitespace())
}

fn trim(body: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    while start < end && body[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && body[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    (start, end)
}

/// Remove whitespace outside strings from valid JSON.
fn compact(json: &[u8]) -> Vec<u8> {
    json_bytes(json).filter(|&(_, b, in_string)| in_string || !b.is_ascii_whitespace()).map(|(_, b, _)| b).collect()
}

/// An Elasticsearch `_bulk` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    /// `index`: add or replace.
    Index,
    /// `create`: add.
    Create,
    /// `update`: change fields of a document (`doc`, `doc_as_upsert`,
    /// `upsert`, `script`); carried as a record when `bulk_metadata_key` is set.
    Update,
    /// `delete`: remove a document; carried as a record when
    /// `bulk_metadata_key` is set.
    Delete,
}

impl BulkAction {
    /// The action's name in requests and responses.
    pub fn name(self) -> &'static str {
        match self {
            BulkAction::Index => "index",
            BulkAction::Create => "create",
            BulkAction::Update => "update",
            BulkAction::Delete => "delete",
        }
    }
}

/// One action of a `_bulk` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItem {
    /// What to do.
    pub action: BulkAction,
    /// The target index: the action's `_index`, else the path's.
    pub index: String,
    /// The action's `_id`, when given.
    pub id: Option<String>,
    /// The action's `routing`, when given.
    pub routing: Option<String>,
    /// The action's ingest `pipeline`, when given.
    pub pipeline: Option<String>,
    /// The line after the action: the document (`index`, `create`) or the
    /// update's body (`update`), one JSON object without newlines; `None`
    /// for `delete`, which has no such line.
    pub doc: Option<Bytes>,
    /// 1-based line of the document (of the action for `delete`).
    pub line: u64,
}

/// An action line, `{"<action>": {metadata}}`, read in one pass without a
/// value tree (the per-document cost of `_bulk`); a line this does not read
/// is read again by [`action_error`] to say why.
#[derive(Deserialize)]
enum ActionLine<'a> {
    #[serde(rename = "index", borrow)]
    Index(ActionMeta<'a>),
    #[serde(rename = "create", borrow)]
    Create(ActionMeta<'a>),
    #[serde(rename = "update", borrow)]
    Update(ActionMeta<'a>),
    #[serde(rename = "delete", borrow)]
    Delete(ActionMeta<'a>),
}

/// The metadata Weir keeps; the rest (`version`, `if_seq_no`,
/// `retry_on_conflict`, 7.x's `_type`…) is read past.
#[derive(Deserialize)]
struct ActionMeta<'a> {
    #[serde(rename = "_index", borrow)]
    index: Option<Cow<'a, str>>,
    #[serde(rename = "_id", default, deserialize_with = "id_text")]
    id: Option<String>,
    // 6.x spelled it `_routing`; 7.x and 8.x accept `routing`.
    #[serde(alias = "_routing", borrow)]
    routing: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pipeline: Option<Cow<'a, str>>,
}

/// An `_id` given as a string or a number (clients send both).
fn id_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct IdVisitor;
    impl serde::de::Visitor<'_> for IdVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or a number")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(IdVisitor)
}

/// Why an action line that [`ActionLine`] could not read is wrong, in
/// Elasticsearch's words where it has them.
fn action_error(text: &[u8]) -> String {
    let actions: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(text) {
        Ok(actions) => actions,
        Err(e) => return format!("malformed action/metadata line: {}", json_message(&e)),
    };
    let mut entries = actions.into_iter();
    let (Some((name, meta)), None) = (entries.next(), entries.next()) else {
        return "malformed action/metadata line: expected one action such as {\"index\":{}}".into();
    };
    if !matches!(name.as_str(), "index" | "create" | "update" | "delete") {
        return format!(
            "malformed action/metadata line, expected one of [create, delete, index, update] but found [{name}]"
        );
    }
    let text = serde_json::to_vec(&meta).expect("a JSON value serialises");
    match serde_json::from_slice::<ActionMeta>(&text) {
        Err(e) => format!("malformed {name} metadata: {}", json_message(&e)),
        Ok(_) => format!("malformed {name} metadata"),
    }
}

/// Decode an Elasticsearch `_bulk` body: action lines, each followed by a
/// document line except `delete`. `default_index` is the `{index}` of
/// `POST /{index}/_bulk`. A final newline is optional.
pub fn decode_bulk(body: &Bytes, default_index: Option<&str>, limits: Limits) -> Result<Vec<BulkItem>, DecodeError> {
    let mut lines = lines(body, limits.max_line_bytes);
    let mut items = Vec::new();
    while let Some(line) = lines.next() {
        let line = line?;
        let text = &body[line.start..line.end];
        let malformed = |reason: String| DecodeError::Malformed {
            at: format!("line {} (byte offset {})", line.number, line.start),
            reason,
        };
        let (action, meta) = match serde_json::from_slice::<ActionLine>(text) {
            Ok(ActionLine::Index(meta)) => (BulkAction::Index, meta),
            Ok(ActionLine::Create(meta)) => (BulkAction::Create, meta),
            Ok(ActionLine::Update(meta)) => (BulkAction::Update, meta),
            Ok(ActionLine::Delete(meta)) => (BulkAction::Delete, meta),
            Err(_) => return Err(malformed(action_error(text))),
        };
        let index = match meta.index.as_deref().or(default_index) {
            Some(index) if !index.is_empty() => index.to_string(),
            _ => return Err(DecodeError::MissingIndex { line: line.number }),
        };
        let mut item = BulkItem {
            action,
            index,
            id: meta.id,
            routing: meta.routing.map(Cow::into_owned),
            pipeline: meta.pipeline.map(Cow::into_owned),
            doc: None,
            line: line.number,
        };
        if items.len() >= limits.max_records {
            return Err(DecodeError::TooManyRecords { max: limits.max_records });
        }
        if action != BulkAction::Delete {
            let Some(doc_line) = lines.next() else {
                return Err(malformed(format!("the {} action has no document line after it", action.name())));
            };
            let doc_line = doc_line?;
            let (start, end) = trim(body, doc_line.start, doc_line.end);
            check_json_object(&body[start..end], &format!("line {}", doc_line.number), start)?;
            item.doc = Some(body.slice(start..end));
            item.line = doc_line.number;
        }
        items.push(item);
    }
    if items.is_empty() {
        return Err(DecodeError::Empty { expected: "expected _bulk action and document lines" });
    }
    Ok(items)
}
