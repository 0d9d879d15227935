//! Channel tests. The semantics tests are ported from Go's
//! `src/runtime/chan_test.go` (TestChan, TestNonblockRecvRace,
//! TestMultiConsumer; Copyright The Go Authors, BSD-style licence), rewritten
//! for goro's API: `select { default: }` becomes `try_recv`/`try_send`,
//! `close(c)` becomes `Sender::close`, and `time.Sleep`-based "does it
//! block" checks become "it made no progress while we yielded many times"
//! (goro's timers are a later issue). Each runs at 1, 2 and 4 Ps.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use goro_runtime::chan::{self, RecvError, SendError, TryRecvError, TrySendError};
use goro_runtime::go;

const PROCS: [usize; 3] = [1, 2, 4];

/// Lets other goroutines run for a while (where Go's test sleeps).
fn let_others_run() {
    for _ in 0..1000 {
        goro_runtime::yield_now();
    }
}

#[test]
fn go_test_chan_semantics() {
    for procs in PROCS {
        common::runtime(procs).block_on(move || {
            for capacity in [0usize, 1, 2, 4, 8, 16, 32, 64, 128] {
                chan_semantics(capacity, procs);
            }
        });
    }
}

fn chan_semantics(capacity: usize, procs: usize) {
    let context = format!("cap={capacity} procs={procs}");
    // A receive from an empty channel blocks.
    {
        let (tx, rx) = chan::bounded::<i32>(capacity);
        let received = Arc::new(AtomicBool::new(false));
        let flag = received.clone();
        let receiver = go(move || {
            let value = rx.recv();
            flag.store(true, Ordering::SeqCst);
            value
        });
        let_others_run();
        assert!(
            !received.load(Ordering::SeqCst),
            "{context}: recv from empty chan did not block"
        );
        tx.send(0).unwrap();
        assert_eq!(receiver.join().unwrap(), Ok(0), "{context}");
    }
    // A non-blocking receive does not block.
    {
        let (_tx, rx) = chan::bounded::<i32>(capacity);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "{context}");
    }
    // A send to a full channel blocks.
    {
        let (tx, rx) = chan::bounded::<usize>(capacity);
        for i in 0..capacity {
            tx.send(i).unwrap();
        }
        let sent = Arc::new(AtomicBool::new(false));
        let flag = sent.clone();
        let sender = go(move || {
            tx.send(capacity).unwrap();
            flag.store(true, Ordering::SeqCst);
        });
        let_others_run();
        assert!(
            !sent.load(Ordering::SeqCst),
            "{context}: send to full chan did not block"
        );
        for i in 0..=capacity {
            assert_eq!(rx.recv(), Ok(i), "{context}: FIFO order");
        }
        sender.join().unwrap();
    }
    // A closed, drained channel yields an error, repeatedly.
    {
        let (tx, rx) = chan::bounded::<i32>(capacity);
        tx.close();
        for _ in 0..3 {
            assert_eq!(rx.recv(), Err(RecvError), "{context}");
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed), "{context}");
        }
    }
    // Close unblocks a receive.
    {
        let (tx, rx) = chan::bounded::<i32>(capacity);
        let receiver = go(move || rx.recv());
        let_others_run();
        tx.close();
        assert_eq!(receiver.join().unwrap(), Err(RecvError), "{context}");
    }
    // 100 values arrive uncorrupted and in FIFO order.
    {
        let (tx, rx) = chan::bounded::<i32>(capacity);
        let sender = go(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
            }
        });
        for i in 0..100 {
            assert_eq!(rx.recv(), Ok(i), "{context}");
        }
        sender.join().unwrap();
    }
    // 4 senders and 4 receivers move 1000 values each; every value is
    // received exactly as many times as it was sent.
    {
        const PER: usize = 1000;
        let (tx, rx) = chan::bounded::<usize>(capacity);
        let senders: Vec<_> = (0..4)
            .map(|_| {
                let tx = tx.clone();
                go(move || {
                    for i in 0..PER {
                        tx.send(i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let receivers: Vec<_> = (0..4)
            .map(|_| {
                let rx = rx.clone();
                go(move || {
                    let mut seen = vec![0usize; PER];
                    for value in rx.iter() {
                        seen[value] += 1;
                    }
                    seen
                })
            })
            .collect();
        drop(rx);
        for sender in senders {
            sender.join().unwrap();
        }
        let mut total = vec![0usize; PER];
        for receiver in receivers {
            for (i, count) in receiver.join().unwrap().into_iter().enumerate() {
                total[i] += count;
            }
        }
        assert!(
            total.iter().all(|&count| count == 4),
            "{context}: {total:?}"
        );
    }
    // len and capacity.
    {
        let (tx, _rx) = chan::bounded::<usize>(capacity);
        assert_eq!(tx.capacity(), Some(capacity), "{context}");
        for i in 0..capacity {
            assert_eq!(tx.len(), i, "{context}");
            tx.send(i).unwrap();
        }
        assert_eq!(tx.len(), capacity, "{context}");
    }
}

/// Go's TestNonblockRecvRace: a buffered value must be receivable without
/// blocking even while the channel is being closed.
#[test]
fn go_test_nonblock_recv_race() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            for _ in 0..2000 {
                let (tx, rx) = chan::bounded::<i32>(1);
                tx.send(1).unwrap();
                let checker = go(move || rx.try_recv());
                tx.close();
                assert_eq!(checker.join().unwrap(), Ok(1), "chan is not ready");
            }
        });
    }
}

/// Go's TestMultiConsumer: a producer, several workers forwarding values to
/// a results channel; the sum and count come out right.
#[test]
fn go_test_multi_consumer() {
    const WORKERS: usize = 14;
    const VALUES: u64 = 10_000;
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let (work_tx, work_rx) = chan::bounded::<u64>(WORKERS * 2);
            let (result_tx, result_rx) = chan::bounded::<u64>(WORKERS * 2);
            for _ in 0..WORKERS {
                let work_rx = work_rx.clone();
                let result_tx = result_tx.clone();
                go(move || {
                    for value in work_rx.iter() {
                        // Go's version yields here too (runtime.Gosched).
                        goro_runtime::yield_now();
                        result_tx.send(value).unwrap();
                    }
                });
            }
            drop((work_rx, result_tx));
            let producer = go(move || {
                let mut expected = 0;
                for value in 0..VALUES {
                    expected += value;
                    work_tx.send(value).unwrap();
                }
                expected
            });
            let (mut count, mut sum) = (0u64, 0u64);
            for value in result_rx.iter() {
                count += 1;
                sum += value;
            }
            assert_eq!(count, VALUES);
            assert_eq!(sum, producer.join().unwrap());
        });
    }
}

