//! `threshold`: alerting rules over the window records of `percentiles`,
//! emitting Alertmanager-shaped alerts when a rule starts and stops holding.
//!
//! Every input record passes through unchanged, with itself as parent, so
//! window records still reach storage; each alert record follows its window
//! record with that record as parent (so acknowledgements chain), tagged
//! `tag`, with the window record's event time.
//!
//! Where things live:
//!
//! | module     | owns                                                        |
//! |------------|-------------------------------------------------------------|
//! | `config`   | the `config:` block, rules, errors by field path            |
//! | `template` | `{{var}}` annotations, unknown variables refused up front   |
//! | `window`   | reading a window record                                     |
//! | `engine`   | pending runs, firing, resolving, counters (pure)            |
//! | `alert`    | the alert body (Alertmanager's shape)                       |
//! | `snapshot` | the snapshot's state (the envelope is the SDK's)            |
//! | this file  | the `Filter` impl: host calls around the pure engine        |
//!
//! The WIT bindings and export glue, RFC 3339, number and quote formatting,
//! config errors and the counter hand-over are `weir-plugin-sdk`'s.

// The SDK holds the bindings' unsafe code; a plugin needs none.
#![forbid(unsafe_code)]

pub mod alert;
pub mod config;
pub mod engine;
pub mod snapshot;
pub mod template;
pub mod window;

use engine::Threshold;
use weir_plugin_sdk::host::{self, Level};
use weir_plugin_sdk::{BatchResult, ConfigError, Emitted, Event, Filter, InputEvent, counters};

/// One instance's rules and alert states. No `tick`: alerts change only
/// with window records, so nothing here is time-driven.
impl Filter for Threshold {
    fn configure(config: &str) -> Result<Self, ConfigError> {
        Ok(Threshold::new(config::ThresholdConfig::parse(config)?))
    }

    fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
        let inputs: Vec<InputEvent<'_>> = events.iter().map(InputEvent::from).collect();
        let outcome = Threshold::process(self, &inputs, host::now());
        counters::flush(outcome.counters.by_name(), host::counter_add);
        for message in &outcome.logs {
            host::log(Level::Warn, message);
        }
        let tag = &self.config().tag;
        let mut emitted = Vec::with_capacity(events.len() + outcome.alerts.len());
        let mut alerts = outcome.alerts.into_iter().peekable();
        for (index, event) in (0u32..).zip(events) {
            emitted.push(Emitted { parent: Some(index), event });
            while let Some(alert) = alerts.next_if(|a| a.parent == index) {
                let event = Event { time: alert.time, tag: tag.clone(), body: alert.body };
                emitted.push(Emitted { parent: Some(index), event });
            }
        }
        Ok(BatchResult { emitted, rejected: Vec::new() })
    }

    fn snapshot(&self) -> Vec<u8> {
        Threshold::snapshot(self)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let restored = Threshold::restore(self, state)?;
        if restored.dropped > 0 {
            host::log(
                Level::Warn,
                &format!(
                    "restore dropped {} alert states of rules no longer configured (kept {}); their firing alerts will not be resolved",
                    restored.dropped, restored.kept
                ),
            );
        }
        Ok(())
    }
}

weir_plugin_sdk::export_filter!(Threshold);
