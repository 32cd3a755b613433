//! What the host offers a filter (WIT interface `host`): its log, its clock
//! and its counters. Natively, as in unit tests, calling these panics: keep
//! them in the [`Filter`](crate::Filter) impl and hand the pure core plain
//! values (the time, counter deltas) instead.

pub use crate::wit::weir::filter::host::{Level, counter_add, log, now};
