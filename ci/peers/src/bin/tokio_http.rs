//! An HTTP/1.1 keep-alive hello server on tokio's multi-thread runtime: one
//! task per connection, framing from goro's `examples/common/http.rs`.

use goro_peers::{http, HTTP_BUFFER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn serve(mut stream: TcpStream) {
    let mut buf = vec![0u8; HTTP_BUFFER];
    let mut filled = 0usize;
    let mut out = Vec::with_capacity(4096);
    loop {
        match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        let answered = http::answer(&buf[..filled], &mut out);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if answered.close {
            return;
        }
        match http::compact(&mut buf, answered.consumed, filled) {
            Some(rest) => filled = rest,
            None => {
                let _ = stream.write_all(http::BAD).await;
                return;
            }
        }
    }
}

fn main() {
    goro_peers::tokio_main("tokio_http", "127.0.0.1:8081", serve);
}
