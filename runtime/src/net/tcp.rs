//! TCP: [`TcpListener`] and [`TcpStream`], std's API over goro's netpoller.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::poll_desc::{Dir, Pollable};
use crate::sys::net as sys;

/// Go's default backlog is the kernel's `somaxconn`; listen(2) caps a larger
/// value at it.
const DEFAULT_BACKLOG: i32 = 4096;

/// Options for a [`TcpListener`]: SO_REUSEADDR is always set (as Go and std
/// do); SO_REUSEPORT and the backlog are opt-in.
#[derive(Clone, Debug)]
pub struct TcpListenerBuilder {
    reuseport: bool,
    backlog: i32,
}

impl Default for TcpListenerBuilder {
    fn default() -> Self {
        TcpListenerBuilder {
            reuseport: false,
            backlog: DEFAULT_BACKLOG,
        }
    }
}

impl TcpListenerBuilder {
    pub fn new() -> TcpListenerBuilder {
        TcpListenerBuilder::default()
    }

    /// Sets SO_REUSEPORT, so several listeners (processes) share the port.
    pub fn reuseport(mut self, on: bool) -> TcpListenerBuilder {
        self.reuseport = on;
        self
    }

    /// The listen(2) backlog (capped by `net.core.somaxconn`).
    pub fn backlog(mut self, backlog: i32) -> TcpListenerBuilder {
        self.backlog = backlog;
        self
    }

    /// Binds to the first of `addr`'s addresses that works and listens.
    ///
    /// # Errors
    /// As std's `TcpListener::bind`: the last address's error.
    pub fn bind(&self, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |addr| {
            let socket = sys::socket_for(addr, sys::SOCK_STREAM)?;
            sys::set_reuseaddr(socket.as_raw_fd())?;
            if self.reuseport {
                sys::set_reuseport(socket.as_raw_fd())?;
            }
            // Before listen, so that every accepted socket inherits it
            // (`Read for &TcpStream`).
            report_queue(socket.as_raw_fd());
            sys::bind(socket.as_raw_fd(), addr)?;
            sys::listen(socket.as_raw_fd(), self.backlog)?;
            Ok(TcpListener {
                inner: Pollable::new(std::net::TcpListener::from(socket)),
            })
        })
    }
}

/// Tries `f` on each resolved address in turn, as std does. Resolution is
/// std's `ToSocketAddrs`, run inside [`crate::blocking::blocking`]: a host
/// name may block in getaddrinfo for seconds, and then the P serves other
/// goroutines meanwhile. An IP literal parses at once; it still pays for entering and
/// leaving `blocking` (tens of nanoseconds) and a `Vec`, small beside the
/// system call that follows.
pub(super) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let addrs: Vec<SocketAddr> =
        crate::blocking::blocking(|| addr.to_socket_addrs().map(Iterator::collect))?;
    let mut last = None;
    for addr in addrs {
        match f(&addr) {
            Ok(value) => return Ok(value),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// A TCP listening socket. `accept` parks the goroutine, not its M.
pub struct TcpListener {
    inner: Pollable<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds and listens, with SO_REUSEADDR (std's and Go's behaviour).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListenerBuilder::new().bind(addr)
    }

    /// Options: SO_REUSEPORT, backlog.
    pub fn builder() -> TcpListenerBuilder {
        TcpListenerBuilder::new()
    }

    /// Accepts a connection. Errors are std's: EMFILE/ENFILE come back as
    /// they are, and the listener keeps working once descriptors are free.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, addr) = self
            .inner
            .io(Dir::Read, |listener| sys::accept(listener.as_raw_fd()))?;
        Ok((
            TcpStream {
                inner: Pollable::new(std::net::TcpStream::from(socket)),
            },
            addr,
        ))
    }

    /// An endless iterator of accepted connections (std's `incoming`).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.get().take_error()
    }
}

impl Drop for TcpListener {
    /// Waits for the netpoller to let go of the socket before the
    /// descriptor closes, so the port is free once the drop returns, as
    /// with std (`Pollable::deregister_and_wait` has the why, and why not
    /// `shutdown`). The wait is microseconds, bounded at one second.
    fn drop(&mut self) {
        self.inner.deregister_and_wait(Duration::from_secs(1));
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get().as_raw_fd()
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.get().fmt(f)
    }
}

/// The iterator of [`TcpListener::incoming`]; it never returns `None`.
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

/// A TCP connection. Reads and writes park the goroutine while the socket is
/// not ready; `set_read_timeout`/`set_write_timeout` bound each call as a
/// deadline (a `TimedOut` error; the stream stays usable).
///
/// goro sets `TCP_INQ` on the sockets it creates (a program that calls
/// `recvmsg` on the raw descriptor with a control buffer gets a
/// `TCP_CM_INQ` message too): each read then tells whether it drained the
/// socket, so the next one can park without a failing system call.
pub struct TcpStream {
    inner: Pollable<std::net::TcpStream>,
}

