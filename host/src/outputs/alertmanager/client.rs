//! The HTTP side: one reqwest client (auth, TLS, timeout) and
//! `POST /api/v2/alerts` to each configured Alertmanager. It owns how a
//! response is classified ([`classify`], pure); which alerts to send and
//! what to do with the outcome are `mod.rs`'s.

use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;

use super::{AlertmanagerError, AlertmanagerOutputConfig};
use crate::core::auth::Auth;
use crate::outputs::http_client::{self, redact_url};

/// The longest part of an error body kept in a message: enough for
/// Alertmanager's one-line validation errors.
const MAX_ERROR_BODY: usize = 300;

/// What one POST to one Alertmanager came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx: the Alertmanager has the alerts.
    Accepted,
    /// Worth trying again: connection failure, timeout, 408, 429 or 5xx.
    Retry(String),
    /// Refused for good (another 4xx, e.g. 400 invalid alert, 401): retrying
    /// the same body cannot help.
    Refused(String),
}

/// Classify an HTTP answer.
pub fn classify(status: StatusCode, body: &str) -> Attempt {
    if status.is_success() {
        return Attempt::Accepted;
    }
    let body = body.trim();
    let body = match body.char_indices().nth(MAX_ERROR_BODY) {
        Some((cut, _)) => &body[..cut],
        None => body,
    };
    let message = if body.is_empty() { format!("http {status}") } else { format!("http {status}: {body}") };
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT {
        Attempt::Retry(message)
    } else {
        Attempt::Refused(message)
    }
}

/// One Alertmanager. Its `Debug` shows no credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The base URL as configured, without credentials: for messages.
    pub base: String,
    /// `{base}/api/v2/alerts`, with the credentials if the URL had some.
    alerts: reqwest::Url,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Endpoint").field(&self.base).finish()
    }
}

impl Endpoint {
    /// The endpoint at `base` (an http or https URL, with any path prefix
    /// Alertmanager is served under).
    pub fn new(base: &str) -> Result<Self, String> {
        let trimmed = base.trim_end_matches('/');
        let shown = redact_url(trimmed);
        let alerts = reqwest::Url::parse(&format!("{trimmed}/api/v2/alerts"))
            .map_err(|e| format!("invalid url {shown:?}: {e}"))?;
        if !matches!(alerts.scheme(), "http" | "https") {
            return Err(format!("invalid url {shown:?}: expected an http:// or https:// url"));
        }
        Ok(Endpoint { base: shown, alerts })
    }
}

/// Posts alerts. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct AlertmanagerClient {
    http: reqwest::Client,
    auth: Option<Auth>,
}

impl AlertmanagerClient {
    /// A client with the config's TLS settings and timeout.
    ///
    /// # Errors
    /// [`AlertmanagerError::Client`] when the TLS settings cannot be used.
    pub fn new(config: &AlertmanagerOutputConfig) -> Result<Self, AlertmanagerError> {
        let http = http_client::build(config.timeout.0, config.timeout.0.min(CONNECT_TIMEOUT), config.tls.as_ref())
            .map_err(|source| AlertmanagerError::Client { source })?;
        Ok(AlertmanagerClient { http, auth: config.auth.clone() })
    }

    /// POST `body` (a JSON array of postable alerts) to `endpoint`.
    pub async fn post(&self, endpoint: &Endpoint, body: Bytes) -> Attempt {
        let mut request = self
            .http
            .post(endpoint.alerts.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        request = http_client::with_auth(request, self.auth.as_ref());
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    return Attempt::Accepted;
                }
                let text = response.text().await.unwrap_or_default();
                classify(status, &text)
            }
            Err(error) => Attempt::Retry(http_client::error_chain(&error)),
        }
    }
}

/// Longest wait for a TCP/TLS connection: a dead host should fail fast
/// even when `timeout` is generous.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_timeouts_and_server_errors_are_retried() {
        assert_eq!(classify(StatusCode::OK, ""), Attempt::Accepted);
        assert_eq!(
            classify(StatusCode::SERVICE_UNAVAILABLE, ""),
            Attempt::Retry("http 503 Service Unavailable".into())
        );
        assert!(matches!(classify(StatusCode::TOO_MANY_REQUESTS, ""), Attempt::Retry(_)));
        assert!(matches!(classify(StatusCode::REQUEST_TIMEOUT, ""), Attempt::Retry(_)));
        assert_eq!(
            classify(
                StatusCode::BAD_REQUEST,
                "{\"code\":400,\"message\":\"end time must not be before start time\"}\n"
            ),
            Attempt::Refused(
                "http 400 Bad Request: {\"code\":400,\"message\":\"end time must not be before start time\"}".into()
            )
        );
        assert!(matches!(classify(StatusCode::UNAUTHORIZED, ""), Attempt::Refused(_)));
    }

    #[test]
    fn endpoint_appends_the_api_path_to_any_prefix() {
        assert_eq!(Endpoint::new("http://am:9093").unwrap().alerts.as_str(), "http://am:9093/api/v2/alerts");
        assert_eq!(Endpoint::new("https://am/prefix/").unwrap().alerts.as_str(), "https://am/prefix/api/v2/alerts");
        assert_eq!(Endpoint::new("https://am/prefix/").unwrap().base, "https://am/prefix");
        assert!(Endpoint::new("ftp://am").unwrap_err().contains("expected an http:// or https:// url"));
        assert!(Endpoint::new("am:9093").is_err());
        let with_credentials = Endpoint::new("https://weir:s3cret@am:9093/").unwrap();
        assert_eq!(with_credentials.base, "https://am:9093");
        assert!(!format!("{with_credentials:?}").contains("s3cret"));
        assert!(!Endpoint::new("https://weir:s3cret@am:x").unwrap_err().contains("s3cret"));
    }
}
