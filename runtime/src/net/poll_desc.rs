//! Poll descriptors: the per-socket readiness state between goroutines and
//! the netpoller (Go's `pollDesc` in `netpoll.go`).
//!
//! # State per direction (read, write)
//!
//! - `ready`: an edge arrived while nobody waited (Go's `pdReady`).
//! - `waiters`: parked goroutines or blocked threads, each with the sequence
//!   number of its wait (its timer's token generation).
//!
//! Invariant: `ready` and a non-empty `waiters` never hold together outside
//! the lock; each is changed only under the direction's lock, a leaf lock
//! (HACKING.md "Lock order"). Wakes happen after it is released.
//!
//! # The wait protocol
//!
//! 1. The goroutine reads the direction's edge count, then makes the
//!    non-blocking system call; on anything but EAGAIN it returns.
//! 2. On EAGAIN it registers the socket with its runtime's netpoller if this
//!    is the first time (one registration for the socket's life).
//! 3. It parks through `sched::block`. Under the direction's lock, in the
//!    park's unlock: if `ready` is set it clears it and does not park (the
//!    edge came between the syscall and now: retry); if the edge count has
//!    moved since step 1 (an edge that readied *other* waiters: `ready` is
//!    set only when there are none), or the socket was not yet registered
//!    at step 1, it does not park either; otherwise it takes the
//!    next sequence number, sets its deadline timer if it has one (before
//!    publishing, so nothing on the parked stack is touched afterwards), and
//!    queues its waiter.
//! 4. Whoever reaps an edge — the netpoller thread (io_uring), or an M or
//!    sysmon polling epoll (`sched/netpoll.rs`) — takes every waiter of that
//!    direction (or sets `ready` if there is none) in [`collect`] and
//!    readies them in one batch; on a timer (always the netpoller thread),
//!    it takes the one waiter whose sequence number matches.
//! 5. Woken, the goroutine reports `TimedOut` if its deadline has passed
//!    (the data, if any, stays in the socket for the next call), else
//!    cancels its timer and retries the system call (step 1).
//!
//! A caller that is a plain thread (not a goroutine) skips the netpoller and
//! blocks in `poll(2)`, as does a goroutine whose socket's netpoller has
//! stopped (the runtime that registered it shut down): no one would wake a
//! waiter parked there.
//!
//! # Skipping a read known to fail
//!
//! A request/response connection reads a request, writes the answer, and
//! reads again: that read almost always fails with EAGAIN. So TCP reads go
//! through `recvmsg` with `TCP_INQ` set on the socket, and the kernel
//! reports with each read how many bytes are still queued. After a read
//! that left nothing queued, `read_stream` remembers the direction's edge
//! count taken *before* that read (`PollDesc::edges`, bumped by the
//! handler for every read edge). If the next read finds the count
//! unchanged, it parks at once (step 3) instead of making the call. No
//! wake-up can be lost: data that arrived after the read produces an edge
//! that is either counted already (then the read is made) or not yet
//! handled (then it sets `ready` or finds the waiter, exactly as after an
//! EAGAIN). An edge handled before the count was taken concerns data the
//! read already consumed.
//!
//! The kernel's count covers what a guess from the read's length would
//! miss: a read stops at TCP's urgent mark once it has copied anything,
//! with the bytes after the mark still queued, and a FIN counts as one
//! queued byte. A socket whose reads carry no count (before Linux 4.18,
//! which refuses `TCP_INQ`) is never skipped. One case remains: an error
//! (a reset) or a local `shutdown(Read)` leaves nothing queued, yet the
//! next read would return at once, and its edge may have merged with the
//! data's (epoll and multishot poll coalesce wake-ups not yet reaped). So
//! the netpoller's `unusual` bit
//! (RDHUP/HUP/ERR in the edge's mask) is sticky per registration, set
//! before the edge is counted, and such a socket is never skipped.
//!
//! **Rejected: a short read means an empty queue.** This was the rule
//! before `TCP_INQ`. It needs the urgent mark from somewhere else, and
//! io_uring cannot give it: a multishot poll's CQE carries the wake-up's
//! own mask, and every TCP data wake-up (`sock_def_readable`) passes
//! `EPOLLIN|EPOLLPRI`, so POLLPRI came with every edge. Treating PRI as
//! urgent data turned the skip off for every socket, one failed `recvfrom`
//! per round trip (echo, 100 connections, `perf stat -e
//! 'syscalls:sys_enter_*'` over 3 s: 1.94 `recvfrom` per round trip, against
//! 0.98 `recvmsg` with `TCP_INQ`). `recvmsg` copies a `msghdr` and an iovec
//! in, which `recvfrom` does not; beside the short-read rule as it worked
//! before POLLPRI, that did not show (4 alternated runs, Go's loadgen: 6.79
//! against 6.83 CPU-µs per round trip).
//!
//! # Slots and generations
//!
//! Descriptors live in a process-wide table of leaked chunks (stable
//! addresses, lock-free lookup by index; Go's `pollcache` is persistent
//! memory too). A socket's netpoll `Token` is its slot index plus the slot's
//! generation, bumped whenever the slot is freed: an event for a recycled
//! slot is stale and dropped. A slot is freed only on `Event::Released`,
//! i.e. after the kernel's final completion for the registration (io_uring's
//! cancelled poll), or at once for epoll (EPOLL_CTL_DEL is synchronous), or
//! at once when the deregistration meets a netpoller that is stopping
//! (`Poller::deregister` returns true: the closing ring cancels the poll,
//! and a `Released` that still comes for the token is stale by then).

