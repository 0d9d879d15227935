//! examples/kv against clients that send what a well-behaved one would not:
//! a command trickled in small pieces, a small request with a huge reply,
//! arguments that try to forge replies, and integers Redis refuses. The
//! server must answer as Redis does and keep serving, within bounded memory.

mod kv_support;

use std::io::{BufRead, Read, Write};

use kv_support::*;

/// A command parsed across many reads (its parse resumes where it stopped)
/// gets the same answer as one sent whole.
#[test]
fn a_command_trickled_in_small_pieces_is_answered_whole() {
    let server = Server::start("locks");
    let mut c = server.client();
    c.writer.set_nodelay(true).unwrap();
    let keys: Vec<String> = (0..300).map(|i| format!("key:{i}")).collect();
    let values: Vec<String> = (0..300)
        .map(|i| format!("value-{i}-{}", "x".repeat(i % 40)))
        .collect();
    let mut args: Vec<&[u8]> = vec![b"MSET"];
    for (key, value) in keys.iter().zip(&values) {
        args.push(key.as_bytes());
        args.push(value.as_bytes());
    }
    for piece in encode(&args).chunks(7) {
        c.writer.write_all(piece).unwrap();
    }
    assert_eq!(c.reply(), ok());
    // A bulk string whose body comes a byte at a time.
    let big = "y".repeat(5000);
    for piece in encode(&[b"SET", b"big", big.as_bytes()]).chunks(1) {
        c.writer.write_all(piece).unwrap();
    }
    assert_eq!(c.reply(), ok());
    assert_eq!(c.cmd("GET big"), bulk(&big));
    for (key, value) in keys.iter().zip(&values).step_by(37) {
        assert_eq!(c.cmd(&format!("GET {key}")), bulk(value));
    }
}

/// MGET of one 1 MiB value 400 times asks for a 400 MiB reply in a 5 KB
/// request. The reply is written out as it is built: the server's peak
/// resident memory stays far below the reply's size.
#[test]
fn a_huge_mget_reply_is_streamed_not_built_in_memory() {
    const MIB: usize = 1024 * 1024;
    const COPIES: usize = 400;
    let server = Server::start("locks");
    let mut c = server.client();
    let value = vec![b'v'; MIB];
    c.send_raw(&encode(&[b"SET", b"big", &value]));
    assert_eq!(c.reply(), ok());
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(std::iter::repeat_n(&b"big"[..], COPIES));
    c.send_raw(&encode(&args));
    // Read the reply a bulk string at a time (not 400 MiB at once here).
    let mut line = String::new();
    c.reader.read_line(&mut line).unwrap();
    assert_eq!(line, format!("*{COPIES}\r\n"));
    let mut item = vec![0u8; MIB + 2];
    for i in 0..COPIES {
        line.clear();
        c.reader.read_line(&mut line).unwrap();
        assert_eq!(line, format!("${MIB}\r\n"), "item {i}");
        c.reader.read_exact(&mut item).unwrap();
        assert!(
            item[..MIB] == value[..] && item[MIB..] == *b"\r\n",
            "item {i}"
        );
    }
    let peak = server.peak_rss_kib();
    assert!(
        peak < 200 * 1024,
        "peak RSS {peak} KiB for a {COPIES} MiB reply"
    );
    assert_eq!(server.client().cmd("PING"), Simple("PONG".into()));
}

/// An error that quotes a client's bytes stays one line: CR and LF become
/// spaces, and the quote is cut at 128 bytes, so nothing the client sends
/// reads as a further reply.
#[test]
fn an_unknown_command_cannot_forge_replies() {
    let server = Server::start("locks");
    let mut c = server.client();
    c.send_raw(&encode(&[b"FOO", b"x\r\n+OK\r\n:42"]));
    let reply = c.reply();
    let Error(text) = &reply else {
        panic!("expected an error, got {reply:?}");
    };
    assert!(text.starts_with("ERR unknown command 'FOO'"), "{text}");
    assert!(text.contains("'x  +OK  :42'"), "{text}");
    assert_eq!(
        c.cmd("PING"),
        Simple("PONG".into()),
        "the stream is in step"
    );
    let long = "z".repeat(100_000);
    let reply = c.cmd(&format!("NOPE {long} {long}"));
    assert!(
        matches!(&reply, Error(text) if text.len() < 400),
        "{reply:?}"
    );
}

/// Integers as Redis's `string2ll` reads them, and the edges of INCR, DECRBY,
/// PING and TTL.
#[test]
fn integers_and_counters_follow_redis_at_their_edges() {
    let server = Server::start("locks");
    let mut c = server.client();
    let not_integer = Error("ERR value is not an integer or out of range".into());
    assert_eq!(c.cmd("SET n 007"), ok());
    assert_eq!(c.cmd("INCR n"), not_integer);
    assert_eq!(c.cmd("SET n -0"), ok());
    assert_eq!(c.cmd("INCR n"), not_integer);
    assert_eq!(c.cmd("SET n 5"), ok());
    assert_eq!(c.cmd("INCRBY n +5"), not_integer);
    assert_eq!(c.cmd("INCRBY n 05"), not_integer);
    assert_eq!(c.cmd("INCRBY n -5"), Int(0));
    assert_eq!(
        c.cmd("DECRBY n -9223372036854775808"),
        Error("ERR decrement would overflow".into())
    );
    assert_eq!(
        c.cmd("PING a b"),
        Error("ERR wrong number of arguments for 'ping' command".into())
    );
    // A deadline near the end of time: TTL answers in whole seconds.
    assert_eq!(c.cmd("SET far v PX 9000000000000000000"), ok());
    let Int(ttl) = c.cmd("TTL far") else {
        panic!("TTL is not an integer");
    };
    assert!(
        (8_999_999_999_000_000..=9_000_000_000_000_000).contains(&ttl),
        "TTL {ttl}"
    );
}
