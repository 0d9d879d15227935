//! One connection's goroutine: read, answer every complete command in the
//! buffer, write all the answers at once, repeat.
//!
//! Replies are written out as soon as they reach [`FLUSH_AT`], between
//! commands and inside a command whose reply grows with its arguments
//! (MGET): a 7 KB `MGET big big ...` of a 1 MiB value once built an 800 MiB
//! reply in memory, and a bigger one would have aborted the whole server
//! on a failed allocation.

use std::io::{Read, Write};
use std::sync::atomic::Ordering;

use goro::net::TcpStream;

use crate::commands::{dispatch, Args, Flow};
use crate::resp::{self, Parsed, Progress};
use crate::Server;

const INITIAL_BUFFER: usize = 16 * 1024;
/// Replies are written out once they reach this much, even mid-batch.
const FLUSH_AT: usize = 64 * 1024;
/// Redis's `client-query-buffer-limit`.
const MAX_QUERY_BUFFER: usize = 1024 * 1024 * 1024;

pub fn serve(mut stream: &TcpStream, server: &Server) {
    let _ = stream.set_nodelay(true);
    let mut handle = server.store.handle();
    let mut buf = vec![0u8; INITIAL_BUFFER];
    let mut filled = 0;
    let mut out = Vec::with_capacity(INITIAL_BUFFER);
    let mut args = Vec::with_capacity(16);
    let mut progress = Progress::default();
    loop {
        match stream.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        let mut start = 0;
        let mut close = false;
        let mut commands = 0;
        while !close {
            match resp::parse(&buf[start..filled], &mut args, &mut progress) {
                Parsed::Command { len } => {
                    let command = Args {
                        buf: &buf[start..],
                        ranges: &args,
                    };
                    let mut write_failed = false;
                    let mut flush = |out: &mut Vec<u8>| {
                        if out.len() >= FLUSH_AT {
                            write_failed = write_failed || stream.write_all(out).is_err();
                            out.clear();
                        }
                    };
                    close =
                        dispatch(command, &mut handle, server, &mut out, &mut flush) == Flow::Close;
                    flush(&mut out);
                    if write_failed {
                        return;
                    }
                    start += len;
                    commands += 1;
                }
                Parsed::Partial => break,
                Parsed::Error(what) => {
                    resp::error(&mut out, &format!("ERR Protocol error: {what}"));
                    close = true;
                }
            }
        }
        server.commands.fetch_add(commands, Ordering::Relaxed);
        if !out.is_empty() {
            if stream.write_all(&out).is_err() {
                return;
            }
            out.clear();
            if out.capacity() > 16 * FLUSH_AT {
                out = Vec::with_capacity(INITIAL_BUFFER);
            }
        }
        if close {
            return crate::common::close_gently(stream);
        }
        if start > 0 {
            buf.copy_within(start..filled, 0);
            filled -= start;
        }
        if filled == buf.len() {
            // A command larger than the buffer: grow as its bytes arrive
            // (never by what a header declares).
            if buf.len() >= MAX_QUERY_BUFFER {
                if stream
                    .write_all(b"-ERR Protocol error: query buffer limit\r\n")
                    .is_ok()
                {
                    crate::common::close_gently(stream);
                }
                return;
            }
            buf.resize(buf.len() * 2, 0);
        } else if filled == 0 && buf.len() > INITIAL_BUFFER {
            buf = vec![0u8; INITIAL_BUFFER];
        }
    }
}
