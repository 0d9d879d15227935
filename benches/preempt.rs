//! Issue 5's figures: async preemption, system-call handoff and sysmon's
//! idle cost, printed as FIGURE lines beside Go 1.19's (`ci/go/preempt`,
//! which measures the same four things the same way).
//!
//! `cargo bench --bench preempt [-- idle wake syscall cost]` (default: all,
//! in that order; about 12 s).
//!
//! # 1. Wakeup lateness beside a spinner (`preempt_wake_p50`, `_max`)
//!
//! On 1 P with the default 10 ms slice, goroutine A spins
//! (`x = black_box(x.wrapping_mul(3))`, a stop flag loaded every iteration,
//! no call, no yield) while goroutine B, the one that spawned it, does 100 ×
//! `goro::time::sleep(1 ms)` and records each wake's lateness: wall time
//! across the call minus 1 ms. B can only run again once sysmon preempts A.
//! p50 and max in ms (`PBENCH_VERBOSE=1` prints all 100 to stderr). A
//! watchdog thread stops the spinner after 10 s if preemption never comes
//! (then `watchdog=fired` is printed).
//!
//! # 2. Counter progress during a 200 ms blocking call (`preempt_syscall_*`)
//!
//! Go's yardstick method (`shared/bench/go/micro`, `benchSyscall`), so the
//! figure is comparable with the 89 %. On 1 P a counter goroutine
//! loops `counter.fetch_add(1)` (no yield: the same loop for both runtimes;
//! the other goroutine gets the P back through preemption). Main first
//! parks in `goro::time::sleep(200 ms)` (the P is free): that is the free
//! rate. Then, holding the P, it blocks 200 ms in the kernel, and the rate
//! is the counter's delta across the call over the call's wall time as the
//! caller sees it:
//! - `preempt_syscall_blocking`: `goro::blocking(|| std::thread::sleep(..))`;
//! - `preempt_syscall_auto`: `std::thread::sleep(..)`, unannotated: sysmon's
//!   blocked-M handoff must notice.
//!
//! progress = rate during / free rate, in %; median of 5 runs each
//! (interleaved). Caveat, the same for Go: the caller's wall time includes
//! getting a P back after the call, during which the counter runs at full
//! speed (up to one slice); that adds up to ~5 % of progress. The
//! unannotated case has no such tail: its M carries on without a P.
//!
//! # 3. Cost of one preemption (`preempt_cost`)
//!
//! On 1 P with a 1 ms slice (`RuntimeBuilder::preempt_slice`; Go cannot
//! change its 10 ms), two goroutines spin for 2 s, each taking a TSC stamp
//! (`rdtsc`: one instruction, no call into libc or the vDSO, where goro
//! refuses to preempt) every 256 iterations and publishing it. Each
//! preemption switches from one spinner to the other, so when a spinner
//! finds a hole of over 100 µs in its own stamps during which the other
//! stamped, the time from the other's last stamp to its own first stamp is
//! one preemption as the P sees it: signal delivery, handler, trampoline
//! (register and XSAVE save), scheduler, switch, restore. A hole is not
//! counted if the other spinner stamps again during the next chunk: both
//! then run at once on two threads (goro's blocked-M handoff mistakes an M
//! that the OS descheduled for one blocked in the kernel, and its orphaned
//! goroutine runs on beside the P). The value is the median of the gaps
//! minus one 256-iteration chunk (the stamps' quantisation: on average half
//! a chunk on each side). The median ignores gaps the OS stretched by
//! descheduling the thread (the machine is shared); p10 (near the
//! undisturbed cost), mean and p90 are printed beside it. It does not count sysmon's own cost of sending the
//! signal (another CPU, ~10 µs per DESIGN §5). Measuring lost throughput
//! instead was rejected: at Go's 10 ms slice a preemption costs ~0.2 % of
//! the spinner's time, well under this machine's run-to-run noise.
//!
//! # 4. sysmon's CPU while the runtime is idle (`sysmon_idle_cpu*`)
//!
//! A runtime with the default Ps runs one goroutine to completion (so its
//! Ms and sysmon exist), settles 100 ms, then the main thread (outside the
//! runtime) sleeps 2 s. The figure is the process's CPU time
//! (`CLOCK_PROCESS_CPUTIME_ID`, exact in ns, unlike tick-based rusage)
//! across the 2 s, in µs per second idle. `sysmon_idle_cpu_timer`: the
//! same while one goroutine is parked in `goro::time::sleep(2.2 s)`, a timer
//! pending past the window. Measured first, before other runtimes exist.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn figure(bench: &str, value: f64, unit: &str, extra: &str) {
    println!("FIGURE peer=goro bench={bench} value={value:.2} unit={unit} {extra}");
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn runtime(procs: Option<usize>, slice: Option<Duration>) -> goro::Runtime {
    let mut builder = goro::Runtime::builder();
    if let Some(procs) = procs {
        builder = builder.procs(procs);
    }
    if let Some(slice) = slice {
        builder = builder.preempt_slice(slice);
    }
    builder.build().expect("runtime")
}

