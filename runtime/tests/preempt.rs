//! sysmon, async preemption and `blocking()` (issue 5). Every test asserts
//! progress ("the other goroutine ran", "the result is bit-exact"), never
//! speed; timings live in `benches/preempt.rs`.
//!
//! The kernel features used here (signals, `clock_gettime` on another
//! thread's CPU clock, `membarrier`) exist on every Linux goro supports; a
//! test that depends on the blocked-M handoff checks `membarrier` first.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro_runtime::{go, preempt, time, yield_now, Runtime};

fn runtime(procs: usize, slice: Duration) -> Runtime {
    Runtime::builder()
        .procs(procs)
        .preempt_slice(slice)
        .build()
        .expect("runtime")
}

/// Spins until `stop`, doing integer work the optimiser cannot drop.
fn spin_until(stop: &AtomicBool) -> u64 {
    let mut x = 1u64;
    while !stop.load(Ordering::Relaxed) {
        x = std::hint::black_box(x.wrapping_mul(3));
    }
    x
}

#[test]
fn a_spinning_goroutine_does_not_stop_a_sleeper_on_one_p() {
    let rt = runtime(1, Duration::from_millis(10));
    let slept = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = {
            let stop = stop.clone();
            go(move || spin_until(&stop))
        };
        let sleeper = go(|| {
            for _ in 0..20 {
                time::sleep(Duration::from_millis(1));
            }
            20
        });
        let slept = sleeper.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        slept
    });
    assert_eq!(slept, 20);
    assert!(rt.stats().preemptions_done > 0, "{:?}", rt.stats());
}

/// A chunk of floating-point work: scalar SSE arithmetic and, where the CPU
/// has it, AVX2 vectors. Deterministic, so a preempted run must match a
/// plain thread's bit for bit.
fn float_chunk(seed: u64, state: &mut [f64; 8]) {
    for i in 0..2_000u64 {
        let t = (seed.wrapping_mul(31).wrapping_add(i) % 1000) as f64 * 1e-3;
        for (lane, value) in state.iter_mut().enumerate() {
            *value = (*value * 0.999_999 + t * (lane as f64 + 1.0)).sqrt() + 1.0 / (1.0 + t);
        }
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present (checked just above).
        unsafe { avx_chunk(state) };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx_chunk(state: &mut [f64; 8]) {
    use std::arch::x86_64::*;
    // SAFETY: unaligned loads and stores within `state`'s 8 f64s.
    unsafe {
        let mut a = _mm256_loadu_pd(state.as_ptr());
        let mut b = _mm256_loadu_pd(state.as_ptr().add(4));
        let k = _mm256_set1_pd(0.5);
        for _ in 0..500 {
            a = _mm256_add_pd(_mm256_mul_pd(a, k), _mm256_sqrt_pd(b));
            b = _mm256_add_pd(_mm256_mul_pd(b, k), _mm256_sqrt_pd(a));
        }
        _mm256_storeu_pd(state.as_mut_ptr(), a);
        _mm256_storeu_pd(state.as_mut_ptr().add(4), b);
    }
}

#[test]
fn floating_point_state_survives_thousands_of_preemptions_bit_for_bit() {
    const WANTED: u64 = 2_000;
    let rt = runtime(1, Duration::from_micros(200));
    let (chunks, state) = rt.block_on(|| {
        let before = goro_runtime::runtime::stats().preemptions_done;
        let worker = go(move || {
            let mut state = [1.0f64; 8];
            let mut chunks = 0u64;
            let started = Instant::now();
            // Until enough preemptions landed inside this loop (bounded).
            while goro_runtime::runtime::stats().preemptions_done - before < WANTED
                && started.elapsed() < Duration::from_secs(60)
            {
                for _ in 0..64 {
                    float_chunk(chunks, &mut state);
                    chunks += 1;
                }
            }
            (chunks, state)
        });
        worker.join().unwrap()
    });
    let preempted = rt.stats().preemptions_done;
    assert!(preempted >= WANTED, "only {preempted} preemptions");
    let mut expected = [1.0f64; 8];
    for chunk in 0..chunks {
        float_chunk(chunk, &mut expected);
    }
    for (got, want) in state.iter().zip(expected.iter()) {
        assert_eq!(got.to_bits(), want.to_bits(), "after {chunks} chunks");
    }
}

/// This thread's errno. Not inlined: LLVM knows `__errno_location` is a
/// const function and would compute the address once for the whole loop —
/// the thread-local hazard the crate docs describe, which no runtime can
/// undo. What the runtime owes is the *value*, carried to the new thread.
#[inline(never)]
fn errno() -> i32 {
    // SAFETY: `__errno_location` returns this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets this thread's errno (see [`errno`]).
#[inline(never)]
fn set_errno(value: i32) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value };
}

#[test]
fn errno_survives_preemption_and_migration() {
    let rt = runtime(2, Duration::from_micros(200));
    let checked = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|k| {
                let stop = stop.clone();
                go(move || {
                    let mut checks = 0u64;
                    let mut value = 1000 + k;
                    while !stop.load(Ordering::Relaxed) {
                        // The store and the load each run pinned: between
                        // `__errno_location()` and the access, errno's
                        // address sits in a register, and a preemption there
                        // would make the store land on the old thread (the
                        // hazard the crate doc names). What the runtime owes
                        // is the value across preemptions in the loop below.
                        {
                            let _pinned = goro_runtime::preempt::disable();
                            set_errno(value);
                        }
                        let mut x = 1u64;
                        for _ in 0..10_000 {
                            x = std::hint::black_box(x.wrapping_mul(3));
                        }
                        let seen = {
                            let _pinned = goro_runtime::preempt::disable();
                            errno()
                        };
                        assert_eq!(seen, value, "errno changed under a preemption");
                        value = value.wrapping_add(3);
                        checks += 1;
                    }
                    checks
                })
            })
            .collect();
        let started = Instant::now();
        while goro_runtime::runtime::stats().preemptions_done < 500
            && started.elapsed() < Duration::from_secs(60)
        {
            time::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        workers.into_iter().map(|w| w.join().unwrap()).sum::<u64>()
    });
    assert!(checked > 0);
    assert!(rt.stats().preemptions_done >= 500, "{:?}", rt.stats());
}

