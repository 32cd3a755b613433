//! The windowing state machine, pure: series, their open panes, the
//! watermark, and what `process` and `tick` emit, reject and count. It takes
//! the host clock as a parameter and returns counters and log lines instead
//! of calling the host, so native tests drive it directly; `lib.rs` owns the
//! WIT glue. Snapshots are `snapshot`'s, window geometry is `window`'s.
//!
//! Semantics, in one place:
//! - The watermark is the largest event time of any recorded value, capped
//!   at the host clock of the call that recorded it, minus
//!   `allowed_lateness`; it never goes back, across restores included. The
//!   cap is why one device whose clock is fast cannot close the windows every
//!   other device is still filling: data can say how late it is, never how
//!   late it is for everyone else.
//! - An event more than `max_future` ahead of the host clock is refused
//!   (counted `future`, dead-lettered with the reason): a wrong clock, whose
//!   value would sit in a window no one else reaches and, flushed when idle,
//!   close its series' windows ahead of time.
//! - A value the histogram cannot hold to its significant digits (below the
//!   smallest normal `f64`) is refused (counted `unrepresentable`), never
//!   rounded.
//! - A window closes when the watermark reaches its end. Closing is checked
//!   after every recorded value, so the output does not depend on how input
//!   is cut into batches.
//! - An event is late when every window holding it has closed; it is counted
//!   (`late`) and rejected or dropped per `late`. With hopping windows, an
//!   event some of whose windows have closed is recorded for the open ones
//!   and counted as `partially_late`.
//! - `tick` closes every window of a series that has had no event for
//!   `idle_timeout` of host-clock time, early, up to the windows ending by
//!   the host clock (later ones, of events within `max_future`, wait for
//!   it); that series' later events for those windows are then late.
//! - Series with no open pane are forgotten, so `max_series` caps the series
//!   with open windows, not every series ever seen.
//! - A window is open from its series' first value in it until it is
//!   emitted. Counters say how many are open without a gauge: open windows
//!   = `windows_opened` - `windows_closed`, open series = `series_opened` -
//!   `series_forgotten`. A snapshot hands every open window and series over
//!   ([`Percentiles::handed_over`]: closed and forgotten by this instance)
//!   and a restore takes them on ([`Percentiles::taken_over`]: opened), so
//!   the differences hold across reloads and restarts.
//! - All of this is per instance. Partitioned by series on several workers
//!   (`partition_by`), an instance's watermark is that of its own series,
//!   at most the single instance's; the README's "Workers" says what that
//!   changes.

use std::collections::{BTreeMap, BTreeSet};

use weir_plugin_sdk::json::{self, rfc3339};
use weir_plugin_sdk::{InputEvent, duration};

use crate::config::{LatePolicy, PercentilesConfig};
use crate::histogram::{Precision, Sample};
use crate::metric::{Keys, SeriesKey};
use crate::pane::{Pane, WindowStats};
use crate::window::Windows;

#[cfg(test)]
mod tests;

/// The figures of one series over one closed window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRecord {
    /// Window start, ns since the epoch (inclusive).
    pub start: i64,
    /// Window end, ns since the epoch (exclusive).
    pub end: i64,
    /// The series.
    pub key: SeriesKey,
    /// Count, min, max, mean and quantiles.
    pub stats: WindowStats,
}

/// An input record refused, with the reason the host dead-letters it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index in the batch.
    pub index: u32,
    /// What was wrong and where.
    pub reason: String,
}

/// Counter deltas of one call, added to the host's counters once per call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Values recorded.
    pub accepted: u64,
    /// Records without a usable metric, value or labels.
    pub invalid: u64,
    /// Values outside `[lowest, highest]`.
    pub out_of_range: u64,
    /// Values the histogram cannot hold to its significant digits.
    pub unrepresentable: u64,
    /// Events more than `max_future` ahead of the host clock.
    pub future: u64,
    /// Events all of whose windows had closed.
    pub late: u64,
    /// Events recorded although some of their (hopping) windows had closed.
    pub partially_late: u64,
    /// Records of new series refused by `max_series`.
    pub series_cap: u64,
    /// Window records emitted.
    pub windows_emitted: u64,
    /// Series whose windows `tick` closed early for idleness.
    pub idle_closed: u64,
    /// Late events consumed under `late: drop` (also counted in `late`);
    /// the host counts them as dropped records.
    pub dropped_late: u64,
    /// Windows that received their series' first value in them, or were
    /// taken over from a snapshot.
    pub windows_opened: u64,
    /// Windows emitted, or handed over in a snapshot.
    pub windows_closed: u64,
    /// Series that started (or were taken over from a snapshot).
    pub series_opened: u64,
    /// Series forgotten once they had no open window (or handed over in a
    /// snapshot).
    pub series_forgotten: u64,
}

