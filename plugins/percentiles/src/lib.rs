//! `percentiles`: per-series quantiles of metric records over event-time
//! windows, with log-linear histograms (HdrHistogram's layout over `f64`).
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
//! | `quantile` | `p99.9` parsing, names (`p99_9`), exact nearest rank        |
//! | `metric`   | reading an input record, series keys, rejection reasons     |
//! | `window`   | window and pane arithmetic, lateness (pure)                 |
//! | `histogram`| buckets of the same relative width at any magnitude         |
//! | `pane`     | recording values, exact stats, reading quantiles            |
//! | `engine`   | series, watermark, closing windows, counters (pure)         |
//! | `output`   | the window record body                                      |
//! | `snapshot` | the snapshot's state (the envelope is the SDK's)            |
//! | this file  | the `Filter` impl: host calls around the pure engine        |
//!
//! The WIT bindings and export glue, RFC 3339, number and quote formatting,
//! config errors, durations and the counter hand-over are `weir-plugin-sdk`'s.

// The SDK holds the bindings' unsafe code; a plugin needs none.
#![forbid(unsafe_code)]

pub mod config;
pub mod engine;
pub mod histogram;
pub mod metric;
pub mod output;
pub mod pane;
pub mod quantile;
pub mod snapshot;
pub mod window;

use engine::{LogLevel, Outcome, Percentiles};
use weir_plugin_sdk::host::{self, Level};
use weir_plugin_sdk::{BatchResult, ConfigError, Emitted, Event, Filter, InputEvent, Rejected, Timestamp, counters};

/// One instance's config and open windows.
impl Filter for Percentiles {
    fn configure(config: &str) -> Result<Self, ConfigError> {
        Ok(Percentiles::new(config::PercentilesConfig::parse(config)?))
    }

    fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
        let inputs: Vec<InputEvent<'_>> = events.iter().map(InputEvent::from).collect();
        let outcome = Percentiles::process(self, &inputs, host::now());
        let rejected = outcome.rejected.iter().map(|r| Rejected { index: r.index, reason: r.reason.clone() }).collect();
        let emitted = report(self, outcome).into_iter().map(|event| Emitted { parent: None, event }).collect();
        Ok(BatchResult { emitted, rejected })
    }

    fn tick(&mut self, now: Timestamp) -> Vec<Event> {
        let outcome = Percentiles::tick(self, now);
        report(self, outcome)
    }

    fn snapshot(&self) -> Vec<u8> {
        counters::flush(self.handed_over().by_name(), host::counter_add);
        Percentiles::snapshot(self)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        Percentiles::restore(self, state)?;
        counters::flush(self.taken_over().by_name(), host::counter_add);
        Ok(())
    }
}

/// Hand counters and log lines to the host (once per call) and turn window
/// records into events.
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

weir_plugin_sdk::export_filter!(Percentiles);
