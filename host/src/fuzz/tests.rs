//! Every input that once crashed a fuzz target, replayed through the same
//! entry point: `fuzz/host/regressions/TARGET/*` (named after the bug they
//! found), and a target's whole committed corpus when it is small.

use std::path::PathBuf;

use super::TARGETS;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/host")
}

/// The files of `fuzz/host/KIND/TARGET/`, none when it does not exist.
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(dir) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else { return Vec::new() };
    let mut files: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn every_fuzz_target_has_a_binary_and_a_corpus() {
    for (name, _) in TARGETS {
        assert!(
            fuzz_dir().join("fuzz_targets").join(format!("{name}.rs")).is_file(),
            "fuzz/host/fuzz_targets/{name}.rs"
        );
        assert!(!inputs("corpus", name).is_empty(), "fuzz/host/corpus/{name} holds the committed corpus");
    }
}

#[test]
fn inputs_that_crashed_a_fuzz_target_and_the_committed_corpora_run_clean() {
    for (name, run) in TARGETS {
        for (path, data) in inputs("regressions", name).into_iter().chain(inputs("corpus", name)) {
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} crashes {name}", path.display());
        }
    }
}
