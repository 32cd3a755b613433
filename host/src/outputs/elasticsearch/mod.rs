//! `type: elasticsearch`: writes records to Elasticsearch with `_bulk`.
//!
//! Each batch the pipeline hands over is encoded (`bulk.rs`: templated
//! index, deterministic `_id`, `@timestamp`), split into requests of at most
//! `max_bytes`, gzipped and sent (`client.rs`), and the answer is read per
//! document (`response.rs`). The [`WriteReport`] then says exactly what
//! Elasticsearch did not acknowledge: 429/5xx documents to retry, refused
//! documents to dead-letter with Elasticsearch's reason. Everything else was
//! acknowledged by Elasticsearch, and only that is acknowledged upstream.
//! Retry timing, bounds and backpressure belong to the pipeline's output
//! task, not to this module.

mod bulk;
mod client;
mod response;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Deserializer};

pub use bulk::{BulkAction, IndexTemplate, OutOfRange};
use bulk::{BulkEncoder, ItemMeta, TimeBounds};
use client::EsClient;
use response::ItemOutcome;

use super::{Output, OutputError, WriteReport};
use crate::core::auth::Auth;
use crate::core::clock::Clock;
use crate::core::metrics::catalogue::ELASTICSEARCH_OUT_OF_RANGE;
use crate::core::metrics::{Counter, registry};
use crate::core::record::Record;
use crate::core::template::FieldPath;
use crate::core::tls::TlsSettings;
use crate::core::units::{ByteSize, HumanDuration};
use crate::outputs::http_client::{ClientError, redact_url};

/// Settings of the `elasticsearch` output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchOutputConfig {
    /// Node URLs, e.g. `["http://es1:9200", "https://es2:9200"]`. Requests
    /// go to each in turn; a node that refuses connections is skipped.
    #[serde(deserialize_with = "non_empty_hosts")]
    pub hosts: Vec<HostUrl>,
    /// `index` (default): documents go to indices; `data_stream`: they are
    /// appended to a data stream with `create` actions (the stream needs a
    /// matching index template with `data_stream: {}`).
    #[serde(default)]
    pub mode: EsMode,
    /// The index (or data stream) name: strftime specifiers take the
    /// record's event time in UTC and `{field}`/`{nested.field}` take a body
    /// field, e.g. `mobile-logs-%Y.%m.%d` or `logs-{app}-%Y.%m`.
    pub index: IndexTemplate,
    /// Stands in for a `{field}` of `index` that a record lacks. Without it
    /// such a record is dead-lettered, naming the field.
    #[serde(default)]
    pub index_fallback: Option<String>,
    /// `create` (default) never overwrites: a replayed document is found
    /// already there (409) and counted as delivered. `index` overwrites
    /// documents with the same `_id`. Data streams accept only `create`.
    #[serde(default)]
    pub action: BulkAction,
    /// Take `_id` from this body field (dotted path) instead of deriving it
    /// from the record's identity; a record without it is dead-lettered.
    #[serde(default)]
    pub id_field: Option<FieldPath>,
    /// Replay records that carry `_bulk` metadata under this field (the
    /// http input's `bulk_metadata_key`) as the action they name: `index`,
    /// `create`, `update` (the body as sent: `doc`, `doc_as_upsert`…) or
    /// `delete`, into their own `_index` with their `_id`, `routing` and
    /// `pipeline`; the field is removed from the document. Records without
    /// it are written as configured. Default: unset.
    #[serde(default)]
    pub bulk_metadata_key: Option<String>,
    /// With a time-based `index` (`%Y.%m.%d`), how far ahead of the host
    /// clock an event time may be and still choose the index. Default 1d
    /// (time zones, skewed devices); a phone clock in 2099 is out.
    #[serde(default = "default_max_future")]
    pub max_future: HumanDuration,
    /// With a time-based `index`, how far behind the host clock an event
    /// time may be. Default 10y: any backfill fits, a clock reset to 1970 or
    /// 2000 does not; lower it (e.g. `30d`) where old data never comes.
    #[serde(default = "default_max_past")]
    pub max_past: HumanDuration,
    /// What a record outside `max_future`/`max_past` does: `dead_letter`
    /// (default; the reason names its time and the bound) or `now` (indexed
    /// by the host clock, keeping its own `@timestamp`). Counted either way
    /// in `weir_elasticsearch_out_of_range_total`.
    #[serde(default)]
    pub out_of_range: OutOfRange,
    /// Credentials, in the shape every component shares
    /// ([`Auth`]): `{basic: {username, password}}`, `{bearer: {token}}` or
    /// `{api_key: <base64 of id:key>}`; `{user, password}` still reads as basic.
    #[serde(default, deserialize_with = "crate::core::secret::present")]
    pub auth: Option<Auth>,
    /// `tls: {ca_file, insecure_skip_verify}` for `https://` hosts
    /// ([`TlsSettings`]).
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// The first spelling of `tls.ca_file`, still read: PEM file of CA
    /// certificates to trust in addition to the bundled web roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Gzip request bodies (default true): `_bulk` NDJSON shrinks 5-10x.
    #[serde(default = "default_gzip")]
    pub gzip: bool,
    /// Largest uncompressed `_bulk` body (default 10MiB); a larger batch is
    /// split across requests. A single larger document is sent alone.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// How long one request may take before it is abandoned and retried
    /// (default 60s).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// An index template PUT (`PUT /_index_template/<name>`) before the
    /// first document is written, e.g. to map percentiles as numbers.
    #[serde(default)]
    pub template: Option<TemplateConfig>,
}

