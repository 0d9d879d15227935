//! The logical processor (P): a local run queue, `runnext`, a free-G cache
//! and a goroutine-id cache. An M must hold a P to run goroutines.
//!
//! Ownership: the fields in `UnsafeCell`s belong to the M that currently holds
//! the P (`M::p`). Other threads touch a P only through its `Stealer` (in
//! `Shared::stealers`) and the atomic `runnext`.
//!
//! # Looking one G ahead
//!
//! A server with thousands of connections resumes a different goroutine on
//! every switch, and that goroutine's stack has left the core's caches since
//! it parked. `perf record` on the echo example at 10,000 connections put
//! 64 % of `park`'s samples on the first `pop` from the resumed stack and
//! 19 % on the load of the G's saved stack pointer: together about 0.55 µs
//! of user time per round trip, serialised behind each other.
//!
//! So when the M takes a G from its local queue (or from the global queue
//! when the local one ran dry) and the queue still holds at least
//! `LOOK_AHEAD_MIN_QUEUE` Gs, [`P::look_ahead`] also pops the G after it,
//! reads its saved stack pointer, issues prefetches for the top of its stack
//! (at most `g::PREFETCH_STACK_BYTES`), and puts it in the empty `runnext`.
//! The stack lines then arrive while the first G runs. Taking a G that the
//! look-ahead put in `runnext` looks ahead again, so a batch is prefetched
//! one G ahead throughout; a `runnext` set by `ready` or spawn does not, so
//! a channel handoff pays nothing more. (The every-61st-tick poll of the
//! global queue and `find_runnable`'s steals do not look ahead.)
//!
//! - Order: the looked-ahead G was next in the queue anyway, so it runs in
//!   its turn, unless `ready` or spawn fills `runnext` first. Go's rule
//!   then sends the old `runnext` to the tail; in Go that G was itself just
//!   readied, here it is the queue's head, which waits one more round. On a
//!   P whose goroutines ready one another that would repeat, so a
//!   displacement pauses the look-ahead for the next `LOOK_AHEAD_PAUSE`
//!   takes. Network servers, whose goroutines are readied by the netpoller
//!   through the global queue, rarely displace it.
//! - Stealing: in the deque the G could be taken by a thief's first batch;
//!   in `runnext` a thief takes it only once the deque is empty and after
//!   `RUNNEXT_GRACE` (3 µs). The deque still holds the 7 or more Gs behind
//!   it, so an idle P has those to steal.
//! - The demand load of the G's saved stack pointer stays on the switch's
//!   path (it moved from the switch to `next_local`); only the stack lines
//!   are fetched in the background.
//! - Measured (`perf record -p` over 4 s, the echo example at 10,000
//!   connections, Go's loadgen, 2 Ps, runs interleaved with the build
//!   before): user time per round trip fell from 1.69–1.98 µs (9 runs) to
//!   1.41–1.70 µs (5 runs), lower in each of 3 pairs (1.70/1.55/1.60
//!   against 1.91/1.98/1.92); with the pause added, lower again in each of
//!   3 pairs (1.71/1.41/1.74 against 1.80/1.94/2.06). `park` fell from
//!   0.68–0.80 to 0.19–0.26 µs and `read_stream` from 0.40–0.45 to
//!   0.28–0.34; what is left sits in `next_local` (0.34–0.46 µs). The run
//!   totals (user plus kernel, 10–15 µs) swing by more than the gain from
//!   run to run on this host.
//! - `benches/sched.rs` → `yield_cold/10000g_1p` (10,000 goroutines
//!   yielding in turn on 1 P, so every switch resumes a cold stack):
//!   92–133 ns per yield in 5 criterion runs, against 184–275 ns for the
//!   build before (the same bench at `92a236c`, runs alternated).
//!   Alternated the same way, `yield_switch_1p` (2 goroutines, below the
//!   minimum queue length) ran 23–35 ns for both builds (8 runs and 7), and
//!   `benches/chan.rs`'s `buffered_128/1p` 16.4 and 16.7 ns against 10.3
//!   and 11.8 in the first pair of runs, then 13.6, 10.1 and 9.4 against
//!   14.4, 14.5 and 10.2: noise, not a trend.
//! - Rejected, measured the same way on earlier variants without the
//!   minimum queue length: 1 KiB of stack instead of 256 bytes (the
//!   prefetch instructions themselves took most of `next_local`'s samples,
//!   whether for page walks or for full line-fill buffers was not told
//!   apart; `next_local` cost 0.55–0.65 µs against 0.45–0.48, user time per
//!   round trip 1.38–1.62 against 1.27–1.47); looking ahead on every queue
//!   length, with a locked swap for the flag (`yield_switch_1p` went from
//!   35 to 44 ns and `pingpong/1p` from 207 to 253 ns in one criterion run:
//!   two Gs' stacks never leave the cache, so the extra pop and stores are
//!   pure cost). With the minimum length and a plain load and store, the
//!   criterion runs of `benches/sched.rs` and `benches/chan.rs` against the
//!   build before moved by −28 % to +19 %, run to run, both directions:
//!   this host's noise.

