//! Go's channel test programs (`test/chan/`: sieve1.go, fifo.go,
//! doubleselect.go) and `TestPseudoRandomSend` from
//! `src/runtime/chan_test.go` (Copyright The Go Authors, BSD-style licence),
//! rewritten for goro. Each runs at 1, 2 and 4 Ps; the long variants are
//! `#[ignore]`d and run by `ci/stress.sh`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use goro_runtime::chan::{self, Receiver, Sender};
use goro_runtime::sync::WaitGroup;
use goro_runtime::{go, select};

const PROCS: [usize; 3] = [1, 2, 4];

/// sieve1.go: a chain of filter goroutines, one per prime found.
fn sieve(primes: usize) -> Vec<u64> {
    let (tx, mut rx) = chan::bounded::<u64>(0);
    go(move || {
        let mut i = 2;
        while tx.send(i).is_ok() {
            i += 1;
        }
    });
    let mut found = Vec::new();
    for _ in 0..primes {
        let prime = rx.recv().unwrap();
        found.push(prime);
        let (filtered_tx, filtered_rx) = chan::bounded::<u64>(0);
        let input = rx;
        go(move || {
            for value in input.iter() {
                if !value.is_multiple_of(prime) && filtered_tx.send(value).is_err() {
                    return;
                }
            }
        });
        rx = filtered_rx;
    }
    // Dropping the last receiver closes the chain from the end back.
    drop(rx);
    found
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

#[test]
fn go_sieve() {
    for procs in PROCS {
        let found = common::runtime(procs).block_on(|| sieve(100));
        assert_eq!(found.len(), 100);
        assert!(found.iter().all(|&p| is_prime(p)), "{found:?}");
        assert_eq!(found[99], 541, "the 100th prime");
    }
}

#[test]
#[ignore = "long; run by ci/stress.sh"]
fn go_sieve_long() {
    for procs in PROCS {
        let found = common::runtime(procs).block_on(|| sieve(1_000));
        assert_eq!(found[999], 7_919, "the 1000th prime");
    }
}

/// fifo.go: values sent by a chain of goroutines, each waiting for its
/// predecessor's signal, arrive in order.
#[test]
fn go_fifo() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            const N: usize = 10;
            // Asynchronous: one buffered channel, in order.
            let (tx, rx) = chan::bounded::<usize>(N);
            for i in 0..N {
                tx.send(i).unwrap();
            }
            for i in 0..N {
                assert_eq!(rx.recv().unwrap(), i);
            }
            // Synchronous: goroutine i waits for i-1's token, then sends i.
            let (ch_tx, ch_rx) = chan::bounded::<usize>(0);
            let (start, mut in_rx): (Sender<()>, Receiver<()>) = chan::bounded(0);
            for i in 0..N {
                let (out_tx, out_rx) = chan::bounded::<()>(0);
                let (ch_tx, this_in) = (ch_tx.clone(), in_rx);
                go(move || {
                    this_in.recv().unwrap();
                    ch_tx.send(i).unwrap();
                    out_tx.send(()).unwrap();
                });
                in_rx = out_rx;
            }
            start.send(()).unwrap();
            for i in 0..N {
                assert_eq!(ch_rx.recv().unwrap(), i, "out of order");
            }
            in_rx.recv().unwrap();
        });
    }
}

/// doubleselect.go: a sender selects over four channels; many receivers,
/// reading from both single channels and a select over them, and a
/// goroutine racing to mix things up. Each value must arrive exactly once.
fn double_select(iterations: u32) {
    let channels: Vec<_> = (0..4).map(|_| chan::bounded::<u32>(0)).collect();
    let senders: Vec<_> = channels.iter().map(|(tx, _)| tx.clone()).collect();
    let receivers: Vec<_> = channels.iter().map(|(_, rx)| rx.clone()).collect();
    drop(channels);
    let (mux_tx, mux_rx) = chan::bounded::<u32>(0);
    let sender = go(move || {
        for i in 1..=iterations {
            select! {
                send(senders[0], i) -> r => r.unwrap(),
                send(senders[1], i) -> r => r.unwrap(),
                send(senders[2], i) -> r => r.unwrap(),
                send(senders[3], i) -> r => r.unwrap(),
            }
        }
        // Dropping the senders closes the four channels.
    });
    let wg = Arc::new(WaitGroup::new());
    // Muxers: forward from one channel until it closes.
    for rx in &receivers {
        for _ in 0..2 {
            let (rx, mux_tx, wg) = (rx.clone(), mux_tx.clone(), wg.clone());
            wg.add(1);
            go(move || {
                for value in rx.iter() {
                    mux_tx.send(value).unwrap();
                }
                wg.done();
            });
        }
    }
    // Recvers by select over all four.
    for _ in 0..2 {
        let (r, mux_tx, wg) = (receivers.clone(), mux_tx.clone(), wg.clone());
        wg.add(1);
        go(move || {
            let mut closed = [false; 4];
            while closed.iter().any(|c| !c) {
                let (k, value) = select! {
                    recv(r[0]) -> v => (0, v),
                    recv(r[1]) -> v => (1, v),
                    recv(r[2]) -> v => (2, v),
                    recv(r[3]) -> v => (3, v),
                };
                match value {
                    Ok(value) => mux_tx.send(value).unwrap(),
                    Err(_) => closed[k] = true,
                }
            }
            wg.done();
        });
    }
    drop(receivers);
    // Closer: once every forwarder is done, close the mux.
    {
        let wg = wg.clone();
        go(move || {
            wg.wait();
            drop(mux_tx);
        });
    }
    let seen = Arc::new(Mutex::new(vec![false; iterations as usize + 1]));
    let duplicate = Arc::new(AtomicBool::new(false));
    for value in mux_rx.iter() {
        let mut seen = seen.lock().unwrap();
        if std::mem::replace(&mut seen[value as usize], true) {
            duplicate.store(true, Ordering::Relaxed);
        }
    }
    sender.join().unwrap();
    assert!(!duplicate.load(Ordering::Relaxed), "a value arrived twice");
    let seen = seen.lock().unwrap();
    assert!(seen[1..].iter().all(|&s| s), "a value was lost");
}

#[test]
fn go_double_select() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| double_select(10_000));
    }
}

#[test]
#[ignore = "long; run by ci/stress.sh"]
fn go_double_select_long() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| double_select(1_000_000));
    }
}

/// Go's TestPseudoRandomSend: a select with two send cases on one channel
/// picks each often.
#[test]
fn go_test_pseudo_random_send() {
    for procs in PROCS {
        common::runtime(procs).block_on(|| {
            const N: usize = 100;
            for capacity in [0, N] {
                let (tx, rx) = chan::bounded::<u8>(capacity);
                let receiver = go(move || {
                    let mut counts = [0usize; 2];
                    for _ in 0..N {
                        counts[rx.recv().unwrap() as usize] += 1;
                    }
                    counts
                });
                for _ in 0..N {
                    select! {
                        send(tx, 1) -> r => r.unwrap(),
                        send(tx, 0) -> r => r.unwrap(),
                    }
                }
                let counts = receiver.join().unwrap();
                assert!(
                    counts[0] > N / 10 && counts[1] > N / 10,
                    "want pseudorandom, got {counts:?}"
                );
            }
        });
    }
}
