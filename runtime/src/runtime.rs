//! Building, using and stopping a runtime: [`Runtime`], [`RuntimeBuilder`],
//! [`crate::run`], and the `goro::runtime` queries.
//!
//! # Lifecycle
//!
//! `build` allocates the Ps and installs the stack-overflow handler; M threads
//! start lazily, when work first needs one (`wakep`). `block_on` and `spawn`
//! put goroutines on the global queue from any foreign thread, so several
//! threads may share one runtime.
//!
//! # Shutdown
//!
//! `shutdown_timeout(d)`:
//! 1. waits up to `d` for every goroutine to return;
//! 2. sets `stopping`: sleeping Ms are woken and exit; running Ms exit at
//!    their goroutine's next switch;
//!    The netpoller thread, if `net` started one, is stopped and joined
//!    and its ring or epoll fd closed.
//! 3. joins every M thread that exits by then (at least a short grace period
//!    is allowed for idle Ms to notice);
//! 4. abandons the goroutines still parked or queued: each `JoinHandle::join`
//!    on them returns `Err` carrying [`crate::ABANDONED`].
//!
//! Their stacks hold live frames that can never be unwound, and a foreign
//! thread may still hold a `sched::Waiter` for one of them. So if any
//! goroutine was abandoned, or an M was still running one at the deadline
//! (a goroutine that never yields, with async preemption off, or one inside
//! a long `blocking()` call), the runtime's shared state is deliberately leaked rather than
//! freed, and a `tracing` warning says so. A clean shutdown frees everything:
//! threads joined, stacks unmapped.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config;
pub use crate::diag::dump::dump;
pub use crate::diag::stats::{stats, GoroutineStats, NetpollStats, StackStats, Stats, ThreadStats};
use crate::sched::g::Status;
use crate::sched::m::current_m;
use crate::sched::schedule::{in_goroutine, spawn_external};
use crate::sched::shared::{Config, Shared};
use crate::sched::task::{new_task, JoinHandle};
use crate::stack::DEFAULT_STACK_SIZE;

/// Go's default limit on threads (`debug.SetMaxThreads`).
const DEFAULT_MAX_THREADS: usize = 10_000;

/// Go's time slice: sysmon preempts a goroutine that ran this long.
const DEFAULT_PREEMPT_SLICE: Duration = Duration::from_millis(10);

/// How long shutdown gives idle Ms to notice and exit, at least.
const EXIT_GRACE: Duration = Duration::from_millis(200);

/// Starts a runtime with the default settings, runs `main` as its first
/// goroutine (goroutine 1), waits for it, and shuts the runtime down. Like
/// Go's `main`, other goroutines still running then are abandoned.
///
/// # Panics
/// If the runtime cannot start (a malformed `GORO_*` variable, for one), or
/// if `main` panics (the panic resumes on the calling thread).
pub fn run<F, T>(main: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let runtime = Runtime::builder()
        .build()
        .unwrap_or_else(|error| panic!("goro::run: cannot start the runtime: {error}"));
    let output = runtime.block_on(main);
    runtime.shutdown_timeout(Duration::ZERO);
    output
}

/// A goroutine runtime: Ps, M threads, run queues and stack pools.
pub struct Runtime {
    shared: Arc<Shared>,
    stopped: bool,
}

/// Configures a [`Runtime`]. Unset values come from `GORO_MAXPROCS` and
/// `GORO_STACK_SIZE`, then from the defaults (CPU count; 256 KiB).
#[derive(Debug, Default, Clone)]
pub struct RuntimeBuilder {
    procs: Option<usize>,
    stack_size: Option<usize>,
    max_threads: Option<usize>,
    netpoll: Option<goro_netpoll::BackendKind>,
    preempt_slice: Option<Duration>,
}

impl RuntimeBuilder {
    /// The number of Ps: goroutines running in parallel.
    pub fn procs(mut self, procs: usize) -> RuntimeBuilder {
        self.procs = Some(procs);
        self
    }

