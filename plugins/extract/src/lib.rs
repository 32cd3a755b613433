//! `extract`: pull metrics out of log statements with an ordered list of
//! regex rules, in place of the Spark job the mobile-monitoring pipeline ran.
//!
//! Each input record passes on (raw logs still go to storage), enriched with
//! what was extracted, and each match also yields a metric record
//! `{"metric":…,"value":…,"labels":{…}}` under its own tag for `percentiles`.
//!
//! This file only hands the pure core its events and the host its per-call
//! counters. Where things live:
//!
//! | file          | owns                                                        |
//! |---------------|-------------------------------------------------------------|
//! | `config.rs`   | the `config:` block's serde shape, errors with key paths    |
//! | `rules.rs`    | compiling rules (pattern errors with positions), matching   |
//! | `value.rs`    | value types and parsing captured text                       |
//! | `duration.rs` | duration text (`231ms`, `1m30s`) and units                  |
//! | `body.rs`     | field lookups, metric body and raw-record enrichment shapes |
//! | `filter.rs`   | one `process` call as a pure function, counter names        |

// The SDK holds the bindings' unsafe code; a plugin needs none.
#![forbid(unsafe_code)]

pub mod body;
pub mod config;
pub mod duration;
pub mod filter;
#[cfg(not(target_family = "wasm"))]
pub mod fuzz;
pub mod rules;
pub mod value;

use weir_plugin_sdk::{BatchResult, ConfigError, Emitted, Event, Filter, counters, host};

use crate::filter::ExtractFilter;

/// Stateless between calls: the rules come from `configure`, so `tick`,
/// `snapshot` and `restore` are the trait's defaults.
impl Filter for ExtractFilter {
    fn configure(config: &str) -> Result<Self, ConfigError> {
        ExtractFilter::configure(config)
    }

    fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
        let events = events.into_iter().map(|e| filter::Event { time: e.time, tag: e.tag, body: e.body }).collect();
        let (emitted, counts) = ExtractFilter::process(self, events);
        counters::flush(counts.by_name(), host::counter_add);
        let emitted = emitted
            .into_iter()
            .map(|e| Emitted {
                parent: Some(e.parent),
                event: Event { time: e.event.time, tag: e.event.tag, body: e.event.body },
            })
            .collect();
        Ok(BatchResult { emitted, rejected: Vec::new() })
    }
}

weir_plugin_sdk::export_filter!(ExtractFilter);
