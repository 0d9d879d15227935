//! One shard of the keyspace: a hash map plus a min-heap of expiry
//! deadlines, and the operations commands are built from. A shard knows
//! nothing of locks or owner goroutines (`store.rs` chooses); every
//! operation writes its reply bytes straight into the connection's output
//! buffer, so a GET under a lock copies the value exactly once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::OnceLock;
use std::time::Instant;

use crate::{glob, resp};

/// Milliseconds on the server's monotonic clock (never 0).
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Most deadlines one shard pops per active-expiry tick, so a tick
/// holds a shard's lock (or its owner goroutine) for a bounded time; the
/// rest wait for the next tick, and lazy expiry hides them meanwhile.
const EXPIRE_BUDGET: usize = 2_000;

struct Entry {
    value: Vec<u8>,
    /// Deadline in `now_ms` milliseconds; `None` lives forever.
    expires: Option<u64>,
}

/// What SET does with an existing TTL.
#[derive(Clone, Copy)]
pub enum Ttl {
    Clear,
    Keep,
    At(u64),
}

/// SET's NX / XX.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Always,
    IfAbsent,
    IfPresent,
}

/// A shard operation over keys held as `B` (`&[u8]` under a lock, owned
/// `Vec<u8>` when sent to an owner goroutine). Each returns an integer
/// (summed across shards for multi-key commands) and may write reply bytes.
pub enum Op<B> {
    /// Writes the value as a bulk string, or nil.
    Get(B),
    /// Returns 1 if the value was stored (NX/XX decide).
    Set {
        key: B,
        value: B,
        ttl: Ttl,
        cond: Cond,
    },
    /// Returns 1 if the key existed.
    Del(B),
    /// Returns 1 if the key exists.
    Exists(B),
    /// Writes the new value as an integer, or the error.
    IncrBy(B, i64),
    /// Returns 1 if the key exists; a deadline already past deletes it.
    Expire(B, u64),
    /// Returns the remaining milliseconds, -1 without TTL, -2 if missing.
    Ttl(B),
    /// Writes each live key matching the pattern as a bulk string; returns
    /// how many.
    Keys(B),
    /// Returns the number of keys (expired ones not yet dropped included,
    /// as Redis's DBSIZE does).
    Count,
    /// Returns the number of keys with a TTL.
    CountExpiring,
    /// Drops every key.
    Flush,
}

impl<B: AsRef<[u8]>> Op<B> {
    pub fn as_slices(&self) -> Op<&[u8]> {
        match self {
            Op::Get(k) => Op::Get(k.as_ref()),
            Op::Set {
                key,
                value,
                ttl,
                cond,
            } => Op::Set {
                key: key.as_ref(),
                value: value.as_ref(),
                ttl: *ttl,
                cond: *cond,
            },
            Op::Del(k) => Op::Del(k.as_ref()),
            Op::Exists(k) => Op::Exists(k.as_ref()),
            Op::IncrBy(k, by) => Op::IncrBy(k.as_ref(), *by),
            Op::Expire(k, at) => Op::Expire(k.as_ref(), *at),
            Op::Ttl(k) => Op::Ttl(k.as_ref()),
            Op::Keys(p) => Op::Keys(p.as_ref()),
            Op::Count => Op::Count,
            Op::CountExpiring => Op::CountExpiring,
            Op::Flush => Op::Flush,
        }
    }
}

impl Op<&[u8]> {
    /// The owned copy sent to an owner goroutine.
    pub fn to_owned(&self) -> Op<Vec<u8>> {
        match *self {
            Op::Get(k) => Op::Get(k.to_vec()),
            Op::Set {
                key,
                value,
                ttl,
                cond,
            } => Op::Set {
                key: key.to_vec(),
                value: value.to_vec(),
                ttl,
                cond,
            },
            Op::Del(k) => Op::Del(k.to_vec()),
            Op::Exists(k) => Op::Exists(k.to_vec()),
            Op::IncrBy(k, by) => Op::IncrBy(k.to_vec(), by),
            Op::Expire(k, at) => Op::Expire(k.to_vec(), at),
            Op::Ttl(k) => Op::Ttl(k.to_vec()),
            Op::Keys(p) => Op::Keys(p.to_vec()),
            Op::Count => Op::Count,
            Op::CountExpiring => Op::CountExpiring,
            Op::Flush => Op::Flush,
        }
    }

    /// The key that picks the shard; `None` for whole-keyspace operations.
    pub fn key(&self) -> Option<&[u8]> {
        match *self {
            Op::Get(k)
            | Op::Set { key: k, .. }
            | Op::Del(k)
            | Op::Exists(k)
            | Op::IncrBy(k, _)
            | Op::Expire(k, _)
            | Op::Ttl(k) => Some(k),
            Op::Keys(_) | Op::Count | Op::CountExpiring | Op::Flush => None,
        }
    }
}

#[derive(Default)]
pub struct Shard {
    map: HashMap<Box<[u8]>, Entry>,
    /// Every deadline ever set, earliest first. An item is stale when its
    /// key is gone or has another deadline now; stale items are skipped
    /// when popped, and the heap is rebuilt if they pile up.
    deadlines: BinaryHeap<Reverse<(u64, Box<[u8]>)>>,
}

