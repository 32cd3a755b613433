//! Config loading and its errors: every error names file, line, column and
//! key, and says what was expected.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ConfigError, parse, parse_tests};
use crate::inputs::InputConfig;
use crate::outputs::OutputConfig;

/// A folder with a `plugins/split.wasm` placeholder, and its config path.
/// Resolution only checks that the plugin file exists.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::write(dir.path().join("plugins/split.wasm"), b"").unwrap();
    let file = dir.path().join("weir.yaml");
    (dir, file)
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn error(text: &str) -> (String, Option<(usize, usize)>, String) {
    let (_dir, file) = workspace();
    match parse(&file, text, no_env).unwrap_err() {
        ConfigError::Invalid { key, position, message, .. } => (key, position, message),
        other => panic!("{other}"),
    }
}

const MINIMAL: &str = "\
inputs:
  - type: file
    path: in.ndjson
filters:
  - type: split
    match: file
outputs:
  - type: stdout
    match: \"*\"
";

#[test]
fn a_minimal_config_gets_defaults() {
    let (dir, file) = workspace();
    let config = parse(&file, MINIMAL, no_env).unwrap();
    assert_eq!(config.inputs[0].name, "file");
    assert_eq!(&*config.inputs[0].tag, "file", "the tag defaults to the input's name");
    let InputConfig::File(input) = &config.inputs[0].config else { panic!() };
    assert_eq!(input.path, dir.path().join("in.ndjson"), "paths are relative to the config file");
    assert!(!input.follow);
    assert_eq!(config.filters[0].wasm, dir.path().join("plugins/split.wasm"));
    assert_eq!(config.filters[0].config, serde_json::json!({}));
    assert_eq!(config.outputs[0].batch.max_records, 1000);
    assert_eq!(config.outputs[0].retry.max_attempts, None, "outputs retry forever by default");
    assert_eq!(config.pipeline.batch_max_records, 1000);
    assert_eq!(&*config.dead_letter_tag, "weir.dead_letter");
    assert!(matches!(config.outputs[0].config, OutputConfig::Stdout(_)));
}

#[test]
fn a_full_config_resolves_every_setting() {
    let (dir, file) = workspace();
    let text = "\
pipeline: { batch_max_records: 50, queue_capacity: 2, tick_interval: 250ms }
dead_letter: { tag: dlq }
admin: { address: 127.0.0.1:9600 }
state_dir: state
inputs:
  - { type: file, name: app, path: a.log, follow: true, start_at: end, format: lines, tag: app.raw }
  - { type: stdin }
filters:
  - type: split
    name: splitter
    match: [app.*, other]
    limits: { deadline: 50ms, memory: 16MiB }
    grants: { env: [HOME_DIR], wall_clock: true }
    config: { field: logs, context: [app] }
outputs:
  - { type: file, path: out/o.ndjson, match: '*', batch: { max_records: 10, max_wait: 1s }, retry: { max_attempts: 5 }, encoding: envelope }
";
    let env = |name: &str| (name == "HOME_DIR").then(|| "/home/x".to_string());
    let config = parse(&file, text, env).unwrap();
    assert_eq!(config.pipeline.batch_max_records, 50);
    assert_eq!(config.pipeline.tick_interval, Duration::from_millis(250));
    assert_eq!(&*config.dead_letter_tag, "dlq");
    assert_eq!(config.admin.unwrap().address.to_string(), "127.0.0.1:9600");
    assert_eq!(config.state_dir.unwrap(), dir.path().join("state"));
    assert_eq!(&*config.inputs[0].tag, "app.raw");
    let filter = &config.filters[0];
    assert_eq!(filter.name, "splitter");
    assert!(filter.matches.matches("app.x") && filter.matches.matches("other") && !filter.matches.matches("app"));
    assert_eq!(filter.limits.deadline, Duration::from_millis(50));
    assert_eq!(filter.limits.memory, 16 << 20);
    assert_eq!(filter.grants.env, [("HOME_DIR".to_string(), "/home/x".to_string())]);
    assert!(filter.grants.wall_clock && !filter.grants.network);
    assert_eq!(filter.config, serde_json::json!({ "field": "logs", "context": ["app"] }));
    assert_eq!(config.outputs[0].batch.max_wait, Duration::from_secs(1));
    assert_eq!(config.outputs[0].retry.max_attempts, Some(5));
}

