//! Adding a field to a JSON object held as bytes, without parsing and
//! re-serialising it: the new field is spliced in before the closing `}`.
//! Inputs use it to attach metadata (`_kafka`, `_es`); the body is known to
//! be one JSON object, since inputs check that first.

/// `body` (one JSON object, surrounding whitespace allowed) with
/// `"key": value` added as its last field.
pub fn with_field(body: &[u8], key: &str, value: &serde_json::Value) -> Vec<u8> {
    let end = body.iter().rposition(|&b| b == b'}').unwrap_or(body.len());
    let head = &body[..end];
    // `{` as the last non-blank byte before `}` means the object is empty.
    let empty = head.iter().rposition(|b| !b.is_ascii_whitespace()).is_none_or(|i| head[i] == b'{');
    let mut out = Vec::with_capacity(body.len() + key.len() + 64);
    out.extend_from_slice(head);
    if !empty {
        out.push(b',');
    }
    serde_json::to_writer(&mut out, key).expect("a string serialises");
    out.push(b':');
    serde_json::to_writer(&mut out, value).expect("a JSON value serialises");
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::with_field;

    #[test]
    fn adds_the_field_last_to_empty_and_full_objects() {
        let meta = json!({"index": "a"});
        assert_eq!(with_field(b"{}", "_es", &meta), br#"{"_es":{"index":"a"}}"#);
        assert_eq!(with_field(b" { } \n", "_es", &meta), br#" { "_es":{"index":"a"}}"#);
        assert_eq!(with_field(b"{\"m\":1}", "_es", &meta), br#"{"m":1,"_es":{"index":"a"}}"#);
        assert_eq!(with_field(b"{\"m\":\"}\"}", "k", &json!(1)), br#"{"m":"}","k":1}"#);
    }
}
