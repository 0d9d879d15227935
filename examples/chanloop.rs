//! Fixed-work channel loop for instruction-count A/B measurements
//! (`perf stat -e instructions,cycles`, `valgrind --tool=cachegrind`):
//! `chanloop MODE PROCS N`, MODE `buffered` (one producer sends N u64 into
//! `bounded(128)`, one consumer drains it with `iter()`) or `pingpong` (N
//! round trips over two unbuffered channels). Prints ns per value / round
//! trip, which on a shared 2-core VM is only indicative.

use std::time::Instant;

use goro::chan;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("buffered", String::as_str).to_owned();
    let procs: usize = args.get(2).map_or(1, |s| s.parse().expect("PROCS"));
    let n: u64 = args.get(3).map_or(10_000_000, |s| s.parse().expect("N"));
    let rt = goro::Runtime::builder()
        .procs(procs)
        .build()
        .expect("runtime");
    let ns = rt.block_on(move || {
        let start = Instant::now();
        match mode.as_str() {
            "buffered" => {
                let (tx, rx) = chan::bounded::<u64>(128);
                let consumer = goro::go(move || rx.iter().fold(0u64, |sum, v| sum.wrapping_add(v)));
                for i in 0..n {
                    tx.send(i).unwrap();
                }
                drop(tx);
                assert_eq!(
                    consumer.join().unwrap(),
                    n.wrapping_mul(n.wrapping_sub(1)) / 2
                );
            }
            "pingpong" => {
                let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
                let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
                let echo = goro::go(move || {
                    for value in ping_rx.iter() {
                        pong_tx.send(value + 1).unwrap();
                    }
                });
                let mut value = 0;
                for _ in 0..n {
                    ping_tx.send(value).unwrap();
                    value = pong_rx.recv().unwrap();
                }
                drop(ping_tx);
                echo.join().unwrap();
                assert_eq!(value, n);
            }
            other => panic!("unknown mode {other}"),
        }
        start.elapsed().as_nanos() as f64 / n as f64
    });
    println!("{ns:.1} ns per value");
}
