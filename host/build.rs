//! Embeds the templates of `weir plugin new` in the binary: every file
//! under `host/templates/LANG/` becomes one entry of `TEMPLATES`, and the
//! Rust SDK's sources (`plugins/sdk/src`) of `RUST_SDK`, which the Rust
//! template vendors. A new language is a new folder; no list to update.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let host = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let templates = host.join("templates");
    let sdk = host.join("../plugins/sdk/src");
    println!("cargo::rerun-if-changed={}", templates.display());
    println!("cargo::rerun-if-changed={}", sdk.display());

    let mut out = String::from("/// Every template: its language and its files (path, text).\n");
    out.push_str("pub static TEMPLATES: &[(&str, &[(&str, &str)])] = &[\n");
    for language in sorted_entries(&templates) {
        let name = language.file_name().and_then(|n| n.to_str()).expect("template folders have UTF-8 names");
        writeln!(out, "    ({name:?}, &[").unwrap();
        write_files(&mut out, &language, &language);
        out.push_str("    ]),\n");
    }
    out.push_str("];\n\n/// The Rust SDK's sources, by path under `src/`.\n");
    out.push_str("pub static RUST_SDK: &[(&str, &str)] = &[\n");
    write_files(&mut out, &sdk, &sdk);
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("templates.rs");
    std::fs::write(dest, out).expect("writing templates.rs");
}

/// `(relative path, include_str!(absolute path))` of every file below `dir`.
fn write_files(out: &mut String, root: &Path, dir: &Path) {
    for path in sorted_entries(dir) {
        if path.is_dir() {
            write_files(out, root, &path);
            continue;
        }
        let relative = path.strip_prefix(root).expect("below its root").to_str().expect("UTF-8 template paths");
        writeln!(out, "        ({relative:?}, include_str!({:?})),", path.display().to_string()).unwrap();
    }
}

/// What building a template in place leaves behind; never part of one.
const BUILD_OUTPUTS: &[&str] = &["target", "node_modules", "__pycache__", "build"];

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable folder entry").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            !BUILD_OUTPUTS.contains(&name) && !name.ends_with(".wasm")
        })
        .collect();
    entries.sort();
    entries
}
