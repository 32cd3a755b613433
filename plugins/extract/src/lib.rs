//! `extract`: pull metrics out of log statements with an ordered list of
//! regex rules, in place of the Spark job the mobile-monitoring pipeline ran.
//!
//! Each input record passes on (raw logs still go to storage), enriched with
//! what was extracted, and each match also yields a metric record
//! `{"metric":…,"value":…,"labels":{…}}` under its own tag for `percentiles`.
//!
//! This file is only the WIT glue: it holds the configured filter and turns
//! per-call counts into host counters. Where things live:
//!
//! | file          | owns                                                        |
//! |---------------|-------------------------------------------------------------|
//! | `config.rs`   | the `config:` block's serde shape, errors with key paths    |
//! | `rules.rs`    | compiling rules (pattern errors with positions), matching   |
//! | `value.rs`    | value types and parsing captured text                       |
//! | `duration.rs` | duration text (`231ms`, `1m30s`) and units                  |
//! | `body.rs`     | field lookups, metric body and raw-record enrichment shapes |
//! | `filter.rs`   | one `process` call as a pure function, counter names        |

pub mod body;
pub mod config;
pub mod duration;
pub mod filter;
pub mod rules;
pub mod value;

use weir_plugin_sdk::{InstanceState, counters};

use crate::filter::ExtractFilter;

wit_bindgen::generate!({ path: "../../wit", world: "filter" });

use exports::weir::filter::plugin::Guest;
use weir::filter::host;
use weir::filter::types::{BatchResult, ConfigError, Emitted, Event, Timestamp};

/// The filter as configured, set by `configure`.
static FILTER: InstanceState<ExtractFilter> = InstanceState::new();

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct ExtractComponent;

impl Guest for ExtractComponent {
    fn configure(config: String) -> Result<(), ConfigError> {
        let filter = ExtractFilter::configure(&config)
            .map_err(|e| e.into_wit(|field, message| ConfigError { field, message }))?;
        FILTER.set(filter);
        Ok(())
    }

    fn process(events: Vec<Event>) -> Result<BatchResult, String> {
        let events = events.into_iter().map(|e| filter::Event { time: e.time, tag: e.tag, body: e.body }).collect();
        let (emitted, counts) =
            FILTER.with(|filter| filter.process(events)).ok_or("extract: process called before configure")?;
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

    // Stateless between calls: the rules come from `configure`.
    weir_plugin_sdk::stateless!();
}

// Only in the component: natively the export names (`weir:filter/filter@0.1.0#…`)
// are not valid linker symbols, and native builds exist only for unit tests.
#[cfg(target_arch = "wasm32")]
export!(ExtractComponent);
