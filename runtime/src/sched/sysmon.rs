//! sysmon: the system monitor thread (Go's `sysmon`, `runtime/proc.go`).
//!
//! It holds no P and never runs goroutines. It starts with a runtime's first
//! M and is joined at shutdown. Each tick it looks at every P's owner word
//! (`P::owner`) and:
//!
//! 1. **retakes Ps from `blocking()` calls** (`owner = M | SYSCALL`) once the
//!    same call (`syscalltick` unchanged) has lasted one tick, about 20 µs.
//!    As in Go, a P with nothing queued is left alone for up to 10 ms while
//!    other Ps are idle or spinning, since nobody needs it. A compare-exchange
//!    against the M's own on the way out (`blocking.rs`) decides the race.
//! 2. **hands off Ps of Ms blocked in the kernel outside `blocking()`**
//!    (beyond Go): `std::thread::sleep`, a file read, a `std::sync::Mutex`
//!    wait. See "Inside the kernel" below.
//! 3. **preempts** a goroutine that has run for more than the time slice
//!    (10 ms; `GORO_DEBUG=preemptslice=…`) — its P's `schedtick` has not
//!    moved — by sending its M a SIGURG (`preempt.rs`), at most one
//!    outstanding per M (`M::preempt_requested`).
//!
//! 4. **polls the network** (epoll backend) when no M has for 10 ms, as
//!    Go's does: Ms poll only when they run out of work, so Ps all busy with
//!    long goroutines would otherwise leave sockets unreaped
//!    (`netpoll::sysmon_poll`). With io_uring the netpoller's own thread
//!    readies goroutines as completions arrive, and this does nothing.
//! 5. **starts an M for overdue timers** (Go's `if next < now { startm }`):
//!    a timer due more than 1 ms ago (`TIMER_GRACE`) while a P is idle has
//!    no M coming for it. Arming a timer wakes nobody (an idle M sleeps until
//!    the earliest deadline it saw), so without this a timer armed after the
//!    other Ms went to sleep, on a P whose M then runs on without scheduling
//!    (a long goroutine, or a `blocking()` call that lost its P to a retake),
//!    waited for a preemption, or for ever. A `wakep` brings a spinning M,
//!    which runs every P's due timers. Even the deep sleep ends by the
//!    earliest timer plus the grace, and goes on if nothing is overdue.
//!
//! # Sleeping
//!
//! The tick starts at 20 µs and doubles after 50 quiet ticks (1 ms) up to
//! 10 ms, as Go's. Only a retake (steps 1 and 2) restarts it at 20 µs; a
//! preemption request does not, as in Go, whose `retake` counts only the Ps
//! it takes. The tick is cut short to the next moment something is due: the
//! end of a running goroutine's time slice, its next kernel check, or, for a
//! P that switched goroutines since the last look, a look 5 ms on
//! (`RELOOK`, at most half a slice). A goroutine first seen at a look began
//! after the look before it, so its slice is counted from that earlier look:
//! it is preempted after between half a slice and a slice of running, never
//! later, while a server whose goroutines switch thousands of times a second
//! costs sysmon 200 looks a second rather than 1,000.
//!
//! A goroutine is signalled only if its M was on a CPU for at least half a
//! slice since that first look (its thread's CPU clock, read for the kernel
//! check anyway). On a loaded machine the OS may keep a busy M off the CPU
//! for 10 ms; its goroutine has not had a slice, and a signal would only
//! cost it a switch once it is back. Measured at 10,000 echo connections
//! (Go's loadgen on the same 2 cores, counters in a throwaway build): 88
//! such signals in 6 s, each followed by 50-odd 20 µs ticks, made 75 % of
//! sysmon's 1,000–1,500 ticks a second. With both changes sysmon's wake-ups
//! per round trip went from 0.013 to 0.006 at 10,000 connections and from
//! 0.010 to 0.007 at 100 (`/proc/PID/task/*/status`).
//!
//! Once every P has been idle at each look for 10 ms, sysmon sleeps on a
//! futex with no timeout; whoever takes a P off the idle list wakes it
//! (`Idle::p_left_idle`, one SeqCst load), so an idle runtime costs no
//! sysmon CPU at all.
//!
//! The backoff before the deep sleep matters: a server's Ps go idle and
//! busy thousands of times a second. When sysmon slept deeply the moment all
//! Ps were idle, each of those transitions cost a futex wake and two context
//! switches: 5,500 sysmon wakes a second and about 5 % of the echo server's
//! CPU at 100 connections (`/proc/PID/task/*/status`, perf record). While
//! backing off it sleeps with a timeout and nobody wakes it; a goroutine
//! that starts meanwhile is first looked at after at most one tick (10 ms),
//! as in Go, whose sysmon is not woken by Ps leaving idle at all.
//!
//! "At each tick" needs ticks: at the 10 ms tick, two looks that happened
//! to fall on idle instants of a busy server counted as 10 idle
//! milliseconds. The deep sleep then ended at once, and the tick restarted
//! at 20 µs and climbed again: about 60 wake-ups per false deep sleep, 19
//! of them a second (`strace` of the thread's futex timeouts, echo at 100
//! connections). So while it finds every P idle, sysmon looks every 1 ms
//! (`IDLE_LOOK`; with no goroutine running there is nothing to retake or
//! preempt, so no 20 µs ticks either), and it sleeps deeply only after 10
//! such looks in a row (`IDLE_LOOKS`) spanning 10 ms. A wake-up from the
//! deep sleep starts the count afresh. Measured (`/proc/PID/task/*/status`,
//! builds alternated): sysmon's wake-ups under echo at 100 connections went
//! from 540–850 to 180–200 a second (the 5 ms `RELOOK` is the floor); at
//! `redis-benchmark -c 50 -P 1` against examples/kv from 0.020–0.021 to
//! 0.003–0.004 per request; and for an idle kv, whose 100 ms expiry timer
//! ends each deep sleep, from 284 to 114 a second. Test:
//! `tests/sysmon_idle.rs`.
//!
//! # Inside the kernel
//!
//! When a P's `schedtick` has not moved since the last look, sysmon reads
//! the CPU time of the owning M's thread (`clock_gettime` on its
//! `pthread_getcpuclockid` clock: one system call, about 1 µs) and compares
//! it with the previous reading, 1 to 5 ms earlier. A thread that got under
//! a tenth of that interval on a CPU is not running: it sleeps in the
//! kernel (or the OS has it descheduled). After two such checks in a row
//! (the second 1 ms after the first: 2 ms or more off the CPU), sysmon
//! confirms with the thread's state letter in `/proc/self/task/TID/stat`
//! (about 10 µs): 'R' means runnable, i.e. descheduled by an oversubscribed
//! machine rather than blocked, and then the P stays. So the check costs one
//! `clock_gettime` per busy P per look (every 5 ms while the P switches
//! goroutines, every 1 ms while one goroutine holds it), plus one `/proc`
//! read per handoff, and nothing per 20 µs tick.
//!
//! Taking the P from an M that did not agree to it needs more than a
//! compare-exchange: the M may wake at any moment and use its P without
//! asking. So the M raises its "locks" count (`locks.rs`) before any use of
//! its P, then checks that it still owns it (`M::own_p`); sysmon does the
//! mirror image, asymmetrically fenced:
//!
//! 1. read the M's count: non-zero means runtime code, leave it;
//! 2. `owner: M → RETAKING` (compare-exchange);
//! 3. `membarrier(PRIVATE_EXPEDITED)`: every running thread of the process
//!    executes a full barrier, so any count the M raised before its check of
//!    `owner` is now visible here;
//! 4. read the count again: non-zero, so the M may be using its P: put
//!    `owner` back, by compare-exchange from `RETAKING` (the M may have
//!    released the P meanwhile, and another M taken it). Zero: any later
//!    check by the M sees `RETAKING` or its loss, so clear `owner`, again by
//!    compare-exchange from `RETAKING` (a zero count now does not prove the
//!    M still has this P: it may have released it with its count raised
//!    and gone on with another), and hand the P to another M
//!    (`Idle::handoff_p`).
//!
//! An M that sees `RETAKING` waits until step 4 settles it, and never
//! overwrites it: `blocking()`'s entry marks the P with a compare-exchange
//! from `M` for that reason (a store there once let sysmon hand off a P its
//! M went on running). This is the
//! Dekker pattern with the M's side free of fences (Linux's `membarrier(2)`
//! man page describes it), which keeps an `mfence` off every door into the
//! scheduler; the `membarrier` costs sysmon a few µs, only when it hands off.
//! Without `membarrier` (Linux < 4.14, or seccomp), this case is turned off
//! and only `blocking()` hands off.
//!
//! The M whose P was taken is "orphaned": its goroutine runs without a P
//! until it next enters the scheduler, where it tries for an idle P and
//! otherwise queues itself globally (`schedule::switch_out_locked`). If it
//! stays in user code past a time slice, sysmon preempts it like any other.
//!
//! # Rejected alternatives
//!
//! - **Reading `/proc/self/task/TID/stat` on every check**: an open, read
//!   and close (about 10 µs) per busy P per millisecond; the CPU clock
//!   filters first, and `/proc` only confirms.
//! - **A fence on the M's side** instead of `membarrier`: an `mfence` (about
//!   30 cycles) on every park, ready and spawn, to speed up a rare event.
//! - **Signalling the blocked M** so that it gives the P up itself: the
//!   signal interrupts the system call (EINTR for the ones SA_RESTART does not
//!   restart, such as `epoll_wait`), and a thread in an uninterruptible sleep
//!   would not run the handler anyway.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use super::m::M;
use super::p::{P, RETAKING, SYSCALL};
use super::shared::Shared;
use super::stats;
use super::timers;
use crate::sys::{futex, thread};

