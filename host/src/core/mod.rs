//! The bottom layer: the model every component shares. Inputs, outputs,
//! the plugin runtime, config and the pipeline all import from here, and
//! this layer imports nothing else of Weir's.
//!
//! | module | owns |
//! |---|---|
//! | [`record`] | [`Record`](record::Record), [`Batch`](record::Batch), [`Origin`](record::Origin), event time |
//! | [`ack`] | delivery acknowledgement by drop ([`AckToken`](ack::AckToken)) |
//! | [`dead_letter`] | the dead-letter envelope ([`DeadLetter`](dead_letter::DeadLetter)) |
//! | [`clock`] | the host clock and RFC 3339 |
//! | [`hash`] | FNV-1a for deterministic identities |
//! | [`json`] | splicing a field into a JSON object's bytes |
//! | [`bom`] | the UTF-8 byte order mark, ignored wherever text enters |
//! | [`tag_match`] | Fluent Bit-style `match` globs |
//! | [`units`] | durations and byte sizes in config values |
//! | [`secret`], [`auth`], [`tls`] | credentials and the one `auth:` and `tls:` shape |
//! | [`metrics`] | the process-wide Prometheus registry and the catalogue of every metric |
//! | [`msgpack`] | finding a msgpack value's end, msgpack as JSON and back |
//! | [`backoff`] | retry delays with jitter |
//! | [`template`] | outputs' dynamic strings (`{field}`, strftime) and field paths |

pub mod ack;
pub mod auth;
pub mod backoff;
pub mod bom;
pub mod checkpoints;
pub mod clock;
pub mod dead_letter;
pub mod hash;
pub mod json;
pub mod metrics;
pub mod msgpack;
pub mod record;
pub mod secret;
pub mod tag_match;
pub mod template;
pub mod tls;
pub mod units;
