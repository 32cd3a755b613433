//! The command line: version, help, `validate`, `generate`, and exit codes.

use crate::util::{TestDir, ndjson, repo, run};

#[test]
fn version_prints_the_crate_version() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("weir {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_lists_every_subcommand() {
    let out = run(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["run", "validate", "test", "plugin", "bench", "generate"] {
        assert!(text.contains(command), "--help does not mention {command}:\n{text}");
    }
}

#[test]
fn validate_accepts_the_quickstart() {
    let config = repo().join("configs/quickstart.yaml");
    let out = run(&["validate", "-c", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok (1 inputs, 1 filters, 2 outputs)\n"));
}

#[test]
fn validate_accepts_every_shipped_config() {
    // Every config under configs/ is documentation a user copies: each must
    // load, plugins and their own config blocks included.
    let mut configs = Vec::new();
    let mut dirs = vec![repo().join("configs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") && !crate::authoring::is_test_file(&path) {
                configs.push(path);
            }
        }
    }
    assert!(configs.len() >= 10, "found only {configs:?}");
    for config in configs {
        let out = run(&["validate", "-c", config.to_str().unwrap()]);
        assert!(out.status.success(), "{}: {}", config.display(), String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn validate_rejects_an_unknown_key_with_exit_1_and_its_position() {
    let dir = TestDir::new();
    let file = dir
        .write("bad.yaml", "inputs:\n  - type: stdin\n    fromat: lines\noutputs:\n  - { type: stdout, match: '*' }\n");
    let out = run(&["validate", "-c", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: {}:3:5: inputs[0].fromat: unknown field `fromat`, expected one of",
            file.display()
        )),
        "{stderr}"
    );
}

#[test]
fn validate_checks_each_plugins_own_config() {
    let dir = TestDir::new();
    let file = dir.write(
        "bad.yaml",
        "inputs: [{ type: stdin }]\nfilters:\n  - type: split\n    match: '*'\n    config: { time: { regex: '(?P<time>x' } }\noutputs: [{ type: stdout, match: '*' }]\n",
    );
    let out = run(&["validate", "-c", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("filters.split: plugin split: config field `time.regex`: "), "{stderr}");
    assert!(stderr.contains("unclosed group"), "{stderr}");
}

#[test]
fn run_with_a_missing_config_exits_2_naming_the_file() {
    let out = run(&["run", "-c", "/nonexistent/weir.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: /nonexistent/weir.yaml: cannot read config"), "{stderr}");
}

#[test]
fn generate_slow_triples_one_transaction_on_one_os_for_its_span_only() {
    let args = ["generate", "--chunks", "200", "--statements", "20"];
    let normal = ndjson(&run(&args).stdout);
    let out = run(&[&args[..], &["--slow", "pay@ios=4m..9m"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let slowed = ndjson(&out.stdout);
    assert_eq!(normal.len(), slowed.len());
    let (mut tripled, mut same) = (0, 0);
    for (a, b) in normal.iter().zip(&slowed) {
        for (x, y) in a["logs"].as_array().unwrap().iter().zip(b["logs"].as_array().unwrap()) {
            let (x, y) = (x.as_str().unwrap(), y.as_str().unwrap());
            let ms = |s: &str| s.split("resp_ms=").nth(1).map(|v| v.parse::<u64>().unwrap());
            let in_span =
                ("2026-11-22T10:04:00.000Z".."2026-11-22T10:09:00.000Z").contains(&x.split(' ').next().unwrap());
            if x.contains("txn=pay") && b["device"]["os"] == "ios" && in_span {
                assert_eq!(ms(y), ms(x).map(|v| v * 3), "{x} -> {y}");
                tripled += 1;
            } else {
                assert_eq!(x, y, "only iOS payments in the span change");
                same += 1;
            }
        }
    }
    assert!(tripled > 50 && same > 3000, "{tripled} tripled, {same} unchanged");

    let bad = run(&["generate", "--slow", "pay=9m..4m"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected TXN[@OS]=FROM..TO"));
}

/// `weir bench -c`: the whole chain of a shipped config in-process, with
/// a line per filter whose counts add up (split's statements are what
/// extract receives, and so on).
#[test]
fn bench_runs_a_pipelines_chain_and_breaks_the_time_down_per_filter() {
    let dir = TestDir::new();
    let chunks = run(&["generate", "--chunks", "200", "--statements", "10", "--seed", "3"]);
    let input = dir.write("chunks.ndjson", std::str::from_utf8(&chunks.stdout).unwrap());
    let config = repo().join("configs/bench/split-extract-percentiles.yaml");
    let out = run(&["bench", "-c", config.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{}", text, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(": 200 input records -> 2000 statements"), "{text}");
    assert!(text.contains("µs per statement"), "{text}");
    let stage = |name: &str| -> (u64, u64) {
        let line =
            text.lines().find(|l| l.trim_start().starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("{text}"));
        let number = |after: &str| line.split(after).next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
        (number(" records in"), number(" out;"))
    };
    let (split, extract, percentiles) = (stage("split"), stage("extract"), stage("percentiles"));
    assert_eq!(split, (200, 2000), "{text}");
    assert_eq!(extract.0, split.1, "what split emits is what extract takes");
    assert_eq!(percentiles.0, extract.1);
    assert!(text.contains("s in the plugin + "), "{text}");
}

#[test]
fn run_exits_1_when_an_input_stopped_with_an_error_and_still_delivers_the_others() {
    // The http input's port is taken for the whole run: it gives up after
    // its bind patience, while the file input reads to its end.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = TestDir::new();
    dir.write("in.ndjson", "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    let config = dir.write(
        "weir.yaml",
        &format!(
            "
inputs:
  - {{ type: file, path: in.ndjson, tag: t }}
  - {{ type: http, address: 127.0.0.1:{port}, tag: t }}
outputs:
  - {{ type: file, path: out.ndjson, match: t }}
"
        ),
    );
    let out = crate::util::weir().args(["run", "-c"]).arg(&config).stdin(std::process::Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a failed input makes the run fail: {stderr}");
    assert!(stderr.contains("input stopped"), "the failure is logged when it happens: {stderr}");
    assert!(stderr.contains("inputs stopped with an error during the run"), "and summed up at the end: {stderr}");
    let delivered = ndjson(&std::fs::read(dir.path("out.ndjson")).unwrap());
    assert_eq!(delivered.len(), 3, "the other input's records are delivered: {delivered:?}");
}
