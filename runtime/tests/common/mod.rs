//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod net;

use std::process::{Command, Output};

/// The variable that tells a re-executed test binary which child role to play.
const CHILD: &str = "GORO_TEST_CHILD";

/// Whether this process is the child for `test`.
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD).is_ok_and(|role| role == test)
}

/// Re-runs this test binary for just `test`, in child mode, with `env`.
pub fn run_child(test: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("spawn child test process")
}

/// Runs `test` as a child and asserts that it exited successfully after
/// printing `CHILD-OK` (so a child that silently did nothing fails).
pub fn assert_child_ok(test: &str) {
    let output = run_child(test, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {output:?}");
    assert!(
        stdout.contains("CHILD-OK"),
        "child did not finish: {stdout}"
    );
}

/// Threads of this process, from /proc/self/task.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

/// A runtime with `procs` Ps.
pub fn runtime(procs: usize) -> goro_runtime::Runtime {
    goro_runtime::Runtime::builder()
        .procs(procs)
        .build()
        .expect("build runtime")
}

/// Stands in for Go's `time.Sleep(d)` inside a goroutine until goro has
/// timers: yields the P until `d` has passed, so other goroutines run.
pub fn yield_for(d: std::time::Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < d {
        goro_runtime::yield_now();
    }
}

/// Lets other goroutines run for a while.
pub fn let_others_run() {
    for _ in 0..1000 {
        goro_runtime::yield_now();
    }
}

/// Waits (yielding) for a value on `rx`, giving up after `limit`: a guard
/// against hanging where Go's test would use `time.After`, not a timing
/// assertion. Returns whether a value arrived.
pub fn recv_within<T>(rx: &goro_runtime::chan::Receiver<T>, limit: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    loop {
        if rx.try_recv().is_ok() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        goro_runtime::yield_now();
    }
}
