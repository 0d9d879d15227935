//! Shared by the examples: flags, stopping on SIGINT/SIGTERM, and an
//! accept loop that backs off on errors as Go's net/http does.
#![allow(dead_code)]

pub mod echo;
pub mod http;

use std::io::Read;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::net::TcpStream;

/// `--name value` from the command line, or `default`.
pub fn flag<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    let key = format!("--{name}");
    match args.iter().position(|a| *a == key) {
        None => default,
        Some(at) => {
            let Some(text) = args.get(at + 1) else {
                eprintln!("{key} needs a value");
                std::process::exit(2);
            };
            text.parse().unwrap_or_else(|_| {
                eprintln!("{key}: cannot parse {text:?}");
                std::process::exit(2);
            })
        }
    }
}

/// Blocks SIGINT and SIGTERM in every thread (call before the runtime
/// starts threads) and waits for them on a helper thread, which sets the
/// returned flag and then runs `on_signal` (which wakes the accept loop).
pub fn stop_on_signals(on_signal: impl FnOnce() + Send + 'static) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    // SAFETY: a sigset_t is plain data; sigemptyset/sigaddset initialise it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t; pthread_sigmask only reads it.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut signal = 0;
        // SAFETY: `set` and `signal` are live; both signals are blocked in
        // every thread (threads inherit this mask), so sigwait receives them.
        unsafe { libc::sigwait(&set, &mut signal) };
        eprintln!("signal {signal}: stopping");
        flag.store(true, Ordering::Release);
        on_signal();
    });
    stop
}

/// Wakes a goroutine parked in `accept` on `fd` (shutdown(SHUT_RD) makes
/// the listening socket readable; accept then fails with EINVAL).
pub fn wake_listener(fd: i32) {
    // SAFETY: shutdown on a listening socket has no memory preconditions.
    unsafe { libc::shutdown(fd, libc::SHUT_RD) };
}

/// Go's net/http accept backoff: 5 ms, doubling, capped at 1 s; reset on
/// success.
#[derive(Default)]
pub struct Backoff(Option<Duration>);

impl Backoff {
    pub fn reset(&mut self) {
        self.0 = None;
    }

    /// Sleeps the next delay: the goroutine parks on a timer, and its M
    /// runs the other goroutines (whose exits free the descriptors we are
    /// waiting for).
    pub fn wait(&mut self) -> Duration {
        let delay = self.0.map_or(Duration::from_millis(5), |d| {
            (d * 2).min(Duration::from_secs(1))
        });
        self.0 = Some(delay);
        goro::time::sleep(delay);
        delay
    }
}

/// What both servers set up before serving: `--addr` (default
/// `default_addr`) and `--procs` flags, a raised fd limit, a runtime, and a
/// SIGINT/SIGTERM handler that sets `stop` and wakes the listener whose fd
/// is sent on `listener_fd`.
pub struct Server {
    pub addr: String,
    pub runtime: goro::Runtime,
    pub stop: Arc<AtomicBool>,
    pub listener_fd: std::sync::mpsc::Sender<i32>,
}

impl Server {
    /// Parses the flags and builds the runtime; exits with a message
    /// naming `name` if the runtime cannot start.
    pub fn from_flags(name: &str, default_addr: &str) -> Server {
        let addr: String = flag("addr", default_addr.to_string());
        let procs: usize = flag("procs", 0);
        let _ = goro::net::raise_fd_limit();
        let (listener_fd, fd_rx) = std::sync::mpsc::channel::<i32>();
        let stop = stop_on_signals(move || {
            if let Ok(fd) = fd_rx.recv() {
                wake_listener(fd);
            }
        });
        let mut builder = goro::Runtime::builder();
        if procs > 0 {
            builder = builder.procs(procs);
        }
        let runtime = builder.build().unwrap_or_else(|error| {
            eprintln!("{name}: {error}");
            std::process::exit(1);
        });
        Server {
            addr,
            runtime,
            stop,
            listener_fd,
        }
    }
}

/// Closes a connection the server chose to end (after an error reply, or
/// `Connection: close`) without a reset. Closing a socket whose receive
/// queue still holds bytes makes the kernel send RST instead of FIN: the
/// client's next read then fails with ECONNRESET instead of seeing EOF, and
/// a reset that overtakes the reply can cost the client the reply itself
/// (Go's net/http, `closeWriteAndWait`, golang.org/issue/3595). So, as Go
/// does: send FIN, then read and drop what the client still sends, for at
/// most 500 ms and 1 MiB, before the caller drops the stream.
pub fn close_gently(mut stream: &TcpStream) {
    const LINGER: Duration = Duration::from_millis(500);
    const MAX_DRAIN: usize = 1 << 20;
    if stream.shutdown(Shutdown::Write).is_err() || stream.set_read_timeout(Some(LINGER)).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < MAX_DRAIN && Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}
