//! The filter's `config:` block: its serde shape (`PercentilesBlock`), the
//! defaults and checks of what it means, and the validated
//! [`PercentilesConfig`]. It owns every rule about which settings are
//! valid, and nothing about windows at run time.
//!
//! Read with the SDK's `config::parse`, so every error names its key
//! (`quantiles[2]`, `step`), as the WIT `config-error` asks.

use serde::de::{Deserialize, Deserializer};
use weir_plugin_sdk::ConfigError;
use weir_plugin_sdk::config::{self, Duration, List, NonEmptyString, Number};
use weir_plugin_sdk::duration;

use crate::quantile::{self, Quantile};

/// Default significant digits: HdrHistogram's own recommendation, a relative
/// error of at most 0.1%.
const DEFAULT_DIGITS: u8 = 3;

/// Default upper bound of accepted values. Histograms hold only the buckets
/// values fall in, so a high bound costs no memory; the default refuses only
/// absurd values.
const DEFAULT_HIGHEST: f64 = 1e12;

/// Default cardinality cap: an open pane costs about 100 bytes plus about 30
/// per distinct bucket (at most one per value), so 10 000 series with a few
/// hundred distinct values per window stay under ~100 MiB.
const DEFAULT_MAX_SERIES: usize = 10_000;

/// Default `max_future`: how far ahead of the host clock an event may be.
/// Five minutes covers clocks a little fast and devices a few minutes off
/// (LaminarDB's default skew bound); anything further is a wrong clock.
const DEFAULT_MAX_FUTURE: i64 = 5 * 60 * 1_000_000_000;

/// Most panes per hopping window. Each open pane holds one histogram, so
/// memory grows with window/step; 60 allows a 1h window with a 1m step.
pub const MAX_PANES_PER_WINDOW: i64 = 60;

/// The `config:` block of a `percentiles` filter as written. Only `window`
/// is required. Unknown keys are refused, so a typo (`allowed_latness`)
/// cannot silently fall back to a default.
///
/// ```json
/// {"window": "15m", "step": "5m", "quantiles": ["p50", "p99.9"], "tag": "metrics.window"}
/// ```
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PercentilesBlock {
    /// Window size, such as `"15m"`. Required.
    window: Option<Duration>,
    /// Hop between window starts, dividing `window` into at most
    /// [`MAX_PANES_PER_WINDOW`] panes. Default: `window` (tumbling windows).
    step: Option<Duration>,
    /// How far the watermark trails the largest event time seen. Default `0s`.
    allowed_lateness: Option<Duration>,
    /// How far ahead of the host clock an event may be; a later one is
    /// refused (dead-lettered, counted `future`). Default `5m`.
    max_future: Option<Duration>,
    /// Host-clock time without events after which a series' windows are
    /// closed. Default: twice `window`.
    idle_timeout: Option<Duration>,
    /// Quantiles to emit, percentiles (`"p99.9"`) or fractions (`0.999`).
    /// Default: p50, p75, p90, p95, p99.
    quantiles: Option<List<Quantile>>,
    /// Significant digits of every quantile, 1 to 5: each is within
    /// `10^-digits` of the exact value, relative. Default 3.
    #[serde(default, deserialize_with = "significant_digits")]
    significant_digits: Option<u8>,
    /// Smallest accepted value, in the metric's own unit. Default 0.
    lowest: Option<Number>,
    /// Largest accepted value, in the metric's own unit. Default 1e12.
    highest: Option<Number>,
    /// Gone: values of any magnitude keep `significant_digits`. Refused
    /// with that reason rather than as an unknown key.
    scale: Option<serde::de::IgnoredAny>,
    /// Most series with open windows at once. Default 10 000.
    #[serde(default, deserialize_with = "max_series")]
    max_series: Option<usize>,
    /// What to do with an event whose windows have all closed:
    /// `dead_letter` (default) or `drop`.
    late: Option<LatePolicy>,
    /// Tag of emitted window records. Default `metrics.window`.
    tag: Option<NonEmptyString>,
    /// Free text for people reading the config, checked only to be a string.
    #[allow(dead_code)]
    description: Option<String>,
}

impl<'de> Deserialize<'de> for Quantile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        config::value_with(deserializer, Quantile::parse)
    }
}

