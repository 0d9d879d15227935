//! `sync::WaitGroup`, from goroutines and from foreign threads.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use goro_runtime::go;
use goro_runtime::sync::WaitGroup;

#[test]
fn wait_returns_after_every_done() {
    for procs in [1, 2] {
        let rt = common::runtime(procs);
        let count = rt.block_on(|| {
            let wg = Arc::new(WaitGroup::new());
            let counter = Arc::new(AtomicUsize::new(0));
            wg.add(1000);
            for _ in 0..1000 {
                let wg = wg.clone();
                let counter = counter.clone();
                go(move || {
                    goro_runtime::yield_now();
                    counter.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                });
            }
            wg.wait();
            counter.load(Ordering::SeqCst)
        });
        assert_eq!(count, 1000, "procs={procs}");
    }
}

#[test]
fn many_waiters_and_a_foreign_thread_are_all_released() {
    let rt = common::runtime(2);
    let wg = Arc::new(WaitGroup::new());
    wg.add(1);
    let waiters: Vec<_> = (0..50)
        .map(|_| {
            let wg = wg.clone();
            rt.spawn(move || wg.wait())
        })
        .collect();
    let thread_waiter = {
        let wg = wg.clone();
        std::thread::spawn(move || wg.wait())
    };
    let releaser = {
        let wg = wg.clone();
        rt.spawn(move || {
            goro_runtime::yield_now();
            wg.done();
        })
    };
    releaser.join().unwrap();
    for waiter in waiters {
        waiter.join().unwrap();
    }
    thread_waiter.join().unwrap();
}

#[test]
fn wait_on_a_zero_counter_returns_at_once() {
    let wg = WaitGroup::new();
    wg.wait();
    wg.add(2);
    wg.add(-2);
    wg.wait();
}

#[test]
#[should_panic(expected = "negative WaitGroup counter")]
fn a_negative_counter_panics() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    wg.done();
}
