//! The goroutine dump: `goro::runtime::dump()` and SIGQUIT's report.
//!
//! ```text
//! goroutine 7 [chan receive, 2 minutes]:
//!     name: worker   (a tab in the real output)
//! created by src/main.rs:40:9
//! ```
//!
//! The header is Go's: the wait reason of a parked goroutine (`g.rs`'s
//! `WaitReason::as_str`), `running` or `runnable` otherwise, and from one
//! minute on, how long it has been parked (Go prints "1 minutes" too). The
//! wait starts at the park's coarse-clock stamp (`clock.rs`). The creation
//! site is where `go`, `Builder::spawn` or `Runtime::spawn` was called
//! (`#[track_caller]`).
//!
//! # Safety against concurrent scheduling
//!
//! The dump never stops the world. It copies `all_gs` under its lock and
//! reads each G's atomics only: id, status, wait reason, park stamp, the
//! creation site (a `&'static Location`) and the seqlock'd name copy
//! (`sched/label.rs`). It reads the id before and after, and skips a G
//! that was recycled in between. Goroutines that change state meanwhile are
//! shown in one of their states; the dump is a sketch of a moving system.
//!
//! # No stack traces (yet)
//!
//! Go prints each goroutine's stack. goro does not: a parked goroutine's
//! frames can only be walked by a frame-pointer chain or by DWARF CFI
//! unwinding from its saved context. This build does not force frame
//! pointers (no `-C force-frame-pointers`), so a chain would stop after a
//! frame or two, and the CFI unwinders (`backtrace`, libgcc's) only unwind
//! the calling thread. Reading the stack of a goroutine that may be resumed
//! mid-read would be a data race as well. Doing it right means switching
//! to the parked goroutine (on its M, off the hot path) and unwinding there;
//! left for later. Running goroutines are never inspected (their stack
//! belongs to their M).

use std::fmt::Write as _;

use super::clock;
use crate::sched::g::{GRef, Status, WaitReason};
use crate::sched::shared::Shared;

/// What the dump knows of one goroutine.
pub(crate) struct Goroutine {
    pub id: u64,
    pub status: Status,
    pub reason: WaitReason,
    pub parked_at: u32,
    pub name: Option<String>,
    pub created_at: Option<&'static std::panic::Location<'static>>,
}

/// The runtime's live goroutines, sorted by id (module doc for safety).
pub(crate) fn goroutines(shared: &Shared) -> Vec<Goroutine> {
    let all: Vec<GRef> = shared
        .all_gs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut out: Vec<Goroutine> = all.iter().filter_map(|g| read(*g)).collect();
    out.sort_by_key(|g| g.id);
    out
}

fn read(g: GRef) -> Option<Goroutine> {
    let id = g.id();
    let status = g.status();
    if matches!(status, Status::Idle | Status::Dead) {
        return None;
    }
    let goroutine = Goroutine {
        id,
        status,
        reason: g.wait_reason(),
        parked_at: g.parked_at(),
        name: g.label(),
        created_at: g.created_at(),
    };
    (g.id() == id).then_some(goroutine)
}

/// Go's header: `goroutine 7 [chan receive, 2 minutes]:`.
pub(crate) fn header(id: u64, state: &str, waited_secs: u32) -> String {
    let minutes = waited_secs / 60;
    if minutes >= 1 {
        format!("goroutine {id} [{state}, {minutes} minutes]:")
    } else {
        format!("goroutine {id} [{state}]:")
    }
}

/// The state word of a goroutine's header.
pub(crate) fn state(g: &Goroutine) -> &'static str {
    match g.status {
        Status::Running => "running",
        Status::Runnable => "runnable",
        _ if g.reason == WaitReason::None => "waiting",
        _ => g.reason.as_str(),
    }
}

/// The dump of one runtime.
pub(crate) fn dump_runtime(shared: &Shared) -> String {
    let all = goroutines(shared);
    let now = clock::now_secs();
    let mut text = format!(
        "goro runtime: gomaxprocs={} goroutines={} (no stack traces: see goro_runtime::runtime::dump)\n",
        shared.config.procs,
        all.len()
    );
    for g in &all {
        let waited = if g.status == Status::Waiting {
            now.saturating_sub(g.parked_at)
        } else {
            0
        };
        let _ = writeln!(text, "\n{}", header(g.id, state(g), waited));
        if let Some(name) = &g.name {
            let _ = writeln!(text, "\tname: {name}");
        }
        if let Some(location) = g.created_at {
            let _ = writeln!(text, "created by {location}");
        }
    }
    text
}

/// Lists every goroutine of the current runtime in Go's form (module doc):
/// a header with its state or wait reason and wait time, its name, and
/// where it was created. `Runtime::dump` does the same from any thread.
///
/// # Panics
/// Outside a goroutine.
pub fn dump() -> String {
    dump_runtime(crate::runtime::current_shared("dump"))
}

#[cfg(test)]
mod tests {
    use super::header;

    #[test]
    fn headers_are_gos() {
        assert_eq!(header(7, "chan receive", 59), "goroutine 7 [chan receive]:");
        assert_eq!(
            header(7, "chan receive", 60),
            "goroutine 7 [chan receive, 1 minutes]:"
        );
        assert_eq!(header(1, "sleep", 150), "goroutine 1 [sleep, 2 minutes]:");
    }
}
