//! One filter instance: a store (with its limits and sandbox) and the
//! instantiated component, or, for a filter written to Fluent Bit's ABI,
//! the instantiated core module ([`super::fluent_bit`]). Calls run under the
//! deadline; a call that traps, runs out of time or hits the memory cap
//! poisons the instance, and [`FilterInstance::recreate`] builds a fresh one
//! from the same component.
//!
//! This is also where host records meet WIT events, so no module outside
//! `plugin/` names a WIT type. The contract's rules live here:
//! - an emitted event's `parent` (an index into the batch) gives it that
//!   input's acknowledgement and a child of its origin
//!   ([`Origin::child`](crate::core::record::Origin::child), numbered per parent in emission order);
//! - an emitted event with no parent (an aggregate) has neither, and enters
//!   the pipeline as it is emitted ([`Record::arrival`]);
//! - a `rejected` index names an input to dead-letter with the reason;
//! - an input neither parent nor rejected was consumed: dropping its last
//!   ack clone acknowledges it;
//! - an index outside the batch breaks the contract
//!   ([`PluginErrorKind::Misbehaved`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::bindings::{Event, Filter, FilterPre};
use super::engine::PluginEngine;
use super::error::{PluginError, PluginErrorKind};
use super::fluent_bit::FluentBitFilter;
use super::host_api::HostState;
use super::spec::{Abi, FilterSpec};
use crate::core::clock::Clock;
use crate::core::metrics::catalogue::FILTER_CALL;
use crate::core::metrics::{Histogram, registry};
use crate::core::record::{Arrival, Batch, Record, Timestamp};

/// Distinct tags kept interned per filter. Tags come from plugins; the
/// bound keeps a plugin that mints a tag per record from growing the cache
/// without end (past it, tags are still correct, just allocated per record).
const MAX_INTERNED_TAGS: usize = 1024;

/// What one `process` call made of a batch.
#[derive(Debug, Default)]
pub struct Processed {
    /// The records the filter emitted, in its order, each carrying its
    /// parent's acknowledgement and a child of its parent's origin.
    pub emitted: Batch,
    /// For each of `emitted`, the index into the batch of its parent;
    /// `None` for an aggregate.
    pub parents: Vec<Option<usize>>,
    /// Indices into the batch of the records the filter refused, with its
    /// reason; the caller dead-letters them.
    pub rejected: Vec<(usize, String)>,
    /// How often the instance was recreated within the call: a Fluent
    /// Bit-ABI filter that traps on one record has that record rejected
    /// and goes on with a fresh instance.
    pub recreated: u64,
}

/// A configured, ready-to-call filter.
pub struct FilterInstance {
    name: Arc<str>,
    spec: FilterSpec,
    clock: Clock,
    kind: Kind,
    tags: HashMap<Box<str>, Arc<str>>,
    call_times: CallTimes,
}

/// What runs a filter: a `weir:filter` component or a Fluent Bit-ABI module.
enum Kind {
    Component(ComponentFilter),
    FluentBit(FluentBitFilter),
}

/// An instantiated `weir:filter` component.
struct ComponentFilter {
    pre: FilterPre<HostState>,
    config_json: String,
    store: Store<HostState>,
    bindings: Filter,
}

/// `weir_filter_call_seconds` of one filter, by call.
struct CallTimes {
    configure: Histogram,
    process: Histogram,
    tick: Histogram,
    snapshot: Histogram,
    restore: Histogram,
}

impl CallTimes {
    fn new(filter: &str) -> Self {
        let of = |call| registry().histogram(&FILTER_CALL, &[filter, call]);
        CallTimes {
            configure: of("configure"),
            process: of("process"),
            tick: of("tick"),
            snapshot: of("snapshot"),
            restore: of("restore"),
        }
    }

    fn of(&self, call: &str) -> &Histogram {
        match call {
            "process" => &self.process,
            "tick" => &self.tick,
            "snapshot" => &self.snapshot,
            "restore" => &self.restore,
            _ => &self.configure,
        }
    }
}

