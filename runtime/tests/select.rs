//! `select!` tests. The semantics tests are ported from Go's
//! `src/runtime/chan_test.go` (TestSelfSelect, TestSelectStress,
//! TestSelectFairness, TestSelectDuplicateChannel, TestNonblockSelectRace,
//! TestNonblockSelectRace2; Copyright The Go Authors, BSD-style licence),
//! rewritten for goro's API: Go's nil channel (a case never ready) becomes a
//! channel whose other side is held and never used. Each runs at 1, 2 and 4
//! Ps.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro_runtime::chan::{self, RecvError, RecvTimeoutError, SendError, SendTimeoutError};
use goro_runtime::sync::WaitGroup;
use goro_runtime::{go, select, time};

const PROCS: [usize; 3] = [1, 2, 4];

#[test]
fn ready_case_completes_and_default_runs_when_none_is() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let (tx, rx) = chan::bounded::<u32>(1);
            let got = select! {
                recv(rx) -> v => v.ok(),
                default => None,
            };
            assert_eq!(got, None, "nothing to receive: default");
            let sent = select! {
                send(tx, 5) -> r => r.is_ok(),
                default => false,
            };
            assert!(sent, "room in the buffer: the send case");
            let full = select! {
                send(tx, 6) -> _ => false,
                default => true,
            };
            assert!(full, "buffer full: default");
            let got = select! {
                recv(rx) -> v => v.ok(),
                default => None,
            };
            assert_eq!(got, Some(5));
        });
    }
}

#[test]
fn closed_channels_are_ready() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let (tx, rx) = chan::bounded::<u32>(0);
            tx.close();
            let got = select! { recv(rx) -> v => v };
            assert_eq!(got, Err(RecvError));
            let sent = select! { send(tx, 9) -> r => r };
            assert_eq!(sent, Err(SendError(9)), "the value comes back");
        });
    }
}

/// A select blocked on several channels is woken by whichever is ready, and
/// a blocked send case hands its value over.
#[test]
fn blocked_select_wakes_on_any_case() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            for which in 0..3 {
                let (a_tx, a_rx) = chan::bounded::<u32>(0);
                let (b_tx, b_rx) = chan::bounded::<u32>(0);
                let (c_tx, c_rx) = chan::bounded::<u32>(0);
                let selector = go(move || {
                    select! {
                        recv(a_rx) -> v => (0, v.unwrap()),
                        recv(b_rx) -> v => (1, v.unwrap()),
                        send(c_tx, 77) -> r => { r.unwrap(); (2, 77) },
                    }
                });
                for _ in 0..100 {
                    goro_runtime::yield_now();
                }
                match which {
                    0 => a_tx.send(10).unwrap(),
                    1 => b_tx.send(11).unwrap(),
                    _ => assert_eq!(c_rx.recv().unwrap(), 77),
                }
                let (case, value) = selector.join().unwrap();
                assert_eq!(case, which);
                assert_eq!(value, [10, 11, 77][which]);
                // The other cases' entries are gone: their channels still work.
                drop((a_tx, b_tx, c_rx));
            }
        });
    }
}

/// The fairness figure: three always-ready cases are each chosen
/// 33 % ± 3 % of 30,000 rounds.
#[test]
fn ready_cases_are_chosen_uniformly() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let (tx_a, rx_a) = chan::bounded::<u8>(0);
            let (tx_b, rx_b) = chan::bounded::<u8>(0);
            let (tx_c, rx_c) = chan::bounded::<u8>(0);
            // Closed channels are always ready.
            tx_a.close();
            tx_b.close();
            tx_c.close();
            let mut counts = [0usize; 3];
            const ROUNDS: usize = 30_000;
            for _ in 0..ROUNDS {
                let case = select! {
                    recv(rx_a) -> _ => 0,
                    recv(rx_b) -> _ => 1,
                    recv(rx_c) -> _ => 2,
                };
                counts[case] += 1;
            }
            for count in counts {
                let share = count as f64 / ROUNDS as f64;
                assert!(
                    (share - 1.0 / 3.0).abs() <= 0.03,
                    "shares {counts:?} not within 33 % ± 3 %"
                );
            }
        });
    }
}

