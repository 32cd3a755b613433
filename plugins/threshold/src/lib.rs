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
//! | this file  | WIT glue only: host calls, one state per instance           |
//!
//! RFC 3339, number and quote formatting, config errors, the counter
//! hand-over and the instance state are `weir-plugin-sdk`'s.

pub mod alert;
pub mod config;
pub mod engine;
pub mod snapshot;
pub mod template;
pub mod window;

use engine::Threshold;
use weir_plugin_sdk::{InputEvent, InstanceState, counters};

wit_bindgen::generate!({ path: "../../wit", world: "filter" });

use exports::weir::filter::plugin::Guest;
use weir::filter::host::{self, Level};
use weir::filter::types::{BatchResult, ConfigError, Emitted, Event};

/// The instance's rules and alert states, set by `configure`.
static STATE: InstanceState<Threshold> = InstanceState::new();

/// Why a call other than `configure` failed: the host called out of order.
const NOT_CONFIGURED: &str = "threshold: configure was not called or failed";

/// The `threshold` filter. Only the wasm build exports it: on a native
/// target the export symbols (`weir:filter/plugin@0.1.0#process`) are not
/// valid linker names, and native builds exist only for unit tests.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct ThresholdFilter;

impl Guest for ThresholdFilter {
    fn configure(config: String) -> Result<(), ConfigError> {
        let parsed = config::ThresholdConfig::parse(&config)
            .map_err(|e| e.into_wit(|field, message| ConfigError { field, message }))?;
        STATE.set(Threshold::new(parsed));
        Ok(())
    }

    fn process(events: Vec<Event>) -> Result<BatchResult, String> {
        let batch = STATE.with(|state| {
            let inputs: Vec<InputEvent<'_>> = events.iter().map(|e| InputEvent::new(e.time, &e.body)).collect();
            let outcome = state.process(&inputs);
            counters::flush(outcome.counters.by_name(), host::counter_add);
            for message in &outcome.logs {
                host::log(Level::Warn, message);
            }
            let tag = &state.config().tag;
            let mut emitted = Vec::with_capacity(events.len() + outcome.alerts.len());
            let mut alerts = outcome.alerts.into_iter().peekable();
            for (index, event) in (0u32..).zip(events) {
                emitted.push(Emitted { parent: Some(index), event });
                while let Some(alert) = alerts.next_if(|a| a.parent == index) {
                    let event = Event { time: alert.time, tag: tag.clone(), body: alert.body };
                    emitted.push(Emitted { parent: Some(index), event });
                }
            }
            BatchResult { emitted, rejected: Vec::new() }
        });
        batch.ok_or_else(|| NOT_CONFIGURED.to_string())
    }

    fn tick(_now: i64) -> Vec<Event> {
        // Alerts change only with window records; nothing is time-driven here.
        Vec::new()
    }

    fn snapshot() -> Vec<u8> {
        STATE.with(|state| state.snapshot()).unwrap_or_default()
    }

    fn restore(bytes: Vec<u8>) -> Result<(), String> {
        let restored = STATE.with(|state| state.restore(&bytes)).unwrap_or_else(|| Err(NOT_CONFIGURED.to_string()))?;
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

#[cfg(target_arch = "wasm32")]
export!(ThresholdFilter);
