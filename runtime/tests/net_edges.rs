//! goro::net at its edges, over both netpoll backends: reads that come back
//! short with more still queued (where the "skip a read known to fail" rule
//! of `poll_desc.rs` must not park: it trusts the kernel's `TCP_INQ` count,
//! not the read's length), an empty read, a dropped listener whose
//! descriptor was duplicated, and `connect_timeout`. A read that wrongly
//! parks ends in the stream's read timeout, so a regression fails the test
//! rather than hanging it.

mod common;

use std::io::{ErrorKind, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::Duration;

use common::net::each_backend;
use goro_runtime::go;
use goro_runtime::net::{TcpListener, TcpStream};

/// Long enough never to fire when the read is right; a wrong park ends in it.
const GUARD: Duration = Duration::from_secs(10);

/// A connected pair whose server side is registered with the netpoller (its
/// first read had to wait) and has a read timeout of [`GUARD`].
fn registered_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_read_timeout(Some(GUARD)).unwrap();
    let reader = go(move || {
        let mut hello = [0u8; 5];
        (&server).read_exact(&mut hello).unwrap();
        assert_eq!(&hello, b"hello");
        server
    });
    common::let_others_run();
    (&client).write_all(b"hello").unwrap();
    (reader.join().unwrap(), client)
}

/// Gives the netpoller time to handle every edge of what was just sent, so
/// the next read starts with all of them counted.
fn let_edges_arrive() {
    goro_runtime::time::sleep(Duration::from_millis(100));
}

/// Reads until `want` bytes have come, failing on an error or EOF.
fn read_all(stream: &TcpStream, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        let n = (&*stream)
            .read(&mut buf)
            .unwrap_or_else(|error| panic!("after {got:?}: {error}"));
        assert!(n > 0, "EOF after {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Runs `read` on the server side of a registered pair while it waits for
/// what `send` then sends at once: the edge that wakes the reader then
/// usually covers all of it (edges not yet handled coalesce), so nothing
/// but the read's own system call can tell that more is queued.
fn read_while_sent<T: Send + 'static>(
    read: impl FnOnce(&TcpStream) -> T + Send + 'static,
    send: impl FnOnce(&TcpStream),
) -> T {
    let (server, client) = registered_pair();
    let reader = go(move || read(&server));
    common::let_others_run();
    send(&client);
    reader.join().unwrap()
}

/// Linux's TCP read stops at the urgent mark once it has copied anything,
/// so it comes back short with the bytes after the mark still queued.
#[test]
fn a_read_stopped_short_by_urgent_data_gets_the_rest_next() {
    each_backend(2, || {
        let got = read_while_sent(
            |server| read_all(server, 6),
            |client| {
                (&*client).write_all(b"abc").unwrap();
                // SAFETY: sends one byte from a live buffer on a connected
                // socket.
                let sent = unsafe {
                    libc::send(
                        client.as_raw_fd(),
                        b"!".as_ptr().cast(),
                        1,
                        libc::MSG_OOB | libc::MSG_NOSIGNAL,
                    )
                };
                assert_eq!(sent, 1, "{}", std::io::Error::last_os_error());
                (&*client).write_all(b"def").unwrap();
            },
        );
        assert_eq!(got, b"abcdef");
    });
}

/// recvmsg takes at most 1,024 slices (more is EMSGSIZE), so a read into
/// more fills only the first 1,024; the rest of the data stays queued and
/// must come with the next reads.
#[test]
fn a_vectored_read_of_more_than_1024_slices_gets_the_rest_next() {
    each_backend(2, || {
        let data: Vec<u8> = (0..1500).map(|i| i as u8).collect();
        let got = read_while_sent(
            |server| {
                let mut bytes = vec![0u8; 2000];
                let mut slices: Vec<IoSliceMut<'_>> =
                    bytes.chunks_mut(1).map(IoSliceMut::new).collect();
                let first = (&*server).read_vectored(&mut slices).unwrap();
                assert!(first > 0);
                let mut got = bytes[..first].to_vec();
                got.extend(read_all(server, 1500 - first));
                got
            },
            |client| (&*client).write_all(&data).unwrap(),
        );
        assert_eq!(got, data);
    });
}

/// An empty read returns at once, as Go's does (std's waits for data), even
/// right after a read that drained the socket.
#[test]
fn an_empty_read_after_a_short_one_returns_at_once() {
    each_backend(2, || {
        let (server, client) = registered_pair();
        (&client).write_all(b"abc").unwrap();
        let_edges_arrive();
        assert_eq!(read_all(&server, 3), b"abc");
        assert_eq!((&server).read(&mut []).unwrap(), 0);
        (&client).write_all(b"d").unwrap();
        assert_eq!(read_all(&server, 1), b"d");
    });
}

/// Dropping a listener closes its descriptor, nothing more: a duplicate of
/// it (a listener handed to a new process, say) keeps listening, as in Go.
#[test]
fn a_dropped_listener_leaves_its_duplicate_listening() {
    each_backend(2, || {
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        // Register the listener: an accept that has to wait.
        let acceptor = {
            let listener = listener.clone();
            go(move || listener.accept().map(|_| ()))
        };
        common::let_others_run();
        drop(TcpStream::connect(addr).unwrap());
        acceptor.join().unwrap().expect("accept");
        // SAFETY: dup(2) on a descriptor the listener keeps open here.
        let fd = unsafe { libc::dup(listener.as_raw_fd()) };
        assert!(fd >= 0, "{}", std::io::Error::last_os_error());
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let survivor = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        drop(listener);
        let _client = TcpStream::connect(addr).expect("the duplicate still listens");
        // The duplicate shares the non-blocking flag: wait for the
        // connection in the accept queue (loopback queues it at once).
        let accepted = (0..1000).find_map(|_| match survivor.accept() {
            Ok(_) => Some(()),
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                goro_runtime::time::sleep(Duration::from_millis(10));
                None
            }
            Err(error) => panic!("accept on the duplicate: {error}"),
        });
        assert!(accepted.is_some(), "no connection within 10 s");
    });
}

/// A connect that the listener never answers (its accept queue is full, so
/// Linux drops the SYN) ends in `TimedOut`, and a zero timeout is refused.
#[test]
fn connect_timeout_gives_up_on_a_full_accept_queue() {
    each_backend(2, || {
        let listener = TcpListener::builder()
            .backlog(1)
            .bind("127.0.0.1:0")
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let zero = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::InvalidInput, "{zero}");
        let mut connected = Vec::new();
        let timed_out = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(stream) => connected.push(stream),
                Err(error) => break error,
            }
            assert!(connected.len() < 64, "the accept queue never filled");
        };
        assert_eq!(timed_out.kind(), ErrorKind::TimedOut, "{timed_out}");
        drop(listener);
    });
}
