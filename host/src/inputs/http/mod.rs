//! `type: http`: an HTTP(S) listener that accepts log records.
//!
//! It owns the listener, its config, TLS and the request handling; it does
//! not own what happens to records after they are queued (the pipeline) nor
//! the wire formats' parsing rules, which live in the pure [`decode`] module.
//!
//! Two surfaces share one listener (see the README's "HTTP input" section):
//! - `POST /ingest` and `POST /ingest/{tag}`: NDJSON, a JSON object, a JSON
//!   array or raw text lines, optionally gzip/deflate compressed;
//! - an Elasticsearch-compatible `POST /_bulk` and `POST /{index}/_bulk`,
//!   plus the endpoints ES clients and shippers probe on connect (`GET /`
//!   with the configured `es_version`, license, cluster health, index
//!   templates, ILM policies, ingest pipelines), so a collector configured
//!   with an Elasticsearch output can point at Weir unchanged.
//!
//! `GET /health` answers load balancers. Responses are sent only once the
//! request's records are queued (`ack: accepted`) or delivered to every
//! output (`ack: delivered`, the default); when the pipeline is full the
//! request is refused with 429 and `Retry-After`, never accepted and dropped.

mod auth;
mod connections;
pub mod decode;
mod errors;
mod es_compat;
mod filter_path;
pub mod server;
#[cfg(test)]
mod tests;
mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub use es_compat::EsVersion;

use super::{Input, InputContext, InputError};
use crate::core::auth::Auth;
use crate::core::secret::Secret;
use crate::core::tls::TlsSettings;
use crate::core::units::{ByteSize, HumanDuration};
use crate::inputs::buffer::{BufferError, BufferSettings};

