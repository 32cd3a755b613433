//! The rdkafka glue of the `kafka` output: a `FutureProducer`, one delivery
//! future per record, and the classification of failed deliveries (pure,
//! tested below). A batch's write returns only when every delivery report
//! is in, so a record is acknowledged upstream only once Kafka has it.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use serde_json::Value;

use super::{Acks, KafkaOutputConfig};
use crate::core::record::Record;
use crate::outputs::{Output, OutputError, OutputErrorKind, WriteReport};

/// How long to wait before offering a message again when librdkafka's local
/// queue is full: a few linger periods, so deliveries free room meanwhile.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(5);
/// The final flush at shutdown waits at most this long.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Kafka's limit on topic name length.
const MAX_TOPIC_LEN: usize = 249;

/// Sends records to Kafka.
pub struct KafkaOutput {
    name: Arc<str>,
    config: KafkaOutputConfig,
    producer: FutureProducer<OutputClientContext>,
}

/// Routes librdkafka's log lines and errors to tracing.
struct OutputClientContext {
    output: Arc<str>,
}

impl ClientContext for OutputClientContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::kafka::log(&self.output, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(output = %self.output, %error, reason, "kafka client error");
    }
}

/// What to do with a record whose delivery failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Transient (broker down, leader moving, timed out): try again.
    Retry,
    /// The cluster will never take it as is: dead-letter it.
    Reject,
}

/// Classify a failed delivery. Errors that resending the same message to
/// the same topic cannot fix are permanent; everything else is retried.
pub fn classify(error: &KafkaError) -> Failure {
    let code = match error {
        KafkaError::MessageProduction(code) => *code,
        _ => return Failure::Retry,
    };
    match code {
        RDKafkaErrorCode::MessageSizeTooLarge
        | RDKafkaErrorCode::InvalidMessageSize
        | RDKafkaErrorCode::InvalidMessage
        | RDKafkaErrorCode::BadMessage
        | RDKafkaErrorCode::InvalidRecord
        | RDKafkaErrorCode::InvalidTopic
        | RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::InvalidTimestamp
        | RDKafkaErrorCode::PolicyViolation
        | RDKafkaErrorCode::UnsupportedForMessageFormat => Failure::Reject,
        _ => Failure::Retry,
    }
}

/// Kafka accepts topic names of 1 to 249 characters from `[a-zA-Z0-9._-]`,
/// other than `.` and `..`.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= MAX_TOPIC_LEN
        && topic != "."
        && topic != ".."
        && topic.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl KafkaOutput {
    /// Create the producer (it connects lazily).
    pub fn new(name: &str, config: KafkaOutputConfig) -> Result<Self, OutputError> {
        let mut client = ClientConfig::new();
        for (key, value) in &config.librdkafka.0 {
            client.set(key, value);
        }
        let (acks, idempotent) = match config.acks {
            Acks::All => ("all", "true"),
            Acks::Leader => ("1", "false"),
            Acks::None => ("0", "false"),
        };
        client
            .set("bootstrap.servers", config.brokers.joined())
            .set("acks", acks)
            .set("enable.idempotence", idempotent)
            .set("compression.type", config.compression.as_str())
            .set("message.timeout.ms", config.delivery_timeout.0.as_millis().to_string());
        client.set_log_level(RDKafkaLogLevel::Warning);
        let context = OutputClientContext { output: name.into() };
        let producer = client.create_with_context(context).map_err(|source| {
            OutputError::new(
                name,
                OutputErrorKind::Kafka {
                    what: format!("creating a producer for brokers {}", config.brokers.joined()),
                    source: Box::new(source),
                },
            )
        })?;
        Ok(KafkaOutput { name: name.into(), config, producer })
    }

    /// Topic and key of one record, or why it cannot be sent.
    fn route(&self, record: &Record) -> Result<(String, Option<String>), String> {
        let c = &self.config;
        let needs_body = c.topic.uses_fields() || c.key.as_ref().is_some_and(|k| k.uses_fields());
        let body: Option<Value> = if needs_body { serde_json::from_slice(&record.body).ok() } else { None };
        let topic =
            c.topic.render(record.time, body.as_ref()).map_err(|e| format!("output {}: topic {e}", self.name))?;
        if !valid_topic(&topic) {
            return Err(format!(
                "output {}: topic {:?} (from template {:?}) is not a valid kafka topic name",
                self.name,
                topic,
                c.topic.source()
            ));
        }
        let key = match &c.key {
            Some(k) => {
                Some(k.render(record.time, body.as_ref()).map_err(|e| format!("output {}: key {e}", self.name))?)
            }
            None => None,
        };
        Ok((topic, key))
    }
}

