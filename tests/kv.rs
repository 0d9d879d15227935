//! examples/kv over TCP, speaking RESP2 directly (no redis-tools needed).
//!
//! Each test starts the example's binary, which `cargo test` builds next to
//! the test binaries (`target/<profile>/examples/kv`), on port 0 and reads
//! the address it prints. Most tests run once per `--store` shape. They
//! assert behaviour, never speed.

mod kv_support;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kv_support::*;

#[test]
fn connection_and_introspection_commands() {
    each_store(|server| {
        let mut c = server.client();
        assert_eq!(c.cmd("PING"), Simple("PONG".into()));
        assert_eq!(c.cmd("ping hello"), bulk("hello"));
        assert_eq!(c.cmd("ECHO hi"), bulk("hi"));
        assert!(is_error_starting(
            &c.cmd("ECHO"),
            "ERR wrong number of arguments for 'echo'"
        ));
        assert!(is_error_starting(
            &c.cmd("NOSUCH a"),
            "ERR unknown command 'NOSUCH'"
        ));
        let Int(count) = c.cmd("COMMAND COUNT") else {
            panic!("COMMAND COUNT is an integer")
        };
        assert!(count >= 20);
        let Array(Some(all)) = c.cmd("COMMAND") else {
            panic!("COMMAND is an array")
        };
        assert_eq!(all.len() as i64, count);
        let Array(Some(info)) = c.cmd("COMMAND INFO get nosuch") else {
            panic!("COMMAND INFO is an array")
        };
        assert!(matches!(&info[0], Array(Some(e)) if e[0] == bulk("get") && e[1] == Int(2)));
        assert_eq!(info[1], Bulk(None));
        let Array(Some(docs)) = c.cmd("COMMAND DOCS set") else {
            panic!("COMMAND DOCS is an array")
        };
        assert_eq!(docs[0], bulk("set"));
        let Bulk(Some(info)) = c.cmd("INFO") else {
            panic!("INFO is a bulk string")
        };
        let info = String::from_utf8(info).unwrap();
        for needle in [
            "# Server",
            "redis_version:",
            "# Keyspace",
            "# goro",
            "goroutines:",
            "procs:2",
        ] {
            assert!(info.contains(needle), "INFO lacks {needle}: {info}");
        }
        let Bulk(Some(goro)) = c.cmd("INFO goro") else {
            panic!("INFO goro is a bulk string")
        };
        let goro = String::from_utf8(goro).unwrap();
        assert!(goro.starts_with("# goro\r\n"), "{goro}");
        // The section is a stats() snapshot: this connection's goroutine is
        // live, and the accept loop has started the netpoller.
        let field = |name: &str| -> u64 {
            let line = goro
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name}:")))
                .unwrap_or_else(|| panic!("INFO goro lacks {name}: {goro}"));
            line.parse()
                .unwrap_or_else(|_| panic!("{name}:{line} is not a number"))
        };
        assert!(field("goroutines") >= 1, "{goro}");
        assert!(field("goroutines_created") >= field("goroutines"), "{goro}");
        assert_eq!(field("procs"), 2, "{goro}");
        assert!(field("threads") >= 1, "{goro}");
        assert!(
            goro.contains("netpoll_backend:io_uring\r\n")
                || goro.contains("netpoll_backend:epoll\r\n"),
            "{goro}"
        );
        assert_eq!(
            c.cmd("CONFIG GET appendonly"),
            Array(Some(vec![bulk("appendonly"), bulk("no")]))
        );
        assert_eq!(c.cmd("SELECT 0"), ok());
        assert_eq!(c.cmd("QUIT"), ok());
        c.assert_closed();
        // Inline commands, as typed into telnet.
        let mut c = server.client();
        c.send_raw(b"PING\r\n");
        assert_eq!(c.reply(), Simple("PONG".into()));
    });
}

