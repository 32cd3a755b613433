//! What the host offers a filter (WIT interface `host`): its log, its clock
//! and its counters. Natively, as in unit tests, calling these panics: keep
//! them in the [`Filter`](crate::Filter) impl and hand the pure core plain
//! values (the time, counter deltas) instead.
//!
//! In a Fluent Bit build (feature `fluent-bit`) there is no Weir host:
//! `log` writes to stderr (Fluent Bit's, where WASI gives one), counters
//! are dropped, and `now` is the record's time.

#[cfg(not(feature = "fluent-bit"))]
pub use crate::wit::weir::filter::host::{Level, counter_add, log, now};

#[cfg(feature = "fluent-bit")]
pub use crate::wit::weir::filter::host::Level;

#[cfg(feature = "fluent-bit")]
pub use crate::fluent_bit::now;

/// Fluent Bit's ABI has no log: a line on stderr.
#[cfg(feature = "fluent-bit")]
pub fn log(level: Level, message: &str) {
    eprintln!("[weir filter] {level:?}: {message}");
}

/// Fluent Bit's ABI has no metrics: counters are dropped.
#[cfg(feature = "fluent-bit")]
pub fn counter_add(name: &str, delta: u64) {
    let _ = (name, delta);
}
