//! The bindings of the WIT world `filter` (`wit/filter.wit`), generated once
//! here for every Rust plugin. Public only so that [`crate::export_filter!`],
//! expanded in a plugin crate, can reach the export glue; plugin code uses
//! the re-exports at the crate root and in [`crate::host`] instead.
//!
//! Generated code has no docs and is full of `unsafe` (the canonical ABI),
//! hence the `allow`s on this module alone.

wit_bindgen::generate!({
    path: "../../wit",
    world: "filter",
    // The export macro is `#[macro_export]`ed, so plugin crates export
    // through these bindings instead of generating their own.
    pub_export_macro: true,
    default_bindings_module: "weir_plugin_sdk::wit",
});