impl FilterInstance {
    /// Load (or take from cache) the component of `spec`, instantiate it and
    /// call `configure`; for [`Abi::FluentBit`], load and instantiate the
    /// core module.
    pub fn new(engine: &PluginEngine, spec: &FilterSpec, clock: Clock) -> Result<Self, PluginError> {
        let name: Arc<str> = spec.name.as_str().into();
        if let Abi::FluentBit { function, format } = &spec.abi {
            let module = engine.load_module(&spec.name, &spec.wasm)?;
            let filter = FluentBitFilter::new(engine, spec, &module, function, *format, clock.clone())?;
            let kind = Kind::FluentBit(filter);
            let call_times = CallTimes::new(&name);
            return Ok(FilterInstance { name, spec: spec.clone(), clock, kind, tags: HashMap::new(), call_times });
        }
        let component = engine.load(&spec.name, &spec.wasm)?;
        let instantiate_error =
            |e: wasmtime::Error| PluginError::new(&spec.name, PluginErrorKind::Instantiate(format!("{e:#}")));
        let pre: InstancePre<HostState> = engine.linker.instantiate_pre(&component).map_err(instantiate_error)?;
        let pre = FilterPre::new(pre).map_err(instantiate_error)?;
        let config_json = spec.config.to_string();
        let (store, bindings) = instantiate(engine, &pre, spec, &name, &clock)?;
        let call_times = CallTimes::new(&name);
        let kind = Kind::Component(ComponentFilter { pre, config_json, store, bindings });
        let mut instance = FilterInstance { name, spec: spec.clone(), clock, kind, tags: HashMap::new(), call_times };
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
        let Kind::Component(component) = &self.kind else { return Ok(()) };
        let config = component.config_json.clone();
        match self.call("configure", |b, s| b.weir_filter_plugin().call_configure(s, &config))? {
            Ok(()) => Ok(()),
            Err(e) => Err(self.error(PluginErrorKind::Configure { field: e.field, message: e.message })),
        }
    }

    /// Call `process` on `records`: see the module docs for how parents and
    /// rejections map back onto them.
    ///
    /// # Errors
    /// [`PluginErrorKind::Refused`] when the filter refused the whole batch;
    /// [`PluginErrorKind::Misbehaved`] when it named an index outside the
    /// batch; [`PluginErrorKind::Deadline`], [`PluginErrorKind::MemoryCap`] or
    /// [`PluginErrorKind::Trap`] when the call was stopped, which poisons the
    /// instance (see [`PluginError::poisons_instance`]).
    pub fn process(&mut self, records: &[Record]) -> Result<Processed, PluginError> {
        if let Kind::FluentBit(filter) = &mut self.kind {
            let started = Instant::now();
            let processed = filter.process(records);
            self.call_times.process.observe(started.elapsed());
            return processed;
        }
        let events: Vec<Event> =
            records.iter().map(|r| Event { time: r.time, tag: r.tag.to_string(), body: r.body.to_vec() }).collect();
        let result = self.call("process", |b, s| b.weir_filter_plugin().call_process(s, &events))?;
        drop(events);
        let result = result.map_err(|message| self.error(PluginErrorKind::Refused(message)))?;
        let n = records.len();
        let bad_parent = result.emitted.iter().filter_map(|e| e.parent).find(|&p| p as usize >= n);
        let bad_reject = result.rejected.iter().map(|r| r.index).find(|&i| i as usize >= n);
        if let Some(index) = bad_parent.or(bad_reject) {
            return Err(self.error(PluginErrorKind::Misbehaved {
                call: "process",
                reason: format!("named input index {index} of a batch of {n}"),
            }));
        }
        let mut children = vec![0u32; n];
        let mut emitted = Vec::with_capacity(result.emitted.len());
        let mut parents = Vec::with_capacity(result.emitted.len());
        let now = Arrival::now();
        for e in result.emitted {
            parents.push(e.parent.map(|p| p as usize));
            let (origin, ack, arrival) = match e.parent {
                Some(p) => {
                    let parent = &records[p as usize];
                    let ordinal = &mut children[p as usize];
                    let origin = parent.origin.as_ref().map(|o| o.child(*ordinal));
                    *ordinal += 1;
                    (origin, parent.ack.clone(), parent.arrival)
                }
                None => (None, None, Some(now)),
            };
            let event = e.event;
            emitted.push(Record {
                time: event.time,
                tag: self.intern(event.tag),
                body: event.body.into(),
                origin,
                ack,
                arrival,
            });
        }
        let rejected = result.rejected.into_iter().map(|r| (r.index as usize, r.reason)).collect();
        Ok(Processed { emitted, parents, rejected, recreated: 0 })
    }

    /// Call `tick` with the host clock's `now`; the records it emits have
    /// no parent, so no origin and no acknowledgement, and enter the
    /// pipeline now.
    ///
    /// # Errors
    /// As [`FilterInstance::process`], but a tick cannot be refused.
    pub fn tick(&mut self, now: Timestamp) -> Result<Batch, PluginError> {
        // Fluent Bit's ABI has no timers.
        if let Kind::FluentBit(_) = self.kind {
            return Ok(Batch::new());
        }
        let events = self.call("tick", |b, s| b.weir_filter_plugin().call_tick(s, now))?;
        let arrival = Some(Arrival::now());
        Ok(events
            .into_iter()
            .map(|e| Record {
                time: e.time,
                tag: self.intern(e.tag),
                body: e.body.into(),
                origin: None,
                ack: None,
                arrival,
            })
            .collect())
    }

