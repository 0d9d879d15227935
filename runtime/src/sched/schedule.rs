//! The schedule loop, the switch protocol, and the doors into the scheduler
//! (`park`, `ready`, `yield_now`, spawn, exit).
//!
//! # Where scheduler code runs
//!
//! - **Fast path, on the goroutine's stack.** A G that yields, parks or exits
//!   picks its successor from its own P (`runnext`, the local deque, and the
//!   global queue every 61 ticks) and switches to it directly: one switch.
//! - **Slow path, on g0** (the M's own thread stack). If the P has nothing
//!   local, the G switches to g0, where `find_runnable` spins, steals, and
//!   finally sleeps the M. Sleeping on g0 matters: the parked G's stack must be
//!   free for another M to resume it.
//!
//! # The switch protocol: publish after switching
//!
//! A G must not become visible to other Ms (in a run queue, in a wait queue)
//! while its own stack is still in use, or a thief could resume it under our
//! feet. So a G never publishes itself: it records what it wants as a
//! [`Pending`] on its M, switches, and the code that runs next on that M —
//! the successor G or g0 — calls [`finish_switch`], which re-queues the
//! yielder, marks the parker Waiting and runs its `unlock`, or recycles the
//! dead G. This is Go's `mcall` + `park_m` split, without the detour through
//! g0 on the fast path.

use std::io;
use std::ptr;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_deque::Steal;

use super::g::{GRef, Status, WaitReason, G};
use super::idle::{wakep, wakep_global};
use super::locks;
use super::m::{current_m, Pending, Unlock, M};
use super::netpoll;
use super::p::P;
use super::pool;
use super::shared::Shared;
use super::spin;
use super::task::TaskRef;
use super::timers::{self, NEVER};
use crate::arch;

/// How long a thief leaves a victim's `runnext` to its owner before taking
/// it (Go's `usleep(3)` in `runqgrab`). Measured on `buffered_128/2p`:
/// stealing at once split producer and consumer across the two Ps (252 ns
/// per value against Go's 81); see `P::steal_runnext`.
const RUNNEXT_GRACE: Duration = Duration::from_micros(3);

/// Go polls the global queue once every 61 schedule ticks so that it cannot
/// starve behind a busy local queue (61: prime, and not too frequent).
const GLOBAL_POLL_INTERVAL: u64 = 61;

/// The switch path runs its P's due timers once every this many ticks: a
/// clock read (~20 ns) on every switch would double a yield's cost, and a
/// timer due in the meantime is late by at most a few switches. An M that
/// runs out of work checks them every time (`find_runnable`).
const TIMER_CHECK_INTERVAL: u64 = 8;

/// g0's loop: find a G, run it, handle what it left pending, repeat. Returns
/// when the runtime stops.
pub(crate) fn schedule_loop(m: &M) {
    // g0 runs scheduler code only, so it holds one "locks" count for good
    // (`locks.rs`): it is never preempted and its P is never taken.
    locks::acquire();
    while let Some(g) = find_runnable(m) {
        execute(m, g);
        // Back on g0: some G switched here with a pending action.
        finish_switch(m);
    }
    locks::release();
}

/// Runs `g` on this M from g0.
fn execute(m: &M, g: GRef) {
    m.p().tick();
    m.curg.set(Some(g));
    g.set_status(Status::Running);
    // SAFETY: `g` was Runnable and we dequeued it, so we own it.
    unsafe { enter(m.g0_sp.get(), g) };
}

/// Saves the running context into `save` and runs `g`: resumes its saved
/// context, or starts it if it has never run (`sp == 0`, see `G::prepare`).
///
/// # Safety
/// The caller owns `g` (Running, just dequeued) and `save` is the current
/// context's save slot.
#[inline(always)]
unsafe fn enter(save: *mut usize, g: GRef) {
    // SAFETY: the caller owns `g`, so reading its cells is race-free; a
    // non-zero `sp` is a context saved by a completed switch.
    unsafe {
        let sp = *g.sp.get();
        if sp == 0 {
            arch::start(save, g.start_top(), goroutine_entry, g.as_ptr() as usize);
        } else {
            arch::switch(save, sp);
        }
    }
}

