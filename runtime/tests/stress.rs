//! Long or machine-sized tests, `#[ignore]`d; `ci/stress.sh` runs them in
//! release mode after raising `vm.max_map_count`.

mod common;

use std::sync::Arc;

use goro_runtime::go;
use goro_runtime::sync::WaitGroup;

/// DESIGN §6: a million live goroutines once `vm.max_map_count` allows the
/// two mappings each needs.
#[test]
#[ignore = "needs vm.max_map_count >= 2100000 and ~5 GiB; run ci/stress.sh"]
fn a_million_parked_goroutines() {
    const N: usize = 1_000_000;
    let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        limit >= 2 * N + 100_000,
        "vm.max_map_count is {limit}; ci/stress.sh raises it to 2200000 first"
    );
    let rt = common::runtime(2);
    let (live, finished) = rt.block_on(|| {
        let gate = Arc::new(WaitGroup::new());
        let started = Arc::new(WaitGroup::new());
        gate.add(1);
        started.add(N as i64);
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let gate = gate.clone();
                let started = started.clone();
                go(move || {
                    started.done();
                    gate.wait();
                    i
                })
            })
            .collect();
        started.wait();
        let live = goro_runtime::runtime::num_goroutines();
        gate.done();
        let mut finished = 0;
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap(), i);
            finished += 1;
        }
        (live, finished)
    });
    assert_eq!(live, N + 1, "all of them alive at once, plus main");
    assert_eq!(finished, N);
}
