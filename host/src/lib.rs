//! Weir: a log-pipeline host. Records flow from built-in inputs through a
//! chain of WebAssembly filter plugins into built-in outputs.
//!
//! Where things live:
//!
//! | concept | module |
//! |---|---|
//! | config schema, `${VAR}`s, loading, validation | [`config`] |
//! | records, routing, the chain, batching, backpressure, acks, dead letters | [`pipeline`] |
//! | wasmtime engine, loading and caching plugins, limits, the contract | [`plugin`] |
//! | inputs (`stdin`, `file`, `http`, `kafka`), one folder each | [`inputs`] |
//! | outputs (`stdout`, `file`, `blackhole`, `elasticsearch`, `alertmanager`, `kafka`), one folder each | [`outputs`] |
//! | `/health`, `/ready`, `/metrics` | [`admin`] |
//! | the command line | [`cli`] |
//! | log setup | [`telemetry`] |
//!
//! The host knows nothing about any particular filter: filters are reached
//! only through the `weir:filter` WIT world (`wit/filter.wit`).

#![warn(missing_docs)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod inputs;
pub mod outputs;
pub mod pipeline;
pub mod plugin;
pub mod telemetry;
