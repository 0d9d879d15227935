//! Diagnostics (issue 6): schedtrace lines, the goroutine dump, SIGQUIT,
//! `stats()` counters and `tracing` events. Anything that needs an
//! environment variable, a signal or a global subscriber runs in a child
//! process (`common::run_child`).

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro_runtime::sync::Mutex;
use goro_runtime::{chan, go, Builder, JoinHandle};

/// Spawns a named goroutine; the dump must show this call's location.
#[track_caller]
fn go_named<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    Builder::new().name(name).spawn(f).unwrap()
}

/// The `key=value` fields of a SCHED line, in order, and its `[…]` list.
fn parse_sched(line: &str) -> (Vec<(String, u64)>, Vec<u64>) {
    let rest = line.strip_prefix("SCHED ").expect(line);
    let (time, rest) = rest.split_once("ms: ").expect(line);
    time.parse::<u64>().expect(line);
    let (fields, list) = rest.split_once(" [").expect(line);
    let fields = fields
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect(line);
            (k.to_string(), v.parse().expect(line))
        })
        .collect();
    let list = list.strip_suffix(']').expect(line);
    let list = list.split(' ').map(|n| n.parse().expect(line)).collect();
    (fields, list)
}

/// Busy on both Ps for a while, then every goroutine asleep.
fn busy_then_idle() {
    let rt = common::runtime(2);
    rt.block_on(|| {
        let workers: Vec<_> = (0..8)
            .map(|_| go(|| common::yield_for(Duration::from_millis(300))))
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        goro_runtime::time::sleep(Duration::from_millis(300));
    });
    println!("CHILD-OK");
}

#[test]
fn schedtrace_lines_parse_with_every_field_and_consistent_counts() {
    let name = "schedtrace_lines_parse_with_every_field_and_consistent_counts";
    if common::is_child(name) {
        return busy_then_idle();
    }
    let output = common::run_child(name, &[("GORO_DEBUG", "schedtrace=20")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{output:?}");
    let keys = [
        "gomaxprocs",
        "idleprocs",
        "threads",
        "spinningthreads",
        "idlethreads",
        "runqueue",
    ];
    let lines: Vec<_> = stderr.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(lines.len() >= 5, "too few SCHED lines: {stderr}");
    let (mut saw_busy, mut saw_idle) = (false, false);
    for line in &lines {
        let (fields, locals) = parse_sched(line);
        let names: Vec<_> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, keys, "{line}");
        let value = |key: &str| fields.iter().find(|(k, _)| k == key).unwrap().1;
        assert_eq!(value("gomaxprocs"), 2, "{line}");
        assert_eq!(locals.len(), 2, "one local queue per P: {line}");
        assert!(value("idleprocs") <= 2, "{line}");
        assert!(value("idlethreads") <= value("threads"), "{line}");
        assert!(value("spinningthreads") <= value("threads"), "{line}");
        let queued = value("runqueue") + locals.iter().sum::<u64>();
        if value("idleprocs") < 2 {
            saw_busy = true;
        }
        if value("idleprocs") == 2 && queued == 0 && value("idlethreads") == value("threads") {
            saw_idle = true;
        }
    }
    assert!(saw_busy, "no line while the Ps were busy: {stderr}");
    assert!(saw_idle, "no line while the runtime idled: {stderr}");
}

#[test]
fn scheddetail_adds_p_m_and_g_lines() {
    let name = "scheddetail_adds_p_m_and_g_lines";
    if common::is_child(name) {
        return busy_then_idle();
    }
    let debug = ("GORO_DEBUG", "schedtrace=50,scheddetail=1");
    let output = common::run_child(name, &[debug]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{output:?}");
    for prefix in [
        "  P0: status=",
        "  P1: status=",
        "  M0: blocked=",
        "  G1: status=",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(prefix)),
            "{prefix}: {stderr}"
        );
    }
    assert!(
        stderr.contains("created=runtime/tests/diagnostics.rs:"),
        "{stderr}"
    );
}

