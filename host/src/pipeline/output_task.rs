//! The task that drives one output: batches records, writes them, retries
//! what failed with exponential backoff and jitter, and dead-letters what
//! the destination refused. While it retries it reads nothing more, so its
//! bounded queue fills and the chain waits: that is the backpressure a slow
//! output exerts.
//!
//! Batching follows the queue, not a timer: whatever is waiting when the
//! task is free is written at once, up to `batch.max_records`, so a lone
//! record at low load goes out after one round trip, not after `max_wait`.
//! Only while more records keep arriving does it keep gathering, for at
//! most `max_wait` after the first one (Kafka's `linger` with a queue that
//! tells it when to stop).
//!
//! At shutdown the drain's give-up deadline ([`Drain`]) ends retries: what
//! the task still holds goes to the dead-letter outputs if they have room,
//! else it is abandoned, and the task returns.

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::dead_letters::DeadLetterRoute;
use super::drain::Drain;
use super::queues::Taken;
use crate::config::{BatchSettings, RetrySettings};
use crate::core::backoff;
use crate::core::dead_letter::DeadLetter;
use crate::core::metrics::catalogue::{
    OUTPUT_DEAD_LETTERS, OUTPUT_RECORDS, OUTPUT_RETRIES, OUTPUT_WRITE, PIPELINE_LATENCY,
};
use crate::core::metrics::{Counter, Histogram, registry};
use crate::core::record::{Batch, Record};
use crate::outputs::Output;

/// What an output task needs besides the output itself.
pub struct OutputDriver {
    /// The output's name.
    pub name: String,
    /// Batching by count and time.
    pub batch: BatchSettings,
    /// Retries of failed writes.
    pub retry: RetrySettings,
    /// Where refused records go.
    pub dead_letters: DeadLetterRoute,
    /// The shutdown deadlines.
    pub drain: Drain,
    /// Marks each batch taken from the queue, for the stall check.
    pub taken: Taken,
}

/// Drive `output` until its queue closes, then flush it; or until the
/// drain gives up.
pub async fn run(driver: OutputDriver, mut output: Box<dyn Output>, mut queue: mpsc::Receiver<Batch>) {
    let OutputDriver { name, batch, retry, dead_letters, drain, taken } = driver;
    let task = Task { stage: format!("output {name}"), retry, dead_letters, drain, metrics: OutputMetrics::new(&name) };
    let mut pending: Batch = Vec::new();
    let mut gathering_since: Option<Instant> = None;
    loop {
        let received = match gathering_since {
            // More is arriving: gather until the batch is full, the queue
            // runs dry, or `max_wait` has passed since the first record.
            Some(since) => tokio::select! {
                biased;
                () = task.drain.give_up.cancelled() => break,
                r = queue.recv() => r.inspect(|_| taken.mark()),
                () = tokio::time::sleep_until(since + batch.max_wait) => None,
            },
            None => tokio::select! {
                biased;
                () = task.drain.give_up.cancelled() => break,
                r = queue.recv() => match r {
                    Some(records) => {
                        taken.mark();
                        Some(records)
                    }
                    None => break,
                },
            },
        };
        if let Some(records) = received {
            gathering_since.get_or_insert_with(Instant::now);
            pending.extend(records);
            while pending.len() < batch.max_records {
                match queue.try_recv() {
                    Ok(more) => {
                        taken.mark();
                        pending.extend(more);
                    }
                    Err(_) => break,
                }
            }
        }
        let dry = queue.is_empty();
        let expired = gathering_since.is_some_and(|since| since.elapsed() >= batch.max_wait);
        while pending.len() >= batch.max_records {
            let rest = pending.split_off(batch.max_records);
            let full = std::mem::replace(&mut pending, rest);
            if let Err(held) = task.write(&mut *output, full).await {
                return task.give_up(held, pending, queue).await;
            }
        }
        if !pending.is_empty() && (dry || expired) {
            let due = std::mem::take(&mut pending);
            if let Err(held) = task.write(&mut *output, due).await {
                return task.give_up(held, pending, queue).await;
            }
        }
        if pending.is_empty() {
            gathering_since = None;
        }
    }
    if task.drain.give_up.is_cancelled() {
        return task.give_up(Vec::new(), pending, queue).await;
    }
    let rest = std::mem::take(&mut pending);
    if let Err(held) = task.write(&mut *output, rest).await {
        return task.give_up(held, Vec::new(), queue).await;
    }
    tokio::select! {
        flushed = output.flush() => if let Err(error) = flushed {
            tracing::error!(output = name, %error, "final flush failed");
        },
        () = task.drain.give_up.cancelled() => tracing::error!(output = name, "final flush abandoned at shutdown_timeout"),
    }
}

