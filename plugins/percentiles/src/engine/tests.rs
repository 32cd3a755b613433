//! Engine tests. The correctness tests compare against an oracle written
//! here from the definitions alone: exact nearest-rank quantiles over sorted
//! values, and window membership and lateness recomputed from event times.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::config::PercentilesConfig;
use crate::output;

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
/// 2026-11-22T10:00:00Z, so times read naturally in failures.
const T0: i64 = 1_795_341_600 * SECOND;
/// The host clock in most tests: a day after `T0`, after every event, so
/// neither the host-clock cap of the watermark nor `max_future` applies.
const HOST: i64 = T0 + 24 * 60 * MINUTE;

fn config(text: serde_json::Value) -> PercentilesConfig {
    PercentilesConfig::parse(&text.to_string()).unwrap()
}

fn body(metric: &str, value: f64, labels: &[(&str, &str)]) -> Vec<u8> {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    serde_json::to_vec(&json!({"metric": metric, "value": value, "labels": labels})).unwrap()
}

/// Everything a run produced, with rejections indexed across all batches.
#[derive(Debug, Default, PartialEq)]
struct Run {
    windows: Vec<WindowRecord>,
    rejected: Vec<(usize, String)>,
    counters: Counters,
    logs: Vec<(LogLevel, String)>,
}

impl Run {
    fn absorb(&mut self, outcome: Outcome, offset: usize) {
        self.windows.extend(outcome.windows);
        self.rejected.extend(outcome.rejected.into_iter().map(|r| (offset + r.index as usize, r.reason)));
        self.add(&outcome.counters);
        self.logs.extend(outcome.logs);
    }

    fn add(&mut self, d: &Counters) {
        let c = &mut self.counters;
        c.accepted += d.accepted;
        c.invalid += d.invalid;
        c.out_of_range += d.out_of_range;
        c.unrepresentable += d.unrepresentable;
        c.future += d.future;
        c.late += d.late;
        c.partially_late += d.partially_late;
        c.series_cap += d.series_cap;
        c.windows_emitted += d.windows_emitted;
        c.idle_closed += d.idle_closed;
        c.dropped_late += d.dropped_late;
        c.windows_opened += d.windows_opened;
        c.windows_closed += d.windows_closed;
        c.series_opened += d.series_opened;
        c.series_forgotten += d.series_forgotten;
    }

    /// Open windows and series as the counters tell them, which must be
    /// what the engine holds.
    fn check_open(&self, engine: &Percentiles, when: &str) {
        let c = &self.counters;
        assert_eq!(c.windows_opened - c.windows_closed, engine.open_windows(), "open windows {when}");
        assert_eq!(c.series_opened - c.series_forgotten, engine.series.len() as u64, "open series {when}");
    }
}

/// Feed `events` (time, body) in batches of `batch`, host clock = `now`.
fn feed(engine: &mut Percentiles, events: &[(i64, Vec<u8>)], batch: usize, now: i64, run: &mut Run, offset: usize) {
    for (n, chunk) in events.chunks(batch).enumerate() {
        let inputs: Vec<InputEvent<'_>> = chunk.iter().map(|(t, b)| InputEvent { time: *t, body: b }).collect();
        run.absorb(engine.process(&inputs, now), offset + n * batch);
    }
}

// ---------------------------------------------------------------------------
// The oracle.

/// A small seeded PRNG (SplitMix64): reproducible inputs with no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone)]
struct Sample {
    time: i64,
    series: usize,
    value: f64,
}

struct OracleWindow {
    start: i64,
    end: i64,
    series: usize,
    values: Vec<f64>,
}

struct Oracle {
    late: BTreeSet<usize>,
    /// Windows closed by the watermark, then the rest (flushed at the end).
    windows: Vec<OracleWindow>,
}

/// Classify every sample and build every window from the definitions:
/// windows are `[k*step, k*step + size)`; the watermark is the largest
/// accepted time minus lateness; a window is closed once the watermark
/// reaches its end; a sample is late when all its windows are closed, and is
/// in exactly the windows still open when it arrived.
fn oracle(samples: &[Sample], size: i64, step: i64, lateness: i64, series_count: usize) -> Oracle {
    let floor = |t: i64| t.div_euclid(step) * step;
    let mut max: Option<i64> = None;
    let mut closed: Option<i64> = None;
    let mut late = BTreeSet::new();
    // (series, window start) -> values
    let mut contents: BTreeMap<(usize, i64), Vec<f64>> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        let open = |start: i64| closed.is_none_or(|c| start + size > c);
        let starts: Vec<i64> = (0..size / step).map(|k| floor(s.time) - size + step + k * step).collect();
        assert!(starts.iter().all(|&st| st <= s.time && s.time < st + size));
        if !starts.iter().any(|&st| open(st)) {
            late.insert(i);
            continue;
        }
        for &st in starts.iter().filter(|&&st| open(st)) {
            contents.entry((s.series, st)).or_default().push(s.value);
        }
        let m = max.map_or(s.time, |m: i64| m.max(s.time));
        max = Some(m);
        let b = floor(m - lateness);
        closed = Some(closed.map_or(b, |c| c.max(b)));
    }
    let mut windows: Vec<OracleWindow> = contents
        .into_iter()
        .map(|((series, start), values)| OracleWindow { start, end: start + size, series, values })
        .collect();
    let final_closed = closed.unwrap_or(i64::MIN);
    // Watermark-closed windows come first, by end then series; the rest are
    // flushed by the final idle tick, by end then series as well.
    // Series order is the order of (metric, sorted labels).
    let mut order: Vec<usize> = (0..series_count).collect();
    order.sort_by_key(|&i| (SERIES[i].0, SERIES[i].1.iter().copied().collect::<BTreeMap<_, _>>()));
    let rank = |series: usize| order.iter().position(|&i| i == series).unwrap();
    windows.sort_by_key(|w| (w.end > final_closed, w.end, rank(w.series)));
    Oracle { late, windows }
}

