//! The alert lifecycle, pure: parsing and validating alert records to
//! Alertmanager's rules, the map of active (firing) alerts keyed by their
//! label set, and when each is due to be re-sent. No I/O and no clock of its
//! own: callers pass [`Now`], so every decision is tested on canned inputs.
//! Sending is `client.rs`'s; the timer that calls [`ActiveAlerts::due`] is
//! the output's (`mod.rs`).
//!
//! A record *fires* when it has no `endsAt` and *resolves* when it has one
//! (the `threshold` plugin's contract). A firing alert is kept and re-sent
//! every `resend_interval` with `endsAt` = now + [`LEASE_INTERVALS`] ×
//! `resend_interval`, as Prometheus does: Alertmanager keeps it active while
//! Weir is alive, and resolves it by itself soon after Weir dies, instead of
//! waiting for its `resolve_timeout` or forever.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

/// An alert's labels, sorted by name: the canonical identity of an alert.
pub type LabelSet = BTreeMap<String, String>;

/// How many resend intervals a sent firing alert stays active in
/// Alertmanager without hearing from Weir again. Prometheus uses 4
/// (`resendDelay` × 4): three resends can be lost before an alert flaps.
pub const LEASE_INTERVALS: u32 = 4;

/// The rule label and annotation names must follow in Alertmanager 0.25.
pub const LABEL_NAME_RULE: &str = "[a-zA-Z_][a-zA-Z0-9_]*";

/// Whether `name` is a valid Alertmanager label (or annotation) name.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why an alert record cannot be sent. Its Display is the dead-letter
/// reason, so it names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAlert {
    /// The body is not a JSON object.
    #[error("alert record is not a JSON object: {0}")]
    NotObject(String),
    /// `labels` is missing or not an object.
    #[error("alert record has no `labels` object")]
    NoLabels,
    /// `labels.alertname` is missing or empty.
    #[error("alert record has no `labels.alertname`; alertmanager needs one to route and show it")]
    NoAlertname,
    /// A label or annotation name breaks [`LABEL_NAME_RULE`].
    #[error("{field}: invalid {what} name {name:?}: must match {LABEL_NAME_RULE}", what = if *field == "labels" { "label" } else { "annotation" })]
    Name {
        /// `labels` or `annotations`.
        field: &'static str,
        /// The name.
        name: String,
    },
    /// A label or annotation value is not a string.
    #[error("{field}.{name}: expected a string value, got {found}")]
    NotString {
        /// `labels` or `annotations`.
        field: &'static str,
        /// The name.
        name: String,
        /// The JSON found.
        found: String,
    },
    /// `annotations` is not an object.
    #[error("annotations: expected an object, got {0}")]
    Annotations(String),
    /// A time field is not an RFC 3339 string.
    #[error("{field}: expected an RFC 3339 time, got {found}")]
    Time {
        /// `startsAt` or `endsAt`.
        field: &'static str,
        /// The JSON found.
        found: String,
    },
    /// `generatorURL` is not a string.
    #[error("generatorURL: expected a string, got {0}")]
    GeneratorUrl(String),
    /// `endsAt` is before `startsAt`, which Alertmanager refuses.
    #[error("endsAt {ends} is before startsAt {starts}")]
    EndsBeforeStarts {
        /// `startsAt`.
        starts: String,
        /// `endsAt`.
        ends: String,
    },
}

/// One postable alert, as `POST /api/v2/alerts` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// Identity: label name -> value.
    pub labels: LabelSet,
    /// Descriptive text; not part of the identity.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// When it started; Alertmanager uses its receive time when absent.
    #[serde(rename = "startsAt", serialize_with = "ser_time", skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ends (resolved) or, on a firing alert, when it expires.
    #[serde(rename = "endsAt", serialize_with = "ser_time", skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Link back to what produced it.
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

