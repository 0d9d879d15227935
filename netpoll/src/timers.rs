//! The poller thread's deadline heap (module doc of the crate, "Deadlines").
//!
//! A min-heap of `(when, token)` plus a map from token to its live deadline.
//! Cancelling removes the map entry only; a heap entry whose map entry is
//! gone (or was reset to another time) is stale and skipped when it surfaces.
//! When stale entries outnumber live ones the heap is rebuilt, so a stream
//! of reads that finish before their deadline cannot grow it without bound.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::{Event, Token};

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(u64, Token)>>,
    live: HashMap<Token, u64>,
}

impl Timers {
    pub(crate) fn set(&mut self, token: Token, at: u64) {
        self.live.insert(token, at);
        self.heap.push(Reverse((at, token)));
    }

    pub(crate) fn cancel(&mut self, token: Token) {
        self.live.remove(&token);
        if self.heap.len() > 64 && self.heap.len() > 2 * self.live.len() {
            let live = &self.live;
            self.heap
                .retain(|Reverse((at, token))| live.get(token) == Some(at));
        }
    }

    /// Moves every timer due at `now` into `events`.
    pub(crate) fn expire(&mut self, now: u64, events: &mut Vec<Event>) {
        while let Some(&Reverse((at, token))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if self.live.get(&token) == Some(&at) {
                self.live.remove(&token);
                events.push(Event::Timer { token });
            }
        }
    }

    /// The earliest live deadline, dropping stale heap entries on the way.
    pub(crate) fn next(&mut self) -> Option<u64> {
        while let Some(&Reverse((at, token))) = self.heap.peek() {
            if self.live.get(&token) == Some(&at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }
}
