//! The filter's `config:` block: rules, their validation, and errors by
//! field path (`rules[0].op`). It owns what a valid rule is; evaluating
//! rules is `engine`'s.
//!
//! Parsed by hand over a JSON object rather than serde derive so every error
//! names its exact key, as the WIT `config-error` asks.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use weir_plugin_sdk::ConfigError;
use weir_plugin_sdk::config::{self, reject_unknown_keys};

use crate::template::Template;

/// Keys of the block. Unknown keys are errors, so a typo cannot silently
/// fall back to a default.
const KEYS: [&str; 4] = ["rules", "tag", "generator_url", "description"];

/// Keys of one rule.
const RULE_KEYS: [&str; 11] =
    ["name", "metric", "match", "stat", "op", "value", "for", "absent_for", "labels", "annotations", "description"];

/// Window lengths without a window of its series after which a firing alert
/// resolves, unless a rule says otherwise.
const DEFAULT_ABSENT_FOR: u32 = 3;

/// Stats every window record carries besides its quantiles.
const PLAIN_STATS: [&str; 4] = ["count", "min", "max", "mean"];

/// Labels the plugin sets itself on every alert.
const RESERVED_LABELS: [&str; 2] = ["alertname", "metric"];

/// A comparison between the observed value and the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "<" => Self::Lt,
            "<=" => Self::Le,
            "==" => Self::Eq,
            "!=" => Self::Ne,
            _ => return None,
        })
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }

    /// Whether `observed op threshold` holds.
    pub fn holds(self, observed: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => observed > threshold,
            Self::Ge => observed >= threshold,
            Self::Lt => observed < threshold,
            Self::Le => observed <= threshold,
            Self::Eq => observed == threshold,
            Self::Ne => observed != threshold,
        }
    }
}

/// One alerting rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Becomes the `alertname` label; unique among rules.
    pub name: String,
    /// Metric of the window records it applies to.
    pub metric: String,
    /// Labels a series must have, with these values, for the rule to apply.
    pub matchers: BTreeMap<String, String>,
    /// Field of the window record compared: `count`, `min`, `max`, `mean` or
    /// a quantile name (`p95`, `p99_9`; `p99.9` is accepted and normalised).
    pub stat: String,
    /// Comparison.
    pub op: Op,
    /// Threshold.
    pub value: f64,
    /// Consecutive windows the condition must hold before the alert fires.
    pub for_windows: u32,
    /// Window lengths a firing series may go without a window record before
    /// its alert resolves (seen when a later window of the rule arrives); 0
    /// never.
    pub absent_for: u32,
    /// Labels added to the alert.
    pub labels: BTreeMap<String, String>,
    /// Annotation templates, by annotation name.
    pub annotations: BTreeMap<String, Template>,
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct ThresholdConfig {
    /// Rules, in config order.
    pub rules: Vec<Rule>,
    /// Tag of alert records.
    pub tag: String,
    /// Template of the alerts' `generatorURL`; omitted from alerts when unset.
    pub generator_url: Option<Template>,
}

impl ThresholdConfig {
    /// Parse and validate the `config:` block, given as JSON text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let map = config::object(text)?;
        reject_unknown_keys(&map, &KEYS)?;
        let rules = match map.get("rules") {
            None => return Err(ConfigError::at("rules", "missing (a list of rules)")),
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut rules: Vec<Rule> = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let rule = parse_rule(item).map_err(|e| e.within(&format!("rules[{i}]")))?;
                    if rules.iter().any(|r| r.name == rule.name) {
                        return Err(ConfigError::at(
                            format!("rules[{i}].name"),
                            format!("duplicate rule name {:?}", rule.name),
                        ));
                    }
                    rules.push(rule);
                }
                rules
            }
            Some(v) => {
                return Err(ConfigError::at("rules", format!("expected a non-empty list of rules, got {v}")));
            }
        };
        let tag = match map.get("tag") {
            None => "alerts".to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(v) => {
                return Err(ConfigError::at("tag", format!("expected a non-empty string, got {v}")));
            }
        };
        let generator_url = match map.get("generator_url") {
            None => None,
            Some(Value::String(s)) => Some(Template::compile(s).map_err(|m| ConfigError::at("generator_url", m))?),
            Some(v) => {
                return Err(ConfigError::at("generator_url", format!("expected a string, got {v}")));
            }
        };
        string_or_absent(&map, "description")?;
        Ok(Self { rules, tag, generator_url })
    }
}

