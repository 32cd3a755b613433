//! The config loader through the real binary: `${VAR}`s arrive verbatim
//! whatever they hold (an HTTP token is enforced exactly, or the config is
//! refused), and YAML anchors, aliases and merge keys apply.

use crate::http_input::{Running, post};
use crate::util::{TestDir, read_ndjson, run, weir};

/// The README's own pattern: the token from the environment, unquoted.
const TOKEN_CONFIG: &str = "
inputs:
  - type: http
    tag: app
    address: 127.0.0.1:0
    auth_token: ${WEIR_HTTP_TOKEN}
outputs:
  - { type: blackhole, match: app }
";

/// Tokens that are YAML syntax when pasted into the text: a comment, an
/// anchor, an alias, a tag, a key, block indicators, quotes, flow
/// collections, escapes, core-schema words, unicode. (Leading or trailing
/// spaces and newlines cannot travel in a Bearer header; the unit tests
/// cover them.)
const TOKENS: &[&str] = &[
    "k3y #Zq9x-2026",
    "&Zq9x-2026",
    "*Zq9x",
    "!Zq9x-2026",
    "Zq9x: 2026",
    "|Zq9x",
    ">Zq9x",
    "- Zq9x",
    "'Zq9x'",
    "\"Zq9x\"",
    "Zq\\x9\\n",
    "{a: b}",
    "[a, b]",
    "%Zq9x",
    "@Zq9x",
    "~",
    "null",
    "0123",
    "Ünïcødé-密码",
    "${NOT_A_VAR}",
];

#[test]
fn an_http_token_from_the_environment_is_enforced_exactly_whatever_it_holds() {
    for token in TOKENS {
        let dir = TestDir::new();
        let weir = Running::start_with_env(&dir, TOKEN_CONFIG, &[("WEIR_HTTP_TOKEN", token)]);
        let url = format!("{}/ingest", weir.url);
        let body = br#"{"probe":1}"#;
        let json = "Content-Type: application/json";
        assert_eq!(post(&url, &[json], body).0, 401, "{token:?}: no token must be refused");
        let full = format!("Authorization: Bearer {token}");
        assert_eq!(post(&url, &[json, &full], body).0, 200, "{token:?}: the full token must be accepted");
        // What textual interpolation used to enforce instead.
        let prefix = token.split(" #").next().unwrap();
        if prefix != *token {
            let partial = format!("Authorization: Bearer {prefix}");
            assert_eq!(post(&url, &[json, &partial], body).0, 401, "{token:?}: a prefix must be refused");
        }
        weir.stop();
    }
}

#[test]
fn validate_accepts_awkward_tokens_and_refuses_an_empty_one() {
    let dir = TestDir::new();
    let file = dir.write("weir.yaml", TOKEN_CONFIG);
    let validate = |token: &str| {
        weir().args(["validate", "-c"]).arg(&file).env("WEIR_HTTP_TOKEN", token).output().expect("weir runs")
    };
    let out = validate("&Zq9x-2026");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = validate("");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("weir.yaml:6:5: inputs[0].auth_token: a credential must not be empty"), "{stderr}");
    let out = run(&["validate", "-c", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "unset, with no default");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("weir.yaml:6:17: environment variable WEIR_HTTP_TOKEN is not set")
    );
}

#[test]
fn anchors_aliases_and_merge_keys_shape_the_pipeline() {
    let dir = TestDir::new();
    dir.write("in.ndjson", "{\"n\":1}\n");
    dir.run_config(
        "
x-file: &file_defaults
  type: file
  match: app
  encoding: envelope
  batch: &batching { max_records: 10, max_wait: 50ms }
inputs:
  - { type: file, path: in.ndjson, tag: app }
outputs:
  - <<: *file_defaults
    name: a
    path: a.ndjson
  - <<: *file_defaults
    name: b
    path: b.ndjson
    encoding: body
  - { type: file, name: c, match: app, path: c.ndjson, batch: *batching }
",
    );
    let a = read_ndjson(&dir.path("a.ndjson"));
    assert_eq!((a.len(), &a[0]["tag"], &a[0]["body"]["n"]), (1, &"app".into(), &1.into()), "merged: envelope");
    assert_eq!(read_ndjson(&dir.path("b.ndjson")), [serde_json::json!({"n": 1})], "the output's own key wins");
    assert_eq!(read_ndjson(&dir.path("c.ndjson")).len(), 1);
}
