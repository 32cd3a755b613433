//! The only `bindgen!` of the host: Rust types for the `weir:filter` world,
//! private to `plugin/` (wasmtime's `wasi-config` keeps its bindings the
//! same way), so no other module names a WIT type. The generated code sits
//! in its own module: its top-level `weir` namespace (from the WIT package
//! `weir:filter`) would otherwise sit beside the crate's own name.

mod generated {
    // Generated code carries no docs; the WIT file is its documentation.
    #![allow(missing_docs)]

    wasmtime::component::bindgen!({
        path: "../wit",
        world: "filter",
    });
}

pub(super) use generated::weir::filter::host::{Host as HostImports, Level};
pub(super) use generated::weir::filter::types::{Event, Host as TypesImports};
pub(super) use generated::{Filter, FilterPre};

/// The contract version this host implements: the `package` line of
/// `wit/filter.wit`.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The interface every plugin must export, without its version.
pub(super) const FILTER_EXPORT: &str = "weir:filter/plugin";

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
