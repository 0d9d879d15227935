//! An echo server on tokio's multi-thread runtime: one task per connection.

use goro_peers::ECHO_BUFFER;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn serve(mut stream: TcpStream) {
    let mut buf = vec![0u8; ECHO_BUFFER];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    goro_peers::tokio_main("tokio_echo", "127.0.0.1:7008", serve);
}
