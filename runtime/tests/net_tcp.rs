//! goro::net over both netpoll backends: every test runs once with epoll and
//! once with io_uring (skipped, with the reason printed, only where io_uring
//! is refused), through `RuntimeBuilder::netpoll`. Tests assert correctness
//! and progress, never speed.

mod common;

use common::net::{each_backend, each_backend_with_slice};

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro_runtime::net::{Backend, TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use goro_runtime::{go, Runtime};

fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ seed) as u8)
        .collect()
}

#[test]
fn echo_over_2000_concurrent_connections_byte_for_byte() {
    goro_runtime::net::raise_fd_limit().expect("raise RLIMIT_NOFILE");
    each_backend(2, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        const CONNS: usize = 2000;
        let server = go(move || {
            for _ in 0..CONNS {
                let (mut stream, _) = listener.accept().unwrap();
                go(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => stream.write_all(&buf[..n]).unwrap(),
                            Err(error) => panic!("server read: {error}"),
                        }
                    }
                });
            }
        });
        let clients: Vec<_> = (0..CONNS)
            .map(|i| {
                go(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    let data = pattern(i, 3000 + i % 97);
                    stream.write_all(&data).unwrap();
                    let mut back = vec![0u8; data.len()];
                    stream.read_exact(&mut back).unwrap();
                    assert!(back == data, "connection {i} echoed different bytes");
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        server.join().unwrap();
    });
}

#[test]
fn megabyte_writes_make_partial_progress_and_arrive_intact() {
    each_backend(2, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        const MIB: usize = 1 << 20;
        let writer = go(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            let data = pattern(7, 8 * MIB);
            let mut partial = 0;
            for chunk in data.chunks(MIB) {
                let n = stream.write(chunk).unwrap();
                assert!(n > 0);
                if n < chunk.len() {
                    partial += 1;
                }
                stream.write_all(&chunk[n..]).unwrap();
            }
            partial
        });
        let (mut stream, _) = listener.accept().unwrap();
        let mut received = Vec::with_capacity(8 * MIB);
        let mut buf = vec![0u8; 64 * 1024];
        while received.len() < 8 * MIB {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "early EOF");
            received.extend_from_slice(&buf[..n]);
        }
        assert!(received == pattern(7, 8 * MIB), "bytes differ");
        let partial = writer.join().unwrap();
        println!("{partial} of 8 one-MiB writes were partial");
    });
}

#[test]
fn half_close_delivers_eof_and_the_reply_still_flows() {
    each_backend(2, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = go(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            stream.read_to_end(&mut request).unwrap();
            stream.write_all(&request).unwrap();
            stream.write_all(b" -- done").unwrap();
        });
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"hello").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "hello -- done");
        server.join().unwrap();
    });
}

/// Closes `stream` with SO_LINGER 0, so the peer gets a RST.
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: passes a live linger struct and its size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(stream);
}

#[test]
fn peer_reset_surfaces_as_an_error() {
    // Twenty rounds: the reader parks in `read` and is often resumed on the
    // other M, which is how an errno read from the wrong thread showed up
    // (EAGAIN: a hang; EINTR: a retry that read 0 bytes). See the `sys`
    // module doc; one round caught it about half the time.
    each_backend(2, || {
        for _ in 0..20 {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let (connected_tx, connected_rx) = goro_runtime::chan::bounded::<()>(1);
            let reader = go(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                connected_tx.send(()).unwrap();
                let mut buf = [0u8; 16];
                // Parks in read until the RST arrives.
                stream.read(&mut buf)
            });
            let (stream, _) = listener.accept().unwrap();
            // Reset only once the client's connect has returned: a reset
            // during the connect would surface there instead.
            connected_rx.recv().unwrap();
            goro_runtime::yield_now();
            reset(stream);
            let result = reader.join().expect("no panic");
            let error = result.expect_err("a reset connection reads as an error");
            assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error}");
        }
    });
}

#[test]
fn read_deadline_fires_and_the_stream_stays_usable() {
    each_backend(2, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = go(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let mut buf = [0u8; 16];
            let start = Instant::now();
            let error = stream.read(&mut buf).expect_err("nothing was sent");
            assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}");
            assert!(start.elapsed() >= Duration::from_millis(50));
            stream.write_all(b"ping").unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream.read_exact(&mut buf[..4]).unwrap();
            assert_eq!(&buf[..4], b"pong");
        });
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        stream.write_all(b"pong").unwrap();
        client.join().unwrap();
        assert_eq!(
            TcpStream::connect(addr)
                .err()
                .map(|e| e.kind())
                .unwrap_or(ErrorKind::ConnectionRefused),
            ErrorKind::ConnectionRefused
        );
    });
}

