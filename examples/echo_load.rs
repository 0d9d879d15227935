//! An echo load generator written with goro: `--conns` connections (up to
//! 10,000), each a goroutine looping write `--size` bytes / read them back
//! for `--duration` seconds. Reports round trips/s, p50/p99 latency and
//! errors; exits non-zero on any error.
//!
//! ```text
//! cargo run --release --example echo_load -- --addr 127.0.0.1:7007 --conns 10000 --size 64 --duration 5
//! ```

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::net::TcpStream;

/// Log-linear latency histogram in µs, about 3 % resolution.
struct Histogram {
    buckets: Vec<AtomicU64>,
}

const LINEAR: u64 = 64;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: (0..LINEAR as usize + 40 * 32)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    fn index(us: u64) -> usize {
        if us < LINEAR {
            return us as usize;
        }
        let exponent = 63 - u64::from(us.leading_zeros());
        let sub = (us >> (exponent - 5)) & 31;
        (LINEAR + (exponent - 6) * 32 + sub) as usize
    }

    fn lower_bound(index: usize) -> u64 {
        let index = index as u64;
        if index < LINEAR {
            return index;
        }
        let exponent = (index - LINEAR) / 32 + 6;
        let sub = (index - LINEAR) % 32;
        (32 + sub) << (exponent - 5)
    }

    fn record(&self, latency: Duration) {
        let at = Histogram::index(latency.as_micros() as u64).min(self.buckets.len() - 1);
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
    }

    fn percentile(&self, p: f64) -> u64 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let want = ((total as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= want.max(1) {
                return Histogram::lower_bound(index);
            }
        }
        0
    }
}

fn main() {
    let addr: String = common::flag("addr", "127.0.0.1:7007".to_string());
    let conns: usize = common::flag("conns", 100);
    let size: usize = common::flag("size", 64);
    let duration: f64 = common::flag("duration", 5.0);
    let procs: usize = common::flag("procs", 0);
    if conns == 0 || conns > 10_000 || size == 0 || !duration.is_finite() || duration <= 0.0 {
        eprintln!("echo_load: need 1 <= --conns <= 10000, --size >= 1, --duration > 0");
        std::process::exit(2);
    }
    match goro::net::raise_fd_limit() {
        Ok(limit) if (limit as usize) < conns + 64 => {
            eprintln!("echo_load: RLIMIT_NOFILE is {limit}, too low for {conns} connections");
            std::process::exit(1);
        }
        Ok(_) => {}
        Err(error) => eprintln!("echo_load: cannot raise RLIMIT_NOFILE: {error}"),
    }
    let duration = Duration::from_secs_f64(duration);
    // Never a silent hang: a stalled server cannot keep us past this.
    let watchdog = duration + Duration::from_secs(30);
    std::thread::spawn(move || {
        std::thread::sleep(watchdog);
        eprintln!("echo_load: still running {watchdog:?} after start; giving up");
        std::process::exit(3);
    });
    let mut builder = goro::Runtime::builder();
    if procs > 0 {
        builder = builder.procs(procs);
    }
    let runtime = builder.build().expect("runtime");
    let histogram = Arc::new(Histogram::new());
    let errors = Arc::new(AtomicU64::new(0));
    let (round_trips, elapsed) = {
        let histogram = histogram.clone();
        let errors = errors.clone();
        runtime.block_on(move || {
            // Connect everything first, then measure.
            let connecting: Vec<_> = (0..conns)
                .map(|_| {
                    let addr = addr.clone();
                    goro::go(move || {
                        let stream = TcpStream::connect(&addr)?;
                        stream.set_nodelay(true)?;
                        Ok::<_, std::io::Error>(stream)
                    })
                })
                .collect();
            let mut streams = Vec::with_capacity(conns);
            for handle in connecting {
                match handle.join().expect("connect goroutine") {
                    Ok(stream) => streams.push(stream),
                    Err(error) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("echo_load: connect: {error}");
                        }
                    }
                }
            }
            let start = Instant::now();
            let end = start + duration;
            let workers: Vec<_> = streams
                .into_iter()
                .map(|mut stream| {
                    let histogram = histogram.clone();
                    let errors = errors.clone();
                    goro::go(move || {
                        let payload = vec![b'x'; size];
                        let mut back = vec![0u8; size];
                        let mut done = 0u64;
                        while Instant::now() < end {
                            let sent = Instant::now();
                            let result = stream
                                .write_all(&payload)
                                .and_then(|()| stream.read_exact(&mut back));
                            if let Err(error) = result {
                                if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                                    eprintln!("echo_load: round trip: {error}");
                                }
                                return done;
                            }
                            histogram.record(sent.elapsed());
                            done += 1;
                        }
                        done
                    })
                })
                .collect();
            let total: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
            (total, start.elapsed())
        })
    };
    runtime.shutdown_timeout(Duration::from_millis(100));
    let errors = errors.load(Ordering::Relaxed);
    println!(
        "echo_load: conns={conns} size={size} duration={:.1}s round_trips={round_trips} rt/s={:.0} p50={}us p99={}us errors={errors}",
        elapsed.as_secs_f64(),
        round_trips as f64 / elapsed.as_secs_f64(),
        histogram.percentile(0.50),
        histogram.percentile(0.99),
    );
    if errors > 0 {
        std::process::exit(1);
    }
}
