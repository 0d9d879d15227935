//! The io_uring backend's registrations, looked up by token on every
//! completion.
//!
//! # Why not a `HashMap`
//!
//! The poller thread looks a registration up once per CQE. With a
//! `HashMap<u64, _>` that is a SipHash of the key plus a probe of the
//! control bytes and then of the bucket: at 10,000 connections both are
//! cache misses. `perf record -t <poller>` under Go's loadgen at 10,000 echo
//! connections put 12 % of the poller thread's samples in `Uring::reap`,
//! two thirds of them on the bucket load, and another 1.6 % in the hasher.
//!
//! The owner's tokens are dense: goro's poll descriptors are slots of a
//! table, recycled from a free list (`net::poll_desc`). So registrations sit
//! in a `Vec` indexed by `Token::index`, each entry holding its generation:
//! one 16-byte entry, one line, no hash.
//!
//! # Invariants
//!
//! - An entry matches a token only if both index and generation match; a
//!   stale token (a recycled slot) finds nothing, as the map's full key did.
//! - The contract lets an owner register a token whose index is still held
//!   by an older generation (goro never does: a slot is recycled only after
//!   `Event::Released`), and any index up to `Token::MAX_INDEX`. Such a
//!   registration, and every index at or above [`DENSE_LIMIT`], goes to a
//!   `HashMap` beside the vector, which lookups consult only when it is not
//!   empty. Nothing is refused, and nothing is mislaid.

use std::collections::HashMap;

use crate::Token;

/// Indices below this live in the vector (16 MiB of entries at most).
pub(crate) const DENSE_LIMIT: u32 = 1 << 20;

/// One registered socket, as the io_uring backend tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Registration {
    pub(crate) fd: i32,
    pub(crate) cancelling: bool,
    /// The lingering epoch this socket was last counted active in.
    pub(crate) epoch: u32,
}

#[derive(Clone, Copy)]
struct Entry {
    generation: u32,
    registration: Registration,
}

/// Registrations by token (module doc).
#[derive(Default)]
pub(crate) struct Registry {
    dense: Vec<Option<Entry>>,
    /// Keyed by `Token::to_u64`: high indices and displaced generations.
    sparse: HashMap<u64, Registration>,
    len: usize,
}

impl Registry {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds (or replaces) the registration under `token`.
    pub(crate) fn insert(&mut self, token: Token, registration: Registration) {
        if token.index < DENSE_LIMIT {
            let index = token.index as usize;
            if index >= self.dense.len() {
                self.dense.resize(index + 1, None);
            }
            match &mut self.dense[index] {
                Some(entry) if entry.generation == token.generation => {
                    entry.registration = registration;
                    return;
                }
                Some(_) => {}
                free => {
                    *free = Some(Entry {
                        generation: token.generation,
                        registration,
                    });
                    self.len += 1;
                    return;
                }
            }
        }
        if self.sparse.insert(token.to_u64(), registration).is_none() {
            self.len += 1;
        }
    }

    pub(crate) fn get_mut(&mut self, token: Token) -> Option<&mut Registration> {
        if let Some(Some(entry)) = self.dense.get_mut(token.index as usize) {
            if entry.generation == token.generation {
                return Some(&mut entry.registration);
            }
        }
        if self.sparse.is_empty() {
            return None;
        }
        self.sparse.get_mut(&token.to_u64())
    }

    pub(crate) fn remove(&mut self, token: Token) -> Option<Registration> {
        if let Some(slot) = self.dense.get_mut(token.index as usize) {
            if slot.is_some_and(|entry| entry.generation == token.generation) {
                self.len -= 1;
                return slot.take().map(|entry| entry.registration);
            }
        }
        let removed = self.sparse.remove(&token.to_u64());
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Every registered token, in no particular order.
    pub(crate) fn tokens(&self) -> Vec<Token> {
        let dense = self.dense.iter().enumerate().filter_map(|(index, slot)| {
            slot.map(|entry| Token {
                index: index as u32,
                generation: entry.generation,
            })
        });
        dense
            .chain(self.sparse.keys().map(|&key| Token::from_u64(key)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(index: u32, generation: u32) -> Token {
        Token { index, generation }
    }

    fn registration(fd: i32) -> Registration {
        Registration {
            fd,
            cancelling: false,
            epoch: 0,
        }
    }

    #[test]
    fn a_token_finds_only_its_own_generation() {
        let mut registry = Registry::default();
        registry.insert(token(3, 7), registration(30));
        assert_eq!(registry.get_mut(token(3, 7)).map(|r| r.fd), Some(30));
        assert_eq!(registry.get_mut(token(3, 8)), None);
        assert_eq!(registry.get_mut(token(4, 7)), None);
        assert_eq!(registry.remove(token(3, 8)), None);
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.remove(token(3, 7)).map(|r| r.fd), Some(30));
        assert!(registry.is_empty());
        assert_eq!(registry.get_mut(token(3, 7)), None);
    }

    #[test]
    fn two_generations_of_one_index_and_high_indices_are_all_kept() {
        let mut registry = Registry::default();
        registry.insert(token(5, 1), registration(1));
        registry.insert(token(5, 2), registration(2));
        registry.insert(token(DENSE_LIMIT, 1), registration(3));
        registry.insert(token(Token::MAX_INDEX, 9), registration(4));
        assert_eq!(registry.len(), 4);
        for (t, fd) in [
            (token(5, 1), 1),
            (token(5, 2), 2),
            (token(DENSE_LIMIT, 1), 3),
            (token(Token::MAX_INDEX, 9), 4),
        ] {
            assert_eq!(registry.get_mut(t).map(|r| r.fd), Some(fd), "{t:?}");
        }
        let mut tokens = registry.tokens();
        tokens.sort();
        assert_eq!(
            tokens,
            [
                token(5, 1),
                token(5, 2),
                token(DENSE_LIMIT, 1),
                token(Token::MAX_INDEX, 9)
            ]
        );
        assert_eq!(registry.remove(token(5, 1)).map(|r| r.fd), Some(1));
        assert_eq!(registry.get_mut(token(5, 2)).map(|r| r.fd), Some(2));
        assert_eq!(registry.remove(token(5, 2)).map(|r| r.fd), Some(2));
        assert_eq!(
            registry.remove(token(DENSE_LIMIT, 1)).map(|r| r.fd),
            Some(3)
        );
        assert_eq!(
            registry.remove(token(Token::MAX_INDEX, 9)).map(|r| r.fd),
            Some(4)
        );
        assert!(registry.is_empty());
    }

    #[test]
    fn inserting_again_replaces_without_counting_twice() {
        let mut registry = Registry::default();
        registry.insert(token(0, 1), registration(1));
        registry.insert(token(0, 1), registration(2));
        registry.insert(token(DENSE_LIMIT + 1, 1), registration(3));
        registry.insert(token(DENSE_LIMIT + 1, 1), registration(4));
        assert_eq!(registry.len(), 2);
        assert_eq!(registry.get_mut(token(0, 1)).map(|r| r.fd), Some(2));
        assert_eq!(
            registry.get_mut(token(DENSE_LIMIT + 1, 1)).map(|r| r.fd),
            Some(4)
        );
    }
}
