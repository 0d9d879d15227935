//! Channels whose lock is biased to one thread, then used from others:
//! the revocation races an owner in mid-operation (`util/biased_lock.rs`).
//! The integration tests (`tests/chan.rs`, `tests/select.rs`) cover the
//! semantics; these make sure the biased path is the one under test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{bounded, unbounded, Receiver, RecvTimeoutError};
use crate::Runtime;

/// One P: every goroutine runs on one thread, so channels bias to it.
fn runtime() -> Runtime {
    assert!(
        crate::sys::thread::membarrier_ready(),
        "these tests need membarrier"
    );
    Runtime::builder().procs(1).build().expect("runtime")
}

/// Takes the channel's lock 200 times on this thread (empty `try_recv`s),
/// enough to bias it to this thread, and checks that it did.
fn bias<T: Send>(rx: &Receiver<T>) {
    for _ in 0..200 {
        assert!(rx.try_recv().is_err());
    }
    assert!(rx.channel.state.raw().is_biased(), "the lock did not bias");
}

#[test]
fn a_foreign_receiver_revokes_while_the_owner_sends() {
    let rt = runtime();
    for capacity in [None, Some(0), Some(1), Some(16)] {
        // Every value may wait for a futex wake across threads; on a loaded
        // 2-vCPU CI machine this test took 60–220 s at 10 rounds of 5,000.
        for _ in 0..4 {
            rt.block_on(move || {
                let (tx, rx) = match capacity {
                    Some(capacity) => bounded::<u64>(capacity),
                    None => unbounded::<u64>(),
                };
                bias(&rx);
                // A foreign thread's wake costs tens of µs: fewer values
                // where nearly every one waits.
                let n: u64 = if capacity.is_some_and(|c| c < 2) {
                    300
                } else {
                    2_000
                };
                let consumer = std::thread::spawn(move || {
                    let mut next = 0;
                    for value in rx.iter() {
                        assert_eq!(value, next, "out of order, cap={capacity:?}");
                        next += 1;
                    }
                    next
                });
                for value in 0..n {
                    tx.send(value).unwrap();
                }
                let channel = tx.channel.clone();
                drop(tx);
                assert_eq!(consumer.join().unwrap(), n);
                assert!(!channel.state.raw().is_biased(), "never revoked");
            });
        }
    }
}

#[test]
fn a_foreign_close_races_biased_sends() {
    let rt = runtime();
    for round in 0..50u64 {
        rt.block_on(move || {
            let (tx, rx) = bounded::<u64>(8);
            bias(&rx);
            let closer_tx = tx.clone();
            let closer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_micros(50 * (round % 10)));
                closer_tx.close();
            });
            let consumer = crate::go(move || {
                let mut next = 0u64;
                for value in rx.iter() {
                    assert_eq!(value, next);
                    next += 1;
                }
                next
            });
            let mut sent = 0u64;
            loop {
                match tx.send(sent) {
                    Ok(()) => sent += 1,
                    Err(error) => {
                        assert_eq!(error.0, sent, "the refused value comes back");
                        break;
                    }
                }
            }
            closer.join().unwrap();
            assert_eq!(
                consumer.join().unwrap(),
                sent,
                "every accepted value arrives"
            );
        });
    }
}

#[test]
fn a_foreign_select_on_a_biased_channel() {
    let rt = runtime();
    for _ in 0..5 {
        rt.block_on(|| {
            let (tx, rx) = bounded::<u64>(4);
            let (done_tx, done_rx) = bounded::<()>(0);
            bias(&rx);
            bias(&done_rx);
            let stop = Arc::new(AtomicBool::new(false));
            let seen = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut next = 0u64;
                    loop {
                        crate::select! {
                            recv(rx) -> value => {
                                assert_eq!(value.unwrap(), next);
                                next += 1;
                            },
                            recv(done_rx) -> _ => break,
                            default(Duration::from_millis(1)) => {
                                if stop.load(Ordering::Relaxed) {
                                    break;
                                }
                            },
                        }
                    }
                    while let Ok(value) = rx.try_recv() {
                        assert_eq!(value, next);
                        next += 1;
                    }
                    next
                })
            };
            for value in 0..1_000 {
                tx.send(value).unwrap();
            }
            let _ = done_tx.send_timeout((), Duration::from_millis(10));
            stop.store(true, Ordering::Relaxed);
            assert_eq!(seen.join().unwrap(), 1_000);
        });
    }
}

#[test]
fn recv_timeout_from_a_thread_after_the_bias() {
    let rt = runtime();
    rt.block_on(|| {
        let (tx, rx) = bounded::<u8>(1);
        let (timed_out_tx, timed_out_rx) = bounded::<()>(1);
        bias(&rx);
        let thread = std::thread::spawn(move || {
            assert_eq!(
                rx.recv_timeout(Duration::from_millis(5)),
                Err(RecvTimeoutError::Timeout)
            );
            timed_out_tx.send(()).unwrap();
            rx.recv_timeout(Duration::from_secs(10))
        });
        // Send only after the first wait has timed out: ordered by a
        // channel, not by a sleep (a thread started late on a loaded CI
        // machine once saw the value in its first wait).
        timed_out_rx.recv().unwrap();
        tx.send(7).unwrap();
        assert_eq!(thread.join().unwrap(), Ok(7));
    });
}
