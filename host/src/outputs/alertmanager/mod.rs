//! `type: alertmanager`: posts alert records (the `threshold` plugin's
//! shape) to Alertmanager's API v2, `POST /api/v2/alerts`, on every
//! configured URL, keeps firing alerts alive by re-sending them, and sends
//! resolved ones with their `endsAt`.
//!
//! - **HA.** Every batch goes to every URL (Alertmanagers do not gossip
//!   alerts, only silences and notifications, so each peer needs each
//!   alert). Failed URLs alone are retried, up to `max_attempts` with
//!   backoff. A record counts as delivered when at least one Alertmanager
//!   accepted it, since one peer is enough to notify; a peer that missed it
//!   is logged and counted, and catches up on firing alerts at the next
//!   resend. When none accepted it, the record is dead-lettered.
//! - **Bounded retries.** The retry loop lives here, not in the pipeline,
//!   so a down Alertmanager dead-letters alerts after at most
//!   `max_attempts` × `timeout` plus backoff, instead of back-pressuring
//!   the whole pipeline (the pipeline retries outputs forever by default).
//! - **Resend.** A background task, spawned by [`build`] and aborted when
//!   the output is dropped, re-sends active alerts every `resend_interval`
//!   with `endsAt` = now + 4 × `resend_interval` (see [`lifecycle`]).
//!   Resends are best-effort: failures are logged and counted
//!   (`weir_alertmanager_resend_failures_total`), never dead-lettered, as
//!   the next resend tries again.
//! - **Labels.** Static `labels` are checked at config load; each record's
//!   labels at runtime, and a record that breaks Alertmanager's rules is
//!   dead-lettered with a reason naming the label, never sent (Alertmanager
//!   would refuse the whole batch).
//!
//! It does not own alert evaluation (the `threshold` plugin does) or the
//! pipeline's batching (`pipeline::output_task`).

mod alert;
mod client;
mod lifecycle;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Deserializer};
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinSet;

use self::alert::{Alert, AlertDefaults, GeneratorUrl, LABEL_NAME_RULE, LabelSet, parse_alert, valid_label_name};
use self::client::{AlertmanagerClient, Attempt, Endpoint};
use self::lifecycle::{ActiveAlerts, Now};
use super::{Output, OutputError, WriteReport};
use crate::core::auth::Auth;
use crate::core::backoff;
use crate::core::metrics::catalogue::{
    ALERTMANAGER_ACTIVE, ALERTMANAGER_PARTIAL, ALERTMANAGER_RESEND_FAILURES, ALERTMANAGER_RESENDS,
};
use crate::core::metrics::{Counter, Gauge, registry};
use crate::core::record::Record;
use crate::core::tls::TlsSettings;
use crate::core::units::HumanDuration;
use crate::outputs::http_client::ClientError;

/// Settings of the `alertmanager` output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerOutputConfig {
    /// Base URLs of the Alertmanagers, e.g. `http://am-0:9093`; an HA set
    /// lists every peer, and every peer gets every alert.
    #[serde(deserialize_with = "urls")]
    pub urls: Vec<Endpoint>,
    /// How often an active (firing) alert is re-sent so Alertmanager keeps
    /// it active; firing alerts are sent with `endsAt` = now + 4 × this.
    #[serde(default = "default_resend_interval", deserialize_with = "positive_duration")]
    pub resend_interval: HumanDuration,
    /// Attempts per batch and URL before the output gives up on a URL; a
    /// batch no URL accepted is then dead-lettered.
    #[serde(default = "default_max_attempts", deserialize_with = "positive_attempts")]
    pub max_attempts: u32,
    /// Time limit of one request (connecting is capped at 2s).
    #[serde(default = "default_timeout", deserialize_with = "positive_duration")]
    pub timeout: HumanDuration,
    /// Labels added to every alert that lacks them (the record's own win).
    /// Names must match `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[serde(default, deserialize_with = "static_labels")]
    pub labels: LabelSet,
    /// `generatorURL` for alerts that carry none; `{labels.NAME}` is
    /// replaced by the alert's label, percent-encoded.
    #[serde(default, deserialize_with = "generator_url")]
    pub generator_url: Option<GeneratorUrl>,
    /// HTTP authentication, in the shape every component shares ([`Auth`]):
    /// `{basic: {username, password}}`, `{bearer: {token}}` or `{api_key}`.
    #[serde(default, deserialize_with = "crate::core::secret::present")]
    pub auth: Option<Auth>,
    /// `tls: {ca_file, insecure_skip_verify}` for https URLs ([`TlsSettings`]).
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

