//! `sync::Condvar`. Ported from Go's `src/sync/cond_test.go` (The Go
//! Authors, BSD-style licence): TestCondSignal, TestCondSignalGenerations,
//! TestCondBroadcast, TestRace, TestCondSignalStealing. Go's `c.L` becomes
//! the `Mutex` whose guard `wait` takes; `select { default: }` becomes
//! `try_recv`; Go's 2 s `time.After` guard becomes `common::recv_within`.
//! Each test runs at 1, 2 and 4 Ps.

mod common;

use std::sync::Arc;
use std::time::Duration;

use goro_runtime::chan::{self, TryRecvError};
use goro_runtime::go;
use goro_runtime::sync::{Condvar, Mutex};

const PROCS: [usize; 3] = [1, 2, 4];

type Shared<T> = Arc<(Mutex<T>, Condvar)>;

fn shared<T>(value: T) -> Shared<T> {
    Arc::new((Mutex::new(value), Condvar::new()))
}

#[test]
fn go_test_cond_signal() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let pair = shared(());
            let mut n = 2;
            let (running_tx, running_rx) = chan::bounded::<()>(n);
            let (awake_tx, awake_rx) = chan::bounded::<()>(n);
            for _ in 0..n {
                let (pair, running_tx, awake_tx) =
                    (pair.clone(), running_tx.clone(), awake_tx.clone());
                go(move || {
                    let (mutex, cond) = &*pair;
                    let guard = mutex.lock();
                    running_tx.send(()).unwrap();
                    let guard = cond.wait(guard);
                    awake_tx.send(()).unwrap();
                    drop(guard);
                });
            }
            for _ in 0..n {
                running_rx.recv().unwrap(); // everyone runs
            }
            let (mutex, cond) = &*pair;
            while n > 0 {
                assert_eq!(
                    awake_rx.try_recv(),
                    Err(TryRecvError::Empty),
                    "goroutine not asleep"
                );
                let guard = mutex.lock();
                cond.notify_one();
                drop(guard);
                awake_rx.recv().unwrap(); // deadlocks if nobody wakes
                common::let_others_run();
                assert_eq!(
                    awake_rx.try_recv(),
                    Err(TryRecvError::Empty),
                    "too many goroutines awake"
                );
                n -= 1;
            }
            cond.notify_one();
        });
    }
}

/// Signals wake waiters in the order they started waiting.
#[test]
fn go_test_cond_signal_generations() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let pair = shared(());
            let n = 100;
            let (running_tx, running_rx) = chan::bounded::<()>(n);
            let (awake_tx, awake_rx) = chan::bounded::<usize>(n);
            for i in 0..n {
                let (waiter_pair, running_tx, awake_tx) =
                    (pair.clone(), running_tx.clone(), awake_tx.clone());
                go(move || {
                    let (mutex, cond) = &*waiter_pair;
                    let guard = mutex.lock();
                    running_tx.send(()).unwrap();
                    let guard = cond.wait(guard);
                    awake_tx.send(i).unwrap();
                    drop(guard);
                });
                if i > 0 {
                    let woke = awake_rx.recv().unwrap();
                    assert_eq!(woke, i - 1, "wrong goroutine woke up");
                }
                running_rx.recv().unwrap();
                let (mutex, cond) = &*pair;
                let guard = mutex.lock();
                cond.notify_one();
                drop(guard);
            }
        });
    }
}

#[test]
fn go_test_cond_broadcast() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let n = 200;
            let pair = shared(false); // the value is Go's `exit`
            let (running_tx, running_rx) = chan::bounded::<usize>(n);
            let (awake_tx, awake_rx) = chan::bounded::<usize>(n);
            for g in 0..n {
                let (pair, running_tx, awake_tx) =
                    (pair.clone(), running_tx.clone(), awake_tx.clone());
                go(move || {
                    let (mutex, cond) = &*pair;
                    let mut exit = mutex.lock();
                    while !*exit {
                        running_tx.send(g).unwrap();
                        exit = cond.wait(exit);
                        awake_tx.send(g).unwrap();
                    }
                });
            }
            drop(running_tx);
            let (mutex, cond) = &*pair;
            for round in 0..n {
                for _ in 0..n {
                    running_rx.recv().unwrap(); // deadlocks unless n are running
                }
                if round == n - 1 {
                    *mutex.lock() = true;
                }
                assert_eq!(
                    awake_rx.try_recv(),
                    Err(TryRecvError::Empty),
                    "goroutine not asleep"
                );
                let guard = mutex.lock();
                cond.notify_all();
                drop(guard);
                let mut seen = vec![false; n];
                for _ in 0..n {
                    let g = awake_rx.recv().unwrap();
                    assert!(!seen[g], "goroutine woke up twice");
                    seen[g] = true;
                }
            }
            common::let_others_run();
            assert!(running_rx.try_recv().is_err(), "goroutine did not exit");
            cond.notify_all();
        });
    }
}

