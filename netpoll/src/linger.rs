//! Lingering waits: when the io_uring poller may sleep through several
//! readiness events instead of waking for the first.
//!
//! # Why
//!
//! A blocking `io_uring_enter` returns at the first completion, so a poller
//! that keeps up with its sockets sleeps and wakes once per event or two.
//! At `redis-benchmark -t set,get -c 50 -P 1` against examples/kv that was
//! 0.42–0.50 poller sleeps and 3.8–4.2 CPU-µs on the poller thread per
//! request, as much as either M spent running the goroutines (per-thread
//! `/proc/<pid>/task/*` times, `/work/scratch/kv_threads.sh`-style runs).
//! Go's Ms reap epoll themselves and have no such hop (`lib.rs`, "Ms polling
//! the ring themselves").
//!
//! With IORING_FEAT_MIN_TIMEOUT (6.12) a wait can ask for [`BATCH`]
//! completions and return [`LINGER_FOR_US`] after it began with whatever has
//! come by then (or at once, if the batch fills first). One sleep then
//! covers every event of that window.
//!
//! # When it pays
//!
//! Lingering holds events back, so it pays only when more keep arriving
//! meanwhile regardless of our replies. In a closed loop with few
//! connections (each waits for our reply before it sends again), the
//! linger gathers the whole population and the machine idles through it.
//! Lingering on every wait cost 20 % of round trips at 1 echo connection
//! (`lib.rs`, rejected alternatives); a credit without the share rule below
//! still lingered on half or more of the waits at 8 connections and lost a
//! third of the round trips (medians of 6, 20k → 12.6k per second).
//!
//! The rule:
//! - The poller counts the distinct sockets that turned readable over 1 ms
//!   epochs (`readable`, one mark per registration; the last epoch and the
//!   current one, whichever is larger, are the *active* sockets).
//! - A lingering wait that gathers `n` readable sockets scores `n − PAYS`,
//!   unless `n` is more than half of the active sockets: then it was
//!   batching a closed loop and scores `−PAYS`.
//! - The poller lingers while the score's running sum (the credit, clamped
//!   to ±[`BOUND`]) is positive, and otherwise on one blocking wait in
//!   [`PROBE_EVERY`], so that a rising load is noticed.
//! - Below `MIN_ACTIVE` (10) active sockets no linger could score above 0,
//!   so none is tried, not even a probe: a server with few busy connections
//!   behaves exactly as before.
//!
//! This is the shape of `sched/spin.rs`'s spin credit. Cost: an `Instant`
//! read per reap that finds completions, and a compare per readable event.
//!
//! # Measured (2 Ps, interleaved against the build without lingering)
//!
//! These figures are for the first rule, with a share of a quarter and so
//! `MIN_ACTIVE` 20; the change to half is measured above.
//!
//! - echo, 100 connections (Go's loadgen, 3 s, 6 pairs): 46.6k–70.1k →
//!   57.7k–79.8k round trips/s, 11.6–13.5 → 10.3–12.4 CPU-µs per round
//!   trip, p99 lower in all six. At 10,000 connections CPU 19.0–20.6 →
//!   18.5–19.5 µs, round trips/s within ±3 %. At 1, 4 and 16 connections
//!   nothing lingers.
//! - wrk -t1 -c100 http_hello (4 s, 3 pairs): 62.3k–73.5k → 70.9k–87.2k
//!   requests/s, 13.1–13.7 → 10.3–12.5 CPU-µs per request; -c1000: 43.8k–54.3k
//!   → 48.7k–54.5k.
//! - kv at `-c 50 -P 1` (4 rounds beside redis-server): server CPU 15.6–17.8
//!   → 13.3–14.7 µs per request; poller sleeps 0.42–0.47 → 0.23 per request.
//!
//! The share was a quarter at first. At redis-benchmark's 50 connections
//! that kept lingering off for most waits. Counters in a throwaway build:
//! 10–30 % of blocking waits lingered; a linger gathered 8–9 of the 49
//! active sockets on average, and the 4–16 % of lingers that gathered 13 or
//! more scored `−PAYS`; the poller slept 0.13–0.48 times per request. Each
//! poller wake-up can preempt the load generator on a 2-core machine:
//! redis-benchmark saw 6,200–28,000 involuntary switches a second against
//! goro and 77–315 against redis-server, and got 76–94 % of a CPU against
//! 98–99 %. With half, a `kv_bins.sh` run of three interleaved rounds
//! (`-c 50 -P 1`, 200,000 requests, beside redis-server) gave SET
//! 84.8k/92.5k/80.8k →
//! 104.8k/98.6k/87.9k and GET 91.4k/88.1k/61.5k → 106.0k/97.5k/92.1k
//! requests/s, server CPU 9.1–11.3 → 7.0–8.1 µs per request (redis-server:
//! 7.4–8.6), and 0.09 poller sleeps per request. Echo at 12, 16, 32, 100 and
//! 10,000 connections and wrk at 100 and 1,000 stayed within the noise of
//! interleaved pairs (3 s runs; 12 connections: 137.7k/115.3k/116.3k →
//! 122.0k/115.8k/114.7k round trips/s), and 8 connections are below
//! `MIN_ACTIVE`, so nothing lingers there.
//!
//! # Rejected
//!
//! - Lingering on every wait: the losses above.
//! - Lingering only while no P was idle and the last wait brought at least
//!   4 events (an earlier experiment): neutral at 1 and 4 echo connections
//!   and within noise at 100, since a P is idle at most moments the poller
//!   goes to sleep, even when the load would let a linger pay.
//! - Counting every event, not readable sockets: write-space edges (one
//!   follows most replies, as the peer's ACK frees buffer space) are not
//!   work arriving, yet they would score as if they were.
//!
//! Not tried: an M cutting a linger short when it runs dry. As we read the
//! kernel, under DEFER_TASKRUN the wake eventfd's poll completion counts
//! toward the batch like any other event, so it would not end the wait; a
//! signal would, at about 16 µs per delivery (DESIGN §5). A linger instead
//! holds an event back by at most `LINGER_FOR_US`.