fn significant_digits<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u8>, D::Error> {
    config::value_with(deserializer, |value| match value.as_u64() {
        Some(digits @ 1..=5) => Ok(Some(digits as u8)),
        _ => Err(format!("expected an integer from 1 to 5, got {value}")),
    })
}

fn max_series<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    config::value_with(deserializer, |value| match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n >= 1 => Ok(Some(n)),
        _ => Err(format!("expected a positive integer, got {value}")),
    })
}

/// What to do with an event whose windows have all closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatePolicy {
    /// Reject it, so the host dead-letters it with the reason.
    DeadLetter,
    /// Consume it; it is still counted as `late`.
    Drop,
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct PercentilesConfig {
    /// Window size in ns (`window`).
    pub window: i64,
    /// Hop between window starts in ns (`step`); equals `window` for tumbling
    /// windows and always divides it.
    pub step: i64,
    /// How far the watermark trails the largest event time seen, in ns.
    pub allowed_lateness: i64,
    /// How far ahead of the host clock an event may be, in ns.
    pub max_future: i64,
    /// Host-clock time without events after which a series' windows are
    /// closed by `tick`, in ns.
    pub idle_timeout: i64,
    /// Quantiles to emit, in config order.
    pub quantiles: Vec<Quantile>,
    /// Significant digits of every quantile, 1 to 5.
    pub significant_digits: u8,
    /// Smallest accepted value, in the metric's own unit.
    pub lowest: f64,
    /// Largest accepted value, in the metric's own unit.
    pub highest: f64,
    /// Most series with open windows at once.
    pub max_series: usize,
    /// What to do with late events.
    pub late: LatePolicy,
    /// Tag of emitted window records.
    pub tag: String,
}

impl PercentilesConfig {
    /// Parse and validate the `config:` block, given as JSON text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let block: PercentilesBlock = config::parse(text)?;
        let window = match block.window {
            Some(Duration(window)) => positive(window, "window")?,
            None => return Err(ConfigError::at("window", "missing (the window size, e.g. \"15m\")")),
        };
        let step = match block.step {
            Some(Duration(step)) => positive(step, "step")?,
            None => window,
        };
        if step > window || window % step != 0 {
            return Err(ConfigError::at(
                "step",
                format!("{} does not divide the window {}", duration::format(step), duration::format(window)),
            ));
        }
        if window / step > MAX_PANES_PER_WINDOW {
            return Err(ConfigError::at(
                "step",
                format!(
                    "{} makes {} panes per {} window; at most {MAX_PANES_PER_WINDOW} are allowed (each pane holds a histogram)",
                    duration::format(step),
                    window / step,
                    duration::format(window)
                ),
            ));
        }
        let allowed_lateness = block.allowed_lateness.map_or(0, |Duration(d)| d);
        let max_future = block.max_future.map_or(DEFAULT_MAX_FUTURE, |Duration(d)| d);
        let idle_timeout = match block.idle_timeout {
            Some(Duration(timeout)) => positive(timeout, "idle_timeout")?,
            None => window.saturating_mul(2),
        };

        let quantiles = match block.quantiles {
            None => quantile::defaults(),
            Some(List(items)) if items.is_empty() => {
                return Err(ConfigError::at(
                    "quantiles",
                    "expected a non-empty list such as [\"p50\", \"p95\", \"p99.9\"]",
                ));
            }
            Some(List(items)) => {
                for (i, q) in items.iter().enumerate() {
                    if items[..i].iter().any(|seen| seen.name == q.name) {
                        return Err(ConfigError::at(
                            format!("quantiles[{i}]"),
                            format!("duplicate quantile {}", q.name),
                        ));
                    }
                }
                items
            }
        };

        let lowest = block.lowest.map_or(0.0, |Number(n)| n);
        if lowest < 0.0 {
            return Err(ConfigError::at("lowest", format!("must be at least 0, got {lowest}")));
        }
        let highest = block.highest.map_or(DEFAULT_HIGHEST, |Number(n)| n);
        if highest <= lowest {
            return Err(ConfigError::at("highest", format!("must be above lowest ({lowest}), got {highest}")));
        }
        if block.scale.is_some() {
            return Err(ConfigError::at(
                "scale",
                "no longer used: values of any magnitude keep significant_digits (3 by default: within 0.1%); remove it",
            ));
        }

