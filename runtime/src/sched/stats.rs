//! The scheduler's counters: what `goro::runtime::stats()` and schedtrace
//! read (`diag/`), and the increment functions the scheduler calls at its
//! decision points. Each increment also emits the decision's `tracing`
//! event, so a decision point is one line of scheduler code.
//!
//! # Where each counter lives, and why
//!
//! - **Per P** ([`PCounters`], one 128-byte line per P, indexed by
//!   `P::index`): steals and netpoll submissions. Only the M holding the P
//!   writes them, with a plain load and store (no locked instruction), like
//!   `P::spawned`; readers on other threads see some recent value.
//! - **Shared, rare** ([`Rare`], its own line): events that cost microseconds
//!   anyway (a handoff, a syscall entry, a preemption signal, a stack
//!   mapping), so one relaxed `fetch_add` on a shared line is noise.
//! - **Netpoll** (its own line): written by the runtime's netpoller thread.
//! - Goroutines spawned/exited stay in `P` (they predate this file) and
//!   Gs by state are counted by walking `all_gs` when asked: nothing is
//!   added to the spawn, switch or park paths.
//!
//! Rejected: one `AtomicU64` per counter in `Shared` bumped with
//! `fetch_add` from every M. On the yield and ping-pong paths a locked
//! increment of a line shared by both CPUs would cost more than the 3 %
//! budget; nothing here is written on those paths.
//!
//! # Rare events
//!
//! `blocking()`, sysmon and async preemption call [`count_handoff`],
//! [`count_syscall_enter`]/[`count_syscall_exit`], [`count_preempt_request`],
//! [`count_preempt_done`] and [`count_sysmon_retake`].

use std::sync::atomic::{AtomicU64, Ordering};

use super::m::current_m;
use super::p::P;
use super::shared::Shared;

/// Counters written only by the M holding the P.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct PCounters {
    /// Successful steals by this P (batches taken from a victim).
    pub steals: AtomicU64,
    /// Goroutines taken in those steals.
    pub stolen: AtomicU64,
    /// Goroutines that parked on a socket here (a wait handed to the netpoller).
    pub netpoll_submitted: AtomicU64,
}

/// Counters of rare, expensive events.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Rare {
    pub handoffs: AtomicU64,
    pub syscalls: AtomicU64,
    pub syscalls_done: AtomicU64,
    pub preempt_requested: AtomicU64,
    pub preempt_done: AtomicU64,
    pub sysmon_retakes: AtomicU64,
    pub stacks_mapped: AtomicU64,
    pub stacks_unmapped: AtomicU64,
    pub stack_bytes_mapped: AtomicU64,
    pub stack_bytes_unmapped: AtomicU64,
}

/// Counters written by the netpoller thread.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct NetpollCounters {
    /// Goroutines readied by the netpoller.
    pub completions: AtomicU64,
    /// Batches handed to the scheduler (one `wakep` each).
    pub batches: AtomicU64,
}

/// All of a runtime's counters (`Shared::counters`).
pub(crate) struct Counters {
    pub per_p: Box<[PCounters]>,
    pub rare: Rare,
    pub netpoll: NetpollCounters,
}

impl Counters {
    pub(crate) fn new(procs: usize) -> Counters {
        Counters {
            per_p: (0..procs).map(|_| PCounters::default()).collect(),
            rare: Rare::default(),
            netpoll: NetpollCounters::default(),
        }
    }

    /// Sums one per-P counter.
    pub(crate) fn sum(&self, field: impl Fn(&PCounters) -> &AtomicU64) -> u64 {
        self.per_p
            .iter()
            .map(|c| field(c).load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The sched lock's lists, copied for diagnostics (`Idle::snapshot`).
pub(crate) struct IdleSnapshot {
    /// Ids of every M thread started and not yet joined.
    pub ms: Vec<usize>,
    /// Ids of the Ms asleep on their futex.
    pub idle_ms: Vec<usize>,
    /// Indexes of the idle Ps.
    pub idle_ps: Vec<usize>,
}

/// Increments a counter only one thread writes at a time.
fn bump(counter: &AtomicU64, by: u64) {
    let value = counter.load(Ordering::Relaxed);
    counter.store(value.wrapping_add(by), Ordering::Relaxed);
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A steal of `stolen` goroutines by the M holding `p` from `victim`.
pub(crate) fn count_steal(shared: &Shared, p: &P, victim: usize, stolen: usize) {
    let counters = &shared.counters.per_p[p.index];
    bump(&counters.steals, 1);
    bump(&counters.stolen, stolen as u64);
    tracing::trace!(target: "goro::sched", p = p.index, victim, stolen, "steal");
}

/// A goroutine handed a socket wait to the netpoller. Called from a park's
/// `unlock` (on the parking G's M, which holds its P).
pub(crate) fn count_netpoll_submit() {
    // SAFETY: a non-null current M is this thread's live M.
    if let Some(m) = unsafe { current_m().as_ref() } {
        if !m.p.get().is_null() {
            bump(&m.shared().counters.per_p[m.p().index].netpoll_submitted, 1);
        }
    }
}

/// The netpoller readied `readied` goroutines of this runtime in one batch.
pub(crate) fn count_netpoll_batch(shared: &Shared, readied: u64) {
    let counters = &shared.counters.netpoll;
    counters.completions.fetch_add(readied, Ordering::Relaxed);
    add(&counters.batches);
    tracing::trace!(target: "goro::netpoll", readied, "netpoll batch");
}

/// A goroutine stack of `bytes` usable bytes was mapped.
pub(crate) fn count_stack_mapped(shared: &Shared, bytes: usize) {
    add(&shared.counters.rare.stacks_mapped);
    let total = &shared.counters.rare.stack_bytes_mapped;
    total.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// A goroutine stack of `bytes` usable bytes was unmapped.
pub(crate) fn count_stack_unmapped(shared: &Shared, bytes: usize) {
    add(&shared.counters.rare.stacks_unmapped);
    let total = &shared.counters.rare.stack_bytes_unmapped;
    total.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// P `p` was handed off to another M (`handoffp`), by
/// `blocking()` or by sysmon.
pub(crate) fn count_handoff(shared: &Shared, p: usize) {
    add(&shared.counters.rare.handoffs);
    tracing::debug!(target: "goro::sched", p, "handoff");
}

/// an M entered a system call (`blocking()`, Go's entersyscall).
pub(crate) fn count_syscall_enter(shared: &Shared) {
    add(&shared.counters.rare.syscalls);
}

/// an M returned from a system call (Go's exitsyscall). Ms in
/// syscalls = entered − returned.
pub(crate) fn count_syscall_exit(shared: &Shared) {
    add(&shared.counters.rare.syscalls_done);
}

/// sysmon asked M `m` to stop its goroutine (a SIGURG sent). sysmon cannot
/// name the goroutine: only the M's own thread may read its `curg`.
pub(crate) fn count_preempt_request(shared: &Shared, m: usize) {
    add(&shared.counters.rare.preempt_requested);
    tracing::debug!(target: "goro::sched", m, "preempt request");
}

/// goroutine `goroutine` was preempted at a safe point.
pub(crate) fn count_preempt_done(shared: &Shared, goroutine: u64) {
    add(&shared.counters.rare.preempt_done);
    tracing::debug!(target: "goro::sched", goroutine, "preempted");
}

/// sysmon retook P `p` from an M in a system call: in `blocking()`, or
/// blocked in the kernel without it.
pub(crate) fn count_sysmon_retake(shared: &Shared, p: usize) {
    add(&shared.counters.rare.sysmon_retakes);
    tracing::debug!(target: "goro::sched", p, "sysmon retake");
}