impl Counters {
    /// `(host counter name, delta)` for every counter.
    pub fn by_name(&self) -> [(&'static str, u64); 15] {
        [
            ("accepted", self.accepted),
            ("invalid", self.invalid),
            ("out_of_range", self.out_of_range),
            ("unrepresentable", self.unrepresentable),
            ("future", self.future),
            ("late", self.late),
            ("partially_late", self.partially_late),
            ("series_cap", self.series_cap),
            ("windows_emitted", self.windows_emitted),
            ("idle_closed", self.idle_closed),
            ("dropped_late", self.dropped_late),
            ("windows_opened", self.windows_opened),
            ("windows_closed", self.windows_closed),
            ("series_opened", self.series_opened),
            ("series_forgotten", self.series_forgotten),
        ]
    }
}

/// Severity of a log line for the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Worth knowing, no action.
    Info,
    /// Data is being refused; an operator may want to act.
    Warn,
}

/// What one `process` or `tick` call produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Closed windows, by window end, then series.
    pub windows: Vec<WindowRecord>,
    /// Refused input records.
    pub rejected: Vec<Rejection>,
    /// Counter deltas.
    pub counters: Counters,
    /// Log lines for the host.
    pub logs: Vec<(LogLevel, String)>,
}

/// One series' open panes.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Open panes by start.
    pub(crate) panes: BTreeMap<i64, Pane>,
    /// Host clock at this series' last recorded value.
    pub(crate) last_seen: i64,
    /// Set when `tick` closed this series' windows early: every window
    /// ending at or before it is closed for this series.
    pub(crate) flushed_through: Option<i64>,
}

impl Series {
    /// Ends of the windows this series still has to emit: those of its
    /// panes past what is closed for it (`closed`, or its idle flush).
    fn open_window_ends(&self, windows: Windows, closed: Option<i64>) -> BTreeSet<i64> {
        let boundary = closed.max(self.flushed_through);
        self.panes
            .keys()
            .flat_map(|&pane| windows.ends_of_pane(pane))
            .filter(|&end| boundary.is_none_or(|b| end > b))
            .collect()
    }

    /// How many windows a new pane at `pane` opens: those of its windows
    /// not closed yet and holding no other pane of the series.
    fn opened_by(&self, windows: Windows, closed: Option<i64>, pane: i64) -> u64 {
        let boundary = closed.max(self.flushed_through);
        windows
            .ends_of_pane(pane)
            .filter(|&end| boundary.is_none_or(|b| end > b))
            .filter(|&end| self.panes.range(end - windows.size..end).next().is_none())
            .count() as u64
    }
}

/// The filter's state that rules one record (lateness, panes), borrowed
/// apart from the series map so that a series can be checked and recorded
/// into while it is held.
struct RecordContext<'c> {
    config: &'c PercentilesConfig,
    windows: Windows,
    precision: Precision,
    closed: Option<i64>,
    watermark: Option<i64>,
}

