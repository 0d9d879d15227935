//! [`Barrier`]: `n` parties wait until all have arrived, then all go on;
//! reusable. The interface is std's `std::sync::Barrier`; Go has none in
//! `sync`.
//!
//! # Protocol
//!
//! Under one spin lock: `arrived` (parties waiting in the current
//! generation) and their waiters.
//! - A party that is not the `n`-th queues its waiter and parks (releasing
//!   the lock once off the stack). It is woken only when its generation
//!   completes, so it returns as a follower.
//! - The `n`-th party takes the queued waiters, resets `arrived` to 0 (the
//!   next generation starts empty, so the barrier is reusable at once), and
//!   wakes them after unlocking; it is the leader.
//!
//! Because a woken waiter never re-checks a shared count, a fast party
//! starting the next generation cannot confuse a slow one still waking from
//! the previous generation: no generation counter is needed.
//!
//! `Barrier::new(0)` behaves as `new(1)`, as std's does: every `wait` returns
//! at once as the leader.

use std::fmt;

use crate::sched::{prepare_wait, wait_unlocking, WaitReason, Waiter};
use crate::util::SpinLock;

struct State {
    arrived: usize,
    waiters: Vec<Waiter>,
}

/// Lets `n` goroutines (or threads) wait until all of them have arrived.
pub struct Barrier {
    parties: usize,
    state: SpinLock<State>,
}

/// What [`Barrier::wait`] returns: whether this party was the leader.
#[derive(Debug)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this party was the one whose arrival released the others
    /// (exactly one per generation).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` parties (`0` is treated as `1`).
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            parties: if n == 0 { 1 } else { n },
            state: SpinLock::new(State {
                arrived: 0,
                waiters: Vec::new(),
            }),
        }
    }

    /// Parks until `n` parties have called `wait` in this generation.
    pub fn wait(&self) -> BarrierWaitResult {
        let mut state = self.state.lock();
        state.arrived += 1;
        if state.arrived < self.parties {
            let (waiter, handle) = prepare_wait();
            state.waiters.push(waiter);
            wait_unlocking(WaitReason::Barrier, handle, state);
            return BarrierWaitResult(false);
        }
        state.arrived = 0;
        let waiters = std::mem::take(&mut state.waiters);
        drop(state);
        for waiter in waiters {
            waiter.wake();
        }
        BarrierWaitResult(true)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .finish_non_exhaustive()
    }
}

// Its state stays consistent if a caller unwinds (no user data inside).
impl std::panic::UnwindSafe for Barrier {}
impl std::panic::RefUnwindSafe for Barrier {}
