//! goro's netpoller: a dedicated thread that multiplexes socket I/O through
//! io_uring, with an epoll fallback. It knows nothing of goroutines: tokens
//! go in, completions come out.
//!
//! This crate holds the backend contract only; the backends arrive with the
//! netpoller issue. The contract, in the manner of Go's `netpoll.go` (the
//! functions every backend must define):
//!
//! - `init() -> io::Result<Backend>`: probe and set up (for io_uring: the
//!   ring with SINGLE_ISSUER + DEFER_TASKRUN when present; multishot support
//!   probed, not assumed). A refusal (EPERM, ENOSYS, seccomp) is an error the
//!   caller answers by falling back to epoll; a memlock or rlimit failure is
//!   reported with the limit to raise.
//! - `submit(op, token)`: queue one operation (recv, send, accept, connect,
//!   poll) under a `Token` (slot index + generation, so a stale completion is
//!   detected, never misdelivered). Called only by the netpoller thread, which
//!   drains a lock-free queue filled by Ms: a ring written by many threads
//!   costs a wake per operation.
//! - `cancel(token)`: ASYNC_CANCEL (or `epoll_ctl(DEL)`); the operation's
//!   buffer is released only when the target's own completion arrives.
//! - `poll(timeout) -> completions`: reap in batches; honour the earliest
//!   timer as the timeout; loop when woken with no completions.
//! - `wake()`: break a blocked `poll` — called only when the poller's
//!   "parked" flag is set, since each wake costs the waker ~10 µs and lands
//!   15–30 µs later (DESIGN §5).
//! - `close()`: cancel everything in flight, wait for the completions, and
//!   close the ring or epoll fd: no leaked fds.
//!
//! Both backends must pass the same test suite, and `GORO_NETPOLL=uring|epoll`
//! forces one.
