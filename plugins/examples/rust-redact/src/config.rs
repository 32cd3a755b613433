//! The `redact` filter's `config:` block: its serde shape
//! (`RedactFilterBlock`), the checks of what it means, and the validated
//! [`RedactFilterConfig`] the filter uses. The e-mail regex is compiled here,
//! once, so a bad one fails `configure` rather than every record.
//!
//! Read with the SDK's `config::parse`, so an error names its key. The
//! messages are the ones `docs/plugins.md` gives for all five languages'
//! examples (`unknown key`, `expected a string`, ...), so this crate words
//! them itself rather than taking serde's.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};
use weir_plugin_sdk::ConfigError;
use weir_plugin_sdk::config;

/// `field` when not given: where `split` puts a statement's text.
pub const DEFAULT_FIELD: &str = "message";
/// `mask` when not given.
pub const DEFAULT_MASK: &str = "[REDACTED]";
/// `email_pattern` when not given: ASCII only, so every language's regex
/// engine reads it alike (docs/plugins.md, "E-mail addresses").
pub const DEFAULT_EMAIL_PATTERN: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}";

/// The `config:` block as written. Every key is optional; `{}` masks
/// e-mail addresses and cards in `message` with `[REDACTED]`.
///
/// ```json
/// {"field": "message", "mask": "***", "emails": true, "cards": false, "total_field": "redactions"}
/// ```
#[derive(Debug, Deserialize)]
struct RedactFilterBlock {
    /// The top-level member of the body holding the text. Default `message`.
    #[serde(default = "default_field")]
    field: Text,
    /// What replaces each match, possibly empty. Default `[REDACTED]`.
    #[serde(default = "default_mask")]
    mask: Text,
    /// The regular expression of an e-mail address.
    #[serde(default = "default_email_pattern")]
    email_pattern: Text,
    /// Mask e-mail addresses. Default true.
    #[serde(default = "on")]
    emails: Flag,
    /// Mask card numbers. Default true.
    #[serde(default = "on")]
    cards: Flag,
    /// When set, a member of this name with the running total is added to
    /// each record that had something masked. Default: none (`null` too).
    total_field: Option<NullableText>,
    /// Any other key, refused after reading: serde's own refusal
    /// (`deny_unknown_fields`) would word it differently from the other
    /// languages' examples.
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

fn default_field() -> Text {
    Text(DEFAULT_FIELD.to_owned())
}

fn default_mask() -> Text {
    Text(DEFAULT_MASK.to_owned())
}

fn default_email_pattern() -> Text {
    Text(DEFAULT_EMAIL_PATTERN.to_owned())
}

fn on() -> Flag {
    Flag(true)
}

/// A string: `expected a string` (`null` included).
#[derive(Debug)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        config::value_with(deserializer, |v| v.as_str().map(|s| Self(s.to_owned())).ok_or("expected a string".into()))
    }
}

/// A string where `null` is allowed (serde's `Option` reads that):
/// `expected a string or null`.
#[derive(Debug)]
struct NullableText(String);

impl<'de> Deserialize<'de> for NullableText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        config::value_with(deserializer, |v| {
            v.as_str().map(|s| Self(s.to_owned())).ok_or("expected a string or null".into())
        })
    }
}

/// `true` or `false`: `expected true or false`.
#[derive(Debug)]
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        config::value_with(deserializer, |v| v.as_bool().map(Self).ok_or("expected true or false".into()))
    }
}

/// The validated `config:` block.
#[derive(Debug, Clone)]
pub struct RedactFilterConfig {
    /// The top-level member holding the text.
    pub field: String,
    /// What replaces each match.
    pub mask: String,
    /// `None` when `emails` is false.
    pub email: Option<Regex>,
    /// The pattern matches nothing without an `@` (the default does), so
    /// text without one skips the regex.
    pub email_needs_at: bool,
    /// Mask card numbers.
    pub cards: bool,
    /// The member that carries the running total, if any.
    pub total_field: Option<String>,
}