#[test]
fn malformed_goro_debug_is_an_error_naming_the_variable() {
    let name = "malformed_goro_debug_is_an_error_naming_the_variable";
    if common::is_child(name) {
        let error = goro_runtime::Runtime::builder().build().unwrap_err();
        assert!(error.to_string().contains("GORO_DEBUG"), "{error}");
        println!("CHILD-OK");
        return;
    }
    let output = common::run_child(name, &[("GORO_DEBUG", "schedtrace=often")]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("CHILD-OK"));
}

/// The dump's block for goroutine `id`: its header line and the lines up
/// to the next blank line.
fn block_of(dump: &str, id: u64) -> String {
    let start = dump
        .find(&format!("goroutine {id} ["))
        .unwrap_or_else(|| panic!("goroutine {id} missing from the dump:\n{dump}"));
    let rest = &dump[start..];
    rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
}

#[test]
fn dump_shows_wait_reasons_names_and_creation_sites() {
    let rt = common::runtime(2);
    let (tx, rx) = chan::bounded::<u32>(0);
    let mutex = Arc::new(Mutex::new(()));
    let (held_tx, held_rx) = chan::bounded::<()>(0);
    let (release_tx, release_rx) = chan::bounded::<()>(0);
    let listener = rt.block_on(|| goro_runtime::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let address = listener.local_addr().unwrap();
    let (holder, m) = (mutex.clone(), mutex.clone());
    let spawned = rt.block_on(move || {
        let file = "runtime/tests/diagnostics.rs";
        let lock_holder = go(move || {
            let _guard = holder.lock();
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        held_rx.recv().unwrap();
        let recv = move || {
            rx.recv().unwrap();
        };
        let (receiver, l1) = (go_named("chan-waiter", recv), line!());
        let lock = move || drop(m.lock());
        let (locker, l2) = (go_named("mutex-waiter", lock), line!());
        let nap = || goro_runtime::time::sleep(Duration::from_secs(3600));
        let (sleeper, l3) = (go_named("sleeper", nap), line!());
        let read = move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).unwrap();
        };
        let (reader, l4) = (go_named("socket-reader", read), line!());
        let site = |line: u32| format!("created by {file}:{line}:");
        vec![
            (receiver, "chan receive", "chan-waiter", site(l1)),
            (locker, "sync.Mutex.Lock", "mutex-waiter", site(l2)),
            (sleeper, "sleep", "sleeper", site(l3)),
            (reader, "IO wait", "socket-reader", site(l4)),
            (lock_holder, "chan receive", "", String::new()),
        ]
    });
    // The reader parks on accept, then (once connected) on its read.
    let mut client = std::net::TcpStream::connect(address).unwrap();
    let start = Instant::now();
    let dump = loop {
        let dump = rt.dump();
        let parked = spawned
            .iter()
            .all(|(h, reason, ..)| block_of_opt(&dump, h.id()).is_some_and(|b| b.contains(reason)));
        if parked && rt.stats().goroutines.waiting >= 5 {
            break dump;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never all parked:\n{dump}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    for (handle, reason, name, site) in &spawned {
        let block = block_of(&dump, handle.id());
        let header = block.lines().next().unwrap();
        assert_eq!(
            header,
            format!("goroutine {} [{reason}]:", handle.id()),
            "{dump}"
        );
        if !name.is_empty() {
            assert!(block.contains(&format!("\tname: {name}\n")), "{block}");
            assert!(block.contains(site.as_str()), "{site} in {block}");
        }
    }
    let stats = rt.stats();
    assert!(
        stats.goroutines.waiting_by_reason.contains(&("sleep", 1)),
        "{stats:?}"
    );
    assert!(stats.netpoll.submitted >= 1, "{stats:?}");
    // Release everyone but the sleeper.
    tx.send(7).unwrap();
    release_tx.send(()).unwrap();
    client.write_all(b"x").unwrap();
    let mut spawned = spawned.into_iter();
    for (handle, ..) in spawned.by_ref().take(2) {
        handle.join().unwrap();
    }
    let _sleeper = spawned.next();
    for (handle, ..) in spawned {
        handle.join().unwrap();
    }
    let stats = rt.stats();
    assert!(
        stats.netpoll.completions >= 1 && stats.netpoll.batches >= 1,
        "{stats:?}"
    );
    assert!(
        stats.stacks.mapped >= 1 && stats.stacks.reserved_bytes > 0,
        "{stats:?}"
    );
    rt.shutdown_timeout(Duration::ZERO);
}

fn block_of_opt(dump: &str, id: u64) -> Option<String> {
    dump.contains(&format!("goroutine {id} ["))
        .then(|| block_of(dump, id))
}

/// A named frame for the backtrace test: it must appear in the dump.
#[inline(never)]
fn receive_in_a_named_function(rx: chan::Receiver<u32>) -> u32 {
    let value = rx.recv().unwrap();
    // Work after the call keeps it a call, never a tail jump.
    std::hint::black_box(value) + 1
}

#[test]
fn dump_shows_a_parked_goroutines_backtrace() {
    let rt = common::runtime(2);
    let (tx, rx) = chan::bounded::<u32>(0);
    let handle = rt.block_on(move || go_named("traced", move || receive_in_a_named_function(rx)));
    let id = handle.id();
    let start = Instant::now();
    while !block_of_opt(&rt.dump(), id).is_some_and(|b| b.contains("[chan receive]")) {
        assert!(start.elapsed() < Duration::from_secs(20), "never parked");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Parked once, for good: this dump must trace it.
    let dump = rt.dump();
    let block = block_of(&dump, id);
    let lines: Vec<&str> = block.lines().collect();
    let position = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let frame = position("receive_in_a_named_function").unwrap_or_else(|| panic!("{dump}"));
    let name = position("\tname: traced").expect(&block);
    let created = position("created by runtime/tests/diagnostics.rs:").expect(&block);
    assert!(name < frame && frame < created, "{block}");
    // The runtime's own frames come first (Go shows runtime.gopark too),
    // and the walk reached the goroutine's first frame without a gap.
    assert!(
        position("goro_runtime::").is_some_and(|p| p < frame),
        "{block}"
    );
    assert!(
        !block.contains("(no backtrace") && !block.contains("(backtrace"),
        "{block}"
    );
    tx.send(41).unwrap();
    assert_eq!(handle.join().unwrap(), 42);
    rt.shutdown_timeout(Duration::ZERO);
}

#[test]
fn steals_happen_with_two_ps_under_imbalance() {
    let rt = common::runtime(2);
    let before = rt.stats();
    let start = Instant::now();
    while rt.stats().steals == before.steals {
        assert!(start.elapsed() < Duration::from_secs(30), "no steal");
        // Spawned from one goroutine, all 200 land on its P.
        rt.block_on(|| {
            let handles: Vec<_> = (0..200)
                .map(|_| go(|| common::yield_for(Duration::from_micros(200))))
                .collect();
            for handle in handles {
                handle.join().unwrap();
            }
        });
    }
    let after = rt.stats();
    assert!(after.stolen_goroutines >= after.steals, "{after:?}");
    assert!(
        after.goroutines.created >= before.goroutines.created + 201,
        "{after:?}"
    );
    assert_eq!(after.procs, 2);
    assert_eq!(after.local_run_queues.len(), 2);
}

/// The SIGQUIT child: an echo server, a SIGQUIT, and a second echo.
fn sigquit_child() {
    let rt = common::runtime(2);
    let listener = rt.block_on(|| goro_runtime::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let address = listener.local_addr().unwrap();
    let _server = rt.spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            go(move || {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    stream.write_all(&buf[..n]).unwrap();
                }
            });
        }
    });
    let mut client = std::net::TcpStream::connect(address).unwrap();
    let mut echo = |text: &[u8]| {
        client.write_all(text).unwrap();
        let mut back = vec![0u8; text.len()];
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, text);
    };
    echo(b"before");
    // Let the server's goroutines get back to their reads (the echo returns
    // as soon as the reply is written, before the next read parks).
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill(2) on our own pid has no memory preconditions.
    unsafe { libc::kill(libc::getpid(), libc::SIGQUIT) };
    std::thread::sleep(Duration::from_millis(500));
    echo(b"after");
    println!("CHILD-OK");
    rt.shutdown_timeout(Duration::ZERO);
}