impl RecordContext<'_> {
    /// Record `sample` at event time `t` (host clock `now`) into `series`,
    /// counting the windows a new pane opens.
    fn record(
        &self,
        series: &mut Series,
        t: i64,
        sample: Sample,
        now: i64,
        partially_late: bool,
        counters: &mut Counters,
    ) {
        let pane = self.windows.pane_start(t);
        if !series.panes.contains_key(&pane) {
            counters.windows_opened += series.opened_by(self.windows, self.closed, pane);
        }
        series.panes.entry(pane).or_insert_with(|| Pane::new(self.precision)).record(sample);
        series.last_seen = now;
        counters.accepted += 1;
        counters.partially_late += u64::from(partially_late);
    }

    /// Whether a value at `t` of series `key` (closed early through
    /// `flushed`, if idle) is on time: `Ok(partially_late)`, or `Err` with
    /// what `record` returns for a late one (dropped or dead-lettered, by
    /// the `late` policy), counted.
    fn check(
        &self,
        key: &SeriesKey,
        t: i64,
        flushed: Option<i64>,
        counters: &mut Counters,
    ) -> Result<bool, Result<(), String>> {
        let Some(boundary) = self.closed.max(flushed) else {
            return Ok(false);
        };
        if !self.windows.is_late(t, boundary) {
            return Ok(self.windows.is_partially_late(t, boundary));
        }
        counters.late += 1;
        Err(match self.config.late {
            LatePolicy::Drop => {
                counters.dropped_late += 1;
                Ok(())
            }
            LatePolicy::DeadLetter => Err(self.reason(key, t, boundary, flushed)),
        })
    }

    fn reason(&self, key: &SeriesKey, t: i64, boundary: i64, flushed: Option<i64>) -> String {
        let last_end = self.windows.last_end_of_pane(self.windows.pane_start(t));
        let last_start = last_end - self.windows.size;
        let which =
            if self.windows.size == self.windows.step { "its window" } else { "every window holding it, the last" };
        let closed_by_watermark = self.closed.is_some_and(|c| last_end <= c);
        let why = if flushed.is_some_and(|f| last_end <= f) && !closed_by_watermark {
            format!("was closed early after the series was idle for {}", duration::format(self.config.idle_timeout))
        } else {
            format!(
                "closed when the watermark reached {} (allowed_lateness {})",
                rfc3339(self.watermark.unwrap_or(boundary)),
                duration::format(self.config.allowed_lateness)
            )
        };
        format!("late event for {key} at {}: {which} {}..{} {why}", rfc3339(t), rfc3339(last_start), rfc3339(last_end))
    }
}

/// Tracks one stretch of time during which `max_series` refuses series, so
/// the host log gets one line when it starts and one when it ends, not one
/// per record.
#[derive(Debug, Clone, Default)]
struct CapEpisode {
    active: bool,
    refused: u64,
}

/// The filter's state.
#[derive(Debug, Clone)]
pub struct Percentiles {
    pub(crate) config: PercentilesConfig,
    pub(crate) windows: Windows,
    pub(crate) precision: Precision,
    pub(crate) series: BTreeMap<SeriesKey, Series>,
    /// Largest event time of a recorded value, each capped at the host
    /// clock of its call.
    pub(crate) max_event_time: Option<i64>,
    /// Every window ending at or before this has closed (for every series).
    pub(crate) closed: Option<i64>,
    cap: CapEpisode,
}

impl Percentiles {
    /// A filter with no state.
    pub fn new(config: PercentilesConfig) -> Self {
        let windows = Windows { size: config.window, step: config.step };
        let precision = Precision::new(config.significant_digits);
        Self {
            config,
            windows,
            precision,
            series: BTreeMap::new(),
            max_event_time: None,
            closed: None,
            cap: CapEpisode::default(),
        }
    }

    /// The config in force.
    pub fn config(&self) -> &PercentilesConfig {
        &self.config
    }

    /// Windows opened and not yet emitted, over every series.
    pub fn open_windows(&self) -> u64 {
        self.series.values().map(|s| s.open_window_ends(self.windows, self.closed).len() as u64).sum()
    }

    /// What a snapshot hands over, counted by the instance that takes it:
    /// every open window closed and every series forgotten here.
    pub fn handed_over(&self) -> Counters {
        Counters {
            windows_closed: self.open_windows(),
            series_forgotten: self.series.len() as u64,
            ..Counters::default()
        }
    }

    /// What a restore took on: every open window and series opened here.
    pub fn taken_over(&self) -> Counters {
        Counters { windows_opened: self.open_windows(), series_opened: self.series.len() as u64, ..Counters::default() }
    }

    /// The watermark: largest recorded event time (capped at the host clock)
    /// minus allowed lateness.
    pub fn watermark(&self) -> Option<i64> {
        self.max_event_time.map(|t| t.saturating_sub(self.config.allowed_lateness))
    }

