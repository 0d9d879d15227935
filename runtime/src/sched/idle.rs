//! Coordinates idle Ps and idle Ms: who spins, who sleeps, who is woken.
//!
//! The protocol itself is written out in `sched/mod.rs` ("Worker thread
//! parking and waking"); this file holds its data:
//!
//! - `Synced`, behind the sched lock: the idle P stack, the idle M stack, and
//!   every M thread's join handle.
//! - `npidle` and `nmspinning`, atomics mirrored outside the lock so the hot
//!   paths (`wakep` after every spawn and `ready`) read them without locking.

use std::ptr;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::deadlock::{self, Verdict};
use super::locks::SectionGuard;
use super::m::{start_thread, MPtr, M};
use super::p::P;
use super::shared::Shared;
use super::spin::SpinCredit;
use super::timers::{self, NEVER};
use crate::sys::futex;

/// How long an M woken for a due timer that found no idle P waits before it
/// looks again, and the gap between the deadlock check's looks (1 ms).
const RETRY_NANOS: u64 = 1_000_000;

pub(crate) struct Idle {
    synced: Mutex<Synced>,
    /// Ps in `Synced::idle_ps`.
    pub npidle: AtomicUsize,
    /// Ms looking for work while holding a P.
    pub nmspinning: AtomicUsize,
    /// Whether dry Ms spin past their quick rounds (`spin.rs`).
    pub spin: SpinCredit,
    /// `max_threads` was reached once (the warning is given once).
    warned_max_threads: std::sync::atomic::AtomicBool,
}

struct Synced {
    idle_ps: Vec<usize>,
    idle_ms: Vec<MPtr>,
    threads: Vec<(MPtr, JoinHandle<()>)>,
    next_m_id: usize,
}

impl Idle {
    pub(crate) fn new(procs: usize) -> Idle {
        Idle {
            // Reversed so P0 is handed out first.
            synced: Mutex::new(Synced {
                idle_ps: (0..procs).rev().collect(),
                idle_ms: Vec::new(),
                threads: Vec::new(),
                next_m_id: 0,
            }),
            npidle: AtomicUsize::new(procs),
            nmspinning: AtomicUsize::new(0),
            spin: SpinCredit::new(),
            warned_max_threads: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Counts a P off the idle list, and wakes sysmon if it sleeps deeply
    /// (it does while every P is idle).
    fn p_left_idle(&self, shared: &Shared) {
        self.npidle.fetch_sub(1, Ordering::SeqCst);
        shared.sysmon.note_busy();
    }

    fn lock(&self) -> SectionGuard<'_, Synced> {
        super::locks::lock(&self.synced)
    }

    /// Go's rule bounding spinners: spin only while fewer than half of the
    /// busy Ps have a spinning M.
    pub(crate) fn may_spin(&self, procs: usize) -> bool {
        let busy = procs.saturating_sub(self.npidle.load(Ordering::SeqCst));
        2 * self.nmspinning.load(Ordering::SeqCst) < busy
    }

    /// Puts `p` on the idle list unless the global queue has work (then the
    /// caller keeps the P and looks again). Step 4 of the protocol.
    pub(crate) fn release_p(&self, shared: &Shared, p: &P) -> bool {
        let mut synced = self.lock();
        if !shared.injector.is_empty() {
            return false;
        }
        p.owner.store(0, Ordering::Release);
        synced.idle_ps.push(p.index);
        self.npidle.fetch_add(1, Ordering::SeqCst);
        true
    }

    pub(crate) fn release_p_at_exit(&self, p: &P) {
        p.owner.store(0, Ordering::Release);
        self.lock().idle_ps.push(p.index);
        self.npidle.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes an idle P, if any.
    pub(crate) fn take_p<'a>(&self, shared: &'a Shared) -> Option<&'a P> {
        let index = self.lock().idle_ps.pop()?;
        self.p_left_idle(shared);
        Some(&shared.ps[index])
    }

