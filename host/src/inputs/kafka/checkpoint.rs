//! `checkpoints:` of the `kafka` input: the state of stateful filters, kept
//! per input partition (`pipeline/keyed.rs`), written to a compacted Kafka
//! topic and read back by whichever process is assigned the partition next.
//!
//! - A record of the checkpoint topic is one filter's state for one input
//!   partition. Key: `{"pipeline": <group_id>, "filter", "topic",
//!   "partition"}` (JSON, so compaction keeps the newest per key); value:
//!   the filter's `snapshot`; headers: `weir-offset`, the input offset the
//!   state covers (decimal), and `weir-seen`, the dedupe set, when on.
//! - Written every `interval`, and for the revoked partitions on every
//!   revocation (so on shutdown, which leaves the group): a barrier of the
//!   chain takes the state, then everything the partitions' filters emitted
//!   before the barrier must be delivered, then the records are produced
//!   in one Kafka transaction (all of a checkpoint's records visible, or
//!   none) with `acks=all`. A checkpoint is never written ahead of the
//!   delivery of what it has already emitted. Readers read committed.
//! - Read on assignment, before the partitions are fetched: the newest
//!   record per key, up to the end of the topic; the consumer then starts
//!   each partition at its checkpoint's offset (the offset is stored in the
//!   checkpoint and the partition seeked to it, rather than Kafka
//!   transactions: the outputs are not only Kafka, so a transaction could
//!   not cover them; what this costs after a crash is in the README).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::offsets::TopicPartition;
use crate::core::ack::Delivery;
use crate::core::checkpoints::{Checkpoint, Checkpoints, Saved};
use crate::core::metrics::catalogue::{
    CHECKPOINT_BYTES, CHECKPOINT_DURATION, CHECKPOINT_LAG, CHECKPOINT_RESTORE, CHECKPOINT_RESTORED, CHECKPOINTS,
};
use crate::core::metrics::{Counter, Gauge, Histogram, registry};
use crate::core::units::HumanDuration;

/// Settings of `checkpoints:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSettings {
    /// The compacted topic holding the checkpoints; created by Weir when
    /// missing. Default `weir-checkpoints`; processes of several pipelines
    /// may share it (keys name the consumer group).
    #[serde(default = "default_topic")]
    pub topic: String,
    /// How often every partition's state is checkpointed (besides on
    /// revocation and shutdown). A crash replays at most this much of the
    /// input. Default 10s.
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// Replicas of the checkpoint topic when Weir creates it; default the
    /// broker's `default.replication.factor`.
    #[serde(default)]
    pub replication_factor: Option<i32>,
}

impl CheckpointSettings {
    /// What serde cannot check: the key at fault and why.
    ///
    /// # Errors
    /// `interval` zero; `topic` not a valid Kafka topic name (1 to 249 of
    /// `[a-zA-Z0-9._-]`, Kafka's own rule) or one of the input's `topics`
    /// (the input would read its checkpoints as records);
    /// `replication_factor` below 1.
    pub fn check(&self, topics: &super::Topics) -> Result<(), (&'static str, String)> {
        if self.interval.0.is_zero() {
            return Err(("interval", "must be above 0 (e.g. 10s)".into()));
        }
        let name = &self.topic;
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || name.len() > 249 || !name.chars().all(valid) || name == "." || name == ".." {
            return Err((
                "topic",
                format!("{name:?} is not a Kafka topic name: 1 to 249 of a-z, A-Z, 0-9, '.', '_', '-'"),
            ));
        }
        if topics.names().contains(&name.as_str()) {
            return Err(("topic", format!("{name:?} is a topic this input reads; the checkpoints need their own")));
        }
        if self.replication_factor.is_some_and(|r| r < 1) {
            return Err(("replication_factor", "must be 1 or more".into()));
        }
        Ok(())
    }
}

fn default_topic() -> String {
    "weir-checkpoints".into()
}