/// The shortest tick (Go's 20 µs).
const MIN_DELAY: u64 = 20_000;
/// The longest tick (Go's 10 ms).
const MAX_DELAY: u64 = 10_000_000;
/// Quiet ticks before the tick starts doubling (Go's 50).
const QUIET_TICKS: u32 = 50;
/// A P with no work is left in its `blocking()` call this long while other
/// Ps are idle or spinning (Go's 10 ms).
const IDLE_SYSCALL_GRACE: u64 = 10_000_000;
/// How long every P must have been idle, tick after tick, before sysmon
/// sleeps with no timeout.
const DEEP_SLEEP_AFTER: u64 = 10_000_000;
/// Looks in a row that must find every P idle before that deep sleep, and
/// the longest tick while they do: one look per 10 ms tick would take two
/// idle instants of a busy server for 10 idle milliseconds.
const IDLE_LOOKS: u32 = 10;
const IDLE_LOOK: u64 = 1_000_000;
/// A timer this long overdue while a P is idle has no M coming for it
/// (step 5).
const TIMER_GRACE: u64 = 1_000_000;
/// The shortest time between two readings of a busy P's M's CPU clock (the
/// first is taken at the look that first sees its `schedtick`, the second
/// at the next look, `RELOOK` later), and how often it checks again while
/// the `schedtick` stands still.
const KERNEL_CHECK: u64 = 1_000_000;
/// How soon sysmon looks again at a P whose goroutine changed since its
/// last look ("Sleeping" in the module doc); at most half a time slice.
const RELOOK: u64 = 5_000_000;
/// A preemption the handler refused (runtime code, libc) is asked for again
/// after this long; each signal costs its victim 8–12 µs (DESIGN §5).
const RESIGNAL: u64 = 1_000_000;
/// A signal unanswered for this long is taken as lost and sent again.
const LOST_SIGNAL: u64 = 10_000_000;

