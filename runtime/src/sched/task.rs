//! A goroutine's task cell: its closure, its result slot and the join
//! protocol, in one allocation shared by the G and its [`JoinHandle`].
//!
//! # Layout and ownership
//!
//! ```text
//! #[repr(C)] Cell<F, T> = Prefix<T> { Header { refs, state, vtable }, result: Option<thread::Result<T>> }
//!                         + func: Option<F>
//! ```
//!
//! The result sits at an offset that depends only on `T`, so a
//! `JoinHandle<T>` reads it without knowing `F`; the vtable (run, abandon,
//! destroy) is the only place that knows both. `refs` counts the two owners
//! (the G's [`TaskRef`] and the `JoinHandle`); it starts at 2 with a plain
//! store, so a spawn costs no atomic read-modify-write for it, and the cell's
//! memory comes from the P's block cache (`blocks.rs`). References are never
//! added after creation, so an owner that sees a count of 1 is the last one:
//! it frees without a locked decrement, and a goroutine whose handle is gone
//! (detached) skips the join slot altogether. Measured on the
//! spawn+exit benchmark, this replaced `Arc<dyn Task>` (one extra locked
//! increment, a weak-count decrement, and glibc malloc/free).
//!
//! # The join slot's state machine
//!
//! `Header::state` is one word:
//!
//! - `INCOMPLETE`: the goroutine has not finished; nobody waits.
//! - a pointer to a boxed [`Waiter`] (word-aligned, so never 0, 1 or 2): the
//!   joiner is parked; the completer owns the box once it claims the slot.
//! - `CLAIMED`: a completer is writing the result; joiners spin briefly.
//! - `DONE`: the result is written (Release), the joiner may take it (Acquire).
//!
//! Two parties may try to complete: the goroutine itself, and runtime
//! shutdown abandoning a goroutine that can no longer run. The CAS to
//! `CLAIMED` picks exactly one; the loser drops its result.

use std::alloc::Layout;
use std::any::Any;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::thread;

use super::blocks;
use super::g::WaitReason;
use super::waiter::{block, Waiter};

const INCOMPLETE: usize = 0;
const CLAIMED: usize = 1;
const DONE: usize = 2;

/// The message carried by `join`'s `Err` for a goroutine abandoned when its
/// runtime shut down before it could finish.
pub const ABANDONED: &str = "goro: goroutine abandoned: its runtime shut down before it finished";

struct VTable {
    /// Runs the closure (first run only) and completes the slot.
    run: unsafe fn(NonNull<Header>),
    /// Completes the slot with [`ABANDONED`] and drops a never-run closure.
    abandon: unsafe fn(NonNull<Header>),
    /// Drops the cell's contents and frees it.
    destroy: unsafe fn(NonNull<Header>),
}

#[repr(C)]
struct Header {
    refs: AtomicUsize,
    state: AtomicUsize,
    vtable: &'static VTable,
}

#[repr(C)]
struct Prefix<T> {
    header: Header,
    result: UnsafeCell<Option<thread::Result<T>>>,
}

#[repr(C)]
struct Cell<F, T> {
    prefix: Prefix<T>,
    func: UnsafeCell<Option<F>>,
}

