//! A per-P cache of small memory blocks (Go's `mcache`, in miniature) for
//! the allocation every spawn makes: the goroutine's task cell.
//!
//! Why: with 1,000 goroutines in flight, glibc's per-thread cache (7 chunks
//! per size) overflows, and malloc/free with `malloc_consolidate` took about
//! 20% of the spawn+exit benchmark's samples. A P-local free list makes the
//! common case a `Vec` pop and push.
//!
//! Blocks come from the global allocator in four size classes (64, 128, 192,
//! 256 bytes, 16-byte aligned); larger or more aligned requests go straight
//! to it. A block freed on a thread holding a P is kept by that P (up to
//! [`BYTES_PER_CLASS`]); anywhere else — a foreign thread dropping a
//! `JoinHandle` — it is returned to the global allocator with the class's
//! layout, which is the layout it was allocated with.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use super::m::current_m;

const CLASS_STEP: usize = 64;
pub(crate) const CLASSES: usize = 4;
const ALIGN: usize = 16;
/// Bytes a P keeps per class before returning extras to the allocator:
/// 2,048 blocks of 64 bytes, 512 of 256. Sized so that a burst of about a
/// thousand goroutines in flight (the spawn benchmark's batches; a server's
/// accept burst) recycles cells without glibc: at 256 blocks per class,
/// malloc and free were still 14% of that benchmark's samples. At most
/// 512 KiB per P.
const BYTES_PER_CLASS: usize = 128 * 1024;

/// The per-P free lists, one per class.
pub(crate) type BlockCache = [Vec<NonNull<u8>>; CLASSES];

fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > ALIGN || layout.size() == 0 {
        return None;
    }
    let class = layout.size().div_ceil(CLASS_STEP) - 1;
    (class < CLASSES).then_some(class)
}

fn class_layout(class: usize) -> Layout {
    // Sizes are multiples of 64 and ALIGN is a power of two: always valid.
    Layout::from_size_align((class + 1) * CLASS_STEP, ALIGN).expect("valid class layout")
}

/// Runs `f` on the calling M's block cache, if it holds a P.
fn with_cache<R>(f: impl FnOnce(&mut BlockCache) -> R) -> Option<R> {
    let _section = super::locks::Section::enter();
    // SAFETY: a non-null current M is this thread's live M.
    let m = unsafe { current_m().as_ref() }?;
    let p = m.own_p()?;
    // SAFETY: this M holds the P, and the borrow ends before any switch.
    Some(f(unsafe { p.blocks() }))
}

/// Allocates memory for `layout`. Aborts on exhaustion, as `Box` does.
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    let (layout, class) = match class_of(layout) {
        Some(class) => (class_layout(class), Some(class)),
        None => (layout, None),
    };
    if let Some(class) = class {
        if let Some(Some(block)) = with_cache(|cache| cache[class].pop()) {
            return block;
        }
    }
    // SAFETY: `layout` has a non-zero size (class layouts are ≥ 64 bytes,
    // and task cells are never zero-sized: they hold atomics).
    let block = unsafe { alloc::alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Frees a block from [`alloc`] with the same `layout`.
///
/// # Safety
/// `block` came from `alloc(layout)` and is not used again.
pub(crate) unsafe fn dealloc(block: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: allocated by the global allocator with this layout.
        unsafe { alloc::dealloc(block.as_ptr(), layout) };
        return;
    };
    let kept = with_cache(|cache| {
        let list = &mut cache[class];
        let limit = BYTES_PER_CLASS / ((class + 1) * CLASS_STEP);
        (list.len() < limit).then(|| list.push(block)).is_some()
    });
    if kept != Some(true) {
        // SAFETY: allocated by the global allocator with the class layout.
        unsafe { alloc::dealloc(block.as_ptr(), class_layout(class)) };
    }
}

/// Returns every cached block to the global allocator (runtime teardown).
pub(crate) fn release_all(cache: &mut BlockCache) {
    for (class, list) in cache.iter_mut().enumerate() {
        for block in list.drain(..) {
            // SAFETY: cached blocks were allocated with the class layout.
            unsafe { alloc::dealloc(block.as_ptr(), class_layout(class)) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_small_layouts_only() {
        assert_eq!(class_of(Layout::new::<[u8; 1]>()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(64, 8).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(65, 8).unwrap()), Some(1));
        assert_eq!(class_of(Layout::from_size_align(256, 16).unwrap()), Some(3));
        assert_eq!(class_of(Layout::from_size_align(257, 16).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(64, 32).unwrap()), None);
    }

    #[test]
    fn alloc_and_dealloc_off_runtime_use_the_global_allocator() {
        for size in [8, 100, 256, 1000] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            let block = alloc(layout);
            // SAFETY: `block` has at least `size` writable bytes.
            unsafe { block.as_ptr().write_bytes(0xAB, size) };
            // SAFETY: allocated above with this layout.
            unsafe { dealloc(block, layout) };
        }
    }
}
