//! Spawning, joining, panics and scheduling across Ps.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goro_runtime::{go, Builder};

/// 100,000 goroutines spawned and joined, results checked. They run in waves
/// of 10,000: with one guard page each, a stack costs 2 VMAs, and the default
/// `vm.max_map_count` (65530) allows about 32,000 live goroutines at once.
#[test]
fn hundred_thousand_goroutines_spawned_and_joined() {
    for procs in [1, 2] {
        let rt = common::runtime(procs);
        let (sum, live_after) = rt.block_on(|| {
            let mut sum = 0u64;
            for wave in 0..10u64 {
                let handles: Vec<_> = (0..10_000u64)
                    .map(|i| {
                        let n = wave * 10_000 + i;
                        go(move || n * 3 + 1)
                    })
                    .collect();
                for handle in handles {
                    sum += handle.join().expect("goroutine panicked");
                }
            }
            // A goroutine completes its join slot just before it stops being
            // counted, so wait (yielding) for the count to settle.
            let deadline = Instant::now() + Duration::from_secs(30);
            while goro_runtime::runtime::num_goroutines() > 1 && Instant::now() < deadline {
                goro_runtime::yield_now();
            }
            (sum, goro_runtime::runtime::num_goroutines())
        });
        let n = 100_000u64;
        assert_eq!(sum, 3 * n * (n - 1) / 2 + n, "procs={procs}");
        assert_eq!(
            live_after, 1,
            "only the main goroutine is left (procs={procs})"
        );
    }
}

fn tree(depth: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    let left = go(move || tree(depth - 1));
    let right = go(move || tree(depth - 1));
    1 + left.join().unwrap() + right.join().unwrap()
}

#[test]
fn nested_spawns_build_a_tree_and_a_chain() {
    let rt = common::runtime(2);
    assert_eq!(rt.block_on(|| tree(11)), (1 << 12) - 1);

    // A chain: each goroutine spawns the next and returns its result + 1.
    fn chain(left: u32) -> u32 {
        if left == 0 {
            0
        } else {
            go(move || chain(left - 1)).join().unwrap() + 1
        }
    }
    assert_eq!(rt.block_on(|| chain(500)), 500);
}

