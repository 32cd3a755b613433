//! The rdkafka glue of the `kafka` input: the client, the poll loop, the
//! rebalance callbacks and the commit task. What may be committed is
//! decided by [`OffsetTracker`]; this file only feeds it and carries its
//! answers to librdkafka.
//!
//! - Each message gets one [`AckToken`]; its callback tells the tracker
//!   the message's outcome once every derived record is done.
//! - A task commits the tracker's contiguous positions every
//!   `commit_interval` (asynchronously; a failed commit is retried at the
//!   next tick) and seeks partitions with a failed delivery back to the
//!   failed offset, so it is replayed rather than skipped.
//! - On revocation, in-flight records of the revoked partitions get up to
//!   `drain_timeout` to be acknowledged, then what is contiguous is
//!   committed synchronously and the partitions' trackers are dropped: late
//!   acks are ignored and the new owner replays the rest.
//! - On shutdown the loop stops polling, waits up to `drain_timeout` for
//!   in-flight records and commits synchronously once more.
//! - Backpressure: while [`InputContext::send`] waits, nothing is polled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::checkpoint::{self, Checkpointer};
use super::lag::{DEFAULT_STATISTICS_INTERVAL_MS, LagGauges};
use super::offsets::{OffsetTracker, TopicPartition};
use super::{KafkaInputConfig, MessageMeta, StartPosition};
use crate::core::ack::{AckToken, Delivery};
use crate::core::dead_letter::DeadLetter;
use crate::core::record::{Origin, Record};
use crate::inputs::{InputContext, InputError, InputErrorKind};

/// How long a seek or the final synchronous commit may take before we give
/// up on it (the data is then replayed: at least once, never lost).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a drain re-checks the tracker: short against `drain_timeout`.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// Consumes Kafka topics as a member of a consumer group.
pub struct KafkaInput {
    config: KafkaInputConfig,
}

type SharedTracker = Arc<Mutex<OffsetTracker>>;

fn lock(tracker: &Mutex<OffsetTracker>) -> MutexGuard<'_, OffsetTracker> {
    // The tracker's invariants hold between calls; a panic elsewhere while
    // holding the lock cannot leave it half-updated in a harmful way.
    tracker.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Receives librdkafka's callbacks: logs, errors, statistics, rebalances,
/// commits.
struct WeirConsumerContext {
    input: Arc<str>,
    tracker: SharedTracker,
    drain_timeout: Duration,
    lag: LagGauges,
    /// With `checkpoints:`: the filters' state per partition.
    checkpoints: Option<Arc<Checkpointer>>,
}

impl ClientContext for WeirConsumerContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::kafka::log(&self.input, level, fac, log_message);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.lag.update(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(input = %self.input, %error, reason, "kafka client error");
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect()
}

fn commit_list(commits: &[(TopicPartition, i64)]) -> KafkaResult<TopicPartitionList> {
    let mut list = TopicPartitionList::with_capacity(commits.len());
    for (tp, offset) in commits {
        list.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset))?;
    }
    Ok(list)
}

impl WeirConsumerContext {
    /// Wait until none of `only` (all when `None`) has records in flight,
    /// or `drain_timeout` passes.
    fn drain(&self, only: Option<&[TopicPartition]>) -> usize {
        let deadline = Instant::now() + self.drain_timeout;
        loop {
            let left = lock(&self.tracker).in_flight(only);
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(DRAIN_POLL);
        }
    }
}

