//! Command dispatch: argument checking as Redis does it (same error texts),
//! then shard operations through the connection's store handle.

use std::ops::Range;
use std::time::Duration;

use crate::resp;
use crate::shard::{now_ms, Cond, Op, Ttl};
use crate::store::Handle;
use crate::Server;

/// A parsed command's arguments: ranges into the read buffer.
pub struct Args<'a> {
    pub buf: &'a [u8],
    pub ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    fn len(&self) -> usize {
        self.ranges.len()
    }

    fn get(&self, i: usize) -> &'a [u8] {
        &self.buf[self.ranges[i].clone()]
    }

    fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.ranges.iter().map(|r| &self.buf[r.clone()])
    }
}

/// Whether the connection carries on after a command.
#[derive(PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// Name, arity (Redis's convention: `n` exactly, `-n` at least), flags,
/// group, summary. Drives arity checks and COMMAND's replies.
type Spec = (&'static str, i64, &'static str, &'static str, &'static str);

pub const COMMANDS: &[Spec] = &[
    ("ping", -1, "fast", "connection", "Ping the server"),
    ("echo", 2, "fast", "connection", "Echo the given string"),
    (
        "get",
        2,
        "readonly fast",
        "string",
        "Get the value of a key",
    ),
    (
        "set",
        -3,
        "write denyoom",
        "string",
        "Set the string value of a key",
    ),
    ("del", -2, "write", "generic", "Delete keys"),
    (
        "exists",
        -2,
        "readonly fast",
        "generic",
        "Count existing keys",
    ),
    (
        "incr",
        2,
        "write denyoom fast",
        "string",
        "Increment by one",
    ),
    (
        "decr",
        2,
        "write denyoom fast",
        "string",
        "Decrement by one",
    ),
    (
        "incrby",
        3,
        "write denyoom fast",
        "string",
        "Increment by a number",
    ),
    (
        "decrby",
        3,
        "write denyoom fast",
        "string",
        "Decrement by a number",
    ),
    (
        "mget",
        -2,
        "readonly fast",
        "string",
        "Get the values of keys",
    ),
    ("mset", -3, "write denyoom", "string", "Set several keys"),
    (
        "expire",
        3,
        "write fast",
        "generic",
        "Set a key's TTL in seconds",
    ),
    (
        "pexpire",
        3,
        "write fast",
        "generic",
        "Set a key's TTL in ms",
    ),
    (
        "ttl",
        2,
        "readonly fast",
        "generic",
        "Get a key's TTL in seconds",
    ),
    (
        "pttl",
        2,
        "readonly fast",
        "generic",
        "Get a key's TTL in ms",
    ),
    (
        "keys",
        2,
        "readonly",
        "generic",
        "Find keys matching a glob",
    ),
    ("dbsize", 1, "readonly fast", "server", "Number of keys"),
    ("flushall", -1, "write", "server", "Remove all keys"),
    ("flushdb", -1, "write", "server", "Remove all keys"),
    ("info", -1, "loading stale", "server", "Server information"),
    ("quit", -1, "fast", "connection", "Close the connection"),
    (
        "command",
        -1,
        "loading stale",
        "server",
        "Command introspection",
    ),
    ("config", -2, "admin", "server", "CONFIG GET (read-only)"),
    ("select", 2, "fast", "connection", "Select database 0"),
    ("debug", -2, "admin", "server", "DEBUG SLEEP seconds"),
];

fn lower(name: &[u8], into: &mut [u8; 16]) -> Option<usize> {
    if name.len() > into.len() {
        return None;
    }
    for (d, s) in into.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    Some(name.len())
}

fn integer_arg(arg: &[u8]) -> Option<i64> {
    resp::parse_integer(arg)
}

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";

