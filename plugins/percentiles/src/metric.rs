//! Reading one input metric record, as `extract` emits it:
//! `{"metric": "<name>", "value": <number>, "labels": {"k": "v", ...}}`, and
//! the series key it belongs to. It owns the rejection reasons for malformed
//! records; range and lateness checks are `engine`'s.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

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

/// Series keys read in one batch, by the raw JSON text of each record's
/// `metric` and `labels` fields. Records of one series repeat the same text
/// (`extract` writes a rule's labels in one order), so a batch decodes and
/// allocates each series' key once instead of once per record: 12% of the
/// plugin's time on the chain benchmark (BENCHMARKS.md). Texts that differ
/// only in spacing or label order are cached apart, as equal keys.
#[derive(Debug, Default)]
pub struct Keys<'a> {
    by_text: HashMap<(&'a str, &'a str), SeriesKey>,
}

impl<'a> Keys<'a> {
    /// Read a metric record body: its series key and its value. The error is
    /// a rejection reason naming the field at fault.
    pub fn read(&mut self, body: &'a [u8]) -> Result<(&SeriesKey, f64), String> {
        let fields = sdk::fields(body).map_err(|e| e.to_string())?;
        let (metric, labels) = (fields.get("metric"), fields.get("labels"));
        let text = (metric.map_or("", |raw| raw.get()), labels.map_or("", |raw| raw.get()));
        let key = match self.by_text.entry(text) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => new.insert(series_key(metric, labels)?),
        };
        let value = match fields.get("value") {
            None => return Err(format!("field \"value\" of metric {:?} is missing", key.metric)),
            Some(raw) => match sdk::as_f64(raw) {
                Some(v) if v.is_finite() => v,
                _ => {
                    return Err(format!(
                        "field \"value\" of metric {:?} is not a number (got {})",
                        key.metric,
                        json::quote(raw.get())
                    ));
                }
            },
        };
        Ok((key, value))
    }
}

/// The series key of a record's `metric` and `labels` fields.
fn series_key(metric: Option<&RawValue>, labels: Option<&RawValue>) -> Result<SeriesKey, String> {
    let metric = match metric {
        None => return Err("field \"metric\" is missing".to_string()),
        Some(raw) => match sdk::as_str(raw) {
            Some(name) if !name.is_empty() => name.into_owned(),
            Some(_) => return Err("field \"metric\" is empty".to_string()),
            None => {
                return Err(format!("field \"metric\" is not a string (got {})", json::quote(raw.get())));
            }
        },
    };
    let labels = match labels {
        None => BTreeMap::new(),
        Some(raw) if raw.get() == "null" => BTreeMap::new(),
        Some(raw) => self::labels(raw, &metric)?,
    };
    Ok(SeriesKey { metric, labels })
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

    fn parse(body: &[u8]) -> Result<(SeriesKey, f64), String> {
        Keys::default().read(body).map(|(key, value)| (key.clone(), value))
    }

    #[test]
    fn reads_name_value_and_sorted_labels() {
        let (key, value) = parse(br#"{"metric":"latency_ms","value":12.5,"labels":{"os":"ios","op":"pay"}}"#).unwrap();
        assert_eq!(value, 12.5);
        assert_eq!(key.to_string(), r#"latency_ms{op="pay",os="ios"}"#);
    }

    #[test]
    fn labels_are_optional() {
        let (key, _) = parse(br#"{"metric":"m","value":3}"#).unwrap();
        assert!(key.labels.is_empty());
        assert_eq!(key.to_string(), "m");
        assert!(parse(br#"{"metric":"m","value":3,"labels":null}"#).is_ok());
    }

    #[test]
    fn a_batch_reads_each_series_once_and_every_value() {
        let bodies: [&[u8]; 4] = [
            br#"{"metric":"m","value":1,"labels":{"os":"ios"}}"#,
            br#"{"value":2,"metric":"m","labels":{"os":"ios"}}"#,
            br#"{"metric":"m","value":3,"labels":{"os":"android"}}"#,
            br#"{"metric":"m","labels":{"os":"ios"},"value":"x"}"#,
        ];
        let mut keys = Keys::default();
        let read: Vec<_> = bodies.iter().map(|body| keys.read(body).map(|(k, v)| (k.to_string(), v))).collect();
        assert_eq!(read[0], Ok((r#"m{os="ios"}"#.to_string(), 1.0)));
        assert_eq!(read[1], Ok((r#"m{os="ios"}"#.to_string(), 2.0)), "a cached key still reads its own value");
        assert_eq!(read[2], Ok((r#"m{os="android"}"#.to_string(), 3.0)));
        assert_eq!(read[3], Err(r#"field "value" of metric "m" is not a number (got "x")"#.to_string()));
        assert_eq!(keys.by_text.len(), 2, "one entry per series text");
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
