//! The io_uring backend: one multishot `POLL_ADD` per registered socket,
//! owned by the poller thread (SINGLE_ISSUER + DEFER_TASKRUN).
//!
//! # Lifecycle of a registration (io-uring crate / monoio style)
//!
//! 1. **Armed**: `register` queues a multishot poll under the token's
//!    `user_data`. Each CQE with `F_MORE` is a readiness edge, reported as
//!    [`Event::Io`].
//! 2. **Ended by the kernel**: a CQE without `F_MORE` that we did not ask
//!    for (a CQ overflow, for one) ends the poll; it is re-armed at once, and
//!    the fresh poll reports any readiness present when it arms.
//! 3. **Cancelling**: `deregister` submits `ASYNC_CANCEL` for the token. The
//!    registration stays in the table until the poll's own final CQE
//!    (`-ECANCELED`, no `F_MORE`) arrives; only then is [`Event::Released`]
//!    emitted and the owner may recycle the token's slot.
//!
//! Reserved `user_data`: [`WAKE`] (the multishot poll on the wake eventfd)
//! and [`CANCEL`] (the cancel requests' own CQEs, ignored).
//!
//! # Setup and probing
//!
//! The ring is tried with SINGLE_ISSUER + DEFER_TASKRUN + COOP_TASKRUN +
//! TASKRUN_FLAG first (completions run only inside our own `io_uring_enter`,
//! no task-work IPIs), then without TASKRUN_FLAG, then without the newer
//! flags, on EINVAL.
//!
//! TASKRUN_FLAG makes the kernel raise `IORING_SQ_TASKRUN` in the shared SQ
//! flags while deferred completions wait for an enter. A non-blocking poll
//! reads it and skips `io_uring_enter` when nothing is to be submitted or
//! run. Measured (echo, 100 connections, 2 Ps, `perf stat` over 3 s): 170k
//! enters for 203k round trips before, 65k for 200k after — the old
//! non-blocking enter lacked GETEVENTS, so under DEFER_TASKRUN it ran no
//! completions at all and only cost a system call per batch. `EXT_ARG` (timed waits) is
//! required, `POLL_ADD` and `ASYNC_CANCEL` must pass the opcode probe, and
//! multishot poll (5.13+; it cannot be probed by opcode) is verified by arming
//! it on the wake eventfd, ringing once, and checking the CQE carries
//! `F_MORE`. Any failure is an error and the caller falls back to epoll.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use crate::linger::{self, Linger};
use crate::registry::{Registration, Registry};
use crate::sys::{self, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP};
use crate::{Event, Token};

/// `user_data` of the wake eventfd's multishot poll.
const WAKE: u64 = u64::MAX;
/// `user_data` of ASYNC_CANCEL requests.
const CANCEL: u64 = u64::MAX - 1;

const SQ_ENTRIES: u32 = 1024;
/// Large enough for a C10K burst; an overflow only ends multishot polls,
/// which are re-armed (lifecycle step 2).
const CQ_ENTRIES: u32 = 16384;

/// Adds setup flags to a ring builder.
type SetupFlags = fn(&mut io_uring::Builder);

pub(crate) struct Uring {
    ring: IoUring,
    wake: RawFd,
    registrations: Registry,
    /// Completions (user_data, result, flags) read off the CQ but not yet
    /// handled: those a push into a full SQ set aside, for the next reap.
    /// Empty between reaps otherwise; kept for its capacity.
    completions: Vec<(u64, i32, u32)>,
    /// The ring was set up with TASKRUN_FLAG: the kernel raises
    /// `IORING_SQ_TASKRUN` in shared memory whenever deferred completions
    /// wait for an enter, so a non-blocking poll can skip the system call
    /// when nothing is pending (see [`Uring::poll`]).
    taskrun_flag: bool,
    /// The kernel has IORING_FEAT_MIN_TIMEOUT (6.12): blocking waits may
    /// linger (`linger.rs`).
    min_timeout: bool,
    linger: Linger,
}

/// Maps a setup failure to the error the user needs to see.
fn setup_error(error: io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(libc::ENOMEM) => io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "goro: io_uring_setup failed with ENOMEM: the locked-memory limit is too low \
                 for the ring (raise `ulimit -l`, or set GORO_NETPOLL=epoll): {error}"
            ),
        ),
        Some(libc::EMFILE) | Some(libc::ENFILE) => io::Error::new(
            error.kind(),
            format!("goro: io_uring_setup: out of file descriptors (RLIMIT_NOFILE): {error}"),
        ),
        Some(libc::EPERM) | Some(libc::ENOSYS) | Some(libc::EACCES) => io::Error::new(
            error.kind(),
            format!(
                "goro: io_uring is refused here (disabled by sysctl kernel.io_uring_disabled, \
                 a seccomp profile, or an old kernel): {error}"
            ),
        ),
        _ => io::Error::new(error.kind(), format!("goro: io_uring_setup: {error}")),
    }
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("goro: this kernel's io_uring lacks {what}"),
    )
}