impl Shard {
    /// The live entry for `key`, dropping it first if it has expired (lazy
    /// expiry: a read never sees an expired key, whatever the ticker does).
    fn live(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let expired =
            matches!(self.map.get(key), Some(Entry { expires: Some(at), .. }) if *at <= now_ms());
        if expired {
            self.map.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    fn push_deadline(&mut self, at: u64, key: &[u8]) {
        if self.deadlines.len() > 2 * self.map.len() + 1024 {
            self.deadlines = self
                .map
                .iter()
                .filter_map(|(k, e)| e.expires.map(|at| Reverse((at, k.clone()))))
                .collect();
        }
        self.deadlines.push(Reverse((at, key.into())));
    }

    pub fn apply(&mut self, op: Op<&[u8]>, out: &mut Vec<u8>) -> i64 {
        match op {
            Op::Get(key) => {
                match self.live(key) {
                    Some(entry) => resp::bulk(out, &entry.value),
                    None => resp::nil(out),
                }
                0
            }
            Op::Set {
                key,
                value,
                ttl,
                cond,
            } => self.set(key, value, ttl, cond),
            Op::Del(key) => {
                if self.live(key).is_none() {
                    return 0;
                }
                self.map.remove(key);
                1
            }
            Op::Exists(key) => self.live(key).is_some() as i64,
            Op::IncrBy(key, by) => {
                self.incr_by(key, by, out);
                0
            }
            Op::Expire(key, at) => {
                if self.live(key).is_none() {
                    return 0;
                }
                if at <= now_ms() {
                    self.map.remove(key);
                } else {
                    self.map.get_mut(key).expect("live").expires = Some(at);
                    self.push_deadline(at, key);
                }
                1
            }
            Op::Ttl(key) => match self.live(key) {
                None => -2,
                Some(Entry { expires: None, .. }) => -1,
                Some(Entry {
                    expires: Some(at), ..
                }) => at.saturating_sub(now_ms()) as i64,
            },
            Op::Keys(pattern) => {
                let now = now_ms();
                let mut n = 0;
                for (key, entry) in &self.map {
                    if entry.expires.is_none_or(|at| at > now) && glob::matches(pattern, key) {
                        resp::bulk(out, key);
                        n += 1;
                    }
                }
                n
            }
            Op::Count => self.map.len() as i64,
            Op::CountExpiring => self.map.values().filter(|e| e.expires.is_some()).count() as i64,
            Op::Flush => {
                self.map = HashMap::new();
                self.deadlines = BinaryHeap::new();
                0
            }
        }
    }

    fn set(&mut self, key: &[u8], value: &[u8], ttl: Ttl, cond: Cond) -> i64 {
        let deadline = match ttl {
            Ttl::At(at) => Some(at),
            _ => None,
        };
        match self.live(key) {
            Some(_) if cond == Cond::IfAbsent => return 0,
            None if cond == Cond::IfPresent => return 0,
            Some(entry) => {
                // Overwrite in place: the old allocation is reused when it
                // is big enough, so a steady SET workload does not allocate.
                entry.value.clear();
                entry.value.extend_from_slice(value);
                if !matches!(ttl, Ttl::Keep) {
                    entry.expires = deadline;
                }
            }
            None => {
                self.map.insert(
                    key.into(),
                    Entry {
                        value: value.to_vec(),
                        expires: deadline,
                    },
                );
            }
        }
        if let Some(at) = deadline {
            self.push_deadline(at, key);
        }
        1
    }

    fn incr_by(&mut self, key: &[u8], by: i64, out: &mut Vec<u8>) {
        let current = match self.live(key) {
            None => 0,
            Some(entry) => match resp::parse_integer(&entry.value) {
                Some(n) => n,
                None => return resp::error(out, "ERR value is not an integer or out of range"),
            },
        };
        let Some(next) = current.checked_add(by) else {
            return resp::error(out, "ERR increment or decrement would overflow");
        };
        let mut digits = itoa::Buffer::new();
        let text = digits.format(next).as_bytes();
        match self.map.get_mut(key) {
            // INCR keeps the TTL, as in Redis.
            Some(entry) => {
                entry.value.clear();
                entry.value.extend_from_slice(text);
            }
            None => {
                self.map.insert(
                    key.into(),
                    Entry {
                        value: text.to_vec(),
                        expires: None,
                    },
                );
            }
        }
        resp::integer(out, next);
    }

    /// Active expiry: drops keys whose deadline has passed, at most
    /// `EXPIRE_BUDGET` deadlines popped. Returns how many keys were dropped.
    pub fn expire_due(&mut self) -> usize {
        let now = now_ms();
        let mut dropped = 0;
        for _ in 0..EXPIRE_BUDGET {
            match self.deadlines.peek() {
                Some(Reverse((at, _))) if *at <= now => {}
                _ => break,
            }
            let Reverse((at, key)) = self.deadlines.pop().expect("peeked");
            if matches!(self.map.get(&key), Some(e) if e.expires == Some(at)) {
                self.map.remove(&key);
                dropped += 1;
            }
        }
        dropped
    }
}
