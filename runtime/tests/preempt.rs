//! Async preemption, sysmon and `blocking()` (issue 5).
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro_runtime::{go, Runtime};

fn one_p(slice_ms: u64) -> Runtime {
    Runtime::builder()
        .procs(1)
        .preempt_slice(Duration::from_millis(slice_ms))
        .build()
        .unwrap()
}

#[test]
fn a_spinning_goroutine_does_not_stop_a_sleeper_on_one_p() {
    let rt = one_p(10);
    let done = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = {
            let stop = stop.clone();
            go(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    x = x.wrapping_mul(3);
                }
                x
            })
        };
        let sleeper = go(|| {
            for _ in 0..20 {
                goro_runtime::time::sleep(Duration::from_millis(1));
            }
            true
        });
        let finished = sleeper.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        finished
    });
    assert!(done);
}
