//! The bounded queues between stages, watched from outside: their depth,
//! served as gauges read at each scrape, and stalls, which `/health`
//! reports and the log announces.
//!
//! A queue has stalled when it is full and its consumer (the filter chain,
//! or an output task) has taken nothing from it for `pipeline.stall_timeout`:
//! records are waiting and none move, e.g. behind an output whose
//! destination accepts connections but never answers, or one retrying
//! forever. A busy pipeline is not stalled: its consumers keep taking.
//! Consumers mark each take once per batch ([`Taken::mark`]); the check
//! itself runs only when asked (a scrape, a `/health` call, the log check).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::metrics::catalogue::{CHAIN_QUEUE, OUTPUT_QUEUE, PIPELINE_STALLED, QUEUE_CAPACITY};
use crate::core::metrics::registry;
use crate::core::record::Batch;

/// How often the log check looks for stalls that began or ended.
const LOG_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The queues of one pipeline, and the stall timeout. Cheap to clone.
#[derive(Clone)]
pub struct QueueWatch(Arc<Inner>);

struct Inner {
    /// Take times are milliseconds since this instant.
    epoch: Instant,
    stall_timeout_ms: AtomicU64,
    queues: Mutex<Vec<Watched>>,
}

struct Watched {
    /// `input queue` or `output NAME`, as stages are named in dead letters.
    name: String,
    /// Weak, so watching never keeps a queue open at shutdown.
    sender: mpsc::WeakSender<Batch>,
    taken: Arc<AtomicU64>,
}

/// A queue found stalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    /// `input queue` or `output NAME`.
    pub queue: String,
    /// Its capacity in batches, all taken.
    pub capacity: usize,
    /// Since its consumer last took a batch.
    pub idle: Duration,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Stall { queue, capacity, idle } = self;
        write!(f, "{queue}: full ({capacity} of {capacity} batches), nothing taken for {}s", idle.as_secs())
    }
}

/// The consumer's side: marks that it took a batch.
#[derive(Clone)]
pub struct Taken {
    epoch: Instant,
    at: Arc<AtomicU64>,
}

