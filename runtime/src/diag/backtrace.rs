//! Backtraces of parked goroutines for the dump (`dump.rs`), taken from a
//! copy of their stacks without stopping anything.
//!
//! ```text
//! goroutine 3 [IO wait]:
//! goro_runtime::sched::schedule::park
//! goro_runtime::net::poll_desc::Pollable<S>::wait
//! goro_runtime::net::poll_desc::Pollable<S>::read_stream
//! goro_runtime::sched::task::Cell<F,T>::run
//! goro_runtime::sched::schedule::goroutine_entry
//! created by runtime/tests/diagnostics.rs:330:13
//! ```
//!
//! (a `--release` build without line tables; with them, each frame gets a
//! `\tfile:line` line and inlined frames appear: README, "Diagnosing a
//! running daemon").
//!
//! # How
//!
//! A parked (Waiting) goroutine is a saved stack pointer and a frozen stack:
//! `arch::switch` pushed rbp, rbx and its resume address below the caller's
//! frames, and nothing runs on that stack until someone `ready`s the G.
//! For each Waiting G the dump:
//!
//! 1. reads the G's park counter (`G::park_seq`, Acquire), then its status
//!    (Acquire), which must be Waiting, and its stack top;
//! 2. reads the saved stack pointer `G::sp` and copies the stack from it up
//!    to the top, at most [`MAX_COPY`] bytes, with `process_vm_readv` on our
//!    own pid (`sys::memory`): the kernel does the copy, so a stack that was
//!    unmapped meanwhile (the G finished and its stack was freed) is an
//!    `EFAULT`, never a fault, and the owner's concurrent writes are not a
//!    Rust data race (nothing reads that memory through a Rust pointer);
//! 3. re-reads status, park counter and id: if any changed, the copy may
//!    mix two states of the stack, and the dump says "moved while the dump
//!    read it" instead of a backtrace;
//! 4. recovers rip, rsp and rbp from the three saved words
//!    (`arch::saved_registers`) and unwinds **the copy** with DWARF CFI
//!    (`framehop`, over each loaded object's `.eh_frame_hdr`/`.eh_frame`,
//!    found through `dl_iterate_phdr` and copied under the loader's lock),
//!    stopping at the return address into `goroutine_start`, the goroutine's
//!    first frame;
//! 5. symbolizes the return addresses with `backtrace::resolve` (function,
//!    and file:line where the binary has line tables; inlined frames too).
//!
//! The unwinder reads only the copy: a wrong word can make it print a wrong
//! frame or stop early, never touch memory that is not ours.
//!
//! # Why the re-check is enough
//!
//! Every episode of Waiting starts with `park` bumping the park counter
//! (Release) while the G still runs, then `finish_switch` storing Waiting
//! (Release) after the switch has written `sp`; it ends with `ready`
//! storing Runnable before any M can switch onto the stack. So:
//!
//! - seeing Waiting (Acquire) in step 1 means `sp` and the frames below it
//!   are that park's (the switch wrote them before the store);
//! - if step 3 sees the same counter and Waiting again, no `ready` happened
//!   in between: a `ready`, a resume and a new park would have bumped the
//!   counter first, and the counter's Release/Acquire pair means the later
//!   read sees it. The id check catches a G recycled for a new goroutine.
//! - The copy in step 2 lies between the two reads. A resumed G writes its
//!   stack only after the Runnable store (x86-64 makes stores visible in
//!   program order, and the syscall is a full barrier on our side), so a
//!   copy that saw such a write is followed by a step 3 that sees the change.
//!
//! One exception is harmless: a park's `unlock` closure lives in the parked
//! G's frame and is called from another stack after the Waiting store, so
//! its captured state may change under the copy. Those are data bytes of
//! `park`'s frame, not return addresses or saved registers.
//!
//! # What is not traced, and says so
//!
//! - **Running** goroutines: their stack belongs to their M and changes
//!   every instant (Go prints "goroutine running on other thread; stack
//!   unavailable" too).
//! - **Runnable** goroutines: they may start running at any moment, and
//!   nothing counts their switches (a counter on the yield path would cost
//!   every yield; parks are rarer and already write the G's line).
//! - A stack deeper than [`MAX_COPY`] bytes, unwind information missing for
//!   a frame (a JIT, a stripped `.eh_frame`), or a copy that failed: the
//!   backtrace ends with one line saying why.
//!
//! # Cost
//!
//! Nothing on the scheduler paths but the park counter: one load and one
//! store per park on a cache line the park writes anyway (`parked_at`).
//! The dump itself rebuilds the module list, copies every module's unwind
//! tables (a few MiB at most) and each parked stack (typically about a
//! KiB), and symbolizes, on the diagnostics thread or on a helper thread
//! (`dump.rs`). Measured: 6–10 ms for 1,000 goroutines parked on a channel
//! (23 ms for the first dump of a binary with line tables, which loads
//! them).
//!
//! # Rejected
//!
//! - **Frame-pointer chains.** The build does not force frame pointers, so
//!   a chain stops after a frame or two; forcing them costs every function
//!   a register and the hot paths a few percent.
//! - **Stopping the world** (Go's way). goro has no safe points at which
//!   every M can be stopped cheaply, and a dump must not stall a serving
//!   daemon; a parked G is already stopped.
//! - **Switching to the G and unwinding in place** (running the unwinder on
//!   its stack, on some M). It needs the G's owner to cooperate: the dump
//!   would have to take the G out of its wait queue, or race the waker; it
//!   would also run symbolization on a small goroutine stack and add a
//!   branch to the resume path.
//! - **Reading the stack through a plain pointer.** The owner may resume
//!   and write it, or its stack may be unmapped, between the status check
//!   and the read: a data race, or a SIGSEGV inside the dump.
//! - **libgcc's `_Unwind_Backtrace` / `backtrace::trace`.** They unwind the
//!   calling thread only; there is no way to hand them another context.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{fence, Ordering};

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};

