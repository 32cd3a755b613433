//! `redact` in Rust: masks e-mail addresses and card numbers in one member
//! of each record (`docs/plugins.md`, "The redact filter"). The schema is in
//! `config.rs`, the logic in `redact.rs`; this file only hands the host its
//! counters and the running total across a reload, so the pure modules test
//! natively.
//!
//! Every record is emitted with its parent, changed or not; a body that is
//! not a JSON object is rejected. Counters, added once per `process` call:
//! `emails` and `cards` (masked in that call, zeros included).

// The SDK holds the bindings' unsafe code; a plugin needs none.
#![forbid(unsafe_code)]

pub mod config;
pub mod redact;

use weir_plugin_sdk::{BatchResult, ConfigError, Emitted, Event, Filter, Rejected, host};

use crate::config::RedactFilterConfig;
use crate::redact::{NotAnObject, Redactor};

/// The `redact` filter: its config and the running total of masks, which
/// `snapshot`/`restore` carry across a reload.
pub struct RedactFilter {
    redactor: Redactor,
}

impl Filter for RedactFilter {
    fn configure(config: &str) -> Result<Self, ConfigError> {
        Ok(Self { redactor: Redactor::new(RedactFilterConfig::from_json(config)?) })
    }

    fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
        let mut result = BatchResult { emitted: Vec::with_capacity(events.len()), rejected: Vec::new() };
        let (mut emails, mut cards) = (0, 0);
        for (index, mut event) in (0..).zip(events) {
            match self.redactor.redact(&event.body) {
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
        // Once per call, never per record; zeros too, as the example does in
        // every language (docs/plugins.md, "Counters").
        host::counter_add("emails", emails);
        host::counter_add("cards", cards);
        Ok(result)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.redactor.snapshot()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        self.redactor.restore(state)
    }
}

weir_plugin_sdk::export_filter!(RedactFilter);