/// Go's TestSelectFairness: with two channels always holding a value, and a
/// third that never does, both ready ones are picked about equally.
#[test]
fn go_test_select_fairness() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            const TRIALS: usize = 10_000;
            let (c1_tx, c1_rx) = chan::bounded::<u8>(TRIALS + 1);
            let (c2_tx, c2_rx) = chan::bounded::<u8>(TRIALS + 1);
            for _ in 0..TRIALS + 1 {
                c1_tx.send(1).unwrap();
                c2_tx.send(2).unwrap();
            }
            let (_c3_tx, c3_rx) = chan::bounded::<u8>(0);
            let (_c4_tx, c4_rx) = chan::bounded::<u8>(0);
            let mut counts = [0usize; 2];
            for _ in 0..TRIALS {
                let got = select! {
                    recv(c1_rx) -> v => v.unwrap(),
                    recv(c2_rx) -> v => v.unwrap(),
                    recv(c3_rx) -> _ => unreachable!(),
                    recv(c4_rx) -> _ => unreachable!(),
                };
                counts[got as usize - 1] += 1;
            }
            // Go's bound: |n1 - TRIALS/2| within 5 standard deviations.
            let deviation = (counts[0] as f64 - TRIALS as f64 / 2.0).abs();
            assert!(deviation < 5.0 * (TRIALS as f64 / 4.0).sqrt(), "{counts:?}");
        });
    }
}

/// Go's TestSelfSelect: two goroutines each select both sending and
/// receiving on one channel; on an unbuffered channel a goroutine never
/// receives its own value.
#[test]
fn go_test_self_select() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            for capacity in [0usize, 10] {
                let (tx, rx) = chan::bounded::<usize>(capacity);
                let wg = Arc::new(WaitGroup::new());
                wg.add(2);
                for p in 0..2usize {
                    let (tx, rx, wg) = (tx.clone(), rx.clone(), wg.clone());
                    go(move || {
                        for i in 0..1000 {
                            if p == 0 || i % 2 == 0 {
                                select! {
                                    send(tx, p) -> r => r.unwrap(),
                                    recv(rx) -> v => {
                                        let v = v.unwrap();
                                        assert!(!(capacity == 0 && v == p), "self receive");
                                    }
                                }
                            } else {
                                select! {
                                    recv(rx) -> v => {
                                        let v = v.unwrap();
                                        assert!(!(capacity == 0 && v == p), "self receive");
                                    }
                                    send(tx, p) -> r => r.unwrap(),
                                }
                            }
                        }
                        wg.done();
                    });
                }
                wg.wait();
            }
        });
    }
}

/// Go's TestSelectStress: four unbuffered channels; plain senders and
/// receivers (n values each on their own channel) run beside a goroutine
/// that sends n values to each by select and one that receives n from each
/// by select. Every value arrives exactly once.
#[test]
fn go_test_select_stress() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| select_stress(2_000));
    }
}

#[test]
#[ignore = "long; run by ci/stress.sh"]
fn go_test_select_stress_long() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| select_stress(100_000));
    }
}

