//! Filters written to Fluent Bit's `filter_wasm` ABI (Fluent Bit 5.1;
//! `docs/fluent-bit-abi.md` cites the source this follows), run as Weir
//! filters behind the same [`FilterInstance`](super::FilterInstance).
//!
//! The module exports `memory` and a function, called once per record as
//! `(tag_ptr, tag_len, time_sec, time_nsec, record_ptr, record_len) -> i32`.
//! The tag arrives NUL-terminated (`tag_len` excludes the NUL); the record
//! is JSON with a NUL after it, or in `msgpack` format a msgpack map. They
//! are copied in through the guest's exported `malloc`/`free` when it has
//! them (as Fluent Bit's runtime does), else into pages Weir grows for
//! them. The return value points to a NUL-terminated JSON object owned by
//! the guest (in `msgpack` format, a msgpack map) that replaces the record;
//! 0 or an empty string drops it. The tag and time stay.
//!
//! Where Weir does better than Fluent Bit:
//! - a trap, a deadline, the memory cap, or a return that is not a JSON
//!   object dead-letters *that record* with the reason (Fluent Bit drops it
//!   with an error log line); after a trap the instance is recreated and
//!   the batch goes on;
//! - no stack or heap to size: wasmtime's native stack (512 KiB of wasm
//!   frames) and memory growth up to the filter's `limits.memory`, where
//!   Fluent Bit's 8 KiB defaults make ordinary serde/regex filters trap;
//! - compiled by cranelift (and cached), not interpreted; one instance
//!   reused across batches, recreated only after a trap.

use std::sync::Arc;

use wasmtime::{InstancePre, Memory, Module, Store, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;

use super::engine::PluginEngine;
use super::error::{PluginError, PluginErrorKind};
use super::host_api::{GuestStderr, sandbox};
use super::instance::{Processed, stopped};
use super::limits::{Grants, Limits, MemoryCap};
use super::spec::{EventFormat, FilterSpec};
use crate::core::clock::Clock;
use crate::core::msgpack::{Json, Scan, Scanned};
use crate::core::record::Record;

/// WebAssembly's page size.
const PAGE: usize = 64 << 10;

/// The filter function's type: six `i32`s in, one out.
type FilterFn = TypedFunc<(i32, i32, i32, i32, i32, i32), i32>;

/// The `call` named in errors from the filter function.
const CALL: &str = "the fluent-bit filter function";

/// What a core module's store holds.
pub struct ModuleState {
    pub(super) wasi: WasiP1Ctx,
    memory: MemoryCap,
    stderr: GuestStderr,
}

/// A configured Fluent Bit-ABI filter.
pub(super) struct FluentBitFilter {
    recipe: Recipe,
    /// `None` after an instance could not be recreated.
    live: Option<Live>,
}

/// What making an instance takes; apart from [`Live`] so another thread
/// can borrow it.
struct Recipe {
    name: Arc<str>,
    function: String,
    format: EventFormat,
    limits: Limits,
    grants: Grants,
    clock: Clock,
    pre: InstancePre<ModuleState>,
}

/// One instantiated module.
struct Live {
    store: Store<ModuleState>,
    memory: Memory,
    filter: FilterFn,
    copy_in: CopyIn,
}

/// Where tag and record are copied into the guest.
enum CopyIn {
    /// The guest's `malloc` and `free`.
    Guest { malloc: TypedFunc<i32, i32>, free: TypedFunc<i32, ()> },
    /// Pages Weir grew past the guest's own: allocators that take only what
    /// their own `memory.grow` returns (Rust, wasi-libc) never touch them.
    Scratch { offset: usize, len: usize },
}

/// What became of one record.
enum Outcome {
    /// The returned record body.
    Replaced(Vec<u8>),
    /// 0 or an empty string: dropped, as the ABI says.
    Dropped,
    /// The return breaks the ABI: the record is dead-lettered with this.
    Invalid(String),
}

impl FluentBitFilter {
    pub(super) fn new(
        engine: &PluginEngine,
        spec: &FilterSpec,
        module: &Module,
        function: &str,
        format: EventFormat,
        clock: Clock,
    ) -> Result<Self, PluginError> {
        let contract = |reason: String| {
            PluginError::new(&spec.name, PluginErrorKind::Contract { path: spec.wasm.clone(), reason })
        };
        check_exports(module, function).map_err(contract)?;
        let pre = engine
            .module_linker
            .instantiate_pre(module)
            .map_err(|e| PluginError::new(&spec.name, PluginErrorKind::Instantiate(format!("{e:#}"))))?;
        let recipe = Recipe {
            name: spec.name.as_str().into(),
            function: function.to_string(),
            format,
            limits: spec.limits,
            grants: spec.grants.clone(),
            clock,
            pre,
        };
        let mut filter = FluentBitFilter { recipe, live: None };
        filter.recreate()?;
        Ok(filter)
    }

    /// A fresh instance in place of the current one.
    pub(super) fn recreate(&mut self) -> Result<(), PluginError> {
        self.live = None;
        // WASI preview 1's sync calls (which `_initialize` makes) block on
        // a tokio runtime, which cannot be done on one of its async
        // threads: building a pipeline happens there, so instantiate on a
        // thread of our own. The chain thread is a plain thread already.
        let recipe = &self.recipe;
        let live = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|scope| scope.spawn(|| recipe.instantiate()).join()).map_err(|_| {
                PluginError::new(&*recipe.name, PluginErrorKind::Instantiate("instantiation panicked".into()))
            })?
        } else {
            recipe.instantiate()
        };
        self.live = Some(live?);
        Ok(())
    }
}

