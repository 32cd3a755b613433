//! A Weir filter built as a Fluent Bit `filter_wasm` module: with the SDK's
//! `fluent-bit` feature, [`crate::export_filter!`] exports `weir_filter`
//! for Fluent Bit's ABI instead of the component's WIT exports, and the
//! host functions ([`crate::host`]) work without Weir. `docs/fluent-bit-abi.md`
//! has the `[FILTER]` section and what each bundled filter keeps.
//!
//! Fluent Bit calls `weir_filter(tag, tag_len, time_sec, time_nsec, record,
//! record_len)` once per record, with the record as JSON (its default
//! `Event_Format json`), and takes back one JSON object or nothing. So one
//! call is [`Filter::process`] on a batch of one, and of what it emits:
//! - only records under the input's own tag come back (a record under
//!   another tag, such as `extract`'s metric records, cannot be routed
//!   apart in Fluent Bit: its tag is fixed by the ABI);
//! - none: the record is dropped; one: it replaces the record; several
//!   (`split`'s statements): `{"records": [ … ]}`, which a Lua filter can
//!   fan out (the ABI returns one record per call);
//! - a refused record comes back unchanged with `"weir_rejected": reason`,
//!   since Fluent Bit has no dead letter; a config the filter refuses adds
//!   `"weir_config_error"` to every record instead of dropping them.
//!
//! The config is fixed when the module is built: the `WEIR_FLUENT_BIT_CONFIG`
//! environment variable of the build holds its JSON (`just fluent-bit-module`
//! sets it from a file), as Fluent Bit's ABI passes no config at run time.

use std::cell::{Cell, RefCell};

use crate::body::ObjectWriter;
use crate::filter::Filter;
use crate::state::InstanceState;
use crate::{Event, Timestamp};

thread_local! {
    /// The returned record, NUL-terminated: guest memory the host copies
    /// before the next call, reused so nothing leaks per record.
    static ANSWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The record's time, which stands in for the host clock.
    static NOW: Cell<Timestamp> = const { Cell::new(0) };
}

/// The host clock as a Fluent Bit module sees it: the time of the record
/// at hand (Fluent Bit gives a filter no clock of its own).
pub fn now() -> Timestamp {
    NOW.get()
}

/// What [`crate::export_filter!`] expands to in a `fluent-bit` build.
///
/// # Safety
/// `tag` and `record` must point to `tag_len` and `record_len` readable
/// bytes, as Fluent Bit's runtime guarantees.
#[allow(unsafe_code)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn call<F: Filter>(
    instance: &InstanceState<F>,
    config: &str,
    tag: *const u8,
    tag_len: i32,
    time_sec: u32,
    time_nsec: u32,
    record: *const u8,
    record_len: i32,
) -> *const u8 {
    let len = |n: i32| usize::try_from(n).unwrap_or(0);
    // SAFETY: the caller's promise.
    let (tag, record) =
        unsafe { (std::slice::from_raw_parts(tag, len(tag_len)), std::slice::from_raw_parts(record, len(record_len))) };
    let time = i64::from(time_sec) * 1_000_000_000 + i64::from(time_nsec);
    match respond(instance, config, &String::from_utf8_lossy(tag), time, record) {
        None => std::ptr::null(),
        Some(body) => ANSWER.with(|answer| {
            let mut answer = answer.borrow_mut();
            answer.clear();
            answer.extend_from_slice(&body);
            answer.push(0);
            answer.as_ptr()
        }),
    }
}

