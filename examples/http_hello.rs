//! An HTTP/1.1 keep-alive "Hello, World!" server for wrk, one goroutine per
//! connection, parsing with `httparse`.
//!
//! ```text
//! cargo run --release --example http_hello [-- --addr 127.0.0.1:8080 --procs 2]
//! wrk -t1 -c100 -d10s http://127.0.0.1:8080/
//! ```
//!
//! - Pipelining: every complete request in the buffer is answered, and the
//!   answers go out in one write.
//! - A malformed request (or one this server cannot frame, such as chunked
//!   bodies) gets `400 Bad Request` and the connection is closed; the server
//!   keeps going.
//! - `Connection: close`, and HTTP/1.0 without keep-alive, close after the
//!   response. Bodies with `Content-Length` are skipped.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use goro::net::{TcpListener, TcpStream};

const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const MAX_HEADERS: usize = 32;
const MAX_REQUEST: usize = 64 * 1024;

/// What to do with the bytes at the front of the buffer.
enum Parsed {
    /// A complete request of `len` bytes (headers + body); keep-alive or not.
    Request {
        len: usize,
        keep_alive: bool,
    },
    Partial,
    Bad,
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(buf) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Bad,
    };
    let mut keep_alive = request.version == Some(1);
    let mut body = 0usize;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("connection") {
            if header.value.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if header.value.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        } else if header.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
            {
                Some(len) if len <= MAX_REQUEST => body = len,
                _ => return Parsed::Bad,
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Bad;
        }
    }
    if buf.len() < head + body {
        return Parsed::Partial;
    }
    Parsed::Request {
        len: head + body,
        keep_alive,
    }
}

fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 8192];
    let mut filled = 0usize;
    let mut out = Vec::with_capacity(4096);
    loop {
        match stream.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        let mut start = 0;
        let mut close = false;
        loop {
            match parse(&buf[start..filled]) {
                Parsed::Request { len, keep_alive } => {
                    out.extend_from_slice(HELLO);
                    start += len;
                    if !keep_alive {
                        close = true;
                        break;
                    }
                }
                Parsed::Partial => break,
                Parsed::Bad => {
                    out.extend_from_slice(BAD);
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
        if close {
            return;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == buf.len() {
            if buf.len() >= MAX_REQUEST {
                let _ = stream.write_all(BAD);
                return;
            }
            buf.resize(buf.len() * 2, 0);
        }
    }
}

fn main() {
    let common::Server {
        addr,
        runtime,
        stop,
        listener_fd: fd_tx,
    } = common::Server::from_flags("http_hello", "127.0.0.1:8080");
    runtime.block_on(move || {
        let listener = TcpListener::bind(&addr).unwrap_or_else(|error| {
            eprintln!("http_hello: cannot listen on {addr}: {error}");
            std::process::exit(1);
        });
        let _ = fd_tx.send(listener.as_raw_fd());
        let backend = goro::net::backend()
            .and_then(Result::ok)
            .map_or("?", |kind| kind.name());
        println!(
            "http_hello: listening on http://{}/ (netpoll {backend}, {} Ps)",
            listener.local_addr().unwrap(),
            goro::runtime::procs()
        );
        let mut backoff = common::Backoff::default();
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    backoff.reset();
                    goro::go(move || serve(stream));
                }
                Err(_) if stop.load(Ordering::Acquire) => return,
                Err(error) => {
                    let delay = backoff.wait();
                    eprintln!("http_hello: accept: {error}; retrying in {delay:?}");
                }
            }
        }
    });
    println!("http_hello: stopped");
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
}
