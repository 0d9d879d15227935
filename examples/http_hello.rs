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
//!
//! The framing and the connection loop live in `common/http.rs`, which the
//! tokio and may servers in `ci/peers` include too, so `ci/load.sh`
//! compares runtimes, not parsers. Closing after an answer goes through
//! `common::close_gently` (FIN first, then the client's leftovers drained).

mod common;

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::http;
use goro::net::{TcpListener, TcpStream};

fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    if http::serve(&mut stream, 8192) == http::Ended::Closing {
        common::close_gently(&stream);
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
    runtime.shutdown_timeout(Duration::from_millis(100));
}
