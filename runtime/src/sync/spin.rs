//! When a lock's waiter may spin instead of parking: Go's
//! `sync_runtime_canSpin` and `sync_runtime_doSpin` (`src/runtime/proc.go`).
//!
//! Spinning helps only if the holder is running on another CPU right now and
//! will release the lock within about the time a park and a wake would cost.
//! So, as Go, a waiter spins at most [`ACTIVE_SPIN`] rounds of
//! [`SPIN_PAUSES`] `pause` instructions, and only while:
//!
//! 1. the machine has more than one CPU;
//! 2. some other P is busy running goroutines (`procs > npidle + nmspinning
//!    + 1`): otherwise no one can be holding the lock *and* running;
//! 3. the spinner's own P has no other goroutine queued (its local queue and
//!    `runnext` are empty): a queued goroutine could be the holder, or
//!    could at least do useful work while this one parks.
//!
//! A foreign thread (no M) checks only rule 1.
//!
//! Measured on the dev VM: PAUSE costs ~50 ns on its CPU (a loop of 10⁶
//! PAUSEs: 46–60 ns each), so one round of Go's 30 is ~1.5 µs and a
//! waiter spins up to ~6 µs; Go chose 30 when PAUSE took ~10 cycles. Rounds
//! of 8 PAUSEs and no spinning at all were both tried on the mutex bench
//! (figures in `raw_mutex.rs`); Go's constants are kept.
//!
//! This reads the scheduler's counters without changing them. It is the one
//! place `sync` looks inside `sched` beyond `park`/`ready`; Go keeps this
//! function in the runtime for the same reason, and it belongs in `sched`
//! (as `sched::can_spin`) once that module is open for changes.

use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use crate::sched::m::current_m;

/// Spin rounds before parking (Go's `active_spin`).
pub(crate) const ACTIVE_SPIN: u32 = 4;
/// `pause` instructions per round (Go's `active_spin_cnt`).
const SPIN_PAUSES: u32 = 30;

fn multi_core() -> bool {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from)) > 1
}

/// Whether a waiter that has spun `round` times may spin once more.
pub(crate) fn can_spin(round: u32) -> bool {
    if round >= ACTIVE_SPIN || !multi_core() {
        return false;
    }
    // The count keeps the goroutine on this M (and the M on its P) while
    // their fields are read: a preemption between reading the M and reading
    // its P would leave us reading another thread's cells.
    let _section = crate::sched::locks::Section::enter();
    // SAFETY: a non-null current M is this thread's live M.
    let Some(m) = (unsafe { current_m().as_ref() }) else {
        return true;
    };
    if m.p.get().is_null() {
        return true;
    }
    let shared = m.shared();
    let idle =
        shared.idle.npidle.load(Ordering::Relaxed) + shared.idle.nmspinning.load(Ordering::Relaxed);
    if shared.config.procs <= idle + 1 {
        return false;
    }
    let p = m.p();
    // SAFETY: this M holds `p` (checked non-null above); the reference is
    // used for this one check, before any switch.
    let local_empty = unsafe { p.local() }.is_empty();
    local_empty && !p.has_runnext()
}

/// One round of spinning (Go's `procyield(active_spin_cnt)`).
pub(crate) fn spin() {
    for _ in 0..SPIN_PAUSES {
        std::hint::spin_loop();
    }
}
