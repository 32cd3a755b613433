//! `type: kafka`: consumes topics as a member of a consumer group, at least
//! once end to end. This file owns the settings and how one Kafka message
//! becomes a record (or a dead letter); `consumer.rs` owns the rdkafka
//! client, rebalances and commits; `offsets.rs` decides what may be
//! committed. Offsets are committed only up to the last message every
//! derived record of which was delivered (see the README's "Kafka" section).

mod checkpoint;
mod consumer;
mod lag;
pub mod offsets;

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use super::{Input, InputContext, InputError};
use crate::core::bom;
use crate::core::units::HumanDuration;
use crate::kafka::{Brokers, Properties};

pub use checkpoint::CheckpointSettings;
pub use consumer::KafkaInput;

/// Settings of the `kafka` input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaInputConfig {
    /// Bootstrap brokers: `host:port`, a comma-separated string or a list.
    pub brokers: Brokers,
    /// The consumer group. Processes sharing it share the partitions.
    pub group_id: String,
    /// Topics to subscribe to: a name, a list, or regexes starting with `^`
    /// (librdkafka's pattern subscription, e.g. `^logs-.*`).
    pub topics: Topics,
    /// Where a group with no committed offset starts: `earliest` (default,
    /// nothing is skipped) or `latest`.
    #[serde(default)]
    pub start_at: StartPosition,
    /// `json` (default): each message is one JSON object, kept as is;
    /// `text`: each message is text, wrapped as `{"<message_key>": "..."}`.
    #[serde(default)]
    pub format: KafkaFormat,
    /// With `format: text`, the field that holds the text. Default `message`.
    #[serde(default = "default_message_key")]
    pub message_key: String,
    /// When set, add `{topic, partition, offset, key, timestamp}` under this
    /// field (e.g. `_kafka`). Off by default: the body stays untouched.
    #[serde(default)]
    pub metadata_field: Option<String>,
    /// How often acknowledged offsets are committed. Default 1s.
    #[serde(default = "default_commit_interval")]
    pub commit_interval: HumanDuration,
    /// On revocation and shutdown, how long to wait for in-flight records
    /// to be acknowledged before committing what is contiguous and
    /// abandoning the rest (it is replayed by the next owner). Default 5s.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: HumanDuration,
    /// Client properties passed to librdkafka as is, e.g. security:
    /// `security.protocol: SASL_SSL`, `sasl.mechanism: SCRAM-SHA-512`,
    /// `sasl.username`, `sasl.password`, `ssl.ca.location`. Weir owns
    /// `bootstrap.servers`, `group.id`, `enable.auto.commit` and
    /// `enable.auto.offset.store`; setting them here is an error.
    /// `statistics.interval.ms` defaults to 10000: the consumer lag metric
    /// is read from those statistics (0 turns it off).
    #[serde(default)]
    pub librdkafka: Properties,
    /// Keep the state of the pipeline's stateful filters per partition of
    /// this input and checkpoint it to a compacted Kafka topic, so it
    /// follows its partition through rebalances, crashes and scaling (the
    /// README's "Scale-out"). At most one input of a pipeline has it.
    #[serde(default)]
    pub checkpoints: Option<CheckpointSettings>,
}

/// Topic names or `^regex` patterns.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Topics {
    /// One topic or pattern.
    One(String),
    /// Several.
    List(Vec<String>),
}

impl Topics {
    /// Every name or pattern.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Topics::One(s) => vec![s.as_str()],
            Topics::List(l) => l.iter().map(String::as_str).collect(),
        }
    }
}

/// Where a new group starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartPosition {
    /// The oldest retained message.
    #[default]
    Earliest,
    /// Only messages produced from now on.
    Latest,
}

/// How a message becomes a body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KafkaFormat {
    /// One JSON object per message.
    #[default]
    Json,
    /// Text, wrapped as `{"<message_key>": "..."}`.
    Text,
}

fn default_message_key() -> String {
    "message".into()
}

/// Committing every second bounds replay after a crash to about a second
/// of data, at the cost of one small request per second per consumer.
fn default_commit_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

