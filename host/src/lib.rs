//! Weir: a log-pipeline host. Records flow from built-in inputs through a
//! chain of WebAssembly filter plugins into built-in outputs.
//!
//! Where things live, by floor. A module may use the floors below it,
//! never its own floor's neighbours nor a floor above
//! (`.ci/check-layers.py` enforces it; `CONTRIBUTING.md` says why):
//!
//! | floor | module | owns |
//! |---|---|---|
//! | 5 | [`fuzz`] | entry points of the fuzz targets (`fuzz/host/`), replayed by the regression tests |
//! | 5 | [`cli`] | the command line: `run`, `validate`, `test`, `plugin new`/`inspect`, `bench`, `generate`; reload triggers |
//! | 4 | [`pipeline`] | the orchestrator: the filter chain on `pipeline.workers` threads (stateless filters one instance per worker, stateful ones one per partition of `partition_by`), routing, output drivers, dead-letter routing, reload, saved state, the console's taps, dry runs for `weir test`, queue watch (stalls) |
//! | 3 | [`config`] | the YAML schema, `${VAR}`s, loading, validation; `weir test` files |
//! | 2 | [`inputs`] | `stdin`, `file`, `http`, `kafka`, `forward`, `otlp`, one folder each |
//! | 2 | [`outputs`] | `stdout`, `file`, `blackhole`, `elasticsearch`, `alertmanager`, `kafka`, one folder each |
//! | 2 | [`plugin`] | the wasmtime engine, loading and caching plugins, limits, the WIT contract, Fluent Bit's filter_wasm ABI |
//! | 2 | [`admin`] | `/health`, `/ready`, `/metrics`, `POST /-/reload`, the console's `/api/v1` and embedded page |
//! | 1 | [`kafka`] | Kafka client settings shared by the Kafka input and output |
//! | 0 | [`core`] | the shared model: records, acks, dead letters, clock, tag globs, units, metrics, backoff, templates, credentials, msgpack |
//! | 0 | [`telemetry`] | log setup |
//!
//! The host knows nothing about any particular filter: filters are reached
//! only through the `weir:filter` WIT world (`wit/filter.wit`), whose types
//! never leave [`plugin`]. Even whether a filter keeps state it learns only
//! from the filter's config (`partition_by`) and from the filter itself (an
//! empty `snapshot` right after `configure` means stateless), never from
//! its name: see `pipeline/partition.rs`.
//!
//! A filter in a few lines: load a component, configure it, run a batch.
//!
//! ```no_run
//! use std::time::Duration;
//! use weir::core::clock::Clock;
//! use weir::core::record::Record;
//! use weir::core::tag_match::TagMatch;
//! use weir::plugin::{Abi, FilterInstance, FilterSpec, Grants, Limits, PluginEngine};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = PluginEngine::new(None)?;
//! let spec = FilterSpec {
//!     name: "split".into(),
//!     wasm: "target/plugins/split.wasm".into(),
//!     abi: Abi::Component,
//!     matches: TagMatch::new(vec!["*".into()])?,
//!     config: serde_json::json!({ "field": "logs" }),
//!     partition_by: None,
//!     limits: Limits { deadline: Duration::from_secs(1), ..Limits::default() },
//!     grants: Grants::default(),
//!     dedupe: None,
//! };
//! let mut split = FilterInstance::new(&engine, &spec, Clock::system())?;
//! let chunk = br#"{"logs":["2026-11-22T10:00:00Z page=home load=1017ms"]}"#;
//! let record = Record { time: 0, tag: "app".into(), body: chunk.to_vec().into(), origin: None, ack: None, arrival: None };
//! let out = split.process(&[record])?;
//! assert_eq!(out.emitted.len(), 1);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]
// The developer docs (`just lint` builds them with private items) link to
// the private modules on purpose.
#![allow(rustdoc::private_intra_doc_links)]

// Only what other crates use is public: the command line (for `main.rs`),
// the fuzz targets' entry points (for `fuzz/host/`) and, for embedding and
// the example above, the model and the plugin runtime. Everything else is
// the crate's own, so unused code shows.
mod admin;
pub mod cli;
mod config;
pub mod core;
pub mod fuzz;
mod inputs;
mod kafka;
mod outputs;
mod pipeline;
pub mod plugin;
mod telemetry;
