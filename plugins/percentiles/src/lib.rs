//! `percentiles`: per-series quantiles of metric records over event-time
//! windows, with HdrHistogram.
//!
//! Input: records as `extract` emits them, body
//! `{"metric": "<name>", "value": <number>, "labels": {"k": "v"}}`, event
//! time = the record's time. Output: one record per series and closed window
//! (see `output` for the body), tagged `tag`, event time = window start, with
//! no parent (an aggregate).
//!
//! Where things live:
//!
//! | module     | owns                                                        |
//! |------------|-------------------------------------------------------------|
//! | `config`   | the `config:` block, defaults, validation errors by field   |
//! | `duration` | `"15m"`-style durations                                     |
//! | `quantile` | `p99.9` parsing, names (`p99_9`), exact nearest rank        |
//! | `metric`   | reading an input record, series keys, rejection reasons     |
//! | `window`   | window and pane arithmetic, lateness (pure)                 |
//! | `pane`     | recording values, exact stats, reading quantiles            |
//! | `engine`   | series, watermark, closing windows, counters (pure)         |
//! | `output`   | the window record body                                      |
//! | `snapshot` | the snapshot envelope                                       |
//! | `json`     | RFC 3339, number and quote formatting                       |
//! | this file  | WIT glue only: host calls, one state per instance           |

pub mod config;
pub mod duration;
pub mod engine;
pub mod json;
pub mod metric;
pub mod output;
pub mod pane;
pub mod quantile;
pub mod snapshot;
pub mod window;

use std::cell::RefCell;

use engine::{InputEvent, LogLevel, Outcome, Percentiles};
use exports::weir::filter::plugin::Guest;
use weir::filter::host::{self, Level};
use weir::filter::types::{BatchResult, ConfigError, Emitted, Event, Rejected};

wit_bindgen::generate!({ path: "../../wit", world: "filter" });

thread_local! {
    /// The instance's state; `None` until `configure` succeeds. A component
    /// instance is single-threaded, so a thread-local is its only state.
    static STATE: RefCell<Option<Percentiles>> = const { RefCell::new(None) };
}

/// Why a call other than `configure` failed: the host called out of order.
const NOT_CONFIGURED: &str = "percentiles: configure was not called or failed";

/// The `percentiles` filter. Only the wasm build exports it: on a native
/// target the export symbols (`weir:filter/plugin@0.1.0#process`) are not
/// valid linker names, and native builds exist only for unit tests.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct PercentilesFilter;

impl Guest for PercentilesFilter {
    fn configure(config: String) -> Result<(), ConfigError> {
        let parsed = config::PercentilesConfig::parse(&config).map_err(|e| ConfigError {
            field: e.field,
            message: e.message,
        })?;
        STATE.with_borrow_mut(|state| *state = Some(Percentiles::new(parsed)));
        Ok(())
    }

    fn process(events: Vec<Event>) -> Result<BatchResult, String> {
        let now = host::now();
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or(NOT_CONFIGURED)?;
            let inputs: Vec<InputEvent<'_>> = events
                .iter()
                .map(|e| InputEvent {
                    time: e.time,
                    body: &e.body,
                })
                .collect();
            let outcome = state.process(&inputs, now);
            let rejected = outcome
                .rejected
                .iter()
                .map(|r| Rejected {
                    index: r.index,
                    reason: r.reason.clone(),
                })
                .collect();
            let emitted = report(state, outcome)
                .into_iter()
                .map(|event| Emitted {
                    parent: None,
                    event,
                })
                .collect();
            Ok(BatchResult { emitted, rejected })
        })
    }

    fn tick(now: i64) -> Vec<Event> {
        STATE.with_borrow_mut(|state| match state.as_mut() {
            Some(state) => {
                let outcome = state.tick(now);
                report(state, outcome)
            }
            None => Vec::new(),
        })
    }

    fn snapshot() -> Vec<u8> {
        STATE.with_borrow(|state| {
            state
                .as_ref()
                .map(Percentiles::snapshot)
                .unwrap_or_default()
        })
    }

    fn restore(bytes: Vec<u8>) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            state
                .as_mut()
                .ok_or(NOT_CONFIGURED.to_string())?
                .restore(&bytes)
        })
    }
}

/// Hand counters and log lines to the host (once per call) and turn window
/// records into events.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn report(state: &Percentiles, outcome: Outcome) -> Vec<Event> {
    for (name, delta) in outcome.counters.nonzero() {
        host::counter_add(name, delta);
    }
    for (level, message) in &outcome.logs {
        let level = match level {
            LogLevel::Info => Level::Info,
            LogLevel::Warn => Level::Warn,
        };
        host::log(level, message);
    }
    let config = state.config();
    outcome
        .windows
        .iter()
        .map(|w| Event {
            time: w.start,
            tag: config.tag.clone(),
            body: output::body(w, &config.quantiles),
        })
        .collect()
}

#[cfg(target_arch = "wasm32")]
export!(PercentilesFilter);
