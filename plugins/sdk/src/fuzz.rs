//! For a bundled plugin's fuzz targets (`fuzz/plugins/`, run by
//! `just fuzz`): [`replay`] runs, in a plain `cargo test`, every input that
//! once crashed a target and the target's committed corpus through the same
//! entry point the fuzzer calls.

use std::path::{Path, PathBuf};

/// A fuzz target: its name (`fuzz/plugins/fuzz_targets/NAME.rs`) and its
/// entry point, which panics on a bug.
pub type Target = (&'static str, fn(&[u8]));

/// Replay `fuzz/plugins/regressions/NAME/*` and `fuzz/plugins/corpus/NAME/*`
/// through each target, `crate_dir` being the plugin's
/// `CARGO_MANIFEST_DIR` (`plugins/NAME`).
///
/// # Panics
/// When a target has no fuzz binary or no committed corpus, or an input
/// panics, naming the file.
pub fn replay(crate_dir: &str, targets: &[Target]) {
    let fuzz = Path::new(crate_dir).join("../../fuzz/plugins");
    for (name, run) in targets {
        assert!(fuzz.join("fuzz_targets").join(format!("{name}.rs")).is_file(), "fuzz/plugins/fuzz_targets/{name}.rs");
        let corpus = files(&fuzz.join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/plugins/corpus/{name} holds the committed corpus");
        for path in files(&fuzz.join("regressions").join(name)).into_iter().chain(corpus) {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} crashes {name}", path.display());
        }
    }
}

/// The files in `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    files
}