/// The spin loop of figures 1 and 3: one multiply per iteration, kept by
/// `black_box`, no call.
#[inline(always)]
fn spin_step(x: u64) -> u64 {
    black_box(x.wrapping_mul(3))
}

// ---------------------------------------------------------------- 1. wake

fn wake() {
    let rt = runtime(Some(1), None);
    let stop = Arc::new(AtomicBool::new(false));
    let (done, watched) = mpsc::channel::<()>();
    let watchdog = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let fired = watched.recv_timeout(Duration::from_secs(10))
                == Err(mpsc::RecvTimeoutError::Timeout);
            if fired {
                stop.store(true, Relaxed);
            }
            fired
        })
    };
    let (mut lates, spun) = rt.block_on(move || {
        let spinner = {
            let stop = stop.clone();
            goro::go(move || {
                let mut x = 1u64;
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    x = spin_step(x);
                    n += 1;
                }
                black_box(x);
                n
            })
        };
        let mut lates = Vec::with_capacity(100);
        for _ in 0..100 {
            let t0 = Instant::now();
            goro::time::sleep(Duration::from_millis(1));
            lates.push(t0.elapsed().as_secs_f64() * 1e3 - 1.0);
        }
        stop.store(true, Relaxed);
        (lates, spinner.join().expect("spinner"))
    });
    drop(done);
    let fired = watchdog.join().expect("watchdog");
    if std::env::var_os("PBENCH_VERBOSE").is_some() {
        eprintln!("lates: {lates:.1?}");
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    let max = lates.iter().copied().fold(0.0, f64::max);
    let p99 = {
        let mut s = lates.clone();
        s.sort_by(f64::total_cmp);
        s[98]
    };
    let p50 = median(&mut lates);
    let extra = format!(
        "procs=1 slice=10ms p99={p99:.2} spin_iters={spun}{}",
        if fired { " watchdog=fired" } else { "" }
    );
    figure("preempt_wake_p50", p50, "ms", &extra);
    figure("preempt_wake_max", max, "ms", &extra);
}

// ------------------------------------------------------------- 2. syscall

/// One run: (progress %, a description of the run).
fn syscall_once(rt: &goro::Runtime, annotated: bool) -> (f64, String) {
    rt.block_on(move || {
        let counter = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (counter, stop) = (counter.clone(), stop.clone());
            goro::go(move || {
                while !stop.load(Relaxed) {
                    counter.fetch_add(1, Relaxed);
                }
            })
        };
        // Let the counter start (main gets the P back by preempting it).
        goro::time::sleep(Duration::from_millis(20));
        let (c0, t0) = (counter.load(Relaxed), Instant::now());
        goro::time::sleep(Duration::from_millis(200));
        let (c1, t1) = (counter.load(Relaxed), Instant::now());
        let free = (c1 - c0) as f64 / (t1 - t0).as_secs_f64();

        let (c2, t2) = (counter.load(Relaxed), Instant::now());
        if annotated {
            goro::blocking(|| std::thread::sleep(Duration::from_millis(200)));
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
        let (c3, t3) = (counter.load(Relaxed), Instant::now());
        stop.store(true, Relaxed);
        worker.join().expect("counter");
        let during = (c3 - c2) as f64 / (t3 - t2).as_secs_f64();
        let pct = 100.0 * during / free;
        let note = format!(
            "{pct:.1}%:block_ms={:.1}:free_ms={:.1}",
            (t3 - t2).as_secs_f64() * 1e3,
            (t1 - t0).as_secs_f64() * 1e3
        );
        (pct, note)
    })
}

