//! The only `bindgen!` of the host: Rust types for the `weir:filter` world.
//! Everything else uses these re-exports.

// Generated code carries no docs; the WIT file is its documentation.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "filter",
});

pub use exports::weir::filter::plugin::Guest as FilterExports;
pub use weir::filter::host::Level;
pub use weir::filter::types::{BatchResult, ConfigError as GuestConfigError, Emitted, Event, Rejected};

/// The contract version this host implements: the `package` line of
/// `wit/filter.wit`.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The interface every plugin must export, without its version.
pub const FILTER_EXPORT: &str = "weir:filter/plugin";

#[cfg(test)]
mod tests {
    #[test]
    fn contract_version_matches_the_wit_package() {
        let wit = include_str!("../../../wit/filter.wit");
        assert!(
            wit.contains(&format!("package weir:filter@{};", super::CONTRACT_VERSION)),
            "CONTRACT_VERSION is out of date with wit/filter.wit"
        );
    }
}