use std::time::{Duration, Instant};

/// Completions a lingering wait asks for before `LINGER_FOR_US` has passed.
pub(crate) const BATCH: usize = 32;
/// How long a lingering wait may hold back the events it has.
pub(crate) const LINGER_FOR_US: u32 = 100;
/// Readable sockets per lingering wait at which lingering breaks even.
const PAYS: i32 = 4;
/// A linger that gathers more than this share of the active sockets is
/// batching a closed loop (each socket waits for us): it never pays.
const SHARE_DIVISOR: u32 = 2;
/// Below this many active sockets no linger can pay (`PAYS + 1` readable
/// sockets, at most a `SHARE_DIVISOR`th of them), so none is tried.
const MIN_ACTIVE: u32 = SHARE_DIVISOR * (PAYS as u32 + 1);
/// One blocking wait in this many lingers while the credit is not positive.
const PROBE_EVERY: u32 = 256;
/// The credit's clamp.
const BOUND: i32 = 16;
/// The window over which active sockets are counted.
const EPOCH: Duration = Duration::from_millis(1);

/// The poller thread's lingering state (module doc).
#[derive(Debug, Default)]
pub(crate) struct Linger {
    credit: i32,
    waits: u32,
    /// Current epoch, from 1, so a fresh registration's mark (0) is stale.
    epoch: u32,
    epoch_start: Option<Instant>,
    active_now: u32,
    active_last: u32,
}

impl Linger {
    /// Whether the next blocking wait should linger.
    pub(crate) fn next_wait(&mut self) -> bool {
        if self.active() < MIN_ACTIVE {
            return false;
        }
        self.waits = self.waits.wrapping_add(1);
        self.credit > 0 || self.waits.is_multiple_of(PROBE_EVERY)
    }

    /// Turns lingering on as if a busy probe had paid (tests only).
    #[cfg(test)]
    pub(crate) fn force_on(&mut self) {
        self.credit = BOUND;
    }

    /// Blocking waits counted so far (tests only).
    #[cfg(test)]
    pub(crate) fn waits(&self) -> u32 {
        self.waits
    }

    /// Sockets seen readable in this epoch or the last, whichever is more.
    fn active(&self) -> u32 {
        self.active_now.max(self.active_last)
    }

