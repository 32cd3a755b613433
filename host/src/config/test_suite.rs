//! The test files of `weir test`: YAML naming a pipeline config or one
//! filter, the records to feed it, and what should come out. Loading
//! resolves everything a run needs (plugin files, filter specs, times,
//! bodies), so a broken test file fails here with file, line, column and
//! key, as a broken config does. Running and comparing are `weir test`'s.
//!
//! ```yaml
//! tests:
//!   - name: a debug record is dropped, the others marked
//!     filter: { type: myfilter, config: { drop_level: debug } }
//!     inputs:
//!       - { tag: app, time: 2026-11-22T10:00:00Z, body: { level: info } }
//!       - { body: { level: debug } }
//!       - { tick: 2026-11-22T10:01:00Z }
//!     expect:
//!       records:
//!         - { tag: app, body: { level: info, seen_by: myfilter } }
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_norway::{Mapping, Value};

use super::raw::RawFilter;
use super::resolve::Resolver;
use super::{Config, ConfigError};
use crate::core::clock::parse_rfc3339;
use crate::core::record::{Record, Timestamp};

/// The tag of a lone filter test's inputs that name none.
const DEFAULT_FILTER_TEST_TAG: &str = "test";

/// The host clock of a test that sets no `now:` and whose inputs give no
/// time: 2000-01-01T00:00:00Z. A fixed time keeps tests repeatable; not
/// zero, as Go's runtime refuses to start with its clock at zero.
const DEFAULT_NOW: Timestamp = 946_684_800_000_000_000;

/// A loaded test file.
#[derive(Debug)]
pub struct TestSuite {
    /// The file.
    pub file: PathBuf,
    /// Its tests, in file order.
    pub tests: Vec<TestCase>,
}

/// One test: a chain of filters, what goes in, what should come out.
#[derive(Debug)]
pub struct TestCase {
    /// What it checks, as a sentence.
    pub name: String,
    /// Where it starts in the file (1-based line and column).
    pub position: Option<(usize, usize)>,
    /// The pipeline whose filters run: the config named by `config:`, or
    /// one holding just the `filter:` (no inputs, no outputs).
    pub pipeline: Config,
    /// The host clock when the test starts: `now:`, else the earliest
    /// `time:` or `tick:` of its inputs (so filters that refuse events far
    /// ahead of the host clock, `max_future`, accept the test's own), else
    /// 2000-01-01T00:00:00Z. A record that gives no time takes the clock's.
    pub now: Timestamp,
    /// True when the test sets no `now:`: the clock then follows the inputs
    /// as in a live pipeline where events arrive as they happen, moving
    /// forward to each record's time (a batch runs with the clock at its
    /// latest record). With `now:`, only ticks move it.
    pub clock_follows_records: bool,
    /// Records and ticks, in order.
    pub steps: Vec<TestStep>,
    /// Whether a last `tick` at the end of time follows the inputs, as when
    /// a pipeline's inputs end (`end_of_time:`, default true).
    pub end_of_time: bool,
    /// What should come out.
    pub expect: Expectation,
}

/// One entry of `inputs:`.
#[derive(Debug)]
pub enum TestStep {
    /// A record to feed the chain. Consecutive records go in one batch.
    Record(Record),
    /// Set the clock to this time and tick every filter.
    Tick(Timestamp),
}

/// The `expect:` block. A list left out expects nothing of its kind.
#[derive(Debug, Default)]
pub struct Expectation {
    /// How bodies and reasons are compared (`match:`).
    pub matching: Matching,
    /// The records the chain emits (in a config test: those some output
    /// takes), in order.
    pub records: Vec<ExpectedRecord>,
    /// The inputs a filter refused, singly or with their whole batch.
    pub rejected: Vec<ExpectedDeadLetter>,
    /// Every other dead letter: records no output takes (config tests).
    pub dead_letters: Vec<ExpectedDeadLetter>,
    /// The filter refuses its config with an error saying this; nothing runs.
    pub config_error: Option<String>,
}

/// How expected bodies and reasons are compared.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Matching {
    /// A body equals the expected one; a reason is the expected text.
    #[default]
    Exact,
    /// A body has at least the expected keys, with equal values (objects
    /// compared the same way, recursively); a reason contains the expected
    /// text.
    Partial,
}

