//! `sync::Semaphore`. Ported from `golang.org/x/sync/semaphore`'s
//! `semaphore_test.go` (The Go Authors, BSD-style licence): TestWeighted
//! (HammerWeighted), TestWeightedPanic, TestWeightedTryAcquire,
//! TestWeightedDoesntBlockIfTooBig (goro has no contexts: the impossible
//! acquire panics instead of waiting for cancellation) and
//! TestLargeAcquireDoesntStarve. Go's random `time.Sleep`s become yields.
//! Plus goro's own: FIFO order, foreign threads. Each test runs at 1, 2 and
//! 4 Ps.

mod common;

use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goro_runtime::go;
use goro_runtime::sync::{Mutex, Semaphore};

const PROCS: [usize; 3] = [1, 2, 4];

/// HammerWeighted plus a check Go's test leaves implicit: the permits held
/// at once never exceed the capacity.
fn hammer(semaphore: &Semaphore, in_use: &AtomicUsize, permits: usize, loops: usize) {
    for i in 0..loops {
        semaphore.acquire(permits);
        let now = in_use.fetch_add(permits, Ordering::SeqCst) + permits;
        assert!(now <= semaphore.capacity(), "{now} permits in use");
        for _ in 0..(i % 4) {
            goro_runtime::yield_now();
        }
        in_use.fetch_sub(permits, Ordering::SeqCst);
        semaphore.release(permits);
    }
}

#[test]
fn go_test_weighted() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let n = procs.max(4);
            let loops = 10_000 / n;
            let semaphore = Arc::new(Semaphore::new(n));
            let in_use = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (semaphore, in_use) = (semaphore.clone(), in_use.clone());
                    go(move || hammer(&semaphore, &in_use, i, loops))
                })
                .collect();
            handles.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(semaphore.available(), n, "procs={procs}: permits leaked");
        });
    }
}

#[test]
fn go_test_weighted_panic() {
    let semaphore = Semaphore::new(1);
    let result = catch_unwind(|| semaphore.release(1));
    let payload = result.expect_err("release of unacquired permits did not panic");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("release(1) with only 0"), "{message}");
}

#[test]
fn go_test_weighted_try_acquire() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let semaphore = Semaphore::new(2);
            let mut tries = Vec::new();
            semaphore.acquire(1);
            tries.push(semaphore.try_acquire(1));
            tries.push(semaphore.try_acquire(1));
            semaphore.release(2);
            tries.push(semaphore.try_acquire(1));
            semaphore.acquire(1);
            tries.push(semaphore.try_acquire(1));
            assert_eq!(tries, [true, false, true, false]);
        });
    }
}

/// TestWeightedDoesntBlockIfTooBig: an acquire larger than the capacity
/// fails (here: panics with a message) and does not block later acquirers.
#[test]
fn go_test_weighted_doesnt_block_if_too_big() {
    const N: usize = 2;
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let semaphore = Arc::new(Semaphore::new(N));
            let too_big = {
                let semaphore = semaphore.clone();
                go(move || semaphore.acquire(N + 1))
            };
            let payload = too_big.join().expect_err("acquire(n + 1) did not panic");
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            assert!(
                message.contains("exceeds the semaphore's capacity of 2"),
                "{message}"
            );
            assert!(!semaphore.try_acquire(N + 1));
            let handles: Vec<_> = (0..N * 3)
                .map(|_| {
                    let semaphore = semaphore.clone();
                    go(move || {
                        semaphore.acquire(1);
                        common::let_others_run();
                        semaphore.release(1);
                    })
                })
                .collect();
            handles.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(semaphore.available(), N);
        });
    }
}

/// TestLargeAcquireDoesntStarve: goroutines that keep releasing and
/// re-acquiring one permit each cannot keep out an acquire of all of them.
#[test]
fn go_test_large_acquire_doesnt_starve() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let n = procs.max(2);
            let semaphore = Arc::new(Semaphore::new(n));
            let running = Arc::new(AtomicBool::new(true));
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    semaphore.acquire(1);
                    let (semaphore, running) = (semaphore.clone(), running.clone());
                    go(move || {
                        let mut rounds = 0usize;
                        while running.load(Ordering::SeqCst) {
                            common::yield_for(Duration::from_micros(100));
                            semaphore.release(1);
                            semaphore.acquire(1);
                            rounds += 1;
                        }
                        semaphore.release(1);
                        rounds
                    })
                })
                .collect();
            semaphore.acquire(n);
            running.store(false, Ordering::SeqCst);
            semaphore.release(n);
            for handle in handles {
                handle.join().unwrap();
            }
            assert_eq!(semaphore.available(), n);
        });
    }
}

/// Waiters are served in arrival order, and a large request at the front
/// is not overtaken by a small one that would fit.
#[test]
fn waiters_are_served_in_fifo_order() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let semaphore = Arc::new(Semaphore::new(3));
            semaphore.acquire(3);
            let order = Arc::new(Mutex::new(Vec::new()));
            let mut handles = Vec::new();
            for (index, permits) in [2usize, 1, 3, 1].into_iter().enumerate() {
                let (semaphore, order) = (semaphore.clone(), order.clone());
                handles.push(go(move || {
                    semaphore.acquire(permits);
                    order.lock().push(index);
                    semaphore.release(permits);
                }));
                // Let it queue before the next one arrives.
                common::let_others_run();
            }
            assert!(
                order.lock().is_empty(),
                "procs={procs}: someone got in early"
            );
            semaphore.release(1); // 1 free: the front wants 2, nobody moves
            common::let_others_run();
            assert!(
                order.lock().is_empty(),
                "procs={procs}: a waiter overtook the front"
            );
            semaphore.release(2);
            handles.into_iter().for_each(|h| h.join().unwrap());
            // 0 and 1 are granted together (2 + 1 permits) and may record
            // in either order; 2 needs all 3, and 3 queued behind it.
            let mut order = order.lock().clone();
            order[..2].sort_unstable();
            assert_eq!(order, [0, 1, 2, 3], "procs={procs}");
        });
    }
}

#[test]
fn foreign_threads_and_goroutines_share_a_semaphore() {
    for procs in PROCS {
        let rt = common::runtime(procs);
        let semaphore = Arc::new(Semaphore::new(2));
        let in_use = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (semaphore, in_use) = (semaphore.clone(), in_use.clone());
            std::thread::spawn(move || hammer(&semaphore, &in_use, 1, 2_000))
        };
        let goroutines: Vec<_> = (0..4)
            .map(|i| {
                let (semaphore, in_use) = (semaphore.clone(), in_use.clone());
                rt.spawn(move || hammer(&semaphore, &in_use, 1 + i % 2, 2_000))
            })
            .collect();
        thread.join().unwrap();
        goroutines.into_iter().for_each(|g| g.join().unwrap());
        assert_eq!(semaphore.available(), 2, "procs={procs}");
    }
}

#[test]
#[ignore = "stress: run by ci/stress.sh"]
fn stress_semaphore_hammer() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let semaphore = Arc::new(Semaphore::new(8));
            let in_use = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..64)
                .map(|i| {
                    let (semaphore, in_use) = (semaphore.clone(), in_use.clone());
                    go(move || hammer(&semaphore, &in_use, i % 9, 20_000))
                })
                .collect();
            handles.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(semaphore.available(), 8);
        });
    }
}
