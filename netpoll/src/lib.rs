//! goro's netpoller: a dedicated thread that multiplexes socket readiness
//! through io_uring, with an epoll fallback. It knows nothing of goroutines:
//! tokens go in, events come out, through a handler the owner installs
//! (io_uring readiness, and both backends' deadlines and releases) or, for
//! epoll readiness, through [`Poller::poll`] on the owner's own threads.
//!
//! # Model: registered readiness, as Go's netpoll
//!
//! A socket is registered once, the first time an operation on it would
//! block, and stays registered until it is closed. The backend then reports
//! every readiness *edge* (new data, new buffer space, a hang-up) as an
//! [`Event::Io`] carrying the socket's [`Token`]. The owner (goro's
//! `net::poll_desc`) keeps Go's per-direction "ready or waiter" state: a
//! goroutine first makes the non-blocking system call itself, and only on
//! EAGAIN parks, unless an edge arrived meanwhile. So the common path of a
//! busy connection submits nothing to the poller at all.
//!
//! - io_uring: one multishot `POLL_ADD` (POLLIN|POLLOUT|POLLRDHUP) per
//!   socket. The kernel posts a CQE (flag `F_MORE`) on each wake-up of the
//!   socket's wait queue, which is edge-triggered behaviour; a CQE without
//!   `F_MORE` ends the poll (cancelled, or dropped on CQ overflow: then it is
//!   re-armed). The CQE's mask is mostly the wake-up's own key, not a fresh
//!   `poll`: a TCP data wake-up passes `EPOLLIN|EPOLLPRI` whether or not
//!   urgent data is pending. So POLLPRI means nothing here and is not asked
//!   for (goro learns of urgent data from the read itself: `TCP_INQ`).
//! - epoll: `EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET`, as Go's
//!   `netpoll_epoll.go`. epoll_ctl is thread-safe, so the calling M
//!   registers and deregisters itself; the poller thread never needs waking
//!   for it.
//!
//! # Who reaps readiness
//!
//! - **io_uring**: the poller thread. A poll's completion is posted through
//!   task work on the task that submitted it, so only the ring's owner can
//!   reap it ("Ms polling the ring themselves" below). Each batch costs the
//!   thread's wake-up and then, usually, an M's futex wake-up (the hop).
//! - **epoll**: the Ms themselves, as Go's `findRunnable` does, since any
//!   thread may call `epoll_wait` ([`Poller::poll`]; the scheduler's side is
//!   in goro's `sched/netpoll.rs`). The poller thread then waits only for
//!   I/O deadlines. An M blocked in `Poller::poll` is released by
//!   [`Poller::interrupt`] (Go's `netpollBreak`).
//!
//! Measured, `perf stat -p` on the server (`redis-benchmark -t get -c 50
//! -P 1`, 200,000 requests, 2 Ps, runs interleaved with redis-server's, a
//! compile running beside): per request, context switches 0.115–0.125
//! with epoll reaped by Ms against 0.81–0.91 with io_uring (redis-server:
//! 0.15–0.17), futex calls 0.06–0.07 against 0.26–0.28, server CPU 14.2 µs
//! against 18.3–19.0 (redis-server: 11.5–12.0). The echo server (Go's
//! loadgen, 3 s runs, interleaved): at 100 connections 8.0 and 9.4 CPU-µs
//! per round trip against io_uring's 10.6 and 9.6 and Go's 10.2 and 10.1;
//! at 10,000 connections 13.2 against 15.9 (Go: 14.4).
//!
//! Beside tokio (`ci/peers`, whose workers reap epoll themselves), under
//! `wrk -t1 -c1000` against the HTTP hello servers (5 s, 2 Ps or 2 workers,
//! per request from `/proc/PID/task/*`, two rounds interleaved):
//!
//! | server | voluntary + involuntary switches | CPU-µs (poller thread) |
//! |---|---|---|
//! | goro, io_uring | 0.107 + 0.040, 0.122 + 0.044 | 10.63 (1.13), 11.03 (1.20) |
//! | goro, epoll | 0.036 + 0.008, 0.041 + 0.009 | 10.05, 10.73 |
//! | tokio | 0.038 + 0.010, 0.043 + 0.010 | 9.93, 10.27 |
//!
//! So the hop costs about three times the thread switches of either
//! design that reaps on its workers, and most of the CPU gap to tokio.
//! In the poller thread's profile the switch-in after a sleep, the
//! reversal of the ring's task-work list (each entry a cache line the
//! waking CPU wrote) and the poll task functions are most of it.
//!
//! Re-measured at `wrk -t1 -c100` (2 Ps or 2 workers, `perf stat -e
//! 'syscalls:sys_enter_*' -p` over 3 s): per request, io_uring made
//! 0.13–0.18 `futex` calls and 0.15–0.20 context switches, against 0.048
//! and 0.089 with epoll reaped by Ms and 0.040 and 0.089 for tokio. In
//! interleaved 4 s runs the server's CPU per request was 9.1 and 11.1 µs
//! (io_uring), 7.2 and 9.2 (epoll) and 7.9 and 7.1 (tokio). In `perf
//! record` of the io_uring server, switching in after a sleep
//! (`finish_task_switch`) and re-enabling interrupts on leaving the wait
//! queues' and scheduler's locks (`_raw_spin_unlock_irqrestore`, mostly
//! from socket and futex wake-ups and waits) are 20 % of its CPU under wrk
//! and 27 % under `redis-benchmark -c 50 -P 1` against examples/kv, where
//! `ci/kv.sh` put goro-kv at 0.80 (SET) and 0.93 (GET) of redis-server's
//! requests per second with io_uring and 1.02 and 0.94 with
//! `GORO_NETPOLL=epoll`.
//!
//! # The backend contract
//!
//! As Go's `netpoll.go` lists what every platform must define, each backend
//! (`uring.rs`, `epoll.rs`) provides:
//!
//! - `init() -> io::Result<Backend>`: probe and set up. For io_uring: the ring
//!   with SINGLE_ISSUER + DEFER_TASKRUN (+ COOP_TASKRUN) where the kernel
//!   takes them (retrying without on EINVAL), `EXT_ARG` for timed waits,
//!   `POLL_ADD` and `ASYNC_CANCEL` in the opcode probe, and multishot poll
//!   checked by arming one on the wake eventfd and seeing `F_MORE`. A refusal
//!   (EPERM, ENOSYS, seccomp, `io_uring_disabled`) is an error the caller
//!   answers by falling back to epoll; ENOMEM (locked-memory limit on kernels
//!   before 5.12) is reported naming `ulimit -l`.
//! - `register(fd, token)`: start reporting the fd's readiness edges under
//!   `token`. An edge already present at registration is reported.
//! - `deregister(token)`: stop. io_uring: `ASYNC_CANCEL` of the poll; its
//!   own final CQE arrives later and only then is [`Event::Released`]
//!   emitted, so the owner recycles the token's slot only once the kernel can
//!   no longer complete anything under it (the "buffer released only after
//!   the target's completion" rule; our only buffer is the slot). epoll:
//!   `EPOLL_CTL_DEL` is synchronous, and `Released` follows at once. Once
//!   the poller is stopping, `deregister` reports the release itself: the
//!   closing ring cancels the poll, and a later `Released` for the same
//!   token is stale (the owner's generation check drops it).
//! - `poll(timeout, events)`: reap ready events in a batch; `None` blocks
//!   until an event or a wake; returns, possibly with no event, when woken.
//!   The caller always loops. (epoll: the poller thread's set holds only its
//!   wake eventfd; the sockets' set is `epoll::Direct`, polled by Ms.)
//! - `wake()`: break a blocked `poll` (an eventfd write; the io_uring ring
//!   watches it with a multishot poll, epoll with an `EPOLLIN` entry). Called
//!   only when the poller's `parked` flag is set: each wake costs the waker
//!   about 10 µs and lands 15–35 µs later (DESIGN §5).
//! - `close(released)`: cancel everything in flight, wait (bounded) for the
//!   completions, and close the ring or epoll fd: no leaked fds. The
//!   cancelled registrations' `Released` events go to the handler, so the
//!   owner's slots are recycled after a shutdown too.
//!
//! # Protocol between Ms and the poller thread
//!
//! 1. An M pushes a [`Request`] on a lock-free queue (crossbeam `Injector`).
//! 2. It issues a SeqCst fence and reads `parked`. Only if `parked` is set
//!    (and it wins the swap to false) does it write the eventfd: one wake per
//!    sleep, not per request. A timer request due no earlier than the
//!    poller's planned wake-up wakes it only once the queue is long
//!    ("Deadlines").
//! 3. The poller drains the whole queue into the ring (one `io_uring_enter`
//!    submits the batch), fires due timers, reaps without blocking, and hands
//!    each batch of events to the handler in one call.
//! 4. With nothing reaped it publishes its planned wake-up (`sleep_until`),
//!    stores `parked = true` (SeqCst), looks at the queue once more, and
//!    only then blocks until the earliest timer. The two
//!    SeqCst operations close the race with step 2: either the M sees
//!    `parked` and wakes, or the poller sees the request.
//!
//! # Deadlines
//!
//! goro's goroutine timers (`goro::time`) were being written concurrently, so
//! I/O deadlines live here: [`Poller::set_timer`] puts a `(deadline, token)`
//! in a heap owned by the poller thread, which bounds its wait by the
//! earliest entry and emits [`Event::Timer`] when one is due. A new timer
//! wakes a parked poller only if it is earlier than the wake-up the poller
//! already planned (`sleep_until`, published before `parked`); cancelling
//! does not wake it, except that any request wakes it once [`DRAIN_AT`]
//! are queued, so the queue stays short even where no I/O event would
//! wake the poller (epoll, whose readiness the Ms reap). Cancelled entries
//! are dropped lazily and the heap is compacted when mostly stale.
//!
//! # Rejected alternatives
//!
//! - **An io_uring `RECV`/`SEND` per operation** (a completion-based
//!   design): RECV with data queued costs 1.1 µs against 0.5 µs for `read()`
//!   (DESIGN §5), every blocked read is a submission (a queue push and often
//!   a poller wake at 10 µs to the waker), and a deadline must ASYNC_CANCEL
//!   it and keep the buffer until the cancelled CQE. Readiness once per
//!   socket plus syscalls from the M costs one submission per connection.
//! - **A oneshot poll re-armed per wait**: one submission, and so a likely
//!   poller wake, per EAGAIN.
//! - **One ring shared by all Ms under a lock**: SINGLE_ISSUER forbids it,
//!   and DEFER_TASKRUN runs completions only in the issuer's enter.
//! - **SQPOLL**: it occupies one of the two cores permanently.
//! - **Ms polling the ring themselves, as Go's Ms poll epoll** (no poller
//!   thread, no hop): io_uring posts a poll's completion through task work on
//!   the task that *submitted* it (with DEFER_TASKRUN, only inside that task's
//!   `io_uring_enter`; without it, by interrupting that task). So readiness
//!   cannot be reaped by whichever M is idle, only by the submitter. The
//!   variants that would make every M a submitter (a ring per M, or a poller
//!   that also runs goroutines) stall every socket registered on an M while
//!   that M sits in a blocking system call or runs a long goroutine; Go avoids
//!   this only because any thread may call `epoll_wait`, and so does goro's
//!   epoll backend ("Who reaps readiness"). sysmon could preempt a long
//!   goroutine on such an M early, and `blocking()` could move its
//!   goroutine to another M first, but a raw blocking system call (a file
//!   read, `std::thread::sleep`) cannot be moved: readiness and deadlines
//!   would wait for it to return, and a socket closed meanwhile would stay
//!   open (no FIN sent) as long, since its armed poll holds a reference to
//!   the file until the ring's owner cancels it. Re-arming every socket on
//!   a fresh ring owned by another thread would unstall readiness but not
//!   those closes. The hop's price,
//!   measured with `perf record -e cpu-clock` on the echo server at 100
//!   connections (Go's loadgen, 2 Ps): the poller thread is 15–18 % of the
//!   server's CPU, about half of it switching in after a sleep
//!   (`finish_task_switch`). For scale, the `recv`/`send` system calls
//!   themselves are 57 % of goro's CPU per round trip and 63 % of Go's.
//! - **Lingering on every wait** (IORING_FEAT_MIN_TIMEOUT, 6.12: wait for
//!   up to 32 events, returning 100 µs after the first): 0.35 → 0.21 context
//!   switches per echo round trip and +10–20 % round trips at 100
//!   connections, but −20 % at 1 connection, where every round trip waited
//!   the 100 µs. Kept only in the adaptive form of `linger.rs`: the poller
//!   lingers while lingering gathers enough of many active sockets, never
//!   with fewer than 10 active.
//! - **Spinning before blocking** (checking the ring's `IORING_SQ_TASKRUN`
//!   flag and the queue, no system call, for 10 µs before parking): the
//!   server's CPU per echo round trip rose from 12.3 to 13.6 µs (median of 5,
//!   100 connections, 2 Ps, Go's loadgen) with no clear gain in throughput
//!   or p99; on two cores the spinner takes the CPU the Ms and the client
//!   need. The poller blocks as soon as a non-blocking poll finds nothing.

