//! The kv tests' helpers: the example's process ([`Server`]), a RESP2
//! client ([`Client`]) and its reply reader.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const STORES: [&str; 2] = ["locks", "owners"];

/// The example binary: `target/<profile>/examples/kv`, next to `deps/`
/// where this test runs from.
pub fn kv_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let kv = dir.join("examples").join("kv");
    assert!(
        kv.exists(),
        "{} is missing: run `cargo test --release` (which builds the examples) or \
         `cargo build --release --example kv` first",
        kv.display()
    );
    kv
}

/// A running kv server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    pub fn start(store: &str) -> Server {
        let mut child = Command::new(kv_binary())
            .args(["--addr", "127.0.0.1:0", "--procs", "2", "--store", store])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kv");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("kv's first line");
        // "kv: listening on 127.0.0.1:PORT (...)"
        let addr = line
            .split_whitespace()
            .nth(3)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server {
            child,
            addr,
            stdout,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The process's peak resident set (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

pub use Reply::*;

pub fn bulk(s: &str) -> Reply {
    Bulk(Some(s.as_bytes().to_vec()))
}

pub fn ok() -> Reply {
    Simple("OK".into())
}

/// Reads one reply.
pub fn read_reply(r: &mut impl BufRead) -> std::io::Result<Reply> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let body = line.trim_end_matches("\r\n");
    let (kind, rest) = body.split_at(1);
    let number = || rest.parse::<i64>().expect("number in reply");
    Ok(match kind {
        "+" => Simple(rest.into()),
        "-" => Error(rest.into()),
        ":" => Int(number()),
        "$" if number() < 0 => Bulk(None),
        "$" => {
            let mut data = vec![0; number() as usize + 2];
            r.read_exact(&mut data)?;
            data.truncate(data.len() - 2);
            Bulk(Some(data))
        }
        "*" if number() < 0 => Array(None),
        "*" => Array(Some(
            (0..number())
                .map(|_| read_reply(r))
                .collect::<Result<_, _>>()?,
        )),
        _ => panic!("bad reply line {line:?}"),
    })
}

pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send");
    }

    pub fn reply(&mut self) -> Reply {
        read_reply(&mut self.reader).expect("reply")
    }

    /// Sends a command (split on spaces) and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        self.send_raw(&encode(&args));
        self.reply()
    }

    /// After a protocol error the server must close the connection.
    /// The server closed the connection cleanly: EOF, not a reset (it
    /// drains what the client still sends before it closes).
    pub fn assert_closed(&mut self) {
        let mut rest = Vec::new();
        let read = self.reader.read_to_end(&mut rest);
        assert!(
            matches!(read, Ok(0)),
            "expected EOF, got {read:?} after {rest:?}"
        );
    }
}

pub fn each_store(test: impl Fn(&Server)) {
    for store in STORES {
        println!("store {store}");
        test(&Server::start(store));
    }
}

pub fn is_error_starting(reply: &Reply, prefix: &str) -> bool {
    matches!(reply, Error(text) if text.starts_with(prefix))
}
