//! Routing to outputs: every record goes to each output whose `match`
//! selects its tag (a clone per extra output: bodies are shared bytes);
//! records no output selects become dead letters. Queues are bounded, so a
//! full output makes the chain wait, and the inputs behind it, until the
//! drain's abort deadline at shutdown ([`Drain`]).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::console::taps::Taps;
use super::dead_letters::log_lost_dead_letter;
use super::drain::Drain;
use crate::core::dead_letter::DeadLetter;
use crate::core::metrics::catalogue::RECORDS_UNROUTED;
use crate::core::metrics::{Counter, registry};
use crate::core::record::Batch;
use crate::core::tag_match::TagMatch;

/// Sends records to the outputs whose globs match their tags.
#[derive(Clone)]
pub struct Router {
    outputs: Vec<RouteTarget>,
    dead_letter_tag: Arc<str>,
    unrouted: Counter,
    drain: Drain,
    /// For waiting on a full queue from a chain worker's thread.
    runtime: tokio::runtime::Handle,
    taps: Option<Arc<Taps>>,
}

#[derive(Clone)]
struct RouteTarget {
    matches: TagMatch,
    sender: mpsc::Sender<Batch>,
}

impl Router {
    /// A router over `(globs, queue)` pairs. Call it inside the runtime whose
    /// tasks drain the queues.
    pub fn new(outputs: Vec<(TagMatch, mpsc::Sender<Batch>)>, dead_letter_tag: Arc<str>, drain: Drain) -> Self {
        Router {
            drain,
            runtime: tokio::runtime::Handle::current(),
            outputs: outputs.into_iter().map(|(matches, sender)| RouteTarget { matches, sender }).collect(),
            dead_letter_tag,
            unrouted: registry().counter(&RECORDS_UNROUTED, &[]),
            taps: None,
        }
    }

    /// Show the console the dead letters that pass.
    pub fn with_taps(mut self, taps: Option<Arc<Taps>>) -> Self {
        self.taps = taps;
        self
    }

    /// Replace the outputs (a reload). Queues no longer listed close once
    /// their other holders let go, and their tasks drain and stop.
    pub fn set_routes(&mut self, outputs: Vec<(TagMatch, mpsc::Sender<Batch>)>) {
        self.outputs = outputs.into_iter().map(|(matches, sender)| RouteTarget { matches, sender }).collect();
    }

    /// The deadlines of a drain at shutdown.
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// The tag of dead letters.
    pub fn dead_letter_tag(&self) -> &Arc<str> {
        &self.dead_letter_tag
    }

    /// Route a batch, waiting (blocking the thread) while an output is full,
    /// until the drain aborts; then what is left is abandoned. Records no
    /// output matches become dead letters; dead letters no output matches
    /// are logged, as there is nowhere else to keep them. Call it outside
    /// the runtime (a chain worker's thread).
    pub fn route_blocking(&self, records: Batch) {
        if let Some(taps) = &self.taps {
            taps.dead_letters(records.iter().filter(|r| r.tag == self.dead_letter_tag));
            taps.routed(&records, &self.dead_letter_tag);
        }
        let mut per_output: Vec<Batch> = vec![Vec::new(); self.outputs.len()];
        let mut unrouted = Vec::new();
        for record in records {
            let mut targets = self.outputs.iter().enumerate().filter(|(_, o)| o.matches.matches(&record.tag));
            let Some((first, _)) = targets.next() else {
                unrouted.push(record);
                continue;
            };
            for (i, _) in targets {
                per_output[i].push(record.clone());
            }
            per_output[first].push(record);
        }
        for (batch, output) in per_output.into_iter().zip(&self.outputs) {
            if batch.is_empty() {
                continue;
            }
            // Wait for room without handing the batch over, so that on abort
            // it is still here to be abandoned with its acks failed.
            let permit = self.runtime.block_on(async {
                tokio::select! {
                    biased;
                    permit = output.sender.reserve() => Some(permit),
                    () = self.drain.abort.cancelled() => None,
                }
            });
            match permit {
                Some(Ok(permit)) => permit.send(batch),
                // A closed queue means that output has stopped at shutdown.
                Some(Err(_)) => fail_all(batch, "output stopped before the record reached it"),
                None => self.drain.abandon(batch, "routing", "shutdown_timeout ran out while an output was full"),
            }
        }
        if unrouted.is_empty() {
            return;
        }
        self.unrouted.add(unrouted.len() as u64);
        let mut letters = Vec::new();
        for record in unrouted {
            if record.tag == self.dead_letter_tag {
                log_lost_dead_letter(&record, "routing", "no output matches the dead-letter tag");
            } else {
                let reason = format!("no output matches tag {:?}", &*record.tag);
                letters.push(DeadLetter::of(record, "routing", reason).into_record(&self.dead_letter_tag));
            }
        }
        if !letters.is_empty() {
            self.route_blocking(letters);
        }
    }
}

