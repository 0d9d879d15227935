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
//! # Backtraces
//!
//! Each parked goroutine gets a symbolized backtrace from a copy of its
//! stack, taken and checked against concurrent resumption as
//! `backtrace.rs` explains; running and runnable goroutines, and any
//! goroutine whose copy or unwind fails, get one line saying why.
//! Symbolization allocates, takes `backtrace`'s lock and reads the binary's
//! debug info, and it needs a deep stack: so it runs on the diagnostics
//! thread (SIGQUIT), or on a short-lived `goro-dump` thread for
//! `dump()`/`Runtime::dump` — inside `blocking` when called from a
//! goroutine, so the caller's P serves others meanwhile and the work never
//! runs on a (possibly small) goroutine stack or migrates between threads
//! mid-way. Never in a signal handler.

use std::cell::Cell;
use std::fmt::Write as _;

use super::backtrace::{self, StackCopy, Tracer};
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
    /// A Waiting goroutine's stack copy, or why there is none (only when
    /// the dump asked for backtraces).
    pub stack: Option<Result<StackCopy, String>>,
}

/// The runtime's live goroutines, sorted by id (module doc for safety).
pub(crate) fn goroutines(shared: &Shared) -> Vec<Goroutine> {
    snapshot(shared, false)
}

/// [`goroutines`], with a copy of each Waiting goroutine's stack if `stacks`.
fn snapshot(shared: &Shared, stacks: bool) -> Vec<Goroutine> {
    let all: Vec<GRef> = crate::sched::locks::lock(&shared.all_gs).clone();
    let mut out: Vec<Goroutine> = all.iter().filter_map(|g| read(*g, stacks)).collect();
    out.sort_by_key(|g| g.id);
    out
}

fn read(g: GRef, stacks: bool) -> Option<Goroutine> {
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
        stack: (stacks && status == Status::Waiting).then(|| backtrace::capture(g, id)),
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

thread_local! {
    /// Set on the diagnostics thread, which symbolizes in place.
    static DIAG_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as the diagnostics thread (`diag/mod.rs`).
pub(crate) fn mark_diag_thread() {
    DIAG_THREAD.with(|d| d.set(true));
}

/// The helper thread's stack: symbolization (`backtrace`, `gimli`) needs
/// more than a goroutine may have. Reserved, committed as used.
const HELPER_STACK: usize = 1 << 20;

/// The dump of one runtime, with backtraces (module doc for where they are
/// made).
pub(crate) fn dump_runtime(shared: &Shared) -> String {
    if DIAG_THREAD.with(Cell::get) {
        return dump_with(shared, Ok(()));
    }
    crate::blocking(|| {
        std::thread::scope(|scope| {
            let helper = std::thread::Builder::new()
                .name("goro-dump".into())
                .stack_size(HELPER_STACK)
                .spawn_scoped(scope, || dump_with(shared, Ok(())));
            match helper {
                Ok(helper) => helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(error) => dump_with(shared, Err(format!("no helper thread: {error}"))),
            }
        })
    })
}

/// The dump text; `traces` is `Err(why)` when backtraces cannot be made.
fn dump_with(shared: &Shared, traces: Result<(), String>) -> String {
    let mut tracer = traces.as_ref().ok().map(|()| Tracer::new());
    let all = snapshot(shared, tracer.is_some());
    let now = clock::now_secs();
    let mut body = String::new();
    for g in &all {
        let waited = if g.status == Status::Waiting {
            now.saturating_sub(g.parked_at)
        } else {
            0
        };
        let _ = writeln!(body, "\n{}", header(g.id, state(g), waited));
        if let Some(name) = &g.name {
            let _ = writeln!(body, "\tname: {name}");
        }
        match (&g.stack, tracer.as_mut(), &traces) {
            (_, _, Err(why)) => {
                let _ = writeln!(body, "\t(no backtrace: {why})");
            }
            (Some(Ok(copy)), Some(tracer), _) => tracer.write(copy, &mut body),
            (Some(Err(why)), ..) => {
                let _ = writeln!(body, "\t(no backtrace: {why})");
            }
            _ if g.status == Status::Running => {
                body.push_str("\t(running: its stack is in use on its thread, not traced)\n")
            }
            _ => body.push_str("\t(runnable: no backtrace, it may start running at any moment)\n"),
        }
        if let Some(location) = g.created_at {
            let _ = writeln!(body, "created by {location}");
        }
    }
    let mut text = format!(
        "goro runtime: gomaxprocs={} goroutines={}",
        shared.config.procs,
        all.len()
    );
    if tracer.is_some_and(|t| t.missing_lines) {
        text.push_str(
            " (frames without file:line: the binary has no line tables; \
             build with `debug = \"line-tables-only\"` for them)",
        );
    }
    text.push('\n');
    text.push_str(&body);
    text
}

/// Lists every goroutine of the current runtime in Go's form (module doc):
/// a header with its state or wait reason and wait time, its name, a
/// symbolized backtrace for the parked ones, and where it was created.
/// `Runtime::dump` does the same from any thread.
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
