//! Shared by the peer servers: flags, and the HTTP framing that goro's
//! `http_hello` uses (the same file, included).
//!
//! Every peer takes `--addr HOST:PORT` and `--procs N` (worker threads,
//! default: the CPUs, as `GOMAXPROCS` and `GORO_MAXPROCS` default), prints
//! `NAME: listening on ADDR`, and runs until killed. Each runtime keeps its
//! own defaults otherwise: may pins its workers to cores, tokio does not.

#[path = "../../../examples/common/http.rs"]
pub mod http;

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
                    flags.procs = value.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| {
                        usage(&args[at]);
                    })
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
