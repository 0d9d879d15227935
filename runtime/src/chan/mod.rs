//! Go's channels: `bounded(cap)` (cap 0 is an unbuffered rendezvous) and
//! `unbounded()`, multi-producer multi-consumer.
//!
//! # Design (after Go's `runtime/chan.go`)
//!
//! One lock per channel guards the buffer, the `closed` flag and two wait
//! queues (`recvq`, `sendq`). A sender or receiver that must wait queues an
//! entry under the lock and parks with `sched::wait_unlocking`, which
//! releases the lock only once the goroutine is off its stack (Go's
//! `gopark(chanparkcommit)`), so no one can dequeue and wake it early, and
//! nothing is locked or checked twice. Foreign threads wait the same way
//! (they block). The entry points at a slot on the waiter's own stack —
//! valid for as long as it waits, because it cannot return until someone
//! marks the slot.
//!
//! Invariants, under the lock:
//! - At least one of `recvq` and `sendq` holds no live entry, except that a
//!   goroutine selecting both to send and to receive on one channel has an
//!   entry in each (as in Go); stale select entries are skipped by `pop_live`.
//! - `recvq` is non-empty only while the buffer is empty; `sendq` only while
//!   it is full (for a rendezvous channel, "full" always holds).
//! - A slot is marked (`DELIVERED` or `CLOSED`) exactly once, by the party
//!   that removed its entry from a queue, before the owner is woken.
//!
//! Direct handoff: a sender that finds a parked receiver writes its value
//! straight into the receiver's slot, skipping the buffer; a receiver that
//! finds a parked sender on a full buffer takes the buffer's head and moves
//! the sender's value to the tail, preserving FIFO order.
//!
//! Closing (Go's semantics, with Rust's ownership): `close()` or dropping
//! the last `Sender` closes the channel. Receivers drain what is buffered and
//! then get `Err(RecvError)`. A send on a closed channel returns the value in
//! `Err(SendError(v))` instead of panicking. Dropping the last `Receiver`
//! also closes it, since no one could ever receive: senders get their values
//! back rather than blocking forever.
//!
//! # The lock, and the fast paths
//!
//! The lock is a `util::BiasedLock`: a spin lock that, once one thread has
//! taken it 64 times in a row, is *biased* to that thread, which from then
//! on takes and releases it with plain stores (no locked instruction). The
//! first other thread to take it revokes the bias for good, paying one
//! `membarrier` (0.4–7 µs); the Dekker argument that makes this exclusive is
//! in `util/biased_lock.rs`. Nothing else in the protocol changes: every
//! operation is still one critical section under the lock, so FIFO order,
//! the capacity bound, closing, direct handoff, `select!` and the timed
//! operations keep the meaning above.
//!
//! Measured reason (`buffered_128/1p`, one producer and one consumer on one
//! P, so on one thread): a locked RMW costs about 12 ns on this VM, and the
//! spin lock's `lock cmpxchg` — one per send and one per receive — took two
//! thirds of the channel's profile: about 20 of ~30 ns per value. Biased,
//! the same loop has no locked instruction per value. Two threads that
//! really share a channel (`buffered_128/2p`) see the spin lock as before,
//! plus a few plain instructions.
//!
//! Rejected: a lock-free ring for the buffer (Vyukov's bounded MPMC queue)
//! with the lock kept for the wait queues. It still needs one locked RMW
//! per send and per receive (to claim a slot among several producers or
//! consumers), plus a StoreLoad fence between publishing a value and
//! checking for a parked receiver: no fewer locked instructions than the
//! lock. Batching values into a receiver-private cache would drop them
//! too, but breaks Go's synchronisation (a buffered channel used as a
//! semaphore).
//!
//! `send` and `recv` are each split into an inline fast path — buffered
//! room and no parked receiver; a buffered value and no parked sender —
//! and an out-of-line slow path that does everything else
//! (`send_slow`/`recv_slow`), under the same guard. `buffered_128/1p`
//! (cachegrind, `examples/chanloop.rs`): 104 instructions per value, both
//! goroutines' loops included, against 144 before, and no locked one. The
//! split costs the unbuffered ping-pong, whose every operation takes the
//! slow path, about 90 instructions per round trip (1,100 against 1,010),
//! which the locked instructions its five critical sections no longer take
//! more than pay for.
//!
//! Criterion medians of five interleaved runs on the shared 2-core VM
//! (before → after): `buffered_128/1p` 33.6 → 12.4 ns per value (Go 1.19's
//! `ci/go/chanbench buffered 1` in the same session: 75.7), `buffered_128/2p`
//! 115.6 → 59.8 ns, `pingpong/1p` 258 → 215 ns, `pingpong/2p` 452 → 374 ns.
//! On two Ps the buffered channel biases once and is revoked once (traced),
//! then runs on the shared lock: its gain is the shorter fast path, and the
//! spread between runs there is wide (48–108 ns), so read it as "no
//! regression" rather than as a speed-up to count on.
//!
//! `select!` and the timed operations (`send_timeout`, `recv_timeout`) are
//! in `select.rs`: a wait entry may carry a reference to a selecting
//! goroutine's shared "case won" word, which whoever dequeues the entry must
//! claim by compare-exchange before touching its slot.

mod macros;
mod queue;
mod select;
#[cfg(test)]
mod tests;

pub use queue::{
    bounded, unbounded, Iter, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError,
    Sender, TryRecvError, TrySendError,
};

/// What `select!` expands to; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use super::select::{run, Mode, RecvCase, SelectCase, SendCase};
}