mod epoll;
mod linger;
mod registry;
mod sys;
mod timers;
mod uring;

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal};

use timers::Timers;

/// A registration or timer name: a slot index and the slot's generation, so
/// an event for a recycled slot is detected, never misdelivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    pub index: u32,
    pub generation: u32,
}

impl Token {
    /// Tokens at or above this index are reserved by the backends (the wake
    /// eventfd, cancel requests).
    pub const MAX_INDEX: u32 = u32::MAX - 16;

    pub(crate) fn to_u64(self) -> u64 {
        (u64::from(self.index) << 32) | u64::from(self.generation)
    }

    pub(crate) fn from_u64(bits: u64) -> Token {
        Token {
            index: (bits >> 32) as u32,
            generation: bits as u32,
        }
    }
}

/// What the poller reports, in batches, to its handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A readiness edge on a registered fd. Hang-ups and errors count as
    /// both readable and writable: the next system call reports them.
    Io {
        token: Token,
        readable: bool,
        writable: bool,
        /// The peer hung up or the socket has an error (POLLRDHUP,
        /// POLLHUP, POLLERR): a read that drained the socket's data may
        /// still be followed by one that returns at once (EOF or the
        /// error), so the owner must not assume the next read would block.
        unusual: bool,
    },
    /// The registration under `token` is gone for good: no further event
    /// will carry it, so its slot may be reused.
    Released { token: Token },
    /// A timer set with [`Poller::set_timer`] is due.
    Timer { token: Token },
}