/// Below librdkafka's default `max.poll.interval.ms` (300s) and the usual
/// rebalance timeouts, long enough for a healthy output to flush a batch.
fn default_drain_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

/// What a Kafka message carries besides its payload.
#[derive(Debug, Clone, Copy)]
pub struct MessageMeta<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<&'a [u8]>,
    /// Its timestamp in ms since the epoch, if any.
    pub timestamp_ms: Option<i64>,
}

/// Why a message cannot become a record; the dead letter's reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    /// `format: json` and the payload is not a JSON object.
    #[error("topic {topic} partition {partition} offset {offset}: not a JSON object: {detail}")]
    NotAnObject {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// What is wrong.
        detail: String,
    },
    /// `format: text` and the payload is not UTF-8.
    #[error("topic {topic} partition {partition} offset {offset}: message is not UTF-8 text")]
    NotText {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
}

impl KafkaInputConfig {
    /// The body of the record for a message: the payload untouched (only a
    /// leading byte order mark and surrounding whitespace dropped) for
    /// `json`, wrapped for `text`, plus the metadata field when configured.
    pub fn decode_message(&self, payload: Option<&[u8]>, meta: &MessageMeta<'_>) -> Result<Bytes, MessageError> {
        let payload = bom::strip(payload.unwrap_or_default());
        let body: Vec<u8> = match self.format {
            KafkaFormat::Json => {
                let trimmed = payload.trim_ascii();
                let fail = |detail: String| MessageError::NotAnObject {
                    topic: meta.topic.to_string(),
                    partition: meta.partition,
                    offset: meta.offset,
                    detail,
                };
                if trimmed.first() != Some(&b'{') {
                    return Err(fail(if trimmed.is_empty() { "empty message".into() } else { "not an object".into() }));
                }
                serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).map_err(|e| fail(e.to_string()))?;
                if self.metadata_field.is_none() {
                    return Ok(Bytes::copy_from_slice(trimmed));
                }
                trimmed.to_vec()
            }
            KafkaFormat::Text => {
                let text = std::str::from_utf8(payload).map_err(|_| MessageError::NotText {
                    topic: meta.topic.to_string(),
                    partition: meta.partition,
                    offset: meta.offset,
                })?;
                let text = text.trim_end_matches(['\n', '\r']);
                serde_json::to_vec(&serde_json::json!({ &self.message_key: text }))
                    .expect("a string map always serialises")
            }
        };
        if let Some(field) = &self.metadata_field {
            let key = meta.key.map(String::from_utf8_lossy);
            let metadata = serde_json::json!({
                "topic": meta.topic,
                "partition": meta.partition,
                "offset": meta.offset,
                "key": key,
                "timestamp": meta.timestamp_ms,
            });
            return Ok(crate::core::json::with_field(&body, field, &metadata).into());
        }
        Ok(body.into())
    }
}

