//! `type: forward`: the Fluent Forward protocol over TCP (optionally TLS),
//! so Fluent Bit's and Fluentd's `forward` outputs, fluent-logger clients
//! and Docker's `fluentd` log driver can send to Weir unchanged.
//!
//! It owns the listener, its config, the handshake and the per-connection
//! read loop with acknowledgements; the frame format is the pure
//! [`frame`] module and the handshake's digests are [`handshake`].
//! Records get the frame's tag (with `tag_prefix`) and each event's own
//! time. A frame carrying the `chunk` option is answered `{"ack": chunk}`
//! once its records are queued (`ack: accepted`) or written by every output
//! (`ack: delivered`, the default), so the sender's retry covers Weir's
//! failures. A frame that is not msgpack or not of the protocol's shape
//! closes its connection (logged, counted); others are untouched.

pub mod frame;
mod handshake;
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{AckMode, Input, InputContext, InputError};
use crate::core::secret::Secret;
use crate::core::tls::TlsSettings;
use crate::core::units::{ByteSize, HumanDuration};

/// Settings of the `forward` input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardInputConfig {
    /// Where to listen. Default `127.0.0.1:24224` (loopback; 24224 is the
    /// protocol's port); set `0.0.0.0:24224` for remote senders. Port 0
    /// picks a free port, logged as `forward input listening address=…`.
    #[serde(default = "default_address")]
    pub address: SocketAddr,
    /// Put before every frame's tag: `tag_prefix: fluent.` turns `app.web`
    /// into `fluent.app.web`. Default empty: the sender's tag as is.
    #[serde(default)]
    pub tag_prefix: String,
    /// When a `chunk` is acknowledged: `delivered` (default) once every
    /// record of the frame was written by every output that matches it, or
    /// dead-lettered; `accepted` once queued. A delivery that fails closes
    /// the connection without the ack, so the sender sends again.
    #[serde(default)]
    pub ack: AckMode,
    /// Require the handshake (`HELO`/`PING`/`PONG`) with this shared key,
    /// as Fluentd's `<security> shared_key` and Fluent Bit's `Shared_Key`.
    /// Default: no handshake. Present but null or empty is a config error.
    #[serde(default, deserialize_with = "crate::core::secret::present")]
    pub shared_key: Option<Secret>,
    /// The hostname Weir gives in `PONG`. Default: the machine's hostname.
    #[serde(default)]
    pub self_hostname: Option<String>,
    /// Serve TLS: `tls: {cert, key}`, PEM files. Default: plain TCP.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Largest frame, as sent; a larger one closes the connection. Default
    /// 16MiB (Fluent Bit's chunks are about 2MiB).
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: ByteSize,
    /// Largest CompressedPackedForward entries after gunzip (the bomb
    /// guard). Default 64MiB.
    #[serde(default = "default_max_decompressed_bytes")]
    pub max_decompressed_bytes: ByteSize,
    /// Most connections open at once; more are closed on arrival (logged).
    /// Default 1024.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a TLS handshake, or the `PING` after `HELO`, may take.
    /// Default 10s.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout: HumanDuration,
}

fn default_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 24224))
}
fn default_max_frame_bytes() -> ByteSize {
    ByteSize(16 << 20)
}
fn default_max_decompressed_bytes() -> ByteSize {
    ByteSize(64 << 20)
}
fn default_max_connections() -> usize {
    1024
}
fn default_handshake_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

impl ForwardInputConfig {
    pub(crate) fn rebase(mut self, base: &std::path::Path) -> Self {
        self.tls = self.tls.map(|t| t.rebase(base));
        self
    }
}

/// Why the `forward` input could not start.
#[derive(Debug, thiserror::Error)]
pub enum ForwardInputError {
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
    /// `max_connections` is zero.
    #[error("max_connections must be at least 1")]
    NoConnections,
}

/// The Forward listener.
pub struct ForwardInput {
    config: ForwardInputConfig,
}

impl ForwardInput {
    /// Build from settings.
    pub fn new(config: ForwardInputConfig) -> Self {
        ForwardInput { config }
    }
}

#[async_trait::async_trait]
impl Input for ForwardInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let name = ctx.name.to_string();
        server::serve(self.config, ctx).await.map_err(|e| InputError::new(name, e))
    }
}
