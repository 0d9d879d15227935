//! How long an M that ran dry spins before it sleeps: Go's quick rounds
//! always, and a longer timed spin only while spinning has been paying.
//!
//! # The trade
//!
//! A G readied for a spinning M is picked up in about 130 ns; one readied
//! for a sleeping M costs a futex wake, 15–30 µs of latency on this VM
//! (DESIGN §5), and a few µs of CPU on both sides. So an M that runs out of
//! work may spin, stealing, hoping work arrives. How long pays depends on
//! who makes the work:
//!
//! - **Foreign threads and the io_uring netpoller thread** ready Gs from
//!   outside the Ps. A tight exchange with a std thread is caught almost
//!   every time by a 20 µs spin; without it every value waits for a futex
//!   wake of an idle vCPU: `chan::tests::a_foreign_receiver_revokes_while_the_owner_sends`
//!   (1 P, then 10 rounds of 5,000 values) took 56–237 s with Go's quick
//!   rounds alone, against 1.9–5.5 s.
//! - **epoll readiness** is reaped by the Ms themselves (`netpoll.rs`): the
//!   M blocked in `epoll_wait` runs what it finds, and a spinner almost never
//!   catches anything. Measured on the kv example (`redis-benchmark -c 50
//!   -P 1`, 200,000 SETs and GETs, 3 interleaved rounds): 26–72 catches
//!   against 38,000–72,000 timed-out 20 µs spins, and 8.8–11.5 CPU-µs per
//!   request with quick rounds alone against 10.7–13.6 with the 20 µs spin.
//! - **io_uring kv**: 88–94 % of the 20 µs spins caught a G, after 5.5–7.2 µs
//!   on average, yet the spinning was about a quarter of the server's CPU,
//!   and quick rounds alone used less CPU per request in 3 of 3 rounds
//!   (13.4 against 14.3, 11.7 against 14.3, 13.5 against 17.3 µs). On two
//!   cores a spin takes the CPU the client and the netpoller thread need.
//!
//! No fixed length serves all three, so the length adapts.
//!
//! # The rule
//!
//! Every M first makes [`QUICK_ROUNDS`] rounds of stealing (Go's
//! `stealTries`). After that it keeps spinning, up to [`SPIN_FOR`], only
//! while the runtime's [`SpinCredit`] is positive: an estimate, in
//! nanoseconds of CPU, of what the extended spins have saved.
//!
//! - An extended spin that catches a G after `t` adds [`WAKE_SAVING`] − `t`;
//!   one that times out subtracts the time it spun.
//! - While the credit is not positive, one dry M in [`PROBE_EVERY`] spins
//!   long anyway, so the credit keeps learning when the workload changes.
//! - The credit stays within [`CREDIT_MIN`] (two timed-out spins: one or two
//!   catching probes turn spinning back on) and [`CREDIT_MAX`].
//!
//! Updates are a relaxed load and store on one atomic: a lost race between
//! two spinners costs one sample, and at most half the busy Ps spin.
//!
//! `WAKE_SAVING` is 10 µs: the waker's `futex_wake` with its IPI, the
//! sleeper's way into and out of `futex_wait`, and the P hand-over. With it
//! the foreign-thread exchange above (catches after 6.4 µs on average, 4–6 %
//! timeouts) keeps spinning; epoll kv (almost no catches) stops; io_uring kv
//! (catches after 5.5–9.4 µs on average, 6–61 % timeouts, varying with the
//! host's load) sits near the line and moves between the two.
//!
//! # Measured against the fixed 20 µs
//!
//! Interleaved pairs on 2 Ps, the host's load varying between rounds:
//!
//! - kv, `redis-benchmark -t set,get -n 200000 -c 50 -P 1`, server CPU-µs
//!   per request (`/proc/<pid>/stat`): io_uring 19.9, 14.1, 19.4, 18.9,
//!   20.0 → 15.2, 13.9, 17.0, 15.1, 17.8; epoll 13.9, 14.5, 15.4, 12.9,
//!   13.9 → 11.9, 10.3, 12.0, 12.6, 12.1.
//! - echo, Go's loadgen, 100 connections, CPU-µs per round trip: io_uring
//!   11.8, 11.4, 10.9 → 11.3, 11.6, 10.6; epoll 9.1, 9.0, 9.1 → 7.5, 7.8,
//!   8.5 (`ci/load.sh`'s one-thread C epoll floor: 7.6–7.8 that day). At
//!   10,000 connections the Ms rarely run dry (a few thousand spins in 4 s)
//!   and the rule makes no difference beyond noise.
//! - The foreign-receiver test: 0.3–2.5 s → 0.4–0.9 s (12.6–18.4 s while a
//!   rejected variant below kept it in quick-rounds mode).
//! - `cargo bench --bench chan 2p`: within the run-to-run spread
//!   (`buffered_128/2p` 89–193 → 76–80 ns, `pingpong/2p` 389 → 429 ns).
//!
//! # Rejected
//!
//! - **A fixed 20 µs** (the previous rule): the epoll and io_uring kv costs
//!   above.
//! - **Go's quick rounds alone**: the foreign-thread exchange above.
//! - **Scoring sleeps as spins that were not made** (a sleeping M handed a
//!   P `t` after it slept counts as a spin that would have caught after
//!   `t`, or timed out): it never recovers from quick-rounds mode on the
//!   foreign-thread exchange. There, once the M sleeps, the std thread
//!   sleeps too, and each M sleep lasts that thread's own futex wake (more
//!   than 20 µs): 1,136–1,205 long sleeps against 12–13 short ones, and the
//!   test took 12.6–18.4 s. A spin changes what it measures.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Rounds of stealing every dry M makes before the credit is consulted
/// (Go's `stealTries`).
pub(crate) const QUICK_ROUNDS: u32 = 4;

