//! Timers: one heap per P, run by the Ms as they schedule (Go ≥ 1.14).
//!
//! # Design
//!
//! Every P owns a queue of timers ordered by deadline (a min-heap plus a
//! FIFO run for deadlines pushed in order; see `Heap`), behind its own
//! spin lock, and mirrors the earliest deadline in an atomic (`next`), so the
//! schedule loop learns "nothing due" from one load without locking. A timer
//! goes into the heap of the P that arms it, so the common case — a goroutine
//! sleeping, or arming a deadline, and the same P running it later — touches
//! only that P's heap and lock.
//!
//! Who runs due timers:
//! 1. the P's own M, on the switch path every 8 schedule ticks
//!    (`next_local`) and whenever it looks for work (`find_runnable`);
//! 2. a spinning M stealing work runs the due timers of the Ps it visits
//!    (`try_lock`, never waiting), so a P busy with a long goroutine does not
//!    hold its timers hostage;
//! 3. an M about to sleep computes the earliest deadline over all Ps and
//!    sleeps on its futex until then at most (`Idle::sleep`), so "the idle
//!    path waits exactly until the earliest timer".
//!
//! Two kinds of entry:
//! - `Wake(g)`: a sleeping goroutine (`sleep_until`). It cannot be cancelled,
//!   so it needs no allocation: 100,000 goroutines sleeping in a loop cost a
//!   heap push and pop each.
//! - `Fire(timer, generation)`: a [`Timer`] shared with its owner (a
//!   `goro::time::Timer`, a `Ticker`, a select deadline). Its state word
//!   packs a generation and an "armed" bit. Arming bumps the generation;
//!   stopping clears the bit; firing claims the bit with a compare-exchange
//!   against the generation its heap entry carries. So a stopped or re-armed
//!   timer's old entry is dead and is dropped when it surfaces — lazy
//!   deletion — and `stop` never touches the heap. Dead entries are counted
//!   per heap; when they exceed half of it, they are filtered out at the next
//!   arming of a `goro::time` timer or end of a timed select (never inside
//!   `push`, which may run under channel locks: [`Timers::purge`]), so a
//!   deadline re-armed on every receive cannot grow a heap without bound.
//!
//! Actions run outside the heap lock: a firing timer may send on a channel or
//! re-arm itself (a ticker), and neither may happen under the lock.
//!
//! # Rejected alternatives
//!
//! - **One global heap**: every sleep on every P would contend on one lock.
//! - **A timer thread** (Go before 1.14): each expiry is a cross-thread wake,
//!   15–30 µs here (DESIGN §5), against a heap pop on an M that is running
//!   anyway.
//! - **Eager deletion with an index kept in the timer** (Go ≥ 1.14): needs
//!   the heap to update every moved entry's index; the generation word makes
//!   stop lock-free and the purge keeps the cost bounded.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::g::{GRef, WaitReason};
use super::idle::wakep;
use super::m::current_m;
use super::p::P;
use super::schedule::{park, ready_batched};
use super::shared::Shared;
use crate::util::SpinLock;

/// "No timer": the value of an empty heap's `next`.
pub(crate) const NEVER: u64 = u64::MAX;

/// Heaps smaller than this are never purged of dead entries.
const PURGE_MIN: usize = 64;

/// Monotonic nanoseconds since the runtime's epoch (the first call).
pub(crate) fn now() -> u64 {
    nanos(Instant::now())
}

/// `instant` in the runtime's monotonic nanoseconds (0 if before the epoch).
pub(crate) fn nanos(instant: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    instant
        .saturating_duration_since(epoch)
        .as_nanos()
        .min(NEVER as u128 - 1) as u64
}

/// The deadline `after` from now, saturating.
pub(crate) fn deadline_after(after: Duration) -> u64 {
    now()
        .saturating_add(after.as_nanos().min(NEVER as u128) as u64)
        .min(NEVER - 1)
}

/// What a [`Timer`] does when it fires. Runs on an M holding a P, outside
/// any heap lock; it must not block, switch goroutines or arm timers (it may
/// `ready` a goroutine or `try_send` on a channel).
pub(crate) trait Fire: Send + Sync + 'static {
    /// Fires; `false` stops a periodic timer for good.
    fn fire(&self, now: u64) -> bool;

    /// The period of a periodic timer in nanoseconds; 0 for one-shot.
    fn period(&self) -> u64 {
        0
    }
}

