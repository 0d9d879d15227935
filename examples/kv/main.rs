//! A Redis-protocol (RESP2) key-value server on goro: one goroutine per
//! connection.
//!
//! ```text
//! cargo run --release --example kv [-- --addr 127.0.0.1:6380 --procs 2 --store locks]
//! redis-cli -p 6380 ping
//! redis-benchmark -p 6380 -t set,get -n 200000 -c 50 -P 16 -q
//! bash ci/kv.sh     # beside redis-server, in one run
//! ```
//!
//! Commands: PING, ECHO, GET, SET (EX/PX/NX/XX/KEEPTTL), DEL, EXISTS,
//! INCR/DECR/INCRBY/DECRBY, MGET, MSET, EXPIRE/PEXPIRE, TTL/PTTL, KEYS (Redis
//! globs), DBSIZE, FLUSHALL/FLUSHDB, INFO (with a `# goro` section), QUIT,
//! COMMAND (COUNT, INFO, DOCS), CONFIG GET, SELECT 0 and DEBUG SLEEP.
//!
//! # Framing (`resp.rs`, `conn.rs`)
//!
//! Each connection reads into one buffer and parses every complete command
//! in it before writing (pipelining): the arguments are byte ranges into the
//! buffer, nothing is copied until a value is stored, and all the replies of
//! one read go out in one `write` (or every 64 KiB). A protocol error gets
//! `-ERR Protocol error: ...` and the connection is closed; the server goes
//! on. Closing sends FIN and then drains what the client still sends (at
//! most 500 ms, `common::close_gently`), so a client that was uploading
//! sees the error and EOF, not a reset. Limits are checked on headers, before any allocation: a bulk string
//! over 512 MiB, a multibulk over 1,048,576 arguments, a line over 64 KiB.
//! The buffer grows only as bytes arrive.
//!
//! # Sharding: locks, measured against owner goroutines (`store.rs`)
//!
//! Both are built (`--store locks|owners`). `locks`, the default, has 64
//! shards, each a `HashMap` behind a `goro::sync::Mutex`. The connection
//! goroutine runs the command under the shard lock and writes the reply
//! straight into its output buffer. `owners` has `2 × procs` shard-owning
//! goroutines. A command travels over a channel (the key copied, the output
//! buffer moved) and the owner answers on the connection's reply channel:
//! two goroutine switches per command.
//!
//! **Locks are faster; that is why they are the default.** Measured by
//! `ci/kv.sh`: redis-benchmark `-t set,get -n 200000 -c 50`, best of 3
//! interleaved runs, 2 Ps, on the 2-vCPU VM while other engineers' builds
//! ran (load average 5–6):
//!
//! | store  | SET -P 1 | GET -P 1 | SET -P 16 | GET -P 16 | server CPU-µs/req -P 1 / -P 16 |
//! |--------|---------:|---------:|----------:|----------:|------------------:|
//! | locks  | 35.4k    | 40.4k    | 667k      | 578k      | 12.8 / 1.07 |
//! | owners | 41.6k    | 40.1k    | 368k      | 391k      | 15.2 / 1.69 |
//!
//! Without pipelining the network path dominates: each request costs a
//! netpoller wake-up, and the two stores fall within the run's noise (the
//! CPU per request still favours locks). With pipelining, locks serve 1.5–1.8×
//! the requests at 0.63× the CPU. An uncontended goro `Mutex` is a few atomic
//! operations; a channel round trip to an owner is two parks and two readies.
//! The same run's redis-server: 61.4k, 54.0k, 575k, 548k; 7.0 / 1.35 µs.
//! The README has a later run (locks only), with the io_uring poller's
//! lingering waits.
//!
//! # Expiry (`shard.rs`)
//!
//! Lazy plus active, as Redis does. Every access checks the key's deadline
//! first, so an expired key is never seen. Each shard also keeps a min-heap of
//! deadlines. One expiry goroutine wakes every 100 ms (Redis's `hz 10`) and
//! has each shard pop what is due. It sleeps on a goro timer
//! (`goro::time::sleep`). For `locks` it takes each shard's lock in turn; for
//! `owners` it queues an `Expire` message to each owner. The sleep loop uses
//! the same timers as a `Ticker`, without its channel; a `Ticker` was the
//! first design, and receiving from it found a runtime livelock, fixed since
//! (`tests/ticker_recv_deadlock.rs`). Each tick pops at most 2,000 deadlines per
//! shard, which bounds the time a lock is held. A deadline that no longer matches
//! its key is skipped. The heap is rebuilt when stale items outnumber keys
//! two to one. Per-key goro timers were rejected. A timer per key means one
//! timer-heap entry plus a channel or goroutine per key, and a cross-shard
//! wake-up each time one fires. The shard heap costs one `(deadline, key)`
//! item per key with a TTL and needs no wake-ups beyond the 100 ms loop.
//!
//! # Shutdown (`main`)
//!
//! SIGINT/SIGTERM (`common::stop_on_signals`) sets the stop flag and wakes
//! the accept loop (`shutdown(SHUT_RD)` on the listener). Then:
//! 1. The listener is closed, so new connections are refused.
//! 2. Every open connection gets `shutdown(SHUT_RD)`: its goroutine still
//!    reads what is already buffered, answers every complete command, writes
//!    the replies, then reads end-of-file and returns. A command in flight
//!    (a `DEBUG SLEEP`) finishes and is answered.
//! 3. main waits up to `--grace` (default 5 s) for every connection
//!    goroutine to drop its sender of a `done` channel (`recv_timeout` sees
//!    the channel close). Then it stops the store's goroutines: the expiry
//!    loop sees a flag within 100 ms, and the owners see their channels
//!    close.
//! 4. `Runtime::shutdown_timeout` joins the runtime's threads. The exit
//!    line reports the threads left in the process (1: main), and the exit
//!    status is 0.

