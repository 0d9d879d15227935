//! 100,000 goroutines each sleep 1 ms ten times (issue 3's timer figure):
//! the wall time from the first spawn to the last wake, median of 3 runs
//! after a warm-up round, printed as a FIGURE line beside Go's
//! (`ci/go/chanbench sleepers`).
//!
//! `cargo bench --bench sleepers [-- PROCS [N]]` (defaults 2 and 100,000).
//! 100,000 stacks need 200,000 mappings: above the default
//! `vm.max_map_count`; `ci/bench.sh` raises it (as root) for this run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::sync::WaitGroup;

fn round(n: usize, sleeps: usize) -> Duration {
    let wg = Arc::new(WaitGroup::new());
    wg.add(n as i64);
    let start = Instant::now();
    for _ in 0..n {
        let wg = wg.clone();
        goro::go(move || {
            for _ in 0..sleeps {
                goro::time::sleep(Duration::from_millis(1));
            }
            wg.done();
        });
    }
    wg.wait();
    start.elapsed()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("PROCS and N: numbers"))
        .collect();
    let procs = args.first().copied().unwrap_or(2);
    let n = args.get(1).copied().unwrap_or(100_000);
    let rt = goro::Runtime::builder()
        .procs(procs)
        .build()
        .expect("runtime");
    let mut runs: Vec<f64> = rt.block_on(move || {
        round(n, 1);
        (0..3)
            .map(|_| round(n, 10).as_secs_f64() * 1000.0)
            .collect()
    });
    let shown = format!("{runs:.1?}");
    runs.sort_by(f64::total_cmp);
    println!(
        "FIGURE peer=goro bench=sleepers_{}k_x10/{procs}p value={:.1} unit=ms runs={shown}",
        n / 1000,
        runs[1]
    );
}