/// A cancellable timer, shared by its owner and at most one live heap entry.
pub(crate) struct Timer<F: ?Sized> {
    /// `generation << 1 | armed`.
    state: AtomicU64,
    /// The index of the P whose heap holds the live entry (for the purge
    /// count).
    heap: AtomicUsize,
    pub(crate) action: F,
}

pub(crate) type TimerRef = Arc<Timer<dyn Fire>>;

impl<F: Fire> Timer<F> {
    pub(crate) fn new(action: F) -> Arc<Timer<F>> {
        Arc::new(Timer {
            state: AtomicU64::new(0),
            heap: AtomicUsize::new(0),
            action,
        })
    }
}

impl<F: ?Sized> Timer<F> {
    /// Whether the timer is armed and has not fired or been stopped.
    pub(crate) fn is_armed(&self) -> bool {
        self.state.load(Ordering::Acquire) & 1 == 1
    }
}

enum Action {
    Wake(GRef),
    Fire(TimerRef, u64),
}

struct Entry {
    when: u64,
    seq: u64,
    action: Action,
}

impl Entry {
    /// A `Fire` entry whose timer was stopped or re-armed since.
    fn is_dead(&self) -> bool {
        match &self.action {
            Action::Wake(_) => false,
            Action::Fire(timer, generation) => {
                timer.state.load(Ordering::Relaxed) != generation << 1 | 1
            }
        }
    }
}

// Reversed: `BinaryHeap` is a max-heap; the earliest (then first-armed)
// entry must surface first.
impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> CmpOrdering {
        (other.when, other.seq).cmp(&(self.when, self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.when, self.seq) == (other.when, other.seq)
    }
}

impl Eq for Entry {}

/// A P's pending timers: a min-heap, plus a FIFO run of entries pushed in
/// non-decreasing deadline order. Most timers are pushed that way (every
/// sleeper of a loop sleeps the same duration; deadlines re-armed per read
/// are "now + d"), and for them push and pop are O(1) on sequential memory
/// instead of O(log n) on a heap of 100,000 entries spread over megabytes
/// (measured: the heap's sift-down was the largest timer cost in the 100k
/// sleepers benchmark). Out-of-order pushes go to the heap; the minimum is
/// the earlier of the two fronts.
struct Heap {
    sorted: VecDeque<Entry>,
    entries: BinaryHeap<Entry>,
    seq: u64,
}

impl Heap {
    fn len(&self) -> usize {
        self.sorted.len() + self.entries.len()
    }

    fn push(&mut self, entry: Entry) {
        if self
            .sorted
            .back()
            .is_none_or(|last| last.when <= entry.when)
        {
            self.sorted.push_back(entry);
        } else {
            self.entries.push(entry);
        }
    }

    fn earliest(&self) -> u64 {
        let sorted = self.sorted.front().map_or(NEVER, |entry| entry.when);
        let heap = self.entries.peek().map_or(NEVER, |entry| entry.when);
        sorted.min(heap)
    }

    fn pop(&mut self) -> Option<Entry> {
        let sorted = self.sorted.front().map_or(NEVER, |entry| entry.when);
        let heap = self.entries.peek().map_or(NEVER, |entry| entry.when);
        if sorted <= heap && !self.sorted.is_empty() {
            self.sorted.pop_front()
        } else {
            self.entries.pop()
        }
    }

    /// Removes the dead entries and returns them, for the caller to drop
    /// after unlocking: an entry may hold the last reference to its timer,
    /// whose drop closes a channel (taking its lock, readying receivers).
    fn take_dead(&mut self) -> Vec<Entry> {
        let mut dead = Vec::new();
        let mut live = VecDeque::with_capacity(self.sorted.len());
        for entry in self.sorted.drain(..) {
            if entry.is_dead() {
                dead.push(entry);
            } else {
                live.push_back(entry);
            }
        }
        self.sorted = live;
        let mut live = Vec::with_capacity(self.entries.len());
        for entry in std::mem::take(&mut self.entries).into_vec() {
            if entry.is_dead() {
                dead.push(entry);
            } else {
                live.push(entry);
            }
        }
        self.entries = BinaryHeap::from(live);
        dead
    }
}

