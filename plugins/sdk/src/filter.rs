//! The [`Filter`] trait a plugin implements, and
//! [`export_filter!`](crate::export_filter!), which turns an implementation
//! into the component's exports: the WIT `Guest` impl, the per-instance
//! state that `configure` sets and later calls use, and the export symbols,
//! on `wasm32` only. What a filter does with its records is each plugin's.

use crate::config::ConfigError;
use crate::state::InstanceState;
use crate::wit::weir::filter::types;
use crate::{BatchResult, Event, Timestamp};

/// A filter plugin: one value per component instance, built by
/// [`configure`](Self::configure) and called for every later export.
///
/// A stateless filter implements `configure` and `process`; `tick`,
/// `snapshot` and `restore` default to "no timers, nothing to hand over".
/// [`export_filter!`](crate::export_filter!) makes the type the
/// component's exports.
pub trait Filter: Sized + Send + 'static {
    /// Build the instance from the filter's `config:` block, JSON text
    /// holding an object (the host sends `{}` when there is none). Called
    /// once, before any other call. Read it with [`crate::config::parse`];
    /// a [`ConfigError`] names the offending key, such as
    /// `rules[2].pattern`, and Weir refuses to start with it.
    fn configure(config: &str) -> Result<Self, ConfigError>;

    /// Transform a batch. Every emitted record names the index of its input
    /// event in `events` as `parent`; an input event that is neither a
    /// parent nor in `rejected` counts as consumed (delivered). An `Err`
    /// refuses the whole batch: the host dead-letters it with that reason.
    fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String>;

    /// Called periodically with the host clock (ns since the Unix epoch), so
    /// a time-driven filter (windows, alerts) can emit with no new input.
    /// The events have no parent. Default: nothing.
    fn tick(&mut self, now: Timestamp) -> Vec<Event> {
        let _ = now;
        Vec::new()
    }

    /// All state worth handing to the next instance across a reload or
    /// restart, in a format of the filter's own. Default: empty, for a
    /// filter that keeps nothing between calls but its config.
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Take over `state` from [`snapshot`](Self::snapshot) of an earlier
    /// instance, possibly of an earlier version of the filter; called after
    /// `configure`. An `Err` (a reason for the host's log) keeps the old
    /// instance running. Default: accept anything, as a reconfigured
    /// stateless filter has nothing to take over.
    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let _ = state;
        Ok(())
    }
}