/// Read one rule; error paths are relative to the rule (`op`, not
/// `rules[0].op`), for the caller to put [`within`](ConfigError::within) it.
fn parse_rule(value: &Value) -> Result<Rule, ConfigError> {
    let Value::Object(map) = value else {
        return Err(ConfigError::whole(format!("expected a rule object, got {value}")));
    };
    reject_unknown_keys(map, &RULE_KEYS)?;
    let name = required_string(map, "name")?;
    let metric = required_string(map, "metric")?;
    let matchers = string_map(map, "match")?;

    let stat_text = required_string(map, "stat")?;
    let stat = normalise_stat(&stat_text).ok_or_else(|| {
        ConfigError::at(
            "stat",
            format!("unknown stat {stat_text:?} (use count, min, max, mean or a quantile such as p95 or p99_9)"),
        )
    })?;
    let op_text = required_string(map, "op")?;
    let op = Op::parse(&op_text)
        .ok_or_else(|| ConfigError::at("op", format!("unknown operator {op_text:?} (use >, >=, <, <=, == or !=)")))?;
    let value = match map.get("value") {
        Some(v) => v
            .as_f64()
            .filter(|n| n.is_finite())
            .ok_or_else(|| ConfigError::at("value", format!("expected a number, got {v}")))?,
        None => return Err(ConfigError::at("value", "missing (the threshold)")),
    };
    let for_windows = match map.get("for") {
        None => 1,
        Some(v) => match windows(v) {
            Some(n) if n >= 1 => n,
            _ => {
                return Err(ConfigError::at(
                    "for",
                    format!("expected a positive integer (consecutive windows), got {v}"),
                ));
            }
        },
    };
    let absent_for = match map.get("absent_for") {
        None => DEFAULT_ABSENT_FOR,
        Some(v) => windows(v).ok_or_else(|| {
            ConfigError::at(
                "absent_for",
                format!("expected a whole number of windows (0: a silent series never resolves), got {v}"),
            )
        })?,
    };
    let labels = string_map(map, "labels")?;
    if let Some(reserved) = RESERVED_LABELS.iter().find(|l| labels.contains_key(**l)) {
        return Err(ConfigError::at(
            format!("labels.{reserved}"),
            "is set by the plugin (alertname is the rule name, metric the window's metric)",
        ));
    }
    let annotations = string_map(map, "annotations")?
        .into_iter()
        .map(|(key, text)| {
            Template::compile(&text)
                .map(|t| (key.clone(), t))
                .map_err(|m| ConfigError::at(format!("annotations.{key}"), m))
        })
        .collect::<Result<_, _>>()?;
    string_or_absent(map, "description")?;
    Ok(Rule { name, metric, matchers, stat, op, value, for_windows, absent_for, labels, annotations })
}

/// A count of windows: a whole number that fits in `u32`.
fn windows(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// `count`, `min`, `max`, `mean`, or a quantile name; `p99.9` becomes `p99_9`,
/// the name `percentiles` gives that field.
fn normalise_stat(text: &str) -> Option<String> {
    if PLAIN_STATS.contains(&text) {
        return Some(text.to_string());
    }
    let digits = text.strip_prefix('p')?;
    let (whole, fraction) = digits.split_once(['.', '_']).unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || digits.ends_with(['.', '_']) {
        return None;
    }
    Some(if fraction.is_empty() { format!("p{whole}") } else { format!("p{whole}_{fraction}") })
}

fn required_string(map: &Map<String, Value>, key: &str) -> Result<String, ConfigError> {
    match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(v) => Err(ConfigError::at(key, format!("expected a non-empty string, got {v}"))),
        None => Err(ConfigError::at(key, "missing")),
    }
}

fn string_or_absent(map: &Map<String, Value>, key: &str) -> Result<(), ConfigError> {
    match map.get(key) {
        None | Some(Value::String(_)) => Ok(()),
        Some(v) => Err(ConfigError::at(key, format!("expected a string, got {v}"))),
    }
}