use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crossbeam_deque::Worker;

use super::blocks::{self, BlockCache};
use super::g::{GRef, G};
use super::timers::Timers;

/// Free Gs a P keeps before handing half of them to the global pool.
pub const FREE_CACHE_MAX: usize = 64;
/// Goroutine ids a P takes from the shared counter at a time (Go's goidcache).
const ID_BATCH: u64 = 16;

/// `P::owner` while sysmon decides whether to take the P from an M blocked
/// in the kernel (`sysmon.rs`).
pub(crate) const RETAKING: usize = 1;
/// Tag bit of `P::owner`: the owning M is inside `blocking()`, and the P may
/// be taken by a compare-exchange (M addresses are aligned, so bit 1 is free).
pub(crate) const SYSCALL: usize = 2;

/// [`P::look_ahead`] works only on a local queue at least this long: a P
/// cycling through fewer Gs finds their stacks still in its caches, and the
/// look-ahead's extra pop and `runnext` store would be pure cost there (see
/// the module doc's "Rejected" for the one run that showed it).
const LOOK_AHEAD_MIN_QUEUE: usize = 8;

/// How many look-aheads a P skips after `put` sent a looked-ahead G back to
/// the tail: a P whose goroutines ready each other would otherwise keep
/// sending its queue's head to the tail (module doc).
const LOOK_AHEAD_PAUSE: u32 = 64;

pub(crate) struct P {
    pub index: usize,
    /// Who holds the P: 0 while idle; the holding M's address (`M::owner_tag`)
    /// while it runs; that address `| SYSCALL` while it is inside
    /// `blocking()`; `RETAKING` while sysmon decides. An M that finds its
    /// address gone (`M::own_p`) has lost the P.
    pub owner: std::sync::atomic::AtomicUsize,
    /// Counts `blocking()` entries, so sysmon tells one long call from two
    /// short ones (Go's `syscalltick`).
    pub syscalltick: AtomicU64,
    /// Go's `runnext`: the G to run next, ahead of the queue (set by spawn and
    /// `ready` so a producer/consumer pair keeps handing off on one P, and
    /// by [`P::look_ahead`]). Only the holder fills it; the holder empties it
    /// with `swap`, thieves with a compare-exchange.
    runnext: AtomicPtr<G>,
    /// Whether `runnext` was filled by [`P::look_ahead`] rather than by
    /// `ready` or spawn. Written only by the holder.
    runnext_looked_ahead: AtomicBool,
    /// Look-aheads still to skip since the last one that `put` sent back to
    /// the tail (module doc). Written only by the holder.
    look_ahead_pause: AtomicU32,
    local: UnsafeCell<Worker<GRef>>,
    /// Counts Gs started on this P: the global queue is polled when
    /// `schedtick % 61 == 0`; sysmon watches it for progress (`sysmon.rs`).
    schedtick: AtomicU64,
    free: UnsafeCell<Vec<GRef>>,
    ids: UnsafeCell<(u64, u64)>,
    /// Goroutines spawned on, and returned on, this P. Per P, written only by
    /// the holder (load + store), so spawn and exit touch no shared cache
    /// line; `Shared::live_goroutines` sums them.
    spawned: AtomicU64,
    exited: AtomicU64,
    /// Small-block cache for task cells (`blocks.rs`).
    blocks: UnsafeCell<BlockCache>,
    /// This P's timer heap (`timers.rs`); locked, so any M may touch it.
    pub timers: Timers,
}

