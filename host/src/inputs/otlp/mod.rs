//! `type: otlp`: OpenTelemetry logs over OTLP/HTTP (`POST /v1/logs`,
//! protobuf or JSON, optionally gzip) and OTLP/gRPC
//! (`opentelemetry.proto.collector.logs.v1.LogsService/Export`), so SDKs,
//! agents and OpenTelemetry Collectors ship logs to Weir unchanged.
//!
//! It owns the two listeners, its config and the answers OTLP expects
//! (partial success, retryable refusals); turning log records into Weir
//! records is the pure [`map`] module. The types come from the official
//! `opentelemetry-proto` definitions (the `opentelemetry-proto` crate's
//! generated prost and tonic code); no protoc runs at build time.

pub mod map;
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{AckMode, Input, InputContext, InputError};
use crate::core::units::{ByteSize, HumanDuration};

/// Settings of the `otlp` input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpInputConfig {
    /// Where OTLP/HTTP listens (`POST /v1/logs`). Default `127.0.0.1:4318`,
    /// OTLP's HTTP port; `null` turns it off. Port 0 picks a free port,
    /// logged as `otlp input listening http=…`.
    #[serde(default = "default_http_address")]
    pub http_address: Option<SocketAddr>,
    /// Where OTLP/gRPC listens (HTTP/2 without TLS, as OTLP exporters with
    /// `insecure` speak it). Default `127.0.0.1:4317`, OTLP's gRPC port;
    /// `null` turns it off.
    #[serde(default = "default_grpc_address")]
    pub grpc_address: Option<SocketAddr>,
    /// When an export is answered with success: `delivered` (default) once
    /// every record was written by every output that matches it (or
    /// dead-lettered), `accepted` once queued. A failure or timeout is a
    /// retryable answer (HTTP 503, gRPC `UNAVAILABLE`).
    #[serde(default)]
    pub ack: AckMode,
    /// With `ack: delivered`, how long to wait before answering 503 /
    /// `UNAVAILABLE` (the records may still be delivered; a retry may
    /// duplicate them). Default 30s.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout: HumanDuration,
    /// How long an export may wait for room in a full pipeline before it
    /// is refused (HTTP 429 with `Retry-After`, gRPC `UNAVAILABLE`).
    /// Default 250ms.
    #[serde(default = "default_queue_wait")]
    pub queue_wait: HumanDuration,
    /// Largest request body or gRPC message, as sent. Default 16MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: ByteSize,
    /// Largest body after gzip or deflate (the bomb guard). Default 100MiB.
    #[serde(default = "default_max_decompressed_bytes")]
    pub max_decompressed_bytes: ByteSize,
}

fn default_http_address() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 4318)))
}
fn default_grpc_address() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 4317)))
}
fn default_ack_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_queue_wait() -> HumanDuration {
    HumanDuration(Duration::from_millis(250))
}
fn default_max_body_bytes() -> ByteSize {
    ByteSize(16 << 20)
}
fn default_max_decompressed_bytes() -> ByteSize {
    ByteSize(100 << 20)
}

impl OtlpInputConfig {
    pub(crate) fn rebase(self, _base: &std::path::Path) -> Self {
        self
    }
}

/// Why the `otlp` input could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum OtlpInputError {
    /// Both listeners are turned off.
    #[error("set http_address or grpc_address (both are null)")]
    NoListener,
    /// An address could not be bound.
    #[error("binding {address}: {source}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Serving stopped with an I/O error.
    #[error("serving on {address}: {source}")]
    Serve {
        /// The bound address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The OTLP listeners.
pub struct OtlpInput {
    config: OtlpInputConfig,
}

impl OtlpInput {
    /// Build from settings.
    pub fn new(config: OtlpInputConfig) -> Self {
        OtlpInput { config }
    }
}

#[async_trait::async_trait]
impl Input for OtlpInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let name = ctx.name.to_string();
        server::serve(self.config, ctx).await.map_err(|e| InputError::new(name, e))
    }
}