#[async_trait::async_trait]
impl Output for KafkaOutput {
    async fn write(&mut self, batch: &[Record]) -> Result<WriteReport, OutputError> {
        let mut report = WriteReport::default();
        let mut pending: Vec<(usize, String, DeliveryFuture)> = Vec::with_capacity(batch.len());
        for (i, record) in batch.iter().enumerate() {
            let (topic, key) = match self.route(record) {
                Ok(route) => route,
                Err(reason) => {
                    report.rejected.push((i, reason));
                    continue;
                }
            };
            let mut message =
                FutureRecord::to(&topic).payload(&record.body[..]).timestamp(record.time.div_euclid(1_000_000));
            if let Some(key) = &key {
                message = message.key(key.as_bytes());
            }
            loop {
                match self.producer.send_result(message) {
                    Ok(delivery) => {
                        pending.push((i, topic.clone(), delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        message = back;
                        tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                    }
                    Err((error, _)) => {
                        match classify(&error) {
                            Failure::Retry => report.retry.push(i),
                            Failure::Reject => {
                                report.rejected.push((i, format!("output {}: topic {topic}: {error}", self.name)));
                            }
                        }
                        break;
                    }
                }
            }
        }
        for (i, topic, delivery) in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => match classify(&error) {
                    Failure::Retry => {
                        tracing::debug!(output = %self.name, topic, %error, "delivery failed; retrying");
                        report.retry.push(i);
                    }
                    Failure::Reject => {
                        report.rejected.push((i, format!("output {}: topic {topic}: {error}", self.name)))
                    }
                },
                // The producer dropped the report (shutting down): unknown, so retry.
                Err(_) => report.retry.push(i),
            }
        }
        report.retry.sort_unstable();
        Ok(report)
    }

    async fn flush(&mut self) -> Result<(), OutputError> {
        let producer = self.producer.clone();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(FLUSH_TIMEOUT)).await;
        match flushed {
            Ok(Ok(())) | Err(_) => Ok(()),
            Ok(Err(source)) => Err(OutputError::new(
                &*self.name,
                OutputErrorKind::Kafka { what: "flushing".into(), source: Box::new(source) },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_errors_are_rejected_and_the_rest_retried() {
        let production = |code| KafkaError::MessageProduction(code);
        assert_eq!(classify(&production(RDKafkaErrorCode::MessageSizeTooLarge)), Failure::Reject);
        assert_eq!(classify(&production(RDKafkaErrorCode::TopicAuthorizationFailed)), Failure::Reject);
        assert_eq!(classify(&production(RDKafkaErrorCode::InvalidTopic)), Failure::Reject);
        assert_eq!(classify(&production(RDKafkaErrorCode::MessageTimedOut)), Failure::Retry);
        assert_eq!(classify(&production(RDKafkaErrorCode::NotLeaderForPartition)), Failure::Retry);
        assert_eq!(classify(&production(RDKafkaErrorCode::QueueFull)), Failure::Retry);
        assert_eq!(classify(&KafkaError::Canceled), Failure::Retry);
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(valid_topic("metrics.window_v1-a"));
        for bad in ["", ".", "..", "a b", "a/b", "é", &"x".repeat(250)] {
            assert!(!valid_topic(bad), "{bad:?}");
        }
    }
}
