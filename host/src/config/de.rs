//! serde over the config's [`Node`] tree: how a scalar becomes the value a
//! setting asks for. It owns the typing rules the README states:
//!
//! - a scalar written in the file is typed as YAML's core schema says: plain
//!   `8` is a number, `true` a boolean, `~`, `null` or nothing is null,
//!   anything quoted (or a `|`/`>` block) is text. A setting that wants
//!   text also takes a plain number or boolean as written (`group_id: 42`
//!   is `"42"`), never a null;
//! - a scalar that held a `${VAR}` is never null and takes the type of the
//!   setting it is read into: text, verbatim, where text is wanted (a token,
//!   a password, a path), a number for `queue_capacity: ${N}`, a boolean for
//!   `follow: ${FOLLOW}`, quoted or not. Where the type is open (a plugin's
//!   `config:` block, settings that take several shapes), an unquoted one is
//!   typed like a literal plain scalar and a quoted one is text;
//! - a mapping or list setting left empty (`filters:` with every entry
//!   commented out) is empty.
//!
//! Errors are plain messages; `serde_path_to_error` adds the key path and
//! the resolver the position.

use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::yaml::{Entry, Kind, Node, Scalar, is_null_text};

/// A serde error while reading a config value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

/// A scalar's value under YAML 1.2's core schema.
enum Typed<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(&'a str),
}

/// Type `text` as a plain scalar of YAML 1.2's core schema.
fn core_schema(text: &str) -> Typed<'_> {
    if is_null_text(text) {
        return Typed::Null;
    }
    match text {
        "true" | "True" | "TRUE" => return Typed::Bool(true),
        "false" | "False" | "FALSE" => return Typed::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Typed::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Typed::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Typed::Float(f64::NAN),
        _ => {}
    }
    let radix = |prefix: &str, radix| text.strip_prefix(prefix).and_then(|d| u64::from_str_radix(d, radix).ok());
    if let Some(n) = radix("0x", 16).or_else(|| radix("0o", 8)) {
        return Typed::UInt(n);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.trim_start_matches('+').parse::<u64>() {
            return Typed::UInt(n);
        }
        if let Ok(n) = text.parse::<i64>() {
            return Typed::Int(n);
        }
    }
    if is_core_float(digits)
        && let Ok(f) = text.parse::<f64>()
    {
        return Typed::Float(f);
    }
    Typed::Text(text)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the core schema's
/// float without its sign.
fn is_core_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

impl Scalar {
    /// The value when the setting's type is open.
    fn open_type(&self) -> Typed<'_> {
        match (self.quoted, self.interpolated) {
            (true, _) => Typed::Text(&self.text),
            (false, false) => core_schema(&self.text),
            (false, true) => match core_schema(&self.text) {
                Typed::Null => Typed::Text(&self.text),
                typed => typed,
            },
        }
    }

    /// The value for a setting that wants a number or a boolean: a literal
    /// is typed as written, an interpolated one as its text reads.
    fn number_or_bool(&self) -> Typed<'_> {
        if self.interpolated {
            match core_schema(&self.text) {
                Typed::Null => Typed::Text(&self.text),
                typed => typed,
            }
        } else {
            self.open_type()
        }
    }
}

fn visit<'de, V: Visitor<'de>>(typed: Typed<'de>, visitor: V) -> Result<V::Value, DeError> {
    match typed {
        Typed::Null => visitor.visit_unit(),
        Typed::Bool(b) => visitor.visit_bool(b),
        Typed::Int(n) => visitor.visit_i64(n),
        Typed::UInt(n) => visitor.visit_u64(n),
        Typed::Float(f) => visitor.visit_f64(f),
        Typed::Text(s) => visitor.visit_borrowed_str(s),
    }
}