/// TestRace: three goroutines hand a value along with signals; each sees the
/// value the previous one left.
#[test]
fn go_test_race() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let pair = shared(0);
            let first = {
                let pair = pair.clone();
                go(move || {
                    let (mutex, cond) = &*pair;
                    let mut x = mutex.lock();
                    *x = 1;
                    x = cond.wait(x);
                    assert_eq!(*x, 2, "want 2");
                    *x = 3;
                    cond.notify_one();
                })
            };
            let second = {
                let pair = pair.clone();
                go(move || {
                    let (mutex, cond) = &*pair;
                    let mut x = mutex.lock();
                    loop {
                        if *x == 1 {
                            *x = 2;
                            cond.notify_one();
                            break;
                        }
                        drop(x);
                        goro_runtime::yield_now();
                        x = mutex.lock();
                    }
                })
            };
            let third = {
                let pair = pair.clone();
                go(move || {
                    let (mutex, cond) = &*pair;
                    let mut x = mutex.lock();
                    loop {
                        if *x == 2 {
                            x = cond.wait(x);
                            assert_eq!(*x, 3, "want 3");
                            break;
                        }
                        if *x == 3 {
                            break;
                        }
                        drop(x);
                        goro_runtime::yield_now();
                        x = mutex.lock();
                    }
                })
            };
            first.join().unwrap();
            second.join().unwrap();
            third.join().unwrap();
        });
    }
}

/// TestCondSignalStealing: a broadcast racing with a new waiter must still
/// wake the waiter that was already there.
#[test]
fn go_test_cond_signal_stealing() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            for _ in 0..1000 {
                let pair = shared(false); // Go's `done`
                let (ch_tx, ch_rx) = chan::bounded::<()>(0);
                {
                    let pair = pair.clone();
                    go(move || {
                        let (mutex, cond) = &*pair;
                        let guard = mutex.lock();
                        ch_tx.send(()).unwrap();
                        drop(cond.wait(guard));
                        ch_tx.send(()).unwrap();
                    });
                }
                ch_rx.recv().unwrap();
                // The waiter is inside wait(): it held the lock when it
                // sent, and we can take the lock.
                drop(pair.0.lock());
                {
                    let pair = pair.clone();
                    go(move || pair.1.notify_all());
                }
                {
                    let pair = pair.clone();
                    go(move || {
                        let (mutex, cond) = &*pair;
                        drop(cond.wait_while(mutex.lock(), |done| !*done));
                    });
                }
                assert!(
                    common::recv_within(&ch_rx, Duration::from_secs(10)),
                    "procs={procs}: first waiter didn't get broadcast"
                );
                *pair.0.lock() = true;
                pair.1.notify_all();
            }
        });
    }
}

#[test]
fn waiting_with_a_second_mutex_panics() {
    common::runtime(2).block_on(|| {
        let cond = Arc::new(Condvar::new());
        let first = Arc::new(Mutex::new(()));
        let (ready_tx, ready_rx) = chan::bounded::<()>(0);
        let waiter = {
            let (cond, first) = (cond.clone(), first.clone());
            go(move || {
                let guard = first.lock();
                ready_tx.send(()).unwrap();
                drop(cond.wait(guard));
            })
        };
        ready_rx.recv().unwrap();
        // The waiter held the lock when it sent: once we get the lock, it
        // is inside wait(), with `first` recorded.
        drop(first.lock());
        let second = Mutex::new(());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(cond.wait(second.lock()))
        }));
        assert!(result.is_err(), "a second mutex was accepted");
        cond.notify_all();
        waiter.join().unwrap();
    });
}

#[test]
fn a_foreign_thread_waits_and_a_goroutine_notifies() {
    for procs in PROCS {
        let rt = common::runtime(procs);
        let pair = shared(0u32);
        let thread = {
            let pair = pair.clone();
            std::thread::spawn(move || {
                let (mutex, cond) = &*pair;
                *cond.wait_while(mutex.lock(), |n| *n < 100)
            })
        };
        let goroutines: Vec<_> = (0..4)
            .map(|_| {
                let pair = pair.clone();
                rt.spawn(move || {
                    for _ in 0..25 {
                        *pair.0.lock() += 1;
                        pair.1.notify_all();
                        goro_runtime::yield_now();
                    }
                })
            })
            .collect();
        goroutines.into_iter().for_each(|g| g.join().unwrap());
        assert_eq!(thread.join().unwrap(), 100, "procs={procs}");
    }
}

/// Producer/consumer hand-offs through a condition variable, long.
#[test]
#[ignore = "stress: run by ci/stress.sh"]
fn stress_cond_ping_pong() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let pair = shared(0u64);
            let players: Vec<_> = (0..2u64)
                .map(|parity| {
                    let pair = pair.clone();
                    go(move || {
                        let (mutex, cond) = &*pair;
                        let mut turn = mutex.lock();
                        while *turn < 200_000 {
                            turn = cond.wait_while(turn, |t| *t % 2 != parity && *t < 200_000);
                            if *turn < 200_000 {
                                *turn += 1;
                                cond.notify_all();
                            }
                        }
                    })
                })
                .collect();
            players.into_iter().for_each(|p| p.join().unwrap());
            assert_eq!(*pair.0.lock(), 200_000);
        });
    }
}
