//! The filter's `config:` block: its serde shape (`ThresholdBlock`,
//! `RuleBlock`), what makes a rule valid, and errors by field path
//! (`rules[0].op`). It owns what a valid rule is; evaluating rules is
//! `engine`'s.
//!
//! Read with the SDK's `config::parse`, so every error names its exact key,
//! as the WIT `config-error` asks.

use std::collections::BTreeMap;

use serde::de::{self, Deserialize, Deserializer};
use weir_plugin_sdk::ConfigError;
use weir_plugin_sdk::config::{self, Duration, List, NonEmptyString, Number};

use crate::template::Template;

/// Window lengths without a window of its series after which a firing alert
/// resolves, unless a rule says otherwise.
const DEFAULT_ABSENT_FOR: u32 = 3;

/// Default `max_future`, `percentiles`' own: a window it emits starts no
/// later than its newest value, which is at most this far ahead of the host
/// clock.
const DEFAULT_MAX_FUTURE: i64 = 5 * 60 * 1_000_000_000;

/// Stats every window record carries besides its quantiles.
const PLAIN_STATS: [&str; 4] = ["count", "min", "max", "mean"];

/// Labels the plugin sets itself on every alert.
const RESERVED_LABELS: [&str; 2] = ["alertname", "metric"];

/// The `config:` block of a `threshold` filter as written. Unknown keys are
/// errors, here and in a rule, so a typo cannot silently fall back to a
/// default.
///
/// ```json
/// {"rules": [{"name": "PaymentLatencyHigh", "metric": "latency_ms", "match": {"op": "pay"},
///             "stat": "p95", "op": ">", "value": 800, "for": 2, "labels": {"severity": "page"},
///             "annotations": {"summary": "p95 {{metric}} is {{value}}"}}]}
/// ```
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdBlock {
    /// The rules, in order. Required, at least one.
    rules: Option<List<RuleBlock>>,
    /// Tag of alert records. Default `alerts`.
    tag: Option<NonEmptyString>,
    /// Template of the alerts' `generatorURL`, with the variables of
    /// annotations. Default: alerts have none.
    generator_url: Option<Template>,
    /// How far ahead of the host clock a window may start and still be
    /// evaluated. Default `5m`.
    max_future: Option<Duration>,
    /// Free text for people reading the config, checked only to be a string.
    #[allow(dead_code)]
    description: Option<String>,
}

/// One rule as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "a rule object")]
struct RuleBlock {
    /// Becomes the `alertname` label; unique among rules. Required.
    name: Option<NonEmptyString>,
    /// Metric of the window records the rule applies to. Required.
    metric: Option<NonEmptyString>,
    /// Labels a series must have, with these values, for the rule to apply.
    /// Default: none, every series of the metric.
    #[serde(rename = "match")]
    matchers: Option<BTreeMap<String, String>>,
    /// Field of the window record compared: `count`, `min`, `max`, `mean` or
    /// a quantile (`p95`, `p99_9`; `p99.9` is accepted). Required.
    stat: Option<Stat>,
    /// `>`, `>=`, `<`, `<=`, `==` or `!=`. Required.
    op: Option<Op>,
    /// The threshold. Required.
    value: Option<Number>,
    /// Consecutive windows the condition must hold before the alert fires.
    /// Default 1.
    #[serde(rename = "for", default, deserialize_with = "for_windows")]
    for_windows: Option<u32>,
    /// Window lengths a firing series may go without a window record before
    /// its alert resolves; 0 never. Default 3.
    #[serde(default, deserialize_with = "absent_for")]
    absent_for: Option<u32>,
    /// Labels added to the alert; not `alertname` or `metric`, which the
    /// plugin sets. Default: none.
    labels: Option<BTreeMap<String, String>>,
    /// Annotation templates (`{{value}}`, `{{labels.op}}`, …), by name.
    /// Default: none.
    annotations: Option<BTreeMap<String, Template>>,
    /// Free text for people reading the config, checked only to be a string.
    #[allow(dead_code)]
    description: Option<String>,
}

/// A stat name, normalised to the window record's field name.
struct Stat(String);

