//! `top` for goroutines: a live view of `goro::runtime::stats()`, refreshed
//! once a second.
//!
//! ```sh
//! cargo run --release --example top -- --demo --duration 10
//! ```
//!
//! `--demo` runs a built-in load (channel ping-pong pairs, sleepers in
//! loops, a mutex contended by several goroutines, and a TCP echo server with
//! clients); `--duration S` stops after S seconds (default: run until
//! Ctrl-C); `--procs N` sets the Ps; `--once` prints one plain snapshot
//! (no screen clearing), for logs.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::runtime::Stats;

struct Options {
    demo: bool,
    once: bool,
    duration: Option<Duration>,
    procs: Option<usize>,
}

fn options() -> Options {
    let mut options = Options {
        demo: false,
        once: false,
        duration: None,
        procs: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> u64 {
            let value = args.next().unwrap_or_default();
            value
                .parse()
                .unwrap_or_else(|_| panic!("{what} needs a number, got {value:?}"))
        };
        match arg.as_str() {
            "--demo" => options.demo = true,
            "--once" => options.once = true,
            "--duration" => options.duration = Some(Duration::from_secs(number("--duration"))),
            "--procs" => options.procs = Some(number("--procs") as usize),
            other => panic!("unknown argument {other:?} (--demo, --once, --duration S, --procs N)"),
        }
    }
    options
}

fn demo() {
    for _ in 0..4 {
        let (ping_tx, ping_rx) = goro::chan::bounded::<u64>(0);
        let (pong_tx, pong_rx) = goro::chan::bounded::<u64>(0);
        goro::Builder::new()
            .name("pong")
            .spawn(move || ping_rx.iter().for_each(|v| pong_tx.send(v).unwrap()))
            .unwrap();
        goro::Builder::new()
            .name("ping")
            .spawn(move || loop {
                ping_tx.send(1).unwrap();
                pong_rx.recv().unwrap();
            })
            .unwrap();
    }
    for i in 0..1000u64 {
        goro::go(move || loop {
            goro::time::sleep(Duration::from_millis(10 + i % 90));
        });
    }
    let counter = Arc::new(goro::sync::Mutex::new(0u64));
    for _ in 0..8 {
        let counter = counter.clone();
        goro::go(move || loop {
            *counter.lock() += 1;
            goro::yield_now();
        });
    }
    let listener = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    goro::Builder::new()
        .name("echo-accept")
        .spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                goro::go(move || {
                    let mut buf = [0u8; 64];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        let _ = stream.write_all(&buf[..n]);
                    }
                });
            }
        })
        .unwrap();
    for _ in 0..16 {
        goro::go(move || {
            let mut stream = goro::net::TcpStream::connect(address).unwrap();
            let mut buf = [0u8; 64];
            loop {
                stream.write_all(&buf).unwrap();
                stream.read_exact(&mut buf).unwrap();
                goro::time::sleep(Duration::from_millis(1));
            }
        });
    }
}

fn render(stats: &Stats, previous: &Stats, uptime: Duration) -> String {
    let g = &stats.goroutines;
    let t = &stats.threads;
    let n = &stats.netpoll;
    let s = &stats.stacks;
    let rate = |now: u64, before: u64| now.saturating_sub(before);
    let reasons: Vec<String> = g
        .waiting_by_reason
        .iter()
        .map(|(reason, count)| format!("{reason}: {count}"))
        .collect();
    format!(
        "goro top - up {:.0}s\n\
         Goroutines: {} live, {} running, {} runnable, {} waiting; {} created (+{}/s)\n\
         \x20 waiting:  {}\n\
         Procs:      {} ({} idle)   run queues: global {}, local {:?}\n\
         Threads:    {} total, {} running, {} spinning, {} idle, {} in syscall\n\
         Scheduler:  steals {} (+{}/s, {} goroutines), handoffs {}, preemptions {}/{}, retakes {}\n\
         Netpoll:    {} | waits {} (+{}/s), completions {} (+{}/s), batches {} (+{}/s)\n\
         Stacks:     {} mapped ({} in use, {} pooled), {:.1} MiB reserved, process RSS {:.1} MiB\n",
        uptime.as_secs_f64(),
        g.live,
        g.running,
        g.runnable,
        g.waiting,
        g.created,
        rate(g.created, previous.goroutines.created),
        reasons.join(", "),
        stats.procs,
        stats.idle_procs,
        stats.global_run_queue,
        stats.local_run_queues,
        t.total,
        t.running,
        t.spinning,
        t.idle,
        t.in_syscall,
        stats.steals,
        rate(stats.steals, previous.steals),
        stats.stolen_goroutines,
        stats.handoffs,
        stats.preemptions_done,
        stats.preemptions_requested,
        stats.sysmon_retakes,
        n.backend.unwrap_or("not started"),
        n.submitted,
        rate(n.submitted, previous.netpoll.submitted),
        n.completions,
        rate(n.completions, previous.netpoll.completions),
        n.batches,
        rate(n.batches, previous.netpoll.batches),
        s.mapped,
        s.in_use,
        s.pooled,
        s.reserved_bytes as f64 / (1 << 20) as f64,
        s.process_resident_bytes as f64 / (1 << 20) as f64,
    )
}

fn main() {
    let options = options();
    let mut builder = goro::Runtime::builder();
    if let Some(procs) = options.procs {
        builder = builder.procs(procs);
    }
    let runtime = builder.build().expect("runtime");
    runtime.block_on(move || {
        if options.demo {
            demo();
        }
        let start = Instant::now();
        let mut previous = goro::runtime::stats();
        loop {
            goro::time::sleep(Duration::from_secs(1));
            let stats = goro::runtime::stats();
            let text = render(&stats, &previous, start.elapsed());
            if options.once {
                print!("{text}");
                break;
            }
            // Clear the screen and home the cursor, as top does.
            print!("\x1b[2J\x1b[H{text}");
            let _ = std::io::stdout().flush();
            previous = stats;
            if options.duration.is_some_and(|d| start.elapsed() >= d) {
                break;
            }
        }
    });
    runtime.shutdown_timeout(Duration::ZERO);
}
