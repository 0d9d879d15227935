//! `sync::RwLock`. Ported from Go's `src/sync/rwmutex_test.go` (The Go
//! Authors, BSD-style licence): TestParallelReaders, TestRWMutex (with
//! HammerRWMutex and its TryLock checks) and TestRLocker (Go's `RLocker`
//! unlocks from another goroutine: here read guards are sent to another
//! goroutine and dropped there). Plus goro's own: writer preference, foreign
//! threads. `select { default: }` becomes `try_recv` (on the last round
//! the sender has gone, so "nothing received" is any error). Each test runs at 1, 2
//! and 4 Ps.

mod common;

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;

use goro_runtime::chan;
use goro_runtime::go;
use goro_runtime::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

const PROCS: [usize; 3] = [1, 2, 4];

/// TestParallelReaders: every reader holds the read lock at the same time.
#[test]
fn go_test_parallel_readers() {
    for procs in PROCS {
        for readers in [1, 3, 4] {
            common::runtime(procs).block_on(move || {
                let lock = Arc::new(RwLock::new(()));
                let (locked_tx, locked_rx) = chan::bounded::<()>(0);
                let (unlock_tx, unlock_rx) = chan::bounded::<()>(0);
                let handles: Vec<_> = (0..readers)
                    .map(|_| {
                        let (lock, locked_tx, unlock_rx) =
                            (lock.clone(), locked_tx.clone(), unlock_rx.clone());
                        go(move || {
                            let guard = lock.read();
                            locked_tx.send(()).unwrap();
                            unlock_rx.recv().unwrap();
                            drop(guard);
                        })
                    })
                    .collect();
                // All read locks are held at once, or this waits forever.
                for _ in 0..readers {
                    locked_rx.recv().unwrap();
                }
                assert!(lock.try_write().is_none(), "a writer got in past readers");
                for _ in 0..readers {
                    unlock_tx.send(()).unwrap();
                }
                handles.into_iter().for_each(|h| h.join().unwrap());
                assert!(
                    lock.try_write().is_some(),
                    "procs={procs} readers={readers}"
                );
            });
        }
    }
}

/// Go's reader: `activity` counts readers (+1) and writers (+10000).
fn reader(lock: &RwLock<()>, iterations: usize, activity: &AtomicI32) {
    for _ in 0..iterations {
        let guard = lock.read();
        let n = activity.fetch_add(1, Ordering::SeqCst) + 1;
        assert!((1..10_000).contains(&n), "a reader saw activity {n}");
        for _ in 0..100 {
            std::hint::spin_loop();
        }
        activity.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
    }
}

fn writer(lock: &RwLock<()>, iterations: usize, activity: &AtomicI32) {
    for _ in 0..iterations {
        let guard = lock.write();
        let n = activity.fetch_add(10_000, Ordering::SeqCst) + 10_000;
        assert_eq!(n, 10_000, "a writer saw activity {n}");
        for _ in 0..100 {
            std::hint::spin_loop();
        }
        activity.fetch_sub(10_000, Ordering::SeqCst);
        drop(guard);
    }
}

fn hammer_rwlock(readers: usize, iterations: usize) {
    let lock = Arc::new(RwLock::new(()));
    let activity = Arc::new(AtomicI32::new(0));
    let spawn_writer = || {
        let (lock, activity) = (lock.clone(), activity.clone());
        go(move || writer(&lock, iterations, &activity))
    };
    let spawn_reader = || {
        let (lock, activity) = (lock.clone(), activity.clone());
        go(move || reader(&lock, iterations, &activity))
    };
    let mut handles = vec![spawn_writer()];
    handles.extend((0..readers / 2).map(|_| spawn_reader()));
    handles.push(spawn_writer());
    handles.extend((readers / 2..readers).map(|_| spawn_reader()));
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(activity.load(Ordering::SeqCst), 0);
}

