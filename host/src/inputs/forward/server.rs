//! The `forward` input's sockets: accepting (with TLS and a connection
//! cap), the optional handshake, the read loop that cuts the byte stream
//! into frames, queueing their records and answering `chunk`s with acks.
//!
//! One task per connection. Frames are read and queued in order; each
//! acknowledged chunk waits for its delivery in its own task, so a sender
//! that pipelines chunks is not held to one at a time. A bad frame ends its
//! connection only: logged at WARN with the peer and the reason, and
//! counted in `weir_input_bad_frames_total`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::frame::{self, EventFrame, Frame};
use super::handshake;
use super::{ForwardInputConfig, ForwardInputError};
use crate::core::ack::{AckToken, Delivery};
use crate::core::dead_letter::DeadLetter;
use crate::core::metrics::catalogue::INPUT_BAD_FRAMES;
use crate::core::metrics::{Counter, registry};
use crate::core::msgpack::{Scan, Scanned};
use crate::core::record::{Batch, Origin, Record};
use crate::core::tag_match::valid_tag;
use crate::inputs::{AckMode, InputContext};

/// Bytes asked of the socket per read: a typical Fluent Bit chunk arrives
/// in a few reads, and an idle connection holds little.
const READ_CHUNK: usize = 64 << 10;
/// Pause after a failed `accept` (out of file descriptors, say), so the
/// loop does not spin while the cause lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Bytes of the handshake's nonce, as Fluentd's `in_forward` sends.
const NONCE_BYTES: usize = 16;

/// What every connection of one listener shares.
struct Shared {
    ctx: InputContext,
    config: ForwardInputConfig,
    /// `forward:<listener>`, the start of every origin stream.
    stream: String,
    /// Start time in ms: with the connection and frame numbers, makes the
    /// origins of frames without a `chunk` unique across restarts.
    boot: u64,
    hostname: String,
    bad_frames: Counter,
}

/// Listen until shutdown; see the module docs.
pub(super) async fn serve(config: ForwardInputConfig, ctx: InputContext) -> Result<(), ForwardInputError> {
    if config.max_connections == 0 {
        return Err(ForwardInputError::NoConnections);
    }
    let tls = match &config.tls {
        Some(settings) => Some(TlsAcceptor::from(Arc::new(
            crate::core::tls::server_config(settings, &[])
                .map_err(|(file, reason)| ForwardInputError::Tls { file, reason })?,
        ))),
        None => None,
    };
    let bind = |source| ForwardInputError::Bind { address: config.address, source };
    let listener = TcpListener::bind(config.address).await.map_err(bind)?;
    let address = listener.local_addr().map_err(bind)?;
    tracing::info!(
        input = %ctx.name, %address, tls = tls.is_some(), handshake = config.shared_key.is_some(),
        "forward input listening"
    );
    ctx.listening();
    let shared = Arc::new(Shared {
        stream: format!("forward:{address}"),
        boot: u64::try_from(ctx.clock.now() / 1_000_000).unwrap_or(0),
        hostname: config.self_hostname.clone().unwrap_or_else(hostname),
        bad_frames: registry().counter(&INPUT_BAD_FRAMES, &[&ctx.name]),
        config,
        ctx,
    });
    let slots = Arc::new(Semaphore::new(shared.config.max_connections));
    let mut tasks = JoinSet::new();
    let mut number = 0u64;
    loop {
        while tasks.try_join_next().is_some() {}
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.ctx.shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(input = %shared.ctx.name, %error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                input = %shared.ctx.name, %peer, max_connections = shared.config.max_connections,
                "too many connections; closing this one"
            );
            continue;
        };
        number += 1;
        tasks.spawn(connection(shared.clone(), tcp, peer, number, tls.clone(), slot));
    }
    // Connections stop reading at shutdown; let them finish the frame at hand.
    while tasks.join_next().await.is_some() {}
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "weir".into())
}

async fn connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    number: u64,
    tls: Option<TlsAcceptor>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = tcp.set_nodelay(true);
    let outcome = match tls {
        None => Session::new(&shared, peer, number).run(tcp).await,
        Some(acceptor) => match tokio::time::timeout(shared.config.handshake_timeout.0, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => Session::new(&shared, peer, number).run(stream).await,
            Ok(Err(error)) => Err(Closed::Quietly(format!("tls handshake failed: {error}"))),
            Err(_) => Err(Closed::Quietly("tls handshake timed out".into())),
        },
    };
    match outcome {
        Ok(()) => {}
        Err(Closed::BadFrame(reason)) => {
            shared.bad_frames.add(1);
            tracing::warn!(input = %shared.ctx.name, %peer, %reason, "bad forward frame; connection closed");
        }
        Err(Closed::Refused(reason)) => {
            tracing::warn!(input = %shared.ctx.name, %peer, %reason, "forward handshake refused; connection closed");
        }
        Err(Closed::Quietly(reason)) => tracing::debug!(input = %shared.ctx.name, %peer, %reason, "connection closed"),
    }
}