/// Due entries a runner takes per lock acquisition.
const BATCH: usize = 32;

/// One P's timers.
pub(crate) struct Timers {
    heap: SpinLock<Heap>,
    /// The earliest deadline in `heap`, or `NEVER`.
    next: AtomicU64,
    /// Entries of this heap known dead (stopped), an estimate.
    dead: AtomicUsize,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: SpinLock::new(Heap {
                sorted: VecDeque::new(),
                entries: BinaryHeap::new(),
                seq: 0,
            }),
            next: AtomicU64::new(NEVER),
            dead: AtomicUsize::new(0),
        }
    }

    /// The earliest deadline here, or `NEVER`.
    pub(crate) fn next(&self) -> u64 {
        self.next.load(Ordering::Acquire)
    }

    /// Adds an entry. Never drops one: `push` runs where the caller may
    /// hold channel locks (a select arms its deadline before releasing
    /// them), and dropping a dead entry may close a channel ([`purge`]).
    ///
    /// [`purge`]: Timers::purge
    fn push(&self, when: u64, action: Action) {
        let mut heap = self.heap.lock();
        let seq = heap.seq;
        heap.seq += 1;
        heap.push(Entry { when, seq, action });
        self.next.store(heap.earliest(), Ordering::Release);
    }

    /// Drops the dead entries once they are most of a heap of at least
    /// `PURGE_MIN`. The caller holds no lock: a dead entry may hold the last
    /// reference to its timer, and dropping that drops the timer's channel
    /// sender, which may close the channel (taking its lock, readying its
    /// receivers). The heap lock itself is a leaf (HACKING.md), so the
    /// entries are dropped after it is released.
    fn purge(&self) {
        // `dead * 2 > len >= PURGE_MIN` needs this much; most calls stop here.
        if self.dead.load(Ordering::Relaxed) * 2 <= PURGE_MIN {
            return;
        }
        let dead = {
            let mut heap = self.heap.lock();
            let len = heap.len();
            if len < PURGE_MIN || self.dead.load(Ordering::Relaxed) * 2 <= len {
                return;
            }
            self.dead.store(0, Ordering::Relaxed);
            heap.take_dead()
        };
        drop(dead);
    }

    /// Moves up to `BATCH` entries due at `now` into `out`; returns how
    /// many. `wait` says whether to wait for the lock (the owner) or give up
    /// when it is taken (a thief).
    fn pop_due(&self, now: u64, wait: bool, out: &mut [Option<(u64, Action)>; BATCH]) -> usize {
        let mut heap = if wait {
            self.heap.lock()
        } else {
            match self.heap.try_lock() {
                Some(heap) => heap,
                None => return 0,
            }
        };
        let mut count = 0;
        while count < BATCH && heap.earliest() <= now {
            let Some(entry) = heap.pop() else { break };
            out[count] = Some((entry.when, entry.action));
            count += 1;
        }
        if count > 0 {
            self.next.store(heap.earliest(), Ordering::Release);
        }
        count
    }

    /// Runs every timer due at `now`; returns how many woke or fired. The
    /// actions run outside the lock, a batch at a time.
    fn run_due(&self, now: u64, wait: bool) -> usize {
        let mut ran = 0;
        let mut batch: [Option<(u64, Action)>; BATCH] = [const { None }; BATCH];
        loop {
            let count = self.pop_due(now, wait, &mut batch);
            for slot in &mut batch[..count] {
                let Some((when, action)) = slot.take() else {
                    continue;
                };
                match action {
                    Action::Wake(g) => ready_batched(g),
                    Action::Fire(timer, generation) => {
                        if !self.fire(timer, generation, when, now) {
                            continue;
                        }
                    }
                }
                ran += 1;
            }
            if count < BATCH {
                if ran > 0 {
                    // SAFETY: a non-null current M is this thread's live M.
                    if let Some(m) = unsafe { current_m().as_ref() } {
                        wakep(m.shared());
                    }
                }
                return ran;
            }
        }
    }

    /// Fires a popped `Fire` entry if it is still live; returns whether it
    /// fired. A one-shot timer's armed bit is claimed first (so `stop` can
    /// tell whether it won). A periodic one stays armed and its next entry
    /// goes back into this heap under the same generation, one period after
    /// the last due time — not after `now`, so lateness does not accumulate
    /// into drift (ticks missed meanwhile are skipped, as Go's ticker does).
    fn fire(&self, timer: TimerRef, generation: u64, when: u64, now: u64) -> bool {
        let armed = generation << 1 | 1;
        let period = timer.action.period();
        let live = if period == 0 {
            timer
                .state
                .compare_exchange(armed, armed & !1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        } else {
            timer.state.load(Ordering::Acquire) == armed
        };
        if !live {
            let _ = self
                .dead
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(1))
                });
            return false;
        }
        let keep = timer.action.fire(now);
        if period != 0 {
            if keep {
                let next = next_periodic(when, period, now);
                self.push(next, Action::Fire(timer, generation));
            } else {
                timer.state.fetch_and(!1, Ordering::AcqRel);
            }
        }
        true
    }
}

