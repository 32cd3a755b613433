//! The Rust kit for Weir filter plugins: the bindings of the WIT world
//! `filter`, generated once here, a [`Filter`] trait with
//! [`export_filter!`] for the export glue, config parsing that names the
//! offending key, and the helpers every filter needs besides its own logic
//! (borrowed JSON field access, counters, snapshot envelopes), kept pure so
//! they test natively.
//!
//! A plugin is a type implementing [`Filter`] and one `export_filter!`:
//!
//! ```
//! use serde::Deserialize;
//! use weir_plugin_sdk::{BatchResult, ConfigError, Emitted, Event, Filter, ObjectWriter, Rejected, config};
//!
//! /// Adds `"seen_by": <by>` to every record.
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Stamp {
//!     /// The value of `seen_by`.
//!     by: String,
//! }
//!
//! impl Filter for Stamp {
//!     fn configure(config: &str) -> Result<Self, ConfigError> {
//!         config::parse(config)
//!     }
//!
//!     fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
//!         let mut out = BatchResult { emitted: Vec::with_capacity(events.len()), rejected: Vec::new() };
//!         for (index, event) in (0..).zip(events) {
//!             match ObjectWriter::extend(&event.body, 16 + self.by.len()) {
//!                 Ok(mut body) => {
//!                     body.str("seen_by", &self.by);
//!                     let event = Event { body: body.finish(), ..event };
//!                     out.emitted.push(Emitted { parent: Some(index), event });
//!                 }
//!                 Err(e) => out.rejected.push(Rejected { index, reason: e.to_string() }),
//!             }
//!         }
//!         Ok(out)
//!     }
//! }
//!
//! weir_plugin_sdk::export_filter!(Stamp);
//! # let mut stamp = Stamp::configure(r#"{"by": "me"}"#).unwrap();
//! # let out = stamp.process(vec![Event { time: 0, tag: "t".into(), body: b"{}".to_vec() }]).unwrap();
//! # assert_eq!(out.emitted[0].event.body, br#"{"seen_by":"me"}"#);
//! ```
//!
//! Where things live:
//!
//! | module     | owns                                                              |
//! |------------|-------------------------------------------------------------------|
//! | `filter`   | the `Filter` trait and `export_filter!`                           |
//! | `fluent_bit` | (feature `fluent-bit`) the filter as a Fluent Bit `filter_wasm` module |
//! | `host`     | the host's log, clock and counters (WIT imports)                  |
//! | `wit`      | the bindings generated from `wit/filter.wit`; hidden             |
//! | `state`    | the per-instance state `configure` sets and later calls use       |
//! | `config`   | `ConfigError` (key path and message), reading the block           |
//! | `duration` | config durations (`"15m"`): parsing and formatting for messages  |
//! | `event`    | an input event's time and body, borrowed for a pure core         |
//! | `body`     | borrowed field access to a JSON body, splicing fields into it     |
//! | `json`     | single values as JSON text: RFC 3339 times, numbers, quotes       |
//! | `counters` | handing a call's counter deltas to the host, zeros skipped        |
//! | `snapshot` | the versioned snapshot envelope `{plugin, format, ...state}`      |
//! | `fuzz`     | replaying a bundled plugin's fuzz inputs in its tests (native)    |

#![deny(missing_docs)]
// Not `forbid`: the generated bindings in `wit` need `unsafe` and allow it there.
#![deny(unsafe_code)]

pub mod body;
pub mod config;
pub mod counters;
pub mod duration;
pub mod event;
pub mod filter;
#[cfg(feature = "fluent-bit")]
pub mod fluent_bit;
#[cfg(not(target_family = "wasm"))]
pub mod fuzz;
pub mod host;
pub mod json;
pub mod snapshot;
pub mod state;
#[doc(hidden)]
#[allow(missing_docs, unsafe_code)]
pub mod wit;

pub use body::{BodyError, Fields, ObjectWriter, as_f64, as_str, fields, lookup, write_str};
pub use config::ConfigError;
pub use event::InputEvent;
pub use filter::Filter;
pub use serde_json::value::RawValue;
pub use snapshot::SnapshotEnvelope;
pub use state::InstanceState;
pub use wit::weir::filter::types::{BatchResult, Emitted, Event, Rejected, Timestamp};

/// The Rust example in `wit/README.md`, compiled as a doctest so it cannot
/// drift from the SDK.
#[doc = include_str!("../../../wit/README.md")]
#[cfg(doctest)]
pub struct ReadmeExample;
