//! OTLP log records as Weir records, pure: one JSON object per
//! `LogRecord`, carrying everything OTLP says about it, its scope and its
//! resource. The shape (the README's "OTLP input" section):
//!
//! ```json
//! {"body": "GET /cart 200", "severity_number": 9, "severity_text": "INFO",
//!  "attributes": {"http.status_code": 200}, "event_name": "…",
//!  "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174", "flags": 1,
//!  "time_unix_nano": 1764000000000000000, "observed_time_unix_nano": 1764000000000000001,
//!  "dropped_attributes_count": 0,
//!  "scope": {"name": "checkout", "version": "1.2", "attributes": {}, "schema_url": "…"},
//!  "resource": {"attributes": {"service.name": "shop"}, "schema_url": "…"}}
//! ```
//!
//! Fields at their proto3 default (0, "", empty) are left out, which loses
//! nothing: proto3 cannot tell them from unset. Values (`AnyValue`) map to
//! JSON as OTLP/JSON does: strings, booleans, arrays as themselves, `int`
//! as a JSON integer, `double` as a JSON number written with a fraction or
//! exponent (so `1.0` stays apart from `1`; NaN and infinities as the
//! strings `"NaN"`, `"Infinity"`, `"-Infinity"`), `kvlist` as an object,
//! `bytes` as base64 text, an empty value as `null`.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::core::record::Timestamp;

/// One log record, mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// `time_unix_nano`, else `observed_time_unix_nano`; `None` when both
    /// are unset (the caller uses the arrival time).
    pub time: Option<Timestamp>,
    /// The JSON object above.
    pub body: Vec<u8>,
    /// Why the record is refused, when it is (see [`problem`]): it is
    /// dead-lettered and counted in the answer's `partial_success`.
    pub problem: Option<String>,
}

/// Every log record of a request, in order.
pub fn items(request: &ExportLogsServiceRequest) -> Vec<Item> {
    let mut out = Vec::new();
    for resource_logs in &request.resource_logs {
        let resource =
            ResourceJson { resource: resource_logs.resource.as_ref(), schema_url: &resource_logs.schema_url };
        for scope_logs in &resource_logs.scope_logs {
            let scope = ScopeJson { scope: scope_logs.scope.as_ref(), schema_url: &scope_logs.schema_url };
            for record in &scope_logs.log_records {
                let body = serde_json::to_vec(&RecordJson { record, scope: &scope, resource: &resource })
                    .expect("OTLP values always render as JSON");
                let time = [record.time_unix_nano, record.observed_time_unix_nano]
                    .into_iter()
                    .find(|&t| t != 0)
                    .map(|t| Timestamp::try_from(t).unwrap_or(Timestamp::MAX));
                out.push(Item { time, body, problem: problem(record) });
            }
        }
    }
    out
}

/// What makes a log record invalid per the OTLP spec: a trace id that is
/// not 16 bytes or a span id that is not 8 (empty means none).
pub fn problem(record: &LogRecord) -> Option<String> {
    if !matches!(record.trace_id.len(), 0 | 16) {
        return Some(format!("trace_id has {} bytes; OTLP trace ids have 16", record.trace_id.len()));
    }
    if !matches!(record.span_id.len(), 0 | 8) {
        return Some(format!("span_id has {} bytes; OTLP span ids have 8", record.span_id.len()));
    }
    None
}

struct RecordJson<'a> {
    record: &'a LogRecord,
    scope: &'a ScopeJson<'a>,
    resource: &'a ResourceJson<'a>,
}

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut map = s.serialize_map(None)?;
        if let Some(body) = &r.body {
            map.serialize_entry("body", &Value(body))?;
        }
        if r.severity_number != 0 {
            map.serialize_entry("severity_number", &r.severity_number)?;
        }
        if !r.severity_text.is_empty() {
            map.serialize_entry("severity_text", &r.severity_text)?;
        }
        if !r.attributes.is_empty() {
            map.serialize_entry("attributes", &Attributes(&r.attributes))?;
        }
        if !r.event_name.is_empty() {
            map.serialize_entry("event_name", &r.event_name)?;
        }
        if !r.trace_id.is_empty() {
            map.serialize_entry("trace_id", &hex::encode(&r.trace_id))?;
        }
        if !r.span_id.is_empty() {
            map.serialize_entry("span_id", &hex::encode(&r.span_id))?;
        }
        if r.flags != 0 {
            map.serialize_entry("flags", &r.flags)?;
        }
        if r.time_unix_nano != 0 {
            map.serialize_entry("time_unix_nano", &r.time_unix_nano)?;
        }
        if r.observed_time_unix_nano != 0 {
            map.serialize_entry("observed_time_unix_nano", &r.observed_time_unix_nano)?;
        }
        if r.dropped_attributes_count != 0 {
            map.serialize_entry("dropped_attributes_count", &r.dropped_attributes_count)?;
        }
        if !self.scope.is_empty() {
            map.serialize_entry("scope", self.scope)?;
        }
        if !self.resource.is_empty() {
            map.serialize_entry("resource", self.resource)?;
        }
        map.end()
    }
}

