//! The HTTP input's request path: the axum [`router`], the `/ingest` and
//! `_bulk` handlers, queueing with backpressure, waiting for
//! acknowledgements, and serving (plain or TLS).
//!
//! Elsewhere: parsing bodies in [`super::decode`] (pure), refusals and
//! their answers in `errors.rs`, credentials in `auth.rs`, the
//! Elasticsearch probe endpoints in `es_compat.rs`, HTTPS in `tls.rs`.

use sha2::Digest;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::auth::Required;
use super::decode::{self, BodyFormat, ContentEncoding, Limits};
use super::errors::RequestError;
use super::es_compat::{
    elastic_product, es_cluster_health, es_license, es_nodes, es_respond, es_root, es_xpack, not_found,
};
use super::tls::TlsListener;
use super::{AckMode, HttpInputConfig, HttpInputError};
use crate::core::ack::{AckToken, Delivery};
use crate::core::metrics::catalogue::INPUT_REQUESTS_IN_FLIGHT;
use crate::core::metrics::{Gauge, registry};
use crate::core::record::{Batch, Origin, Record};
use crate::inputs::{InputContext, SendRefused};

/// What the handlers share: settings, the pipeline's [`InputContext`] and
/// counters for origins and `_seq_no`.
#[derive(Clone)]
pub struct HttpInputState(Arc<Shared>);

struct Shared {
    ctx: InputContext,
    tag_header: Option<HeaderName>,
    message_key: String,
    max_body_bytes: usize,
    max_decompressed_bytes: usize,
    limits: Limits,
    auth: Option<Required>,
    ack: AckMode,
    ack_timeout: Duration,
    queue_wait: Duration,
    bulk_tag_prefix: String,
    bulk_metadata_key: Option<String>,
    /// `http:<listener>`, the start of every origin stream.
    stream: String,
    /// Start time in ms: with the request sequence, makes origins unique
    /// across restarts.
    boot: u64,
    requests: AtomicU64,
    seq_no: AtomicU64,
    in_flight: Gauge,
}

impl HttpInputState {
    /// State for a listener bound to `listener` (used in origins), sending
    /// through `ctx`.
    pub fn new(config: &HttpInputConfig, listener: &str, ctx: InputContext) -> Result<Self, HttpInputError> {
        let tag_header = match config.tag_header.trim() {
            "" => None,
            name => Some(
                HeaderName::try_from(name.to_ascii_lowercase())
                    .map_err(|_| HttpInputError::TagHeader { header: config.tag_header.clone() })?,
            ),
        };
        let boot = u64::try_from(ctx.clock.now() / 1_000_000).unwrap_or(0);
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(HttpInputState(Arc::new(Shared {
            tag_header,
            message_key: config.message_key.clone(),
            max_body_bytes: to_usize(config.max_body_bytes.0),
            max_decompressed_bytes: to_usize(config.max_decompressed_bytes.0),
            limits: Limits { max_records: config.max_records, max_line_bytes: to_usize(config.max_line_bytes.0) },
            auth: required_auth(config)?,
            ack: config.ack,
            ack_timeout: config.ack_timeout.0,
            queue_wait: config.queue_wait.0,
            bulk_tag_prefix: config.bulk_tag_prefix.clone(),
            bulk_metadata_key: config.bulk_metadata_key.clone(),
            stream: format!("http:{listener}"),
            boot,
            requests: AtomicU64::new(0),
            seq_no: AtomicU64::new(0),
            in_flight: registry().gauge(&INPUT_REQUESTS_IN_FLIGHT, &[&ctx.name]),
            ctx,
        })))
    }
}

/// What requests must present: `auth_token` or `auth`, not both.
fn required_auth(config: &HttpInputConfig) -> Result<Option<Required>, HttpInputError> {
    match (&config.auth_token, &config.auth) {
        (None, None) => Ok(None),
        (Some(token), None) => Ok(Some(Required::Token(token.clone()))),
        (None, Some(auth)) => Ok(Some(Required::Exact(auth.clone()))),
        (Some(_), Some(_)) => Err(HttpInputError::Setting { message: "set `auth_token` or `auth`, not both".into() }),
    }
}

/// The input's routes: `/health`, `/ingest[/{tag}]` and the
/// Elasticsearch-compatible endpoints.
pub fn router(state: HttpInputState) -> Router {
    let in_flight = state.0.in_flight.clone();
    let es = Router::new()
        .route("/", get(es_root))
        .route("/_bulk", post(bulk).put(bulk))
        .route("/{index}/_bulk", post(bulk_into).put(bulk_into))
        .route("/_license", get(es_license))
        .route("/_xpack", get(es_xpack))
        .route("/_nodes", get(es_nodes))
        .route("/_nodes/{*what}", get(es_nodes))
        .route("/_cluster/health", get(es_cluster_health))
        .layer(axum::middleware::map_response(elastic_product));
    Router::new()
        .route("/health", get(|| async { axum::Json(json!({ "status": "ok" })) }))
        .route("/ingest", post(ingest))
        .route("/ingest/{tag}", post(ingest_tagged))
        .merge(es)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
            let guard = in_flight.track();
            async move {
                let response = next.run(request).await;
                drop(guard);
                response
            }
        }))
        .with_state(state)
}

