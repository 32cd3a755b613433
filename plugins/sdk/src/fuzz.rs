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
    // On a thread with the stack the fuzzer gave them (libFuzzer runs on the
    // main thread, 8 MiB): a test thread has 2 MiB, which the deepest
    // corpus inputs overflow in a debug build.
    std::thread::scope(|scope| {
        let replaying = std::thread::Builder::new()
            .name("fuzz-replay".into())
            .stack_size(MAIN_THREAD_STACK)
            .spawn_scoped(scope, || {
                for (name, run) in targets {
                    let target = fuzz.join("fuzz_targets").join(format!("{name}.rs"));
                    assert!(target.is_file(), "fuzz/plugins/fuzz_targets/{name}.rs");
                    let corpus = files(&fuzz.join("corpus").join(name));
                    assert!(!corpus.is_empty(), "fuzz/plugins/corpus/{name} holds the committed corpus");
                    for path in files(&fuzz.join("regressions").join(name)).into_iter().chain(corpus) {
                        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                        let outcome = std::panic::catch_unwind(|| run(&data));
                        assert!(outcome.is_ok(), "{} crashes {name}", path.display());
                    }
                }
            })
            .expect("spawn the replay thread");
        if let Err(panic) = replaying.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// The main thread's stack on Linux (`ulimit -s`), where libFuzzer runs a target.
const MAIN_THREAD_STACK: usize = 8 << 20;

/// The files in `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    files
}
