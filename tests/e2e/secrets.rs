//! Credentials never leave Weir: a run with a distinctive secret in every
//! secret setting (the HTTP input's `auth_token`, Elasticsearch basic auth
//! and a host URL's user info, an Alertmanager bearer token and URL user
//! info, Kafka's `sasl.password`), with every output unreachable so their
//! errors are logged, debug logs on, librdkafka's `debug` contexts set, a
//! refused and an applied reload, and `weir validate` of a good and a broken
//! config: no secret appears in stdout, stderr, an admin response, the
//! metrics or the dead letters.

use std::process::Stdio;
use std::time::Duration;

use crate::http_input::post;
use crate::observability::Running;
use crate::util::{TestDir, free_port, http, read_ndjson, sigterm, wait_for, weir};

/// Each secret, and the variable that carries it into the config.
const SECRETS: [(&str, &str); 6] = [
    ("HTTP_TOKEN", "s3cret-http-token-7f3a"),
    ("ES_PASSWORD", "s3cret-es-basic-91c2"),
    ("ES_URL_PASSWORD", "s3cret-es-url-44d0"),
    ("AM_TOKEN", "s3cret-am-bearer-1e8b"),
    ("AM_URL_PASSWORD", "s3cret-am-url-c07e"),
    ("KAFKA_PASSWORD", "s3cret-kafka-sasl-5b7d"),
];

fn config(admin: u16, port: u16, dead: u16, dead_letters: &str, es_host_port: &str) -> String {
    format!(
        r#"
admin: {{ address: 127.0.0.1:{admin} }}
pipeline: {{ shutdown_timeout: 3s }}
inputs:
  - {{ type: http, name: apps, tag: app, address: 127.0.0.1:{port}, auth_token: "${{HTTP_TOKEN}}", ack: accepted }}
  - type: kafka
    name: collectors
    tag: app
    brokers: 127.0.0.1:{dead}
    group_id: weir-secrets
    topics: [chunks]
    librdkafka:
      security.protocol: SASL_PLAINTEXT
      sasl.mechanism: PLAIN
      sasl.username: weir
      sasl.password: "${{KAFKA_PASSWORD}}"
      debug: security,broker,conf
outputs:
  - type: elasticsearch
    name: es_auth
    match: app
    hosts: ["http://127.0.0.1:{dead}"]
    index: app
    auth: {{ basic: {{ username: weir, password: "${{ES_PASSWORD}}" }} }}
    retry: {{ max_attempts: 2 }}
  - type: elasticsearch
    name: es_url
    match: app
    hosts: ["http://weir:${{ES_URL_PASSWORD}}@{es_host_port}"]
    index: app
    retry: {{ max_attempts: 2 }}
  - type: alertmanager
    name: pager
    match: alerts
    urls: ["http://weir:${{AM_URL_PASSWORD}}@127.0.0.1:{dead}"]
    auth: {{ bearer: {{ token: "${{AM_TOKEN}}" }} }}
    max_attempts: 2
  - {{ type: file, name: dead_letter, match: weir.dead_letter, path: {dead_letters} }}
"#
    )
}

/// Panic naming where a secret showed up.
fn assert_no_secret(what: &str, text: &str) {
    for (name, secret) in SECRETS {
        assert!(!text.contains(secret), "{name}'s secret leaked into {what}:\n{text}");
    }
}

