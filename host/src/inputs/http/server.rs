//! The HTTP input's request path: the axum [`router`], the `/ingest` and
//! `_bulk` handlers, queueing with backpressure, waiting for
//! acknowledgements, and serving (plain or TLS).
//!
//! Elsewhere: parsing bodies in [`super::decode`] (pure), refusals and
//! their answers in `errors.rs`, credentials in `auth.rs`, the
//! Elasticsearch probe, template, ILM and pipeline endpoints in
//! `es_compat.rs`, `filter_path` in `filter_path.rs` (pure), HTTPS in
//! `tls.rs`.

use sha2::Digest;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::auth::Required;
use super::connections::{self, ConnectionLimits};
use super::decode::{self, BodyFormat, BulkAction, BulkItem, ContentEncoding, Limits};
use super::errors::{REFUSAL_REASONS, RequestError};
use super::es_compat::{
    EsVersion, ResourceKind, Resources, elastic_product, es_cluster_health, es_license, es_nodes, es_root, es_xpack,
    not_found, resource,
};
use super::filter_path::FilterPath;
use super::tls::TlsListener;
use super::{AckMode, HttpInputConfig, HttpInputError};
use crate::core::ack::{AckToken, Delivery};
use crate::core::metrics::catalogue::{INPUT_CONNECTIONS_CLOSED, INPUT_REQUESTS_IN_FLIGHT, INPUT_REQUESTS_REFUSED};
use crate::core::metrics::{Counter, Gauge, registry};
use crate::core::record::{Batch, Origin, Record};
use crate::core::tag_match::valid_tag;
use crate::inputs::buffer::{Buffer, BufferError};
use crate::inputs::{InputContext, SendRefused};

/// What the handlers share: settings, the pipeline's [`InputContext`] and
/// the `_seq_no` counter.
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
    es_version: EsVersion,
    resources: Resources,
    /// `http:<listener>`, the start of every origin stream.
    stream: String,
    seq_no: AtomicU64,
    in_flight: Gauge,
    body_read_timeout: Duration,
    header_read_timeout: Duration,
    max_connections: usize,
    /// `weir_input_requests_refused_total` by reason.
    refused: HashMap<&'static str, Counter>,
    /// Requests whose client hung up before their answer.
    gone: Counter,
    /// The durable buffer, with `buffer:`; requests are appended to it
    /// instead of queued, and [`Buffer::feed`] queues them.
    buffer: Option<Buffer>,
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
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        if config.max_connections == 0 {
            return Err(HttpInputError::Setting { message: "max_connections must be at least 1".into() });
        }
        let input: &str = &ctx.name;
        let buffer = match &config.buffer {
            Some(settings) => Some(Buffer::open(input, settings)?.0),
            None => None,
        };
        let refused =
            REFUSAL_REASONS.iter().map(|&r| (r, registry().counter(&INPUT_REQUESTS_REFUSED, &[input, r]))).collect();
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
            es_version: config.es_version.clone(),
            resources: Resources::default(),
            stream: format!("http:{listener}"),
            seq_no: AtomicU64::new(0),
            in_flight: registry().gauge(&INPUT_REQUESTS_IN_FLIGHT, &[input]),
            body_read_timeout: config.body_read_timeout.0,
            header_read_timeout: config.header_read_timeout.0,
            max_connections: config.max_connections,
            refused,
            gone: registry().counter(&INPUT_CONNECTIONS_CLOSED, &[input, "client_gone"]),
            buffer,
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
    let (in_flight, gone) = (state.0.in_flight.clone(), state.0.gone.clone());
    let mut es = Router::new()
        .route("/", get(es_root))
        .route("/_bulk", post(bulk).put(bulk))
        .route("/{index}/_bulk", post(bulk_into).put(bulk_into))
        .route("/_license", get(es_license))
        .route("/_xpack", get(es_xpack))
        .route("/_nodes", get(es_nodes))
        .route("/_nodes/{*what}", get(es_nodes))
        .route("/_cluster/health", get(es_cluster_health));
    for (kind, prefix) in ResourceKind::ALL {
        let handler = move |State(state): State<HttpInputState>,
                            Path(name): Path<String>,
                            method: Method,
                            headers: HeaderMap,
                            body: Body| resource(kind, state, name, method, headers, body);
        es = es.route(&format!("{prefix}/{{name}}"), any(handler));
    }
    let es = es.layer(axum::middleware::map_response(elastic_product));
    Router::new()
        .route("/health", get(|| async { axum::Json(json!({ "status": "ok" })) }))
        .route("/ingest", post(ingest))
        .route("/ingest/{tag}", post(ingest_tagged))
        .merge(es)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
            let guard = in_flight.track();
            // Dropped unanswered when the client hangs up: hyper then drops
            // the request's future. What it queued stays queued.
            let unanswered = Unanswered(Some(gone.clone()));
            async move {
                let response = next.run(request).await;
                unanswered.answered();
                drop(guard);
                response
            }
        }))
        .with_state(state)
}

