//! Encoding a batch as an Elasticsearch `_bulk` body, with no I/O: the index
//! name templated from event time and body fields ([`IndexTemplate`]), the
//! deterministic `_id` ([`document_id`]), the `@timestamp` spliced into the
//! body bytes ([`splice_timestamp`]), and the action and source lines
//! ([`BulkEncoder`]). Sending and reading the answer live in `client.rs` and
//! `response.rs`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, SecondsFormat};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::pipeline::record::{Record, Timestamp};

/// The key Elasticsearch (and Kibana, and data streams) expect event time in.
pub const TIMESTAMP_FIELD: &str = "@timestamp";

/// Bytes of SHA-256 kept in an `_id`: 128 bits make an accidental collision
/// among even 10^15 documents of one index negligible (about 10^-9), and 32
/// hex characters are short next to ES's own 20-character ids.
const ID_BYTES: usize = 16;

/// A `_bulk` action: `create` never overwrites (a replayed document answers
/// 409, which counts as delivered); `index` overwrites with the same content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkAction {
    /// Write the document unless its `_id` exists (data streams need this).
    #[default]
    Create,
    /// Write the document, replacing one with the same `_id`.
    Index,
}

impl BulkAction {
    /// The action's name in a `_bulk` body and response.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Create => "create",
            BulkAction::Index => "index",
        }
    }
}

/// One piece of an index name template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Literal text and strftime specifiers, rendered from event time (UTC).
    Time(String),
    /// `{a.b}`: the value of that body field, as a path of keys.
    Field(Vec<String>),
}

/// An index name such as `mobile-logs-%Y.%m.%d` or `logs-{app}-%Y.%m`:
/// strftime specifiers take the record's event time in UTC, `{field}` and
/// `{nested.field}` take a scalar from the body.
#[derive(Clone)]
pub struct IndexTemplate {
    source: String,
    parts: Vec<Part>,
    /// Seconds during which the time parts cannot change (86,400 for a
    /// template of days), so consecutive records reuse the rendering; 0
    /// means render every time (sub-second specifiers).
    period: i64,
    /// The last rendering of the time parts and the period it holds for.
    cache: Option<(i64, Vec<String>)>,
}

impl fmt::Debug for IndexTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IndexTemplate").field(&self.source).finish()
    }
}

impl PartialEq for IndexTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Specifiers that change at most once a day, so a day's rendering can be reused.
const DAILY_SPECIFIERS: &str = "YCyGgmbBhdejFDUWVuwaA";

