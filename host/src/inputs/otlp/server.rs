//! The `otlp` input's two listeners and what they answer, per the OTLP
//! spec (<https://opentelemetry.io/docs/specs/otlp/>):
//!
//! | outcome | OTLP/HTTP | OTLP/gRPC |
//! |---|---|---|
//! | taken (every record, or some refused as invalid) | 200, `ExportLogsServiceResponse` with `partial_success` when some were refused | `OK`, the same message |
//! | undecodable body | 400, a `google.rpc.Status` | `INVALID_ARGUMENT` (tonic) |
//! | body too large | 413 | `RESOURCE_EXHAUSTED` (tonic) |
//! | not protobuf nor JSON, unknown encoding | 415 | |
//! | pipeline full | 429 with `Retry-After` | `UNAVAILABLE` |
//! | delivery failed, ack timeout, shutting down | 503 with `Retry-After` | `UNAVAILABLE` |
//!
//! The answer's encoding follows the request's (`application/x-protobuf`
//! or `application/json`). Refused records (see [`super::map::problem`]) are
//! dead-lettered, so nothing is lost, and counted in `partial_success`,
//! so the sender does not retry them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message as _;
use sha2::Digest as _;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

use super::map;
use super::{OtlpInputConfig, OtlpInputError};
use crate::core::ack::AckToken;
use crate::core::dead_letter::DeadLetter;
use crate::core::record::{Origin, Record};
use crate::inputs::{AckMode, InputContext, Unconfirmed};

/// What both listeners share.
#[derive(Clone)]
struct OtlpState(Arc<Shared>);

struct Shared {
    ctx: InputContext,
    config: OtlpInputConfig,
    /// `otlp:<first listener>`, the start of every origin stream.
    stream: String,
}

/// Seconds a refused sender is asked to wait (`Retry-After`).
const RETRY_AFTER_SECONDS: &str = "1";

/// Bind both listeners and serve until shutdown.
pub(super) async fn serve(config: OtlpInputConfig, ctx: InputContext) -> Result<(), OtlpInputError> {
    let bind = |address: Option<SocketAddr>| async move {
        let Some(address) = address else { return Ok(None) };
        let listener = TcpListener::bind(address).await.map_err(|source| OtlpInputError::Bind { address, source })?;
        let local = listener.local_addr().map_err(|source| OtlpInputError::Bind { address, source })?;
        Ok::<_, OtlpInputError>(Some((listener, local)))
    };
    let http = bind(config.http_address).await?;
    let grpc = bind(config.grpc_address).await?;
    let Some(first) = http.as_ref().or(grpc.as_ref()).map(|(_, a)| *a) else {
        return Err(OtlpInputError::NoListener);
    };
    let shown = |l: &Option<(TcpListener, SocketAddr)>| l.as_ref().map(|(_, a)| a.to_string()).unwrap_or_default();
    tracing::info!(input = %ctx.name, http = shown(&http), grpc = shown(&grpc), "otlp input listening");
    ctx.listening();
    let shutdown = ctx.shutdown.clone();
    let state = OtlpState(Arc::new(Shared { stream: format!("otlp:{first}"), config, ctx }));
    let max_body = to_usize(state.0.config.max_body_bytes.0);
    let serve_on = |listener: Option<(TcpListener, SocketAddr)>, app: Router| {
        let shutdown = shutdown.clone();
        async move {
            let Some((listener, address)) = listener else { return Ok(()) };
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
                .map_err(|source| OtlpInputError::Serve { address, source })
        }
    };
    let http_app = Router::new().route("/v1/logs", post(http_export)).with_state(state.clone());
    let grpc_service = LogsServiceServer::new(state)
        .max_decoding_message_size(max_body)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let grpc_app = tonic::service::Routes::new(grpc_service).into_axum_router();
    tokio::try_join!(serve_on(http, http_app), serve_on(grpc, grpc_app))?;
    Ok(())
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl OtlpState {
    /// Turn an export into records, queue them, and wait as `ack` says.
    async fn export(&self, request: ExportLogsServiceRequest) -> Result<ExportLogsServiceResponse, Unconfirmed> {
        let shared = &self.0;
        let ctx = &shared.ctx;
        let items = map::items(&request);
        drop(request);
        let now = ctx.clock.now();
        // The request's identity is its content: an exporter retrying the
        // same batch gets the same origins, so outputs with deterministic
        // ids (Elasticsearch) do not index the retry twice.
        let mut sha = sha2::Sha256::new();
        for item in &items {
            sha.update(&item.body);
        }
        let stream: Arc<str> = format!("{}/{}", shared.stream, hex::encode(&sha.finalize()[..12])).into();
        let (token, delivery) = match shared.config.ack {
            AckMode::Delivered => {
                let (token, rx) = AckToken::channel();
                (Some(token), Some(rx))
            }
            AckMode::Accepted => (None, None),
        };
        let mut records = Vec::with_capacity(items.len());
        let mut letters = Vec::new();
        let mut first_problem = None;
        for (i, item) in items.into_iter().enumerate() {
            let record = Record {
                time: item.time.unwrap_or(now),
                tag: ctx.tag.clone(),
                body: item.body.into(),
                origin: Some(Origin { stream: stream.clone(), offset: i as u64, lineage: 0 }),
                ack: token.clone(),
                arrival: None,
            };
            match item.problem {
                None => records.push(record),
                Some(problem) => {
                    let reason = format!("otlp log record {i}: {problem}");
                    first_problem.get_or_insert_with(|| reason.clone());
                    letters.push(DeadLetter::of(record, format!("input {}", ctx.name), reason));
                }
            }
        }
        drop(token);
        let rejected = letters.len();
        let batches = ctx.batches(records);
        let config = &shared.config;
        ctx.send_and_confirm(batches, letters, config.queue_wait.0, delivery, config.ack_timeout.0).await?;
        Ok(ExportLogsServiceResponse {
            partial_success: first_problem.map(|problem| ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message: format!(
                    "{rejected} log records refused and kept in weir's dead letter; first: {problem}"
                ),
            }),
        })
    }
}

