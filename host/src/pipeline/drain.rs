//! The end of a drain: a shutdown that ends within `shutdown_timeout`,
//! whatever the outputs do.
//!
//! After SIGTERM the inputs stop, the chain finishes what is queued, filter
//! state is saved, and the outputs deliver what they hold. Two deadlines
//! bound it, so a down output cannot hold the process until SIGKILL (which
//! would lose the filter state too):
//! - [`Drain::abort`]: the chain stops waiting on full output queues (at
//!   80% of the timeout, or at once on a second signal); what it still held
//!   is abandoned, and the state is saved straight after;
//! - [`Drain::give_up`]: outputs stop retrying (at the timeout); what they
//!   still hold goes to the dead-letter outputs when they have room, else is
//!   abandoned.
//!
//! An abandoned record has its acknowledgement failed, so its input knows
//! (a Kafka offset is not committed and the message is replayed; an HTTP
//! client still waiting gets a 503), and it is counted in
//! `weir_records_dropped_total{reason="shutdown"}` and logged with the
//! reason.
//! `weir run` then exits 1: the drain was incomplete.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::core::metrics::catalogue::RECORDS_DROPPED;
use crate::core::metrics::{Counter, registry};
use crate::core::record::Record;

/// Share of `shutdown_timeout` the chain may spend waiting on outputs
/// before it gives up routing and saves filter state; outputs get the rest.
const CHAIN_SHARE: f64 = 0.8;

/// The deadlines of one drain, shared by the chain and the output tasks.
#[derive(Clone)]
pub struct Drain {
    /// Fires when the chain must stop waiting on outputs.
    pub abort: CancellationToken,
    /// Fires when outputs must stop retrying and give up what they hold.
    pub give_up: CancellationToken,
    /// This drain's total, for the exit status; the metric is by stage.
    abandoned: Counter,
}

impl Default for Drain {
    fn default() -> Self {
        Drain { abort: CancellationToken::new(), give_up: CancellationToken::new(), abandoned: Counter::default() }
    }
}

impl Drain {
    /// Start the clock: `abort` fires at [`CHAIN_SHARE`] of `timeout` and
    /// `give_up` at `timeout`, both at once when `hurry` fires (a second
    /// signal).
    pub fn start(&self, timeout: Duration, hurry: CancellationToken) {
        let drain = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(timeout.mul_f64(CHAIN_SHARE)) => {}
                () = hurry.cancelled() => {}
            }
            drain.abort.cancel();
            tokio::select! {
                () = tokio::time::sleep(timeout.mul_f64(1.0 - CHAIN_SHARE)) => {}
                () = hurry.cancelled() => {}
            }
            drain.give_up.cancel();
        });
    }

    /// Give up `records` held at `stage` (`routing`, `input queue`, `output
    /// es`): fail their acknowledgements, count and log them.
    pub fn abandon(&self, records: impl IntoIterator<Item = Record>, stage: &str, why: &str) {
        let mut n = 0u64;
        for record in records {
            if let Some(ack) = &record.ack {
                ack.fail();
            }
            n += 1;
        }
        if n > 0 {
            self.abandoned.add(n);
            registry().counter(&RECORDS_DROPPED, &[stage, "shutdown"]).add(n);
            tracing::error!(stage, records = n, why, "records abandoned at shutdown; their inputs were told");
        }
    }

    /// How many records this drain abandoned.
    pub fn abandoned(&self) -> u64 {
        self.abandoned.get()
    }
}