impl<F, T> Cell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    const VTABLE: VTable = VTable {
        run: Self::run,
        abandon: Self::abandon,
        destroy: Self::destroy,
    };

    /// # Safety
    /// `header` is the header of a live `Cell<F, T>`, run only by its G.
    unsafe fn run(header: NonNull<Header>) {
        let cell = header.cast::<Cell<F, T>>();
        // SAFETY: only the goroutine's first run takes the closure.
        let Some(func) = (unsafe { (*cell.as_ref().func.get()).take() }) else {
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(func));
        // A detached goroutine (its JoinHandle dropped, so ours is the only
        // reference left, and none can be created) has no one to hand the
        // result to: skip the slot's compare-exchange and just drop it.
        // SAFETY: the header of a live cell.
        if unsafe { header.as_ref() }.refs.load(Ordering::Acquire) == 1 {
            drop(result);
            return;
        }
        // SAFETY: the prefix of a live cell.
        unsafe { complete(header.cast::<Prefix<T>>(), result) };
    }

    /// # Safety
    /// As `run`, and no M can run the goroutine any more.
    unsafe fn abandon(header: NonNull<Header>) {
        let payload: Box<dyn Any + Send> = Box::new(ABANDONED);
        // SAFETY: the prefix of a live cell.
        if unsafe { complete(header.cast::<Prefix<T>>(), Err(payload)) } {
            let cell = header.cast::<Cell<F, T>>();
            // SAFETY: no one runs the goroutine, so no one else takes `func`.
            drop(unsafe { (*cell.as_ref().func.get()).take() });
        }
    }

    /// # Safety
    /// The last reference to the cell is being released.
    unsafe fn destroy(header: NonNull<Header>) {
        let cell = header.cast::<Cell<F, T>>();
        // SAFETY: last owner: drop the contents, then free the block that
        // `new_task` allocated with this layout.
        unsafe {
            std::ptr::drop_in_place(cell.as_ptr());
            blocks::dealloc(cell.cast(), Layout::new::<Cell<F, T>>());
        }
    }
}

/// Creates the cell for `func`: the G's reference and the join handle.
pub(crate) fn new_task<F, T>(func: F) -> (TaskRef, NonNull<()>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let layout = Layout::new::<Cell<F, T>>();
    let memory = blocks::alloc(layout).cast::<Cell<F, T>>();
    // SAFETY: `memory` is a fresh block with `layout`'s size and alignment.
    unsafe {
        memory.as_ptr().write(Cell {
            prefix: Prefix {
                header: Header {
                    refs: AtomicUsize::new(2),
                    state: AtomicUsize::new(INCOMPLETE),
                    vtable: &Cell::<F, T>::VTABLE,
                },
                result: UnsafeCell::new(None),
            },
            func: UnsafeCell::new(Some(func)),
        })
    };
    (TaskRef(memory.cast()), memory.cast())
}

/// Drops one reference; the last one destroys the cell.
///
/// # Safety
/// The caller owns one reference and does not use it again.
unsafe fn release(header: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the header alive until here.
    let header_ref = unsafe { header.as_ref() };
    // The sole owner frees without a locked instruction: references are
    // never added after creation, so a count of 1 (Acquire: it pairs with the
    // other owner's Release decrement) cannot change under us.
    if header_ref.refs.load(Ordering::Acquire) == 1 {
        // SAFETY: we hold the only reference.
        unsafe { (header_ref.vtable.destroy)(header) };
        return;
    }
    // Release/Acquire: every use by the other owner happens before destroy.
    if header_ref.refs.fetch_sub(1, Ordering::Release) == 1 {
        fence(Ordering::Acquire);
        // SAFETY: we held the last reference.
        unsafe { (header_ref.vtable.destroy)(header) };
    }
}

/// Stores `result` unless someone else completed first; wakes the joiner.
///
/// # Safety
/// `prefix` points into a live cell.
unsafe fn complete<T>(prefix: NonNull<Prefix<T>>, result: thread::Result<T>) -> bool {
    // SAFETY: live cell (caller).
    let prefix = unsafe { prefix.as_ref() };
    let state_word = &prefix.header.state;
    // From CLAIMED to DONE a joiner spins: keep this goroutine from being
    // preempted in between, or a joiner on the same P would spin out the
    // whole slice (or for ever, if it cannot be preempted itself).
    let section = super::locks::Section::enter();
    let mut state = state_word.load(Ordering::Acquire);
    loop {
        if state == DONE || state == CLAIMED {
            return false;
        }
        match state_word.compare_exchange(state, CLAIMED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(actual) => state = actual,
        }
    }
    // SAFETY: we claimed the slot; the joiner reads only after DONE. The
    // slot held `None`, so no user code runs here.
    unsafe { *prefix.result.get() = Some(result) };
    state_word.store(DONE, Ordering::Release);
    drop(section);
    if state != INCOMPLETE {
        // SAFETY: a state that is not INCOMPLETE/CLAIMED/DONE is the joiner's
        // boxed waiter, and claiming the slot gave it to us.
        let waiter = unsafe { Box::from_raw(state as *mut Waiter) };
        waiter.wake();
    }
    true
}