/// Where documents go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EsMode {
    /// Into indices.
    #[default]
    Index,
    /// Into a data stream.
    DataStream,
}

/// An index template installed at start-up.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// The template's name in Elasticsearch.
    pub name: String,
    /// The JSON body of `PUT /_index_template/<name>`; relative to the config file.
    pub file: PathBuf,
}

/// An `http://` or `https://` URL, normalised to end in `/`. Its `Debug`
/// shows no credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct HostUrl(pub reqwest::Url);

impl std::fmt::Debug for HostUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HostUrl").field(&redact_url(self.0.as_str())).finish()
    }
}

impl<'de> Deserialize<'de> for HostUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let shown = redact_url(&text);
        let mut url = reqwest::Url::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!("invalid url {shown:?}: {e}; expected e.g. \"http://127.0.0.1:9200\""))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(serde::de::Error::custom(format!(
                "invalid url {shown:?}: expected http:// or https:// and a host"
            )));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(HostUrl(url))
    }
}

fn non_empty_hosts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<HostUrl>, D::Error> {
    let hosts = Vec::<HostUrl>::deserialize(deserializer)?;
    if hosts.is_empty() {
        return Err(serde::de::Error::custom("no hosts; expected at least one URL"));
    }
    Ok(hosts)
}

fn default_gzip() -> bool {
    true
}

/// 10 MiB: Elasticsearch's guidance is 5-15 MB per `_bulk` request, far
/// under its 100 MB `http.max_content_length`.
fn default_max_bytes() -> ByteSize {
    ByteSize(10 << 20)
}

/// One day: a device a time zone off, or a few hours fast, still lands in
/// tomorrow's index at worst; a clock years off does not.
fn default_max_future() -> HumanDuration {
    HumanDuration(Duration::from_secs(86_400))
}

/// Ten years (of 365.25 days, humantime's `10y`): backfills of archives
/// and replays still land by their event time; a device clock reset to
/// 1970 or 2000, the usual bogus pasts, does not create an index.
fn default_max_past() -> HumanDuration {
    HumanDuration(Duration::from_secs(315_576_000))
}

/// 60 s: a loaded cluster can take tens of seconds on a large `_bulk`;
/// abandoning it sooner only re-sends the same work.
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

impl ElasticsearchOutputConfig {
    pub(crate) fn rebase(mut self, base: &Path) -> Self {
        if let Some(ca) = &mut self.ca_file {
            *ca = base.join(&*ca);
        }
        self.tls = self.tls.map(|t| t.rebase(base));
        if let Some(template) = &mut self.template {
            template.file = base.join(&template.file);
        }
        self
    }