use std::io;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use goro_netpoll::{Event, Handler, Poller, Token};

use crate::sched::locks::{self, SectionGuard};
use crate::sched::netpoll::{current_poller, ready_batch};
use crate::sched::{block, in_goroutine, yield_now, WaitReason, Waiter};
use crate::sys::net::Received;

const CHUNK: usize = 256;
const CHUNKS: usize = 4096;

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Read = 0,
    Write = 1,
}

#[derive(Default)]
struct Direction {
    ready: bool,
    seq: u32,
    waiters: Waiters,
}

/// A direction's waiters, each with its wait's sequence number. The first
/// sits inline: a socket almost always has one reader and one writer, and
/// a `Vec`'s separate buffer was a cache miss per edge at 10,000
/// connections (12.7 % of the io_uring poller thread's samples, in the
/// drain of `collect`).
#[derive(Default)]
struct Waiters {
    first: Option<(u32, Waiter)>,
    more: Vec<(u32, Waiter)>,
}

impl Waiters {
    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn push(&mut self, seq: u32, waiter: Waiter) {
        if self.first.is_none() {
            self.first = Some((seq, waiter));
        } else {
            self.more.push((seq, waiter));
        }
    }

    /// Moves every waiter to `wake`.
    fn drain_into(&mut self, wake: &mut Vec<Waiter>) {
        if let Some((_, waiter)) = self.first.take() {
            wake.push(waiter);
            wake.extend(self.more.drain(..).map(|(_, waiter)| waiter));
        }
    }

    /// Takes out the waiter whose wait has sequence number `seq`.
    fn remove(&mut self, seq: u32) -> Option<Waiter> {
        if self.first.as_ref().is_some_and(|(first, _)| *first == seq) {
            let (_, waiter) = self.first.take()?;
            if !self.more.is_empty() {
                self.first = Some(self.more.remove(0));
            }
            return Some(waiter);
        }
        let at = self.more.iter().position(|(other, _)| *other == seq)?;
        Some(self.more.swap_remove(at).1)
    }
}

/// One socket's readiness state (module doc).
pub(crate) struct PollDesc {
    index: u32,
    generation: AtomicU32,
    dirs: [Mutex<Direction>; 2],
    /// Readiness edges seen per direction, bumped by the handler under the
    /// direction's lock ("Skipping a read known to fail" in the module doc).
    edges: [AtomicU32; 2],
    /// Set (for the registration's life) by a hang-up or error edge: a read
    /// that drained the data no longer implies that the next one would
    /// block (module doc).
    unusual: AtomicBool,
}