fn ser_time<S: serde::Serializer>(time: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// What the output adds to every alert: static labels (the record's own
/// win on conflict, as with Prometheus' external labels) and a generator
/// URL for records that carry none.
#[derive(Debug, Clone, Default)]
pub struct AlertDefaults {
    /// Labels added when the record lacks them.
    pub labels: LabelSet,
    /// `generatorURL` when the record has none.
    pub generator_url: Option<UrlTemplate>,
}

/// Parse and validate an alert record body (`threshold`'s shape).
pub fn parse_alert(body: &[u8], defaults: &AlertDefaults) -> Result<Alert, InvalidAlert> {
    let value: Value = serde_json::from_slice(body).map_err(|e| InvalidAlert::NotObject(e.to_string()))?;
    let Value::Object(mut map) = value else {
        return Err(InvalidAlert::NotObject(format!("got {}", short(&value))));
    };
    let Some(Value::Object(raw_labels)) = map.remove("labels") else {
        return Err(InvalidAlert::NoLabels);
    };
    let mut labels = string_map("labels", raw_labels)?;
    // An empty value means "no such label" to Alertmanager and Prometheus.
    labels.retain(|_, v| !v.is_empty());
    for (name, value) in &defaults.labels {
        labels.entry(name.clone()).or_insert_with(|| value.clone());
    }
    if !labels.contains_key("alertname") {
        return Err(InvalidAlert::NoAlertname);
    }
    let annotations = match map.remove("annotations") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(raw)) => string_map("annotations", raw)?,
        Some(other) => return Err(InvalidAlert::Annotations(short(&other))),
    };
    let starts_at = time_field(&mut map, "startsAt")?;
    let ends_at = time_field(&mut map, "endsAt")?;
    if let (Some(starts), Some(ends)) = (starts_at, ends_at)
        && ends < starts
    {
        return Err(InvalidAlert::EndsBeforeStarts { starts: rfc3339(starts), ends: rfc3339(ends) });
    }
    let generator_url = match map.remove("generatorURL") {
        None | Some(Value::Null) => defaults.generator_url.as_ref().map(|t| t.render(&labels)),
        Some(Value::String(url)) if url.is_empty() => defaults.generator_url.as_ref().map(|t| t.render(&labels)),
        Some(Value::String(url)) => Some(url),
        Some(other) => return Err(InvalidAlert::GeneratorUrl(short(&other))),
    };
    Ok(Alert { labels, annotations, starts_at, ends_at, generator_url })
}

fn string_map(
    field: &'static str,
    raw: serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, String>, InvalidAlert> {
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        if !valid_label_name(&name) {
            return Err(InvalidAlert::Name { field, name });
        }
        match value {
            Value::String(s) => {
                out.insert(name, s);
            }
            other => {
                return Err(InvalidAlert::NotString { field, name, found: short(&other) });
            }
        }
    }
    Ok(out)
}

fn time_field(
    map: &mut serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<Option<DateTime<Utc>>, InvalidAlert> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| InvalidAlert::Time { field, found: format!("{text:?}") }),
        Some(other) => Err(InvalidAlert::Time { field, found: short(&other) }),
    }
}

/// A JSON value for an error message, cut to a readable length.
fn short(value: &Value) -> String {
    const MAX: usize = 60;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// RFC 3339 with the precision the value needs, UTC `Z`.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A canonical 64-bit fingerprint of a label set (FNV-1a over sorted
/// `name \xff value \xff`), for logs; the map itself is keyed by the set.
pub fn fingerprint(labels: &LabelSet) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET;
    for (name, value) in labels {
        for byte in name.bytes().chain([0xff]).chain(value.bytes()).chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    }
    hash
}

/// `generator_url` with `{labels.NAME}` placeholders, filled from the
/// alert's labels (percent-encoded; empty when the label is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    parts: Vec<UrlPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum UrlPart {
    Text(String),
    Label(String),
}

impl UrlTemplate {
    /// Compile `text`; the error says which placeholder is wrong.
    pub fn compile(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(UrlPart::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| format!("unclosed `{{` in {text:?}"))?;
            let inner = &after[..close];
            let name = inner
                .strip_prefix("labels.")
                .filter(|n| valid_label_name(n))
                .ok_or_else(|| format!("unknown placeholder {{{inner}}} in {text:?}; expected {{labels.NAME}}"))?;
            parts.push(UrlPart::Label(name.to_string()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(UrlPart::Text(rest.to_string()));
        }
        Ok(UrlTemplate { parts })
    }

    /// Fill the placeholders from `labels`.
    pub fn render(&self, labels: &LabelSet) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                UrlPart::Text(text) => out.push_str(text),
                UrlPart::Label(name) => {
                    for byte in labels.get(name).map(String::as_str).unwrap_or_default().bytes() {
                        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                            out.push(char::from(byte));
                        } else {
                            out.push_str(&format!("%{byte:02X}"));
                        }
                    }
                }
            }
        }
        out
    }
}

