//! sysmon stops waking once every P is idle (module doc of `sched/sysmon.rs`,
//! "Sleeping"): an idle daemon costs no sysmon CPU. Alone in its test binary,
//! so the only `goro-sysmon` thread in the process is this runtime's.
//!
//! It counts the thread's voluntary context switches (each timed nap that
//! ends is one) over a quiet window; that is a count of events, not a
//! timing claim. A sysmon that never slept deeply would nap at most 10 ms at
//! a time: 30 or more wake-ups in the window.

use std::time::Duration;

fn sysmon_switches() -> u64 {
    let tasks = std::fs::read_dir("/proc/self/task").expect("read /proc/self/task");
    let mut found = None;
    for task in tasks {
        let path = task.expect("task entry").path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if comm.trim() == "goro-sysmon" {
            assert!(found.is_none(), "more than one goro-sysmon thread");
            let status = std::fs::read_to_string(path.join("status")).expect("status");
            found = status
                .lines()
                .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|value| value.trim().parse().ok());
        }
    }
    found.expect("a goro-sysmon thread with a switch count")
}

#[test]
fn sysmon_sleeps_without_a_timeout_once_every_p_is_idle() {
    let rt = goro_runtime::Runtime::builder()
        .procs(2)
        .build()
        .expect("build runtime");
    // Some work on both Ps, then nothing: no goroutine, no timer left.
    let total: u64 = rt.block_on(|| {
        let handles: Vec<_> = (0..64u64)
            .map(|i| goro_runtime::go(move || (0..10_000u64).map(|x| x ^ i).sum::<u64>()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(total > 0);
    // Let sysmon see the idle Ps for its 10 looks (10 ms or more).
    std::thread::sleep(Duration::from_millis(200));
    let before = sysmon_switches();
    std::thread::sleep(Duration::from_millis(300));
    let woken = sysmon_switches() - before;
    assert!(
        woken < 10,
        "sysmon woke {woken} times in 300 ms with every P idle"
    );
    // Work after the deep sleep still runs (whoever takes a P wakes sysmon).
    assert_eq!(rt.block_on(|| goro_runtime::go(|| 7).join().unwrap()), 7);
}
