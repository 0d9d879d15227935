//! Unix-domain streams: [`UnixListener`] and [`UnixStream`], std's API over
//! goro's netpoller.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::poll_desc::{Dir, Pollable};
use crate::sys::net as sys;

/// A Unix-domain listening socket.
pub struct UnixListener {
    inner: Pollable<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            inner: Pollable::new(listener),
        })
    }

    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.inner.io(Dir::Read, |l| l.accept())?;
        stream.set_nonblocking(true)?;
        Ok((UnixStream::wrap(stream), addr))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get().as_raw_fd()
    }
}

/// A Unix-domain stream. Reads and writes park the goroutine.
pub struct UnixStream {
    inner: Pollable<std::os::unix::net::UnixStream>,
}

impl UnixStream {
    fn wrap(stream: std::os::unix::net::UnixStream) -> UnixStream {
        UnixStream {
            inner: Pollable::new(stream),
        }
    }

    /// Connects to the socket at `path`. A Unix connect completes at once
    /// unless the listener's backlog is full, when this blocks the M as
    /// std's does (it is std's call).
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let stream = std::os::unix::net::UnixStream::connect(path)?;
        stream.set_nonblocking(true)?;
        Ok(UnixStream::wrap(stream))
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((UnixStream::wrap(a), UnixStream::wrap(b)))
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

    super::timeout_methods!();
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Dir::Read, |s| sys::recv(s.as_raw_fd(), buf))
    }
}

impl Write for &UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.io(Dir::Write, |s| sys::send(s.as_raw_fd(), buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get().as_raw_fd()
    }
}
