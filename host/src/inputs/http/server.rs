//! The HTTP input's I/O: the axum [`router`], its handlers, credentials,
//! queueing with backpressure, waiting for acknowledgements, answers and
//! error bodies (plain JSON on `/ingest`, Elasticsearch's shape on the ES
//! endpoints), and TLS.
//!
//! Parsing bodies is not here: [`super::decode`] does it, purely.

use sha2::Digest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

use super::decode::{self, BodyFormat, ContentEncoding, DecodeError, ErrorClass, Limits};
use super::{AckMode, HttpInputConfig, HttpInputError, HttpTlsConfig};
use crate::inputs::{InputContext, SendRefused};
use crate::pipeline::ack::{AckToken, Delivery};
use crate::pipeline::record::{Batch, Origin, Record};

/// Seconds a client is told to wait (`Retry-After`) when the pipeline is
/// full: long enough for a batch or two to drain, short enough that a
/// client's retry does not add visible latency.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The Elasticsearch version Weir's ES endpoints claim. Clients pick their
/// wire format by major version; 8 is what current collectors speak.
pub const ES_VERSION: &str = "8.15.0";

/// How long a TLS handshake may take before the connection is dropped, so
/// a client that never finishes cannot hold a slot.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request was refused. Each variant maps to one status code.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Credentials are missing or wrong.
    #[error("missing or invalid credentials; send `Authorization: Bearer <token>`")]
    Unauthorized,
    /// The body as sent is over `max_body_bytes`.
    #[error("the request body is larger than max_body_bytes ({max} bytes)")]
    BodyTooLarge {
        /// The limit.
        max: usize,
    },
    /// The body could not be read.
    #[error("reading the request body: {0}")]
    Body(String),
    /// The tag from the path or header is not usable.
    #[error("invalid tag {0:?}: expected 1 to 256 printable ASCII characters, no spaces, `*`, `?` or `,`")]
    InvalidTag(String),
    /// The pipeline had no room within `queue_wait`.
    #[error("the pipeline is full; nothing from this request was accepted, retry after {RETRY_AFTER_SECS}s")]
    Full,
    /// The pipeline is shutting down.
    #[error("the pipeline is shutting down; retry later")]
    Closed,
    /// Some record of the request was neither delivered nor dead-lettered.
    #[error("at least one record of this request could not be delivered; retry")]
    DeliveryFailed,
    /// Delivery was not confirmed within `ack_timeout`.
    #[error(
        "the records were not confirmed delivered within {0:?} (ack_timeout); they stay queued and may still be delivered, so a retry may duplicate them"
    )]
    AckTimeout(Duration),
}

impl RequestError {
    /// The status code of this error on `/ingest`.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::Decode(e) => match e.class() {
                ErrorClass::BadRequest => StatusCode::BAD_REQUEST,
                ErrorClass::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                ErrorClass::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            },
            RequestError::Unauthorized => StatusCode::UNAUTHORIZED,
            RequestError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::Body(_) | RequestError::InvalidTag(_) => StatusCode::BAD_REQUEST,
            RequestError::Full => StatusCode::TOO_MANY_REQUESTS,
            RequestError::Closed | RequestError::DeliveryFailed => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::AckTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The status code on the Elasticsearch endpoints: as on `/ingest`,
    /// except an ack timeout is 503, which every ES client retries.
    pub fn es_status(&self) -> StatusCode {
        match self {
            RequestError::AckTimeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            other => other.status(),
        }
    }

    fn es_type(&self) -> &'static str {
        match self {
            RequestError::Decode(e) => e.es_type(),
            RequestError::Unauthorized => "security_exception",
            RequestError::BodyTooLarge { .. } => "content_too_long_exception",
            RequestError::Body(_) | RequestError::InvalidTag(_) => "parse_exception",
            RequestError::Full => "es_rejected_execution_exception",
            RequestError::Closed | RequestError::DeliveryFailed => "unavailable_shards_exception",
            RequestError::AckTimeout(_) => "timeout_exception",
        }
    }

    fn headers(&self, response: &mut Response) {
        let headers = response.headers_mut();
        match self {
            RequestError::Full => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            RequestError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"weir\""));
            }
            _ => {}
        }
    }

    /// The answer in Elasticsearch's error shape.
    pub fn es_response(&self) -> Response {
        let status = self.es_status();
        let error = json!({ "type": self.es_type(), "reason": self.to_string() });
        let body = json!({
            "error": { "root_cause": [error.clone()], "type": error["type"], "reason": error["reason"] },
            "status": status.as_u16(),
        });
        let mut response = (status, axum::Json(body)).into_response();
        self.headers(&mut response);
        response
    }
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({
            "status": status.as_u16(),
            "error": status.canonical_reason().unwrap_or("error").to_lowercase(),
            "reason": self.to_string(),
        });
        let mut response = (status, axum::Json(body)).into_response();
        self.headers(&mut response);
        response
    }
}

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
    token: Option<Vec<u8>>,
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
}