impl Recipe {
    fn instantiate(&self) -> Result<Live, PluginError> {
        let error = |kind| PluginError::new(&*self.name, kind);
        let stderr = GuestStderr::default();
        let wasi = sandbox(&self.clock, &self.grants, &stderr)
            .map_err(|e| error(PluginErrorKind::Instantiate(e.to_string())))?
            .build_p1();
        let state = ModuleState { wasi, memory: MemoryCap::new(self.limits.memory), stderr };
        let mut store = Store::new(self.pre.module().engine(), state);
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.limits.deadline_ticks());
        let instance = self.pre.instantiate(&mut store).map_err(|e| self.stopped(&mut store, "instantiate", &e))?;
        // A WASI reactor (Go's c-shared build, wasi-libc) sets itself up in
        // `_initialize`; Fluent Bit's runtime calls it too.
        if let Ok(initialize) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            initialize.call(&mut store, ()).map_err(|e| self.stopped(&mut store, "_initialize", &e))?;
        }
        let memory = instance.get_memory(&mut store, "memory").expect("checked at load");
        let filter = instance.get_typed_func(&mut store, &self.function).expect("checked at load");
        let copy_in = match (
            instance.get_typed_func::<i32, i32>(&mut store, "malloc"),
            instance.get_typed_func::<i32, ()>(&mut store, "free"),
        ) {
            (Ok(malloc), Ok(free)) => CopyIn::Guest { malloc, free },
            _ => CopyIn::Scratch { offset: 0, len: 0 },
        };
        Ok(Live { store, memory, filter, copy_in })
    }

    fn stopped(&self, store: &mut Store<ModuleState>, call: &'static str, e: &wasmtime::Error) -> PluginError {
        let hit_memory_cap = store.data_mut().memory.take_hit();
        let stderr = store.data().stderr.take();
        stopped(&self.name, &self.limits, call, hit_memory_cap, &stderr, e)
    }
}

