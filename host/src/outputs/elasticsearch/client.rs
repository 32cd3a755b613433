//! The HTTP side of the Elasticsearch output (reqwest with rustls): hosts in
//! round-robin with failover, basic or API-key auth, a custom CA, gzip
//! request bodies, `POST /_bulk` and `PUT /_index_template/<name>`. It
//! decides nothing about documents; `response.rs` reads the answers.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Url};

use super::{Auth, ElasticsearchError, ElasticsearchOutputConfig};

/// What `_bulk` answers with: only what `response.rs` reads, so a 1,000
/// document answer is a few KiB instead of a few hundred.
const BULK_PATH: &str = "_bulk?filter_path=errors,items.*.status,items.*.error";
/// Long enough for a TCP handshake across a data centre, short enough to
/// fail over to the next host quickly when a node is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of an error answer kept in messages.
const MAX_ERROR_BODY: usize = 512;

/// A connection pool to an Elasticsearch cluster.
pub struct EsClient {
    output: String,
    http: reqwest::Client,
    hosts: Vec<Url>,
    next: usize,
    auth: Option<HeaderValue>,
    gzip: bool,
    compressed: Vec<u8>,
}

impl EsClient {
    /// A client for the output named `output`.
    pub fn new(output: &str, config: &ElasticsearchOutputConfig) -> Result<Self, ElasticsearchError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(config.timeout.0)
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|source| ElasticsearchError::ReadFile {
                output: output.to_string(),
                what: "ca_file",
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ElasticsearchError::InvalidFile {
                output: output.to_string(),
                path: path.clone(),
                message: format!("not PEM certificates: {}", chain(&e)),
            })?;
            if certs.is_empty() {
                return Err(ElasticsearchError::InvalidFile {
                    output: output.to_string(),
                    path: path.clone(),
                    message: "no PEM certificate in it".into(),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ElasticsearchError::Client { output: output.to_string(), message: chain(&e) })?;
        let auth = match &config.auth {
            None => None,
            Some(Auth::Basic { user, password }) => {
                Some(format!("Basic {}", base64(format!("{user}:{password}").as_bytes())))
            }
            Some(Auth::ApiKey(key)) => Some(format!("ApiKey {key}")),
        };
        let auth = auth
            .map(|value| {
                let mut value = HeaderValue::from_str(&value).map_err(|_| ElasticsearchError::Setting {
                    output: output.to_string(),
                    key: "auth",
                    message: "credentials must be visible ASCII".into(),
                })?;
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        Ok(EsClient {
            output: output.to_string(),
            http,
            hosts: config.hosts.iter().map(|h| h.0.clone()).collect(),
            next: 0,
            auth,
            gzip: config.gzip,
            compressed: Vec::new(),
        })
    }

    /// `POST /_bulk` with an NDJSON `body`; the answer's body when the
    /// status is 200. Any other status, a refused connection or a timeout is
    /// an `Err`: the caller retries the whole request.
    pub async fn bulk(&mut self, body: &[u8]) -> Result<Bytes, ElasticsearchError> {
        let body = if self.gzip {
            self.compressed.clear();
            let mut encoder = GzEncoder::new(std::mem::take(&mut self.compressed), Compression::fast());
            let written = encoder.write_all(body).and_then(|()| encoder.finish());
            self.compressed =
                written.map_err(|source| ElasticsearchError::Compress { output: self.output.clone(), source })?;
            Bytes::copy_from_slice(&self.compressed)
        } else {
            Bytes::copy_from_slice(body)
        };
        self.send(Method::POST, BULK_PATH, "application/x-ndjson", body, "_bulk").await
    }

    /// `PUT /_index_template/<name>`: creates or replaces, so idempotent.
    pub async fn put_index_template(&mut self, name: &str, body: Bytes) -> Result<(), ElasticsearchError> {
        let path = format!("_index_template/{name}");
        let gzip = std::mem::replace(&mut self.gzip, false);
        let sent = self.send(Method::PUT, &path, "application/json", body, "putting index template").await;
        self.gzip = gzip;
        sent.map(|_| ())
    }

    /// Send to the next host in turn; on a connection failure try the
    /// others before giving up, so one node down costs no retry delay.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        content_type: &'static str,
        body: Bytes,
        what: &str,
    ) -> Result<Bytes, ElasticsearchError> {
        let mut last = None;
        for _ in 0..self.hosts.len() {
            let host = &self.hosts[self.next % self.hosts.len()];
            self.next = self.next.wrapping_add(1);
            let url = host.join(path).map_err(|e| ElasticsearchError::Setting {
                output: self.output.clone(),
                key: "hosts",
                message: format!("cannot join {host} and {path}: {e}"),
            })?;
            let mut request =
                self.http.request(method.clone(), url.clone()).header(CONTENT_TYPE, content_type).body(body.clone());
            if self.gzip {
                request = request.header(CONTENT_ENCODING, "gzip");
            }
            if let Some(auth) = &self.auth {
                request = request.header(AUTHORIZATION, auth.clone());
            }
            let shown = redact(&url);
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    let failed_over = e.is_connect();
                    last = Some(ElasticsearchError::Transport {
                        output: self.output.clone(),
                        what: what.to_string(),
                        url: shown,
                        message: chain(&e),
                    });
                    if failed_over {
                        continue;
                    }
                    break;
                }
            };
            let status = response.status();
            let answer = response.bytes().await.map_err(|e| ElasticsearchError::Transport {
                output: self.output.clone(),
                what: what.to_string(),
                url: shown.clone(),
                message: format!("reading the answer: {}", chain(&e)),
            })?;
            if status.is_success() {
                return Ok(answer);
            }
            let mut text = String::from_utf8_lossy(&answer[..answer.len().min(MAX_ERROR_BODY)]).into_owned();
            if answer.len() > MAX_ERROR_BODY {
                text.push('…');
            }
            return Err(ElasticsearchError::Status {
                output: self.output.clone(),
                what: what.to_string(),
                url: shown,
                status: status.as_u16(),
                body: text,
            });
        }
        Err(last.unwrap_or_else(|| ElasticsearchError::Setting {
            output: self.output.clone(),
            key: "hosts",
            message: "no hosts".into(),
        }))
    }
}

/// The URL without credentials or query, for messages.
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.set_query(None);
    shown.to_string()
}

/// An error and its causes, `: `-separated: reqwest's own Display omits
/// the cause ("connection refused") that tells an operator what to fix.
fn chain(error: &dyn std::error::Error) -> String {
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

/// Standard base64 with padding, for the basic-auth header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("elastic:changeme", "ZWxhc3RpYzpjaGFuZ2VtZQ=="),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn urls_in_messages_carry_no_credentials() {
        let url = Url::parse("https://user:secret@es.example:9200/_bulk?filter_path=x").unwrap();
        assert_eq!(redact(&url), "https://es.example:9200/_bulk");
    }
}