    /// Sleeps the calling M (which holds no P) until a waker hands it a P,
    /// shutdown wakes it, or the monotonic time `deadline` passes (the
    /// earliest timer; `NEVER` for none), when it takes an idle P itself to
    /// run the due timers. Returns the P, or null to exit.
    pub(crate) fn sleep(&self, shared: &Shared, m: &M, mut deadline: u64) -> *const P {
        // Looks the deadlock check has made while unsure; while non-zero,
        // `deadline` is the next look, not a timer.
        let mut looks = 0;
        {
            let mut synced = self.lock();
            // Checked under the lock that `stop_all` takes after setting
            // `stopping`: either we see it, or stop_all sees us in idle_ms.
            if shared.is_stopping() {
                return std::ptr::null();
            }
            // A submitter may have pushed to the global queue after our last
            // look and found no M to wake (we were not on `idle_ms` yet, and
            // no new M could start: `max_threads`, or thread creation
            // failed). Its `start_m` ran under this lock, so we see its push.
            if !shared.injector.is_empty() {
                if let Some(index) = synced.idle_ps.pop() {
                    self.p_left_idle(shared);
                    return &shared.ps[index];
                }
            }
            // The last M to go idle, with no live timer to wait for, checks
            // for a deadlock (every other M stays asleep while we hold the
            // lock). If unsure, it looks again from its sleep, 1 ms later.
            if synced.idle_ms.len() + 1 == synced.threads.len()
                && self.npidle.load(Ordering::SeqCst) == shared.config.procs
                // A pending timer that is live makes `check` say Live; only
                // stopped ones' leftovers are worth its look.
                && (deadline == NEVER || shared.netpoll.get().is_none())
                && deadlock::check(shared, synced.threads.len()) == Verdict::Unsure
            {
                looks = 1;
                deadline = timers::now() + deadlock::look_again_after(looks);
            }
            synced.idle_ms.push(MPtr(m));
        }
        tracing::trace!(m = m.id, deadline, "M sleep");
        while m.wake_word.load(Ordering::Acquire) == 0 {
            if deadline == NEVER {
                futex::wait(&m.wake_word, 0, None);
                continue;
            }
            let now = timers::now();
            if now < deadline {
                futex::wait(&m.wake_word, 0, Some(Duration::from_nanos(deadline - now)));
                continue;
            }
            // A timer is due. Leave the idle list ourselves with an idle P —
            // unless a waker already took us off it: then its wake is coming.
            let mut synced = self.lock();
            let Some(position) = synced.idle_ms.iter().position(|idle| ptr::eq(idle.0, m)) else {
                deadline = NEVER;
                continue;
            };
            if looks > 0 {
                // The deadlock check's next look, if we are still the last
                // M awake; it exits if the count now matches. While it stays
                // unsure it keeps looking, further and further apart: a
                // foreign thread may block for good long after the first
                // look (`deadlock::look_again_after`).
                let verdict = if synced.idle_ms.len() == synced.threads.len()
                    && self.npidle.load(Ordering::SeqCst) == shared.config.procs
                {
                    deadlock::check(shared, synced.threads.len())
                } else {
                    Verdict::Live
                };
                deadline = if verdict == Verdict::Unsure {
                    looks += 1;
                    timers::now() + deadlock::look_again_after(looks)
                } else {
                    looks = 0;
                    timers::earliest(shared)
                };
                continue;
            }
            if let Some(index) = synced.idle_ps.pop() {
                synced.idle_ms.remove(position);
                self.p_left_idle(shared);
                return &shared.ps[index];
            }
            drop(synced);
            // Every P has an M, and those run their own due timers (or steal
            // ours). Look again a little later, not in a tight loop.
            deadline = timers::earliest(shared).max(timers::now() + RETRY_NANOS);
        }
        m.wake_word.store(0, Ordering::Relaxed);
        m.spinning.set(m.next_spinning.load(Ordering::Relaxed));
        m.next_p.swap(std::ptr::null_mut(), Ordering::Acquire)
    }