/// Which backend a poller runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Uring,
    Epoll,
}

impl BackendKind {
    /// Parses `GORO_NETPOLL`'s value, naming the variable on error.
    pub fn parse(text: &str) -> io::Result<BackendKind> {
        match text.trim() {
            "uring" | "io_uring" => Ok(BackendKind::Uring),
            "epoll" => Ok(BackendKind::Epoll),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("GORO_NETPOLL must be \"uring\" or \"epoll\", got {text:?}"),
            )),
        }
    }

    /// `GORO_NETPOLL` from the environment: `None` if unset.
    pub fn from_env() -> io::Result<Option<BackendKind>> {
        match std::env::var("GORO_NETPOLL") {
            Ok(text) => BackendKind::parse(&text).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(text)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("GORO_NETPOLL must be \"uring\" or \"epoll\", got {text:?}"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Uring => "io_uring",
            BackendKind::Epoll => "epoll",
        }
    }
}

/// Work handed from Ms to the poller thread.
#[derive(Debug)]
enum Request {
    Register { fd: RawFd, token: Token },
    Deregister { token: Token },
    SetTimer { token: Token, at: u64 },
    CancelTimer { token: Token },
}

/// The handler the poller thread calls with each batch of events. It must
/// not block for long: it runs on the poller thread.
pub type Handler = Box<dyn FnMut(&[Event]) + Send>;