impl HttpInputState {
    /// State for a listener bound to `listener` (used in origins), sending
    /// through `ctx`.
    pub fn new(config: &HttpInputConfig, listener: &str, ctx: InputContext) -> Result<Self, HttpInputError> {
        let tag_header = match config.tag_header.trim() {
            "" => None,
            name => Some(HeaderName::try_from(name.to_ascii_lowercase()).map_err(|_| HttpInputError::TagHeader {
                input: ctx.name.to_string(),
                header: config.tag_header.clone(),
            })?),
        };
        let boot = u64::try_from(ctx.clock.now() / 1_000_000).unwrap_or(0);
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(HttpInputState(Arc::new(Shared {
            tag_header,
            message_key: config.message_key.clone(),
            max_body_bytes: to_usize(config.max_body_bytes.0),
            max_decompressed_bytes: to_usize(config.max_decompressed_bytes.0),
            limits: Limits { max_records: config.max_records, max_line_bytes: to_usize(config.max_line_bytes.0) },
            token: config.auth_token.as_ref().map(|t| t.as_bytes().to_vec()),
            ack: config.ack,
            ack_timeout: config.ack_timeout.0,
            queue_wait: config.queue_wait.0,
            bulk_tag_prefix: config.bulk_tag_prefix.clone(),
            bulk_metadata_key: config.bulk_metadata_key.clone(),
            stream: format!("http:{listener}"),
            boot,
            requests: AtomicU64::new(0),
            seq_no: AtomicU64::new(0),
            ctx,
        })))
    }
}

/// The input's routes: `/health`, `/ingest[/{tag}]` and the
/// Elasticsearch-compatible endpoints.
pub fn router(state: HttpInputState) -> Router {
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
        .with_state(state)
}

/// `X-Elastic-Product: Elasticsearch`: ES clients (Python, Java, Go 8.x)
/// refuse to talk to a server whose responses lack it.
async fn elastic_product(mut response: Response) -> Response {
    response.headers_mut().insert("x-elastic-product", HeaderValue::from_static("Elasticsearch"));
    response
}