/// Exact nearest rank: the value at 1-based rank ceil(q * n) of the sorted
/// values, in integer arithmetic over thousandths of a percent.
fn nearest_rank(sorted: &[f64], percent: f64) -> f64 {
    let milli_percent = (percent * 1000.0).round() as u64;
    let rank = (milli_percent * sorted.len() as u64).div_ceil(100_000).max(1) as usize;
    sorted[rank - 1]
}

struct Scenario {
    seed: u64,
    config: serde_json::Value,
    /// Percentages matching the configured quantiles, in order.
    percents: Vec<f64>,
    events: usize,
    /// Largest out-of-order delay, in ns; some events are delayed more.
    jitter: i64,
    value: fn(&mut Rng) -> f64,
}

const SERIES: [(&str, &[(&str, &str)]); 5] = [
    ("latency_ms", &[("op", "pay")]),
    ("latency_ms", &[("op", "login")]),
    ("latency_ms", &[("op", "pay"), ("os", "ios")]),
    ("latency_ms", &[]),
    ("ttfb_ms", &[("op", "pay")]),
];

fn generate(s: &Scenario) -> Vec<Sample> {
    let mut rng = Rng(s.seed);
    let mut now = T0 + rng.below(60) as i64 * SECOND;
    (0..s.events)
        .map(|_| {
            now += rng.below(4 * SECOND as u64) as i64;
            let delay = if rng.chance(3) {
                // Very late: several windows back.
                rng.below(40 * MINUTE as u64) as i64
            } else {
                rng.below(s.jitter as u64 + 1) as i64
            };
            // Some series are quieter than others.
            let series = match rng.below(10) {
                0..=3 => 0,
                4..=5 => 1,
                6..=7 => 2,
                8 => 3,
                _ => 4,
            };
            Sample { time: now - delay, series, value: (s.value)(&mut rng) }
        })
        .collect()
}

fn check_scenario(s: &Scenario) {
    let cfg = config(s.config.clone());
    let (size, step, lateness) = (cfg.window, cfg.step, cfg.allowed_lateness);
    let digits = i32::from(cfg.significant_digits);
    let samples = generate(s);
    let events: Vec<(i64, Vec<u8>)> =
        samples.iter().map(|x| (x.time, body(SERIES[x.series].0, x.value, SERIES[x.series].1))).collect();

    let mut engine = Percentiles::new(cfg.clone());
    let mut run = Run::default();
    feed(&mut engine, &events, 37, HOST, &mut run, 0);
    let closed_by_watermark = run.windows.len();
    // Everything left is flushed by an idle tick.
    run.absorb(engine.tick(HOST + cfg.idle_timeout), 0);
    assert!(engine.series.iter().all(|(_, s)| s.panes.is_empty()));

    let want = oracle(&samples, size, step, lateness, SERIES.len());

    // Late events are exactly the oracle's, rejected with a late reason.
    let late: BTreeSet<usize> = run.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(late, want.late, "seed {}: late events differ", s.seed);
    assert!(run.rejected.iter().all(|(_, r)| r.starts_with("late event for ")), "{:?}", run.rejected.first());
    assert_eq!(run.counters.late as usize, want.late.len());
    assert_eq!(run.counters.accepted as usize, samples.len() - want.late.len());
    assert!(!want.late.is_empty(), "seed {}: the scenario should produce late events", s.seed);

    assert_eq!(run.windows.len(), want.windows.len(), "seed {}: window count", s.seed);
    assert!(closed_by_watermark > 0 && closed_by_watermark < run.windows.len());
    for (got, w) in run.windows.iter().zip(&want.windows) {
        let (metric, labels) = SERIES[w.series];
        let context = format!("seed {} window {}..{} series {}", s.seed, w.start, w.end, w.series);
        assert_eq!((got.start, got.end), (w.start, w.end), "{context}");
        assert_eq!(got.key.metric, metric, "{context}");
        let want_labels: BTreeMap<String, String> =
            labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(got.key.labels, want_labels, "{context}");

        let mut sorted = w.values.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(got.stats.count, sorted.len() as u64, "{context}: count");
        assert_eq!(got.stats.min, sorted[0], "{context}: min");
        assert_eq!(got.stats.max, sorted[sorted.len() - 1], "{context}: max");
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        assert!((got.stats.mean - mean).abs() <= mean.abs() * 1e-12, "{context}: mean {} vs {mean}", got.stats.mean);

        for (value, percent) in got.stats.quantiles.iter().zip(&s.percents) {
            let exact = nearest_rank(&sorted, *percent);
            let tolerance = exact * 10f64.powi(-digits);
            assert!(
                (value - exact).abs() <= tolerance,
                "{context}: p{percent} = {value}, oracle {exact}, tolerance {tolerance}"
            );
        }
    }
}

