//! `weir plugin new --lang LANG NAME`: a working plugin to start from,
//! written from the templates embedded in the binary (`host/templates/LANG`,
//! gathered by `host/build.rs`). Every template holds a `build.sh` that
//! writes `NAME.wasm` beside it, a `tests.yaml` for `weir test`, and a
//! README; each gets the contract (`wit/filter.wit`) of this Weir. The Rust
//! template also gets this Weir's SDK, vendored: the SDK is not on
//! crates.io, and a path into a Weir checkout would not exist on a plugin
//! author's machine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::plugin::CONTRACT_VERSION;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// The contract every template builds against.
const WIT: &str = include_str!("../../../../wit/filter.wit");

/// Languages whose template vendors the Rust SDK, and where its `src/` goes.
const VENDORED_SDK: &[(&str, &str)] = &[("rust", "vendor/weir-plugin-sdk/src")];

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's language.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(languages()))]
    lang: String,
    /// The plugin's name: lowercase letters, digits and dashes, starting
    /// with a letter. It names the folder, the `.wasm` file and the
    /// filter's `type:` in its tests.
    name: String,
    /// Where to write it; a folder that does not exist yet or is empty.
    /// Default: ./NAME.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The languages there are templates for.
fn languages() -> Vec<&'static str> {
    embedded::TEMPLATES.iter().map(|(language, _)| *language).collect()
}

pub fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    check_name(&args.name)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!("{} already exists and is not empty; choose another --dir", dir.display());
    }
    let files = render(&args.lang, &args.name);
    for (path, text) in &files {
        write(&dir.join(path), text)?;
    }
    println!("wrote a {} plugin to {} ({} files)", args.lang, dir.display(), files.len());
    println!("  build: {}", dir.join("build.sh").display());
    println!("  test:  weir test {}", dir.join("tests.yaml").display());
    println!("  (README.md there says what it needs and how to use it)");
    Ok(ExitCode::SUCCESS)
}

/// Every file of the `lang` template for a plugin named `name`: (path, text).
fn render(lang: &str, name: &str) -> Vec<(String, String)> {
    let placeholders = [
        ("{{name}}", name.to_string()),
        ("{{name_snake}}", name.replace('-', "_")),
        ("{{name_camel}}", camel(name)),
        ("{{contract}}", CONTRACT_VERSION.to_string()),
        ("{{weir_version}}", env!("CARGO_PKG_VERSION").to_string()),
    ];
    let fill = |text: &str| placeholders.iter().fold(text.to_string(), |text, (key, value)| text.replace(key, value));
    let template = embedded::TEMPLATES.iter().find(|(language, _)| *language == lang).map_or(&[][..], |t| t.1);
    let mut files: Vec<(String, String)> = template.iter().map(|(path, text)| (fill(path), fill(text))).collect();
    files.push(("wit/filter.wit".into(), WIT.into()));
    for (_, sdk_dir) in VENDORED_SDK.iter().filter(|(language, _)| *language == lang) {
        files.extend(embedded::RUST_SDK.iter().map(|(path, text)| (format!("{sdk_dir}/{path}"), (*text).to_string())));
    }
    files
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "sh") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(())
}

/// A name every language takes as a package, module and file name.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!("invalid plugin name {name:?}: use lowercase letters, digits and single dashes, starting with a letter");
    }
    Ok(())
}

/// `my-filter` -> `MyFilter`.
fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_has_a_build_script_tests_and_a_readme() {
        assert!(languages().contains(&"rust"));
        for language in languages() {
            let files = render(language, "probe");
            for required in ["build.sh", "tests.yaml", "README.md", "wit/filter.wit"] {
                assert!(files.iter().any(|(path, _)| path == required), "{language} has no {required}");
            }
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for language in languages() {
            for (path, text) in render(language, "my-probe") {
                for placeholder in ["{{name", "{{contract}}", "{{weir_version}}"] {
                    assert!(!text.contains(placeholder), "{language}: {path} still holds {placeholder}");
                }
            }
        }
    }

    #[test]
    fn the_rust_template_vendors_every_sdk_source() {
        let files = render("rust", "probe");
        assert!(files.iter().any(|(path, _)| path == "vendor/weir-plugin-sdk/src/lib.rs"));
        assert_eq!(
            files.iter().filter(|(path, _)| path.starts_with("vendor/weir-plugin-sdk/src/")).count(),
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/sdk/src")).unwrap().count()
        );
    }

    #[test]
    fn the_vendored_sdk_manifest_names_the_sdks_dependencies() {
        // Versions may differ in spelling (the workspace pins them); a
        // missing dependency would break every generated Rust plugin.
        let dependencies = |manifest: &str| -> Vec<String> {
            let section = manifest.split("[dependencies]").nth(1).unwrap_or_default();
            section
                .lines()
                .map(str::trim)
                .take_while(|line| !line.starts_with('['))
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .filter_map(|line| line.split(['=', '.']).next().map(|name| name.trim().to_string()))
                .collect()
        };
        let files = render("rust", "probe");
        let vendored = &files.iter().find(|(path, _)| path == "vendor/weir-plugin-sdk/Cargo.toml").unwrap().1;
        assert_eq!(dependencies(vendored), dependencies(include_str!("../../../../plugins/sdk/Cargo.toml")));
    }

    #[test]
    fn names_are_checked_and_converted() {
        assert!(check_name("redact2").is_ok());
        assert!(check_name("my-filter").is_ok());
        for bad in ["", "2fast", "My", "a_b", "a-", "a--b", "a.b"] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(camel("my-filter-2"), "MyFilter2");
    }
}
