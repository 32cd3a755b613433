//! Frames built by hand from the Forward protocol spec v1.

use std::io::Write;

use rmpv::Value;
use serde_json::json;

use super::*;

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| (s(k), v.clone())).collect())
}

fn event_time(seconds: u32, nanos: u32) -> Value {
    let mut data = seconds.to_be_bytes().to_vec();
    data.extend_from_slice(&nanos.to_be_bytes());
    Value::Ext(0, data)
}

fn events(bytes: &[u8]) -> EventFrame<'_> {
    match read_frame(bytes, 1 << 20).unwrap() {
        Frame::Events(events) => events,
        other => panic!("not events: {other:?}"),
    }
}

fn bodies(frame: &EventFrame<'_>) -> Vec<serde_json::Value> {
    frame.entries.iter().map(|e| serde_json::from_slice(&e.as_ref().unwrap().body).unwrap()).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn message_mode_takes_integer_float_and_event_time_times() {
    let record = map(&[("message", s("hello"))]);
    for (time, ns) in [
        (Value::from(1_441_588_984u32), 1_441_588_984_000_000_000i64),
        (Value::F64(1_441_588_984.5), 1_441_588_984_500_000_000),
        (event_time(1_441_588_984, 123), 1_441_588_984_000_000_123),
    ] {
        let bytes = encode(&Value::Array(vec![s("app.web"), time, record.clone()]));
        let frame = events(&bytes);
        assert_eq!(frame.tag, "app.web");
        let event = frame.entries[0].as_ref().unwrap();
        assert_eq!(event.time, ns);
        assert_eq!(event.body, br#"{"message":"hello"}"#);
        assert_eq!(frame.options, Options::default());
    }
}

#[test]
fn forward_mode_keeps_good_entries_and_names_the_bad_one() {
    let bytes = encode(&Value::Array(vec![
        s("app"),
        Value::Array(vec![
            Value::Array(vec![Value::from(1), map(&[("a", Value::from(1))])]),
            Value::Array(vec![Value::from(2), s("not a map")]),
            Value::Array(vec![Value::Array(vec![event_time(3, 0), map(&[])]), map(&[("c", Value::from(3))])]),
        ]),
        map(&[("chunk", s("p8n9gmxTQVC8/nh2wlKKeQ==")), ("size", Value::from(3))]),
    ]));
    let frame = events(&bytes);
    assert_eq!(frame.options.chunk.as_deref(), Some("p8n9gmxTQVC8/nh2wlKKeQ=="));
    assert_eq!(frame.entries.len(), 3);
    assert_eq!(frame.entries[0].as_ref().unwrap().time, 1_000_000_000);
    let bad = frame.entries[1].as_ref().unwrap_err();
    assert_eq!(bad.reason, "record is a string, not a map");
    assert_eq!(bad.entry, br#"[2,"not a map"]"#);
    // Fluent Bit's own event format: [[time, metadata], record].
    let third = frame.entries[2].as_ref().unwrap();
    assert_eq!((third.time, third.body.as_slice()), (3_000_000_000, &br#"{"c":3}"#[..]));
}

fn packed_stream(n: u32) -> Vec<u8> {
    (0..n).flat_map(|i| encode(&Value::Array(vec![event_time(i, i), map(&[("i", Value::from(i))])]))).collect()
}

#[test]
fn packed_forward_reads_entries_from_a_binary_or_a_string() {
    let stream = packed_stream(3);
    let as_bin = encode(&Value::Array(vec![s("app"), Value::Binary(stream.clone()), map(&[("size", Value::from(3))])]));
    // Fluentd's out_forward sends the stream as a msgpack `str` (bytes that
    // are not UTF-8), which a Value cannot hold: write the header by hand.
    let mut as_str = Vec::new();
    rmp::encode::write_array_len(&mut as_str, 2).unwrap();
    rmp::encode::write_str(&mut as_str, "app").unwrap();
    rmp::encode::write_str_len(&mut as_str, stream.len() as u32).unwrap();
    as_str.extend_from_slice(&stream);
    for bytes in [as_bin, as_str] {
        let frame = events(&bytes);
        assert_eq!(bodies(&frame), [json!({"i": 0}), json!({"i": 1}), json!({"i": 2})]);
        assert_eq!(frame.entries[2].as_ref().unwrap().time, 2_000_000_002);
    }
}

#[test]
fn compressed_packed_forward_gunzips_concatenated_members() {
    let (a, b) = (packed_stream(2), packed_stream(1));
    let mut members = gzip(&a);
    members.extend_from_slice(&gzip(&b));
    let option = map(&[("compressed", s("gzip")), ("chunk", s("id"))]);
    let bytes = encode(&Value::Array(vec![s("app"), Value::Binary(members), option]));
    let frame = events(&bytes);
    assert!(frame.options.gzip);
    assert_eq!(bodies(&frame), [json!({"i": 0}), json!({"i": 1}), json!({"i": 0})]);
}

#[test]
fn compressed_entries_are_bounded_and_checked() {
    let option = map(&[("compressed", s("gzip"))]);
    let big = encode(&Value::Array(vec![s("app"), Value::Binary(gzip(&packed_stream(1000))), option.clone()]));
    assert!(matches!(read_frame(&big, 100), Err(FrameError::TooLarge(100))));
    let corrupt = encode(&Value::Array(vec![s("app"), Value::Binary(b"not gzip".to_vec()), option.clone()]));
    assert!(matches!(read_frame(&corrupt, 1 << 20), Err(FrameError::Gzip(_))));
    let unpacked = encode(&Value::Array(vec![s("app"), Value::Array(vec![]), option]));
    assert!(matches!(read_frame(&unpacked, 1 << 20), Err(FrameError::Shape(_))));
}

#[test]
fn frames_of_the_wrong_shape_say_what_is_wrong() {
    let error = |value: Value| read_frame(&encode(&value), 1 << 20).unwrap_err().to_string();
    assert_eq!(error(map(&[])), "expected an array, got a map");
    assert_eq!(error(Value::Array(vec![])), "empty array");
    assert_eq!(error(Value::Array(vec![Value::from(1)])), "expected a tag string first, got an integer");
    assert_eq!(error(Value::Array(vec![s("app")])), "a tag with no events");
    assert_eq!(
        error(Value::Array(vec![s("app"), Value::Boolean(true)])),
        "the second element is a boolean, which is no carrier mode"
    );
    assert_eq!(
        error(Value::Array(vec![s("app"), Value::from(1), map(&[]), s("option")])),
        "option is a string, not a map"
    );
    assert!(matches!(read_frame(&encode(&Value::Nil), 0), Ok(Frame::Heartbeat)));
    let ping = encode(&Value::Array(vec![s("PING"), s("host")]));
    assert!(matches!(read_frame(&ping, 0), Ok(Frame::Handshake("PING", _))));
}

#[test]
fn records_render_as_json_whatever_fluentd_packed() {
    let record = Value::Map(vec![
        (s("text"), s("é")),
        (Value::Binary(b"ruby".to_vec()), Value::Binary(b"ascii-8bit string".to_vec())),
        (s("raw"), Value::Binary(vec![0xff, 0x00])),
        (Value::from(7), Value::F64(1.0)),
        (s("nan"), Value::F64(f64::NAN)),
        (s("big"), Value::from(u64::MAX)),
        (s("nested"), Value::Array(vec![Value::Nil, Value::Boolean(false), map(&[("k", Value::from(-1))])])),
        (s("ext"), Value::Ext(5, vec![1, 2])),
    ]);
    let bytes = encode(&Value::Array(vec![s("app"), Value::from(1), record]));
    let frame = events(&bytes);
    assert_eq!(
        std::str::from_utf8(&frame.entries[0].as_ref().unwrap().body).unwrap(),
        r#"{"text":"é","ruby":"ascii-8bit string","raw":"/wA=","7":1.0,"nan":null,"big":18446744073709551615,"nested":[null,false,{"k":-1}],"ext":{"ext":5,"data":"AQI="}}"#
    );
}

#[test]
fn bad_times_are_entry_errors() {
    let record = map(&[]);
    for (time, reason) in [
        (Value::Ext(0, vec![0; 4]), "EventTime has 4 bytes, not 8"),
        (Value::Ext(1, vec![0; 8]), "time is extension type 1, not EventTime (0)"),
        (event_time(1, 1_000_000_000), "EventTime nanoseconds 1000000000 are not below one second"),
        (Value::from(u64::MAX), "time 18446744073709551615 is out of range"),
    ] {
        let bytes = encode(&Value::Array(vec![s("app"), time, record.clone()]));
        assert_eq!(events(&bytes).entries[0].as_ref().unwrap_err().reason, reason);
    }
}

#[test]
fn an_ack_echoes_the_chunk() {
    let ack = ack("p8n9gmxTQVC8/nh2wlKKeQ==");
    let value = rmpv::decode::read_value(&mut &ack[..]).unwrap();
    assert_eq!(value, map(&[("ack", s("p8n9gmxTQVC8/nh2wlKKeQ=="))]));
}

#[test]
fn fluent_bit_metrics_frames_become_one_dead_letter_entry() {
    let option = map(&[("fluent_signal", Value::from(1)), ("chunk", s("c"))]);
    let bytes = encode(&Value::Array(vec![s("metrics"), Value::Binary(vec![1, 2, 3]), option]));
    let frame = events(&bytes);
    assert_eq!(frame.entries.len(), 1);
    let bad = frame.entries[0].as_ref().unwrap_err();
    assert_eq!(bad.reason, "fluent_signal 1: Fluent Bit metrics or traces, which weir does not take");
    assert_eq!(frame.options.chunk.as_deref(), Some("c"), "the chunk is still acked");
}
