//! Shared by the peer servers: flags, each runtime's accept loop, and the
//! connection loops goro's examples use (the same files, included).
//!
//! Every peer takes `--addr HOST:PORT` and `--procs N` (worker threads,
//! default: the CPUs, as `GOMAXPROCS` and `GORO_MAXPROCS` default), prints
//! `NAME: listening on ADDR`, and runs until killed. Each runtime keeps its
//! own defaults otherwise: may pins its workers to cores, tokio does not.

use std::future::Future;

#[path = "../../../examples/common/http.rs"]
pub mod http;

#[path = "../../../examples/common/echo.rs"]
pub mod echo;

/// `--addr` and `--procs` from the command line.
pub struct Flags {
    pub addr: String,
    pub procs: usize,
}

impl Flags {
    pub fn parse(default_addr: &str) -> Flags {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut flags = Flags {
            addr: default_addr.to_string(),
            procs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let mut at = 0;
        while at < args.len() {
            let value = args.get(at + 1).unwrap_or_else(|| usage(&args[at]));
            match args[at].as_str() {
                "--addr" => flags.addr = value.clone(),
                "--procs" => {
                    flags.procs = value
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .unwrap_or_else(|| usage(&args[at]))
                }
                other => usage(other),
            }
            at += 2;
        }
        flags
    }
}

fn usage(flag: &str) -> ! {
    eprintln!("bad or incomplete flag {flag:?}; usage: --addr HOST:PORT --procs N");
    std::process::exit(2);
}

/// The echo loop's buffer, as in goro's `examples/echo.rs`.
pub const ECHO_BUFFER: usize = 16 * 1024;
/// The HTTP loop's first buffer, as in goro's `examples/http_hello.rs`.
pub const HTTP_BUFFER: usize = 8192;

/// Runs `serve` as one tokio task per accepted connection, on a
/// multi-thread runtime with `--procs` workers. Never returns.
pub fn tokio_main<F, Fut>(name: &str, default_addr: &str, serve: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let flags = Flags::parse(default_addr);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(flags.procs)
        .enable_io()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&flags.addr)
            .await
            .unwrap_or_else(|error| {
                eprintln!("{name}: cannot listen on {}: {error}", flags.addr);
                std::process::exit(1);
            });
        println!("{name}: listening on {}", listener.local_addr().unwrap());
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(stream));
                }
                Err(error) => {
                    eprintln!("{name}: accept: {error}");
                    tokio::task::yield_now().await;
                }
            }
        }
    })
}

/// Runs `serve` as one may coroutine per accepted connection, with
/// `--procs` workers. Never returns.
pub fn may_main(name: &str, default_addr: &str, serve: fn(may::net::TcpStream)) {
    let flags = Flags::parse(default_addr);
    may::config().set_workers(flags.procs);
    let listener = may::net::TcpListener::bind(&flags.addr).unwrap_or_else(|error| {
        eprintln!("{name}: cannot listen on {}: {error}", flags.addr);
        std::process::exit(1);
    });
    println!("{name}: listening on {}", listener.local_addr().unwrap());
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                // may's spawn is unsafe because a coroutine may resume on
                // another thread and may overflow its fixed stack; `serve`
                // keeps its buffers on the heap.
                // SAFETY: `serve` owns its stream and uses no thread-locals.
                unsafe { may::coroutine::spawn(move || serve(stream)) };
            }
            Err(error) => eprintln!("{name}: accept: {error}"),
        }
    }
    unreachable!("may's incoming() never ends")
}
