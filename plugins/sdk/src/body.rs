//! A JSON object body, read and extended without building a DOM: borrowed
//! top-level fields, dotted-path lookups, and an [`ObjectWriter`] that adds
//! fields by splicing bytes before the closing `}`.
//!
//! Parsing a body into `serde_json::Value` and serialising it again halves a
//! filter's throughput (see `wit/README.md`); these helpers borrow from the
//! input bytes instead. Formatting single values (times, numbers) is
//! `json`'s.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The top-level fields of a JSON object body, borrowed from its bytes, in
/// document order. Values are unparsed JSON text.
///
/// A list searched linearly rather than a hash map: log records have a
/// handful of fields, where hashing every key of every record cost more
/// than the comparisons it saves (a fifth of `extract`'s time per record).
#[derive(Debug, Default)]
pub struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// The value of `key`; the last one when the object repeats a key, as
    /// every JSON parser that builds a map reads it.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|&(_, v)| v)
    }

    /// Whether the object has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Every field in the order written, repeated keys included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a RawValue)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), *v))
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key_seed(BorrowedStr)? {
                    fields.push((key, map.next_value()?));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// Deserialises a string borrowed from the input when it has no escapes
/// (serde's own `Cow<str>` always copies).
struct BorrowedStr;

impl<'de> DeserializeSeed<'de> for BorrowedStr {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for BorrowedStr {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub struct BodyError(String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

/// Parse the top level of a JSON object, borrowing keys and values.
pub fn fields(body: &[u8]) -> Result<Fields<'_>, BodyError> {
    serde_json::from_slice(body).map_err(|e| BodyError(format!("body is not a JSON object: {e}")))
}

/// Look up a dotted path (`device.os`) in a JSON object, descending through
/// nested objects. Returns the raw JSON of the value, or `None` when any step
/// is missing or not an object.
pub fn lookup<'a>(body: &'a [u8], path: &str) -> Option<&'a RawValue> {
    let mut current: &'a str = std::str::from_utf8(body).ok()?;
    let mut found = None;
    for segment in path.split('.') {
        let object: Fields<'a> = serde_json::from_str(current).ok()?;
        let value = object.get(segment)?;
        current = value.get();
        found = Some(value);
    }
    found
}

/// Decode a raw JSON value as a string, if it is one; borrowed unless it
/// has escapes.
pub fn as_str(value: &RawValue) -> Option<Cow<'_, str>> {
    BorrowedStr.deserialize(&mut serde_json::Deserializer::from_str(value.get())).ok()
}

/// Decode a raw JSON value as a number, if it is one.
pub fn as_f64(value: &RawValue) -> Option<f64> {
    serde_json::from_str::<f64>(value.get()).ok()
}

/// Append `s` to `out` as a JSON string literal, with quotes and escapes.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing a str to a Vec cannot fail");
}

/// Builds a JSON object by appending fields, either to an existing object's
/// bytes (splicing before its closing `}`) or from scratch.
pub struct ObjectWriter {
    out: Vec<u8>,
    empty: bool,
}

impl ObjectWriter {
    /// Start an empty object.
    pub fn new() -> Self {
        Self::with_capacity(64)
    }