fn select_stress(n: u64) {
    let channels: Vec<_> = (0..4).map(|_| chan::bounded::<u64>(0)).collect();
    let senders: Vec<_> = channels.iter().map(|(tx, _)| tx.clone()).collect();
    let receivers: Vec<_> = channels.iter().map(|(_, rx)| rx.clone()).collect();
    drop(channels);
    let total = Arc::new(AtomicUsize::new(0));
    let sum = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    // Plain senders: n values each on their own channel.
    for tx in &senders {
        let tx = tx.clone();
        handles.push(go(move || {
            for i in 0..n {
                tx.send(i).unwrap();
            }
        }));
    }
    // A select sender: n values to each of the four, by select. A channel
    // that has had its n is replaced by one never ready (Go's nil channel).
    {
        let s = senders.clone();
        handles.push(go(move || {
            let (never, _never_rx) = chan::bounded::<u64>(0);
            let mut counts = [0u64; 4];
            let mut targets: [&chan::Sender<u64>; 4] = [&s[0], &s[1], &s[2], &s[3]];
            for i in 0..4 * n {
                let k = select! {
                    send(targets[0], i) -> r => { r.unwrap(); 0 },
                    send(targets[1], i) -> r => { r.unwrap(); 1 },
                    send(targets[2], i) -> r => { r.unwrap(); 2 },
                    send(targets[3], i) -> r => { r.unwrap(); 3 },
                };
                counts[k] += 1;
                if counts[k] == n {
                    targets[k] = &never;
                }
            }
        }));
    }
    // Plain receivers: n values each from their own channel.
    for rx in &receivers {
        let (rx, total, sum) = (rx.clone(), total.clone(), sum.clone());
        handles.push(go(move || {
            for _ in 0..n {
                let v = rx.recv().unwrap();
                total.fetch_add(1, Ordering::Relaxed);
                sum.fetch_add(v as usize, Ordering::Relaxed);
            }
        }));
    }
    // A select receiver: n values from each of the four, by select.
    {
        let r = receivers.clone();
        let (total, sum) = (total.clone(), sum.clone());
        handles.push(go(move || {
            let (_never_tx, never) = chan::bounded::<u64>(0);
            let mut counts = [0u64; 4];
            let mut sources: [&chan::Receiver<u64>; 4] = [&r[0], &r[1], &r[2], &r[3]];
            for _ in 0..4 * n {
                let (k, v) = select! {
                    recv(sources[0]) -> v => (0, v.unwrap()),
                    recv(sources[1]) -> v => (1, v.unwrap()),
                    recv(sources[2]) -> v => (2, v.unwrap()),
                    recv(sources[3]) -> v => (3, v.unwrap()),
                };
                counts[k] += 1;
                if counts[k] == n {
                    sources[k] = &never;
                }
                total.fetch_add(1, Ordering::Relaxed);
                sum.fetch_add(v as usize, Ordering::Relaxed);
            }
        }));
    }
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(total.load(Ordering::Relaxed) as u64, 8 * n);
    let expected = 4 * (n * (n - 1) / 2) + (4 * n) * (4 * n - 1) / 2;
    assert_eq!(sum.load(Ordering::Relaxed) as u64, expected);
}

/// Go's TestSelectDuplicateChannel: a select naming one channel twice.
#[test]
fn go_test_select_duplicate_channel() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let (c_tx, c_rx) = chan::bounded::<u32>(0);
            let (d_tx, d_rx) = chan::bounded::<u32>(0);
            let (e_tx, e_rx) = chan::bounded::<u32>(0);
            let first = go(move || {
                select! {
                    recv(c_rx) -> v => v.unwrap(),
                    recv(c_rx) -> v => v.unwrap(),
                    recv(d_rx) -> v => v.unwrap(),
                }
            });
            let second = go(move || {
                let _ = e_rx.recv();
            });
            for _ in 0..100 {
                goro_runtime::yield_now();
            }
            drop(e_tx);
            second.join().unwrap();
            c_tx.send(8).unwrap();
            assert_eq!(first.join().unwrap(), 8);
            drop(d_tx);
        });
    }
}

/// Go's TestNonblockSelectRace: when one of two buffered channels holds a
/// value, a non-blocking select over both must not take `default`.
#[test]
fn go_test_nonblock_select_race() {
    nonblock_select_race(1, |c2| c2.send(1).unwrap());
}

/// Go's TestNonblockSelectRace2: the same, with the second channel closed.
#[test]
fn go_test_nonblock_select_race2() {
    nonblock_select_race(0, |c2| c2.close());
}

