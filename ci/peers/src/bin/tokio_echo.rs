//! An echo server on tokio's multi-thread runtime: one task per connection.

use goro_peers::{Flags, ECHO_BUFFER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
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
    let flags = Flags::parse("127.0.0.1:7008");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(flags.procs)
        .enable_io()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let listener = TcpListener::bind(&flags.addr)
            .await
            .unwrap_or_else(|error| {
                eprintln!("tokio_echo: cannot listen on {}: {error}", flags.addr);
                std::process::exit(1);
            });
        println!(
            "tokio_echo: listening on {}",
            listener.local_addr().unwrap()
        );
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream));
                }
                Err(error) => {
                    eprintln!("tokio_echo: accept: {error}");
                    tokio::task::yield_now().await;
                }
            }
        }
    });
}