/// Runs one command, appending its reply to `out`. A command whose reply
/// grows with its arguments calls `flush` as it goes, which writes `out`
/// out (and empties it) once it is large.
pub fn dispatch(
    args: Args<'_>,
    handle: &mut Handle,
    server: &Server,
    out: &mut Vec<u8>,
    flush: &mut dyn FnMut(&mut Vec<u8>),
) -> Flow {
    if args.len() == 0 {
        return Flow::Continue;
    }
    let mut name_buf = [0u8; 16];
    let name = match lower(args.get(0), &mut name_buf) {
        Some(n) => &name_buf[..n],
        None => &[][..],
    };
    let Some(&(cmd, arity, ..)) = COMMANDS.iter().find(|c| c.0.as_bytes() == name) else {
        // As Redis: the name cut at 128 bytes, then the arguments while
        // their text is under 128 bytes, each cut to what is left.
        let shown = String::from_utf8_lossy(&args.get(0)[..args.get(0).len().min(128)]);
        let mut quoted = String::new();
        for arg in args.iter().skip(1) {
            if quoted.len() >= 128 {
                break;
            }
            let room = 128 - quoted.len();
            quoted.push_str(&format!(
                "'{}' ",
                String::from_utf8_lossy(&arg[..arg.len().min(room)])
            ));
        }
        let text = format!("ERR unknown command '{shown}', with args beginning with: {quoted}");
        resp::error(out, &text);
        return Flow::Continue;
    };
    let n = args.len() as i64;
    if (arity > 0 && n != arity) || n < -arity {
        resp::error(
            out,
            &format!("ERR wrong number of arguments for '{cmd}' command"),
        );
        return Flow::Continue;
    }
    match cmd {
        "ping" if n > 2 => {
            return error(out, "ERR wrong number of arguments for 'ping' command");
        }
        "ping" if n == 1 => resp::simple(out, b"PONG"),
        "ping" | "echo" => resp::bulk(out, args.get(1)),
        "get" => {
            handle.run(Op::Get(args.get(1)), out);
        }
        "set" => set(&args, handle, out),
        "del" | "exists" => {
            let mut total = 0;
            for key in args.iter().skip(1) {
                let op = if cmd == "del" {
                    Op::Del(key)
                } else {
                    Op::Exists(key)
                };
                total += handle.run(op, out);
            }
            resp::integer(out, total);
        }
        "incr" | "decr" | "incrby" | "decrby" => {
            let by = match cmd {
                "incr" => 1,
                "decr" => -1,
                _ => match integer_arg(args.get(2)) {
                    Some(by) if cmd == "incrby" => by,
                    Some(i64::MIN) => {
                        return error(out, "ERR decrement would overflow");
                    }
                    Some(by) => -by,
                    None => return error(out, NOT_INTEGER),
                },
            };
            handle.run(Op::IncrBy(args.get(1), by), out);
        }
        "mget" => {
            resp::array_header(out, args.len() - 1);
            for key in args.iter().skip(1) {
                handle.run(Op::Get(key), out);
                flush(out);
            }
        }
        "mset" => {
            if args.len().is_multiple_of(2) {
                return error(out, "ERR wrong number of arguments for 'mset' command");
            }
            for pair in 0..args.len() / 2 {
                let op = Op::Set {
                    key: args.get(1 + 2 * pair),
                    value: args.get(2 + 2 * pair),
                    ttl: Ttl::Clear,
                    cond: Cond::Always,
                };
                handle.run(op, out);
            }
            resp::ok(out);
        }
        "expire" | "pexpire" => {
            let unit = if cmd == "expire" { 1000 } else { 1 };
            let Some(amount) = integer_arg(args.get(2)) else {
                return error(out, NOT_INTEGER);
            };
            let Some(at) = deadline(amount, unit, true) else {
                return error(out, &format!("ERR invalid expire time in '{cmd}' command"));
            };
            let n = handle.run(Op::Expire(args.get(1), at), out);
            resp::integer(out, n);
        }
        "ttl" | "pttl" => {
            let ms = handle.run(Op::Ttl(args.get(1)), out);
            let reply = if ms < 0 || cmd == "pttl" {
                ms
            } else {
                ms.saturating_add(500) / 1000
            };
            resp::integer(out, reply);
        }
        "keys" => {
            let mut items = Vec::new();
            let count = handle.run(Op::Keys(args.get(1)), &mut items);
            resp::array_header(out, count as usize);
            out.extend_from_slice(&items);
        }
        "dbsize" => {
            let n = handle.run(Op::Count, out);
            resp::integer(out, n);
        }
        "flushall" | "flushdb" => {
            handle.run(Op::Flush, out);
            resp::ok(out);
        }
        "info" => {
            let section = (n > 1).then(|| String::from_utf8_lossy(args.get(1)).to_lowercase());
            let text = crate::info::render(server, handle, section.as_deref());
            resp::bulk(out, text.as_bytes());
        }
        "quit" => {
            resp::ok(out);
            return Flow::Close;
        }
        "command" => crate::info::command(&args, out),
        "config" => config(&args, out),
        "select" => match integer_arg(args.get(1)) {
            Some(0) => resp::ok(out),
            Some(_) => resp::error(out, "ERR DB index is out of range"),
            None => resp::error(out, NOT_INTEGER),
        },
        "debug" => debug(&args, out),
        _ => unreachable!("every command in COMMANDS is dispatched"),
    }
    Flow::Continue
}

