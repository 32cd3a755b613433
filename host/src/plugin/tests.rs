//! Plugin runtime tests against real components: the bundled `split` and
//! the misbehaving test plugins in `tests/plugins/`. Build them first with
//! `just plugins`; the paths are named explicitly.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{FilterInstance, FilterSpec, Grants, Limits, PluginEngine, PluginError, PluginErrorKind, Processed};
use crate::core::clock::Clock;
use crate::core::record::{Origin, Record};
use crate::core::tag_match::TagMatch;

fn plugin(name: &str) -> PathBuf {
    let dir = std::env::var_os("WEIR_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: run `just plugins` first", path.display());
    path
}

fn spec(name: &str, config: serde_json::Value, limits: Limits) -> FilterSpec {
    FilterSpec {
        name: name.to_string(),
        wasm: plugin(name),
        abi: super::Abi::Component,
        matches: TagMatch::new(vec!["*".into()]).unwrap(),
        config,
        partition_by: None,
        limits,
        grants: Grants::default(),
        dedupe: None,
    }
}

fn engine() -> PluginEngine {
    PluginEngine::new(None).unwrap()
}

/// Records with these bodies, each with an origin whose offset is its index,
/// so an emitted record's origin names its parent.
fn batch(bodies: &[&str]) -> Vec<Record> {
    bodies
        .iter()
        .enumerate()
        .map(|(i, body)| Record {
            time: 1,
            tag: "t".into(),
            body: body.as_bytes().to_vec().into(),
            origin: Some(Origin { stream: "test".into(), offset: i as u64, lineage: 0 }),
            ack: None,
            arrival: None,
        })
        .collect()
}

/// The parent index of each emitted record, from its origin.
fn parents(out: &Processed) -> Vec<Option<u64>> {
    out.emitted.iter().map(|r| r.origin.as_ref().map(|o| o.offset)).collect()
}

fn misbehave(engine: &PluginEngine, mode: &str, limits: Limits) -> FilterInstance {
    FilterInstance::new(engine, &spec("misbehave", json!({ "mode": mode, "factor": 3 }), limits), Clock::system())
        .unwrap()
}

