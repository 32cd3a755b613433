//! The `redact` example in every plugin language (C, Go, JavaScript, Python,
//! Rust; `plugins/examples/`) on the real binary: each turns the shared input
//! into exactly the expected bytes, carries its running total across a hot
//! reload (`snapshot` -> `restore`), reports its counters in `/metrics`, and
//! has bad configs refused naming the key. `docs/plugins.md` specifies the
//! filter; `plugins/examples/testdata` holds the input and the expectations.
//! The languages' misbehaving plugins are in `plugin_limits`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::util::{Running, TestDir, free_port, plugin_dir, read_ndjson, repo, wait_for, weir};

/// A file in `plugins/examples/testdata`.
fn testdata(name: &str) -> PathBuf {
    repo().join("plugins/examples/testdata").join(name)
}

/// Checks that `just examples` built `plugin`, and compiles it into the
/// tests' shared cache once per run (`weir validate`): the examples in
/// JavaScript and Python are 12 and 18 MB, and a cold compile of one took
/// 10-20 s on a busy 2-core machine, so three tests compiling it at once
/// could outwait `Running::start`. One compile at a time, for the same reason.
fn built(plugin: &str) {
    static COMPILED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let wasm = plugin_dir().join(format!("{plugin}.wasm"));
    assert!(wasm.is_file(), "{} is missing: run `just examples`", wasm.display());
    let mut compiled = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    if compiled.contains(plugin) {
        return;
    }
    let dir = TestDir::new();
    let config = dir.write(
        "weir.yaml",
        &format!(
            "inputs: [{{ type: file, path: in.ndjson, tag: t }}]
filters: [{{ type: {plugin}, match: t }}]
outputs: [{{ type: blackhole, match: t }}]
"
        ),
    );
    let out = weir().args(["validate", "-c"]).arg(&config).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{plugin}: {}", String::from_utf8_lossy(&out.stderr));
    compiled.insert(plugin.to_owned());
}

/// How many lines `path` has so far; 0 before it exists.
fn lines(path: &Path) -> usize {
    std::fs::read(path).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0)
}

/// file -> `plugin` with its defaults -> file: exactly expected-default.ndjson.
fn default_config_output(plugin: &str) {
    built(plugin);
    let dir = TestDir::new();
    dir.run_config(&format!(
        "
inputs: [{{ type: file, path: {input}, tag: t }}]
filters: [{{ type: {plugin}, match: t }}]
outputs:
  - {{ type: file, path: out.ndjson, match: t }}
  - {{ type: file, name: dead_letter, path: dead.ndjson, match: weir.dead_letter }}
",
        input = testdata("input.ndjson").display()
    ));
    let out = std::fs::read_to_string(dir.path("out.ndjson")).unwrap();
    let expected = std::fs::read_to_string(testdata("expected-default.ndjson")).unwrap();
    // Whole files compared as text, so a failure shows the differing lines.
    assert_eq!(out, expected, "{plugin}: output differs from expected-default.ndjson");
    let dead = read_ndjson(&dir.path("dead.ndjson"));
    assert!(dead.is_empty(), "{plugin}: dead-lettered {dead:?}");
}

/// A followed input -> `plugin` configured by custom.json -> file, admin on `admin`.
fn follow_config(plugin: &str, config: &str, admin: u16) -> String {
    format!(
        "admin: {{ address: 127.0.0.1:{admin} }}
pipeline: {{ batch_max_records: 7 }}
inputs: [{{ type: file, path: in.ndjson, follow: true, poll_interval: 10ms, tag: t }}]
filters: [{{ type: {plugin}, match: t, config: {config} }}]
outputs:
  - {{ type: file, path: out.ndjson, match: t, batch: {{ max_wait: 20ms }} }}
  - {{ type: file, name: dead_letter, path: dead.ndjson, match: weir.dead_letter }}
"
    )
}