impl PollDesc {
    /// The direction's lock, held with the preempt-off count raised
    /// (HACKING.md, lock order rule 9).
    fn dir(&self, dir: Dir) -> SectionGuard<'_, Direction> {
        locks::lock(&self.dirs[dir as usize])
    }
}

static TABLE: [AtomicPtr<PollDesc>; CHUNKS] = [const { AtomicPtr::new(ptr::null_mut()) }; CHUNKS];

#[derive(Default)]
struct Slots {
    next: u32,
    free: Vec<u32>,
}

static SLOTS: Mutex<Slots> = Mutex::new(Slots {
    next: 0,
    free: Vec::new(),
});

fn lookup(index: u32) -> Option<&'static PollDesc> {
    let chunk = TABLE.get(index as usize / CHUNK)?.load(Ordering::Acquire);
    if chunk.is_null() {
        return None;
    }
    // SAFETY: chunks are leaked arrays of CHUNK descriptors, published with
    // Release after initialisation and never freed.
    Some(unsafe { &*chunk.add(index as usize % CHUNK) })
}

fn allocate() -> io::Result<&'static PollDesc> {
    let mut slots = locks::lock(&SLOTS);
    let index = match slots.free.pop() {
        Some(index) => index,
        None => {
            let index = slots.next;
            if index as usize >= CHUNK * CHUNKS {
                return Err(io::Error::other(
                    "goro: more than 1,048,576 sockets registered with the netpoller",
                ));
            }
            if (index as usize).is_multiple_of(CHUNK) {
                let chunk: Box<[PollDesc]> = (0..CHUNK as u32)
                    .map(|offset| PollDesc {
                        index: index + offset,
                        generation: AtomicU32::new(1),
                        dirs: Default::default(),
                        edges: Default::default(),
                        unusual: AtomicBool::new(false),
                    })
                    .collect();
                let chunk = Box::leak(chunk).as_mut_ptr();
                TABLE[index as usize / CHUNK].store(chunk, Ordering::Release);
            }
            slots.next += 1;
            index
        }
    };
    drop(slots);
    lookup(index).ok_or_else(|| io::Error::other("goro: poll descriptor table corrupt"))
}

/// Frees the slot if it still has `generation` (a second release is a no-op).
fn release(desc: &'static PollDesc, generation: u32) {
    if desc
        .generation
        .compare_exchange(
            generation,
            generation.wrapping_add(1),
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_err()
    {
        return;
    }
    for dir in [Dir::Read, Dir::Write] {
        desc.dir(dir).ready = false;
    }
    desc.unusual.store(false, Ordering::Relaxed);
    locks::lock(&SLOTS).free.push(desc.index);
}

fn timer_token(desc: &PollDesc, dir: Dir, seq: u32) -> Token {
    Token {
        index: desc.index * 2 + dir as u32,
        generation: seq,
    }
}

/// The netpoller thread's handler: events to wakes, in one batch (module
/// doc, step 4). With epoll the thread sees only deadlines and releases;
/// readiness is reaped by the Ms (`sched::netpoll`), through [`collect`].
pub(super) fn handler() -> Handler {
    let mut wake: Vec<Waiter> = Vec::with_capacity(256);
    Box::new(move |events: &[Event]| {
        collect(events, &mut wake);
        ready_batch(&mut wake);
    })
}

/// Applies `events` to the poll descriptors and appends the waiters they
/// release to `wake`, for the caller to wake once no lock is held.
pub(crate) fn collect(events: &[Event], wake: &mut Vec<Waiter>) {
    for event in events {
        match *event {
            Event::Io {
                token,
                readable,
                writable,
                unusual,
            } => {
                let Some(desc) = lookup(token.index) else {
                    continue;
                };
                if desc.generation.load(Ordering::Acquire) != token.generation {
                    continue;
                }
                if unusual {
                    desc.unusual.store(true, Ordering::Release);
                }
                for (dir, edge) in [(Dir::Read, readable), (Dir::Write, writable)] {
                    if edge {
                        let mut state = desc.dir(dir);
                        desc.edges[dir as usize].fetch_add(1, Ordering::Release);
                        if state.waiters.is_empty() {
                            state.ready = true;
                        } else {
                            state.waiters.drain_into(wake);
                        }
                    }
                }
            }
            Event::Timer { token } => {
                let dir = if token.index % 2 == 0 {
                    Dir::Read
                } else {
                    Dir::Write
                };
                let Some(desc) = lookup(token.index / 2) else {
                    continue;
                };
                if let Some(waiter) = desc.dir(dir).waiters.remove(token.generation) {
                    wake.push(waiter);
                }
            }
            Event::Released { token } => {
                if let Some(desc) = lookup(token.index) {
                    release(desc, token.generation);
                }
            }
        }
    }
}

struct Registration {
    desc: &'static PollDesc,
    token: Token,
    poller: Arc<Poller>,
}

/// A non-blocking socket plus its (lazily made) netpoll registration and
/// its read and write timeouts.
pub(crate) struct Pollable<S: AsRawFd> {
    io: S,
    registration: OnceLock<Registration>,
    /// Held by the one goroutine making the registration (`registration`).
    registering: AtomicBool,
    /// Timeouts in nanoseconds; 0 is none.
    timeouts: [AtomicU64; 2],
    /// `DRAINED | edges` after a stream read that left the receive queue
    /// empty: the read-edge count taken before that read; 0 when unknown
    /// (see `read_stream`).
    drained: AtomicU64,
}

const DRAINED: u64 = 1 << 32;

/// Whether a read may park without its system call, given the `drained`
/// word left by the last read: that read emptied the queue, no read edge
/// has been counted since it began, and the socket has not hung up.
fn skips(drained: u64, desc: &PollDesc) -> bool {
    drained == DRAINED | u64::from(desc.edges[Dir::Read as usize].load(Ordering::Acquire))
        && !desc.unusual.load(Ordering::Acquire)
}

pub(crate) fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "goro: i/o timeout (deadline exceeded)",
    )
}

