//! The state of one component instance: set by `configure`, used by every
//! later call, and, for a filter that keeps nothing between calls, the
//! `tick`, `snapshot` and `restore` that say so ([`crate::stateless!`]). A
//! component instance is single-threaded; the mutex is there only because a
//! `static` must be `Sync`. What the state is (a config, a running engine)
//! is each filter's.

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

/// The `tick`, `snapshot` and `restore` of a filter whose instance keeps
/// nothing between calls but its config: no timers, an empty snapshot, and
/// nothing to take back on restore (a reload reconfigures it anyway).
///
/// Write it inside the plugin's `impl Guest for …`. It expands there, so it
/// names that plugin's own generated `Event` and `Timestamp`: this crate
/// still has no bindings.
#[macro_export]
macro_rules! stateless {
    () => {
        fn tick(_now: Timestamp) -> Vec<Event> {
            Vec::new()
        }

        fn snapshot() -> Vec<u8> {
            Vec::new()
        }

        fn restore(_state: Vec<u8>) -> Result<(), String> {
            Ok(())
        }
    };
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

    /// The shape of a plugin's generated `Guest` trait, as far as
    /// `stateless!` fills it in.
    mod bindings {
        pub type Timestamp = i64;
        pub struct Event;
        pub trait Guest {
            fn tick(now: Timestamp) -> Vec<Event>;
            fn snapshot() -> Vec<u8>;
            fn restore(state: Vec<u8>) -> Result<(), String>;
        }
    }

    #[test]
    fn a_stateless_filter_has_no_timers_and_an_empty_snapshot() {
        use bindings::{Event, Guest, Timestamp};
        struct Filter;
        impl Guest for Filter {
            crate::stateless!();
        }
        assert!(Filter::tick(1_700_000_000_000_000_000).is_empty());
        assert!(Filter::snapshot().is_empty());
        assert_eq!(Filter::restore(b"anything".to_vec()), Ok(()));
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
