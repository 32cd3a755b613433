//! The filter's `config:` block: its serde shape (`SplitFilterBlock`),
//! the checks of what it means, and the validated [`SplitFilterConfig`] the
//! rest of the crate uses. It compiles the time regex and strftime format
//! once, here, so a bad one fails `configure` rather than every chunk. It
//! does not split anything.
//!
//! Read with the SDK's `config::parse`, so every error names its key
//! (`context[2].to`, `time.regex`).

use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use weir_plugin_sdk::ConfigError;
use weir_plugin_sdk::config::{self, DottedPath, List, NonEmptyString, StringOrObject};

use crate::time::TimeFormat;

/// The `config:` block of a `split` filter as written. Every key is
/// optional; `{}` splits the statements of `logs`, each taking its chunk's
/// time.
///
/// ```json
/// {"field": "logs", "context": ["app", {"from": "device.os", "to": "os"}],
///  "time": {"regex": "^(?P<time>\\S+)"}, "on_missing_time": "arrival"}
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitFilterBlock {
    /// Dotted path of the chunk field holding the statements, a list of
    /// strings or objects. Default `logs`.
    field: Option<DottedPath>,
    /// Key a string statement's text goes under. Default `message`.
    message_key: Option<NonEmptyString>,
    /// Chunk fields copied onto every statement, each a dotted path (copied
    /// under its last segment) or `{"from": path, "to": key}`. Default: none.
    context: Option<List<ContextField>>,
    /// How to find each statement's time. Default: every statement takes
    /// its chunk's time.
    time: Option<TimeBlock>,
    /// What to do with a statement whose time is missing or unreadable:
    /// `arrival` (default) or `dead_letter`.
    on_missing_time: Option<OnMissingTime>,
    /// Key of the `true` flag added in `arrival` mode. Default `time_missing`.
    time_missing_key: Option<NonEmptyString>,
    /// Tag of emitted records. Default: the chunk's tag.
    tag: Option<NonEmptyString>,
    /// Which text lines start a statement; the others continue the one
    /// before (a stack trace). `true`: a line whose time reads; `false`:
    /// every line; `{"start": regex}`: a line the regex matches. Default
    /// `true` when the time is read from text, else `false`.
    multiline: Option<MultilineBlock>,
}

/// `multiline` as written: `true`, `false` or `{"start": regex}`.
#[derive(Debug)]
enum MultilineBlock {
    Enabled(bool),
    Start(Regex),
}

/// The object form of `multiline`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MultilineObject {
    /// A regex matching the first line of every statement.
    start: Pattern,
}

/// A regex that compiles.
struct Pattern(Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let NonEmptyString(source) = NonEmptyString::deserialize(deserializer)?;
        Regex::new(&source).map(Pattern).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for MultilineBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = MultilineBlock;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or {\"start\": regex}")
            }

            fn visit_bool<E: de::Error>(self, enabled: bool) -> Result<MultilineBlock, E> {
                Ok(MultilineBlock::Enabled(enabled))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MultilineBlock, A::Error> {
                let MultilineObject { start: Pattern(start) } =
                    MultilineObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(MultilineBlock::Start(start))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

/// The `time` object as written: `field` for object statements, `regex` or
/// `delimiter` (with `position`) for string statements, and `format`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a time object")]
struct TimeBlock {
    /// Dotted path of the time in an object statement.
    field: Option<DottedPath>,
    /// A regex with a named group `time`, searched in a string statement.
    regex: Option<TimeRegex>,
    /// What splits a string statement into pieces, one of which is the time.
    delimiter: Option<NonEmptyString>,
    /// Which piece is the time, from 0. Default 0; only with `delimiter`.
    #[serde(default, deserialize_with = "position")]
    position: Option<usize>,
    /// `rfc3339` (default), `unix`, `unix_ms` or a strftime format.
    format: Option<TimeFormat>,
}

/// A piece's position: a whole number from 0.
fn position<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    config::value_with(deserializer, |v| match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
        Some(n) => Ok(Some(n)),
        None => Err(format!("expected a whole number from 0, found {v}")),
    })
}

/// A time regex: compiles, and has a named group `time`.
#[derive(Debug)]
struct TimeRegex(Regex);

impl<'de> Deserialize<'de> for TimeRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let NonEmptyString(source) = NonEmptyString::deserialize(deserializer)?;
        let regex = Regex::new(&source).map_err(de::Error::custom)?;
        if !regex.capture_names().any(|name| name == Some("time")) {
            return Err(de::Error::custom("the regex has no named group \"time\""));
        }
        Ok(Self(regex))
    }
}