    /// Record a batch of metric records, with `now` the host clock. Windows
    /// the batch closes are emitted in the outcome.
    pub fn process(&mut self, events: &[InputEvent<'_>], now: i64) -> Outcome {
        let mut out = Outcome::default();
        let mut keys = Keys::default();
        for (i, event) in events.iter().enumerate() {
            let index = u32::try_from(i).expect("a WIT list holds at most u32::MAX events");
            if let Err(reason) = self.record(&mut keys, event, now, &mut out) {
                out.rejected.push(Rejection { index, reason });
            }
        }
        out
    }

    /// Record one event; `Ok` also covers late events dropped by policy.
    fn record<'a>(
        &mut self,
        keys: &mut Keys<'a>,
        event: &InputEvent<'a>,
        now: i64,
        out: &mut Outcome,
    ) -> Result<(), String> {
        let (key, value) = keys.read(event.body).inspect_err(|_| out.counters.invalid += 1)?;
        let (lowest, highest) = (self.config.lowest, self.config.highest);
        if !(lowest..=highest).contains(&value) {
            out.counters.out_of_range += 1;
            return Err(format!(
                "value {} of {key} is outside the accepted range [{}, {}] (lowest, highest)",
                json::number(value),
                json::number(lowest),
                json::number(highest)
            ));
        }

        let sample = Sample::new(value).map_err(|why| {
            out.counters.unrepresentable += 1;
            format!("value {} of {key} {why}", json::number(value))
        })?;

        let t = event.time;
        if t.saturating_sub(now) > self.config.max_future {
            out.counters.future += 1;
            // Whole seconds: nanoseconds of a wrong clock say nothing.
            let ahead = t.saturating_sub(now);
            return Err(format!(
                "future event for {key} at {}: {} ahead of the host clock {}, more than max_future {}",
                rfc3339(t),
                duration::format(ahead - ahead % 1_000_000_000),
                rfc3339(now),
                duration::format(self.config.max_future)
            ));
        }

        // A known series is searched once (a second BTreeMap search compared
        // its labels again, BENCHMARKS.md); a new one once more to insert it.
        let watermark = self.watermark();
        let context = RecordContext {
            config: &self.config,
            windows: self.windows,
            precision: self.precision,
            closed: self.closed,
            watermark,
        };
        if let Some(series) = self.series.get_mut(key) {
            let partially_late = match context.check(key, t, series.flushed_through, &mut out.counters) {
                Ok(partially_late) => partially_late,
                Err(late) => return late,
            };
            context.record(series, t, sample, now, partially_late, &mut out.counters);
        } else {
            let partially_late = match context.check(key, t, None, &mut out.counters) {
                Ok(partially_late) => partially_late,
                Err(late) => return late,
            };
            if self.series.len() >= self.config.max_series {
                out.counters.series_cap += 1;
                let max = self.config.max_series;
                self.cap.refused += 1;
                if !self.cap.active {
                    self.cap.active = true;
                    out.logs.push((
                        LogLevel::Warn,
                        format!(
                            "series cap of {max} reached: refusing new series, starting with {key}, until open windows close (raise max_series or drop high-cardinality labels)"
                        ),
                    ));
                }
                return Err(format!("series cap of {max} reached: new series {key} refused (max_series)"));
            }
            out.counters.series_opened += 1;
            let series = self.series.entry(key.clone()).or_insert(Series {
                panes: BTreeMap::new(),
                last_seen: now,
                flushed_through: None,
            });
            context.record(series, t, sample, now, partially_late, &mut out.counters);
        }

        let capped = t.min(now);
        let max = self.max_event_time.map_or(capped, |m| m.max(capped));
        self.max_event_time = Some(max);
        let boundary = self.windows.closed_boundary(max.saturating_sub(self.config.allowed_lateness));
        if self.closed.is_none_or(|c| boundary > c) {
            let previous = self.closed.replace(boundary);
            self.close(previous, boundary, out);
        }
        Ok(())
    }