    /// Start an empty object with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        Self { out, empty: true }
    }

    /// Start from an existing JSON object's bytes. Trailing whitespace after
    /// the closing `}` is dropped. Fails when `body` does not end in `}`.
    pub fn extend(body: &[u8], extra: usize) -> Result<Self, BodyError> {
        let end = body
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .filter(|&i| body[i] == b'}')
            .ok_or_else(|| BodyError("body is not a JSON object".into()))?;
        let inner = &body[..end];
        let empty = inner.iter().rev().find(|b| !b.is_ascii_whitespace()).is_none_or(|&b| b == b'{');
        // The original bytes are kept as they are, whitespace included:
        // splicing never rewrites what the record already said.
        let mut out = Vec::with_capacity(end + extra + 1);
        out.extend_from_slice(inner);
        Ok(Self { out, empty })
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_str(&mut self.out, key);
        self.out.push(b':');
    }

    /// Add a field whose value is already JSON text.
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(json.as_bytes());
        self
    }

    /// Add a string field.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        write_str(&mut self.out, value);
        self
    }

    /// Add a number field. Non-finite numbers become `null`, as JSON has none.
    pub fn f64(&mut self, key: &str, value: f64) -> &mut Self {
        self.key(key);
        if value.is_finite() {
            serde_json::to_writer(&mut self.out, &value).expect("writing to a Vec cannot fail");
        } else {
            self.out.extend_from_slice(b"null");
        }
        self
    }

    /// Add an integer field.
    pub fn i64(&mut self, key: &str, value: i64) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(value.to_string().as_bytes());
        self
    }

    /// Add a boolean field.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    /// Add any serialisable value.
    pub fn value<T: serde::Serialize + ?Sized>(&mut self, key: &str, value: &T) -> &mut Self {
        self.key(key);
        serde_json::to_writer(&mut self.out, value).expect("serialising to a Vec cannot fail");
        self
    }

    /// Close the object and return its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

impl Default for ObjectWriter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_descends_nested_objects() {
        let body = br#"{"ctx":{"device":{"os":"ios"}},"n":3}"#;
        assert_eq!(lookup(body, "ctx.device.os").map(|v| v.get()), Some(r#""ios""#));
        assert_eq!(lookup(body, "n").map(|v| v.get()), Some("3"));
        assert!(lookup(body, "ctx.missing").is_none());
        assert!(lookup(body, "n.deeper").is_none());
    }

    #[test]
    fn extend_splices_fields_before_the_closing_brace() {
        let mut w = ObjectWriter::extend(br#"{"a":1}  "#, 16).unwrap();
        w.str("b", "x\"y").f64("c", 1.5).i64("d", -2);
        let out = w.finish();
        assert_eq!(std::str::from_utf8(&out).unwrap(), r#"{"a":1,"b":"x\"y","c":1.5,"d":-2}"#);
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["b"], "x\"y");
    }

    #[test]
    fn extend_handles_an_empty_object() {
        let mut w = ObjectWriter::extend(b"{ }", 0).unwrap();
        w.bool("ok", true);
        assert_eq!(w.finish(), br#"{ "ok":true}"#, "no comma after an empty object's brace");
    }

    #[test]
    fn extend_refuses_a_non_object() {
        assert!(ObjectWriter::extend(b"[1,2]", 0).is_err());
    }

    #[test]
    fn non_finite_numbers_become_null() {
        let mut w = ObjectWriter::new();
        w.f64("x", f64::NAN);
        assert_eq!(w.finish(), br#"{"x":null}"#);
    }

    #[test]
    fn fields_borrow_escaped_keys() {
        let f = fields(br#"{"a\"b":"v","c":[1]}"#).unwrap();
        assert_eq!(f.get("a\"b").map(|v| v.get()), Some(r#""v""#));
        assert_eq!(as_str(f.get("a\"b").unwrap()).as_deref(), Some("v"));
        assert_eq!(f.get("c").map(|v| v.get()), Some("[1]"));
        assert!(f.get("missing").is_none());
    }

    #[test]
    fn a_repeated_key_reads_as_its_last_value() {
        let f = fields(br#"{"os":"ios","os":"android"}"#).unwrap();
        assert_eq!(f.get("os").map(|v| v.get()), Some(r#""android""#));
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let plain = serde_json::from_str::<&RawValue>(r#""ios""#).unwrap();
        assert!(matches!(as_str(plain), Some(Cow::Borrowed("ios"))));
        let escaped = serde_json::from_str::<&RawValue>(r#""a\nb""#).unwrap();
        assert_eq!(as_str(escaped).as_deref(), Some("a\nb"));
        let number = serde_json::from_str::<&RawValue>("7").unwrap();
        assert_eq!(as_str(number), None);
        assert!(fields(b"[1]").is_err(), "an array is not an object");
    }
}