/// One record through the filter; see the module docs. `None` drops it.
pub fn respond<F: Filter>(
    instance: &InstanceState<F>,
    config: &str,
    tag: &str,
    time: Timestamp,
    record: &[u8],
) -> Option<Vec<u8>> {
    NOW.set(time);
    if instance.with(|_| ()).is_none() {
        match F::configure(config) {
            Ok(filter) => instance.set(filter),
            Err(e) => return Some(annotate(record, "weir_config_error", &e.to_string())),
        }
    }
    let event = Event { time, tag: tag.to_string(), body: record.to_vec() };
    let result = instance.with(|filter| filter.process(vec![event])).expect("configured above");
    let result = match result {
        Ok(result) => result,
        Err(reason) => return Some(annotate(record, "weir_rejected", &reason)),
    };
    if let Some(rejected) = result.rejected.first() {
        return Some(annotate(record, "weir_rejected", &rejected.reason));
    }
    let mut bodies: Vec<Vec<u8>> = result
        .emitted
        .into_iter()
        .filter(|e| e.parent == Some(0) && e.event.tag == tag)
        .map(|e| e.event.body)
        .collect();
    match bodies.len() {
        0 => None,
        1 => bodies.pop(),
        _ => {
            let mut out = Vec::with_capacity(bodies.iter().map(|b| b.len() + 1).sum::<usize>() + 16);
            out.extend_from_slice(b"{\"records\":[");
            for (i, body) in bodies.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(body);
            }
            out.extend_from_slice(b"]}");
            Some(out)
        }
    }
}

/// `record` with `key: message` added, or, when the record is not a JSON
/// object, a new object holding both.
fn annotate(record: &[u8], key: &str, message: &str) -> Vec<u8> {
    match ObjectWriter::extend(record, key.len() + message.len() + 8) {
        Ok(mut body) => {
            body.str(key, message);
            body.finish()
        }
        Err(_) => {
            let mut body = ObjectWriter::new();
            body.str("record", &String::from_utf8_lossy(record)).str(key, message);
            body.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchResult, ConfigError, Emitted, Rejected};

    /// Splits `{"n": N}` into N records (N = 0 drops it), adds a metric
    /// record under another tag, refuses `{"bad": …}`, and refuses the
    /// config `"no"`.
    struct Fan;

    impl Filter for Fan {
        fn configure(config: &str) -> Result<Self, ConfigError> {
            if config == "\"no\"" { Err(ConfigError::at("mode", "refused")) } else { Ok(Fan) }
        }

        fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
            let event = &events[0];
            let value: serde_json::Value = serde_json::from_slice(&event.body).unwrap();
            if value.get("bad").is_some() {
                return Ok(BatchResult {
                    emitted: vec![],
                    rejected: vec![Rejected { index: 0, reason: "bad".into() }],
                });
            }
            let n = value["n"].as_u64().unwrap();
            let mut emitted: Vec<Emitted> = (0..n)
                .map(|i| Emitted {
                    parent: Some(0),
                    event: Event { time: now(), tag: event.tag.clone(), body: format!("{{\"i\":{i}}}").into_bytes() },
                })
                .collect();
            emitted.push(Emitted {
                parent: Some(0),
                event: Event { time: 0, tag: "metrics".into(), body: b"{}".to_vec() },
            });
            Ok(BatchResult { emitted, rejected: vec![] })
        }
    }

    fn run(config: &str, record: &str) -> Option<String> {
        let instance = InstanceState::<Fan>::new();
        respond(&instance, config, "app", 7, record.as_bytes()).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn records_under_the_input_tag_come_back_one_or_as_a_list() {
        assert_eq!(run("{}", r#"{"n":0}"#), None, "nothing under the tag: dropped");
        assert_eq!(run("{}", r#"{"n":1}"#).unwrap(), r#"{"i":0}"#);
        assert_eq!(run("{}", r#"{"n":2}"#).unwrap(), r#"{"records":[{"i":0},{"i":1}]}"#);
    }

    #[test]
    fn refusals_and_config_errors_keep_the_record_and_say_why() {
        assert_eq!(run("{}", r#"{"bad":1}"#).unwrap(), r#"{"bad":1,"weir_rejected":"bad"}"#);
        assert_eq!(run("\"no\"", r#"{"n":1}"#).unwrap(), r#"{"n":1,"weir_config_error":"mode: refused"}"#);
    }

    #[test]
    fn the_clock_is_the_record_time() {
        let instance = InstanceState::<Fan>::new();
        respond(&instance, "{}", "app", 42, br#"{"n":1}"#);
        assert_eq!(now(), 42);
    }
}
