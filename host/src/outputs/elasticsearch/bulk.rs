//! Encoding a batch as an Elasticsearch `_bulk` body, with no I/O: the index
//! name templated from event time and body fields ([`IndexTemplate`]), the
//! deterministic `_id` ([`document_id`]), the `@timestamp` spliced into the
//! body bytes ([`splice_timestamp`]), and the action and source lines
//! ([`BulkEncoder`]). Sending and reading the answer live in `client.rs` and
//! `response.rs`.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::core::record::{Record, Timestamp};
use crate::core::template::{FieldPath, Template};

/// The key Elasticsearch (and Kibana, and data streams) expect event time in.
pub const TIMESTAMP_FIELD: &str = "@timestamp";

/// Elasticsearch refuses an `_id` longer than 512 bytes.
const MAX_ID_BYTES: usize = 512;

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

/// An index name such as `mobile-logs-%Y.%m.%d` or `logs-{app}-%Y.%m`: a
/// [`Template`] with strftime specifiers taking the record's event time in
/// UTC and `{field}`s taking body fields (see [`crate::core::template`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexTemplate(Template);

impl IndexTemplate {
    /// Parse `source`, checking every specifier and `{field}`.
    ///
    /// # Errors
    /// The template's parse error, or that the name is empty.
    pub fn parse(source: &str) -> Result<Self, String> {
        if source.is_empty() {
            return Err("the index name is empty".into());
        }
        Template::with_time(source).map(IndexTemplate)
    }

    /// The template as configured.
    pub fn source(&self) -> &str {
        self.0.source()
    }

    /// Whether rendering needs the body parsed.
    pub fn uses_fields(&self) -> bool {
        self.0.uses_fields()
    }

    /// Whether the record's event time chooses the index (a daily index).
    pub fn uses_time(&self) -> bool {
        self.0.uses_time()
    }

    /// The index for a record at `time` with `body` (parsed only when
    /// [`uses_fields`](Self::uses_fields)). A missing or null field takes
    /// `fallback`.
    ///
    /// # Errors
    /// The reason to dead-letter the record with, naming the field, when
    /// there is no fallback.
    pub fn render(&self, time: Timestamp, body: Option<&Value>, fallback: Option<&str>) -> Result<String, String> {
        self.0.render_with(time, body, fallback, |text, out| out.push_str(text)).map_err(|e| match fallback {
            Some(_) => format!("index {e}"),
            None => format!("index {e}, and no `index_fallback` is set"),
        })
    }
}

impl<'de> Deserialize<'de> for IndexTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        IndexTemplate::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A record's `_id`: 128 bits of its [`Record::identity`], so a retry or a
/// replay overwrites nothing new and duplicates nothing.
pub fn document_id(record: &Record) -> String {
    hex::encode(&record.identity()[..ID_BYTES])
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
    /// The action replayed from the record's `bulk_metadata_key`
    /// (`index`, `create`, `update`, `delete`); `None`: the configured one.
    pub replayed: Option<&'static str>,
}

/// What an event time outside [`TimeBounds`] does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutOfRange {
    /// Dead-letter the record, naming its time and the bound.
    #[default]
    DeadLetter,
    /// Choose the index by the host clock (the arrival day); the document
    /// keeps its own `@timestamp`.
    Now,
}

/// How far from the host clock an event time may choose an index: one
/// phone with its clock in 2099 or 1970 must not create an index per bogus
/// day, nor put its records beside another day's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// Furthest ahead of the host clock, in nanoseconds.
    pub max_future: i64,
    /// Furthest behind the host clock, in nanoseconds.
    pub max_past: i64,
    /// What a record outside them does.
    pub out_of_range: OutOfRange,
}

impl TimeBounds {
    /// The bound (nanoseconds, setting name) `time` passes when the host
    /// clock says `now`; `None` within both.
    pub fn passed(&self, time: Timestamp, now: Timestamp) -> Option<(i64, &'static str)> {
        if time > now.saturating_add(self.max_future) {
            Some((self.max_future, "max_future"))
        } else if time < now.saturating_sub(self.max_past) {
            Some((self.max_past, "max_past"))
        } else {
            None
        }
    }

