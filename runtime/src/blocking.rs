//! `goro::blocking(f)`: run a blocking system call without holding up a P
//! (Go's `entersyscall` / `exitsyscall`).
//!
//! # Protocol
//!
//! 1. **Enter.** The M marks its P's owner word `M | SYSCALL` (a
//!    compare-exchange from `M`, waiting out a sysmon retake in progress:
//!    the P is now retakeable), bumps the P's `syscalltick`, and runs `f`
//!    with no P and no current goroutine. Nothing is handed off yet: most
//!    calls are short, and handing off costs a wake (15–30 µs here).
//! 2. **Retake.** sysmon sees the same call still in progress on its next
//!    tick (about 20 µs later), takes the P with a compare-exchange
//!    `M | SYSCALL → 0`, and hands it to an idle, spinning or new M
//!    (`Idle::handoff_p`), which runs the P's other goroutines meanwhile.
//! 3. **Exit, fast path.** A compare-exchange `M | SYSCALL → M`: the P was
//!    not taken, and the goroutine simply carries on. Otherwise it takes any
//!    idle P.
//! 4. **Exit, slow path.** No P is free: the goroutine switches to g0, which
//!    queues it on the global run queue, and the M sleeps as an idle M until
//!    a waker hands it a P (Go's `exitsyscall0` + `stopm`).
//!
//! While `f` runs the M has no current goroutine, so goro calls inside `f`
//! behave as on a foreign thread: a channel operation blocks the thread (not
//! a goroutine), `yield_now` yields the thread, and `current_goroutine_id`
//! is `None`. `f` may panic; the goroutine is back in the scheduler before
//! the panic continues.
//!
//! `max_threads` bounds the Ms: at the bound, sysmon cannot hand the P to a
//! new M, so the P waits for this call (or another M) to finish, and a
//! `tracing` warning says so once.

use std::sync::atomic::Ordering;

use crate::sched::locks;
use crate::sched::m::{current_m, Pending, M};
use crate::sched::p::{RETAKING, SYSCALL};
use crate::sched::schedule::switch_out_locked;
use crate::sched::stats;

/// Runs `f`, which may block in the kernel, while the goroutine's P serves
/// other goroutines. Outside a goroutine (or inside another `blocking`) it
/// just calls `f`.
///
/// ```
/// let text = goro_runtime::run(|| {
///     goro_runtime::blocking(|| std::fs::read_to_string("/proc/self/status"))
/// });
/// assert!(text.unwrap().contains("Name:"));
/// ```
pub fn blocking<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    locks::acquire();
    // SAFETY: a non-null current M is this thread's live M; the count keeps
    // this goroutine on it.
    let m = match unsafe { current_m().as_ref() } {
        Some(m) if m.curg.get().is_some() => m,
        _ => {
            locks::release();
            return f();
        }
    };
    enter(m);
    locks::release();
    // Exits the call even if `f` panics.
    let _exit = Exit;
    f()
}

/// Step 1 of the protocol.
fn enter(m: &M) {
    stats::count_syscall_enter(m.shared());
    let g = m.curg.take();
    m.blocking_g.set(g);
    if let Some(p) = m.own_p() {
        p.syscalltick.fetch_add(1, Ordering::Relaxed);
        let mine = m.owner_tag();
        // A compare-exchange, not a store: sysmon may have marked the P
        // RETAKING since `own_p` looked (it saw our count at 0 while the
        // goroutine sat in the kernel). A store would erase its mark and
        // sysmon, finding our count back at 0 once `f` returned, would hand
        // off a P we still run on. With our count raised sysmon gives it
        // back within a `membarrier`; wait for that.
        loop {
            match p.owner.compare_exchange(
                mine,
                mine | SYSCALL,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    m.syscall_p.set(p);
                    break;
                }
                Err(RETAKING) => std::hint::spin_loop(),
                // Taken after all: the exit takes any idle P.
                Err(_) => break,
            }
        }
    }
    m.p.set(std::ptr::null());
}

struct Exit;

impl Drop for Exit {
    fn drop(&mut self) {
        locks::acquire();
        // SAFETY: no switch happened since `enter` (the M had no goroutine
        // to switch), so this is the same, live M.
        let m = unsafe { &*current_m() };
        stats::count_syscall_exit(m.shared());
        let g = m
            .blocking_g
            .take()
            .expect("goro: blocking() lost its goroutine");
        m.curg.set(Some(g));
        let p = m.syscall_p.replace(std::ptr::null());
        if !p.is_null() {
            // SAFETY: P pointers point into `Shared::ps`.
            let p = unsafe { &*p };
            let mine = m.owner_tag();
            if p.owner
                .compare_exchange(mine | SYSCALL, mine, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                m.p.set(p);
                locks::release();
                return;
            }
        }
        let shared = m.shared();
        if let Some(p) = shared.idle.take_p(shared) {
            m.install_p(p);
            locks::release();
            return;
        }
        if std::thread::panicking() {
            // Unwinding: the panic count is per thread, so the goroutine must
            // not move now. It runs on without a P until it next enters the
            // scheduler, which queues it then (as for an orphaned M).
            m.orphaned.store(true, Ordering::Release);
            locks::release();
            return;
        }
        // No P: g0 queues us globally and the M sleeps (module doc, step 4).
        tracing::trace!(m = m.id, "blocking(): no P on return; queued globally");
        switch_out_locked(m, Pending::Yield);
    }
}