/// Both races: `c1` holds a value; a goroutine selects over `c1` and `c2`
/// with a default while the main goroutine makes `c2` ready and then takes
/// `c1`'s value if it is still there. One of the two is always ready.
fn nonblock_select_race(c2_capacity: usize, make_ready: fn(&chan::Sender<u32>)) {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            let (done_tx, done_rx) = chan::bounded::<bool>(1);
            for _ in 0..1000 {
                let (c1_tx, c1_rx) = chan::bounded::<u32>(1);
                let (c2_tx, c2_rx) = chan::bounded::<u32>(c2_capacity);
                c1_tx.send(1).unwrap();
                let done = done_tx.clone();
                let (r1, r2) = (c1_rx.clone(), c2_rx.clone());
                go(move || {
                    let got = select! {
                        recv(r1) -> _ => true,
                        recv(r2) -> _ => true,
                        default => false,
                    };
                    done.send(got).unwrap();
                });
                make_ready(&c2_tx);
                select! {
                    recv(c1_rx) -> _ => {},
                    default => {},
                }
                assert!(done_rx.recv().unwrap(), "no chan is ready");
            }
        });
    }
}

/// A goroutine blocked in select parks once: no helper goroutine per case.
#[test]
fn blocked_select_is_one_parked_goroutine() {
    common::runtime(2).block_on(|| {
        let before = goro_runtime::runtime::num_goroutines();
        let (a_tx, a_rx) = chan::bounded::<u32>(0);
        let (b_tx, b_rx) = chan::bounded::<u32>(0);
        let (c_tx, c_rx) = chan::bounded::<u32>(0);
        let selector = go(move || {
            select! {
                recv(a_rx) -> v => v.unwrap(),
                recv(b_rx) -> v => v.unwrap(),
                recv(c_rx) -> v => v.unwrap(),
            }
        });
        for _ in 0..100 {
            goro_runtime::yield_now();
        }
        assert_eq!(goro_runtime::runtime::num_goroutines(), before + 1);
        b_tx.send(3).unwrap();
        assert_eq!(selector.join().unwrap(), 3);
        drop((a_tx, c_tx));
    });
}

#[test]
fn default_with_duration_times_out() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let (_tx, rx) = chan::bounded::<u32>(0);
            let start = Instant::now();
            let got = select! {
                recv(rx) -> v => v.ok(),
                default(Duration::from_millis(20)) => None,
            };
            assert_eq!(got, None);
            assert!(start.elapsed() >= Duration::from_millis(20));
            // A value arriving before the deadline wins.
            let (tx, rx) = chan::bounded::<u32>(0);
            go(move || {
                time::sleep(Duration::from_millis(2));
                tx.send(4).unwrap();
            });
            let got = select! {
                recv(rx) -> v => v.ok(),
                default(Duration::from_secs(30)) => None,
            };
            assert_eq!(got, Some(4));
        });
    }
}

/// The "`after` in a select times out correctly".
#[test]
fn after_in_select_times_out() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let (_tx, rx) = chan::bounded::<u32>(0);
            let start = Instant::now();
            let timeout = time::after(Duration::from_millis(15));
            let timed_out = select! {
                recv(rx) -> _ => false,
                recv(timeout) -> fired => { fired.unwrap(); true },
            };
            assert!(timed_out);
            assert!(start.elapsed() >= Duration::from_millis(15));
            // And a ready case beats a later `after`.
            let (tx, rx) = chan::bounded::<u32>(1);
            tx.send(1).unwrap();
            let timeout = time::after(Duration::from_secs(30));
            let got = select! {
                recv(rx) -> v => v.ok(),
                recv(timeout) -> _ => None,
            };
            assert_eq!(got, Some(1));
        });
    }
}

#[test]
fn recv_and_send_timeouts() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let (tx, rx) = chan::bounded::<u32>(1);
            assert_eq!(
                rx.recv_timeout(Duration::from_millis(5)),
                Err(RecvTimeoutError::Timeout)
            );
            tx.send_timeout(1, Duration::from_millis(5)).unwrap();
            assert_eq!(
                tx.send_timeout(2, Duration::from_millis(5)),
                Err(SendTimeoutError::Timeout(2))
            );
            assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Ok(1));
            // Woken before the deadline by a sender.
            let tx2 = tx.clone();
            go(move || {
                time::sleep(Duration::from_millis(2));
                tx2.send(3).unwrap();
            });
            assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(3));
            tx.close();
            assert_eq!(
                rx.recv_timeout(Duration::from_millis(5)),
                Err(RecvTimeoutError::Closed)
            );
            assert_eq!(
                tx.send_timeout(4, Duration::from_millis(5)),
                Err(SendTimeoutError::Closed(4))
            );
        });
    }
}