/// A G's successor from its own P without leaving the G's stack: runnext,
/// the local deque, and the global queue (first on every 61st tick, and
/// whenever the local queue is empty). A G taken from the local deque, from
/// the global queue when the deque ran dry, or from a `runnext` the
/// look-ahead filled starts the next look-ahead (`P::look_ahead`, p.rs
/// "Looking one G ahead").
///
/// `run_timers: false` while the switching G may still hold a lock its
/// park's `unlock` will release (a channel's, a select's): a due timer that
/// sends on that channel would spin on the lock forever. The M then runs
/// its timers on a later switch, or in `find_runnable`.
fn next_local(shared: &Shared, p: &P, run_timers: bool) -> Option<GRef> {
    if shared.is_stopping() {
        return None;
    }
    if run_timers && p.schedtick().is_multiple_of(TIMER_CHECK_INTERVAL) {
        timers::run_own(p);
    }
    if p.schedtick().is_multiple_of(GLOBAL_POLL_INTERVAL) {
        if let Steal::Success(g) = shared.injector.steal() {
            return Some(g);
        }
    }
    if let Some((g, looked_ahead)) = p.take_runnext_own() {
        if looked_ahead {
            // SAFETY: the calling M holds `p`.
            unsafe { p.look_ahead() };
        }
        return Some(g);
    }
    // SAFETY: the calling M holds `p`.
    let local = unsafe { p.local() };
    let g = match local.pop() {
        Some(g) => g,
        None => loop {
            match shared.injector.steal_batch_and_pop(local) {
                Steal::Success(g) => break g,
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        },
    };
    // SAFETY: the calling M holds `p`.
    unsafe { p.look_ahead() };
    Some(g)
}

/// The current M, read once the caller has raised the "locks" count (so the
/// goroutine cannot migrate before it uses the M).
///
/// # Panics
/// Outside a goroutine, naming `what`.
#[inline(always)]
fn locked_goroutine_m(what: &str) -> &'static M {
    // SAFETY: a non-null current M is this thread's live M; it outlives
    // the door that asks (Ms are freed only after their thread exits).
    match unsafe { current_m().as_ref() } {
        Some(m) if m.curg.get().is_some() => m,
        _ => {
            locks::release();
            panic!("goro: {what} called outside a goroutine")
        }
    }
}

/// Switches the current G out, leaving `pending` for whoever runs next on
/// this M. Returns when the G is resumed (possibly on another M). The caller
/// raised the "locks" count and read `m` after that; the count travels with
/// the switch and is dropped here once the G is back (`locks.rs`).
#[inline(always)]
pub(crate) fn switch_out_locked(m: &M, pending: Pending) {
    let current = m.curg.get().expect("goro: switch_out outside a goroutine");
    if m.preempt_off.get() != 0 {
        crate::sys::write_stderr(
            b"fatal error: goro: a goroutine switched out (yield, park, channel or lock wait) \
              while holding goro::preempt::disable()\n",
        );
        crate::sys::abort();
    }
    m.pending.set(pending);
    m.pending_g.set(Some(current));
    let shared = m.shared();
    let next = match m.own_p() {
        Some(p) => {
            if pending == Pending::Preempted {
                // A timer that fell due during the slice (a sleeper beside
                // a spinner) runs before the preempted G comes round again.
                timers::run_own(p);
            }
            next_local(shared, p, pending != Pending::Park)
        }
        // No P (it was taken while we sat in the kernel): g0 requeues us.
        None => None,
    };
    match next {
        Some(next) => {
            m.p().tick();
            m.curg.set(Some(next));
            next.set_status(Status::Running);
            // SAFETY: we own `current` (Running here) and `next` (dequeued).
            unsafe { enter(current.sp.get(), next) };
        }
        None => {
            m.curg.set(None);
            // SAFETY: g0 of this M is suspended in `execute`, saved there.
            unsafe { arch::switch(current.sp.get(), *m.g0_sp.get()) };
        }
    }
    // Resumed, perhaps on another thread: re-read the M (see m.rs).
    // SAFETY: we run as a goroutine, so the current M is non-null.
    finish_switch(unsafe { &*current_m() });
    locks::release();
}

