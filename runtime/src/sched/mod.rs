//! The GMP scheduler.
//!
//! # G, M and P
//!
//! goro follows Go's scheduler (`runtime/proc.go`, and Dmitry Vyukov's
//! "Scalable Go Scheduler Design Doc", 2012):
//!
//! - **G**, a goroutine: a closure, a guarded stack, a saved stack pointer and
//!   a status (`g.rs` documents each status as an ownership contract).
//! - **M**, a worker thread (`m.rs`). An M runs goroutines only while it holds
//!   a P; its own thread stack ("g0") runs the slow path of the scheduler.
//! - **P**, a logical processor (`p.rs`): the right to run goroutines, plus a
//!   local run queue (a crossbeam-deque `Worker`, Chase–Lev), a `runnext`
//!   slot, a cache of dead Gs with their stacks, and a goroutine-id batch.
//!   There are exactly `procs` Ps (`GORO_MAXPROCS`, default: the CPU count).
//!
//! A global run queue (a crossbeam `Injector`) takes goroutines spawned from
//! foreign threads and readied by them; each P polls it every 61 ticks so it
//! cannot starve. An M whose P has no work steals half of a random victim's
//! queue (`steal_batch_with_limit_and_pop`: plain `steal_batch` caps at 32).
//!
//! # The doors
//!
//! Modules above the scheduler (`sync`, and later `chan`, `time`, `net`) reach
//! it only through `schedule::park` and `schedule::ready` — or through
//! `block`/`Waiter` (`waiter.rs`), which wrap them so foreign threads can wait
//! too — plus [`yield_now`]. All of these but `yield_now` are crate-private:
//! a park's unlock runs on another stack and must not switch or panic, rules
//! the runtime keeps and a user could not be held to.
//!
//! # Worker thread parking and waking
//!
//! The goal, as in Go: keep enough Ms running to use every P that has work,
//! but no more, and never wake more than one M per new piece of work, because
//! a futex wake costs 15–30 µs on this kind of machine (DESIGN §5).
//!
//! 1. **Submit.** Spawn and `ready` put the G on the current P (`runnext`) or,
//!    from a foreign thread, on the global queue. Then they call `wakep`.
//! 2. **`wakep`.** If some P is idle (`npidle > 0`) and no M is spinning
//!    (`nmspinning == 0`), it CASes `nmspinning` from 0 to 1 and hands an idle
//!    P to an idle M (or starts a new M thread), marked spinning. At most one
//!    M is woken per submission, and none if one is already spinning: that
//!    spinner will find the work. A submitter that pushed to the global queue
//!    issues a SeqCst fence first (`wakep_global`); one that pushed to its own
//!    P does not, since its own M will run the G anyway (a missed wake costs
//!    parallelism for a moment, never liveness), which keeps an `mfence` off
//!    every spawn.
//! 3. **Spin.** An M with no local work spins — steals from other Ps in random
//!    order and polls the global queue — for four rounds, then up to 20 µs
//!    more while spinning has been paying (`spin.rs`), provided it is
//!    already spinning or fewer than half of the busy Ps have a spinner (Go's
//!    `2*nmspinning < procs - npidle`). A spinner that finds work stops
//!    spinning and, if it was the last spinner, calls `wakep` (there may be
//!    more work than one M can take).
//! 4. **Release the P.** Under the sched lock, if the global queue is empty,
//!    the P goes on the idle list (`npidle += 1`).
//! 5. **Stop spinning, then look again.** The M decrements `nmspinning`
//!    (SeqCst), issues a SeqCst fence, and checks every queue once more. This
//!    closes the race with step 2 for the global queue: a submitter pushes,
//!    fences, then reads `npidle`/`nmspinning`; the M decrements, fences, then
//!    reads the queues. SeqCst orders the two fences, so at least one side
//!    sees the other — either the submitter sees the idle P and wakes someone,
//!    or the M sees the work and takes a P back.
//! 6. **Sleep.** The M puts itself on the idle M list and waits on its futex
//!    word, at most until the earliest timer of any P (`timers.rs`); then it
//!    takes an idle P itself to run the due timers. A waker sets the M's
//!    `next_p` (and spinning flag), then stores 1 to the word (Release) and
//!    `FUTEX_WAKE`s it. The last M to sleep with no timer pending checks for
//!    a deadlock (`deadlock.rs`).
//!
//! Before sleeping, an M trims up to 64 idle stacks (`pool.rs`), so trimming
//! never lands on the spawn path.
//!
//! # Rejected alternatives
//!
//! - **One global queue and a lock** (Go before 1.1): every spawn and every
//!   switch contends on one cache line.
//! - **Waking an M for every new G**: each wake costs 15–30 µs; on a spawn
//!   burst most wakes would find the work already gone.
//! - **Running the whole scheduler on g0 for every switch** (Go's `mcall`):
//!   two switches per yield. goro picks the next G on the goroutine's own
//!   stack and defers the publication of the old G to after the switch
//!   (`schedule.rs`), so a yield is one switch.
//! - **A thread per goroutine**: what goro exists to avoid.

pub(crate) mod blocks;
pub(crate) mod deadlock;
pub(crate) mod g;
pub(crate) mod idle;
pub(crate) mod label;
pub(crate) mod locks;
pub(crate) mod m;
pub(crate) mod netpoll;
pub(crate) mod overflow;
pub(crate) mod p;
pub(crate) mod pool;
pub(crate) mod preempt;
pub(crate) mod schedule;
pub(crate) mod shared;
pub(crate) mod spin;
pub(crate) mod stats;
pub(crate) mod sysmon;
pub(crate) mod task;
pub(crate) mod timers;
pub(crate) mod waiter;

pub(crate) use g::WaitReason;
pub(crate) use schedule::park;
pub use schedule::{current_goroutine_id, in_goroutine, yield_now};
pub use task::{JoinHandle, ABANDONED};
pub(crate) use waiter::{
    block, prepare_wait, prepare_wait_for, wait_unlocking, WaitHandle, Waiter,
};
