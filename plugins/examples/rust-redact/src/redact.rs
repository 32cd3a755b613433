//! The `redact` example's logic: masks e-mail addresses and payment card
//! numbers in one string member of each record's JSON body.
//!
//! `docs/plugins.md` ("The redact filter") specifies the behaviour; every
//! language's example implements it byte for byte. JSON is scanned, not
//! parsed: only the body's top level is walked, to find the member, and the
//! new value is spliced into the original bytes.

use crate::config::RedactFilterConfig;

/// A card is 13 to 19 digits that pass the Luhn check.
const CARD_DIGITS: std::ops::RangeInclusive<usize> = 13..=19;

/// The body's top level is not a JSON object this filter can scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnObject;

/// Whether a sequence of ASCII digits passes the Luhn check.
fn luhn(digits: &[u8]) -> bool {
    let total: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &c)| {
            let d = u32::from(c - b'0');
            if i.is_multiple_of(2) {
                d
            } else if d * 2 > 9 {
                d * 2 - 9
            } else {
                d * 2
            }
        })
        .sum();
    total.is_multiple_of(10)
}

/// `text` with each card masked, and how many.
fn mask_cards(text: &str, mask: &str) -> (String, u64) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut last, mut count, mut i) = (0, 0, 0);
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut digits = [0u8; 19];
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // One run: digit groups joined by single spaces or dashes.
        groups.clear();
        loop {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            groups.push((start, i));
            if i + 1 < bytes.len() && matches!(bytes[i], b' ' | b'-') && bytes[i + 1].is_ascii_digit() {
                i += 1;
            } else {
                break;
            }
        }
        let mut a = 0;
        while a < groups.len() {
            let (mut best, mut n) = (None, 0);
            for (b, &(start, end)) in groups.iter().enumerate().skip(a) {
                if n + end - start > *CARD_DIGITS.end() {
                    break;
                }
                digits[n..n + end - start].copy_from_slice(&bytes[start..end]);
                n += end - start;
                if CARD_DIGITS.contains(&n) && luhn(&digits[..n]) {
                    best = Some(b);
                }
            }
            let Some(best) = best else {
                a += 1;
                continue;
            };
            out.push_str(&text[last..groups[a].0]);
            out.push_str(mask);
            last = groups[best].1;
            count += 1;
            a = best + 1;
        }
    }
    out.push_str(&text[last..]);
    (out, count)
}

/// `text` with e-mails, then cards, masked, and how many of each.
pub fn redact_text(text: &str, config: &RedactFilterConfig) -> (String, u64, u64) {
    let mut text = text.to_owned();
    let mut emails = 0;
    if let Some(email) = config.email.as_ref().filter(|_| !config.email_needs_at || text.contains('@')) {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for m in email.find_iter(&text).filter(|m| !m.is_empty()) {
            out.push_str(&text[last..m.start()]);
            out.push_str(&config.mask);
            last = m.end();
            emails += 1;
        }
        out.push_str(&text[last..]);
        text = out;
    }
    let mut cards = 0;
    if config.cards {
        (text, cards) = mask_cards(&text, &config.mask);
    }
    (text, emails, cards)
}

// ---- JSON scanning: each returns the end (exclusive) of what starts at `i`.

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

fn string_end(s: &[u8], mut i: usize) -> Result<usize, NotAnObject> {
    i += 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(NotAnObject)
}

fn value_end(s: &[u8], mut i: usize) -> Result<usize, NotAnObject> {
    match s.get(i) {
        None => Err(NotAnObject),
        Some(b'"') => string_end(s, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            while i < s.len() {
                let c = s[i];
                if c == b'"' {
                    i = string_end(s, i)?;
                    continue;
                }
                i += 1;
                match c {
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i);
                        }
                    }
                    _ => {}
                }
            }
            Err(NotAnObject)
        }
        Some(_) => {
            let end = s[i..].iter().position(|c| b" \t\r\n,}]".contains(c)).map_or(s.len(), |p| i + p);
            if end == i { Err(NotAnObject) } else { Ok(end) }
        }
    }
}