impl<'de> Deserialize<'de> for Stat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let NonEmptyString(text) = NonEmptyString::deserialize(deserializer)?;
        normalise_stat(&text).map(Stat).ok_or_else(|| {
            de::Error::custom(format_args!(
                "unknown stat {text:?} (use count, min, max, mean or a quantile such as p95 or p99_9)"
            ))
        })
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let NonEmptyString(text) = NonEmptyString::deserialize(deserializer)?;
        Op::parse(&text)
            .ok_or_else(|| de::Error::custom(format_args!("unknown operator {text:?} (use >, >=, <, <=, == or !=)")))
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Template::compile(&String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// A count of windows: a whole number that fits in `u32`, at least `min`.
fn windows<'de, D: Deserializer<'de>>(deserializer: D, min: u32, expected: &str) -> Result<Option<u32>, D::Error> {
    config::value_with(deserializer, |value| {
        match value.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|&n| n >= min) {
            Some(n) => Ok(Some(n)),
            None => Err(format!("expected {expected}, got {value}")),
        }
    })
}

fn for_windows<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    windows(deserializer, 1, "a positive integer (consecutive windows)")
}

fn absent_for<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    windows(deserializer, 0, "a whole number of windows (0: a silent series never resolves)")
}

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
    /// How far ahead of the host clock a window may start and still be
    /// evaluated, in ns: a later one comes from a wrong clock and would make
    /// every series' alerts look absent and its own later windows look out
    /// of order.
    pub max_future: i64,
}

impl ThresholdConfig {
    /// Parse and validate the `config:` block, given as JSON text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let block: ThresholdBlock = config::parse(text)?;
        let rules = match block.rules {
            None => return Err(ConfigError::at("rules", "missing (a list of rules)")),
            Some(List(items)) if items.is_empty() => {
                return Err(ConfigError::at("rules", "expected a non-empty list of rules, got []"));
            }
            Some(List(items)) => {
                let mut rules: Vec<Rule> = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let rule = check_rule(item).map_err(|e| e.within(&format!("rules[{i}]")))?;
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
        };
        let tag = block.tag.map_or_else(|| "alerts".to_string(), |NonEmptyString(tag)| tag);
        let max_future = block.max_future.map_or(DEFAULT_MAX_FUTURE, |Duration(d)| d);
        Ok(Self { rules, tag, generator_url: block.generator_url, max_future })
    }
}

/// Check one rule; error paths are relative to the rule (`op`, not
/// `rules[0].op`), for the caller to put [`within`](ConfigError::within) it.
fn check_rule(block: RuleBlock) -> Result<Rule, ConfigError> {
    let missing = |key: &str| ConfigError::at(key, "missing");
    let NonEmptyString(name) = block.name.ok_or_else(|| missing("name"))?;
    let NonEmptyString(metric) = block.metric.ok_or_else(|| missing("metric"))?;
    let Stat(stat) = block.stat.ok_or_else(|| missing("stat"))?;
    let op = block.op.ok_or_else(|| missing("op"))?;
    let Number(value) = block.value.ok_or_else(|| ConfigError::at("value", "missing (the threshold)"))?;
    let labels = block.labels.unwrap_or_default();
    if let Some(reserved) = RESERVED_LABELS.iter().find(|l| labels.contains_key(**l)) {
        return Err(ConfigError::at(
            format!("labels.{reserved}"),
            "is set by the plugin (alertname is the rule name, metric the window's metric)",
        ));
    }
    Ok(Rule {
        name,
        metric,
        matchers: block.matchers.unwrap_or_default(),
        stat,
        op,
        value,
        for_windows: block.for_windows.unwrap_or(1),
        absent_for: block.absent_for.unwrap_or(DEFAULT_ABSENT_FOR),
        labels,
        annotations: block.annotations.unwrap_or_default(),
    })
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
        assert_eq!(c.max_future, DEFAULT_MAX_FUTURE);
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
            (json!({"rules": [rule(json!({}))], "max_future": 300}), "max_future"),
        ];
        for (config, field) in cases {
            let e = ThresholdConfig::parse(&config.to_string()).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{config}: {e}");
        }
        let e = ThresholdConfig::parse(&json!({"rules": [rule(json!({"op": "=>"}))]}).to_string()).unwrap_err();
        assert_eq!(e.to_string(), r#"rules[0].op: unknown operator "=>" (use >, >=, <, <=, == or !=)"#);
    }
}