    /// Go's `startm`: gives an idle P to an idle M (or a new M thread).
    /// With `spinning`, the caller has already counted the M in `nmspinning`.
    pub(crate) fn start_m(&self, shared: &Shared, spinning: bool) {
        let mut synced = self.lock();
        // After shutdown's `stop_all` took the thread list, no M may start:
        // it would never be joined. (Shutdown can still ready goroutines, by
        // completing abandoned join slots.)
        let index = if shared.is_stopping() {
            None
        } else {
            synced.idle_ps.pop()
        };
        let Some(index) = index else {
            drop(synced);
            if spinning {
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
            return;
        };
        self.p_left_idle(shared);
        self.start_m_with(shared, synced, index, spinning);
    }

    /// Go's `handoffp`: `p` was taken from an M blocked in a system call
    /// (its owner word already cleared). If it has work, or timers, or
    /// nobody is looking for work, an M gets it; otherwise it goes idle.
    pub(crate) fn handoff_p(&self, shared: &Shared, p: &P) {
        super::stats::count_handoff(shared, p.index);
        let has_work = !shared.stealers[p.index].is_empty()
            || p.has_runnext()
            || !shared.injector.is_empty()
            || p.timers.next() != NEVER;
        let synced = self.lock();
        if has_work && !shared.is_stopping() {
            self.start_m_with(shared, synced, p.index, false);
            return;
        }
        let mut synced = synced;
        synced.idle_ps.push(p.index);
        self.npidle.fetch_add(1, Ordering::SeqCst);
        drop(synced);
        // Work may have arrived meanwhile; a spinner will find it.
        wakep_global(shared);
    }

    /// Starts an M (idle or new) with the P at `index`, which the caller
    /// took off the idle list (or out of a system call) under `synced`.
    fn start_m_with(
        &self,
        shared: &Shared,
        mut synced: SectionGuard<'_, Synced>,
        index: usize,
        spinning: bool,
    ) {
        let p: *const P = &shared.ps[index];
        if let Some(m) = synced.idle_ms.pop() {
            drop(synced);
            // SAFETY: Ms on the idle list are alive (freed only after join).
            let m = unsafe { &*m.0 };
            m.next_p.store(p.cast_mut(), Ordering::Relaxed);
            m.next_spinning.store(spinning, Ordering::Relaxed);
            wake(m);
            return;
        }
        if synced.threads.len() >= shared.config.max_threads {
            synced.idle_ps.push(index);
            self.npidle.fetch_add(1, Ordering::SeqCst);
            drop(synced);
            if spinning {
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
            break_netpoll(shared);
            if !self.warned_max_threads.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max = shared.config.max_threads,
                    "goro: max_threads reached; work waits for a running M (said once)"
                );
            }
            return;
        }
        let id = synced.next_m_id;
        synced.next_m_id += 1;
        match start_thread(shared, id, p, spinning) {
            Ok(record) => {
                synced.threads.push(record);
                drop(synced);
                shared.sysmon.ensure_started(shared);
            }
            Err(error) => {
                synced.idle_ps.push(index);
                self.npidle.fetch_add(1, Ordering::SeqCst);
                drop(synced);
                break_netpoll(shared);
                if spinning {
                    self.nmspinning.fetch_sub(1, Ordering::SeqCst);
                }
                tracing::error!(%error, "cannot start an M thread");
            }
        }
    }

    /// Starts the runtime's first M (holding no work yet) if none exists,
    /// so that a failure to create a thread is reported to the first
    /// spawner instead of stranding its goroutine.
    pub(crate) fn ensure_first_m(&self, shared: &Shared) -> std::io::Result<()> {
        let mut synced = self.lock();
        if !synced.threads.is_empty() || shared.is_stopping() {
            return Ok(());
        }
        let Some(index) = synced.idle_ps.pop() else {
            return Ok(());
        };
        self.p_left_idle(shared);
        let id = synced.next_m_id;
        synced.next_m_id += 1;
        match start_thread(shared, id, &shared.ps[index], false) {
            Ok(record) => {
                synced.threads.push(record);
                drop(synced);
                shared.sysmon.ensure_started(shared);
                Ok(())
            }
            Err(error) => {
                synced.idle_ps.push(index);
                self.npidle.fetch_add(1, Ordering::SeqCst);
                Err(std::io::Error::new(
                    error.kind(),
                    format!("goro: cannot start a worker thread (M): {error}"),
                ))
            }
        }
    }

