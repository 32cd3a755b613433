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
//! | `snapshot` | the snapshot envelope                                       |
//! | `json`     | RFC 3339, number and quote formatting                       |
//! | this file  | WIT glue only: host calls, one state per instance           |

pub mod alert;
pub mod config;
pub mod engine;
pub mod json;
pub mod snapshot;
pub mod template;
pub mod window;

use std::cell::RefCell;

use engine::{InputEvent, Threshold};

wit_bindgen::generate!({ path: "../../wit", world: "filter" });

use exports::weir::filter::plugin::Guest;
use weir::filter::host::{self, Level};
use weir::filter::types::{BatchResult, ConfigError, Emitted, Event};

thread_local! {
    /// The instance's state; `None` until `configure` succeeds. A component
    /// instance is single-threaded, so a thread-local is its only state.
    static STATE: RefCell<Option<Threshold>> = const { RefCell::new(None) };
}

/// Why a call other than `configure` failed: the host called out of order.
const NOT_CONFIGURED: &str = "threshold: configure was not called or failed";

/// The `threshold` filter. Only the wasm build exports it: on a native
/// target the export symbols (`weir:filter/plugin@0.1.0#process`) are not
/// valid linker names, and native builds exist only for unit tests.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct ThresholdFilter;

impl Guest for ThresholdFilter {
    fn configure(config: String) -> Result<(), ConfigError> {
        let parsed = config::ThresholdConfig::parse(&config).map_err(|e| ConfigError {
            field: e.field,
            message: e.message,
        })?;
        STATE.with_borrow_mut(|state| *state = Some(Threshold::new(parsed)));
        Ok(())
    }

    fn process(events: Vec<Event>) -> Result<BatchResult, String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or(NOT_CONFIGURED)?;
            let inputs: Vec<InputEvent<'_>> = events
                .iter()
                .map(|e| InputEvent {
                    time: e.time,
                    body: &e.body,
                })
                .collect();
            let outcome = state.process(&inputs);
            for (name, delta) in outcome.counters.nonzero() {
                host::counter_add(name, delta);
            }
            for message in &outcome.logs {
                host::log(Level::Warn, message);
            }
            let tag = &state.config().tag;
            let mut emitted = Vec::with_capacity(events.len() + outcome.alerts.len());
            let mut alerts = outcome.alerts.into_iter().peekable();
            for (index, event) in (0u32..).zip(events) {
                emitted.push(Emitted {
                    parent: Some(index),
                    event,
                });
                while let Some(alert) = alerts.next_if(|a| a.parent == index) {
                    let event = Event {
                        time: alert.time,
                        tag: tag.clone(),
                        body: alert.body,
                    };
                    emitted.push(Emitted {
                        parent: Some(index),
                        event,
                    });
                }
            }
            Ok(BatchResult {
                emitted,
                rejected: Vec::new(),
            })
        })
    }

    fn tick(_now: i64) -> Vec<Event> {
        // Alerts change only with window records; nothing is time-driven here.
        Vec::new()
    }

    fn snapshot() -> Vec<u8> {
        STATE.with_borrow(|state| state.as_ref().map(Threshold::snapshot).unwrap_or_default())
    }

    fn restore(bytes: Vec<u8>) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let restored = state.as_mut().ok_or(NOT_CONFIGURED.to_string())?.restore(&bytes)?;
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
        })
    }
}

#[cfg(target_arch = "wasm32")]
export!(ThresholdFilter);
