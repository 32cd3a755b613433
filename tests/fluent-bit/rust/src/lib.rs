//! A filter written to Fluent Bit's `filter_wasm` ABI, as a Fluent Bit user
//! writes one (serde_json and regex, no tuning of stack or heap), to check
//! that Weir runs such modules as Fluent Bit does and fails better.
//!
//! `rust_filter` (JSON format) adds `ms` (the number before `ms` in
//! `message`), `fb_tag` and `fb_time` from the call. A record asking for it
//! misbehaves instead: `{"trap": …}` panics, `{"drop": …}` returns NULL,
//! `{"empty": …}` an empty string, `{"invalid": …}` text that is not JSON,
//! `{"array": …}` a JSON array, `{"loop": …}` never returns, and
//! `{"grow": MiB}` allocates that much. `rust_filter_msgpack` (msgpack
//! format) adds `fb_format` and `zero: 0` (a NUL byte inside the answer).
//! Answers live in one buffer reused per call, so nothing leaks per record.

use std::cell::RefCell;
use std::sync::OnceLock;

thread_local! {
    static ANSWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn answer(bytes: &[u8]) -> *const u8 {
    ANSWER.with(|answer| {
        let mut answer = answer.borrow_mut();
        answer.clear();
        answer.extend_from_slice(bytes);
        answer.push(0);
        answer.as_ptr()
    })
}

fn millis() -> &'static regex::Regex {
    static MILLIS: OnceLock<regex::Regex> = OnceLock::new();
    MILLIS.get_or_init(|| regex::Regex::new(r"(?P<ms>\d+)ms").expect("a valid pattern"))
}

/// # Safety
/// Fluent Bit's ABI: `tag` and `record` point to `tag_len` and `record_len`
/// bytes of this module's memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rust_filter(
    tag: *const u8,
    tag_len: i32,
    time_sec: u32,
    time_nsec: u32,
    record: *const u8,
    record_len: i32,
) -> *const u8 {
    // SAFETY: the ABI's promise above.
    let (tag, record) = unsafe {
        (std::slice::from_raw_parts(tag, tag_len as usize), std::slice::from_raw_parts(record, record_len as usize))
    };
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice(record) else {
        return answer(b"");
    };
    if map.contains_key("trap") {
        panic!("asked to trap");
    }
    if map.contains_key("drop") {
        return std::ptr::null();
    }
    if map.contains_key("empty") {
        return answer(b"");
    }
    if map.contains_key("invalid") {
        return answer(b"this is not json");
    }
    if map.contains_key("array") {
        return answer(b"[1,2]");
    }
    if map.contains_key("loop") {
        #[allow(clippy::empty_loop)]
        loop {}
    }
    if let Some(mib) = map.get("grow").and_then(serde_json::Value::as_u64) {
        let hog = vec![1u8; (mib as usize) << 20];
        map.insert("grown".into(), hog.iter().map(|&b| u64::from(b)).sum::<u64>().into());
    }
    let ms =
        map.get("message").and_then(|m| m.as_str()).and_then(|m| millis().captures(m)).map(|c| c["ms"].to_string());
    if let Some(ms) = ms {
        map.insert("ms".into(), ms.parse::<u64>().unwrap_or(0).into());
    }
    map.insert("fb_tag".into(), String::from_utf8_lossy(tag).into_owned().into());
    map.insert("fb_time".into(), format!("{time_sec}.{time_nsec:09}").into());
    answer(&serde_json::to_vec(&map).expect("a map serialises"))
}

/// # Safety
/// As [`rust_filter`]; `record` is a msgpack map.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rust_filter_msgpack(
    _tag: *const u8,
    _tag_len: i32,
    _time_sec: u32,
    _time_nsec: u32,
    record: *const u8,
    record_len: i32,
) -> *const u8 {
    // SAFETY: the ABI's promise above.
    let mut record = unsafe { std::slice::from_raw_parts(record, record_len as usize) };
    let Ok(rmpv::Value::Map(mut pairs)) = rmpv::decode::read_value(&mut record) else {
        return std::ptr::null();
    };
    pairs.push(("fb_format".into(), "msgpack".into()));
    pairs.push(("zero".into(), 0.into()));
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &rmpv::Value::Map(pairs)).expect("writing to a Vec cannot fail");
    answer(&out)
}
