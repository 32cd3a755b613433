//! Per-plugin limits and grants: a deadline per call (enforced by epoch
//! interruption), a memory cap (enforced by a resource limiter that records
//! why it refused), and what the plugin may reach beyond the contract.

use std::path::PathBuf;
use std::time::Duration;

/// How often the engine's epoch advances. Deadlines are rounded up to it;
/// 10 ms is Spin's choice and costs nothing measurable.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits on one filter instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest one call may run.
    pub deadline: Duration,
    /// Largest any linear memory may grow, in bytes.
    pub memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // A 1,000-record batch takes milliseconds; a second means a loop.
            deadline: Duration::from_secs(1),
            // Room for many open windows of HDR histograms, yet a runaway
            // plugin cannot take the machine.
            memory: 256 << 20,
        }
    }
}

impl Limits {
    /// The deadline in epoch ticks, rounded up, plus one because the
    /// current tick may be nearly over.
    pub fn deadline_ticks(&self) -> u64 {
        let ticks = self.deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
        u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
    }
}

/// What a plugin may reach beyond the contract. Nothing by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Environment variables visible to it (name, value).
    pub env: Vec<(String, String)>,
    /// Host folders it may open.
    pub dirs: Vec<DirGrant>,
    /// Whether WASI's wall clock shows real time; otherwise it shows the host clock.
    pub wall_clock: bool,
    /// Whether it may open sockets.
    pub network: bool,
}

/// A host folder visible to a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The folder on the host.
    pub host: PathBuf,
    /// Where the plugin sees it.
    pub guest: String,
    /// Whether it may write there.
    pub writable: bool,
}

/// Caps linear memory growth and remembers that it did, so a trap can be
/// reported as "memory cap exceeded" rather than a bare `unreachable`.
#[derive(Debug)]
pub struct MemoryCap {
    limit: u64,
    hit: bool,
}

impl MemoryCap {
    /// A cap of `limit` bytes per memory.
    pub fn new(limit: u64) -> Self {
        MemoryCap { limit, hit: false }
    }

    /// Whether growth was refused since the last call; resets the flag.
    pub fn take_hit(&mut self) -> bool {
        std::mem::take(&mut self.hit)
    }
}

/// Table growth beyond this is a runaway plugin, not a real need.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.hit = true;
            // An error (rather than `false`) traps at once instead of letting
            // the guest's allocator fail in some less legible way.
            return Err(wasmtime::format_err!("memory cap of {} bytes exceeded", self.limit));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks() {
        let l = |ms| Limits { deadline: Duration::from_millis(ms), memory: 0 }.deadline_ticks();
        assert_eq!(l(10), 2);
        assert_eq!(l(11), 3);
        assert_eq!(l(1000), 101);
    }
}