#[tonic::async_trait]
impl LogsService for OtlpState {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        match OtlpState::export(self, request.into_inner()).await {
            Ok(response) => Ok(tonic::Response::new(response)),
            // OTLP: UNAVAILABLE is retryable; RESOURCE_EXHAUSTED only with
            // RetryInfo, so a full pipeline answers UNAVAILABLE too.
            Err(unconfirmed) => Err(tonic::Status::unavailable(unconfirmed.to_string())),
        }
    }
}

/// The body encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// An OTLP/HTTP refusal: status and message (sent as a `google.rpc.Status`).
struct Refusal {
    status: StatusCode,
    message: String,
    retry_after: bool,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal { status, message: message.into(), retry_after: false }
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    code: i32,
    /// For a person.
    #[prost(string, tag = "2")]
    message: String,
}

/// `google.rpc.Code` of an HTTP status, for the error body.
fn rpc_code(status: StatusCode) -> i32 {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3, // INVALID_ARGUMENT
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => 8, // RESOURCE_EXHAUSTED
        _ => 14,                                                           // UNAVAILABLE
    }
}

async fn http_export(State(state): State<OtlpState>, headers: HeaderMap, body: Body) -> Response {
    let header = |name: &header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = header(&header::CONTENT_TYPE).split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let encoding = match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            let refusal = Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content-type {other:?}: OTLP/HTTP takes application/x-protobuf or application/json"),
            );
            return refuse(Encoding::Protobuf, refusal);
        }
    };
    match http_ingest(&state, header(&header::CONTENT_ENCODING), encoding, body).await {
        Ok(response) => {
            let bytes = match encoding {
                Encoding::Protobuf => response.encode_to_vec(),
                Encoding::Json => response_json(&response),
            };
            ([(header::CONTENT_TYPE, encoding.content_type())], bytes).into_response()
        }
        Err(refusal) => refuse(encoding, refusal),
    }
}

async fn http_ingest(
    state: &OtlpState,
    content_encoding: &str,
    encoding: Encoding,
    body: Body,
) -> Result<ExportLogsServiceResponse, Refusal> {
    let config = &state.0.config;
    let max = to_usize(config.max_body_bytes.0);
    let raw = match http_body_util::Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body exceeds max_body_bytes ({max} bytes)"),
            ));
        }
        Err(e) => return Err(Refusal::new(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))),
    };
    let bytes = inflate(raw, content_encoding, to_usize(config.max_decompressed_bytes.0))?;
    let request = match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(bytes)
            .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("not an ExportLogsServiceRequest: {e}")))?,
        Encoding::Json => serde_json::from_slice(&bytes)
            .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("not an ExportLogsServiceRequest: {e}")))?,
    };
    state.export(request).await.map_err(|unconfirmed| {
        let status = if unconfirmed == Unconfirmed::Full {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        Refusal { status, message: unconfirmed.to_string(), retry_after: true }
    })
}

/// The response as OTLP/JSON: proto3's JSON mapping writes int64 as a
/// decimal string, and an unset message not at all.
fn response_json(response: &ExportLogsServiceResponse) -> Vec<u8> {
    let body = match &response.partial_success {
        None => serde_json::json!({}),
        Some(partial) => serde_json::json!({ "partialSuccess": {
            "rejectedLogRecords": partial.rejected_log_records.to_string(),
            "errorMessage": partial.error_message,
        } }),
    };
    serde_json::to_vec(&body).expect("a JSON value serialises")
}

/// Undo `Content-Encoding` (gzip or deflate), at most `max` bytes out.
fn inflate(raw: Bytes, content_encoding: &str, max: usize) -> Result<Bytes, Refusal> {
    use std::io::Read;
    let reader: Box<dyn Read + '_> = match content_encoding.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => return Ok(raw),
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(&raw[..])),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(&raw[..])),
        other => {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content-encoding {other:?}: weir takes gzip, deflate or identity"),
            ));
        }
    };
    let mut out = Vec::new();
    reader
        .take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("corrupt {content_encoding} body: {e}")))?;
    if out.len() > max {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body decompresses to more than max_decompressed_bytes ({max} bytes)"),
        ));
    }
    Ok(out.into())
}

fn refuse(encoding: Encoding, refusal: Refusal) -> Response {
    let status = RpcStatus { code: rpc_code(refusal.status), message: refusal.message };
    let body = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&status).expect("a status always serialises"),
    };
    let mut response = (refusal.status, [(header::CONTENT_TYPE, encoding.content_type())], body).into_response();
    if refusal.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    }
    response
}
