//! Timer tests: sleep, after, tick, Timer and Ticker, and the idle path
//! waking for the earliest timer. They assert progress and ordering, never
//! speed: a lower bound ("it did not fire early") is a correctness property;
//! upper bounds are generous and only catch a timer that never fires.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro_runtime::chan::TryRecvError;
use goro_runtime::sync::WaitGroup;
use goro_runtime::{go, time};

const PROCS: [usize; 3] = [1, 2, 4];

#[test]
fn sleep_waits_at_least_its_duration() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            for millis in [1u64, 5, 20] {
                let start = Instant::now();
                time::sleep(Duration::from_millis(millis));
                assert!(start.elapsed() >= Duration::from_millis(millis));
            }
            // Zero returns at once, and a deadline in the past too.
            time::sleep(Duration::ZERO);
            time::sleep_until(Instant::now() - Duration::from_millis(1));
        });
    }
}

#[test]
fn sleep_outside_a_goroutine_sleeps_the_thread() {
    let start = Instant::now();
    time::sleep(Duration::from_millis(2));
    assert!(start.elapsed() >= Duration::from_millis(2));
}

/// `sleepers` goroutines each sleep 1 ms ten times; all must finish.
fn sleepers_all_finish(procs: usize, sleepers: usize) {
    common::runtime(procs).block_on(move || {
        let done = Arc::new(AtomicUsize::new(0));
        let wg = Arc::new(WaitGroup::new());
        wg.add(sleepers as i64);
        for _ in 0..sleepers {
            let (done, wg) = (done.clone(), wg.clone());
            go(move || {
                for _ in 0..10 {
                    time::sleep(Duration::from_millis(1));
                }
                done.fetch_add(1, Ordering::Relaxed);
                wg.done();
            });
        }
        wg.wait();
        assert_eq!(done.load(Ordering::Relaxed), sleepers);
    });
}

/// Sized to fit the default `vm.max_map_count` (each stack is 2 mappings,
/// and other tests run beside it).
#[test]
fn ten_thousand_sleepers_all_finish() {
    for procs in PROCS {
        sleepers_all_finish(procs, 10_000);
    }
}

/// The figure: 100,000 goroutines each sleep 1 ms ten times, and
/// all finish. Needs `vm.max_map_count` above 200,000: `ci/stress.sh` raises
/// it and runs this.
#[test]
#[ignore = "needs vm.max_map_count > 200000; run by ci/stress.sh"]
fn hundred_thousand_sleepers_all_finish() {
    for procs in PROCS {
        sleepers_all_finish(procs, 100_000);
    }
}

/// Sleepers wake in deadline order (one P: no parallel reordering).
#[test]
fn sleepers_wake_in_deadline_order() {
    common::runtime(1).block_on(|| {
        let (sender, receiver) = goro_runtime::chan::unbounded();
        for millis in [30u64, 10, 20, 0, 40] {
            let sender = sender.clone();
            go(move || {
                time::sleep(Duration::from_millis(millis));
                sender.send(millis).unwrap();
            });
        }
        drop(sender);
        let order: Vec<u64> = receiver.iter().collect();
        assert_eq!(order, vec![0, 10, 20, 30, 40]);
    });
}

/// A goroutine sleeping while every other goroutine is parked forever: the
/// idle M must wake for the timer (no goroutine runs to check it).
#[test]
fn idle_runtime_wakes_for_the_earliest_timer() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let start = Instant::now();
            let sleeper = go(|| time::sleep(Duration::from_millis(30)));
            sleeper.join().unwrap();
            assert!(start.elapsed() >= Duration::from_millis(30));
        });
    }
}

#[test]
fn after_delivers_once_then_closes() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let start = Instant::now();
            let receiver = time::after(Duration::from_millis(10));
            assert_eq!(receiver.try_recv(), Err(TryRecvError::Empty));
            let fired = receiver.recv().expect("after delivers");
            assert!(fired >= start + Duration::from_millis(10));
            assert!(
                receiver.recv().is_err(),
                "after's channel closes after it fires"
            );
        });
    }
}

#[test]
fn timer_stop_prevents_firing_and_reset_rearms() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let timer = time::Timer::new(Duration::from_millis(20));
            assert!(timer.stop(), "stopped before firing");
            assert!(!timer.stop(), "a second stop finds it stopped");
            time::sleep(Duration::from_millis(40));
            assert_eq!(timer.receiver().try_recv(), Err(TryRecvError::Empty));

            let start = Instant::now();
            assert!(!timer.reset(Duration::from_millis(5)), "was not armed");
            timer.receiver().recv().unwrap();
            assert!(start.elapsed() >= Duration::from_millis(5));
            assert!(!timer.stop(), "already fired");

            // Reset while armed pushes the deadline out.
            let start = Instant::now();
            let timer = time::Timer::new(Duration::from_millis(5));
            assert!(timer.reset(Duration::from_millis(30)));
            timer.receiver().recv().unwrap();
            assert!(start.elapsed() >= Duration::from_millis(30));
        });
    }
}