    /// Emit the windows ending in `(previous, boundary]` and drop the panes no
    /// open window needs.
    fn close(&mut self, previous: Option<i64>, boundary: i64, out: &mut Outcome) {
        let mut emitted = Vec::new();
        let windows = self.windows;
        let config = &self.config;
        let before = self.series.len();
        self.series.retain(|key, series| {
            let already = previous.max(series.flushed_through);
            let target = boundary.max(series.flushed_through.unwrap_or(i64::MIN));
            if already.is_none_or(|a| target > a) {
                emit(config, windows, key, series, already, target, &mut emitted);
            }
            series.panes.retain(|&start, _| windows.last_end_of_pane(start) > target);
            !series.panes.is_empty() || series.flushed_through.is_some_and(|f| f > boundary)
        });
        out.counters.series_forgotten += (before - self.series.len()) as u64;
        self.finish(emitted, out);
    }

    /// Close the windows of every series idle for `idle_timeout` at host
    /// time `now`, up to those ending by `now`: a window a fast clock opened
    /// ahead of the host clock waits for the clock, so flushing it early
    /// cannot close its series' windows ahead of time.
    pub fn tick(&mut self, now: i64) -> Outcome {
        let mut out = Outcome::default();
        let mut emitted = Vec::new();
        let windows = self.windows;
        let config = &self.config;
        let closed = self.closed;
        for (key, series) in &mut self.series {
            let Some(&last_pane) = series.panes.keys().next_back() else {
                continue;
            };
            if now.saturating_sub(series.last_seen) < config.idle_timeout {
                continue;
            }
            let already = closed.max(series.flushed_through);
            let target = windows.last_end_of_pane(last_pane).min(windows.closed_boundary(now));
            if already.is_some_and(|a| target <= a) {
                continue;
            }
            emit(config, windows, key, series, already, target, &mut emitted);
            series.panes.retain(|&start, _| windows.last_end_of_pane(start) > target);
            series.flushed_through = Some(target.max(already.unwrap_or(i64::MIN)));
            out.counters.idle_closed += 1;
        }
        if out.counters.idle_closed > 0 {
            out.logs.push((
                LogLevel::Info,
                format!(
                    "closed the windows of {} series idle for {} or more, before the watermark reached them",
                    out.counters.idle_closed,
                    duration::format(config.idle_timeout)
                ),
            ));
        }
        let before = self.series.len();
        self.series
            .retain(|_, s| !s.panes.is_empty() || s.flushed_through.is_some_and(|f| closed.is_none_or(|c| f > c)));
        out.counters.series_forgotten += (before - self.series.len()) as u64;
        self.finish(emitted, &mut out);
        out
    }

    /// Order the emitted windows by end (series order is kept within an
    /// end), count them, and end a series-cap episode once there is room.
    fn finish(&mut self, mut emitted: Vec<WindowRecord>, out: &mut Outcome) {
        emitted.sort_by_key(|w| w.end);
        out.counters.windows_emitted += emitted.len() as u64;
        out.counters.windows_closed += emitted.len() as u64;
        out.windows.extend(emitted);
        if self.cap.active && self.series.len() < self.config.max_series {
            out.logs.push((
                LogLevel::Info,
                format!(
                    "series cap of {} no longer reached: {} records of new series were refused meanwhile",
                    self.config.max_series, self.cap.refused
                ),
            ));
            self.cap = CapEpisode::default();
        }
    }
}

/// Emit, for one series, each window ending in `(already, target]` that holds
/// at least one of its values, earliest first.
fn emit(
    config: &PercentilesConfig,
    windows: Windows,
    key: &SeriesKey,
    series: &Series,
    already: Option<i64>,
    target: i64,
    out: &mut Vec<WindowRecord>,
) {
    let ends: BTreeSet<i64> = series
        .panes
        .keys()
        .flat_map(|&pane| windows.ends_of_pane(pane))
        .filter(|&end| already.is_none_or(|a| end > a) && end <= target)
        .collect();
    for end in ends {
        let start = end - windows.size;
        let mut panes = series.panes.range(start..end).map(|(_, pane)| pane);
        let first = panes.next().expect("an end comes from a pane inside its window");
        let stats = match panes.next() {
            None => first.stats(&config.quantiles),
            Some(second) => {
                let mut merged = first.clone();
                merged.merge(second);
                panes.for_each(|pane| merged.merge(pane));
                merged.stats(&config.quantiles)
            }
        };
        out.push(WindowRecord { start, end, key: key.clone(), stats });
    }
}