#[derive(Default)]
pub(crate) struct Sysmon {
    started: AtomicBool,
    /// The thread surely exists: set once it is spawned, cleared before it
    /// is told to stop (the deadlock check's count must never exceed the
    /// threads there are; `deadlock.rs`, condition 5).
    counted: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Futex word: bumped to wake sysmon early (new work after a deep
    /// sleep, or shutdown).
    wake_word: AtomicU32,
    /// Set while sysmon sleeps with no timeout (every P idle).
    deep_sleep: AtomicBool,
}

/// What sysmon remembers about one P between ticks.
#[derive(Clone, Copy, Default)]
struct Watch {
    /// The owner word last seen (0: nothing to watch).
    owner: usize,
    schedtick: u64,
    /// A moment no later than this owner and `schedtick` began together:
    /// the look before the one that first saw them.
    since: u64,
    syscalltick: u64,
    /// The owning M's CPU time at `checked`.
    cpu: u64,
    /// The owning M's CPU time at the look that first saw this `schedtick`.
    cpu_since: u64,
    checked: u64,
    /// When sysmon last signalled the owner for this slice.
    signalled: u64,
    /// Consecutive kernel checks that found the M off the CPU.
    blocked_checks: u32,
}

/// An M whose P was handed off while it sat in the kernel.
struct Orphan {
    m: *const M,
    since: u64,
    cpu: u64,
    checked: u64,
    signalled: u64,
}

struct SharedPtr(*const Shared);
// SAFETY: sysmon is joined before the Shared is freed (`Sysmon::stop`,
// called by shutdown; a runtime that is never shut down is leaked).
unsafe impl Send for SharedPtr {}

impl Sysmon {
    /// Starts sysmon once per runtime (with its first M).
    pub(crate) fn ensure_started(&self, shared: &Shared) {
        if self.started.load(Ordering::Acquire) || self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let pointer = SharedPtr(shared);
        let spawned = std::thread::Builder::new()
            .name("goro-sysmon".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                let pointer = pointer;
                // SAFETY: see `SharedPtr`.
                run(unsafe { &*pointer.0 });
            });
        match spawned {
            Ok(handle) => {
                *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
                self.counted.store(true, Ordering::SeqCst);
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    "goro: cannot start sysmon: no preemption and no blocked-M handoff"
                );
            }
        }
    }

    /// Whether the deadlock check should count a sysmon thread: from just
    /// after it is spawned until just before it is told to stop, so never
    /// while it might be gone.
    pub(crate) fn is_counted(&self) -> bool {
        self.counted.load(Ordering::SeqCst)
    }

    /// Called when a P leaves the idle list: wakes a deeply sleeping sysmon.
    #[inline]
    pub(crate) fn note_busy(&self) {
        if self.deep_sleep.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    fn wake(&self) {
        self.wake_word.fetch_add(1, Ordering::SeqCst);
        futex::wake_raw(self.wake_word.as_ptr() as usize, 1);
    }

    /// Stops and joins sysmon (shutdown, after `stopping` is set).
    pub(crate) fn stop(&self) {
        self.counted.store(false, Ordering::SeqCst);
        self.wake();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Sleeps for `nanos`, or, if `deeply` and every P stays idle, until
    /// woken or until the earliest timer is `TIMER_GRACE` overdue.
    fn sleep(&self, shared: &Shared, nanos: u64, deeply: bool) -> Slept {
        let seen = self.wake_word.load(Ordering::SeqCst);
        let procs = shared.config.procs;
        if deeply && shared.idle.npidle.load(Ordering::SeqCst) == procs {
            self.deep_sleep.store(true, Ordering::SeqCst);
            // Re-check after announcing the sleep: pairs with the SeqCst
            // decrement and load in `Idle::p_left_idle`.
            if shared.idle.npidle.load(Ordering::SeqCst) == procs && !shared.is_stopping() {
                let timeout = match timers::earliest(shared) {
                    timers::NEVER => None,
                    // At least a look's length: an overdue timer that a
                    // started M has yet to run must not make this a spin.
                    earliest => Some(Duration::from_nanos(
                        earliest
                            .saturating_add(TIMER_GRACE)
                            .saturating_sub(timers::now())
                            .max(IDLE_LOOK),
                    )),
                };
                futex::wait(&self.wake_word, seen, timeout);
            }
            self.deep_sleep.store(false, Ordering::SeqCst);
            return if self.wake_word.load(Ordering::SeqCst) == seen {
                Slept::DeeplyUntilATimer
            } else {
                Slept::DeeplyUntilWoken
            };
        }
        futex::wait(&self.wake_word, seen, Some(Duration::from_nanos(nanos)));
        Slept::Nap
    }
}

/// How [`Sysmon::sleep`] ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slept {
    Nap,
    /// A deep sleep, ended by a wake (a P left the idle list, or shutdown).
    DeeplyUntilWoken,
    /// A deep sleep, ended by its timeout (or spuriously): every P may
    /// still be idle, so the deep sleep may go on.
    DeeplyUntilATimer,
}