#[test]
fn no_secret_appears_in_logs_responses_metrics_validate_output_or_dead_letters() {
    let dir = TestDir::new();
    let (admin, port, dead) = (free_port(), free_port(), free_port());
    let dead_letters = dir.path("dead.ndjson");
    let good = config(admin, port, dead, &dead_letters.display().to_string(), &format!("127.0.0.1:{dead}"));
    // A port that is no number: the URL cannot be parsed, so errors quote it.
    let broken = config(admin, port, dead, &dead_letters.display().to_string(), "127.0.0.1:notaport");
    let file = dir.write("weir.yaml", &good);
    let with_secrets = |cmd: &mut std::process::Command| {
        for (name, secret) in SECRETS {
            cmd.env(name, secret);
        }
    };

    // `weir validate`, of the good config and of the broken one.
    let mut validate = weir();
    with_secrets(validate.args(["validate", "-c"]).arg(&file).env("RUST_LOG", "debug"));
    let out = validate.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_no_secret("weir validate's stdout", &String::from_utf8_lossy(&out.stdout));
    assert_no_secret("weir validate's stderr", &String::from_utf8_lossy(&out.stderr));
    let broken_file = dir.write("broken.yaml", &broken);
    let mut validate = weir();
    with_secrets(validate.args(["validate", "-c"]).arg(&broken_file));
    let out = validate.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid url \"http://127.0.0.1:notaport\""), "the error names the url: {stderr}");
    assert_no_secret("weir validate's error", &stderr);

    // A run with debug logs, every output unreachable.
    let (stdout, stderr) = (dir.path("stdout.log"), dir.path("stderr.log"));
    let mut run = weir();
    with_secrets(
        run.args(["run", "-c"])
            .arg(&file)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap()),
    );
    let mut child = Running(run.spawn().unwrap());
    let log = || std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(30), || http("GET", admin, "/ready").is_some_and(|(s, _)| s == 200)),
        "never ready: {}",
        log()
    );
    let url = format!("http://127.0.0.1:{port}/ingest");
    let token = format!("authorization: Bearer {}", SECRETS[0].1);
    let (status, answer) = post(&url, &["content-type: application/json", &token], br#"{"msg":"hello"}"#);
    assert_eq!(status, 200, "{answer}");
    let alert = br#"{"labels":{"alertname":"SecretsTest"}}"#;
    let (status, answer) = post(&format!("{url}/alerts"), &["content-type: application/json", &token], alert);
    assert_eq!(status, 200, "{answer}");
    let (status, answer) =
        post(&url, &["content-type: application/json", "authorization: Bearer wrong"], br#"{"msg":"x"}"#);
    assert_eq!(status, 401);
    assert_no_secret("a 401 answer", &answer.to_string());

    // Both outputs give up, the Alertmanager too, so their errors are logged
    // and dead letters written.
    assert!(
        wait_for(Duration::from_secs(30), || read_ndjson(&dead_letters).len() >= 3),
        "the outputs never gave up: {:?}\n{}",
        read_ndjson(&dead_letters),
        log()
    );

    // Reloads: refused (a url that does not parse), then applied.
    dir.write("weir.yaml", &broken);
    let (status, refused) = http("POST", admin, "/-/reload").unwrap();
    assert_eq!(status, 422, "{refused}");
    assert!(refused.contains("invalid url"), "{refused}");
    assert_no_secret("a refused reload's response", &refused);
    dir.write("weir.yaml", &good.replace("max_attempts: 2 }", "max_attempts: 3 }"));
    let (status, applied) = http("POST", admin, "/-/reload").unwrap();
    assert_eq!(status, 200, "{applied}");
    assert_no_secret("an applied reload's response", &applied);

    let (_, metrics) = http("GET", admin, "/metrics").unwrap();
    assert_no_secret("/metrics", &metrics);
    let (_, health) = http("GET", admin, "/health").unwrap();
    assert_no_secret("/health", &health);

    sigterm(child.0.id());
    child.0.wait().unwrap();
    let stderr = log();
    // The failures did happen, and were logged: what was searched holds them.
    for logged in ["write failed; retrying", "giving up; records sent to dead letter", "reload refused", "librdkafka"] {
        assert!(stderr.contains(logged), "expected {logged:?} in the log:\n{stderr}");
    }
    assert!(stderr.contains("DEBUG"), "debug logs were on");
    assert_no_secret("stderr", &stderr);
    assert_no_secret("stdout", &std::fs::read_to_string(&stdout).unwrap());
    assert_no_secret("the dead letters", &std::fs::read_to_string(&dead_letters).unwrap());
}