impl ConsumerContext for WeirConsumerContext {
    /// librdkafka's default handling (rdkafka's own `rebalance`), with one
    /// step before an assignment: with `checkpoints:`, the partitions'
    /// state is read and each starts at the offset its checkpoint covers.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, list: &mut TopicPartitionList) {
        let assigning = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        let mut starts = Vec::new();
        if let (true, Some(checkpoints)) = (assigning, &self.checkpoints) {
            for (tp, offset) in checkpoints.restore(&partitions(list)) {
                match list.set_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset)) {
                    Ok(()) => starts.push((tp, offset)),
                    Err(error) => {
                        tracing::error!(input = %self.input, partition = %tp, %error, "cannot start the partition at its checkpoint")
                    }
                }
            }
        }
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(list),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(list),
            _ => Rebalance::Error(KafkaError::Rebalance(err.into())),
        };
        self.pre_rebalance(consumer, &rebalance);
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let applied = match (assigning, cooperative, err) {
            (true, true, _) => consumer.incremental_assign(list),
            (true, false, _) => consumer.assign(list),
            (false, true, RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) => consumer.incremental_unassign(list),
            (false, _, _) => consumer.unassign(),
        };
        if let Err(error) = applied {
            tracing::warn!(input = %self.input, %error, "applying the rebalance failed");
        }
        self.post_rebalance(consumer, &rebalance);
        // After `post_rebalance` tracks the partitions: their first message
        // is checked against the start (see `OffsetTracker::skipped_ahead`).
        let mut tracker = lock(&self.tracker);
        for (tp, offset) in starts {
            tracker.expect_start(&tp, offset);
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let revoked = partitions(list);
        if revoked.is_empty() {
            return;
        }
        // Blocks the poll loop, on purpose: the partitions may not move on
        // before their contiguous progress is committed.
        let abandoned = self.drain(Some(&revoked));
        let commits: Vec<_> = {
            let mut tracker = lock(&self.tracker);
            revoked.iter().filter_map(|tp| tracker.revoke(tp).map(|pos| (tp.clone(), pos))).collect()
        };
        tracing::info!(input = %self.input, partitions = ?revoked.iter().map(ToString::to_string).collect::<Vec<_>>(),
            abandoned, "partitions revoked; committing what is contiguously acknowledged");
        if !commits.is_empty() && !consumer.assignment_lost() {
            let result = commit_list(&commits).and_then(|list| consumer.commit(&list, CommitMode::Sync));
            if let Err(error) = result {
                tracing::warn!(input = %self.input, %error, "commit on revocation failed; the new owner replays from the previous commit");
            }
        }
        // The partitions' records are through the filters (or abandoned and
        // dropped by them): their state goes to the next owner.
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.checkpoint(&revoked);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let assigned = partitions(list);
                tracing::info!(input = %self.input, partitions = ?assigned.iter().map(ToString::to_string).collect::<Vec<_>>(), "partitions assigned");
                let mut tracker = lock(&self.tracker);
                for tp in assigned {
                    tracker.assign(tp);
                }
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => {
                tracing::warn!(input = %self.input, %error, "rebalance failed")
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let Err(error) = result else { return };
        tracing::warn!(input = %self.input, %error, "offset commit failed; retrying at the next commit");
        let mut tracker = lock(&self.tracker);
        for e in offsets.elements() {
            if let Offset::Offset(offset) = e.offset() {
                tracker.commit_failed(&TopicPartition::new(e.topic(), e.partition()), offset);
            }
        }
    }
}

type WeirConsumer = StreamConsumer<WeirConsumerContext>;

/// Interned per-partition values, so a message costs no allocation for them.
struct PartitionNames {
    tp: TopicPartition,
    stream: Arc<str>,
}

impl KafkaInput {
    /// Build from settings.
    pub fn new(config: KafkaInputConfig) -> Self {
        KafkaInput { config }
    }

    /// What the checkpoint producer and readers need of the client
    /// settings: the brokers, and the user's connection properties
    /// (security, sockets), without the consumer's own.
    fn connection_config(&self) -> ClientConfig {
        const CONNECTION: &[&str] =
            &["security.", "sasl.", "ssl.", "socket.", "client.", "broker.", "reconnect.", "api."];
        let mut client = ClientConfig::new();
        for (key, value) in &self.config.librdkafka.0 {
            if CONNECTION.iter().any(|prefix| key.starts_with(prefix)) {
                client.set(key, value);
            }
        }
        client.set("bootstrap.servers", self.config.brokers.joined());
        client.set_log_level(RDKafkaLogLevel::Warning);
        client
    }

    /// The librdkafka client settings: defaults the user may change, the
    /// user's pass-through properties, then Weir's own, which win.
    fn client_config(&self) -> ClientConfig {
        let c = &self.config;
        let mut client = ClientConfig::new();
        client.set("statistics.interval.ms", DEFAULT_STATISTICS_INTERVAL_MS);
        for (key, value) in &c.librdkafka.0 {
            client.set(key, value);
        }
        client
            .set("bootstrap.servers", c.brokers.joined())
            .set("group.id", &c.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.offset.reset",
                match c.start_at {
                    StartPosition::Earliest => "earliest",
                    StartPosition::Latest => "latest",
                },
            );
        client.set_log_level(RDKafkaLogLevel::Warning);
        client
    }