macro_rules! number_or_bool {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match &self.kind {
                Kind::Scalar(s) => visit(s.number_or_bool(), visitor),
                _ => self.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &'de Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.kind {
            Kind::Scalar(s) => visit(s.open_type(), visitor),
            Kind::Seq(items) => visitor.visit_seq(Seq(items.iter().collect::<Vec<_>>().into_iter())),
            Kind::Map(entries) => {
                visitor.visit_map(Map { entries: entries.iter().collect::<Vec<_>>().into_iter(), value: None })
            }
        }
    }

    number_or_bool!(
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    );

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // A list setting left empty is an empty list.
        if self.is_null() { visitor.visit_seq(Seq(Vec::new().into_iter())) } else { self.deserialize_any(visitor) }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // A mapping setting left empty is an empty mapping.
        if self.is_null() {
            visitor.visit_map(Map { entries: Vec::new().into_iter(), value: None })
        } else {
            self.deserialize_any(visitor)
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.kind {
            _ if self.is_null() => visitor.visit_unit(),
            Kind::Scalar(s) => visitor.visit_borrowed_str(&s.text),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() { visitor.visit_unit() } else { self.deserialize_any(visitor) }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.kind {
            Kind::Scalar(s) => visitor.visit_enum(BorrowedStrDeserializer::<DeError>::new(&s.text)),
            Kind::Map(entries) if entries.len() == 1 => visitor.visit_enum(Variant(&entries[0])),
            _ => Err(de::Error::custom("expected a name, or a mapping with one key naming the variant")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct Seq<'de>(std::vec::IntoIter<&'de Node>);

impl<'de> de::SeqAccess<'de> for Seq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        self.0.next().map(|node| seed.deserialize(node)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Map<'de> {
    entries: std::vec::IntoIter<&'de Entry>,
    value: Option<&'de Node>,
}

impl<'de> de::MapAccess<'de> for Map<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else { return Ok(None) };
        self.value = Some(&entry.value);
        seed.deserialize(BorrowedStrDeserializer::new(&entry.key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = self.value.take().expect("serde asks for a value only after its key");
        seed.deserialize(value)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum written as a mapping with one key: `{variant: value}`.
struct Variant<'de>(&'de Entry);

impl<'de> de::EnumAccess<'de> for Variant<'de> {
    type Error = DeError;
    type Variant = &'de Node;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, &'de Node), DeError> {
        let name = seed.deserialize(self.0.key.as_str().into_deserializer())?;
        Ok((name, &self.0.value))
    }
}

impl<'de> de::VariantAccess<'de> for &'de Node {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::super::yaml::{self, LoadError, Position};
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "N" => Some("8".into()),
            "T" => Some("true".into()),
            "NUL" => Some("~".into()),
            "ZIP" => Some("0123".into()),
            _ => None,
        }
    }

    fn node(text: &str) -> Node {
        let scalar = |t: &str, style, at: Position| -> Result<Scalar, LoadError> {
            super::super::interpolate::scalar(t, style, at, &env)
        };
        yaml::load(text, scalar).unwrap().unwrap()
    }

    fn read<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, String> {
        T::deserialize(&node(text)).map_err(|e| e.to_string())
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        n: Option<u32>,
        #[serde(default)]
        on: Option<bool>,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        list: Vec<String>,
    }

    #[test]
    fn literals_follow_the_core_schema() {
        let s: Settings = read("n: 8\non: true\ntext: 42\nlist: [a, 1]\n").unwrap();
        assert_eq!(
            s,
            Settings { n: Some(8), on: Some(true), text: Some("42".into()), list: vec!["a".into(), "1".into()] }
        );
        assert!(read::<Settings>("n: '8'\n").unwrap_err().contains("invalid type: string \"8\", expected u32"));
        assert!(read::<Settings>("on: yes\n").unwrap_err().contains("expected a boolean"));
        assert_eq!(read::<Settings>("text: ~\n").unwrap().text, None);
    }

    #[test]
    fn interpolated_values_take_the_settings_type() {
        let s: Settings = read("n: ${N}\non: \"${T}\"\ntext: ${ZIP}\n").unwrap();
        assert_eq!((s.n, s.on, s.text.as_deref()), (Some(8), Some(true), Some("0123")));
        assert_eq!(read::<Settings>("text: ${NUL}\n").unwrap().text.as_deref(), Some("~"), "never null");
    }

    #[test]
    fn open_types_follow_how_the_value_was_written() {
        let v: serde_json::Value = read("a: ${N}\nb: \"${N}\"\nc: ${NUL}\nd: 1.5e3\ne: ~\nf: 0x1f\n").unwrap();
        assert_eq!(v, serde_json::json!({ "a": 8, "b": "8", "c": "~", "d": 1500.0, "e": null, "f": 31 }));
    }

    #[test]
    fn empty_collections_and_enums() {
        assert_eq!(read::<Settings>("list:\n").unwrap().list, Vec::<String>::new());
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum Mode {
            Fast,
            Tuned { level: u8 },
        }
        assert_eq!(read::<BTreeMap<String, Mode>>("a: fast\n").unwrap()["a"], Mode::Fast);
        assert_eq!(
            read::<BTreeMap<String, Mode>>("a: { tuned: { level: 3 } }\n").unwrap()["a"],
            Mode::Tuned { level: 3 }
        );
    }
}