/// Why a connection ended early.
enum Closed {
    /// A frame broke the protocol: counted and logged at WARN.
    BadFrame(String),
    /// The handshake failed: logged at WARN.
    Refused(String),
    /// The peer went away, TLS failed, the pipeline stopped: DEBUG.
    Quietly(String),
}

/// One connection's state.
struct Session<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
    number: u64,
    frames: u64,
    /// Fired when a chunk's delivery failed: the connection closes without
    /// its ack, so the sender retries.
    failed: CancellationToken,
}

impl<'a> Session<'a> {
    fn new(shared: &'a Shared, peer: SocketAddr, number: u64) -> Self {
        Session { shared, peer, number, frames: 0, failed: CancellationToken::new() }
    }

    async fn run<S>(mut self, stream: S) -> Result<(), Closed>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut reader, writer) = tokio::io::split(stream);
        let writer = Arc::new(Mutex::new(writer));
        let result = self.read_loop(&mut reader, &writer).await;
        if self.failed.is_cancelled() {
            // Pending acks of other chunks hold the writer: end the stream
            // so the sender sees the close now and sends again.
            let _ = writer.lock().await.shutdown().await;
        }
        result
    }

    async fn read_loop<R, W>(&mut self, reader: &mut R, writer: &Arc<Mutex<W>>) -> Result<(), Closed>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut scan = Scan::default();
        if let Some(key) = &self.shared.config.shared_key {
            self.handshake(reader, writer, &mut buf, key.expose()).await?;
        }
        let max_frame = usize::try_from(self.shared.config.max_frame_bytes.0).unwrap_or(usize::MAX);
        loop {
            match scan.advance(&buf) {
                Scanned::Complete(n) => {
                    let bytes = buf.split_to(n);
                    scan = Scan::default();
                    self.frame(&bytes, writer).await?;
                    continue;
                }
                Scanned::Invalid => return Err(Closed::BadFrame("not msgpack (byte 0xc1)".into())),
                Scanned::Incomplete if buf.len() > max_frame => {
                    return Err(Closed::BadFrame(format!("frame exceeds max_frame_bytes ({max_frame} bytes)")));
                }
                Scanned::Incomplete => {}
            }
            if !self.read_more(reader, &mut buf).await? {
                return Ok(());
            }
        }
    }

    /// Read into `buf`; false at a clean end (peer closed, shutdown, a
    /// failed delivery).
    async fn read_more<R: AsyncRead + Unpin>(&self, reader: &mut R, buf: &mut BytesMut) -> Result<bool, Closed> {
        buf.reserve(READ_CHUNK);
        let read = tokio::select! {
            read = reader.read_buf(buf) => read,
            () = self.shared.ctx.shutdown.cancelled() => return Ok(false),
            () = self.failed.cancelled() => {
                return Err(Closed::Quietly("a chunk's delivery failed; closing without its ack".into()));
            }
        };
        match read {
            Ok(0) if buf.is_empty() => Ok(false),
            Ok(0) => Err(Closed::Quietly(format!("peer closed the connection {} bytes into a frame", buf.len()))),
            Ok(_) => Ok(true),
            Err(error) => Err(Closed::Quietly(format!("reading: {error}"))),
        }
    }

    /// `HELO`, then the client's `PING` must prove the shared key.
    async fn handshake<R, W>(
        &self,
        reader: &mut R,
        writer: &Mutex<W>,
        buf: &mut BytesMut,
        key: &str,
    ) -> Result<(), Closed>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| Closed::Quietly(format!("no randomness for the nonce: {e}")))?;
        write(writer, &handshake::helo(&nonce)).await?;
        let deadline = self.shared.config.handshake_timeout.0;
        let ping = tokio::time::timeout(deadline, async {
            let mut scan = Scan::default();
            loop {
                match scan.advance(buf) {
                    Scanned::Complete(n) => return Ok(buf.split_to(n)),
                    Scanned::Invalid => return Err(Closed::BadFrame("not msgpack (byte 0xc1)".into())),
                    Scanned::Incomplete if buf.len() > MAX_PING_BYTES => {
                        return Err(Closed::BadFrame("PING is too large".into()));
                    }
                    Scanned::Incomplete => {}
                }
                if !self.read_more(reader, buf).await? {
                    return Err(Closed::Quietly("closed during the handshake".into()));
                }
            }
        })
        .await
        .map_err(|_| Closed::Refused(format!("no PING within {deadline:?}")))??;
        let verdict = match frame::read_frame(&ping, 0) {
            Ok(Frame::Handshake("PING", elements)) => {
                handshake::answer_ping(&elements, &nonce, key, &self.shared.hostname)
            }
            Ok(_) => Err("expected PING, got events: the shared key is required".into()),
            Err(e) => return Err(Closed::BadFrame(e.to_string())),
        };
        match verdict {
            Ok(pong) => write(writer, &pong).await,
            Err(reason) => {
                write(writer, &handshake::pong(false, &reason, &self.shared.hostname, "")).await?;
                Err(Closed::Refused(reason))
            }
        }
    }

    /// Handle one complete frame.
    async fn frame<W>(&mut self, bytes: &[u8], writer: &Arc<Mutex<W>>) -> Result<(), Closed>
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        self.frames += 1;
        let max = usize::try_from(self.shared.config.max_decompressed_bytes.0).unwrap_or(usize::MAX);
        match frame::read_frame(bytes, max) {
            Ok(Frame::Heartbeat) => Ok(()),
            Ok(Frame::Handshake(kind, _)) => Err(Closed::BadFrame(format!("unexpected {kind} after the handshake"))),
            Ok(Frame::Events(events)) => self.events(events, writer).await,
            Err(e) => Err(Closed::BadFrame(e.to_string())),
        }
    }

    /// Queue a frame's records (and dead-letter its bad entries), then ack
    /// its chunk as the ack mode says.
    async fn events<W>(&self, events: EventFrame<'_>, writer: &Arc<Mutex<W>>) -> Result<(), Closed>
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = self.shared;
        let ctx = &shared.ctx;
        let tag: Arc<str> = format!("{}{}", shared.config.tag_prefix, events.tag).into();
        let chunk = events.options.chunk;
        let (token, delivery) = match (&chunk, shared.config.ack) {
            (Some(_), AckMode::Delivered) => {
                let (token, rx) = AckToken::channel();
                (Some(token), Some(rx))
            }
            _ => (None, None),
        };
        // A chunk's origins come from its id, so a sender's retry of the
        // same chunk maps to the same ids downstream.
        let stream: Arc<str> = match &chunk {
            Some(chunk) => format!("{}/{chunk}", shared.stream),
            None => format!("{}/{}.{}.{}", shared.stream, shared.boot, self.number, self.frames),
        }
        .into();
        let tag_problem = (!valid_tag(&tag))
            .then(|| format!("tag {tag:?} cannot be routed: 1 to 256 printable ASCII bytes, without `*`, `?` or `,`"));
        let mut records: Batch = Vec::with_capacity(events.entries.len());
        let mut letters = Vec::new();
        for (i, entry) in events.entries.into_iter().enumerate() {
            let origin = Some(Origin { stream: stream.clone(), offset: i as u64, lineage: 0 });
            let (time, body, reason) = match (entry, &tag_problem) {
                (Ok(event), None) => {
                    records.push(Record {
                        time: event.time,
                        tag: tag.clone(),
                        body: event.body.into(),
                        origin,
                        ack: token.clone(),
                        arrival: None,
                    });
                    continue;
                }
                (Ok(event), Some(problem)) => (event.time, event.body, problem.clone()),
                (Err(bad), _) => (ctx.clock.now(), bad.entry, bad.reason),
            };
            letters.push(DeadLetter {
                stage: format!("input {}", ctx.name),
                reason: format!("forward frame from {}, entry {i}: {reason}", self.peer),
                tag: tag.clone(),
                time,
                body: body.into(),
                origin,
                ack: token.clone(),
                arrival: None,
            });
        }
        drop(token);
        let closed = |_| Closed::Quietly("the pipeline has stopped".into());
        for batch in ctx.batches(records) {
            ctx.send(batch).await.map_err(closed)?;
        }
        ctx.dead_letter(letters).await.map_err(closed)?;
        let Some(chunk) = chunk else { return Ok(()) };
        let Some(delivery) = delivery else { return write(writer, &frame::ack(&chunk)).await };
        let writer = writer.clone();
        let failed = self.failed.clone();
        tokio::spawn(async move {
            match delivery.await {
                Ok(Delivery::Delivered) => {
                    if write(&writer, &frame::ack(&chunk)).await.is_err() {
                        tracing::debug!(%chunk, "the sender left before its ack; it will send the chunk again");
                    }
                }
                Ok(Delivery::Failed) | Err(_) => failed.cancel(),
            }
        });
        Ok(())
    }
}

/// Longest `PING` read: hostnames, a salt and two digests.
const MAX_PING_BYTES: usize = 4096;

async fn write<W: AsyncWrite + Unpin>(writer: &Mutex<W>, bytes: &[u8]) -> Result<(), Closed> {
    let mut writer = writer.lock().await;
    writer.write_all(bytes).await.map_err(|e| Closed::Quietly(format!("writing: {e}")))?;
    writer.flush().await.map_err(|e| Closed::Quietly(format!("writing: {e}")))
}
