//! A goroutine's name and creation site, readable by diagnostics without
//! owning the G.
//!
//! `G::name` is a `Box<str>` owned by whoever owns the G (g.rs): a dump on
//! another thread cannot read it, because the G may finish and be recycled
//! meanwhile, freeing the box under the reader. So `prepare` also copies up
//! to [`LABEL_MAX`] bytes of the name into a [`Label`]: atomic words guarded
//! by a sequence number (a seqlock, as crossbeam's `SeqLock`). A reader
//! never sees freed memory, and discards a copy torn by a concurrent
//! rewrite. Unnamed goroutines (the common spawn) pay one relaxed load.
//!
//! Rejected: an `Arc<str>` behind an `AtomicPtr` (the reader could still
//! race the last drop), and interning names in a table (names such as
//! `conn-1234` would leak without bound).

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Bytes of a name kept for diagnostics (cut at a character boundary).
pub(crate) const LABEL_MAX: usize = 48;
const WORDS: usize = LABEL_MAX / 8;

/// A seqlock-protected copy of a goroutine's name.
#[derive(Default)]
pub(crate) struct Label {
    /// Odd while a write is in progress.
    seq: AtomicU32,
    len: AtomicU32,
    words: [AtomicU64; WORDS],
}

impl Label {
    /// Sets the label. Only the G's owner calls it (single writer).
    pub(crate) fn set(&self, name: Option<&str>) {
        let name = name.unwrap_or("");
        if name.is_empty() && self.len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut len = name.len().min(LABEL_MAX);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0u8; LABEL_MAX];
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        // Pairs with the reader's Acquire fence: a reader that sees any of
        // the stores below also sees the odd sequence number.
        fence(Ordering::Release);
        for (word, chunk) in self.words.iter().zip(bytes.chunks_exact(8)) {
            let value = u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8]));
            word.store(value, Ordering::Relaxed);
        }
        self.len.store(len as u32, Ordering::Relaxed);
        // Pairs with the reader's first Acquire load.
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// A consistent copy of the label, or `None` if it is empty or kept
    /// changing while being read.
    pub(crate) fn read(&self) -> Option<String> {
        for _ in 0..8 {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let len = (self.len.load(Ordering::Relaxed) as usize).min(LABEL_MAX);
            let mut bytes = [0u8; LABEL_MAX];
            for (word, chunk) in self.words.iter().zip(bytes.chunks_exact_mut(8)) {
                chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return (len > 0).then(|| String::from_utf8_lossy(&bytes[..len]).into_owned());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_prefix_at_a_char_boundary_and_clears() {
        let label = Label::default();
        assert_eq!(label.read(), None);
        label.set(Some("worker-7"));
        assert_eq!(label.read().as_deref(), Some("worker-7"));
        let long = "é".repeat(40);
        label.set(Some(&long));
        assert_eq!(label.read().unwrap(), "é".repeat(24));
        label.set(None);
        assert_eq!(label.read(), None);
    }
}
