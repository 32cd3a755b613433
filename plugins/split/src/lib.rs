//! `split`: turns one chunk record (a mobile app's batch of log statements)
//! into one record per statement. Configured as `type: split`; the schema is
//! in `config.rs`, splitting in `chunk.rs`, time parsing in `time.rs`. This
//! file is only the WIT glue: it reads the host clock and adds the counters,
//! which the pure modules never touch so they test natively.
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
//! `chunks` (seen, rejected or not), `rejected_chunks`, and `time_missing`
//! (statements that took the arrival time).

pub mod chunk;
pub mod config;
pub mod time;

use weir_plugin_sdk::{InstanceState, counters};

use crate::chunk::{Chunk, split_batch};
use crate::config::SplitFilterConfig;

wit_bindgen::generate!({ path: "../../wit", world: "filter" });

use exports::weir::filter::plugin::Guest;
use weir::filter::host;
use weir::filter::types::{BatchResult, ConfigError, Emitted, Event, Rejected, Timestamp};

/// The config of this instance, set by `configure`.
static CONFIG: InstanceState<SplitFilterConfig> = InstanceState::new();

/// The `split` filter. Only the wasm build exports it (see `export!` below).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct SplitFilter;

impl Guest for SplitFilter {
    fn configure(config: String) -> Result<(), ConfigError> {
        let parsed = SplitFilterConfig::from_json(&config)
            .map_err(|e| e.into_wit(|field, message| ConfigError { field, message }))?;
        CONFIG.set(parsed);
        Ok(())
    }

    fn process(events: Vec<Event>) -> Result<BatchResult, String> {
        let chunks = events.iter().map(|e| Chunk { time: e.time, tag: &e.tag, body: &e.body });
        // One clock read per batch: statements of a batch arrived together.
        let outcome =
            CONFIG.with(|config| split_batch(config, chunks, host::now())).ok_or("process called before configure")?;

        counters::flush(outcome.counts.by_name(), host::counter_add);
        if let Some(problem) = outcome.first_time_problem {
            host::log(
                host::Level::Debug,
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

    // Stateless: each chunk is split on its own.
    weir_plugin_sdk::stateless!();
}

// Native builds (for `cargo test`) skip the export: the export symbols are
// named like `weir:filter/plugin@0.1.0#process`, which a native cdylib's
// linker version script cannot express.
#[cfg(target_arch = "wasm32")]
export!(SplitFilter);
