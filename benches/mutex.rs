//! Mutex micro-benchmark, the goro side of `ci/go/mutex` (Go's `sync.Mutex`):
//!
//! - `mutex_4g_2p`: on a runtime with 2 Ps, 4 goroutines each lock a
//!   `goro::sync::Mutex<u64>`, increment it and unlock, `iters / 4` times;
//!   one iteration is one lock/unlock pair.
//!
//! Run beside Go with `ci/bench.sh`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
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

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = contended
}
criterion_main!(benches);
