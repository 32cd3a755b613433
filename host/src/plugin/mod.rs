//! The plugin runtime: the wasmtime engine, loading and caching components,
//! per-plugin limits and sandbox, and the calls of the `weir:filter`
//! contract. The rest of Weir uses [`PluginEngine`] and [`FilterInstance`];
//! it never names a particular filter.

pub mod bindings;
mod engine;
mod error;
mod host_api;
mod instance;
mod limits;
mod reload;

pub use engine::{PluginEngine, compatible, file_digest};
pub use error::PluginError;
pub use instance::FilterInstance;
pub use limits::{DirGrant, EPOCH_TICK, Grants, Limits};
pub use reload::hand_over;

#[cfg(test)]
mod tests;
