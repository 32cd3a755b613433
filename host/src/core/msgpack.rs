//! MessagePack, as Weir meets it: from Fluent senders (the `forward`
//! input) and from Fluent Bit-ABI filters in `msgpack` event format.
//! [`Scan`] finds where a value ends in a growing buffer without decoding
//! it, [`Json`] renders a decoded value as JSON, [`from_json`] goes the
//! other way. Decoding itself is `rmpv`'s.

use rmpv::ValueRef;
use serde::ser::{Error as _, Serialize, SerializeMap, SerializeSeq, Serializer};

/// Where the frame scanner stands in a growing buffer: how far it has read
/// whole values, and how many values are still owed. Resuming from it
/// makes scanning a frame that arrives in many reads linear, not quadratic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    pos: usize,
    owed: u64,
}

impl Default for Scan {
    fn default() -> Self {
        Scan { pos: 0, owed: 1 }
    }
}

/// What [`Scan::advance`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned {
    /// The first value in the buffer is complete and this many bytes long.
    Complete(usize),
    /// More bytes are needed; call again with the grown buffer.
    Incomplete,
    /// The bytes are not msgpack (0xc1 is never used).
    Invalid,
}

impl Scan {
    /// Continue scanning the first msgpack value of `buf` (the same buffer,
    /// grown, as in the last call). Reads only headers: strings, binaries
    /// and extensions are skipped by their length.
    pub fn advance(&mut self, buf: &[u8]) -> Scanned {
        while self.owed > 0 {
            let Some(&marker) = buf.get(self.pos) else { return Scanned::Incomplete };
            let be = |n: usize| -> Option<u64> {
                let bytes = buf.get(self.pos + 1..self.pos + 1 + n)?;
                Some(bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
            };
            // (header bytes, payload bytes, child values)
            let step: Option<(usize, u64, u64)> = match marker {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Some((1, 0, 0)),
                0x80..=0x8f => Some((1, 0, 2 * u64::from(marker & 0x0f))),
                0x90..=0x9f => Some((1, 0, u64::from(marker & 0x0f))),
                0xa0..=0xbf => Some((1, u64::from(marker & 0x1f), 0)),
                0xc1 => return Scanned::Invalid,
                0xc4 | 0xd9 => be(1).map(|n| (2, n, 0)),
                0xc5 | 0xda => be(2).map(|n| (3, n, 0)),
                0xc6 | 0xdb => be(4).map(|n| (5, n, 0)),
                0xc7 => be(1).map(|n| (3, n, 0)),
                0xc8 => be(2).map(|n| (4, n, 0)),
                0xc9 => be(4).map(|n| (6, n, 0)),
                0xca => Some((5, 0, 0)),
                0xcb => Some((9, 0, 0)),
                0xcc | 0xd0 => Some((2, 0, 0)),
                0xcd | 0xd1 => Some((3, 0, 0)),
                0xce | 0xd2 => Some((5, 0, 0)),
                0xcf | 0xd3 => Some((9, 0, 0)),
                0xd4 => Some((3, 0, 0)),
                0xd5 => Some((4, 0, 0)),
                0xd6 => Some((6, 0, 0)),
                0xd7 => Some((10, 0, 0)),
                0xd8 => Some((18, 0, 0)),
                0xdc => be(2).map(|n| (3, 0, n)),
                0xdd => be(4).map(|n| (5, 0, n)),
                0xde => be(2).map(|n| (3, 0, 2 * n)),
                0xdf => be(4).map(|n| (5, 0, 2 * n)),
            };
            let Some((header, payload, children)) = step else { return Scanned::Incomplete };
            let Some(end) = usize::try_from(payload).ok().and_then(|p| (self.pos + header).checked_add(p)) else {
                return Scanned::Incomplete;
            };
            if end > buf.len() {
                return Scanned::Incomplete;
            }
            self.pos = end;
            self.owed = self.owed - 1 + children;
        }
        Scanned::Complete(self.pos)
    }
}

/// Longest JSON text a map key that is not a string may become. Keys are
/// names; a map used as a key inside a map used as a key doubles its text
/// with every level of escaping, so without a bound 120 bytes of msgpack
/// render to gigabytes (found by the `forward` fuzz target).
pub const MAX_KEY_JSON_BYTES: usize = 1024;

/// The JSON text of a map key that is not a string, at most
/// [`MAX_KEY_JSON_BYTES`].
fn key_text(key: &ValueRef<'_>) -> Result<String, String> {
    struct Bounded(Vec<u8>);
    impl std::io::Write for Bounded {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0.len() + buf.len() > MAX_KEY_JSON_BYTES {
                return Err(std::io::Error::other("too long"));
            }
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Bounded(Vec::new());
    serde_json::to_writer(&mut out, &Json(key)).map_err(|_| {
        format!("a map key that is not a string renders to more than {MAX_KEY_JSON_BYTES} bytes of JSON")
    })?;
    String::from_utf8(out.0).map_err(|e| e.to_string())
}

/// A msgpack value rendered as JSON. Strings stay strings; binaries are
/// strings when they are UTF-8 (Fluentd sends Ruby strings as binaries),
/// else base64; map keys that are not strings become their JSON text (at
/// most [`MAX_KEY_JSON_BYTES`], else the value does not render);
/// non-finite floats become `null`; an extension becomes
/// `{"ext": type, "data": base64}`.
pub struct Json<'a, 'b>(pub &'b ValueRef<'a>);

impl Serialize for Json<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        match self.0 {
            ValueRef::Nil => s.serialize_unit(),
            ValueRef::Boolean(b) => s.serialize_bool(*b),
            ValueRef::Integer(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => s.serialize_i64(i),
                (None, Some(u)) => s.serialize_u64(u),
                _ => s.serialize_unit(),
            },
            ValueRef::F32(f) => serialize_float(s, f64::from(*f)),
            ValueRef::F64(f) => serialize_float(s, *f),
            ValueRef::String(text) => match text.as_str() {
                Some(text) => s.serialize_str(text),
                None => s.serialize_str(&String::from_utf8_lossy(text.as_bytes())),
            },
            ValueRef::Binary(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => s.serialize_str(text),
                Err(_) => s.serialize_str(&b64(bytes)),
            },
            ValueRef::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Json(item))?;
                }
                seq.end()
            }
            ValueRef::Map(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (key, value) in pairs {
                    match text(key) {
                        Some(text) => map.serialize_entry(text, &Json(value))?,
                        None => map.serialize_entry(&key_text(key).map_err(S::Error::custom)?, &Json(value))?,
                    }
                }
                map.end()
            }
            ValueRef::Ext(kind, data) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("ext", kind)?;
                map.serialize_entry("data", &b64(data))?;
                map.end()
            }
        }
    }
}