// SAFETY: the UnsafeCell fields are used only by the M holding the P (module
// doc); a P moves between Ms only through the sched lock (idle list) or the
// Release store of `M::next_p` paired with the woken M's Acquire load.
unsafe impl Sync for P {}
// SAFETY: the cached blocks are plain heap memory owned by the P, usable
// from any thread; everything else in P is Send.
unsafe impl Send for P {}

impl P {
    pub(crate) fn new(index: usize, local: Worker<GRef>) -> P {
        P {
            index,
            owner: std::sync::atomic::AtomicUsize::new(0),
            syscalltick: AtomicU64::new(0),
            runnext: AtomicPtr::new(ptr::null_mut()),
            runnext_looked_ahead: AtomicBool::new(false),
            look_ahead_pause: AtomicU32::new(0),
            local: UnsafeCell::new(local),
            schedtick: AtomicU64::new(0),
            free: UnsafeCell::new(Vec::with_capacity(FREE_CACHE_MAX)),
            ids: UnsafeCell::new((0, 0)),
            spawned: AtomicU64::new(0),
            exited: AtomicU64::new(0),
            blocks: UnsafeCell::new(Default::default()),
            timers: Timers::new(),
        }
    }

    /// The local deque.
    ///
    /// # Safety
    /// The calling M holds this P.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn local(&self) -> &Worker<GRef> {
        // SAFETY: only the holder touches it (module doc).
        unsafe { &*self.local.get() }
    }

    /// The free-G cache.
    ///
    /// # Safety
    /// The calling M holds this P, and drops the reference before any switch.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn free(&self) -> &mut Vec<GRef> {
        // SAFETY: only the holder touches it, never re-entrantly.
        unsafe { &mut *self.free.get() }
    }

    /// The small-block cache.
    ///
    /// # Safety
    /// The calling M holds this P, and drops the reference before any switch.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn blocks(&self) -> &mut BlockCache {
        // SAFETY: only the holder touches it, never re-entrantly.
        unsafe { &mut *self.blocks.get() }
    }

    /// Puts `g` on this P: into `runnext` if `next` (kicking the old runnext
    /// to the tail of the queue), else at the tail.
    ///
    /// # Safety
    /// The calling M holds this P; `g` is Runnable and in no queue.
    pub(crate) unsafe fn put(&self, g: GRef, next: bool) {
        if next {
            let displaces_look_ahead = self.runnext_looked_ahead.load(Ordering::Relaxed);
            if displaces_look_ahead {
                self.runnext_looked_ahead.store(false, Ordering::Relaxed);
            }
            let old = self.runnext.swap(g.as_ptr(), Ordering::AcqRel);
            if displaces_look_ahead && !old.is_null() {
                // The queue's head goes to the tail: stop looking ahead for
                // a while (module doc).
                self.look_ahead_pause
                    .store(LOOK_AHEAD_PAUSE, Ordering::Relaxed);
            }
            if let Some(old) = ptr::NonNull::new(old) {
                // SAFETY: the pointer came from a GRef stored in runnext.
                let old = unsafe { GRef::from_ptr(old.as_ptr()) };
                // SAFETY: we hold the P.
                unsafe { self.local() }.push(old);
            }
        } else {
            // SAFETY: we hold the P.
            unsafe { self.local() }.push(g);
        }
    }

    /// Moves the next G of the local queue into an empty `runnext` and starts
    /// loading its stack, so that its resume, one G later, finds the lines
    /// in cache (the module doc's "Looking one G ahead").
    ///
    /// # Safety
    /// The calling M holds this P.
    pub(crate) unsafe fn look_ahead(&self) {
        // SAFETY: we hold the P.
        let local = unsafe { self.local() };
        if local.len() < LOOK_AHEAD_MIN_QUEUE || self.has_runnext() {
            return;
        }
        let pause = self.look_ahead_pause.load(Ordering::Relaxed);
        if pause > 0 {
            self.look_ahead_pause.store(pause - 1, Ordering::Relaxed);
            return;
        }
        let Some(after) = local.pop() else {
            return;
        };
        // SAFETY: popped, so ours until published just below.
        unsafe { after.prefetch_context() };
        self.runnext_looked_ahead.store(true, Ordering::Relaxed);
        // Only the holder fills runnext and thieves only empty it, so it is
        // still empty here: a plain store cannot lose a G.
        self.runnext.store(after.as_ptr(), Ordering::Release);
    }

    /// The owner's take of `runnext`, saying whether [`P::look_ahead`] put it
    /// there.
    pub(crate) fn take_runnext_own(&self) -> Option<(GRef, bool)> {
        let g = self.take_runnext()?;
        // Only the holder writes the flag: a load and a store, no locked
        // instruction on the switch path.
        let looked_ahead = self.runnext_looked_ahead.load(Ordering::Relaxed);
        if looked_ahead {
            self.runnext_looked_ahead.store(false, Ordering::Relaxed);
        }
        Some((g, looked_ahead))
    }

    /// Takes `runnext`, as the owner or as a thief.
    pub(crate) fn take_runnext(&self) -> Option<GRef> {
        if self.runnext.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let g = self.runnext.swap(ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: non-null values in runnext come from GRefs.
        ptr::NonNull::new(g).map(|g| unsafe { GRef::from_ptr(g.as_ptr()) })
    }

    /// A thief's take of `runnext` (Go's `runqsteal` with `stealRunNextG`):
    /// note the G there, give the owner `grace` to run it (a producer that
    /// just readied its consumer is about to switch to it: a channel handoff
    /// takes ~50 ns), and take it only if it is still the same G. Stealing
    /// it at once splits such a pair across two Ps, and every later handoff
    /// becomes a cross-CPU wake.
    pub(crate) fn steal_runnext(&self, grace: std::time::Duration) -> Option<GRef> {
        let seen = self.runnext.load(Ordering::Acquire);
        if seen.is_null() {
            return None;
        }
        let start = std::time::Instant::now();
        while start.elapsed() < grace {
            std::hint::spin_loop();
        }
        self.runnext
            .compare_exchange(seen, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            // SAFETY: non-null values in runnext come from GRefs.
            .map(|g| unsafe { GRef::from_ptr(g) })
    }

    pub(crate) fn has_runnext(&self) -> bool {
        !self.runnext.load(Ordering::Acquire).is_null()
    }

    /// Counts one more G started on this P. Only the holder writes the
    /// tick, so a plain load and store suffice (no locked instruction on the
    /// switch path); readers on other threads see some recent value.
    pub(crate) fn tick(&self) {
        let tick = self.schedtick.load(Ordering::Relaxed);
        self.schedtick
            .store(tick.wrapping_add(1), Ordering::Relaxed);
    }

    /// Counts a goroutine spawned here (holder only).
    pub(crate) fn count_spawn(&self) {
        bump(&self.spawned);
    }

    /// Counts a goroutine that returned here (holder only).
    pub(crate) fn count_exit(&self) {
        bump(&self.exited);
    }

    /// (spawned, exited) so far.
    pub(crate) fn goroutine_counts(&self) -> (u64, u64) {
        (
            self.spawned.load(Ordering::Acquire),
            self.exited.load(Ordering::Acquire),
        )
    }

    pub(crate) fn schedtick(&self) -> u64 {
        self.schedtick.load(Ordering::Relaxed)
    }

    /// The next goroutine id, from this P's batch.
    ///
    /// # Safety
    /// The calling M holds this P.
    pub(crate) unsafe fn next_goroutine_id(&self, counter: &AtomicU64) -> u64 {
        // SAFETY: only the holder touches the id cache.
        let ids = unsafe { &mut *self.ids.get() };
        if ids.0 == ids.1 {
            ids.0 = counter.fetch_add(ID_BATCH, Ordering::Relaxed);
            ids.1 = ids.0 + ID_BATCH;
        }
        let id = ids.0;
        ids.0 += 1;
        id
    }
}

impl Drop for P {
    fn drop(&mut self) {
        blocks::release_all(self.blocks.get_mut());
    }
}

/// Increments a counter that only one thread writes at a time.
fn bump(counter: &AtomicU64) {
    let value = counter.load(Ordering::Relaxed);
    counter.store(value.wrapping_add(1), Ordering::Release);
}