use crate::arch;
use crate::sched::g::{GRef, Status};
use crate::sys::memory;

/// The most stack bytes copied per goroutine (from the saved stack pointer
/// up). A parked goroutine typically uses about a KiB.
pub(crate) const MAX_COPY: usize = 64 * 1024;

/// The most frames printed per goroutine (Go prints 100 as well).
const MAX_FRAMES: usize = 100;

/// A parked goroutine's stack, copied (module doc, steps 1–3).
pub(crate) struct StackCopy {
    /// The saved stack pointer: the address of `bytes[0]`.
    sp: usize,
    bytes: Vec<u8>,
    /// The copy stops below the stack's top (deeper than `MAX_COPY`).
    truncated: bool,
}

/// Copies a Waiting goroutine's stack (module doc). `id` is the id the
/// caller read first. The error says, in one line, why there is no copy.
pub(crate) fn capture(g: GRef, id: u64) -> Result<StackCopy, String> {
    let seq = g.park_seq();
    if g.status() != Status::Waiting {
        return Err("not parked any more when the dump reached it".into());
    }
    let top = g.stack_top();
    let sp = memory::read_own_word(g.sp_address())
        .map_err(|e| format!("saved stack pointer unreadable ({e})"))?;
    if sp == 0 || sp >= top || top - sp < arch::SAVED_FRAME_BYTES {
        return Err(moved_or(
            g,
            id,
            seq,
            "saved stack pointer outside its stack",
        ));
    }
    let len = (top - sp).min(MAX_COPY);
    let mut bytes = vec![0u8; len];
    if let Err(error) = memory::read_own_memory(sp, &mut bytes) {
        return Err(moved_or(g, id, seq, &format!("stack unreadable ({error})")));
    }
    // The copy before the re-check (module doc); the syscall orders it in
    // practice, the fence says so.
    fence(Ordering::Acquire);
    if !unchanged(g, id, seq) {
        return Err(MOVED.into());
    }
    Ok(StackCopy {
        sp,
        bytes,
        truncated: top - sp > MAX_COPY,
    })
}

