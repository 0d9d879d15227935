//! RESP2 framing: a zero-copy request parser and the reply encoders.
//!
//! [`parse`] looks at the unread front of the connection's buffer and either
//! finds one complete command (its arguments as byte ranges into the buffer,
//! nothing copied), says more bytes are needed, or names a protocol error.
//! It never allocates on a declared length: a bulk string is refused at its
//! `$<len>` header when `len` exceeds 512 MiB (Redis's
//! `proto-max-bulk-len`), a multibulk at its `*<n>` header when `n` exceeds
//! 1,048,576, and a header or inline line at 64 KiB without a CRLF. The
//! buffer grows only as bytes actually arrive.

use std::ops::Range;

/// Redis's default `proto-max-bulk-len`.
pub const MAX_BULK: usize = 512 * 1024 * 1024;
/// Most arguments in one command (Redis refuses more from clients that are
/// not authenticated; we have no authentication, so always).
pub const MAX_MULTIBULK: usize = 1024 * 1024;
/// Longest header or inline-command line (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const MAX_LINE: usize = 64 * 1024;

pub enum Parsed {
    /// A command of `len` bytes; its arguments are in the `args` vector.
    Command { len: usize },
    /// Not a whole command yet.
    Partial,
    /// Protocol error: reply `-ERR Protocol error: <msg>` and close.
    Error(&'static str),
}

/// Finds the CRLF-terminated line starting at `at`: the index of its `\r`.
fn line_end(buf: &[u8], at: usize) -> Result<Option<usize>, &'static str> {
    let window = &buf[at..buf.len().min(at + MAX_LINE + 2)];
    match memchr::memchr(b'\n', window) {
        Some(nl) if nl > 0 && window[nl - 1] == b'\r' => Ok(Some(at + nl - 1)),
        // A bare LF ends an inline command in Redis; in a header it is bad.
        Some(_) => Err("expected CRLF"),
        None if window.len() > MAX_LINE => Err("too big line"),
        None => Ok(None),
    }
}

/// A non-negative decimal as Redis's `string2ll` accepts it for lengths
/// (`-1` is handled by the callers that allow it).
fn parse_len(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + (d - b'0') as usize)
    })
}

/// Parses one command at the front of `buf`, filling `args` with the byte
/// ranges of its arguments (relative to `buf`).
pub fn parse(buf: &[u8], args: &mut Vec<Range<usize>>) -> Parsed {
    args.clear();
    if buf.is_empty() {
        return Parsed::Partial;
    }
    if buf[0] != b'*' {
        return parse_inline(buf, args);
    }
    let end = match line_end(buf, 0) {
        Ok(Some(end)) => end,
        Ok(None) => return Parsed::Partial,
        Err(_) => return Parsed::Error("invalid multibulk length"),
    };
    let count = match &buf[1..end] {
        b"-1" | b"0" => return Parsed::Command { len: end + 2 },
        digits => match parse_len(digits) {
            Some(n) if n <= MAX_MULTIBULK => n,
            _ => return Parsed::Error("invalid multibulk length"),
        },
    };
    let mut at = end + 2;
    for _ in 0..count {
        if at >= buf.len() {
            return Parsed::Partial;
        }
        if buf[at] != b'$' {
            return Parsed::Error("expected '$'");
        }
        let end = match line_end(buf, at) {
            Ok(Some(end)) => end,
            Ok(None) => return Parsed::Partial,
            Err(_) => return Parsed::Error("invalid bulk length"),
        };
        let len = match parse_len(&buf[at + 1..end]) {
            Some(len) if len <= MAX_BULK => len,
            _ => return Parsed::Error("invalid bulk length"),
        };
        let start = end + 2;
        if buf.len() < start + len + 2 {
            return Parsed::Partial;
        }
        if &buf[start + len..start + len + 2] != b"\r\n" {
            return Parsed::Error("expected CRLF after bulk string");
        }
        args.push(start..start + len);
        at = start + len + 2;
    }
    Parsed::Command { len: at }
}

/// An inline command (`PING\r\n`, as typed into telnet): arguments split on
/// spaces; no quoting.
fn parse_inline(buf: &[u8], args: &mut Vec<Range<usize>>) -> Parsed {
    let window = &buf[..buf.len().min(MAX_LINE + 1)];
    let Some(nl) = memchr::memchr(b'\n', window) else {
        return if window.len() > MAX_LINE {
            Parsed::Error("too big inline request")
        } else {
            Parsed::Partial
        };
    };
    let line_len = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let mut i = 0;
    while i < line_len {
        if buf[i] == b' ' || buf[i] == b'\t' {
            i += 1;
            continue;
        }
        let start = i;
        while i < line_len && buf[i] != b' ' && buf[i] != b'\t' {
            i += 1;
        }
        if buf[start] == b'"' || buf[start] == b'\'' {
            return Parsed::Error("quoted inline arguments are not supported");
        }
        args.push(start..i);
    }
    Parsed::Command { len: nl + 1 }
}

pub fn simple(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'+');
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

pub fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

pub fn error(out: &mut Vec<u8>, text: &str) {
    out.push(b'-');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn prefixed_number(out: &mut Vec<u8>, prefix: u8, n: i64) {
    out.push(prefix);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub fn integer(out: &mut Vec<u8>, n: i64) {
    prefixed_number(out, b':', n);
}

pub fn array_header(out: &mut Vec<u8>, len: usize) {
    prefixed_number(out, b'*', len as i64);
}

pub fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    prefixed_number(out, b'$', data.len() as i64);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

pub fn nil(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}
