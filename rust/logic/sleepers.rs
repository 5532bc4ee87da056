// SPDX-License-Identifier: GPL-2.0

//! Guest side: which tasks wait on which token, one table per vCPU.
//!
//! The not-present handler takes an entry for the token it read and queues
//! the interrupted task's sleep (task_work) on it; the task later sleeps on
//! that entry, on whatever CPU it runs by then. The page-ready handler of
//! the vCPU that announced the token marks the entry: if the task already
//! sleeps it must be woken, if it does not sleep yet its wait returns at
//! once. The task itself always frees its entry, so an entry outlives every
//! wake-up that may still look at it.
//!
//! The table also decides what the page-ready handler does with a
//! not-present notification it has not handled yet (both interrupts can be
//! pending at once, and the guest may take page-ready first).

use super::token::Token;

/// One entry of a vCPU's table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Entry {
    /// Unused.
    #[default]
    Free,
    /// Not-present for the token was taken; the task's sleep is queued and
    /// has not started.
    Queued(Token),
    /// Page-ready (or `WAKE_ALL`) came while the entry was [`Entry::Queued`]:
    /// the wait returns at once.
    Ready,
    /// The task sleeps on the token.
    Sleeping(Token),
    /// Page-ready (or `WAKE_ALL`) came while the task slept: it must be
    /// woken, and frees the entry once it runs.
    Woken,
}

/// Why no entry was taken for a not-present notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnounceError {
    /// 0 or `WAKE_ALL`: not a token a not-present notification can carry.
    NotAToken,
    /// Every entry is in use: the task is not put to sleep (its access
    /// blocks in the host instead).
    Full,
}

/// Misuse of an entry index (a bug of the caller; reported, not fatal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadEntry;

/// What a task does when its queued sleep starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SleepStart {
    /// Sleep until [`SleeperTable::is_woken`], then [`SleeperTable::end_sleep`].
    Wait,
    /// Page-ready already came: the entry is freed, return at once.
    ReadyBeforeSleep,
}

/// How a sleep ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SleepEnd {
    /// Woken by page-ready or `WAKE_ALL`.
    Woken,
    /// Ended before that (a signal): the token's page-ready, if it comes,
    /// finds nobody waiting and is dropped.
    Interrupted,
}

/// What marking the entries of one token (or of all) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marked {
    /// Sleeping tasks now [`Entry::Woken`]: the caller wakes the wait queue.
    pub woken: usize,
    /// Entries whose sleep had not started, now [`Entry::Ready`].
    pub before_sleep: usize,
}

impl Marked {
    /// Whether some task must be woken.
    pub const fn must_wake(&self) -> bool {
        self.woken != 0
    }
}

/// What the page-ready handler saw, after reading (and clearing)
/// `ready_token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageReady {
    /// The token field read 0: spurious notification.
    Spurious,
    /// `WAKE_ALL`: every entry of this vCPU was marked.
    WakeAll(Marked),
    /// The token had entries, now marked.
    Matched(Marked),
    /// Page-ready came before the not-present notification of the same
    /// token was handled: the handler clears `not_present_token` itself, so
    /// that nobody is put to sleep on a page that is already in.
    BeforeNotPresent,
    /// Nobody waits on the token (its not-present notification was not
    /// acted on, or the task's wait ended on a signal).
    Unmatched,
}

/// The page-ready handler's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageReadyAction {
    /// What happened.
    pub outcome: PageReady,
    /// Write 0 to `not_present_token`: it holds a token this page-ready
    /// made void (the same token, or any token under `WAKE_ALL`).
    pub clear_not_present: bool,
}

impl PageReadyAction {
    /// Whether some task must be woken.
    pub const fn must_wake(&self) -> bool {
        match self.outcome {
            PageReady::WakeAll(m) | PageReady::Matched(m) => m.must_wake(),
            _ => false,
        }
    }
}

