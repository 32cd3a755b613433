//! An input event as a filter's pure core sees it: its time and its body,
//! borrowed from the WIT [`Event`], so the core copies no body and its
//! tests need not build a WIT event. Filters that route by or rewrite the
//! tag (`split`, `extract`) keep their own view with it.

use crate::Event;

/// One input record, borrowed from the WIT event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent<'a> {
    /// Event time, ns since the epoch.
    pub time: i64,
    /// JSON body.
    pub body: &'a [u8],
}

impl<'a> From<&'a Event> for InputEvent<'a> {
    fn from(event: &'a Event) -> Self {
        Self { time: event.time, body: &event.body }
    }
}