struct ScopeJson<'a> {
    scope: Option<&'a InstrumentationScope>,
    schema_url: &'a str,
}

impl ScopeJson<'_> {
    fn is_empty(&self) -> bool {
        self.schema_url.is_empty() && self.scope.is_none_or(|s| *s == InstrumentationScope::default())
    }
}

impl Serialize for ScopeJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(scope) = self.scope {
            if !scope.name.is_empty() {
                map.serialize_entry("name", &scope.name)?;
            }
            if !scope.version.is_empty() {
                map.serialize_entry("version", &scope.version)?;
            }
            if !scope.attributes.is_empty() {
                map.serialize_entry("attributes", &Attributes(&scope.attributes))?;
            }
            if scope.dropped_attributes_count != 0 {
                map.serialize_entry("dropped_attributes_count", &scope.dropped_attributes_count)?;
            }
        }
        if !self.schema_url.is_empty() {
            map.serialize_entry("schema_url", self.schema_url)?;
        }
        map.end()
    }
}

struct ResourceJson<'a> {
    resource: Option<&'a Resource>,
    schema_url: &'a str,
}

impl ResourceJson<'_> {
    fn is_empty(&self) -> bool {
        self.schema_url.is_empty() && self.resource.is_none_or(|r| *r == Resource::default())
    }
}

impl Serialize for ResourceJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(resource) = self.resource {
            if !resource.attributes.is_empty() {
                map.serialize_entry("attributes", &Attributes(&resource.attributes))?;
            }
            if resource.dropped_attributes_count != 0 {
                map.serialize_entry("dropped_attributes_count", &resource.dropped_attributes_count)?;
            }
            if !resource.entity_refs.is_empty() {
                let refs: Vec<serde_json::Value> = resource
                    .entity_refs
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "schema_url": e.schema_url, "type": e.r#type,
                            "id_keys": e.id_keys, "description_keys": e.description_keys,
                        })
                    })
                    .collect();
                map.serialize_entry("entity_refs", &refs)?;
            }
        }
        if !self.schema_url.is_empty() {
            map.serialize_entry("schema_url", self.schema_url)?;
        }
        map.end()
    }
}

/// Key-value pairs as a JSON object, in their order.
struct Attributes<'a>(&'a [KeyValue]);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for kv in self.0 {
            match &kv.value {
                Some(value) => map.serialize_entry(&kv.key, &Value(value))?,
                None => map.serialize_entry(&kv.key, &())?,
            }
        }
        map.end()
    }
}

/// An `AnyValue` as JSON; see the module docs.
struct Value<'a>(&'a AnyValue);

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use any_value::Value as V;
        use base64::Engine as _;
        match &self.0.value {
            None => s.serialize_unit(),
            Some(V::StringValue(text)) => s.serialize_str(text),
            Some(V::BoolValue(b)) => s.serialize_bool(*b),
            Some(V::IntValue(n)) => s.serialize_i64(*n),
            Some(V::DoubleValue(f)) if f.is_nan() => s.serialize_str("NaN"),
            Some(V::DoubleValue(f)) if f.is_infinite() => {
                s.serialize_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
            }
            Some(V::DoubleValue(f)) => s.serialize_f64(*f),
            Some(V::BytesValue(bytes)) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes)),
            Some(V::ArrayValue(array)) => {
                let mut seq = s.serialize_seq(Some(array.values.len()))?;
                for value in &array.values {
                    seq.serialize_element(&Value(value))?;
                }
                seq.end()
            }
            Some(V::KvlistValue(list)) => Attributes(&list.values).serialize(s),
            // An index into a profiles dictionary; logs do not use it, but
            // it is kept rather than lost.
            Some(V::StringValueStrindex(index)) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("string_value_strindex", index)?;
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests;