/// "Now" on both clocks: monotonic for scheduling, wall for `endsAt`.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// For due times.
    pub instant: Instant,
    /// For the timestamps sent.
    pub wall: DateTime<Utc>,
}

impl Now {
    /// The system's now.
    pub fn system() -> Self {
        Now { instant: Instant::now(), wall: Utc::now() }
    }
}

/// The firing alerts this output has sent, keyed by label set, with when
/// each is next due to be re-sent.
#[derive(Debug)]
pub struct ActiveAlerts {
    resend_interval: Duration,
    active: BTreeMap<LabelSet, Active>,
}

#[derive(Debug)]
struct Active {
    alert: Alert,
    due: Instant,
}

impl ActiveAlerts {
    /// An empty map; firing alerts are re-sent every `resend_interval`.
    pub fn new(resend_interval: Duration) -> Self {
        ActiveAlerts { resend_interval, active: BTreeMap::new() }
    }

    /// Take in an alert record and return the alert to send now.
    ///
    /// Firing: kept (replacing one with the same labels, so a duplicate is
    /// idempotent; the earliest `startsAt` is kept, the newest annotations
    /// win), due again in one interval, and sent with a lease `endsAt`.
    /// Resolved: forgotten and sent as is, with its `endsAt`, even if this
    /// output never saw it fire (it may have, before a restart).
    pub fn observe(&mut self, mut alert: Alert, now: Now) -> Alert {
        if alert.ends_at.is_some() {
            self.active.remove(&alert.labels);
            return alert;
        }
        if let Some(previous) = self.active.get(&alert.labels)
            && let (Some(old), Some(new)) = (previous.alert.starts_at, alert.starts_at)
            && old < new
        {
            alert.starts_at = Some(old);
        }
        let due = now.instant + self.resend_interval;
        self.active.insert(alert.labels.clone(), Active { alert: alert.clone(), due });
        self.leased(alert, now)
    }

    /// The active alerts due for a resend at `now`, each with a fresh lease;
    /// each is next due one interval from now (not from its old due time,
    /// so a stalled timer does not cause a burst).
    pub fn due(&mut self, now: Now) -> Vec<Alert> {
        let mut out = Vec::new();
        for active in self.active.values_mut() {
            if active.due <= now.instant {
                active.due = now.instant + self.resend_interval;
                out.push(active.alert.clone());
            }
        }
        out.into_iter().map(|a| self.leased(a, now)).collect()
    }

    /// When the next resend is due; `None` when nothing is active.
    pub fn next_due(&self) -> Option<Instant> {
        self.active.values().map(|a| a.due).min()
    }

    /// How many alerts are active.
    pub fn len(&self) -> usize {
        self.active.len()
    }

    /// Whether no alert is active.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// The active alert with these labels.
    pub fn get(&self, labels: &LabelSet) -> Option<&Alert> {
        self.active.get(labels).map(|a| &a.alert)
    }

