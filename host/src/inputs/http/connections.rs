//! The `http` input's connections: accepting them under `max_connections`,
//! serving each with hyper under `header_read_timeout`, and the answers
//! given on the raw connection when there is no request to answer: 503 to
//! a connection over the limit, 408 to a client that stopped half-way
//! through its headers (slowloris). A kept-alive connection idle for
//! `header_read_timeout` is closed without an answer.
//!
//! Elsewhere: requests and their bodies (and `body_read_timeout`) in
//! `server.rs`, TLS handshakes in `tls.rs`.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::core::metrics::catalogue::{INPUT_CONNECTIONS, INPUT_CONNECTIONS_CLOSED};
use crate::core::metrics::{Counter, registry};

/// How long an answer written on the raw connection (408, 503) may take to
/// leave, and how long the client then has to hang up before it is cut
/// off: reading what it sent before closing lets the answer arrive rather
/// than a reset.
const RAW_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Seconds a client refused at `max_connections` is told to wait.
const CONNECTION_RETRY_AFTER_SECS: u64 = 1;

/// Limits on connections, and their counters.
pub(super) struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// The counters of `weir_input_connections_closed_total` of one input.
struct Closed {
    header_timeout: Counter,
    idle_timeout: Counter,
    max_connections: Counter,
}

/// Serve `app` on what `listener` accepts until `shutdown` fires, then let
/// the connections finish their requests (graceful shutdown) and return.
pub(super) async fn serve<L>(
    mut listener: L,
    app: Router,
    input: &str,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    L: Listener,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let counter = |reason: &str| registry().counter(&INPUT_CONNECTIONS_CLOSED, &[input, reason]);
    // `client_gone` is counted by the request middleware (server.rs); made
    // here too so every reason is served from the start.
    counter("client_gone");
    let closed = Arc::new(Closed {
        header_timeout: counter("header_timeout"),
        idle_timeout: counter("idle_timeout"),
        max_connections: counter("max_connections"),
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    {
        let (slots, max) = (slots.clone(), limits.max_connections);
        registry().gauge_fn(&INPUT_CONNECTIONS, &[input], move || {
            i64::try_from(max - slots.available_permits()).unwrap_or(i64::MAX)
        });
    }
    // HTTP/1.1 only (TLS offers only it by ALPN): HTTP/2's detection of
    // its preface would wait on a silent connection with no timer. The
    // header timer runs from when a connection waits for a request, so it
    // also ends idle kept-alive connections.
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    let (max_connections, header_read_timeout) = (limits.max_connections, limits.header_read_timeout);
    loop {
        let (io, _peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            closed.max_connections.add(1);
            let reason = format!(
                "too many connections: this input holds {max_connections} (max_connections); retry after {CONNECTION_RETRY_AFTER_SECS}s"
            );
            tokio::spawn(answer_raw(io, 503, reason));
            continue;
        };
        let (app, builder, closed, shutdown) = (app.clone(), builder.clone(), closed.clone(), shutdown.clone());
        tokio::spawn(async move {
            let io = Shared::new(io);
            let service = TowerToHyperService::new(
                app.map_request(|request: axum::http::Request<Incoming>| request.map(Body::new)),
            );
            let result = {
                let connection = builder.serve_connection(TokioIo::new(io.clone()), service);
                tokio::pin!(connection);
                tokio::select! {
                    result = connection.as_mut() => result,
                    () = shutdown.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                }
                // Dropped here, with hyper's handle on the connection.
            };
            let timed_out = result.as_ref().err().is_some_and(hyper::Error::is_timeout);
            if timed_out && io.partial() {
                closed.header_timeout.add(1);
                if let Some(io) = io.into_inner() {
                    let reason = format!(
                        "the request headers did not arrive within {header_read_timeout:?} (header_read_timeout)"
                    );
                    answer_raw(io, 408, reason).await;
                }
            } else if timed_out {
                closed.idle_timeout.add(1);
            }
            drop(slot);
        });
    }
    // The port goes now (a reloaded input binds it again); then graceful
    // shutdown: every connection gives its slot back when done.
    drop(listener);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Answer `status` with `{"status","error","reason"}` (the `/ingest` shape)
/// on a connection no request of which is being answered, then close it.
async fn answer_raw<I: AsyncRead + AsyncWrite + Unpin>(mut io: I, status: u16, reason: String) {
    let code = axum::http::StatusCode::from_u16(status).expect("a valid status code");
    let error = code.canonical_reason().unwrap_or("error").to_lowercase();
    let body = json!({ "status": status, "error": error, "reason": reason }).to_string();
    let retry_after =
        if status == 503 { format!("retry-after: {CONNECTION_RETRY_AFTER_SECS}\r\n") } else { String::new() };
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{retry_after}connection: close\r\n\r\n",
        code.canonical_reason().unwrap_or(""),
        body.len()
    );
    let answered = async {
        io.write_all(head.as_bytes()).await?;
        io.write_all(body.as_bytes()).await?;
        io.shutdown().await?;
        // Read (and drop) what the client still sends until it hangs up:
        // closing with unread data would reset the connection, and the
        // client might lose the answer.
        let mut sink = [0u8; 4096];
        while io.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(RAW_ANSWER_TIMEOUT, answered).await;
}

/// A connection hyper serves while this input keeps a handle on it, to
/// answer on it once hyper gave up; and whether the client has sent bytes
/// since the last answer (a request under way, not an idle connection).
struct Shared<I> {
    io: Arc<Mutex<I>>,
    partial: Arc<AtomicBool>,
}

impl<I> Clone for Shared<I> {
    fn clone(&self) -> Self {
        Shared { io: self.io.clone(), partial: self.partial.clone() }
    }
}

impl<I> Shared<I> {
    fn new(io: I) -> Self {
        Shared { io: Arc::new(Mutex::new(io)), partial: Arc::new(AtomicBool::new(false)) }
    }

    fn partial(&self) -> bool {
        self.partial.load(Ordering::Relaxed)
    }

    /// The connection, once every other handle (hyper's) is gone.
    fn into_inner(self) -> Option<I> {
        let io = Arc::try_unwrap(self.io).ok()?;
        Some(io.into_inner().unwrap_or_else(PoisonError::into_inner))
    }

    fn with<T>(&self, f: impl FnOnce(Pin<&mut I>) -> T) -> T
    where
        I: Unpin,
    {
        let mut io = self.io.lock().unwrap_or_else(PoisonError::into_inner);
        f(Pin::new(&mut *io))
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Shared<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.with(|io| io.poll_read(cx, buf));
        if buf.filled().len() > before {
            self.partial.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Shared<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = self.with(|io| io.poll_write(cx, data));
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.partial.store(false, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = self.with(|io| io.poll_write_vectored(cx, data));
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.partial.store(false, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.with(|io| io.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.with(|io| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.with(|io| io.poll_shutdown(cx))
    }
}