const MOVED: &str = "moved while the dump read it: no backtrace";

fn unchanged(g: GRef, id: u64, seq: u32) -> bool {
    g.status() == Status::Waiting && g.park_seq() == seq && g.id() == id
}

/// `reason`, unless the goroutine moved, which explains it better.
fn moved_or(g: GRef, id: u64, seq: u32, reason: &str) -> String {
    if unchanged(g, id, seq) {
        reason.into()
    } else {
        MOVED.into()
    }
}

/// How an unwind ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// At the goroutine's first frame: the whole stack.
    Entry,
    /// The unwinder found no caller before the first frame.
    Stopped,
    /// An unwinding error (no unwind information, a word outside the copy).
    Error(String),
    /// More than `MAX_FRAMES` frames.
    Elided,
}

/// One dump's unwinder and symbol cache (module doc, steps 4–5).
pub(crate) struct Tracer {
    unwinder: UnwinderX86_64<Vec<u8>>,
    cache: Box<CacheX86_64>,
    /// Lookup address → its frames (inlined ones first), each `(function,
    /// file:line if known)`.
    symbols: HashMap<u64, Vec<(String, Option<String>)>>,
    /// Whether some frame had no file:line (the build has no line tables).
    pub(crate) missing_lines: bool,
}

impl Tracer {
    /// Describes every loaded object to the unwinder (module doc).
    pub(crate) fn new() -> Tracer {
        let mut unwinder = UnwinderX86_64::new();
        for object in memory::loaded_objects(eh_frame_address) {
            let (Some((hdr_address, hdr)), Some((eh_address, eh_frame))) =
                (object.eh_frame_hdr, object.eh_frame)
            else {
                continue;
            };
            // framehop's addresses: "SVMA" = address in the ELF file (the
            // load bias subtracted), "AVMA" = address in memory.
            let svma = |address: usize, len: usize| {
                let start = (address - object.bias) as u64;
                start..start + len as u64
            };
            let info = ExplicitModuleSectionInfo {
                base_svma: 0,
                eh_frame_hdr_svma: Some(svma(hdr_address, hdr.len())),
                eh_frame_hdr: Some(hdr),
                eh_frame_svma: Some(svma(eh_address, eh_frame.len())),
                eh_frame: Some(eh_frame),
                ..Default::default()
            };
            let range = object.range.0 as u64..object.range.1 as u64;
            unwinder.add_module(Module::new(object.name, range, object.bias as u64, info));
        }
        Tracer {
            unwinder,
            cache: Box::default(),
            symbols: HashMap::new(),
            missing_lines: false,
        }
    }

    /// Appends the backtrace of `copy` to `out`: `function\n\tfile:line\n`
    /// per frame, and a line saying why if it ends early.
    pub(crate) fn write(&mut self, copy: &StackCopy, out: &mut String) {
        let (frames, end) = self.unwind(copy);
        for frame in frames {
            // backtrace::resolve looks up `address - 1`, right for a return
            // address; the first frame's own address is exact.
            let address = frame.address_for_lookup() + 1;
            let symbols = self
                .symbols
                .entry(address)
                .or_insert_with(|| symbolize(address));
            for (function, place) in symbols.iter() {
                let _ = writeln!(out, "{function}");
                match place {
                    Some(place) => {
                        let _ = writeln!(out, "\t{place}");
                    }
                    None => self.missing_lines = true,
                }
            }
        }
        match end {
            End::Entry => {}
            End::Elided => out.push_str("...additional frames elided...\n"),
            End::Stopped => out.push_str("\t(backtrace ends before the goroutine's first frame)\n"),
            End::Error(error) if copy.truncated => {
                let _ = writeln!(
                    out,
                    "\t(backtrace cut: only the stack's top {} KiB were copied; {error})",
                    MAX_COPY / 1024
                );
            }
            End::Error(error) => {
                let _ = writeln!(out, "\t(backtrace incomplete: {error})");
            }
        }
    }