/// A healthy batch goes through a (re)created instance untouched.
fn assert_passes_through(instance: &mut FilterInstance) {
    let out = instance.process(&batch(&[r#"{"ok":1}"#, r#"{"ok":2}"#])).unwrap();
    assert_eq!(parents(&out), [Some(0), Some(1)]);
}

#[test]
fn split_emits_one_record_per_statement_with_its_chunk_as_parent() {
    let config = json!({ "field": "logs", "context": ["app"], "time": { "regex": "^(?P<time>\\S+)" } });
    let mut split = FilterInstance::new(&engine(), &spec("split", config, Limits::default()), Clock::system()).unwrap();
    let chunk = r#"{"app":"shop","logs":["2026-11-22T10:00:00Z a=1","2026-11-22T10:00:01.5Z b=2"]}"#;
    let out = split.process(&batch(&[r#"{"app":"x","logs":[]}"#, chunk])).unwrap();
    assert!(out.rejected.is_empty());
    assert_eq!(out.emitted.len(), 2);
    assert!(parents(&out).iter().all(|p| *p == Some(1)));
    let second: serde_json::Value = serde_json::from_slice(&out.emitted[1].body).unwrap();
    assert_eq!(second["app"], "shop");
    assert_eq!(second["message"], "2026-11-22T10:00:01.5Z b=2");
    assert_eq!(out.emitted[1].time, 1_795_341_601_500_000_000);
}

#[test]
fn split_rejects_a_malformed_chunk_and_keeps_the_rest() {
    let mut split =
        FilterInstance::new(&engine(), &spec("split", json!({}), Limits::default()), Clock::system()).unwrap();
    let out = split.process(&batch(&[r#"{"logs":5}"#, r#"{"logs":["x"]}"#])).unwrap();
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 0);
    assert!(out.rejected[0].1.contains("logs"), "{}", out.rejected[0].1);
    assert_eq!(out.emitted.len(), 1);
}

#[test]
fn the_host_clock_reaches_the_plugin() {
    let clock = Clock::manual(1_700_000_000_000_000_000);
    let config = json!({ "time": { "regex": "^(?P<time>\\S+)" }, "on_missing_time": "arrival" });
    let mut split = FilterInstance::new(&engine(), &spec("split", config, Limits::default()), clock.clone()).unwrap();
    let out = split.process(&batch(&[r#"{"logs":["no time here"]}"#])).unwrap();
    assert_eq!(out.emitted[0].time, 1_700_000_000_000_000_000);
    clock.set(1_800_000_000_000_000_000);
    let out = split.process(&batch(&[r#"{"logs":["still none"]}"#])).unwrap();
    assert_eq!(out.emitted[0].time, 1_800_000_000_000_000_000);
}

#[test]
fn configure_errors_name_the_field() {
    let config = json!({ "time": { "regex": "(?P<time>\\S+" } });
    let err = FilterInstance::new(&engine(), &spec("split", config, Limits::default()), Clock::system()).err().unwrap();
    let PluginError { plugin, kind: PluginErrorKind::Configure { field, message } } = &err else { panic!("{err}") };
    assert_eq!(plugin, "split");
    assert_eq!(field.as_deref(), Some("time.regex"));
    assert!(message.contains("unclosed group"), "{message}");
    assert!(err.to_string().starts_with("plugin split: config field `time.regex`: "), "{err}");
}

#[test]
fn a_trap_names_the_panic_and_the_recreated_instance_works() {
    let engine = engine();
    let mut instance = misbehave(&engine, "trap", Limits::default());
    let err = instance.process(&batch(&[r#"{"ok":0}"#, r#"{"m":"poison"}"#])).unwrap_err();
    assert!(matches!(err, PluginError { kind: PluginErrorKind::Trap { call: "process", .. }, .. }), "{err}");
    assert!(err.to_string().contains("poisoned record"), "{err}");
    assert!(err.poisons_instance());
    instance.recreate(&engine).unwrap();
    assert_passes_through(&mut instance);
}

#[test]
fn an_endless_loop_is_interrupted_at_the_deadline() {
    let engine = engine();
    let limits = Limits { deadline: Duration::from_millis(100), ..Limits::default() };
    let mut instance = misbehave(&engine, "loop", limits);
    let start = Instant::now();
    let err = instance.process(&batch(&[r#"{"m":"poison"}"#])).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err.kind, PluginErrorKind::Deadline { .. }), "{err}");
    assert!(err.to_string().contains("deadline of 100ms exceeded in process"), "{err}");
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5), "took {took:?}");
    instance.recreate(&engine).unwrap();
    assert_passes_through(&mut instance);
}

#[test]
fn a_memory_bomb_hits_the_cap() {
    let engine = engine();
    let limits = Limits { memory: 32 << 20, ..Limits::default() };
    let mut instance = misbehave(&engine, "memory_bomb", limits);
    let err = instance.process(&batch(&[r#"{"m":"poison"}"#])).unwrap_err();
    assert!(matches!(err.kind, PluginErrorKind::MemoryCap { limit, .. } if limit == 32 << 20), "{err}");
    instance.recreate(&engine).unwrap();
    assert_passes_through(&mut instance);
}

#[test]
fn amplification_emits_every_copy_with_its_parent() {
    let mut instance = misbehave(&engine(), "amplify", Limits::default());
    let out = instance.process(&batch(&[r#"{"ok":0}"#, r#"{"m":"poison"}"#])).unwrap();
    assert_eq!(parents(&out), [Some(0), Some(1), Some(1), Some(1)]);
}

#[test]
fn runaway_amplification_is_stopped_by_the_memory_cap() {
    let engine = engine();
    let s = spec(
        "misbehave",
        json!({ "mode": "amplify", "factor": 100_000_000u32 }),
        Limits { memory: 64 << 20, ..Limits::default() },
    );
    let mut instance = FilterInstance::new(&engine, &s, Clock::system()).unwrap();
    let err = instance.process(&batch(&[r#"{"m":"poison"}"#])).unwrap_err();
    assert!(matches!(err.kind, PluginErrorKind::MemoryCap { .. }), "{err}");
}

#[test]
fn a_trap_in_restore_is_contained() {
    let engine = engine();
    let mut instance = misbehave(&engine, "trap", Limits::default());
    let err = instance.restore(b"trap").unwrap_err();
    assert!(matches!(err, PluginError { kind: PluginErrorKind::Trap { call: "restore", .. }, .. }), "{err}");
    instance.recreate(&engine).unwrap();
    assert_passes_through(&mut instance);
}

#[test]
fn snapshot_and_restore_carry_state_to_a_new_instance() {
    let engine = engine();
    let mut old = misbehave(&engine, "trap", Limits::default());
    old.process(&batch(&["{}", "{}", "{}"])).unwrap();
    let state = old.snapshot().unwrap();
    assert_eq!(state, b"3");
    let mut new = misbehave(&engine, "trap", Limits::default());
    new.restore(&state).unwrap();
    new.process(&batch(&["{}"])).unwrap();
    assert_eq!(new.snapshot().unwrap(), b"4");
}

#[test]
fn a_plugin_for_another_contract_version_is_refused_naming_both() {
    let err = FilterInstance::new(&engine(), &spec("future-contract", json!({}), Limits::default()), Clock::system())
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(matches!(err.kind, PluginErrorKind::Contract { .. }), "{text}");
    assert!(text.contains("weir:filter@0.2.0") && text.contains("weir:filter@0.1.0"), "{text}");
}

#[test]
fn a_file_that_is_not_a_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"not wasm").unwrap();
    let mut s = spec("split", json!({}), Limits::default());
    s.wasm = bogus;
    let err = FilterInstance::new(&engine(), &s, Clock::system()).err().unwrap();
    assert!(matches!(err.kind, PluginErrorKind::Compile { .. }), "{err}");
    assert!(err.to_string().contains("bogus.wasm"), "{err}");
}

#[test]
fn compiled_components_are_cached_on_disk_and_reused() {
    let cache = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(Some(cache.path().to_path_buf())).unwrap();
    let s = spec("misbehave", json!({ "mode": "trap" }), Limits::default());
    FilterInstance::new(&engine, &s, Clock::system()).unwrap();
    let entries: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].extension().unwrap(), "cwasm");
    let modified = std::fs::metadata(&entries[0]).unwrap().modified().unwrap();
    // A second engine (a restart) loads the cached file instead of compiling.
    let engine = PluginEngine::new(Some(cache.path().to_path_buf())).unwrap();
    let mut instance = FilterInstance::new(&engine, &s, Clock::system()).unwrap();
    assert_passes_through(&mut instance);
    assert_eq!(std::fs::metadata(&entries[0]).unwrap().modified().unwrap(), modified);
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(Some(cache.path().to_path_buf())).unwrap();
    let s = spec("misbehave", json!({ "mode": "trap" }), Limits::default());
    FilterInstance::new(&engine, &s, Clock::system()).unwrap();
    let entry = std::fs::read_dir(cache.path()).unwrap().next().unwrap().unwrap().path();
    std::fs::write(&entry, b"garbage").unwrap();
    let mut instance = FilterInstance::new(&engine, &s, Clock::system()).unwrap();
    assert_passes_through(&mut instance);
}

fn probe(grants: Grants, clock: Clock) -> serde_json::Value {
    let mut s = spec("misbehave", json!({ "mode": "probe" }), Limits::default());
    s.grants = grants;
    let mut instance = FilterInstance::new(&engine(), &s, clock).unwrap();
    let out = instance.process(&batch(&[r#"{"m":"poison"}"#])).unwrap();
    serde_json::from_slice(&out.emitted[0].body).unwrap()
}

#[test]
fn the_sandbox_grants_nothing_by_default() {
    // SAFETY: tests in this binary do not read WEIR_PROBE concurrently elsewhere.
    unsafe { std::env::set_var("WEIR_PROBE", "host secret") };
    let seen = probe(Grants::default(), Clock::manual(1_234_000_000_000));
    assert_eq!(seen["env"], serde_json::Value::Null, "no environment: {seen}");
    assert!(seen["dir"].as_str().is_some_and(|e| e.starts_with("error: ")), "no filesystem: {seen}");
    assert_eq!(seen["now_ns"], 1_234_000_000_000u64, "the wall clock is the host clock: {seen}");
    assert!(seen["network"].as_str().is_some_and(|e| e.starts_with("error: ")), "no network: {seen}");
}

#[test]
fn grants_open_exactly_what_they_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("visible.txt"), b"x").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let grants = Grants {
        env: vec![("WEIR_PROBE".into(), "granted".into()), ("WEIR_PROBE_PORT".into(), port)],
        dirs: vec![super::DirGrant { host: dir.path().to_path_buf(), guest: "/data".into(), writable: false }],
        wall_clock: true,
        network: true,
    };
    let seen = probe(grants, Clock::manual(5));
    assert_eq!(seen["env"], "granted");
    assert_eq!(seen["network"], "connected", "{seen}");
    assert_eq!(seen["dir"], json!(["visible.txt"]));
    assert!(seen["now_ns"].as_u64().unwrap() > 1_700_000_000_000_000_000, "the real wall clock: {seen}");
}

/// A module written to Fluent Bit's ABI, from `tests/fluent-bit/` (built
/// by `just plugins` into `$WEIR_PLUGIN_DIR/fluent-bit/`).
fn fluent_bit_spec(module: &str, function: &str) -> FilterSpec {
    let wasm = plugin("split").with_file_name("fluent-bit").join(format!("{module}.wasm"));
    assert!(wasm.is_file(), "{} is missing: run `just plugins` first", wasm.display());
    FilterSpec {
        name: "fluent-bit".into(),
        wasm,
        abi: super::Abi::FluentBit { function: function.into(), format: super::EventFormat::Json },
        matches: TagMatch::new(vec!["*".into()]).unwrap(),
        config: json!({}),
        partition_by: None,
        limits: Limits::default(),
        grants: Grants::default(),
        dedupe: None,
    }
}

fn load_error(spec: &FilterSpec) -> String {
    match FilterInstance::new(&engine(), spec, Clock::system()) {
        Ok(_) => panic!("{} loaded", spec.wasm.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_fluent_bit_module_is_called_per_record_and_a_trap_costs_only_its_record() {
    let mut filter = FilterInstance::new(&engine(), &fluent_bit_spec("rust-wasip1", "rust_filter"), Clock::system())
        .expect("the module loads");
    let out = filter.process(&batch(&[r#"{"message":"a 1ms"}"#, r#"{"trap":1}"#, r#"{"message":"b 2ms"}"#])).unwrap();
    assert_eq!(parents(&out), [Some(0), Some(2)], "each output is its input's child");
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 1);
    assert!(out.rejected[0].1.contains("asked to trap"), "{}", out.rejected[0].1);
    assert_eq!(out.recreated, 1);
    let second: serde_json::Value = serde_json::from_slice(&out.emitted[1].body).unwrap();
    assert_eq!(second["ms"], 2);
    // No timers, no state to hand over: the calls a component has answer empty.
    assert!(filter.tick(5).unwrap().is_empty());
    assert!(filter.snapshot().unwrap().is_empty());
}

#[test]
fn a_fluent_bit_module_without_the_function_or_with_another_signature_is_refused() {
    let missing = load_error(&fluent_bit_spec("rust-wasip1", "no_such_filter"));
    assert!(missing.contains(r#"does not export a function "no_such_filter"; it exports:"#), "{missing}");
    assert!(missing.contains("rust_filter"), "the exports are listed: {missing}");
    let wrong = load_error(&fluent_bit_spec("go-wasip1", "malloc"));
    assert!(
        wrong.contains(
            r#"function "malloc" takes (i32) and returns (i32); Fluent Bit's filter_wasm ABI calls (i32 tag_ptr"#
        ),
        "{wrong}"
    );
}

#[test]
fn a_component_and_a_core_module_each_given_as_the_other_say_which_is_which() {
    let component_as_module = FilterSpec { wasm: plugin("split"), ..fluent_bit_spec("rust-wasip1", "rust_filter") };
    assert!(load_error(&component_as_module).contains("is a component, not a core module"));
    let module_as_component =
        FilterSpec { abi: super::Abi::Component, ..fluent_bit_spec("rust-wasip1", "rust_filter") };
    let error = load_error(&module_as_component);
    assert!(error.contains("is a core WebAssembly module, not a component; for a module written to Fluent Bit's filter_wasm ABI set `abi: fluent-bit`"), "{error}");
}
