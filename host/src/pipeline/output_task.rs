//! The task that drives one output: batches records by count and time,
//! writes them, retries what failed with exponential backoff and jitter,
//! and dead-letters what the destination refused. While it retries it reads
//! nothing more, so its bounded queue fills and the chain waits: that is the
//! backpressure a slow output exerts.

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::dead_letters::DeadLetterRoute;
use crate::config::{BatchSettings, RetrySettings};
use crate::core::backoff;
use crate::core::dead_letter::DeadLetter;
use crate::core::metrics::{Counter, registry};
use crate::core::record::{Batch, Record};
use crate::outputs::Output;

/// Drive `output` until its queue closes, then flush it.
pub async fn run(
    name: String,
    mut output: Box<dyn Output>,
    mut queue: mpsc::Receiver<Batch>,
    batch: BatchSettings,
    retry: RetrySettings,
    dead_letters: DeadLetterRoute,
) {
    let labels = [("output", name.as_str())];
    let counters = OutputCounters {
        delivered: registry().counter("weir_output_records_total", "Records an output delivered.", &labels),
        retries: registry().counter("weir_output_retries_total", "Write attempts an output retried.", &labels),
        dead_letters: registry().counter(
            "weir_output_dead_letters_total",
            "Records an output's destination refused, sent to dead letter.",
            &labels,
        ),
    };
    let stage = format!("output {name}");
    let mut pending: Batch = Vec::new();
    let mut flush_at: Option<Instant> = None;
    loop {
        let received = match flush_at {
            Some(at) => tokio::select! {
                r = queue.recv() => Some(r),
                () = tokio::time::sleep_until(at) => None,
            },
            None => Some(queue.recv().await),
        };
        match received {
            Some(Some(records)) => {
                if pending.is_empty() {
                    flush_at = Some(Instant::now() + batch.max_wait);
                }
                pending.extend(records);
                while pending.len() >= batch.max_records {
                    let rest = pending.split_off(batch.max_records);
                    let full = std::mem::replace(&mut pending, rest);
                    write(&mut *output, full, &stage, retry, &dead_letters, &counters).await;
                }
                if pending.is_empty() {
                    flush_at = None;
                }
            }
            Some(None) => break,
            None => {
                flush_at = None;
                let due = std::mem::take(&mut pending);
                write(&mut *output, due, &stage, retry, &dead_letters, &counters).await;
            }
        }
    }
    let rest = std::mem::take(&mut pending);
    write(&mut *output, rest, &stage, retry, &dead_letters, &counters).await;
    if let Err(error) = output.flush().await {
        tracing::error!(output = name, %error, "final flush failed");
    }
}

struct OutputCounters {
    delivered: Counter,
    retries: Counter,
    dead_letters: Counter,
}

async fn write(
    output: &mut dyn Output,
    mut batch: Batch,
    stage: &str,
    retry: RetrySettings,
    dead_letters: &DeadLetterRoute,
    counters: &OutputCounters,
) {
    let mut attempt = 0u32;
    while !batch.is_empty() {
        attempt += 1;
        let (failed, reason): (Batch, String) = match output.write(&batch).await {
            Ok(report) => {
                let total = batch.len();
                let mut slots: Vec<Option<Record>> = batch.into_iter().map(Some).collect();
                let refused: Vec<DeadLetter> = report
                    .rejected
                    .into_iter()
                    .filter_map(|(i, reason)| slots.get_mut(i)?.take().map(|r| DeadLetter::of(r, stage, reason)))
                    .collect();
                let again: Batch = report.retry.iter().filter_map(|&i| slots.get_mut(i)?.take()).collect();
                counters.delivered.add((total - refused.len() - again.len()) as u64);
                counters.dead_letters.add(refused.len() as u64);
                dead_letters.send_refused(refused).await;
                if again.is_empty() {
                    return;
                }
                let n = again.len();
                (again, format!("{n} records to retry"))
            }
            Err(error) => (batch, error.to_string()),
        };
        batch = failed;
        if retry.max_attempts.is_some_and(|max| attempt >= max) {
            tracing::warn!(
                stage,
                attempts = attempt,
                records = batch.len(),
                reason,
                "giving up; records sent to dead letter"
            );
            counters.dead_letters.add(batch.len() as u64);
            let letters = batch
                .into_iter()
                .map(|r| DeadLetter::of(r, stage, format!("gave up after {attempt} attempts: {reason}")))
                .collect();
            dead_letters.send_refused(letters).await;
            return;
        }
        counters.retries.add(1);
        let delay = backoff::jittered(attempt);
        tracing::warn!(stage, attempt, records = batch.len(), reason, ?delay, "write failed; retrying");
        tokio::time::sleep(delay).await;
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
            })
            .collect();
        drop(token);
        let mut flaky = Flaky { failures: 2, retried: false, written: Vec::new() };
        let counters = OutputCounters {
            delivered: Counter::default(),
            retries: Counter::default(),
            dead_letters: Counter::default(),
        };
        write(&mut flaky, batch, "output flaky", RetrySettings { max_attempts: None }, &route, &counters).await;
        assert_eq!(flaky.written, ["ok", "retry"]);
        assert_eq!(counters.retries.get(), 3, "two whole-batch failures and one retried record");
        assert_eq!(counters.delivered.get(), 2);
        assert_eq!(counters.dead_letters.get(), 1);
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
        let counters = OutputCounters {
            delivered: Counter::default(),
            retries: Counter::default(),
            dead_letters: Counter::default(),
        };
        let batch =
            vec![Record { time: 0, tag: "ok".into(), body: bytes::Bytes::from_static(b"{}"), origin: None, ack: None }];
        write(&mut flaky, batch, "output flaky", RetrySettings { max_attempts: Some(2) }, &route, &counters).await;
        let dead = dlq_rx.try_recv().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&dead[0].body).unwrap();
        assert!(
            body["reason"].as_str().unwrap().starts_with("gave up after 2 attempts: output flaky: writing: down"),
            "{body}"
        );
    }
}