    /// Call `snapshot`: all of the filter's state, as opaque bytes.
    ///
    /// # Errors
    /// A stopped call, as for [`FilterInstance::process`].
    pub fn snapshot(&mut self) -> Result<Vec<u8>, PluginError> {
        // Fluent Bit's ABI has no way to hand state over.
        if let Kind::FluentBit(_) = self.kind {
            return Ok(Vec::new());
        }
        self.call("snapshot", |b, s| b.weir_filter_plugin().call_snapshot(s))
    }

    /// Call `snapshot` for a checkpoint, after which the instance goes on:
    /// counters the filter adds during the call (what it hands over when a
    /// snapshot ends it, e.g. windows closed) are not counted.
    ///
    /// # Errors
    /// As [`FilterInstance::snapshot`].
    pub fn checkpoint(&mut self) -> Result<Vec<u8>, PluginError> {
        let Kind::Component(component) = &mut self.kind else { return Ok(Vec::new()) };
        component.store.data_mut().checkpointing = true;
        let state = self.snapshot();
        if let Kind::Component(component) = &mut self.kind {
            component.store.data_mut().checkpointing = false;
        }
        state
    }

    /// Call `restore` with bytes from an earlier `snapshot`.
    ///
    /// # Errors
    /// [`PluginErrorKind::Restore`] when the filter refuses the state, or a
    /// stopped call.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        if let Kind::FluentBit(_) = self.kind {
            return Ok(());
        }
        self.call("restore", |b, s| b.weir_filter_plugin().call_restore(s, state))?
            .map_err(|message| self.error(PluginErrorKind::Restore(message)))
    }

    /// Take over `old`'s state across a reload: `snapshot` on `old`,
    /// `restore` on this instance. `old` is left as it was, so on error it
    /// keeps running untouched.
    ///
    /// # Errors
    /// Those of [`FilterInstance::snapshot`] on `old` and
    /// [`FilterInstance::restore`] on `self`.
    pub fn take_over(&mut self, old: &mut FilterInstance) -> Result<(), PluginError> {
        let state = old.snapshot()?;
        self.restore(&state)
    }

    fn error(&self, kind: PluginErrorKind) -> PluginError {
        PluginError::new(&*self.name, kind)
    }

    fn intern(&mut self, tag: String) -> Arc<str> {
        if let Some(t) = self.tags.get(tag.as_str()) {
            return t.clone();
        }
        let t: Arc<str> = tag.as_str().into();
        if self.tags.len() < MAX_INTERNED_TAGS {
            self.tags.insert(tag.into_boxed_str(), t.clone());
        }
        t
    }

    /// Another instance of the same component and config, configured, with
    /// none of this one's state: a replica for another worker or partition.
    ///
    /// # Errors
    /// As [`FilterInstance::new`] (a component is not loaded again).
    pub fn replicate(&self, engine: &PluginEngine) -> Result<Self, PluginError> {
        let Kind::Component(component) = &self.kind else {
            return FilterInstance::new(engine, &self.spec, self.clock.clone());
        };
        let (store, bindings) = instantiate(engine, &component.pre, &self.spec, &self.name, &self.clock)?;
        let kind = Kind::Component(ComponentFilter {
            pre: component.pre.clone(),
            config_json: component.config_json.clone(),
            store,
            bindings,
        });
        let mut replica = FilterInstance {
            name: self.name.clone(),
            spec: self.spec.clone(),
            clock: self.clock.clone(),
            kind,
            tags: HashMap::new(),
            call_times: CallTimes::new(&self.name),
        };
        replica.configure()?;
        Ok(replica)
    }

    /// Replace a poisoned instance with a fresh, configured one. State is
    /// lost: a trapped instance cannot be asked for a snapshot.
    pub fn recreate(&mut self, engine: &PluginEngine) -> Result<(), PluginError> {
        match &mut self.kind {
            Kind::FluentBit(filter) => filter.recreate(),
            Kind::Component(component) => {
                let (store, bindings) = instantiate(engine, &component.pre, &self.spec, &self.name, &self.clock)?;
                component.store = store;
                component.bindings = bindings;
                self.configure()
            }
        }
    }

    fn call<T>(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&Filter, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        let Kind::Component(component) = &mut self.kind else {
            unreachable!("component calls are made on components only")
        };
        let store = &mut component.store;
        store.set_epoch_deadline(self.spec.limits.deadline_ticks());
        let started = Instant::now();
        let result = f(&component.bindings, store);
        self.call_times.of(call).observe(started.elapsed());
        let hit_memory_cap = store.data_mut().memory.take_hit();
        let stderr = store.data().stderr.take();
        result.map_err(|e| stopped(&self.name, &self.spec.limits, call, hit_memory_cap, &stderr, &e))
    }
}

