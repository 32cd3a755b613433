//! State handover between two instances of a filter across a reload:
//! `snapshot()` on the running one, `restore()` on its successor. The old
//! instance is left as it was, so a failed handover changes nothing.

use super::{FilterInstance, PluginError};

/// Move `old`'s state into `new`. On error `old` keeps running untouched.
pub fn hand_over(old: &mut FilterInstance, new: &mut FilterInstance) -> Result<(), PluginError> {
    let state = old.snapshot()?;
    new.restore(&state)
}
