//! The logical processor (P): a local run queue, `runnext`, a free-G cache
//! and a goroutine-id cache. An M must hold a P to run goroutines.
//!
//! Ownership: the fields in `UnsafeCell`s belong to the M that currently holds
//! the P (`M::p`). Other threads touch a P only through its `Stealer` (in
//! `Shared::stealers`) and the atomic `runnext`.

use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

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
    /// `ready` so a producer/consumer pair keeps handing off on one P). Owner
    /// and thieves take it with `swap`.
    runnext: AtomicPtr<G>,
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
            let old = self.runnext.swap(g.as_ptr(), Ordering::AcqRel);
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