    /// Number of M threads started and not yet joined.
    pub(crate) fn thread_count(&self) -> usize {
        self.lock().threads.len()
    }

    /// For diagnostics (`diag/`): M ids, sleeping M ids, idle P indexes.
    pub(crate) fn snapshot(&self) -> super::stats::IdleSnapshot {
        let synced = self.lock();
        // SAFETY: Ms on these lists are alive while listed (freed only after
        // `stop_all` takes them off under this lock); `id` is immutable.
        let id = |m: &MPtr| unsafe { &*m.0 }.id;
        super::stats::IdleSnapshot {
            ms: synced.threads.iter().map(|(m, _)| id(m)).collect(),
            idle_ms: synced.idle_ms.iter().map(id).collect(),
            idle_ps: synced.idle_ps.clone(),
        }
    }

    /// Shutdown: wakes every sleeping M with no P (so it exits), then joins
    /// every M thread that exits before `deadline`. Returns how many M
    /// threads are still running a goroutine and were left detached.
    pub(crate) fn stop_all(&self, deadline: Instant) -> usize {
        let (sleepers, threads) = {
            let mut synced = self.lock();
            (
                std::mem::take(&mut synced.idle_ms),
                std::mem::take(&mut synced.threads),
            )
        };
        for m in sleepers {
            // SAFETY: Ms on the idle list are alive until joined below.
            let m = unsafe { &*m.0 };
            m.next_p.store(std::ptr::null_mut(), Ordering::Relaxed);
            wake(m);
        }
        let mut detached = 0;
        for (m, handle) in threads {
            // SAFETY: the M is freed only here, after its thread is joined.
            let exited = || unsafe { &*m.0 }.exited.load(Ordering::Acquire);
            while !exited() && Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            if exited() {
                let _ = handle.join();
                // SAFETY: the thread is joined; nothing references the M now.
                drop(unsafe { Box::from_raw(m.0.cast_mut()) });
            } else {
                detached += 1;
            }
        }
        detached
    }
}

/// Releases a sleeping M. Once `wake_word` is 1 the M may run, exit and (at
/// shutdown) be freed, so the futex wake uses a raw address taken before.
fn wake(m: &M) {
    let address = m.wake_word.as_ptr() as usize;
    m.wake_word.store(1, Ordering::Release);
    futex::wake_raw(address, 1);
}

/// No M could be started for an idle P: an M blocked in `epoll_wait`
/// (epoll backend) is on no idle list, so ring its doorbell, and it takes
/// the P when it wakes (Go's `netpollBreak` in the same place).
fn break_netpoll(shared: &Shared) {
    if let Some(poller) = shared.netpoll.get() {
        poller.interrupt();
    }
}

/// `wakep` after a push to the global queue (from a thread without a P).
/// The SeqCst fence pairs with the one an M issues after it stops spinning
/// (step 5): either that M sees our G, or we see it gone and wake one. Without
/// the fence the push could sit in our store buffer while we read a stale
/// `npidle == 0`, stranding the G with no M to run it.
pub(crate) fn wakep_global(shared: &Shared) {
    fence(Ordering::SeqCst);
    wakep(shared);
}

/// Go's `wakep`: called after making a G runnable on the caller's own P. If
/// a P is idle and no M is spinning, starts one spinning M (step 2).
///
/// No fence here (as in Go): the G sits on the caller's own P, whose M will
/// run it anyway, so a wake missed through a stale `npidle` costs parallelism
/// for a moment, never liveness. That saves an `mfence` on every spawn.
pub(crate) fn wakep(shared: &Shared) {
    let idle = &shared.idle;
    if idle.npidle.load(Ordering::SeqCst) == 0 {
        return;
    }
    if idle.nmspinning.load(Ordering::SeqCst) != 0
        || idle
            .nmspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    {
        return;
    }
    idle.start_m(shared, true);
}