#[test]
fn no_eintr_reaches_file_and_pipe_reads_while_preemption_signals_fly() {
    let rt = runtime(1, Duration::from_micros(200));
    let (reads, preempted) = rt.block_on(|| {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (read_fd, write_fd) = (fds[0], fds[1]);
        let stop = Arc::new(AtomicBool::new(false));
        // A plain thread feeds the pipe slowly, so reads block in the kernel.
        let feeder = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_micros(300));
                    // SAFETY: writes one byte from a live buffer.
                    unsafe { libc::write(write_fd, b"x".as_ptr().cast(), 1) };
                }
            })
        };
        let spinner = {
            let stop = stop.clone();
            go(move || spin_until(&stop))
        };
        let reader = go(move || {
            let mut reads = 0u64;
            let started = Instant::now();
            while started.elapsed() < Duration::from_millis(800) {
                let status = std::fs::read("/proc/self/stat").expect("file read failed");
                assert!(!status.is_empty());
                let mut byte = [0u8; 1];
                // SAFETY: reads into a live one-byte buffer.
                let n = unsafe { libc::read(read_fd, byte.as_mut_ptr().cast(), 1) };
                assert_eq!(
                    n,
                    1,
                    "pipe read failed: {}",
                    std::io::Error::last_os_error()
                );
                reads += 1;
                // Run a little, so sysmon signals this M too.
                let mut x = 1u64;
                for _ in 0..200_000 {
                    x = std::hint::black_box(x.wrapping_mul(3));
                }
            }
            reads
        });
        let reads = reader.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        feeder.join().unwrap();
        // SAFETY: closing descriptors this test opened.
        unsafe {
            libc::close(read_fd);
            libc::close(write_fd);
        }
        (reads, goro_runtime::runtime::stats().preemptions_requested)
    });
    assert!(reads > 0);
    assert!(preempted > 0, "no preemption signal was sent");
}

/// A counter goroutine's progress while another goroutine blocks for
/// 200 ms on one P, with `blocking()` or without.
fn counter_progress_during_a_blocked_sleep(use_blocking: bool) -> (u64, u64) {
    let rt = runtime(1, Duration::from_millis(10));
    let progress = rt.block_on(move || {
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let counter = {
            let (count, stop) = (count.clone(), stop.clone());
            go(move || {
                while !stop.load(Ordering::Relaxed) {
                    count.fetch_add(1, Ordering::Relaxed);
                    yield_now();
                }
            })
        };
        let sleeper = {
            let count = count.clone();
            go(move || {
                let before = count.load(Ordering::Relaxed);
                if use_blocking {
                    goro_runtime::blocking(|| std::thread::sleep(Duration::from_millis(200)));
                } else {
                    std::thread::sleep(Duration::from_millis(200));
                }
                count.load(Ordering::Relaxed) - before
            })
        };
        let progress = sleeper.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        counter.join().unwrap();
        progress
    });
    (progress, rt.stats().handoffs)
}