impl<'de> Deserialize<'de> for TimeFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let NonEmptyString(format) = NonEmptyString::deserialize(deserializer)?;
        TimeFormat::from_config(&format).map_err(de::Error::custom)
    }
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct SplitFilterConfig {
    /// Dotted path of the chunk field holding the statements (default `logs`).
    pub field: String,
    /// Key a string statement's text goes under (default `message`).
    pub message_key: String,
    /// Chunk fields copied onto every statement.
    pub context: Vec<ContextField>,
    /// How to find each statement's time; `None` gives every statement the
    /// chunk's time.
    pub time: Option<TimeConfig>,
    /// What to do with a statement whose time is missing or unreadable.
    pub on_missing_time: OnMissingTime,
    /// Key of the `true` flag added in `arrival` mode (default `time_missing`).
    pub time_missing_key: String,
    /// Tag of emitted records; `None` keeps the chunk's tag.
    pub tag: Option<String>,
    /// Which text lines start a statement.
    pub multiline: Multiline,
}

/// Which lines of text (lines of a string, or string elements of an array)
/// start a statement. A line that does not continues the statement before
/// it, joined with a newline, as Fluent Bit's multiline parsers join a stack
/// trace to its first line. A continuation with no statement before it in
/// its chunk starts one of its own.
#[derive(Debug, Clone)]
pub enum Multiline {
    /// Every line is a statement.
    Off,
    /// A line whose time can be read (found and parsed) starts a statement.
    Time,
    /// A line this regex matches starts a statement.
    Start(Regex),
}

impl Default for SplitFilterConfig {
    fn default() -> Self {
        Self {
            field: "logs".into(),
            message_key: "message".into(),
            context: Vec::new(),
            time: None,
            on_missing_time: OnMissingTime::Arrival,
            time_missing_key: "time_missing".into(),
            tag: None,
            multiline: Multiline::Off,
        }
    }
}

/// A chunk field copied onto each statement: `"device.os"` (under its last
/// segment, `os`) or `{"from": "device.os", "to": "os"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextField {
    /// Dotted path in the chunk.
    pub from: String,
    /// Key in the statement record.
    pub to: String,
}

/// The object form of a context field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextObject {
    from: DottedPath,
    to: Option<NonEmptyString>,
}

impl<'de> StringOrObject<'de> for ContextField {
    const EXPECTING: &'static str = "a dotted path or {from, to}";

    fn from_str<E: de::Error>(path: &str) -> Result<Self, E> {
        let DottedPath(from) = DottedPath::deserialize(de::value::StrDeserializer::new(path))?;
        Ok(ContextField { to: last_segment(&from), from })
    }

    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let ContextObject { from: DottedPath(from), to } =
            ContextObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
        let to = to.map_or_else(|| last_segment(&from), |NonEmptyString(to)| to);
        Ok(ContextField { from, to })
    }
}

impl<'de> Deserialize<'de> for ContextField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        config::string_or_object(deserializer)
    }
}

/// Where a statement's time comes from, and how it is written.
#[derive(Debug, Clone)]
pub struct TimeConfig {
    /// Dotted path of the time in an object statement.
    pub field: Option<String>,
    /// How to find the time in a string statement.
    pub text: Option<TextTime>,
    /// How the time is written.
    pub format: TimeFormat,
}

/// How to find the time inside a string statement.
#[derive(Debug, Clone)]
pub enum TextTime {
    /// A regex with a named group `time`.
    Regex(Regex),
    /// The `position`-th (0-based) piece of the string split on `delimiter`.
    /// Pieces are exact, as with `cut -d`: two delimiters in a row make an
    /// empty piece.
    Token {
        /// What separates the pieces.
        delimiter: String,
        /// Which piece, from 0.
        position: usize,
    },
}

/// What to do with a statement whose time is missing or unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingTime {
    /// Use the host clock and flag the record.
    Arrival,
    /// Reject the whole chunk (the WIT contract rejects input events, not
    /// derived records).
    DeadLetter,
}

