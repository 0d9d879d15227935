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
//!
//! A multibulk command that arrives in pieces is parsed once, not once per
//! read: [`Progress`] keeps the arguments found so far (as Redis keeps
//! `multibulklen` and `bulklen`), and a look that cannot move on (a bulk
//! string still short of its declared length) costs nothing. Re-parsing
//! from the command's first byte on every read made a client trickling a
//! big command cost the server CPU quadratic in its size: 18 ms per byte
//! for a 7 MB command of a million arguments.

use std::ops::Range;

/// Redis's default `proto-max-bulk-len`.
pub const MAX_BULK: usize = 512 * 1024 * 1024;
/// Most arguments in one command (Redis refuses more from clients that are
/// not authenticated; we have no authentication, so always).
pub const MAX_MULTIBULK: usize = 1024 * 1024;
/// Longest header or inline-command line (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const MAX_LINE: usize = 64 * 1024;

/// Where [`parse`] stopped inside a multibulk command not yet whole. The
/// offsets count from the command's first byte, which stays the front of
/// what the caller passes in (it keeps the command's bytes in place, or
/// moves them to the buffer's start together).
#[derive(Default)]
pub struct Progress {
    /// Arguments still to come; 0 when no command is under way.
    remaining: usize,
    /// The next argument's `$` header.
    at: usize,
    /// Bytes needed before another look can get further.
    need: usize,
}

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
/// ranges of its arguments (relative to `buf`). After `Partial`, call again
/// with the same `args` and `progress` once more bytes have arrived.
pub fn parse(buf: &[u8], args: &mut Vec<Range<usize>>, progress: &mut Progress) -> Parsed {
    if progress.remaining > 0 {
        if buf.len() < progress.need {
            return Parsed::Partial;
        }
        return bulk_strings(buf, progress.at, progress.remaining, args, progress);
    }
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
    bulk_strings(buf, end + 2, count, args, progress)
}

/// Parses `remaining` bulk strings from `at` on, saving where it stopped
/// in `progress` if the bytes run out.
fn bulk_strings(
    buf: &[u8],
    mut at: usize,
    mut remaining: usize,
    args: &mut Vec<Range<usize>>,
    progress: &mut Progress,
) -> Parsed {
    let mut partial = |at: usize, remaining: usize, need: usize| {
        *progress = Progress {
            remaining,
            at,
            need,
        };
        Parsed::Partial
    };
    while remaining > 0 {
        if at >= buf.len() {
            return partial(at, remaining, at + 1);
        }
        if buf[at] != b'$' {
            return fail(progress, "expected '$'");
        }
        let end = match line_end(buf, at) {
            Ok(Some(end)) => end,
            Ok(None) => return partial(at, remaining, buf.len() + 1),
            Err(_) => return fail(progress, "invalid bulk length"),
        };
        let len = match parse_len(&buf[at + 1..end]) {
            Some(len) if len <= MAX_BULK => len,
            _ => return fail(progress, "invalid bulk length"),
        };
        let start = end + 2;
        if buf.len() < start + len + 2 {
            return partial(at, remaining, start + len + 2);
        }
        if &buf[start + len..start + len + 2] != b"\r\n" {
            return fail(progress, "expected CRLF after bulk string");
        }
        args.push(start..start + len);
        at = start + len + 2;
        remaining -= 1;
    }
    *progress = Progress::default();
    Parsed::Command { len: at }
}

/// A protocol error: the command under way is abandoned.
fn fail(progress: &mut Progress, what: &'static str) -> Parsed {
    *progress = Progress::default();
    Parsed::Error(what)
}

/// A signed decimal as Redis's `string2ll` accepts it: no sign but `-`, no
/// leading zero (so no `-0`), no spaces, within `i64`.
pub fn parse_integer(text: &[u8]) -> Option<i64> {
    if text == b"0" {
        return Some(0);
    }
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if !digits.first().is_some_and(|d| (b'1'..=b'9').contains(d))
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
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

/// An error reply. A CR or LF in `text` (which may quote a client's bytes)
/// becomes a space, as in Redis's `addReplyErrorLength`: the reply must
/// stay one line, or the client would read the rest as further replies.
pub fn error(out: &mut Vec<u8>, text: &str) {
    out.push(b'-');
    out.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
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
