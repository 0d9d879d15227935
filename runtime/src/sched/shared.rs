//! `Shared`: the part of a runtime every M, P and foreign thread can reach
//! (tokio's naming). Per-runtime, so two runtimes in one process share nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_deque::{Injector, Stealer, Worker};

use super::g::GRef;
use super::idle::Idle;
use super::p::P;
use super::pool::GlobalPool;
use super::stats::Counters;
use super::sysmon::Sysmon;

/// Settings fixed when the runtime is built.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub procs: usize,
    pub stack_size: usize,
    pub max_threads: usize,
    /// A forced netpoll backend (`GORO_NETPOLL` or the builder); `None`
    /// tries io_uring, then epoll.
    pub netpoll: Option<goro_netpoll::BackendKind>,
    /// Whether sysmon sends preemption signals (off with
    /// `GORO_DEBUG=asyncpreemptoff=1`, or when the handler is unavailable).
    pub async_preempt: bool,
    /// The time slice, in nanoseconds, after which sysmon preempts.
    pub preempt_slice: u64,
}

pub(crate) struct Shared {
    pub config: Config,
    pub ps: Box<[P]>,
    pub stealers: Box<[Stealer<GRef>]>,
    /// The global run queue (Go's `sched.runq`).
    pub injector: Injector<GRef>,
    pub idle: Idle,
    pub pool: GlobalPool,
    /// Every G ever allocated (Go's `allgs`); appended only when a new G is
    /// allocated, never on the recycled spawn path.
    pub all_gs: Mutex<Vec<GRef>>,
    /// Goroutines spawned from foreign threads (per-P counters hold the rest).
    pub external_spawned: AtomicU64,
    /// Goroutines that returned on an M without a P.
    pub external_exited: AtomicU64,
    /// The system monitor (`sysmon.rs`).
    pub sysmon: Sysmon,
    pub next_goroutine_id: AtomicU64,
    /// Set once by shutdown; Ms leave their loop at the next schedule point.
    pub stopping: AtomicBool,
    /// This runtime's netpoller, started on first use by `net` and stopped
    /// by shutdown (`net/poll_desc.rs`).
    pub netpoll: OnceLock<Arc<goro_netpoll::Poller>>,
    /// Serialises starting the netpoller.
    pub netpoll_start: Mutex<()>,
    /// Go's `sched.lastpoll`: when an M last polled the netpoller itself,
    /// or 0 while one M is blocked polling it (`netpoll.rs`).
    pub last_poll: AtomicU64,
    /// Counters for `stats()` and schedtrace (`stats.rs`).
    pub counters: Counters,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Shared {
        let workers: Vec<Worker<GRef>> = (0..config.procs).map(|_| Worker::new_fifo()).collect();
        let stealers = workers.iter().map(Worker::stealer).collect();
        let ps = workers
            .into_iter()
            .enumerate()
            .map(|(index, worker)| P::new(index, worker))
            .collect();
        Shared {
            counters: Counters::new(config.procs),
            idle: Idle::new(config.procs),
            config,
            ps,
            stealers,
            injector: Injector::new(),
            pool: GlobalPool::default(),
            all_gs: Mutex::new(Vec::new()),
            external_spawned: AtomicU64::new(0),
            external_exited: AtomicU64::new(0),
            sysmon: Sysmon::default(),
            next_goroutine_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            netpoll: OnceLock::new(),
            netpoll_start: Mutex::new(()),
            last_poll: AtomicU64::new(1),
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Goroutines spawned and not yet returned: the per-P counters summed.
    /// Exact whenever no goroutine is being spawned or returning meanwhile.
    pub(crate) fn live_goroutines(&self) -> usize {
        let (mut spawned, mut exited) = (
            self.external_spawned.load(Ordering::Acquire),
            self.external_exited.load(Ordering::Acquire),
        );
        for p in self.ps.iter() {
            let (s, e) = p.goroutine_counts();
            spawned = spawned.wrapping_add(s);
            exited = exited.wrapping_add(e);
        }
        spawned.wrapping_sub(exited) as usize
    }

    /// Whether any run queue (global, local or runnext) holds a G.
    pub(crate) fn any_work(&self) -> bool {
        !self.injector.is_empty()
            || self.stealers.iter().any(|s| !s.is_empty())
            || self.ps.iter().any(P::has_runnext)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Runs only when no G can be used again (runtime.rs leaks the Shared
        // otherwise), so freeing every G — and unmapping its stack — is safe.
        let all = std::mem::take(self.all_gs.get_mut().unwrap_or_else(|e| e.into_inner()));
        for g in all {
            // SAFETY: teardown; no M runs and no waiter holds these Gs.
            unsafe { g.free() };
        }
    }
}