impl SplitFilterConfig {
    /// Read the config from the JSON the host passes to `configure`. `null`
    /// and `{}` give the defaults.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let block: SplitFilterBlock = config::parse(json)?;
        let defaults = Self::default();
        let time = block.time.map(time).transpose()?;
        let text_time = time.as_ref().is_some_and(|t| t.text.is_some());
        let multiline = match block.multiline {
            None => {
                if text_time {
                    Multiline::Time
                } else {
                    Multiline::Off
                }
            }
            Some(MultilineBlock::Enabled(false)) => Multiline::Off,
            Some(MultilineBlock::Enabled(true)) if text_time => Multiline::Time,
            Some(MultilineBlock::Enabled(true)) => {
                return Err(ConfigError::at(
                    "multiline",
                    "true needs time.regex or time.delimiter to tell where a statement starts; or set multiline.start",
                ));
            }
            Some(MultilineBlock::Start(start)) => Multiline::Start(start),
        };
        let mut config = Self {
            field: block.field.map_or(defaults.field, |DottedPath(p)| p),
            message_key: block.message_key.map_or(defaults.message_key, |NonEmptyString(k)| k),
            context: Vec::new(),
            time,
            on_missing_time: block.on_missing_time.unwrap_or(defaults.on_missing_time),
            time_missing_key: block.time_missing_key.map_or(defaults.time_missing_key, |NonEmptyString(k)| k),
            tag: block.tag.map(|NonEmptyString(t)| t),
            multiline,
        };
        for (i, field) in block.context.map(|List(c)| c).unwrap_or_default().into_iter().enumerate() {
            // Two fields with one key would make duplicate JSON keys, which
            // Elasticsearch refuses; so would a clash with the keys split adds.
            let clash = if config.context.iter().any(|c| c.to == field.to) {
                Some("another context field")
            } else if field.to == config.message_key {
                Some("message_key")
            } else if field.to == config.time_missing_key {
                Some("time_missing_key")
            } else {
                None
            };
            if let Some(other) = clash {
                return Err(ConfigError::at(
                    format!("context[{i}]"),
                    format!("key {:?} is already used by {other}", field.to),
                ));
            }
            config.context.push(field);
        }
        if config.message_key == config.time_missing_key {
            return Err(ConfigError::at(
                "time_missing_key",
                format!("key {:?} is already used by message_key", config.time_missing_key),
            ));
        }
        Ok(config)
    }
}

/// Check which of `time`'s keys go together.
fn time(block: TimeBlock) -> Result<TimeConfig, ConfigError> {
    let text = match (block.regex, block.delimiter, block.position) {
        (Some(_), Some(_), _) => {
            return Err(ConfigError::at("time", "set regex or delimiter, not both"));
        }
        (Some(_), None, Some(_)) => {
            return Err(ConfigError::at("time.position", "position goes with delimiter, not regex"));
        }
        (None, None, Some(_)) => {
            return Err(ConfigError::at("time.position", "position needs a delimiter"));
        }
        (Some(TimeRegex(regex)), None, None) => Some(TextTime::Regex(regex)),
        (None, Some(NonEmptyString(delimiter)), position) => {
            Some(TextTime::Token { delimiter, position: position.unwrap_or(0) })
        }
        (None, None, None) => None,
    };
    let field = block.field.map(|DottedPath(p)| p);
    if field.is_none() && text.is_none() {
        return Err(ConfigError::at("time", "set field (object statements), regex or delimiter (string statements)"));
    }
    Ok(TimeConfig { field, text, format: block.format.unwrap_or(TimeFormat::Rfc3339) })
}

