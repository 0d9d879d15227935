//! `sync::Barrier`. `test_barrier` follows std's own Barrier test
//! (`library/std/src/sync/barrier/tests.rs`, The Rust Project Developers,
//! MIT/Apache-2.0): N-1 parties block, none leaves early, exactly one leader.
//! Plus goro's own: reuse across generations, `new(0)`, a foreign thread as
//! a party. Each test runs at 1, 2 and 4 Ps.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use goro_runtime::chan::{self, TryRecvError};
use goro_runtime::go;
use goro_runtime::sync::Barrier;

const PROCS: [usize; 3] = [1, 2, 4];

#[test]
fn std_test_barrier() {
    const N: usize = 10;
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let barrier = Arc::new(Barrier::new(N));
            let (tx, rx) = chan::unbounded();
            for _ in 0..N - 1 {
                let (barrier, tx) = (barrier.clone(), tx.clone());
                go(move || tx.send(barrier.wait().is_leader()).unwrap());
            }
            common::let_others_run();
            // Every party but us is blocked, so nothing has been sent.
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "procs={procs}");
            let mut leaders = usize::from(barrier.wait().is_leader());
            for _ in 0..N - 1 {
                leaders += usize::from(rx.recv().unwrap());
            }
            assert_eq!(leaders, 1, "procs={procs}: exactly one leader");
        });
    }
}

/// Rounds in lock step: nobody starts round r+1 before everyone finished
/// round r, and each generation has exactly one leader.
#[test]
fn a_barrier_is_reusable_across_generations() {
    const PARTIES: usize = 8;
    const ROUNDS: usize = 200;
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let barrier = Arc::new(Barrier::new(PARTIES));
            let arrived = Arc::new(AtomicUsize::new(0));
            let leaders = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..PARTIES)
                .map(|_| {
                    let (barrier, arrived, leaders) =
                        (barrier.clone(), arrived.clone(), leaders.clone());
                    go(move || {
                        for round in 0..ROUNDS {
                            arrived.fetch_add(1, Ordering::SeqCst);
                            if barrier.wait().is_leader() {
                                leaders.fetch_add(1, Ordering::SeqCst);
                            }
                            // Everyone arrived for this round; nobody can
                            // have arrived for round + 2 yet.
                            let seen = arrived.load(Ordering::SeqCst);
                            assert!(seen >= (round + 1) * PARTIES, "left round {round} early");
                            assert!(seen <= (round + 2) * PARTIES, "round {round} overrun");
                            barrier.wait();
                        }
                    })
                })
                .collect();
            handles.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(leaders.load(Ordering::SeqCst), ROUNDS, "procs={procs}");
        });
    }
}

#[test]
fn a_barrier_of_zero_or_one_never_waits() {
    for n in [0, 1] {
        let barrier = Barrier::new(n);
        assert!(barrier.wait().is_leader());
        assert!(barrier.wait().is_leader());
    }
}

#[test]
fn a_foreign_thread_is_a_party() {
    for procs in PROCS {
        let rt = common::runtime(procs);
        let barrier = Arc::new(Barrier::new(3));
        let goroutines: Vec<_> = (0..2)
            .map(|_| {
                let barrier = barrier.clone();
                rt.spawn(move || {
                    (0..50)
                        .map(|_| usize::from(barrier.wait().is_leader()))
                        .sum::<usize>()
                })
            })
            .collect();
        let mut leaders: usize = (0..50)
            .map(|_| usize::from(barrier.wait().is_leader()))
            .sum();
        leaders += goroutines
            .into_iter()
            .map(|g| g.join().unwrap())
            .sum::<usize>();
        assert_eq!(leaders, 50, "procs={procs}");
    }
}

#[test]
#[ignore = "stress: run by ci/stress.sh"]
fn stress_barrier_many_generations() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let barrier = Arc::new(Barrier::new(100));
            let leaders = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..100)
                .map(|_| {
                    let (barrier, leaders) = (barrier.clone(), leaders.clone());
                    go(move || {
                        for _ in 0..5_000 {
                            if barrier.wait().is_leader() {
                                leaders.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    })
                })
                .collect();
            handles.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(leaders.load(Ordering::SeqCst), 5_000);
        });
    }
}