/// The longest extended spin (about one futex wake's latency).
pub(crate) const SPIN_FOR: Duration = Duration::from_micros(20);

/// The CPU one avoided futex wake saves (module doc).
const WAKE_SAVING: i64 = 10_000;

/// Upper bound of the credit: what a workload that turns bad spends (ten
/// timed-out spins) before spinning stops.
const CREDIT_MAX: i64 = 200_000;

/// Lower bound: two timed-out spins, so that one or two catching probes
/// turn spinning back on.
const CREDIT_MIN: i64 = -2 * SPIN_FOR.as_nanos() as i64;

/// While the credit is not positive, one dry M in this many spins long
/// anyway, to test whether spinning pays again.
const PROBE_EVERY: u64 = 32;

/// The runtime-wide spin credit (module doc).
pub(crate) struct SpinCredit {
    nanos: AtomicI64,
}

impl SpinCredit {
    pub(crate) const fn new() -> SpinCredit {
        // Start by spinning: a fresh runtime has no evidence either way, and
        // a short exchange with a foreign thread must not start slow.
        SpinCredit {
            nanos: AtomicI64::new(CREDIT_MAX),
        }
    }

    /// May a dry M spin past its quick rounds? `random` is the M's next
    /// random number, for the probes.
    pub(crate) fn extend(&self, random: u64) -> bool {
        self.nanos.load(Ordering::Relaxed) > 0 || random.is_multiple_of(PROBE_EVERY)
    }

    /// An extended spin ended after `spent`: it caught a G, or timed out.
    pub(crate) fn spun(&self, caught: bool, spent: Duration) {
        let spent = i64::try_from(spent.as_nanos()).unwrap_or(i64::MAX);
        let delta = if caught { WAKE_SAVING - spent } else { -spent };
        let old = self.nanos.load(Ordering::Relaxed);
        let new = old.saturating_add(delta).clamp(CREDIT_MIN, CREDIT_MAX);
        if new != old {
            self.nanos.store(new, Ordering::Relaxed);
        }
    }

    /// The current credit, for tests.
    #[cfg(test)]
    pub(crate) fn nanos(&self) -> i64 {
        self.nanos.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random number that never asks for a probe.
    const NO_PROBE: u64 = 1;

    #[test]
    fn timed_out_spins_stop_spinning_and_catching_probes_restart_it() {
        let credit = SpinCredit::new();
        assert!(credit.extend(NO_PROBE));
        let mut spins = 0;
        while credit.extend(NO_PROBE) {
            credit.spun(false, SPIN_FOR);
            spins += 1;
        }
        assert_eq!(spins, CREDIT_MAX / SPIN_FOR.as_nanos() as i64);
        assert!(credit.extend(0), "a probe spins even without credit");
        // Probes that catch a G within a microsecond turn spinning back on.
        let mut probes = 0;
        while !credit.extend(NO_PROBE) {
            credit.spun(true, Duration::from_micros(1));
            probes += 1;
        }
        assert!(probes <= 5, "took {probes} probes");
    }

    #[test]
    fn catches_slower_than_a_wake_count_against_spinning() {
        let credit = SpinCredit::new();
        for _ in 0..1_000 {
            credit.spun(true, Duration::from_nanos(WAKE_SAVING as u64 + 1_000));
        }
        assert!(!credit.extend(NO_PROBE));
        assert_eq!(credit.nanos(), CREDIT_MIN);
    }
}