fn string_map(map: &Map<String, Value>, key: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    match map.get(key) {
        None => Ok(BTreeMap::new()),
        Some(Value::Object(entries)) => entries
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(ConfigError::at(format!("{key}.{k}"), format!("expected a string, got {other}"))),
            })
            .collect(),
        Some(v) => Err(ConfigError::at(key, format!("expected an object of strings, got {v}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EXAMPLE: &str = r#"{"rules": [{"name": "PaymentLatencyHigh", "metric": "latency_ms", "match": {"op": "pay"},
        "stat": "p95", "op": ">", "value": 800, "for": 2, "labels": {"severity": "page"},
        "annotations": {"summary": "p95 {{metric}} for {{labels.op}} is {{value}} (threshold {{threshold}}) in window {{window_start}}..{{window_end}}"}}]}"#;

    #[test]
    fn the_issue_example_parses_with_defaults() {
        let c = ThresholdConfig::parse(EXAMPLE).unwrap();
        assert_eq!(c.tag, "alerts");
        assert!(c.generator_url.is_none());
        let r = &c.rules[0];
        assert_eq!((r.name.as_str(), r.metric.as_str(), r.stat.as_str()), ("PaymentLatencyHigh", "latency_ms", "p95"));
        assert_eq!((r.op, r.value, r.for_windows, r.absent_for), (Op::Gt, 800.0, 2, DEFAULT_ABSENT_FOR));
        assert_eq!(r.matchers["op"], "pay");
        assert_eq!(r.labels["severity"], "page");
        assert!(r.annotations.contains_key("summary"));
    }

    #[test]
    fn stats_are_normalised_to_percentiles_field_names() {
        assert_eq!(normalise_stat("p99.9").as_deref(), Some("p99_9"));
        assert_eq!(normalise_stat("p99_9").as_deref(), Some("p99_9"));
        assert_eq!(normalise_stat("mean").as_deref(), Some("mean"));
        for bad in ["p", "p9x", "median", "p99.", "p.5", "p9.9.9"] {
            assert_eq!(normalise_stat(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_op_compares_as_written() {
        let cases = [
            (">", 2.0, true),
            (">", 1.0, false),
            (">=", 1.0, true),
            ("<", 0.5, true),
            ("<=", 1.0, true),
            ("==", 1.0, true),
            ("!=", 1.0, false),
        ];
        for (text, observed, holds) in cases {
            assert_eq!(Op::parse(text).unwrap().holds(observed, 1.0), holds, "{observed} {text} 1");
            assert_eq!(Op::parse(text).unwrap().as_str(), text);
        }
    }

    #[test]
    fn errors_name_the_field_path() {
        let rule = |extra: serde_json::Value| {
            let mut r = json!({"name": "R", "metric": "m", "stat": "p95", "op": ">", "value": 1});
            for (k, v) in extra.as_object().unwrap() {
                r[k] = v.clone();
            }
            r
        };
        let cases = [
            (json!({"rules": [rule(json!({"op": "=>"}))]}), "rules[0].op"),
            (json!({"rules": [rule(json!({})), rule(json!({"stat": "median"}))]}), "rules[1].stat"),
            (json!({"rules": [rule(json!({})), rule(json!({}))]}), "rules[1].name"),
            (json!({"rules": [rule(json!({"value": "high"}))]}), "rules[0].value"),
            (json!({"rules": [rule(json!({"for": 0}))]}), "rules[0].for"),
            (json!({"rules": [rule(json!({"absent_for": -1}))]}), "rules[0].absent_for"),
            (json!({"rules": [rule(json!({"absent_for": "3"}))]}), "rules[0].absent_for"),
            (json!({"rules": [rule(json!({"treshold": 3}))]}), "rules[0].treshold"),
            (json!({"rules": [rule(json!({"match": {"op": 1}}))]}), "rules[0].match.op"),
            (json!({"rules": [rule(json!({"labels": {"alertname": "x"}}))]}), "rules[0].labels.alertname"),
            (json!({"rules": [rule(json!({"annotations": {"summary": "{{valu}}"}}))]}), "rules[0].annotations.summary"),
            (json!({"rules": [{"name": "R", "metric": "m", "stat": "p95", "op": ">"}]}), "rules[0].value"),
            (json!({"rules": []}), "rules"),
            (json!({}), "rules"),
            (json!({"rules": [rule(json!({}))], "tags": "x"}), "tags"),
            (json!({"rules": [rule(json!({}))], "generator_url": "http://g/{{nope}}"}), "generator_url"),
        ];
        for (config, field) in cases {
            let e = ThresholdConfig::parse(&config.to_string()).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{config}: {e}");
        }
        let e = ThresholdConfig::parse(&json!({"rules": [rule(json!({"op": "=>"}))]}).to_string()).unwrap_err();
        assert_eq!(e.to_string(), r#"rules[0].op: unknown operator "=>" (use >, >=, <, <=, == or !=)"#);
    }
}