impl IndexTemplate {
    /// Parse `source`, checking every specifier and `{field}`.
    pub fn parse(source: &str) -> Result<Self, String> {
        if source.is_empty() {
            return Err("the index name is empty".into());
        }
        let mut parts = Vec::new();
        let mut time = String::new();
        let mut chars = source.char_indices();
        let mut period = 86_400;
        while let Some((at, c)) = chars.next() {
            match c {
                '{' => {
                    let rest = &source[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("unclosed `{{` at byte {at} of {source:?}"));
                    };
                    let name = &rest[..end];
                    if name.is_empty() || name.split('.').any(str::is_empty) || name.contains('{') {
                        return Err(format!(
                            "invalid field reference `{{{name}}}` in {source:?}; expected e.g. {{app}} or {{device.os}}"
                        ));
                    }
                    if !time.is_empty() {
                        parts.push(Part::Time(std::mem::take(&mut time)));
                    }
                    parts.push(Part::Field(name.split('.').map(str::to_string).collect()));
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                    }
                }
                '%' => {
                    let Some((_, spec)) = chars.next() else {
                        return Err(format!("{source:?} ends with a lone `%`; write `%%` for a literal percent sign"));
                    };
                    time.push('%');
                    time.push(spec);
                    if spec == '%' {
                        continue;
                    }
                    if !DAILY_SPECIFIERS.contains(spec) {
                        period = if period == 0 || matches!(spec, 'f' | '.' | '3' | '6' | '9') { 0 } else { 1 };
                    }
                }
                c => time.push(c),
            }
        }
        if !time.is_empty() {
            parts.push(Part::Time(time));
        }
        for part in &parts {
            if let Part::Time(format) = part
                && StrftimeItems::new(format).any(|item| matches!(item, Item::Error))
            {
                return Err(format!("invalid strftime specifier in {source:?}; expected e.g. %Y, %m, %d, %H"));
            }
        }
        Ok(IndexTemplate { source: source.to_string(), parts, period, cache: None })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether rendering needs the body parsed.
    pub fn uses_fields(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(_)))
    }

    /// The index for a record at `time` with `body` (parsed only when
    /// [`uses_fields`](Self::uses_fields)). A missing or non-scalar field
    /// takes `fallback`, or is an error naming the field when there is none.
    pub fn render(&mut self, time: Timestamp, body: Option<&Value>, fallback: Option<&str>) -> Result<String, String> {
        let secs = time.div_euclid(1_000_000_000);
        let key = if self.period > 0 { secs.div_euclid(self.period) } else { i64::MIN };
        let fresh = match &self.cache {
            Some((cached, _)) => self.period == 0 || *cached != key,
            None => true,
        };
        if fresh {
            let at = DateTime::from_timestamp_nanos(time);
            let rendered = self
                .parts
                .iter()
                .filter_map(|p| match p {
                    Part::Time(format) => Some(at.format(format).to_string()),
                    Part::Field(_) => None,
                })
                .collect();
            self.cache = Some((key, rendered));
        }
        let times = self.cache.as_ref().map(|(_, r)| r.as_slice()).unwrap_or_default();
        let mut out = String::with_capacity(self.source.len() + 16);
        let mut next_time = times.iter();
        for part in &self.parts {
            match part {
                Part::Time(_) => out.push_str(next_time.next().map(String::as_str).unwrap_or_default()),
                Part::Field(path) => match body.and_then(|b| lookup(b, path)).and_then(scalar) {
                    Some(value) => out.push_str(&value),
                    None => match fallback {
                        Some(fallback) => out.push_str(fallback),
                        None => {
                            return Err(format!(
                                "index {:?}: field `{}` is missing or not a string, number or boolean, and no `index_fallback` is set",
                                self.source,
                                path.join(".")
                            ));
                        }
                    },
                },
            }
        }
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for IndexTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        IndexTemplate::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The value at `path` in `body`: nested objects first (`device.os`), then
/// a key that itself contains the dots.
pub fn lookup<'a>(body: &'a Value, path: &[String]) -> Option<&'a Value> {
    let nested = path.iter().try_fold(body, |v, key| v.get(key));
    nested.or_else(|| body.get(path.join(".")))
}

