//! The C10K echo server: one goroutine per connection, on goro's netpoller.
//!
//! ```text
//! cargo run --release --example echo [-- --addr 127.0.0.1:7007 --procs 2]
//! cargo run --release --example echo_load -- --conns 10000 --duration 5
//! ```
//!
//! It prints its address and backend, backs off on accept errors as Go's
//! net/http does (5 ms doubling to 1 s; EMFILE included) and keeps serving,
//! and stops cleanly on SIGINT or SIGTERM.

mod common;

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use goro::net::{TcpListener, TcpStream};

fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    common::echo::serve(&mut stream, &mut [0u8; 16 * 1024]);
}

fn main() {
    let common::Server {
        addr,
        runtime,
        stop,
        listener_fd: fd_tx,
    } = common::Server::from_flags("echo", "127.0.0.1:7007");
    let served = runtime.block_on(move || {
        let listener = match TcpListener::bind(&addr) {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("echo: cannot listen on {addr}: {error}");
                std::process::exit(1);
            }
        };
        let _ = fd_tx.send(listener.as_raw_fd());
        let backend = match goro::net::backend() {
            Some(Ok(kind)) => kind.name(),
            Some(Err(error)) => {
                eprintln!("echo: netpoller: {error}");
                std::process::exit(1);
            }
            None => "none",
        };
        println!(
            "echo: listening on {} (netpoll {backend}, {} Ps)",
            listener.local_addr().unwrap(),
            goro::runtime::procs()
        );
        let mut backoff = common::Backoff::default();
        let mut served = 0u64;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    backoff.reset();
                    served += 1;
                    goro::go(move || serve(stream));
                }
                Err(_) if stop.load(Ordering::Acquire) => return served,
                Err(error) => {
                    let delay = backoff.wait();
                    eprintln!("echo: accept: {error}; retrying in {delay:?}");
                }
            }
        }
    });
    println!("echo: stopped after {served} connections");
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
}
