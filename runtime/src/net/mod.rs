//! `goro::net`: std's socket API for goroutines (DESIGN §2): a goroutine
//! blocked in `accept`, `read` or `write` parks, and its M runs others.
//!
//! # How a call runs
//!
//! Every socket is non-blocking. A call first makes the system call itself
//! (about 0.5 µs; DESIGN §5), and only when it reports EAGAIN does the
//! goroutine wait for readiness through its runtime's netpoller
//! (`poll_desc.rs` has the protocol; the `goro_netpoll` crate the thread,
//! the io_uring and epoll backends and their contract). A busy connection
//! whose data is already there never touches the netpoller.
//!
//! Outside a goroutine (a plain thread, `main` before `goro::run`) the same
//! types work and block the thread in `poll(2)`.
//!
//! # Layering
//!
//! `net` sits above the scheduler and reaches it only through
//! `sched::{block, Waiter, WaitReason}`, plus `sched::netpoll` for the two
//! things a poller needs: its runtime's poller (started lazily, stored in
//! `Shared`, stopped and joined by shutdown) and `ready_batch`, which hands
//! a poll batch's goroutines to the global queue with one `wakep`.
//!
//! # Deadlines
//!
//! `set_read_timeout`/`set_write_timeout` are std's per-call timeouts, made
//! deadlines: the first EAGAIN of a call fixes `now + timeout`, and a wait
//! that reaches it is cancelled (the goroutine is taken off the descriptor
//! and readied) and the call fails with `TimedOut`. The stream stays usable.
//! goro's goroutine timers were not available when this was written, so the
//! timer is the netpoller's own deadline heap, which bounds its wait.
//!
//! # Not here (yet)
//!
//! - `try_clone`: a dup'd fd would need its own registration.
//! - `UnixStream::connect` is std's blocking connect: while the listener's
//!   backlog is full it sleeps in the kernel, and sysmon hands its P off
//!   after about 1 ms (Go returns EAGAIN instead).
//! - `UnixListener` leaves its socket file behind on drop, as std's does
//!   (Go's unlinks it).

pub(crate) mod poll_desc;
mod tcp;
mod udp;
mod unix;

pub use goro_netpoll::BackendKind as Backend;
pub use tcp::{Incoming, TcpListener, TcpListenerBuilder, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

/// The netpoll backend of the calling goroutine's runtime, starting its
/// netpoller if needed; `None` outside a goroutine.
///
/// # Errors
/// The backend's setup error (for a forced io_uring that is refused).
pub fn backend() -> Option<std::io::Result<Backend>> {
    crate::sched::netpoll::current_poller(poll_desc::handler)
        .map(|poller| poller.map(|poller| poller.kind()))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns it: servers
/// and load generators with thousands of sockets call it at start.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    crate::sys::net::raise_nofile_limit()
}

/// The four deadline methods every socket type has, on its `inner` poll
/// descriptor: each read (write) that waits longer than the timeout fails
/// with `TimedOut`, and the socket stays usable; `Some(Duration::ZERO)` is
/// an error, as in std.
macro_rules! timeout_methods {
    () => {
        /// Bounds each read: a read that finds no data within `timeout`
        /// fails with `TimedOut` (the wait is cancelled; the socket stays
        /// usable). `Some(Duration::ZERO)` is an error, as in std.
        pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            self.inner.set_timeout(Dir::Read, timeout)
        }

        /// Bounds each write, as `set_read_timeout` bounds reads.
        pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            self.inner.set_timeout(Dir::Write, timeout)
        }

        pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
            Ok(self.inner.timeout(Dir::Read))
        }

        pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
            Ok(self.inner.timeout(Dir::Write))
        }
    };
}
pub(crate) use timeout_methods;
