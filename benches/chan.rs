//! Channel micro-benchmarks, shaped like the Go yardstick's (`go/micro`):
//!
//! - `pingpong/{1p,2p}`: two goroutines bounce a value over two unbuffered
//!   channels; one iteration is one round trip (Go: 319–355 ns on 1 P).
//! - `buffered_128/{1p,2p}`: one producer sends into a channel of capacity
//!   128, one consumer drains it; one iteration is one value (Go's side:
//!   `ci/go/chanbench buffered`).
//!
//! Run beside Go with `ci/bench.sh`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use goro::chan;
use goro::Runtime;

fn runtime(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().expect("runtime")
}

fn pingpong(c: &mut Criterion) {
    let mut group = c.benchmark_group("pingpong");
    for procs in [1, 2] {
        let rt = runtime(procs);
        group.bench_function(format!("{procs}p"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(move || {
                    let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
                    let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
                    let echo = goro::go(move || {
                        for value in ping_rx.iter() {
                            pong_tx.send(value + 1).unwrap();
                        }
                    });
                    let start = Instant::now();
                    let mut value = 0;
                    for _ in 0..iters {
                        ping_tx.send(value).unwrap();
                        value = pong_rx.recv().unwrap();
                    }
                    let elapsed = start.elapsed();
                    drop(ping_tx);
                    echo.join().unwrap();
                    assert_eq!(value, iters);
                    elapsed
                })
            })
        });
    }
    group.finish();
}

fn buffered(c: &mut Criterion) {
    for procs in [1, 2] {
        buffered_on(c, procs);
    }
}

fn buffered_on(c: &mut Criterion, procs: usize) {
    let rt = runtime(procs);
    c.bench_function(&format!("buffered_128/{procs}p"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let (tx, rx) = chan::bounded::<u64>(128);
                let start = Instant::now();
                let consumer = goro::go(move || rx.iter().fold(0u64, |sum, v| sum.wrapping_add(v)));
                for i in 0..iters {
                    tx.send(i).unwrap();
                }
                drop(tx);
                let sum = consumer.join().unwrap();
                let elapsed = start.elapsed();
                assert_eq!(sum, iters.wrapping_mul(iters.wrapping_sub(1)) / 2);
                elapsed
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = pingpong, buffered
}
criterion_main!(benches);
