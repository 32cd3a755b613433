//! Engine tests: alert lifecycle on canned window records.

use serde_json::{Value, json};

use super::*;

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
/// 2026-11-22T10:00:00Z.
const T0: i64 = 1_795_341_600 * SECOND;
const WINDOW: i64 = 15 * MINUTE;
/// The host clock in most tests: a year after `T0`, after every window, so
/// `max_future` does not apply.
const HOST: i64 = T0 + 365 * 24 * 60 * MINUTE;

fn rfc(nanos: i64) -> String {
    weir_plugin_sdk::json::rfc3339(nanos)
}

fn threshold(config: Value) -> Threshold {
    Threshold::new(ThresholdConfig::parse(&config.to_string()).unwrap())
}

/// The issue's example rule, with `for: 2`.
fn payment_rule() -> Value {
    json!({"rules": [{"name": "PaymentLatencyHigh", "metric": "latency_ms", "match": {"op": "pay"},
        "stat": "p95", "op": ">", "value": 800, "for": 2, "labels": {"severity": "page"},
        "annotations": {"summary": "p95 {{metric}} for {{labels.op}} is {{value}} (threshold {{threshold}}) in window {{window_start}}..{{window_end}}"}}]})
}

/// A window record of the `n`th 15-minute window after T0.
fn window(n: i64, labels: Value, p95: f64) -> (i64, Vec<u8>) {
    let start = T0 + n * WINDOW;
    let body = json!({"window_start": rfc(start), "window_end": rfc(start + WINDOW), "metric": "latency_ms",
        "labels": labels, "count": 120, "min": 3, "max": 2000, "mean": 300, "p50": 200, "p95": p95});
    (start, serde_json::to_vec(&body).unwrap())
}

fn pay(n: i64, p95: f64) -> (i64, Vec<u8>) {
    window(n, json!({"op": "pay"}), p95)
}

fn run(t: &mut Threshold, records: &[(i64, Vec<u8>)]) -> Outcome {
    run_at(t, records, HOST)
}

/// `run` with the host clock at `now`.
fn run_at(t: &mut Threshold, records: &[(i64, Vec<u8>)], now: i64) -> Outcome {
    let inputs: Vec<InputEvent<'_>> = records.iter().map(|(time, body)| InputEvent { time: *time, body }).collect();
    t.process(&inputs, now)
}

fn bodies(out: &Outcome) -> Vec<Value> {
    out.alerts.iter().map(|a| serde_json::from_slice(&a.body).unwrap()).collect()
}

#[test]
fn fires_after_for_consecutive_windows_with_the_documented_body() {
    let mut t = threshold(payment_rule());
    let out = run(&mut t, &[pay(0, 900.0)]);
    assert!(out.alerts.is_empty(), "one window is not enough with for: 2");
    let out = run(&mut t, &[pay(1, 950.0)]);
    assert_eq!(out.counters.alerts_firing, 1);
    assert_eq!(out.alerts[0].parent, 0);
    assert_eq!(out.alerts[0].time, T0 + WINDOW);
    assert_eq!(
        bodies(&out)[0],
        json!({
            "labels": {"alertname": "PaymentLatencyHigh", "metric": "latency_ms", "op": "pay", "severity": "page"},
            "annotations": {"summary": "p95 latency_ms for pay is 950 (threshold 800) in window 2026-11-22T10:15:00Z..2026-11-22T10:30:00Z"},
            "startsAt": "2026-11-22T10:30:00Z"
        })
    );
}

#[test]
fn does_not_repeat_while_firing_and_resolves_with_ends_at() {
    let mut t = threshold(payment_rule());
    let records: Vec<_> =
        [900.0, 950.0, 990.0, 1200.0, 500.0, 400.0].iter().enumerate().map(|(n, v)| pay(n as i64, *v)).collect();
    let out = run(&mut t, &records);
    assert_eq!((out.counters.alerts_firing, out.counters.alerts_resolved), (1, 1));
    let alerts = bodies(&out);
    assert_eq!(alerts.len(), 2);
    // Fired with the second window, resolved with the fifth (index 4).
    assert_eq!(out.alerts[0].parent, 1);
    assert_eq!(out.alerts[1].parent, 4);
    assert!(alerts[0].get("endsAt").is_none());
    assert_eq!(alerts[1]["startsAt"], "2026-11-22T10:30:00Z");
    assert_eq!(alerts[1]["endsAt"], "2026-11-22T11:15:00Z");
    assert_eq!(alerts[1]["labels"], alerts[0]["labels"]);
    assert_eq!(
        alerts[1]["annotations"]["summary"],
        "p95 latency_ms for pay is 500 (threshold 800) in window 2026-11-22T11:00:00Z..2026-11-22T11:15:00Z"
    );
    assert!(t.states.is_empty(), "a resolved alert with no pending run keeps no state");
}