/// One output's writing, retrying and giving up.
struct Task {
    stage: String,
    retry: RetrySettings,
    dead_letters: DeadLetterRoute,
    drain: Drain,
    metrics: OutputMetrics,
}

/// The metrics of one output, bumped once per write attempt.
#[derive(Default)]
struct OutputMetrics {
    delivered: Counter,
    retries: Counter,
    /// Dead letters by reason: the output rejected them (its destination
    /// refused them, or it gave up on them itself), retries ran out, or
    /// shutdown_timeout did.
    rejected: Counter,
    exhausted: Counter,
    shutdown: Counter,
    write_time: Histogram,
    latency: Histogram,
}

impl OutputMetrics {
    fn new(output: &str) -> Self {
        let dead_letters = |reason| registry().counter(&OUTPUT_DEAD_LETTERS, &[output, reason]);
        OutputMetrics {
            delivered: registry().counter(&OUTPUT_RECORDS, &[output]),
            retries: registry().counter(&OUTPUT_RETRIES, &[output]),
            rejected: dead_letters("rejected"),
            exhausted: dead_letters("retries_exhausted"),
            shutdown: dead_letters("shutdown"),
            write_time: registry().histogram(&OUTPUT_WRITE, &[output]),
            latency: registry().histogram(&PIPELINE_LATENCY, &[output]),
        }
    }
}

/// Records an output still held when the drain gave up, and why.
struct Held {
    records: Batch,
    why: String,
}

impl Task {
    /// Write `batch` until every record is delivered or dead-lettered; `Err`
    /// with what is left when the drain gives up first.
    async fn write(&self, output: &mut dyn Output, mut batch: Batch) -> Result<(), Held> {
        let stage = self.stage.as_str();
        let mut attempt = 0u32;
        let mut last_failure = String::from("shutdown began before it was written");
        let metrics = &self.metrics;
        while !batch.is_empty() {
            attempt += 1;
            let oldest = batch.iter().filter_map(|r| r.arrival).min();
            let started = Instant::now();
            let written = tokio::select! {
                biased;
                () = self.drain.give_up.cancelled() => return Err(Held { records: batch, why: last_failure }),
                written = output.write(&batch) => written,
            };
            metrics.write_time.observe(started.elapsed());
            let (failed, reason): (Batch, String) = match written {
                Ok(report) => {
                    let total = batch.len();
                    let mut slots: Vec<Option<Record>> = batch.into_iter().map(Some).collect();
                    let refused: Vec<DeadLetter> = report
                        .rejected
                        .into_iter()
                        .filter_map(|(i, reason)| slots.get_mut(i)?.take().map(|r| DeadLetter::of(r, stage, reason)))
                        .collect();
                    let again: Batch = report.retry.iter().filter_map(|&i| slots.get_mut(i)?.take()).collect();
                    let delivered = total - refused.len() - again.len();
                    metrics.delivered.add(delivered as u64);
                    if let Some(oldest) = oldest.filter(|_| delivered > 0) {
                        metrics.latency.observe(oldest.elapsed());
                    }
                    metrics.rejected.add(refused.len() as u64);
                    self.dead_letters.send_refused(refused).await;
                    if again.is_empty() {
                        return Ok(());
                    }
                    let n = again.len();
                    (again, format!("{n} records to retry"))
                }
                Err(error) => (batch, error.to_string()),
            };
            batch = failed;
            if self.retry.max_attempts.is_some_and(|max| attempt >= max) {
                tracing::warn!(
                    stage,
                    attempts = attempt,
                    records = batch.len(),
                    reason,
                    "giving up; records sent to dead letter"
                );
                metrics.exhausted.add(batch.len() as u64);
                let letters = batch
                    .into_iter()
                    .map(|r| DeadLetter::of(r, stage, format!("gave up after {attempt} attempts: {reason}")))
                    .collect();
                self.dead_letters.send_refused(letters).await;
                return Ok(());
            }
            metrics.retries.add(1);
            let delay = backoff::jittered(attempt);
            tracing::warn!(stage, attempt, records = batch.len(), reason, ?delay, "write failed; retrying");
            last_failure = reason;
            tokio::select! {
                biased;
                () = self.drain.give_up.cancelled() => return Err(Held { records: batch, why: last_failure }),
                () = tokio::time::sleep(delay) => {}
            }
        }
        Ok(())
    }