/// Carries out what the previous G on this M left pending (module doc).
pub(crate) fn finish_switch(m: &M) {
    let pending = m.pending.replace(Pending::None);
    if pending == Pending::None {
        return;
    }
    let g = m
        .pending_g
        .take()
        .expect("goro: pending action without its G");
    match pending {
        Pending::None => {}
        Pending::Yield => {
            g.set_status(Status::Runnable);
            put_local_or_global(m, g, false);
        }
        Pending::Preempted => {
            // Go's `gopreempt_m`: to the global queue, so any P may take it
            // and whatever waited behind it on this P runs first.
            g.set_status(Status::Runnable);
            let shared = m.shared();
            shared.injector.push(g);
            wakep_global(shared);
        }
        Pending::Park => {
            g.set_status(Status::Waiting);
            let unlock = m.park_unlock.take().expect("goro: park without unlock");
            // `unlock` runs on a stack that is not the parker's; a panic must
            // not unwind into whatever runs here.
            let abort_on_unwind = AbortOnUnwind;
            // SAFETY: `unlock` lives on the parked G's stack, which stays
            // untouched until someone readies it, and that can only happen
            // after `unlock` publishes it.
            let parked = unsafe { (*unlock)(g) };
            std::mem::forget(abort_on_unwind);
            debug_assert!(
                std::ptr::eq(current_m(), m),
                "goro: a park's unlock switched goroutines"
            );
            if !parked && g.try_make_runnable() {
                put_local_or_global(m, g, true);
            }
        }
        Pending::Exit => {
            g.set_status(Status::Dead);
            // SAFETY: a non-null P pointer of this M is its own P.
            let p = unsafe { m.p.get().as_ref() };
            pool::put(m.shared(), p, g);
        }
    }
}

/// Queues a Runnable `g` on this M's P, or — on an M whose P was taken
/// while it sat in the kernel — on the global queue.
fn put_local_or_global(m: &M, g: GRef, next: bool) {
    if m.p.get().is_null() {
        let shared = m.shared();
        shared.injector.push(g);
        wakep_global(shared);
    } else {
        // SAFETY: this M holds its P (a switch's count kept it), and `g` is
        // Runnable and in no queue.
        unsafe { m.p().put(g, next) };
    }
}

/// Aborts the process if dropped during unwinding: guards code that must
/// not unwind across stacks.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        crate::sys::write_stderr(
            b"fatal error: goro: panic inside the scheduler (a park's unlock)\n",
        );
        crate::sys::abort();
    }
}

