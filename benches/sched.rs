//! Scheduler micro-benchmarks, shaped like the Go yardstick's (`go/micro`):
//!
//! - `yield_switch_1p`: two goroutines on 1 P calling `yield_now` in turn;
//!   one iteration is one switch (Go: `runtime.Gosched`, 66–75 ns here).
//! - `spawn_exit_batch1000/{1p,2p}`: spawn 1,000 goroutines that each call
//!   `WaitGroup::done`, wait, repeat; one iteration is one goroutine
//!   (Go: 227–253 ns on 1 P).
//!
//! Run beside Go in one go with `ci/bench.sh`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use goro::sync::WaitGroup;
use goro::Runtime;

fn runtime(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().expect("runtime")
}

fn yield_switch(c: &mut Criterion) {
    let rt = runtime(1);
    c.bench_function("yield_switch_1p", |b| {
        b.iter_custom(|iters| {
            let per_goroutine = iters.div_ceil(2);
            rt.block_on(move || {
                let start = Instant::now();
                let handles: Vec<_> = (0..2)
                    .map(|_| {
                        goro::go(move || {
                            for _ in 0..per_goroutine {
                                goro::yield_now();
                            }
                        })
                    })
                    .collect();
                for handle in handles {
                    handle.join().unwrap();
                }
                start.elapsed()
            })
        })
    });
}

/// Goroutines in `yield_cold/10000g_1p`: as many as the C10K echo server
/// has, so every switch resumes a stack that left the core's L2 long ago.
const COLD_GOROUTINES: u64 = 10_000;

/// A yield among 10,000 runnable goroutines on 1 P: the cold-stack switch
/// that `P::look_ahead` (sched/p.rs, "Looking one G ahead") prefetches for.
/// Spawning is outside the timed part: the clock starts once every
/// goroutine has run.
fn yield_switch_cold(c: &mut Criterion) {
    let rt = runtime(1);
    let mut group = c.benchmark_group("yield_cold");
    group.sample_size(20);
    group.bench_function("10000g_1p", |b| {
        b.iter_custom(|iters| {
            let per_goroutine = iters.div_ceil(COLD_GOROUTINES).max(20);
            let elapsed = rt.block_on(move || {
                let started = Arc::new(WaitGroup::new());
                started.add(COLD_GOROUTINES as i64);
                let handles: Vec<_> = (0..COLD_GOROUTINES)
                    .map(|_| {
                        let started = started.clone();
                        goro::go(move || {
                            started.done();
                            for _ in 0..per_goroutine {
                                goro::yield_now();
                            }
                        })
                    })
                    .collect();
                started.wait();
                let start = Instant::now();
                for handle in handles {
                    handle.join().unwrap();
                }
                start.elapsed()
            });
            elapsed.mul_f64(iters as f64 / (per_goroutine * COLD_GOROUTINES) as f64)
        })
    });
    group.finish();
}

fn spawn_batches(rt: &Runtime, goroutines: u64) -> Duration {
    let batches = goroutines.div_ceil(1000);
    rt.block_on(move || {
        let start = Instant::now();
        for _ in 0..batches {
            let wg = Arc::new(WaitGroup::new());
            wg.add(1000);
            for _ in 0..1000 {
                let wg = wg.clone();
                goro::go(move || wg.done());
            }
            wg.wait();
        }
        let elapsed = start.elapsed();
        // Report per requested iteration (batches round up to 1,000).
        elapsed.mul_f64(goroutines as f64 / (batches * 1000) as f64)
    })
}

fn spawn_exit(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_exit_batch1000");
    for procs in [1, 2] {
        let rt = runtime(procs);
        // Warm the stack pools so the figure is the steady state.
        spawn_batches(&rt, 20_000);
        group.bench_function(format!("{procs}p"), |b| {
            b.iter_custom(|iters| spawn_batches(&rt, iters))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = yield_switch, yield_switch_cold, spawn_exit
}
criterion_main!(benches);
