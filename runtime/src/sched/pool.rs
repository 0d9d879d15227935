//! Recycling Gs together with their stacks (Go's `gfget`/`gfput`).
//!
//! Spawn takes a dead G from the P's cache, then from the global pool in a
//! batch, and maps a new stack only when both are empty, so spawn makes no
//! system call in steady state. Exit puts the G back on the P's cache; past
//! [`FREE_CACHE_MAX`] half of the cache moves to the global pool.
//!
//! Only default-size stacks are pooled. A G with a custom `stack_size` has its
//! stack unmapped at exit and its bare struct parked in `bare`, to be given a
//! new stack by a later spawn.
//!
//! Trimming (MADV_FREE below the top `KEEP_RESIDENT` bytes) never runs on the
//! spawn or exit path: an M trims a bounded number of idle stacks just before
//! it goes to sleep (`schedule.rs`), when it has nothing else to do.

use std::io;
use std::sync::Mutex;

use super::g::{GRef, Status, G};
use super::p::{FREE_CACHE_MAX, P};
use super::shared::Shared;
use crate::stack::Stack;

/// Stacks trimmed per idle episode, to bound the delay before an M sleeps.
pub const TRIM_BATCH: usize = 64;

#[derive(Default)]
pub(crate) struct GlobalPool {
    inner: Mutex<Lists>,
}

#[derive(Default)]
struct Lists {
    /// Idle Gs with a default-size stack that may have gone deep.
    dirty: Vec<GRef>,
    /// Idle Gs whose stack was trimmed since it last ran.
    clean: Vec<GRef>,
    /// Idle Gs without a stack.
    bare: Vec<GRef>,
}

impl Lists {
    fn pop(&mut self) -> Option<GRef> {
        self.dirty.pop().or_else(|| self.clean.pop())
    }
}

impl GlobalPool {
    fn lock(&self) -> super::locks::SectionGuard<'_, Lists> {
        super::locks::lock(&self.inner)
    }
}

/// An Idle G with a stack of `stack_size` usable bytes, owned by the caller.
///
/// `p` is the caller's P if it holds one.
pub(crate) fn get(shared: &Shared, p: Option<&P>, stack_size: usize) -> io::Result<GRef> {
    if stack_size == shared.config.stack_size {
        if let Some(p) = p {
            // SAFETY: the caller holds `p`; the reference ends in this block.
            let cache = unsafe { p.free() };
            if let Some(g) = cache.pop() {
                return Ok(g);
            }
            let mut lists = shared.pool.lock();
            while cache.len() < FREE_CACHE_MAX / 2 {
                match lists.pop() {
                    Some(g) => cache.push(g),
                    None => break,
                }
            }
            drop(lists);
            if let Some(g) = cache.pop() {
                return Ok(g);
            }
        } else if let Some(g) = shared.pool.lock().pop() {
            return Ok(g);
        }
    }
    let stack = Stack::new(stack_size)?;
    super::stats::count_stack_mapped(shared, stack.usable());
    let bare = shared.pool.lock().bare.pop();
    if let Some(g) = bare {
        // SAFETY: a bare G is Idle and owned by us now; it has no frames.
        unsafe { g.set_stack(Some(stack)) };
        return Ok(g);
    }
    let g = GRef::from_box(Box::new(G::new(shared, stack)));
    super::locks::lock(&shared.all_gs).push(g);
    Ok(g)
}

/// Returns a Dead G to the pool. The caller owns it and runs on another stack.
pub(crate) fn put(shared: &Shared, p: Option<&P>, g: GRef) {
    g.set_status(Status::Idle);
    // SAFETY: the caller owns the dead G and is not running on its stack.
    let usable = unsafe { g.stack() }.map(Stack::usable);
    if usable != Some(shared.config.stack_size) {
        super::stats::count_stack_unmapped(shared, usable.unwrap_or(0));
        // SAFETY: as above: no frames live on the old stack.
        unsafe { g.set_stack(None) };
        shared.pool.lock().bare.push(g);
        return;
    }
    match p {
        Some(p) => {
            // SAFETY: the caller holds `p`.
            let cache = unsafe { p.free() };
            cache.push(g);
            if cache.len() >= FREE_CACHE_MAX {
                let at = cache.len() / 2;
                shared.pool.lock().dirty.extend(cache.drain(at..));
            }
        }
        None => shared.pool.lock().dirty.push(g),
    }
}

/// Trims up to [`TRIM_BATCH`] idle stacks: first the P's cache, then a batch
/// taken from the global pool's dirty list (trimmed outside the pool lock, so
/// spawners on other Ps are not held up). Called by an M about to sleep.
pub(crate) fn trim_idle(shared: &Shared, p: &P) {
    let mut budget = TRIM_BATCH;
    // SAFETY: the caller holds `p`.
    let cache = unsafe { p.free() };
    for g in cache.iter() {
        if budget == 0 {
            return;
        }
        // SAFETY: Gs in the cache are Idle and owned by the P's holder.
        if unsafe { g.needs_trim() } {
            // SAFETY: as above.
            unsafe { g.trim_stack() };
            budget -= 1;
        }
    }
    let batch: Vec<GRef> = {
        let mut lists = shared.pool.lock();
        let at = lists.dirty.len().saturating_sub(budget);
        lists.dirty.drain(at..).collect()
    };
    if batch.is_empty() {
        return;
    }
    for g in &batch {
        // SAFETY: taken off the pool under its lock, so we own these Idle Gs.
        unsafe { g.trim_stack() };
    }
    shared.pool.lock().clean.extend(batch);
}