/// Prometheus' default resend delay.
fn default_resend_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

/// About 1.5 s of backoff in total (0.1 + 0.2 + 0.4 + 0.8 s, with jitter)
/// when Alertmanager refuses connections: long enough to ride out a
/// restart, short enough not to stall the pipeline.
fn default_max_attempts() -> u32 {
    5
}

/// Alertmanager answers a POST in milliseconds; 5 s is a hung server.
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

fn urls<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Endpoint>, D::Error> {
    let urls = Vec::<String>::deserialize(d)?;
    if urls.is_empty() {
        return Err(serde::de::Error::custom("expected at least one alertmanager url"));
    }
    urls.iter().map(|url| Endpoint::new(url).map_err(serde::de::Error::custom)).collect()
}

fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<HumanDuration, D::Error> {
    let duration = HumanDuration::deserialize(d)?;
    if duration.0.is_zero() {
        return Err(serde::de::Error::custom("must be greater than zero"));
    }
    Ok(duration)
}

fn positive_attempts<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match u32::deserialize(d)? {
        0 => Err(serde::de::Error::custom("must be at least 1")),
        n => Ok(n),
    }
}

fn static_labels<'de, D: Deserializer<'de>>(d: D) -> Result<LabelSet, D::Error> {
    let labels = LabelSet::deserialize(d)?;
    if let Some(name) = labels.keys().find(|n| !valid_label_name(n)) {
        return Err(serde::de::Error::custom(format!("invalid label name {name:?}: must match {}", LABEL_NAME_RULE)));
    }
    Ok(labels)
}

fn generator_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<GeneratorUrl>, D::Error> {
    let text = String::deserialize(d)?;
    GeneratorUrl::compile(&text).map(Some).map_err(serde::de::Error::custom)
}

impl AlertmanagerOutputConfig {
    pub(crate) fn rebase(mut self, base: &Path) -> Self {
        self.tls = self.tls.map(|t| t.rebase(base));
        self
    }
}

/// Build the output and spawn its resend task (needs a tokio runtime).
pub fn build(name: &str, config: &AlertmanagerOutputConfig) -> Result<AlertmanagerOutput, OutputError> {
    build_named(name, config).map_err(|e| OutputError::new(name, e))
}

fn build_named(name: &str, config: &AlertmanagerOutputConfig) -> Result<AlertmanagerOutput, AlertmanagerError> {
    let client = AlertmanagerClient::new(config)?;
    let endpoints = config.urls.clone();
    let labels = [name];
    let shared = Arc::new(Shared {
        name: name.to_string(),
        active: Mutex::new(ActiveAlerts::new(config.resend_interval.0)),
        wake: Notify::new(),
        client,
        endpoints,
        active_gauge: registry().gauge(&ALERTMANAGER_ACTIVE, &labels),
        resends: registry().counter(&ALERTMANAGER_RESENDS, &labels),
        resend_failures: registry().counter(&ALERTMANAGER_RESEND_FAILURES, &labels),
        partial: registry().counter(&ALERTMANAGER_PARTIAL, &labels),
    });
    let resender = tokio::spawn(resend_loop(Arc::clone(&shared)));
    Ok(AlertmanagerOutput {
        shared,
        defaults: AlertDefaults { labels: config.labels.clone(), generator_url: config.generator_url.clone() },
        max_attempts: config.max_attempts,
        resender,
    })
}

/// Why the output cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum AlertmanagerError {
    /// The HTTP client cannot be built (TLS settings).
    #[error("{source}")]
    Client {
        /// Why.
        source: ClientError,
    },
}

/// State shared by `write` and the resend task. One async lock over the
/// active map, held while posting, orders every post: a resend can never
/// overtake the resolve of the same alert and re-open it.
struct Shared {
    name: String,
    active: Mutex<ActiveAlerts>,
    wake: Notify,
    client: AlertmanagerClient,
    endpoints: Vec<Endpoint>,
    active_gauge: Gauge,
    resends: Counter,
    resend_failures: Counter,
    partial: Counter,
}

/// Posts alerts to Alertmanager and re-sends the active ones.
pub struct AlertmanagerOutput {
    shared: Arc<Shared>,
    defaults: AlertDefaults,
    max_attempts: u32,
    resender: tokio::task::JoinHandle<()>,
}

