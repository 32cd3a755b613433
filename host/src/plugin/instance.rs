//! One filter instance: a store (with its limits and sandbox) and the
//! instantiated component. Calls run under the deadline; a call that traps,
//! runs out of time or hits the memory cap poisons the instance, and
//! [`FilterInstance::recreate`] builds a fresh one from the same component.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre};

use super::bindings::{BatchResult, Event, Filter, FilterPre};
use super::engine::PluginEngine;
use super::error::PluginError;
use super::host_api::HostState;
use crate::config::FilterSpec;
use crate::pipeline::clock::Clock;
use crate::pipeline::record::Timestamp;

/// A configured, ready-to-call filter.
pub struct FilterInstance {
    name: Arc<str>,
    spec: FilterSpec,
    clock: Clock,
    pre: FilterPre<HostState>,
    config_json: String,
    store: Store<HostState>,
    bindings: Filter,
}

impl FilterInstance {
    /// Load (or take from cache) the component of `spec`, instantiate it and
    /// call `configure`.
    pub fn new(engine: &PluginEngine, spec: &FilterSpec, clock: Clock) -> Result<Self, PluginError> {
        let component = engine.load(&spec.name, &spec.wasm)?;
        Self::from_component(engine, spec, clock, &component)
    }

    /// Instantiate an already loaded component and configure it.
    pub fn from_component(
        engine: &PluginEngine,
        spec: &FilterSpec,
        clock: Clock,
        component: &Component,
    ) -> Result<Self, PluginError> {
        let name: Arc<str> = spec.name.as_str().into();
        let instantiate_error =
            |e: wasmtime::Error| PluginError::Instantiate { plugin: spec.name.clone(), reason: format!("{e:#}") };
        let pre: InstancePre<HostState> = engine.linker.instantiate_pre(component).map_err(instantiate_error)?;
        let pre = FilterPre::new(pre).map_err(instantiate_error)?;
        let config_json = spec.config.to_string();
        let (store, bindings) = instantiate(engine, &pre, spec, &name, &clock)?;
        let mut instance = FilterInstance { name, spec: spec.clone(), clock, pre, config_json, store, bindings };
        instance.configure()?;
        Ok(instance)
    }

    /// The filter's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &FilterSpec {
        &self.spec
    }

    fn configure(&mut self) -> Result<(), PluginError> {
        let config = self.config_json.clone();
        match self.call("configure", |b, s| b.weir_filter_plugin().call_configure(s, &config))? {
            Ok(()) => Ok(()),
            Err(e) => Err(PluginError::Configure { plugin: self.name.to_string(), field: e.field, message: e.message }),
        }
    }

    /// Run `process` on a batch.
    pub fn process(&mut self, events: &[Event]) -> Result<BatchResult, PluginError> {
        let result = self.call("process", |b, s| b.weir_filter_plugin().call_process(s, events))?;
        let result = result.map_err(|message| PluginError::Refused { plugin: self.name.to_string(), message })?;
        let n = events.len();
        let bad_parent = result.emitted.iter().filter_map(|e| e.parent).find(|&p| p as usize >= n);
        let bad_reject = result.rejected.iter().map(|r| r.index).find(|&i| i as usize >= n);
        if let Some(index) = bad_parent.or(bad_reject) {
            return Err(PluginError::Misbehaved {
                plugin: self.name.to_string(),
                call: "process",
                reason: format!("named input index {index} of a batch of {n}"),
            });
        }
        Ok(result)
    }

    /// Run `tick`.
    pub fn tick(&mut self, now: Timestamp) -> Result<Vec<Event>, PluginError> {
        self.call("tick", |b, s| b.weir_filter_plugin().call_tick(s, now))
    }

    /// Run `snapshot`.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, PluginError> {
        self.call("snapshot", |b, s| b.weir_filter_plugin().call_snapshot(s))
    }

    /// Run `restore`.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        self.call("restore", |b, s| b.weir_filter_plugin().call_restore(s, state))?
            .map_err(|message| PluginError::Restore { plugin: self.name.to_string(), message })
    }

    /// Replace a poisoned instance with a fresh, configured one. State is
    /// lost: a trapped instance cannot be asked for a snapshot.
    pub fn recreate(&mut self, engine: &PluginEngine) -> Result<(), PluginError> {
        let (store, bindings) = instantiate(engine, &self.pre, &self.spec, &self.name, &self.clock)?;
        self.store = store;
        self.bindings = bindings;
        self.configure()
    }

    fn call<T>(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&Filter, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        self.store.set_epoch_deadline(self.spec.limits.deadline_ticks());
        let result = f(&self.bindings, &mut self.store);
        let hit_memory_cap = self.store.data_mut().memory.take_hit();
        let stderr = self.store.data().stderr.take();
        result.map_err(|e| {
            let plugin = self.name.to_string();
            if hit_memory_cap {
                return PluginError::MemoryCap { plugin, limit: self.spec.limits.memory, call };
            }
            if matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
                return PluginError::Deadline { plugin, deadline: self.spec.limits.deadline, call };
            }
            let trap = e.downcast_ref::<wasmtime::Trap>().map(ToString::to_string).unwrap_or_else(|| format!("{e:#}"));
            let reason = match panic_message(&stderr) {
                Some(panic) => format!("{trap}: {panic}"),
                None => trap,
            };
            PluginError::Trap { plugin, call, reason }
        })
    }
}

fn instantiate(
    engine: &PluginEngine,
    pre: &FilterPre<HostState>,
    spec: &FilterSpec,
    name: &Arc<str>,
    clock: &Clock,
) -> Result<(Store<HostState>, Filter), PluginError> {
    let state = HostState::new(name.clone(), clock.clone(), spec.limits.memory, &spec.grants)
        .map_err(|e| PluginError::Instantiate { plugin: spec.name.clone(), reason: e.to_string() })?;
    let mut store = Store::new(&engine.engine, state);
    store.limiter(|state| &mut state.memory);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(spec.limits.deadline_ticks());
    let bindings = pre.instantiate(&mut store).map_err(|e| {
        if store.data_mut().memory.take_hit() {
            PluginError::MemoryCap { plugin: spec.name.clone(), limit: spec.limits.memory, call: "instantiate" }
        } else {
            PluginError::Instantiate { plugin: spec.name.clone(), reason: format!("{e:#}") }
        }
    })?;
    Ok((store, bindings))
}

/// The message of a Rust guest's panic, from its stderr.
fn panic_message(stderr: &str) -> Option<String> {
    let line = stderr.lines().rev().find(|l| l.contains("panicked at"))?;
    let start = stderr.rfind(line)?;
    let text: Vec<&str> = stderr[start..].lines().take_while(|l| !l.starts_with("note:")).collect();
    Some(text.join(" ").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn finds_the_panic_message_in_stderr() {
        let stderr = "noise\nthread '<unnamed>' panicked at src/lib.rs:10:5:\npoisoned record\nnote: run with `RUST_BACKTRACE=1`";
        assert_eq!(panic_message(stderr).unwrap(), "thread '<unnamed>' panicked at src/lib.rs:10:5: poisoned record");
        assert_eq!(panic_message("fine"), None);
    }
}
