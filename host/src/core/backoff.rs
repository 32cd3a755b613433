//! Retry delays: exponential backoff with "equal jitter" (half fixed, half
//! random), so many outputs retrying at once spread out. Used by the output
//! driver for failed writes and by outputs with their own retry rounds
//! (Alertmanager's per-endpoint delivery).

use std::time::Duration;

/// First retry delay; doubled per attempt up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between retries: long enough not to hammer a struggling
/// server, short enough to notice recovery quickly.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The delay before retry number `attempt` (1-based), given `random` in
/// [0, 1]: between half and all of `FIRST_BACKOFF * 2^(attempt-1)`, capped
/// at [`MAX_BACKOFF`].
pub fn backoff(attempt: u32, random: f64) -> Duration {
    // 2^16 * 100 ms is far past the cap; the bound keeps the shift in range.
    let exp = FIRST_BACKOFF.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(MAX_BACKOFF);
    capped / 2 + capped.mul_f64(random.clamp(0.0, 1.0) / 2.0)
}

/// [`backoff`] with jitter from the clock's sub-second nanoseconds: spread
/// is all that matters here, not the quality of the randomness.
pub fn jittered(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    backoff(attempt, f64::from(nanos % 1_000_000) / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds_and_caps() {
        assert_eq!(backoff(1, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(30, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(30, 0.0), MAX_BACKOFF / 2);
    }

    #[test]
    fn jittered_stays_within_the_bounds() {
        let d = jittered(2);
        assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(200), "{d:?}");
    }
}