/// The next due time of a periodic timer that was due at `when` and fired
/// at `now`: the first `when + k·period` after `now`, as Go's ticker
/// computes it (`when += period * (1 + (now - when) / period)`). Slots
/// missed while the timer was late are skipped, and the phase is kept.
fn next_periodic(when: u64, period: u64, now: u64) -> u64 {
    let missed = now.saturating_sub(when) / period;
    when.saturating_add(period.saturating_mul(missed + 1))
}

/// Runs the due timers of `p`, which the calling M holds. Cheap when none is
/// due: one atomic load, and a clock read only if the heap is non-empty.
pub(crate) fn run_own(p: &P) -> usize {
    let next = p.timers.next();
    if next == NEVER {
        return 0;
    }
    let now = now();
    if now < next {
        return 0;
    }
    p.timers.run_due(now, true)
}

/// Runs the due timers of another P, unless its heap is locked right now.
/// The caller holds a P of the same runtime (readied goroutines go there).
pub(crate) fn run_other(victim: &P, now: u64) -> usize {
    if victim.timers.next() > now {
        return 0;
    }
    victim.timers.run_due(now, false)
}

/// Runs the due timers of every P: the caller's own `p` (waiting for its
/// lock), then the others (skipping a locked heap). For an M out of work.
pub(crate) fn run_all(shared: &Shared, p: &P) -> usize {
    let mut ran = run_own(p);
    if earliest(shared) != NEVER {
        let now = now();
        for victim in shared.ps.iter().filter(|victim| victim.index != p.index) {
            ran += run_other(victim, now);
        }
    }
    ran
}

/// Whether any P's heap may hold a live entry: one that is not a stopped or
/// re-armed timer's leftover. For the deadlock check, under the sched lock:
/// it only `try_lock`s the heaps, and a heap it cannot lock counts as live.
pub(crate) fn any_live(shared: &Shared) -> bool {
    shared.ps.iter().any(|p| {
        p.timers.next() != NEVER
            && p.timers.heap.try_lock().is_none_or(|heap| {
                heap.sorted
                    .iter()
                    .chain(heap.entries.iter())
                    .any(|entry| !entry.is_dead())
            })
    })
}

/// The earliest deadline over every P's heap, or `NEVER`.
pub(crate) fn earliest(shared: &Shared) -> u64 {
    shared
        .ps
        .iter()
        .map(|p| p.timers.next())
        .min()
        .unwrap_or(NEVER)
}

/// Calls `f` with the calling M's runtime and P.
///
/// # Panics
/// Outside a goroutine (or an M holding a P), naming `what`.
fn with_current_p<R>(what: &str, f: impl FnOnce(&Shared, &P) -> R) -> R {
    let section = super::locks::Section::enter();
    // SAFETY: a non-null current M is this thread's live M.
    let m = unsafe { current_m().as_ref() };
    match m {
        Some(m) => {
            let shared = m.shared();
            match m.own_p() {
                Some(p) => f(shared, p),
                None => {
                    // An M without a P (inside `blocking()`, or whose P
                    // sysmon took) uses P 0's heap: any heap is locked and
                    // run by every M. But P 0 may be idle, every other M
                    // asleep with no deadline and sysmon in its deep sleep:
                    // wake sysmon, which starts an M once the timer is
                    // overdue (`sysmon.rs`, step 5).
                    let result = f(shared, &shared.ps[0]);
                    shared.sysmon.note_busy();
                    result
                }
            }
        }
        None => {
            drop(section);
            panic!("goro: {what} needs a goroutine (call it inside goro::run or Runtime::block_on)")
        }
    }
}