#[test]
fn zero_or_unknown_retry_settings_are_refused() {
    let text = MINIMAL.replace("match: \"*\"", "match: \"*\"\n    retry: { max_attempts: 0 }");
    let (key, _, message) = error(&text);
    assert_eq!(key, "outputs[0].retry.max_attempts");
    assert!(message.contains("must be at least 1"), "{message}");
    let text = MINIMAL.replace("match: \"*\"", "match: \"*\"\n    retry: { attempts: 3 }");
    let (key, _, message) = error(&text);
    assert_eq!(key, "outputs[0].retry.attempts");
    assert!(message.contains("unknown field"), "{message}");
}

#[test]
fn an_unknown_top_level_key_is_refused_with_its_position() {
    let (key, position, message) = error("inputs: []\nouptuts: []\n");
    assert_eq!(key, "ouptuts");
    assert_eq!(position, Some((2, 1)));
    assert!(message.starts_with("unknown field `ouptuts`, expected one of"), "{message}");
}

#[test]
fn an_unknown_key_in_a_section_is_named_once() {
    let (key, position, message) = error(&format!("pipeline: {{ batch_max_recordz: 3 }}\n{MINIMAL}"));
    assert_eq!(key, "pipeline.batch_max_recordz");
    assert_eq!(position, Some((1, 13)));
    assert!(message.starts_with("unknown field `batch_max_recordz`, expected one of"), "{message}");
}

#[test]
fn an_unknown_input_field_names_the_input_and_line() {
    let text = MINIMAL.replace("path: in.ndjson", "path: in.ndjson\n    folow: true");
    let (key, position, message) = error(&text);
    assert_eq!(key, "inputs[0].folow");
    assert_eq!(position, Some((4, 5)));
    assert!(message.contains("unknown field `folow`") && message.contains("follow"), "{message}");
}

#[test]
fn a_wrongly_typed_value_says_what_was_expected() {
    let text = MINIMAL.replace("path: in.ndjson", "path: in.ndjson\n    follow: maybe");
    let (key, position, message) = error(&text);
    assert_eq!(key, "inputs[0].follow");
    assert_eq!(position, Some((4, 5)));
    assert!(message.contains("expected a boolean"), "{message}");
}

#[test]
fn an_unknown_input_type_lists_the_known_ones() {
    let (key, position, message) = error(&MINIMAL.replace("type: file", "type: fiel"));
    assert_eq!(key, "inputs[0].type");
    assert_eq!(position, Some((2, 5)));
    assert_eq!(message, "unknown input type \"fiel\"; expected one of: stdin, file, kafka, http");
}

#[test]
fn an_output_without_match_is_refused() {
    let (key, position, message) = error(&MINIMAL.replace("    match: \"*\"\n", ""));
    assert_eq!(key, "outputs[0]");
    assert_eq!(position, Some((8, 5)));
    assert!(message.starts_with("missing field `match`"), "{message}");
}

#[test]
fn a_missing_plugin_file_says_where_it_looked_and_how_to_build_it() {
    let (key, position, message) = error(&MINIMAL.replace("type: split", "type: splt"));
    assert_eq!(key, "filters[0].type");
    assert_eq!(position, Some((5, 5)));
    assert!(message.contains("splt.wasm not found") && message.contains("just plugins"), "{message}");
}

#[test]
fn duplicate_names_are_refused() {
    let text = MINIMAL.replace("outputs:\n", "outputs:\n  - type: stdout\n    match: x\n");
    let (key, position, message) = error(&text);
    assert_eq!(key, "outputs[1]");
    assert_eq!(position, Some((10, 5)));
    assert!(message.contains("duplicate name \"stdout\""), "{message}");
}

#[test]
fn bad_units_name_the_key() {
    let text = MINIMAL.replace("match: file", "match: file\n    limits: { memory: 12 parsecs }");
    let (key, position, message) = error(&text);
    assert_eq!(key, "filters[0].limits.memory");
    assert_eq!(position, Some((7, 15)));
    assert!(message.contains("expected e.g. \"64MiB\""), "{message}");
    let text = MINIMAL.replace("match: \"*\"", "match: \"*\"\n    batch: { max_wait: soon }");
    let (key, _, message) = error(&text);
    assert_eq!(key, "outputs[0].batch.max_wait");
    assert!(message.contains("invalid duration \"soon\""), "{message}");
}

