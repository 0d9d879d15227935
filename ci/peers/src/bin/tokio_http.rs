//! An HTTP/1.1 keep-alive hello server on tokio's multi-thread runtime: one
//! task per connection, framing from goro's `examples/common/http.rs`.

use goro_peers::{http, Flags, HTTP_BUFFER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
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
    let flags = Flags::parse("127.0.0.1:8081");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(flags.procs)
        .enable_io()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let listener = TcpListener::bind(&flags.addr)
            .await
            .unwrap_or_else(|error| {
                eprintln!("tokio_http: cannot listen on {}: {error}", flags.addr);
                std::process::exit(1);
            });
        println!(
            "tokio_http: listening on {}",
            listener.local_addr().unwrap()
        );
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream));
                }
                Err(error) => {
                    eprintln!("tokio_http: accept: {error}");
                    tokio::task::yield_now().await;
                }
            }
        }
    });
}