async fn ingest(State(state): State<HttpInputState>, headers: HeaderMap, body: Body) -> Response {
    respond(state.ingest(None, &headers, body).await)
}

async fn ingest_tagged(
    State(state): State<HttpInputState>,
    Path(tag): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(state.ingest(Some(tag), &headers, body).await)
}

fn respond(result: Result<Value, RequestError>) -> Response {
    match result {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn bulk(State(state): State<HttpInputState>, headers: HeaderMap, body: Body) -> Response {
    es_respond(state.bulk(None, &headers, body).await)
}

async fn bulk_into(
    State(state): State<HttpInputState>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    es_respond(state.bulk(Some(index), &headers, body).await)
}

impl HttpInputState {
    pub(super) fn authorize(&self, headers: &HeaderMap) -> Result<(), RequestError> {
        match &self.0.auth {
            None => Ok(()),
            Some(required) => required.check(headers),
        }
    }

    /// The `host:port` this input listens on, as ES clients are told.
    pub(super) fn address(&self) -> &str {
        self.0.stream.trim_start_matches("http:")
    }

    fn tag(&self, path_tag: Option<String>, headers: &HeaderMap) -> Result<Arc<str>, RequestError> {
        let from_header = || {
            let name = self.0.tag_header.as_ref()?;
            headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
        };
        match path_tag.or_else(from_header) {
            Some(tag) if valid_tag(&tag) => Ok(tag.into()),
            Some(tag) => Err(RequestError::InvalidTag(tag)),
            None => Ok(self.0.ctx.tag.clone()),
        }
    }

    /// Credentials, the raw body within `max_body_bytes`, decompressed
    /// within `max_decompressed_bytes`.
    async fn body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, RequestError> {
        self.authorize(headers)?;
        let encoding = ContentEncoding::parse(header_str(headers, &header::CONTENT_ENCODING))?;
        let max = self.0.max_body_bytes;
        let declared = header_str(headers, &header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(RequestError::BodyTooLarge { max });
        }
        let raw = match http_body_util::Limited::new(body, max).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(RequestError::BodyTooLarge { max });
            }
            Err(e) => return Err(RequestError::Body(e.to_string())),
        };
        Ok(decode::decompress(raw, encoding, self.0.max_decompressed_bytes)?)
    }

    fn next_request(&self) -> u64 {
        self.0.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    async fn ingest(&self, path_tag: Option<String>, headers: &HeaderMap, body: Body) -> Result<Value, RequestError> {
        let tag = self.tag(path_tag, headers)?;
        let body = self.body(headers, body).await?;
        let format = BodyFormat::from_content_type(header_str(headers, &header::CONTENT_TYPE))
            .unwrap_or_else(|| BodyFormat::sniff(&body));
        let items = decode::decode(&body, format, &self.0.message_key, self.0.limits)?;
        let n = items.len();
        let time = self.0.ctx.clock.now();
        // The request's identity is its content: a client retrying the same
        // body gets the same origins, so outputs with deterministic ids
        // (Elasticsearch) do not index the retry twice.
        let digest = sha2::Sha256::digest(&body);
        let stream: Arc<str> = format!("{}/{tag}/{}", self.0.stream, hex::encode(&digest[..12])).into();
        let (token, delivery) = self.ack_token();
        let records = items.into_iter().map(|item| Record {
            time,
            tag: tag.clone(),
            body: item.body,
            origin: Some(Origin { stream: stream.clone(), offset: item.position, lineage: 0 }),
            ack: token.clone(),
            arrival: None,
        });
        let batches = self.batches(records);
        drop(token);
        self.enqueue_and_wait(batches, delivery).await?;
        Ok(json!({ "records": n, "ack": self.ack_name() }))
    }

    async fn bulk(&self, path_index: Option<String>, headers: &HeaderMap, body: Body) -> Result<Value, RequestError> {
        let started = Instant::now();
        let body = self.body(headers, body).await?;
        let items = decode::decode_bulk(&body, path_index.as_deref(), self.0.limits)?;
        let time = self.0.ctx.clock.now();
        let request = self.next_request();
        let request_stream: Arc<str> = format!("{}/{}.{request}", self.0.stream, self.0.boot).into();
        let (token, delivery) = self.ack_token();
        let mut records = Vec::with_capacity(items.len());
        let mut answers = Vec::with_capacity(items.len());
        let mut errors = false;
        for item in items {
            let action = item.action.name();
            let Some(doc) = item.doc else {
                errors = true;
                let reason = format!(
                    "weir's _bulk endpoint accepts only index and create actions; {action} (line {}) was not applied",
                    item.line
                );
                let mut answer = json!({
                    "_index": item.index,
                    "status": 400,
                    "error": { "type": "illegal_argument_exception", "reason": reason },
                });
                if let Some(id) = item.id {
                    answer["_id"] = Value::String(id);
                }
                answers.push(json!({ action: answer }));
                continue;
            };
            let (origin, id) = match &item.id {
                Some(id) => (
                    Origin { stream: format!("{}/{}/{id}", self.0.stream, item.index).into(), offset: 0, lineage: 0 },
                    id.clone(),
                ),
                None => (
                    Origin { stream: request_stream.clone(), offset: item.line, lineage: 0 },
                    format!("{:x}-{request}-{}", self.0.boot, item.line),
                ),
            };
            let body = match &self.0.bulk_metadata_key {
                None => doc,
                Some(key) => {
                    let mut meta = json!({ "index": item.index, "action": action });
                    if let Some(id) = &item.id {
                        meta["id"] = Value::String(id.clone());
                    }
                    crate::core::json::with_field(&doc, key, &meta).into()
                }
            };
            records.push(Record {
                time,
                tag: format!("{}{}", self.0.bulk_tag_prefix, item.index).into(),
                body,
                origin: Some(origin),
                ack: token.clone(),
                arrival: None,
            });
            let seq_no = self.0.seq_no.fetch_add(1, Ordering::Relaxed);
            answers.push(json!({ action: {
                "_index": item.index,
                "_id": id,
                "_version": 1,
                "result": "created",
                "_shards": { "total": 1, "successful": 1, "failed": 0 },
                "_seq_no": seq_no,
                "_primary_term": 1,
                "status": 201,
            } }));
        }
        let batches = self.batches(records.into_iter());
        drop(token);
        self.enqueue_and_wait(batches, delivery).await?;
        let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(json!({ "took": took, "errors": errors, "items": answers }))
    }

    fn ack_name(&self) -> &'static str {
        match self.0.ack {
            AckMode::Delivered => "delivered",
            AckMode::Accepted => "accepted",
        }
    }

    fn ack_token(&self) -> (Option<AckToken>, Option<tokio::sync::oneshot::Receiver<Delivery>>) {
        match self.0.ack {
            AckMode::Delivered => {
                let (token, rx) = AckToken::channel();
                (Some(token), Some(rx))
            }
            AckMode::Accepted => (None, None),
        }
    }

    fn batches(&self, records: impl Iterator<Item = Record>) -> Vec<Batch> {
        let size = self.0.ctx.batch_max_records.max(1);
        let mut batches = Vec::new();
        let mut current = Vec::new();
        for record in records {
            current.push(record);
            if current.len() == size {
                batches.push(std::mem::replace(&mut current, Vec::with_capacity(size)));
            }
        }
        if !current.is_empty() {
            batches.push(current);
        }
        batches
    }

    /// Queue the batches (or refuse them all when the pipeline stays full),
    /// then, with `ack: delivered`, wait for the outcome.
    async fn enqueue_and_wait(
        &self,
        batches: Vec<Batch>,
        delivery: Option<tokio::sync::oneshot::Receiver<Delivery>>,
    ) -> Result<(), RequestError> {
        self.0.ctx.send_within(batches, self.0.queue_wait).await.map_err(|refused| match refused {
            SendRefused::Full => RequestError::Full,
            SendRefused::Closed => RequestError::Closed,
        })?;
        let Some(delivery) = delivery else {
            return Ok(());
        };
        match tokio::time::timeout(self.0.ack_timeout, delivery).await {
            Ok(Ok(Delivery::Delivered)) => Ok(()),
            Ok(Ok(Delivery::Failed) | Err(_)) => Err(RequestError::DeliveryFailed),
            Err(_) => Err(RequestError::AckTimeout(self.0.ack_timeout)),
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Longest tag a request may set: room for any naming scheme, bounded so
/// tags stay usable as metric labels and in logs.
pub(super) const MAX_TAG_BYTES: usize = 256;

/// Tags are matched by `match:` globs, so glob characters, separators and
/// whitespace are refused.
pub(super) fn valid_tag(tag: &str) -> bool {
    (1..=MAX_TAG_BYTES).contains(&tag.len())
        && tag.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'*' | b'?' | b','))
}

/// Serve `state` on `listener` (with TLS when given) until `shutdown`
/// fires; in-flight requests finish first.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: HttpInputState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state);
    let stop = shutdown.clone();
    let stopped = async move { stop.cancelled().await };
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(stopped).await,
        Some(acceptor) => {
            let listener = TlsListener::spawn(listener, acceptor, shutdown)?;
            axum::serve(listener, app).with_graceful_shutdown(stopped).await
        }
    }
}
