//! examples/http_hello over TCP: keep-alive, pipelining, requests split
//! across writes, bodies, `Connection: close`, and the 400 for a request
//! that cannot be framed, after which the server keeps serving.
//!
//! Each test starts the example's binary, which `cargo test` builds next to
//! the test binaries (`target/<profile>/examples/http_hello`), on port 0
//! and reads the address it prints. They assert behaviour, never speed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// `target/<profile>/examples/http_hello`, next to `deps/` where this test
/// runs from.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join("examples").join("http_hello");
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --release` (which builds the examples) or \
         `cargo build --release --example http_hello` first",
        path.display()
    );
    path
}

/// A running http_hello; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(binary())
            .args(["--addr", "127.0.0.1:0", "--procs", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn http_hello");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("http_hello's first line");
        // "http_hello: listening on http://127.0.0.1:PORT/ (...)"
        let addr = line
            .split_whitespace()
            .nth(3)
            .and_then(|url| url.strip_prefix("http://"))
            .and_then(|url| url.strip_suffix('/'))
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server { child, addr }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads exactly `len` bytes (fails on EOF or the 10 s timeout).
fn read_exact(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).expect("the expected reply");
    buf
}

/// Reads until the server closes; fails if it does not within 10 s.
fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    stream
        .read_to_end(&mut buf)
        .expect("the server closes the connection");
    buf
}

#[test]
fn keep_alive_answers_each_request_on_one_connection() {
    let server = Server::start();
    let mut stream = server.connect();
    for _ in 0..3 {
        stream.write_all(GET).unwrap();
        assert_eq!(read_exact(&mut stream, HELLO.len()), HELLO);
    }
}

#[test]
fn pipelined_requests_get_their_answers_in_order() {
    let server = Server::start();
    let mut stream = server.connect();
    let requests = GET.repeat(5);
    stream.write_all(&requests).unwrap();
    assert_eq!(read_exact(&mut stream, 5 * HELLO.len()), HELLO.repeat(5));
    // The connection is still open and in step.
    stream.write_all(GET).unwrap();
    assert_eq!(read_exact(&mut stream, HELLO.len()), HELLO);
}

#[test]
fn a_request_split_across_writes_is_answered_once_complete() {
    let server = Server::start();
    let mut stream = server.connect();
    stream.set_nodelay(true).unwrap();
    let (head, tail) = GET.split_at(10);
    stream.write_all(head).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(tail).unwrap();
    assert_eq!(read_exact(&mut stream, HELLO.len()), HELLO);
}

#[test]
fn a_body_is_skipped_and_the_next_request_answered() {
    let server = Server::start();
    let mut stream = server.connect();
    let mut requests =
        b"POST /submit HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\nhello world".to_vec();
    requests.extend_from_slice(GET);
    stream.write_all(&requests).unwrap();
    assert_eq!(read_exact(&mut stream, 2 * HELLO.len()), HELLO.repeat(2));
}

#[test]
fn connection_close_and_http_1_0_close_after_the_answer() {
    let server = Server::start();
    let mut stream = server.connect();
    stream
        .write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_to_close(&mut stream), HELLO);

    let mut stream = server.connect();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_to_close(&mut stream), HELLO);
}

#[test]
fn a_malformed_request_gets_400_and_the_server_keeps_serving() {
    let server = Server::start();
    // More headers than the server parses (32).
    let mut many_headers = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..40 {
        many_headers.extend_from_slice(format!("X-Header-{i}: value\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"\r\n");
    let malformed: [&[u8]; 6] = [
        b"GARBAGE\0\0 not http\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: nine\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        &many_headers,
        // Two lengths that disagree (a later one must not win: smuggling),
        // and a signed one, are refused as Go's net/http refuses them.
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 0\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
    ];
    for request in malformed {
        let mut stream = server.connect();
        // A good request first: its answer comes before the 400.
        let mut bytes = GET.to_vec();
        bytes.extend_from_slice(request);
        stream.write_all(&bytes).unwrap();
        let mut expected = HELLO.to_vec();
        expected.extend_from_slice(BAD);
        assert_eq!(
            read_to_close(&mut stream),
            expected,
            "for {:?}",
            String::from_utf8_lossy(request)
        );
    }
    let mut stream = server.connect();
    stream.write_all(GET).unwrap();
    assert_eq!(read_exact(&mut stream, HELLO.len()), HELLO);
}

#[test]
fn a_request_head_over_64_kib_gets_400_and_is_never_buffered_whole() {
    let server = Server::start();
    let mut stream = server.connect();
    // One header line of 80 KiB: the buffer grows to 64 KiB and stops.
    let mut head = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
    head.resize(head.len() + 80 * 1024, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    // The server may close before reading all of it: a write error here is
    // fine, the reply is what is checked.
    let _ = stream.write_all(&head);
    assert_eq!(read_to_close(&mut stream), BAD);

    let mut stream = server.connect();
    stream.write_all(GET).unwrap();
    assert_eq!(read_exact(&mut stream, HELLO.len()), HELLO);
}