/// An expected record. Fields left out are not checked.
#[derive(Debug, Default)]
pub struct ExpectedRecord {
    /// Where it is in the file.
    pub position: Option<(usize, usize)>,
    /// The tag.
    pub tag: Option<String>,
    /// The event time.
    pub time: Option<Timestamp>,
    /// The body.
    pub body: Option<ExpectedBody>,
}

/// An expected body.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpectedBody {
    /// A YAML mapping: compared as JSON.
    Json(serde_json::Value),
    /// A YAML string: compared with the body's bytes as text.
    Text(String),
}

/// An expected dead letter: the original record, where and why it failed.
#[derive(Debug, Default)]
pub struct ExpectedDeadLetter {
    /// The filter that refused it (`filter:` in `rejected`) or the stage
    /// that dead-lettered it (`stage:` in `dead_letters`, e.g. `routing`).
    pub by: Option<String>,
    /// The reason.
    pub reason: Option<String>,
    /// The original record.
    pub record: ExpectedRecord,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    plugin_dir: Option<String>,
    cache_dir: Option<String>,
    tests: Vec<RawTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    name: String,
    config: Option<String>,
    filter: Option<Mapping>,
    now: Option<Value>,
    #[serde(default)]
    inputs: Vec<RawInput>,
    end_of_time: Option<bool>,
    expect: RawExpect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    tag: Option<String>,
    time: Option<Value>,
    body: Option<Value>,
    tick: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(rename = "match", default)]
    matching: Matching,
    #[serde(default)]
    records: Vec<RawRecord>,
    #[serde(default)]
    rejected: Vec<RawRejected>,
    #[serde(default)]
    dead_letters: Vec<RawDeadLetter>,
    config_error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    tag: Option<String>,
    time: Option<Value>,
    body: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRejected {
    filter: Option<String>,
    reason: Option<String>,
    tag: Option<String>,
    time: Option<Value>,
    body: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeadLetter {
    stage: Option<String>,
    reason: Option<String>,
    tag: Option<String>,
    time: Option<Value>,
    body: Option<Value>,
}

/// Resolve test-file `text`, read from `path`. A test's `config:` is loaded
/// with `load`, relative to the test file.
pub(super) fn resolve(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    load: &dyn Fn(&Path) -> Result<Config, ConfigError>,
) -> Result<TestSuite, ConfigError> {
    let (r, root) = Resolver::load(path, text, env, "the test file is empty; expected `tests:`")?;
    let raw: RawSuite = r.setting("", &root)?;
    if raw.tests.is_empty() {
        return Err(r.error("tests", "no tests; expected at least one"));
    }
    let plugin_dir = r.plugin_dir(raw.plugin_dir.as_deref(), env);
    let cache_dir = r.cache_dir(raw.cache_dir.as_deref(), env);
    let mut names = HashSet::new();
    let mut tests = Vec::with_capacity(raw.tests.len());
    for (i, test) in raw.tests.into_iter().enumerate() {
        let key = format!("tests[{i}]");
        if !names.insert(test.name.clone()) {
            return Err(r.error(&key, format!("duplicate test name {:?}", test.name)));
        }
        let (pipeline, default_tag) = match (test.config, test.filter) {
            (Some(config), None) => {
                let pipeline = load(&r.path(&config))?;
                let tag = pipeline.inputs.first().map_or_else(|| DEFAULT_FILTER_TEST_TAG.into(), |i| i.tag.clone());
                (pipeline, tag)
            }
            (None, Some(mut filter)) => {
                // A lone filter takes every record unless the test says otherwise.
                if !filter.contains_key("match") {
                    filter.insert("match".into(), "*".into());
                }
                let key = format!("{key}.filter");
                let raw: RawFilter = r.value(&key, Value::Mapping(filter))?;
                let spec = r.filter(&key, raw, &plugin_dir, env, &mut HashSet::new())?;
                (r.filters_only(vec![spec], cache_dir.clone()), DEFAULT_FILTER_TEST_TAG.into())
            }
            _ => return Err(r.error(&key, "expected either `config:` (a pipeline config file) or `filter:`")),
        };
        let now = match test.now {
            Some(value) => Some(time(&r, &format!("{key}.now"), value)?),
            None => None,
        };
        let clock_follows_records = now.is_none();
        // Each step with the time it gives, if any: a record that gives none
        // takes the clock's, which starts at `now` and which ticks (and,
        // without `now:`, later records) move.
        let given = test
            .inputs
            .into_iter()
            .enumerate()
            .map(|(j, input)| step(&r, &format!("{key}.inputs[{j}]"), input, &default_tag))
            .collect::<Result<Vec<_>, _>>()?;
        let now = now.or_else(|| given.iter().filter_map(|(_, at)| *at).min()).unwrap_or(DEFAULT_NOW);
        let mut clock = now;
        let steps = given
            .into_iter()
            .map(|(mut step, at)| {
                match &mut step {
                    TestStep::Tick(at) => clock = *at,
                    TestStep::Record(record) => {
                        record.time = at.unwrap_or(clock);
                        if clock_follows_records {
                            clock = clock.max(record.time);
                        }
                    }
                }
                step
            })
            .collect();
        let expect = expectation(&r, &format!("{key}.expect"), test.expect)?;
        if expect.config_error.is_some()
            && !(expect.records.is_empty() && expect.rejected.is_empty() && expect.dead_letters.is_empty())
        {
            return Err(r.error(
                &format!("{key}.expect.config_error"),
                "a refused config runs nothing; expect no records, rejections or dead letters with it",
            ));
        }
        tests.push(TestCase {
            name: test.name,
            position: r.position(&key),
            pipeline,
            now,
            clock_follows_records,
            steps,
            end_of_time: test.end_of_time.unwrap_or(true),
            expect,
        });
    }
    Ok(TestSuite { file: path.to_path_buf(), tests })
}

/// One input, and the time it gives (`tick:` or `time:`), if any; a record
/// that gives none is timed by the caller.
fn step(
    r: &Resolver,
    key: &str,
    input: RawInput,
    tag: &Arc<str>,
) -> Result<(TestStep, Option<Timestamp>), ConfigError> {
    match (input.tick, input.body) {
        (Some(tick), None) => {
            if input.tag.is_some() || input.time.is_some() {
                return Err(r.error(key, "a `tick:` takes no `tag:` or `time:`; it ticks every filter at that time"));
            }
            let at = time(r, &format!("{key}.tick"), tick)?;
            Ok((TestStep::Tick(at), Some(at)))
        }
        (None, Some(body)) => {
            let body = match body_of(r, &format!("{key}.body"), body)? {
                ExpectedBody::Json(json) => serde_json::to_vec(&json).expect("a JSON value always serialises"),
                ExpectedBody::Text(text) => text.into_bytes(),
            };
            let at = input.time.map(|t| time(r, &format!("{key}.time"), t)).transpose()?;
            let record = Record {
                time: 0,
                tag: input.tag.map_or_else(|| tag.clone(), Into::into),
                body: body.into(),
                origin: None,
                ack: None,
                arrival: None,
            };
            Ok((TestStep::Record(record), at))
        }
        _ => Err(r.error(key, "expected either `body:` (a record) or `tick:` (a time)")),
    }
}

fn expectation(r: &Resolver, key: &str, raw: RawExpect) -> Result<Expectation, ConfigError> {
    let records = raw
        .records
        .into_iter()
        .enumerate()
        .map(|(i, e)| record(r, &format!("{key}.records[{i}]"), e.tag, e.time, e.body))
        .collect::<Result<_, _>>()?;
    let rejected = dead_letters(
        r,
        &format!("{key}.rejected"),
        raw.rejected.into_iter().map(|e| (e.filter, e.reason, e.tag, e.time, e.body)),
    )?;
    let dead_letters = dead_letters(
        r,
        &format!("{key}.dead_letters"),
        raw.dead_letters.into_iter().map(|e| (e.stage, e.reason, e.tag, e.time, e.body)),
    )?;
    Ok(Expectation { matching: raw.matching, records, rejected, dead_letters, config_error: raw.config_error })
}

/// A `rejected` or `dead_letters` list at `key`: (who, reason, tag, time, body) each.
fn dead_letters(
    r: &Resolver,
    key: &str,
    items: impl Iterator<Item = (Option<String>, Option<String>, Option<String>, Option<Value>, Option<Value>)>,
) -> Result<Vec<ExpectedDeadLetter>, ConfigError> {
    items
        .enumerate()
        .map(|(i, (by, reason, tag, time, body))| {
            Ok(ExpectedDeadLetter { by, reason, record: record(r, &format!("{key}[{i}]"), tag, time, body)? })
        })
        .collect()
}

fn record(
    r: &Resolver,
    key: &str,
    tag: Option<String>,
    time_value: Option<Value>,
    body: Option<Value>,
) -> Result<ExpectedRecord, ConfigError> {
    Ok(ExpectedRecord {
        position: r.position(key),
        tag,
        time: time_value.map(|t| time(r, &format!("{key}.time"), t)).transpose()?,
        body: body.map(|b| body_of(r, &format!("{key}.body"), b)).transpose()?,
    })
}

/// A time: RFC 3339 text or integer nanoseconds since the Unix epoch.
fn time(r: &Resolver, key: &str, value: Value) -> Result<Timestamp, ConfigError> {
    match value {
        Value::String(text) => parse_rfc3339(&text).map_err(|m| r.error(key, m)),
        Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().expect("checked just above")),
        _ => Err(r.error(key, "expected an RFC 3339 time (2026-11-22T10:00:00Z) or integer nanoseconds")),
    }
}