impl Drop for AlertmanagerOutput {
    fn drop(&mut self) {
        // Alerts still active expire in Alertmanager at their lease's end.
        self.resender.abort();
    }
}

#[async_trait::async_trait]
impl Output for AlertmanagerOutput {
    async fn write(&mut self, batch: &[Record]) -> Result<WriteReport, OutputError> {
        let mut report = WriteReport::default();
        let mut alerts: Vec<Alert> = Vec::with_capacity(batch.len());
        let mut sent: Vec<usize> = Vec::with_capacity(batch.len());
        for (i, record) in batch.iter().enumerate() {
            match parse_alert(&record.body, &self.defaults) {
                Ok(alert) => {
                    alerts.push(alert);
                    sent.push(i);
                }
                Err(invalid) => report.rejected.push((i, invalid.to_string())),
            }
        }
        if alerts.is_empty() {
            return Ok(report);
        }
        let shared = &*self.shared;
        let mut active = shared.active.lock().await;
        let now = Now::system();
        let outgoing: Vec<Alert> = alerts.into_iter().map(|a| active.observe(a, now)).collect();
        shared.active_gauge.set(i64::try_from(active.len()).unwrap_or(i64::MAX));
        let body = encode(&outgoing);
        let outcome = deliver(shared, body, self.max_attempts).await;
        drop(active);
        // A new firing alert may be due before the task's current sleep ends.
        shared.wake.notify_one();
        if outcome.accepted.is_empty() {
            let reason = format!(
                "no alertmanager accepted the alerts ({} attempts): {}",
                outcome.attempts,
                outcome.failure_text()
            );
            report.rejected.extend(sent.into_iter().map(|i| (i, reason.clone())));
        } else if !outcome.failed.is_empty() {
            shared.partial.add(1);
            tracing::warn!(
                output = shared.name,
                alerts = outgoing.len(),
                accepted_by = ?outcome.accepted,
                failed = outcome.failure_text(),
                "some alertmanagers did not accept the alerts; delivered to the others"
            );
        }
        Ok(report)
    }
}

fn encode(alerts: &[Alert]) -> Bytes {
    Bytes::from(serde_json::to_vec(alerts).expect("alerts are strings and times; serialising cannot fail"))
}

/// Which Alertmanagers took a batch.
#[derive(Debug, Default)]
struct Outcome {
    accepted: Vec<String>,
    failed: BTreeMap<String, String>,
    attempts: u32,
}

impl Outcome {
    fn failure_text(&self) -> String {
        self.failed.iter().map(|(url, why)| format!("{url}: {why}")).collect::<Vec<_>>().join("; ")
    }
}

/// Post `body` to every endpoint, retrying only those that failed with a
/// retryable error, up to `max_attempts` rounds.
async fn deliver(shared: &Shared, body: Bytes, max_attempts: u32) -> Outcome {
    let mut outcome = Outcome::default();
    let mut pending: Vec<Endpoint> = shared.endpoints.clone();
    while !pending.is_empty() && outcome.attempts < max_attempts {
        if outcome.attempts > 0 {
            tokio::time::sleep(backoff::jittered(outcome.attempts)).await;
        }
        outcome.attempts += 1;
        let mut retry = Vec::new();
        for (endpoint, attempt) in post_all(&shared.client, &pending, &body).await {
            match attempt {
                Attempt::Accepted => {
                    outcome.failed.remove(&endpoint.base);
                    outcome.accepted.push(endpoint.base);
                }
                Attempt::Retry(why) => {
                    tracing::warn!(
                        output = shared.name,
                        url = endpoint.base,
                        attempt = outcome.attempts,
                        reason = why,
                        "post failed; will retry"
                    );
                    outcome.failed.insert(endpoint.base.clone(), why);
                    retry.push(endpoint);
                }
                Attempt::Refused(why) => {
                    tracing::warn!(
                        output = shared.name,
                        url = endpoint.base,
                        reason = why,
                        "alertmanager refused the alerts"
                    );
                    outcome.failed.insert(endpoint.base.clone(), why);
                }
            }
        }
        pending = retry;
    }
    outcome
}