/// Counts a request whose client hung up before it was answered, when
/// dropped before [`Unanswered::answered`].
struct Unanswered(Option<Counter>);

impl Unanswered {
    fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(gone) = &self.0 {
            gone.add(1);
        }
    }
}

async fn ingest(State(state): State<HttpInputState>, headers: HeaderMap, body: Body) -> Response {
    state.respond(state.ingest(None, &headers, body).await)
}

async fn ingest_tagged(
    State(state): State<HttpInputState>,
    Path(tag): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    state.respond(state.ingest(Some(tag), &headers, body).await)
}

async fn bulk(
    State(state): State<HttpInputState>,
    Query(params): Query<BulkParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    state.bulk_respond(state.bulk(None, params, &headers, body).await)
}

async fn bulk_into(
    State(state): State<HttpInputState>,
    Path(index): Path<String>,
    Query(params): Query<BulkParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    state.bulk_respond(state.bulk(Some(index), params, &headers, body).await)
}

/// The `_bulk` query parameters Weir reads; the others (`timeout`,
/// `wait_for_active_shards`, `require_alias`, `_source`…) are accepted and
/// have nothing to act on.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct BulkParams {
    /// Which parts of the answer to send ([`FilterPath`]).
    filter_path: Option<String>,
    /// `true`, `false`, `wait_for` or empty: accepted (Weir has no search
    /// to refresh), anything else refused as Elasticsearch does.
    refresh: Option<String>,
    /// Default `routing` of the items.
    routing: Option<String>,
    /// Default ingest `pipeline` of the items.
    pipeline: Option<String>,
}

impl HttpInputState {
    fn respond(&self, result: Result<Value, RequestError>) -> Response {
        match result {
            Ok(body) => axum::Json(body).into_response(),
            Err(error) => {
                self.count_refusal(&error);
                error.into_response()
            }
        }
    }

    /// A `_bulk` answer, already JSON, or a refusal in Elasticsearch's shape.
    fn bulk_respond(&self, result: Result<Vec<u8>, RequestError>) -> Response {
        match result {
            Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
            Err(error) => {
                self.count_refusal(&error);
                error.es_response()
            }
        }
    }

    /// One more `weir_input_requests_refused_total{reason}`.
    pub(super) fn count_refusal(&self, error: &RequestError) {
        if let Some(counter) = self.0.refused.get(error.reason()) {
            counter.add(1);
        }
    }

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

    /// Credentials, then the body: read as it arrives within
    /// `max_body_bytes`, decompressed as it arrives within
    /// `max_decompressed_bytes`, without a leading byte order mark. The body
    /// is held once (decompressed): records are slices of it.
    async fn body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, RequestError> {
        self.body_within(headers, body, self.0.max_body_bytes, self.0.max_decompressed_bytes).await
    }

