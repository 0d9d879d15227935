//! The goroutine descriptor (G) and its status state machine.
//!
//! # Status as an ownership contract
//!
//! `G::status` is an atomic; each value says who owns the G's mutable fields
//! (`sp`, `stack`, `task`, `name`) and its stack:
//!
//! - [`Status::Idle`]: on a free list (per-P or global) or just allocated. The
//!   free list owns it; its stack holds no frames and may be trimmed.
//! - [`Status::Runnable`]: in exactly one run queue (a P's `runnext`, a P's
//!   local deque or the global injector). Not executing; the queue owns it and
//!   the M that dequeues it becomes the owner.
//! - [`Status::Running`]: executing on the M whose `curg` it is. That M owns
//!   the G and its stack. Only that M may switch it out.
//! - [`Status::Waiting`]: parked by `park`. Its stack holds live frames, but
//!   nobody runs it; exactly one party — whoever the park's `unlock` published
//!   it to — may call `ready`, which moves it to `Runnable`.
//! - [`Status::Dead`]: its closure returned; it is on its way back to a free
//!   list (the transition to `Idle` happens on another stack).
//!
//! Transitions: Idle → Runnable (spawn) → Running (an M picks it) → Runnable
//! (yield) | Waiting (park) | Dead (exit). Waiting → Runnable (`ready`, a
//! only by the party that dequeued the waiter, so a checked store; a second
//! `ready` is a fatal runtime bug). Dead → Idle.
//!
//! G structs are never freed while their runtime lives (as Go's `allgs`): they
//! are recycled together with their stacks. A [`GRef`] therefore stays valid
//! as long as its runtime's `Shared` does, which makes a late `ready` on a
//! goroutine of a shut-down runtime harmless (see `runtime.rs`).

use super::shared::Shared;
use super::task::TaskRef;
use crate::stack::Stack;
use std::cell::UnsafeCell;
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use super::label::Label;

/// The G status values; see the module doc for who owns the G in each.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// On a free list; no frames on its stack.
    Idle = 0,
    /// In a run queue, not executing.
    Runnable = 1,
    /// Executing on an M.
    Running = 2,
    /// Parked; one registered party will `ready` it.
    Waiting = 3,
    /// Finished; being recycled.
    Dead = 4,
}

impl Status {
    fn from_u8(value: u8) -> Status {
        match value {
            0 => Status::Idle,
            1 => Status::Runnable,
            2 => Status::Running,
            3 => Status::Waiting,
            _ => Status::Dead,
        }
    }
}

/// Why a goroutine is parked. Each reason is distinct; the goroutine dump
/// shows it (Go's `waitReason`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitReason {
    /// Not waiting.
    None = 0,
    /// In `JoinHandle::join`.
    Join = 1,
    /// In `WaitGroup::wait`.
    WaitGroup = 2,
    /// Blocked sending on a channel.
    ChanSend = 3,
    /// Blocked receiving from a channel.
    ChanReceive = 4,
    /// In `select!` with no ready case.
    Select = 5,
    /// In `goro::time::sleep`.
    Sleep = 6,
    /// Waiting for a `sync::Mutex` (or an `RwLock` writer's turn).
    Mutex = 7,
    /// Waiting for an `RwLock` read or write lock.
    RwLock = 8,
    /// In `Condvar::wait`.
    Cond = 9,
    /// Waiting for a `Semaphore` permit.
    Semaphore = 10,
    /// In `Barrier::wait`.
    Barrier = 11,
    /// Waiting for another goroutine's `Once` initialiser.
    Once = 12,
    /// Waiting for a socket to become readable (netpoll).
    IoRead = 13,
    /// Waiting for a socket to become writable (netpoll).
    IoWrite = 14,
}

impl WaitReason {
    /// The text Go's goroutine dump would show.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WaitReason::None => "",
            WaitReason::Join => "join",
            WaitReason::WaitGroup => "sync.WaitGroup.Wait",
            WaitReason::ChanSend => "chan send",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::Select => "select",
            WaitReason::Sleep => "sleep",
            WaitReason::Mutex => "sync.Mutex.Lock",
            WaitReason::RwLock => "sync.RWMutex.Lock",
            WaitReason::Cond => "sync.Cond.Wait",
            WaitReason::Semaphore => "semacquire",
            WaitReason::Barrier => "sync.Barrier.Wait",
            WaitReason::Once => "sync.Once.Do",
            WaitReason::IoRead => "IO wait",
            WaitReason::IoWrite => "IO wait",
        }
    }
}