#[test]
fn blocking_hands_the_p_to_another_m_so_a_counter_keeps_counting() {
    let (progress, handoffs) = counter_progress_during_a_blocked_sleep(true);
    assert!(progress > 0, "the counter stood still during blocking()");
    assert!(handoffs > 0, "no handoff was counted");
}

#[test]
fn a_thread_sleep_without_blocking_is_handed_off_too() {
    // The blocked-M handoff needs membarrier(2); probe it.
    const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
    // SAFETY: a membarrier command with no pointers.
    if unsafe { libc::syscall(libc::SYS_membarrier, REGISTER_PRIVATE_EXPEDITED, 0, 0) } != 0 {
        println!(
            "skipped: membarrier is unavailable here ({})",
            std::io::Error::last_os_error()
        );
        return;
    }
    let (progress, handoffs) = counter_progress_during_a_blocked_sleep(false);
    assert!(
        progress > 0,
        "the counter stood still during std::thread::sleep"
    );
    assert!(handoffs > 0, "no handoff was counted");
}

#[test]
fn a_panic_inside_blocking_reaches_join_and_the_runtime_carries_on() {
    let rt = runtime(1, Duration::from_millis(10));
    let result = rt.block_on(|| {
        let failed = go(|| goro_runtime::blocking(|| panic!("inside blocking"))).join();
        let after = go(|| goro_runtime::blocking(|| 41) + 1).join().unwrap();
        (failed.is_err(), after)
    });
    assert_eq!(result, (true, 42));
}

/// The child of `asyncpreemptoff_really_turns_preemption_off`: a spinner that
/// spins for a bounded 300 ms and a 1 ms sleeper on one P. Prints whether
/// the sleeper woke before the spinner finished.
#[test]
fn asyncpreemptoff_child() {
    if !common::is_child("asyncpreemptoff_child") {
        return;
    }
    let rt = Runtime::builder().procs(1).build().unwrap();
    let sleeper_first = rt.block_on(|| {
        let spinner_done = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let spinner_done = spinner_done.clone();
            go(move || {
                time::sleep(Duration::from_millis(1));
                !spinner_done.load(Ordering::SeqCst)
            })
        };
        yield_now(); // the sleeper arms its timer
        let spinner = {
            let spinner_done = spinner_done.clone();
            go(move || {
                let started = Instant::now();
                let mut x = 1u64;
                while started.elapsed() < Duration::from_millis(300) {
                    x = std::hint::black_box(x.wrapping_mul(3));
                }
                spinner_done.store(true, Ordering::SeqCst);
                x
            })
        };
        spinner.join().unwrap();
        sleeper.join().unwrap()
    });
    println!("sleeper_first={sleeper_first}");
    println!("CHILD-OK");
}

#[test]
fn asyncpreemptoff_really_turns_preemption_off() {
    if common::is_child("asyncpreemptoff_child") {
        return;
    }
    let run = |env: &[(&str, &str)]| {
        let output = common::run_child("asyncpreemptoff_child", env);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success() && stdout.contains("CHILD-OK"),
            "{output:?}"
        );
        stdout
    };
    let off = run(&[("GORO_DEBUG", "asyncpreemptoff=1")]);
    assert!(
        off.contains("sleeper_first=false"),
        "preemption was not off: {off}"
    );
    let on = run(&[]);
    assert!(
        on.contains("sleeper_first=true"),
        "preemption did not happen: {on}"
    );
}

#[test]
fn a_goroutine_holding_preempt_disable_is_never_preempted() {
    let rt = runtime(1, Duration::from_micros(200));
    let (same_thread, sleeper_ran_inside) = rt.block_on(|| {
        let inside = Arc::new(AtomicBool::new(false));
        let sleeper_ran_inside = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let (inside, ran) = (inside.clone(), sleeper_ran_inside.clone());
            go(move || {
                time::sleep(Duration::from_millis(1));
                if inside.load(Ordering::SeqCst) {
                    ran.store(true, Ordering::SeqCst);
                }
            })
        };
        let pinned = {
            let inside = inside.clone();
            go(move || {
                let _guard = preempt::disable();
                inside.store(true, Ordering::SeqCst);
                let thread = std::thread::current().id();
                let mut same = true;
                let started = Instant::now();
                while started.elapsed() < Duration::from_millis(100) {
                    same &= std::thread::current().id() == thread;
                }
                inside.store(false, Ordering::SeqCst);
                same
            })
        };
        let same = pinned.join().unwrap();
        sleeper.join().unwrap();
        (same, sleeper_ran_inside.load(Ordering::SeqCst))
    });
    assert!(same_thread, "the guarded goroutine changed threads");
    assert!(!sleeper_ran_inside, "the guarded goroutine was preempted");
}