impl FluentBitFilter {
    /// Call the filter function on each record; see the module docs.
    ///
    /// # Errors
    /// Only when no instance can be made; a record's own failure is in
    /// [`Processed::rejected`].
    pub(super) fn process(&mut self, records: &[Record]) -> Result<Processed, PluginError> {
        if self.live.is_none() {
            self.recreate()?;
        }
        let mut out = Processed { emitted: Vec::with_capacity(records.len()), ..Processed::default() };
        for (index, record) in records.iter().enumerate() {
            match self.one(record) {
                Ok(Outcome::Replaced(body)) => {
                    out.emitted.push(Record {
                        time: record.time,
                        tag: record.tag.clone(),
                        body: body.into(),
                        origin: record.origin.as_ref().map(|o| o.child(0)),
                        ack: record.ack.clone(),
                        arrival: record.arrival,
                    });
                    out.parents.push(Some(index));
                }
                Ok(Outcome::Dropped) => {}
                Ok(Outcome::Invalid(reason)) => out.rejected.push((index, reason)),
                Err(error) => {
                    out.rejected.push((index, error.to_string()));
                    out.recreated += 1;
                    if let Err(again) = self.recreate() {
                        let reason = format!("{error}; then the instance could not be recreated: {again}");
                        out.rejected.extend((index + 1..records.len()).map(|i| (i, reason.clone())));
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Run the filter function on one record.
    fn one(&mut self, record: &Record) -> Result<Outcome, PluginError> {
        let input = match self.recipe.format {
            EventFormat::Json => {
                let mut bytes = Vec::with_capacity(record.body.len() + 1);
                bytes.extend_from_slice(&record.body);
                bytes.push(0);
                bytes
            }
            EventFormat::Msgpack => match serde_json::from_slice::<serde_json::Value>(&record.body) {
                Ok(json) => {
                    let mut bytes = Vec::with_capacity(record.body.len());
                    rmpv::encode::write_value(&mut bytes, &crate::core::msgpack::from_json(&json))
                        .expect("writing to a Vec cannot fail");
                    bytes
                }
                Err(e) => return Ok(Outcome::Invalid(format!("record is not JSON, so not msgpack either: {e}"))),
            },
        };
        // The record's length excludes the NUL in JSON format, as Fluent Bit's.
        let record_len = match self.recipe.format {
            EventFormat::Json => input.len() - 1,
            EventFormat::Msgpack => input.len(),
        };
        let mut tag = Vec::with_capacity(record.tag.len() + 1);
        tag.extend_from_slice(record.tag.as_bytes());
        tag.push(0);
        let seconds = record.time.div_euclid(1_000_000_000);
        let nanos = record.time.rem_euclid(1_000_000_000);
        let deadline = self.recipe.limits.deadline_ticks();
        let format = self.recipe.format;
        let live = self.live.as_mut().expect("recreated before the batch");
        let result = (|| -> wasmtime::Result<Result<Outcome, String>> {
            let (tag_at, record_at) = live.copy_in(&tag, &input)?;
            live.store.set_epoch_deadline(deadline);
            // The ABI passes 32-bit values: pointers, lengths and the time
            // (seconds wrap in 2106, as in Fluent Bit).
            let returned = live.filter.call(
                &mut live.store,
                (
                    tag_at as i32,
                    record.tag.len() as i32,
                    seconds as u32 as i32,
                    nanos as i32,
                    record_at as i32,
                    record_len as i32,
                ),
            )?;
            let outcome = read_return(live.memory.data(&live.store), returned as u32 as usize, format);
            live.release(tag_at, record_at)?;
            Ok(outcome)
        })();
        match result {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(reason)) => Ok(Outcome::Invalid(
                PluginError::new(&*self.recipe.name, PluginErrorKind::Misbehaved { call: CALL, reason }).to_string(),
            )),
            Err(e) => {
                let live = self.live.as_mut().expect("still there");
                let hit_memory_cap = live.store.data_mut().memory.take_hit();
                let stderr = live.store.data().stderr.take();
                Err(stopped(&self.recipe.name, &self.recipe.limits, CALL, hit_memory_cap, &stderr, &e))
            }
        }
    }
}

impl Live {
    /// Copy `tag` and `record` into the guest; their offsets.
    fn copy_in(&mut self, tag: &[u8], record: &[u8]) -> wasmtime::Result<(usize, usize)> {
        match &mut self.copy_in {
            CopyIn::Guest { malloc, free: _ } => {
                let malloc = malloc.clone();
                let tag_at = malloc.call(&mut self.store, len_i32(tag.len())?)? as u32 as usize;
                let record_at = malloc.call(&mut self.store, len_i32(record.len().max(1))?)? as u32 as usize;
                if tag_at == 0 || record_at == 0 {
                    wasmtime::bail!("the guest's malloc returned NULL");
                }
                self.memory.write(&mut self.store, tag_at, tag)?;
                self.memory.write(&mut self.store, record_at, record)?;
                Ok((tag_at, record_at))
            }
            CopyIn::Scratch { offset, len } => {
                let need = tag.len() + record.len();
                if *len < need {
                    let pages = need.div_ceil(PAGE);
                    let before = self.memory.grow(&mut self.store, pages as u64)?;
                    *offset = usize::try_from(before)? * PAGE;
                    *len = pages * PAGE;
                }
                let (tag_at, record_at) = (*offset, *offset + tag.len());
                self.memory.write(&mut self.store, tag_at, tag)?;
                self.memory.write(&mut self.store, record_at, record)?;
                Ok((tag_at, record_at))
            }
        }
    }

    /// Give the guest back what `copy_in` took from its allocator.
    fn release(&mut self, tag_at: usize, record_at: usize) -> wasmtime::Result<()> {
        if let CopyIn::Guest { free, .. } = &self.copy_in {
            let free = free.clone();
            free.call(&mut self.store, tag_at as i32)?;
            free.call(&mut self.store, record_at as i32)?;
        }
        Ok(())
    }
}

fn len_i32(n: usize) -> wasmtime::Result<i32> {
    i32::try_from(n).map_err(|_| wasmtime::format_err!("{n} bytes do not fit a 32-bit guest"))
}

/// Read what the filter function returned at `at` in `memory`; `Err` says
/// how the return breaks the ABI.
fn read_return(memory: &[u8], at: usize, format: EventFormat) -> Result<Outcome, String> {
    if at == 0 {
        return Ok(Outcome::Dropped);
    }
    let Some(tail) = memory.get(at..).filter(|t| !t.is_empty()) else {
        return Err(format!("returned pointer {at:#x} is outside its memory ({} bytes)", memory.len()));
    };
    if tail[0] == 0 {
        return Ok(Outcome::Dropped);
    }
    match format {
        EventFormat::Json => {
            let Some(end) = tail.iter().position(|&b| b == 0) else {
                return Err(format!("returned string at {at:#x} has no NUL before the end of memory"));
            };
            let text = &tail[..end];
            match serde_json::from_slice::<&serde_json::value::RawValue>(text) {
                Ok(raw) if raw.get().starts_with('{') => Ok(Outcome::Replaced(raw.get().as_bytes().to_vec())),
                Ok(_) => Err(format!("returned JSON is not an object: {}", excerpt(text))),
                Err(e) => Err(format!("returned text is not JSON ({e}): {}", excerpt(text))),
            }
        }
        EventFormat::Msgpack => {
            // Fluent Bit reads up to the first NUL byte, which cuts any map
            // holding a 0; Weir reads the one msgpack value there instead.
            let Scanned::Complete(n) = Scan::default().advance(tail) else {
                return Err(format!("returned bytes at {at:#x} are not one msgpack value"));
            };
            let value = rmpv::decode::read_value_ref(&mut &tail[..n]).map_err(|e| format!("returned msgpack: {e}"))?;
            if !matches!(value, rmpv::ValueRef::Map(_)) {
                return Err(format!("returned msgpack is {}, not a map", crate::core::msgpack::kind(&value)));
            }
            Ok(Outcome::Replaced(serde_json::to_vec(&Json(&value)).map_err(|e| e.to_string())?))
        }
    }
}

/// The start of a returned text, for a dead letter's reason.
fn excerpt(text: &[u8]) -> String {
    const SHOWN: usize = 120;
    let shown = String::from_utf8_lossy(&text[..text.len().min(SHOWN)]).into_owned();
    if text.len() > SHOWN { format!("{shown}…") } else { shown }
}

/// Check the module exports what the ABI needs, naming what is missing.
fn check_exports(module: &Module, function: &str) -> Result<(), String> {
    use wasmtime::ExternType;
    let mut memory = false;
    let mut found = None;
    let mut functions = Vec::new();
    for export in module.exports() {
        match export.ty() {
            ExternType::Memory(_) if export.name() == "memory" => memory = true,
            ExternType::Func(ty) => {
                if export.name() == function {
                    found = Some(ty.clone());
                }
                functions.push(export.name().to_string());
            }
            _ => {}
        }
    }
    if !memory {
        return Err("does not export its memory as `memory`, which Fluent Bit's filter_wasm ABI needs".into());
    }
    let Some(ty) = found else {
        return Err(format!("does not export a function {function:?}; it exports: {}", functions.join(", ")));
    };
    let i32s = |n: usize| std::iter::repeat_n("i32", n).collect::<Vec<_>>();
    let params: Vec<String> = ty.params().map(|t| t.to_string()).collect();
    let results: Vec<String> = ty.results().map(|t| t.to_string()).collect();
    if params != i32s(6) || results != i32s(1) {
        return Err(format!(
            "function {function:?} takes ({}) and returns ({}); Fluent Bit's filter_wasm ABI calls (i32 tag_ptr, i32 tag_len, i32 time_sec, i32 time_nsec, i32 record_ptr, i32 record_len) -> i32",
            params.join(", "),
            results.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_is_a_json_object_a_drop_or_a_reason() {
        let mut memory = vec![0u8; 64];
        memory[8..8 + 9].copy_from_slice(b"{\"a\":1}\0\0");
        memory[20..24].copy_from_slice(b"[1]\0");
        memory[30..34].copy_from_slice(b"{no\0");
        let read = |at| read_return(&memory, at, EventFormat::Json);
        assert!(matches!(read(8), Ok(Outcome::Replaced(body)) if body == b"{\"a\":1}"));
        assert!(matches!(read(0), Ok(Outcome::Dropped)), "NULL drops");
        assert!(matches!(read(40), Ok(Outcome::Dropped)), "an empty string drops");
        assert_eq!(read(20).err().unwrap(), "returned JSON is not an object: [1]");
        assert!(read(30).err().unwrap().starts_with("returned text is not JSON"));
        assert_eq!(read(64).err().unwrap(), "returned pointer 0x40 is outside its memory (64 bytes)");
        let unterminated = [b'{'; 8];
        assert_eq!(
            read_return(&unterminated, 2, EventFormat::Json).err().unwrap(),
            "returned string at 0x2 has no NUL before the end of memory"
        );
    }

    #[test]
    fn a_msgpack_return_is_read_by_its_own_length_even_with_zero_bytes_inside() {
        let mut memory = vec![0u8; 4];
        let value = crate::core::msgpack::from_json(&serde_json::json!({"n": 0, "s": "x"}));
        rmpv::encode::write_value(&mut memory, &value).unwrap();
        memory.extend_from_slice(&[0xff; 8]);
        assert!(matches!(
            read_return(&memory, 4, EventFormat::Msgpack),
            Ok(Outcome::Replaced(body)) if body == br#"{"n":0,"s":"x"}"#
        ));
        let mut array = vec![0u8; 4];
        array.extend_from_slice(&[0x91, 0x01]);
        assert_eq!(
            read_return(&array, 4, EventFormat::Msgpack).err().unwrap(),
            "returned msgpack is an array, not a map"
        );
    }
}
