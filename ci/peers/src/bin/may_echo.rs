//! An echo server on may: one coroutine per connection, running the echo
//! loop of goro's `examples/echo.rs` (`examples/common/echo.rs`).

use goro_peers::{echo, ECHO_BUFFER};

fn serve(mut stream: may::net::TcpStream) {
    echo::serve(&mut stream, &mut vec![0u8; ECHO_BUFFER]);
}

fn main() {
    goro_peers::may_main("may_echo", "127.0.0.1:7009", serve);
}
