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
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(config.pipeline.workers, cores, "one worker per core by default");
    assert_eq!(config.filters[0].partition_by, None);
    assert_eq!(&*config.dead_letter_tag, "weir.dead_letter");
    assert!(matches!(config.outputs[0].config, OutputConfig::Stdout(_)));
}

#[test]
fn a_full_config_resolves_every_setting() {
    let (dir, file) = workspace();
    let text = "\
pipeline: { batch_max_records: 50, queue_capacity: 2, tick_interval: 250ms, workers: 3 }
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
    partition_by: [metric, device.os]
    config: { field: logs, context: [app] }
outputs:
  - { type: file, path: out/o.ndjson, match: '*', batch: { max_records: 10, max_wait: 1s }, retry: { max_attempts: 5 }, encoding: envelope }
";
    let env = |name: &str| (name == "HOME_DIR").then(|| "/home/x".to_string());
    let config = parse(&file, text, env).unwrap();
    assert_eq!(config.pipeline.batch_max_records, 50);
    assert_eq!(config.pipeline.tick_interval, Duration::from_millis(250));
    assert_eq!(config.pipeline.workers, 3);
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
    let paths: Vec<&str> = filter.partition_by.iter().flatten().map(|p| p.as_str()).collect();
    assert_eq!(paths, ["metric", "device.os"]);
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
    assert_eq!(message, "unknown input type \"fiel\"; expected one of: stdin, file, kafka, http, forward, otlp");
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

/// Values that are YAML syntax when pasted into the text: each must arrive
/// as the credential, byte for byte.
const AWKWARD: &[&str] = &[
    "k3y #Zq9x-2026",
    "&Zq9x-2026",
    "*Zq9x",
    "!Zq9x-2026",
    "!!str x",
    "Zq9x: 2026",
    "|Zq9x",
    ">Zq9x",
    "- item",
    "? key",
    "'single'",
    "\"double\"",
    "back\\slash\\n\\t",
    "two\nlines",
    "{a: b}",
    "[a, b]",
    "%TAG",
    "@at",
    "`tick",
    ",comma",
    "~",
    "null",
    "true",
    "0123",
    "1e3",
    " padded ",
    "Ünïcødé-密码-🔑",
    "${NOT_A_VAR}",
    "$$",
];

fn http_token(text: &str, token: &str) -> Result<String, String> {
    let (_dir, file) = workspace();
    let env = |name: &str| (name == "TOKEN").then(|| token.to_string());
    let config = parse(&file, text, env).map_err(|e| e.to_string())?;
    let InputConfig::Http(http) = &config.inputs[0].config else { panic!() };
    Ok(http.auth_token.as_ref().expect("a token").expose().to_string())
}

#[test]
fn a_variable_arrives_verbatim_whatever_characters_it_holds() {
    let unquoted = "inputs:\n  - type: http\n    auth_token: ${TOKEN}\noutputs:\n  - { type: stdout, match: '*' }\n";
    let quoted = "inputs:\n  - { type: http, auth_token: \"${TOKEN}\" }\noutputs:\n  - { type: stdout, match: '*' }\n";
    let block =
        "inputs:\n  - type: http\n    auth_token: |-\n      ${TOKEN}\noutputs:\n  - { type: stdout, match: '*' }\n";
    for token in AWKWARD {
        for text in [unquoted, quoted, block] {
            assert_eq!(http_token(text, token).as_deref(), Ok(*token), "{text}");
        }
    }
    // Around other text, too.
    let text = unquoted.replace("${TOKEN}", "pre-${TOKEN}-post");
    assert_eq!(http_token(&text, "a #b").unwrap(), "pre-a #b-post");
}

#[test]
fn an_empty_or_null_credential_is_an_error_never_no_auth() {
    let text = "inputs:\n  - type: http\n    auth_token: ${TOKEN}\noutputs:\n  - { type: stdout, match: '*' }\n";
    let error = http_token(text, "").unwrap_err();
    assert!(error.contains(":3:5: inputs[0].auth_token: a credential must not be empty"), "{error}");
    for written in ["", "~", "null", "&anchor", "*anchor"] {
        let text = format!(
            "x-anchors: &anchor\ninputs:\n  - type: http\n    auth_token: {written}\noutputs:\n  - {{ type: stdout, match: '*' }}\n"
        );
        let error = http_token(&text, "unused").unwrap_err();
        assert!(error.contains("inputs[0].auth_token: is null"), "{written:?}: {error}");
    }
    for auth in [
        "{ bearer: { token: \"${TOKEN}\" } }",
        "{ basic: { username: u, password: \"${TOKEN}\" } }",
        "{ api_key: \"${TOKEN}\" }",
        "{ bearer: { token: ~ } }",
        "~",
    ] {
        let text =
            format!("inputs:\n  - {{ type: http, auth: {auth} }}\noutputs:\n  - {{ type: stdout, match: '*' }}\n");
        let (_dir, file) = workspace();
        let error = parse(&file, &text, |_| Some(String::new())).unwrap_err().to_string();
        assert!(error.contains("inputs[0].auth"), "{auth}: {error}");
        assert!(error.contains("must not be") || error.contains("is null"), "{auth}: {error}");
    }
}

#[test]
fn interpolated_values_take_the_type_of_their_setting() {
    let (_dir, file) = workspace();
    let text = "\
pipeline: { queue_capacity: \"${N}\", batch_max_records: 7 }
inputs:
  - type: http
    address: ${ADDRESS:-127.0.0.1:9880}
    max_records: ${N}
    max_body_bytes: ${SIZE}
  - type: file
    path: ${N}
    follow: ${YES}
outputs:
  - { type: stdout, match: '*', batch: { max_records: \"${N}\" } }
";
    let env = |name: &str| match name {
        "N" => Some("12".to_string()),
        "SIZE" => Some("2MiB".to_string()),
        "YES" => Some("true".to_string()),
        _ => None,
    };
    let config = parse(&file, text, env).unwrap();
    assert_eq!(config.pipeline.queue_capacity, 12);
    let InputConfig::Http(http) = &config.inputs[0].config else { panic!() };
    assert_eq!(
        (http.address.to_string().as_str(), http.max_records, http.max_body_bytes.0),
        ("127.0.0.1:9880", 12, 2 << 20)
    );
    let InputConfig::File(input) = &config.inputs[1].config else { panic!() };
    assert!(input.path.ends_with("12") && input.follow);
    assert_eq!(config.outputs[0].batch.max_records, 12);
    // A literal keeps YAML's own types: a quoted number is text.
    let (key, _, message) = error(&MINIMAL.replace("match: \"*\"", "match: \"*\"\n    batch: { max_records: \"5\" }"));
    assert_eq!(key, "outputs[0].batch.max_records");
    assert!(message.contains("invalid type: string \"5\""), "{message}");
}

#[test]
fn a_plugin_config_types_unquoted_variables_and_keeps_quoted_ones_text() {
    let (_dir, file) = workspace();
    let text = MINIMAL.replace(
        "match: file",
        "match: file\n    config:\n      a: ${N}\n      b: \"${N}\"\n      c: ${T}\n      d: x${N}",
    );
    let env = |name: &str| match name {
        "N" => Some("800".to_string()),
        "T" => Some("true".to_string()),
        _ => None,
    };
    let config = parse(&file, &text, env).unwrap();
    assert_eq!(config.filters[0].config, serde_json::json!({ "a": 800, "b": "800", "c": true, "d": "x800" }));
}

#[test]
fn variables_in_comments_are_never_looked_at() {
    let (_dir, file) = workspace();
    let text = format!("# ${{NOPE}} at the top\n{}", MINIMAL.replace("in.ndjson", "in.ndjson   # or ${NOPE}"));
    let config = parse(&file, &text, no_env).unwrap();
    let InputConfig::File(input) = &config.inputs[0].config else { panic!() };
    assert!(input.path.ends_with("in.ndjson"));
}

#[test]
fn positions_are_those_of_the_file_whatever_a_variable_holds() {
    let (_dir, file) = workspace();
    let text =
        "inputs:\n  - { type: file, path: \"${LONG}\", folow: true }\noutputs:\n  - { type: stdout, match: '*' }\n";
    let env = |name: &str| (name == "LONG").then(|| "x".repeat(40));
    let err = parse(&file, text, env).unwrap_err().to_string();
    // Column 36 is where `folow` is written, not where it would be once
    // 40 characters were pasted in before it.
    assert!(err.contains("weir.yaml:2:36: inputs[0].folow: unknown field"), "{err}");
}

#[test]
fn an_unquoted_variable_inside_braces_gets_a_hint() {
    let (_, position, message) = error("inputs:\n  - { type: file, path: ${IN} }\noutputs: []\n");
    assert_eq!(position.map(|p| p.0), Some(2));
    assert!(message.contains("write a variable quoted: \"${VAR}\""), "{message}");
}

#[test]
fn anchors_aliases_and_merge_keys_apply() {
    let (_dir, file) = workspace();
    let text = "\
inputs: [{ type: stdin }]
outputs:
  - &defaults
    type: file
    name: a
    match: '*'
    path: a.ndjson
    encoding: envelope
    batch: &batching { max_records: 10, max_wait: 50ms }
  - <<: *defaults
    name: b
    path: b.ndjson
  - { type: stdout, name: c, match: x, batch: *batching }
  - <<: [{ name: d, path: d.ndjson }, *defaults]
";
    let config = parse(&file, text, no_env).unwrap();
    let names: Vec<&str> = config.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    for output in [&config.outputs[1], &config.outputs[3]] {
        let OutputConfig::File(f) = &output.config else { panic!() };
        assert_eq!(f.encoding, crate::outputs::LineEncoding::Envelope, "merged from the anchor");
        assert!(f.path.ends_with(format!("{}.ndjson", output.name)), "own keys win: {:?}", f.path);
        assert_eq!(output.batch.max_records, 10);
    }
    assert_eq!(config.outputs[2].batch.max_wait, Duration::from_millis(50));
}

#[test]
fn dedupe_is_off_by_default_and_on_with_a_bounded_capacity() {
    let (_dir, file) = workspace();
    let dedupe = |setting: &str| {
        let text = MINIMAL.replace("match: file", &format!("match: file\n    {setting}"));
        parse(&file, &text, no_env).map(|c| c.filters[0].dedupe.map(|d| d.capacity)).map_err(|e| e.to_string())
    };
    assert_eq!(dedupe(""), Ok(None));
    assert_eq!(dedupe("dedupe: false"), Ok(None));
    assert_eq!(dedupe("dedupe: true"), Ok(Some(1_000_000)));
    assert_eq!(dedupe("dedupe: { capacity: 5000 }"), Ok(Some(5000)));
    assert!(dedupe("dedupe: { capacity: 0 }").unwrap_err().contains("filters[0].dedupe.capacity: must be at least 1"));
    assert!(dedupe("dedupe: { size: 5 }").is_err());
}

#[test]
fn a_misused_merge_key_is_named_in_the_error() {
    let (key, position, message) = error("inputs: [{ type: stdin }]\noutputs:\n  - <<: nope\n    type: stdout\n");
    assert_eq!((key.as_str(), position), ("", Some((3, 9))));
    assert!(message.contains("merge key `<<`"), "{message}");
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
fn weir_workers_sets_the_default_worker_count_and_the_config_wins() {
    let (_dir, file) = workspace();
    let env = |name: &str| (name == "WEIR_WORKERS").then(|| "1".to_string());
    assert_eq!(parse(&file, MINIMAL, env).unwrap().pipeline.workers, 1);
    let text = format!("pipeline: {{ workers: 5 }}\n{MINIMAL}");
    assert_eq!(parse(&file, &text, env).unwrap().pipeline.workers, 5);
    let bad = |name: &str| (name == "WEIR_WORKERS").then(|| "many".to_string());
    let ConfigError::Invalid { key, message, .. } = parse(&file, MINIMAL, bad).unwrap_err() else { panic!() };
    assert_eq!(key, "pipeline.workers");
    assert_eq!(message, "environment variable WEIR_WORKERS=\"many\" is not a positive number of workers");
    assert_eq!(error(&format!("pipeline: {{ workers: 0 }}\n{MINIMAL}")).2, "must be at least 1");
}

#[test]
fn a_bad_partition_by_path_is_named_with_its_position() {
    let text = MINIMAL.replace("    match: file\n", "    match: file\n    partition_by: [metric, \"a..b\"]\n");
    let (key, position, message) = error(&text);
    assert_eq!(key, "filters[0].partition_by[1]");
    assert_eq!(position, Some((7, 28)));
    assert_eq!(message, "invalid field path \"a..b\"; expected e.g. app or device.os");
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

#[test]
fn debug_output_of_a_config_shows_no_credential() {
    let (_dir, file) = workspace();
    let text = r#"
inputs:
  - { type: http, address: 127.0.0.1:0, auth_token: s3cret-token }
  - type: kafka
    brokers: k:9092
    group_id: g
    topics: [t]
    librdkafka: { sasl.username: weir, sasl.password: s3cret-sasl }
outputs:
  - type: elasticsearch
    match: '*'
    hosts: ["https://weir:s3cret-url@es:9200"]
    index: i
    auth: { basic: { username: weir, password: s3cret-basic } }
  - type: alertmanager
    match: alerts
    urls: ["https://am:s3cret-am-url@am:9093"]
    auth: { bearer: { token: s3cret-bearer } }
  - type: elasticsearch
    name: es_api_key
    match: x
    hosts: ["https://es:9200"]
    index: i
    auth: { api_key: s3cret-key }
"#;
    let shown = format!("{:?}", parse(&file, text, no_env).unwrap());
    for secret in
        ["s3cret-token", "s3cret-sasl", "s3cret-url", "s3cret-basic", "s3cret-am-url", "s3cret-bearer", "s3cret-key"]
    {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("https://es:9200/") && shown.contains("https://am:9093"), "hosts still shown: {shown}");
}

#[test]
fn a_durable_buffer_needs_accepted_acks_and_its_folder_is_relative_to_the_file() {
    let text = "inputs:\n  - { type: http, buffer: { dir: buf } }\noutputs:\n  - { type: stdout, match: '*' }\n";
    let (key, position, message) = error(text);
    assert_eq!(key, "inputs[0].buffer");
    assert!(position.is_some());
    assert!(message.contains("needs `ack: accepted`"), "{message}");

    let (_dir, file) = workspace();
    let text = text.replace("buffer:", "ack: accepted, buffer:");
    let config = parse(&file, &text, no_env).unwrap();
    let InputConfig::Http(http) = &config.inputs[0].config else { panic!() };
    let buffer = http.buffer.as_ref().unwrap();
    assert_eq!(buffer.dir, file.parent().unwrap().join("buf"));
    assert_eq!(buffer.fsync, crate::inputs::buffer::Fsync::Always, "the safe default");
}

#[test]
fn a_durable_buffers_settings_that_could_never_work_are_config_errors() {
    let base =
        "inputs:\n  - { type: http, ack: accepted, buffer: BUFFER }\noutputs:\n  - { type: stdout, match: '*' }\n";
    for (buffer, key, says) in [
        ("{ dir: '' }", "inputs[0].buffer.dir", "a folder of its own"),
        ("{ dir: b, max_bytes: 1KiB }", "inputs[0].buffer.max_bytes", "at least 65536 bytes"),
        ("{ dir: b, fsync_interval: 0s }", "inputs[0].buffer.fsync_interval", "more than 0s"),
    ] {
        let (got_key, _, message) = error(&base.replace("BUFFER", buffer));
        assert_eq!(got_key, key, "{buffer}");
        assert!(message.contains(says), "{buffer}: {message}");
    }
    let two = "inputs:\n  - { type: http, name: a, ack: accepted, buffer: { dir: b } }\n  - { type: http, name: c, address: 127.0.0.1:9881, ack: accepted, buffer: { dir: ./b } }\noutputs:\n  - { type: stdout, match: '*' }\n";
    let (key, _, message) = error(two);
    assert_eq!(key, "inputs[1].buffer.dir");
    assert!(message.contains("the buffer of another input"), "{message}");
}

#[test]
fn checkpoints_belong_to_one_input_and_need_an_interval() {
    let kafka = |name: &str, checkpoints: &str| {
        format!(
            "  - {{ type: kafka, name: {name}, brokers: b:9092, group_id: g, topics: t, checkpoints: {checkpoints} }}\n"
        )
    };
    let with = |inputs: String| MINIMAL.replace("inputs:\n", &format!("inputs:\n{inputs}"));
    let (key, _, message) = error(&with(kafka("a", "{}") + &kafka("b", "{ interval: 1s }")));
    assert_eq!(key, "inputs[1].checkpoints");
    assert!(message.contains("only one input"), "{message}");
    let (key, _, message) = error(&with(kafka("a", "{ interval: 0s }")));
    assert_eq!(key, "inputs[0].checkpoints.interval");
    assert!(message.contains("above 0"), "{message}");
    let (key, _, message) = error(&with(kafka("a", "{ topic: \"a b\" }")));
    assert_eq!(key, "inputs[0].checkpoints.topic");
    assert!(message.contains("not a Kafka topic name"), "{message}");
    let (key, _, message) = error(&with(kafka("a", "{ topic: t }")));
    assert_eq!(key, "inputs[0].checkpoints.topic");
    assert!(message.contains("a topic this input reads"), "{message}");
    let (key, _, message) = error(&with(kafka("a", "{ replication_factor: 0 }")));
    assert_eq!(key, "inputs[0].checkpoints.replication_factor");
    assert!(message.contains("1 or more"), "{message}");
    let (key, _, message) = error(&with(kafka("a", "{ intervall: 1s }")));
    assert_eq!(key, "inputs[0].checkpoints.intervall");
    assert!(message.contains("intervall"), "{message}");
}
