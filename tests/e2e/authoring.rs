//! The plugin authors' tools: `weir test` on every shipped test file and on
//! passing, failing and broken ones; `weir plugin inspect` on bundled and
//! test plugins; `weir plugin new` writing a template. Building what
//! `plugin new` writes needs each language's toolchain: `just
//! test-templates` does that.

use std::path::{Path, PathBuf};

use crate::util::{TestDir, plugin_dir, repo, run};

/// Whether `path` is a `weir test` file: `tests.yaml`, or `NAME.tests.yaml`
/// beside the config it tests.
pub fn is_test_file(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n == "tests.yaml" || n.ends_with(".tests.yaml"))
}

/// Every test file under `plugins/` and `configs/`.
fn shipped_test_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![repo().join("plugins"), repo().join("configs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if path.is_dir() && !["target", "node_modules"].contains(&&*name) {
                dirs.push(path);
            } else if is_test_file(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_shipped_test_file_passes() {
    // Each bundled plugin ships tests.yaml, and the example configs their
    // NAME.tests.yaml: all run here, so CI runs every one.
    let files = shipped_test_files();
    for plugin in ["split", "extract", "percentiles", "threshold"] {
        assert!(files.contains(&repo().join(format!("plugins/{plugin}/tests.yaml"))), "{plugin} has no tests.yaml");
    }
    let mut args = vec!["test".to_string()];
    args.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
    let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).ends_with(" passed, 0 failed\n"), "{}", stdout(&out));
}

/// A test file for the bundled `split` with `expect` as given.
fn split_test(dir: &TestDir, expect: &str) -> PathBuf {
    let text = format!(
        "tests:
  - name: context is copied onto each statement
    filter: {{ type: split, config: {{ context: [{{ from: device.os, to: os }}] }} }}
    inputs:
      - {{ tag: app, time: 2026-11-22T10:00:00Z, body: {{ device: {{ os: ios }}, logs: [a, b] }} }}
    expect:
{expect}"
    );
    dir.write("tests.yaml", &text)
}

