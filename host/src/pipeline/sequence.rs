//! Putting work back in input order: a [`Resequencer`] takes the parts of
//! numbered items as they come, from several contributors in any order, and
//! hands out whole items in number order. The chain numbers every item it
//! takes from the input queue; a partition of a stateful filter and the
//! outputs see items in that order through one of these (see
//! [`super::workers`]).

use std::collections::BTreeMap;

/// Parts of items numbered from `next` on, each item complete once every
/// one of `contributors` has given its part (possibly empty).
#[derive(Debug)]
pub struct Resequencer<T> {
    next: u64,
    contributors: usize,
    pending: BTreeMap<u64, Vec<(usize, T)>>,
}

impl<T> Resequencer<T> {
    /// Items from number `first` on, each with parts from `contributors`.
    pub fn new(first: u64, contributors: usize) -> Self {
        Resequencer { next: first, contributors, pending: BTreeMap::new() }
    }

    /// Take contributor `from`'s part of item `seq`.
    pub fn insert(&mut self, seq: u64, from: usize, part: T) {
        debug_assert!(seq >= self.next, "item {seq} was handed out already (next is {})", self.next);
        self.pending.entry(seq).or_default().push((from, part));
    }

    /// Whether the next item in order is complete.
    pub fn is_ready(&self) -> bool {
        self.pending.get(&self.next).is_some_and(|parts| parts.len() >= self.contributors)
    }

    /// The next item in order, once complete: its number and its parts in
    /// contributor order.
    pub fn pop(&mut self) -> Option<(u64, Vec<T>)> {
        if !self.is_ready() {
            return None;
        }
        let seq = self.next;
        let mut parts = self.pending.remove(&seq).expect("is_ready checked it");
        parts.sort_by_key(|(from, _)| *from);
        self.next += 1;
        Some((seq, parts.into_iter().map(|(_, part)| part).collect()))
    }

    /// Every part still held, in item order: what a stopping chain abandons.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        std::mem::take(&mut self.pending).into_values().flatten().map(|(_, part)| part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_number_order_once_every_contributor_gave_its_part() {
        let mut r = Resequencer::new(5, 2);
        r.insert(6, 0, "6a");
        r.insert(6, 1, "6b");
        assert!(r.pop().is_none(), "item 5 is not complete");
        r.insert(5, 1, "5b");
        assert!(r.pop().is_none(), "item 5 still lacks a part");
        r.insert(5, 0, "5a");
        assert_eq!(r.pop(), Some((5, vec!["5a", "5b"])), "parts in contributor order");
        assert_eq!(r.pop(), Some((6, vec!["6a", "6b"])));
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn what_is_held_can_be_drained() {
        let mut r = Resequencer::new(0, 2);
        r.insert(1, 0, 10);
        r.insert(0, 1, 1);
        assert_eq!(r.drain().collect::<Vec<_>>(), [1, 10]);
        assert!(!r.is_ready());
    }
}