    /// The default stack reservation of a goroutine, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> RuntimeBuilder {
        self.stack_size = Some(bytes);
        self
    }

    /// The most M threads the runtime may start.
    pub fn max_threads(mut self, threads: usize) -> RuntimeBuilder {
        self.max_threads = Some(threads);
        self
    }

    /// Forces the netpoll backend (overrides `GORO_NETPOLL`). Without it,
    /// io_uring is tried first and epoll is the fallback.
    pub fn netpoll(mut self, backend: crate::net::Backend) -> RuntimeBuilder {
        self.netpoll = Some(backend);
        self
    }

    /// How long a goroutine may run without switching before sysmon
    /// preempts it (default 10 ms, as Go; overrides
    /// `GORO_DEBUG=preemptslice=…`). A tuning and testing knob: shorter
    /// slices cost a signal (8–16 µs on the victim) per slice.
    pub fn preempt_slice(mut self, slice: Duration) -> RuntimeBuilder {
        self.preempt_slice = Some(slice);
        self
    }

    /// Builds the runtime. No thread starts until there is work.
    ///
    /// # Errors
    /// `InvalidInput` for a zero setting or a malformed environment variable.
    pub fn build(self) -> io::Result<Runtime> {
        let environment = config::environment()?;
        let procs = self
            .procs
            .or(environment.procs)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let stack_size = self
            .stack_size
            .or(environment.stack_size)
            .unwrap_or(DEFAULT_STACK_SIZE);
        let max_threads = self.max_threads.unwrap_or(DEFAULT_MAX_THREADS);
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
        if procs == 0 {
            return Err(invalid("goro: procs must be at least 1"));
        }
        if max_threads < procs {
            let source = if self.procs.is_none() && environment.procs.is_some() {
                " (GORO_MAXPROCS)"
            } else {
                ""
            };
            return Err(invalid(&format!(
                "goro: max_threads ({max_threads}) must be at least procs ({procs}{source})"
            )));
        }
        let stack_size = crate::stack::round_size(stack_size)?;
        crate::sched::overflow::install();
        let async_preempt =
            !environment.debug.async_preempt_off && crate::sched::preempt::install();
        let preempt_slice = self
            .preempt_slice
            .or(environment.debug.preempt_slice)
            .unwrap_or(DEFAULT_PREEMPT_SLICE);
        let shared = Arc::new(Shared::new(Config {
            procs,
            stack_size,
            max_threads,
            netpoll: self.netpoll.or(environment.netpoll),
            async_preempt,
            preempt_slice: u64::try_from(preempt_slice.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
        }));
        crate::diag::register(&shared, &environment.debug);
        tracing::debug!(procs, stack_size, max_threads, "runtime built");
        Ok(Runtime {
            shared,
            stopped: false,
        })
    }
}

impl Runtime {
    /// A builder for a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A runtime with the default settings.
    pub fn new() -> io::Result<Runtime> {
        Runtime::builder().build()
    }

    /// Runs `f` as a goroutine and blocks the calling thread until it
    /// returns. Many threads may call `block_on` on one runtime at once.
    ///
    /// # Panics
    /// If `f` panics (the panic resumes here); if called from inside a
    /// goroutine (it would block an M: use `goro::go(f).join()` instead); if
    /// no stack can be mapped.
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        assert!(
            !in_goroutine(),
            "goro: Runtime::block_on called from inside a goroutine; it would block its M. \
             Use goro::go(f).join() instead"
        );
        match self
            .try_spawn(f)
            .unwrap_or_else(|error| panic!("{error}"))
            .join()
        {
            Ok(value) => value,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// Spawns a goroutine from outside the runtime (an embedding program's
    /// thread). It starts from the global run queue.
    ///
    /// # Panics
    /// If no stack can be mapped (see [`Runtime::try_spawn`]).
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.try_spawn(f).unwrap_or_else(|error| panic!("{error}"))
    }

    /// [`Runtime::spawn`], returning a stack-mapping failure as an error.
    #[track_caller]
    pub fn try_spawn<F, T>(&self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.shared.is_stopping() {
            return Err(io::Error::other("goro: the runtime is shut down"));
        }
        let (task, cell) = new_task(f);
        // SAFETY: `cell` comes from `new_task::<F, T>`; on error, dropping
        // the handle (and the task, inside spawn_external) frees the cell.
        let handle = unsafe { JoinHandle::<T>::new(cell, 0) };
        let location = std::panic::Location::caller();
        let id = spawn_external(&self.shared, task, None, None, location)?;
        Ok(handle.with_id(id))
    }

    /// Number of Ps.
    pub fn procs(&self) -> usize {
        self.shared.config.procs
    }

    /// Goroutines spawned and not yet returned.
    pub fn num_goroutines(&self) -> usize {
        self.shared.live_goroutines()
    }

