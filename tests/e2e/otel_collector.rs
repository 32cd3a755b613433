//! A real OpenTelemetry Collector in front of Weir, the `docs/collectors.md`
//! recipe run as written: the OpenTelemetry Python SDK exports to the
//! Collector's `otlp` receiver, and the Collector exports to Weir with
//! both `otlp_grpc` and `otlp_http` exporters. The Collector (core
//! components, v0.165.0) is built from the Go module proxy by
//! `tests/otelcol/build.sh` into `~/.cache/weir`, once.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::util::{Background, TestDir, client, free_port, read_ndjson, repo, wait_for};

fn collector() -> std::path::PathBuf {
    let out = Command::new("bash").arg(repo().join("tests/otelcol/build.sh")).output().expect("bash runs");
    assert!(out.status.success(), "tests/otelcol/build.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("a UTF-8 path").trim().into()
}

#[test]
fn an_opentelemetry_collector_exports_to_weir_over_grpc_and_http() {
    let collector = collector();
    let dir = TestDir::new();
    let mut weir = Background::start(
        &dir,
        "
inputs:
  - { type: otlp, tag: otel.logs, http_address: 127.0.0.1:0, grpc_address: 127.0.0.1:0 }
outputs:
  - { type: file, path: out.ndjson, match: otel.logs, encoding: envelope, batch: { max_records: 1, max_wait: 1ms } }
",
        "warn,weir::inputs::otlp=info",
    );
    let listening = weir.wait_for_log("otlp input listening");
    let (http, grpc) = (listening["http"].as_str().unwrap(), listening["grpc"].as_str().unwrap());
    let receiver = free_port();
    let config = dir.write(
        "otelcol.yaml",
        &format!(
            "
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: 127.0.0.1:{receiver} }}
exporters:
  otlp_grpc/weir:
    endpoint: {grpc}
    tls: {{ insecure: true }}
    compression: gzip
  otlp_http/weir:
    endpoint: http://{http}
    compression: gzip
service:
  telemetry:
    metrics: {{ level: none }}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlp_grpc/weir, otlp_http/weir]
"
        ),
    );
    let mut otelcol = Command::new(&collector)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path("otelcol.log")).unwrap()))
        .spawn()
        .expect("the collector starts");
    let up = wait_for(Duration::from_secs(30), || std::net::TcpStream::connect(("127.0.0.1", receiver)).is_ok());
    let sent = up.then(|| client("otlp_client.py", &["sdk", "grpc", &format!("http://127.0.0.1:{receiver}"), "5"]));
    let out = dir.path("out.ndjson");
    let arrived = wait_for(Duration::from_secs(30), || read_ndjson(&out).len() == 10);
    let _ = otelcol.kill();
    let _ = otelcol.wait();
    let log = std::fs::read_to_string(dir.path("otelcol.log")).unwrap_or_default();
    assert!(up, "the collector did not listen:\n{log}");
    assert_eq!(sent.unwrap()["results"], json!(vec!["SUCCESS"; 5]));
    assert!(arrived, "each record once per exporter, 10 in all:\n{log}\n{}", weir.log_text());
    let records = read_ndjson(&out);
    for i in 0..5 {
        let copies: Vec<_> = records.iter().filter(|r| r["body"]["attributes"]["i"] == i).collect();
        assert_eq!(copies.len(), 2, "record {i} once over gRPC, once over HTTP");
        for copy in copies {
            assert_eq!(copy["body"]["body"], format!("payment {i} slow"));
            assert_eq!(copy["body"]["resource"]["attributes"]["service.name"], "shop");
            assert_eq!(copy["body"]["scope"]["name"], "checkout");
        }
    }
    weir.stop();
}
