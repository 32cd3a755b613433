//! What every filter's `config:` block handling shares: [`ConfigError`], a
//! refusal naming the key at fault by its path (`rules[2].pattern`), and the
//! first steps of reading the block by hand as a JSON object. Which keys a
//! filter takes and what makes them valid stay in that filter's `config.rs`.
//!
//! `ConfigError` mirrors the WIT `config-error` record field for field;
//! [`crate::export_filter!`] hands it to the host.

use std::fmt;

use serde_json::{Map, Value};

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
    /// at `rules[2]`. Lets a part of the config be read without threading its
    /// path through. The path is always joined with `.`, as a key read from
    /// JSON may itself start with `[`.
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

/// Read the `config:` block, given as JSON text, as an object; anything else
/// is an error about the whole block.
pub fn object(text: &str) -> Result<Map<String, Value>, ConfigError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ConfigError::whole(format!("config is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ConfigError::whole("config must be an object")),
    }
}

/// Refuse a key of `map` that is not in `known`, so a typo cannot silently
/// fall back to a default. The error is at the key itself; read a nested
/// object's keys [`within`](ConfigError::within) its path.
pub fn reject_unknown_keys(map: &Map<String, Value>, known: &[&str]) -> Result<(), ConfigError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(ConfigError::at(key.as_str(), format!("unknown key (expected one of: {})", known.join(", ")))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn only_a_json_object_is_a_config_block() {
        assert_eq!(object(r#"{"a": 1}"#).unwrap().len(), 1);
        let e = object("[1]").unwrap_err();
        assert_eq!(e, ConfigError::whole("config must be an object"));
        let e = object("nope").unwrap_err();
        assert_eq!(e.field, None);
        assert!(e.message.starts_with("config is not valid JSON: "), "{e}");
    }

    #[test]
    fn an_unknown_key_is_named_with_the_known_ones() {
        let map = object(r#"{"rules": [], "tags": "x"}"#).unwrap();
        assert_eq!(reject_unknown_keys(&map, &["rules", "tags"]), Ok(()));
        assert_eq!(
            reject_unknown_keys(&map, &["rules", "tag"]),
            Err(ConfigError::at("tags", "unknown key (expected one of: rules, tag)"))
        );
    }
}
