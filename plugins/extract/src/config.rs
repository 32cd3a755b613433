//! The shape of the filter's `config:` block, read with errors that name a
//! key.
//!
//! These serde structs only check shape: types, known keys, required keys.
//! Meaning (patterns compile, groups exist, units are known, labels are
//! unique) is checked when `rules.rs` compiles them, which is the only
//! reader of these structs. They are read with the SDK's `config::parse`,
//! whose errors carry the path of the offending key, as in
//! `rules[0].value.type`, because that is what the WIT `config-error`
//! reports.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess};
use weir_plugin_sdk::ConfigError;
use weir_plugin_sdk::config::{self, StringOrObject};

/// The `config:` block of an `extract` filter.
///
/// ```json
/// {"source": "message", "metric_tag": "metrics", "mode": "first",
///  "rules": [{"metric": "response_time",
///             "pattern": "resp_ms=(?P<ms>\\d+)",
///             "value": {"group": "ms", "type": "integer"},
///             "labels": {"groups": [], "fields": ["os", {"from": "app.version", "to": "app_version"}]}}]}
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a config object")]
pub struct ExtractFilterConfig {
    /// Dotted path of the string field the rules read, unless a rule names
    /// its own. Default `message`, the log statement.
    #[serde(default = "default_source")]
    pub source: String,
    /// Tag of the metric records emitted per match, so outputs and later
    /// filters can route metrics apart from raw logs. Default `metrics`.
    #[serde(default = "default_metric_tag")]
    pub metric_tag: String,
    /// Top-level field added to a matched raw record, holding what was
    /// extracted. A namespace rather than top-level `metric`/`value`/label
    /// fields, which could collide with the record's own keys. Default `extract`.
    #[serde(default = "default_enrich_field")]
    pub enrich_field: String,
    /// `first`: the first rule, in order, whose pattern matches wins.
    /// `all`: every matching rule yields a metric. Default `first`.
    #[serde(default)]
    pub mode: Mode,
    /// The rules, tried in order.
    pub rules: Vec<RuleConfig>,
    /// Add where each rule matched to its metric records, under `match`:
    /// `{"rule": index, "source": path, "start", "end", "groups": {"name":
    /// [start, end]}}`, offsets in characters of the source text (as
    /// pattern errors count them), end exclusive, for named groups that
    /// took part. For the console's rule playground and debugging; off by
    /// default (the records keep their documented shape).
    #[serde(default)]
    pub explain: bool,
}

fn default_source() -> String {
    "message".into()
}

fn default_metric_tag() -> String {
    "metrics".into()
}

fn default_enrich_field() -> String {
    "extract".into()
}

/// Which matching rules yield a metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only the first rule, in config order, whose pattern matches.
    #[default]
    First,
    /// Every rule whose pattern matches, in config order.
    All,
}

/// One rule: a pattern, where its value is, and its labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a rule object")]
pub struct RuleConfig {
    /// The metric's name, e.g. `response_time`.
    pub metric: String,
    /// Regex (Rust `regex` syntax) with named groups, searched anywhere in the
    /// source text.
    pub pattern: String,
    /// Dotted path of the string field this rule reads; default: the
    /// filter's `source`.
    #[serde(default)]
    pub source: Option<String>,
    /// Which group holds the value, and its type.
    pub value: ValueConfig,
    /// Labels of the metric. Default: none.
    #[serde(default)]
    pub labels: LabelsConfig,
}

/// Where a rule's value is and how to read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a value object")]
pub struct ValueConfig {
    /// Name of the pattern's group holding the value.
    pub group: String,
    /// `integer`, `float` or `duration`.
    #[serde(rename = "type")]
    pub kind: ValueKind,
    /// For `duration` only: the unit the value is reported in, one of `ns`,
    /// `us`, `ms`, `s`, `m`, `h`. Default `ms`.
    #[serde(default)]
    pub unit: Option<String>,
}

/// The type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// A 64-bit signed integer.
    Integer,
    /// A finite decimal number.
    Float,
    /// Duration text with units, such as `231ms` or `1.2s`.
    Duration,
}

/// Where a metric's labels come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a labels object")]
pub struct LabelsConfig {
    /// Named groups of the pattern; each becomes a label of the same name.
    /// A group that did not take part in the match gives no label.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Record fields (dotted paths) copied as labels.
    #[serde(default)]
    pub fields: Vec<FieldLabelConfig>,
}

/// A label copied from a record field: `"os"` (the label is named after the
/// path) or `{"from": "app.version", "to": "app_version"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLabelConfig {
    /// Dotted path of the record field.
    pub from: String,
    /// Label name; the path itself when not renamed.
    pub to: String,
}

impl<'de> StringOrObject<'de> for FieldLabelConfig {
    const EXPECTING: &'static str = r#"a field path or {"from": path, "to": label}"#;

    fn from_str<E: de::Error>(path: &str) -> Result<Self, E> {
        Ok(FieldLabelConfig { from: path.to_owned(), to: path.to_owned() })
    }