    /// The frames of `copy`, innermost first, and how the walk ended.
    fn unwind(&mut self, copy: &StackCopy) -> (Vec<FrameAddress>, End) {
        let Some(saved) = arch::saved_registers(copy.sp, &copy.bytes) else {
            return (Vec::new(), End::Error("saved frame not copied".into()));
        };
        let (low, bytes) = (copy.sp as u64, &copy.bytes);
        let mut read_stack = |address: u64| -> Result<u64, ()> {
            let offset = usize::try_from(address.checked_sub(low).ok_or(())?).map_err(|_| ())?;
            let word = bytes
                .get(offset..offset.checked_add(8).ok_or(())?)
                .ok_or(())?;
            Ok(u64::from_ne_bytes(word.try_into().map_err(|_| ())?))
        };
        let regs = UnwindRegsX86_64::new(saved.rip, saved.rsp, saved.rbp);
        let entry = arch::entry_return_address();
        let mut frames =
            self.unwinder
                .iter_frames(saved.rip, regs, &mut *self.cache, &mut read_stack);
        let mut out = Vec::new();
        loop {
            match frames.next() {
                Ok(Some(frame)) if frame.address() == entry => return (out, End::Entry),
                Ok(Some(_)) if out.len() == MAX_FRAMES => return (out, End::Elided),
                Ok(Some(frame)) => out.push(frame),
                Ok(None) => return (out, End::Stopped),
                Err(error) => return (out, End::Error(error.to_string())),
            }
        }
    }
}

/// The frames at code address `address` (already one past the instruction
/// looked up): inlined functions first, each with file:line if the binary
/// has line tables (without them, `backtrace` finds the symbol table's
/// function only: inlined frames fold into their caller).
fn symbolize(address: u64) -> Vec<(String, Option<String>)> {
    let mut frames = Vec::new();
    backtrace::resolve(address as *mut std::ffi::c_void, |symbol| {
        let function = match symbol.name() {
            Some(name) => format!("{name:#}"),
            None => "??".into(),
        };
        let place = match (symbol.filename(), symbol.lineno()) {
            (Some(file), Some(line)) => Some(format!("{}:{line}", file.display())),
            _ => None,
        };
        frames.push((function, place));
    });
    if frames.is_empty() {
        frames.push((format!("?? ({:#x})", address - 1), None));
    }
    frames
}

/// `.eh_frame`'s address from a copy of `.eh_frame_hdr` at `hdr_address`
/// (its `eh_frame_ptr` field, in whatever encoding the linker chose).
fn eh_frame_address(hdr_address: usize, hdr: &[u8]) -> Option<usize> {
    let bases = gimli::BaseAddresses::default().set_eh_frame_hdr(hdr_address as u64);
    let parsed = gimli::EhFrameHdr::new(hdr, gimli::NativeEndian)
        .parse(&bases, 8)
        .ok()?;
    match parsed.eh_frame_ptr() {
        gimli::Pointer::Direct(address) => usize::try_from(address).ok(),
        gimli::Pointer::Indirect(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_loaded_object_with_unwind_tables_is_found() {
        let objects = memory::loaded_objects(eh_frame_address);
        let with_tables = objects.iter().filter(|o| o.eh_frame.is_some()).count();
        // The executable and libc at least.
        assert!(with_tables >= 2, "{}", objects.len());
        let here = every_loaded_object_with_unwind_tables_is_found as *const () as usize;
        let main = objects
            .iter()
            .find(|o| o.range.0 <= here && here < o.range.1)
            .expect("the test binary is a loaded object");
        let (_, eh_frame) = main.eh_frame.as_ref().unwrap();
        assert!(eh_frame.len() > 1000, "{}", eh_frame.len());
    }
}