/// Why a call stopped: the memory cap, the deadline, or a trap (with a Rust
/// guest's panic message from its stderr).
pub(super) fn stopped(
    plugin: &str,
    limits: &super::limits::Limits,
    call: &'static str,
    hit_memory_cap: bool,
    stderr: &str,
    e: &wasmtime::Error,
) -> PluginError {
    if hit_memory_cap {
        return PluginError::new(plugin, PluginErrorKind::MemoryCap { limit: limits.memory, call });
    }
    if matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
        return PluginError::new(plugin, PluginErrorKind::Deadline { deadline: limits.deadline, call });
    }
    let trap = e.downcast_ref::<wasmtime::Trap>().map(ToString::to_string).unwrap_or_else(|| format!("{e:#}"));
    let reason = match panic_message(stderr) {
        Some(panic) => format!("{trap}: {panic}"),
        None => trap,
    };
    PluginError::new(plugin, PluginErrorKind::Trap { call, reason })
}

fn instantiate(
    engine: &PluginEngine,
    pre: &FilterPre<HostState>,
    spec: &FilterSpec,
    name: &Arc<str>,
    clock: &Clock,
) -> Result<(Store<HostState>, Filter), PluginError> {
    let state = HostState::new(name.clone(), clock.clone(), spec.limits.memory, &spec.grants)
        .map_err(|e| PluginError::new(&spec.name, PluginErrorKind::Instantiate(e.to_string())))?;
    let mut store = Store::new(&engine.engine, state);
    store.limiter(|state| &mut state.memory);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(spec.limits.deadline_ticks());
    let bindings = pre.instantiate(&mut store).map_err(|e| {
        if store.data_mut().memory.take_hit() {
            PluginError::new(&spec.name, PluginErrorKind::MemoryCap { limit: spec.limits.memory, call: "instantiate" })
        } else {
            // A runtime that fails while starting (Go's `throw`, a Rust
            // panic) says why on stderr; the trap alone does not.
            let stderr = store.data().stderr.take();
            let reason = match stderr.trim() {
                "" => format!("{e:#}"),
                said => format!("{e:#}; the plugin's stderr: {said}"),
            };
            PluginError::new(&spec.name, PluginErrorKind::Instantiate(reason))
        }
    })?;
    Ok((store, bindings))
}

/// Longest guest message kept in a trap's reason.
const MAX_GUEST_MESSAGE: usize = 300;

/// What the guest said as it failed, from the stderr of the call: a Rust
/// panic (`panicked at …` and its message), a Go panic (`panic: …`), or
/// else the last line written (a Python exception, a JavaScript error).
fn panic_message(stderr: &str) -> Option<String> {
    let text = if let Some(line) = stderr.lines().rev().find(|l| l.contains("panicked at")) {
        let start = stderr.rfind(line)?;
        let text: Vec<&str> = stderr[start..].lines().take_while(|l| !l.starts_with("note:")).collect();
        text.join(" ")
    } else if let Some(line) = stderr.lines().find(|l| l.starts_with("panic: ")) {
        line.to_string()
    } else {
        stderr.lines().rev().find(|l| !l.trim().is_empty())?.to_string()
    };
    let text = text.trim();
    Some(match text.char_indices().nth(MAX_GUEST_MESSAGE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::{MAX_GUEST_MESSAGE, panic_message};

    #[test]
    fn finds_the_panic_message_in_stderr() {
        let stderr = "noise\nthread '<unnamed>' panicked at src/lib.rs:10:5:\npoisoned record\nnote: run with `RUST_BACKTRACE=1`";
        assert_eq!(panic_message(stderr).unwrap(), "thread '<unnamed>' panicked at src/lib.rs:10:5: poisoned record");
        let go = "panic: poisoned record\n\ngoroutine 1 [running]:\nmain.process(...)\n";
        assert_eq!(panic_message(go).unwrap(), "panic: poisoned record");
        let python = "Traceback (most recent call last):\n  File \"app.py\", line 3\nValueError: poisoned record\n";
        assert_eq!(panic_message(python).unwrap(), "ValueError: poisoned record");
        assert_eq!(panic_message(""), None);
        assert_eq!(panic_message(&"x".repeat(1000)).unwrap().chars().count(), MAX_GUEST_MESSAGE + 1);
    }
}
