//! A filter's `config:` block: [`parse`] reads it into the filter's serde
//! type, and a refusal is a [`ConfigError`] naming the key at fault by its
//! path (`rules[2].pattern`), as the WIT `config-error` reports it. Which
//! keys a filter takes and what makes them valid stay in that filter's
//! `config.rs`.
//!
//! Serde's own messages say what was expected (``unknown field `patern`,
//! expected one of …``, ``missing field `value` ``). For shapes serde has
//! no word for there are [`NonEmptyString`], [`DottedPath`], [`Number`],
//! [`Duration`] and [`List`],
//! whose messages say what was found (`expected a list, found a string`),
//! [`StringOrObject`] for a key written either way, and [`value_with`] for
//! a key read by hand. Checks of meaning (a regex
//! compiles, one key needs another) are the filter's, after `parse`, with
//! [`ConfigError::at`] the key's path. As serde reads an `Option`, a key
//! whose value is `null` is a key left out.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A config the filter refuses: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the offending key, such as `rules[2].pattern`; `None` for the
    /// whole block.
    pub field: Option<String>,
    /// What is wrong: lowercase, no trailing full stop.
    pub message: String,
}

impl ConfigError {
    /// An error about the key at `field`.
    pub fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), message: message.into() }
    }

    /// An error about the whole block, or, before [`within`](Self::within),
    /// about the whole object a part of the config was read from.
    pub fn whole(message: impl Into<String>) -> Self {
        Self { field: None, message: message.into() }
    }

    /// The same error seen from the enclosing object: an error at `op` read
    /// within `rules[2]` is at `rules[2].op`, and one about the whole rule is
    /// at `rules[2]`. Lets a part of the config be checked without threading
    /// its path through. The path is always joined with `.`, as a key read
    /// from JSON may itself start with `[`.
    pub fn within(self, prefix: &str) -> Self {
        let field = match self.field {
            None => prefix.to_owned(),
            Some(path) => format!("{prefix}.{path}"),
        };
        Self { field: Some(field), message: self.message }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Read the `config:` block, given as JSON text, into `T`, typically a
/// struct with `#[derive(Deserialize)]` and `#[serde(deny_unknown_fields)]`.
///
/// The block must be a JSON object; `null` reads as `{}`, the block left
/// out. Errors:
/// - text that is not JSON: the whole block, `config is not valid json: …`;
/// - any other value than an object: the whole block,
///   `invalid type: sequence, expected a config object`;
/// - anything serde or `T` refuses: at the key's path, with serde's message
///   or the one `T` gave.
///
/// ```
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Rule {
///     pattern: String,
/// }
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct MyFilterConfig {
///     rules: Vec<Rule>,
/// }
///
/// let e = weir_plugin_sdk::config::parse::<MyFilterConfig>(r#"{"rules": [{"pattern": 1}]}"#).err().unwrap();
/// assert_eq!(e.field.as_deref(), Some("rules[0].pattern"));
/// assert_eq!(e.message, "invalid type: integer `1`, expected a string");
/// ```
pub fn parse<T: DeserializeOwned>(json: &str) -> Result<T, ConfigError> {
    // Read as JSON first, then as `T`: serde_json reading `T` from text
    // reports a number where a unit enum belongs as a syntax error
    // ("expected value"), which would blame the whole block.
    let value: Value =
        serde_json::from_str(json).map_err(|e| ConfigError::whole(format!("config is not valid json: {e}")))?;
    let Block(config) = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ConfigError { field: (path != ".").then_some(path), message: e.into_inner().to_string() }
    })?;
    Ok(config)
}

/// The block: a `T` read from an object only. Serde lets a derived struct
/// be read from an array too (its fields by position), which a config never
/// means; and `null` is the block left out.
struct Block<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Block<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BlockVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for BlockVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a config object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }

            fn visit_unit<E: de::Error>(self) -> Result<T, E> {
                T::deserialize(de::value::MapDeserializer::new(std::iter::empty::<(&str, ())>()))
            }
        }

        deserializer.deserialize_any(BlockVisitor(PhantomData)).map(Block)
    }
}

/// A string that is not empty: `expected a string, found a number`, `must
/// not be empty`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonEmptyString(pub String);