/// A body: a mapping (JSON) or a string (its bytes as they are, so a test
/// can feed what is not JSON).
fn body_of(r: &Resolver, key: &str, value: Value) -> Result<ExpectedBody, ConfigError> {
    match value {
        Value::String(text) => Ok(ExpectedBody::Text(text)),
        value @ Value::Mapping(_) => serde_json::to_value(&value)
            .map(ExpectedBody::Json)
            .map_err(|e| r.error(key, format!("cannot be expressed as JSON: {e}"))),
        _ => Err(r.error(key, "expected a mapping (a JSON object) or a string (the body's text as it is)")),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_tests;

    /// A folder with `plugins/split.wasm` (resolution only checks that it
    /// exists) and a pipeline config beside the test file.
    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        std::fs::write(dir.path().join("plugins/split.wasm"), b"").unwrap();
        let config = "inputs: [{ type: stdin, tag: app.chunks }]\nfilters: [{ type: split, match: app.chunks }]\noutputs: [{ type: stdout, match: '*' }]\n";
        std::fs::write(dir.path().join("weir.yaml"), config).unwrap();
        dir
    }

    fn load(dir: &Path, text: &str) -> Result<TestSuite, ConfigError> {
        parse_tests(&dir.join("tests.yaml"), text, |_| None)
    }

    fn error(text: &str) -> (String, Option<(usize, usize)>, String) {
        let dir = workspace();
        match load(dir.path(), text).unwrap_err() {
            ConfigError::Invalid { key, position, message, .. } => (key, position, message),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_filter_test_runs_one_filter_that_takes_every_tag() {
        let dir = workspace();
        let text = "tests:\n  - name: t\n    filter: { type: split, config: { field: logs } }\n    now: 2026-11-22T10:00:00Z\n    inputs:\n      - body: { logs: [] }\n      - { tick: 5 }\n      - { tag: x, time: 7, body: 'raw' }\n      - body: {}\n    expect: {}\n";
        let suite = load(dir.path(), text).unwrap();
        let test = &suite.tests[0];
        assert_eq!(test.position, Some((2, 5)));
        assert_eq!(test.pipeline.filters.len(), 1);
        assert_eq!(test.pipeline.filters[0].wasm, dir.path().join("plugins/split.wasm"));
        assert!(test.pipeline.filters[0].matches.matches("anything"));
        assert_eq!(test.pipeline.filters[0].config, serde_json::json!({ "field": "logs" }));
        assert!(test.pipeline.outputs.is_empty() && test.end_of_time);
        let TestStep::Record(first) = &test.steps[0] else { panic!() };
        assert_eq!(
            (&*first.tag, first.time, &first.body[..]),
            ("test", 1_795_341_600_000_000_000, &b"{\"logs\":[]}"[..])
        );
        assert!(matches!(test.steps[1], TestStep::Tick(5)));
        let TestStep::Record(raw) = &test.steps[2] else { panic!() };
        assert_eq!((&*raw.tag, raw.time, &raw.body[..]), ("x", 7, &b"raw"[..]), "a string body is sent as it is");
        let TestStep::Record(after) = &test.steps[3] else { panic!() };
        assert_eq!(after.time, 5, "a record with no time takes the clock's, which the tick moved");
    }

    #[test]
    fn without_now_the_clock_starts_at_the_earliest_time_the_inputs_give() {
        let dir = workspace();
        let text = "tests:\n  - name: t\n    filter: { type: split }\n    inputs:\n      - body: a\n      - { time: 9, body: b }\n      - { tick: 8 }\n    expect: {}\n  - name: u\n    filter: { type: split }\n    inputs: [{ body: a }]\n    expect: {}\n";
        let suite = load(dir.path(), text).unwrap();
        let timed = &suite.tests[0];
        assert_eq!(timed.now, 8, "the tick at 8 is the earliest time given");
        let TestStep::Record(first) = &timed.steps[0] else { panic!() };
        assert_eq!(first.time, 8, "a record with no time takes the clock's");
        assert!(timed.clock_follows_records && timed.steps.len() == 3);
        assert_eq!(suite.tests[1].now, DEFAULT_NOW, "no time given: the fixed default");
    }

    #[test]
    fn the_default_clock_is_the_documented_time() {
        assert_eq!(parse_rfc3339("2000-01-01T00:00:00Z"), Ok(DEFAULT_NOW));
    }

    #[test]
    fn a_config_test_loads_the_config_beside_the_file_and_takes_its_input_tag() {
        let dir = workspace();
        let text = "tests:\n  - name: t\n    config: weir.yaml\n    inputs: [{ body: {} }]\n    end_of_time: false\n    expect: { match: partial, records: [{ tag: a, time: 1, body: {} }], dead_letters: [{ stage: routing }] }\n";
        let suite = load(dir.path(), text).unwrap();
        let test = &suite.tests[0];
        assert_eq!(test.pipeline.outputs.len(), 1);
        let TestStep::Record(record) = &test.steps[0] else { panic!() };
        assert_eq!(&*record.tag, "app.chunks");
        assert!(!test.end_of_time);
        assert_eq!(test.expect.matching, Matching::Partial);
        assert_eq!(test.expect.records[0].time, Some(1));
        assert_eq!(test.expect.records[0].position, Some((6, 41)));
        assert_eq!(test.expect.dead_letters[0].by.as_deref(), Some("routing"));
    }

    #[test]
    fn a_test_names_either_a_config_or_a_filter() {
        let (key, position, message) = error("tests:\n  - name: t\n    expect: {}\n");
        assert_eq!((key.as_str(), position), ("tests[0]", Some((2, 5))));
        assert!(message.contains("either `config:`"), "{message}");
    }

    #[test]
    fn an_input_is_a_record_or_a_tick_not_both() {
        let (key, _, message) = error(
            "tests:\n  - name: t\n    filter: { type: split }\n    inputs: [{ tick: 1, body: {} }]\n    expect: {}\n",
        );
        assert_eq!(key, "tests[0].inputs[0]");
        assert!(message.contains("either `body:`"), "{message}");
    }

    #[test]
    fn test_names_are_unique_and_a_file_has_tests() {
        let text = "tests:\n  - { name: t, filter: { type: split }, expect: {} }\n  - { name: t, filter: { type: split }, expect: {} }\n";
        let (key, _, message) = error(text);
        assert_eq!(key, "tests[1]");
        assert_eq!(message, "duplicate test name \"t\"");
        assert_eq!(error("tests: []\n").2, "no tests; expected at least one");
    }

    #[test]
    fn a_config_error_expectation_stands_alone() {
        let text = "tests:\n  - name: t\n    filter: { type: split }\n    expect: { config_error: x, records: [{}] }\n";
        assert_eq!(error(text).0, "tests[0].expect.config_error");
    }

    #[test]
    fn a_body_is_a_mapping_or_a_string() {
        let (key, _, message) =
            error("tests:\n  - name: t\n    filter: { type: split }\n    inputs: [{ body: [1] }]\n    expect: {}\n");
        assert_eq!(key, "tests[0].inputs[0].body");
        assert!(message.starts_with("expected a mapping"), "{message}");
    }
}
