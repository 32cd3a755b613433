//! End-to-end tests: the real `weir` binary on real files and configs.
//! Plugins must be built first (`just plugins`, which `just test` runs).
//!
//! Table of contents:
//! - `admin`: `/ready` follows the pipeline
//! - `console`: the console's JSON API on `configs/quickstart-console.yaml`
//! - `cli`: `--version`, `--help`, `validate` and error exit codes
//! - `authoring`: `weir test` (every shipped test file, diffs, exit codes),
//!   `weir plugin new` and `weir plugin inspect`
//! - `config`: `${VAR}`s arrive verbatim (an HTTP token is enforced exactly),
//!   anchors, aliases and merge keys
//! - `quickstart`: `configs/quickstart.yaml` against an oracle built from its input
//! - `local_io`: file/stdin inputs (read once, follow, rotation), file/stdout
//!   outputs, dead letters, routing, shutdown
//! - `http_input`: the `http` input: curl and the Elasticsearch Python
//!   client against the real binary, delivered acks, 429 under backpressure
//! - `es_bulk`: `_bulk` as real clients use it: the `elasticsearch` and
//!   `opensearch-py` bulk helpers unchanged (start-up probes, every action
//!   and its metadata, gzip, `filter_path`), their retry of per-item 429s
//! - `hostile_clients`: the `http` input against slowloris headers and
//!   bodies, a thousand idle connections and the connection limit, a 100 MB
//!   line, a gzip bomb, deep JSON, invalid UTF-8, a client gone before its
//!   ack: statuses, messages, counters, and a good client served meanwhile
//! - `deploy`: `deploy/kubernetes/` against the Kubernetes schemas, and its
//!   Weir configs through `weir validate`
//! - `forward_input`: the `forward` input: Fluentd's `fluent-logger` and
//!   frames built from the Forward spec (all modes, acks after delivery, a
//!   sender hanging up before its ack, bad frames, the handshake, TLS)
//! - `otlp_input`: the `otlp` input: the OpenTelemetry Python SDK's OTLP
//!   exporters (gRPC and HTTP), OTLP/JSON with partial success
//! - `otel_collector`: a real OpenTelemetry Collector (built from the Go
//!   module proxy) exporting to Weir over OTLP gRPC and HTTP
//! - `fluent_bit_abi`: Rust and Go modules written to Fluent Bit's
//!   `filter_wasm` ABI run as filters; `extract` and `split` built as such
//! - `metrics`: split -> extract -> percentiles -> threshold against an exact oracle;
//!   precision at any magnitude; a fast clock cannot close others' windows
//! - `statements`: `split` keeps each statement's own time: year-less and
//!   date-less formats completed, formats naming no instant refused, stack
//!   traces kept with their statement
//! - `plugin_languages`: the `redact` example in C, Go, JavaScript, Python and
//!   Rust: byte-identical output, state across a hot reload, counters, config
//!   errors (the examples must be built: `just examples`, part of `just plugins`)
//! - `plugin_limits`: trapping, looping and memory-hungry filters, in Rust and
//!   Go, are contained
//! - `reload`: hot reload under load, refused reloads, plugin file watching
//! - `observability`: every catalogued metric served and moving, the Grafana
//!   dashboard's queries, the README's metrics table, `/health` on a stall
//! - `secrets`: no credential in logs, responses, metrics, `validate` output
//! - `shutdown`: a bounded drain with an output down keeps filter state
//! - `workers`: the chain on 1, 2 and 8 workers equals one worker and the
//!   oracle; stateful filters are partitioned only by their key, in order;
//!   state per partition across restarts and reloads
//! - `real`: against real Kafka, Elasticsearch and Alertmanager (`#[ignore]`d
//!   unless run with `--include-ignored`, as `just test-full` does)

mod util;

mod admin;
mod authoring;
mod cli;
mod config;
mod console;
mod deploy;
mod es_bulk;
mod fluent_bit_abi;
mod forward_input;
mod hostile_clients;
mod http_input;
mod local_io;
mod metrics;
mod observability;
mod otel_collector;
mod otlp_input;
mod plugin_languages;
mod plugin_limits;
mod quickstart;
mod real;
mod reload;
mod secrets;
mod shutdown;
mod statements;
mod workers;