    /// A body that is kept (a template, a policy): as [`Self::body`], within
    /// `max` bytes as sent and decompressed as well.
    pub(super) async fn small_body(&self, headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, RequestError> {
        self.body_within(headers, body, max.min(self.0.max_body_bytes), max.min(self.0.max_decompressed_bytes)).await
    }

    async fn body_within(
        &self,
        headers: &HeaderMap,
        body: Body,
        max: usize,
        max_decompressed: usize,
    ) -> Result<Bytes, RequestError> {
        self.authorize(headers)?;
        let encoding = ContentEncoding::parse(header_str(headers, &header::CONTENT_ENCODING))?;
        let declared = header_str(headers, &header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(RequestError::BodyTooLarge { max });
        }
        let declared = declared.map_or(0, |n| usize::try_from(n).unwrap_or(max));
        let deadline = tokio::time::Instant::now() + self.0.body_read_timeout;
        let mut chunks = Chunks { body, received: 0, max, deadline, timeout: self.0.body_read_timeout };
        let decoded = if encoding == ContentEncoding::Identity {
            let mut out = Vec::with_capacity(declared);
            while let Some(chunk) = chunks.next().await? {
                out.extend_from_slice(&chunk);
            }
            Bytes::from(out)
        } else {
            // Decompressing is CPU work: off the async threads, fed chunk
            // by chunk as they arrive.
            let (tx, rx) = tokio::sync::mpsc::channel(DECOMPRESS_QUEUE_CHUNKS);
            let guess = declared.saturating_mul(EXPECTED_COMPRESSION_RATIO);
            let decompressing = tokio::task::spawn_blocking(move || {
                decode::decompress(ChunkReader { rx, current: Bytes::new() }, encoding, max_decompressed, guess)
            });
            let fed = async {
                while let Some(chunk) = chunks.next().await? {
                    if tx.send(chunk).await.is_err() {
                        break; // the decompressor stopped; its result says why
                    }
                }
                Ok::<(), RequestError>(())
            }
            .await;
            drop(tx);
            let decompressed = decompressing.await.map_err(|e| RequestError::Body(format!("decompressing: {e}")))?;
            fed?;
            decompressed?
        };
        Ok(decode::without_bom(decoded))
    }

    async fn ingest(&self, path_tag: Option<String>, headers: &HeaderMap, body: Body) -> Result<Value, RequestError> {
        let tag = self.tag(path_tag, headers)?;
        let body = self.body(headers, body).await?;
        let format = BodyFormat::from_content_type(header_str(headers, &header::CONTENT_TYPE))
            .unwrap_or_else(|| BodyFormat::sniff(&body));
        let items = decode::decode(&body, format, &self.0.message_key, self.0.limits)?;
        let n = items.len();
        let time = self.0.ctx.clock.now();
        let stream: Arc<str> = format!("{}/{tag}/{}", self.0.stream, request_id(headers, &body)?).into();
        let (token, delivery) = self.ack_token();
        let records = items.into_iter().map(|item| Record {
            time,
            tag: tag.clone(),
            body: item.body,
            origin: Some(Origin { stream: stream.clone(), offset: item.position, lineage: 0 }),
            ack: token.clone(),
            arrival: None,
        });
        if let Some(buffer) = &self.0.buffer {
            append(buffer, records.collect()).await?;
        } else {
            let batches = self.batches(records);
            drop(token);
            self.enqueue_and_wait(batches, delivery).await?;
        }
        Ok(json!({ "records": n, "ack": self.ack_name() }))
    }

    /// The `_bulk` endpoint: queue each item as a record, answer each item
    /// as Elasticsearch would. The answer is written as JSON bytes item by
    /// item, straight into the response (no value tree per item: a 100 MB
    /// bulk of small documents has about a million), once the records are
    /// queued; `took` is the time to read, decode and queue them. When the
    /// pipeline stalls part-way, the items it did not take answer 429
    /// `es_rejected_execution_exception`, so a client retries only those.
    async fn bulk(
        &self,
        path_index: Option<String>,
        params: BulkParams,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Vec<u8>, RequestError> {
        let started = Instant::now();
        if let Some(refresh) = params.refresh.as_deref()
            && !matches!(refresh, "" | "true" | "false" | "wait_for")
        {
            return Err(RequestError::IllegalArgument(format!(
                "unknown value for refresh: [{refresh}]; expected true, false or wait_for"
            )));
        }
        let filter = params.filter_path.as_deref().and_then(FilterPath::parse);
        let body = self.body(headers, body).await?;
        let mut items = decode::decode_bulk(&body, path_index.as_deref(), self.0.limits)?;
        if params.routing.is_some() || params.pipeline.is_some() {
            for item in &mut items {
                item.routing = item.routing.take().or_else(|| params.routing.clone());
                item.pipeline = item.pipeline.take().or_else(|| params.pipeline.clone());
            }
        }
        let time = self.0.ctx.clock.now();
        let request_id = request_id(headers, &body)?;
        let request_stream: Arc<str> = format!("{}/_bulk/{request_id}", self.0.stream).into();
        let (token, delivery) = self.ack_token();
        let mut tags: HashMap<&str, Arc<str>> = HashMap::new();
        let records = items.iter().filter(|item| self.refusal(item).is_none()).map(|item| {
            let origin = match &item.id {
                Some(id) => {
                    Origin { stream: format!("{}/{}/{id}", self.0.stream, item.index).into(), offset: 0, lineage: 0 }
                }
                None => Origin { stream: request_stream.clone(), offset: item.line, lineage: 0 },
            };
            let doc = item.doc.clone().unwrap_or_else(|| Bytes::from_static(b"{}"));
            let body = match &self.0.bulk_metadata_key {
                None => doc,
                Some(key) => crate::core::json::with_field(&doc, key, &bulk_metadata(item)).into(),
            };
            let tag = tags
                .entry(item.index.as_str())
                .or_insert_with(|| format!("{}{}", self.0.bulk_tag_prefix, item.index).into())
                .clone();
            Record { time, tag, body, origin: Some(origin), ack: token.clone(), arrival: None }
        });
        let queued = if let Some(buffer) = &self.0.buffer {
            // All or nothing: the retry of a refused request is the same body,
            // so the same records (origins), never a part counted twice.
            let records: Vec<Record> = records.collect();
            let n = records.len();
            append(buffer, records).await?;
            n
        } else {
            let batches = self.batches(records);
            drop(token);
            self.enqueue_prefix(batches).await?
        };
        drop(tags);
        let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let type_name = self.0.es_version.has_types().then_some("_doc");
        let mut out = Vec::with_capacity(items.len() * BULK_ANSWER_BYTES);
        let mut answers = Vec::with_capacity(items.len());
        let mut carried = 0usize;
        for item in &items {
            let answer = match self.refusal(item) {
                Some(refusal) => Err(refusal),
                None if carried >= queued => {
                    carried += 1;
                    Err(Refusal::rejected())
                }
                None => {
                    carried += 1;
                    Ok(())
                }
            };
            answers.push(answer);
        }
        // Elasticsearch's order: shippers may read `errors` before `items`.
        let errors = answers.iter().any(Result::is_err);
        write!(out, "{{\"took\":{took},\"errors\":{errors},\"items\":[").expect("writing to a Vec cannot fail");
        for (i, (item, answer)) in items.iter().zip(answers).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let action = item.action.name();
            if let Err(refusal) = answer {
                let answer = BulkRefusal {
                    index: &item.index,
                    kind: type_name,
                    id: item.id.as_deref(),
                    status: refusal.status,
                    error: BulkError { kind: refusal.kind, reason: &refusal.reason },
                };
                write_answer(&mut out, action, &answer);
                continue;
            }
            let generated;
            let id = match &item.id {
                Some(id) => id.as_str(),
                None => {
                    generated = format!("{request_id}-{}", item.line);
                    &generated
                }
            };
            let (result, status) = match item.action {
                BulkAction::Index | BulkAction::Create => ("created", 201),
                BulkAction::Update => ("updated", 200),
                BulkAction::Delete => ("deleted", 200),
            };
            let answer = BulkDone {
                index: &item.index,
                kind: type_name,
                id,
                version: 1,
                result,
                shards: Shards { total: 1, successful: 1, failed: 0 },
                seq_no: self.0.seq_no.fetch_add(1, Ordering::Relaxed),
                primary_term: 1,
                status,
            };
            write_answer(&mut out, action, &answer);
        }
        out.extend_from_slice(b"]}");
        drop(items);
        self.wait(delivery).await?;
        if let Some(filter) = filter {
            // Only on request (Logstash asks on every bulk): the answer
            // becomes a value tree once, filtered, and is written again.
            let value: Value = serde_json::from_slice(&out).expect("the answer was written as JSON");
            out = serde_json::to_vec(&filter.apply(value)).expect("a JSON value serialises");
        }
        Ok(out)
    }

    /// Why `item` is answered without becoming a record, if it is.
    fn refusal(&self, item: &BulkItem) -> Option<Refusal> {
        if !matches!(item.action, BulkAction::Update | BulkAction::Delete) {
            return None;
        }
        if item.id.is_none() {
            // Elasticsearch refuses the whole request for this; per item,
            // only the item fails.
            return Some(Refusal {
                status: 400,
                kind: "action_request_validation_exception",
                reason: "Validation Failed: 1: id is missing;".into(),
            });
        }
        if self.0.bulk_metadata_key.is_none() {
            return Some(Refusal {
                status: 400,
                kind: "illegal_argument_exception",
                reason: format!(
                    "{} (line {}) was not applied: set bulk_metadata_key on the http input to carry update and delete actions to the outputs",
                    item.action.name(),
                    item.line
                ),
            });
        }
        None
    }

    /// The Elasticsearch version the ES endpoints claim.
    pub(super) fn es_version(&self) -> &EsVersion {
        &self.0.es_version
    }

    /// The templates, policies and pipelines put to this input.
    pub(super) fn resources(&self) -> &Resources {
        &self.0.resources
    }

    /// Whether requests must carry credentials.
    pub(super) fn requires_auth(&self) -> bool {
        self.0.auth.is_some()
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
        self.enqueue(batches).await?;
        self.wait(delivery).await
    }

    /// Queue the batches, or refuse them all when the pipeline stays full.
    /// Queueing runs in a task of its own, so a client hanging up half-way
    /// (hyper then drops the request) cannot stop it after the first
    /// batches: a unit is queued whole or not at all.
    async fn enqueue(&self, batches: Vec<Batch>) -> Result<(), RequestError> {
        let state = self.clone();
        let sent = tokio::spawn(async move { state.0.ctx.send_within(batches, state.0.queue_wait).await });
        match sent.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(SendRefused::Full)) => Err(RequestError::Full),
            Ok(Err(SendRefused::Closed)) | Err(_) => Err(RequestError::Closed),
        }
    }

    /// Queue what the pipeline takes of the batches, in order; how many
    /// records that was. Nothing at all is 429, as on `/ingest`.
    async fn enqueue_prefix(&self, batches: Vec<Batch>) -> Result<usize, RequestError> {
        self.0.ctx.send_prefix_within(batches, self.0.queue_wait).await.map_err(|refused| match refused {
            SendRefused::Full => RequestError::Full,
            SendRefused::Closed => RequestError::Closed,
        })
    }

    /// With `ack: delivered`, wait for the outcome of what was queued.
    async fn wait(&self, delivery: Option<tokio::sync::oneshot::Receiver<Delivery>>) -> Result<(), RequestError> {
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

/// Put a request's records in the durable buffer: accepted once it returns.
async fn append(buffer: &Buffer, records: Vec<Record>) -> Result<(), RequestError> {
    buffer.append_async(records).await.map(drop).map_err(|error| match error {
        BufferError::Full { .. } => RequestError::BufferFull(error.to_string()),
        BufferError::TooLarge { .. } => RequestError::BufferTooLarge(error.to_string()),
        BufferError::Locked { .. } | BufferError::Io { .. } => {
            tracing::error!(%error, "buffer: a request could not be stored");
            RequestError::BufferFailed(error.to_string())
        }
    })
}

/// Chunks in flight between the request and the decompressing thread:
/// enough to keep both busy, few enough that a slow decompressor holds the
/// client back (through TCP) rather than buffering its body.
const DECOMPRESS_QUEUE_CHUNKS: usize = 4;
/// A first guess of decompressed size per byte sent, to size the buffer:
/// log text compresses about 5-10x.
const EXPECTED_COMPRESSION_RATIO: usize = 4;

/// A request body's data chunks, refusing more than `max` bytes in all,
/// or a body still arriving at `deadline` (`body_read_timeout`).
struct Chunks {
    body: Body,
    received: usize,
    max: usize,
    deadline: tokio::time::Instant,
    timeout: Duration,
}

impl Chunks {
    async fn next(&mut self) -> Result<Option<Bytes>, RequestError> {
        loop {
            let frame = tokio::time::timeout_at(self.deadline, self.body.frame())
                .await
                .map_err(|_| RequestError::BodyTimeout { timeout: self.timeout, received: self.received })?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| RequestError::Body(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                self.received += data.len();
                if self.received > self.max {
                    return Err(RequestError::BodyTooLarge { max: self.max });
                }
                return Ok(Some(data));
            }
        }
        Ok(None)
    }
}

/// The chunks a request handler sends, read as one stream by the blocking
/// decompressor; the end of the stream is the sender dropping.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// About the size of one item's answer, to size the answer buffer.
const BULK_ANSWER_BYTES: usize = 200;

/// The metadata a carried `_bulk` item's record holds under
/// `bulk_metadata_key`: `{"index", "action"}`, and `id`, `routing` and
/// `pipeline` when given, for an Elasticsearch output to replay it as the
/// same action (its own `bulk_metadata_key`).
fn bulk_metadata(item: &BulkItem) -> Value {
    let mut meta = serde_json::Map::with_capacity(5);
    meta.insert("index".into(), Value::String(item.index.clone()));
    meta.insert("action".into(), Value::String(item.action.name().into()));
    for (key, value) in [("id", &item.id), ("routing", &item.routing), ("pipeline", &item.pipeline)] {
        if let Some(value) = value {
            meta.insert(key.into(), Value::String(value.clone()));
        }
    }
    Value::Object(meta)
}

/// An item answered with an error.
struct Refusal {
    status: u16,
    kind: &'static str,
    reason: String,
}

impl Refusal {
    /// Not taken by a stalled pipeline: Elasticsearch's answer to a full
    /// write queue, which clients retry after a backoff.
    fn rejected() -> Self {
        Refusal {
            status: 429,
            kind: "es_rejected_execution_exception",
            reason: "the pipeline is full; this item was not accepted, retry it".into(),
        }
    }
}

/// A carried item's answer, as Elasticsearch writes it.
#[derive(Serialize)]
struct BulkDone<'a> {
    #[serde(rename = "_index")]
    index: &'a str,
    #[serde(rename = "_type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(rename = "_id")]
    id: &'a str,
    #[serde(rename = "_version")]
    version: u32,
    result: &'static str,
    #[serde(rename = "_shards")]
    shards: Shards,
    #[serde(rename = "_seq_no")]
    seq_no: u64,
    #[serde(rename = "_primary_term")]
    primary_term: u32,
    status: u16,
}