/// Ten seconds: a crash replays about that much, and a checkpoint (a pause
/// of the chain and one write per partition and filter) stays well under
/// 1% of the time for the state sizes BENCHMARKS.md measures.
fn default_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// The largest checkpoint record: the topic's `max.message.bytes` and the
/// producer's `message.max.bytes`.
const MAX_RECORD_BYTES: &str = "67108864";
const OFFSET_HEADER: &str = "weir-offset";
const SEEN_HEADER: &str = "weir-seen";
/// How long reading the checkpoints on assignment may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A checkpoint transaction left open by a crash is aborted after this
/// long (ms); readers of the topic wait behind it until then.
const TRANSACTION_TIMEOUT_MS: &str = "10000";
/// How often a wait for deliveries looks again.
const POLL: Duration = Duration::from_millis(5);

/// The key of one checkpoint record.
#[derive(Debug, Serialize, Deserialize)]
struct Key {
    pipeline: String,
    filter: String,
    topic: String,
    partition: i32,
}

/// The record origin stream of a partition, as the input names it.
pub fn stream(topic: &str, partition: i32) -> Arc<str> {
    format!("kafka:{topic}/{partition}").into()
}

/// Topic and partition back from a stream name.
fn topic_partition(stream: &str) -> Option<(&str, i32)> {
    let (topic, partition) = stream.strip_prefix("kafka:")?.rsplit_once('/')?;
    Some((topic, partition.parse().ok()?))
}