/// Queued requests at which any push wakes a parked poller. Timer requests
/// due after its planned wake-up do not wake it otherwise, and with epoll
/// nothing else may for a long while: every timed wait queues a set and a
/// cancel, and a server with 60 s timeouts would pile up millions of them.
const DRAIN_AT: usize = 4096;

/// State shared between Ms and the poller thread.
struct Inner {
    queue: Injector<Request>,
    /// Set while the poller blocks (or is about to): a submitter that swaps
    /// it to false owes the wake (protocol step 2).
    parked: AtomicBool,
    /// When the parked poller will wake by itself, in ns since `base`;
    /// stored before `parked` is set for that sleep.
    sleep_until: AtomicU64,
    /// Requests pushed since the poller last began draining the queue.
    queued: AtomicUsize,
    stop: AtomicBool,
    /// The eventfd that breaks a blocked poll.
    wake: sys::EventFd,
    /// The sockets' epoll set, which Ms register in and poll themselves
    /// (epoll only; "Who reaps readiness").
    direct: Option<epoll::Direct>,
    base: Instant,
}

impl Inner {
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Queues `request` and wakes a parked poller for it, unless it is a
    /// timer due no earlier than the poller's own wake-up (`urgent_before`)
    /// and the queue is still short (`DRAIN_AT`).
    fn push(&self, request: Request, urgent_before: Option<u64>) {
        self.queue.push(request);
        let queued = self.queued.fetch_add(1, Ordering::Relaxed);
        // Pairs with the SeqCst store of `parked` before the poller's last
        // look at the queue (protocol step 4).
        fence(Ordering::SeqCst);
        // Acquire: `sleep_until` is stored before `parked`, for this sleep.
        if !self.parked.load(Ordering::Acquire) {
            return;
        }
        if let Some(at) = urgent_before {
            if at >= self.sleep_until.load(Ordering::Relaxed) && queued < DRAIN_AT {
                return;
            }
        }
        if self.parked.swap(false, Ordering::SeqCst) {
            self.wake.signal();
        }
    }
}