/// The G's reference to its task cell.
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: the cell is shared by exactly two owners on any threads; its
// closure moves to the running goroutine's thread (`F: Send`, checked in
// `new_task`), and its result to the joiner's (`T: Send`); the state word
// orders every access.
unsafe impl Send for TaskRef {}
// SAFETY: as above; `&TaskRef` only allows `run`/`abandon`, whose callers
// guarantee exclusivity (see their docs).
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// Runs the closure and completes the join slot.
    ///
    /// # Safety
    /// Called by the goroutine that owns this task, once.
    pub(crate) unsafe fn run(&self) {
        // SAFETY: the header is live while we hold our reference.
        unsafe { (self.0.as_ref().vtable.run)(self.0) }
    }

    /// Completes the join slot with [`ABANDONED`] if the goroutine has not.
    ///
    /// # Safety
    /// No M can run the goroutine any more (runtime shutdown).
    pub(crate) unsafe fn abandon(&self) {
        // SAFETY: the header is live while we hold our reference.
        unsafe { (self.0.as_ref().vtable.abandon)(self.0) }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { release(self.0) };
    }
}

/// An owned permission to wait for a goroutine and take its result.
///
/// Dropping the handle detaches the goroutine (it keeps running).
pub struct JoinHandle<T> {
    cell: NonNull<Prefix<T>>,
    id: u64,
    _result: PhantomData<T>,
}

// SAFETY: the handle only takes the `T` out (moving it to the joiner's
// thread, hence `T: Send`) after the DONE handshake.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only reads the state word.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    /// `cell` is the second value returned by `new_task::<_, T>`.
    pub(crate) unsafe fn new(cell: NonNull<()>, id: u64) -> JoinHandle<T> {
        JoinHandle {
            cell: cell.cast(),
            id,
            _result: PhantomData,
        }
    }

    fn prefix(&self) -> &Prefix<T> {
        // SAFETY: our reference keeps the cell alive.
        unsafe { self.cell.as_ref() }
    }

    /// Waits for the goroutine to finish. A goroutine parks (its M runs
    /// others meanwhile); a foreign thread blocks.
    ///
    /// Returns `Err(payload)` if the goroutine panicked (the payload of its
    /// panic), or if its runtime shut down first ([`ABANDONED`]).
    pub fn join(self) -> thread::Result<T> {
        let prefix = self.prefix();
        let state = &prefix.header.state;
        loop {
            match state.load(Ordering::Acquire) {
                DONE => {
                    // SAFETY: DONE (Acquire) means the result is written and
                    // no one else touches it; `join` consumes the handle.
                    let result = unsafe { (*prefix.result.get()).take() };
                    return result.expect("goro: join slot emptied twice");
                }
                CLAIMED => std::hint::spin_loop(),
                _ => block(WaitReason::Join, |waiter| {
                    let boxed = Box::into_raw(Box::new(waiter));
                    match state.compare_exchange(
                        INCOMPLETE,
                        boxed as usize,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => true,
                        Err(_) => {
                            // SAFETY: the CAS failed, so the box was never shared.
                            drop(unsafe { Box::from_raw(boxed) });
                            false
                        }
                    }
                }),
            }
        }
    }

    pub(crate) fn with_id(mut self, id: u64) -> JoinHandle<T> {
        self.id = id;
        self
    }

    /// The goroutine's id, as shown by the runtime's diagnostics.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the goroutine has finished (its result is ready).
    pub fn is_finished(&self) -> bool {
        self.prefix().header.state.load(Ordering::Acquire) == DONE
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { release(self.cell.cast()) };
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}
