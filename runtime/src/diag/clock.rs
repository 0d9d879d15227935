//! A coarse clock for park timestamps: whole seconds since the first
//! runtime was built, stored by the diagnostics thread on every wake (at
//! least once a second) and read by `G::set_wait_reason` on every park.
//!
//! Why not read a clock on park: on this VM `CLOCK_MONOTONIC` costs about
//! 100 ns and even `CLOCK_MONOTONIC_COARSE` 13–25 ns (measured), against a
//! ping-pong round trip of ~200 ns with two parks: 10 % or more. A relaxed
//! load of a line written once a second costs about a nanosecond. The
//! price: a park's stamp may lag by up to a second (plus scheduling delay
//! of the diagnostics thread), which the dump's "N minutes" cannot notice.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();
static COARSE: AtomicU32 = AtomicU32::new(0);

/// Exact seconds since the epoch.
pub(crate) fn now_secs() -> u32 {
    EPOCH.get_or_init(Instant::now).elapsed().as_secs() as u32
}

/// The last stored second: what a park records.
pub(crate) fn coarse_secs() -> u32 {
    COARSE.load(Ordering::Relaxed)
}

/// Stores the current second (diagnostics thread, and runtime build).
pub(crate) fn tick() {
    let now = now_secs();
    if COARSE.load(Ordering::Relaxed) != now {
        COARSE.store(now, Ordering::Relaxed);
    }
}