#[test]
fn a_send_on_a_closed_channel_returns_the_value() {
    common::runtime(1).block_on(|| {
        let (tx, rx) = chan::bounded::<String>(1);
        tx.send("kept".to_string()).unwrap();
        tx.close();
        assert_eq!(
            tx.send("late".to_string()),
            Err(SendError("late".to_string()))
        );
        assert!(matches!(tx.try_send("x".to_string()), Err(TrySendError::Closed(v)) if v == "x"));
        // Buffered values are still received after close.
        assert_eq!(rx.recv().as_deref(), Ok("kept"));
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

#[test]
fn close_wakes_blocked_senders_with_their_values() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            let (tx, rx) = chan::bounded::<usize>(0);
            let senders: Vec<_> = (0..8)
                .map(|i| {
                    let tx = tx.clone();
                    go(move || tx.send(i))
                })
                .collect();
            let_others_run();
            rx.close_via_drop();
            let mut returned: Vec<usize> = senders
                .into_iter()
                .map(|s| match s.join().unwrap() {
                    Err(SendError(value)) => value,
                    Ok(()) => panic!("a send succeeded with no receiver"),
                })
                .collect();
            returned.sort_unstable();
            assert_eq!(returned, (0..8).collect::<Vec<_>>());
        });
    }
}

/// Dropping the receiver is how `close_wakes_blocked_senders…` closes.
trait CloseViaDrop {
    fn close_via_drop(self);
}

impl<T> CloseViaDrop for chan::Receiver<T> {
    fn close_via_drop(self) {
        drop(self);
    }
}

#[test]
fn dropping_every_sender_closes_the_channel() {
    let rt = common::runtime(2);
    let (tx, rx) = chan::unbounded::<u32>();
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let tx = tx.clone();
            rt.spawn(move || {
                for i in 0..250 {
                    tx.send(p * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    // A foreign thread consumes: channels block threads as well as goroutines.
    let total: usize = std::thread::spawn(move || rx.iter().count())
        .join()
        .unwrap();
    for producer in producers {
        producer.join().unwrap();
    }
    assert_eq!(total, 1000);
}

#[test]
fn unbuffered_ping_pong_between_goroutines_and_threads() {
    for procs in PROCS {
        let rt = common::runtime(procs);
        let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
        let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
        let echo = rt.spawn(move || {
            let mut count = 0;
            for value in ping_rx.iter() {
                pong_tx.send(value + 1).unwrap();
                count += 1;
            }
            count
        });
        let rounds = Arc::new(AtomicUsize::new(0));
        let counter = rounds.clone();
        let value = rt.block_on(move || {
            let mut value = 0;
            for _ in 0..10_000 {
                ping_tx.send(value).unwrap();
                value = pong_rx.recv().unwrap();
                counter.fetch_add(1, Ordering::Relaxed);
            }
            value
        });
        assert_eq!(value, 10_000);
        assert_eq!(echo.join().unwrap(), 10_000, "procs={procs}");
        assert_eq!(rounds.load(Ordering::Relaxed), 10_000);
    }
}
