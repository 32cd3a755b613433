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
//! | `config.rs`   | the `config:` block's serde shape, `ConfigError` with paths |
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

use std::sync::{Mutex, PoisonError};

use crate::filter::ExtractFilter;

wit_bindgen::generate!({ path: "../../wit", world: "filter" });

use exports::weir::filter::plugin::Guest;
use weir::filter::host;
use weir::filter::types::{BatchResult, ConfigError, Emitted, Event, Timestamp};

/// The filter as configured; `None` until `configure` succeeds. A Mutex only
/// because statics must be `Sync`: a component instance is single-threaded.
static FILTER: Mutex<Option<ExtractFilter>> = Mutex::new(None);

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct ExtractComponent;

impl Guest for ExtractComponent {
    fn configure(config: String) -> Result<(), ConfigError> {
        let filter = ExtractFilter::configure(&config).map_err(|e| ConfigError {
            field: e.field,
            message: e.message,
        })?;
        *FILTER.lock().unwrap_or_else(PoisonError::into_inner) = Some(filter);
        Ok(())
    }

    fn process(events: Vec<Event>) -> Result<BatchResult, String> {
        let guard = FILTER.lock().unwrap_or_else(PoisonError::into_inner);
        let filter = guard
            .as_ref()
            .ok_or("extract: process called before configure")?;
        let events = events
            .into_iter()
            .map(|e| filter::Event {
                time: e.time,
                tag: e.tag,
                body: e.body,
            })
            .collect();
        let (emitted, counts) = filter.process(events);
        // Once per call and counter, never per record (house rule 11).
        for (name, delta) in counts.by_name() {
            if delta > 0 {
                host::counter_add(name, delta);
            }
        }
        let emitted = emitted
            .into_iter()
            .map(|e| Emitted {
                parent: Some(e.parent),
                event: Event {
                    time: e.event.time,
                    tag: e.event.tag,
                    body: e.event.body,
                },
            })
            .collect();
        Ok(BatchResult {
            emitted,
            rejected: Vec::new(),
        })
    }

    fn tick(_now: Timestamp) -> Vec<Event> {
        Vec::new()
    }

    fn snapshot() -> Vec<u8> {
        // Stateless between calls: the rules come from `configure`.
        Vec::new()
    }

    fn restore(_state: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

// Only in the component: natively the export names (`weir:filter/filter@0.1.0#…`)
// are not valid linker symbols, and native builds exist only for unit tests.
#[cfg(target_arch = "wasm32")]
export!(ExtractComponent);
