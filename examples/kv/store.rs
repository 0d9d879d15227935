//! The keyspace, split into shards by key hash, in one of two shapes
//! (`--store`):
//!
//! - `locks`: each shard behind a `goro::sync::Mutex`; a connection
//!   goroutine locks the key's shard and runs the operation itself. One
//!   active-expiry goroutine walks the shards every 100 ms.
//! - `owners`: each shard owned by one goroutine that receives operations on
//!   a channel and answers on the connection's reply channel (the
//!   connection's output buffer travels with the request and comes back
//!   filled).
//!
//! One goroutine runs active expiry for both (`Store::expire_loop`).
//!
//! The measured comparison is in `main.rs`'s module doc.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goro::chan::{self, Receiver, Sender};
use goro::sync::Mutex;
use goro::JoinHandle;

use crate::shard::{Op, Shard};

/// Active expiry period: Redis's default `hz 10`.
const EXPIRE_PERIOD: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Locks,
    Owners,
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        match s {
            "locks" => Ok(Kind::Locks),
            "owners" => Ok(Kind::Owners),
            _ => Err(format!("unknown store {s:?}: expected locks or owners")),
        }
    }
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Locks => "locks",
            Kind::Owners => "owners",
        }
    }
}

/// What an owner goroutine is asked to do.
enum Request {
    /// An operation, with the buffer its reply is appended to and the
    /// channel that brings both back.
    Op {
        op: Op<Vec<u8>>,
        out: Vec<u8>,
        reply: Sender<(i64, Vec<u8>)>,
    },
    /// An active-expiry tick.
    Expire,
}

enum Shards {
    Locks(Vec<Mutex<Shard>>),
    Owners(Vec<Sender<Request>>),
}

pub struct Store {
    shards: Shards,
    kind: Kind,
    /// The expiry goroutine and the owners; joined by `stop`.
    workers: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Set by `stop` to end the expiry goroutine.
    stopping: AtomicBool,
}

/// FNV-1a: picks the shard (the map inside hashes again with its own
/// seeded hasher, so a hostile key set can only unbalance shards).
fn shard_of(key: &[u8], shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    (hash % shards as u64) as usize
}

impl Store {
    /// Builds the store and starts its goroutines (call from a goroutine).
    pub fn start(kind: Kind, shards: usize) -> Arc<Store> {
        let shards = shards.max(1);
        let mut workers = Vec::new();
        let store = match kind {
            Kind::Locks => Arc::new(Store {
                shards: Shards::Locks((0..shards).map(|_| Mutex::default()).collect()),
                kind,
                workers: Default::default(),
                stopping: AtomicBool::new(false),
            }),
            Kind::Owners => {
                let mut senders = Vec::new();
                for _ in 0..shards {
                    let (tx, rx) = chan::bounded::<Request>(64);
                    senders.push(tx);
                    workers.push(goro::go(move || owner(rx)));
                }
                Arc::new(Store {
                    shards: Shards::Owners(senders),
                    kind,
                    workers: Default::default(),
                    stopping: AtomicBool::new(false),
                })
            }
        };
        let expiry = store.clone();
        workers.push(goro::go(move || expiry.expire_loop()));
        *store.workers.lock().unwrap() = workers;
        store
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn shard_count(&self) -> usize {
        match &self.shards {
            Shards::Locks(s) => s.len(),
            Shards::Owners(s) => s.len(),
        }
    }

    /// A connection's access to the store.
    pub fn handle(self: &Arc<Store>) -> Handle {
        let (reply_tx, reply_rx) = chan::bounded(1);
        Handle {
            store: self.clone(),
            reply_tx,
            reply_rx,
        }
    }

    /// Active expiry: every `EXPIRE_PERIOD`, each shard drops its due keys
    /// (bounded per shard, so no lock is held long); owners get an
    /// `Expire` message in their queue instead. A sleep loop: expiry needs
    /// no phase-locked period, so a `Ticker`'s channel adds nothing (the
    /// module doc tells how a `Ticker` here once found a runtime bug).
    fn expire_loop(&self) {
        while !self.stopping.load(Ordering::Acquire) {
            goro::time::sleep(EXPIRE_PERIOD);
            match &self.shards {
                Shards::Locks(shards) => {
                    for shard in shards {
                        shard.lock().expire_due();
                    }
                }
                Shards::Owners(senders) => {
                    for sender in senders {
                        let _ = sender.send(Request::Expire);
                    }
                }
            }
        }
    }

    /// Stops the store's goroutines and waits for them (connections must
    /// be gone: an owner stops when its channel closes).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        if let Shards::Owners(senders) = &self.shards {
            for sender in senders {
                sender.close();
            }
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap());
        for worker in workers {
            let _ = worker.join();
        }
    }
}

/// An owner goroutine: the only code that touches its shard.
fn owner(requests: Receiver<Request>) {
    let mut shard = Shard::default();
    while let Ok(request) = requests.recv() {
        match request {
            Request::Op { op, mut out, reply } => {
                let n = shard.apply(op.as_slices(), &mut out);
                let _ = reply.send((n, out));
            }
            Request::Expire => {
                shard.expire_due();
            }
        }
    }
}

/// One connection's access to the store (its reply channel, for owners).
pub struct Handle {
    store: Arc<Store>,
    reply_tx: Sender<(i64, Vec<u8>)>,
    reply_rx: Receiver<(i64, Vec<u8>)>,
}

impl Handle {
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `op` on its key's shard, or on every shard (summing the
    /// results) for whole-keyspace operations.
    pub fn run(&mut self, op: Op<&[u8]>, out: &mut Vec<u8>) -> i64 {
        let count = self.store.shard_count();
        match op.key() {
            Some(key) => self.run_on(shard_of(key, count), &op, out),
            None => (0..count).map(|i| self.run_on(i, &op, out)).sum(),
        }
    }

    fn run_on(&mut self, index: usize, op: &Op<&[u8]>, out: &mut Vec<u8>) -> i64 {
        match &self.store.shards {
            Shards::Locks(shards) => shards[index].lock().apply(op.as_slices(), out),
            Shards::Owners(senders) => {
                let request = Request::Op {
                    op: op.to_owned(),
                    out: std::mem::take(out),
                    reply: self.reply_tx.clone(),
                };
                if senders[index].send(request).is_err() {
                    return 0;
                }
                match self.reply_rx.recv() {
                    Ok((n, filled)) => {
                        *out = filled;
                        n
                    }
                    Err(_) => 0,
                }
            }
        }
    }
}
