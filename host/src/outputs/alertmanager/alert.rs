//! Alert records, pure: parsing and validating a record body
//! (`threshold`'s shape) to Alertmanager 0.25's rules, the static labels
//! and `generator_url` the output adds, and a label set's fingerprint for
//! logs. Each error is a dead-letter reason naming the offending field.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::core::clock::rfc3339_utc as rfc3339;
use crate::core::template::Template;

/// An alert's labels, sorted by name: the canonical identity of an alert.
pub type LabelSet = BTreeMap<String, String>;

/// The rule label and annotation names must follow in Alertmanager 0.25.
pub const LABEL_NAME_RULE: &str = "[a-zA-Z_][a-zA-Z0-9_]*";

/// Whether `name` is a valid Alertmanager label (or annotation) name.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why an alert record cannot be sent. Its Display is the dead-letter
/// reason, so it names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAlert {
    /// The body is not a JSON object.
    #[error("alert record is not a JSON object: {0}")]
    NotObject(String),
    /// `labels` is missing or not an object.
    #[error("alert record has no `labels` object")]
    NoLabels,
    /// `labels.alertname` is missing or empty.
    #[error("alert record has no `labels.alertname`; alertmanager needs one to route and show it")]
    NoAlertname,
    /// A label or annotation name breaks [`LABEL_NAME_RULE`].
    #[error("{field}: invalid {what} name {name:?}: must match {LABEL_NAME_RULE}", what = if *field == "labels" { "label" } else { "annotation" })]
    Name {
        /// `labels` or `annotations`.
        field: &'static str,
        /// The name.
        name: String,
    },
    /// A label or annotation value is not a string.
    #[error("{field}.{name}: expected a string value, got {found}")]
    NotString {
        /// `labels` or `annotations`.
        field: &'static str,
        /// The name.
        name: String,
        /// The JSON found.
        found: String,
    },
    /// `annotations` is not an object.
    #[error("annotations: expected an object, got {0}")]
    Annotations(String),
    /// A time field is not an RFC 3339 string.
    #[error("{field}: expected an RFC 3339 time, got {found}")]
    Time {
        /// `startsAt` or `endsAt`.
        field: &'static str,
        /// The JSON found.
        found: String,
    },
    /// `generatorURL` is not a string.
    #[error("generatorURL: expected a string, got {0}")]
    GeneratorUrl(String),
    /// `endsAt` is before `startsAt`, which Alertmanager refuses.
    #[error("endsAt {ends} is before startsAt {starts}")]
    EndsBeforeStarts {
        /// `startsAt`.
        starts: String,
        /// `endsAt`.
        ends: String,
    },
}

/// One postable alert, as `POST /api/v2/alerts` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// Identity: label name -> value.
    pub labels: LabelSet,
    /// Descriptive text; not part of the identity.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// When it started; Alertmanager uses its receive time when absent.
    #[serde(rename = "startsAt", serialize_with = "ser_time", skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ends (resolved) or, on a firing alert, when it expires.
    #[serde(rename = "endsAt", serialize_with = "ser_time", skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Link back to what produced it.
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

fn ser_time<S: serde::Serializer>(time: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// What the output adds to every alert: static labels (the record's own
/// win on conflict, as with Prometheus' external labels) and a generator
/// URL for records that carry none.
#[derive(Debug, Clone, Default)]
pub struct AlertDefaults {
    /// Labels added when the record lacks them.
    pub labels: LabelSet,
    /// `generatorURL` when the record has none.
    pub generator_url: Option<GeneratorUrl>,
}

/// Parse and validate an alert record body (`threshold`'s shape).
pub fn parse_alert(body: &[u8], defaults: &AlertDefaults) -> Result<Alert, InvalidAlert> {
    let value: Value = serde_json::from_slice(body).map_err(|e| InvalidAlert::NotObject(e.to_string()))?;
    let Value::Object(mut map) = value else {
        return Err(InvalidAlert::NotObject(format!("got {}", short(&value))));
    };
    let Some(Value::Object(raw_labels)) = map.remove("labels") else {
        return Err(InvalidAlert::NoLabels);
    };
    let mut labels = string_map("labels", raw_labels)?;
    // An empty value means "no such label" to Alertmanager and Prometheus.
    labels.retain(|_, v| !v.is_empty());
    for (name, value) in &defaults.labels {
        labels.entry(name.clone()).or_insert_with(|| value.clone());
    }
    if !labels.contains_key("alertname") {
        return Err(InvalidAlert::NoAlertname);
    }
    let annotations = match map.remove("annotations") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(raw)) => string_map("annotations", raw)?,
        Some(other) => return Err(InvalidAlert::Annotations(short(&other))),
    };
    let starts_at = time_field(&mut map, "startsAt")?;
    let ends_at = time_field(&mut map, "endsAt")?;
    if let (Some(starts), Some(ends)) = (starts_at, ends_at)
        && ends < starts
    {
        return Err(InvalidAlert::EndsBeforeStarts { starts: rfc3339(starts), ends: rfc3339(ends) });
    }
    let generator_url = match map.remove("generatorURL") {
        None | Some(Value::Null) => defaults.generator_url.as_ref().map(|t| t.render(&labels)),
        Some(Value::String(url)) if url.is_empty() => defaults.generator_url.as_ref().map(|t| t.render(&labels)),
        Some(Value::String(url)) => Some(url),
        Some(other) => return Err(InvalidAlert::GeneratorUrl(short(&other))),
    };
    Ok(Alert { labels, annotations, starts_at, ends_at, generator_url })
}

fn string_map(
    field: &'static str,
    raw: serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, String>, InvalidAlert> {
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        if !valid_label_name(&name) {
            return Err(InvalidAlert::Name { field, name });
        }
        match value {
            Value::String(s) => {
                out.insert(name, s);
            }
            other => {
                return Err(InvalidAlert::NotString { field, name, found: short(&other) });
            }
        }
    }
    Ok(out)
}