/// Settings of the `http` input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpInputConfig {
    /// Where to listen. Default `127.0.0.1:9880` (loopback only, the port
    /// Fluent Bit's `in_http` uses); set `0.0.0.0:9880` to accept remote
    /// clients. Port 0 picks a free port, logged at INFO as
    /// `http input listening address=…`.
    #[serde(default = "default_address")]
    pub address: SocketAddr,
    /// Header that sets the tag of a request's records when the path does
    /// not (`POST /ingest/{tag}` wins). Default `X-Weir-Tag`; empty: none.
    #[serde(default = "default_tag_header")]
    pub tag_header: String,
    /// With `text/plain` bodies, the field each line goes into:
    /// `{"<message_key>": "<line>"}`. Default `message`.
    #[serde(default = "default_message_key")]
    pub message_key: String,
    /// Largest request body as sent (before decompression); larger bodies get
    /// 413. Default 100MiB: Elasticsearch's `http.max_content_length`, what
    /// shippers size their `_bulk` requests for (Logstash sends up to 20 MiB),
    /// so none of them meets a 413 it would retry forever. The body is held
    /// once, as its records' bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: ByteSize,
    /// Largest body after gzip/deflate decompression (the bomb guard); larger
    /// gets 413. Default 100MiB, as Vector.
    #[serde(default = "default_max_decompressed_bytes")]
    pub max_decompressed_bytes: ByteSize,
    /// Most records one request may carry; more gets 413. Default 1000000:
    /// shippers size `_bulk` requests in bytes, and a `max_body_bytes` body
    /// of 100-byte events holds about that many, each costing some 300 bytes
    /// of bookkeeping on top of its own.
    #[serde(default = "default_max_records")]
    pub max_records: usize,
    /// Longest line (NDJSON, text, `_bulk`) or record (JSON array element);
    /// longer gets 413 naming the line. Default 1MiB.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: ByteSize,
    /// How long a client may take to send a request's headers, counted from
    /// when the connection waits for a request: a client still sending
    /// them then gets 408 and the connection closes (slowloris); a
    /// kept-alive connection that sent nothing for this long is closed
    /// quietly, so idle connections do not hold slots. Default 30s (hyper's
    /// and Apache's order of magnitude; nginx waits 60s).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: HumanDuration,
    /// How long the whole body may take to arrive once the headers did; a
    /// body still arriving then gets 408 (a body dribbled in). Default 120s:
    /// a `max_body_bytes` body of 100 MiB at 1 MB/s.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: HumanDuration,
    /// Most connections held open at once; one more is answered 503 with
    /// `Retry-After` and closed. Default 1024. The process's open-file limit
    /// (`ulimit -n`) must be above it.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// When set, every request except `GET /health` must carry this token:
    /// `Authorization: Bearer <token>`, `Authorization: ApiKey <token>`, or
    /// Basic auth with any user and the token as password (what ES clients
    /// send). Compared in constant time. Use `${VAR}` to keep it out of the
    /// file. Default: no auth. Present but null or empty is a config error,
    /// never "no auth".
    #[serde(default, deserialize_with = "crate::core::secret::present")]
    pub auth_token: Option<Secret>,
    /// Exact credentials every request except `GET /health` must carry, in
    /// the shape every component shares ([`Auth`]): `{basic: {username,
    /// password}}`, `{bearer: {token}}` or `{api_key: KEY}`. Set this or
    /// `auth_token`, not both.
    #[serde(default, deserialize_with = "crate::core::secret::present")]
    pub auth: Option<Auth>,
    /// Serve HTTPS: `tls: {cert, key}`, PEM files ([`TlsSettings`]).
    /// Default: plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// When to answer 200: `delivered` (default) once every record of the
    /// request reached its outputs, or `accepted` once it is queued. See
    /// [`AckMode`].
    #[serde(default)]
    pub ack: AckMode,
    /// With `ack: delivered`, how long to wait for delivery before answering
    /// 504 (`/_bulk`: 503). The records stay queued and may still be
    /// delivered: a client that retries may create duplicates
    /// (at-least-once). Default 30s.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout: HumanDuration,
    /// How long a request may wait for room in a full pipeline before it is
    /// refused with 429 and `Retry-After`. Default 250ms.
    #[serde(default = "default_queue_wait")]
    pub queue_wait: HumanDuration,
    /// `_bulk` documents are tagged `<bulk_tag_prefix><index>`. Default `es.`,
    /// so a document for index `logs-app` gets tag `es.logs-app`.
    #[serde(default = "default_bulk_tag_prefix")]
    pub bulk_tag_prefix: String,
    /// When set, `_bulk` documents get this field added, holding
    /// `{"index": …, "action": …, "id": …, "routing": …, "pipeline": …}`
    /// (the last three only when given), and `update` and `delete` items
    /// become records too (an update's body as sent, a delete's `{}`), for
    /// an Elasticsearch output with the same `bulk_metadata_key` to replay.
    /// Default: unset, the document is the body unchanged (the index is in
    /// the tag, the `_id` in the record's origin) and `update` and `delete`
    /// items are refused one by one (400).
    #[serde(default)]
    pub bulk_metadata_key: Option<String>,
    /// The Elasticsearch version the ES endpoints claim (`GET /`'s
    /// `version.number`), `MAJOR.MINOR.PATCH` with a major of 7, 8 or 9.
    /// Shippers choose their behaviour by it (README, "Shippers"); set it to
    /// at least the version of a Beat that refuses older clusters. 7.x
    /// answers carry `_type: _doc`. Default `8.15.0`.
    #[serde(default)]
    pub es_version: EsVersion,
    /// A durable buffer (a write-ahead log on disk) for `ack: accepted`:
    /// a request is answered 200 once its records are in the log, not just
    /// in memory, so kill -9 loses nothing that was answered; the log is
    /// this input's queue, holding what an output that is down cannot take
    /// yet, up to `max_bytes` (then 429). `{dir, max_bytes, fsync,
    /// fsync_interval}`, see [`BufferSettings`] and the README's "Durable
    /// buffer". Default: none (accepted records live in memory). Needs
    /// `ack: accepted`: with `delivered` the client keeps its data until
    /// it is delivered.
    #[serde(default)]
    pub buffer: Option<Box<BufferSettings>>,
}