    /// This runtime's counters ([`stats`], callable from any thread).
    pub fn stats(&self) -> Stats {
        crate::diag::stats::snapshot(&self.shared)
    }

    /// This runtime's goroutine dump ([`dump`], callable from any thread).
    pub fn dump(&self) -> String {
        crate::diag::dump::dump_runtime(&self.shared)
    }

    /// Stops the runtime: waits up to `timeout` for goroutines to finish,
    /// then abandons the rest and joins the M threads (module doc).
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(timeout);
    }

    fn shutdown(&mut self, timeout: Duration) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        // SAFETY: a non-null current M is this thread's live M.
        let from_own_goroutine = unsafe { current_m().as_ref() }
            .is_some_and(|m| std::ptr::eq(m.shared, Arc::as_ptr(&self.shared)));
        if from_own_goroutine {
            // Waiting would wait for ourselves: stop at once; our own M
            // cannot be joined, so the state is leaked (below).
            tracing::warn!("goro runtime shut down from one of its own goroutines");
        }
        let start = Instant::now();
        let deadline = if from_own_goroutine {
            start
        } else {
            start + timeout
        };
        let mut pause = Duration::from_micros(50);
        while self.num_goroutines() > 0 && Instant::now() < deadline {
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
            pause = (pause * 2).min(Duration::from_millis(1));
        }
        // Diagnostics (SIGQUIT's dump, schedtrace) stay on through the
        // graceful wait above, when an operator may want to see what it
        // waits for.
        crate::diag::unregister(&self.shared);
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.sysmon.stop();
        // The netpoller readies goroutines from its own thread: stop and join
        // it (closing its ring) before goroutines are abandoned below. A
        // goroutine starting it checks `stopping` under `netpoll_start`:
        // taking that lock once orders any such start before this look.
        drop(crate::sched::locks::lock(&self.shared.netpoll_start));
        if let Some(poller) = self.shared.netpoll.get() {
            poller.shutdown();
        }
        let detached = self
            .shared
            .idle
            .stop_all(deadline.max(Instant::now() + EXIT_GRACE));
        let mut abandoned = 0usize;
        for g in crate::sched::locks::lock(&self.shared.all_gs).iter() {
            match g.status() {
                Status::Idle | Status::Dead => {}
                status => {
                    abandoned += 1;
                    if status != Status::Running {
                        // SAFETY: with `stopping` set no M dequeues a G any
                        // more (even a detached one, still running its G), so
                        // nobody else touches a Waiting or Runnable G's task.
                        if let Some(task) = unsafe { g.task() } {
                            // SAFETY: as above.
                            unsafe { task.abandon() };
                        }
                    }
                }
            }
        }
        if abandoned > 0 || detached > 0 {
            tracing::warn!(
                abandoned,
                detached_threads = detached,
                "goro runtime shut down with goroutines still alive; leaking its state"
            );
            std::mem::forget(self.shared.clone());
        }
        tracing::debug!(elapsed = ?start.elapsed(), "runtime shut down");
    }
}

impl Drop for Runtime {
    /// Dropping a runtime shuts it down without waiting for goroutines.
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("procs", &self.shared.config.procs)
            .field("stack_size", &self.shared.config.stack_size)
            .field("threads", &self.shared.idle.thread_count())
            .finish()
    }
}

pub(crate) fn current_shared(what: &str) -> &'static Shared {
    // SAFETY: a non-null current M is this thread's live M.
    match unsafe { current_m().as_ref() } {
        // SAFETY: the Shared outlives every M of the runtime, and the caller
        // uses the reference only during this call.
        Some(m) => unsafe { &*m.shared },
        None => panic!(
            "goro::runtime::{what} called outside a goroutine: there is no current runtime \
             (use goro::run, or Runtime::{what} on your Runtime)"
        ),
    }
}

/// Goroutines of the current runtime that have been spawned and have not
/// returned (Go's `runtime.NumGoroutine`).
///
/// # Panics
/// Outside a goroutine.
pub fn num_goroutines() -> usize {
    current_shared("num_goroutines").live_goroutines()
}

/// The current runtime's number of Ps (Go's `runtime.GOMAXPROCS(0)`).
///
/// # Panics
/// Outside a goroutine.
pub fn procs() -> usize {
    current_shared("procs").config.procs
}