    /// The drain gave up: everything this task holds (the batch being
    /// written, what it gathered, what is queued) goes to the dead-letter
    /// outputs if they have room now, else is abandoned.
    async fn give_up(&self, held: impl Into<Held>, pending: Batch, mut queue: mpsc::Receiver<Batch>) {
        let Held { mut records, why } = held.into();
        records.extend(pending);
        queue.close();
        while let Ok(batch) = queue.try_recv() {
            records.extend(batch);
        }
        if records.is_empty() {
            return;
        }
        let reason = format!("shutdown_timeout ran out while the output could not deliver: {why}");
        let total = records.len();
        let letters = records.into_iter().map(|r| DeadLetter::of(r, self.stage.as_str(), reason.as_str())).collect();
        let unsent = self.dead_letters.try_send(letters);
        self.metrics.shutdown.add((total - unsent.len()) as u64);
        self.drain.abandon(unsent, &self.stage, &reason);
    }
}

impl From<Vec<Record>> for Held {
    fn from(records: Vec<Record>) -> Self {
        Held { records, why: "shutdown began before it was written".into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ack::{AckToken, Delivery};
    use crate::core::tag_match::TagMatch;
    use crate::outputs::{OutputError, OutputErrorKind, WriteReport};

    /// Fails the first `failures` writes, then refuses record 1 and asks for
    /// record 2 to be retried once.
    struct Flaky {
        failures: u32,
        retried: bool,
        written: Vec<String>,
    }

    #[async_trait::async_trait]
    impl Output for Flaky {
        async fn write(&mut self, batch: &[Record]) -> Result<WriteReport, OutputError> {
            if self.failures > 0 {
                self.failures -= 1;
                return Err(OutputError::new(
                    "flaky",
                    OutputErrorKind::Io { what: "writing".into(), source: std::io::Error::other("down") },
                ));
            }
            let mut report = WriteReport::default();
            for (i, r) in batch.iter().enumerate() {
                match &*r.tag {
                    "refuse" => report.rejected.push((i, "mapping error".into())),
                    "retry" if !self.retried => {
                        self.retried = true;
                        report.retry.push(i);
                    }
                    tag => self.written.push(tag.to_string()),
                }
            }
            Ok(report)
        }
    }

    fn task(retry: RetrySettings, dead_letters: DeadLetterRoute, drain: Drain) -> Task {
        Task { stage: "output flaky".into(), retry, dead_letters, drain, metrics: OutputMetrics::default() }
    }

    fn taken(queue: &mpsc::Sender<Batch>) -> Taken {
        super::super::QueueWatch::new(std::time::Duration::from_secs(60), 4).output_queue("flaky", queue)
    }

    fn record(tag: &str, ack: Option<AckToken>) -> Record {
        Record { time: 0, tag: tag.into(), body: bytes::Bytes::from_static(b"{}"), origin: None, ack, arrival: None }
    }

    #[tokio::test]
    async fn failed_writes_are_retried_and_refused_records_dead_lettered() {
        let (dlq_tx, mut dlq_rx) = mpsc::channel(4);
        let route = DeadLetterRoute::new("dlq".into());
        route.set_outputs(&[(TagMatch::new(vec!["dlq".into()]).unwrap(), dlq_tx.clone())]);
        let (token, mut outcome) = AckToken::channel();
        let batch: Batch = ["ok", "refuse", "retry"]
            .into_iter()
            .map(|tag| Record {
                time: 0,
                tag: tag.into(),
                body: bytes::Bytes::from_static(b"{}"),
                origin: None,
                ack: Some(token.clone()),
                arrival: None,
            })
            .collect();
        drop(token);
        let mut flaky = Flaky { failures: 2, retried: false, written: Vec::new() };
        let task = task(RetrySettings { max_attempts: None }, route, Drain::default());
        assert!(task.write(&mut flaky, batch).await.is_ok());
        assert_eq!(flaky.written, ["ok", "retry"]);
        assert_eq!(task.metrics.retries.get(), 3, "two whole-batch failures and one retried record");
        assert_eq!(task.metrics.delivered.get(), 2);
        assert_eq!(task.metrics.rejected.get(), 1);
        assert_eq!(task.metrics.write_time.count(), 4, "one observation per write attempt");
        let dead = dlq_rx.try_recv().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&dead[0].body).unwrap();
        assert_eq!(body["reason"], "mapping error");
        assert_eq!(body["stage"], "output flaky");
        drop(dead);
        assert_eq!(outcome.try_recv().unwrap(), Delivery::Delivered, "delivered or dead-lettered: accounted for");
    }

    #[tokio::test]
    async fn bounded_retries_give_up_into_dead_letter() {
        let (dlq_tx, mut dlq_rx) = mpsc::channel(4);
        let route = DeadLetterRoute::new("dlq".into());
        route.set_outputs(&[(TagMatch::new(vec!["dlq".into()]).unwrap(), dlq_tx.clone())]);
        let mut flaky = Flaky { failures: u32::MAX, retried: false, written: Vec::new() };
        let batch = vec![Record {
            time: 0,
            tag: "ok".into(),
            body: bytes::Bytes::from_static(b"{}"),
            origin: None,
            ack: None,
            arrival: None,
        }];
        let task = task(RetrySettings { max_attempts: Some(2) }, route, Drain::default());
        assert!(task.write(&mut flaky, batch).await.is_ok());
        let dead = dlq_rx.try_recv().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&dead[0].body).unwrap();
        assert!(
            body["reason"].as_str().unwrap().starts_with("gave up after 2 attempts: output flaky: writing: down"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn at_give_up_held_records_go_to_dead_letter_with_the_last_failure() {
        let (dlq_tx, mut dlq_rx) = mpsc::channel(4);
        let route = DeadLetterRoute::new("dlq".into());
        route.set_outputs(&[(TagMatch::new(vec!["dlq".into()]).unwrap(), dlq_tx.clone())]);
        let drain = Drain::default();
        let (queue_tx, queue) = mpsc::channel(4);
        let driver = OutputDriver {
            name: "flaky".into(),
            batch: BatchSettings { max_records: 10, max_wait: std::time::Duration::from_millis(10) },
            retry: RetrySettings { max_attempts: None },
            dead_letters: route,
            drain: drain.clone(),
            taken: taken(&queue_tx),
        };
        let flaky = Flaky { failures: u32::MAX, retried: false, written: Vec::new() };
        let run = tokio::spawn(run(driver, Box::new(flaky), queue));
        queue_tx.send(vec![record("a", None)]).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drain.give_up.cancel();
        run.await.unwrap();
        let dead = dlq_rx.try_recv().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&dead[0].body).unwrap();
        let reason = body["reason"].as_str().unwrap();
        assert!(reason.starts_with("shutdown_timeout ran out while the output could not deliver: "), "{reason}");
        assert!(reason.contains("output flaky: writing: down"), "names the last failure: {reason}");
    }

    #[tokio::test]
    async fn at_give_up_without_a_dead_letter_output_records_are_abandoned_and_their_inputs_told() {
        let drain = Drain::default();
        let (queue_tx, queue) = mpsc::channel(4);
        let driver = OutputDriver {
            name: "flaky".into(),
            batch: BatchSettings { max_records: 1, max_wait: std::time::Duration::from_millis(10) },
            retry: RetrySettings { max_attempts: None },
            dead_letters: DeadLetterRoute::new("dlq".into()),
            drain: drain.clone(),
            taken: taken(&queue_tx),
        };
        let (token, mut outcome) = AckToken::channel();
        let flaky = Flaky { failures: u32::MAX, retried: false, written: Vec::new() };
        let run = tokio::spawn(run(driver, Box::new(flaky), queue));
        queue_tx.send(vec![record("a", Some(token.clone()))]).await.unwrap();
        queue_tx.send(vec![record("still queued", Some(token))]).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let before = drain.abandoned();
        drain.give_up.cancel();
        run.await.unwrap();
        assert!(drain.abandoned() >= before + 2, "the batch being retried and the queued one");
        assert_eq!(outcome.try_recv().unwrap(), Delivery::Failed);
    }

    #[tokio::test]
    async fn a_lone_record_is_written_at_once_not_after_max_wait() {
        let (queue_tx, queue) = mpsc::channel(4);
        let driver = OutputDriver {
            name: "flaky".into(),
            batch: BatchSettings { max_records: 1000, max_wait: std::time::Duration::from_secs(3600) },
            retry: RetrySettings { max_attempts: None },
            dead_letters: DeadLetterRoute::new("dlq".into()),
            drain: Drain::default(),
            taken: taken(&queue_tx),
        };
        let (token, outcome) = AckToken::channel();
        let flaky = Flaky { failures: 0, retried: false, written: Vec::new() };
        tokio::spawn(run(driver, Box::new(flaky), queue));
        queue_tx.send(vec![record("a", Some(token))]).await.unwrap();
        let delivered = tokio::time::timeout(std::time::Duration::from_secs(5), outcome).await;
        assert_eq!(delivered.expect("written without waiting for max_wait").unwrap(), Delivery::Delivered);
    }
}
