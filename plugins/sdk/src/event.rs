//! An input event as a filter's pure core sees it: its time and its body,
//! borrowed from the WIT event, so the core needs no bindings and copies no
//! body. Filters that route by or rewrite the tag (`split`, `extract`) keep
//! their own view with it.

/// One input record, borrowed from the WIT event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent<'a> {
    /// Event time, ns since the epoch.
    pub time: i64,
    /// JSON body.
    pub body: &'a [u8],
}

impl<'a> InputEvent<'a> {
    /// Borrow an event's time and body.
    pub fn new(time: i64, body: &'a [u8]) -> Self {
        Self { time, body }
    }
}
