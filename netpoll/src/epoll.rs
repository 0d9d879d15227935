//! The epoll backend: edge-triggered, one registration per fd, made by the
//! calling M itself (epoll_ctl is thread-safe), as Go's `netpoll_epoll.go`.
//!
//! Two epoll sets:
//! - [`Direct`], the sockets' set, which the Ms poll themselves (Go's model;
//!   see "Who reaps readiness" in the crate doc): any thread may call
//!   `epoll_wait` on it. A second eventfd in it, level-triggered, is the
//!   doorbell that breaks an M's blocking poll (Go's `netpollBreak`).
//! - [`Epoll`], the poller thread's own set, holding only the thread's wake
//!   eventfd: with this backend the thread serves I/O deadlines only.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
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
            buffer: vec![sys::empty_epoll_event(); 4],
        })
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
            if event.u64 == WAKE {
                sys::drain_eventfd(self.wake);
                continue;
            }
            events.push(convert(event));
        }
    }

    /// Closes the epoll fd. Registrations die with it; nothing is in flight.
    pub(crate) fn close(self) {
        drop(self.fd);
    }
}

/// An epoll event as the crate's [`Event`].
fn convert(event: &libc::epoll_event) -> Event {
    let (bits, data) = (event.events, event.u64);
    let broken = bits & (EPOLLHUP | EPOLLERR) != 0;
    Event::Io {
        token: Token::from_u64(data),
        readable: broken || bits & (EPOLLIN | EPOLLRDHUP) != 0,
        writable: broken || bits & EPOLLOUT != 0,
        unusual: broken || bits & EPOLLRDHUP != 0,
    }
}

/// Events taken per `epoll_wait` from the sockets' set; more stay queued
/// in the kernel for the next poll.
const DIRECT_BATCH: usize = 128;

/// The sockets' epoll set, polled by the Ms themselves (module doc).
pub(crate) struct Direct {
    fd: OwnedFd,
    doorbell: sys::EventFd,
    /// Set from a ring of the doorbell until a blocking poll drains it
    /// (Go's `netpollWakeSig`): one write per blocking poll, not per ring.
    rung: AtomicBool,
}

impl Direct {
    pub(crate) fn new() -> io::Result<Direct> {
        let fd = sys::epoll_create()?;
        let doorbell = sys::EventFd::new()?;
        // Level-triggered: a non-blocking poll that sees the doorbell leaves
        // it ringing for the blocking one it is meant for.
        sys::epoll_ctl(
            fd.as_raw_fd(),
            sys::EPOLL_CTL_ADD,
            doorbell.raw(),
            EPOLLIN,
            WAKE,
        )?;
        Ok(Direct {
            fd,
            doorbell,
            rung: AtomicBool::new(false),
        })
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reaps up to `DIRECT_BATCH` readiness edges into `events`, waiting up
    /// to `timeout` (`None`: until an edge or the doorbell) when none is
    /// ready. Thread-safe: each edge goes to exactly one caller.
    pub(crate) fn poll(
        &self,
        timeout: Option<Duration>,
        events: &mut Vec<Event>,
    ) -> io::Result<()> {
        let mut buffer = [sys::empty_epoll_event(); DIRECT_BATCH];
        let n = sys::epoll_wait(self.raw(), &mut buffer, timeout)?;
        let blocking = timeout != Some(Duration::ZERO);
        for event in &buffer[..n] {
            if event.u64 == WAKE {
                if blocking {
                    sys::drain_eventfd(self.doorbell.raw());
                    self.rung.store(false, Ordering::Release);
                }
                continue;
            }
            events.push(convert(event));
        }
        Ok(())
    }

    /// Makes a blocked (or the next blocking) `poll` return.
    pub(crate) fn ring(&self) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            self.doorbell.signal();
        }
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
