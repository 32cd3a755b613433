//! The UTF-8 byte order mark: some senders put it before text (.NET's
//! default UTF-8 `StreamWriter`, Windows editors, old proxies). RFC 8259
//! §8.1 lets a JSON parser ignore it, and Weir does wherever text enters:
//! an HTTP body of any format, the start of a file (and of each file after
//! rotation), standard input, each Kafka message. Only a leading one: a
//! U+FEFF inside text is a character like any other.

/// `EF BB BF`, U+FEFF in UTF-8.
pub const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// `text` without a leading byte order mark.
pub fn strip(text: &[u8]) -> &[u8] {
    text.strip_prefix(UTF8_BOM).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_leading_mark_is_removed() {
        assert_eq!(super::strip(b"\xef\xbb\xbf{}"), b"{}");
        assert_eq!(super::strip(b"{}\xef\xbb\xbf"), b"{}\xef\xbb\xbf");
        assert_eq!(super::strip(b"\xef\xbb"), b"\xef\xbb", "a partial mark is kept");
        assert_eq!(super::strip(b"\xef\xbb\xbf\xef\xbb\xbf{}"), b"\xef\xbb\xbf{}", "one mark only");
    }
}
