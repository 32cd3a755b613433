//! `weir test FILE...`: unit tests of filters and pipeline configs, like
//! `vector test`. Each test feeds records to the real filter chain of a
//! config (or of one filter) through [`DryRun`], with a manual clock and no
//! inputs or outputs started, and compares what comes out with what it
//! expects (`compare`). Exit 0 when every test passes, 1 when one fails,
//! 2 when a test file is broken (with its file, line and column).

mod compare;

use std::path::PathBuf;
use std::process::ExitCode;

use compare::{Got, compare, dead_letter_expectations, text_matches};

use crate::config::{self, TestCase, TestStep};
use crate::core::record::Batch;
use crate::pipeline::{DryRun, DryRunOutput};
use crate::plugin::PluginEngine;

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Test files (YAML), run in order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let mut suites = Vec::with_capacity(args.files.len());
    for file in &args.files {
        match config::load_tests(file) {
            Ok(suite) => suites.push(suite),
            Err(error) => {
                eprintln!("error: {error}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let cache_dir = suites.first().and_then(|s| s.tests.first()).map(|t| t.pipeline.cache_dir.clone());
    let engine = PluginEngine::new(cache_dir).map_err(|e| anyhow::anyhow!("starting the WebAssembly engine: {e:#}"))?;
    let (mut passed, mut failed) = (0, 0);
    for suite in &suites {
        for case in &suite.tests {
            let problems = run(&engine, case);
            if problems.is_empty() {
                println!("ok: {}: {}", suite.file.display(), case.name);
                passed += 1;
                continue;
            }
            let at = case.position.map(|(line, column)| format!(":{line}:{column}")).unwrap_or_default();
            println!("FAILED: {}{at}: {}", suite.file.display(), case.name);
            for problem in problems {
                println!("  {problem}");
            }
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Run one test; the differences from what it expects, empty when none.
fn run(engine: &PluginEngine, case: &TestCase) -> Vec<String> {
    let expect = &case.expect;
    let mut dry_run = match (DryRun::new(&case.pipeline, engine, case.now), &expect.config_error) {
        (Ok(dry_run), None) => dry_run,
        (Err(error), Some(want)) if text_matches(expect.matching, want, &error.to_string()) => return Vec::new(),
        (Err(error), Some(want)) => {
            return vec![format!("config_error: expected {want:?}, got {:?}", error.to_string())];
        }
        (Err(error), None) => return vec![format!("the filters did not start: {error}")],
        (Ok(_), Some(want)) => {
            return vec![format!("config_error: expected {want:?}, but every filter accepted its config")];
        }
    };
    let mut batch = Batch::new();
    for step in &case.steps {
        match step {
            TestStep::Record(record) => batch.push(record.clone()),
            TestStep::Tick(now) => {
                if !batch.is_empty() {
                    dry_run.process(std::mem::take(&mut batch));
                }
                dry_run.tick(*now);
            }
        }
    }
    if !batch.is_empty() {
        dry_run.process(batch);
    }
    let DryRunOutput { records, rejected, dead_letters } = dry_run.finish(case.end_of_time);

    let expected_records: Vec<_> = expect.records.iter().map(|r| (None, None, r)).collect();
    let got: Vec<Got> = records.iter().map(Got::record).collect();
    let mut problems = compare("records", "filter", expect.matching, &expected_records, &got);
    let got: Vec<Got> = rejected.iter().map(|(filter, envelope)| Got::dead_letter(filter, envelope)).collect();
    let expected = dead_letter_expectations(&expect.rejected);
    problems.extend(compare("rejected", "filter", expect.matching, &expected, &got));
    let got: Vec<Got> = dead_letters.iter().map(|envelope| Got::dead_letter(&envelope.stage, envelope)).collect();
    let expected = dead_letter_expectations(&expect.dead_letters);
    problems.extend(compare("dead_letters", "stage", expect.matching, &expected, &got));
    problems
}
