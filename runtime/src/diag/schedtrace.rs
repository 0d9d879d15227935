//! `GORO_DEBUG=schedtrace=MS`: Go's scheduler trace line, every MS ms, on
//! stderr (printed by the diagnostics thread, `diag/mod.rs`):
//!
//! ```text
//! SCHED 1004ms: gomaxprocs=2 idleprocs=0 threads=5 spinningthreads=0 idlethreads=1 runqueue=0 [3 1]
//! ```
//!
//! - `gomaxprocs`: Ps; `idleprocs`: Ps on the idle list.
//! - `threads`: M threads started and not joined, plus the netpoller
//!   thread if it runs (Go counts every M, sysmon's included).
//! - `spinningthreads`: Ms spinning for work; `idlethreads`: Ms asleep on
//!   their futex.
//! - `runqueue`: the global queue's length; `[…]`: each P's local queue,
//!   counting its `runnext` (Go leaves `runnext` out; counting it means a
//!   P with work never shows 0).
//!
//! The idle lists are read under the sched lock, once, so `idleprocs`,
//! `idlethreads` and `threads` are consistent with each other; the queue
//! lengths are read without a lock and may be a moment apart.
//!
//! `scheddetail=1` adds Go's per-P, per-M and per-G lines:
//!
//! ```text
//!   P0: status=1 schedtick=5123 runqsize=3 steals=2
//!   M1: blocked=true
//!   G7: status=4(chan receive) name=worker created=src/main.rs:40:9
//! ```
//!
//! P status is Go's code (0 idle, 1 running); an M is `blocked` while it
//! sleeps on its futex; G status is Go's code (1 runnable, 2 running,
//! 4 waiting). An M's current G is not shown: it lives in the M's own,
//! non-atomic fields, which only its thread may read.

use std::fmt::Write as _;
use std::time::Duration;

use super::dump;
use crate::sched::g::Status;
use crate::sched::shared::Shared;

/// A P's local queue length, `runnext` included.
pub(crate) fn local_len(shared: &Shared, index: usize) -> usize {
    shared.stealers[index].len() + usize::from(shared.ps[index].has_runnext())
}

/// The trace text for one runtime, `uptime` after it was built.
pub(crate) fn format(shared: &Shared, uptime: Duration, detail: bool) -> String {
    let idle = shared.idle.snapshot();
    let procs = shared.config.procs;
    let locals: Vec<String> = (0..procs)
        .map(|i| local_len(shared, i).to_string())
        .collect();
    let threads = idle.ms.len() + usize::from(shared.netpoll.get().is_some());
    let mut text = format!(
        "SCHED {}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} idlethreads={} runqueue={} [{}]\n",
        uptime.as_millis(),
        procs,
        idle.idle_ps.len(),
        threads,
        shared.idle.nmspinning.load(std::sync::atomic::Ordering::Relaxed),
        idle.idle_ms.len(),
        shared.injector.len(),
        locals.join(" "),
    );
    if !detail {
        return text;
    }
    for (index, p) in shared.ps.iter().enumerate() {
        let steals = shared.counters.per_p[index]
            .steals
            .load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(
            text,
            "  P{index}: status={} schedtick={} runqsize={} steals={steals}",
            u8::from(!idle.idle_ps.contains(&index)),
            p.schedtick(),
            local_len(shared, index),
        );
    }
    for m in &idle.ms {
        let _ = writeln!(text, "  M{m}: blocked={}", idle.idle_ms.contains(m));
    }
    for g in dump::goroutines(shared) {
        let code = match g.status {
            Status::Runnable => 1,
            Status::Running => 2,
            _ => 4,
        };
        let _ = write!(text, "  G{}: status={code}({})", g.id, dump::state(&g));
        if let Some(name) = &g.name {
            let _ = write!(text, " name={name}");
        }
        if let Some(location) = g.created_at {
            let _ = write!(text, " created={location}");
        }
        text.push('\n');
    }
    text
}
