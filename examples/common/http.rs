//! HTTP/1.1 framing for the "Hello, World!" servers: `http_hello` on goro,
//! and the tokio and may peers in `ci/peers`, which include this file so
//! that every runtime in `ci/load.sh` answers with the same code.
//!
//! - Pipelining: every complete request in the buffer is answered.
//! - A malformed request (or one this code cannot frame, such as a chunked
//!   body) gets `400 Bad Request`, and the connection is to be closed.
//! - `Connection: close`, and HTTP/1.0 without keep-alive, close after the
//!   response. Bodies with `Content-Length` are skipped.

/// The answer to every well-formed request.
pub const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
/// The answer to a request that cannot be framed; the connection closes.
pub const BAD: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const MAX_HEADERS: usize = 32;
/// The largest request (head plus body) a connection buffers.
pub const MAX_REQUEST: usize = 64 * 1024;

/// What to do with the bytes at the front of the buffer.
enum Parsed {
    /// A complete request of `len` bytes (headers + body); keep-alive or not.
    Request {
        len: usize,
        keep_alive: bool,
    },
    Partial,
    Bad,
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(buf) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Bad,
    };
    let mut keep_alive = request.version == Some(1);
    let mut body = None;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("connection") {
            if header.value.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if header.value.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        } else if header.name.eq_ignore_ascii_case("content-length") {
            // Digits only (no sign), and a repeated header must agree: as
            // Go's net/http, which answers 400 otherwise. A later value
            // silently winning would let a request smuggle another.
            let value = header.value.trim_ascii();
            let len = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok());
            match (len, body) {
                (Some(len), None) if len <= MAX_REQUEST => body = Some(len),
                (Some(len), Some(earlier)) if len == earlier => {}
                _ => return Parsed::Bad,
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Bad;
        }
    }
    let body = body.unwrap_or(0);
    if buf.len() < head + body {
        return Parsed::Partial;
    }
    Parsed::Request {
        len: head + body,
        keep_alive,
    }
}

/// What [`answer`] did with a buffer.
pub struct Answered {
    /// Bytes of complete requests, to drop from the front of the buffer.
    pub consumed: usize,
    /// Close the connection once `out` is written.
    pub close: bool,
}

/// Appends to `out` the answer to every complete request at the front of
/// `buf`.
pub fn answer(buf: &[u8], out: &mut Vec<u8>) -> Answered {
    let mut consumed = 0;
    loop {
        match parse(&buf[consumed..]) {
            Parsed::Request { len, keep_alive } => {
                out.extend_from_slice(HELLO);
                consumed += len;
                if !keep_alive {
                    return Answered {
                        consumed,
                        close: true,
                    };
                }
            }
            Parsed::Partial => {
                return Answered {
                    consumed,
                    close: false,
                }
            }
            Parsed::Bad => {
                out.extend_from_slice(BAD);
                return Answered {
                    consumed,
                    close: true,
                };
            }
        }
    }
}

/// Makes room in a connection's buffer after `consumed` bytes were
/// answered: moves the rest to the front and returns its length. Grows the
/// buffer when a request fills it; `None` when that request exceeds
/// [`MAX_REQUEST`] (answer [`BAD`] and close).
pub fn compact(buf: &mut Vec<u8>, consumed: usize, filled: usize) -> Option<usize> {
    buf.copy_within(consumed..filled, 0);
    let filled = filled - consumed;
    if filled == buf.len() {
        if buf.len() >= MAX_REQUEST {
            return None;
        }
        buf.resize(buf.len() * 2, 0);
    }
    Some(filled)
}

/// How a connection served by [`serve`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The client closed, or an I/O error: nothing more to say.
    Gone,
    /// The server answered and chose to close (`Connection: close`, a
    /// 400): the caller should close gently, draining what still arrives.
    Closing,
}

/// The keep-alive loop for a blocking stream (a goroutine's or a may
/// coroutine's): read, answer every complete request, write the answers in
/// one write, repeat.
pub fn serve<S: std::io::Read + std::io::Write>(stream: &mut S, first_buffer: usize) -> Ended {
    let mut buf = vec![0u8; first_buffer];
    let mut filled = 0usize;
    let mut out = Vec::with_capacity(4096);
    loop {
        match stream.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return Ended::Gone,
            Ok(n) => filled += n,
        }
        let answered = answer(&buf[..filled], &mut out);
        if !out.is_empty() {
            if stream.write_all(&out).is_err() {
                return Ended::Gone;
            }
            out.clear();
        }
        if answered.close {
            return Ended::Closing;
        }
        match compact(&mut buf, answered.consumed, filled) {
            Some(rest) => filled = rest,
            None => {
                return match stream.write_all(BAD) {
                    Ok(()) => Ended::Closing,
                    Err(_) => Ended::Gone,
                }
            }
        }
    }
}
