//! Fatal paths, each in a child process: stack overflow into the guard page,
//! a foreign segfault, and the VMA ceiling.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;

use goro_runtime::sync::WaitGroup;
use goro_runtime::Builder;

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 64];
    std::hint::black_box(&frame);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + std::hint::black_box(frame[3])
}

/// In a child process (`test` names it), a goroutine called `goroutine`
/// with a 64 KiB stack recurses until it overflows, inside `blocking()` if
/// `in_blocking`. Returns the child's stderr line with the report, after
/// checking that the child aborted.
fn overflow_report(test: &str, goroutine: &'static str, in_blocking: bool) -> String {
    if common::is_child(test) {
        goro_runtime::run(move || {
            let handle = Builder::new()
                .name(goroutine)
                .stack_size(64 * 1024)
                .spawn(move || {
                    if in_blocking {
                        goro_runtime::blocking(|| recurse(0))
                    } else {
                        recurse(0)
                    }
                })
                .unwrap();
            let _ = handle.join();
        });
        unreachable!("the overflow must abort the process");
    }
    let output = common::run_child(test, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{output:?}");
    stderr
        .lines()
        .find(|line| line.contains("overflowed its stack"))
        .unwrap_or_else(|| panic!("no overflow report in stderr: {stderr}"))
        .to_string()
}

#[test]
fn stack_overflow_aborts_with_the_goroutine_named() {
    let line = overflow_report(
        "stack_overflow_aborts_with_the_goroutine_named",
        "deep",
        false,
    );
    let rest = line.strip_prefix("goroutine ").expect(&line);
    let (id, rest) = rest.split_once(' ').expect(&line);
    assert!(id.parse::<u64>().is_ok(), "{line}");
    assert_eq!(rest, "(deep) overflowed its stack of 65536 bytes");
}

/// The same report for an overflow inside `blocking(f)`, where `f` runs on
/// the goroutine's stack while the M has no current goroutine.
#[test]
fn a_stack_overflow_inside_blocking_is_reported_too() {
    let line = overflow_report(
        "a_stack_overflow_inside_blocking_is_reported_too",
        "deep-blocking",
        true,
    );
    assert!(
        line.ends_with("(deep-blocking) overflowed its stack of 65536 bytes"),
        "{line}"
    );
}

#[test]
fn a_foreign_segfault_keeps_its_default_behaviour() {
    let name = "a_foreign_segfault_keeps_its_default_behaviour";
    if common::is_child(name) {
        goro_runtime::run(|| {
            let address = std::hint::black_box(16usize) as *mut u64;
            // SAFETY: none; this deliberately faults on an unmapped address.
            unsafe { address.write_volatile(1) };
        });
        unreachable!("the write must fault");
    }
    let output = common::run_child(name, &[]);
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("overflowed"), "{stderr}");
}

/// Uses up all but a few hundred of the process's VMAs, then spawns parked
/// goroutines until the stack mapping fails: `Builder::spawn` must return the
/// error naming the sysctl, and `goro::go` must panic with it.
#[test]
fn the_vma_ceiling_gives_a_clear_error() {
    let name = "the_vma_ceiling_gives_a_clear_error";
    if !common::is_child(name) {
        return common::assert_child_ok(name);
    }
    let rt = common::runtime(1);
    let report = rt.block_on(|| {
        let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let in_use = std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count();
        let spare = 300;
        let pairs = limit.saturating_sub(in_use + spare) / 2;
        eat_vmas(pairs);

        let gate = Arc::new(WaitGroup::new());
        gate.add(1);
        let mut handles = Vec::new();
        let error = loop {
            let gate = gate.clone();
            match Builder::new().spawn(move || gate.wait()) {
                Ok(handle) => handles.push(handle),
                Err(error) => break error,
            }
            assert!(handles.len() < 10_000, "the ceiling never came");
        };
        let message = error.to_string();
        assert!(message.contains("vm.max_map_count"), "{message}");
        let panic = std::panic::catch_unwind(|| goro_runtime::go(|| ())).unwrap_err();
        let panic = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(panic.contains("vm.max_map_count"), "{panic}");

        gate.done();
        let parked = handles.len();
        for handle in handles {
            handle.join().unwrap();
        }
        format!("parked={parked} error={message}")
    });
    println!("CHILD-OK {report}");
}

/// Splits one PROT_NONE reservation into `pairs * 2` VMAs by making every
/// other page readable. The mapping is leaked: the child exits soon after.
fn eat_vmas(pairs: usize) {
    let page = 4096;
    let len = pairs * 2 * page;
    // SAFETY: an anonymous, private, inaccessible reservation of our own.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED);
    for pair in 0..pairs {
        // SAFETY: inside the reservation above, which nothing else uses.
        let rc = unsafe {
            libc::mprotect(
                base.cast::<u8>().add(pair * 2 * page).cast(),
                page,
                libc::PROT_READ,
            )
        };
        assert_eq!(rc, 0, "mprotect failed after {pair} pairs");
    }
}
