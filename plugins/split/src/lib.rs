//! `split`: turns one chunk record (a mobile app's batch of log statements)
//! into one record per statement. Configured as `type: split`; the schema is
//! in `config.rs`, splitting in `chunk.rs`, time parsing in `time.rs`. This
//! file only hands the pure core the host clock and hands the host its
//! counters and log lines, so the pure modules test natively.
//!
//! Every emitted record names its chunk as `parent`, so the chunk is
//! acknowledged once all its statements are delivered. A chunk with no
//! statements is neither a parent nor rejected, so it counts as consumed.
//!
//! `on_missing_time: dead_letter` rejects the whole chunk, with a reason
//! naming the statement (`statement 3: time "abc" is not rfc3339: …`): WIT
//! `rejected` refers to an input event, and a statement is not one. Emitting
//! the good statements while dead-lettering the chunk would deliver them
//! twice on a replay, so none of a rejected chunk is emitted.
//!
//! Counters, added once per `process` call: `statements` (emitted),
//! `chunks` (seen, rejected or not), `rejected_chunks`, `time_missing`
//! (statements that took the arrival time), and `continuation_lines` (lines
//! joined to the statement before them by the `multiline` rule).

// The SDK holds the bindings' unsafe code; a plugin needs none.
#![forbid(unsafe_code)]

pub mod chunk;
pub mod config;
#[cfg(not(target_family = "wasm"))]
pub mod fuzz;
pub mod time;

use weir_plugin_sdk::host::{self, Level};
use weir_plugin_sdk::{BatchResult, ConfigError, Emitted, Event, Filter, Rejected, counters};

use crate::chunk::{Chunk, split_batch};
use crate::config::SplitFilterConfig;

/// The `split` filter: its config is all it keeps. Stateless between calls,
/// as each chunk is split on its own, so `tick`, `snapshot` and `restore`
/// are the trait's defaults.
pub struct SplitFilter {
    config: SplitFilterConfig,
}

impl Filter for SplitFilter {
    fn configure(config: &str) -> Result<Self, ConfigError> {
        Ok(Self { config: SplitFilterConfig::from_json(config)? })
    }

    fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
        let chunks = events.iter().map(|e| Chunk { time: e.time, tag: &e.tag, body: &e.body });
        // One clock read per batch: statements of a batch arrived together.
        let outcome = split_batch(&self.config, chunks, host::now());

        counters::flush(outcome.counts.by_name(), host::counter_add);
        if let Some(problem) = outcome.first_time_problem {
            host::log(
                Level::Debug,
                &format!("{} statements took the arrival time; first: {problem}", outcome.counts.time_missing),
            );
        }

        Ok(BatchResult {
            emitted: outcome
                .emitted
                .into_iter()
                .map(|s| Emitted { parent: Some(s.parent), event: Event { time: s.time, tag: s.tag, body: s.body } })
                .collect(),
            rejected: outcome.rejected.into_iter().map(|(index, reason)| Rejected { index, reason }).collect(),
        })
    }
}

weir_plugin_sdk::export_filter!(SplitFilter);