fn syscall() {
    let rt = runtime(Some(1), None);
    let mut runs = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for _ in 0..5 {
        for (annotated, (pcts, notes)) in [true, false].into_iter().zip(runs.iter_mut()) {
            let (pct, note) = syscall_once(&rt, annotated);
            pcts.push(pct);
            notes.push(note);
        }
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    for (name, (mut pcts, notes)) in ["preempt_syscall_blocking", "preempt_syscall_auto"]
        .into_iter()
        .zip(runs)
    {
        let how = if name.ends_with("blocking") {
            "goro::blocking(std::thread::sleep)"
        } else {
            "std::thread::sleep"
        };
        let extra = format!("procs=1 call={how} runs={}", notes.join(","));
        figure(name, median(&mut pcts), "pct_of_free_rate", &extra);
    }
}

// ---------------------------------------------------------------- 3. cost

/// Iterations between TSC stamps.
const CHUNK: u64 = 256;
/// A spinner that finds a hole this long in its own stamps was switched out.
const HOLE_US: f64 = 100.0;

struct Stamps {
    stop: AtomicBool,
    /// Each spinner's last stamp.
    last: [AtomicU64; 2],
}

fn tsc() -> u64 {
    // SAFETY: RDTSC reads the time-stamp counter; it has no memory effects
    // (x86_64 only, like goro).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Spins in chunks until stopped; returns (iterations, switch gaps in TSC
/// ticks). A switch: a hole of more than `hole` ticks in my own stamps
/// during which the other spinner stamped, and no stamp from the other
/// during my next chunk (else the two run at once, on two threads: not a
/// switch on the P).
fn stamped_spinner(stamps: &Stamps, me: usize, hole: u64) -> (u64, Vec<u64>) {
    let other = &stamps.last[1 - me];
    let mut gaps = Vec::with_capacity(8192);
    let (mut x, mut n) = (1u64, 0u64);
    let mut mine = tsc();
    // A switch seen at the last stamp: (gap, the other's stamp then).
    let mut candidate: Option<(u64, u64)> = None;
    while !stamps.stop.load(Relaxed) {
        for _ in 0..CHUNK {
            x = spin_step(x);
        }
        n += CHUNK;
        let now = tsc();
        let theirs = other.load(Relaxed);
        if let Some((gap, seen)) = candidate.take() {
            if theirs == seen && gaps.len() < gaps.capacity() {
                gaps.push(gap);
            }
        }
        if now.saturating_sub(mine) > hole && theirs > mine {
            candidate = Some((now.saturating_sub(theirs), theirs));
        }
        stamps.last[me].store(now, Relaxed);
        mine = now;
    }
    black_box(x);
    (n, gaps)
}

fn cost() {
    let slice = Duration::from_millis(1);
    let wall = Duration::from_secs(2);
    // TSC ticks per µs, and one chunk's time (the stamps' quantisation).
    let (c0, t0) = (tsc(), Instant::now());
    let mut x = 1u64;
    for _ in 0..20_000 * CHUNK {
        x = spin_step(x);
    }
    black_box(x);
    let (c1, t1) = (tsc(), Instant::now());
    let ticks_per_us = (c1 - c0) as f64 / ((t1 - t0).as_secs_f64() * 1e6);
    let chunk_us = (t1 - t0).as_secs_f64() * 1e6 / 20_000.0;

    let rt = runtime(Some(1), Some(slice));
    let stamps = Arc::new(Stamps {
        stop: AtomicBool::new(false),
        last: [AtomicU64::new(0), AtomicU64::new(0)],
    });
    let hole = (HOLE_US * ticks_per_us) as u64;
    let spinners: Vec<_> = (0..2)
        .map(|me| {
            let stamps = stamps.clone();
            rt.spawn(move || stamped_spinner(&stamps, me, hole))
        })
        .collect();
    std::thread::sleep(wall);
    stamps.stop.store(true, Relaxed);
    let mut gaps: Vec<f64> = Vec::new();
    let mut iters = 0;
    for spinner in spinners {
        let (n, g) = spinner.join().expect("spinner");
        iters += n;
        gaps.extend(g.into_iter().map(|t| t as f64 / ticks_per_us));
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    if gaps.is_empty() {
        figure(
            "preempt_cost",
            f64::NAN,
            "us",
            "procs=1 slice=1ms preemptions=0",
        );
        return;
    }
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    gaps.sort_by(f64::total_cmp);
    let p10 = gaps[gaps.len() / 10];
    let p90 = gaps[gaps.len() * 9 / 10];
    let med = gaps[gaps.len() / 2];
    let extra = format!(
        "procs=1 slice=1ms preemptions={} per_s={:.0} gap_p10={p10:.2} gap_median={med:.2} \
         gap_mean={mean:.2} gap_p90={p90:.2} chunk_us={chunk_us:.3} spin_iters={iters}",
        gaps.len(),
        gaps.len() as f64 / wall.as_secs_f64(),
    );
    figure("preempt_cost", med - chunk_us, "us", &extra);
}

// ---------------------------------------------------------------- 4. idle

fn process_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// µs of process CPU per second while the main thread sleeps `window`.
fn cpu_while_sleeping(window: Duration) -> f64 {
    let (c0, t0) = (process_cpu_ns(), Instant::now());
    std::thread::sleep(window);
    let (c1, t1) = (process_cpu_ns(), Instant::now());
    (c1 - c0) as f64 / 1e3 / (t1 - t0).as_secs_f64()
}

fn idle() {
    let window = Duration::from_secs(2);
    let settle = Duration::from_millis(100);
    let rt = runtime(None, None);
    let procs = rt.procs();
    rt.block_on(|| black_box(1));
    std::thread::sleep(settle);
    let idle = cpu_while_sleeping(window);
    figure(
        "sysmon_idle_cpu",
        idle,
        "us_cpu_per_s",
        &format!("procs={procs} parked=none"),
    );

    let sleeper = rt.spawn(move || goro::time::sleep(window + 2 * settle));
    std::thread::sleep(settle);
    let timer = cpu_while_sleeping(window);
    sleeper.join().expect("sleeper");
    figure(
        "sysmon_idle_cpu_timer",
        timer,
        "us_cpu_per_s",
        &format!("procs={procs} parked=one_goro::time::sleep(2.2s)"),
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

fn main() {
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| asked.is_empty() || asked.iter().any(|a| a == name);
    if want("idle") {
        idle();
    }
    if want("wake") {
        wake();
    }
    if want("syscall") {
        syscall();
    }
    if want("cost") {
        cost();
    }
}