#[derive(Serialize)]
struct Shards {
    total: u32,
    successful: u32,
    failed: u32,
}

/// A refused item's answer.
#[derive(Serialize)]
struct BulkRefusal<'a> {
    #[serde(rename = "_index")]
    index: &'a str,
    #[serde(rename = "_type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    status: u16,
    error: BulkError<'a>,
}

#[derive(Serialize)]
struct BulkError<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    reason: &'a str,
}

/// Append `{"<action>": <answer>}` to `out`.
fn write_answer(out: &mut Vec<u8>, action: &str, answer: &impl Serialize) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(action.as_bytes());
    out.extend_from_slice(b"\":");
    serde_json::to_writer(&mut *out, answer).expect("writing to a Vec cannot fail");
    out.push(b'}');
}

/// The header a client names a request with, so that its retry is known
/// for one and a second, identical request is not (IETF
/// draft-ietf-httpapi-idempotency-key-header; Stripe's and others' APIs).
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Longest idempotency key: a UUID is 36 characters; room for any scheme.
pub(super) const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// A request's identity, the part of its records' origin that tells a
/// retry from a new request: the client's `Idempotency-Key` when it sends
/// one (`key-` and 96 bits of its SHA-256), else 96 bits of the SHA-256 of
/// the (decompressed) body, so a retried body is the same request and two
/// identical bodies are too (README, "Identity of a request").
///
/// # Errors
/// [`RequestError::InvalidIdempotencyKey`] for an empty, over-long or
/// non-printable key.
pub(super) fn request_id(headers: &HeaderMap, body: &[u8]) -> Result<String, RequestError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(hex::encode(&sha2::Sha256::digest(body)[..12]));
    };
    // The draft writes the key as a structured-field string, in quotes.
    let raw = value.as_bytes();
    let key = raw.strip_prefix(b"\"").and_then(|k| k.strip_suffix(b"\"")).unwrap_or(raw);
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES || !key.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(RequestError::InvalidIdempotencyKey);
    }
    Ok(format!("key-{}", hex::encode(&sha2::Sha256::digest(key)[..12])))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Serve `state` on `listener` (with TLS when given) until `shutdown`
/// fires; in-flight requests finish first.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: HttpInputState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits =
        ConnectionLimits { max_connections: state.0.max_connections, header_read_timeout: state.0.header_read_timeout };
    let input = state.0.ctx.name.to_string();
    let feeding = state.0.buffer.clone().map(|buffer| {
        let state = state.clone();
        tokio::spawn(async move { buffer.feed(&state.0.ctx).await })
    });
    let app = router(state);
    let served = match tls {
        None => connections::serve(listener, app, &input, limits, shutdown).await,
        Some(acceptor) => {
            let listener = TlsListener::spawn(listener, acceptor, shutdown.clone())?;
            connections::serve(listener, app, &input, limits, shutdown).await
        }
    };
    if let Some(feeding) = feeding {
        let _ = feeding.await;
    }
    served
}