impl<'de> Deserialize<'de> for NonEmptyString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        value_with(deserializer, |value| match value {
            Value::String(s) if !s.is_empty() => Ok(Self(s.clone())),
            Value::String(_) => Err("must not be empty".to_owned()),
            other => Err(format!("expected a string, found {}", kind(other))),
        })
    }
}

/// A dotted path into a record (`device.os`): a [`NonEmptyString`] with no
/// empty segment, `"a..b" has an empty segment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DottedPath(pub String);

impl<'de> Deserialize<'de> for DottedPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let NonEmptyString(path) = NonEmptyString::deserialize(deserializer)?;
        if path.split('.').any(str::is_empty) {
            return Err(de::Error::custom(format_args!("{path:?} has an empty segment")));
        }
        Ok(Self(path))
    }
}

/// A number: `expected a number, found a string`. Always finite, as JSON
/// has no infinities or NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        value_with(deserializer, |value| match value.as_f64() {
            Some(n) => Ok(Self(n)),
            None => Err(format!("expected a number, found {}", kind(value))),
        })
    }
}

/// A duration such as `"15m"` or `"1h30m"` ([`crate::duration`]), in
/// nanoseconds: `expected a duration string such as "15m", got 5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub i64);

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        value_with(deserializer, |value| {
            let text =
                value.as_str().ok_or_else(|| format!("expected a duration string such as \"15m\", got {value}"))?;
            crate::duration::parse(text).map(Self)
        })
    }
}