fn error(out: &mut Vec<u8>, text: &str) -> Flow {
    resp::error(out, text);
    Flow::Continue
}

/// A TTL of `amount` × `unit` ms from now as a deadline; `None` if it is
/// out of range (or not positive, unless `allow_past`: EXPIRE with a past
/// time deletes the key).
fn deadline(amount: i64, unit: i64, allow_past: bool) -> Option<u64> {
    if amount <= 0 && !allow_past {
        return None;
    }
    let ms = amount.checked_mul(unit)?;
    let now = now_ms() as i64;
    Some(now.checked_add(ms)?.max(0) as u64)
}

/// SET key value [NX|XX] [EX s|PX ms|KEEPTTL]
fn set(args: &Args<'_>, handle: &mut Handle, out: &mut Vec<u8>) {
    let mut ttl = Ttl::Clear;
    let mut cond = Cond::Always;
    let mut i = 3;
    while i < args.len() {
        let mut word = [0u8; 16];
        let opt = lower(args.get(i), &mut word).map_or(&[][..], |n| &word[..n]);
        let next = (i + 1 < args.len()).then(|| args.get(i + 1));
        match (opt, next) {
            (b"nx", _) if cond != Cond::IfPresent => cond = Cond::IfAbsent,
            (b"xx", _) if cond != Cond::IfAbsent => cond = Cond::IfPresent,
            (b"keepttl", _) if matches!(ttl, Ttl::Clear) => ttl = Ttl::Keep,
            (b"ex" | b"px", Some(amount)) if matches!(ttl, Ttl::Clear) => {
                let unit = if opt == b"ex" { 1000 } else { 1 };
                let Some(amount) = integer_arg(amount) else {
                    return resp::error(out, NOT_INTEGER);
                };
                let Some(at) = deadline(amount, unit, false) else {
                    return resp::error(out, "ERR invalid expire time in 'set' command");
                };
                ttl = Ttl::At(at);
                i += 1;
            }
            _ => return resp::error(out, "ERR syntax error"),
        }
        i += 1;
    }
    let op = Op::Set {
        key: args.get(1),
        value: args.get(2),
        ttl,
        cond,
    };
    if handle.run(op, out) == 1 {
        resp::ok(out);
    } else {
        resp::nil(out);
    }
}

/// CONFIG GET for the two parameters redis-benchmark asks about; any other
/// parameter matches nothing. CONFIG SET and the rest are refused.
fn config(args: &Args<'_>, out: &mut Vec<u8>) {
    if !args.get(1).eq_ignore_ascii_case(b"get") || args.len() != 3 {
        return resp::error(out, "ERR CONFIG: only CONFIG GET <parameter> is supported");
    }
    let param = args.get(2).to_ascii_lowercase();
    let known: &[(&[u8], &[u8])] = &[(b"save", b""), (b"appendonly", b"no")];
    let hits: Vec<_> = known
        .iter()
        .filter(|(name, _)| crate::glob::matches(&param, name))
        .collect();
    resp::array_header(out, hits.len() * 2);
    for (name, value) in hits {
        resp::bulk(out, name);
        resp::bulk(out, value);
    }
}

/// DEBUG SLEEP <seconds>: parks the connection's goroutine (on a goro
/// timer), as Redis's blocks its event loop; used to test that shutdown
/// waits for in-flight commands.
fn debug(args: &Args<'_>, out: &mut Vec<u8>) {
    let seconds = std::str::from_utf8(args.get(args.len() - 1))
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 3600.0);
    match seconds {
        Some(s) if args.len() == 3 && args.get(1).eq_ignore_ascii_case(b"sleep") => {
            goro::time::sleep(Duration::from_secs_f64(s));
            resp::ok(out);
        }
        _ => resp::error(out, "ERR DEBUG: only DEBUG SLEEP <seconds> is supported"),
    }
}
