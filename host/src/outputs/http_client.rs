//! The HTTP client of outputs that speak HTTP (`elasticsearch`,
//! `alertmanager`): one builder for timeouts, trusted CAs and certificate
//! checks, one way to attach [`Auth`], and one way to describe a failure.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::RequestBuilder;
use reqwest::header::{AUTHORIZATION, HeaderValue};

use crate::core::auth::Auth;
use crate::core::tls::TlsSettings;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `tls.ca_file` cannot be read.
    #[error("tls.ca_file {}: {source}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `tls.ca_file` holds no usable certificate.
    #[error("tls.ca_file {}: {message}", path.display())]
    CaParse {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A `tls:` key that a client does not read.
    #[error("tls: {0}")]
    Settings(String),
    /// reqwest refused the settings.
    #[error("cannot set up the http client: {0}")]
    Build(String),
}

/// Build a client with a whole-request `timeout`, a `connect_timeout` (so a
/// dead host fails fast), and the CA and verification settings of `tls`.
///
/// # Errors
/// [`ClientError`] naming the file or setting at fault.
pub fn build(
    timeout: Duration,
    connect_timeout: Duration,
    tls: Option<&TlsSettings>,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")));
    if let Some(tls) = tls {
        tls.for_client().map_err(ClientError::Settings)?;
        if let Some(path) = &tls.ca_file {
            let pem = std::fs::read(path).map_err(|source| ClientError::CaFile { path: path.clone(), source })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ClientError::CaParse {
                path: path.clone(),
                message: format!("not PEM certificates: {}", error_chain(&e)),
            })?;
            if certs.is_empty() {
                return Err(ClientError::CaParse { path: path.clone(), message: "no PEM certificate in it".into() });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if tls.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
    }
    builder.build().map_err(|e| ClientError::Build(error_chain(&e)))
}

/// Idle pooled connections are closed after this long: under the usual
/// 60–120 s idle timeouts of load balancers, so a pooled connection is
/// rarely found closed by the other side.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// `request` with the credentials of `auth`, marked sensitive so they never
/// appear in reqwest's own debug output.
pub fn with_auth(request: RequestBuilder, auth: Option<&Auth>) -> RequestBuilder {
    match auth {
        None => request,
        Some(Auth::Basic { username, password }) => request.basic_auth(username, Some(password.expose())),
        Some(Auth::Bearer { token }) => request.bearer_auth(token.expose()),
        Some(Auth::ApiKey { key }) => match HeaderValue::from_str(&format!("ApiKey {}", key.expose())) {
            Ok(mut value) => {
                value.set_sensitive(true);
                request.header(AUTHORIZATION, value)
            }
            // Not a valid header value: send nothing, and the server's 401
            // says so; config checks should refuse such a key first.
            Err(_) => request,
        },
    }
}

/// `url` without credentials (`user:password@`), query or fragment, for
/// messages, logs, metric labels and `Debug` output. Works on text that is
/// not a valid URL too, so an error about a malformed URL shows no secret.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    format!("{scheme}{host}{path}")
}

/// An error and its causes, `: `-separated and without repeats: reqwest's
/// own Display omits the cause ("connection refused") that tells an
/// operator what to fix.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsSettings { ca_file: Some(dir.path().join("nope.pem")), ..TlsSettings::default() };
        let err = build(Duration::from_secs(1), Duration::from_secs(1), Some(&missing)).unwrap_err();
        assert!(err.to_string().starts_with("tls.ca_file ") && err.to_string().contains("nope.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let tls = TlsSettings { ca_file: Some(empty), ..TlsSettings::default() };
        let err = build(Duration::from_secs(1), Duration::from_secs(1), Some(&tls)).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn urls_in_messages_carry_no_credentials_even_when_malformed() {
        assert_eq!(
            redact_url("https://user:s3cret@es.example:9200/_bulk?filter_path=x"),
            "https://es.example:9200/_bulk"
        );
        assert_eq!(redact_url("http://am:9093/prefix"), "http://am:9093/prefix");
        assert_eq!(redact_url("http://u:p@w@am:notaport"), "http://am:notaport");
        assert_eq!(redact_url("u:s3cret@am:9093"), "am:9093");
        assert_eq!(redact_url("https://es?token=s3cret"), "https://es");
    }

    #[test]
    fn server_keys_are_refused_on_a_client() {
        let tls = TlsSettings { cert: Some("c.pem".into()), ..TlsSettings::default() };
        let err = build(Duration::from_secs(1), Duration::from_secs(1), Some(&tls)).unwrap_err();
        assert!(err.to_string().contains("`cert` and `key` are server settings"), "{err}");
    }
}