fn fail_all(batch: Batch, why: &str) {
    tracing::warn!(records = batch.len(), why, "records not delivered");
    for record in &batch {
        if let Some(ack) = &record.ack {
            ack.fail();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::record::Record;

    fn record(tag: &str) -> Record {
        Record {
            time: 0,
            tag: tag.into(),
            body: bytes::Bytes::from_static(b"{}"),
            origin: None,
            ack: None,
            arrival: None,
        }
    }

    fn all() -> TagMatch {
        TagMatch::new(vec!["*".into()]).unwrap()
    }

    /// A runtime for the router's waits; keep it alive while routing.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn routing_waits_while_an_output_queue_is_full() {
        let rt = runtime();
        let _in_runtime = rt.enter();
        let (tx, mut rx) = mpsc::channel(1);
        let router = Router::new(vec![(all(), tx)], "dlq".into(), Drain::default());
        router.route_blocking(vec![record("a")]);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            router.route_blocking(vec![record("b")]);
            done_tx.send(()).unwrap();
        });
        assert!(
            done_rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "a full queue must block the chain (backpressure), not grow"
        );
        assert_eq!(&*rx.blocking_recv().unwrap()[0].tag, "a");
        done_rx.recv_timeout(Duration::from_secs(5)).expect("routing resumes once there is room");
        assert_eq!(&*rx.blocking_recv().unwrap()[0].tag, "b");
        sender.join().unwrap();
    }

    #[test]
    fn a_record_goes_to_every_matching_output_and_unmatched_ones_to_dead_letter() {
        let rt = runtime();
        let _in_runtime = rt.enter();
        let (tx_a, mut rx_a) = mpsc::channel(4);
        let (tx_dlq, mut rx_dlq) = mpsc::channel(4);
        let router = Router::new(
            vec![
                (TagMatch::new(vec!["app.*".into()]).unwrap(), tx_a),
                (TagMatch::new(vec!["app.x".into(), "dlq".into()]).unwrap(), tx_dlq),
            ],
            "dlq".into(),
            Drain::default(),
        );
        router.route_blocking(vec![record("app.x"), record("app.y"), record("other")]);
        let a: Vec<_> = rx_a.try_recv().unwrap().into_iter().map(|r| r.tag).collect();
        assert_eq!(a, [Arc::from("app.x"), Arc::from("app.y")]);
        let second: Vec<_> = rx_dlq.try_recv().unwrap().into_iter().map(|r| r.tag).collect();
        assert_eq!(second, [Arc::from("app.x")]);
        let dead = rx_dlq.try_recv().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&dead[0].body).unwrap();
        assert_eq!(body["reason"], "no output matches tag \"other\"");
    }

    #[test]
    fn a_dropped_record_acknowledges_its_input_once_every_copy_is_delivered() {
        let rt = runtime();
        let _in_runtime = rt.enter();
        let (token, mut outcome) = crate::core::ack::AckToken::channel();
        let (tx_a, mut rx_a) = mpsc::channel(4);
        let (tx_b, mut rx_b) = mpsc::channel(4);
        let router = Router::new(vec![(all(), tx_a), (all(), tx_b)], "dlq".into(), Drain::default());
        let mut r = record("t");
        r.ack = Some(token);
        router.route_blocking(vec![r]);
        drop(rx_a.try_recv().unwrap());
        assert!(outcome.try_recv().is_err(), "one output still holds a copy");
        drop(rx_b.try_recv().unwrap());
        assert_eq!(outcome.try_recv().unwrap(), crate::core::ack::Delivery::Delivered);
    }

    #[test]
    fn at_the_drain_abort_a_full_output_no_longer_holds_the_chain() {
        let rt = runtime();
        let _in_runtime = rt.enter();
        let drain = Drain::default();
        let (tx, _rx) = mpsc::channel(1);
        let router = Router::new(vec![(all(), tx)], "dlq".into(), drain.clone());
        router.route_blocking(vec![record("fills the queue")]);
        let (token, mut outcome) = crate::core::ack::AckToken::channel();
        let mut r = record("b");
        r.ack = Some(token);
        let abort = drain.abort.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            abort.cancel();
        });
        router.route_blocking(vec![r]);
        stopper.join().unwrap();
        assert_eq!(
            outcome.try_recv().unwrap(),
            crate::core::ack::Delivery::Failed,
            "an abandoned record's input hears it failed"
        );
    }
}