#[test]
fn accept_under_an_fd_limit_returns_emfile_then_recovers() {
    const TEST: &str = "accept_under_an_fd_limit_returns_emfile_then_recovers";
    if common::is_child(TEST) {
        each_backend(1, || {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
            set_soft_nofile(open + 8);
            let mut filler = Vec::new();
            while let Ok(file) = std::fs::File::open("/dev/null") {
                filler.push(file);
            }
            // One fd for the client socket, then none left for accept.
            filler.pop();
            let client = TcpStream::connect(addr).unwrap();
            while let Ok(file) = std::fs::File::open("/dev/null") {
                filler.push(file);
            }
            for _ in 0..3 {
                let error = listener.accept().expect_err("no fd left");
                assert_eq!(error.raw_os_error(), Some(libc::EMFILE), "{error}");
            }
            filler.clear();
            let (mut accepted, _) = listener.accept().expect("recovered");
            (&client).write_all(b"ok").unwrap();
            let mut buf = [0u8; 2];
            accepted.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ok");
            set_soft_nofile(u64::MAX);
        });
        println!("CHILD-OK");
        return;
    }
    common::assert_child_ok(TEST);
}

fn set_soft_nofile(soft: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writes one rlimit.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0);
    limit.rlim_cur = soft.min(limit.rlim_max);
    // SAFETY: reads one rlimit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0);
}

#[test]
fn udp_round_trips_connected_and_not() {
    each_backend(2, || {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let a_addr = a.local_addr().unwrap();
        let b_addr = b.local_addr().unwrap();
        // b parks in recv_from before anything is sent.
        let echo = {
            let b = b.clone();
            go(move || {
                let mut buf = [0u8; 64];
                for _ in 0..3 {
                    let (n, from) = b.recv_from(&mut buf).unwrap();
                    b.send_to(&buf[..n], from).unwrap();
                }
            })
        };
        goro_runtime::yield_now();
        let mut buf = [0u8; 64];
        for i in 0..2u8 {
            a.send_to(&[i; 10], b_addr).unwrap();
            let (n, from) = a.recv_from(&mut buf).unwrap();
            assert_eq!((n, from), (10, b_addr));
            assert_eq!(&buf[..n], &[i; 10]);
        }
        a.connect(b_addr).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b_addr);
        a.send(b"connected").unwrap();
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"connected");
        echo.join().unwrap();
        assert_ne!(a_addr, b_addr);
    });
}

#[test]
fn unix_stream_round_trips() {
    each_backend(2, || {
        let dir = std::env::temp_dir().join(format!(
            "goro-net-{}-{}",
            std::process::id(),
            goro_runtime::sched::current_goroutine_id().unwrap()
        ));
        let _ = std::fs::remove_file(&dir);
        let listener = UnixListener::bind(&dir).unwrap();
        let server = go(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            stream.read_to_end(&mut buf).unwrap();
            stream.write_all(&buf).unwrap();
        });
        let mut stream = UnixStream::connect(&dir).unwrap();
        let data = pattern(3, 300_000);
        stream.write_all(&data).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        stream.read_to_end(&mut back).unwrap();
        assert!(back == data);
        server.join().unwrap();
        let _ = std::fs::remove_file(&dir);
        // A pair, across goroutines.
        let (a, mut b) = UnixStream::pair().unwrap();
        let reader = go(move || {
            let mut a = a;
            let mut buf = [0u8; 5];
            a.read_exact(&mut buf).unwrap();
            buf
        });
        b.write_all(b"hello").unwrap();
        assert_eq!(&reader.join().unwrap(), b"hello");
    });
}

#[test]
fn a_goroutine_blocked_in_read_leaves_the_only_p_to_others() {
    each_backend(1, || {
        let (a, b) = UnixStream::pair().unwrap();
        let finished = Arc::new(AtomicBool::new(false));
        let counted = Arc::new(AtomicUsize::new(0));
        let reader = {
            let finished = finished.clone();
            go(move || {
                let mut a = a;
                let mut buf = [0u8; 1];
                a.read_exact(&mut buf).unwrap();
                // The counter ran to completion while we were parked.
                assert!(finished.load(Ordering::Acquire));
                buf[0]
            })
        };
        let counter = {
            let counted = counted.clone();
            go(move || {
                for _ in 0..10_000 {
                    counted.fetch_add(1, Ordering::Relaxed);
                    goro_runtime::yield_now();
                }
                finished.store(true, Ordering::Release);
                (&b).write_all(&[42]).unwrap();
                b
            })
        };
        let _b = counter.join().unwrap();
        assert_eq!(reader.join().unwrap(), 42);
        assert_eq!(counted.load(Ordering::Relaxed), 10_000);
    });
}

