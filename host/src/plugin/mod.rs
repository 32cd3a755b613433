//! The plugin runtime: the wasmtime engine, loading and caching components,
//! per-plugin limits and sandbox, and the calls of the `weir:filter`
//! contract, or of Fluent Bit's `filter_wasm` ABI for core modules written
//! to it (`fluent_bit.rs`). The rest of Weir uses [`PluginEngine`] and
//! [`FilterInstance`]; it never names a particular filter.

mod bindings;
mod engine;
mod error;
mod fluent_bit;
mod host_api;
mod inspect;
mod instance;
mod limits;
mod spec;

pub use bindings::CONTRACT_VERSION;
pub use engine::{PluginEngine, file_digest};
pub use error::{PluginError, PluginErrorKind};
pub use inspect::{Capability, Inspection, Interface};
pub use instance::{FilterInstance, Processed};
pub use limits::{DirGrant, Grants, Limits};
pub use spec::{Abi, DedupeSettings, EventFormat, FilterSpec};

#[cfg(test)]
mod tests;