/// A goroutine's descriptor. Other modules hold [`GRef`]s and pass them to
/// `ready`.
pub(crate) struct G {
    id: AtomicU64,
    status: AtomicU8,
    wait_reason: AtomicU8,
    /// The runtime this G belongs to; outlives the G (see module doc).
    pub(crate) shared: *const Shared,
    /// Saved stack pointer while not running. Owner: see status contract.
    pub(crate) sp: UnsafeCell<usize>,
    stack: UnsafeCell<Option<Stack>>,
    task: UnsafeCell<Option<TaskRef>>,
    name: UnsafeCell<Option<Box<str>>>,
    /// Whether the idle stack was already given back with MADV_FREE.
    trimmed: UnsafeCell<bool>,
    /// Bytes below the stack top where this G starts ("stack colouring").
    color: usize,
    /// Diagnostics, readable without owning the G (`label.rs`): the name's
    /// copy, where `go` was called, and the coarse second of the last park.
    label: Label,
    created_at: AtomicPtr<Location<'static>>,
    parked_at: AtomicU32,
    /// Counts parks (written by the owner only, read by the dump to tell
    /// one park from the next: `diag/backtrace.rs`).
    park_seq: AtomicU32,
    /// The current stack's top (0 without a stack), for the dump.
    stack_top: AtomicUsize,
}

/// Stack colours: a G starts `color * COLOR_STEP` bytes below its stack top.
///
/// Every stack top sits at the same offset within a page, so without colours
/// the hot top lines of all goroutines compete for the same L1 set (the set
/// index is address bits 6–11) and few L2 sets. On the spawn+exit benchmark
/// (1,000 goroutines in flight) that showed as a cache miss on every first
/// touch of a stack. 32 colours of 64 bytes spread them over 32 sets and
/// cost at most 1,984 bytes of the first page; a parked goroutine uses about
/// 700 bytes of stack (measured), so it still fits in one page and RSS per
/// parked goroutine is unchanged.
const COLORS: usize = 32;
const COLOR_STEP: usize = 64;

/// How much of a parked G's stack [`G::prefetch_context`] asks for, from its
/// saved stack pointer up: the frames popped first on resume (the switch's,
/// `park`'s). A parked G uses about 700 bytes (see the colours above); more
/// prefetches cost more than they saved (p.rs "Looking one G ahead").
pub(crate) const PREFETCH_STACK_BYTES: usize = 256;

fn next_color() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // 13 is coprime to 32: consecutive Gs get far-apart colours.
    (NEXT.fetch_add(13, Ordering::Relaxed) % COLORS) * COLOR_STEP
}

// SAFETY: G is shared between threads by design. Atomic fields are Sync; the
// UnsafeCell fields are only touched by the G's current owner as defined by
// the status contract in the module doc, and ownership moves between threads
// only through Release/Acquire operations (queue push/pop, status CAS,
// the publishing done by a park's unlock).
unsafe impl Sync for G {}
// SAFETY: as above; nothing in G is tied to a thread.
unsafe impl Send for G {}