/// Step 5: wakes a spinning M if a timer is overdue and a P is idle.
fn start_for_overdue_timers(shared: &Shared, now: u64) {
    if timers::earliest(shared).saturating_add(TIMER_GRACE) <= now
        && shared.idle.npidle.load(Ordering::SeqCst) > 0
    {
        super::idle::wakep(shared);
    }
}

fn run(shared: &Shared) {
    thread::set_timer_slack(1_000);
    let sysmon = &shared.sysmon;
    let mut watches = vec![Watch::default(); shared.ps.len()];
    let mut orphans: Vec<Orphan> = Vec::new();
    let mut delay = MIN_DELAY;
    let mut quiet = 0u32;
    let mut next_event = u64::MAX;
    // The last tick's time: every tick looks at every P. 0 after a deep
    // sleep, whose end says nothing about when a goroutine began.
    let mut previous = 0u64;
    let mut idle_since = timers::now();
    let mut idle_looks = 0u32;
    loop {
        if shared.is_stopping() {
            return;
        }
        let now = timers::now();
        let mut nap = delay.min(next_event.saturating_sub(now)).max(MIN_DELAY);
        // Deep sleep only once every P has been idle at each of
        // `IDLE_LOOKS` looks spanning `DEEP_SLEEP_AFTER` ("Sleeping"): a
        // server's Ps go idle and busy thousands of times a second, and each
        // deep sleep costs a futex wake when it ends and a restart at 20 µs.
        if shared.idle.npidle.load(Ordering::Relaxed) != shared.config.procs {
            idle_since = now;
            idle_looks = 0;
        } else {
            // No P runs a goroutine: nothing to retake or preempt, so no
            // 20 µs ticks either.
            idle_looks = idle_looks.saturating_add(1);
            nap = IDLE_LOOK.min(next_event.saturating_sub(now)).max(MIN_DELAY);
        }
        let deeply = idle_looks >= IDLE_LOOKS && now - idle_since >= DEEP_SLEEP_AFTER;
        let slept = if orphans.is_empty() {
            sysmon.sleep(shared, nap, deeply)
        } else {
            Slept::Nap
        };
        if slept == Slept::DeeplyUntilATimer {
            // Still idle, most likely: look at the timers, then go back to
            // the deep sleep (the looks counted so far still hold).
            start_for_overdue_timers(shared, timers::now());
            continue;
        }
        if slept == Slept::DeeplyUntilWoken {
            idle_since = timers::now();
            idle_looks = 0;
            watches.fill(Watch::default());
            previous = 0;
            delay = MIN_DELAY;
            quiet = 0;
            next_event = u64::MAX;
            continue;
        } else if !orphans.is_empty() {
            futex::wait(
                &sysmon.wake_word,
                sysmon.wake_word.load(Ordering::SeqCst),
                Some(Duration::from_nanos(nap)),
            );
        }
        if shared.is_stopping() {
            return;
        }
        let now = timers::now();
        let mut tick = Tick {
            shared,
            now,
            slice: shared.config.preempt_slice,
            preempt: shared.config.async_preempt,
            previous,
            acted: false,
            next_event: u64::MAX,
        };
        for (p, watch) in shared.ps.iter().zip(watches.iter_mut()) {
            if let Some(orphan) = tick.watch(p, watch) {
                orphans.push(orphan);
            }
        }
        orphans.retain_mut(|orphan| tick.watch_orphan(orphan));
        super::netpoll::sysmon_poll(shared, now);
        start_for_overdue_timers(shared, now);
        next_event = tick.next_event;
        previous = now;
        if tick.acted {
            delay = MIN_DELAY;
            quiet = 0;
        } else {
            quiet += 1;
            if quiet > QUIET_TICKS {
                delay = (delay * 2).min(MAX_DELAY);
            }
        }
    }
}

