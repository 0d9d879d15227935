//! `goro::runtime::stats()`: a snapshot of a runtime's counters, cheap
//! enough to poll every second (`examples/top.rs` does).
//!
//! Cost of one snapshot: the sched lock once (to copy the idle lists), a
//! relaxed load per counter, one pass over `all_gs` (a load or three per
//! G ever allocated: about 1 ms for 100,000 goroutines), and one read of
//! `/proc/self/statm`. Nothing is added to the spawn, switch or park paths
//! (`sched/stats.rs` says where each counter is written).
//!
//! # Stack memory
//!
//! `reserved_bytes` is exact: usable bytes of every stack mapped and not
//! unmapped. Per-stack residency is not measured: it would take a
//! `mincore` call per stack (or parsing `/proc/self/smaps`, one entry per
//! VMA), tens of milliseconds at 100,000 goroutines. Instead
//! `process_resident_bytes` gives the whole process's RSS (`statm`), and
//! a parked goroutine's stack costs about one 4 KiB page (DESIGN §5).
//!
//! Handoffs, syscalls, preemptions and sysmon retakes are counted by
//! `blocking()`, sysmon and the preemption path (`sched/stats.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::dump;
use super::schedtrace::local_len;
use crate::sched::g::Status;
use crate::sched::shared::Shared;
use crate::sched::stats::Counters;

/// A snapshot of a runtime's scheduler, goroutines, netpoller and stacks.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Goroutines, by state.
    pub goroutines: GoroutineStats,
    /// Ps (`GORO_MAXPROCS`).
    pub procs: usize,
    /// Ps on the idle list.
    pub idle_procs: usize,
    /// M threads.
    pub threads: ThreadStats,
    /// Length of the global run queue.
    pub global_run_queue: usize,
    /// Length of each P's local run queue (`runnext` included).
    pub local_run_queues: Vec<usize>,
    /// Successful steals (each takes half of a victim's queue).
    pub steals: u64,
    /// Goroutines moved by those steals.
    pub stolen_goroutines: u64,
    /// Ps handed to another M by `blocking()` or sysmon.
    pub handoffs: u64,
    /// Async preemptions requested by sysmon (signals sent).
    pub preemptions_requested: u64,
    /// Async preemptions that stopped a goroutine at a safe point.
    pub preemptions_done: u64,
    /// Ps that sysmon retook from an M stuck in a system call.
    pub sysmon_retakes: u64,
    /// The netpoller.
    pub netpoll: NetpollStats,
    /// Goroutine stacks.
    pub stacks: StackStats,
}

/// Goroutine counts.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct GoroutineStats {
    /// Spawned and not returned (`num_goroutines()`).
    pub live: usize,
    /// Spawned since the runtime was built.
    pub created: u64,
    /// Running on an M now.
    pub running: usize,
    /// In a run queue.
    pub runnable: usize,
    /// Parked.
    pub waiting: usize,
    /// Parked goroutines per wait reason (the dump's words), sorted.
    pub waiting_by_reason: Vec<(&'static str, usize)>,
}

/// M thread counts.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ThreadStats {
    /// M threads started and not joined.
    pub total: usize,
    /// Ms not asleep and not in a system call.
    pub running: usize,
    /// Ms spinning for work.
    pub spinning: usize,
    /// Ms asleep on their futex.
    pub idle: usize,
    /// Ms inside `blocking()` now.
    pub in_syscall: usize,
    /// `blocking()` calls entered so far.
    pub syscalls: u64,
}

/// Netpoller counters.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct NetpollStats {
    /// `"io_uring"` or `"epoll"` once the netpoller has started.
    pub backend: Option<&'static str>,
    /// Socket waits handed to the netpoller (a goroutine parked on I/O).
    pub submitted: u64,
    /// Goroutines the netpoller readied.
    pub completions: u64,
    /// Batches it handed to the scheduler.
    pub batches: u64,
}

/// Goroutine stack counts (module doc).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct StackStats {
    /// Stacks mapped now.
    pub mapped: u64,
    /// Stacks of live goroutines.
    pub in_use: usize,
    /// Mapped stacks waiting in the pools for a spawn.
    pub pooled: u64,
    /// Usable bytes reserved by the mapped stacks.
    pub reserved_bytes: u64,
    /// The whole process's resident set (`/proc/self/statm`).
    pub process_resident_bytes: u64,
}

/// The snapshot of `shared` (module doc for the cost).
pub(crate) fn snapshot(shared: &Shared) -> Stats {
    let idle = shared.idle.snapshot();
    let counters = &shared.counters;
    let rare = &counters.rare;
    let get = Counters::get;
    let mut goroutines = GoroutineStats {
        live: shared.live_goroutines(),
        created: shared.external_spawned.load(Ordering::Relaxed),
        ..GoroutineStats::default()
    };
    for p in shared.ps.iter() {
        goroutines.created = goroutines.created.wrapping_add(p.goroutine_counts().0);
    }
    let mut reasons = BTreeMap::new();
    for g in dump::goroutines(shared) {
        match g.status {
            Status::Running => goroutines.running += 1,
            Status::Runnable => goroutines.runnable += 1,
            _ => {
                goroutines.waiting += 1;
                *reasons.entry(dump::state(&g)).or_insert(0) += 1;
            }
        }
    }
    goroutines.waiting_by_reason = reasons.into_iter().collect();
    let in_use = goroutines.running + goroutines.runnable + goroutines.waiting;
    let in_syscall = get(&rare.syscalls).saturating_sub(get(&rare.syscalls_done)) as usize;
    let mapped = get(&rare.stacks_mapped).saturating_sub(get(&rare.stacks_unmapped));
    Stats {
        procs: shared.config.procs,
        idle_procs: idle.idle_ps.len(),
        threads: ThreadStats {
            total: idle.ms.len(),
            running: idle
                .ms
                .len()
                .saturating_sub(idle.idle_ms.len() + in_syscall),
            spinning: shared.idle.nmspinning.load(Ordering::Relaxed),
            idle: idle.idle_ms.len(),
            in_syscall,
            syscalls: get(&rare.syscalls),
        },
        global_run_queue: shared.injector.len(),
        local_run_queues: (0..shared.config.procs)
            .map(|i| local_len(shared, i))
            .collect(),
        steals: counters.sum(|c| &c.steals),
        stolen_goroutines: counters.sum(|c| &c.stolen),
        handoffs: get(&rare.handoffs),
        preemptions_requested: get(&rare.preempt_requested),
        preemptions_done: get(&rare.preempt_done),
        sysmon_retakes: get(&rare.sysmon_retakes),
        netpoll: NetpollStats {
            backend: shared.netpoll.get().map(|poller| poller.kind().name()),
            submitted: counters.sum(|c| &c.netpoll_submitted),
            completions: get(&counters.netpoll.completions),
            batches: get(&counters.netpoll.batches),
        },
        stacks: StackStats {
            mapped,
            in_use,
            pooled: mapped.saturating_sub(in_use as u64),
            reserved_bytes: get(&rare.stack_bytes_mapped)
                .saturating_sub(get(&rare.stack_bytes_unmapped)),
            process_resident_bytes: crate::sys::notify::resident_bytes().unwrap_or(0),
        },
        goroutines,
    }
}

/// The current runtime's [`Stats`]. `Runtime::stats` does the same from
/// any thread.
///
/// # Panics
/// Outside a goroutine.
pub fn stats() -> Stats {
    snapshot(crate::runtime::current_shared("stats"))
}