    fn from_object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut from: Option<String> = None;
        let mut to: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.as_str() {
                "from" => &mut from,
                "to" => &mut to,
                other => return Err(de::Error::unknown_field(other, &["from", "to"])),
            };
            if slot.is_some() {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            *slot = Some(map.next_value()?);
        }
        let from = from.ok_or_else(|| de::Error::missing_field("from"))?;
        let to = to.unwrap_or_else(|| from.clone());
        Ok(FieldLabelConfig { from, to })
    }
}

impl<'de> Deserialize<'de> for FieldLabelConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        config::string_or_object(deserializer)
    }
}

impl ExtractFilterConfig {
    /// Read the JSON `config:` block. Shape errors name the key's path.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        config::parse(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> ConfigError {
        ExtractFilterConfig::from_json(json).expect_err("config should be refused")
    }

    #[test]
    fn defaults_fill_the_optional_keys() {
        let c = ExtractFilterConfig::from_json(
            r#"{"rules":[{"metric":"m","pattern":"(?P<v>\\d+)","value":{"group":"v","type":"integer"}}]}"#,
        )
        .unwrap();
        assert_eq!(c.source, "message");
        assert_eq!(c.metric_tag, "metrics");
        assert_eq!(c.enrich_field, "extract");
        assert_eq!(c.mode, Mode::First);
        assert!(!c.explain);
        assert_eq!(c.rules[0].source, None);
        assert!(c.rules[0].labels.groups.is_empty() && c.rules[0].labels.fields.is_empty());
    }

    #[test]
    fn field_labels_are_paths_or_renames() {
        let c = ExtractFilterConfig::from_json(
            r#"{"mode":"all","rules":[{"metric":"m","pattern":"x","value":{"group":"v","type":"float"},
               "labels":{"fields":["os",{"from":"app.version","to":"app_version"},{"from":"a.b"}]}}]}"#,
        )
        .unwrap();
        assert_eq!(c.mode, Mode::All);
        let fields = &c.rules[0].labels.fields;
        assert_eq!(fields[0], FieldLabelConfig { from: "os".into(), to: "os".into() });
        assert_eq!(fields[1], FieldLabelConfig { from: "app.version".into(), to: "app_version".into() });
        assert_eq!(fields[2], FieldLabelConfig { from: "a.b".into(), to: "a.b".into() });
    }

    #[test]
    fn unknown_keys_name_their_path() {
        let e =
            error(r#"{"rules":[{"metric":"m","pattern":"x","patern":"y","value":{"group":"v","type":"integer"}}]}"#);
        assert_eq!(e.field.as_deref(), Some("rules[0].patern"));
        assert!(e.message.starts_with("unknown field `patern`, expected one of"), "{}", e.message);

        let e = error(r#"{"sorce":"msg","rules":[]}"#);
        assert_eq!(e.field.as_deref(), Some("sorce"));

        let e = error(
            r#"{"rules":[{"metric":"m","pattern":"x","value":{"group":"v","type":"integer"},
               "labels":{"fields":[{"from":"a","as":"b"}]}}]}"#,
        );
        // Raised by our own visitor, so the path stops at the object; the message names the key.
        assert_eq!(e.field.as_deref(), Some("rules[0].labels.fields[0]"));
        assert_eq!(e.message, "unknown field `as`, expected `from` or `to`");
    }

    #[test]
    fn wrong_types_and_variants_name_their_path() {
        let e = error(r#"{"rules":[{"metric":"m","pattern":"x","value":{"group":"v","type":"int"}}]}"#);
        assert_eq!(e.field.as_deref(), Some("rules[0].value.type"));
        assert_eq!(e.message, "unknown variant `int`, expected one of `integer`, `float`, `duration`");

        let e = error(r#"{"mode":"some","rules":[]}"#);
        assert_eq!(e.field.as_deref(), Some("mode"));

        let e = error(
            r#"{"rules":[{"metric":"m","pattern":"x","value":{"group":"v","type":"integer"},"labels":{"fields":[3]}}]}"#,
        );
        assert_eq!(e.field.as_deref(), Some("rules[0].labels.fields[0]"));
        assert_eq!(e.message, r#"invalid type: integer `3`, expected a field path or {"from": path, "to": label}"#);
    }

    #[test]
    fn missing_keys_name_the_object_they_belong_in() {
        let e = error(r#"{"rules":[{"metric":"m","pattern":"x"}]}"#);
        assert_eq!(e.field.as_deref(), Some("rules[0]"));
        assert_eq!(e.message, "missing field `value`");

        let e = error(r#"{}"#);
        assert_eq!(e, ConfigError { field: None, message: "missing field `rules`".into() });
    }

    #[test]
    fn broken_json_is_a_whole_block_error() {
        let e = error(r#"{"rules": ["#);
        assert_eq!(e.field, None);
        assert!(e.message.starts_with("config is not valid json: "), "{}", e.message);

        let e = error(r#""rules""#);
        assert_eq!(e.field, None);
        assert_eq!(e.message, r#"invalid type: string "rules", expected a config object"#);
    }
}