impl RedactFilterConfig {
    /// Read the config from the JSON the host passes to `configure`. `{}`
    /// gives the defaults.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key, with the messages of
    /// `docs/plugins.md`; `config is not a json object` for the whole block.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let block: RedactFilterBlock = config::parse(json).map_err(|e| match e.field {
            Some(_) => e,
            // No key is required, so a whole-block error means the block is
            // not an object; said as the other languages say it.
            None => ConfigError::whole("config is not a json object"),
        })?;
        if let Some(key) = block.unknown.keys().next() {
            return Err(ConfigError::at(key, "unknown key"));
        }
        let Text(field) = block.field;
        if field.is_empty() {
            return Err(ConfigError::at("field", "must not be empty"));
        }
        let Text(pattern) = block.email_pattern;
        if pattern.is_empty() {
            return Err(ConfigError::at("email_pattern", "must not be empty"));
        }
        let email = Regex::new(&pattern)
            .map_err(|e| ConfigError::at("email_pattern", format!("invalid regular expression: {e}")))?;
        let total_field = match block.total_field {
            None => None,
            Some(NullableText(name)) if name.is_empty() => {
                return Err(ConfigError::at("total_field", "must not be empty"));
            }
            Some(NullableText(name)) if name.chars().any(|c| c == '"' || c == '\\' || c < '\u{20}') => {
                return Err(ConfigError::at(
                    "total_field",
                    "must not contain quotes, backslashes or control characters",
                ));
            }
            Some(NullableText(name)) if name == field => {
                return Err(ConfigError::at("total_field", "must differ from field"));
            }
            Some(NullableText(name)) => Some(name),
        };
        Ok(Self {
            email_needs_at: pattern == DEFAULT_EMAIL_PATTERN,
            field,
            mask: block.mask.0,
            email: block.emails.0.then_some(email),
            cards: block.cards.0,
            total_field,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> ConfigError {
        RedactFilterConfig::from_json(json).expect_err("config should be refused")
    }

    #[test]
    fn an_empty_block_gives_the_defaults() {
        let config = RedactFilterConfig::from_json("{}").unwrap();
        assert_eq!((config.field.as_str(), config.mask.as_str()), (DEFAULT_FIELD, DEFAULT_MASK));
        assert_eq!(config.email.map(|r| r.as_str().to_owned()).as_deref(), Some(DEFAULT_EMAIL_PATTERN));
        assert!(config.email_needs_at && config.cards && config.total_field.is_none());
        let config = RedactFilterConfig::from_json(r#"{"emails": false, "total_field": null, "mask": ""}"#).unwrap();
        assert!(config.email.is_none() && config.total_field.is_none() && config.mask.is_empty());
    }

    #[test]
    fn a_bad_config_names_the_key_in_the_words_every_language_uses() {
        for (text, field, message) in [
            (r#"{"bogus":1}"#, "bogus", "unknown key"),
            (r#"{"mask":3}"#, "mask", "expected a string"),
            (r#"{"field":null}"#, "field", "expected a string"),
            (r#"{"field":""}"#, "field", "must not be empty"),
            (r#"{"email_pattern":""}"#, "email_pattern", "must not be empty"),
            (r#"{"cards":"yes"}"#, "cards", "expected true or false"),
            (r#"{"total_field":1}"#, "total_field", "expected a string or null"),
            (r#"{"total_field":""}"#, "total_field", "must not be empty"),
            (r#"{"total_field":"a\"b"}"#, "total_field", "must not contain quotes, backslashes or control characters"),
            (r#"{"total_field":"message"}"#, "total_field", "must differ from field"),
        ] {
            assert_eq!(error(text), ConfigError::at(field, message), "{text}");
        }
        let e = error(r#"{"email_pattern":"("}"#);
        assert_eq!(e.field.as_deref(), Some("email_pattern"));
        assert!(e.message.starts_with("invalid regular expression: "), "{e}");
        assert_eq!(error("[]"), ConfigError::whole("config is not a json object"));
        assert_eq!(error("3"), ConfigError::whole("config is not a json object"));
    }
}
