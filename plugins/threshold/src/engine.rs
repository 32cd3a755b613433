//! Rule evaluation, pure: per rule and series, the run of consecutive
//! windows the condition held, whether the alert is firing, and the alert
//! records state changes produce. It takes no host calls; it returns
//! counters and log lines for `lib.rs` to hand over. Alert bodies are
//! `alert`'s, snapshots `snapshot`'s.
//!
//! Semantics, in one place:
//! - A window record is evaluated against every rule whose `metric` equals
//!   its metric and whose `match` labels it carries.
//! - The alert fires when the condition has held for `for` consecutive
//!   windows. `startsAt` is the end of the window that completed the run:
//!   the event time at which the condition was known to have held long
//!   enough (as Prometheus stamps an alert when its `for` is satisfied).
//! - It resolves at the first window where the condition does not hold:
//!   `endsAt` is that window's end, `startsAt` stays the firing time, and
//!   annotations are rendered from that window.
//! - Only changes are emitted: one firing record, then one resolved record.
//!   Re-sending active alerts is the Alertmanager output's job.
//! - "Consecutive" means consecutive window records of the series. A gap (a
//!   record starting after the previous one ended, so at least one window
//!   had no data) restarts a pending run; it resolves a firing alert only
//!   when long enough to count as absent (below). A record that does not
//!   start after the previous one is out of order and ignored (counted).
//! - A series that stops reporting resolves, as an absent series does in
//!   Prometheus: once any window of the rule (its own return included) ends
//!   more than `absent_for` window lengths after the series' last window, the
//!   alert resolves with `endsAt` = that last window's end + `absent_for`
//!   window lengths, annotations rendered from that last window. Pending
//!   runs of such series are dropped the same way. This relies on
//!   `percentiles` emitting windows in order of their end, so a window
//!   ending later proves the earlier ones of every series were emitted. Its
//!   `idle_timeout` flushes an idle series' open window early, up to
//!   `allowed_lateness` + one window ahead of the others: keep `absent_for`
//!   window lengths above that.
//! - A record lacking the rule's stat is not evaluated for that rule
//!   (counted, logged once per rule).
//! - A window starting more than `max_future` after the host clock is not
//!   evaluated (counted `future`, logged once per call): it comes from a
//!   wrong clock, and would otherwise end every other series' run as
//!   absent and make its own series' real windows look out of order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use weir_plugin_sdk::{self as sdk, InputEvent};

use crate::alert::AlertBody;
use crate::config::{Rule, ThresholdConfig};
use crate::template::Context;
use crate::window::{self, WindowView};

#[cfg(test)]
mod tests;

/// An alert record to emit after the input record it derives from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// Index of the window record in the batch (the alert's parent).
    pub parent: u32,
    /// Event time: the window record's time.
    pub time: i64,
    /// Alertmanager-shaped JSON.
    pub body: Vec<u8>,
}

/// Counter deltas of one call, added to the host's counters once per call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Window records evaluated against at least one rule.
    pub windows_evaluated: u64,
    /// Alerts that started firing.
    pub alerts_firing: u64,
    /// Alerts that resolved.
    pub alerts_resolved: u64,
    /// Evaluations skipped because the record lacked the rule's stat.
    pub stat_missing: u64,
    /// Records of a rule's metric that were not well-formed window records.
    pub malformed: u64,
    /// Window records that did not start after the series' previous one.
    pub out_of_order: u64,
    /// Window records starting more than `max_future` after the host clock.
    pub future: u64,
}

impl Counters {
    /// `(host counter name, delta)` for every counter.
    pub fn by_name(&self) -> [(&'static str, u64); 7] {
        [
            ("windows_evaluated", self.windows_evaluated),
            ("alerts_firing", self.alerts_firing),
            ("alerts_resolved", self.alerts_resolved),
            ("stat_missing", self.stat_missing),
            ("malformed", self.malformed),
            ("out_of_order", self.out_of_order),
            ("future", self.future),
        ]
    }
}

/// What one `process` call produced besides passing records through.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Alert records, in input order.
    pub alerts: Vec<AlertRecord>,
    /// Counter deltas.
    pub counters: Counters,
    /// Warnings for the host log (at most one per kind per call).
    pub logs: Vec<String>,
}

/// Which alert a state belongs to: a rule and a series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AlertKey {
    pub(crate) rule: String,
    pub(crate) metric: String,
    pub(crate) labels: BTreeMap<String, String>,
}

