//! `redact` in Rust: the WIT glue around `redact.rs`, which holds the logic
//! and knows nothing of the bindings, so it tests natively.
//!
//! Written against `wit_bindgen::generate!` directly, like `plugins/split`;
//! it moves to the SDK's export macro once that lands.

pub mod redact;

use std::sync::{Mutex, PoisonError};

use crate::redact::{NotAnObject, Redactor};

wit_bindgen::generate!({ path: "../../../wit", world: "filter" });

use exports::weir::filter::plugin::Guest;
use weir::filter::host;
use weir::filter::types::{BatchResult, ConfigError, Emitted, Event, Rejected, Timestamp};

/// The instance's state: set by `configure`, carried by `snapshot`/`restore`.
/// An instance is single-threaded; the mutex only satisfies `static`.
static REDACTOR: Mutex<Option<Redactor>> = Mutex::new(None);

fn with_redactor<T>(f: impl FnOnce(&mut Option<Redactor>) -> T) -> T {
    f(&mut REDACTOR.lock().unwrap_or_else(PoisonError::into_inner))
}

/// The `redact` filter. Only the wasm build exports it (see `export!` below).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct RedactFilter;

impl Guest for RedactFilter {
    fn configure(config: String) -> Result<(), ConfigError> {
        let config = redact::parse_config(&config).map_err(|e| ConfigError { field: e.field, message: e.message })?;
        with_redactor(|r| *r = Some(Redactor::new(config)));
        Ok(())
    }

    fn process(events: Vec<Event>) -> Result<BatchResult, String> {
        with_redactor(|r| {
            let redactor = r.as_mut().ok_or("process called before configure")?;
            let mut result = BatchResult { emitted: Vec::with_capacity(events.len()), rejected: Vec::new() };
            let (mut emails, mut cards) = (0, 0);
            for (index, mut event) in events.into_iter().enumerate() {
                let index = u32::try_from(index).expect("a WIT list has at most u32::MAX elements");
                match redactor.redact(&event.body) {
                    Err(NotAnObject) => {
                        result.rejected.push(Rejected { index, reason: "body is not a json object".into() });
                        continue;
                    }
                    Ok(Some(redacted)) => {
                        event.body = redacted.body;
                        emails += redacted.emails;
                        cards += redacted.cards;
                    }
                    Ok(None) => {}
                }
                result.emitted.push(Emitted { parent: Some(index), event });
            }
            // Once per call, never per record.
            host::counter_add("emails", emails);
            host::counter_add("cards", cards);
            Ok(result)
        })
    }

    fn tick(_now: Timestamp) -> Vec<Event> {
        Vec::new()
    }

    fn snapshot() -> Vec<u8> {
        with_redactor(|r| r.as_ref().map(Redactor::snapshot).unwrap_or_default())
    }

    fn restore(state: Vec<u8>) -> Result<(), String> {
        with_redactor(|r| r.as_mut().ok_or("restore called before configure")?.restore(&state))
    }
}

// Native builds (for `cargo test`) skip the export: the export symbols are
// named like `weir:filter/plugin@0.1.0#process`, which a native cdylib's
// linker version script cannot express.
#[cfg(target_arch = "wasm32")]
export!(RedactFilter);
