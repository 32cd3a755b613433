//! Helpers for Rust filter plugins: what every filter needs besides its own
//! logic, kept pure so it tests natively. This crate knows nothing of the
//! WIT bindings: each plugin calls `wit_bindgen::generate!` itself, and the
//! helpers that end at the host (counters, config errors) hand plain values
//! to a closure the plugin's `lib.rs` passes in.
//!
//! Where things live:
//!
//! | module     | owns                                                              |
//! |------------|-------------------------------------------------------------------|
//! | `event`    | an input event's time and body, borrowed for a pure core         |
//! | `body`     | borrowed field access to a JSON body, splicing fields into it     |
//! | `json`     | single values as JSON text: RFC 3339 times, numbers, quotes       |
//! | `config`   | `ConfigError` (key path and message), reading the block's object  |
//! | `counters` | handing a call's counter deltas to the host, zeros skipped        |
//! | `state`    | the per-instance state `configure` sets and later calls use       |
//! | `snapshot` | the versioned snapshot envelope `{plugin, format, ...state}`      |

pub mod body;
pub mod config;
pub mod counters;
pub mod event;
pub mod json;
pub mod snapshot;
pub mod state;

pub use body::{BodyError, Fields, ObjectWriter, as_f64, as_str, fields, lookup, write_str};
pub use config::ConfigError;
pub use event::InputEvent;
pub use serde_json::value::RawValue;
pub use snapshot::SnapshotEnvelope;
pub use state::InstanceState;
