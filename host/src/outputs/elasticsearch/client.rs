//! The HTTP side of the Elasticsearch output (reqwest with rustls): hosts in
//! round-robin with failover, basic or API-key auth, a custom CA, gzip
//! request bodies, `POST /_bulk` and `PUT /_index_template/<name>`. It
//! decides nothing about documents; `response.rs` reads the answers.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{Method, Url};

use super::{ElasticsearchError, ElasticsearchOutputConfig};
use crate::core::auth::Auth;
use crate::core::tls::TlsSettings;
use crate::outputs::http_client::{self, error_chain, redact_url};

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
    http: reqwest::Client,
    hosts: Vec<Url>,
    next: usize,
    auth: Option<Auth>,
    gzip: bool,
    compressed: Vec<u8>,
}

impl EsClient {
    /// A client for the output's settings.
    ///
    /// # Errors
    /// [`ElasticsearchError::Client`] when the TLS settings cannot be used.
    pub fn new(config: &ElasticsearchOutputConfig) -> Result<Self, ElasticsearchError> {
        // The first spelling, top-level `ca_file`, stands in for `tls.ca_file`.
        let mut tls = config.tls.clone();
        if let Some(ca) = &config.ca_file {
            tls.get_or_insert_with(TlsSettings::default).ca_file.get_or_insert_with(|| ca.clone());
        }
        let http = http_client::build(config.timeout.0, CONNECT_TIMEOUT, tls.as_ref())
            .map_err(|source| ElasticsearchError::Client { source })?;
        Ok(EsClient {
            http,
            hosts: config.hosts.iter().map(|h| h.0.clone()).collect(),
            next: 0,
            auth: config.auth.clone(),
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
            self.compressed = written.map_err(|source| ElasticsearchError::Compress { source })?;
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
                key: "hosts",
                message: format!("cannot join {} and {path}: {e}", redact_url(host.as_str())),
            })?;
            let mut request =
                self.http.request(method.clone(), url.clone()).header(CONTENT_TYPE, content_type).body(body.clone());
            if self.gzip {
                request = request.header(CONTENT_ENCODING, "gzip");
            }
            request = http_client::with_auth(request, self.auth.as_ref());
            let shown = redact_url(url.as_str());
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    let failed_over = e.is_connect();
                    last = Some(ElasticsearchError::Transport {
                        what: what.to_string(),
                        url: shown,
                        message: error_chain(&e),
                    });
                    if failed_over {
                        continue;
                    }
                    break;
                }
            };
            let status = response.status();
            let answer = response.bytes().await.map_err(|e| ElasticsearchError::Transport {
                what: what.to_string(),
                url: shown.clone(),
                message: format!("reading the answer: {}", error_chain(&e)),
            })?;
            if status.is_success() {
                return Ok(answer);
            }
            let mut text = String::from_utf8_lossy(&answer[..answer.len().min(MAX_ERROR_BODY)]).into_owned();
            if answer.len() > MAX_ERROR_BODY {
                text.push('…');
            }
            return Err(ElasticsearchError::Status {
                what: what.to_string(),
                url: shown,
                status: status.as_u16(),
                body: text,
            });
        }
        Err(last.unwrap_or_else(|| ElasticsearchError::Setting { key: "hosts", message: "no hosts".into() }))
    }
}