#[test]
fn a_passing_test_file_exits_0_naming_each_test() {
    let dir = TestDir::new();
    let file = split_test(
        &dir,
        "      records:
        - { tag: app, time: 2026-11-22T10:00:00Z, body: { message: a, os: ios } }
        - { tag: app, time: 2026-11-22T10:00:00Z, body: { message: b, os: ios } }
",
    );
    let out = run(&["test", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("ok: {}: context is copied onto each statement\n1 passed, 0 failed\n", file.display())
    );
}

#[test]
fn a_failing_test_prints_a_diff_per_record_and_exits_1() {
    let dir = TestDir::new();
    let file = split_test(
        &dir,
        "      records:
        - { body: { message: a, os: android } }
",
    );
    let out = run(&["test", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let expected = format!(
        r#"FAILED: {}:2:5: context is copied onto each statement
  records: expected 1, got 2
  records[0].body.os: expected "android", got "ios"
    expected (line 8:11): {{ body: {{"message":"a","os":"android"}} }}
    got:      {{ tag: app, time: 2026-11-22T10:00:00Z, body: {{"message":"a","os":"ios"}} }}
  records[1]: unexpected: {{ tag: app, time: 2026-11-22T10:00:00Z, body: {{"message":"b","os":"ios"}} }}
0 passed, 1 failed
"#,
        file.display()
    );
    assert_eq!(text, expected);
}

#[test]
fn partial_matching_checks_only_the_keys_written() {
    let dir = TestDir::new();
    let file = split_test(
        &dir,
        "      match: partial
      records:
        - { body: { os: ios } }
        - { body: { message: b } }
",
    );
    let out = run(&["test", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn a_broken_test_file_exits_2_with_its_position() {
    let dir = TestDir::new();
    let file = dir
        .write("tests.yaml", "tests:\n  - name: typo\n    filter: { type: split }\n    inputz: []\n    expect: {}\n");
    let out = run(&["test", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(&format!("error: {}:4:5: tests[0].inputz: unknown field `inputz`", file.display())),
        "{}",
        stderr(&out)
    );

    let file = dir.write(
        "time.yaml",
        "tests:\n  - name: bad time\n    filter: { type: split }\n    inputs:\n      - { time: yesterday, body: {} }\n    expect: {}\n",
    );
    let out = run(&["test", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(&format!(
            "error: {}:5:11: tests[0].inputs[0].time: \"yesterday\" is not an RFC 3339 time",
            file.display()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unexpected_config_error_fails_the_test_with_the_plugins_message() {
    let dir = TestDir::new();
    let file = dir.write(
        "tests.yaml",
        "tests:\n  - name: bad regex\n    filter: { type: split, config: { time: { regex: '(' } } }\n    expect: {}\n",
    );
    let out = run(&["test", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("  the filters did not start: plugin split: config field `time.regex`: "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn inspect_shows_the_contract_the_interfaces_and_what_weir_grants() {
    let split = plugin_dir().join("split.wasm");
    let out = run(&["plugin", "inspect", split.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "contract: weir:filter@0.1.0 (this host: 0.1.0, compatible)\n",
        &format!("size:     {} bytes", std::fs::metadata(&split).unwrap().len()),
        "  weir:filter/plugin@0.1.0: configure, process, tick, snapshot, restore\n",
        "  weir:filter/host@0.1.0: log, now, counter-add\n",
        "  environment  environment variables: none unless the filter's `grants: { env: [...] }` names them\n",
        "links:    yes, this host provides every import\n",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    assert!(has_import(&text, "wasi:cli/environment", "environment"), "{text}");
    assert!(text.contains("compile:  ") && text.contains(" s on this machine"), "{text}");
    assert!(!text.contains("sockets"), "split imports no sockets:\n{text}");
}

/// Whether `inspect` output lists an import of `interface` (any version)
/// as the capability `capability`.
fn has_import(text: &str, interface: &str, capability: &str) -> bool {
    text.lines().any(|line| {
        line.strip_prefix(&format!("  {interface}@")).is_some_and(|rest| rest.ends_with(&format!(" ({capability})")))
    })
}

#[test]
fn inspect_shows_a_plugin_that_imports_sockets() {
    let misbehave = plugin_dir().join("misbehave.wasm");
    let out = run(&["plugin", "inspect", misbehave.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(has_import(&text, "wasi:sockets/tcp", "sockets"), "{text}");
    assert!(text.contains("  sockets      network sockets: none unless the filter's `grants: { network: true }`\n"));
    assert!(text.contains("  filesystem   files: none unless"), "{text}");
}

#[test]
fn inspect_refuses_a_plugin_of_another_contract_naming_both_versions() {
    let future = plugin_dir().join("future-contract.wasm");
    let out = run(&["plugin", "inspect", future.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: plugin future-contract ({}): built for contract weir:filter@0.2.0, but this host supports weir:filter@0.1.0; rebuild the plugin against a compatible wit/\n",
            future.display()
        )
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn plugin_new_writes_a_rust_crate_with_its_tests_and_the_contract() {
    let dir = TestDir::new();
    let target = dir.path("my-filter");
    let out = run(&["plugin", "new", "--lang", "rust", "my-filter", "--dir", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let read = |name: &str| std::fs::read_to_string(target.join(name)).unwrap();
    assert!(read("Cargo.toml").contains("name = \"my-filter\""));
    assert!(read("src/lib.rs").contains("weir_plugin_sdk::export_filter!(MyFilter);"));
    assert!(read("tests.yaml").contains("filter: { type: my-filter, path: my-filter.wasm }"));
    assert_eq!(read("wit/filter.wit"), std::fs::read_to_string(repo().join("wit/filter.wit")).unwrap());
    assert_eq!(
        read("vendor/weir-plugin-sdk/src/filter.rs"),
        std::fs::read_to_string(repo().join("plugins/sdk/src/filter.rs")).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(std::fs::metadata(target.join("build.sh")).unwrap().permissions().mode() & 0o111, 0);

    let again = run(&["plugin", "new", "--lang", "rust", "my-filter", "--dir", target.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists and is not empty"), "{}", stderr(&again));
}

#[test]
fn plugin_new_refuses_a_name_no_language_takes() {
    let dir = TestDir::new();
    let out = run(&["plugin", "new", "--lang", "rust", "My_Filter", "--dir", dir.path("x").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid plugin name \"My_Filter\""), "{}", stderr(&out));
    assert!(!dir.path("x").exists());
}
