//! Diagnostics a Go operator expects (issue 6): `GORO_DEBUG=schedtrace`,
//! the goroutine dump (`goro::runtime::dump()` and SIGQUIT), and
//! `goro::runtime::stats()`. The `tracing` events live at the decision points
//! themselves (`sched/schedule.rs`, `sched/stats.rs`), targets `goro::sched`
//! and `goro::netpoll`: spawn and exit at DEBUG, park, ready, steal and
//! netpoll batches at TRACE; handoff, preemption and sysmon retake at DEBUG.
//!
//! # The diagnostics thread
//!
//! One thread per process, `goro-diag`, exists while at least one runtime is
//! alive: started by the first `build`, stopped and joined by the last
//! shutdown (so a shut-down runtime leaves no thread behind). It holds no P
//! and never readies a goroutine. It sleeps in `poll(2)` on two eventfds —
//! SIGQUIT's (`sigquit.rs`) and its own stop fd — for at most one second or
//! until the next schedtrace line is due. On each wake it:
//! 1. stores the coarse clock (`clock.rs`) that parks stamp;
//! 2. prints each runtime's due schedtrace line (`schedtrace.rs`);
//! 3. after a SIGQUIT, writes every runtime's dump to stderr (`dump.rs`),
//!    with the parked goroutines' backtraces (`backtrace.rs`). Symbolizing
//!    them is why its stack is 1 MiB (reserved; committed only as used).
//!
//! Before its loop it registers the process for `membarrier` (about 14 ms
//! in the kernel): off every goroutine's path, so channel locks can bias
//! themselves to a thread soon after start (`util/biased_lock.rs`).
//!
//! The deadlock check counts this thread as the runtime's own
//! (`helper_threads`), so it does not look like a foreign thread that could
//! wake a goroutine.
//!
//! Rejected: a schedtrace thread per runtime (a thread per runtime for a
//! debug feature, and a second wake-up source), and printing schedtrace
//! from the Ms (an M that prints holds up its P; an idle runtime, whose
//! Ms all sleep, would print nothing). sysmon (`sched/sysmon.rs`) is
//! per runtime and sleeps deeply when idle, so it does not print schedtrace,
//! which must keep its period; the registry below is process-wide.
//!
//! # Locks
//!
//! The registry mutex is a leaf: the thread copies what it needs and
//! releases it before printing; `register`/`unregister` join the thread
//! only after releasing it. A dump takes `all_gs` only to copy the list.

pub(crate) mod backtrace;
pub(crate) mod clock;
pub(crate) mod dump;
pub(crate) mod schedtrace;
pub(crate) mod sigquit;
pub(crate) mod stats;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::debug_flags::DebugFlags;
use crate::sched::shared::Shared;
use crate::sys::notify;

/// The longest the thread sleeps: the coarse clock's resolution.
const TICK: Duration = Duration::from_secs(1);

struct Entry {
    shared: Weak<Shared>,
    key: usize,
    started: Instant,
    schedtrace: Option<Duration>,
    detail: bool,
    next: Instant,
}

#[derive(Default)]
struct Registry {
    entries: Vec<Entry>,
    /// The thread and its stop eventfd.
    thread: Option<(JoinHandle<()>, i32)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    entries: Vec::new(),
    thread: None,
});
static HELPERS: AtomicUsize = AtomicUsize::new(0);

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Threads of the process that belong to goro's diagnostics (0 or 1, 2
/// for a moment while one stops and another starts).
pub(crate) fn helper_threads() -> usize {
    HELPERS.load(Ordering::SeqCst)
}

/// Registers a new runtime (`RuntimeBuilder::build`).
pub(crate) fn register(shared: &Arc<Shared>, flags: &DebugFlags) {
    clock::tick();
    sigquit::install(flags.sigquit_exit);
    let now = Instant::now();
    let mut registry = registry();
    registry.entries.push(Entry {
        shared: Arc::downgrade(shared),
        key: Arc::as_ptr(shared) as usize,
        started: now,
        schedtrace: flags.schedtrace,
        detail: flags.scheddetail,
        next: now + flags.schedtrace.unwrap_or(TICK),
    });
    sigquit::set_live(registry.entries.len());
    if registry.thread.is_none() {
        match start() {
            Ok(thread) => registry.thread = Some(thread),
            Err(error) => {
                tracing::warn!(%error, "no diagnostics thread: no schedtrace or SIGQUIT dump")
            }
        }
    }
}

/// Unregisters a runtime (shutdown); the last one stops the thread.
pub(crate) fn unregister(shared: &Arc<Shared>) {
    let key = Arc::as_ptr(shared) as usize;
    let stop = {
        let mut registry = registry();
        registry.entries.retain(|entry| entry.key != key);
        sigquit::set_live(registry.entries.len());
        if registry.entries.is_empty() {
            registry.thread.take()
        } else {
            None
        }
    };
    if let Some((handle, stop_fd)) = stop {
        // Uncounted before it is told to stop, counted only once spawned:
        // the deadlock check's count never exceeds the threads there are.
        HELPERS.fetch_sub(1, Ordering::SeqCst);
        notify::signal_eventfd(stop_fd);
        let _ = handle.join();
        notify::close(stop_fd);
    }
}

fn start() -> std::io::Result<(JoinHandle<()>, i32)> {
    let stop_fd = notify::eventfd()?;
    match std::thread::Builder::new()
        .name("goro-diag".into())
        .stack_size(1024 * 1024)
        .spawn(move || run(stop_fd))
    {
        Ok(handle) => {
            HELPERS.fetch_add(1, Ordering::SeqCst);
            Ok((handle, stop_fd))
        }
        Err(error) => {
            notify::close(stop_fd);
            Err(error)
        }
    }
}

/// Every registered runtime still alive.
pub(crate) fn runtimes() -> Vec<Arc<Shared>> {
    registry()
        .entries
        .iter()
        .filter_map(|e| e.shared.upgrade())
        .collect()
}

/// The thread's loop (module doc).
fn run(stop_fd: i32) {
    dump::mark_diag_thread();
    // Register for membarrier here, where its ~14 ms (an RCU grace period)
    // holds no goroutine up: channel locks bias themselves to a thread only
    // once it is done (`util/biased_lock.rs`), and sysmon's handoff and the
    // Mutex fence then find it ready.
    crate::sys::thread::membarrier_ready();
    loop {
        clock::tick();
        let now = Instant::now();
        let mut due = Vec::new();
        let mut wait = TICK;
        for entry in registry().entries.iter_mut() {
            let Some(period) = entry.schedtrace else {
                continue;
            };
            if entry.next <= now {
                due.push((entry.shared.clone(), now - entry.started, entry.detail));
                while entry.next <= now {
                    entry.next += period;
                }
            }
            wait = wait.min(entry.next - now);
        }
        for (shared, uptime, detail) in due {
            if let Some(shared) = shared.upgrade() {
                let text = schedtrace::format(&shared, uptime, detail);
                crate::sys::write_stderr(text.as_bytes());
            }
        }
        let (quit, stop) = notify::poll_two(sigquit::fd(), stop_fd, wait);
        if stop {
            return;
        }
        if quit {
            notify::drain_eventfd(sigquit::fd());
            let mut text = String::from("SIGQUIT: quit\n");
            for shared in runtimes() {
                text.push('\n');
                text.push_str(&dump::dump_runtime(&shared));
            }
            crate::sys::write_stderr(text.as_bytes());
            if sigquit::exit_after_dump() {
                std::process::exit(2);
            }
        }
    }
}
