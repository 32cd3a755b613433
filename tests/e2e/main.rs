//! End-to-end tests: the real `weir` binary on real files and configs.
//! Plugins must be built first (`just plugins`, which `just test` runs).
//!
//! Table of contents:
//! - `admin`: `/ready` follows the pipeline
//! - `console`: the console's JSON API on `configs/quickstart-console.yaml`
//! - `cli`: `--version`, `--help`, `validate` and error exit codes
//! - `authoring`: `weir test` (every shipped test file, diffs, exit codes),
//!   `weir plugin new` and `weir plugin inspect`
//! - `quickstart`: `configs/quickstart.yaml` against an oracle built from its input
//! - `local_io`: file/stdin inputs (read once, follow, rotation), file/stdout
//!   outputs, dead letters, routing, shutdown
//! - `http_input`: the `http` input: curl and the Elasticsearch Python
//!   client against the real binary, delivered acks, 429 under backpressure
//! - `metrics`: split -> extract -> percentiles -> threshold against an exact oracle;
//!   precision at any magnitude; a fast clock cannot close others' windows
//! - `statements`: `split` keeps each statement's own time: year-less and
//!   date-less formats completed, formats naming no instant refused, stack
//!   traces kept with their statement
//! - `plugin_languages`: the `redact` example in C, Go, JavaScript, Python and
//!   Rust: byte-identical output, state across a hot reload, counters, config
//!   errors (the examples must be built: `just examples`, part of `just plugins`)
//! - `plugin_limits`: trapping, looping and memory-hungry filters, in Rust and
//!   Go, are contained
//! - `reload`: hot reload under load, refused reloads, plugin file watching
//! - `shutdown`: a bounded drain with an output down keeps filter state
//! - `real`: against real Kafka, Elasticsearch and Alertmanager (`#[ignore]`d
//!   unless run with `--include-ignored`, as `just test-full` does)

mod util;

mod admin;
mod authoring;
mod cli;
mod console;
mod http_input;
mod local_io;
mod metrics;
mod plugin_languages;
mod plugin_limits;
mod quickstart;
mod real;
mod reload;
mod shutdown;
mod statements;