/// g0's search for work (Go's `findRunnable`); see the protocol in
/// `sched/mod.rs`. Returns `None` when the runtime stops.
fn find_runnable(m: &M) -> Option<GRef> {
    let shared = m.shared();
    loop {
        if shared.is_stopping() {
            return None;
        }
        if m.p.get().is_null() && !acquire_p_for_g0(shared, m) {
            return None;
        }
        let p = m.p();
        timers::run_all(shared, p);
        if let Some(g) = next_local(shared, p, true) {
            reset_spinning(m);
            return Some(g);
        }
        // Go polls the network here, before stealing (epoll; `netpoll.rs`).
        if let Some(g) = netpoll::poll_now(shared) {
            reset_spinning(m);
            return Some(g);
        }
        // Step 3: spin, stealing, if spinning is allowed.
        if m.spinning.get() || shared.idle.may_spin(shared.config.procs) {
            if !m.spinning.get() {
                m.spinning.set(true);
                shared.idle.nmspinning.fetch_add(1, Ordering::SeqCst);
            }
            if let Some(g) = spin_and_steal(m, p) {
                reset_spinning(m);
                return Some(g);
            }
        }
        if shared.is_stopping() {
            return None;
        }
        // Step 4: give up the P (trimming idle stacks first, off the spawn path).
        pool::trim_idle(shared, p);
        if !shared.idle.release_p(shared, p) {
            continue;
        }
        m.p.set(ptr::null());
        // Step 5: stop spinning, then look once more (the race is closed by
        // SeqCst: submitters push, fence, then read nmspinning/npidle).
        let was_spinning = m.spinning.replace(false);
        if was_spinning {
            shared.idle.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        let deadline = timers::earliest(shared);
        if shared.any_work() || (deadline != NEVER && deadline <= timers::now()) {
            if let Some(p) = shared.idle.take_p(shared) {
                m.install_p(p);
                if was_spinning {
                    m.spinning.set(true);
                    shared.idle.nmspinning.fetch_add(1, Ordering::SeqCst);
                }
                continue;
            }
        }
        // Step 6: block in the netpoller if no other M does (epoll), else
        // sleep until a waker hands us a P, or until the earliest timer is
        // due (then we take an idle P to run it).
        if let netpoll::Blocked::Run(g) = netpoll::poll_blocking(shared, m, deadline) {
            // Stopping: a readied G stays Runnable in `all_gs`, where
            // shutdown abandons it.
            if shared.is_stopping() {
                return None;
            }
            if g.is_some() {
                return g;
            }
            continue;
        }
        let p = shared.idle.sleep(shared, m, deadline);
        if p.is_null() {
            return None;
        }
        m.install_p(p);
    }
}

/// g0 of an M without a P (back from a system call whose P was handed off,
/// or having lost it in the kernel): takes an idle P, or sleeps until a
/// waker hands it one (Go's `stopm`). False when the runtime stops.
fn acquire_p_for_g0(shared: &Shared, m: &M) -> bool {
    m.orphaned.store(false, Ordering::Relaxed);
    if let Some(p) = shared.idle.take_p(shared) {
        m.install_p(p);
        return true;
    }
    let p = shared.idle.sleep(shared, m, timers::earliest(shared));
    if p.is_null() {
        return false;
    }
    m.install_p(p);
    true
}

/// Steals from other Ps in random order: [`spin::QUICK_ROUNDS`] rounds, then
/// up to [`spin::SPIN_FOR`] more while the runtime's spin credit says
/// spinning pays (`spin.rs`).
fn spin_and_steal(m: &M, p: &P) -> Option<GRef> {
    let shared = m.shared();
    for round in 0..spin::QUICK_ROUNDS {
        if let Some(g) = steal_round(m, p, round) {
            return Some(g);
        }
        if shared.is_stopping() {
            return None;
        }
    }
    let credit = &shared.idle.spin;
    if !credit.extend(m.random()) {
        return None;
    }
    let start = Instant::now();
    let mut round = spin::QUICK_ROUNDS;
    loop {
        std::hint::spin_loop();
        if let Some(g) = steal_round(m, p, round) {
            credit.spun(true, start.elapsed());
            return Some(g);
        }
        let spent = start.elapsed();
        if shared.is_stopping() || spent >= spin::SPIN_FOR {
            credit.spun(false, spent);
            return None;
        }
        round += 1;
    }
}

/// One pass over the other Ps (in random order) and the global queue.
fn steal_round(m: &M, p: &P, round: u32) -> Option<GRef> {
    let shared = m.shared();
    let procs = shared.ps.len();
    // SAFETY: the calling M holds `p`.
    let local = unsafe { p.local() };
    let first = (m.random() % procs as u64) as usize;
    // Read once, and only when some victim has a timer: most rounds find
    // none, and a clock read is the costliest step of an empty round.
    let mut now = None;
    for offset in 0..procs {
        let victim = (first + offset) % procs;
        if victim == p.index {
            continue;
        }
        // A P busy with a long goroutine does not hold its due timers
        // hostage: run them here (what they ready lands on our P).
        if shared.ps[victim].timers.next() != NEVER {
            let now = *now.get_or_insert_with(timers::now);
            if timers::run_other(&shared.ps[victim], now) > 0 {
                if let Some(g) = next_local(shared, p, true) {
                    return Some(g);
                }
            }
        }
        let stealer = &shared.stealers[victim];
        let available = stealer.len();
        if available > 0 {
            // Half of the victim's queue (the popped G included).
            let limit = available.div_ceil(2);
            if let Steal::Success(g) = stealer.steal_batch_with_limit_and_pop(local, limit) {
                super::stats::count_steal(shared, p, victim, local.len() + 1);
                return Some(g);
            }
        } else if round > 0 {
            // Like Go, take a victim's runnext only after a first round,
            // and only if its owner left it there for `RUNNEXT_GRACE`.
            if let Some(g) = shared.ps[victim].steal_runnext(RUNNEXT_GRACE) {
                super::stats::count_steal(shared, p, victim, 1);
                return Some(g);
            }
        }
    }
    if let Steal::Success(g) = shared.injector.steal_batch_and_pop(local) {
        return Some(g);
    }
    None
}

/// Go's `resetspinning`: a spinning M that found work stops spinning, and if
/// it was the last spinner, wakes another (there may be more work).
fn reset_spinning(m: &M) {
    if m.spinning.replace(false) {
        let shared = m.shared();
        if shared.idle.nmspinning.fetch_sub(1, Ordering::SeqCst) == 1 {
            wakep(shared);
        }
    }
}

/// Parks the current goroutine (Go's `gopark`).
///
/// Once the goroutine is off its stack, `unlock(g)` runs on another stack. It
/// publishes `g` to whoever will wake it (a wait queue) and returns `true`;
/// from then on, exactly one party may call [`ready`] on it. If it returns
/// `false` (the condition already holds), the goroutine is made runnable again
/// at once. `unlock` must not block, switch (no `yield_now`, `join`, `wait`)
/// or panic: it runs on another goroutine's stack or g0 (a panic aborts).
/// Crate-private: these rules are the runtime's, not a user's, to keep.
///
/// # Panics
/// Outside a goroutine.
pub(crate) fn park<F: FnOnce(GRef) -> bool>(reason: WaitReason, unlock: F) {
    locks::acquire();
    let m = locked_goroutine_m("park()");
    let g = m
        .curg
        .get()
        .expect("goro: park() called outside a goroutine");
    g.set_wait_reason(reason);
    tracing::trace!(target: "goro::sched", goroutine = g.id(), reason = reason.as_str(), "park");
    let mut unlock = Some(unlock);
    let mut call = move |g: GRef| match unlock.take() {
        Some(unlock) => unlock(g),
        None => false,
    };
    let call: &mut (dyn FnMut(GRef) -> bool + '_) = &mut call;
    // The closure lives in this frame, intact until the goroutine resumes,
    // and `finish_switch` calls it exactly once before anyone can resume us.
    // SAFETY: so erasing its lifetime is sound (see above).
    let call: Unlock = unsafe { std::mem::transmute(call) };
    m.park_unlock.set(Some(call));
    switch_out_locked(m, Pending::Park);
    g.set_wait_reason(WaitReason::None);
}

/// Makes a parked goroutine runnable (Go's `goready`). Callable from any
/// goroutine of any runtime, or from a foreign thread.
///
/// # Panics
/// Aborts the process if `g` is not parked: two wakers for one park is a bug
/// in the caller that would otherwise run one goroutine on two threads.
pub(crate) fn ready(g: GRef) {
    ready_to(g, true, true);
}

/// [`ready`] for a batch (due timers): the G goes to the tail of the local
/// queue, not `runnext` (a batch would only shuffle through it), and the
/// caller runs `wakep` once for the batch when `wake` is false.
pub(crate) fn ready_batched(g: GRef) {
    ready_to(g, false, false);
}

fn ready_to(g: GRef, next: bool, wake: bool) {
    // Exactly one party may ready a parked G: the one that took it out of a
    // wait queue, under that queue's lock. So a check and a plain store
    // suffice, saving a locked compare-exchange on every wake; the check
    // still catches a second `ready` in all but a true race.
    if g.status() != Status::Waiting {
        crate::sys::write_stderr(b"fatal error: goro: ready() on a goroutine that is not parked\n");
        crate::sys::abort();
    }
    g.set_status(Status::Runnable);
    tracing::trace!(
        target: "goro::sched",
        goroutine = g.id(),
        reason = g.wait_reason().as_str(),
        "ready"
    );
    // SAFETY: a G's Shared outlives it (g.rs module doc).
    let shared = unsafe { &*g.shared };
    let section = locks::Section::enter();
    // SAFETY: a non-null current M is this thread's live M, and the count
    // keeps this goroutine (if we are one) on it.
    if let Some(m) = unsafe { current_m().as_ref() } {
        if ptr::eq(m.shared, shared) {
            if let Some(p) = m.own_p() {
                // SAFETY: this M holds `p`; `g` is Runnable and unqueued.
                unsafe { p.put(g, next) };
                if wake {
                    wakep(shared);
                }
                return;
            }
        }
    }
    // The count stays raised until after `wakep_global`: it may take the
    // other runtime's sched lock, which no preemptible goroutine may hold.
    // From a foreign thread or another runtime, nothing keeps this runtime
    // alive once the G is pushed: an M could run it to completion and the
    // runtime be dropped while we are still in `wakep`. Pin it first. (Until
    // the push it cannot be freed: shutdown leaks a runtime with a G that is
    // not Idle or Dead.)
    // SAFETY: `g.shared` is the pointer of the runtime's `Arc<Shared>`, which
    // is alive (above); the matching decrement is the drop below.
    let pinned = unsafe {
        Arc::increment_strong_count(g.shared);
        Arc::from_raw(g.shared)
    };
    pinned.injector.push(g);
    wakep_global(&pinned);
    drop(pinned);
    drop(section);
}

/// Go's `Gosched`: lets other goroutines run; this one stays runnable.
pub fn yield_now() {
    locks::acquire();
    // SAFETY: a non-null current M is this thread's live M.
    match unsafe { current_m().as_ref() } {
        // Not while unwinding: std's panic count is per thread, and a
        // goroutine resumed on another M would finish its unwind there
        // (yielding is only a hint, so this costs nothing but fairness).
        Some(m) if m.curg.get().is_some() && !std::thread::panicking() => {
            switch_out_locked(m, Pending::Yield)
        }
        _ => {
            locks::release();
            std::thread::yield_now();
        }
    }
}

/// Whether the caller is a goroutine.
pub fn in_goroutine() -> bool {
    // SAFETY: a non-null current M is this thread's live M.
    unsafe { current_m().as_ref() }.is_some_and(|m| m.curg.get().is_some())
}

/// The id of the calling goroutine, as the runtime sees it (the G its
/// current M is running), or `None` outside a goroutine. Diagnostics and
/// tests use it; it is not meant for goroutine-local storage.
pub fn current_goroutine_id() -> Option<u64> {
    let _section = locks::Section::enter();
    // SAFETY: a non-null current M is this thread's live M.
    unsafe { current_m().as_ref() }
        .and_then(|m| m.curg.get())
        .map(|g| g.id())
}

/// Why a spawn from the current context could not happen.
pub(crate) enum SpawnError {
    /// The caller is not a goroutine, so there is no current runtime.
    NoRuntime,
    /// The stack could not be mapped (the VMA ceiling, usually).
    Stack(io::Error),
}

/// Spawns on the current goroutine's runtime and P (into `runnext`, as Go).
pub(crate) fn spawn_here(
    task: TaskRef,
    name: Option<Box<str>>,
    stack_size: Option<usize>,
    location: &'static std::panic::Location<'static>,
) -> Result<u64, SpawnError> {
    let _section = locks::Section::enter();
    // SAFETY: a non-null current M is this thread's live M.
    let m = match unsafe { current_m().as_ref() } {
        Some(m) if m.curg.get().is_some() => m,
        _ => return Err(SpawnError::NoRuntime),
    };
    let shared = m.shared();
    let Some(p) = m.own_p() else {
        // An M whose P was taken while it sat in the kernel: spawn as a
        // foreign thread would, onto the global queue.
        return spawn_external(shared, task, name, stack_size, location).map_err(SpawnError::Stack);
    };
    let size = stack_size.unwrap_or(shared.config.stack_size);
    let g = pool::get(shared, Some(p), size).map_err(SpawnError::Stack)?;
    // SAFETY: this M holds `p`.
    let id = unsafe { p.next_goroutine_id(&shared.next_goroutine_id) };
    tracing::debug!(target: "goro::sched", goroutine = id, name = name.as_deref(), created_at = %location, "spawn");
    // SAFETY: `g` is Idle and owned by us; it has a stack.
    unsafe { g.prepare(id, name, location, task) };
    p.count_spawn();
    g.set_status(Status::Runnable);
    // SAFETY: this M holds `p`; `g` is Runnable and unqueued.
    unsafe { p.put(g, true) };
    wakep(shared);
    Ok(id)
}

/// Spawns from a thread that is not one of this runtime's goroutines: the G
/// goes to the global queue.
pub(crate) fn spawn_external(
    shared: &Shared,
    task: TaskRef,
    name: Option<Box<str>>,
    stack_size: Option<usize>,
    location: &'static std::panic::Location<'static>,
) -> io::Result<u64> {
    // With no M at all, a failure to create one would strand the goroutine:
    // start the first M here and report that failure to the caller.
    shared.idle.ensure_first_m(shared)?;
    let size = stack_size.unwrap_or(shared.config.stack_size);
    let g = pool::get(shared, None, size)?;
    let id = shared.next_goroutine_id.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(target: "goro::sched", goroutine = id, name = name.as_deref(), created_at = %location, "spawn");
    // SAFETY: `g` is Idle and owned by us; it has a stack.
    unsafe { g.prepare(id, name, location, task) };
    shared.external_spawned.fetch_add(1, Ordering::AcqRel);
    g.set_status(Status::Runnable);
    shared.injector.push(g);
    wakep_global(shared);
    Ok(id)
}

/// A goroutine's first Rust frame, entered through `arch::start`.
/// Never returns and never unwinds: the task catches the closure's panic.
extern "C" fn goroutine_entry(g: usize) -> ! {
    // SAFETY: `enter` passes this G's pointer as the argument.
    let g = unsafe { GRef::from_ptr(g as *mut G) };
    // SAFETY: goroutines run on Ms, so the current M is non-null.
    finish_switch(unsafe { &*current_m() });
    // The count our starter raised for the switch (`locks.rs`).
    locks::release();
    // SAFETY: the G is Running on this M: we own it.
    if let Some(task) = unsafe { g.task() } {
        // SAFETY: this goroutine owns the task and runs it once.
        unsafe { task.run() };
    }
    tracing::debug!(target: "goro::sched", goroutine = g.id(), "exit");
    // SAFETY: still our G; this drops the closure's Arc on the G's own stack.
    unsafe { g.clear_task() };
    locks::acquire();
    // SAFETY: still on an M (perhaps another one).
    let m = unsafe { &*current_m() };
    match m.own_p() {
        Some(p) => p.count_exit(),
        None => {
            m.shared().external_exited.fetch_add(1, Ordering::AcqRel);
        }
    }
    switch_out_locked(m, Pending::Exit);
    crate::sys::write_stderr(b"fatal error: goro: a dead goroutine was resumed\n");
    crate::sys::abort()
}
