//! The echo loop of `examples/echo.rs`, for any blocking stream: goro's
//! `TcpStream`, and may's in `ci/peers`, which includes this file.

use std::io::{Read, Write};

/// Writes back everything read, until EOF or an error.
pub fn serve<S: Read + Write>(stream: &mut S, buf: &mut [u8]) {
    loop {
        match stream.read(buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}