/// Collects delivery failures of the checkpoint producer.
#[derive(Default)]
struct Deliveries(Mutex<Vec<String>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            lock(&self.0).push(error.to_string());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes and reads one input's checkpoints.
pub(super) struct Checkpointer {
    input: Arc<str>,
    group: String,
    settings: CheckpointSettings,
    hub: Arc<Checkpoints>,
    client: ClientConfig,
    producer: BaseProducer<Deliveries>,
    /// How long a revocation waits for the chain and for deliveries.
    timeout: Duration,
    /// One checkpoint at a time; holds the epochs not yet known delivered.
    outstanding: Mutex<Vec<oneshot::Receiver<Delivery>>>,
    /// An epoch failed to deliver: no later checkpoint may be written.
    broken: AtomicBool,
    /// The last checkpoint was taken (shutdown): the revocation that closing
    /// the consumer triggers has nothing left to do.
    finished: AtomicBool,
    /// When the newest written checkpoint's barrier was, in ms since the epoch.
    last_barrier_ms: Arc<AtomicI64>,
    written: Counter,
    skipped: Counter,
    failed: Counter,
    bytes: Gauge,
    duration: Histogram,
    restore: Histogram,
    restored: Counter,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Checkpointer {
    /// For the input named `input` of consumer group `group`, with the
    /// client settings `client` (brokers, security).
    pub(super) fn new(
        input: Arc<str>,
        group: String,
        settings: CheckpointSettings,
        hub: Arc<Checkpoints>,
        client: ClientConfig,
        timeout: Duration,
    ) -> Result<Self, KafkaError> {
        // One transaction per checkpoint, so its records (one per filter and
        // partition) land together or not at all. The id is this process's
        // own: processes write disjoint keys, nothing to fence; a crashed
        // one's open transaction is aborted by the broker after its timeout,
        // which bounds how long a reader waits behind it.
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let transactional_id = format!("weir-checkpoints-{group}-{input}-{}-{nanos}", std::process::id());
        let producer: BaseProducer<Deliveries> = client
            .clone()
            .set("transactional.id", &transactional_id)
            .set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.max.bytes", MAX_RECORD_BYTES)
            .set("linger.ms", "0")
            // A deleted checkpoint topic must not come back with the
            // broker's defaults (not compacted, 1 MB records).
            .set("allow.auto.create.topics", "false")
            .create_with_context(Deliveries::default())?;
        producer.init_transactions(READ_TIMEOUT)?;
        let last_barrier_ms = Arc::new(AtomicI64::new(0));
        let since = last_barrier_ms.clone();
        registry().gauge_fn(&CHECKPOINT_LAG, &[&input], move || match since.load(Ordering::Relaxed) {
            0 => 0,
            at => (now_ms() - at).max(0) / 1000,
        });
        let counter = |outcome| registry().counter(&CHECKPOINTS, &[&input, outcome]);
        Ok(Checkpointer {
            written: counter("written"),
            skipped: counter("skipped"),
            failed: counter("failed"),
            bytes: registry().gauge(&CHECKPOINT_BYTES, &[&input]),
            duration: registry().histogram(&CHECKPOINT_DURATION, &[&input]),
            restore: registry().histogram(&CHECKPOINT_RESTORE, &[&input]),
            restored: registry().counter(&CHECKPOINT_RESTORED, &[&input]),
            input,
            group,
            settings,
            hub,
            client,
            producer,
            timeout,
            outstanding: Mutex::default(),
            broken: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            last_barrier_ms,
        })
    }

    /// How often to checkpoint.
    pub(super) fn interval(&self) -> Duration {
        self.settings.interval.0
    }

    /// Create the checkpoint topic, compacted, unless it exists.
    ///
    /// # Errors
    /// Why the topic could not be created.
    pub(super) async fn ensure_topic(&self) -> Result<(), KafkaError> {
        let admin: AdminClient<DefaultClientContext> = self.client.create()?;
        let replication = TopicReplication::Fixed(self.settings.replication_factor.unwrap_or(-1));
        // Compaction keeps the newest checkpoint per key; short segments let
        // it run soon, so the topic stays about one record per key.
        let topic = NewTopic::new(&self.settings.topic, 1, replication)
            .set("cleanup.policy", "compact")
            .set("segment.ms", "60000")
            .set("min.cleanable.dirty.ratio", "0.1")
            .set("max.message.bytes", MAX_RECORD_BYTES);
        let results = admin.create_topics([&topic], &AdminOptions::new()).await?;
        for result in results {
            match result {
                Ok(_) => {
                    tracing::info!(input = %self.input, topic = self.settings.topic, "checkpoint topic created (compacted)")
                }
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => self.check_existing(&admin).await,
                Err((_, code)) => return Err(KafkaError::AdminOp(code)),
            }
        }
        Ok(())
    }

    /// Say at WARN what in an existing checkpoint topic's config breaks
    /// checkpoints: no compaction (the topic grows, and every assignment
    /// reads it all) or a record limit below Weir's.
    async fn check_existing(&self, admin: &AdminClient<DefaultClientContext>) {
        let topic = &self.settings.topic;
        let described = admin.describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()).await;
        let Some(Ok(config)) = described.ok().and_then(|mut d| d.pop()) else { return };
        let value = |key| config.get(key).and_then(|e| e.value.clone()).unwrap_or_default();
        if !value("cleanup.policy").contains("compact") {
            tracing::warn!(input = %self.input, topic, policy = value("cleanup.policy"),
                "the checkpoint topic is not compacted: it keeps every checkpoint and each assignment reads them all; set cleanup.policy=compact");
        }
        let limit: u64 = value("max.message.bytes").parse().unwrap_or(0);
        if limit < MAX_RECORD_BYTES.parse().unwrap_or(0) {
            tracing::warn!(input = %self.input, topic, max_message_bytes = limit,
                "the checkpoint topic's max.message.bytes is below {MAX_RECORD_BYTES}: larger checkpoints will fail");
        }
    }

    /// Read the newest checkpoints of `assigned`, hand them to the filters,
    /// and return the offset each partition must start at (none for a
    /// partition never checkpointed). Blocking.
    pub(super) fn restore(&self, assigned: &[TopicPartition]) -> Vec<(TopicPartition, i64)> {
        let started = Instant::now();
        let wanted: HashSet<(&str, i32)> = assigned.iter().map(|tp| (&*tp.topic, tp.partition)).collect();
        let mut read = Err(KafkaError::NoMessageReceived);
        for attempt in 1..=3 {
            read = self.read(&wanted);
            match &read {
                Ok(_) => break,
                Err(error) => tracing::warn!(input = %self.input, attempt, %error, "reading checkpoints failed"),
            }
        }
        let mut found = read.unwrap_or_else(|error| {
            tracing::error!(input = %self.input, %error, topic = self.settings.topic,
                "cannot read checkpoints: the assigned partitions start without their state (windows open at their last checkpoint are lost)");
            HashMap::new()
        });
        let mut starts = Vec::new();
        let (mut states, mut bytes) = (0, 0);
        for tp in assigned {
            let stream = stream(&tp.topic, tp.partition);
            let mut saved = found.remove(&stream).unwrap_or_default();
            if let Some(offset) = saved.values().map(|s| s.offset).min() {
                if self.beyond_the_end(tp, offset) {
                    saved.clear();
                } else {
                    starts.push((tp.clone(), offset));
                }
            }
            states += saved.len();
            bytes += saved.values().map(|s| s.state.len()).sum::<usize>();
            self.hub.assigned(stream, saved);
        }
        self.restored.add(states as u64);
        self.restore.observe(started.elapsed());
        tracing::info!(input = %self.input, partitions = assigned.len(), states, bytes, took = ?started.elapsed(),
            starts = ?starts.iter().map(|(tp, o)| format!("{tp}@{o}")).collect::<Vec<_>>(), "checkpoints restored");
        starts
    }

    /// A consumer that reads the checkpoint topic (committed records only)
    /// and partitions' ends. librdkafka wants a group even for a plain
    /// assignment; this one never joins nor commits.
    fn reader(&self) -> Result<BaseConsumer, KafkaError> {
        self.client
            .clone()
            .set("group.id", "weir-checkpoint-reader")
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
    }

    /// Whether a checkpoint covering up to `offset` cannot be of `tp`'s log
    /// as it is: the partition ends before it (the topic was deleted and
    /// made again under the same name). Its state is then dropped, said at
    /// ERROR, rather than every record below `offset` taken for a repeat.
    fn beyond_the_end(&self, tp: &TopicPartition, offset: i64) -> bool {
        let end = self.reader().and_then(|c| c.fetch_watermarks(&tp.topic, tp.partition, READ_TIMEOUT));
        match end {
            Ok((_, high)) if offset > high => {
                tracing::error!(input = %self.input, partition = %tp, checkpoint_offset = offset, end = high,
                    "the partition's checkpoint covers offsets the partition does not have (was the topic made again?): its state is dropped, the partition starts from the group's committed offset");
                true
            }
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(input = %self.input, partition = %tp, %error, "cannot read the partition's end to check its checkpoint against");
                false
            }
        }
    }

    /// The newest checkpoint per partition stream and filter of this group
    /// among `wanted`.
    fn read(&self, wanted: &HashSet<(&str, i32)>) -> Result<HashMap<Arc<str>, HashMap<String, Saved>>, KafkaError> {
        let topic = &self.settings.topic;
        let consumer = self.reader()?;
        let metadata = consumer.fetch_metadata(Some(topic), READ_TIMEOUT)?;
        let mut list = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) = consumer.fetch_watermarks(topic, partition.id(), READ_TIMEOUT)?;
            if high > low {
                list.add_partition_offset(topic, partition.id(), Offset::Offset(low))?;
                ends.insert(partition.id(), high);
            }
        }
        let mut found: HashMap<Arc<str>, HashMap<String, Saved>> = HashMap::new();
        if ends.is_empty() {
            return Ok(found);
        }
        consumer.assign(&list)?;
        let deadline = Instant::now() + READ_TIMEOUT;
        while !ends.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(KafkaError::NoMessageReceived);
            }
            let message = match consumer.poll(left.min(Duration::from_millis(500))) {
                None => continue,
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    ends.remove(&partition);
                    continue;
                }
                Some(Err(error)) => return Err(error),
                Some(Ok(message)) => message,
            };
            if ends.get(&message.partition()).is_some_and(|end| message.offset() + 1 >= *end) {
                ends.remove(&message.partition());
            }
            let Some(key) = message.key().and_then(|k| serde_json::from_slice::<Key>(k).ok()) else { continue };
            if key.pipeline != self.group || !wanted.contains(&(key.topic.as_str(), key.partition)) {
                continue;
            }
            let mut offset = None;
            let mut seen = None;
            if let Some(headers) = message.headers() {
                for header in headers.iter() {
                    match header.key {
                        OFFSET_HEADER => {
                            offset = header
                                .value
                                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
                                .filter(|o| *o >= 0)
                        }
                        SEEN_HEADER => seen = header.value.map(<[u8]>::to_vec),
                        _ => {}
                    }
                }
            }
            let (Some(offset), Some(state)) = (offset, message.payload()) else {
                tracing::warn!(input = %self.input, topic, offset = message.offset(),
                    "checkpoint record without a valid offset header (a non-negative integer) or without a value; ignored");
                continue;
            };
            let state = state.to_vec();
            found
                .entry(stream(&key.topic, key.partition))
                .or_default()
                .insert(key.filter, Saved { offset, state, seen });
        }
        Ok(found)
    }

    /// Checkpoint every partition, and drop `revoke`'s from the filters.
    /// Blocking: waits for the chain's barrier, for the deliveries of what
    /// the filters emitted before it, and for the write.
    pub(super) fn checkpoint(&self, revoke: &[TopicPartition]) {
        let mut outstanding = lock(&self.outstanding);
        if self.finished.load(Ordering::Relaxed) {
            return;
        }
        let started = Instant::now();
        let barrier_ms = now_ms();
        let streams: Vec<Arc<str>> = revoke.iter().map(|tp| stream(&tp.topic, tp.partition)).collect();
        let Some(taken) = self.hub.barrier(&streams, self.timeout) else {
            tracing::warn!(input = %self.input, "the filter chain did not take a checkpoint (stopping?); the previous one stays");
            self.skipped.add(1);
            return;
        };
        outstanding.extend(taken.delivered);
        // Everything emitted before the barrier, and before any checkpoint
        // skipped earlier, must be delivered before the state says so.
        let deadline = match (taken.checkpoints.is_empty(), revoke.is_empty()) {
            (true, _) => Instant::now(),
            (false, true) => Instant::now() + self.interval().max(self.timeout),
            (false, false) => Instant::now() + self.timeout,
        };
        loop {
            outstanding.retain_mut(|done| match done.try_recv() {
                Ok(Delivery::Delivered) => false,
                Ok(Delivery::Failed) | Err(oneshot::error::TryRecvError::Closed) => {
                    self.broken.store(true, Ordering::Relaxed);
                    false
                }
                Err(oneshot::error::TryRecvError::Empty) => true,
            });
            if outstanding.is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(POLL);
        }
        if taken.checkpoints.is_empty() {
            return;
        }
        if self.broken.load(Ordering::Relaxed) {
            tracing::error!(input = %self.input, "records the filters emitted were not delivered: no checkpoint is written until restart, so the partitions are replayed from the last one");
            self.skipped.add(1);
            return;
        }
        if !outstanding.is_empty() {
            tracing::warn!(input = %self.input, waited = ?self.timeout, "what the filters emitted is not delivered yet; checkpoint skipped, the previous one stays");
            self.skipped.add(1);
            return;
        }
        match self.write(&taken.checkpoints) {
            Ok(bytes) => {
                self.written.add(1);
                self.bytes.set(bytes as i64);
                self.duration.observe(started.elapsed());
                self.last_barrier_ms.store(barrier_ms, Ordering::Relaxed);
                tracing::debug!(input = %self.input, records = taken.checkpoints.len(), bytes, took = ?started.elapsed(), "checkpoint written");
                if !revoke.is_empty() {
                    tracing::info!(input = %self.input, partitions = revoke.len(), records = taken.checkpoints.len(), bytes,
                        took = ?started.elapsed(), "revoked partitions checkpointed");
                }
            }
            Err(error) => {
                self.failed.add(1);
                tracing::error!(input = %self.input, error, topic = self.settings.topic,
                    "writing the checkpoint failed; the previous one, if the topic still holds it, stays (a deleted checkpoint topic is made again at the next start)");
            }
        }
    }

    /// At shutdown: checkpoint and drop every partition still `assigned`,
    /// and take no checkpoint after this one.
    pub(super) fn finish(&self, assigned: &[TopicPartition]) {
        self.checkpoint(assigned);
        self.finished.store(true, Ordering::Relaxed);
    }

    /// Produce `checkpoints` and wait until all are acknowledged; their
    /// total size.
    fn write(&self, checkpoints: &[Checkpoint]) -> Result<usize, String> {
        lock(&self.producer.context().0).clear();
        self.producer.begin_transaction().map_err(|e| e.to_string())?;
        let written = self.produce(checkpoints).and_then(|bytes| {
            let timeout = self.timeout.max(Duration::from_secs(10));
            self.producer.commit_transaction(timeout).map_err(|e| e.to_string())?;
            match lock(&self.producer.context().0).first() {
                Some(error) => Err(error.clone()),
                None => Ok(bytes),
            }
        });
        if written.is_err() {
            // Nothing of this checkpoint becomes visible; the previous stays.
            if let Err(error) = self.producer.abort_transaction(self.timeout.max(Duration::from_secs(10))) {
                tracing::warn!(input = %self.input, %error, "aborting the checkpoint transaction failed");
            }
        }
        written
    }

    /// Send `checkpoints` within the open transaction; their total size.
    fn produce(&self, checkpoints: &[Checkpoint]) -> Result<usize, String> {
        let mut bytes = 0;
        for c in checkpoints {
            let (topic, partition) =
                topic_partition(&c.stream).ok_or_else(|| format!("not a Kafka stream: {}", c.stream))?;
            let key =
                Key { pipeline: self.group.clone(), filter: c.filter.clone(), topic: topic.to_string(), partition };
            let key = serde_json::to_vec(&key).expect("a key is plain JSON");
            let offset = c.saved.offset.to_string();
            let mut headers = OwnedHeaders::new().insert(Header { key: OFFSET_HEADER, value: Some(offset.as_bytes()) });
            if let Some(seen) = &c.saved.seen {
                headers = headers.insert(Header { key: SEEN_HEADER, value: Some(seen.as_slice()) });
            }
            bytes += c.saved.state.len() + c.saved.seen.as_ref().map_or(0, Vec::len);
            let mut record = BaseRecord::to(&self.settings.topic).key(&key).payload(&c.saved.state).headers(headers);
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        self.producer.poll(Duration::from_millis(10));
                    }
                    Err((error, _)) => return Err(error.to_string()),
                }
            }
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_name_their_topic_and_partition_both_ways() {
        let s = stream("mobile-metrics", 12);
        assert_eq!(&*s, "kafka:mobile-metrics/12");
        assert_eq!(topic_partition(&s), Some(("mobile-metrics", 12)));
        assert_eq!(topic_partition("file:/var/log/x"), None);
    }

    #[test]
    fn settings_have_safe_defaults_and_refuse_unknown_fields() {
        let s: CheckpointSettings = serde_norway::from_str("{}").unwrap();
        assert_eq!(
            (s.topic.as_str(), s.interval.0, s.replication_factor),
            ("weir-checkpoints", Duration::from_secs(10), None)
        );
        assert!(serde_norway::from_str::<CheckpointSettings>("{intervall: 1s}").is_err());
    }
}