#[test]
fn tumbling_windows_match_the_oracle_on_integer_latencies() {
    for seed in 1..=4 {
        check_scenario(&Scenario {
            seed,
            config: json!({"window": "1m"}),
            percents: vec![50.0, 75.0, 90.0, 95.0, 99.0],
            events: 6000,
            jitter: 20 * SECOND,
            value: |rng| match rng.below(20) {
                0 => (rng.below(5_000_000) + 1) as f64,
                _ => (rng.below(3000) + 1) as f64,
            },
        });
    }
}

#[test]
fn tumbling_windows_with_lateness_match_the_oracle_on_fractional_values() {
    for seed in 10..=12 {
        check_scenario(&Scenario {
            seed,
            config: json!({"window": "2m", "allowed_lateness": "30s", "significant_digits": 2,
                           "quantiles": ["p50", "p99.9", 0.05, "p100"]}),
            percents: vec![50.0, 99.9, 5.0, 100.0],
            events: 5000,
            jitter: 50 * SECOND,
            value: |rng| rng.below(900_000) as f64 / 1000.0,
        });
    }
}

#[test]
fn hopping_windows_match_the_oracle() {
    for seed in 20..=22 {
        check_scenario(&Scenario {
            seed,
            config: json!({"window": "3m", "step": "1m", "allowed_lateness": "10s", "significant_digits": 4}),
            percents: vec![50.0, 75.0, 90.0, 95.0, 99.0],
            events: 5000,
            jitter: 90 * SECOND,
            value: |rng| (rng.below(200_000) + 1) as f64,
        });
    }
}

/// A value spread evenly over the decades from 1e-6 to 1e9, so every
/// magnitude a metric may have is covered, fractions of a unit included.
fn any_magnitude(rng: &mut Rng) -> f64 {
    let exponent = rng.below(15_000_000) as f64 / 1_000_000.0 - 6.0;
    logged(10f64.powf(exponent))
}

/// `value` as a log line would carry it, to 6 significant digits: the JSON
/// reader is exact for such text, so the oracle sees what the plugin reads.
fn logged(value: f64) -> f64 {
    format!("{value:.5e}").parse().unwrap()
}

