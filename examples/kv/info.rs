//! INFO and COMMAND: the introspection replies.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::commands::{Args, COMMANDS};
use crate::resp;
use crate::shard::Op;
use crate::store::Handle;
use crate::Server;

/// The `# goro` section: a `goro::runtime::stats()` snapshot (goroutines by
/// state and wait reason, threads, steals, handoffs, preemptions, netpoll
/// batches, stacks), cheap enough for a monitor polling INFO every second.
fn goro_info_section() -> String {
    let stats = goro::runtime::stats();
    let mut text = String::from("# goro\r\n");
    let _ = write!(
        text,
        "goroutines:{}\r\ngoroutines_created:{}\r\ngoroutines_running:{}\r\n\
         goroutines_runnable:{}\r\ngoroutines_waiting:{}\r\nprocs:{}\r\nidle_procs:{}\r\n\
         threads:{}\r\nthreads_spinning:{}\r\nthreads_idle:{}\r\nthreads_in_syscall:{}\r\n\
         global_run_queue:{}\r\nsteals:{}\r\nhandoffs:{}\r\npreemptions_requested:{}\r\n\
         preemptions_done:{}\r\nsysmon_retakes:{}\r\nnetpoll_backend:{}\r\n\
         netpoll_completions:{}\r\nnetpoll_batches:{}\r\nstacks_in_use:{}\r\n\
         stacks_pooled:{}\r\nstack_bytes_reserved:{}\r\n",
        stats.goroutines.live,
        stats.goroutines.created,
        stats.goroutines.running,
        stats.goroutines.runnable,
        stats.goroutines.waiting,
        stats.procs,
        stats.idle_procs,
        stats.threads.total,
        stats.threads.spinning,
        stats.threads.idle,
        stats.threads.in_syscall,
        stats.global_run_queue,
        stats.steals,
        stats.handoffs,
        stats.preemptions_requested,
        stats.preemptions_done,
        stats.sysmon_retakes,
        stats.netpoll.backend.unwrap_or("none"),
        stats.netpoll.completions,
        stats.netpoll.batches,
        stats.stacks.in_use,
        stats.stacks.pooled,
        stats.stacks.reserved_bytes,
    );
    for (reason, count) in &stats.goroutines.waiting_by_reason {
        let _ = write!(text, "waiting_{}:{count}\r\n", reason.replace(' ', "_"));
    }
    text
}

/// INFO [section]: Server, Clients, Stats, Keyspace and goro.
pub fn render(server: &Server, handle: &mut Handle, section: Option<&str>) -> String {
    let wanted = |name: &str| match section {
        None | Some("all" | "default" | "everything") => true,
        Some(s) => s == name,
    };
    let mut text = String::new();
    if wanted("server") {
        let _ = write!(
            text,
            "# Server\r\nredis_version:7.0.0\r\ngoro_kv_version:{}\r\nredis_mode:standalone\r\n\
             os:Linux\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\
             store:{}\r\nshards:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            server.port,
            server.started.elapsed().as_secs(),
            handle.store().kind().name(),
            handle.store().shard_count(),
        );
    }
    if wanted("clients") {
        let _ = write!(
            text,
            "# Clients\r\nconnected_clients:{}\r\n\r\n",
            server.connected.load(Ordering::Relaxed)
        );
    }
    if wanted("stats") {
        let _ = write!(
            text,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\r\n",
            server.connections.load(Ordering::Relaxed),
            server.commands.load(Ordering::Relaxed)
        );
    }
    if wanted("keyspace") {
        let mut scratch = Vec::new();
        let keys = handle.run(Op::Count, &mut scratch);
        let expires = handle.run(Op::CountExpiring, &mut scratch);
        text.push_str("# Keyspace\r\n");
        if keys > 0 {
            let _ = write!(text, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
        }
        text.push_str("\r\n");
    }
    if wanted("goro") {
        text.push_str(&goro_info_section());
    }
    text
}

/// One COMMAND entry in Redis 7's ten-field shape: name, arity, flags,
/// first key, last key, step, ACL categories, tips, key specs,
/// subcommands.
fn entry(out: &mut Vec<u8>, spec: &(&str, i64, &str, &str, &str)) {
    let (name, arity, flags, group, _) = *spec;
    let has_key = matches!(group, "string" | "generic");
    let (first, last) = match name {
        "mset" => (1, -1),
        "mget" | "del" | "exists" => (1, -1),
        "keys" => (0, 0),
        _ if has_key => (1, 1),
        _ => (0, 0),
    };
    resp::array_header(out, 10);
    resp::bulk(out, name.as_bytes());
    resp::integer(out, arity);
    let flags: Vec<&str> = flags.split(' ').collect();
    resp::array_header(out, flags.len());
    for flag in flags {
        resp::simple(out, flag.as_bytes());
    }
    resp::integer(out, first);
    resp::integer(out, last);
    resp::integer(
        out,
        if name == "mset" {
            2
        } else {
            (first > 0) as i64
        },
    );
    for _ in 0..4 {
        resp::array_header(out, 0);
    }
}

/// COMMAND, COMMAND COUNT, COMMAND INFO name..., COMMAND DOCS [name...]
/// (enough for redis-cli's start-up and its hints).
pub fn command(args: &Args<'_>, out: &mut Vec<u8>) {
    let find = |name: &[u8]| {
        COMMANDS
            .iter()
            .find(|c| c.0.as_bytes().eq_ignore_ascii_case(name))
    };
    let names: Vec<&[u8]> = (2..args.ranges.len())
        .map(|i| &args.buf[args.ranges[i].clone()])
        .collect();
    let sub =
        (args.ranges.len() > 1).then(|| args.buf[args.ranges[1].clone()].to_ascii_lowercase());
    match sub.as_deref() {
        None => {
            resp::array_header(out, COMMANDS.len());
            for spec in COMMANDS {
                entry(out, spec);
            }
        }
        Some(b"count") => resp::integer(out, COMMANDS.len() as i64),
        Some(b"info") => {
            resp::array_header(out, names.len());
            for name in names {
                match find(name) {
                    Some(spec) => entry(out, spec),
                    None => resp::nil(out),
                }
            }
        }
        Some(b"docs") => {
            let specs: Vec<_> = if names.is_empty() {
                COMMANDS.iter().collect()
            } else {
                names.into_iter().filter_map(find).collect()
            };
            // RESP2 renders the map as a flat array: name, docs, ...
            resp::array_header(out, specs.len() * 2);
            for (name, _, _, group, summary) in specs {
                resp::bulk(out, name.as_bytes());
                resp::array_header(out, 6);
                resp::bulk(out, b"summary");
                resp::bulk(out, summary.as_bytes());
                resp::bulk(out, b"since");
                resp::bulk(out, b"1.0.0");
                resp::bulk(out, b"group");
                resp::bulk(out, group.as_bytes());
            }
        }
        Some(_) => resp::error(
            out,
            "ERR unknown subcommand for 'command'. Try COMMAND COUNT, INFO or DOCS.",
        ),
    }
}