/// Export `$filter`, a type implementing [`Filter`], as this component's
/// `weir:filter/plugin` interface. Write it once, at the root of the plugin
/// crate's `lib.rs`:
///
/// ```
/// use weir_plugin_sdk::{BatchResult, ConfigError, Emitted, Event, Filter};
///
/// /// Passes every record on unchanged.
/// struct Passthrough;
///
/// impl Filter for Passthrough {
///     fn configure(_config: &str) -> Result<Self, ConfigError> {
///         Ok(Self)
///     }
///
///     fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
///         let emitted = (0..).zip(events).map(|(index, event)| Emitted { parent: Some(index), event }).collect();
///         Ok(BatchResult { emitted, rejected: Vec::new() })
///     }
/// }
///
/// weir_plugin_sdk::export_filter!(Passthrough);
/// ```
///
/// The export symbols (`weir:filter/plugin@0.1.0#process`) exist only in the
/// `wasm32` build: a native linker cannot name them, and a native build of a
/// plugin exists only for its unit tests. A call other than `configure`
/// before `configure` succeeded is refused (or, for `tick` and `snapshot`,
/// answered with nothing).
#[cfg(not(feature = "fluent-bit"))]
#[macro_export]
macro_rules! export_filter {
    ($filter:ty) => {
        const _: () = {
            static INSTANCE: $crate::InstanceState<$filter> = $crate::InstanceState::new();

            struct Component;

            impl $crate::filter::__export::Guest for Component {
                fn configure(config: String) -> Result<(), $crate::filter::__export::ConfigError> {
                    $crate::filter::__export::configure(&INSTANCE, config)
                }
                fn process(events: Vec<$crate::Event>) -> Result<$crate::BatchResult, String> {
                    $crate::filter::__export::process(&INSTANCE, events)
                }
                fn tick(now: $crate::Timestamp) -> Vec<$crate::Event> {
                    $crate::filter::__export::tick(&INSTANCE, now)
                }
                fn snapshot() -> Vec<u8> {
                    $crate::filter::__export::snapshot(&INSTANCE)
                }
                fn restore(state: Vec<u8>) -> Result<(), String> {
                    $crate::filter::__export::restore(&INSTANCE, state)
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::wit::export! { Component with_types_in $crate::wit }

            // Natively nothing calls the exports; naming them here keeps the
            // filter from counting as dead code in a cdylib-only crate.
            #[cfg(not(target_arch = "wasm32"))]
            const _: fn(String) -> Result<(), $crate::filter::__export::ConfigError> =
                <Component as $crate::filter::__export::Guest>::configure;
        };
    };
}

/// With the SDK's `fluent-bit` feature, `export_filter!` exports
/// `weir_filter`, Fluent Bit's `filter_wasm` entry point, instead of the
/// component's interface (see [`crate::fluent_bit`]); the config is the
/// build's `WEIR_FLUENT_BIT_CONFIG` (JSON), `{}` when unset.
#[cfg(feature = "fluent-bit")]
#[macro_export]
macro_rules! export_filter {
    ($filter:ty) => {
        const _: () = {
            static INSTANCE: $crate::InstanceState<$filter> = $crate::InstanceState::new();

            /// Fluent Bit's `Function_Name weir_filter`.
            #[unsafe(no_mangle)]
            pub extern "C" fn weir_filter(
                tag: *const u8,
                tag_len: i32,
                time_sec: u32,
                time_nsec: u32,
                record: *const u8,
                record_len: i32,
            ) -> *const u8 {
                let config = match option_env!("WEIR_FLUENT_BIT_CONFIG") {
                    Some(config) => config,
                    None => "{}",
                };
                // SAFETY: Fluent Bit passes pointers to `tag_len` and
                // `record_len` bytes of this module's own memory.
                unsafe {
                    $crate::fluent_bit::call(&INSTANCE, config, tag, tag_len, time_sec, time_nsec, record, record_len)
                }
            }
        };
    };
}

/// What [`export_filter!`](crate::export_filter!) expands to calls: the
/// `Guest` methods over an [`InstanceState`], generic so they are written
/// (and tested) once.
#[doc(hidden)]
pub mod __export {
    pub use crate::wit::exports::weir::filter::plugin::Guest;
    pub use crate::wit::weir::filter::types::ConfigError;

    use super::*;

    /// Why a call other than `configure` failed: the host called out of
    /// order, or went on after `configure` failed.
    pub const NOT_CONFIGURED: &str = "configure was not called or failed";

    /// Build the instance, replacing any earlier one.
    pub fn configure<F: Filter>(instance: &InstanceState<F>, config: String) -> Result<(), types::ConfigError> {
        let filter = F::configure(&config).map_err(|e| types::ConfigError { field: e.field, message: e.message })?;
        instance.set(filter);
        Ok(())
    }

    /// [`Filter::process`] on the instance.
    pub fn process<F: Filter>(instance: &InstanceState<F>, events: Vec<Event>) -> Result<BatchResult, String> {
        instance.with(|filter| filter.process(events)).unwrap_or_else(|| Err(NOT_CONFIGURED.to_owned()))
    }

    /// [`Filter::tick`] on the instance; nothing before `configure`.
    pub fn tick<F: Filter>(instance: &InstanceState<F>, now: Timestamp) -> Vec<Event> {
        instance.with(|filter| filter.tick(now)).unwrap_or_default()
    }

    /// [`Filter::snapshot`] of the instance; empty before `configure`.
    pub fn snapshot<F: Filter>(instance: &InstanceState<F>) -> Vec<u8> {
        instance.with(|filter| filter.snapshot()).unwrap_or_default()
    }

    /// [`Filter::restore`] on the instance.
    pub fn restore<F: Filter>(instance: &InstanceState<F>, state: Vec<u8>) -> Result<(), String> {
        instance.with(|filter| filter.restore(&state)).unwrap_or_else(|| Err(NOT_CONFIGURED.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::__export::*;
    use super::*;
    use crate::Emitted;

    /// Counts the events it has seen, and refuses the config `"no"`.
    struct Counter {
        seen: u64,
    }

    impl Filter for Counter {
        fn configure(config: &str) -> Result<Self, crate::ConfigError> {
            match config {
                "\"no\"" => Err(crate::ConfigError::at("mode", "refused")),
                _ => Ok(Self { seen: 0 }),
            }
        }

        fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
            self.seen += events.len() as u64;
            let emitted = (0..).zip(events).map(|(index, event)| Emitted { parent: Some(index), event }).collect();
            Ok(BatchResult { emitted, rejected: Vec::new() })
        }

        fn snapshot(&self) -> Vec<u8> {
            self.seen.to_string().into_bytes()
        }
    }

    fn event(n: i64) -> Event {
        Event { time: n, tag: "t".into(), body: b"{}".to_vec() }
    }

    #[test]
    fn calls_before_configure_are_refused_or_empty() {
        let instance = InstanceState::<Counter>::new();
        assert_eq!(process(&instance, vec![event(1)]).unwrap_err(), NOT_CONFIGURED);
        assert_eq!(restore(&instance, b"1".to_vec()), Err(NOT_CONFIGURED.to_owned()));
        assert!(tick(&instance, 5).is_empty());
        assert!(snapshot(&instance).is_empty());
    }

    #[test]
    fn a_refused_config_reaches_the_host_with_its_key() {
        let instance = InstanceState::<Counter>::new();
        let e = configure(&instance, "\"no\"".into()).unwrap_err();
        assert_eq!((e.field.as_deref(), e.message.as_str()), (Some("mode"), "refused"));
        assert!(snapshot(&instance).is_empty(), "a failed configure leaves no instance");
    }

    #[test]
    fn the_configured_instance_serves_every_later_call() {
        let instance = InstanceState::<Counter>::new();
        configure(&instance, "{}".into()).unwrap();
        let out = process(&instance, vec![event(1), event(2)]).unwrap();
        let parents: Vec<_> = out.emitted.iter().map(|e: &Emitted| e.parent).collect();
        assert_eq!(parents, [Some(0), Some(1)]);
        assert_eq!(snapshot(&instance), b"2");
        // Defaults of a filter with no timers and nothing to take over.
        assert!(tick(&instance, 5).is_empty());
        assert_eq!(restore(&instance, b"anything".to_vec()), Ok(()));
    }
}
