//! Delivery acknowledgements flowing back to inputs.
//!
//! An input that must know when its data is safe (an HTTP request in
//! `delivered` mode, a Kafka message before its offset is committed) creates
//! one [`AckToken`] per accepted unit. Every record derived from that unit
//! holds a clone. When the last clone is dropped the input is told the
//! outcome: [`Delivery::Delivered`] unless some holder called
//! [`AckToken::fail`] first. Dropping is the acknowledgement, so a record
//! cannot be forgotten without its input hearing of it.
//!
//! Dead-lettered records count as delivered once the dead-letter output
//! delivers them: the record is accounted for, with its reason.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The outcome reported to an input when all derived records are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Every derived record reached its outputs, was consumed by a filter or
    /// was dead-lettered.
    Delivered,
    /// At least one derived record could not be delivered nor dead-lettered
    /// (e.g. the process is shutting down with it still queued).
    Failed,
}

type Callback = Box<dyn FnOnce(Delivery) + Send>;

struct AckState {
    failed: AtomicBool,
    on_done: Mutex<Option<Callback>>,
}

impl Drop for AckState {
    fn drop(&mut self) {
        let outcome = if self.failed.load(Ordering::Acquire) { Delivery::Failed } else { Delivery::Delivered };
        let callback = self.on_done.get_mut().map(Option::take).unwrap_or_else(|poisoned| poisoned.into_inner().take());
        if let Some(callback) = callback {
            callback(outcome);
        }
    }
}

/// A shared acknowledgement; see the module docs.
#[derive(Clone)]
pub struct AckToken(Arc<AckState>);

impl AckToken {
    /// A token that calls `on_done` once, when the last clone is dropped.
    pub fn new(on_done: impl FnOnce(Delivery) + Send + 'static) -> Self {
        AckToken(Arc::new(AckState { failed: AtomicBool::new(false), on_done: Mutex::new(Some(Box::new(on_done))) }))
    }

    /// A token whose outcome arrives on the returned receiver.
    pub fn channel() -> (Self, tokio::sync::oneshot::Receiver<Delivery>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (
            AckToken::new(move |outcome| {
                let _ = tx.send(outcome);
            }),
            rx,
        )
    }

    /// Mark the whole unit as not delivered.
    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::Release);
    }
}

impl std::fmt::Debug for AckToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckToken").field("holders", &Arc::strong_count(&self.0)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_delivered_when_the_last_clone_drops() {
        let (token, mut rx) = AckToken::channel();
        let copies: Vec<_> = (0..3).map(|_| token.clone()).collect();
        drop(token);
        assert!(rx.try_recv().is_err(), "no outcome while clones remain");
        drop(copies);
        assert_eq!(rx.try_recv().unwrap(), Delivery::Delivered);
    }

    #[test]
    fn one_failure_fails_the_unit() {
        let (token, mut rx) = AckToken::channel();
        let other = token.clone();
        other.fail();
        drop(other);
        drop(token);
        assert_eq!(rx.try_recv().unwrap(), Delivery::Failed);
    }
}