/// Parks the calling goroutine until the monotonic time `when` (see
/// [`now`]). Go's `time.Sleep`: it costs no thread, only a heap entry.
///
/// # Panics
/// Outside a goroutine.
pub(crate) fn sleep_until(when: u64) {
    park(WaitReason::Sleep, move |g| {
        // Runs after the switch, on the same M, which still holds its P.
        with_current_p("sleep", |_, p| p.timers.push(when, Action::Wake(g)));
        true
    });
}

/// Arms `timer` to fire at `when`, replacing any earlier arming. Returns
/// whether it was armed before (Go's `Timer.Reset` result).
///
/// # Panics
/// Outside a goroutine or an M holding a P.
pub(crate) fn arm(timer: &TimerRef, when: u64) -> bool {
    with_current_p("a timer", |shared, p| {
        let mut state = timer.state.load(Ordering::Relaxed);
        let generation = loop {
            let generation = (state >> 1).wrapping_add(1);
            match timer.state.compare_exchange_weak(
                state,
                generation << 1 | 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break generation,
                Err(current) => state = current,
            }
        };
        let was_armed = state & 1 == 1;
        if was_armed {
            count_dead(shared, timer);
        }
        timer.heap.store(p.index, Ordering::Relaxed);
        p.timers.push(when, Action::Fire(timer.clone(), generation));
        was_armed
    })
}

/// Purges the current P's heap of dead entries if they are most of it
/// ([`Timers::purge`]). The caller holds no lock. Called where timers are
/// armed and stopped (a `Timer`'s arming, a select with a deadline), so that
/// a heap of stopped timers cannot grow until their deadlines; `arm` itself
/// may run under channel locks, so it never purges.
pub(crate) fn purge_own() {
    let section = super::locks::Section::enter();
    // SAFETY: a non-null current M is this thread's live M.
    let Some(m) = (unsafe { current_m().as_ref() }) else {
        return;
    };
    let Some(p) = m.own_p() else { return };
    // The count stays raised while P's heap is used: the goroutine cannot
    // move off this M (and P) meanwhile. Dropping the purged entries may
    // close channels, which raises the count again (it nests).
    p.timers.purge();
    drop(section);
}

/// Stops `timer`; returns whether it was armed (and so will now not fire).
/// Callable from any thread.
pub(crate) fn stop<F: ?Sized>(timer: &Timer<F>) -> bool {
    let stopped = timer.state.fetch_and(!1, Ordering::AcqRel) & 1 == 1;
    // SAFETY: a non-null current M is this thread's live M.
    if let (true, Some(m)) = (stopped, unsafe { current_m().as_ref() }) {
        // The purge count is an estimate: outside the runtime, skip it.
        count_dead(m.shared(), timer);
    }
    stopped
}

/// Counts `timer`'s previous heap entry dead, for the purge.
fn count_dead<F: ?Sized>(shared: &Shared, timer: &Timer<F>) {
    if let Some(p) = shared.ps.get(timer.heap.load(Ordering::Relaxed)) {
        p.timers.dead.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::next_periodic;

    #[test]
    fn a_late_periodic_timer_keeps_its_phase() {
        // Due at 100 with a period of 10.
        assert_eq!(next_periodic(100, 10, 100), 110, "on time");
        assert_eq!(next_periodic(100, 10, 103), 110, "3 late: 110, not 113");
        assert_eq!(
            next_periodic(100, 10, 125),
            130,
            "slots 110 and 120 skipped"
        );
        assert_eq!(
            next_periodic(100, 10, 130),
            140,
            "fired on slot 130: the next"
        );
        assert_eq!(next_periodic(50, 10, 30), 60, "a clock read before `when`");
        assert_eq!(
            next_periodic(u64::MAX - 5, 10, u64::MAX),
            u64::MAX,
            "saturates"
        );
    }
}