    /// Build the output: check the settings, read the CA and template
    /// files. Nothing is sent until the first write, so Weir starts while
    /// Elasticsearch is down and catches up when it is back.
    pub fn build(&self, name: &str) -> Result<ElasticsearchOutput, OutputError> {
        self.build_named(name).map_err(|e| OutputError::new(name, e))
    }

    fn build_named(&self, name: &str) -> Result<ElasticsearchOutput, ElasticsearchError> {
        if self.mode == EsMode::DataStream && self.action != BulkAction::Create {
            return Err(ElasticsearchError::Setting {
                key: "action",
                message: "data streams accept only `create`".into(),
            });
        }
        let template = match &self.template {
            None => None,
            Some(t) => {
                let text = std::fs::read(&t.file).map_err(|source| ElasticsearchError::ReadFile {
                    what: "template file",
                    path: t.file.clone(),
                    source,
                })?;
                if let Err(e) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&text) {
                    return Err(ElasticsearchError::InvalidFile {
                        path: t.file.clone(),
                        message: format!("not a JSON object: {e}"),
                    });
                }
                Some((t.name.clone(), Bytes::from(text)))
            }
        };
        let nanos = |d: &HumanDuration| i64::try_from(d.0.as_nanos()).unwrap_or(i64::MAX);
        let encoder = BulkEncoder {
            action: self.action,
            index: self.index.clone(),
            index_fallback: self.index_fallback.clone(),
            id_field: self.id_field.clone(),
            metadata_key: self.bulk_metadata_key.clone(),
            time_bounds: self.index.uses_time().then(|| TimeBounds {
                max_future: nanos(&self.max_future),
                max_past: nanos(&self.max_past),
                out_of_range: self.out_of_range,
            }),
        };
        Ok(ElasticsearchOutput {
            clock: Clock::system(),
            out_of_range: registry().counter(&ELASTICSEARCH_OUT_OF_RANGE, &[name]),
            name: name.to_string(),
            client: EsClient::new(self)?,
            encoder,
            max_bytes: usize::try_from(self.max_bytes.0).unwrap_or(usize::MAX).max(1),
            template,
            body: Vec::new(),
        })
    }
}

