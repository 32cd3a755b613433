//! Routing by tag: Fluent Bit's `match` globs. A filter processes the records
//! whose tag matches its globs, in the order filters are listed; an output
//! receives every record whose tag matches. `*` matches any run of
//! characters (dots included) and `?` one character.

/// A set of tag globs; a tag matches when any glob does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMatch {
    globs: Vec<String>,
}

impl TagMatch {
    /// Build from globs. Fails on an empty glob.
    pub fn new(globs: Vec<String>) -> Result<Self, String> {
        if globs.is_empty() {
            return Err("expected at least one tag glob".into());
        }
        if let Some(bad) = globs.iter().find(|g| g.trim().is_empty()) {
            return Err(format!("empty tag glob {bad:?}; use \"*\" to match every tag"));
        }
        Ok(TagMatch { globs })
    }

    /// The globs, in the order given.
    pub fn globs(&self) -> &[String] {
        &self.globs
    }

    /// Whether `tag` matches.
    pub fn matches(&self, tag: &str) -> bool {
        self.globs.iter().any(|g| glob_match(g.as_bytes(), tag.as_bytes()))
    }
}

/// Longest tag an input takes from its sender: room for any naming scheme,
/// bounded so tags stay usable as metric labels and in logs.
pub const MAX_TAG_BYTES: usize = 256;

/// Whether a tag from a sender (a Fluent forward frame, a request path) can
/// be routed: 1 to [`MAX_TAG_BYTES`] printable ASCII bytes, none of them a
/// glob character (`*`, `?`) or a list separator (`,`).
pub fn valid_tag(tag: &str) -> bool {
    (1..=MAX_TAG_BYTES).contains(&tag.len())
        && tag.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'*' | b'?' | b','))
}

/// Iterative wildcard match with single-star backtracking: linear in
/// practice, no recursion.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, tag: &str) -> bool {
        TagMatch::new(vec![glob.into()]).unwrap().matches(tag)
    }

    #[test]
    fn tags_from_senders_are_printable_and_free_of_glob_characters() {
        assert!(valid_tag("app.logs-1"));
        assert!(!valid_tag(""));
        assert!(!valid_tag("a b"));
        assert!(!valid_tag("app.*"));
        assert!(!valid_tag(&"a".repeat(MAX_TAG_BYTES + 1)));
    }

    #[test]
    fn globs_match_like_fluent_bit() {
        assert!(m("*", "anything.at.all"));
        assert!(m("mobile.*", "mobile.chunks"));
        assert!(m("mobile.*", "mobile.a.b"));
        assert!(!m("mobile.*", "mobile"));
        assert!(m("*.window", "metrics.window"));
        assert!(m("metrics.?", "metrics.x"));
        assert!(!m("metrics", "metrics.window"));
        assert!(m("a*b*c", "a-b-b-c"));
        assert!(!m("a*b*c", "a-b-b-d"));
    }

    #[test]
    fn any_glob_in_a_list_matches() {
        let t = TagMatch::new(vec!["a".into(), "b.*".into()]).unwrap();
        assert!(t.matches("a") && t.matches("b.x") && !t.matches("c"));
    }

    #[test]
    fn empty_globs_are_refused() {
        assert!(TagMatch::new(vec![]).is_err());
        assert!(TagMatch::new(vec![" ".into()]).unwrap_err().contains("use \"*\""));
    }
}
