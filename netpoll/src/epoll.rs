//! The epoll backend: edge-triggered, one registration per fd, made by the
//! calling M itself (epoll_ctl is thread-safe), as Go's `netpoll_epoll.go`.
//!
//! The poller thread only waits: `epoll_wait` bounded by the earliest
//! deadline. The wake eventfd sits in the set under a reserved token.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::sys::{self, EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP};
use crate::{Event, Token};

/// The wake eventfd's reserved epoll data.
const WAKE: u64 = u64::MAX;

pub(crate) struct Epoll {
    fd: OwnedFd,
    wake: RawFd,
    buffer: Vec<libc::epoll_event>,
}

impl Epoll {
    pub(crate) fn init(wake: RawFd) -> io::Result<Epoll> {
        let fd = sys::epoll_create()?;
        sys::epoll_ctl(
            fd.as_raw_fd(),
            sys::EPOLL_CTL_ADD,
            wake,
            EPOLLIN | EPOLLET,
            WAKE,
        )?;
        Ok(Epoll {
            fd,
            wake,
            buffer: vec![sys::empty_epoll_event(); 512],
        })
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub(crate) fn poll(&mut self, timeout: Option<Duration>, events: &mut Vec<Event>) {
        let n = match sys::epoll_wait(self.fd.as_raw_fd(), &mut self.buffer, timeout) {
            Ok(n) => n,
            Err(error) => {
                tracing::error!(%error, "netpoll: epoll_wait failed");
                std::thread::sleep(Duration::from_millis(1));
                return;
            }
        };
        for event in &self.buffer[..n] {
            let (bits, data) = (event.events, event.u64);
            if data == WAKE {
                sys::drain_eventfd(self.wake);
                continue;
            }
            let broken = bits & (EPOLLHUP | EPOLLERR) != 0;
            events.push(Event::Io {
                token: Token::from_u64(data),
                readable: broken || bits & (EPOLLIN | EPOLLRDHUP) != 0,
                writable: broken || bits & EPOLLOUT != 0,
                hangup: broken || bits & EPOLLRDHUP != 0,
            });
        }
    }

    /// Closes the epoll fd. Registrations die with it; nothing is in flight.
    pub(crate) fn close(self) {
        drop(self.fd);
    }
}

/// Registers `fd` edge-triggered for both directions (on the calling M).
pub(crate) fn register(epoll: RawFd, fd: RawFd, token: Token) -> io::Result<()> {
    sys::epoll_ctl(
        epoll,
        sys::EPOLL_CTL_ADD,
        fd,
        EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        token.to_u64(),
    )
}

/// Removes `fd` (on the calling M, before the fd is closed: a dup'd file
/// would otherwise stay in the set under a dead token).
pub(crate) fn deregister(epoll: RawFd, fd: RawFd) {
    if let Err(error) = sys::epoll_ctl(epoll, sys::EPOLL_CTL_DEL, fd, 0, 0) {
        tracing::debug!(%error, fd, "netpoll: EPOLL_CTL_DEL");
    }
}
