//! Kafka client settings shared by the `kafka` input and the `kafka`
//! output: bootstrap brokers, pass-through librdkafka properties, and how
//! librdkafka's own log lines reach Weir's log. One home, so the two
//! components read and log alike (Vector keeps the same in `src/kafka.rs`).

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::config::RDKafkaLogLevel;
use serde::Deserialize;

/// Bootstrap brokers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Brokers {
    /// `"a:9092,b:9092"`
    One(String),
    /// `[a:9092, b:9092]`
    List(Vec<String>),
}

impl Brokers {
    /// As librdkafka's `bootstrap.servers`.
    pub fn joined(&self) -> String {
        match self {
            Brokers::One(s) => s.clone(),
            Brokers::List(l) => l.join(","),
        }
    }
}

/// librdkafka properties, with values written as YAML scalars.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "BTreeMap<String, PropertyValue>")]
pub struct Properties(pub BTreeMap<String, String>);

/// A property value: any YAML scalar, passed on as text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PropertyValue {
    /// `true`/`false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
}

/// Properties Weir sets itself; at-least-once depends on the last two.
const OWNED_PROPERTIES: &[&str] = &["bootstrap.servers", "group.id", "enable.auto.commit", "enable.auto.offset.store"];

impl TryFrom<BTreeMap<String, PropertyValue>> for Properties {
    type Error = String;
    fn try_from(map: BTreeMap<String, PropertyValue>) -> Result<Self, String> {
        let mut out = BTreeMap::new();
        for (key, value) in map {
            if OWNED_PROPERTIES.contains(&key.as_str()) {
                return Err(format!(
                    "librdkafka property `{key}` is set by weir (use `brokers`/`group_id`; offsets are committed only after delivery)"
                ));
            }
            let text = match value {
                PropertyValue::Bool(b) => b.to_string(),
                PropertyValue::Int(i) => i.to_string(),
                PropertyValue::Float(f) => f.to_string(),
                PropertyValue::Text(s) => s,
            };
            if text.is_empty() && is_secret_property(&key) {
                return Err(format!("librdkafka property `{key}` is empty; a credential must not be empty"));
            }
            out.insert(key, text);
        }
        Ok(Properties(out))
    }
}

/// Words that mark a property as a credential (`sasl.password`,
/// `ssl.key.password`, `sasl.oauthbearer.client.secret`, ...): their values
/// never appear in `Debug` output, so no log line of a config leaks them.
const SECRET_PROPERTY_WORDS: &[&str] = &["password", "secret", "token", "credential"];

/// Whether property `key` holds a credential (see [`SECRET_PROPERTY_WORDS`]).
fn is_secret_property(key: &str) -> bool {
    SECRET_PROPERTY_WORDS.iter().any(|w| key.contains(w))
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(key, value)| (key, if is_secret_property(key) { "<redacted>" } else { value.as_str() })),
            )
            .finish()
    }
}

/// Forward one librdkafka log line to tracing, attributed to `client` (an
/// input's or output's name). Notices are worth an operator's eye; info and
/// debug lines appear only when librdkafka's own `debug` property asks.
pub fn log(client: &str, level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(client, facility, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(client, facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice => tracing::info!(client, facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug => tracing::debug!(client, facility, "librdkafka: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_in_debug_output() {
        let props: Properties = serde_norway::from_str(
            "{ sasl.username: weir, sasl.password: hunter2, ssl.key.password: k3y, sasl.oauthbearer.client.secret: s }",
        )
        .unwrap();
        let text = format!("{props:?}");
        assert!(text.contains("weir"), "{text}");
        for secret in ["hunter2", "k3y", "\"s\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }

    #[test]
    fn an_empty_credential_property_is_refused() {
        let error = serde_norway::from_str::<Properties>("{ sasl.password: '' }").unwrap_err().to_string();
        assert!(error.contains("`sasl.password` is empty; a credential must not be empty"), "{error}");
        assert!(serde_norway::from_str::<Properties>("{ client.id: '' }").is_ok(), "other properties may be empty");
    }
}