impl<S: AsRawFd> Pollable<S> {
    /// Wraps a socket that is already in non-blocking mode.
    pub(crate) fn new(io: S) -> Pollable<S> {
        Pollable {
            io,
            registration: OnceLock::new(),
            registering: AtomicBool::new(false),
            timeouts: [AtomicU64::new(0), AtomicU64::new(0)],
            drained: AtomicU64::new(0),
        }
    }

    pub(crate) fn get(&self) -> &S {
        &self.io
    }

    pub(crate) fn set_timeout(&self, dir: Dir, timeout: Option<Duration>) -> io::Result<()> {
        let nanos = match timeout {
            None => 0,
            Some(d) if d.is_zero() => return Err(crate::sys::net::zero_timeout_error()),
            Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1),
        };
        self.timeouts[dir as usize].store(nanos, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn timeout(&self, dir: Dir) -> Option<Duration> {
        match self.timeouts[dir as usize].load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Runs the non-blocking call `f` until it does not report EAGAIN,
    /// waiting for readiness in between (module doc), within the
    /// direction's timeout.
    pub(crate) fn io<R>(&self, dir: Dir, mut f: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let mut deadline = None;
        loop {
            let since = self.edge_count(dir);
            match f(&self.io) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if deadline.is_none() {
                        deadline = Some(self.timeout(dir).map(|t| Instant::now() + t));
                    }
                    self.wait(dir, deadline.flatten(), since)?;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                result => return result,
            }
        }
    }

    /// A stream read by `f` of up to `len` bytes (only `len == 0` matters:
    /// it returns at once), as [`Pollable::io`], but skipping the system
    /// call when the last read left the receive queue empty (`f` reports
    /// the bytes still queued) and no read edge has arrived since it
    /// started (module doc: "Skipping a read known to fail").
    pub(crate) fn read_stream(
        &self,
        len: usize,
        mut f: impl FnMut(&S) -> io::Result<Received>,
    ) -> io::Result<usize> {
        if len == 0 {
            // As Go's `poll.FD.Read`: an empty read returns at once. (A
            // TCP recv of 0 bytes waits for data like any other.)
            return Ok(0);
        }
        let Some(registration) = self.registration.get() else {
            return self.io(Dir::Read, |s| f(s).map(|received| received.len));
        };
        let desc = registration.desc;
        let edges = &desc.edges[Dir::Read as usize];
        let mut deadline = None;
        let drained = self.drained.load(Ordering::Relaxed);
        if skips(drained, desc) {
            deadline = Some(self.timeout(Dir::Read).map(|t| Instant::now() + t));
            // The draining read's count: an edge since then means a retry.
            self.wait(Dir::Read, deadline.flatten(), Some(drained as u32))?;
        }
        loop {
            let before = edges.load(Ordering::Acquire);
            match f(&self.io) {
                Ok(received) => {
                    let drained = if received.len > 0 && received.queued == Some(0) {
                        DRAINED | u64::from(before)
                    } else {
                        0
                    };
                    self.drained.store(drained, Ordering::Relaxed);
                    return Ok(received.len);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if deadline.is_none() {
                        deadline = Some(self.timeout(Dir::Read).map(|t| Instant::now() + t));
                    }
                    self.wait(Dir::Read, deadline.flatten(), Some(before))?;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.drained.store(0, Ordering::Relaxed);
                    return Err(error);
                }
            }
        }
    }

    /// Whether the next [`Pollable::read_stream`] would park without a
    /// system call: the last read drained the socket, no read edge has come
    /// since, and the socket has not hung up.
    #[cfg(test)]
    pub(crate) fn next_read_skipped(&self) -> bool {
        self.registration.get().is_some_and(|registration| {
            skips(self.drained.load(Ordering::Relaxed), registration.desc)
        })
    }

    /// The direction's edge count ([`PollDesc::edges`]) if the socket is
    /// registered: taken before a system call, for [`Pollable::wait`].
    pub(crate) fn edge_count(&self, dir: Dir) -> Option<u32> {
        let registration = self.registration.get()?;
        Some(registration.desc.edges[dir as usize].load(Ordering::Acquire))
    }

    /// Waits until `dir` may be ready (protocol steps 2–5), or `deadline`.
    /// `since` is the edge count taken before the system call that found
    /// the socket not ready ([`Pollable::edge_count`]): if an edge has come
    /// since, or the socket was not registered then (`None`), this returns
    /// at once for the caller to try again. Without it a goroutine could
    /// miss an edge that another waiter of the same direction took: two
    /// acceptors, say, where the edge for two connections readied only the
    /// one already parked, and the other parked after it for good.
    pub(crate) fn wait(
        &self,
        dir: Dir,
        deadline: Option<Instant>,
        since: Option<u32>,
    ) -> io::Result<()> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(timed_out());
        }
        let registration = match self.registration()? {
            Some(registration) if in_goroutine() && !registration.poller.is_stopped() => {
                Some(registration)
            }
            // A plain thread, or a netpoller that has stopped (its runtime
            // shut down): nothing would wake a parked waiter.
            _ => None,
        };
        let Some(registration) = registration else {
            // Block in poll(2).
            return match crate::sys::net::poll_thread(&self.io, dir == Dir::Write, deadline)? {
                true => Ok(()),
                false => Err(timed_out()),
            };
        };
        let desc = registration.desc;
        // Retry without parking (a switch out and back) when the answer is
        // known already; the look under the lock below is the one that
        // counts.
        let Some(since) = since else {
            return Ok(());
        };
        if desc.edges[dir as usize].load(Ordering::Acquire) != since {
            return Ok(());
        }
        let poller = &registration.poller;
        let mut armed = None;
        let reason = match dir {
            Dir::Read => WaitReason::IoRead,
            Dir::Write => WaitReason::IoWrite,
        };
        block(reason, |waiter| {
            let mut state = desc.dir(dir);
            if state.ready {
                state.ready = false;
                return false;
            }
            // Under the direction's lock, which the handler holds while it
            // counts an edge and takes the waiters: either the count moved
            // before this look, or the handler finds this waiter.
            if desc.edges[dir as usize].load(Ordering::Acquire) != since {
                return false;
            }
            state.seq = state.seq.wrapping_add(1);
            let seq = state.seq;
            if let Some(deadline) = deadline {
                poller.set_timer(timer_token(desc, dir, seq), deadline);
            }
            armed = Some(seq);
            state.waiters.push(seq, waiter);
            crate::sched::stats::count_netpoll_submit();
            true
        });
        if let (Some(deadline), Some(seq)) = (deadline, armed) {
            if Instant::now() >= deadline {
                return Err(timed_out());
            }
            poller.cancel_timer(timer_token(desc, dir, seq));
        }
        Ok(())
    }

    /// The netpoll registration, made on first need; `None` outside a
    /// goroutine unless one made it already.
    ///
    /// One goroutine at a time registers (`registering`): two goroutines
    /// blocking on a new socket at once (acceptors sharing a listener) would
    /// otherwise both register it, and epoll refuses the second with EEXIST.
    /// The registrar never parks while it holds the flag, so a waiter only
    /// yields its P until the registration is published, or retries itself
    /// if the registrar failed.
    fn registration(&self) -> io::Result<Option<&Registration>> {
        loop {
            if let Some(registration) = self.registration.get() {
                return Ok(Some(registration));
            }
            if !in_goroutine() {
                return Ok(None);
            }
            if self
                .registering
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
            yield_now();
        }
        let result = self.register();
        self.registering.store(false, Ordering::Release);
        result
    }

    /// Makes the registration, holding `registering`.
    fn register(&self) -> io::Result<Option<&Registration>> {
        if let Some(registration) = self.registration.get() {
            return Ok(Some(registration));
        }
        let poller = match current_poller(handler) {
            None => return Ok(None),
            Some(poller) => poller?,
        };
        let desc = allocate()?;
        let token = Token {
            index: desc.index,
            generation: desc.generation.load(Ordering::Acquire),
        };
        if let Err(error) = poller.register(self.io.as_raw_fd(), token) {
            release(desc, token.generation);
            return Err(error);
        }
        if let Err(lost) = self.registration.set(Registration {
            desc,
            token,
            poller,
        }) {
            // Unreachable while `registering` is held; undone all the same.
            deregister(self.io.as_raw_fd(), lost);
        }
        Ok(self.registration.get())
    }

    /// Ends the netpoll registration and waits, at most `limit`, until the
    /// netpoller has let go of the socket. io_uring's multishot poll holds a
    /// reference to the socket until its cancellation completes on the
    /// poller thread, so a listener closed without this wait stays bound
    /// (and keeps queueing connections) for those microseconds: binding the
    /// address again at once failed with EADDRINUSE. `shutdown(SHUT_RD)`
    /// would stop it at once too, but it acts on the socket, not on this
    /// descriptor, and so also on every duplicate of it (a listener handed
    /// to a new process for a restart). The wait ends early if the
    /// netpoller stops: its close cancels the poll (and releases the slot)
    /// by itself. A goroutine yields between looks, unless it is pinned by
    /// `preempt::disable()`: then, like a thread, it sleeps.
    pub(crate) fn deregister_and_wait(&mut self, limit: Duration) {
        let Some(registration) = self.registration.take() else {
            return;
        };
        let (desc, token, poller) = (
            registration.desc,
            registration.token,
            registration.poller.clone(),
        );
        if deregister(self.io.as_raw_fd(), registration) {
            return;
        }
        let until = Instant::now() + limit;
        while desc.generation.load(Ordering::Acquire) == token.generation
            && !poller.is_stopped()
            && Instant::now() < until
        {
            if in_goroutine() && !crate::preempt::pinned() {
                yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
}

/// Ends `registration`; returns whether its slot is released already (else
/// `Event::Released` will release it).
fn deregister(fd: i32, registration: Registration) -> bool {
    let released = registration.poller.deregister(fd, registration.token);
    if released {
        release(registration.desc, registration.token.generation);
    }
    released
}

impl<S: AsRawFd> Drop for Pollable<S> {
    fn drop(&mut self) {
        // Before the fd closes (epoll removes by fd number); io_uring frees
        // the slot when the cancelled poll's final CQE arrives.
        if let Some(registration) = self.registration.take() {
            deregister(self.io.as_raw_fd(), registration);
        }
    }
}
