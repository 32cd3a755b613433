//! Why a request was refused, and how each refusal is answered: plain JSON
//! on `/ingest`, Elasticsearch's error shape on the ES endpoints, each with
//! one status code.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::decode::{DecodeError, ErrorClass};

/// Seconds a client is told to wait (`Retry-After`) when the pipeline is
/// full: long enough for a batch or two to drain, short enough that a
/// client's retry does not add visible latency.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Every value [`RequestError::reason`] takes, so the counters exist (at 0)
/// from the start.
pub const REFUSAL_REASONS: &[&str] = &[
    "unsupported_encoding",
    "corrupt",
    "decompressed_too_large",
    "empty",
    "malformed",
    "too_deep",
    "line_too_long",
    "too_many_records",
    "missing_index",
    "unauthorized",
    "body_too_large",
    "body_unreadable",
    "body_timeout",
    "invalid_tag",
    "invalid_idempotency_key",
    "illegal_argument",
    "full",
    "buffer_full",
    "buffer_too_large",
    "buffer_failed",
    "closed",
    "delivery_failed",
    "ack_timeout",
];

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
    /// The body did not arrive within `body_read_timeout`.
    #[error("the request body did not arrive within {timeout:?} (body_read_timeout); {received} bytes received")]
    BodyTimeout {
        /// The limit.
        timeout: Duration,
        /// Bytes received by then.
        received: usize,
    },
    /// The tag from the path or header is not usable.
    #[error("invalid tag {0:?}: expected 1 to {max} printable ASCII characters, no spaces, `*`, `?` or `,`", max = crate::core::tag_match::MAX_TAG_BYTES)]
    InvalidTag(String),
    /// The `Idempotency-Key` header cannot name a request.
    #[error(
        "invalid Idempotency-Key: expected 1 to {max} printable ASCII characters, optionally in double quotes",
        max = super::server::MAX_IDEMPOTENCY_KEY_BYTES
    )]
    InvalidIdempotencyKey,
    /// A parameter or a template, policy or pipeline body that Weir
    /// cannot take; the message says which and why.
    #[error("{0}")]
    IllegalArgument(String),
    /// The pipeline had no room within `queue_wait`.
    #[error("the pipeline is full; nothing from this request was accepted, retry after {RETRY_AFTER_SECS}s")]
    Full,
    /// The durable buffer is at `max_bytes`.
    #[error("{0}")]
    BufferFull(String),
    /// The request alone is over the durable buffer's `max_bytes`.
    #[error("{0}")]
    BufferTooLarge(String),
    /// The durable buffer could not store the request (a disk error).
    #[error("{0}")]
    BufferFailed(String),
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
            RequestError::Body(_)
            | RequestError::InvalidTag(_)
            | RequestError::InvalidIdempotencyKey
            | RequestError::IllegalArgument(_) => StatusCode::BAD_REQUEST,
            RequestError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            RequestError::Full | RequestError::BufferFull(_) => StatusCode::TOO_MANY_REQUESTS,
            RequestError::BufferTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::BufferFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            RequestError::BodyTimeout { .. } => "timeout_exception",
            RequestError::InvalidIdempotencyKey | RequestError::IllegalArgument(_) => "illegal_argument_exception",
            RequestError::Full | RequestError::BufferFull(_) => "es_rejected_execution_exception",
            RequestError::BufferTooLarge(_) => "content_too_long_exception",
            RequestError::BufferFailed(_) => "unavailable_shards_exception",
            RequestError::Closed | RequestError::DeliveryFailed => "unavailable_shards_exception",
            RequestError::AckTimeout(_) => "timeout_exception",
        }
    }

    /// The `reason` label of `weir_input_requests_refused_total`: one short
    /// fixed name per kind of refusal (all of them in [`REFUSAL_REASONS`]).
    pub fn reason(&self) -> &'static str {
        match self {
            RequestError::Decode(e) => e.reason(),
            RequestError::Unauthorized => "unauthorized",
            RequestError::BodyTooLarge { .. } => "body_too_large",
            RequestError::Body(_) => "body_unreadable",
            RequestError::BodyTimeout { .. } => "body_timeout",
            RequestError::InvalidTag(_) => "invalid_tag",
            RequestError::InvalidIdempotencyKey => "invalid_idempotency_key",
            RequestError::IllegalArgument(_) => "illegal_argument",
            RequestError::Full => "full",
            RequestError::BufferFull(_) => "buffer_full",
            RequestError::BufferTooLarge(_) => "buffer_too_large",
            RequestError::BufferFailed(_) => "buffer_failed",
            RequestError::Closed => "closed",
            RequestError::DeliveryFailed => "delivery_failed",
            RequestError::AckTimeout(_) => "ack_timeout",
        }
    }

    fn headers(&self, response: &mut Response) {
        let headers = response.headers_mut();
        match self {
            RequestError::Full | RequestError::BufferFull(_) => {
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