/// A ticker keeps ticking while every P is busy, and its n-th tick never
/// comes before n periods. That lateness does not accumulate into drift (the
/// next tick is due one period after the last *due* time, not after the
/// late fire) is a rule about due times, checked without a clock in
/// `sched::timers`' unit tests: a bound on wall time here would be a speed
/// claim, which a stolen CI machine breaks.
#[test]
fn a_ticker_ticks_under_load_and_never_early() {
    for procs in [1, 2] {
        common::runtime(procs).block_on(|| {
            // Load: goroutines that yield in a loop, keeping every P busy.
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let loaders: Vec<_> = (0..4)
                .map(|_| {
                    let stop = stop.clone();
                    go(move || {
                        let mut spins = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            spins += 1;
                            goro_runtime::yield_now();
                        }
                        spins
                    })
                })
                .collect();
            let period = Duration::from_millis(5);
            let ticker = time::Ticker::new(period);
            let start = Instant::now();
            let mut ticks = Vec::new();
            for _ in 0..20 {
                ticks.push(ticker.receiver().recv().unwrap());
            }
            ticker.stop();
            stop.store(true, Ordering::Relaxed);
            for loader in loaders {
                assert!(loader.join().unwrap() > 0, "the load ran");
            }
            for (index, tick) in ticks.iter().enumerate() {
                assert!(
                    *tick >= start + period * (index as u32 + 1) - Duration::from_micros(100),
                    "tick {index} came early"
                );
            }
        });
    }
}

#[test]
fn ticker_stop_and_reset() {
    common::runtime(2).block_on(|| {
        let ticker = time::Ticker::new(Duration::from_millis(2));
        ticker.receiver().recv().unwrap();
        ticker.stop();
        // Drain a tick that may have been sent before the stop.
        let _ = ticker.receiver().try_recv();
        time::sleep(Duration::from_millis(10));
        assert_eq!(ticker.receiver().try_recv(), Err(TryRecvError::Empty));
        ticker.reset(Duration::from_millis(3));
        let start = Instant::now();
        ticker.receiver().recv().unwrap();
        ticker.receiver().recv().unwrap();
        assert!(start.elapsed() >= Duration::from_millis(6));
    });
}

#[test]
fn tick_stops_when_its_receiver_is_dropped() {
    common::runtime(1).block_on(|| {
        let receiver = time::tick(Duration::from_millis(1));
        for _ in 0..3 {
            receiver.recv().unwrap();
        }
        drop(receiver);
        // The detached ticker notices the closed channel and stops; the
        // runtime then has nothing armed and stays idle. (Progress check:
        // sleeping afterwards still works.)
        time::sleep(Duration::from_millis(5));
    });
}

#[test]
#[should_panic(expected = "needs a goroutine")]
fn after_outside_a_goroutine_panics_clearly() {
    let _ = time::after(Duration::from_millis(1));
}

#[test]
#[should_panic(expected = "zero period")]
fn zero_period_ticker_panics_clearly() {
    common::runtime(1).block_on(|| {
        let _ = time::Ticker::new(Duration::ZERO);
    });
}

/// A timer armed inside `blocking()` once sysmon has taken the call's P
/// away goes to an idle P that no M is coming for (every M is asleep with
/// no deadline, or in the call). sysmon must start one for it.
#[test]
fn a_timer_armed_inside_blocking_after_its_p_was_retaken_fires() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let fired = common::runtime(1).block_on(|| {
            goro_runtime::blocking(|| {
                // Long enough for sysmon to retake the P (10 ms at most).
                std::thread::sleep(Duration::from_millis(50));
                time::after(Duration::from_millis(2)).recv().is_ok()
            })
        });
        let _ = tx.send(fired);
    });
    let fired = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(fired, Ok(true), "the timer never fired");
}

/// The child of `a_timer_armed_before_a_spin_fires_on_the_idle_p`, run with
/// async preemption off: a goroutine arms a timer, then spins without ever
/// scheduling, after the other M went to sleep with no deadline. Prints
/// whether the timer fired within the spin's 3 s bound.
#[test]
fn timer_beside_a_spinner_child() {
    if !common::is_child("timer_beside_a_spinner_child") {
        return;
    }
    let fired = common::runtime(2).block_on(|| {
        // The other M finds nothing and sleeps with no deadline (it may
        // wake with this goroutine's for the sleep, so spin a while too).
        time::sleep(Duration::from_millis(20));
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_millis(30) {
            std::hint::spin_loop();
        }
        let timer = time::Timer::new(Duration::from_millis(1));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if timer.receiver().try_recv().is_ok() {
                return true;
            }
            std::hint::spin_loop();
        }
        false
    });
    println!("fired={fired}");
    println!("CHILD-OK");
}

/// Nothing preempts the spinner, so only another M can run the timer on
/// its P: sysmon starts one for the idle P (Go's sysmon does the same).
#[test]
fn a_timer_armed_before_a_spin_fires_on_the_idle_p() {
    if common::is_child("timer_beside_a_spinner_child") {
        return;
    }
    let output = common::run_child(
        "timer_beside_a_spinner_child",
        &[("GORO_DEBUG", "asyncpreemptoff=1")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("CHILD-OK"),
        "{output:?}"
    );
    assert!(
        stdout.contains("fired=true"),
        "the timer never fired: {stdout}"
    );
}