/// One sysmon tick's context.
struct Tick<'a> {
    shared: &'a Shared,
    now: u64,
    /// The previous tick's `now` (0 after a deep sleep): a goroutine first
    /// seen at this tick began after it.
    previous: u64,
    slice: u64,
    preempt: bool,
    acted: bool,
    /// The earliest moment something watched falls due.
    next_event: u64,
}

impl Tick<'_> {
    fn due_at(&mut self, when: u64) {
        self.next_event = self.next_event.min(when);
    }

    /// Looks at one P; returns the orphan it made, if it handed off a
    /// blocked M's P.
    fn watch(&mut self, p: &P, watch: &mut Watch) -> Option<Orphan> {
        let owner = p.owner.load(Ordering::Acquire);
        if owner == 0 || owner == RETAKING {
            watch.owner = 0;
            return None;
        }
        if owner & SYSCALL != 0 {
            self.watch_syscall(p, watch, owner);
            return None;
        }
        // SAFETY: a P's owner is a live M (Ms are freed only after sysmon is
        // joined at shutdown).
        let m = unsafe { &*(owner as *const M) };
        let schedtick = p.schedtick();
        if watch.owner != owner || watch.schedtick != schedtick {
            // The goroutine began after the previous look, if there was
            // one: counting its slice from there preempts it after between
            // half a slice and a slice, never later.
            let cpu = cpu_time(m);
            *watch = Watch {
                owner,
                schedtick,
                since: if self.previous == 0 {
                    self.now
                } else {
                    self.previous
                },
                cpu,
                cpu_since: cpu,
                checked: self.now,
                ..Watch::default()
            };
            self.due_at(self.now + RELOOK.min(self.slice / 2));
            return None;
        }
        let ran = self.now - watch.since;
        if self.now - watch.checked >= KERNEL_CHECK {
            let cpu = cpu_time(m);
            let blocked =
                cpu != u64::MAX && cpu.saturating_sub(watch.cpu) * 10 < self.now - watch.checked;
            watch.cpu = cpu;
            watch.checked = self.now;
            watch.blocked_checks = if blocked { watch.blocked_checks + 1 } else { 0 };
            // Two checks in a row (2 ms off the CPU): one alone may be the
            // OS descheduling a busy thread on a loaded machine.
            if watch.blocked_checks >= 2
                && !thread::is_runnable(m.tid.load(Ordering::Acquire)).unwrap_or(false)
                && self.take_from_blocked(p, m, owner)
            {
                watch.owner = 0;
                return Some(Orphan {
                    m,
                    since: self.now,
                    cpu,
                    checked: self.now,
                    signalled: 0,
                });
            }
        }
        self.due_at(watch.checked + KERNEL_CHECK);
        if self.preempt {
            if ran >= self.slice && on_cpu(m, watch, self.now, self.slice) {
                if watch.signalled == 0 || self.now - watch.signalled >= RESIGNAL {
                    let lost = watch.signalled != 0 && self.now - watch.signalled >= LOST_SIGNAL;
                    if self.request_preempt(m, lost) {
                        watch.signalled = self.now;
                    }
                }
            } else if ran < self.slice {
                self.due_at(watch.since + self.slice);
            }
        }
        None
    }

    /// Go's `retake` for a P whose M is inside `blocking()`.
    fn watch_syscall(&mut self, p: &P, watch: &mut Watch, owner: usize) {
        let syscalltick = p.syscalltick.load(Ordering::Acquire);
        if watch.owner != owner || watch.syscalltick != syscalltick {
            *watch = Watch {
                owner,
                syscalltick,
                since: self.now,
                ..Watch::default()
            };
            self.due_at(self.now + MIN_DELAY);
            return;
        }
        let shared = self.shared;
        let idle = &shared.idle;
        let has_work = !shared.stealers[p.index].is_empty() || p.has_runnext();
        let helpers = idle.npidle.load(Ordering::SeqCst) + idle.nmspinning.load(Ordering::SeqCst);
        if !has_work && helpers > 0 && self.now - watch.since < IDLE_SYSCALL_GRACE {
            self.due_at(watch.since + IDLE_SYSCALL_GRACE);
            return;
        }
        watch.owner = 0;
        if p.owner
            .compare_exchange(owner, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            stats::count_sysmon_retake(shared, p.index);
            idle.handoff_p(shared, p);
            self.acted = true;
        }
    }

    /// Steps 1–4 of the module doc's protocol.
    fn take_from_blocked(&mut self, p: &P, m: &M, owner: usize) -> bool {
        let locks = m.locks.load(Ordering::Acquire);
        if locks.is_null() || !thread::membarrier_ready() {
            return false;
        }
        // SAFETY: the M's TLS count lives as long as its thread, and its
        // thread outlives this check (Ms exit only at shutdown, after sysmon).
        let locks = unsafe { &*locks };
        if locks.load(Ordering::Relaxed) != 0
            || p.owner
                .compare_exchange(owner, RETAKING, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        if thread::membarrier().is_err() || locks.load(Ordering::SeqCst) != 0 {
            // Put `owner` back only if it still says RETAKING: an M whose
            // count we missed at step 1 passed its check before our swap,
            // and may have released the P meanwhile (`release_p` stores 0),
            // and another M taken it. A plain store would hand the P back to
            // the first M, stranding it.
            let _ = p
                .owner
                .compare_exchange(RETAKING, owner, Ordering::AcqRel, Ordering::Relaxed);
            return false;
        }
        m.orphaned.store(true, Ordering::Release);
        // Only from RETAKING: the M may have released the P meanwhile
        // (`release_p` stores 0 with its count raised) and gone on with
        // another P at count 0 before our look at its count; the P may be
        // another M's by now.
        if p.owner
            .compare_exchange(RETAKING, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            m.orphaned.store(false, Ordering::Release);
            return false;
        }
        let shared = self.shared;
        stats::count_sysmon_retake(shared, p.index);
        shared.idle.handoff_p(shared, p);
        self.acted = true;
        true
    }

    /// Follows an orphaned M until it is back in the scheduler; preempts it
    /// if it runs user code for a whole slice without a P. False to forget it.
    fn watch_orphan(&mut self, orphan: &mut Orphan) -> bool {
        // SAFETY: Ms outlive sysmon (see `watch`).
        let m = unsafe { &*orphan.m };
        if !m.orphaned.load(Ordering::Acquire) {
            return false;
        }
        if self.now - orphan.checked >= KERNEL_CHECK {
            let cpu = cpu_time(m);
            let running = cpu.saturating_sub(orphan.cpu) * 2 >= self.now - orphan.checked;
            orphan.cpu = cpu;
            orphan.checked = self.now;
            let due = self.now - orphan.since >= self.slice
                && (orphan.signalled == 0 || self.now - orphan.signalled >= RESIGNAL);
            if self.preempt && running && due {
                let lost = orphan.signalled != 0 && self.now - orphan.signalled >= LOST_SIGNAL;
                if self.request_preempt(m, lost) {
                    orphan.signalled = self.now;
                }
            }
        }
        self.due_at(orphan.checked + KERNEL_CHECK);
        true
    }

    /// Sends SIGURG to `m` unless one is already on its way (the handler
    /// clears the flag, taking the request or refusing it); `lost`: the last
    /// one went unanswered so long that it must have been lost. Returns
    /// whether a signal went out.
    fn request_preempt(&mut self, m: &M, lost: bool) -> bool {
        if m.preempt_requested.swap(true, Ordering::AcqRel) && !lost {
            return false;
        }
        let tid = m.tid.load(Ordering::Acquire);
        if tid == 0 {
            return false;
        }
        stats::count_preempt_request(self.shared, m.id);
        let _ = thread::tgkill(tid, super::preempt::SIGNAL);
        // Not `acted`: as in Go, only a retake restarts the 20 µs ticks
        // ("Sleeping" in the module doc).
        true
    }
}

/// Whether `m` was on a CPU for at least half a slice since the look that
/// first saw its goroutine: an M the OS kept off the CPU did not run its
/// goroutine for a slice, and signalling it would only cost it a switch
/// (module doc, "Sleeping"). Unreadable clocks count as on the CPU.
fn on_cpu(m: &M, watch: &Watch, now: u64, slice: u64) -> bool {
    let cpu = if watch.checked == now {
        watch.cpu
    } else {
        cpu_time(m)
    };
    cpu == u64::MAX
        || watch.cpu_since == u64::MAX
        || cpu.saturating_sub(watch.cpu_since) * 2 >= slice
}

/// The CPU time of `m`'s thread, in nanoseconds; `u64::MAX` if it cannot be
/// read, which reads as "running" (never as blocked).
fn cpu_time(m: &M) -> u64 {
    let clock = m.cpu_clock.load(Ordering::Acquire);
    if clock == -1 {
        return u64::MAX;
    }
    thread::clock_nanos(clock).unwrap_or(u64::MAX)
}