fn hex4(s: &[u8]) -> Option<u32> {
    let digits = std::str::from_utf8(s.get(..4)?).ok()?;
    u32::from_str_radix(digits, 16).ok().filter(|_| digits.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The text of the JSON string literal `s` (quotes included); lone
/// surrogate escapes become U+FFFD.
fn decode_string(s: &[u8]) -> Result<String, NotAnObject> {
    let body = &s[1..s.len() - 1];
    if !body.contains(&b'\\') {
        return String::from_utf8(body.to_vec()).map_err(|_| NotAnObject);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let escape = *body.get(i + 1).ok_or(NotAnObject)?;
        i += 2;
        match escape {
            b'"' | b'\\' | b'/' => out.push(escape),
            b'b' => out.push(b'\x08'),
            b'f' => out.push(b'\x0c'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let mut cp = hex4(&body[i..]).ok_or(NotAnObject)?;
                i += 4;
                if (0xD800..=0xDBFF).contains(&cp)
                    && body[i..].starts_with(b"\\u")
                    && let Some(low @ 0xDC00..=0xDFFF) = hex4(&body[i + 2..])
                {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    i += 6;
                }
                let c = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => return Err(NotAnObject),
        }
    }
    String::from_utf8(out).map_err(|_| NotAnObject)
}

/// Appends the canonical JSON string literal of `text` (docs/plugins.md).
fn push_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut plain = 0;
    for (i, &c) in bytes.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[plain..i]);
        plain = i + 1;
        match c {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', c]),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]),
        }
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

/// The span of the value of the first top-level member of `body` named `name`.
fn find_member(body: &[u8], name: &str) -> Result<Option<(usize, usize)>, NotAnObject> {
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return Err(NotAnObject);
    }
    i = skip_ws(body, i + 1);
    if body.get(i) == Some(&b'}') {
        return Ok(None);
    }
    loop {
        if body.get(i) != Some(&b'"') {
            return Err(NotAnObject);
        }
        let key_end = string_end(body, i)?;
        let key = &body[i..key_end];
        let matches =
            if key.contains(&b'\\') { decode_string(key)? == name } else { &key[1..key.len() - 1] == name.as_bytes() };
        i = skip_ws(body, key_end);
        if body.get(i) != Some(&b':') {
            return Err(NotAnObject);
        }
        let start = skip_ws(body, i + 1);
        let end = value_end(body, start)?;
        if matches {
            return Ok(Some((start, end)));
        }
        i = skip_ws(body, end);
        match body.get(i) {
            Some(b'}') => return Ok(None),
            Some(b',') => i = skip_ws(body, i + 1),
            _ => return Err(NotAnObject),
        }
    }
}

/// Whether `s` holds 13 digits in one run, where a card could be.
fn has_card_run(s: &[u8]) -> bool {
    let mut digits = 0;
    for (i, &c) in s.iter().enumerate() {
        if c.is_ascii_digit() {
            digits += 1;
            if digits >= *CARD_DIGITS.start() {
                return true;
            }
        } else if !(matches!(c, b' ' | b'-')
            && i > 0
            && s[i - 1].is_ascii_digit()
            && s.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            digits = 0;
        }
    }
    false
}

/// A redacted body and how many e-mails and cards it masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub body: Vec<u8>,
    pub emails: u64,
    pub cards: u64,
}

/// One filter instance: its config and the running total of masks.
#[derive(Debug)]
pub struct Redactor {
    config: RedactFilterConfig,
    total: u64,
}

impl Redactor {
    pub fn new(config: RedactFilterConfig) -> Self {
        Redactor { config, total: 0 }
    }

    /// False when nothing in `body` can be masked, judged on its raw bytes:
    /// most records have no `@`, no long digit run and no escape (through
    /// which either could hide).
    fn might_mask(&self, body: &[u8]) -> bool {
        let config = &self.config;
        body.contains(&b'\\')
            || (config.email.is_some() && (!config.email_needs_at || body.contains(&b'@')))
            || (config.cards && has_card_run(body))
    }

    /// The redacted body, or `None` when nothing was masked.
    pub fn redact(&mut self, body: &[u8]) -> Result<Option<Redacted>, NotAnObject> {
        if !self.might_mask(body) {
            return Ok(None);
        }
        let Some((start, end)) = find_member(body, &self.config.field)? else {
            return Ok(None);
        };
        if body[start] != b'"' {
            return Ok(None);
        }
        let (text, emails, cards) = redact_text(&decode_string(&body[start..end])?, &self.config);
        if emails + cards == 0 {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(body.len() + text.len() + 32);
        out.extend_from_slice(&body[..start]);
        push_string(&mut out, &text);
        out.extend_from_slice(&body[end..]);
        self.total += emails + cards;
        if let Some(name) = &self.config.total_field {
            let close = out.iter().rposition(|&c| c == b'}').expect("a scanned object ends with }");
            let member = format!(",\"{name}\":{}", self.total);
            out.splice(close..close, member.into_bytes());
        }
        Ok(Some(Redacted { body: out, emails, cards }))
    }

    /// The running total as decimal text.
    pub fn snapshot(&self) -> Vec<u8> {
        self.total.to_string().into_bytes()
    }

    /// Takes over a total from [`Redactor::snapshot`]; empty state means zero.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        if state.is_empty() {
            return Ok(());
        }
        self.total = std::str::from_utf8(state)
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or("state is not a decimal count of masks")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata");

    fn run(config: &str) -> Vec<u8> {
        let mut redactor = Redactor::new(RedactFilterConfig::from_json(config).unwrap());
        let input = std::fs::read(format!("{DATA}/input.ndjson")).unwrap();
        let mut out = Vec::new();
        for line in input.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            match redactor.redact(line).unwrap() {
                Some(redacted) => out.extend_from_slice(&redacted.body),
                None => out.extend_from_slice(line),
            }
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn the_shared_input_gives_the_expected_output_with_the_default_config() {
        assert_eq!(
            String::from_utf8(run("{}")).unwrap(),
            std::fs::read_to_string(format!("{DATA}/expected-default.ndjson")).unwrap()
        );
    }

    #[test]
    fn the_shared_input_gives_the_expected_output_with_the_custom_config() {
        let config = std::fs::read_to_string(format!("{DATA}/custom.json")).unwrap();
        assert_eq!(
            String::from_utf8(run(&config)).unwrap(),
            std::fs::read_to_string(format!("{DATA}/expected-custom.ndjson")).unwrap()
        );
    }

    #[test]
    fn snapshot_and_restore_carry_the_running_total() {
        let config = RedactFilterConfig::from_json(r#"{"total_field":"n"}"#).unwrap();
        let mut a = Redactor::new(config.clone());
        a.redact(br#"{"message":"a@example.com b@example.com"}"#).unwrap();
        let mut b = Redactor::new(config);
        b.restore(&a.snapshot()).unwrap();
        let redacted = b.redact(br#"{"message":"c@example.com"}"#).unwrap().unwrap();
        assert_eq!(redacted.body, br#"{"message":"[REDACTED]","n":3}"#);
        assert!(b.restore(b"x").is_err());
    }
}
