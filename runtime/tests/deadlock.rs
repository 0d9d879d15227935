//! Deadlock detection, in child processes (a custom harness: libtest keeps a
//! main thread blocked outside the runtime, which rightly disables the
//! check). Each scenario re-runs this binary with `GORO_DEADLOCK_CHILD` set
//! and asserts on its exit status and stderr.

use std::fs::File;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use goro_runtime::chan;
use goro_runtime::sync::WaitGroup;

const CHILD: &str = "GORO_DEADLOCK_CHILD";
const MESSAGE: &str = "fatal error: all goroutines are asleep - deadlock!";

fn scenario(name: &str) {
    match name {
        // Go's canonical case: main receives from a channel nobody sends on.
        "chan_receive" => goro_runtime::run(|| {
            let (tx, rx) = chan::bounded::<u32>(0);
            let _keep = tx.clone();
            let _ = rx.recv();
        }),
        // Many goroutines, each parked on a different wait.
        "many_waits" => goro_runtime::run(|| {
            let (tx, rx) = chan::bounded::<u32>(0);
            let wg = std::sync::Arc::new(WaitGroup::new());
            wg.add(1);
            for _ in 0..10 {
                let rx = rx.clone();
                goro_runtime::go(move || rx.recv().ok());
            }
            let _keep = tx;
            wg.wait();
        }),
        // `select! {}` blocks forever.
        "empty_select" => goro_runtime::run(|| goro_runtime::select! {}),
        // A foreign thread blocked in `block_on` counts as blocked too.
        "block_on" => {
            let runtime = goro_runtime::Runtime::builder().procs(2).build().unwrap();
            runtime.block_on(|| {
                let (_tx, rx) = chan::bounded::<u32>(0);
                let _ = rx.recv();
            });
        }
        // A foreign thread that blocks for good only after the check has
        // been unsure for a while (it was still running): the check keeps
        // looking, further apart, and reports once the thread blocks.
        "late_foreign_join" => {
            let runtime = goro_runtime::Runtime::builder().procs(2).build().unwrap();
            let parked = runtime.spawn(|| {
                let (tx, rx) = chan::bounded::<u32>(0);
                let _keep = tx.clone();
                let _ = rx.recv();
            });
            std::thread::sleep(Duration::from_millis(300));
            let _ = parked.join();
        }
        // A stopped timer is no timer: its entry, still in the heap for an
        // hour, must not put the report off.
        "stopped_long_timer" => goro_runtime::run(|| {
            let timer = goro_runtime::time::Timer::new(Duration::from_secs(3600));
            assert!(timer.stop());
            let (tx, rx) = chan::bounded::<u32>(0);
            let _keep = tx.clone();
            let _ = rx.recv();
        }),
        // Not deadlocks: ---------------------------------------------------
        // Main sleeps on a timer while another goroutine is parked forever.
        "timer_only" => goro_runtime::run(|| {
            let (tx, rx) = chan::bounded::<u32>(0);
            goro_runtime::go(move || rx.recv().ok());
            goro_runtime::time::sleep(Duration::from_millis(200));
            drop(tx);
            println!("CHILD-OK");
        }),
        // A thread outside the runtime will send: not a deadlock.
        "foreign_sender" => {
            let (tx, rx) = chan::bounded::<u32>(0);
            let sender = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                tx.send(1).unwrap();
            });
            let got = goro_runtime::run(move || rx.recv().unwrap());
            sender.join().unwrap();
            assert_eq!(got, 1);
            println!("CHILD-OK");
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// Runs scenario `name` in a child process, killing it (and failing) if it
/// has not exited within a minute: a missed deadlock is a silent hang. Its
/// output goes to files, so a long one cannot block it on a full pipe.
fn run_child(name: &str) -> Output {
    let dir = std::env::temp_dir();
    let path = |stream: &str| {
        dir.join(format!(
            "goro-deadlock-{}-{name}.{stream}",
            std::process::id()
        ))
    };
    let (out_path, err_path) = (path("out"), path("err"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, name)
        .stdout(File::create(&out_path).expect("child stdout file"))
        .stderr(File::create(&err_path).expect("child stderr file"))
        .spawn()
        .expect("spawn child");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            panic!("{name}: still running after 60 s; stderr: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    output
}

fn main() {
    if let Ok(name) = std::env::var(CHILD) {
        scenario(&name);
        return;
    }
    for name in [
        "chan_receive",
        "many_waits",
        "empty_select",
        "block_on",
        "late_foreign_join",
        "stopped_long_timer",
    ] {
        let output = run_child(name);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {output:?}");
        assert!(stderr.contains(MESSAGE), "{name}: stderr was {stderr}");
        println!("deadlock {name}: reported, exit 2 ... ok");
    }
    let output = run_child("many_waits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[chan receive]") && stderr.contains("[sync.WaitGroup.Wait]"),
        "the report lists the parked goroutines: {stderr}"
    );
    for name in ["timer_only", "foreign_sender"] {
        let output = run_child(name);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{name}: {output:?}");
        assert!(stdout.contains("CHILD-OK"), "{name}: {output:?}");
        println!("deadlock {name}: not reported ... ok");
    }
}
