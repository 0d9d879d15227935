//! Runtime lifecycle: shutdown joins every thread, two runtimes coexist, and
//! goroutines left behind are abandoned with a clear error.

mod common;

use std::sync::Arc;
use std::time::Duration;

use goro_runtime::sync::WaitGroup;
use goro_runtime::{go, ABANDONED};

/// Runs in a child process so that no other test's threads are counted.
#[test]
fn shutdown_leaves_no_threads_and_two_runtimes_coexist() {
    let name = "shutdown_leaves_no_threads_and_two_runtimes_coexist";
    if !common::is_child(name) {
        return common::assert_child_ok(name);
    }
    let baseline = common::thread_count();

    let first = Arc::new(common::runtime(2));
    let second = Arc::new(common::runtime(1));
    // Drive both at once from two threads; each sees its own procs.
    let a = {
        let rt = first.clone();
        std::thread::spawn(move || {
            rt.block_on(|| {
                let handles: Vec<_> = (0..1000u64).map(|i| go(move || i)).collect();
                let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
                (sum, goro_runtime::runtime::procs())
            })
        })
    };
    let b = {
        let rt = second.clone();
        std::thread::spawn(move || {
            rt.block_on(|| {
                let handles: Vec<_> = (0..1000u64).map(|i| go(move || 2 * i)).collect();
                let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
                (sum, goro_runtime::runtime::procs())
            })
        })
    };
    assert_eq!(a.join().unwrap(), (499_500, 2));
    assert_eq!(b.join().unwrap(), (999_000, 1));
    assert!(
        common::thread_count() > baseline,
        "the runtimes started M threads"
    );

    let first = Arc::try_unwrap(first).expect("sole owner");
    first.shutdown_timeout(Duration::from_secs(5));
    // The second runtime still works after the first is gone.
    assert_eq!(second.block_on(|| go(|| 7).join().unwrap()), 7);
    Arc::try_unwrap(second)
        .expect("sole owner")
        .shutdown_timeout(Duration::from_secs(5));

    assert_eq!(
        common::thread_count(),
        baseline,
        "every M thread was joined"
    );

    // goro::run starts and stops a runtime of its own, leaving nothing behind.
    assert_eq!(goro_runtime::run(|| go(|| 1).join().unwrap() + 1), 2);
    assert_eq!(
        common::thread_count(),
        baseline,
        "goro::run joined its threads"
    );
    println!("CHILD-OK");
}

#[test]
fn goroutines_still_parked_at_shutdown_are_abandoned_with_an_error() {
    let rt = common::runtime(2);
    let gate = Arc::new(WaitGroup::new());
    gate.add(1);
    let stuck = {
        let gate = gate.clone();
        rt.spawn(move || {
            gate.wait();
            "finished"
        })
    };
    let quick = rt.spawn(|| "quick");
    assert_eq!(quick.join().unwrap(), "quick");
    rt.shutdown_timeout(Duration::from_millis(50));
    let payload = stuck.join().expect_err("a parked goroutine cannot finish");
    assert_eq!(payload.downcast_ref::<&str>().copied(), Some(ABANDONED));
    // Releasing the gate after shutdown is harmless: the runtime's state was
    // kept alive for exactly this.
    gate.done();
}

#[test]
fn shutdown_waits_for_goroutines_that_finish_in_time() {
    let rt = common::runtime(2);
    let handle = rt.spawn(|| {
        for _ in 0..1000 {
            goro_runtime::yield_now();
        }
        "done"
    });
    rt.shutdown_timeout(Duration::from_secs(10));
    assert_eq!(handle.join().unwrap(), "done");
}

#[test]
fn a_runtime_dropped_by_its_own_goroutine_stops_without_hanging() {
    let rt = Arc::new(std::sync::Mutex::new(Some(common::runtime(1))));
    let slot = rt.clone();
    let handle = {
        let guard = rt.lock().unwrap();
        guard.as_ref().unwrap().spawn(move || {
            let runtime = slot.lock().unwrap().take().expect("runtime present");
            drop(runtime);
            "dropped"
        })
    };
    assert_eq!(handle.join().unwrap(), "dropped");
    assert!(rt.lock().unwrap().is_none());
}

/// With `max_threads == procs == 1`, the only M can be between giving up its
/// P and going to sleep when a foreign thread submits work; no second M may
/// start, so the sleeping M itself must notice the work. The submitter waits
/// a varying 0–40 µs between `block_on` calls, sweeping its push across the
/// end of the M's spin (at most 20 µs), where that window lies. A watchdog turns a lost
/// wakeup into a failure instead of a hang.
#[test]
fn work_submitted_while_the_only_m_falls_asleep_is_not_lost() {
    const ROUNDS: u64 = 40_000;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = goro_runtime::Runtime::builder()
            .procs(1)
            .max_threads(1)
            .build()
            .unwrap();
        let mut total = 0u64;
        for i in 0..ROUNDS {
            total += rt.block_on(move || i);
            let pause = Duration::from_nanos((i * 7919) % 40_000);
            let start = std::time::Instant::now();
            while start.elapsed() < pause {
                std::hint::spin_loop();
            }
        }
        done_tx.send(total).unwrap();
    });
    let total = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a block_on never returned: lost wakeup");
    assert_eq!(total, ROUNDS * (ROUNDS - 1) / 2);
}
