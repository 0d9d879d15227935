//! Backend tests against the real kernel: both backends, same assertions.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use std::sync::Arc;

/// The tests count this process's fds: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn start(kind: BackendKind) -> Option<(Poller, mpsc::Receiver<Event>)> {
    let (tx, rx) = mpsc::channel();
    let handler: Handler = Box::new(move |events: &[Event]| {
        for event in events {
            let _ = tx.send(*event);
        }
    });
    match Poller::start(Some(kind), handler) {
        Ok(poller) => Some((poller, rx)),
        Err(error) if kind == BackendKind::Uring => {
            println!("skipping io_uring: {error}");
            None
        }
        Err(error) => panic!("epoll must work: {error}"),
    }
}

/// The next event `want` accepts, within 5 s: readiness reaped on this
/// thread when the backend is direct (epoll), else from the handler, which
/// also delivers timers and releases for both.
fn wait_for(poller: &Poller, rx: &mpsc::Receiver<Event>, want: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut reaped = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no matching event within 5 s");
        if poller.is_direct() {
            poller
                .poll(Some(Duration::from_millis(1)), &mut reaped)
                .unwrap();
            if let Some(event) = reaped.drain(..).find(|event| want(event)) {
                return event;
            }
        }
        let wait = if poller.is_direct() {
            Duration::ZERO
        } else {
            Duration::from_millis(10)
        };
        if let Ok(event) = rx.recv_timeout(wait) {
            if want(&event) {
                return event;
            }
        }
    }
}

fn readiness_edges_timers_and_release(kind: BackendKind) {
    let Some((poller, rx)) = start(kind) else {
        return;
    };
    assert_eq!(poller.kind(), kind);
    assert_eq!(poller.is_direct(), kind == BackendKind::Epoll);
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let token = Token {
        index: 7,
        generation: 3,
    };
    poller.register(a.as_raw_fd(), token).unwrap();
    // Writable at once (buffer space is present when registering).
    wait_for(
        &poller,
        &rx,
        |e| matches!(e, Event::Io { token: t, writable: true, .. } if *t == token),
    );
    b.write_all(b"x").unwrap();
    wait_for(
        &poller,
        &rx,
        |e| matches!(e, Event::Io { token: t, readable: true, .. } if *t == token),
    );
    // A timer fires; a cancelled one does not.
    let timer = Token {
        index: 1,
        generation: 1,
    };
    let cancelled = Token {
        index: 2,
        generation: 1,
    };
    poller.set_timer(cancelled, Instant::now() + Duration::from_millis(20));
    poller.cancel_timer(cancelled);
    let start = Instant::now();
    poller.set_timer(timer, Instant::now() + Duration::from_millis(30));
    let fired = wait_for(&poller, &rx, |e| matches!(e, Event::Timer { .. }));
    assert_eq!(fired, Event::Timer { token: timer });
    assert!(start.elapsed() >= Duration::from_millis(30));
    if poller.deregister(a.as_raw_fd(), token) {
        // epoll: released at once.
    } else {
        wait_for(&poller, &rx, |e| *e == Event::Released { token });
    }
    drop(a);
    poller.shutdown();
}

#[test]
fn epoll_backend_reports_edges_timers_and_releases() {
    let _serial = serial();
    readiness_edges_timers_and_release(BackendKind::Epoll);
}

#[test]
fn uring_backend_reports_edges_timers_and_releases() {
    let _serial = serial();
    readiness_edges_timers_and_release(BackendKind::Uring);
}

#[test]
fn shutdown_joins_the_thread_and_closes_every_fd() {
    let _serial = serial();
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    for kind in [BackendKind::Epoll, BackendKind::Uring] {
        let before = fds();
        if let Some((poller, _rx)) = start(kind) {
            let (a, _b) = UnixStream::pair().unwrap();
            poller
                .register(
                    a.as_raw_fd(),
                    Token {
                        index: 1,
                        generation: 1,
                    },
                )
                .unwrap();
            std::thread::sleep(Duration::from_millis(10));
            poller.shutdown();
            drop(poller);
            drop(a);
            drop(_b);
            assert_eq!(fds(), before, "{kind:?} leaked an fd");
        }
    }
}

#[test]
fn goro_netpoll_is_parsed_with_a_clear_error() {
    assert_eq!(BackendKind::parse("uring").unwrap(), BackendKind::Uring);
    assert_eq!(BackendKind::parse(" epoll ").unwrap(), BackendKind::Epoll);
    let error = BackendKind::parse("kqueue").unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("GORO_NETPOLL"), "{error}");
}

#[test]
fn interrupt_releases_a_blocked_direct_poll_and_is_not_lost_before_it() {
    let _serial = serial();
    let (poller, _rx) = start(BackendKind::Epoll).unwrap();
    let poller = Arc::new(poller);
    // Rung before anyone blocks: the next blocking poll returns at once.
    poller.interrupt();
    let mut events = Vec::new();
    // A non-blocking poll sees the doorbell but leaves it ringing.
    poller.poll(Some(Duration::ZERO), &mut events).unwrap();
    poller.poll(None, &mut events).unwrap();
    assert!(events.is_empty());
    // Rung while another thread blocks.
    let blocked = {
        let poller = poller.clone();
        std::thread::spawn(move || {
            let mut events = Vec::new();
            poller.poll(None, &mut events).unwrap();
            events.len()
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    poller.interrupt();
    assert_eq!(blocked.join().unwrap(), 0);
    poller.shutdown();
}

/// Timer requests that do not move the poller's wake-up earlier (a cancel,
/// or a later deadline) still wake it once `DRAIN_AT` are queued, so the
/// queue stays short where no I/O event wakes the poller (epoll, whose
/// readiness the Ms reap). A deadline centuries away never fires.
fn timer_requests_are_drained_without_io(kind: BackendKind) {
    let Some((poller, rx)) = start(kind) else {
        return;
    };
    let token = |index| Token {
        index,
        generation: 1,
    };
    // The poller sleeps until this one, a minute away.
    poller.set_timer(token(1), Instant::now() + Duration::from_secs(60));
    poller.set_timer(token(2), Instant::now() + Duration::from_nanos(u64::MAX));
    let parked = Instant::now() + Duration::from_secs(5);
    while !poller.inner.parked.load(Ordering::SeqCst) {
        assert!(Instant::now() < parked, "the poller never parked");
        std::thread::sleep(Duration::from_millis(1));
    }
    for index in 0..3 * DRAIN_AT as u32 {
        poller.set_timer(token(10 + index), Instant::now() + Duration::from_secs(120));
        poller.cancel_timer(token(10 + index));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while poller.inner.queue.len() >= DRAIN_AT {
        assert!(
            Instant::now() < deadline,
            "{} requests still queued",
            poller.inner.queue.len()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "a timer fired early"
    );
    poller.shutdown();
}

#[test]
fn epoll_drains_timer_requests_without_io() {
    let _serial = serial();
    timer_requests_are_drained_without_io(BackendKind::Epoll);
}

#[test]
fn uring_drains_timer_requests_without_io() {
    let _serial = serial();
    timer_requests_are_drained_without_io(BackendKind::Uring);
}
