//! The alert lifecycle, pure: the map of active (firing) alerts keyed by
//! their label set, and when each is due to be re-sent (parsing alert
//! records is `alert.rs`'s). No I/O and no clock of its
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

use chrono::{DateTime, Utc};

use super::alert::{Alert, LabelSet};

/// How many resend intervals a sent firing alert stays active in
/// Alertmanager without hearing from Weir again. Prometheus uses 4
/// (`resendDelay` × 4): three resends can be lost before an alert flaps.
pub const LEASE_INTERVALS: u32 = 4;

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
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// The active alert with these labels.
    #[cfg(test)]
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
    use crate::core::clock::rfc3339_utc as rfc3339;
    use crate::outputs::alertmanager::alert::{AlertDefaults, InvalidAlert, parse_alert};

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
}