    /// A firing alert as sent: `endsAt` = now + the lease, but never before
    /// `startsAt` (Alertmanager refuses that; a future `startsAt` comes
    /// from event time ahead of this host's clock).
    fn leased(&self, mut alert: Alert, now: Now) -> Alert {
        let lease = self.resend_interval.saturating_mul(LEASE_INTERVALS);
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let ends = now.wall.checked_add_signed(lease).unwrap_or(now.wall);
        alert.ends_at = Some(match alert.starts_at {
            Some(starts) if starts > ends => starts,
            _ => ends,
        });
        alert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRING: &str = r#"{"labels":{"alertname":"PaymentLatencyHigh","metric":"latency_ms","os":"ios","severity":"page"},"annotations":{"summary":"p95 is 912"},"startsAt":"2026-11-22T10:30:00Z"}"#;
    const RESOLVED: &str = r#"{"labels":{"alertname":"PaymentLatencyHigh","metric":"latency_ms","os":"ios","severity":"page"},"annotations":{"summary":"p95 is 512"},"startsAt":"2026-11-22T10:30:00Z","endsAt":"2026-11-22T10:45:00Z"}"#;
    const MINUTE: Duration = Duration::from_secs(60);

    fn parse(body: &str) -> Result<Alert, InvalidAlert> {
        parse_alert(body.as_bytes(), &AlertDefaults::default())
    }

    fn now(base: Instant, secs: u64) -> Now {
        let wall = DateTime::parse_from_rfc3339("2026-11-22T11:00:00Z").unwrap().with_timezone(&Utc);
        Now { instant: base + Duration::from_secs(secs), wall: wall + chrono::Duration::seconds(secs as i64) }
    }

    #[test]
    fn firing_alert_becomes_active_and_is_sent_with_a_lease_of_four_intervals() {
        let base = Instant::now();
        let mut active = ActiveAlerts::new(MINUTE);
        let sent = active.observe(parse(FIRING).unwrap(), now(base, 0));
        assert_eq!(active.len(), 1);
        assert_eq!(sent.ends_at.map(rfc3339).as_deref(), Some("2026-11-22T11:04:00Z"));
        assert_eq!(active.get(&sent.labels).unwrap().ends_at, None, "the kept alert has no lease of its own");
        assert_eq!(
            serde_json::to_string(&sent).unwrap(),
            r#"{"labels":{"alertname":"PaymentLatencyHigh","metric":"latency_ms","os":"ios","severity":"page"},"annotations":{"summary":"p95 is 912"},"startsAt":"2026-11-22T10:30:00Z","endsAt":"2026-11-22T11:04:00Z"}"#
        );
    }

    #[test]
    fn resends_fall_due_every_interval_with_a_fresh_lease() {
        let base = Instant::now();
        let mut active = ActiveAlerts::new(MINUTE);
        assert_eq!(active.next_due(), None);
        active.observe(parse(FIRING).unwrap(), now(base, 0));
        assert_eq!(active.next_due(), Some(base + MINUTE));
        assert!(active.due(now(base, 59)).is_empty(), "not due before one interval");
        let resent = active.due(now(base, 60));
        assert_eq!(resent.len(), 1);
        assert_eq!(resent[0].ends_at.map(rfc3339).as_deref(), Some("2026-11-22T11:05:00Z"));
        assert_eq!(active.next_due(), Some(base + 2 * MINUTE));
        assert!(active.due(now(base, 61)).is_empty(), "sent once per interval");
        // A late timer (stalled for 3 intervals) resends once, not three times.
        assert_eq!(active.due(now(base, 300)).len(), 1);
        assert_eq!(active.next_due(), Some(base + Duration::from_secs(360)));
    }

    #[test]
    fn resolved_alert_is_removed_and_sent_with_its_ends_at() {
        let base = Instant::now();
        let mut active = ActiveAlerts::new(MINUTE);
        active.observe(parse(FIRING).unwrap(), now(base, 0));
        let sent = active.observe(parse(RESOLVED).unwrap(), now(base, 10));
        assert!(active.is_empty());
        assert_eq!(active.next_due(), None);
        assert_eq!(
            sent.ends_at.map(rfc3339).as_deref(),
            Some("2026-11-22T10:45:00Z"),
            "the record's endsAt, not a lease"
        );
        assert!(active.due(now(base, 600)).is_empty(), "never re-sent after resolving");
        // A resolve for an alert never seen (e.g. fired before a restart) is still sent.
        let again = active.observe(parse(RESOLVED).unwrap(), now(base, 20));
        assert!(again.ends_at.is_some() && active.is_empty());
    }

    #[test]
    fn duplicate_firing_is_idempotent_and_keeps_the_earliest_start() {
        let base = Instant::now();
        let mut active = ActiveAlerts::new(MINUTE);
        let first = active.observe(parse(FIRING).unwrap(), now(base, 0));
        let later = FIRING.replace("10:30:00Z", "10:31:00Z").replace("912", "990");
        let second = active.observe(parse(&later).unwrap(), now(base, 30));
        assert_eq!(active.len(), 1, "one alert per label set");
        assert_eq!(second.labels, first.labels);
        assert_eq!(second.starts_at, first.starts_at, "earliest startsAt kept");
        assert_eq!(second.annotations["summary"], "p95 is 990", "newest annotations win");
        assert_eq!(active.next_due(), Some(base + Duration::from_secs(90)), "sending now postpones the resend");
    }

    #[test]
    fn lease_never_ends_before_a_future_start() {
        let base = Instant::now();
        let mut active = ActiveAlerts::new(MINUTE);
        let future = FIRING.replace("2026-11-22T10:30:00Z", "2026-11-22T12:00:00Z");
        let sent = active.observe(parse(&future).unwrap(), now(base, 0));
        assert_eq!(sent.ends_at, sent.starts_at);
    }

    #[test]
    fn label_rules_are_enforced_with_messages_naming_the_label() {
        let cases = [
            (
                r#"{"labels":{"alertname":"A","os-version":"17"}}"#,
                r#"labels: invalid label name "os-version": must match [a-zA-Z_][a-zA-Z0-9_]*"#,
            ),
            (
                r#"{"labels":{"alertname":"A","1st":"x"}}"#,
                r#"labels: invalid label name "1st": must match [a-zA-Z_][a-zA-Z0-9_]*"#,
            ),
            (r#"{"labels":{"alertname":"A","code":500}}"#, "labels.code: expected a string value, got 500"),
            (
                r#"{"labels":{"severity":"page"}}"#,
                "alert record has no `labels.alertname`; alertmanager needs one to route and show it",
            ),
            (
                r#"{"labels":{"alertname":""}}"#,
                "alert record has no `labels.alertname`; alertmanager needs one to route and show it",
            ),
            (r#"{"annotations":{}}"#, "alert record has no `labels` object"),
            (
                r#"{"labels":{"alertname":"A"},"annotations":{"run book":"x"}}"#,
                r#"annotations: invalid annotation name "run book": must match [a-zA-Z_][a-zA-Z0-9_]*"#,
            ),
            (
                r#"{"labels":{"alertname":"A"},"startsAt":"yesterday"}"#,
                r#"startsAt: expected an RFC 3339 time, got "yesterday""#,
            ),
            (
                r#"{"labels":{"alertname":"A"},"startsAt":"2026-11-22T10:00:00Z","endsAt":"2026-11-22T09:00:00Z"}"#,
                "endsAt 2026-11-22T09:00:00Z is before startsAt 2026-11-22T10:00:00Z",
            ),
            ("[1]", "alert record is not a JSON object: got [1]"),
        ];
        for (body, message) in cases {
            assert_eq!(parse(body).unwrap_err().to_string(), message, "{body}");
        }
        assert!(valid_label_name("_a1") && valid_label_name("alertname"));
        assert!(!valid_label_name("") && !valid_label_name("a.b") && !valid_label_name("é"));
    }

    #[test]
    fn static_labels_and_generator_url_fill_what_the_record_lacks() {
        let defaults = AlertDefaults {
            labels: [("env", "prod"), ("severity", "ticket")].map(|(k, v)| (k.to_string(), v.to_string())).into(),
            generator_url: Some(
                UrlTemplate::compile("http://g/d?os={labels.os}&n={labels.alertname}&x={labels.none}").unwrap(),
            ),
        };
        let alert = parse_alert(FIRING.replace("ios", "ios 17/a").as_bytes(), &defaults).unwrap();
        assert_eq!(alert.labels["env"], "prod");
        assert_eq!(alert.labels["severity"], "page", "the record's own label wins");
        assert_eq!(alert.generator_url.as_deref(), Some("http://g/d?os=ios%2017%2Fa&n=PaymentLatencyHigh&x="));
        let own = FIRING.replace(r#""startsAt""#, r#""generatorURL":"http://own","startsAt""#);
        assert_eq!(parse_alert(own.as_bytes(), &defaults).unwrap().generator_url.as_deref(), Some("http://own"));
        assert_eq!(
            UrlTemplate::compile("http://g/{x}").unwrap_err(),
            r#"unknown placeholder {x} in "http://g/{x}"; expected {labels.NAME}"#
        );
        assert!(UrlTemplate::compile("http://g/{labels.os").is_err());
    }

    #[test]
    fn fingerprint_depends_on_the_label_set_only() {
        let a = parse(FIRING).unwrap();
        let b = parse(RESOLVED).unwrap();
        assert_eq!(fingerprint(&a.labels), fingerprint(&b.labels));
        let mut c = a.labels.clone();
        c.insert("os".into(), "android".into());
        assert_ne!(fingerprint(&a.labels), fingerprint(&c));
    }
}