/// Post to several endpoints at once, so one hung peer does not delay the others.
async fn post_all(client: &AlertmanagerClient, endpoints: &[Endpoint], body: &Bytes) -> Vec<(Endpoint, Attempt)> {
    let mut tasks = JoinSet::new();
    for endpoint in endpoints {
        let (client, endpoint, body) = (client.clone(), endpoint.clone(), body.clone());
        tasks.spawn(async move {
            let attempt = client.post(&endpoint, body).await;
            (endpoint, attempt)
        });
    }
    let mut out = Vec::with_capacity(endpoints.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => out.push(result),
            Err(error) => tracing::error!(%error, "alertmanager post task failed"),
        }
    }
    out
}

/// Re-send due alerts until aborted.
async fn resend_loop(shared: Arc<Shared>) {
    loop {
        let next = shared.active.lock().await.next_due();
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = shared.wake.notified() => continue,
                }
            }
            None => {
                shared.wake.notified().await;
                continue;
            }
        }
        let mut active = shared.active.lock().await;
        let due = active.due(Now::system());
        if due.is_empty() {
            continue;
        }
        let body = encode(&due);
        for (endpoint, attempt) in post_all(&shared.client, &shared.endpoints, &body).await {
            match attempt {
                Attempt::Accepted => shared.resends.add(due.len() as u64),
                Attempt::Retry(why) | Attempt::Refused(why) => {
                    shared.resend_failures.add(1);
                    tracing::warn!(
                        output = shared.name,
                        url = endpoint.base,
                        alerts = due.len(),
                        reason = why,
                        "resend failed; next resend tries again"
                    );
                }
            }
        }
        drop(active);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::{OutputConfig, parse_config};

    fn config(yaml: &str) -> Result<AlertmanagerOutputConfig, String> {
        let body: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
        match parse_config("alertmanager", body).unwrap() {
            Ok(OutputConfig::Alertmanager(c)) => Ok(c),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(format!("{}: {}", e.path(), e.inner())),
        }
    }

    #[test]
    fn defaults_follow_prometheus() {
        let c = config("urls: [http://am:9093]").unwrap();
        assert_eq!(c.resend_interval.0, Duration::from_secs(60));
        assert_eq!(c.max_attempts, 5);
        assert!(c.labels.is_empty() && c.auth.is_none() && c.tls.is_none() && c.generator_url.is_none());
    }

    #[test]
    fn invalid_static_label_names_are_refused_at_load_naming_the_label() {
        let err = config("urls: [http://am:9093]\nlabels: { team: a, os-version: b }").unwrap_err();
        assert!(
            err.starts_with(r#"labels: invalid label name "os-version": must match [a-zA-Z_][a-zA-Z0-9_]*"#),
            "{err}"
        );
    }

    #[test]
    fn bad_urls_durations_and_templates_are_refused_at_load() {
        assert!(config("urls: []").unwrap_err().contains("expected at least one alertmanager url"));
        assert!(config("urls: [ftp://am]").unwrap_err().contains(r#"invalid url "ftp://am""#));
        assert!(
            config("urls: [http://am]\nresend_interval: 0s")
                .unwrap_err()
                .starts_with("resend_interval: must be greater than zero")
        );
        assert!(
            config("urls: [http://am]\nmax_attempts: 0").unwrap_err().starts_with("max_attempts: must be at least 1")
        );
        assert!(
            config("urls: [http://am]\ngenerator_url: 'http://g/{os}'")
                .unwrap_err()
                .starts_with("generator_url: unknown placeholder {os}")
        );
        assert!(config("urls: [http://am]\nurl: http://am").unwrap_err().contains("unknown field `url`"));
    }

    #[test]
    fn auth_and_tls_parse_and_secrets_stay_out_of_debug() {
        let c = config(
            "urls: [https://am]\nauth: { basic: { username: weir, password: hunter2 } }\ntls: { ca_file: ca.pem }",
        )
        .unwrap();
        assert!(matches!(&c.auth, Some(Auth::Basic { username, .. }) if username == "weir"));
        assert!(!format!("{c:?}").contains("hunter2"));
        let c = c.rebase(Path::new("/etc/weir"));
        assert_eq!(c.tls.unwrap().ca_file.unwrap(), Path::new("/etc/weir/ca.pem"));
        let c = config("urls: [https://am]\nauth: { bearer: { token: t0k } }").unwrap();
        assert!(matches!(&c.auth, Some(Auth::Bearer { token }) if token.expose() == "t0k"));
        assert!(config("urls: [https://am]\nauth: { digest: {} }").unwrap_err().contains("unknown field `digest`"));
        assert!(config("urls: [https://am]\nauth: {}").unwrap_err().contains("expected exactly one of"));
    }
}