/// A scalar as text; `None` for null, arrays and objects.
fn scalar(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// A record's `_id`, the same on every run for the same record so a retry
/// or a replay overwrites nothing new and duplicates nothing.
///
/// It hashes the record's identity: its origin (input stream, offset and
/// derivation lineage) when it has one, always together with its tag, event
/// time and body. The origin keeps apart two identical statements on
/// different lines; the content keeps apart different statements that reuse
/// an origin, as lines of a rotated file do (line numbers restart), which
/// would otherwise answer 409 "already there" and be lost.
pub fn document_id(record: &Record) -> String {
    let mut hash = Sha256::new();
    match &record.origin {
        Some(origin) => {
            hash.update(b"o\0");
            hash.update(origin.stream.as_bytes());
            hash.update(b"\0");
            hash.update(origin.offset.to_le_bytes());
            hash.update(origin.lineage.to_le_bytes());
        }
        None => hash.update(b"c\0"),
    }
    hash.update(record.tag.as_bytes());
    hash.update(b"\0");
    hash.update(record.time.to_le_bytes());
    hash.update(&record.body);
    hex::encode(&hash.finalize()[..ID_BYTES])
}

/// Event time as Elasticsearch's default date format accepts it: RFC 3339,
/// UTC, milliseconds.
pub fn timestamp(time: Timestamp) -> String {
    DateTime::from_timestamp_nanos(time).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Append `body` to `out` with `"@timestamp": time` as its first key unless
/// it has a top-level `@timestamp` already. Only bodies that mention
/// `"@timestamp"` somewhere are parsed (keys only, values skipped). Raw
/// newlines, which JSON allows only as whitespace, become spaces so the
/// document stays on one `_bulk` line.
pub fn splice_timestamp(body: &[u8], time: Timestamp, out: &mut Vec<u8>) -> Result<(), String> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start.filter(|&i| body[i] == b'{') else {
        return Err("the body is not a JSON object".into());
    };
    let has = memchr_slice(body, b"\"@timestamp\"") && has_top_level_key(body, TIMESTAMP_FIELD)?;
    let from = out.len();
    if has {
        out.extend_from_slice(&body[start..]);
    } else {
        let rest = &body[start + 1..];
        let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
        out.extend_from_slice(b"{\"@timestamp\":\"");
        out.extend_from_slice(timestamp(time).as_bytes());
        out.push(b'"');
        if !empty {
            out.push(b',');
        }
        out.extend_from_slice(rest);
    }
    for b in &mut out[from..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    Ok(())
}

fn memchr_slice(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn has_top_level_key(body: &[u8], key: &str) -> Result<bool, String> {
    let keys: HashMap<Cow<'_, str>, IgnoredAny> =
        serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON object: {e}"))?;
    Ok(keys.contains_key(key))
}

/// Where a document goes: for messages and for matching the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemMeta {
    /// The record's position in the batch given to `write`.
    pub position: usize,
    /// The index (or data stream) it was sent to.
    pub index: String,
    /// Its `_id`.
    pub id: String,
}

/// Turns records into `_bulk` action and source lines.
#[derive(Debug, Clone)]
pub struct BulkEncoder {
    /// `create` or `index`.
    pub action: BulkAction,
    /// The target index or data stream.
    pub index: IndexTemplate,
    /// Stands in for missing `{field}`s of the index; dead letter without it.
    pub index_fallback: Option<String>,
    /// Take `_id` from this body field instead of the record's identity.
    pub id_field: Option<Vec<String>>,
}

impl BulkEncoder {
    /// Append one record's two lines to `out`, returning where it goes. On
    /// `Err` (the reason to dead-letter it with) `out` is left unchanged.
    pub fn encode(&mut self, position: usize, record: &Record, out: &mut Vec<u8>) -> Result<ItemMeta, String> {
        let parsed = if self.index.uses_fields() || self.id_field.is_some() {
            Some(serde_json::from_slice::<Value>(&record.body).map_err(|e| format!("the body is not JSON: {e}"))?)
        } else {
            None
        };
        let index = self.index.render(record.time, parsed.as_ref(), self.index_fallback.as_deref())?;
        let id = match &self.id_field {
            None => document_id(record),
            Some(path) => match parsed.as_ref().and_then(|b| lookup(b, path)).and_then(scalar) {
                Some(id) if !id.is_empty() && id.len() <= 512 => id.into_owned(),
                _ => {
                    return Err(format!(
                        "index {index}: `id_field` {} is missing, empty, longer than 512 bytes, or not a string or number",
                        path.join(".")
                    ));
                }
            },
        };
        let mark = out.len();
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(self.action.as_str().as_bytes());
        out.extend_from_slice(b"\":{\"_index\":");
        serde_json::to_writer(&mut *out, &index).expect("writing to a Vec cannot fail");
        out.extend_from_slice(b",\"_id\":");
        serde_json::to_writer(&mut *out, &id).expect("writing to a Vec cannot fail");
        out.extend_from_slice(b"}}\n");
        if let Err(reason) = splice_timestamp(&record.body, record.time, out) {
            out.truncate(mark);
            return Err(format!("index {index}, _id {id}: {reason}"));
        }
        out.push(b'\n');
        Ok(ItemMeta { position, index, id })
    }
}
