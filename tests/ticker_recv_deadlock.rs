//! Regression test for a runtime bug found while building examples/kv,
//! fixed by not running timers on the switch path of a park
//! (`schedule::next_local`'s `run_timers`).
//!
//! Before the fix, a goroutine that receives from a `Ticker`'s channel (in `select!`, or a
//! plain `recv`) holds that channel's spin lock across its park until
//! `finish_switch`. Before switching, `park` → `next_local` runs the P's due
//! timers (`timers::run_own`, every 8 schedule ticks). If the ticker itself
//! is due at that moment, `SendTime::fire` → `try_send` spins on the very
//! lock its own M holds: the M livelocks in `RawSpinLock::lock_contended`
//! (`sched_yield` forever), and every goroutine that touches the channel
//! (here, the sender) spins behind it. Seen in gdb on kv's owner goroutines:
//! `select::run → park → next_local → Timers::run_due → SendTime::fire →
//! Channel::try_send → lock_contended`. Any timer action that needs a lock
//! the parking goroutine still holds has the same shape.

use std::sync::mpsc;
use std::time::Duration;

#[test]
fn select_on_a_ticker_while_parking_often_does_not_deadlock() {
    let (finished_tx, finished_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = goro::Runtime::builder().procs(2).build().unwrap();
        runtime.block_on(|| {
            let (tx, rx) = goro::chan::bounded::<u64>(0);
            let receiver = goro::go(move || {
                let ticker = goro::time::Ticker::new(Duration::from_micros(200));
                let (mut got, mut ticks) = (0u64, 0u64);
                while got < 300_000 {
                    goro::select! {
                        recv(rx) -> value => { value.unwrap(); got += 1; }
                        recv(ticker.receiver()) -> _ => ticks += 1,
                    }
                }
                ticks
            });
            for i in 0..300_000 {
                tx.send(i).unwrap();
            }
            receiver.join().unwrap()
        });
        let _ = finished_tx.send(());
    });
    // Usually hangs within a second or two; 60 s leaves room for a loaded
    // machine.
    finished_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("select! on a Ticker deadlocked: the runtime's Ms spin on the ticker channel lock");
}