    /// The time that chooses the index of a record at `time` when the host
    /// clock says `now`; `Err` with the dead letter's reason, or `Ok(now)`
    /// with [`OutOfRange::Now`], for a time outside the bounds.
    ///
    /// # Errors
    /// A reason naming the event time and the bound it passed.
    pub fn index_time(&self, time: Timestamp, now: Timestamp) -> Result<Timestamp, String> {
        let Some((bound, setting)) = self.passed(time, now) else { return Ok(time) };
        match self.out_of_range {
            OutOfRange::Now => Ok(now),
            OutOfRange::DeadLetter => Err(format!(
                "event time {} is more than {} {} the host clock ({}, {setting}); not indexed by it",
                timestamp(time),
                humantime::format_duration(std::time::Duration::from_nanos(bound.unsigned_abs())),
                if setting == "max_future" { "ahead of" } else { "behind" },
                timestamp(now),
            )),
        }
    }
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
    pub id_field: Option<FieldPath>,
    /// Bounds on the event time that chooses a daily index; `None` when the
    /// index does not depend on time.
    pub time_bounds: Option<TimeBounds>,
    /// Replay records carrying this field (the http input's
    /// `bulk_metadata_key`) as the `_bulk` action it names.
    pub metadata_key: Option<String>,
}

/// A `_bulk` item as the http input recorded it under `bulk_metadata_key`.
#[derive(Deserialize)]
struct Replay {
    index: String,
    action: String,
    id: Option<String>,
    routing: Option<String>,
    pipeline: Option<String>,
}

impl BulkEncoder {
    /// Append one record's two lines to `out`, returning where it goes; the
    /// host clock says `now`. On `Err` (the reason to dead-letter it with)
    /// `out` is left unchanged.
    pub fn encode(
        &mut self,
        position: usize,
        record: &Record,
        now: Timestamp,
        out: &mut Vec<u8>,
    ) -> Result<ItemMeta, String> {
        if let Some(key) = &self.metadata_key
            && memchr_slice(&record.body, format!("\"{key}\"").as_bytes())
        {
            let mut body: serde_json::Map<String, Value> =
                serde_json::from_slice(&record.body).map_err(|e| format!("the body is not a JSON object: {e}"))?;
            if let Some(meta) = body.remove(key.as_str()) {
                return self.replay(position, record, meta, &body, out);
            }
        }
        let parsed = if self.index.uses_fields() || self.id_field.is_some() {
            Some(serde_json::from_slice::<Value>(&record.body).map_err(|e| format!("the body is not JSON: {e}"))?)
        } else {
            None
        };
        let index_time = match &self.time_bounds {
            Some(bounds) => bounds.index_time(record.time, now)?,
            None => record.time,
        };
        let index = self.index.render(index_time, parsed.as_ref(), self.index_fallback.as_deref())?;
        let id = match &self.id_field {
            None => document_id(record),
            Some(path) => match parsed.as_ref().and_then(|b| path.lookup(b)) {
                Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_ID_BYTES => id.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(format!(
                        "index {index}: `id_field` {} is missing, empty, longer than {MAX_ID_BYTES} bytes, or not a string or number",
                        path.as_str()
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
        Ok(ItemMeta { position, index, id, replayed: None })
    }

    /// Append a record carrying `_bulk` metadata as the action it names:
    /// into its own index, with its `_id`, `routing` and `pipeline`; an
    /// update's body as sent, a delete with no source line.
    fn replay(
        &self,
        position: usize,
        record: &Record,
        meta: Value,
        body: &serde_json::Map<String, Value>,
        out: &mut Vec<u8>,
    ) -> Result<ItemMeta, String> {
        let key = self.metadata_key.as_deref().unwrap_or_default();
        let meta: Replay = serde_json::from_value(meta).map_err(|e| format!("`{key}` is not _bulk metadata: {e}"))?;
        let action = match meta.action.as_str() {
            "index" => "index",
            "create" => "create",
            "update" => "update",
            "delete" => "delete",
            other => return Err(format!("`{key}`: unknown _bulk action {other:?}")),
        };
        let id = match meta.id {
            Some(id) => id,
            None if matches!(action, "index" | "create") => document_id(record),
            None => return Err(format!("index {}: `{key}`: {action} without an id", meta.index)),
        };
        let mut header = serde_json::Map::new();
        header.insert("_index".into(), Value::String(meta.index.clone()));
        header.insert("_id".into(), Value::String(id.clone()));
        for (name, value) in [("routing", meta.routing), ("pipeline", meta.pipeline)] {
            if let Some(value) = value {
                header.insert(name.into(), Value::String(value));
            }
        }
        let mark = out.len();
        serde_json::to_writer(&mut *out, &serde_json::json!({ action: header })).expect("writing to a Vec cannot fail");
        out.push(b'\n');
        match action {
            "delete" => {}
            "update" => {
                serde_json::to_writer(&mut *out, body).expect("writing to a Vec cannot fail");
                out.push(b'\n');
            }
            _ => {
                let source = serde_json::to_vec(body).expect("a JSON object serialises");
                if let Err(reason) = splice_timestamp(&source, record.time, out) {
                    out.truncate(mark);
                    return Err(format!("index {}, _id {id}: {reason}", meta.index));
                }
                out.push(b'\n');
            }
        }
        Ok(ItemMeta { position, index: meta.index, id, replayed: Some(action) })
    }
}
