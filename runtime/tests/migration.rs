//! A goroutine that migrates to another M in the middle of a function keeps
//! the runtime's identity of it. Meant for release mode (the README's test
//! command), where LLVM would be free to cache a thread-local's address
//! across the switch if the runtime let it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro_runtime::go;
use goro_runtime::sched::current_goroutine_id;

#[test]
fn migration_mid_function_keeps_the_current_goroutine_identity() {
    let rt = common::runtime(2);
    let migrations = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    // Uneven amounts of work make Ps run dry at different times and steal
    // yielded goroutines from each other mid-loop.
    while migrations.load(Ordering::SeqCst) < 50 && Instant::now() < deadline {
        let counter = migrations.clone();
        rt.block_on(move || {
            let handles: Vec<_> = (0..16u64)
                .map(|i| {
                    let counter = counter.clone();
                    go(move || {
                        let me = current_goroutine_id().expect("inside a goroutine");
                        let mut thread = std::thread::current().id();
                        for step in 0..(i + 1) * 500 {
                            goro_runtime::yield_now();
                            assert_eq!(
                                current_goroutine_id(),
                                Some(me),
                                "identity lost at step {step}"
                            );
                            let now = std::thread::current().id();
                            if now != thread {
                                counter.fetch_add(1, Ordering::SeqCst);
                                thread = now;
                            }
                        }
                        me
                    })
                })
                .collect();
            for handle in handles {
                let id = handle.id();
                assert_eq!(
                    handle.join().unwrap(),
                    id,
                    "goroutine reported another's id"
                );
            }
        });
    }
    let migrations = migrations.load(Ordering::SeqCst);
    assert!(
        migrations > 0,
        "no goroutine ever resumed on another thread"
    );
    println!("migrations observed: {migrations}");
}