impl TcpStream {
    /// Connects to the first of `addr`'s addresses that accepts (std's
    /// `connect`); the connect itself parks, never blocking the M.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |addr| TcpStream::connect_one(addr, None))
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout` (std's
    /// `connect_timeout`; Go's `DialTimeout`). A zero timeout is an error,
    /// as in std.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(sys::zero_timeout_error());
        }
        TcpStream::connect_one(addr, sys::deadline_after(Some(timeout)))
    }

    fn connect_one(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let socket = sys::socket_for(addr, sys::SOCK_STREAM)?;
        report_queue(socket.as_raw_fd());
        let mut done = sys::connect(socket.as_raw_fd(), addr)?;
        let stream = TcpStream {
            inner: Pollable::new(std::net::TcpStream::from(socket)),
        };
        // Writable means finished, with SO_ERROR saying how; but a wait may
        // also return early (an edge it cannot tell apart, or the socket's
        // first registration), so ask the socket.
        while !done {
            let since = stream.inner.edge_count(Dir::Write);
            if let Some(error) = sys::take_error(stream.as_raw_fd())? {
                return Err(error);
            }
            done = match stream.peer_addr() {
                Ok(_) => true,
                Err(error) if error.kind() == io::ErrorKind::NotConnected => false,
                Err(error) => return Err(error),
            };
            if !done {
                stream.inner.wait(Dir::Write, deadline, since)?;
            }
        }
        Ok(stream)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get().shutdown(how)
    }

    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get().set_nodelay(nodelay)
    }

    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get().nodelay()
    }

    super::timeout_methods!();

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.get().take_error()
    }

    /// Reads without consuming (MSG_PEEK).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Dir::Read, |s| s.peek(buf))
    }
}

/// Asks the kernel to report, with each read, the bytes left queued
/// (`TCP_INQ`): `read_stream` then skips a read known to fail. Best effort:
/// before Linux 4.18 the option is refused, reads carry no report, and none
/// is skipped.
fn report_queue(fd: RawFd) {
    if let Err(error) = sys::set_inq(fd) {
        tracing::debug!(%error, "goro::net: TCP_INQ refused; no read will be skipped");
    }
}

/// Reads are `recvmsg` with the queue report that `report_queue` asks for
/// (`poll_desc`'s module doc, "Skipping a read known to fail").
impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        let mut bufs = [io::IoSliceMut::new(buf)];
        self.inner
            .read_stream(len, |s| sys::recv_reporting_queue(s.as_raw_fd(), &mut bufs))
    }
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        let len = bufs.iter().take(sys::IOV_MAX).map(|b| b.len()).sum();
        self.inner
            .read_stream(len, |s| sys::recv_reporting_queue(s.as_raw_fd(), bufs))
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.io(Dir::Write, |s| sys::send(s.as_raw_fd(), buf))
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.inner
            .io(Dir::Write, |s| sys::send_vectored(s.as_raw_fd(), bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get().as_raw_fd()
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use super::{TcpListener, TcpStream};
    use crate::net::Backend;

    /// After each request of a request/response exchange is read whole, the
    /// server's next read is known to fail and is skipped, under both
    /// backends. It was not under io_uring while POLLPRI, which comes with
    /// every TCP data wake-up there, counted as urgent data and turned the
    /// skip off (one failed `recvfrom` per round trip).
    #[test]
    fn a_request_read_whole_arms_the_skip_of_the_next_read() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        if let Err(error) = crate::sys::net::set_inq(probe.as_raw_fd()) {
            println!("skipping: TCP_INQ refused ({error}), so no read is ever skipped here");
            return;
        }
        for backend in [Backend::Epoll, Backend::Uring] {
            let runtime = crate::Runtime::builder()
                .procs(2)
                .netpoll(backend)
                .build()
                .expect("build runtime");
            if let Err(error) = runtime.block_on(|| crate::net::backend().expect("in a goroutine"))
            {
                assert_eq!(backend, Backend::Uring, "epoll must always work: {error}");
                println!("skipping io_uring: {error}");
                continue;
            }
            let armed = runtime.block_on(|| {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let client = crate::go(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    let mut answer = [0u8; 5];
                    for _ in 0..20 {
                        stream.write_all(b"hello").unwrap();
                        stream.read_exact(&mut answer).unwrap();
                    }
                    stream
                });
                let (mut server, _) = listener.accept().unwrap();
                let mut buf = [0u8; 64];
                let mut armed = Vec::new();
                for _ in 0..20 {
                    // The client writes only after the last answer, so each
                    // read parks first: edges flow through the netpoller.
                    let mut got = 0;
                    while got < 5 {
                        got += server.read(&mut buf[got..]).unwrap();
                    }
                    armed.push(server.inner.next_read_skipped());
                    server.write_all(&buf[..5]).unwrap();
                }
                drop(client.join().unwrap());
                armed
            });
            runtime.shutdown_timeout(Duration::from_secs(5));
            // A round is rightly not armed when the netpoller counted its
            // request's edge only after the read began (the count moved), or
            // before the socket's first wait registered it; not all 20.
            assert!(
                armed.iter().any(|&armed| armed),
                "{backend:?}: no read was skipped in 20 round trips: {armed:?}"
            );
        }
    }
}
