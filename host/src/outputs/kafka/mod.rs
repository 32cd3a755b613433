//! `type: kafka`: produces each record's body as one message, with the
//! topic and key rendered from the record body ([`Template`]) and the record's
//! event time as the message timestamp. The producer is idempotent with
//! `acks=all` by default, and a record counts as delivered only on its
//! delivery report (`producer.rs`); retriable failures go back to the
//! pipeline's retry loop, permanent ones (too large, invalid topic, not
//! authorised) are dead-lettered with the broker's reason.

mod producer;

use std::time::Duration;

use serde::Deserialize;

use crate::core::template::Template;
use crate::core::units::HumanDuration;
use crate::kafka::{Brokers, Properties};

pub use producer::KafkaOutput;

/// Settings of the `kafka` output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaOutputConfig {
    /// Bootstrap brokers: `host:port`, a comma-separated string or a list.
    pub brokers: Brokers,
    /// The topic, a template: `logs`, `logs-{app}`, `metrics-{labels.op}`.
    pub topic: Template,
    /// The message key, a template; none by default (partitions are then
    /// chosen by librdkafka's partitioner). For metric records use
    /// `{metric}|{labels}` so every sample of a series lands in one
    /// partition, and so in one aggregator.
    #[serde(default)]
    pub key: Option<Template>,
    /// `none` (default), `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default)]
    pub compression: Compression,
    /// `all` (default; with the idempotent producer: no loss or duplicates
    /// from producer retries), `leader` (acks=1) or `none` (acks=0). Only
    /// `all` keeps idempotence on.
    #[serde(default)]
    pub acks: Acks,
    /// How long librdkafka may keep retrying a message before reporting it
    /// failed (`message.timeout.ms`); the pipeline then retries it. Default 30s.
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout: HumanDuration,
    /// Client properties passed to librdkafka as is (security, batching:
    /// `linger.ms`, `batch.size`, ...). `bootstrap.servers` is `brokers`.
    #[serde(default)]
    pub librdkafka: Properties,
}

/// Message compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// As librdkafka's `compression.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Which acknowledgement the producer waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Acks {
    /// Every in-sync replica.
    #[default]
    All,
    /// The partition leader only.
    Leader,
    /// None: fire and forget.
    None,
}

/// Long enough to ride out a leader election, short enough that a dead
/// cluster shows up in the pipeline's retries and metrics within a minute.
fn default_delivery_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_safe_defaults() {
        let c: KafkaOutputConfig =
            serde_norway::from_str("brokers: a:9092\ntopic: metrics\nkey: '{metric}|{labels}'\n").unwrap();
        assert_eq!(c.acks, Acks::All);
        assert_eq!(c.compression, Compression::None);
        assert_eq!(c.delivery_timeout.0, Duration::from_secs(30));
        assert!(!c.topic.uses_fields());
        assert_eq!(c.key.unwrap().source(), "{metric}|{labels}");
    }

    #[test]
    fn rejects_bad_templates_and_unknown_fields_at_load() {
        let e = serde_norway::from_str::<KafkaOutputConfig>("brokers: a\ntopic: 'm-{x'\n").unwrap_err().to_string();
        assert!(e.contains("is not closed"), "{e}");
        let e = serde_norway::from_str::<KafkaOutputConfig>("brokers: a\ntopic: t\ncompresion: lz4\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `compresion`"), "{e}");
        let c: KafkaOutputConfig =
            serde_norway::from_str("brokers: [a, b]\ntopic: t\ncompression: zstd\nacks: leader\n").unwrap();
        assert_eq!(c.compression.as_str(), "zstd");
        assert_eq!(c.brokers.joined(), "a,b");
    }
}