fn last_segment(path: &str) -> String {
    path.rsplit('.').next().unwrap_or(path).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> ConfigError {
        SplitFilterConfig::from_json(json).unwrap_err()
    }

    #[test]
    fn empty_and_null_configs_take_the_defaults() {
        for json in ["{}", "null"] {
            let c = SplitFilterConfig::from_json(json).unwrap();
            assert_eq!(c.field, "logs");
            assert_eq!(c.message_key, "message");
            assert_eq!(c.time_missing_key, "time_missing");
            assert_eq!(c.on_missing_time, OnMissingTime::Arrival);
            assert!(c.time.is_none() && c.tag.is_none() && c.context.is_empty());
            assert!(matches!(c.multiline, Multiline::Off));
        }
    }

    #[test]
    fn multiline_defaults_to_the_time_rule_when_the_time_is_read_from_text() {
        let multiline = |json: &str| SplitFilterConfig::from_json(json).unwrap().multiline;
        assert!(matches!(multiline(r#"{"time":{"regex":"^(?P<time>\\S+)"}}"#), Multiline::Time));
        assert!(matches!(multiline(r#"{"time":{"delimiter":" "}}"#), Multiline::Time));
        assert!(matches!(multiline(r#"{"time":{"field":"ts"}}"#), Multiline::Off));
        assert!(matches!(multiline(r#"{"time":{"delimiter":" "},"multiline":false}"#), Multiline::Off));
        assert!(matches!(multiline(r#"{"multiline":{"start":"^\\d{4}-"}}"#), Multiline::Start(_)));
    }

    #[test]
    fn multiline_settings_that_cannot_work_are_refused() {
        assert_eq!(
            err(r#"{"multiline":true}"#),
            ConfigError::at(
                "multiline",
                "true needs time.regex or time.delimiter to tell where a statement starts; or set multiline.start"
            )
        );
        assert_eq!(err(r#"{"multiline":{"start":"("}}"#).field.as_deref(), Some("multiline.start"));
        assert_eq!(err(r#"{"multiline":{"begin":"x"}}"#).field.as_deref(), Some("multiline.begin"));
        assert!(err(r#"{"multiline":"java"}"#).message.contains(r#"expected true, false or {"start": regex}"#));
    }

    #[test]
    fn a_full_config_is_read() {
        let c = SplitFilterConfig::from_json(
            r#"{"field":"payload.logs","message_key":"msg","tag":"app.logs",
                "context":["session.id",{"from":"device.os","to":"os"},{"from":"user"}],
                "time":{"field":"ts","regex":"^(?P<time>\\S+)","format":"unix_ms"},
                "on_missing_time":"dead_letter","time_missing_key":"no_time"}"#,
        )
        .unwrap();
        assert_eq!(c.field, "payload.logs");
        assert_eq!(c.tag.as_deref(), Some("app.logs"));
        let to: Vec<_> = c.context.iter().map(|f| f.to.as_str()).collect();
        assert_eq!(to, ["id", "os", "user"]);
        let time = c.time.unwrap();
        assert_eq!(time.field.as_deref(), Some("ts"));
        assert!(matches!(time.text, Some(TextTime::Regex(_))));
        assert!(matches!(time.format, TimeFormat::UnixMs));
        assert_eq!(c.on_missing_time, OnMissingTime::DeadLetter);
    }

    #[test]
    fn a_delimiter_defaults_to_position_zero() {
        let c = SplitFilterConfig::from_json(r#"{"time":{"delimiter":" "}}"#).unwrap();
        assert!(matches!(
            c.time.unwrap().text,
            Some(TextTime::Token { ref delimiter, position: 0 }) if delimiter == " "
        ));
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        assert_eq!(err(r#"{"feild":"x"}"#).field.as_deref(), Some("feild"));
        assert_eq!(err(r#"{"time":{"field":"t","fmt":"unix"}}"#).field.as_deref(), Some("time.fmt"));
        assert_eq!(err(r#"{"context":[{"from":"a","as":"b"}]}"#).field.as_deref(), Some("context[0].as"));
        assert!(err(r#"{"feild":"x"}"#).message.starts_with("unknown field `feild`, expected one of `field`,"));
    }

    #[test]
    fn an_invalid_regex_reports_the_regex_crates_message() {
        let e = err(r#"{"time":{"regex":"(?P<time>"}}"#);
        assert_eq!(e.field.as_deref(), Some("time.regex"));
        assert!(e.message.contains("unclosed group"), "{}", e.message);
    }

    #[test]
    fn a_regex_needs_a_time_group() {
        let e = err(r#"{"time":{"regex":"^(\\S+)"}}"#);
        assert_eq!(e, ConfigError::at("time.regex", "the regex has no named group \"time\""));
    }

    #[test]
    fn time_settings_that_contradict_are_refused() {
        assert_eq!(err(r#"{"time":{"regex":"(?P<time>x)","delimiter":" "}}"#).field.as_deref(), Some("time"));
        assert_eq!(err(r#"{"time":{"position":1}}"#).field.as_deref(), Some("time.position"));
        assert_eq!(err(r#"{"time":{"delimiter":" ","position":-1}}"#).field.as_deref(), Some("time.position"));
        assert_eq!(err(r#"{"time":{"format":"unix"}}"#).field.as_deref(), Some("time"));
        assert_eq!(err(r#"{"time":{"field":"t","format":"iso"}}"#).field.as_deref(), Some("time.format"));
    }

    #[test]
    fn wrong_types_say_what_was_found() {
        assert_eq!(err(r#"{"field":3}"#), ConfigError::at("field", "expected a string, found a number"));
        assert_eq!(err(r#"{"context":"a"}"#), ConfigError::at("context", "expected a list, found a string"));
        assert_eq!(err(r#"{"field":"a..b"}"#), ConfigError::at("field", "\"a..b\" has an empty segment"));
        assert_eq!(err("[1]").field, None);
        assert_eq!(err(r#"{"on_missing_time":"drop"}"#).field.as_deref(), Some("on_missing_time"));
    }

    #[test]
    fn clashing_keys_are_refused() {
        let e = err(r#"{"context":["a.id","b.id"]}"#);
        assert_eq!(e, ConfigError::at("context[1]", "key \"id\" is already used by another context field"));
        assert_eq!(err(r#"{"context":["x.message"]}"#).field.as_deref(), Some("context[0]"));
        assert_eq!(err(r#"{"time_missing_key":"message"}"#).field.as_deref(), Some("time_missing_key"));
    }
}