#[test]
fn a_broken_streak_resets_the_count() {
    let mut t = threshold(payment_rule());
    let records = [pay(0, 900.0), pay(1, 100.0), pay(2, 900.0), pay(3, 100.0), pay(4, 900.0)];
    let out = run(&mut t, &records);
    assert!(out.alerts.is_empty());
    let out = run(&mut t, &[pay(5, 801.0)]);
    assert_eq!(out.counters.alerts_firing, 1);
    assert_eq!(bodies(&out)[0]["startsAt"], rfc(T0 + 6 * WINDOW));
}

#[test]
fn a_gap_in_windows_restarts_a_pending_run_but_keeps_a_firing_alert() {
    let mut t = threshold(payment_rule());
    // Window 1 is missing: 0 and 2 are not consecutive.
    assert!(run(&mut t, &[pay(0, 900.0), pay(2, 900.0)]).alerts.is_empty());
    let out = run(&mut t, &[pay(3, 900.0)]);
    assert_eq!(out.counters.alerts_firing, 1);
    // Firing survives a gap; it resolves only on a window where it does not hold.
    assert!(run(&mut t, &[pay(6, 900.0)]).alerts.is_empty());
    let out = run(&mut t, &[pay(7, 10.0)]);
    assert_eq!(out.counters.alerts_resolved, 1);
}

#[test]
fn series_are_independent() {
    let mut t = threshold(
        json!({"rules": [{"name": "Slow", "metric": "latency_ms", "stat": "p95", "op": ">=", "value": 800, "for": 2}]}),
    );
    let a = |n, v| window(n, json!({"op": "pay"}), v);
    let b = |n, v| window(n, json!({"op": "login"}), v);
    let out = run(&mut t, &[a(0, 800.0), b(0, 900.0), a(1, 900.0), b(1, 100.0), b(2, 900.0), a(2, 100.0)]);
    let alerts = bodies(&out);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0]["labels"]["op"], "pay");
    assert!(alerts[0].get("endsAt").is_none());
    assert_eq!(alerts[1]["labels"]["op"], "pay");
    assert_eq!(alerts[1]["endsAt"], rfc(T0 + 3 * WINDOW));
    // login has a pending run of one window.
    let out = run(&mut t, &[b(3, 900.0)]);
    assert_eq!(bodies(&out)[0]["labels"]["op"], "login");
}

#[test]
fn match_labels_select_series_and_other_records_are_left_alone() {
    let mut t = threshold(payment_rule());
    let other_metric = serde_json::to_vec(
        &json!({"metric": "ttfb_ms", "window_start": rfc(T0), "window_end": rfc(T0 + WINDOW), "p95": 1e9}),
    )
    .unwrap();
    let raw_log = b"{\"msg\":\"txn=1 status=ok resp_ms=12\"}".to_vec();
    let not_json = b"plain text".to_vec();
    let records = [
        window(0, json!({"op": "login"}), 900.0),
        window(1, json!({"op": "login"}), 900.0),
        (T0, other_metric),
        (T0, raw_log),
        (T0, not_json),
    ];
    let out = run(&mut t, &records);
    assert!(out.alerts.is_empty());
    assert_eq!(out.counters, Counters::default());
}

#[test]
fn each_rule_matching_a_window_keeps_its_own_alert() {
    let mut t = threshold(json!({"rules": [
        {"name": "P95High", "metric": "latency_ms", "stat": "p95", "op": ">", "value": 800},
        {"name": "P50High", "metric": "latency_ms", "stat": "p50", "op": ">", "value": 100, "labels": {"severity": "ticket"}}
    ]}));
    let out = run(&mut t, &[pay(0, 900.0)]);
    let names: Vec<_> = bodies(&out).iter().map(|a| a["labels"]["alertname"].clone()).collect();
    assert_eq!(names, [json!("P95High"), json!("P50High")]);
    assert_eq!(out.counters.windows_evaluated, 1);
}

#[test]
fn out_of_order_and_malformed_records_are_counted_not_evaluated() {
    let mut t = threshold(payment_rule());
    run(&mut t, &[pay(3, 900.0)]);
    let bad =
        serde_json::to_vec(&json!({"metric": "latency_ms", "window_start": "soon", "window_end": rfc(T0)})).unwrap();
    let out = run(&mut t, &[pay(2, 900.0), (T0, bad.clone()), (T0, bad)]);
    assert_eq!(out.counters.out_of_order, 1);
    assert_eq!(out.counters.malformed, 2);
    assert!(out.alerts.is_empty());
    assert_eq!(
        out.logs,
        [
            "2 records of rule metrics are not window records and were passed through unevaluated; the first: field \"window_start\" is not an RFC 3339 time (got \"soon\")"
        ]
    );
    // The out-of-order window did not extend the run: the next fires it.
    assert_eq!(run(&mut t, &[pay(4, 900.0)]).counters.alerts_firing, 1);
}