impl Uring {
    pub(crate) fn init(wake: RawFd) -> io::Result<Uring> {
        Uring::init_sized(wake, SQ_ENTRIES, CQ_ENTRIES)
    }

    /// [`Uring::init`] with the rings' sizes given (tests use tiny ones).
    fn init_sized(wake: RawFd, sq_entries: u32, cq_entries: u32) -> io::Result<Uring> {
        let attempts: [(&str, SetupFlags); 4] = [
            (
                "SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN|TASKRUN_FLAG",
                |b| {
                    b.setup_single_issuer()
                        .setup_defer_taskrun()
                        .setup_coop_taskrun()
                        .setup_taskrun_flag();
                },
            ),
            ("SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN", |b| {
                b.setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_coop_taskrun();
            }),
            ("COOP_TASKRUN", |b| {
                b.setup_coop_taskrun();
            }),
            ("no flags", |_| {}),
        ];
        let mut last = None;
        let mut ring = None;
        let mut taskrun_flag = false;
        for (attempt, (name, flags)) in attempts.into_iter().enumerate() {
            let mut builder = IoUring::builder();
            builder.setup_cqsize(cq_entries);
            flags(&mut builder);
            match builder.build(sq_entries) {
                Ok(built) => {
                    tracing::debug!(flags = name, "netpoll: io_uring ring set up");
                    ring = Some(built);
                    taskrun_flag = attempt == 0;
                    break;
                }
                Err(error) if error.raw_os_error() == Some(sys::EINVAL) => last = Some(error),
                Err(error) => return Err(setup_error(error)),
            }
        }
        let Some(ring) = ring else {
            return Err(setup_error(
                last.unwrap_or_else(|| unsupported("a usable setup")),
            ));
        };
        if !ring.params().is_feature_ext_arg() {
            return Err(unsupported("IORING_FEAT_EXT_ARG (timed waits, 5.11)"));
        }
        let mut probe = Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(|error| {
                io::Error::new(error.kind(), format!("goro: io_uring probe: {error}"))
            })?;
        if !probe.is_supported(opcode::PollAdd::CODE)
            || !probe.is_supported(opcode::AsyncCancel::CODE)
        {
            return Err(unsupported("POLL_ADD or ASYNC_CANCEL"));
        }
        let mut uring = Uring {
            ring,
            wake,
            registrations: Registry::default(),
            completions: Vec::with_capacity(1024),
            taskrun_flag,
            min_timeout: false,
            linger: Linger::default(),
        };
        // Multishot poll cannot be probed by opcode: arm it on the eventfd,
        // ring once, and look for F_MORE.
        uring.arm_wake();
        sys::signal_raw(wake);
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            uring.enter(Some(Duration::from_millis(50)), false)?;
            let mut multishot = None;
            for cqe in uring.ring.completion() {
                if cqe.user_data() == WAKE {
                    multishot = Some(cqe.result() >= 0 && cqueue::more(cqe.flags()));
                }
            }
            match multishot {
                Some(true) => break,
                Some(false) => return Err(unsupported("multishot POLL_ADD (5.13)")),
                None if Instant::now() > deadline => {
                    return Err(unsupported("a working POLL_ADD (no completion in 1 s)"))
                }
                None => {}
            }
        }
        sys::drain_eventfd(wake);
        // Set only now, so that the probe's waits above never linger.
        uring.min_timeout = uring.ring.params().is_feature_min_timeout();
        Ok(uring)
    }

    fn arm_wake(&mut self) {
        let entry = opcode::PollAdd::new(types::Fd(self.wake), POLLIN)
            .multi(true)
            .build()
            .user_data(WAKE);
        self.push(entry);
    }

    fn arm(&mut self, fd: RawFd, token: u64) {
        let entry = opcode::PollAdd::new(types::Fd(fd), POLLIN | POLLOUT | POLLRDHUP)
            .multi(true)
            .build()
            .user_data(token);
        self.push(entry);
    }

    /// Queues `entry`, submitting first if the SQ is full.
    ///
    /// A full SQ also moves the CQ's completions to `self.completions`,
    /// for the next [`Uring::reap`] (or the one running, which loops until
    /// none are left). Some kernels refuse a submission with EBUSY while
    /// completions overflow the CQ, until the CQ is read; without the move,
    /// this loop would then spin for good.
    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: POLL_ADD and ASYNC_CANCEL carry no buffer or pointer
            // the kernel could use after this call; the fd is only a number.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            self.completions.extend(
                self.ring
                    .completion()
                    .map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags())),
            );
            if let Err(error) = self.ring.submit() {
                if error.raw_os_error() != Some(sys::EBUSY) {
                    tracing::warn!(%error, "netpoll: io_uring submit with a full SQ");
                }
            }
        }
    }

    pub(crate) fn register(&mut self, fd: RawFd, token: Token) {
        let key = token.to_u64();
        self.registrations.insert(
            token,
            Registration {
                fd,
                cancelling: false,
                epoch: 0,
            },
        );
        self.arm(fd, key);
    }

    pub(crate) fn deregister(&mut self, token: Token, events: &mut Vec<Event>) {
        let key = token.to_u64();
        match self.registrations.get_mut(token) {
            Some(registration) if !registration.cancelling => {
                registration.cancelling = true;
                self.push(opcode::AsyncCancel::new(key).build().user_data(CANCEL));
            }
            Some(_) => {}
            // Never armed, or ended with an error: nothing is in flight.
            None => events.push(Event::Released { token }),
        }
    }

    /// One `io_uring_enter`: submits what is queued, runs deferred task work
    /// and waits for one completion unless `timeout` is zero.
    fn enter(&mut self, timeout: Option<Duration>, linger: bool) -> io::Result<()> {
        let result = match timeout {
            _ if linger => {
                // Without a timespec the kernel ends the wait when the
                // linger does even with nothing reaped; with one, it goes
                // on to wait for the first completion.
                let d = timeout.unwrap_or(Duration::from_secs(3600));
                let ts = types::Timespec::new()
                    .sec(d.as_secs())
                    .nsec(d.subsec_nanos());
                let args = types::SubmitArgs::new()
                    .timespec(&ts)
                    .min_wait_usec(linger::LINGER_FOR_US);
                self.ring.submitter().submit_with_args(linger::BATCH, &args)
            }
            Some(d) if d.is_zero() => self.ring.submit_and_wait(0),
            None => self.ring.submit_and_wait(1),
            Some(d) => {
                let ts = types::Timespec::new()
                    .sec(d.as_secs())
                    .nsec(d.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.raw_os_error(),
                    Some(sys::ETIME) | Some(sys::EINTR) | Some(sys::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Whether an enter has work to do: SQEs to submit, or (with
    /// TASKRUN_FLAG) deferred task work to turn into CQEs. Without
    /// TASKRUN_FLAG we cannot tell, and say yes.
    fn needs_enter(&mut self) -> bool {
        if !self.taskrun_flag {
            return true;
        }
        let submission = self.ring.submission();
        !submission.is_empty() || submission.taskrun() || submission.cq_overflow()
    }

    pub(crate) fn poll(&mut self, timeout: Option<Duration>, events: &mut Vec<Event>) {
        // Completions a push set aside are events already in hand: no wait.
        // (No test: on this kernel none could make the enter sleep while
        // completions were set aside.)
        let timeout = if self.completions.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        // A non-blocking poll with nothing to submit and nothing deferred
        // would be a wasted io_uring_enter: before TASKRUN_FLAG, about two of
        // every three enters were such (170k enters for 59k sleeps in 3 s of
        // echo at 100 connections), since an enter without GETEVENTS does
        // not even run DEFER_TASKRUN's deferred work.
        if timeout == Some(Duration::ZERO) && !self.needs_enter() {
            self.reap(events);
            return;
        }
        let linger = self.min_timeout
            && timeout.is_none_or(|d| d > Duration::from_micros(u64::from(linger::LINGER_FOR_US)))
            && self.linger.next_wait();
        if let Err(error) = self.enter(timeout, linger) {
            tracing::error!(%error, "netpoll: io_uring_enter failed");
            std::thread::sleep(Duration::from_millis(1));
        }
        let before = events.len();
        self.reap(events);
        if linger {
            let readable = events[before..]
                .iter()
                .filter(|event| matches!(event, Event::Io { readable: true, .. }))
                .count();
            self.linger.record(readable);
        }
    }

    /// Turns the completions (those [`Uring::push`] set aside first, then
    /// the CQ's) into events. Handling one may re-arm a poll, and a push
    /// into a full SQ sets more aside meanwhile: those are handled too
    /// before this returns.
    fn reap(&mut self, events: &mut Vec<Event>) {
        let mut completions = std::mem::take(&mut self.completions);
        completions.extend(
            self.ring
                .completion()
                .map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags())),
        );
        // Active sockets change only with events: no clock read for an
        // empty reap.
        if self.min_timeout && !completions.is_empty() {
            self.linger.begin_reap(Instant::now());
        }
        while !completions.is_empty() {
            self.handle(&completions, events);
            completions.clear();
            std::mem::swap(&mut completions, &mut self.completions);
        }
        // Both are empty now; keep whichever buffer has grown.
        if completions.capacity() > self.completions.capacity() {
            self.completions = completions;
        }
    }

    fn handle(&mut self, completions: &[(u64, i32, u32)], events: &mut Vec<Event>) {
        for &(key, result, flags) in completions {
            match key {
                WAKE => {
                    sys::drain_eventfd(self.wake);
                    if !cqueue::more(flags) {
                        self.arm_wake();
                    }
                }
                CANCEL => {
                    // ENOENT/EALREADY: the poll had ended or is ending; its
                    // own CQE settles the registration either way.
                    if result < 0 && result != -sys::ENOENT && result != -sys::EALREADY {
                        tracing::debug!(result, "netpoll: ASYNC_CANCEL");
                    }
                }
                _ => self.complete(key, result, flags, events),
            }
        }
    }

    fn complete(&mut self, key: u64, result: i32, flags: u32, events: &mut Vec<Event>) {
        let token = Token::from_u64(key);
        let Some(registration) = self.registrations.get_mut(token) else {
            return; // stale: already released
        };
        if result >= 0 {
            let mask = result as u32;
            let broken = mask & (POLLHUP | POLLERR) != 0;
            let readable = broken || mask & (POLLIN | POLLRDHUP) != 0;
            if readable {
                self.linger.readable(&mut registration.epoch);
            }
            events.push(Event::Io {
                token,
                readable,
                writable: broken || mask & POLLOUT != 0,
                unusual: broken || mask & POLLRDHUP != 0,
            });
        }
        if cqueue::more(flags) {
            return;
        }
        // The poll ended (lifecycle steps 2 and 3).
        if registration.cancelling {
            self.registrations.remove(token);
            events.push(Event::Released { token });
        } else if result >= 0 || result == -sys::ECANCELED || result == -sys::ENOMEM {
            let fd = registration.fd;
            self.arm(fd, key);
        } else {
            // EBADF, EINVAL...: the fd cannot be polled. Wake both sides so
            // their next system call reports the real error.
            tracing::debug!(result, "netpoll: poll ended with an error");
            self.registrations.remove(token);
            events.push(Event::Io {
                token,
                readable: true,
                writable: true,
                unusual: true,
            });
        }
    }

    /// Cancels every registration, waits up to 1 s for their final CQEs,
    /// and closes the ring (dropping it unmaps and closes the fd).
    pub(crate) fn close(mut self, released: &mut Vec<Event>) {
        for token in self.registrations.tokens() {
            if let Some(registration) = self.registrations.get_mut(token) {
                registration.cancelling = true;
            }
            self.push(
                opcode::AsyncCancel::new(token.to_u64())
                    .build()
                    .user_data(CANCEL),
            );
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut events = Vec::new();
        while !self.registrations.is_empty() && Instant::now() < deadline {
            self.poll(Some(Duration::from_millis(10)), &mut events);
            released.extend(
                events
                    .drain(..)
                    .filter(|event| matches!(event, Event::Released { .. })),
            );
        }
        if !self.registrations.is_empty() {
            tracing::warn!(
                left = self.registrations.len(),
                "netpoll: io_uring polls still in flight at close"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// A lingering wait against the real kernel: it must come back with a
    /// single event long before its batch fills, and with none once its
    /// timeout passes. Skips where io_uring or MIN_TIMEOUT is missing.
    #[test]
    fn a_lingering_wait_returns_one_event_and_honours_its_timeout() {
        let wake = sys::EventFd::new().unwrap();
        let mut uring = match Uring::init(wake.raw()) {
            Ok(uring) => uring,
            Err(error) => return println!("skipping: io_uring refused: {error}"),
        };
        if !uring.min_timeout {
            return println!("skipping: no IORING_FEAT_MIN_TIMEOUT (kernel before 6.12)");
        }
        let pairs: Vec<(UnixStream, UnixStream)> = (0..2 * linger::BATCH)
            .map(|_| UnixStream::pair().unwrap())
            .collect();
        for (index, (ours, _)) in pairs.iter().enumerate() {
            uring.register(
                ours.as_raw_fd(),
                Token {
                    index: index as u32,
                    generation: 1,
                },
            );
        }
        // Every socket becomes readable once: enough active sockets for
        // lingering to be allowed at all.
        for (_, theirs) in &pairs {
            (&*theirs).write_all(b"x").unwrap();
        }
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while events.len() < pairs.len() && Instant::now() < deadline {
            uring.poll(Some(Duration::from_millis(10)), &mut events);
        }
        assert!(events.len() >= pairs.len(), "only {} edges", events.len());
        uring.linger.force_on();

        // One edge, far fewer than BATCH: the wait lingers, then returns it.
        let waits = uring.linger.waits();
        events.clear();
        (&pairs[3].1).write_all(b"y").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while events.is_empty() && Instant::now() < deadline {
            // Bounded, so that a linger that never ends fails, not hangs.
            uring.poll(Some(Duration::from_secs(2)), &mut events);
        }
        assert!(uring.linger.waits() > waits, "the wait did not linger");
        assert!(
            events.iter().any(|event| matches!(event,
                Event::Io { token, readable: true, .. } if token.index == 3)),
            "the edge was not reported: {events:?}"
        );

        // Nothing arrives: a lingering wait with a timeout still returns.
        uring.linger.force_on();
        events.clear();
        let waits = uring.linger.waits();
        uring.poll(Some(Duration::from_millis(20)), &mut events);
        assert!(uring.linger.waits() > waits, "the wait did not linger");
        assert!(events.is_empty(), "unexpected events: {events:?}");
        // Closing cancels the registration and hands over its release.
        let mut released = Vec::new();
        uring.close(&mut released);
        assert!(
            released
                .iter()
                .any(|event| matches!(event, Event::Released { token } if token.index == 3)),
            "no release at close: {released:?}"
        );
    }

    /// Tiny rings (SQ 8, CQ 16) and 200 sockets, half of them readable
    /// before they are registered: those arms complete at once, and the SQ
    /// fills every 8 arms (a push then sets the CQ's completions aside).
    /// Then the other half's edges come in one burst, the CQ overflows and
    /// the kernel ends multishot polls (about 300 re-arms in a run). No
    /// edge may be lost, and every poll must still report a second edge
    /// afterwards. A reap that dropped what a push had set aside lost 88
    /// of the first edges here.
    #[test]
    fn full_rings_lose_no_completion_and_ended_polls_are_re_armed() {
        let wake = sys::EventFd::new().unwrap();
        let mut uring = match Uring::init_sized(wake.raw(), 8, 16) {
            Ok(uring) => uring,
            Err(error) => return println!("skipping: io_uring refused: {error}"),
        };
        let pairs: Vec<(UnixStream, UnixStream)> =
            (0..200).map(|_| UnixStream::pair().unwrap()).collect();
        let token = |index: usize| Token {
            index: index as u32,
            generation: 1,
        };
        let wait_for_all = |uring: &mut Uring, round: &str| {
            let mut seen = vec![false; pairs.len()];
            let mut events = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            while seen.contains(&false) && Instant::now() < deadline {
                uring.poll(Some(Duration::from_millis(10)), &mut events);
                for event in events.drain(..) {
                    if let Event::Io {
                        token,
                        readable: true,
                        ..
                    } = event
                    {
                        seen[token.index as usize] = true;
                    }
                }
            }
            let missing: Vec<usize> = (0..pairs.len()).filter(|&i| !seen[i]).collect();
            assert!(missing.is_empty(), "{round}: no edge for {missing:?}");
        };
        // Half are readable when armed (their arms complete at once), half
        // become readable after: a burst of edges for the 16-entry CQ.
        for (_, theirs) in pairs.iter().step_by(2) {
            (&*theirs).write_all(b"x").unwrap();
        }
        for (index, (ours, _)) in pairs.iter().enumerate() {
            uring.register(ours.as_raw_fd(), token(index));
        }
        for (_, theirs) in pairs.iter().skip(1).step_by(2) {
            (&*theirs).write_all(b"x").unwrap();
        }
        wait_for_all(&mut uring, "first edges");
        for (_, theirs) in &pairs {
            (&*theirs).write_all(b"y").unwrap();
        }
        wait_for_all(&mut uring, "second edges");
        let mut released = Vec::new();
        uring.close(&mut released);
        assert_eq!(released.len(), pairs.len(), "releases at close");
    }
}