    pub(super) async fn consume(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let c = &self.config;
        let fail = |what: String| {
            let input = ctx.name.to_string();
            move |error: KafkaError| InputError::new(input, InputErrorKind::Kafka { what, source: Box::new(error) })
        };
        let tracker: SharedTracker = Arc::new(Mutex::new(OffsetTracker::new()));
        let checkpoints = match (&c.checkpoints, &ctx.checkpoints) {
            (None, _) => None,
            (Some(settings), Some(hub)) => {
                let checkpointer = Checkpointer::new(
                    ctx.name.clone(),
                    c.group_id.clone(),
                    settings.clone(),
                    hub.clone(),
                    self.connection_config(),
                    c.drain_timeout.0,
                )
                .map_err(fail("creating the checkpoint producer".into()))?;
                checkpointer
                    .ensure_topic()
                    .await
                    .map_err(fail(format!("creating the checkpoint topic {}", settings.topic)))?;
                Some(Arc::new(checkpointer))
            }
            (Some(_), None) => {
                return Err(fail("checkpoints".into())(KafkaError::ClientCreation(
                    "checkpoints were added by a reload; the filters keep their state per partition only from a start: restart weir".into(),
                )));
            }
        };
        let context = WeirConsumerContext {
            input: ctx.name.clone(),
            tracker: tracker.clone(),
            drain_timeout: c.drain_timeout.0,
            lag: LagGauges::new(&ctx.name),
            checkpoints: checkpoints.clone(),
        };
        let consumer: Arc<WeirConsumer> = Arc::new(
            self.client_config()
                .create_with_context(context)
                .map_err(fail(format!("creating a consumer for brokers {}", c.brokers.joined())))?,
        );
        let topics = c.topics.names();
        consumer.subscribe(&topics).map_err(fail(format!("subscribing to {}", topics.join(", "))))?;
        tracing::info!(input = %ctx.name, group = c.group_id, topics = ?topics, "kafka input subscribed");
        ctx.listening();

        let committer =
            tokio::spawn(commit_loop(ctx.name.clone(), consumer.clone(), tracker.clone(), c.commit_interval.0));
        let periodic = checkpoints.clone().map(Periodic::start).transpose().map_err(|e| {
            InputError::new(
                ctx.name.to_string(),
                InputErrorKind::Io { what: "starting the checkpoint thread".into(), source: e },
            )
        })?;
        let result = self.poll_loop(&ctx, &consumer, &tracker).await;
        committer.abort();
        if let Some(periodic) = periodic {
            tokio::task::spawn_blocking(move || periodic.stop()).await.ok();
        }

        // Shutdown (or the pipeline closed): no more polling. Give in-flight
        // records their chance, then commit synchronously what is contiguous.
        let left = consumer.context().drain(None);
        let (commits, assigned) = {
            let mut t = lock(&tracker);
            let commits = t.take_commits();
            // Nothing more is tracked: the revocation that closing the
            // consumer triggers finds nothing to wait for.
            let assigned = t.assigned();
            for tp in &assigned {
                t.revoke(tp);
            }
            (commits, assigned)
        };
        // The last checkpoint, while the chain still runs (closing the
        // consumer may happen after the pipeline has stopped).
        if let Some(checkpoints) = &checkpoints {
            let (checkpoints, assigned) = (checkpoints.clone(), assigned.clone());
            tokio::task::spawn_blocking(move || checkpoints.finish(&assigned)).await.ok();
        }
        if !commits.is_empty() {
            let committed = commit_list(&commits).and_then(|list| consumer.commit(&list, CommitMode::Sync));
            match committed {
                Ok(()) => {
                    tracing::info!(input = %ctx.name, partitions = commits.len(), abandoned = left, "final offsets committed")
                }
                Err(error) => {
                    tracing::warn!(input = %ctx.name, %error, "final commit failed; the group replays from the previous commit")
                }
            }
        }
        let consumer = Arc::try_unwrap(consumer).ok();
        // Closing leaves the group at once, so the others take over without
        // waiting for the session timeout.
        tokio::task::spawn_blocking(move || drop(consumer)).await.ok();
        result
    }