impl G {
    pub(crate) fn new(shared: *const Shared, stack: Stack) -> G {
        let top = stack.top() as usize;
        G {
            id: AtomicU64::new(0),
            status: AtomicU8::new(Status::Idle as u8),
            wait_reason: AtomicU8::new(WaitReason::None as u8),
            shared,
            sp: UnsafeCell::new(0),
            stack: UnsafeCell::new(Some(stack)),
            task: UnsafeCell::new(None),
            name: UnsafeCell::new(None),
            trimmed: UnsafeCell::new(false),
            color: next_color(),
            label: Label::default(),
            created_at: AtomicPtr::new(std::ptr::null_mut()),
            parked_at: AtomicU32::new(0),
            park_seq: AtomicU32::new(0),
            stack_top: AtomicUsize::new(top),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id.load(Ordering::Relaxed)
    }

    pub(crate) fn status(&self) -> Status {
        Status::from_u8(self.status.load(Ordering::Acquire))
    }

    /// A transition made by the G's current owner (no other party may race).
    pub(crate) fn set_status(&self, status: Status) {
        self.status.store(status as u8, Ordering::Release);
    }

    /// Waiting → Runnable; false if the G was not Waiting.
    pub(crate) fn try_make_runnable(&self) -> bool {
        self.status
            .compare_exchange(
                Status::Waiting as u8,
                Status::Runnable as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    pub(crate) fn wait_reason(&self) -> WaitReason {
        match self.wait_reason.load(Ordering::Relaxed) {
            1 => WaitReason::Join,
            2 => WaitReason::WaitGroup,
            3 => WaitReason::ChanSend,
            4 => WaitReason::ChanReceive,
            5 => WaitReason::Select,
            6 => WaitReason::Sleep,
            7 => WaitReason::Mutex,
            8 => WaitReason::RwLock,
            9 => WaitReason::Cond,
            10 => WaitReason::Semaphore,
            11 => WaitReason::Barrier,
            12 => WaitReason::Once,
            13 => WaitReason::IoRead,
            14 => WaitReason::IoWrite,
            _ => WaitReason::None,
        }
    }

    pub(crate) fn set_wait_reason(&self, reason: WaitReason) {
        if reason != WaitReason::None {
            // A relaxed load of a line written once a second (diag/clock.rs).
            self.parked_at
                .store(crate::diag::clock::coarse_secs(), Ordering::Relaxed);
            // A new park: only the owner writes the counter, so a load and a
            // store (no locked instruction). Release, so a reader that sees
            // the new count also sees that the G had left Waiting (its last
            // `ready`) before it: pairs with the Acquire in `park_seq`. On
            // x86-64 both are plain moves.
            let seq = self.park_seq.load(Ordering::Relaxed).wrapping_add(1);
            self.park_seq.store(seq, Ordering::Release);
        }
        self.wait_reason.store(reason as u8, Ordering::Relaxed);
    }

    /// How many times the G has parked (wrapping). Readable by anyone.
    pub(crate) fn park_seq(&self) -> u32 {
        self.park_seq.load(Ordering::Acquire)
    }

    /// Starts loading the stack lines this G's resume will pop: from its
    /// saved stack pointer up to its stack top, at most
    /// [`PREFETCH_STACK_BYTES`]. Nothing for a G that has not run yet
    /// (its first switch only stores to its stack).
    ///
    /// # Safety
    /// The caller owns the G (just dequeued it, and has not published it
    /// again), so `sp` is not being written.
    pub(crate) unsafe fn prefetch_context(&self) {
        // SAFETY: the caller owns the G (see above).
        let sp = unsafe { *self.sp.get() };
        if sp == 0 {
            return;
        }
        let used_top = self.stack_top.load(Ordering::Relaxed) - self.color;
        let end = used_top.min(sp + PREFETCH_STACK_BYTES);
        let mut line = sp & !63;
        while line < end {
            crate::arch::prefetch(line);
            line += 64;
        }
    }

    /// The top of the G's current stack (0 if it has none). Readable by
    /// anyone; the stack may be unmapped by the time the caller uses it.
    pub(crate) fn stack_top(&self) -> usize {
        self.stack_top.load(Ordering::Acquire)
    }

    /// The address of the saved stack pointer, for the dump, which reads it
    /// with `process_vm_readv` (`diag/backtrace.rs`), never through Rust.
    pub(crate) fn sp_address(&self) -> usize {
        self.sp.get() as usize
    }

    /// The coarse second (`diag::clock`) of the G's last park.
    pub(crate) fn parked_at(&self) -> u32 {
        self.parked_at.load(Ordering::Relaxed)
    }

    /// Where the G was spawned, if known. Readable by anyone.
    pub(crate) fn created_at(&self) -> Option<&'static Location<'static>> {
        // SAFETY: only `&'static Location`s are stored (in `prepare`).
        unsafe { self.created_at.load(Ordering::Relaxed).as_ref() }
    }

    /// The name's copy for diagnostics. Readable by anyone (`label.rs`).
    pub(crate) fn label(&self) -> Option<String> {
        self.label.read()
    }

    /// Prepares an Idle G to run `task`. The stack is not touched: `sp == 0`
    /// marks a G that has not started, which the scheduler enters with
    /// `arch::start` instead of `arch::switch`.
    ///
    /// # Safety
    /// The caller owns the G (it is Idle and off every list) and it has a stack.
    pub(crate) unsafe fn prepare(
        &self,
        id: u64,
        name: Option<Box<str>>,
        location: &'static Location<'static>,
        task: TaskRef,
    ) {
        self.label.set(name.as_deref());
        let location: *const Location<'static> = location;
        self.created_at
            .store(location.cast_mut(), Ordering::Relaxed);
        self.id.store(id, Ordering::Relaxed);
        self.set_wait_reason(WaitReason::None);
        // SAFETY: the caller owns the G, so no one else touches these cells.
        unsafe {
            *self.name.get() = name;
            *self.task.get() = Some(task);
            *self.trimmed.get() = false;
            *self.sp.get() = 0;
        }
    }

    /// Where a fresh G starts: its stack top less its colour (16-aligned).
    ///
    /// # Safety
    /// The caller owns the G.
    pub(crate) unsafe fn start_top(&self) -> *mut u8 {
        // SAFETY: per the caller's ownership.
        let top = unsafe { (*self.stack.get()).as_ref() }
            .expect("goro: a runnable G has no stack")
            .top();
        top.wrapping_sub(self.color)
    }

    /// The task of the running G.
    ///
    /// # Safety
    /// The caller owns the G (it is Running on this M, or Waiting/Runnable and
    /// no M can run it any more, as at shutdown).
    pub(crate) unsafe fn task(&self) -> Option<&TaskRef> {
        // SAFETY: per the caller's ownership.
        unsafe { (*self.task.get()).as_ref() }
    }

    /// Drops the task and the name once the closure has returned.
    ///
    /// # Safety
    /// The caller owns the G.
    pub(crate) unsafe fn clear_task(&self) {
        // SAFETY: per the caller's ownership.
        unsafe {
            *self.task.get() = None;
            *self.name.get() = None;
        }
    }

    /// The G's name, if `Builder::name` set one.
    ///
    /// # Safety
    /// The G must not be re-prepared concurrently (it is Running on the
    /// calling M, or otherwise owned by the caller).
    pub(crate) unsafe fn name(&self) -> Option<&str> {
        // SAFETY: per the caller's ownership.
        unsafe { (*self.name.get()).as_deref() }
    }

    /// The G's stack.
    ///
    /// # Safety
    /// As for [`G::name`].
    pub(crate) unsafe fn stack(&self) -> Option<&Stack> {
        // SAFETY: per the caller's ownership.
        unsafe { (*self.stack.get()).as_ref() }
    }

    /// Replaces the stack (dropping, i.e. unmapping, the old one).
    ///
    /// # Safety
    /// The caller owns the G and no frame lives on the old stack.
    pub(crate) unsafe fn set_stack(&self, stack: Option<Stack>) {
        let top = stack.as_ref().map_or(0, |s| s.top() as usize);
        self.stack_top.store(top, Ordering::Release);
        // SAFETY: per the caller's ownership.
        unsafe { *self.stack.get() = stack };
    }

    /// Trims the idle stack once (MADV_FREE below the kept top).
    ///
    /// # Safety
    /// The caller owns the Idle G.
    pub(crate) unsafe fn trim_stack(&self) {
        // SAFETY: per the caller's ownership, the stack holds no frames.
        unsafe {
            if !*self.trimmed.get() {
                if let Some(stack) = (*self.stack.get()).as_ref() {
                    stack.trim();
                }
                *self.trimmed.get() = true;
            }
        }
    }

    /// Whether `trim_stack` would do work.
    ///
    /// # Safety
    /// The caller owns the Idle G.
    pub(crate) unsafe fn needs_trim(&self) -> bool {
        // SAFETY: per the caller's ownership.
        unsafe { !*self.trimmed.get() }
    }
}

/// A pointer to a G: what run queues, free lists and waiters hold.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct GRef(NonNull<G>);

// SAFETY: a GRef is a handle; which thread may use the G behind it is governed
// by the status contract, not by the handle's location.
unsafe impl Send for GRef {}
// SAFETY: as above.
unsafe impl Sync for GRef {}

impl GRef {
    pub(crate) fn from_box(g: Box<G>) -> GRef {
        GRef(NonNull::from(Box::leak(g)))
    }

    pub(crate) fn as_ptr(self) -> *mut G {
        self.0.as_ptr()
    }

    /// Rebuilds the handle from the pointer the first-run frame carries.
    ///
    /// # Safety
    /// `ptr` must come from [`GRef::as_ptr`].
    pub(crate) unsafe fn from_ptr(ptr: *mut G) -> GRef {
        // SAFETY: the caller passes a pointer obtained from a live GRef.
        GRef(unsafe { NonNull::new_unchecked(ptr) })
    }

    /// Frees the G struct.
    ///
    /// # Safety
    /// Only at runtime teardown, when no other GRef to it will be used again.
    pub(crate) unsafe fn free(self) {
        // SAFETY: allocated by `from_box`; the caller guarantees uniqueness.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

impl std::ops::Deref for GRef {
    type Target = G;
    fn deref(&self) -> &G {
        // SAFETY: G structs live as long as their runtime's Shared (module
        // doc), and every GRef in use belongs to a live or leaked runtime.
        unsafe { self.0.as_ref() }
    }
}