/// A goroutine that never blocks or yields holds a P while data arrives for
/// a parked reader; returns once the reader has read the byte, or panics if
/// the spinner gave up waiting for it (20 s).
fn read_while_a_spinner_holds_a_p() {
    let (a, b) = UnixStream::pair().unwrap();
    let received = Arc::new(AtomicBool::new(false));
    let reader = {
        let received = received.clone();
        go(move || {
            let mut a = a;
            let mut buf = [0u8; 1];
            a.read_exact(&mut buf).unwrap();
            received.store(true, Ordering::Release);
            buf[0]
        })
    };
    let spinner = {
        let received = received.clone();
        go(move || {
            let give_up = Instant::now() + Duration::from_secs(20);
            while !received.load(Ordering::Acquire) {
                if Instant::now() > give_up {
                    return false;
                }
                std::hint::spin_loop();
            }
            true
        })
    };
    // A plain thread writes once the reader has had time to park.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        (&b).write_all(&[7]).unwrap();
        b
    });
    assert!(
        spinner.join().unwrap(),
        "the reader never ran while the spinner held a P"
    );
    assert_eq!(reader.join().unwrap(), 7);
    drop(writer.join().unwrap());
}

/// The reverse case: the only P is held by a goroutine that never blocks or
/// yields, and data arrives for a parked reader. The runtime must still
/// notice (epoll: sysmon polls when no M has for 10 ms; io_uring: the
/// netpoller thread readies the reader) and preemption gives it the P.
#[test]
fn a_read_completes_while_a_spinner_holds_the_only_p() {
    each_backend(1, read_while_a_spinner_holds_a_p);
}

/// Two Ps, one held by a goroutine that never yields and is not preempted
/// (a 60 s slice), the other idle, and data arrives for a parked reader:
/// the reader must run on the idle P, not wait for the busy one. (io_uring:
/// the netpoller thread's batch wakes an M for the idle P; epoll: an idle M
/// blocked in `epoll_wait` takes it.)
#[test]
fn a_read_readied_beside_a_busy_p_runs_on_the_idle_one() {
    each_backend_with_slice(
        2,
        Some(Duration::from_secs(60)),
        read_while_a_spinner_holds_a_p,
    );
}

#[test]
fn sockets_work_from_plain_threads_too() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"thread").unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let error = stream.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::TimedOut);
    });
    let (mut stream, _) = listener.accept().unwrap();
    let mut buf = [0u8; 6];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"thread");
    client.join().unwrap();
}

#[test]
fn goro_netpoll_malformed_is_a_clear_error() {
    const TEST: &str = "goro_netpoll_malformed_is_a_clear_error";
    if common::is_child(TEST) {
        let error = Runtime::builder()
            .build()
            .expect_err("malformed GORO_NETPOLL");
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert!(error.to_string().contains("GORO_NETPOLL"), "{error}");
        println!("CHILD-OK");
        return;
    }
    let output = common::run_child(TEST, &[("GORO_NETPOLL", "kqueue")]);
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("CHILD-OK"),
        "{output:?}"
    );
}

/// Acceptors started together on a new listener all register it at once;
/// epoll refused every registration after the first (EEXIST), so `accept`
/// failed where it should have waited. Two acceptors, one per P, spin until
/// the same instant, then accept.
#[test]
fn acceptors_sharing_a_new_listener_all_wait_for_a_connection() {
    each_backend(2, || {
        for _ in 0..50 {
            let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = listener.local_addr().unwrap();
            let at = Instant::now() + Duration::from_millis(3);
            let acceptors: Vec<_> = (0..2)
                .map(|_| {
                    let listener = listener.clone();
                    go(move || {
                        while Instant::now() < at {
                            std::hint::spin_loop();
                        }
                        listener.accept().map(|_| ())
                    })
                })
                .collect();
            // Off this P, so that the acceptors run one per P.
            goro_runtime::time::sleep(Duration::from_millis(5));
            let clients: Vec<_> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
            for acceptor in acceptors {
                acceptor.join().unwrap().expect("accept");
            }
            drop(clients);
        }
    });
}

/// A dropped listener frees its port at once, as with std, though its
/// netpoll registration (a multishot poll under io_uring) ends later.
#[test]
fn a_dropped_listener_s_port_can_be_bound_again_at_once() {
    each_backend(2, || {
        let mut addr = "127.0.0.1:0".parse().unwrap();
        for round in 0..20 {
            let listener = TcpListener::bind(addr).unwrap_or_else(|error| {
                panic!("{:?}, round {round}: {error}", goro_runtime::net::backend())
            });
            addr = listener.local_addr().unwrap();
            drop(registered(listener));
        }
    });
}