#[test]
fn a_missing_stat_is_counted_and_logged_once_per_rule() {
    let mut t =
        threshold(json!({"rules": [{"name": "Tail", "metric": "latency_ms", "stat": "p99.9", "op": ">", "value": 1}]}));
    let out = run(&mut t, &[pay(0, 900.0), pay(1, 900.0)]);
    assert_eq!(out.counters.stat_missing, 2);
    assert_eq!(out.logs.len(), 1);
    assert!(out.logs[0].contains(r#"carry no numeric "p99_9""#), "{:?}", out.logs);
    assert!(run(&mut t, &[pay(2, 900.0)]).logs.is_empty());
}

#[test]
fn the_generator_url_is_rendered_when_configured() {
    let mut config = payment_rule();
    config["generator_url"] = json!("https://grafana.example/d/latency?var-op={{labels.op}}&from={{window_start}}");
    config["tag"] = json!("alerts.payments");
    config["rules"][0]["for"] = json!(1);
    let mut t = threshold(config);
    let out = run(&mut t, &[pay(0, 900.0)]);
    assert_eq!(
        bodies(&out)[0]["generatorURL"],
        "https://grafana.example/d/latency?var-op=pay&from=2026-11-22T10:00:00Z"
    );
    assert_eq!(t.config().tag, "alerts.payments");
}

#[test]
fn snapshot_and_restore_mid_streak_continue_the_run_and_the_firing_alert() {
    let config = payment_rule();
    let records: Vec<_> = [900.0, 950.0, 990.0, 100.0, 900.0, 901.0, 902.0, 10.0]
        .iter()
        .enumerate()
        .map(|(n, v)| pay(n as i64, *v))
        .collect();
    let mut whole = threshold(config.clone());
    let expected: Vec<AlertRecord> =
        records.iter().flat_map(|r| run(&mut whole, std::slice::from_ref(r)).alerts).collect();
    assert_eq!(expected.len(), 4);

    for cut in 0..=records.len() {
        let mut first = threshold(config.clone());
        let mut got: Vec<AlertRecord> =
            records[..cut].iter().flat_map(|r| run(&mut first, std::slice::from_ref(r)).alerts).collect();
        let bytes = first.snapshot();
        let mut second = threshold(config.clone());
        let restored = second.restore(&bytes).unwrap();
        assert_eq!(restored.dropped, 0);
        got.extend(records[cut..].iter().flat_map(|r| run(&mut second, std::slice::from_ref(r)).alerts));
        assert_eq!(got, expected, "cut at {cut}");
    }
}

#[test]
fn restore_drops_states_of_removed_rules_and_refuses_garbage() {
    let mut t = threshold(payment_rule());
    run(&mut t, &[pay(0, 900.0), pay(1, 900.0)]);
    let bytes = t.snapshot();
    let mut other =
        threshold(json!({"rules": [{"name": "Other", "metric": "latency_ms", "stat": "p95", "op": ">", "value": 1}]}));
    assert_eq!(other.restore(&bytes).unwrap(), crate::snapshot::Restored { kept: 0, dropped: 1 });

    let e = t.restore(b"not json").unwrap_err();
    assert!(e.starts_with("snapshot is not a weir-plugin-threshold snapshot of format 1: "), "{e}");
    let foreign = json!({"plugin": "weir-plugin-percentiles", "format": 1, "alerts": []}).to_string();
    assert_eq!(
        t.restore(foreign.as_bytes()).unwrap_err(),
        "snapshot is from \"weir-plugin-percentiles\", not weir-plugin-threshold"
    );
    // Failed restores leave the state alone: the alert is still firing.
    assert_eq!(run(&mut t, &[pay(2, 10.0)]).counters.alerts_resolved, 1);
}

#[test]
fn a_silent_firing_series_resolves_once_others_report_past_absent_for() {
    let mut t =
        threshold(json!({"rules": [{"name": "Slow", "metric": "latency_ms", "stat": "p95", "op": ">", "value": 800,
        "annotations": {"summary": "{{labels.op}} p95 {{value}} in {{window_start}}..{{window_end}}"}}]}));
    let a = |n, v| window(n, json!({"op": "pay"}), v);
    let b = |n, v| window(n, json!({"op": "login"}), v);
    let out = run(&mut t, &[a(0, 900.0), b(0, 100.0), b(1, 100.0), b(2, 100.0), b(3, 100.0)]);
    assert_eq!(out.counters.alerts_firing, 1);
    assert_eq!(out.counters.alerts_resolved, 0, "absent for 3 window lengths exactly is not yet more than 3");
    let out = run(&mut t, &[b(4, 100.0)]);
    assert_eq!(out.counters.alerts_resolved, 1);
    assert_eq!(out.alerts[0].parent, 0, "the window that proved the absence is the parent");
    let resolved = &bodies(&out)[0];
    assert_eq!(resolved["labels"]["op"], "pay");
    assert_eq!(resolved["startsAt"], rfc(T0 + WINDOW));
    assert_eq!(resolved["endsAt"], rfc(T0 + 4 * WINDOW), "the last window's end + absent_for window lengths");
    assert_eq!(
        resolved["annotations"]["summary"],
        format!("pay p95 900 in {}..{}", rfc(T0), rfc(T0 + WINDOW)),
        "rendered from the last window the series had"
    );
    assert!(t.states.is_empty());
    // Back after the absence, it is a new alert.
    let out = run(&mut t, &[a(5, 900.0)]);
    assert_eq!((out.counters.alerts_firing, out.counters.alerts_resolved), (1, 0));
}

#[test]
fn a_window_from_a_fast_clock_neither_resolves_others_nor_blocks_its_series() {
    let mut t =
        threshold(json!({"rules": [{"name": "Slow", "metric": "latency_ms", "stat": "p95", "op": ">", "value": 800}]}));
    let a = |n, v| window(n, json!({"op": "pay"}), v);
    let b = |n, v| window(n, json!({"op": "login"}), v);
    let now = T0 + 2 * WINDOW;
    let out = run_at(&mut t, &[a(0, 900.0), b(0, 100.0)], now);
    assert_eq!(out.counters.alerts_firing, 1);
    // A window of b a day ahead: passed through, counted, not evaluated.
    let out = run_at(&mut t, &[b(96, 900.0), a(1, 950.0)], now);
    assert_eq!((out.counters.future, out.counters.windows_evaluated), (1, 1));
    assert_eq!((out.counters.alerts_resolved, out.counters.alerts_firing), (0, 0), "a is still firing, b not");
    assert_eq!(
        out.logs,
        [format!(
            "1 window records start more than max_future (5m) after the host clock and were passed through unevaluated; the first: latency_ms window {}..{} (host clock {})",
            rfc(T0 + 96 * WINDOW),
            rfc(T0 + 97 * WINDOW),
            rfc(now)
        )]
    );
    // b's next real window is in order and evaluated.
    let out = run_at(&mut t, &[b(1, 900.0)], now);
    assert_eq!((out.counters.out_of_order, out.counters.alerts_firing), (0, 1));
    // Within max_future of the clock, a window is evaluated.
    let out = run_at(&mut t, &[a(2, 100.0)], T0 + 2 * WINDOW - 4 * MINUTE);
    assert_eq!((out.counters.future, out.counters.alerts_resolved), (0, 1));
}

#[test]
fn a_silent_pending_run_is_dropped_and_absent_for_0_keeps_firing() {
    let mut t = threshold(payment_rule());
    let other = |n| window(n, json!({"op": "pay", "os": "ios"}), 100.0);
    run(&mut t, &[pay(0, 900.0), other(0), other(1), other(2), other(3), other(4)]);
    assert!(t.states.is_empty(), "the pending run of the silent series is forgotten");

    let mut config = payment_rule();
    config["rules"][0]["absent_for"] = json!(0);
    config["rules"][0]["for"] = json!(1);
    let mut t = threshold(config);
    let out = run(&mut t, &[pay(0, 900.0), other(0), other(1), other(2), other(3), other(4), other(9)]);
    assert_eq!((out.counters.alerts_firing, out.counters.alerts_resolved), (1, 0));
}

#[test]
fn a_series_back_after_its_absence_resolves_then_fires_anew() {
    let mut t =
        threshold(json!({"rules": [{"name": "Slow", "metric": "latency_ms", "stat": "p95", "op": ">", "value": 800}]}));
    assert_eq!(run(&mut t, &[pay(0, 900.0)]).counters.alerts_firing, 1);
    let out = run(&mut t, &[pay(5, 900.0)]);
    let alerts = bodies(&out);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0]["endsAt"], rfc(T0 + 4 * WINDOW), "the old alert resolves where the absence began to count");
    assert_eq!(alerts[1]["startsAt"], rfc(T0 + 6 * WINDOW), "the new one starts with the window that brought it back");
    assert!(alerts[1].get("endsAt").is_none());
}
