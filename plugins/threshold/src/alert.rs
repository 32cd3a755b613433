//! The body of an alert record, in the shape Alertmanager's
//! `POST /api/v2/alerts` takes for one alert:
//!
//! ```json
//! {"labels":{"alertname":"PaymentLatencyHigh","metric":"latency_ms","op":"pay","severity":"page"},
//!  "annotations":{"summary":"p95 latency_ms for pay is 912 (threshold 800) ..."},
//!  "startsAt":"2026-11-22T10:30:00Z","endsAt":"2026-11-22T10:45:00Z",
//!  "generatorURL":"https://grafana.example/d/latency?var-op=pay"}
//! ```
//!
//! `endsAt` is present only on a resolved alert, `generatorURL` only when
//! configured. Labels are the series' labels, then the rule's, then
//! `alertname` (the rule name) and `metric`, each overriding the one before.

use std::collections::BTreeMap;

use weir_plugin_sdk::ObjectWriter;
use weir_plugin_sdk::json::rfc3339;

/// Room for a typical alert, so the writer rarely reallocates.
const TYPICAL_BODY: usize = 384;

/// What an alert record says.
pub struct AlertBody<'a> {
    /// Rule name.
    pub alertname: &'a str,
    /// Metric name.
    pub metric: &'a str,
    /// Series labels.
    pub series_labels: &'a BTreeMap<String, String>,
    /// The rule's labels.
    pub rule_labels: &'a BTreeMap<String, String>,
    /// Rendered annotations.
    pub annotations: BTreeMap<&'a str, String>,
    /// When the alert fired, ns since the epoch.
    pub starts_at: i64,
    /// When it resolved, for a resolved alert.
    pub ends_at: Option<i64>,
    /// Rendered generator URL, if configured.
    pub generator_url: Option<String>,
}

impl AlertBody<'_> {
    /// The alert's labels, merged.
    pub fn labels(&self) -> BTreeMap<&str, &str> {
        let mut labels: BTreeMap<&str, &str> = BTreeMap::new();
        labels.extend(self.series_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        labels.extend(self.rule_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        labels.insert("alertname", self.alertname);
        labels.insert("metric", self.metric);
        labels
    }

    /// Serialise as JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = ObjectWriter::with_capacity(TYPICAL_BODY);
        w.value("labels", &self.labels())
            .value("annotations", &self.annotations)
            .str("startsAt", &rfc3339(self.starts_at));
        if let Some(ends_at) = self.ends_at {
            w.str("endsAt", &rfc3339(ends_at));
        }
        if let Some(url) = &self.generator_url {
            w.str("generatorURL", url);
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_labels_win_over_rule_labels_over_series_labels() {
        let series = [("op", "pay"), ("alertname", "spoof"), ("severity", "low")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let rule = [("severity".to_string(), "page".to_string())].into();
        let body = AlertBody {
            alertname: "PaymentLatencyHigh",
            metric: "latency_ms",
            series_labels: &series,
            rule_labels: &rule,
            annotations: [("summary", "high".to_string())].into(),
            starts_at: 1_795_343_400_000_000_000,
            ends_at: None,
            generator_url: None,
        };
        assert_eq!(
            String::from_utf8(body.to_bytes()).unwrap(),
            r#"{"labels":{"alertname":"PaymentLatencyHigh","metric":"latency_ms","op":"pay","severity":"page"},"annotations":{"summary":"high"},"startsAt":"2026-11-22T10:30:00Z"}"#
        );
        let resolved =
            AlertBody { ends_at: Some(1_795_344_300_000_000_000), generator_url: Some("http://g/x".into()), ..body };
        let text = String::from_utf8(resolved.to_bytes()).unwrap();
        assert!(
            text.ends_with(
                r#""startsAt":"2026-11-22T10:30:00Z","endsAt":"2026-11-22T10:45:00Z","generatorURL":"http://g/x"}"#
            ),
            "{text}"
        );
    }
}
