//! `sync::Once`. Ported from Go's `src/sync/once_test.go` (The Go Authors,
//! BSD-style licence): TestOnce, TestOncePanic (goro keeps Go's rule: a
//! panicking initialiser counts as done). Plus goro's own: callers park until
//! a slow initialiser finishes, re-entry panics, foreign threads. Each test
//! runs at 1, 2 and 4 Ps.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use goro_runtime::go;
use goro_runtime::sync::Once;

const PROCS: [usize; 3] = [1, 2, 4];

/// TestOnce: ten goroutines race; the initialiser runs once, and each caller
/// sees its effect as soon as its own `call_once` returns.
#[test]
fn go_test_once() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let once = Arc::new(Once::new());
            let value = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..10)
                .map(|_| {
                    let (once, value) = (once.clone(), value.clone());
                    go(move || {
                        once.call_once(|| {
                            value.fetch_add(1, Ordering::SeqCst);
                        });
                        value.load(Ordering::SeqCst)
                    })
                })
                .collect();
            for handle in handles {
                assert_eq!(handle.join().unwrap(), 1, "once failed inside run");
            }
            assert_eq!(value.load(Ordering::SeqCst), 1, "once failed outside run");
            assert!(once.is_completed());
        });
    }
}

/// TestOncePanic: the panic reaches the first caller; the `Once` is then done
/// and never runs another initialiser.
#[test]
fn go_test_once_panic() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let once = Once::new();
            let result = catch_unwind(AssertUnwindSafe(|| once.call_once(|| panic!("failed"))));
            assert!(result.is_err(), "Once.Do did not panic");
            assert!(once.is_completed(), "a panicked Once counts as done");
            once.call_once(|| panic!("Once.Do called twice"));
        });
    }
}

/// Callers that arrive while the initialiser runs (and yields, so they do
/// run) park and return only after it has finished.
#[test]
fn concurrent_callers_wait_for_a_slow_initialiser() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let once = Arc::new(Once::new());
            let finished = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            let runner = {
                let (once, finished, started) = (once.clone(), finished.clone(), started.clone());
                go(move || {
                    once.call_once(|| {
                        started.store(1, Ordering::SeqCst);
                        common::let_others_run();
                        finished.store(1, Ordering::SeqCst);
                    })
                })
            };
            while started.load(Ordering::SeqCst) == 0 {
                goro_runtime::yield_now();
            }
            let callers: Vec<_> = (0..8)
                .map(|_| {
                    let (once, finished) = (once.clone(), finished.clone());
                    go(move || {
                        once.call_once(|| panic!("a second initialiser ran"));
                        finished.load(Ordering::SeqCst)
                    })
                })
                .collect();
            for caller in callers {
                assert_eq!(caller.join().unwrap(), 1, "procs={procs}: returned early");
            }
            runner.join().unwrap();
        });
    }
}

/// Calling the same `Once` from its own initialiser panics (instead of
/// waiting for itself forever); the `Once` then counts as done.
#[test]
fn reentering_call_once_panics_with_a_message() {
    static ONCE: Once = Once::new();
    for procs in PROCS {
        let result = common::runtime(procs).block_on(|| {
            catch_unwind(|| ONCE.call_once(|| ONCE.call_once(|| {}))).map_err(|payload| {
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            })
        });
        if procs == PROCS[0] {
            let message = result.expect_err("re-entry did not panic");
            assert!(message.contains("inside its own initialiser"), "{message}");
        } else {
            assert!(result.is_ok(), "a done Once ran again");
        }
    }
}

#[test]
fn a_foreign_thread_waits_for_a_goroutine_initialiser() {
    let rt = common::runtime(2);
    let once = Arc::new(Once::new());
    let value = Arc::new(AtomicUsize::new(0));
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    let runner = {
        let (once, value) = (once.clone(), value.clone());
        rt.spawn(move || {
            once.call_once(|| {
                go_tx.send(()).unwrap();
                common::let_others_run();
                value.store(7, Ordering::SeqCst);
            })
        })
    };
    go_rx.recv().unwrap();
    once.call_once(|| panic!("a second initialiser ran"));
    assert_eq!(value.load(Ordering::SeqCst), 7);
    runner.join().unwrap();
}