#[test]
fn strings_counters_and_keyspace_commands() {
    each_store(|server| {
        let mut c = server.client();
        assert_eq!(c.cmd("GET missing"), Bulk(None));
        assert_eq!(c.cmd("SET k v"), ok());
        assert_eq!(c.cmd("GET k"), bulk("v"));
        assert_eq!(c.cmd("SET k v2 NX"), Bulk(None));
        assert_eq!(c.cmd("SET other v XX"), Bulk(None));
        assert_eq!(c.cmd("SET k v3 XX"), ok());
        assert_eq!(c.cmd("GET k"), bulk("v3"));
        assert_eq!(c.cmd("SET n1 v NX"), ok());
        assert_eq!(c.cmd("SET k v NX XX"), Error("ERR syntax error".into()));
        assert_eq!(c.cmd("SET k v BOGUS"), Error("ERR syntax error".into()));
        assert!(is_error_starting(
            &c.cmd("SET k v EX 0"),
            "ERR invalid expire time in 'set'"
        ));
        assert!(is_error_starting(
            &c.cmd("SET k v EX x"),
            "ERR value is not an integer"
        ));
        assert_eq!(c.cmd("INCR counter"), Int(1));
        assert_eq!(c.cmd("INCRBY counter 41"), Int(42));
        assert_eq!(c.cmd("DECR counter"), Int(41));
        assert_eq!(c.cmd("DECRBY counter 40"), Int(1));
        assert_eq!(c.cmd("GET counter"), bulk("1"));
        assert!(is_error_starting(
            &c.cmd("INCR k"),
            "ERR value is not an integer"
        ));
        assert_eq!(c.cmd("SET big 9223372036854775807"), ok());
        assert!(is_error_starting(
            &c.cmd("INCR big"),
            "ERR increment or decrement would overflow"
        ));
        assert_eq!(c.cmd("MSET a 1 b 2 c 3"), ok());
        assert!(is_error_starting(
            &c.cmd("MSET a 1 b"),
            "ERR wrong number of arguments"
        ));
        assert_eq!(
            c.cmd("MGET a b nope c"),
            Array(Some(vec![bulk("1"), bulk("2"), Bulk(None), bulk("3")]))
        );
        assert_eq!(c.cmd("EXISTS a b nope a"), Int(3));
        assert_eq!(c.cmd("DEL a b nope"), Int(2));
        assert_eq!(c.cmd("EXISTS a b"), Int(0));
        // k n1 counter big c
        assert_eq!(c.cmd("DBSIZE"), Int(5));
        assert_eq!(c.cmd("MSET user:1 a user:2 b user:10 c usr:3 d"), ok());
        let mut keys = |pattern: &str| -> Vec<String> {
            let Array(Some(items)) = c.cmd(&format!("KEYS {pattern}")) else {
                panic!("KEYS is an array")
            };
            let mut keys: Vec<String> = items
                .into_iter()
                .map(|k| match k {
                    Bulk(Some(k)) => String::from_utf8(k).unwrap(),
                    other => panic!("KEYS item {other:?}"),
                })
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(keys("user:*"), ["user:1", "user:10", "user:2"]);
        assert_eq!(keys("user:?"), ["user:1", "user:2"]);
        assert_eq!(keys("us[e]r:1*"), ["user:1", "user:10"]);
        assert_eq!(keys("u[^s]*"), Vec::<String>::new());
        assert_eq!(keys("u*:3"), ["usr:3"]);
        assert_eq!(keys("*").len(), 9);
        assert_eq!(c.cmd("FLUSHALL"), ok());
        assert_eq!(c.cmd("DBSIZE"), Int(0));
        assert_eq!(c.cmd("GET k"), Bulk(None));
    });
}

#[test]
fn expiry_lazy_and_active() {
    each_store(|server| {
        let mut c = server.client();
        assert_eq!(c.cmd("TTL nope"), Int(-2));
        assert_eq!(c.cmd("SET forever v"), ok());
        assert_eq!(c.cmd("TTL forever"), Int(-1));
        assert_eq!(c.cmd("SET s v EX 100"), ok());
        assert_eq!(c.cmd("TTL s"), Int(100));
        assert!(matches!(c.cmd("PTTL s"), Int(ms) if ms > 98_000 && ms <= 100_000));
        assert_eq!(c.cmd("SET s v2 KEEPTTL"), ok());
        assert_eq!(c.cmd("TTL s"), Int(100));
        assert_eq!(c.cmd("SET s v3"), ok());
        assert_eq!(c.cmd("TTL s"), Int(-1));
        assert_eq!(c.cmd("EXPIRE s 50"), Int(1));
        assert_eq!(c.cmd("TTL s"), Int(50));
        assert_eq!(c.cmd("EXPIRE nope 50"), Int(0));
        assert_eq!(c.cmd("EXPIRE s -1"), Int(1));
        assert_eq!(c.cmd("EXISTS s"), Int(0));
        // Lazy: read right after the deadline, before any tick can have run.
        assert_eq!(c.cmd("SET short v PX 50"), ok());
        assert_eq!(c.cmd("INCR short:n"), Int(1));
        assert_eq!(c.cmd("PEXPIRE short:n 50"), Int(1));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(c.cmd("GET short"), Bulk(None));
        assert_eq!(c.cmd("INCR short:n"), Int(1));
        // Active: keys nobody reads disappear from DBSIZE.
        assert_eq!(c.cmd("FLUSHALL"), ok());
        for i in 0..500 {
            assert_eq!(c.cmd(&format!("SET t{i} v PX 100")), ok());
        }
        assert_eq!(c.cmd("SET keep v"), ok());
        let start = Instant::now();
        while c.cmd("DBSIZE") != Int(1) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "active expiry never ran"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(c.cmd("GET keep"), bulk("v"));
    });
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    each_store(|server| {
        let mut c = server.client();
        let mut batch = Vec::new();
        for i in 0..2000 {
            batch.extend(encode(&[
                b"SET",
                format!("p{i}").as_bytes(),
                i.to_string().as_bytes(),
            ]));
            batch.extend(encode(&[b"GET", format!("p{i}").as_bytes()]));
            batch.extend(encode(&[b"INCR", b"pipeline:n"]));
        }
        // Split mid-frame, to exercise partial parses.
        let (a, b) = batch.split_at(batch.len() / 2 + 3);
        c.send_raw(a);
        std::thread::sleep(Duration::from_millis(20));
        c.send_raw(b);
        for i in 0..2000 {
            assert_eq!(c.reply(), ok());
            assert_eq!(c.reply(), bulk(&i.to_string()));
            assert_eq!(c.reply(), Int(i + 1));
        }
        assert_eq!(c.cmd("DBSIZE"), Int(2001));
    });
}

#[test]
fn malformed_frames_get_a_protocol_error_and_close() {
    let server = Server::start("locks");
    let cases: &[&[u8]] = &[
        b"*1\r\n+PING\r\n",       // not a bulk string
        b"*x\r\n",                // bad multibulk length
        b"*99999999\r\n",         // multibulk over 1M arguments
        b"*1\r\n$x\r\n",          // bad bulk length
        b"*1\r\n$-5\r\n",         // negative bulk length
        b"*1\r\n$4\r\nPINGxx",    // no CRLF after the bulk
        b"*1\n",                  // LF without CR in a header
        b"\"quoted inline\"\r\n", // inline quoting unsupported
    ];
    for case in cases {
        let mut c = server.client();
        c.send_raw(case);
        let reply = c.reply();
        assert!(
            is_error_starting(&reply, "ERR Protocol error: "),
            "{:?} got {reply:?}",
            String::from_utf8_lossy(case)
        );
        c.assert_closed();
    }
    // A line over 64 KiB with no CRLF.
    let mut c = server.client();
    c.send_raw(&vec![b'a'; 70 * 1024]);
    assert!(is_error_starting(
        &c.reply(),
        "ERR Protocol error: too big inline"
    ));
    c.assert_closed();
    // Commands before the bad frame in the same write are still answered.
    let mut c = server.client();
    c.send_raw(b"*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n");
    assert_eq!(c.reply(), Simple("PONG".into()));
    assert!(is_error_starting(&c.reply(), "ERR Protocol error: "));
    c.assert_closed();
    assert_eq!(server.client().cmd("PING"), Simple("PONG".into()));
}

#[test]
fn a_600_mib_bulk_header_is_refused_without_allocating() {
    let server = Server::start("locks");
    let mut other = server.client();
    assert_eq!(other.cmd("SET before v"), ok());
    let before = server.rss_kib();
    let mut c = server.client();
    // SET k <600 MiB>: the header, then the first 256 KiB of the body, as
    // an uploading client would keep sending. The server refuses at the
    // header; it must still close with FIN, not a reset (the body it has
    // not read is drained), so the client sees the error and then EOF.
    let mut uploader = c.writer.try_clone().unwrap();
    let upload = std::thread::spawn(move || {
        let mut first = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$629145600\r\n".to_vec();
        first.resize(first.len() + 64 * 1024, b'x');
        uploader.write_all(&first).expect("send the header");
        for _ in 0..48 {
            // Fails once the server has closed: that is not the test.
            if uploader.write_all(&[b'x'; 4096]).is_err() {
                break;
            }
        }
    });
    assert_eq!(
        c.reply(),
        Error("ERR Protocol error: invalid bulk length".into())
    );
    upload.join().unwrap();
    c.assert_closed();
    let after = server.rss_kib();
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // Still serving: the other client and a new one.
    assert_eq!(other.cmd("GET before"), bulk("v"));
    assert_eq!(server.client().cmd("PING"), Simple("PONG".into()));
}

#[test]
fn a_thousand_concurrent_clients() {
    goro::net::raise_fd_limit().expect("raise RLIMIT_NOFILE");
    each_store(|server| {
        let addr = server.addr;
        const CLIENTS: usize = 1000;
        let total: i64 = goro::run(move || {
            // Connect all first, so that 1,000 are open at once.
            let streams: Vec<_> = (0..CLIENTS)
                .map(|_| goro::net::TcpStream::connect(addr).expect("connect"))
                .collect();
            let handles: Vec<_> = streams
                .into_iter()
                .enumerate()
                .map(|(i, stream)| {
                    goro::go(move || {
                        let mut writer = &stream;
                        let mut reader = BufReader::new(&stream);
                        let key = format!("client:{i}");
                        let mut batch = encode(&[b"SET", key.as_bytes(), key.as_bytes()]);
                        batch.extend(encode(&[b"GET", key.as_bytes()]));
                        batch.extend(encode(&[b"INCR", b"clients"]));
                        writer.write_all(&batch).unwrap();
                        assert_eq!(read_reply(&mut reader).unwrap(), ok());
                        assert_eq!(read_reply(&mut reader).unwrap(), bulk(&key));
                        match read_reply(&mut reader).unwrap() {
                            Int(n) => n,
                            other => panic!("INCR gave {other:?}"),
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .max()
                .unwrap()
        });
        assert_eq!(total, CLIENTS as i64);
        let mut c = server.client();
        assert_eq!(c.cmd("GET clients"), bulk(&CLIENTS.to_string()));
        assert_eq!(c.cmd("DBSIZE"), Int(CLIENTS as i64 + 1));
        let Bulk(Some(info)) = c.cmd("INFO stats") else {
            panic!("INFO is a bulk string")
        };
        assert!(String::from_utf8(info)
            .unwrap()
            .contains(&format!("total_connections_received:{}", CLIENTS + 1)));
    });
}

#[test]
fn sigterm_delivers_in_flight_replies_then_exits_zero() {
    for store in STORES {
        let mut server = Server::start(store);
        let mut idle = server.client();
        assert_eq!(idle.cmd("PING"), Simple("PONG".into()));
        let mut busy = server.client();
        // Accepted before the signal (a connection still in the listen
        // backlog is reset when the listener closes).
        assert_eq!(busy.cmd("PING"), Simple("PONG".into()));
        // An in-flight command (DEBUG SLEEP parks its goroutine on a goro
        // timer) with pipelined commands behind it.
        let mut batch = encode(&[b"DEBUG", b"SLEEP", b"0.5"]);
        batch.extend(encode(&[b"SET", b"late", b"v"]));
        batch.extend(encode(&[b"GET", b"late"]));
        busy.send_raw(&batch);
        std::thread::sleep(Duration::from_millis(100));
        server.signal(libc::SIGTERM);
        assert_eq!(busy.reply(), ok());
        assert_eq!(busy.reply(), ok());
        assert_eq!(busy.reply(), bulk("v"));
        busy.assert_closed();
        idle.assert_closed();
        let status = server.child.wait().expect("wait");
        assert_eq!(status.code(), Some(0), "kv exit status");
        let mut rest = String::new();
        server.stdout.read_to_string(&mut rest).unwrap();
        assert!(
            rest.contains("threads left: 1"),
            "threads were left behind: {rest:?}"
        );
        assert!(TcpStream::connect(server.addr).is_err(), "still accepting");
    }
}
