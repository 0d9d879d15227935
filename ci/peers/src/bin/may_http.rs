//! An HTTP/1.1 keep-alive hello server on may: one coroutine per
//! connection, running the loop of goro's `examples/common/http.rs`.

use goro_peers::{http, HTTP_BUFFER};

fn serve(mut stream: may::net::TcpStream) {
    // A peer for load runs only: it closes at once after a 400.
    http::serve(&mut stream, HTTP_BUFFER);
}

fn main() {
    goro_peers::may_main("may_http", "127.0.0.1:8082", serve);
}