async fn not_found(request: axum::extract::Request) -> Response {
    let reason = format!("no handler found for uri [{}] and method [{}]", request.uri(), request.method());
    let body = json!({ "error": { "type": "resource_not_found_exception", "reason": reason }, "status": 404 });
    elastic_product((StatusCode::NOT_FOUND, axum::Json(body)).into_response()).await
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

fn es_respond(result: Result<Value, RequestError>) -> Response {
    match result {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.es_response(),
    }
}

async fn es_root(State(state): State<HttpInputState>, headers: HeaderMap) -> Response {
    es_respond(state.authorize(&headers).map(|()| {
        json!({
            "name": "weir",
            "cluster_name": "weir",
            "cluster_uuid": "weir-http-input",
            "version": {
                "number": ES_VERSION,
                "build_flavor": "default",
                "build_type": "weir",
                "build_hash": "weir",
                "build_date": "2024-08-05T10:05:34.233336849Z",
                "build_snapshot": false,
                "lucene_version": "9.11.1",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0"
            },
            "tagline": "You Know, for Search"
        })
    }))
}

async fn es_license(State(state): State<HttpInputState>, headers: HeaderMap) -> Response {
    es_respond(state.authorize(&headers).map(|()| {
        json!({ "license": { "status": "active", "uid": "weir", "type": "basic", "mode": "basic", "issued_to": "weir", "issuer": "weir" } })
    }))
}

async fn es_xpack(State(state): State<HttpInputState>, headers: HeaderMap) -> Response {
    es_respond(state.authorize(&headers).map(|()| {
        json!({
            "build": { "hash": "weir", "date": "2024-08-05T10:05:34.233336849Z" },
            "license": { "uid": "weir", "type": "basic", "mode": "basic", "status": "active" },
            "features": {}
        })
    }))
}

async fn es_nodes(State(state): State<HttpInputState>, headers: HeaderMap) -> Response {
    let address = state.0.stream.trim_start_matches("http:").to_string();
    es_respond(state.authorize(&headers).map(|()| {
        json!({
            "_nodes": { "total": 1, "successful": 1, "failed": 0 },
            "cluster_name": "weir",
            "nodes": { "weir": {
                "name": "weir", "version": ES_VERSION, "roles": ["data", "ingest", "master"],
                "http": { "publish_address": address, "bound_address": [address] }
            } }
        })
    }))
}

async fn es_cluster_health(State(state): State<HttpInputState>, headers: HeaderMap) -> Response {
    es_respond(state.authorize(&headers).map(|()| {
        json!({
            "cluster_name": "weir", "status": "green", "timed_out": false,
            "number_of_nodes": 1, "number_of_data_nodes": 1,
            "active_primary_shards": 0, "active_shards": 0, "relocating_shards": 0,
            "initializing_shards": 0, "unassigned_shards": 0, "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0, "active_shards_percent_as_number": 100.0
        })
    }))
}

impl HttpInputState {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), RequestError> {
        let Some(token) = &self.0.token else {
            return Ok(());
        };
        let presented = headers.get(header::AUTHORIZATION).and_then(|v| credential(v.as_bytes()));
        match presented {
            Some(presented) if constant_time_eq(&presented, token) => Ok(()),
            _ => Err(RequestError::Unauthorized),
        }
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
                    decode::with_field(&doc, key, &meta).into()
                }
            };
            records.push(Record {
                time,
                tag: format!("{}{}", self.0.bulk_tag_prefix, item.index).into(),
                body,
                origin: Some(origin),
                ack: token.clone(),
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

/// Tags are matched by `match:` globs, so glob characters, separators and
/// whitespace are refused.
pub(super) fn valid_tag(tag: &str) -> bool {
    (1..=256).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'*' | b'?' | b','))
}

/// The secret in an `Authorization` value: `Bearer <t>`, `ApiKey <t>`, or
/// the password of `Basic base64(user:password)`.
pub(super) fn credential(value: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("apikey") {
        Some(rest.as_bytes().to_vec())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64_decode(rest)?;
        let colon = decoded.iter().position(|&b| b == b':')?;
        Some(decoded[colon + 1..].to_vec())
    } else {
        None
    }
}

/// Compare without an early exit, so the time taken does not reveal how
/// many leading bytes matched (only whether the lengths differ).
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Standard base64 with optional padding; `None` when invalid.
pub(super) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        }))
    }
    let text = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// A TLS acceptor from the configured PEM files.
pub fn tls_acceptor(input: &str, tls: &HttpTlsConfig) -> Result<TlsAcceptor, HttpInputError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let error = |file: &std::path::Path, reason: String| HttpInputError::Tls {
        input: input.to_string(),
        file: file.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(&tls.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(error(&tls.cert, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| error(&tls.key, e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| error(&tls.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| error(&tls.key, format!("certificate and key do not work together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
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

/// Accepts TCP connections and completes TLS handshakes in their own tasks,
/// so one slow handshake does not hold up others.
struct TlsListener {
    ready: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn spawn(listener: TcpListener, acceptor: TlsAcceptor, shutdown: CancellationToken) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        // A few handshaken connections may wait for axum to take them.
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = shutdown.cancelled() => return,
                    () = tx.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "tls handshake failed"),
                        Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(pair) => pair,
            // The accept task ended (shutdown): wait for graceful shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
