//! RSS per parked goroutine (Go's `micro idle`): park N goroutines on a
//! `WaitGroup`, read VmRSS before and after, and print the delta per
//! goroutine as a FIGURE line, in the Go yardstick's format.
//!
//! `cargo bench --bench idle_rss [-- N]` (default 30,000, which fits under the
//! default `vm.max_map_count` with 2 VMAs per stack). Runs on 1 P, as Go's.

use std::sync::Arc;
use std::time::Duration;

use goro::sync::WaitGroup;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(30_000, |a| a.parse().expect("N: a number"));
    let rt = goro::Runtime::builder().procs(1).build().expect("runtime");
    let (before, after, spawn_ms) = rt.block_on(move || {
        // Warm up: start the M threads and the allocator's arenas.
        goro::go(|| ()).join().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let before = rss_bytes();
        let gate = Arc::new(WaitGroup::new());
        let started = Arc::new(WaitGroup::new());
        gate.add(1);
        started.add(n as i64);
        let t0 = std::time::Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let gate = gate.clone();
                let started = started.clone();
                goro::go(move || {
                    started.done();
                    gate.wait();
                })
            })
            .collect();
        started.wait();
        let spawn_ms = t0.elapsed().as_secs_f64() * 1e3;
        std::thread::sleep(Duration::from_millis(200));
        let after = rss_bytes();
        gate.done();
        for handle in handles {
            handle.join().unwrap();
        }
        (before, after, spawn_ms)
    });
    let per = (after as f64 - before as f64) / n as f64;
    println!(
        "FIGURE peer=goro bench=idle_{n} procs=1 value={per:.1} unit=bytes/goroutine n={n} \
         rss_before={before} rss_after={after} spawn_ms={spawn_ms:.0}"
    );
}