#[test]
fn variables_are_interpolated_with_defaults() {
    let (_dir, file) = workspace();
    let text = MINIMAL.replace("in.ndjson", "${LOGS:-in}.ndjson").replace("match: file", "match: ${TAG}");
    let env = |name: &str| (name == "TAG").then(|| "from.env".to_string());
    let config = parse(&file, &text, env).unwrap();
    assert!(config.filters[0].matches.matches("from.env"));
    let InputConfig::File(input) = &config.inputs[0].config else { panic!() };
    assert!(input.path.ends_with("in.ndjson"));
}

#[test]
fn a_missing_variable_names_its_line() {
    let (_dir, file) = workspace();
    let err = parse(&file, &MINIMAL.replace("match: file", "match: ${NOPE}"), no_env).unwrap_err();
    let text = err.to_string();
    assert!(
        text.ends_with(
            "weir.yaml:6:12: environment variable NOPE is not set; set it or give a default: ${NOPE:-default}"
        ),
        "{text}"
    );
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let (key, position, message) = error("inputs:\n  - type: [file\n");
    assert_eq!(key, "");
    assert!(position.is_some());
    assert!(message.starts_with("invalid YAML"), "{message}");
}

#[test]
fn empty_and_pointless_configs_are_refused() {
    assert_eq!(error("").2, "the config is empty; expected `inputs:` and `outputs:`");
    assert_eq!(error("inputs: []\noutputs: []\n").2, "no inputs; expected at least one");
}

#[test]
fn the_display_names_file_line_column_and_key() {
    let (_dir, file) = workspace();
    let err = parse(&file, "inputs: []\nouptuts: []\n", no_env).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with(&format!("{}:2:1: ouptuts: unknown field", file.display())), "{text}");
}

/// Every shipped config and `weir test` file must load (with the bundled
/// plugins built).
#[test]
fn every_shipped_config_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let plugins =
        std::env::var("WEIR_PLUGIN_DIR").unwrap_or_else(|_| root.join("target/plugins").display().to_string());
    let mut seen = 0;
    for entry in walk(&root.join("configs")) {
        if entry.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&entry).unwrap();
            let env = |name: &str| (name == "WEIR_PLUGIN_DIR").then(|| plugins.clone());
            let loaded = if entry.to_string_lossy().ends_with("tests.yaml") {
                parse_tests(&entry, &text, env).map(drop)
            } else {
                parse(&entry, &text, env).map(drop)
            };
            if let Err(e) = loaded {
                panic!("{e}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 1);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn the_admin_section_takes_a_token_and_window_samples() {
    let (_dir, file) = workspace();
    let text = "\
admin:
  address: 127.0.0.1:9600
  token: ${TOKEN}
  samples: { filter: split, match: metrics, key: [metric, labels], bucket: 15m }
inputs: [{ type: stdin }]
filters: [{ type: split, match: '*' }]
outputs: [{ type: stdout, match: '*' }]
";
    let env = |name: &str| (name == "TOKEN").then(|| "s3cret".to_string());
    let admin = parse(&file, text, env).unwrap().admin.unwrap();
    assert_eq!(admin.token.unwrap().expose(), "s3cret");
    let samples = admin.samples.unwrap();
    assert_eq!((samples.filter.as_str(), samples.key.len()), ("split", 2));
    assert!(samples.matches.matches("metrics") && !samples.matches.matches("logs"));
    assert_eq!(samples.bucket, Duration::from_secs(900));
}

#[test]
fn window_samples_name_a_configured_filter_and_a_key() {
    let base =
        "inputs: [{ type: stdin }]\nfilters: [{ type: split, match: '*' }]\noutputs: [{ type: stdout, match: '*' }]\n";
    let (key, _, message) =
        error(&format!("admin: {{ address: 127.0.0.1:1, samples: {{ filter: extract, key: [m] }} }}\n{base}"));
    assert_eq!(key, "admin.samples.filter");
    assert_eq!(message, "no filter named \"extract\"; the filters are: split");
    let (key, _, _) =
        error(&format!("admin: {{ address: 127.0.0.1:1, samples: {{ filter: split, key: [] }} }}\n{base}"));
    assert_eq!(key, "admin.samples.key");
    let (key, _, message) = error(&format!("admin: {{ address: 127.0.0.1:1, token: '' }}\n{base}"));
    assert_eq!(key, "admin.token");
    assert!(message.contains("must not be empty"), "{message}");
}