    async fn poll_loop(
        &self,
        ctx: &InputContext,
        consumer: &WeirConsumer,
        tracker: &SharedTracker,
    ) -> Result<(), InputError> {
        let mut names: HashMap<Box<str>, HashMap<i32, PartitionNames>> = HashMap::new();
        loop {
            let first = tokio::select! {
                biased;
                () = ctx.shutdown.cancelled() => return Ok(()),
                m = consumer.recv() => m,
            };
            let mut batch = Vec::new();
            let mut letters = Vec::new();
            self.accept(first, ctx, tracker, &mut names, &mut batch, &mut letters);
            // Take what has already arrived, without waiting, up to a batch.
            while batch.len() + letters.len() < ctx.batch_max_records {
                match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
                    Ok(m) => self.accept(m, ctx, tracker, &mut names, &mut batch, &mut letters),
                    Err(_) => break,
                }
            }
            if ctx.dead_letter(letters).await.is_err() || ctx.send(batch).await.is_err() {
                return Ok(());
            }
        }
    }

    fn accept(
        &self,
        message: Result<BorrowedMessage<'_>, KafkaError>,
        ctx: &InputContext,
        tracker: &SharedTracker,
        names: &mut HashMap<Box<str>, HashMap<i32, PartitionNames>>,
        batch: &mut Vec<Record>,
        letters: &mut Vec<DeadLetter>,
    ) {
        let message = match message {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(input = %ctx.name, %error, "kafka consumer error");
                return;
            }
        };
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let names = names.entry(topic.into()).or_default().entry(partition).or_insert_with(|| PartitionNames {
            tp: TopicPartition::new(topic, partition),
            stream: checkpoint::stream(topic, partition),
        });
        let skipped = lock(tracker).skipped_ahead(&names.tp, offset);
        if let Some(start) = skipped {
            tracing::warn!(input = %ctx.name, topic, partition, offset, start,
                "the partition's first message lies past its checkpoint's offset: rewinding to it, so nothing between is skipped");
            return;
        }
        let Some(epoch) = lock(tracker).track(&names.tp, offset) else {
            // Revoked, or waiting to be rewound: this copy is replayed later.
            tracing::debug!(input = %ctx.name, topic, partition, offset, "message not tracked; skipped");
            return;
        };
        let ack = {
            let tracker = tracker.clone();
            let tp = names.tp.clone();
            let input = ctx.name.clone();
            AckToken::new(move |outcome| {
                let delivered = outcome == Delivery::Delivered;
                if lock(&tracker).ack(&tp, epoch, offset, delivered) {
                    tracing::warn!(input = %input, topic = %tp.topic, partition = tp.partition, offset,
                        "delivery failed; not committing past it, rewinding the partition to replay it");
                }
            })
        };
        let timestamp_ms = message.timestamp().to_millis();
        let time = timestamp_ms.and_then(|ms| ms.checked_mul(1_000_000)).unwrap_or_else(|| ctx.clock.now());
        // A delivered message always has an offset >= 0; `None` rather than
        // offset 0 if librdkafka ever said otherwise, so no identity is shared.
        let origin =
            u64::try_from(offset).ok().map(|offset| Origin { stream: names.stream.clone(), offset, lineage: 0 });
        let meta = MessageMeta { topic, partition, offset, key: message.key(), timestamp_ms };
        match self.config.decode_message(message.payload(), &meta) {
            Ok(body) => batch.push(Record { time, tag: ctx.tag.clone(), body, origin, ack: Some(ack), arrival: None }),
            Err(error) => letters.push(DeadLetter {
                stage: format!("input {}", ctx.name),
                reason: error.to_string(),
                tag: ctx.tag.clone(),
                time,
                body: bytes::Bytes::copy_from_slice(message.payload().unwrap_or_default()),
                origin,
                ack: Some(ack),
                arrival: None,
            }),
        }
    }
}

/// The thread checkpointing every `checkpoints.interval` (a checkpoint
/// blocks: it waits for the chain's barrier and for deliveries).
struct Periodic {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Periodic {
    fn start(checkpointer: Arc<Checkpointer>) -> std::io::Result<Self> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("weir-checkpoints".into()).spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(checkpointer.interval()) {
                checkpointer.checkpoint(&[]);
            }
        })?;
        Ok(Periodic { stop, thread })
    }

    /// Stop after the checkpoint under way, if any; the revocation that
    /// closing the consumer triggers writes the last one.
    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Every `interval`: commit what is contiguous, and rewind partitions with
/// a failed delivery.
async fn commit_loop(input: Arc<str>, consumer: Arc<WeirConsumer>, tracker: SharedTracker, interval: Duration) {
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        let (commits, rewinds) = {
            let mut t = lock(&tracker);
            (t.take_commits(), t.rewinds())
        };
        if !commits.is_empty() {
            let result = commit_list(&commits).and_then(|list| consumer.commit(&list, CommitMode::Async));
            if let Err(error) = result {
                tracing::warn!(input = %input, %error, "offset commit failed; retrying at the next commit");
                let mut t = lock(&tracker);
                for (tp, offset) in &commits {
                    t.commit_failed(tp, *offset);
                }
            }
        }
        for (tp, offset) in rewinds {
            let consumer = consumer.clone();
            let topic = tp.topic.clone();
            let seek = tokio::task::spawn_blocking(move || {
                consumer.seek(&topic, tp.partition, Offset::Offset(offset), CLIENT_TIMEOUT).map(|()| tp)
            })
            .await;
            match seek {
                Ok(Ok(tp)) => {
                    tracing::info!(input = %input, topic = %tp.topic, partition = tp.partition, offset, "rewound to replay");
                    lock(&tracker).rewound(&tp, offset);
                }
                Ok(Err(error)) => {
                    tracing::warn!(input = %input, %error, offset, "seek failed; retrying at the next commit")
                }
                Err(_) => {}
            }
        }
    }
}