#[test]
fn windows_match_the_oracle_on_values_from_a_millionth_to_a_billion() {
    for (seed, digits) in [(30, 1), (31, 2), (32, 3), (33, 4), (34, 5)] {
        check_scenario(&Scenario {
            seed,
            config: json!({"window": "1m", "allowed_lateness": "15s", "significant_digits": digits,
                           "quantiles": ["p1", "p50", "p90", "p99", "p99.9"]}),
            percents: vec![1.0, 50.0, 90.0, 99.0, 99.9],
            events: 5000,
            jitter: 30 * SECOND,
            value: any_magnitude,
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_quantile_is_within_the_stated_precision_of_the_exact_one(
        exponents in proptest::collection::vec(-6.0f64..9.0, 1..400),
        digits in 1u8..=5,
        tenths in 1u64..=1000,
    ) {
        let values: Vec<f64> = exponents.iter().map(|e| logged(10f64.powf(*e))).collect();
        let percent = tenths as f64 / 10.0;
        let name = format!("p{percent}");
        let mut engine = Percentiles::new(config(json!({"window": "1m", "significant_digits": digits, "quantiles": [name]})));
        let bodies: Vec<Vec<u8>> = values.iter().map(|v| body("m", *v, &[])).collect();
        let inputs: Vec<InputEvent<'_>> = bodies.iter().map(|b| InputEvent { time: T0, body: b }).collect();
        let out = engine.process(&inputs, HOST);
        prop_assert_eq!(out.counters.accepted as usize, values.len());
        let windows = engine.tick(i64::MAX).windows;
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let exact = nearest_rank(&sorted, percent);
        let got = windows[0].stats.quantiles[0];
        let bound = exact * 10f64.powi(-i32::from(digits));
        prop_assert!((got - exact).abs() <= bound, "p{} of {} values at {} digits: {} vs exact {}", percent, values.len(), digits, got, exact);
    }
}

#[test]
fn a_value_the_histogram_cannot_hold_is_refused_and_counted() {
    let mut engine = Percentiles::new(config(json!({"window": "1m"})));
    let tiny = body("m", 1e-310, &[]);
    let zero = body("m", 0.0, &[]);
    let out = engine.process(&[InputEvent { time: T0, body: &tiny }, InputEvent { time: T0, body: &zero }], HOST);
    assert_eq!((out.counters.unrepresentable, out.counters.accepted), (1, 1));
    assert_eq!(
        out.rejected[0].reason,
        "value 1e-310 of m is below 2.2250738585072014e-308, the smallest value the histogram holds to its significant digits"
    );
    assert_eq!(engine.tick(i64::MAX).windows[0].stats.quantiles, [0.0; 5]);
}

// ---------------------------------------------------------------------------
// Clocks that are wrong.

#[test]
fn one_fast_clock_does_not_make_everyone_elses_events_late() {
    // Device A's statements in a minute that is over, device B's a day
    // ahead, then A's again a few seconds after its first: all of A's count.
    let now = T0 + 3 * MINUTE;
    let mut engine = Percentiles::new(config(json!({"window": "1m", "allowed_lateness": "30s"})));
    let a = |i: i64| (T0 + i * 4 * SECOND, body("response_time_ms", 300.0 + i as f64, &[("txn", "pay")]));
    let mut events: Vec<(i64, Vec<u8>)> = (0..5).map(a).collect();
    events.push((now + 24 * 60 * MINUTE, body("response_time_ms", 999.0, &[("txn", "pay")])));
    events.extend(
        (0..5).map(|i| (T0 + 25 * SECOND + i * 4 * SECOND, body("response_time_ms", 400.0, &[("txn", "pay")]))),
    );
    let mut run = Run::default();
    feed(&mut engine, &events, 1, now, &mut run, 0);
    run.absorb(engine.tick(i64::MAX), 0);
    assert_eq!((run.counters.late, run.counters.future, run.counters.accepted), (0, 1, 10));
    assert_eq!(run.windows.len(), 1);
    assert_eq!((run.windows[0].start, run.windows[0].stats.count), (T0, 10));
    assert_eq!(run.rejected.len(), 1);
    assert_eq!(
        run.rejected[0],
        (
            5,
            r#"future event for response_time_ms{txn="pay"} at 2026-11-23T10:03:00Z: 1d ahead of the host clock 2026-11-22T10:03:00Z, more than max_future 5m"#.to_string()
        )
    );
}

#[test]
fn an_event_a_little_ahead_is_kept_but_moves_the_watermark_no_further_than_the_clock() {
    let now = T0 + 10 * SECOND;
    let mut engine = Percentiles::new(config(json!({"window": "1m", "max_future": "5m"})));
    let b = body("m", 1.0, &[]);
    // Three minutes ahead: within max_future, recorded in its own window.
    let out = engine.process(&[InputEvent { time: now + 3 * MINUTE, body: &b }], now);
    assert_eq!((out.counters.accepted, out.counters.future), (1, 0));
    assert_eq!(engine.watermark(), Some(now));
    // The current window still takes its events, and closes only when the
    // clock and the data have passed its end.
    let out = engine.process(&[InputEvent { time: T0 + 5 * SECOND, body: &b }], now + 20 * SECOND);
    assert_eq!((out.counters.late, out.windows.len()), (0, 0));
    let out = engine.process(&[InputEvent { time: T0 + MINUTE, body: &b }], T0 + MINUTE + SECOND);
    assert_eq!(out.windows.len(), 1);
    assert_eq!((out.windows[0].start, out.windows[0].stats.count), (T0, 1));
    // Five minutes and a second ahead is too far.
    let out =
        engine.process(&[InputEvent { time: T0 + MINUTE + 5 * MINUTE + 2 * SECOND, body: &b }], T0 + MINUTE + SECOND);
    assert_eq!(out.counters.future, 1);
}

#[test]
fn an_idle_flush_leaves_a_window_ahead_of_the_clock_open_until_the_clock_reaches_it() {
    let now = T0 + 10 * SECOND;
    let mut engine = Percentiles::new(config(json!({"window": "1m", "idle_timeout": "2m"})));
    let b = body("m", 1.0, &[]);
    // One event now and one from a clock four minutes fast, then silence.
    engine.process(&[InputEvent { time: T0, body: &b }, InputEvent { time: now + 4 * MINUTE, body: &b }], now);
    let out = engine.tick(now + 2 * MINUTE);
    let starts: Vec<i64> = out.windows.iter().map(|w| w.start).collect();
    assert_eq!(starts, [T0], "only the window the clock has passed");
    // Another device's event for the minute after is not late.
    let out = engine.process(&[InputEvent { time: T0 + 2 * MINUTE + SECOND, body: &b }], now + 2 * MINUTE + 5 * SECOND);
    assert_eq!((out.counters.late, out.counters.accepted), (0, 1));
    // Once the clock is past the fast event's window, it is flushed too.
    let out = engine.tick(now + 6 * MINUTE);
    let starts: Vec<i64> = out.windows.iter().map(|w| w.start).collect();
    assert_eq!(starts, [T0 + 2 * MINUTE, T0 + 4 * MINUTE]);
    assert!(engine.series.values().all(|s| s.panes.is_empty()));
}

// ---------------------------------------------------------------------------
// Window boundaries.

#[test]
fn an_event_exactly_at_the_window_end_goes_to_the_next_window() {
    let mut engine = Percentiles::new(config(json!({"window": "1m"})));
    let b = |v| body("m", v, &[]);
    let out = engine.process(
        &[
            InputEvent { time: T0, body: &b(1.0) },
            InputEvent { time: T0 + MINUTE - 1, body: &b(2.0) },
            InputEvent { time: T0 + MINUTE, body: &b(3.0) },
        ],
        HOST,
    );
    // The event at T0 + 1m moves the watermark to the end of [T0, T0+1m).
    assert_eq!(out.windows.len(), 1);
    let w = &out.windows[0];
    assert_eq!((w.start, w.end), (T0, T0 + MINUTE));
    assert_eq!((w.stats.count, w.stats.min, w.stats.max), (2, 1.0, 2.0));
    let rest = engine.tick(i64::MAX);
    assert_eq!(rest.windows.len(), 1);
    assert_eq!((rest.windows[0].start, rest.windows[0].stats.count), (T0 + MINUTE, 1));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_hopping_event_is_emitted_in_exactly_size_over_step_windows(
        panes in 1i64..=6,
        step_s in 1i64..=90,
        t in -10_000 * SECOND..10_000 * SECOND,
    ) {
        let step = step_s * SECOND;
        let size = panes * step;
        let mut engine = Percentiles::new(config(json!({"window": format!("{}s", size / SECOND), "step": format!("{step_s}s")})));
        let b = body("m", 7.0, &[]);
        let mut windows = engine.process(&[InputEvent { time: T0 + t, body: &b }], HOST).windows;
        // A far later event closes every window of the first.
        let later = body("other", 1.0, &[]);
        windows.extend(engine.process(&[InputEvent { time: T0 + t + 2 * size, body: &later }], HOST).windows);
        let mine: Vec<_> = windows.iter().filter(|w| w.key.metric == "m").collect();
        prop_assert_eq!(mine.len() as i64, panes);
        for w in mine {
            prop_assert!(w.start <= T0 + t && T0 + t < w.end);
            prop_assert_eq!(w.end - w.start, size);
            prop_assert_eq!(w.stats.count, 1);
        }
    }

    #[test]
    fn an_event_at_a_tumbling_window_end_is_counted_in_the_next(k in -1000i64..1000, minutes in 1i64..=30) {
        let size = minutes * MINUTE;
        let end = (T0 / size + k) * size;
        let mut engine = Percentiles::new(config(json!({"window": format!("{minutes}m")})));
        let b = body("m", 1.0, &[]);
        engine.process(&[InputEvent { time: end, body: &b }], end);
        let w = engine.tick(i64::MAX).windows;
        prop_assert_eq!(w.len(), 1);
        prop_assert_eq!(w[0].start, end);
    }
}

// ---------------------------------------------------------------------------
// Snapshot and restore.

fn mixed_stream(seed: u64, count: usize) -> Vec<(i64, Vec<u8>)> {
    let s = Scenario {
        seed,
        config: json!({}),
        percents: vec![],
        events: count,
        jitter: 45 * SECOND,
        value: |rng| (rng.below(100_000) + 1) as f64 / 10.0,
    };
    generate(&s).iter().map(|x| (x.time, body(SERIES[x.series].0, x.value, SERIES[x.series].1))).collect()
}

#[test]
fn restoring_a_snapshot_mid_stream_gives_the_same_output_as_an_uninterrupted_run() {
    let text = json!({"window": "3m", "step": "1m", "allowed_lateness": "20s", "quantiles": ["p50", "p99.9"]});
    let events = mixed_stream(99, 4000);
    let mut whole = Percentiles::new(config(text.clone()));
    let mut expected = Run::default();
    feed(&mut whole, &events, 50, HOST, &mut expected, 0);
    expected.absorb(whole.tick(i64::MAX), 0);

    for cut in [1, 50, 1234, 2000, 3999] {
        let mut first = Percentiles::new(config(text.clone()));
        let mut got = Run::default();
        feed(&mut first, &events[..cut], 50, HOST, &mut got, 0);
        let bytes = first.snapshot();
        drop(first);
        let mut second = Percentiles::new(config(text.clone()));
        second.restore(&bytes).unwrap();
        feed(&mut second, &events[cut..], 50, HOST, &mut got, cut);
        got.absorb(second.tick(i64::MAX), 0);
        assert_eq!(got.windows, expected.windows, "cut at {cut}");
        assert_eq!(got.rejected, expected.rejected, "cut at {cut}");
        assert_eq!(got.counters, expected.counters, "cut at {cut}");
    }
}

#[test]
fn output_does_not_depend_on_batch_size() {
    let text = json!({"window": "2m", "step": "1m"});
    let events = mixed_stream(7, 2000);
    let mut runs = Vec::new();
    for batch in [1, 13, 2000] {
        let mut engine = Percentiles::new(config(text.clone()));
        let mut run = Run::default();
        feed(&mut engine, &events, batch, HOST, &mut run, 0);
        run.absorb(engine.tick(i64::MAX), 0);
        runs.push(run);
    }
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
}

#[test]
fn the_watermark_and_idle_series_survive_a_restore() {
    let text = json!({"window": "1m"});
    let mut first = Percentiles::new(config(text.clone()));
    let b = body("m", 5.0, &[]);
    first.process(&[InputEvent { time: T0 + 3 * MINUTE, body: &b }], HOST);
    let mut second = Percentiles::new(config(text));
    second.restore(&first.snapshot()).unwrap();
    assert_eq!(second.watermark(), Some(T0 + 3 * MINUTE));
    // Still late after the restore.
    let out = second.process(&[InputEvent { time: T0, body: &b }], HOST);
    assert_eq!(out.counters.late, 1);
}

#[test]
fn restore_refuses_garbage_and_incompatible_snapshots() {
    let mut engine = Percentiles::new(config(json!({"window": "1m"})));
    let e = engine.restore(b"\x00\x01garbage").unwrap_err();
    assert!(e.starts_with("snapshot is not a weir-plugin-percentiles snapshot: "), "{e}");
    let e = engine.restore(br#"{"rules": []}"#).unwrap_err();
    assert!(e.starts_with("snapshot is not a weir-plugin-percentiles snapshot"), "{e}");

    let mut other = Percentiles::new(config(json!({"window": "5m"})));
    let b = body("m", 5.0, &[]);
    other.process(&[InputEvent { time: T0, body: &b }], HOST);
    let snapshot = other.snapshot();
    let e = engine.restore(&snapshot).unwrap_err();
    assert_eq!(
        e,
        "snapshot has window 5m and step 5m, this instance is configured with window 1m and step 1m: open windows cannot be re-cut"
    );

    let mut envelope: serde_json::Value = serde_json::from_slice(&snapshot).unwrap();
    envelope["format"] = json!(3);
    let e = engine.restore(&serde_json::to_vec(&envelope).unwrap()).unwrap_err();
    assert_eq!(e, "snapshot format 3 is not supported (this plugin reads formats 1 and 2)");

    let mut envelope: serde_json::Value = serde_json::from_slice(&snapshot).unwrap();
    envelope["window"] = json!(MINUTE);
    envelope["step"] = json!(MINUTE);
    envelope["series"][0]["panes"][0]["buckets"] = json!([[5, 1]]);
    let e = engine.restore(&serde_json::to_vec(&envelope).unwrap()).unwrap_err();
    assert_eq!(e, "snapshot series m pane at 2026-11-22T10:00:00Z: bucket 5 holds no finite normal value");
    envelope["series"][0]["panes"][0]["buckets"] = json!([[0, 2]]);
    let e = engine.restore(&serde_json::to_vec(&envelope).unwrap()).unwrap_err();
    assert_eq!(e, "snapshot series m pane at 2026-11-22T10:00:00Z: histogram holds 2 values but the pane counts 1");
    // A failed restore leaves the instance as it was.
    assert!(engine.series.is_empty());
}

/// A snapshot as format 1 wrote it: one pane of series `m` at `T0`, its
/// histogram holding `round(value * scale)` in HdrHistogram's V2 + deflate
/// encoding, base64.
fn format_1_snapshot(values: &[f64], scale: f64) -> serde_json::Value {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
    let mut hdr = hdrhistogram::Histogram::<u32>::new(3).unwrap();
    for v in values {
        hdr.record((v * scale).round() as u64).unwrap();
    }
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(&hdr, &mut bytes).unwrap();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    json!({"plugin": "weir-plugin-percentiles", "format": 1, "window": MINUTE, "step": MINUTE,
           "scale": scale.to_string(), "max_event_time": T0 + 10 * SECOND, "closed": null,
           "series": [{"metric": "m", "labels": {}, "last_seen": HOST, "flushed_through": null,
                       "panes": [{"start": T0, "count": values.len(), "sum": values.iter().sum::<f64>().to_string(),
                                  "compensation": "0", "min": min.to_string(), "max": max.to_string(),
                                  "histogram": base64::engine::general_purpose::STANDARD.encode(bytes)}]}]})
}

#[test]
fn a_format_1_snapshot_restores_its_open_windows() {
    let mut engine = Percentiles::new(config(json!({"window": "1m", "quantiles": ["p50", "p75", "p100"]})));
    let before = [0.2, 0.4, 0.6, 0.8];
    engine.restore(&serde_json::to_vec(&format_1_snapshot(&before, 1000.0)).unwrap()).unwrap();
    assert_eq!(engine.watermark(), Some(T0 + 10 * SECOND));
    // A value after the upgrade joins the restored window.
    let b = body("m", 1.0, &[]);
    engine.process(&[InputEvent { time: T0 + 20 * SECOND, body: &b }], HOST);
    let out = engine.tick(i64::MAX);
    assert_eq!(out.windows.len(), 1);
    let stats = &out.windows[0].stats;
    assert_eq!((stats.count, stats.min, stats.max), (5, 0.2, 1.0));
    assert!((stats.mean - 0.6).abs() < 1e-12, "{stats:?}");
    assert_eq!(stats.quantiles, [0.6, 0.8, 1.0]);
}

#[test]
fn a_broken_format_1_snapshot_is_refused_naming_the_pane() {
    let mut engine = Percentiles::new(config(json!({"window": "1m"})));
    let mut snapshot = format_1_snapshot(&[3.0], 1.0);
    snapshot["series"][0]["panes"][0]["histogram"] = json!("AAAA");
    let e = engine.restore(&serde_json::to_vec(&snapshot).unwrap()).unwrap_err();
    assert!(e.starts_with("snapshot series m pane at 2026-11-22T10:00:00Z: histogram does not decode"), "{e}");
    snapshot["scale"] = json!("0");
    let e = engine.restore(&serde_json::to_vec(&snapshot).unwrap()).unwrap_err();
    assert_eq!(e, "snapshot has scale 0, which must be above 0");
}

#[test]
fn a_snapshot_of_another_precision_is_rebucketed() {
    let events: Vec<(i64, Vec<u8>)> =
        (1..=200).map(|i| (T0 + i * 100_000_000, body("m", f64::from(i as i32) / 7.0, &[]))).collect();
    let mut coarse = Percentiles::new(config(json!({"window": "1m", "significant_digits": 2})));
    feed(&mut coarse, &events[..100], 50, HOST, &mut Run::default(), 0);
    let mut fine = Percentiles::new(config(json!({"window": "1m", "significant_digits": 5})));
    fine.restore(&coarse.snapshot()).unwrap();
    let mut run = Run::default();
    feed(&mut fine, &events[100..], 50, HOST, &mut run, 100);
    run.absorb(fine.tick(i64::MAX), 0);
    let mut sorted: Vec<f64> = (1..=200).map(|i| f64::from(i) / 7.0).collect();
    sorted.sort_by(f64::total_cmp);
    let stats = &run.windows[0].stats;
    assert_eq!(stats.count, 200);
    for (value, percent) in stats.quantiles.iter().zip([50.0, 75.0, 90.0, 95.0, 99.0]) {
        // The coarse half keeps the coarse precision.
        let exact = nearest_rank(&sorted, percent);
        assert!((value - exact).abs() <= exact * 1e-2, "p{percent}: {value} vs {exact}");
    }
}

// ---------------------------------------------------------------------------
// Idle timeout, caps, lateness policy, range.

#[test]
fn tick_closes_the_windows_of_idle_series_only() {
    let mut engine = Percentiles::new(config(json!({"window": "1m", "idle_timeout": "5m"})));
    let quiet = body("m", 1.0, &[("s", "quiet")]);
    let busy = body("m", 2.0, &[("s", "busy")]);
    let host = T0 + 1_000 * SECOND;
    engine.process(&[InputEvent { time: T0, body: &quiet }], host);
    engine.process(&[InputEvent { time: T0 + SECOND, body: &busy }], host + 4 * MINUTE);

    assert!(engine.tick(host + 5 * MINUTE - 1).windows.is_empty());
    let out = engine.tick(host + 5 * MINUTE);
    assert_eq!(out.windows.len(), 1);
    assert_eq!(out.windows[0].key.labels["s"], "quiet");
    assert_eq!((out.windows[0].start, out.windows[0].end), (T0, T0 + MINUTE));
    assert_eq!(out.counters.idle_closed, 1);
    assert_eq!(out.logs.len(), 1);

    // The quiet series' closed window now refuses its events, with a reason
    // that says why; its next window is open, and that event moves the
    // watermark past the busy series' window.
    let out = engine.process(
        &[InputEvent { time: T0 + 2 * SECOND, body: &quiet }, InputEvent { time: T0 + MINUTE, body: &quiet }],
        host + 6 * MINUTE,
    );
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].index, 0);
    assert_eq!(
        out.rejected[0].reason,
        r#"late event for m{s="quiet"} at 2026-11-22T10:00:02Z: its window 2026-11-22T10:00:00Z..2026-11-22T10:01:00Z was closed early after the series was idle for 5m"#
    );
    assert_eq!(out.windows.len(), 1);
    assert_eq!((out.windows[0].key.labels["s"].as_str(), out.windows[0].start), ("busy", T0));
    // The quiet series was seen again at host + 6m.
    assert!(engine.tick(host + 11 * MINUTE - 1).windows.is_empty());
    let out = engine.tick(host + 11 * MINUTE);
    assert_eq!(out.windows.len(), 1);
    assert_eq!((out.windows[0].key.labels["s"].as_str(), out.windows[0].start), ("quiet", T0 + MINUTE));
}

#[test]
fn late_events_are_dead_lettered_with_the_window_and_watermark() {
    let mut engine = Percentiles::new(config(json!({"window": "15m", "allowed_lateness": "1m"})));
    let b = body("latency_ms", 3.0, &[("op", "pay")]);
    let out = engine.process(
        &[
            InputEvent { time: T0 + 16 * MINUTE, body: &b },
            InputEvent { time: T0 + 14 * MINUTE, body: &b },
            InputEvent { time: T0 + 14 * MINUTE, body: &b },
        ],
        HOST,
    );
    // The watermark is 10:15 after the first event, so the window [10:00, 10:15) is closed.
    assert!(out.windows.is_empty(), "the window held no value, so nothing is emitted");
    assert_eq!(out.counters.late, 2);
    assert_eq!(
        out.rejected[0].reason,
        r#"late event for latency_ms{op="pay"} at 2026-11-22T10:14:00Z: its window 2026-11-22T10:00:00Z..2026-11-22T10:15:00Z closed when the watermark reached 2026-11-22T10:15:00Z (allowed_lateness 1m)"#
    );
}

#[test]
fn dropped_late_events_are_counted_not_rejected() {
    let mut engine = Percentiles::new(config(json!({"window": "1m", "late": "drop"})));
    let b = body("m", 3.0, &[]);
    let out =
        engine.process(&[InputEvent { time: T0 + 2 * MINUTE, body: &b }, InputEvent { time: T0, body: &b }], HOST);
    assert!(out.rejected.is_empty());
    assert_eq!(out.counters.late, 1);
    assert_eq!(out.counters.dropped_late, 1, "reported to the host as a drop");
    assert_eq!(out.counters.accepted, 1);
}

#[test]
fn dead_lettered_late_events_are_no_drop() {
    let mut engine = Percentiles::new(config(json!({"window": "1m"})));
    let b = body("m", 3.0, &[]);
    let out =
        engine.process(&[InputEvent { time: T0 + 2 * MINUTE, body: &b }, InputEvent { time: T0, body: &b }], HOST);
    assert_eq!((out.rejected.len(), out.counters.late, out.counters.dropped_late), (1, 1, 0));
}

#[test]
fn counters_tell_the_open_windows_and_series_through_ticks_and_handovers() {
    for text in [
        json!({"window": "1m", "allowed_lateness": "10s", "idle_timeout": "5m"}),
        json!({"window": "3m", "step": "1m", "allowed_lateness": "20s", "idle_timeout": "2m"}),
    ] {
        let events = mixed_stream(5, 3000);
        let mut engine = Percentiles::new(config(text.clone()));
        let mut run = Run::default();
        for (i, chunk) in events.chunks(40).enumerate() {
            feed(&mut engine, chunk, 40, HOST, &mut run, 0);
            run.check_open(&engine, &format!("after batch {i} of {text}"));
            if i % 10 == 9 {
                // Ticks at host times that make some series idle.
                let now = chunk.last().unwrap().0 + 4 * MINUTE;
                run.absorb(engine.tick(now), 0);
                run.check_open(&engine, &format!("after a tick at batch {i} of {text}"));
            }
            if i % 25 == 24 {
                // A reload's handover: the old instance hands over, the new takes on.
                run.add(&engine.handed_over());
                let bytes = engine.snapshot();
                engine = Percentiles::new(config(text.clone()));
                engine.restore(&bytes).unwrap();
                run.add(&engine.taken_over());
                run.check_open(&engine, &format!("after a handover at batch {i} of {text}"));
            }
        }
        assert!(run.counters.windows_opened > 100 && engine.open_windows() > 0, "{:?}", run.counters);
        run.absorb(engine.tick(i64::MAX), 0);
        run.check_open(&engine, "at the end of time");
        assert_eq!(engine.open_windows(), 0);
        assert_eq!(run.counters.windows_emitted, run.windows.len() as u64);
    }
}

#[test]
fn hopping_events_partly_late_are_recorded_for_the_open_windows() {
    let mut engine = Percentiles::new(config(json!({"window": "3m", "step": "1m"})));
    let b = body("m", 3.0, &[]);
    let out = engine.process(
        &[InputEvent { time: T0 + 2 * MINUTE, body: &b }, InputEvent { time: T0 + 30 * SECOND, body: &b }],
        HOST,
    );
    // Watermark 10:02 closes the windows ending by 10:02: of those holding
    // 10:00:30, [09:58, 10:01) and [09:59, 10:02) are closed, [10:00, 10:03) open.
    assert_eq!(out.counters.partially_late, 1);
    assert!(out.rejected.is_empty());
    let windows = engine.tick(i64::MAX).windows;
    let counts: Vec<(i64, u64)> = windows.iter().map(|w| ((w.start - T0) / MINUTE, w.stats.count)).collect();
    assert_eq!(counts, [(0, 2), (1, 1), (2, 1)]);
}

#[test]
fn the_series_cap_refuses_new_series_and_logs_once_per_episode() {
    let mut engine = Percentiles::new(config(json!({"window": "1m", "max_series": 2})));
    let series = |s: &str| body("m", 1.0, &[("s", s)]);
    let (a, b, c, d) = (series("a"), series("b"), series("c"), series("d"));
    let out = engine.process(
        &[
            InputEvent { time: T0, body: &a },
            InputEvent { time: T0, body: &b },
            InputEvent { time: T0, body: &c },
            InputEvent { time: T0, body: &d },
            InputEvent { time: T0, body: &a },
        ],
        HOST,
    );
    assert_eq!(out.counters.series_cap, 2);
    assert_eq!(out.counters.accepted, 3);
    let indices: Vec<u32> = out.rejected.iter().map(|r| r.index).collect();
    assert_eq!(indices, [2, 3]);
    assert_eq!(out.rejected[0].reason, r#"series cap of 2 reached: new series m{s="c"} refused (max_series)"#);
    assert_eq!(out.logs.len(), 1, "{:?}", out.logs);
    assert_eq!(out.logs[0].0, LogLevel::Warn);

    let out = engine.process(&[InputEvent { time: T0, body: &c }], HOST);
    assert!(out.logs.is_empty(), "no second log line in the same episode");

    // Closing the windows frees series b; the episode ends with one line.
    let out = engine.process(&[InputEvent { time: T0 + MINUTE, body: &a }], HOST);
    assert_eq!(out.windows.len(), 2);
    assert_eq!(out.logs.len(), 1);
    assert!(out.logs[0].1.contains("3 records of new series were refused"), "{:?}", out.logs);
    let out = engine.process(&[InputEvent { time: T0 + MINUTE, body: &c }], HOST);
    assert_eq!(out.counters.accepted, 1);
}

#[test]
fn out_of_range_and_malformed_values_are_rejected_and_counted() {
    let mut engine = Percentiles::new(config(json!({"window": "1m", "lowest": 1, "highest": 1000})));
    let ok = body("m", 1000.0, &[]);
    let high = body("m", 1000.5, &[]);
    let low = body("m", 0.0, &[]);
    let text = br#"{"metric":"m","value":"fast"}"#;
    let out = engine.process(
        &[
            InputEvent { time: T0, body: &ok },
            InputEvent { time: T0, body: &high },
            InputEvent { time: T0, body: &low },
            InputEvent { time: T0, body: text },
        ],
        HOST,
    );
    assert_eq!(out.counters.accepted, 1);
    assert_eq!(out.counters.out_of_range, 2);
    assert_eq!(out.counters.invalid, 1);
    assert_eq!(out.rejected[0].reason, "value 1000.5 of m is outside the accepted range [1, 1000] (lowest, highest)");
    assert_eq!(out.rejected[2].reason, r#"field "value" of metric "m" is not a number (got "fast")"#);
}

#[test]
fn emitted_bodies_are_json_with_every_field() {
    let cfg = config(json!({"window": "15m"}));
    let quantiles = cfg.quantiles.clone();
    let mut engine = Percentiles::new(cfg);
    let events: Vec<Vec<u8>> = (1..=100).map(|v| body("latency_ms", f64::from(v), &[("op", "pay")])).collect();
    let inputs: Vec<InputEvent<'_>> = events.iter().map(|b| InputEvent { time: T0 + 15 * MINUTE, body: b }).collect();
    engine.process(&inputs, HOST);
    let out = engine.tick(i64::MAX);
    let parsed: serde_json::Value = serde_json::from_slice(&output::body(&out.windows[0], &quantiles)).unwrap();
    assert_eq!(
        parsed,
        json!({"window_start": "2026-11-22T10:15:00Z", "window_end": "2026-11-22T10:30:00Z", "metric": "latency_ms",
               "labels": {"op": "pay"}, "count": 100, "min": 1, "max": 100, "mean": 50.5,
               "p50": 50, "p75": 75, "p90": 90, "p95": 95, "p99": 99})
    );
}