    /// Called for each reap that found completions: starts a new epoch once
    /// `EPOCH` has passed.
    pub(crate) fn begin_reap(&mut self, now: Instant) {
        match self.epoch_start {
            Some(start) if now.duration_since(start) < EPOCH => {}
            _ => {
                self.active_last = self.active_now;
                self.active_now = 0;
                self.epoch = self.epoch.wrapping_add(1).max(1);
                self.epoch_start = Some(now);
            }
        }
    }

    /// Counts a socket that became readable, once per epoch; `mark` is the
    /// socket's own record of the last epoch it was counted in.
    pub(crate) fn readable(&mut self, mark: &mut u32) {
        if *mark != self.epoch {
            *mark = self.epoch;
            self.active_now += 1;
        }
    }

    /// Scores a lingering wait that returned with `readable` readable
    /// sockets.
    pub(crate) fn record(&mut self, readable: usize) {
        let readable = readable.min(BATCH) as u32;
        let gain = if readable * SHARE_DIVISOR > self.active() {
            -PAYS
        } else {
            readable as i32 - PAYS
        };
        self.credit = (self.credit + gain).clamp(-BOUND, BOUND);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lingers_in(linger: &mut Linger, waits: u32) -> u32 {
        (0..waits).filter(|_| linger.next_wait()).count() as u32
    }

    /// A linger state that has seen `sockets` distinct readable sockets.
    fn with_active(sockets: u32) -> Linger {
        let mut linger = Linger::default();
        linger.begin_reap(Instant::now());
        let mut marks = vec![0; sockets as usize];
        for mark in &mut marks {
            linger.readable(mark);
            linger.readable(mark); // counted once per epoch
        }
        assert_eq!(linger.active_now, sockets);
        linger
    }

    #[test]
    fn starts_off_and_only_probes() {
        let mut linger = with_active(MIN_ACTIVE);
        assert_eq!(lingers_in(&mut linger, PROBE_EVERY * 4), 4);
    }

    #[test]
    fn few_active_sockets_never_linger_not_even_to_probe() {
        let mut linger = with_active(MIN_ACTIVE - 1);
        linger.credit = BOUND;
        assert_eq!(lingers_in(&mut linger, PROBE_EVERY * 4), 0);
    }

    #[test]
    fn a_busy_probe_among_many_sockets_turns_lingering_on() {
        let mut linger = with_active(100);
        linger.record(20);
        assert_eq!(lingers_in(&mut linger, 10), 10);
    }

    #[test]
    fn gathering_up_to_half_of_the_active_sockets_pays() {
        // redis-benchmark's 50 connections: lingers of 13–25 of them.
        let mut linger = with_active(50);
        for _ in 0..4 {
            linger.record(13);
        }
        assert_eq!(lingers_in(&mut linger, 10), 10);
        linger.record(25);
        assert_eq!(linger.credit, BOUND);
        linger.record(26);
        assert_eq!(linger.credit, BOUND - PAYS);
    }

    #[test]
    fn thin_lingers_turn_it_off() {
        let mut linger = with_active(100);
        linger.record(20);
        for _ in 0..BOUND {
            linger.record(2);
        }
        assert!(lingers_in(&mut linger, PROBE_EVERY) <= 1);
    }

    #[test]
    fn gathering_most_of_the_active_sockets_never_pays() {
        // A closed loop of `MIN_ACTIVE` connections: a linger gathers all of them,
        // however many that is.
        let mut linger = with_active(MIN_ACTIVE);
        linger.credit = BOUND;
        for _ in 0..BOUND {
            linger.record(MIN_ACTIVE as usize);
        }
        assert!(linger.credit < 0);
        assert!(lingers_in(&mut linger, PROBE_EVERY) <= 1);
    }

    #[test]
    fn the_epoch_rolls_and_keeps_the_last_count() {
        let mut linger = with_active(40);
        let later = linger.epoch_start.unwrap() + EPOCH;
        linger.begin_reap(later);
        assert_eq!((linger.active_now, linger.active_last), (0, 40));
        let mut mark = linger.epoch - 1;
        linger.readable(&mut mark);
        assert_eq!(linger.active_now, 1);
    }

    #[test]
    fn the_credit_stays_bounded() {
        let mut linger = with_active(1000);
        for _ in 0..1000 {
            linger.record(BATCH);
        }
        assert_eq!(linger.credit, BOUND);
        for _ in 0..1000 {
            linger.record(1);
        }
        assert_eq!(linger.credit, -BOUND);
    }
}
