//! Goroutine stacks: an mmap'd reservation with one guard page below it.
//!
//! ```text
//!   base                 base + page                          top = base + len
//!   | guard (PROT_NONE)  | usable, committed on first touch ... |
//! ```
//!
//! - **Lazy commit.** The mapping is `MAP_PRIVATE | MAP_ANONYMOUS |
//!   MAP_NORESERVE | MAP_STACK`: no page is committed until touched, so RSS
//!   follows the depth a goroutine really uses. Rust cannot move a stack, so the
//!   reservation is the maximum; "growable" means "committed as it grows".
//! - **Guard page.** The lowest page is `mprotect`ed to `PROT_NONE`; running
//!   into it raises SIGSEGV, which `sched::overflow` turns into a clear fatal
//!   message. Rust's stack probes touch every page of a large frame, so a frame
//!   cannot jump over the guard.
//! - **Two VMAs per stack.** The guard splits the mapping, so each stack costs
//!   two entries of `vm.max_map_count` (65530 by default: about 32,700 stacks).
//!   The first failure there is `ENOMEM` from `mprotect` (DESIGN §5); it is
//!   reported as an error naming the sysctl, and the half-built mapping is
//!   unmapped by `MmapMut`'s drop (RAII even halfway through construction).
//! - **Costs** (DESIGN §5): mmap + mprotect + munmap about 5 µs, first-touch
//!   fault about 3 µs. Hence stacks are pooled with their G (`sched::pool`), and
//!   trimming keeps the top [`KEEP_RESIDENT`] bytes resident.
//! - **Trimming** uses `MADV_FREE` (a re-touch costs 0.09 µs a page, against
//!   2 µs after `MADV_DONTNEED`). The kernel reclaims freed pages only under
//!   memory pressure, so VmRSS may keep counting them until then.
//!
//! The mapping is owned through `memmap2::MmapMut` (the crate the design names);
//! `memmap2` has no call for protecting a sub-range, so the guard goes through
//! `sys::protect_none`.

use std::io;

use crate::sys;

/// Default reservation per goroutine (usable bytes, guard excluded).
///
/// 256 KiB: Rust frames are larger than Go's (a `println!` alone uses ~1 KiB,
/// std's formatting machinery several), and the reservation costs only address
/// space and page tables until touched. Override with `GORO_STACK_SIZE` or
/// `Builder::stack_size`.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The smallest reservation accepted: the first-run frame, the trampoline and
/// `catch_unwind` need a few KiB, and the overflow handler's report is only
/// useful if a goroutine can do something before overflowing.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// The largest reservation accepted (64 GiB): far beyond any real stack, and
/// small enough that page rounding cannot overflow.
pub const MAX_STACK_SIZE: usize = 64 << 30;

/// Rounds a requested size up to whole pages, at least [`MIN_STACK_SIZE`].
pub fn round_size(size: usize) -> io::Result<usize> {
    if size > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("goro: stack size {size} bytes exceeds the maximum of {MAX_STACK_SIZE} bytes"),
        ));
    }
    let page = sys::page_size();
    Ok(size.max(MIN_STACK_SIZE).div_ceil(page) * page)
}

/// Bytes at the top of a pooled stack that trimming leaves resident.
pub const KEEP_RESIDENT: usize = 16 * 1024;

/// One goroutine stack: guard page plus usable reservation.
pub struct Stack {
    mapping: memmap2::MmapMut,
}

impl Stack {
    /// Maps a stack with `size` usable bytes (rounded up to whole pages).
    ///
    /// # Errors
    /// `InvalidInput` above [`MAX_STACK_SIZE`]; otherwise the mapping error,
    /// which names `vm.max_map_count` when the VMA ceiling is the likely cause.
    pub fn new(size: usize) -> io::Result<Stack> {
        let page = sys::page_size();
        let usable = round_size(size)?;
        let mut mapping = memmap2::MmapOptions::new()
            .len(usable + page)
            .no_reserve_swap()
            .stack()
            .map_anon()
            .map_err(map_error)?;
        // SAFETY: the first page of our own fresh mapping; nothing uses it yet.
        // On failure `mapping` drops and is unmapped.
        unsafe { sys::protect_none(mapping.as_mut_ptr(), page) }.map_err(map_error)?;
        Ok(Stack { mapping })
    }

