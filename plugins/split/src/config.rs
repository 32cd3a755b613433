//! The filter's `config:` block: reading it from JSON, checking it, and the
//! validated [`SplitFilterConfig`] the rest of the crate uses. It compiles the
//! time regex and strftime format once, here, so a bad one fails `configure`
//! rather than every chunk. It does not split anything.
//!
//! Parsing is by hand from a `serde_json::Value` rather than serde derive so
//! every error can name the exact key (`context[2].to`, `time.regex`).

use regex::Regex;
use serde_json::{Map, Value};
use weir_plugin_sdk::ConfigError;

use crate::time::TimeFormat;

/// The validated config.
#[derive(Debug, Clone)]
pub struct SplitFilterConfig {
    /// Dotted path of the chunk field holding the statements (default `logs`).
    pub field: String,
    /// Key a string statement's text goes under (default `message`).
    pub message_key: String,
    /// Chunk fields copied onto every statement record.
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
        }
    }
}

/// A chunk field copied onto each statement.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextField {
    /// Dotted path in the chunk.
    pub from: String,
    /// Key in the statement record.
    pub to: String,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMissingTime {
    /// Use the host clock and flag the record.
    Arrival,
    /// Reject the whole chunk (the WIT contract rejects input events, not
    /// derived records).
    DeadLetter,
}

const TOP_KEYS: &[&str] = &["field", "message_key", "context", "time", "on_missing_time", "time_missing_key", "tag"];
const TIME_KEYS: &[&str] = &["field", "regex", "delimiter", "position", "format"];
const CONTEXT_KEYS: &[&str] = &["from", "to"];

impl SplitFilterConfig {
    /// Read the config from the JSON the host passes to `configure`. `null`
    /// and `{}` give the defaults.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| ConfigError::whole(format!("config is not valid JSON: {e}")))?;
        let object = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(object) => object,
            other => {
                return Err(ConfigError::whole(format!("config must be an object, found {}", kind(&other))));
            }
        };
        reject_unknown(&object, TOP_KEYS, "")?;

        let mut config = Self::default();
        if let Some(v) = object.get("field") {
            config.field = path(v, "field")?;
        }
        if let Some(v) = object.get("message_key") {
            config.message_key = non_empty_str(v, "message_key")?;
        }
        if let Some(v) = object.get("time_missing_key") {
            config.time_missing_key = non_empty_str(v, "time_missing_key")?;
        }
        if let Some(v) = object.get("tag") {
            config.tag = Some(non_empty_str(v, "tag")?);
        }
        if let Some(v) = object.get("on_missing_time") {
            config.on_missing_time = match non_empty_str(v, "on_missing_time")?.as_str() {
                "arrival" => OnMissingTime::Arrival,
                "dead_letter" => OnMissingTime::DeadLetter,
                other => {
                    return Err(ConfigError::at(
                        "on_missing_time",
                        format!("expected \"arrival\" or \"dead_letter\", found {other:?}"),
                    ));
                }
            };
        }
        if let Some(v) = object.get("time") {
            config.time = Some(time(v)?);
        }
        if let Some(v) = object.get("context") {
            let Value::Array(items) = v else {
                return Err(ConfigError::at("context", format!("expected a list, found {}", kind(v))));
            };
            for (i, item) in items.iter().enumerate() {
                let field = context_field(item, &format!("context[{i}]"))?;
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

fn time(v: &Value) -> Result<TimeConfig, ConfigError> {
    let Value::Object(object) = v else {
        return Err(ConfigError::at("time", format!("expected an object, found {}", kind(v))));
    };
    reject_unknown(object, TIME_KEYS, "time.")?;
    let field = object.get("field").map(|v| path(v, "time.field")).transpose()?;
    let regex = match object.get("regex") {
        Some(v) => {
            let source = non_empty_str(v, "time.regex")?;
            let regex = Regex::new(&source).map_err(|e| ConfigError::at("time.regex", e.to_string()))?;
            if !regex.capture_names().any(|name| name == Some("time")) {
                return Err(ConfigError::at("time.regex", "the regex has no named group \"time\""));
            }
            Some(regex)
        }
        None => None,
    };
    let delimiter = object.get("delimiter").map(|v| non_empty_str(v, "time.delimiter")).transpose()?;
    let position = match object.get("position") {
        Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                return Err(ConfigError::at("time.position", format!("expected a whole number from 0, found {v}")));
            }
        },
        None => None,
    };
    let text = match (regex, delimiter, position) {
        (Some(_), Some(_), _) => {
            return Err(ConfigError::at("time", "set regex or delimiter, not both"));
        }
        (Some(_), None, Some(_)) => {
            return Err(ConfigError::at("time.position", "position goes with delimiter, not regex"));
        }
        (None, None, Some(_)) => {
            return Err(ConfigError::at("time.position", "position needs a delimiter"));
        }
        (Some(regex), None, None) => Some(TextTime::Regex(regex)),
        (None, Some(delimiter), position) => Some(TextTime::Token { delimiter, position: position.unwrap_or(0) }),
        (None, None, None) => None,
    };
    if field.is_none() && text.is_none() {
        return Err(ConfigError::at("time", "set field (object statements), regex or delimiter (string statements)"));
    }
    let format = match object.get("format") {
        Some(v) => TimeFormat::from_config(&non_empty_str(v, "time.format")?)
            .map_err(|message| ConfigError::at("time.format", message))?,
        None => TimeFormat::Rfc3339,
    };
    Ok(TimeConfig { field, text, format })
}

fn context_field(v: &Value, at: &str) -> Result<ContextField, ConfigError> {
    match v {
        Value::String(_) => {
            let from = path(v, at)?;
            let to = last_segment(&from);
            Ok(ContextField { from, to })
        }
        Value::Object(object) => {
            reject_unknown(object, CONTEXT_KEYS, &format!("{at}."))?;
            let from = match object.get("from") {
                Some(v) => path(v, &format!("{at}.from"))?,
                None => return Err(ConfigError::at(at, "missing key \"from\"")),
            };
            let to = match object.get("to") {
                Some(v) => non_empty_str(v, &format!("{at}.to"))?,
                None => last_segment(&from),
            };
            Ok(ContextField { from, to })
        }
        other => Err(ConfigError::at(at, format!("expected a dotted path or {{from, to}}, found {}", kind(other)))),
    }
}

fn last_segment(path: &str) -> String {
    path.rsplit('.').next().unwrap_or(path).to_owned()
}

fn reject_unknown(object: &Map<String, Value>, known: &[&str], prefix: &str) -> Result<(), ConfigError> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(ConfigError::at(
            format!("{prefix}{key}"),
            format!("unknown key, expected one of: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn non_empty_str(v: &Value, at: &str) -> Result<String, ConfigError> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::String(_) => Err(ConfigError::at(at, "must not be empty")),
        other => Err(ConfigError::at(at, format!("expected a string, found {}", kind(other)))),
    }
}

/// A dotted path: a non-empty string with no empty segment.
fn path(v: &Value, at: &str) -> Result<String, ConfigError> {
    let s = non_empty_str(v, at)?;
    if s.split('.').any(str::is_empty) {
        return Err(ConfigError::at(at, format!("{s:?} has an empty segment")));
    }
    Ok(s)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
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
        }
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
        assert!(err(r#"{"feild":"x"}"#).message.starts_with("unknown key, expected one of: field,"));
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