#[test]
fn a_panicking_goroutine_returns_err_and_the_others_carry_on() {
    let rt = common::runtime(2);
    let outcome = rt.block_on(|| {
        let handles: Vec<_> = (0..10u32)
            .map(|i| {
                go(move || {
                    goro_runtime::yield_now();
                    if i == 3 {
                        panic!("boom {i}");
                    }
                    i
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        // The runtime still works after the panic.
        let after = go(|| 42).join().unwrap();
        (results, after)
    });
    let (results, after) = outcome;
    assert_eq!(after, 42);
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(value) => assert_eq!(value as usize, i),
            Err(payload) => {
                assert_eq!(i, 3, "only goroutine 3 panics");
                let message = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied());
                assert_eq!(message, Some("boom 3"));
            }
        }
    }
}

/// With 2 Ps, goroutines spawned from one goroutine (so onto one P) finish on
/// both OS threads: the second M stole them. Each worker spins until two
/// threads have been seen (or 10 s pass), so the test asserts progress, not
/// speed.
#[test]
fn with_two_ps_goroutines_spawned_on_one_p_run_on_both_threads() {
    let rt = common::runtime(2);
    let seen = rt.block_on(|| {
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let seen = seen.clone();
                go(move || {
                    let deadline = Instant::now() + Duration::from_secs(10);
                    loop {
                        let mut threads = seen.lock().unwrap();
                        threads.insert(std::thread::current().id());
                        if threads.len() >= 2 || Instant::now() > deadline {
                            return;
                        }
                        drop(threads);
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let count = seen.lock().unwrap().len();
        count
    });
    // At least both Ms. A third thread is legitimate: the goroutines contend
    // on a std Mutex, and sysmon hands the P of an M it finds blocked in the
    // kernel (a futex wait) to a new M (failed once on a loaded CI run).
    assert!(
        seen >= 2,
        "goroutines ran on {seen} thread(s), expected both Ms"
    );
}

/// On 1 P, a long run queue runs in its order: the look-ahead that moves the
/// queue's next G into `runnext` and prefetches its stack (p.rs "Looking one
/// G ahead") must not reorder it. Spawn puts each new G in `runnext` and the
/// previous one at the tail, so the last spawned runs first, then the rest
/// in spawn order. The spawner waits on a WaitGroup, readied only by the
/// last `done`, so no `ready` displaces a looked-ahead G meanwhile.
#[test]
fn a_long_run_queue_on_one_p_runs_in_spawn_order() {
    const COUNT: usize = 64;
    let rt = common::runtime(1);
    let log = rt.block_on(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let group = Arc::new(goro_runtime::sync::WaitGroup::new());
        group.add(COUNT as i64);
        for index in 0..COUNT {
            let log = log.clone();
            let group = group.clone();
            go(move || {
                log.lock().unwrap().push(index);
                group.done();
            });
        }
        group.wait();
        let log = log.lock().unwrap().clone();
        log
    });
    let mut expected = vec![COUNT - 1];
    expected.extend(0..COUNT - 1);
    assert_eq!(log, expected);
}

/// On 1 P, two goroutines that yield after every step interleave strictly.
#[test]
fn yield_now_interleaves_two_goroutines_on_one_p() {
    let rt = common::runtime(1);
    let log = rt.block_on(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = ['a', 'b']
            .into_iter()
            .map(|name| {
                let log = log.clone();
                go(move || {
                    for _ in 0..100 {
                        log.lock().unwrap().push(name);
                        goro_runtime::yield_now();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let log = log.lock().unwrap().clone();
        log
    });
    assert_eq!(log.len(), 200);
    for pair in log.windows(2) {
        assert_ne!(pair[0], pair[1], "no goroutine ran twice in a row: {log:?}");
    }
}

#[test]
fn block_on_from_several_foreign_threads_at_once() {
    let rt = Arc::new(common::runtime(2));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                rt.block_on(move || {
                    let handles: Vec<_> = (0..200u64).map(|i| go(move || t * 1000 + i)).collect();
                    handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                })
            })
        })
        .collect();
    for (t, thread) in threads.into_iter().enumerate() {
        let t = t as u64;
        let expected: u64 = (0..200).map(|i| t * 1000 + i).sum();
        assert_eq!(thread.join().unwrap(), expected);
    }
}

#[test]
fn runtime_spawn_from_outside_and_join_from_a_thread() {
    let rt = common::runtime(2);
    let counter = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let counter = counter.clone();
            rt.spawn(move || counter.fetch_add(1, Ordering::SeqCst))
        })
        .collect();
    let mut seen: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
}

#[test]
fn builder_names_and_sizes_goroutines() {
    let rt = common::runtime(1);
    let value = rt.block_on(|| {
        let handle = Builder::new()
            .name("sized")
            .stack_size(1 << 20)
            .spawn(|| {
                // Use a good part of a 1 MiB stack: it must not overflow.
                let buffer = [7u8; 512 * 1024];
                std::hint::black_box(&buffer)
                    .iter()
                    .map(|&b| b as u64)
                    .sum::<u64>()
            })
            .expect("spawn");
        handle.join().unwrap()
    });
    assert_eq!(value, 7 * 512 * 1024);
}

#[test]
fn calls_that_need_a_runtime_fail_clearly_outside_one() {
    let error = Builder::new().spawn(|| ()).unwrap_err();
    assert!(error.to_string().contains("goro::run"), "{error}");
    let panic = std::panic::catch_unwind(|| go(|| ())).unwrap_err();
    let message = panic.downcast_ref::<String>().expect("panic message");
    assert!(
        message.contains("goro::run") && message.contains("Runtime"),
        "{message}"
    );
    let panic = std::panic::catch_unwind(goro_runtime::runtime::num_goroutines).unwrap_err();
    let message = panic.downcast_ref::<String>().expect("panic message");
    assert!(message.contains("outside a goroutine"), "{message}");
}

#[test]
fn block_on_inside_a_goroutine_panics_instead_of_blocking_an_m() {
    let rt = Arc::new(common::runtime(1));
    let inner = rt.clone();
    let result = rt.block_on(move || go(move || inner.block_on(|| 1)).join());
    let payload = result.unwrap_err();
    let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("inside a goroutine"), "{message:?}");
}

#[test]
fn procs_setting_and_environment_are_honoured() {
    if common::is_child("procs_setting_and_environment_are_honoured") {
        if std::env::var("GORO_MAXPROCS").as_deref() == Ok("3") {
            let rt = goro_runtime::Runtime::new().expect("build");
            assert_eq!(rt.block_on(goro_runtime::runtime::procs), 3);
            println!("CHILD-OK procs=3");
        } else {
            let error = goro_runtime::Runtime::new().unwrap_err();
            assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
            assert!(error.to_string().contains("GORO_MAXPROCS"), "{error}");
            println!("CHILD-OK rejected");
        }
        return;
    }
    let rt = common::runtime(3);
    assert_eq!(rt.procs(), 3);
    assert!(goro_runtime::Runtime::builder().procs(0).build().is_err());

    let name = "procs_setting_and_environment_are_honoured";
    let good = common::run_child(name, &[("GORO_MAXPROCS", "3")]);
    assert!(
        String::from_utf8_lossy(&good.stdout).contains("CHILD-OK procs=3"),
        "{good:?}"
    );
    let bad = common::run_child(name, &[("GORO_MAXPROCS", "lots")]);
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("CHILD-OK rejected"),
        "{bad:?}"
    );
}