fn serialize_float<S: Serializer>(s: S, f: f64) -> Result<S::Ok, S::Error> {
    if f.is_finite() { s.serialize_f64(f) } else { s.serialize_unit() }
}

/// A string or UTF-8 binary value's text.
pub fn text<'a>(value: &'a ValueRef<'_>) -> Option<&'a str> {
    match value {
        ValueRef::String(s) => s.as_str(),
        ValueRef::Binary(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// A value's msgpack type, for error messages.
pub fn kind(value: &ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Nil => "nil",
        ValueRef::Boolean(_) => "a boolean",
        ValueRef::Integer(_) => "an integer",
        ValueRef::F32(_) | ValueRef::F64(_) => "a float",
        ValueRef::String(_) => "a string",
        ValueRef::Binary(_) => "a binary",
        ValueRef::Array(_) => "an array",
        ValueRef::Map(_) => "a map",
        ValueRef::Ext(..) => "an extension",
    }
}

/// A JSON value as msgpack, for a filter that takes msgpack records:
/// integers stay integers, other numbers become float64.
pub fn from_json(value: &serde_json::Value) -> rmpv::Value {
    use serde_json::Value as J;
    match value {
        J::Null => rmpv::Value::Nil,
        J::Bool(b) => rmpv::Value::Boolean(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => rmpv::Value::from(i),
            (None, Some(u)) => rmpv::Value::from(u),
            _ => rmpv::Value::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => rmpv::Value::from(s.as_str()),
        J::Array(items) => rmpv::Value::Array(items.iter().map(from_json).collect()),
        J::Object(map) => {
            rmpv::Value::Map(map.iter().map(|(k, v)| (rmpv::Value::from(k.as_str()), from_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &rmpv::Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).unwrap();
        out
    }

    #[test]
    fn map_keys_nested_in_map_keys_are_bounded_not_doubled_per_level() {
        // {{{…{"k": 1}: 1}…: 1}: 1}: forty maps, each the key of the next.
        let mut value = rmpv::Value::Map(vec![(rmpv::Value::from("k"), rmpv::Value::from(1))]);
        for _ in 0..40 {
            value = rmpv::Value::Map(vec![(value, rmpv::Value::from(1))]);
        }
        let bytes = encode(&value);
        let parsed = rmpv::decode::read_value_ref(&mut &bytes[..]).unwrap();
        let err = serde_json::to_vec(&Json(&parsed)).unwrap_err();
        assert!(err.to_string().contains("renders to more than 1024 bytes"), "{err}");
        let shallow = rmpv::Value::Map(vec![(rmpv::Value::from(7), rmpv::Value::from("x"))]);
        let bytes = encode(&shallow);
        let parsed = rmpv::decode::read_value_ref(&mut &bytes[..]).unwrap();
        assert_eq!(serde_json::to_string(&Json(&parsed)).unwrap(), r#"{"7":"x"}"#, "a scalar key is its JSON text");
    }

    #[test]
    fn the_scanner_finds_a_value_end_across_reads_and_resumes_where_it_stopped() {
        let value = from_json(&serde_json::json!({"a": [1, 2.5, "x", {"b": null}], "c": "y".repeat(300)}));
        let mut stream = encode(&value);
        let len = stream.len();
        stream.extend_from_slice(&encode(&rmpv::Value::Nil));
        let mut scan = Scan::default();
        for cut in [1, 2, 7, 100, len - 1] {
            assert_eq!(scan.advance(&stream[..cut]), Scanned::Incomplete, "cut at {cut}");
        }
        assert_eq!(scan.advance(&stream), Scanned::Complete(len));
        assert_eq!(Scan::default().advance(&stream), Scanned::Complete(len), "a fresh scan agrees");
    }

    #[test]
    fn the_scanner_skips_binaries_by_their_length_and_refuses_0xc1() {
        let value = rmpv::Value::Array(vec![rmpv::Value::Binary(vec![0xc1; 70_000])]);
        let bytes = encode(&value);
        assert_eq!(Scan::default().advance(&bytes[..40_000]), Scanned::Incomplete);
        assert_eq!(Scan::default().advance(&bytes), Scanned::Complete(bytes.len()));
        assert_eq!(Scan::default().advance(&[0x92, 0xc1]), Scanned::Invalid);
    }

    #[test]
    fn json_goes_to_msgpack_and_back_unchanged() {
        let json = serde_json::json!({"s": "é", "i": -3, "u": u64::MAX, "f": 1.5, "n": null, "l": [true, {}]});
        let bytes = encode(&from_json(&json));
        let value = rmpv::decode::read_value_ref(&mut &bytes[..]).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&serde_json::to_vec(&Json(&value)).unwrap()).unwrap();
        assert_eq!(back, json);
    }
}
