//! The state of one component instance: the [`Filter`](crate::Filter) value
//! `configure` builds, used by every later call. [`crate::export_filter!`]
//! keeps it in a `static`. A component instance is single-threaded; the
//! mutex is there only because a `static` must be `Sync`. What the state is
//! (a config, a running engine) is each filter's.

use std::sync::{Mutex, PoisonError};

/// A filter instance's state; empty until `configure` succeeds.
#[derive(Debug)]
pub struct InstanceState<T> {
    slot: Mutex<Option<T>>,
}

impl<T> InstanceState<T> {
    /// An instance not configured yet; `const` so it can be a `static`.
    pub const fn new() -> Self {
        Self { slot: Mutex::new(None) }
    }

    /// Install what `configure` built, replacing any earlier state.
    pub fn set(&self, state: T) {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(state);
    }

    /// Run `f` on the state; `None` when `configure` has not succeeded yet.
    /// A poisoned lock is taken over: a panic in a guest is a trap, after
    /// which the host replaces the instance with a fresh one anyway.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner).as_mut().map(f)
    }
}

impl<T> Default for InstanceState<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_before_configure_find_no_state() {
        static STATE: InstanceState<u32> = InstanceState::new();
        assert_eq!(STATE.with(|n| *n), None);
        STATE.set(1);
        assert_eq!(STATE.with(|n| *n), Some(1));
    }

    #[test]
    fn configure_again_replaces_the_state() {
        let state = InstanceState::default();
        state.set(1);
        state.with(|n| *n += 1);
        assert_eq!(state.with(|n| *n), Some(2));
        state.set(7);
        assert_eq!(state.with(|n| *n), Some(7));
    }
}