/// TestRWMutex: try-lock rules, then readers and writers hammering.
#[test]
fn go_test_rwmutex() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let lock = RwLock::new(());
            let writing = lock
                .try_write()
                .expect("TryLock failed with unlocked RWMutex");
            assert!(
                lock.try_write().is_none(),
                "TryLock succeeded with write-locked RWMutex"
            );
            assert!(
                lock.try_read().is_none(),
                "TryRLock succeeded with write-locked RWMutex"
            );
            drop(writing);
            let first = lock
                .try_read()
                .expect("TryRLock failed with unlocked RWMutex");
            let second = lock
                .try_read()
                .expect("TryRLock failed with read-locked RWMutex");
            assert!(
                lock.try_write().is_none(),
                "TryLock succeeded with read-locked RWMutex"
            );
            drop((first, second));

            for readers in [1, 3, 10, 5] {
                hammer_rwlock(readers, 1000);
            }
        });
    }
}

static RLOCKER: RwLock<()> = RwLock::new(());

/// TestRLocker: a read lock excludes the writer, the writer excludes
/// readers; the locks are released by another goroutine than the one that
/// took them (guards sent over channels).
#[test]
fn go_test_rlocker() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let (rlocked_tx, rlocked_rx) = chan::bounded::<[RwLockReadGuard<'static, ()>; 2]>(1);
            let (wlocked_tx, wlocked_rx) = chan::bounded::<RwLockWriteGuard<'static, ()>>(1);
            const N: usize = 10;
            let locker = go(move || {
                for _ in 0..N {
                    let first = RLOCKER.read();
                    let second = RLOCKER.read();
                    rlocked_tx.send([first, second]).unwrap();
                    wlocked_tx.send(RLOCKER.write()).unwrap();
                }
            });
            for _ in 0..N {
                let [first, second] = rlocked_rx.recv().unwrap();
                drop(first);
                common::let_others_run();
                assert!(
                    wlocked_rx.try_recv().is_err(),
                    "procs={procs}: the read lock did not exclude the writer"
                );
                drop(second);
                let writing = wlocked_rx.recv().unwrap();
                common::let_others_run();
                assert!(
                    rlocked_rx.try_recv().is_err(),
                    "procs={procs}: the write lock did not exclude readers"
                );
                drop(writing);
            }
            locker.join().unwrap();
        });
    }
}

/// Writer preference (Go's): while a writer waits for a reader to leave, new
/// readers wait behind it, and they get in once it is done.
#[test]
fn a_waiting_writer_blocks_new_readers() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let lock = Arc::new(RwLock::new(0));
            let reading = lock.read();
            let writer = {
                let lock = lock.clone();
                go(move || *lock.write() += 1)
            };
            // Until the writer is pending, new readers still get in.
            while lock.try_read().is_some() {
                goro_runtime::yield_now();
            }
            let late_reader = {
                let lock = lock.clone();
                go(move || *lock.read())
            };
            common::let_others_run();
            assert!(
                !writer.is_finished(),
                "procs={procs}: writer ran past a reader"
            );
            assert!(
                !late_reader.is_finished(),
                "procs={procs}: a reader overtook a waiting writer"
            );
            drop(reading);
            writer.join().unwrap();
            assert_eq!(
                late_reader.join().unwrap(),
                1,
                "procs={procs}: read before the write"
            );
        });
    }
}

#[test]
fn foreign_threads_and_goroutines_share_an_rwlock() {
    for procs in PROCS {
        let rt = common::runtime(procs);
        let lock = Arc::new(RwLock::new(0u64));
        let reads = Arc::new(AtomicUsize::new(0));
        let thread = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                for _ in 0..5_000 {
                    *lock.write() += 1;
                }
            })
        };
        let goroutines: Vec<_> = (0..4)
            .map(|i| {
                let (lock, reads) = (lock.clone(), reads.clone());
                rt.spawn(move || {
                    for n in 0..5_000 {
                        if (n + i) % 2 == 0 {
                            *lock.write() += 1;
                        } else {
                            let guard = lock.read();
                            reads.fetch_add((*guard <= 25_000) as usize, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        thread.join().unwrap();
        goroutines.into_iter().for_each(|g| g.join().unwrap());
        assert_eq!(*lock.read(), 15_000, "procs={procs}");
        assert_eq!(reads.load(Ordering::SeqCst), 10_000, "procs={procs}");
    }
}

#[test]
#[ignore = "stress: run by ci/stress.sh"]
fn stress_rwlock_hammer() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            for readers in [1, 3, 10, 50] {
                hammer_rwlock(readers, 50_000);
            }
        });
    }
}
