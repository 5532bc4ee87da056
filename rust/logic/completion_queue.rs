// SPDX-License-Identifier: GPL-2.0

//! Bounded FIFO of page-ready tokens waiting for the guest to acknowledge the
//! previous one, over caller-provided storage.

use super::token::Token;

/// The queue is full (cannot happen while the vCPU keeps table entries plus
/// queued tokens within its slot count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFull;

/// A ring of tokens.
///
/// # Invariants
///
/// `cap <= storage.as_ref().len()`, `head < cap` when `cap > 0`, and
/// `len <= cap`.
#[derive(Debug)]
pub struct CompletionQueue<S> {
    storage: S,
    head: usize,
    len: usize,
    cap: usize,
}

impl<S: AsRef<[u64]> + AsMut<[u64]>> CompletionQueue<S> {
    /// Builds an empty queue of `cap` tokens over `storage`; `None` if the
    /// storage is shorter than `cap`.
    pub fn new(storage: S, cap: usize) -> Option<Self> {
        if storage.as_ref().len() < cap {
            return None;
        }
        Some(Self {
            storage,
            head: 0,
            len: 0,
            cap,
        })
    }

    /// Appends `token` at the tail.
    pub fn push(&mut self, token: Token) -> Result<(), QueueFull> {
        if self.len >= self.cap {
            return Err(QueueFull);
        }
        // `head + len < 2 * cap`, no overflow for any storage size.
        let idx = (self.head + self.len) % self.cap;
        match self.storage.as_mut().get_mut(idx) {
            Some(slot) => *slot = token.raw(),
            None => return Err(QueueFull),
        }
        self.len += 1;
        Ok(())
    }

    /// Removes the token at the head.
    pub fn pop(&mut self) -> Option<Token> {
        if self.len == 0 {
            return None;
        }
        let raw = self.storage.as_ref().get(self.head).copied()?;
        self.head = (self.head + 1) % self.cap;
        self.len -= 1;
        Some(Token::from_raw(raw))
    }

    /// Whether `token` is queued (linear scan of at most `capacity()`
    /// entries).
    pub fn contains(&self, token: Token) -> bool {
        let raw = token.raw();
        (0..self.len).any(|i| {
            let idx = (self.head + i) % self.cap;
            self.storage.as_ref().get(idx) == Some(&raw)
        })
    }

    /// Number of queued tokens.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of queued tokens.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Drops every queued token.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_wraps() {
        let mut q = CompletionQueue::new([0u64; 2], 2).unwrap();
        assert_eq!(q.pop(), None);
        q.push(Token::from_raw(0x1000)).unwrap();
        q.push(Token::from_raw(0x2000)).unwrap();
        assert_eq!(q.push(Token::from_raw(0x3000)), Err(QueueFull));
        assert_eq!(q.pop(), Some(Token::from_raw(0x1000)));
        q.push(Token::from_raw(0x3000)).unwrap();
        assert_eq!(q.pop(), Some(Token::from_raw(0x2000)));
        assert_eq!(q.pop(), Some(Token::from_raw(0x3000)));
        assert!(q.is_empty());
    }
}
