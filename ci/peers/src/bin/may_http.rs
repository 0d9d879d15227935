//! An HTTP/1.1 keep-alive hello server on may: one coroutine per
//! connection, framing from goro's `examples/common/http.rs`.

use goro_peers::{http, Flags, HTTP_BUFFER};
use may::net::{TcpListener, TcpStream};

fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // A peer for load runs only: it closes at once after a 400.
    http::serve(&mut stream, HTTP_BUFFER);
}

fn main() {
    let flags = Flags::parse("127.0.0.1:8082");
    may::config().set_workers(flags.procs);
    let listener = TcpListener::bind(&flags.addr).unwrap_or_else(|error| {
        eprintln!("may_http: cannot listen on {}: {error}", flags.addr);
        std::process::exit(1);
    });
    println!("may_http: listening on {}", listener.local_addr().unwrap());
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                // SAFETY: may's spawn is unsafe because a coroutine may
                // resume on another thread and may overflow its fixed
                // stack. `serve` owns its stream, keeps its buffers on the
                // heap, and touches no thread-local state.
                unsafe { may::coroutine::spawn(move || serve(stream)) };
            }
            Err(error) => eprintln!("may_http: accept: {error}"),
        }
    }
}