/// A list of `T`: `expected a list, found a string`; an error in an item is
/// at its index (`context[2].to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(PhantomData<T>);

        fn found<E: de::Error>(kind: &str) -> E {
            E::custom(format_args!("expected a list, found {kind}"))
        }

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = Vec<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(items)
            }

            // Every other kind of JSON value, named as `kind` names it. By
            // hand, not through `value_with`: the items keep their paths.
            fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
                Err(found("null"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Vec<T>, E> {
                Err(found("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Vec<T>, E> {
                Err(found("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Vec<T>, E> {
                Err(found("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Vec<T>, E> {
                Err(found("a number"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Vec<T>, E> {
                Err(found("a string"))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Vec<T>, A::Error> {
                Err(found("an object"))
            }
        }

        deserializer.deserialize_any(ListVisitor(PhantomData)).map(Self)
    }
}

/// A value written either as a string or as an object, such as a field
/// `"device.os"` or `{"from": "device.os", "to": "os"}`; its `Deserialize`
/// impl calls [`string_or_object`]. By hand rather than an untagged enum,
/// whose only error is "data did not match any variant".
pub trait StringOrObject<'de>: Sized {
    /// What the value should be, for the error about any other JSON value:
    /// `invalid type: integer `3`, expected {EXPECTING}`.
    const EXPECTING: &'static str;

    /// The value from its string form.
    fn from_str<E: de::Error>(text: &str) -> Result<Self, E>;

    /// The value from its object form. Reading `map` through
    /// `de::value::MapAccessDeserializer` into a derived struct puts an
    /// error in a key at that key's path.
    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// Read a [`StringOrObject`].
pub fn string_or_object<'de, D: Deserializer<'de>, T: StringOrObject<'de>>(deserializer: D) -> Result<T, D::Error> {
    struct StringOrObjectVisitor<T>(PhantomData<T>);

    impl<'de, T: StringOrObject<'de>> Visitor<'de> for StringOrObjectVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(T::EXPECTING)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            T::from_str(text)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::from_object(map)
        }
    }

    deserializer.deserialize_any(StringOrObjectVisitor(PhantomData))
}

/// What kind of JSON value `value` is, for a message: `a number`, `null`.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Read a key's value as a `serde_json::Value` and hand it to `read`, whose
/// `Err` is the key's error message: for a `Deserialize` impl with a
/// message of its own (`expected a duration string such as "15m", got 5`).
pub fn value_with<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    read: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<T, D::Error> {
    read(&Value::deserialize(deserializer)?).map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Example {
        field: DottedPath,
        tag: Option<NonEmptyString>,
        items: Option<List<Item>>,
        limit: Option<Number>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Mode {
        mode: Level,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    enum Level {
        Low,
        High,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        to: u32,
    }

    fn error(json: &str) -> ConfigError {
        parse::<Example>(json).expect_err("config should be refused")
    }

    #[test]
    fn errors_display_field_then_message() {
        assert_eq!(ConfigError::at("time.regex", "bad").to_string(), "time.regex: bad");
        assert_eq!(ConfigError::whole("bad").to_string(), "bad");
    }

    #[test]
    fn within_prefixes_the_path_of_a_nested_error() {
        assert_eq!(ConfigError::at("op", "bad").within("rules[2]"), ConfigError::at("rules[2].op", "bad"));
        assert_eq!(ConfigError::at("[x]", "bad").within("rules[0]"), ConfigError::at("rules[0].[x]", "bad"));
        assert_eq!(ConfigError::whole("bad").within("rules[2]"), ConfigError::at("rules[2]", "bad"));
        assert_eq!(
            ConfigError::at("op", "bad").within("match").within("rules[2]"),
            ConfigError::at("rules[2].match.op", "bad")
        );
    }

    #[test]
    fn a_block_is_read_with_its_shapes() {
        let c = parse::<Example>(r#"{"field": "a.b", "tag": "t", "items": [{"to": 1}], "limit": -2.5}"#).unwrap();
        assert_eq!((c.field.0.as_str(), c.tag.unwrap().0.as_str(), c.items.unwrap().0[0].to), ("a.b", "t", 1));
        assert_eq!(c.limit, Some(Number(-2.5)));
        let c = parse::<Example>(r#"{"field": "a", "tag": null}"#).unwrap();
        assert_eq!((c.tag, c.items), (None, None), "null is a key left out");
    }

    #[test]
    fn errors_are_at_the_keys_path() {
        assert_eq!(error(r#"{"field": "a", "items": [{"to": 1}, {"to": "x"}]}"#).field.as_deref(), Some("items[1].to"));
        let e = error(r#"{"field": "a", "feild": 1}"#);
        assert_eq!(e.field.as_deref(), Some("feild"));
        assert_eq!(e.message, "unknown field `feild`, expected one of `field`, `tag`, `items`, `limit`");
        assert_eq!(error(r#"{"field": "a", "items": [{"too": 1}]}"#).field.as_deref(), Some("items[0].too"));
        assert_eq!(error(r#"{"tag": "t"}"#), ConfigError::whole("missing field `field`"));
        let e = parse::<Mode>(r#"{"mode": 3}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("mode"), "a wrong kind of value for an enum is not a syntax error: {e}");
    }

    #[test]
    fn shapes_say_what_they_found() {
        assert_eq!(error(r#"{"field": 3}"#), ConfigError::at("field", "expected a string, found a number"));
        assert_eq!(error(r#"{"field": ""}"#), ConfigError::at("field", "must not be empty"));
        assert_eq!(error(r#"{"field": "a..b"}"#), ConfigError::at("field", "\"a..b\" has an empty segment"));
        assert_eq!(error(r#"{"field": null}"#), ConfigError::at("field", "expected a string, found null"));
        assert_eq!(
            error(r#"{"field": "a", "items": "x"}"#),
            ConfigError::at("items", "expected a list, found a string")
        );
        assert_eq!(
            error(r#"{"field": "a", "items": {}}"#),
            ConfigError::at("items", "expected a list, found an object")
        );
    }

    #[test]
    fn only_an_object_or_null_is_a_block() {
        let e = error("[1]");
        assert_eq!(e, ConfigError::whole("invalid type: sequence, expected a config object"));
        assert_eq!(error("nope").field, None);
        assert!(error("nope").message.starts_with("config is not valid json: "), "{}", error("nope"));
        assert!(error(r#"{"field": "a"} x"#).message.starts_with("config is not valid json: "));
        assert_eq!(error("null"), ConfigError::whole("missing field `field`"), "null is an empty block");
    }

    #[test]
    fn kinds_are_named_as_messages_say_them() {
        let kinds: Vec<_> =
            [json!(null), json!(true), json!(1.5), json!("s"), json!([]), json!({})].iter().map(kind).collect();
        assert_eq!(kinds, ["null", "a boolean", "a number", "a string", "a list", "an object"]);
    }

    #[test]
    fn a_value_read_by_hand_gives_its_own_message() {
        let even =
            |v: &Value| v.as_u64().filter(|n| n % 2 == 0).ok_or_else(|| format!("expected an even number, got {v}"));
        let read = |value: Value| value_with(&value, even).map_err(|e| e.to_string());
        assert_eq!(read(json!(3)), Err("expected an even number, got 3".into()));
        assert_eq!(read(json!(4)), Ok(4));
    }
}