#[path = "../common/mod.rs"]
mod common;

mod commands;
mod conn;
mod glob;
mod info;
mod resp;
mod shard;
mod store;

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::net::TcpListener;

use store::{Kind, Store};

/// What every connection shares.
pub struct Server {
    pub port: u16,
    pub started: Instant,
    pub store: Arc<Store>,
    pub connections: AtomicU64,
    pub connected: AtomicI64,
    pub commands: AtomicU64,
}

/// Open connections' descriptors, for step 2 of the shutdown. A connection
/// removes itself under the lock before its socket closes, so a descriptor
/// here is never a reused one.
type Open = Arc<goro::sync::Mutex<HashMap<u64, i32>>>;

fn threads_in_process() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn main() {
    let store_kind: Kind = common::flag("store", Kind::Locks);
    let shards: usize = common::flag("shards", 0);
    let grace = Duration::from_secs_f64(common::flag("grace", 5.0));
    let common::Server {
        addr,
        runtime,
        stop,
        listener_fd: fd_tx,
    } = common::Server::from_flags("kv", "127.0.0.1:6380");
    let started = Instant::now();
    let served = runtime.block_on(move || {
        let listener = TcpListener::bind(&addr).unwrap_or_else(|error| {
            eprintln!("kv: cannot listen on {addr}: {error}");
            std::process::exit(1);
        });
        let _ = fd_tx.send(listener.as_raw_fd());
        let procs = goro::runtime::procs();
        let shards = match (shards, store_kind) {
            (0, Kind::Locks) => 64,
            (0, Kind::Owners) => 2 * procs,
            (n, _) => n,
        };
        let local = listener.local_addr().unwrap();
        let server = Arc::new(Server {
            port: local.port(),
            started,
            store: Store::start(store_kind, shards),
            connections: AtomicU64::new(0),
            connected: AtomicI64::new(0),
            commands: AtomicU64::new(0),
        });
        let backend = goro::net::backend()
            .and_then(Result::ok)
            .map_or("?", |kind| kind.name());
        println!(
            "kv: listening on {local} (netpoll {backend}, {procs} Ps, store {} x{shards})",
            store_kind.name()
        );
        let open: Open = Default::default();
        let (done_tx, done_rx) = goro::chan::bounded::<()>(0);
        let mut backoff = common::Backoff::default();
        let mut next_id = 0u64;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    backoff.reset();
                    next_id += 1;
                    let id = next_id;
                    open.lock().insert(id, stream.as_raw_fd());
                    server.connections.fetch_add(1, Ordering::Relaxed);
                    server.connected.fetch_add(1, Ordering::Relaxed);
                    let (server, open, done) = (server.clone(), open.clone(), done_tx.clone());
                    goro::go(move || {
                        let stream = Keeper {
                            id,
                            stream: Some(stream),
                            open,
                        };
                        conn::serve(&stream, &server);
                        drop(stream);
                        server.connected.fetch_sub(1, Ordering::Relaxed);
                        drop(done);
                    });
                }
                Err(_) if stop.load(Ordering::Acquire) => break,
                Err(error) => {
                    let delay = backoff.wait();
                    eprintln!("kv: accept: {error}; retrying in {delay:?}");
                }
            }
        }
        // Shutdown steps 1-3 (module doc).
        drop(listener);
        let deadline = Instant::now() + grace;
        for &fd in open.lock().values() {
            common::wake_listener(fd); // shutdown(fd, SHUT_RD)
        }
        drop(done_tx);
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left) == Err(goro::chan::RecvTimeoutError::Timeout) {
            eprintln!(
                "kv: {} connections still open after {grace:?}; abandoning them",
                open.lock().len()
            );
        }
        server.store.stop();
        (server.connections.load(Ordering::Relaxed), deadline)
    });
    let (connections, deadline) = served;
    // Step 4: whatever is left of the grace period, at least 100 ms.
    let left = deadline.saturating_duration_since(Instant::now());
    runtime.shutdown_timeout(left.max(Duration::from_millis(100)));
    // The signal thread exits right after waking the accept loop; give it
    // a moment before counting.
    for _ in 0..100 {
        if threads_in_process() <= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "kv: stopped after {connections} connections; threads left: {}",
        threads_in_process()
    );
}

/// A connection's socket that removes itself from `open` (under the lock)
/// before it closes.
struct Keeper {
    id: u64,
    stream: Option<goro::net::TcpStream>,
    open: Open,
}

impl Drop for Keeper {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        open.remove(&self.id);
        drop(self.stream.take());
    }
}

impl std::ops::Deref for Keeper {
    type Target = goro::net::TcpStream;
    fn deref(&self) -> &goro::net::TcpStream {
        self.stream.as_ref().expect("open until dropped")
    }
}