/// When a request is answered 200.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// 200 only after every record of the request was written by every
    /// output that matches it (or dead-lettered, with its reason). A 200
    /// means the data is safe; anything else means retry. At-least-once.
    #[default]
    Delivered,
    /// 200 once the records are queued in the pipeline. Faster, but records
    /// still queued are lost if the process is killed (SIGTERM drains them),
    /// unless the input has a durable `buffer`: then 200 once they are in
    /// the buffer on disk.
    Accepted,
}

fn default_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9880))
}
fn default_tag_header() -> String {
    "X-Weir-Tag".into()
}
fn default_message_key() -> String {
    "message".into()
}
fn default_max_body_bytes() -> ByteSize {
    ByteSize(100 << 20)
}
fn default_max_decompressed_bytes() -> ByteSize {
    ByteSize(100 << 20)
}
fn default_max_records() -> usize {
    1_000_000
}
fn default_max_line_bytes() -> ByteSize {
    ByteSize(1 << 20)
}
fn default_header_read_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_body_read_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(120))
}
fn default_max_connections() -> usize {
    1024
}
fn default_ack_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_queue_wait() -> HumanDuration {
    HumanDuration(Duration::from_millis(250))
}
fn default_bulk_tag_prefix() -> String {
    "es.".into()
}

impl HttpInputConfig {
    pub(crate) fn rebase(mut self, base: &Path) -> Self {
        self.tls = self.tls.map(|t| t.rebase(base));
        self.buffer = self.buffer.map(|b| Box::new(b.rebase(base)));
        self
    }
}

/// Why the `http` input could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpInputError {
    /// Settings that contradict each other.
    #[error("{message}")]
    Setting {
        /// What is wrong.
        message: String,
    },
    /// The address could not be bound.
    #[error("binding {address}: {source}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A TLS file could not be read or used.
    #[error("tls: {file}: {reason}")]
    Tls {
        /// The certificate or key file.
        file: String,
        /// What was wrong with it.
        reason: String,
    },
    /// `tag_header` is not a valid header name.
    #[error("tag_header {header:?} is not a valid header name")]
    TagHeader {
        /// The configured name.
        header: String,
    },
    /// The durable buffer could not be opened.
    #[error(transparent)]
    Buffer(#[from] BufferError),
    /// Serving stopped with an I/O error.
    #[error("serving on {address}: {source}")]
    Serve {
        /// The bound address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The HTTP listener.
pub struct HttpInput {
    config: HttpInputConfig,
}

impl HttpInput {
    /// Build from settings.
    pub fn new(config: HttpInputConfig) -> Self {
        HttpInput { config }
    }
}

#[async_trait::async_trait]
impl Input for HttpInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let name = ctx.name.to_string();
        self.serve(ctx).await.map_err(|e| InputError::new(name, e))
    }
}

/// How long a port in use may take to come free: a reloaded input's
/// predecessor lets go of it as soon as it sees the reload.
const BIND_PATIENCE: Duration = Duration::from_secs(5);

/// Bind `address`, retrying while it is in use for up to [`BIND_PATIENCE`].
async fn bind_soon(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let deadline = tokio::time::Instant::now() + BIND_PATIENCE;
    loop {
        match tokio::net::TcpListener::bind(address).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            bound => return bound,
        }
    }
}

impl HttpInput {
    async fn serve(self: Box<Self>, ctx: InputContext) -> Result<(), HttpInputError> {
        let config = self.config;
        let tls = match &config.tls {
            Some(tls) => Some(tls::tls_acceptor(tls)?),
            None => None,
        };
        let bind = |source| HttpInputError::Bind { address: config.address, source };
        let listener = bind_soon(config.address).await.map_err(bind)?;
        let address = listener.local_addr().map_err(bind)?;
        tracing::info!(input = %ctx.name, %address, tls = tls.is_some(), "http input listening");
        ctx.listening();
        let shutdown = ctx.shutdown.clone();
        let state = server::HttpInputState::new(&config, &address.to_string(), ctx)?;
        server::serve(listener, tls, state, shutdown).await.map_err(|source| HttpInputError::Serve { address, source })
    }
}