/// Registers `listener` with the netpoller (an accept that has to wait,
/// ended by a client) and hands it back.
fn registered(listener: TcpListener) -> TcpListener {
    let listener = Arc::new(listener);
    let addr = listener.local_addr().unwrap();
    let acceptor = {
        let listener = listener.clone();
        go(move || listener.accept().map(|_| ()))
    };
    common::let_others_run();
    let client = TcpStream::connect(addr).unwrap();
    acceptor.join().unwrap().expect("accept");
    drop(client);
    Arc::into_inner(listener).expect("the acceptor is done")
}

/// Dropping a registered listener inside `preempt::disable()`, where a
/// goroutine must not switch out, waits for the netpoller without yielding:
/// the port is free afterwards, and the process is not aborted. (Whether
/// the drop has to wait at all is a race with the poller thread, hence the
/// rounds.)
#[test]
fn a_listener_dropped_while_preemption_is_disabled_waits_without_switching() {
    each_backend(2, || {
        for _ in 0..10 {
            let listener = registered(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = listener.local_addr().unwrap();
            {
                let _pin = goro_runtime::preempt::disable();
                drop(listener);
            }
            TcpListener::bind(addr).expect("the port is free once the drop returns");
        }
    });
}

/// A socket registered by a runtime that has since shut down falls back to
/// poll(2): its timeouts still fire and its data still arrives (nothing
/// would wake a waiter parked on the stopped netpoller).
#[test]
fn a_socket_outlives_its_runtime() {
    for backend in [Backend::Epoll, Backend::Uring] {
        let runtime = Runtime::builder()
            .procs(2)
            .netpoll(backend)
            .build()
            .expect("build runtime");
        if let Err(error) =
            runtime.block_on(|| goro_runtime::net::backend().expect("in a goroutine"))
        {
            println!("skipping {backend:?}: {error}");
            continue;
        }
        let pair = runtime.block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let client = go(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                // Wait once, so the stream is registered.
                stream
                    .set_read_timeout(Some(Duration::from_millis(10)))
                    .unwrap();
                let error = stream.read(&mut [0u8; 1]).unwrap_err();
                assert_eq!(error.kind(), ErrorKind::TimedOut);
                stream
            });
            let (server, _) = listener.accept().unwrap();
            (client.join().unwrap(), server)
        });
        runtime.shutdown_timeout(Duration::from_secs(5));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut client, mut server) = pair;
            client
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let error = client.read(&mut [0u8; 1]).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}");
            server.write_all(b"late").unwrap();
            let mut buf = [0u8; 4];
            client.read_exact(&mut buf).unwrap();
            let _ = done_tx.send(buf);
        });
        let got = done_rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(got, Ok(*b"late"), "{backend:?}: a read hung after shutdown");
    }
}

/// `Duration::MAX` as a read timeout means "no deadline in practice": the
/// reader parks once. (Its deadline used to wrap into the past, and the
/// reader woke, re-armed and parked again without end.)
#[test]
fn a_read_timeout_of_duration_max_parks_once() {
    each_backend(2, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = go(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::MAX)).unwrap();
            let mut buf = [0u8; 2];
            stream.read_exact(&mut buf).unwrap();
            buf
        });
        let (mut server, _) = listener.accept().unwrap();
        let before = goro_runtime::runtime::stats().netpoll.submitted;
        goro_runtime::time::sleep(Duration::from_millis(100));
        let parks = goro_runtime::runtime::stats().netpoll.submitted - before;
        assert!(parks <= 2, "the reader parked {parks} times in 100 ms");
        server.write_all(b"ok").unwrap();
        assert_eq!(&reader.join().unwrap(), b"ok");
    });
}

/// With epoll, the only M may sleep in `epoll_wait`, on no idle list. A
/// goroutine readied from a foreign thread then needs that M (no other may
/// start, `max_threads` 1): the waker must ring the poller's doorbell, or
/// the goroutine waits for network I/O that never comes.
#[test]
fn a_goroutine_readied_from_outside_reaches_the_only_m_in_epoll_wait() {
    let runtime = Runtime::builder()
        .procs(1)
        .max_threads(1)
        .netpoll(Backend::Epoll)
        .build()
        .expect("build runtime");
    let (tx, rx) = goro_runtime::chan::bounded::<u32>(0);
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        tx.send(7).unwrap();
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let got = runtime.block_on(move || {
            // Start the netpoller: a read that times out registers a socket.
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(1)))
                .unwrap();
            assert!(stream.read(&mut [0u8; 1]).is_err());
            // Now the only M has nothing to do but block in epoll_wait.
            rx.recv().unwrap()
        });
        let _ = done_tx.send(got);
    });
    assert_eq!(
        done_rx.recv_timeout(Duration::from_secs(10)),
        Ok(7),
        "the goroutine was never run"
    );
    sender.join().unwrap();
}
