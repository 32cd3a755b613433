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
//! | `snapshot` | the snapshot's state (the envelope is the SDK's)            |
//! | this file  | WIT glue only: host calls, one state per instance           |
//!
//! RFC 3339, number and quote formatting, config errors, the counter
//! hand-over and the instance state are `weir-plugin-sdk`'s.

pub mod config;
pub mod duration;
pub mod engine;
pub mod metric;
pub mod output;
pub mod pane;
pub mod quantile;
pub mod snapshot;
pub mod window;

use engine::{LogLevel, Outcome, Percentiles};
use exports::weir::filter::plugin::Guest;
use weir::filter::host::{self, Level};
use weir::filter::types::{BatchResult, ConfigError, Emitted, Event, Rejected};
use weir_plugin_sdk::{InputEvent, InstanceState, counters};

wit_bindgen::generate!({ path: "../../wit", world: "filter" });

/// The instance's config and open windows, set by `configure`.
static STATE: InstanceState<Percentiles> = InstanceState::new();

/// Why a call other than `configure` failed: the host called out of order.
const NOT_CONFIGURED: &str = "percentiles: configure was not called or failed";

/// The `percentiles` filter. Only the wasm build exports it: on a native
/// target the export symbols (`weir:filter/plugin@0.1.0#process`) are not
/// valid linker names, and native builds exist only for unit tests.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct PercentilesFilter;

impl Guest for PercentilesFilter {
    fn configure(config: String) -> Result<(), ConfigError> {
        let parsed = config::PercentilesConfig::parse(&config)
            .map_err(|e| e.into_wit(|field, message| ConfigError { field, message }))?;
        STATE.set(Percentiles::new(parsed));
        Ok(())
    }

    fn process(events: Vec<Event>) -> Result<BatchResult, String> {
        let now = host::now();
        let batch = STATE.with(|state| {
            let inputs: Vec<InputEvent<'_>> = events.iter().map(|e| InputEvent::new(e.time, &e.body)).collect();
            let outcome = state.process(&inputs, now);
            let rejected =
                outcome.rejected.iter().map(|r| Rejected { index: r.index, reason: r.reason.clone() }).collect();
            let emitted = report(state, outcome).into_iter().map(|event| Emitted { parent: None, event }).collect();
            BatchResult { emitted, rejected }
        });
        batch.ok_or_else(|| NOT_CONFIGURED.to_string())
    }

    fn tick(now: i64) -> Vec<Event> {
        STATE
            .with(|state| {
                let outcome = state.tick(now);
                report(state, outcome)
            })
            .unwrap_or_default()
    }

    fn snapshot() -> Vec<u8> {
        STATE.with(|state| state.snapshot()).unwrap_or_default()
    }

    fn restore(bytes: Vec<u8>) -> Result<(), String> {
        STATE.with(|state| state.restore(&bytes)).unwrap_or_else(|| Err(NOT_CONFIGURED.to_string()))
    }
}

/// Hand counters and log lines to the host (once per call) and turn window
/// records into events.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn report(state: &Percentiles, outcome: Outcome) -> Vec<Event> {
    counters::flush(outcome.counters.by_name(), host::counter_add);
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
        .map(|w| Event { time: w.start, tag: config.tag.clone(), body: output::body(w, &config.quantiles) })
        .collect()
}

#[cfg(target_arch = "wasm32")]
export!(PercentilesFilter);
