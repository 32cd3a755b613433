//! Tests against real servers, started by `tests/servers/*.sh` (as
//! `just test-full` does). Each is `#[ignore]`d, so `cargo test` lists them
//! as ignored; `just test-full` runs them with `--include-ignored`, and then
//! an unreachable server is a failure, never a skip. (An `#[ignore]` rather
//! than a cargo feature: a feature changes the crate's build, and CI would
//! compile Weir twice.) Addresses come from the environment, with the
//! scripts' defaults.

mod elasticsearch;
mod kafka;
mod mobile_monitoring;
mod scale_out;

/// Kafka's bootstrap address.
pub fn kafka_bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// Elasticsearch's URL.
pub fn elasticsearch_url() -> String {
    std::env::var("ES_URL").unwrap_or_else(|_| "http://127.0.0.1:19200".into())
}

/// Alertmanager's URL.
pub fn alertmanager_url() -> String {
    std::env::var("ALERTMANAGER_URL").unwrap_or_else(|_| "http://127.0.0.1:19094".into())
}

mod alertmanager;