/// The sleeper table of one vCPU over caller-provided storage.
///
/// # Invariants
///
/// `sleeping` is the number of [`Entry::Sleeping`] entries, `in_use` the
/// number of entries that are not [`Entry::Free`]. No [`Entry::Queued`] or
/// [`Entry::Sleeping`] entry holds [`Token::NONE`] or [`Token::WAKE_ALL`].
#[derive(Debug)]
pub struct SleeperTable<S> {
    storage: S,
    in_use: usize,
    sleeping: usize,
    wake_alls: u64,
}

impl<S: AsRef<[Entry]> + AsMut<[Entry]>> SleeperTable<S> {
    /// A table over `storage`, every entry freed.
    pub fn new(mut storage: S) -> Self {
        storage.as_mut().fill(Entry::Free);
        // INVARIANT: every entry is free.
        Self {
            storage,
            in_use: 0,
            sleeping: 0,
            wake_alls: 0,
        }
    }

    /// Number of entries.
    pub fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    /// Entries in use (queued, ready, sleeping or woken).
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Tasks sleeping now (woken ones that did not run yet excluded).
    pub fn sleeping(&self) -> usize {
        self.sleeping
    }

    /// How many `WAKE_ALL` this table received ([`Self::wake_all`]), for a
    /// caller that waits for the one of its `DISABLE`.
    pub fn wake_alls(&self) -> u64 {
        self.wake_alls
    }

    /// The entry at `idx`.
    pub fn entry(&self, idx: usize) -> Option<Entry> {
        self.storage.as_ref().get(idx).copied()
    }

    /// Not-present for `token` was taken in user context: takes an entry
    /// for the task's sleep, [`Entry::Queued`]. Returns its index.
    pub fn announce(&mut self, token: Token) -> Result<usize, AnnounceError> {
        if token.is_none() || token.is_wake_all() {
            return Err(AnnounceError::NotAToken);
        }
        let (idx, e) = self
            .storage
            .as_mut()
            .iter_mut()
            .enumerate()
            .find(|(_, e)| **e == Entry::Free)
            .ok_or(AnnounceError::Full)?;
        // INVARIANT: a free entry becomes used, with a real token.
        *e = Entry::Queued(token);
        self.in_use += 1;
        Ok(idx)
    }

    /// The sleep queued on `idx` could not be queued after all: frees the
    /// entry, which must still be [`Entry::Queued`] or [`Entry::Ready`].
    pub fn cancel(&mut self, idx: usize) -> Result<(), BadEntry> {
        let e = self.storage.as_mut().get_mut(idx).ok_or(BadEntry)?;
        match *e {
            Entry::Queued(_) | Entry::Ready => {
                // INVARIANT: a used, not sleeping entry is freed.
                *e = Entry::Free;
                self.in_use -= 1;
                Ok(())
            }
            _ => Err(BadEntry),
        }
    }

    /// Marks every entry waiting on `token` (all of them if `token` is
    /// `WAKE_ALL`): queued ones ready, sleeping ones woken, each of which
    /// is passed to `woken`.
    fn mark(&mut self, token: Token, woken: &mut impl FnMut(usize)) -> Marked {
        let all = token.is_wake_all();
        let mut m = Marked::default();
        for (idx, e) in self.storage.as_mut().iter_mut().enumerate() {
            match *e {
                Entry::Queued(t) if all || t == token => {
                    *e = Entry::Ready;
                    m.before_sleep += 1;
                }
                Entry::Sleeping(t) if all || t == token => {
                    *e = Entry::Woken;
                    m.woken += 1;
                    woken(idx);
                }
                _ => {}
            }
        }
        // INVARIANT: every entry that stopped sleeping was counted.
        self.sleeping -= m.woken;
        m
    }

    /// Marks every waiting entry, as `WAKE_ALL` does; also used when the
    /// vCPU stops announcing (CPU offline, module unload, reboot). Each
    /// entry whose task must be woken is passed to `woken`.
    pub fn wake_all(&mut self, mut woken: impl FnMut(usize)) -> Marked {
        self.wake_alls += 1;
        self.mark(Token::WAKE_ALL, &mut woken)
    }

