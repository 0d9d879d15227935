//! UDP: [`UdpSocket`], std's API over goro's netpoller.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use super::poll_desc::{Dir, Pollable};
use super::tcp::each_addr as resolve_each;

/// A UDP socket. `recv`/`recv_from` park while nothing has arrived; sends
/// park only when the socket buffer is full.
pub struct UdpSocket {
    inner: Pollable<std::net::UdpSocket>,
}

impl UdpSocket {
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let socket = resolve_each(addr, |addr| std::net::UdpSocket::bind(addr))?;
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            inner: Pollable::new(socket),
        })
    }

    /// Sends to the first address `addr` resolves to.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        resolve_each(addr, |addr| {
            self.inner.io(Dir::Write, |s| s.send_to(buf, addr))
        })
    }

    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Dir::Read, |s| s.recv_from(buf))
    }

    /// Sets the default peer for `send`/`recv` and filters what arrives.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        resolve_each(addr, |addr| self.inner.get().connect(addr))
    }

    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.io(Dir::Write, |s| s.send(buf))
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Dir::Read, |s| s.recv(buf))
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    super::timeout_methods!();

    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner.get().set_broadcast(on)
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.get().take_error()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get().as_raw_fd()
    }
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.get().fmt(f)
    }
}