/// Why the Elasticsearch output cannot start, or why a whole request
/// failed; [`OutputError`] adds which output.
#[derive(Debug, thiserror::Error)]
pub enum ElasticsearchError {
    /// A file named in the settings cannot be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    ReadFile {
        /// Which setting names the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file named in the settings has the wrong contents.
    #[error("{}: {message}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Settings that contradict each other or cannot be used.
    #[error("{key}: {message}")]
    Setting {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client could not be set up (e.g. TLS).
    #[error("{source}")]
    Client {
        /// Why.
        source: ClientError,
    },
    /// No answer: connection refused, reset or timed out.
    #[error("{what} {url}: {message}")]
    Transport {
        /// The request, e.g. `_bulk`.
        what: String,
        /// The URL, without credentials.
        url: String,
        /// The cause chain.
        message: String,
    },
    /// An answer other than 2xx for the whole request.
    #[error("{what} {url}: elasticsearch answered {status}: {body}")]
    Status {
        /// The request, e.g. `_bulk`.
        what: String,
        /// The URL, without credentials.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer.
        body: String,
    },
    /// A 200 answer that is not a `_bulk` response for what was sent.
    #[error("_bulk to index {index}: {message}")]
    Response {
        /// The first document's index.
        index: String,
        /// What is wrong.
        message: String,
    },
    /// Gzip failed (out of memory).
    #[error("cannot gzip a _bulk body: {source}")]
    Compress {
        /// The error.
        source: std::io::Error,
    },
}

/// Writes batches to Elasticsearch.
pub struct ElasticsearchOutput {
    name: String,
    /// The host clock, against which event times are bounded.
    clock: Clock,
    out_of_range: Counter,
    client: EsClient,
    encoder: BulkEncoder,
    max_bytes: usize,
    /// The index template still to install: `Some` until a PUT succeeded.
    template: Option<(String, Bytes)>,
    body: Vec<u8>,
}

/// What became of one request's documents.
#[derive(Default)]
struct Tally {
    delivered: usize,
    retry_reason: Option<String>,
}

impl ElasticsearchOutput {
    /// Send one request's documents and record their fate in `report`.
    async fn send(
        &mut self,
        metas: &[ItemMeta],
        report: &mut WriteReport,
        tally: &mut Tally,
    ) -> Result<(), ElasticsearchError> {
        let answer = match self.client.bulk(&self.body).await {
            Ok(answer) => answer,
            // A lone document too large for the server will never fit.
            Err(ElasticsearchError::Status { status: 413, body, .. }) if metas.len() == 1 => {
                let meta = &metas[0];
                let reason = format!(
                    "output {}: elasticsearch refused the document: index {}, _id {}: request of {} bytes too large (413): {body}",
                    self.name,
                    meta.index,
                    meta.id,
                    self.body.len()
                );
                report.rejected.push((meta.position, reason));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let outcomes = response::classify(&answer, metas, self.encoder.action).map_err(|message| {
            ElasticsearchError::Response { index: metas.first().map(|m| m.index.clone()).unwrap_or_default(), message }
        })?;
        for (meta, outcome) in metas.iter().zip(outcomes) {
            match outcome {
                ItemOutcome::Delivered => tally.delivered += 1,
                ItemOutcome::Retry(reason) => {
                    report.retry.push(meta.position);
                    tally.retry_reason.get_or_insert(reason);
                }
                ItemOutcome::Rejected(reason) => {
                    report.rejected.push((meta.position, format!("output {}: {reason}", self.name)))
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Output for ElasticsearchOutput {
    async fn write(&mut self, batch: &[Record]) -> Result<WriteReport, OutputError> {
        if let Some((name, body)) = &self.template {
            self.client.put_index_template(name, body.clone()).await.map_err(|e| OutputError::new(&self.name, e))?;
            tracing::info!(output = self.name, template = name, "index template installed");
            self.template = None;
        }
        let mut report = WriteReport::default();
        let mut tally = Tally::default();
        let mut failure: Option<ElasticsearchError> = None;
        let mut metas: Vec<ItemMeta> = Vec::new();
        let now = self.clock.now();
        let mut out_of_range = 0;
        self.body.clear();
        for (position, record) in batch.iter().enumerate() {
            if failure.is_some() {
                // The cluster is failing: keep the rest for the retry.
                report.retry.push(position);
                continue;
            }
            let mark = self.body.len();
            if self.encoder.time_bounds.is_some_and(|b| b.passed(record.time, now).is_some()) {
                out_of_range += 1;
            }
            match self.encoder.encode(position, record, now, &mut self.body) {
                Err(reason) => report.rejected.push((position, format!("output {}: {reason}", self.name))),
                Ok(meta) => {
                    if self.body.len() > self.max_bytes && !metas.is_empty() {
                        let tail = self.body.split_off(mark);
                        if let Err(e) = self.send(&metas, &mut report, &mut tally).await {
                            report.retry.extend(metas.iter().map(|m| m.position));
                            failure = Some(e);
                        }
                        metas.clear();
                        self.body = tail;
                    }
                    match failure {
                        Some(_) => report.retry.push(meta.position),
                        None => metas.push(meta),
                    }
                }
            }
        }
        self.out_of_range.add(out_of_range);
        if !metas.is_empty()
            && failure.is_none()
            && let Err(e) = self.send(&metas, &mut report, &mut tally).await
        {
            report.retry.extend(metas.iter().map(|m| m.position));
            failure = Some(e);
        }
        if let Some(error) = failure {
            // Nothing was acknowledged: let the pipeline retry the whole
            // batch with the error as the reason.
            if tally.delivered == 0 && report.rejected.is_empty() {
                return Err(OutputError::new(&self.name, error));
            }
            tracing::warn!(output = self.name, %error, retry = report.retry.len(), "part of a batch failed; retrying it");
        }
        if let Some(reason) = tally.retry_reason {
            tracing::warn!(
                output = self.name,
                retry = report.retry.len(),
                first_reason = reason,
                "elasticsearch asked to retry documents"
            );
        }
        report.retry.sort_unstable();
        Ok(report)
    }
}