    /// The page-ready handler read `ready` from `ready_token` (and cleared
    /// it if it was not 0) and reads `not_present` from
    /// `not_present_token`: marks the entries (passing each whose task must
    /// be woken to `woken`) and says whether the handler must clear
    /// `not_present_token` too.
    ///
    /// The handler runs with interrupts masked on the vCPU that owns the
    /// record, so the host does not announce a fault while it runs, and
    /// the not-present handler of the same vCPU does not run either.
    pub fn page_ready(
        &mut self,
        ready: Token,
        not_present: Token,
        mut woken: impl FnMut(usize),
    ) -> PageReadyAction {
        if ready.is_none() {
            return PageReadyAction {
                outcome: PageReady::Spurious,
                clear_not_present: false,
            };
        }
        if ready.is_wake_all() {
            // No fault is announced while WAKE_ALL is in ready_token, so a
            // token still in not_present_token was announced before it and
            // is void: nobody may be put to sleep on it.
            return PageReadyAction {
                outcome: PageReady::WakeAll(self.wake_all(woken)),
                clear_not_present: !not_present.is_none(),
            };
        }
        let m = self.mark(ready, &mut woken);
        if m.woken + m.before_sleep != 0 {
            return PageReadyAction {
                outcome: PageReady::Matched(m),
                clear_not_present: false,
            };
        }
        if not_present == ready {
            // The host announced the token and then delivered page-ready
            // for it before the guest took not-present: the page is in.
            return PageReadyAction {
                outcome: PageReady::BeforeNotPresent,
                clear_not_present: true,
            };
        }
        PageReadyAction {
            outcome: PageReady::Unmatched,
            clear_not_present: false,
        }
    }

    /// The task whose sleep was queued on `idx` runs it: sleeps
    /// ([`Entry::Sleeping`]) unless page-ready already came, in which case
    /// the entry is freed.
    pub fn begin_sleep(&mut self, idx: usize) -> Result<SleepStart, BadEntry> {
        let e = self.storage.as_mut().get_mut(idx).ok_or(BadEntry)?;
        match *e {
            Entry::Queued(t) => {
                // INVARIANT: one more sleeping entry, counted.
                *e = Entry::Sleeping(t);
                self.sleeping += 1;
                Ok(SleepStart::Wait)
            }
            Entry::Ready | Entry::Woken => {
                // INVARIANT: a used entry, not sleeping, is freed.
                *e = Entry::Free;
                self.in_use -= 1;
                Ok(SleepStart::ReadyBeforeSleep)
            }
            Entry::Free | Entry::Sleeping(_) => Err(BadEntry),
        }
    }

    /// Whether the task sleeping on `idx` was woken (an index that is not
    /// sleeping reads as woken, so that a confused caller stops waiting).
    pub fn is_woken(&self, idx: usize) -> bool {
        !matches!(self.entry(idx), Some(Entry::Sleeping(_)))
    }

    /// The task sleeping on `idx` stops waiting (woken, or on a signal):
    /// frees the entry.
    pub fn end_sleep(&mut self, idx: usize) -> Result<SleepEnd, BadEntry> {
        let e = self.storage.as_mut().get_mut(idx).ok_or(BadEntry)?;
        let end = match *e {
            Entry::Woken => SleepEnd::Woken,
            Entry::Sleeping(_) => {
                // INVARIANT: the entry stops sleeping.
                self.sleeping -= 1;
                SleepEnd::Interrupted
            }
            _ => return Err(BadEntry),
        };
        // INVARIANT: a used entry is freed.
        *e = Entry::Free;
        self.in_use -= 1;
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: Token = Token::from_raw(0x1000);

    #[test]
    fn sleep_then_ready() {
        let mut t = SleeperTable::new([Entry::Free; 2]);
        let i = t.announce(T1).unwrap();
        assert_eq!(t.begin_sleep(i), Ok(SleepStart::Wait));
        assert!(!t.is_woken(i));
        let a = t.page_ready(T1, Token::NONE, |_| {});
        assert!(a.must_wake());
        assert!(t.is_woken(i));
        assert_eq!(t.end_sleep(i), Ok(SleepEnd::Woken));
        assert_eq!(t.in_use(), 0);
    }
}
