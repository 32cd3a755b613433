//! Reading one input metric record, as `extract` emits it:
//! `{"metric": "<name>", "value": <number>, "labels": {"k": "v", ...}}`, and
//! the series key it belongs to. It owns the rejection reasons for malformed
//! records; range and lateness checks are `engine`'s.

use std::collections::BTreeMap;

use weir_plugin_sdk::{self as sdk, RawValue, json};

/// One series: a metric name and a label set. Ordered, so windows are emitted
/// in the same order by every instance (a restored one included).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct SeriesKey {
    /// Metric name.
    pub metric: String,
    /// Labels, sorted by name.
    pub labels: BTreeMap<String, String>,
}

impl std::fmt::Display for SeriesKey {
    /// Prometheus style, for messages: `latency_ms{op="pay",os="ios"}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.metric)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}={v:?}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// A metric record's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The series it belongs to.
    pub key: SeriesKey,
    /// The observed value.
    pub value: f64,
}

/// Read a metric record body; the error is a rejection reason naming the
/// field at fault.
pub fn parse(body: &[u8]) -> Result<Metric, String> {
    let fields = sdk::fields(body).map_err(|e| e.to_string())?;
    let metric = match fields.get("metric") {
        None => return Err("field \"metric\" is missing".to_string()),
        Some(raw) => match sdk::as_str(raw) {
            Some(name) if !name.is_empty() => name.into_owned(),
            Some(_) => return Err("field \"metric\" is empty".to_string()),
            None => {
                return Err(format!("field \"metric\" is not a string (got {})", json::quote(raw.get())));
            }
        },
    };
    let value = match fields.get("value") {
        None => return Err(format!("field \"value\" of metric {metric:?} is missing")),
        Some(raw) => match sdk::as_f64(raw) {
            Some(v) if v.is_finite() => v,
            _ => {
                return Err(format!(
                    "field \"value\" of metric {metric:?} is not a number (got {})",
                    json::quote(raw.get())
                ));
            }
        },
    };
    let labels = match fields.get("labels") {
        None => BTreeMap::new(),
        Some(raw) if raw.get() == "null" => BTreeMap::new(),
        Some(raw) => labels(raw, &metric)?,
    };
    Ok(Metric { key: SeriesKey { metric, labels }, value })
}

fn labels(raw: &RawValue, metric: &str) -> Result<BTreeMap<String, String>, String> {
    // The SDK's borrowed field list, not a HashMap: a handful of labels are
    // found faster by comparing than by hashing each name (BENCHMARKS.md).
    let object = sdk::fields(raw.get().as_bytes()).map_err(|_| {
        format!("field \"labels\" of metric {metric:?} is not an object (got {})", json::quote(raw.get()))
    })?;
    let mut out = BTreeMap::new();
    for (name, value) in object.iter() {
        let Some(text) = sdk::as_str(value) else {
            return Err(format!(
                "field \"labels.{name}\" of metric {metric:?} is not a string (got {})",
                json::quote(value.get())
            ));
        };
        out.insert(name.to_string(), text.into_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_value_and_sorted_labels() {
        let m = parse(br#"{"metric":"latency_ms","value":12.5,"labels":{"os":"ios","op":"pay"}}"#).unwrap();
        assert_eq!(m.value, 12.5);
        assert_eq!(m.key.to_string(), r#"latency_ms{op="pay",os="ios"}"#);
    }

    #[test]
    fn labels_are_optional() {
        let m = parse(br#"{"metric":"m","value":3}"#).unwrap();
        assert!(m.key.labels.is_empty());
        assert_eq!(m.key.to_string(), "m");
        assert!(parse(br#"{"metric":"m","value":3,"labels":null}"#).is_ok());
    }

    #[test]
    fn reasons_say_what_is_wrong_and_where() {
        let cases: [(&[u8], &str); 8] = [
            (b"nope", "body is not a JSON object"),
            (br#"{"value":1}"#, "field \"metric\" is missing"),
            (br#"{"metric":7,"value":1}"#, "field \"metric\" is not a string (got 7)"),
            (br#"{"metric":"","value":1}"#, "field \"metric\" is empty"),
            (br#"{"metric":"m"}"#, "field \"value\" of metric \"m\" is missing"),
            (br#"{"metric":"m","value":"12ms"}"#, "field \"value\" of metric \"m\" is not a number (got \"12ms\")"),
            (
                br#"{"metric":"m","value":1,"labels":[1]}"#,
                "field \"labels\" of metric \"m\" is not an object (got [1])",
            ),
            (
                br#"{"metric":"m","value":1,"labels":{"os":3}}"#,
                "field \"labels.os\" of metric \"m\" is not a string (got 3)",
            ),
        ];
        for (body, reason) in cases {
            let got = parse(body).unwrap_err();
            assert!(got.starts_with(reason), "{got:?} should start with {reason:?}");
        }
    }
}
