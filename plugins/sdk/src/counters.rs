//! Handing one call's counter deltas to the host: once per call and counter,
//! never per record (house rule 11), and never for a counter that did not
//! move. Each filter keeps its own typed counts, one field per counter, which
//! its pure core fills and its tests read; this module owns only the
//! hand-over. The host call itself ([`crate::host::counter_add`]) is passed
//! in, so the hand-over tests natively.

/// Hand every counter that moved to `add` as `(name, delta)`, in the order
/// given. Zero deltas are skipped: they change no total, and each would cost
/// a call across the component boundary.
pub fn flush(deltas: impl IntoIterator<Item = (&'static str, u64)>, mut add: impl FnMut(&'static str, u64)) {
    for (name, delta) in deltas {
        if delta > 0 {
            add(name, delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_counters_that_moved_reach_the_host_in_order() {
        let mut added = Vec::new();
        flush([("records", 3), ("matched", 0), ("metrics", 2)], |name, delta| added.push((name, delta)));
        assert_eq!(added, [("records", 3), ("metrics", 2)]);
    }
}