#[async_trait::async_trait]
impl Input for KafkaInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        self.consume(ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<KafkaInputConfig, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    fn meta() -> MessageMeta<'static> {
        MessageMeta { topic: "raw", partition: 3, offset: 17, key: Some(b"k1"), timestamp_ms: Some(1_700_000_000_000) }
    }

    #[test]
    fn parses_a_full_config() {
        let c = parse(
            "brokers: [a:9092, b:9092]\ngroup_id: g\ntopics: '^logs-.*'\nstart_at: latest\nformat: text\n\
             metadata_field: _kafka\ncommit_interval: 250ms\n\
             librdkafka: { security.protocol: SASL_SSL, fetch.max.bytes: 1048576, check.crcs: true }\n",
        )
        .unwrap();
        assert_eq!(c.brokers.joined(), "a:9092,b:9092");
        assert_eq!(c.topics.names(), ["^logs-.*"]);
        assert_eq!(c.start_at, StartPosition::Latest);
        assert_eq!(c.format, KafkaFormat::Text);
        assert_eq!(c.commit_interval.0, Duration::from_millis(250));
        assert_eq!(c.librdkafka.0["fetch.max.bytes"], "1048576");
        assert_eq!(c.librdkafka.0["check.crcs"], "true");
        assert_eq!(c.librdkafka.0["security.protocol"], "SASL_SSL");
    }

    #[test]
    fn defaults_are_safe() {
        let c = parse("brokers: a:9092\ngroup_id: g\ntopics: [raw, other]\n").unwrap();
        assert_eq!(c.start_at, StartPosition::Earliest);
        assert_eq!(c.format, KafkaFormat::Json);
        assert_eq!(c.commit_interval.0, Duration::from_secs(1));
        assert!(c.metadata_field.is_none());
        assert_eq!(c.topics.names(), ["raw", "other"]);
    }

    #[test]
    fn refuses_to_let_auto_commit_be_turned_on() {
        let e = parse("brokers: a\ngroup_id: g\ntopics: t\nlibrdkafka: { enable.auto.commit: true }\n").unwrap_err();
        assert!(e.contains("`enable.auto.commit` is set by weir"), "{e}");
        let e = parse("brokers: a\ngroup_id: g\ntopics: t\ngroupid: x\n").unwrap_err();
        assert!(e.contains("unknown field `groupid`"), "{e}");
    }

    #[test]
    fn json_bodies_are_kept_as_is() {
        let c = parse("brokers: a\ngroup_id: g\ntopics: t\n").unwrap();
        let body = c.decode_message(Some(b"{\"a\": 1}\n"), &meta()).unwrap();
        assert_eq!(&body[..], b"{\"a\": 1}");
    }

    #[test]
    fn malformed_messages_name_their_position() {
        let c = parse("brokers: a\ngroup_id: g\ntopics: t\n").unwrap();
        for payload in [&b"[1,2]"[..], b"{oops", b"", b"\"s\""] {
            let e = c.decode_message(Some(payload), &meta()).unwrap_err().to_string();
            assert!(e.starts_with("topic raw partition 3 offset 17: not a JSON object"), "{e}");
        }
        assert!(c.decode_message(None, &meta()).is_err(), "a tombstone is not an object");
    }

    #[test]
    fn text_is_wrapped_and_metadata_spliced() {
        let c = parse("brokers: a\ngroup_id: g\ntopics: t\nformat: text\nmetadata_field: _kafka\n").unwrap();
        let body = c.decode_message(Some(b"hello \"world\"\n"), &meta()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["message"], "hello \"world\"");
        assert_eq!(v["_kafka"]["topic"], "raw");
        assert_eq!(v["_kafka"]["partition"], 3);
        assert_eq!(v["_kafka"]["offset"], 17);
        assert_eq!(v["_kafka"]["key"], "k1");
        assert_eq!(v["_kafka"]["timestamp"], 1_700_000_000_000i64);
        assert!(c.decode_message(Some(&[0xff, 0xfe]), &meta()).unwrap_err().to_string().contains("not UTF-8"));
    }

    #[test]
    fn a_leading_byte_order_mark_is_dropped_in_both_formats() {
        let json = parse("brokers: a\ngroup_id: g\ntopics: t\n").unwrap();
        assert_eq!(&json.decode_message(Some(b"\xef\xbb\xbf{\"a\":1}"), &meta()).unwrap()[..], b"{\"a\":1}");
        let text = parse("brokers: a\ngroup_id: g\ntopics: t\nformat: text\n").unwrap();
        let body = text.decode_message(Some(b"\xef\xbb\xbfhello"), &meta()).unwrap();
        assert_eq!(&body[..], b"{\"message\":\"hello\"}");
    }

    #[test]
    fn metadata_is_spliced_into_empty_and_full_objects() {
        let c = parse("brokers: a\ngroup_id: g\ntopics: t\nmetadata_field: m\n").unwrap();
        let m = MessageMeta { key: None, timestamp_ms: None, ..meta() };
        let v: serde_json::Value = serde_json::from_slice(&c.decode_message(Some(b"{ }"), &m).unwrap()).unwrap();
        assert_eq!(v["m"]["key"], serde_json::Value::Null);
        let v: serde_json::Value =
            serde_json::from_slice(&c.decode_message(Some(b"{\"a\":{\"b\":1}}"), &m).unwrap()).unwrap();
        assert_eq!(v["a"]["b"], 1);
        assert_eq!(v["m"]["offset"], 17);
    }
}