/// Integer work the optimiser cannot drop, in this program's own code.
fn busy(rounds: u32) {
    let mut x = 1u64;
    for _ in 0..rounds {
        x = std::hint::black_box(x.wrapping_mul(3));
    }
}

/// `System`'s allocator behind a spin in this program's own code: a place
/// async preemption may land, as it may inside jemalloc or mimalloc. On a
/// runtime of one P, `witness_runs` moves only while the allocating
/// goroutine is switched out; a call that sees it move was preempted inside
/// the allocator.
struct SpinningAllocator {
    witness_runs: AtomicU64,
    calls: AtomicU64,
    interrupted: AtomicU64,
}

impl SpinningAllocator {
    const fn new() -> SpinningAllocator {
        SpinningAllocator {
            witness_runs: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            interrupted: AtomicU64::new(0),
        }
    }
}

// SAFETY: allocation is `System`'s, with the caller's layout unchanged.
unsafe impl GlobalAlloc for SpinningAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let before = self.witness_runs.load(Ordering::SeqCst);
        busy(2_000);
        if self.witness_runs.load(Ordering::SeqCst) != before {
            self.interrupted.fetch_add(1, Ordering::SeqCst);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `layout`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// On one P with 1 ms slices, one goroutine allocates through `allocator`
/// in a loop that never yields (half its time inside the allocator), and a witness goroutine counts its own runs
/// (each one a preemption of the allocator's caller), until 20 have
/// happened. Returns (witness runs, allocations, allocations preempted).
fn preempt_while_allocating<A: GlobalAlloc + Sync>(
    allocator: &'static A,
    spinning: &'static SpinningAllocator,
) -> (u64, u64, u64) {
    const WANTED: u64 = 20;
    let rt = runtime(1, Duration::from_millis(1));
    rt.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let witness = {
            let stop = stop.clone();
            go(move || {
                while !stop.load(Ordering::SeqCst) {
                    spinning.witness_runs.fetch_add(1, Ordering::SeqCst);
                    yield_now();
                }
            })
        };
        let allocating = go(move || {
            let layout = Layout::from_size_align(64, 8).unwrap();
            let first = spinning.witness_runs.load(Ordering::SeqCst);
            let started = Instant::now();
            while spinning.witness_runs.load(Ordering::SeqCst) - first < WANTED
                && started.elapsed() < Duration::from_secs(60)
            {
                // SAFETY: a 64-byte layout, freed at once with the same
                // layout by the same allocator.
                unsafe {
                    let block = allocator.alloc(layout);
                    assert!(!block.is_null());
                    allocator.dealloc(block, layout);
                }
                // As long outside the allocator as inside, so that a
                // preemption refused inside soon lands out here.
                busy(2_000);
            }
            stop.store(true, Ordering::SeqCst);
            spinning.witness_runs.load(Ordering::SeqCst) - first
        });
        let runs = allocating.join().unwrap();
        witness.join().unwrap();
        (
            runs,
            spinning.calls.load(Ordering::SeqCst),
            spinning.interrupted.load(Ordering::SeqCst),
        )
    })
}

/// The hazard `PreemptOffAllocator` exists for: without it, preemption
/// lands inside an allocator compiled into the program (this test's
/// allocator spins in its own code, as jemalloc's fast path runs in the
/// program's). Also shows that the test below can see a preemption inside.
#[test]
fn an_allocator_compiled_into_the_program_can_be_preempted_inside() {
    static BARE: SpinningAllocator = SpinningAllocator::new();
    let (runs, calls, interrupted) = preempt_while_allocating(&BARE, &BARE);
    assert!(runs >= 20, "only {runs} preemptions in 60 s");
    assert!(
        interrupted > 0,
        "none of {runs} preemptions landed in {calls} allocations"
    );
}

#[test]
fn a_preempt_off_allocator_is_never_preempted_inside() {
    static WRAPPED: preempt::PreemptOffAllocator<SpinningAllocator> =
        preempt::PreemptOffAllocator::new(SpinningAllocator::new());
    let (runs, calls, interrupted) = preempt_while_allocating(&WRAPPED, WRAPPED.inner());
    assert!(
        runs >= 20,
        "only {runs} preemptions in 60 s: the caller was never preempted between calls"
    );
    assert!(calls > 0);
    assert_eq!(
        interrupted, 0,
        "{interrupted} of {calls} allocations preempted inside"
    );
}