/// custom.json, half the input, a hot reload to a new instance (the same
/// settings spelled differently), then the rest: exactly
/// expected-custom.ndjson, whose `redactions` member is a running total, so
/// it only matches if the new instance took the old one's total over. The
/// counters, summed over both instances, match expected-custom-counters.json.
fn running_total_across_a_reload(plugin: &str) {
    built(plugin);
    let custom = std::fs::read_to_string(testdata("custom.json")).unwrap();
    let custom = custom.trim();
    let input = std::fs::read_to_string(testdata("input.ndjson")).unwrap();
    let records: Vec<&str> = input.split_inclusive('\n').collect();
    let (first, rest) = records.split_at(records.len() / 2);

    let dir = TestDir::new();
    dir.write("in.ndjson", "");
    let admin = free_port();
    let weir = Running::start(&dir, &follow_config(plugin, custom, admin), admin);
    let mut file = std::fs::OpenOptions::new().append(true).open(dir.path("in.ndjson")).unwrap();
    file.write_all(first.concat().as_bytes()).unwrap();
    let out = dir.path("out.ndjson");
    assert!(wait_for(Duration::from_secs(30), || lines(&out) == first.len()), "{plugin}: the first half is not out");

    let respelled = format!("{},\"emails\":true}}", custom.strip_suffix('}').unwrap());
    dir.write("weir.yaml", &follow_config(plugin, &respelled, admin));
    let (status, body) = weir.reload();
    assert_eq!(status, 200, "{plugin}: {body}");
    assert_eq!(body["changes"]["filters"]["modified"], serde_json::json!([plugin]), "{body}");

    file.write_all(rest.concat().as_bytes()).unwrap();
    assert!(wait_for(Duration::from_secs(30), || lines(&out) == records.len()), "{plugin}: the rest is not out");
    let metrics = weir.metrics();
    weir.stop();

    let expected = std::fs::read_to_string(testdata("expected-custom.ndjson")).unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        expected,
        "{plugin}: output differs from expected-custom.ndjson"
    );
    let counters: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("expected-custom-counters.json")).unwrap()).unwrap();
    for counter in ["emails", "cards"] {
        let line =
            format!("weir_filter_events_total{{filter=\"{plugin}\",counter=\"{counter}\"}} {}", counters[counter]);
        assert!(metrics.lines().any(|l| l == line), "{plugin}: no `{line}` in /metrics:\n{metrics}");
    }
}

/// Bad configs: weir refuses to start, naming the plugin and the key, in
/// the words docs/plugins.md gives for every language (the regex engine's
/// own words follow `invalid regular expression: `).
fn bad_configs_refused(plugin: &str) {
    built(plugin);
    let dir = TestDir::new();
    for (config, error) in [
        ("{ bogus: 1 }", "config field `bogus`: unknown key"),
        ("{ mask: 3 }", "config field `mask`: expected a string"),
        ("{ cards: 'yes' }", "config field `cards`: expected true or false"),
        ("{ email_pattern: '(' }", "config field `email_pattern`: invalid regular expression: "),
    ] {
        let file = dir.write(
            "weir.yaml",
            &format!(
                "inputs: [{{ type: file, path: in.ndjson, tag: t }}]
filters: [{{ type: {plugin}, match: t, config: {config} }}]
outputs: [{{ type: file, path: out.ndjson, match: t }}]
"
            ),
        );
        let out = weir().args(["run", "-c"]).arg(&file).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{plugin}: config {config} was accepted");
        let expected = format!("plugin {plugin}: {error}");
        assert!(stderr.contains(&expected), "{plugin}: {stderr:?} does not say {expected:?}");
    }
}

/// One module of tests per language, named after it.
macro_rules! languages {
    ($($language:ident: $plugin:literal),* $(,)?) => {$(
        mod $language {
            #[test]
            fn turns_the_shared_input_into_exactly_the_expected_bytes() {
                super::default_config_output($plugin);
            }

            #[test]
            fn carries_its_running_total_and_counters_across_a_hot_reload() {
                super::running_total_across_a_reload($plugin);
            }

            #[test]
            fn a_bad_config_is_refused_naming_the_key() {
                super::bad_configs_refused($plugin);
            }
        }
    )*};
}

languages! {
    c: "c-redact",
    go: "go-redact",
    javascript: "js-redact",
    python: "python-redact",
    rust: "rust-redact",
}