#[test]
fn sigquit_dumps_goroutines_and_the_process_keeps_serving() {
    let name = "sigquit_dumps_goroutines_and_the_process_keeps_serving";
    if common::is_child(name) {
        return sigquit_child();
    }
    let output = common::run_child(name, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("CHILD-OK"),
        "{output:?}"
    );
    assert!(stderr.contains("SIGQUIT: quit"), "{stderr}");
    assert!(stderr.contains("[IO wait]:"), "{stderr}");
    // The goroutines parked in accept and read are traced (the closures
    // themselves may be inlined: without line tables they have no frame).
    assert!(
        stderr.contains("goro_runtime::sched::schedule::park\n")
            && stderr.contains("goro_runtime::net::"),
        "{stderr}"
    );
    assert!(
        stderr.contains("created by runtime/tests/diagnostics.rs:"),
        "{stderr}"
    );
}

#[test]
fn sigquit_exit_dumps_then_exits_with_status_2() {
    let name = "sigquit_exit_dumps_then_exits_with_status_2";
    if common::is_child(name) {
        return sigquit_child();
    }
    let output = common::run_child(name, &[("GORO_DEBUG", "sigquit=exit")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr.contains("SIGQUIT: quit") && stderr.contains("[IO wait]:"),
        "{stderr}"
    );
}

/// `stats()` takes the sched lock on the calling goroutine's stack. Taken
/// without the preempt-off count, a goroutine preempted while holding it
/// hung every M on two Ps (the preemption's `wakep` takes the same lock),
/// within a few thousand calls. A watchdog turns a hang into a failure.
#[test]
fn stats_in_a_loop_survives_preemption_on_two_ps() {
    const WANTED: u64 = 200;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = goro_runtime::Runtime::builder()
            .procs(2)
            .preempt_slice(Duration::from_micros(200))
            .build()
            .expect("build runtime");
        let (calls, preempted) = rt.block_on(|| {
            let looper = go(|| {
                let before = goro_runtime::runtime::stats().preemptions_done;
                let started = Instant::now();
                let mut calls = 0u64;
                loop {
                    let preempted = goro_runtime::runtime::stats().preemptions_done - before;
                    calls += 1;
                    // stats() spends most of its time where a preemption
                    // is refused: in the kernel reading /proc/self/statm
                    // (a signal is then taken on the way out, in libc), and
                    // under its locks. On a VM where those reads took 71 %
                    // of the loop, 0–3 preemptions landed in 20 s (3 million
                    // calls), and a run with none failed below.
                    // Some plain code between calls gives them a place to
                    // land: 200 preemptions in 2–6 s, after 190,000–570,000
                    // calls.
                    let mut x = calls;
                    for _ in 0..5_000 {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                    std::hint::black_box(x);
                    if preempted >= WANTED || started.elapsed() > Duration::from_secs(20) {
                        return (calls, preempted);
                    }
                }
            });
            looper.join().unwrap()
        });
        rt.shutdown_timeout(Duration::from_secs(5));
        let _ = done_tx.send((calls, preempted));
    });
    let (calls, preempted) = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the runtime hung while a goroutine called stats() in a loop");
    println!("{calls} calls, {preempted} preemptions");
    assert!(preempted > 0, "no preemption landed in {calls} calls");
}