impl Taken {
    /// The consumer took a batch now.
    pub fn mark(&self) {
        self.at.store(millis_since(self.epoch), Ordering::Relaxed);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl QueueWatch {
    /// A watch with no queues yet; `capacity` is every queue's size, served
    /// as `weir_queue_capacity_batches`.
    pub fn new(stall_timeout: Duration, capacity: usize) -> Self {
        let watch = QueueWatch(Arc::new(Inner {
            epoch: Instant::now(),
            stall_timeout_ms: AtomicU64::new(0),
            queues: Mutex::new(Vec::new()),
        }));
        watch.set_stall_timeout(stall_timeout);
        registry().gauge(&QUEUE_CAPACITY, &[]).set(i64::try_from(capacity).unwrap_or(i64::MAX));
        let stalled = watch.clone();
        registry().gauge_fn(&PIPELINE_STALLED, &[], move || i64::from(!stalled.stalls().is_empty()));
        watch
    }

    /// Apply a reloaded `pipeline.stall_timeout`.
    pub fn set_stall_timeout(&self, timeout: Duration) {
        self.0.stall_timeout_ms.store(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Watch the queue in front of the filter chain.
    pub fn chain_queue(&self, sender: &mpsc::Sender<Batch>) -> Taken {
        let depth = self.clone();
        registry().gauge_fn(&CHAIN_QUEUE, &[], move || depth.depth("input queue"));
        self.watch("input queue".into(), sender)
    }

    /// Watch the queue of output `name`. While a reload replaces the output,
    /// its old queue (draining) and its new one are both watched, and the
    /// gauge counts both.
    pub fn output_queue(&self, name: &str, sender: &mpsc::Sender<Batch>) -> Taken {
        let queue = format!("output {name}");
        let (depth, of) = (self.clone(), queue.clone());
        registry().gauge_fn(&OUTPUT_QUEUE, &[name], move || depth.depth(&of));
        self.watch(queue, sender)
    }

    fn watch(&self, name: String, sender: &mpsc::Sender<Batch>) -> Taken {
        let taken = Taken { epoch: self.0.epoch, at: Arc::default() };
        taken.mark();
        let mut queues = self.0.queues.lock().unwrap_or_else(|p| p.into_inner());
        // Queues whose every sender has gone have drained or will: forget them.
        queues.retain(|q| q.sender.strong_count() > 0);
        queues.push(Watched { name, sender: sender.downgrade(), taken: taken.at.clone() });
        taken
    }

    /// Batches waiting in the open queues called `name`.
    fn depth(&self, name: &str) -> i64 {
        let queues = self.0.queues.lock().unwrap_or_else(|p| p.into_inner());
        let depth: usize = queues
            .iter()
            .filter(|q| q.name == name)
            .filter_map(|q| q.sender.upgrade())
            .map(|s| s.max_capacity() - s.capacity())
            .sum();
        i64::try_from(depth).unwrap_or(i64::MAX)
    }

    /// Each stalled queue; empty when none is.
    pub fn stalls(&self) -> Vec<Stall> {
        let timeout = self.0.stall_timeout_ms.load(Ordering::Relaxed);
        let now = millis_since(self.0.epoch);
        let queues = self.0.queues.lock().unwrap_or_else(|p| p.into_inner());
        queues
            .iter()
            .filter_map(|q| {
                let sender = q.sender.upgrade()?;
                let capacity = sender.max_capacity();
                let idle = now.saturating_sub(q.taken.load(Ordering::Relaxed));
                (capacity - sender.capacity() >= capacity && idle >= timeout).then(|| Stall {
                    queue: q.name.clone(),
                    capacity,
                    idle: Duration::from_millis(idle),
                })
            })
            .collect()
    }

    /// Log, until `stop` fires, each stall as it begins (an operator must
    /// act) and when it ends.
    pub async fn log_stalls(self, stop: CancellationToken) {
        let mut reported: Vec<String> = Vec::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(LOG_CHECK_INTERVAL) => {}
            }
            let stalled: Vec<String> = self.stalls().into_iter().map(|s| s.queue).collect();
            for queue in stalled.iter().filter(|q| !reported.contains(q)) {
                let timeout = Duration::from_millis(self.0.stall_timeout_ms.load(Ordering::Relaxed));
                tracing::error!(
                    queue,
                    ?timeout,
                    "pipeline stalled: the queue is full and nothing was taken from it for stall_timeout; /health answers 503"
                );
            }
            for queue in reported.iter().filter(|q| !stalled.contains(q)) {
                tracing::info!(queue, "stall ended: the queue is moving again");
            }
            reported = stalled;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_nobody_takes_from_stalls_after_the_timeout() {
        let watch = QueueWatch::new(Duration::from_millis(50), 1);
        let (tx, mut rx) = mpsc::channel::<Batch>(1);
        let taken = watch.output_queue("es", &tx);
        assert!(watch.stalls().is_empty(), "empty: not stalled");
        tx.send(Vec::new()).await.unwrap();
        assert!(watch.stalls().is_empty(), "full, but only just");
        tokio::time::sleep(Duration::from_millis(80)).await;
        let stalls = watch.stalls();
        assert_eq!(stalls.len(), 1, "{stalls:?}");
        assert_eq!(stalls[0].to_string(), "output es: full (1 of 1 batches), nothing taken for 0s");

        rx.recv().await.unwrap();
        taken.mark();
        tx.send(Vec::new()).await.unwrap();
        assert!(watch.stalls().is_empty(), "taken from just now: moving");
    }

    #[tokio::test]
    async fn a_queue_that_is_not_full_never_stalls() {
        let watch = QueueWatch::new(Duration::ZERO, 2);
        let (tx, _rx) = mpsc::channel::<Batch>(2);
        let _taken = watch.chain_queue(&tx);
        tx.send(Vec::new()).await.unwrap();
        assert!(watch.stalls().is_empty());
        tx.send(Vec::new()).await.unwrap();
        assert_eq!(watch.stalls().len(), 1, "full, with a zero timeout");
    }
}