/// A running netpoller: its thread, its queue and its backend.
pub struct Poller {
    inner: Arc<Inner>,
    kind: BackendKind,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Poller {
    /// Starts a poller thread with `kind`, or, with `None`, io_uring falling
    /// back to epoll when io_uring is refused. `handler` receives every
    /// batch of events on the poller thread.
    ///
    /// # Errors
    /// The backend's setup error (a forced io_uring that is refused names the
    /// reason; a memlock failure names `ulimit -l`), or thread creation.
    pub fn start(kind: Option<BackendKind>, handler: Handler) -> io::Result<Poller> {
        let handler = Arc::new(Mutex::new(Some(handler)));
        if kind != Some(BackendKind::Epoll) {
            match Poller::start_with(BackendKind::Uring, handler.clone()) {
                Ok(poller) => return Ok(poller),
                Err(error) if kind.is_none() => {
                    tracing::info!(%error, "netpoll: io_uring unavailable, falling back to epoll");
                }
                Err(error) => return Err(error),
            }
        }
        Poller::start_with(BackendKind::Epoll, handler)
    }

    fn start_with(kind: BackendKind, handler: Arc<Mutex<Option<Handler>>>) -> io::Result<Poller> {
        let wake = sys::EventFd::new()?;
        let (tx, rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let direct = match kind {
            BackendKind::Epoll => Some(epoll::Direct::new()?),
            BackendKind::Uring => None,
        };
        let wake_fd = wake.raw();
        let inner_slot: Arc<Mutex<Option<Arc<Inner>>>> = Arc::new(Mutex::new(None));
        let slot = inner_slot.clone();
        // The ring is created on the poller thread itself: SINGLE_ISSUER binds
        // it to its creator, and DEFER_TASKRUN runs completions only there.
        let thread = std::thread::Builder::new()
            .name(format!("goro-netpoll-{}", kind.name()))
            .spawn(move || {
                let backend = match kind {
                    BackendKind::Uring => {
                        uring::Uring::init(wake_fd).map(|ring| Backend::Uring(Box::new(ring)))
                    }
                    BackendKind::Epoll => epoll::Epoll::init(wake_fd).map(Backend::Epoll),
                };
                let mut backend = match backend {
                    Ok(backend) => backend,
                    Err(error) => {
                        let _ = tx.send(Err(error));
                        return;
                    }
                };
                let _ = tx.send(Ok(()));
                let inner = loop {
                    if let Some(inner) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                        break inner;
                    }
                    std::thread::park();
                };
                let Some(mut handler) = handler.lock().unwrap_or_else(|e| e.into_inner()).take()
                else {
                    return;
                };
                // The owner recycles a registration's slot on `Released`:
                // those of the last drain, of deregistrations queued after
                // it, and of the polls cancelled at close are handed over.
                let mut released = run(&inner, &mut backend, &mut handler);
                loop {
                    match inner.queue.steal() {
                        Steal::Success(Request::Deregister { token }) => {
                            backend.deregister(token, &mut released)
                        }
                        Steal::Success(_) | Steal::Retry => {}
                        Steal::Empty => break,
                    }
                }
                backend.close(&mut released);
                if !released.is_empty() {
                    handler(&released);
                }
            })?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                let _ = thread.join();
                return Err(error);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(io::Error::other(
                    "goro: the netpoller thread died during setup",
                ));
            }
        }
        let inner = Arc::new(Inner {
            queue: Injector::new(),
            parked: AtomicBool::new(false),
            sleep_until: AtomicU64::new(u64::MAX),
            queued: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            wake,
            direct,
            base: Instant::now(),
        });
        *inner_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(inner.clone());
        thread.thread().unpark();
        tracing::info!(backend = kind.name(), "netpoll: started");
        Ok(Poller {
            inner,
            kind,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The backend this poller runs.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// Starts reporting `fd`'s readiness edges under `token` (contract:
    /// `register`). epoll registers synchronously on the calling thread;
    /// io_uring queues the request for the poller thread.
    ///
    /// # Errors
    /// epoll_ctl's error (EPERM for a regular file, say); `BrokenPipe` once
    /// the poller is stopped.
    pub fn register(&self, fd: RawFd, token: Token) -> io::Result<()> {
        if self.inner.stop.load(Ordering::Acquire) {
            return Err(stopped());
        }
        match &self.inner.direct {
            Some(direct) => epoll::register(direct.raw(), fd, token),
            None => {
                self.inner.push(Request::Register { fd, token }, None);
                Ok(())
            }
        }
    }

    /// Stops reporting for `token` (contract: `deregister`). Returns `true`
    /// if the registration is released at once (epoll); otherwise an
    /// [`Event::Released`] follows once the kernel is done with it. Must be
    /// called before the fd is closed (epoll removes by fd number).
    pub fn deregister(&self, fd: RawFd, token: Token) -> bool {
        match &self.inner.direct {
            Some(direct) => {
                epoll::deregister(direct.raw(), fd);
                true
            }
            None => {
                if self.inner.stop.load(Ordering::Acquire) {
                    // The ring is closed (or closing): nothing will complete.
                    return true;
                }
                self.inner.push(Request::Deregister { token }, None);
                // A shutdown that began meanwhile may have drained the queue
                // before our push: then no `Released` follows, and the
                // caller releases now (a later one for the same token is
                // stale, and dropped by the generation check).
                fence(Ordering::SeqCst);
                self.inner.stop.load(Ordering::SeqCst)
            }
        }
    }

    /// Whether [`Poller::shutdown`] has begun: nothing queued from now on
    /// is served.
    pub fn is_stopped(&self) -> bool {
        self.inner.stop.load(Ordering::Acquire)
    }

    /// Whether readiness is reaped by the caller's Ms with [`Poller::poll`]
    /// (epoll) rather than by the poller thread's handler (io_uring).
    pub fn is_direct(&self) -> bool {
        self.inner.direct.is_some()
    }

    /// Reaps readiness edges into `events` on the calling thread, waiting up
    /// to `timeout` (`None`: without limit) while there are none, or until
    /// [`Poller::interrupt`]. Many threads may poll at once; each edge is
    /// reported to one of them. Does nothing unless [`Poller::is_direct`].
    ///
    /// # Errors
    /// `epoll_wait`'s (EINTR is an empty, successful poll).
    pub fn poll(&self, timeout: Option<Duration>, events: &mut Vec<Event>) -> io::Result<()> {
        match &self.inner.direct {
            Some(direct) => direct.poll(timeout, events),
            None => Ok(()),
        }
    }

    /// Makes a thread blocked in [`Poller::poll`] return (or the next one
    /// that blocks, if none does now): Go's `netpollBreak`.
    pub fn interrupt(&self) {
        if let Some(direct) = &self.inner.direct {
            direct.ring();
        }
    }

    /// Emits [`Event::Timer`] for `token` at `deadline` (or at once if it
    /// has passed), unless cancelled first.
    pub fn set_timer(&self, token: Token, deadline: Instant) {
        // A deadline centuries away saturates to "never" rather than wrap
        // into the past (a `Duration::MAX` timeout made a busy loop of it).
        let at = deadline
            .checked_duration_since(self.inner.base)
            .map_or(0, |since| {
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
            });
        self.inner.push(Request::SetTimer { token, at }, Some(at));
    }

    /// Cancels a timer set under `token` (a no-op if it fired). It wakes the
    /// poller only to drain a long queue (`DRAIN_AT`): a stale timer costs
    /// the poller one spurious wake at most.
    pub fn cancel_timer(&self, token: Token) {
        self.inner
            .push(Request::CancelTimer { token }, Some(u64::MAX));
    }

    /// Stops the poller thread, cancels what is in flight, closes the ring or
    /// epoll fd and joins the thread (contract: `close`). Idempotent.
    pub fn shutdown(&self) {
        self.inner.stop.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
        self.inner.wake.signal();
        self.interrupt();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
            tracing::debug!(backend = self.kind.name(), "netpoll: stopped");
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").field("kind", &self.kind).finish()
    }
}

fn stopped() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "goro: the netpoller is stopped (runtime shut down)",
    )
}