    /// Lowest address of the mapping (the guard page starts here).
    pub fn base(&self) -> usize {
        self.mapping.as_ptr() as usize
    }

    /// One past the highest usable byte; 16-byte aligned (page aligned).
    pub fn top(&self) -> *mut u8 {
        // SAFETY: one-past-the-end pointer of the mapping.
        unsafe { self.mapping.as_ptr().add(self.mapping.len()).cast_mut() }
    }

    /// The guard page's address range `[start, end)`.
    pub fn guard(&self) -> (usize, usize) {
        (self.base(), self.base() + sys::page_size())
    }

    /// Usable bytes (the reservation without the guard page).
    pub fn usable(&self) -> usize {
        self.mapping.len() - sys::page_size()
    }

    /// Gives the pages below the top [`KEEP_RESIDENT`] bytes back to the
    /// kernel with `MADV_FREE`. Contents there are lost.
    ///
    /// # Safety
    /// No goroutine may be running on, or have frames on, this stack.
    pub unsafe fn trim(&self) {
        let page = sys::page_size();
        let len = self.usable().saturating_sub(KEEP_RESIDENT);
        if len == 0 {
            return;
        }
        // SAFETY: the range lies inside our mapping above the guard, and the
        // caller guarantees nothing lives there; MADV_FREE only discards data.
        let _ = unsafe {
            self.mapping
                .unchecked_advise_range(memmap2::UncheckedAdvice::Free, page, len)
        };
    }
}

/// Turns a mapping failure into the error users see. `ENOMEM` from mmap or
/// mprotect almost always means the VMA ceiling, so the message names it.
fn map_error(error: io::Error) -> io::Error {
    if error.raw_os_error() != Some(libc::ENOMEM) {
        return error;
    }
    let limit = sys::max_map_count()
        .map(|n| n.to_string())
        .unwrap_or_else(|| "unknown".to_string());
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "goro: cannot map a goroutine stack ({error}): each live goroutine uses 2 memory \
             mappings and the process has reached vm.max_map_count (currently {limit}) or run \
             out of address space; raise the limit with `sysctl -w vm.max_map_count=N` or keep \
             fewer goroutines alive at once"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_is_aligned_and_usable_rounds_up() {
        let stack = Stack::new(20_000).unwrap();
        assert_eq!(stack.top() as usize % 16, 0);
        assert_eq!(stack.usable() % sys::page_size(), 0);
        assert!(stack.usable() >= 20_000);
        let (lo, hi) = stack.guard();
        assert_eq!(hi - lo, sys::page_size());
        assert_eq!(
            stack.top() as usize - stack.base(),
            stack.usable() + sys::page_size()
        );
    }

    #[test]
    fn top_page_is_writable_and_trim_keeps_it() {
        let stack = Stack::new(64 * 1024).unwrap();
        // SAFETY: the word just below top is inside the usable range.
        unsafe { stack.top().cast::<u64>().sub(1).write(0xfeed) };
        // SAFETY: no goroutine uses this stack.
        unsafe { stack.trim() };
        // SAFETY: as above; KEEP_RESIDENT keeps the top page's contents.
        assert_eq!(unsafe { stack.top().cast::<u64>().sub(1).read() }, 0xfeed);
    }

    #[test]
    fn absurd_sizes_are_rejected_clearly() {
        let error = Stack::new(usize::MAX).err().expect("must fail");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("exceeds the maximum"), "{error}");
        assert_eq!(round_size(1).unwrap(), MIN_STACK_SIZE);
    }

    #[test]
    fn enomem_error_names_the_sysctl() {
        let error = map_error(io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(error.to_string().contains("vm.max_map_count"), "{error}");
        let other = map_error(io::Error::from_raw_os_error(libc::EINVAL));
        assert_eq!(other.raw_os_error(), Some(libc::EINVAL));
    }
}