fn time_field(
    map: &mut serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<Option<DateTime<Utc>>, InvalidAlert> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| InvalidAlert::Time { field, found: format!("{text:?}") }),
        Some(other) => Err(InvalidAlert::Time { field, found: short(&other) }),
    }
}

/// A JSON value for an error message, cut to a readable length.
fn short(value: &Value) -> String {
    const MAX: usize = 60;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// `generator_url` of alerts that carry none: a [`Template`] whose fields
/// may only be `{labels.NAME}`, filled from the alert's labels,
/// percent-encoded, and empty when the alert lacks the label. The
/// `threshold` rule's own `generator_url` reads the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorUrl(Template);

impl GeneratorUrl {
    /// Compile `text`; the error says which placeholder is wrong.
    ///
    /// # Errors
    /// The template's parse error, or a placeholder other than `{labels.NAME}`.
    pub fn compile(text: &str) -> Result<Self, String> {
        let template = Template::parse(text)?;
        if let Some(bad) = template
            .fields()
            .find(|f| !matches!(f.keys(), [first, name] if first == "labels" && valid_label_name(name)))
        {
            return Err(format!("unknown placeholder {{{}}} in {text:?}; expected {{labels.NAME}}", bad.as_str()));
        }
        Ok(GeneratorUrl(template))
    }

    /// The URL for an alert with `labels`.
    pub fn render(&self, labels: &LabelSet) -> String {
        let body = serde_json::json!({ "labels": labels });
        self.0.render_with(0, Some(&body), Some(""), percent_encode).expect("a fallback covers every missing label")
    }
}

/// RFC 3986 unreserved characters stay, every other byte is `%XX`.
fn percent_encode(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRING: &str = r#"{"labels":{"alertname":"PaymentLatencyHigh","metric":"latency_ms","os":"ios","severity":"page"},"annotations":{"summary":"p95 is 912"},"startsAt":"2026-11-22T10:30:00Z"}"#;

    fn parse(body: &str) -> Result<Alert, InvalidAlert> {
        parse_alert(body.as_bytes(), &AlertDefaults::default())
    }

    #[test]
    fn label_rules_are_enforced_with_messages_naming_the_label() {
        let cases = [
            (
                r#"{"labels":{"alertname":"A","os-version":"17"}}"#,
                r#"labels: invalid label name "os-version": must match [a-zA-Z_][a-zA-Z0-9_]*"#,
            ),
            (
                r#"{"labels":{"alertname":"A","1st":"x"}}"#,
                r#"labels: invalid label name "1st": must match [a-zA-Z_][a-zA-Z0-9_]*"#,
            ),
            (r#"{"labels":{"alertname":"A","code":500}}"#, "labels.code: expected a string value, got 500"),
            (
                r#"{"labels":{"severity":"page"}}"#,
                "alert record has no `labels.alertname`; alertmanager needs one to route and show it",
            ),
            (
                r#"{"labels":{"alertname":""}}"#,
                "alert record has no `labels.alertname`; alertmanager needs one to route and show it",
            ),
            (r#"{"annotations":{}}"#, "alert record has no `labels` object"),
            (
                r#"{"labels":{"alertname":"A"},"annotations":{"run book":"x"}}"#,
                r#"annotations: invalid annotation name "run book": must match [a-zA-Z_][a-zA-Z0-9_]*"#,
            ),
            (
                r#"{"labels":{"alertname":"A"},"startsAt":"yesterday"}"#,
                r#"startsAt: expected an RFC 3339 time, got "yesterday""#,
            ),
            (
                r#"{"labels":{"alertname":"A"},"startsAt":"2026-11-22T10:00:00Z","endsAt":"2026-11-22T09:00:00Z"}"#,
                "endsAt 2026-11-22T09:00:00Z is before startsAt 2026-11-22T10:00:00Z",
            ),
            ("[1]", "alert record is not a JSON object: got [1]"),
        ];
        for (body, message) in cases {
            assert_eq!(parse(body).unwrap_err().to_string(), message, "{body}");
        }
        assert!(valid_label_name("_a1") && valid_label_name("alertname"));
        assert!(!valid_label_name("") && !valid_label_name("a.b") && !valid_label_name("é"));
    }

    #[test]
    fn static_labels_and_generator_url_fill_what_the_record_lacks() {
        let defaults = AlertDefaults {
            labels: [("env", "prod"), ("severity", "ticket")].map(|(k, v)| (k.to_string(), v.to_string())).into(),
            generator_url: Some(
                GeneratorUrl::compile("http://g/d?os={labels.os}&n={labels.alertname}&x={labels.none}").unwrap(),
            ),
        };
        let alert = parse_alert(FIRING.replace("ios", "ios 17/a").as_bytes(), &defaults).unwrap();
        assert_eq!(alert.labels["env"], "prod");
        assert_eq!(alert.labels["severity"], "page", "the record's own label wins");
        assert_eq!(alert.generator_url.as_deref(), Some("http://g/d?os=ios%2017%2Fa&n=PaymentLatencyHigh&x="));
        let own = FIRING.replace(r#""startsAt""#, r#""generatorURL":"http://own","startsAt""#);
        assert_eq!(parse_alert(own.as_bytes(), &defaults).unwrap().generator_url.as_deref(), Some("http://own"));
        assert_eq!(
            GeneratorUrl::compile("http://g/{x}").unwrap_err(),
            r#"unknown placeholder {x} in "http://g/{x}"; expected {labels.NAME}"#
        );
        assert!(GeneratorUrl::compile("http://g/{labels.os").is_err());
    }
}
