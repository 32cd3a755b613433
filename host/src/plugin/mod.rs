//! The plugin runtime: the wasmtime engine, loading and caching components,
//! per-plugin limits and sandbox, and the calls of the `weir:filter`
//! contract. The rest of Weir uses [`PluginEngine`] and [`FilterInstance`];
//! it never names a particular filter.

mod bindings;
mod engine;
mod error;
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
pub use spec::FilterSpec;

#[cfg(test)]
mod tests;