/// The two backends behind one contract (module doc).
enum Backend {
    Uring(Box<uring::Uring>),
    Epoll(epoll::Epoll),
}

impl Backend {
    fn register(&mut self, fd: RawFd, token: Token) {
        match self {
            Backend::Uring(ring) => ring.register(fd, token),
            Backend::Epoll(_) => {}
        }
    }

    fn deregister(&mut self, token: Token, events: &mut Vec<Event>) {
        match self {
            Backend::Uring(ring) => ring.deregister(token, events),
            Backend::Epoll(_) => events.push(Event::Released { token }),
        }
    }

    fn poll(&mut self, timeout: Option<Duration>, events: &mut Vec<Event>) {
        match self {
            Backend::Uring(ring) => ring.poll(timeout, events),
            Backend::Epoll(epoll) => epoll.poll(timeout, events),
        }
    }

    /// Closes the backend, appending the `Released` events of what it
    /// cancels to `released`.
    fn close(self, released: &mut Vec<Event>) {
        match self {
            Backend::Uring(ring) => (*ring).close(released),
            Backend::Epoll(epoll) => epoll.close(),
        }
    }
}

/// The poller thread's loop (protocol steps 3 and 4). Returns, once
/// stopped, the `Released` events of its last drain.
fn run(inner: &Inner, backend: &mut Backend, handler: &mut Handler) -> Vec<Event> {
    let mut timers = Timers::default();
    let mut events: Vec<Event> = Vec::with_capacity(512);
    loop {
        inner.queued.store(0, Ordering::Relaxed);
        loop {
            match inner.queue.steal() {
                Steal::Success(Request::Register { fd, token }) => backend.register(fd, token),
                Steal::Success(Request::Deregister { token }) => {
                    backend.deregister(token, &mut events)
                }
                Steal::Success(Request::SetTimer { token, at }) => timers.set(token, at),
                Steal::Success(Request::CancelTimer { token }) => timers.cancel(token),
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
        if inner.stop.load(Ordering::Acquire) {
            events.retain(|event| matches!(event, Event::Released { .. }));
            return events;
        }
        timers.expire(inner.now(), &mut events);
        backend.poll(Some(Duration::ZERO), &mut events);
        if !events.is_empty() {
            tracing::trace!(events = events.len(), "netpoll batch");
            handler(&events);
            events.clear();
            continue;
        }
        // Step 4: publish the planned wake-up, announce the sleep, look once
        // more, then block. `sleep_until` goes first: a submitter that sees
        // `parked` must not compare its timer with the last sleep's wake-up,
        // long past, and skip the wake.
        let next = timers.next();
        inner
            .sleep_until
            .store(next.unwrap_or(u64::MAX), Ordering::Relaxed);
        inner.parked.store(true, Ordering::SeqCst);
        if !inner.queue.is_empty() || inner.stop.load(Ordering::Acquire) {
            inner.parked.store(false, Ordering::Relaxed);
            continue;
        }
        let timeout = next.map(|at| Duration::from_nanos(at.saturating_sub(inner.now())));
        backend.poll(timeout, &mut events);
        inner.parked.store(false, Ordering::SeqCst);
        // Due timers fire at the top of the loop, after the queue is drained,
        // so a cancel queued during the sleep is honoured.
        if !events.is_empty() {
            tracing::trace!(events = events.len(), "netpoll batch");
            handler(&events);
            events.clear();
        }
    }
}

#[cfg(test)]
mod tests;