/// One rule's state for one series. Kept only while a run is pending or the
/// alert is firing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AlertState {
    /// Consecutive windows the condition has held, up to now.
    pub(crate) consecutive: u32,
    /// When the alert fired (its `startsAt`), while firing.
    pub(crate) firing_since: Option<i64>,
    /// Start and end of the last window evaluated.
    pub(crate) last_start: i64,
    pub(crate) last_end: i64,
    /// The rule's stat in the last window evaluated, for the annotations of
    /// a resolve by absence.
    pub(crate) last_value: f64,
}

/// A state change worth an alert record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Fired { since: i64 },
    Resolved { since: i64, at: i64 },
}

impl AlertState {
    /// Take one window's verdict. `None` when nothing visible changed.
    fn observe(&mut self, window: &WindowView<'_>, observed: f64, holds: bool, for_windows: u32) -> Option<Change> {
        if window.start > self.last_end {
            // A window with no data broke the run.
            self.consecutive = 0;
        }
        self.last_start = window.start;
        self.last_end = window.end;
        self.last_value = observed;
        if holds {
            self.consecutive = self.consecutive.saturating_add(1);
            if self.firing_since.is_none() && self.consecutive >= for_windows {
                self.firing_since = Some(window.end);
                return Some(Change::Fired { since: window.end });
            }
            None
        } else {
            self.consecutive = 0;
            self.firing_since.take().map(|since| Change::Resolved { since, at: window.end })
        }
    }

    fn is_idle(&self) -> bool {
        self.consecutive == 0 && self.firing_since.is_none()
    }

    /// When this series counts as absent: `absent_for` window lengths after
    /// its last window; `None` when the rule never resolves by absence.
    fn absent_from(&self, absent_for: u32) -> Option<i64> {
        let length = self.last_end - self.last_start;
        (absent_for > 0).then(|| self.last_end.saturating_add(length.saturating_mul(i64::from(absent_for))))
    }
}

/// The filter's state.
#[derive(Debug, Clone)]
pub struct Threshold {
    pub(crate) config: ThresholdConfig,
    /// Rule indices by metric, so records of other metrics cost one lookup.
    by_metric: HashMap<String, Vec<usize>>,
    pub(crate) states: BTreeMap<AlertKey, AlertState>,
    /// Rules already reported for a missing stat, so the log says it once.
    warned_missing: BTreeSet<usize>,
    /// Per rule, the latest window end seen, so absent series are looked
    /// for once per new window end rather than once per record.
    latest_end: Vec<i64>,
}

