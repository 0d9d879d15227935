//! Mutex micro-benchmark, the goro side of `ci/go/mutex` (Go's `sync.Mutex`):
//!
//! - `mutex_4g_2p`: on a runtime with 2 Ps, 4 goroutines each lock a
//!   `goro::sync::Mutex<u64>`, increment it and unlock, `iters / 4` times;
//!   one iteration is one lock/unlock pair.
//!
//! Run beside Go with `ci/bench.sh`.
//!
//! `cargo bench --bench mutex -- go-shape [N]` instead runs exactly what
//! `ci/go/mutex` runs: `REPS` (default 7) rounds of 4 goroutines × N
//! (default 1,000,000) on fresh counters, and prints the median as a FIGURE
//! line, so the two programs can be interleaved in one shell loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use goro::chan;
use goro::sync::Mutex;
use goro::Runtime;

const GOROUTINES: u64 = 4;

fn contended(c: &mut Criterion) {
    let rt = Runtime::builder().procs(2).build().expect("runtime");
    c.bench_function("mutex_4g_2p", |b| {
        b.iter_custom(|iters| {
            let per_goroutine = iters.div_ceil(GOROUTINES);
            rt.block_on(move || {
                let counter = Arc::new(Mutex::new(0u64));
                // All four start together, as Go's peer closes a channel.
                let (start_tx, start_rx) = chan::bounded::<()>(0);
                let handles: Vec<_> = (0..GOROUTINES)
                    .map(|_| {
                        let (counter, start_rx) = (counter.clone(), start_rx.clone());
                        goro::go(move || {
                            let _ = start_rx.recv();
                            for _ in 0..per_goroutine {
                                *counter.lock() += 1;
                            }
                        })
                    })
                    .collect();
                let start = Instant::now();
                start_tx.close();
                handles.into_iter().for_each(|h| h.join().unwrap());
                let elapsed = start.elapsed();
                assert_eq!(*counter.lock(), per_goroutine * GOROUTINES);
                elapsed.mul_f64(iters as f64 / (per_goroutine * GOROUTINES) as f64)
            })
        })
    });
}

/// One round of Go's program: ns per lock/unlock pair.
fn go_shaped_round(n: u64) -> f64 {
    let counter = Arc::new(Mutex::new(0u64));
    let (start_tx, start_rx) = chan::bounded::<()>(0);
    let handles: Vec<_> = (0..GOROUTINES)
        .map(|_| {
            let (counter, start_rx) = (counter.clone(), start_rx.clone());
            goro::go(move || {
                let _ = start_rx.recv();
                for _ in 0..n {
                    *counter.lock() += 1;
                }
            })
        })
        .collect();
    let start = Instant::now();
    start_tx.close();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let elapsed = start.elapsed();
    assert_eq!(*counter.lock(), n * GOROUTINES);
    elapsed.as_nanos() as f64 / (n * GOROUTINES) as f64
}

fn go_shaped(n: u64) {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(7);
    let rt = Runtime::builder().procs(2).build().expect("runtime");
    let runs: Vec<f64> = rt.block_on(move || (0..reps).map(|_| go_shaped_round(n)).collect());
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let shown: Vec<String> = runs.iter().map(|x| format!("{x:.1}")).collect();
    println!(
        "FIGURE peer=goro bench=mutex_4g_2p value={:.1} unit=ns runs={}",
        sorted[sorted.len() / 2],
        shown.join(",")
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = contended
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "go-shape") {
        let n = args
            .get(at + 1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(1_000_000);
        go_shaped(n);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
