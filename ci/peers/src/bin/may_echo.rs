//! An echo server on may: one coroutine per connection.

use std::io::{Read, Write};

use goro_peers::{Flags, ECHO_BUFFER};
use may::net::{TcpListener, TcpStream};

fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; ECHO_BUFFER];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let flags = Flags::parse("127.0.0.1:7009");
    may::config().set_workers(flags.procs);
    let listener = TcpListener::bind(&flags.addr).unwrap_or_else(|error| {
        eprintln!("may_echo: cannot listen on {}: {error}", flags.addr);
        std::process::exit(1);
    });
    println!("may_echo: listening on {}", listener.local_addr().unwrap());
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                // SAFETY: may's spawn is unsafe because a coroutine may
                // resume on another thread and may overflow its fixed
                // stack. `serve` owns its stream, keeps its buffers on the
                // heap, and touches no thread-local state.
                unsafe { may::coroutine::spawn(move || serve(stream)) };
            }
            Err(error) => eprintln!("may_echo: accept: {error}"),
        }
    }
}