impl Threshold {
    /// A filter with no state.
    pub fn new(config: ThresholdConfig) -> Self {
        let mut by_metric: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, rule) in config.rules.iter().enumerate() {
            by_metric.entry(rule.metric.clone()).or_default().push(i);
        }
        let latest_end = vec![i64::MIN; config.rules.len()];
        Self { config, by_metric, states: BTreeMap::new(), warned_missing: BTreeSet::new(), latest_end }
    }

    /// The config in force.
    pub fn config(&self) -> &ThresholdConfig {
        &self.config
    }

    /// Evaluate a batch, with `now` the host clock. Every input record passes
    /// through unchanged (the caller emits it); the outcome holds the alert
    /// records to emit after their window record.
    pub fn process(&mut self, events: &[InputEvent<'_>], now: i64) -> Outcome {
        let mut out = Outcome::default();
        let mut first_malformed: Option<String> = None;
        let mut first_future: Option<String> = None;
        for (i, event) in events.iter().enumerate() {
            let index = u32::try_from(i).expect("a WIT list holds at most u32::MAX events");
            // Records that are not JSON objects or carry no rule's metric are
            // not ours to judge: they pass through untouched.
            let Ok(fields) = sdk::fields(event.body) else {
                continue;
            };
            let Some(metric) = window::metric(&fields) else {
                continue;
            };
            let Some(rules) = self.by_metric.get(metric.as_ref()) else {
                continue;
            };
            let view = match window::parse(&fields) {
                Ok(view) => view,
                Err(why) => {
                    out.counters.malformed += 1;
                    first_malformed.get_or_insert(why);
                    continue;
                }
            };
            if view.start.saturating_sub(now) > self.config.max_future {
                out.counters.future += 1;
                first_future.get_or_insert_with(|| {
                    format!(
                        "{metric} window {}..{} (host clock {})",
                        view.start_text,
                        view.end_text,
                        sdk::json::rfc3339(now)
                    )
                });
                continue;
            }
            let mut evaluated = false;
            for &r in rules {
                let rule = &self.config.rules[r];
                if !rule.matchers.iter().all(|(k, v)| view.labels.get(k) == Some(v)) {
                    continue;
                }
                evaluated = true;
                if view.end > self.latest_end[r] {
                    self.latest_end[r] = view.end;
                    resolve_absent(&self.config, rule, &mut self.states, view.end, index, event.time, &mut out);
                }
                let Some(observed) = window::stat(&fields, &rule.stat) else {
                    out.counters.stat_missing += 1;
                    if self.warned_missing.insert(r) {
                        out.logs.push(format!(
                            "rule {}: window records of {} carry no numeric {:?}, so the rule is not evaluated (configure percentiles to emit it)",
                            rule.name, rule.metric, rule.stat
                        ));
                    }
                    continue;
                };
                let key = AlertKey { rule: rule.name.clone(), metric: metric.to_string(), labels: view.labels.clone() };
                let holds = rule.op.holds(observed, rule.value);
                let state = match self.states.get_mut(&key) {
                    Some(state) if view.start <= state.last_start => {
                        out.counters.out_of_order += 1;
                        continue;
                    }
                    Some(state) => state,
                    None if !holds => continue,
                    None => self.states.entry(key.clone()).or_insert(AlertState {
                        consecutive: 0,
                        firing_since: None,
                        last_start: view.start,
                        last_end: view.start,
                        last_value: observed,
                    }),
                };
                let change = state.observe(&view, observed, holds, rule.for_windows);
                if state.is_idle() {
                    self.states.remove(&key);
                }
                let Some(change) = change else { continue };
                let (since, ends_at) = match change {
                    Change::Fired { since } => {
                        out.counters.alerts_firing += 1;
                        (since, None)
                    }
                    Change::Resolved { since, at } => {
                        out.counters.alerts_resolved += 1;
                        (since, Some(at))
                    }
                };
                let count = window::stat(&fields, "count");
                let body = alert_body(&self.config, rule, &metric, &view, observed, count, since, ends_at);
                out.alerts.push(AlertRecord { parent: index, time: event.time, body });
            }
            out.counters.windows_evaluated += u64::from(evaluated);
        }
        if let Some(first) = first_future {
            out.logs.push(format!(
                "{} window records start more than max_future ({}) after the host clock and were passed through unevaluated; the first: {first}",
                out.counters.future,
                sdk::duration::format(self.config.max_future)
            ));
        }
        if let Some(why) = first_malformed {
            out.logs.push(format!(
                "{} records of rule metrics are not window records and were passed through unevaluated; the first: {why}",
                out.counters.malformed
            ));
        }
        out
    }
}

/// Resolve the firing alerts of `rule` whose series has been absent since
/// before `now_end` (the end of a window of the rule just seen), and drop
/// its pending runs of absent series.
fn resolve_absent(
    config: &ThresholdConfig,
    rule: &Rule,
    states: &mut BTreeMap<AlertKey, AlertState>,
    now_end: i64,
    parent: u32,
    time: i64,
    out: &mut Outcome,
) {
    states.retain(|key, state| {
        let absent = key.rule == rule.name && state.absent_from(rule.absent_for).is_some_and(|from| from < now_end);
        if !absent {
            return true;
        }
        if let Some(since) = state.firing_since {
            let view = WindowView {
                start: state.last_start,
                end: state.last_end,
                start_text: sdk::json::rfc3339(state.last_start).into(),
                end_text: sdk::json::rfc3339(state.last_end).into(),
                labels: key.labels.clone(),
            };
            let ends_at = state.absent_from(rule.absent_for);
            let body = alert_body(config, rule, &key.metric, &view, state.last_value, None, since, ends_at);
            out.alerts.push(AlertRecord { parent, time, body });
            out.counters.alerts_resolved += 1;
        }
        false
    });
}

#[allow(clippy::too_many_arguments)] // two call sites; a struct would only rename them
fn alert_body(
    config: &ThresholdConfig,
    rule: &Rule,
    metric: &str,
    view: &WindowView<'_>,
    observed: f64,
    count: Option<f64>,
    starts_at: i64,
    ends_at: Option<i64>,
) -> Vec<u8> {
    let context = Context {
        alertname: &rule.name,
        metric,
        stat: &rule.stat,
        op: rule.op.as_str(),
        threshold: rule.value,
        value: observed,
        for_windows: rule.for_windows,
        count,
        window_start: &view.start_text,
        window_end: &view.end_text,
        labels: &view.labels,
    };
    AlertBody {
        alertname: &rule.name,
        metric,
        series_labels: &view.labels,
        rule_labels: &rule.labels,
        annotations: rule.annotations.iter().map(|(k, t)| (k.as_str(), t.render(&context))).collect(),
        starts_at,
        ends_at,
        generator_url: config.generator_url.as_ref().map(|t| t.render(&context)),
    }
    .to_bytes()
}
