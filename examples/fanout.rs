//! Fan-out/fan-in demo: spawns waves of goroutines that each compute a slice
//! of a sum, joins them, and reports what the scheduler did.
//!
//! ```text
//! cargo run --release --example fanout [goroutines] [waves]
//! GORO_MAXPROCS=1 cargo run --release --example fanout
//! ```
//!
//! Each wave spawns `goroutines` workers from the main goroutine; every worker
//! yields once halfway (so the Ps interleave and steal), records which OS
//! thread finished it, and returns its partial sum. The totals are checked
//! against the closed form, so a wrong schedule cannot print a right answer.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let goroutines: u64 = args
        .next()
        .map_or(10_000, |a| a.parse().expect("goroutines: a number"));
    let waves: u64 = args
        .next()
        .map_or(10, |a| a.parse().expect("waves: a number"));

    let report = goro::run(move || {
        let threads = Arc::new(Mutex::new(HashSet::new()));
        let started = Instant::now();
        let mut total: u128 = 0;
        for wave in 0..waves {
            let handles: Vec<_> = (0..goroutines)
                .map(|i| {
                    let threads = threads.clone();
                    goro::go(move || {
                        let n = wave * goroutines + i;
                        let mut partial = 0u128;
                        for k in 0..64u128 {
                            partial += n as u128 * 64 + k;
                            if k == 32 {
                                goro::yield_now();
                            }
                        }
                        threads.lock().unwrap().insert(std::thread::current().id());
                        partial
                    })
                })
                .collect();
            total += handles
                .into_iter()
                .map(|h| h.join().expect("worker panicked"))
                .sum::<u128>();
        }
        let elapsed = started.elapsed();
        let threads = threads.lock().unwrap().len();
        (total, elapsed, threads, goro::runtime::procs())
    });

    let (total, elapsed, threads, procs) = report;
    // Sum over n < N of sum over k < 64 of (64 n + k) = sum over m < 64 N of m.
    let m = (goroutines * waves * 64) as u128;
    let expected = m * (m - 1) / 2;
    assert_eq!(total, expected, "fan-in sum is wrong");
    let spawned = goroutines * waves;
    println!(
        "{spawned} goroutines in {waves} waves on {procs} P(s), finished on {threads} OS thread(s): \
         {:.1} ms, {:.0} ns per goroutine; sum {total} (checked)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / spawned as f64,
    );
}