        Ok(Self {
            window,
            step,
            allowed_lateness,
            max_future,
            idle_timeout,
            quantiles,
            significant_digits: block.significant_digits.unwrap_or(DEFAULT_DIGITS),
            lowest,
            highest,
            max_series: block.max_series.unwrap_or(DEFAULT_MAX_SERIES),
            late: block.late.unwrap_or(LatePolicy::DeadLetter),
            tag: block.tag.map_or_else(|| "metrics.window".to_string(), |NonEmptyString(tag)| tag),
        })
    }
}

fn positive(nanos: i64, field: &str) -> Result<i64, ConfigError> {
    if nanos <= 0 {
        return Err(ConfigError::at(field, "must be longer than 0s"));
    }
    Ok(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> ConfigError {
        PercentilesConfig::parse(text).unwrap_err()
    }

    #[test]
    fn defaults_fill_everything_but_the_window() {
        let c = PercentilesConfig::parse(r#"{"window": "15m"}"#).unwrap();
        assert_eq!(c.window, 900_000_000_000);
        assert_eq!(c.step, c.window);
        assert_eq!(c.allowed_lateness, 0);
        assert_eq!(c.idle_timeout, 2 * c.window);
        let names: Vec<_> = c.quantiles.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["p50", "p75", "p90", "p95", "p99"]);
        assert_eq!(c.significant_digits, 3);
        assert_eq!((c.lowest, c.highest), (0.0, 1e12));
        assert_eq!(c.max_future, 300_000_000_000);
        assert_eq!(c.max_series, 10_000);
        assert_eq!(c.late, LatePolicy::DeadLetter);
        assert_eq!(c.tag, "metrics.window");
    }

    #[test]
    fn a_full_config_parses() {
        let c = PercentilesConfig::parse(
            r#"{"window": "15m", "step": "5m", "allowed_lateness": "30s", "idle_timeout": "1h",
                "quantiles": ["p50", "p99.9", 0.75], "significant_digits": 2, "lowest": 1,
                "highest": 60000, "max_future": "1h", "max_series": 50, "late": "drop", "tag": "m"}"#,
        )
        .unwrap();
        assert_eq!(c.step, 300_000_000_000);
        assert_eq!(c.quantiles[1].name, "p99_9");
        assert_eq!(c.quantiles[2].name, "p75");
        assert_eq!(c.late, LatePolicy::Drop);
        assert_eq!(c.max_future, 3_600_000_000_000);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"window": "15m", "windw": 1}"#, "windw"),
            (r#"{}"#, "window"),
            (r#"{"window": "15q"}"#, "window"),
            (r#"{"window": "0s"}"#, "window"),
            (r#"{"window": "15m", "step": "7m"}"#, "step"),
            (r#"{"window": "15m", "step": "30m"}"#, "step"),
            (r#"{"window": "1h", "step": "1s"}"#, "step"),
            (r#"{"window": "15m", "allowed_lateness": 5}"#, "allowed_lateness"),
            (r#"{"window": "15m", "quantiles": ["p50", "p101"]}"#, "quantiles[1]"),
            (r#"{"window": "15m", "quantiles": ["p50", 0.5]}"#, "quantiles[1]"),
            (r#"{"window": "15m", "quantiles": []}"#, "quantiles"),
            (r#"{"window": "15m", "significant_digits": 6}"#, "significant_digits"),
            (r#"{"window": "15m", "lowest": -1}"#, "lowest"),
            (r#"{"window": "15m", "lowest": 10, "highest": 5}"#, "highest"),
            (r#"{"window": "15m", "scale": 0}"#, "scale"),
            (r#"{"window": "15m", "max_future": "soon"}"#, "max_future"),
            (r#"{"window": "15m", "max_series": 0}"#, "max_series"),
            (r#"{"window": "15m", "late": "keep"}"#, "late"),
            (r#"{"window": "15m", "tag": ""}"#, "tag"),
        ];
        for (text, field) in cases {
            let e = error(text);
            assert_eq!(e.field.as_deref(), Some(field), "{text}: {e}");
        }
        assert_eq!(error(r#"{"window": "15m", "step": "7m"}"#).message, "7m does not divide the window 15m");
        assert_eq!(
            error(r#"{"window": "15m", "scale": 1000}"#).message,
            "no longer used: values of any magnitude keep significant_digits (3 by default: within 0.1%); remove it"
        );
    }

    #[test]
    fn a_non_object_config_is_refused_as_a_whole() {
        assert_eq!(error("[1]").field, None);
        assert_eq!(error("nope").field, None);
    }
}