/// Many goroutines in timed receives on one channel while values trickle in:
/// every value is received exactly once, by a receive that did not time out.
#[test]
fn timeouts_race_with_deliveries() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let (tx, rx) = chan::bounded::<u32>(0);
            let received = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let receivers: Vec<_> = (0..8)
                .map(|_| {
                    let (rx, received, stop) = (rx.clone(), received.clone(), stop.clone());
                    go(move || {
                        while !stop.load(Ordering::Relaxed) {
                            match rx.recv_timeout(Duration::from_micros(50)) {
                                Ok(_) => {
                                    received.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(RecvTimeoutError::Timeout) => {}
                                Err(RecvTimeoutError::Closed) => break,
                            }
                        }
                    })
                })
                .collect();
            for i in 0..2_000 {
                tx.send(i).unwrap();
            }
            stop.store(true, Ordering::Relaxed);
            drop(tx);
            for receiver in receivers {
                receiver.join().unwrap();
            }
            assert_eq!(received.load(Ordering::Relaxed), 2_000);
        });
    }
}

/// Foreign threads select and time out too (they block instead of parking).
#[test]
fn select_and_timeouts_from_a_foreign_thread() {
    let (tx, rx) = chan::bounded::<u32>(0);
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    );
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        tx.send(6).unwrap();
    });
    let got = select! {
        recv(rx) -> v => v.ok(),
        default(Duration::from_secs(30)) => None,
    };
    assert_eq!(got, Some(6));
    sender.join().unwrap();
    // And a foreign thread's select with a goroutine peer.
    let runtime = common::runtime(2);
    let (tx, rx) = chan::bounded::<u32>(0);
    runtime.spawn(move || tx.send(7).unwrap());
    let got = select! { recv(rx) -> v => v.unwrap() };
    assert_eq!(got, 7);
}

/// A select's deadline is armed while the select still holds its channels'
/// locks. Arming once purged the P's timer heap of stopped timers right
/// there, and a purged entry can hold the last sender of a channel the
/// select has locked (a `Timer` dropped while a clone of its receiver
/// lives), so closing it re-took a lock its own M held: the M spun for good.
/// Now purging runs only where no lock is held.
#[test]
fn a_select_deadline_armed_among_stopped_timers_does_not_hang() {
    let (finished_tx, finished_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = common::runtime(1).block_on(|| {
            let timer = time::Timer::new(Duration::from_secs(3600));
            let receiver = timer.receiver().clone();
            drop(timer);
            // 64 entries, all dead: the next arming finds the heap ripe
            // for a purge.
            for _ in 0..63 {
                drop(time::Timer::new(Duration::from_secs(3600)));
            }
            let first = receiver.recv_timeout(Duration::from_millis(10));
            // The purge after that select dropped the timer's last sender.
            let second = receiver.recv_timeout(Duration::from_secs(10));
            (first, second)
        });
        let _ = finished_tx.send(outcome);
    });
    let (first, second) = finished_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a select arming its deadline among stopped timers hung");
    assert!(
        matches!(
            first,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Closed)
        ),
        "{first:?}"
    );
    assert_eq!(second, Err(RecvTimeoutError::Closed));
}

/// `select! {}` blocks forever, on a plain thread too (it used to panic
/// there: "park() called outside a goroutine"). The thread is left blocked;
/// the test process exits past it.
#[test]
fn an_empty_select_blocks_a_plain_thread() {
    let (ended_tx, ended_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(|| -> () {
            select! {}
        });
        let _ = ended_tx.send(outcome.is_err());
    });
    // Long enough for a panic's backtrace to be printed first.
    match ended_rx.recv_timeout(Duration::from_secs(2)) {
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        Ok(panicked) => panic!("select! {{}} ended on a plain thread (panicked: {panicked})"),
        Err(error) => panic!("{error}"),
    }
}
