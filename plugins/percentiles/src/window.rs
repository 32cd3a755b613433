//! Window arithmetic, pure: epoch-aligned `[start, end)` windows of `size`
//! starting every `step`, made of step-sized panes. It owns which window and
//! pane an event time falls in and when a window counts as closed; it holds
//! no data.
//!
//! Tumbling windows are the case `step == size`. A window closes when the
//! watermark reaches its end (`watermark >= end`), as in Arroyo and Flink: an
//! event exactly at `end` belongs to the next window. Window ends are
//! multiples of `step`, so the closed windows are summed up by one boundary,
//! the largest multiple of `step` at or below the watermark.

/// Window geometry, in nanoseconds. `step` divides `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Window length.
    pub size: i64,
    /// Distance between consecutive window starts, and the pane length.
    pub step: i64,
}

impl Windows {
    /// Start of the pane holding event time `t`.
    pub fn pane_start(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.step)
    }

    /// The boundary summing up which windows are closed at `watermark`:
    /// exactly those with `end <= boundary`.
    pub fn closed_boundary(&self, watermark: i64) -> i64 {
        self.pane_start(watermark)
    }

    /// Starts of every window holding event time `t`, earliest first:
    /// `size / step` of them.
    pub fn starts_containing(&self, t: i64) -> impl Iterator<Item = i64> + use<> {
        let pane = self.pane_start(t);
        let step = self.step;
        let first = pane.saturating_sub(self.size - step);
        (0..self.size / step).map(move |i| first.saturating_add(i * step))
    }

    /// Ends of every window holding the pane starting at `pane`, earliest
    /// first: `pane + step`, ..., `pane + size`.
    pub fn ends_of_pane(&self, pane: i64) -> impl Iterator<Item = i64> + use<> {
        let step = self.step;
        (1..=self.size / step).map(move |i| pane.saturating_add(i * step))
    }

    /// The end of the last window holding `pane`; once that window is
    /// closed, the pane can go.
    pub fn last_end_of_pane(&self, pane: i64) -> i64 {
        pane.saturating_add(self.size)
    }

    /// Whether every window holding event time `t` is closed at `boundary`.
    pub fn is_late(&self, t: i64, boundary: i64) -> bool {
        self.last_end_of_pane(self.pane_start(t)) <= boundary
    }

    /// Whether some, but not all, windows holding `t` are closed at
    /// `boundary` (hopping windows only).
    pub fn is_partially_late(&self, t: i64, boundary: i64) -> bool {
        let pane = self.pane_start(t);
        pane.saturating_add(self.step) <= boundary && !self.is_late(t, boundary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MINUTE: i64 = 60_000_000_000;

    fn geometry() -> impl Strategy<Value = Windows> {
        (1i64..=12, 1i64..=6).prop_map(|(panes, step_minutes)| Windows {
            size: panes * step_minutes * MINUTE,
            step: step_minutes * MINUTE,
        })
    }

    #[test]
    fn an_event_exactly_at_a_window_end_belongs_to_the_next_window() {
        let w = Windows { size: 15 * MINUTE, step: 15 * MINUTE };
        assert_eq!(w.starts_containing(15 * MINUTE).collect::<Vec<_>>(), [15 * MINUTE]);
        assert_eq!(w.starts_containing(15 * MINUTE - 1).collect::<Vec<_>>(), [0]);
        assert_eq!(w.starts_containing(-1).collect::<Vec<_>>(), [-15 * MINUTE]);
    }

    #[test]
    fn hopping_windows_hold_an_event_in_size_over_step_windows() {
        let w = Windows { size: 15 * MINUTE, step: 5 * MINUTE };
        assert_eq!(w.starts_containing(12 * MINUTE).collect::<Vec<_>>(), [0, 5 * MINUTE, 10 * MINUTE]);
    }

    #[test]
    fn a_window_closes_when_the_watermark_reaches_its_end() {
        let w = Windows { size: 15 * MINUTE, step: 15 * MINUTE };
        assert!(!w.is_late(0, w.closed_boundary(15 * MINUTE - 1)));
        assert!(w.is_late(0, w.closed_boundary(15 * MINUTE)));
        assert!(!w.is_late(15 * MINUTE, w.closed_boundary(15 * MINUTE)));
    }

    proptest! {
        #[test]
        fn every_window_holding_an_event_contains_it(w in geometry(), t in -1_000_000 * MINUTE..1_000_000 * MINUTE) {
            let starts: Vec<i64> = w.starts_containing(t).collect();
            prop_assert_eq!(starts.len() as i64, w.size / w.step);
            for s in &starts {
                prop_assert!(*s <= t && t < s + w.size, "{} not in [{}, {})", t, s, s + w.size);
                prop_assert_eq!(s.rem_euclid(w.step), 0);
            }
            // No other aligned window contains it.
            let before = starts[0] - w.step;
            let after = starts[starts.len() - 1] + w.step;
            prop_assert!(!(before <= t && t < before + w.size));
            prop_assert!(!(after <= t && t < after + w.size));
        }

        #[test]
        fn an_event_at_a_window_end_is_never_in_that_window(w in geometry(), k in -1000i64..1000) {
            let end = k * w.step + w.size;
            let start = end - w.size;
            prop_assert!(!w.starts_containing(end).any(|s| s == start));
            prop_assert!(w.starts_containing(end - 1).any(|s| s == start));
            prop_assert!(w.starts_containing(end).any(|s| s == end - w.size + w.step));
        }

        #[test]
        fn pane_ends_are_the_ends_of_the_windows_holding_the_pane(w in geometry(), t in -1_000_000 * MINUTE..1_000_000 * MINUTE) {
            let ends: Vec<i64> = w.ends_of_pane(w.pane_start(t)).collect();
            let from_starts: Vec<i64> = w.starts_containing(t).map(|s| s + w.size).collect();
            prop_assert_eq!(ends, from_starts);
        }

        #[test]
        fn lateness_means_every_holding_window_has_closed(w in geometry(), t in -1000 * MINUTE..1000 * MINUTE, wm in -1000 * MINUTE..1000 * MINUTE) {
            let boundary = w.closed_boundary(wm);
            let closed: Vec<bool> = w.starts_containing(t).map(|s| s + w.size <= wm).collect();
            prop_assert_eq!(w.is_late(t, boundary), closed.iter().all(|c| *c));
            prop_assert_eq!(w.is_partially_late(t, boundary), closed.iter().any(|c| *c) && !closed.iter().all(|c| *c));
        }
    }
}
