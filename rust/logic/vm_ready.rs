// SPDX-License-Identifier: GPL-2.0

//! The VM-wide page-ready queue of a VM whose page-ready INTID is an SPI
//! ("VM-wide page-ready", ABI 1.1), over caller-provided storage.
//!
//! An SPI is taken by whichever vCPU it is routed to, not by the vCPU that
//! announced the token, so page-ready cannot go through the announcing
//! vCPU's record. Instead the vCPU thread that handles a completion pushes
//! (its vCPU, the token) here and, if the queue is not `armed` yet, arms
//! it and signals the SPI, under the VM's lock; any vCPU then pops the
//! entries with `GET_READY`, which disarms the queue in the critical
//! section where it hands out the last entry. Invariant kept by every
//! method: the queue is non-empty only while it is armed, and it is armed
//! only after its SPI was signalled (the caller signals it when
//! [`VmReadyQueue::push`] says so) — so an entry always has either the
//! pending SPI or a guest handler that was told "more" coming for it. The
//! one exception is a failed signal ([`VmReadyQueue::signal_failed`]):
//! the queue is disarmed with entries in it, and the next push signals.
//!
//! # Capacity
//!
//! An entry keeps its vCPU's slot until it is popped (the vCPU state
//! counts [`VmReadyQueue::queued`] against its slots), and a vCPU has at
//! most one `WAKE_ALL` queued (pushing one drops that vCPU's entries). The
//! storage therefore needs `slots + 1` entries per vCPU, which
//! [`entries_for`] computes; with that much, [`VmReadyQueue::push`] never
//! fails.

use super::token::Token;

/// One queued page-ready.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadyEntry {
    /// The announcing vCPU's index in the queue's per-vCPU table.
    pub vcpu: u32,
    /// `MPIDR_EL1` affinity (Aff3..Aff0) of that vCPU, for the guest.
    pub mpidr: u64,
    /// The token, or `WAKE_ALL`.
    pub token: u64,
}

/// What the queue holds for one vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuQueued {
    /// Page-ready tokens (not `WAKE_ALL`) queued: slots still in use.
    pub tokens: u32,
    /// A `WAKE_ALL` is queued.
    pub wake_all: bool,
}

/// The queue is full or the vCPU index is unknown (cannot happen with
/// storage of [`entries_for`] entries and an index from
/// [`VmReadyQueue::add_vcpu`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyQueueFull;

/// The answer of `GET_READY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetReady {
    /// The oldest entry, and whether more wait.
    Entry {
        /// Token or `WAKE_ALL`.
        token: Token,
        /// `MPIDR_EL1` affinity of the announcing vCPU.
        mpidr: u64,
        /// More entries wait: the caller must call again.
        more: bool,
    },
    /// Nothing queued.
    Empty,
}

/// `MPIDR_EL1` bits that identify a PE: Aff3 (39:32) and Aff2..Aff0 (23:0).
pub const MPIDR_AFF_MASK: u64 = 0xff_00ff_ffff;

/// Entries of storage needed for `vcpus` vCPUs of `slots` slots each;
/// `None` on overflow.
pub const fn entries_for(vcpus: usize, slots: usize) -> Option<usize> {
    match slots.checked_add(1) {
        Some(per) => vcpus.checked_mul(per),
        None => None,
    }
}

/// The VM's ready queue: a FIFO ring of [`ReadyEntry`] and what it holds
/// per vCPU.
///
/// # Invariants
///
/// - `head < entries.len()` when `entries` is not empty, `len <=
///   entries.len()`.
/// - `vcpus <= per_vcpu.len()`; for each vCPU `i < vcpus`,
///   `per_vcpu[i]` counts exactly its queued entries.
/// - `len > 0` implies `armed`, except after [`VmReadyQueue::signal_failed`]
///   (the SPI could not be signalled), until the next push, which then
///   asks for the signal again.
#[derive(Debug)]
pub struct VmReadyQueue<S, P> {
    entries: S,
    per_vcpu: P,
    head: usize,
    len: usize,
    vcpus: usize,
    armed: bool,
}

impl<S, P> VmReadyQueue<S, P>
where
    S: AsRef<[ReadyEntry]> + AsMut<[ReadyEntry]>,
    P: AsRef<[VcpuQueued]> + AsMut<[VcpuQueued]>,
{
    /// An empty, disarmed queue with no vCPU yet.
    pub fn new(entries: S, per_vcpu: P) -> Self {
        Self {
            entries,
            per_vcpu,
            head: 0,
            len: 0,
            vcpus: 0,
            armed: false,
        }
    }

    /// Number of queued entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries the storage holds.
    pub fn capacity(&self) -> usize {
        self.entries.as_ref().len()
    }

    /// vCPUs known (indices handed out by [`Self::add_vcpu`]).
    pub fn vcpus(&self) -> usize {
        self.vcpus
    }

    /// Whether the SPI was signalled for the entries queued now (or a
    /// handler was told more wait).
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Storage sizes needed for one more vCPU of `slots` slots: entries,
    /// per-vCPU records. `None` on overflow.
    pub fn sizes_with_one_more(&self, slots: usize) -> Option<(usize, usize)> {
        let per = slots.checked_add(1)?;
        Some((self.capacity().checked_add(per)?, self.vcpus.checked_add(1)?))
    }

    /// Registers one more vCPU, moving the queue into `entries` and
    /// `per_vcpu` (which must be at least [`Self::sizes_with_one_more`]
    /// long; the caller allocated them outside its lock). Returns the new
    /// vCPU's index and the old storage, for the caller to free; on a too
    /// short storage hands the new one back unchanged.
    pub fn add_vcpu(
        &mut self,
        mut entries: S,
        mut per_vcpu: P,
        slots: usize,
    ) -> Result<(u32, S, P), (S, P)> {
        let Some((ne, nv)) = self.sizes_with_one_more(slots) else {
            return Err((entries, per_vcpu));
        };
        let Ok(idx) = u32::try_from(self.vcpus) else {
            return Err((entries, per_vcpu));
        };
        if entries.as_ref().len() < ne || per_vcpu.as_ref().len() < nv {
            return Err((entries, per_vcpu));
        }
        for (i, e) in entries.as_mut().iter_mut().enumerate() {
            *e = if i < self.len {
                self.at(i).unwrap_or_default()
            } else {
                ReadyEntry::default()
            };
        }
        for (i, q) in per_vcpu.as_mut().iter_mut().enumerate() {
            *q = self.per_vcpu.as_ref().get(i).copied().unwrap_or_default();
            if i >= self.vcpus {
                *q = VcpuQueued::default();
            }
        }
        let old_e = core::mem::replace(&mut self.entries, entries);
        let old_p = core::mem::replace(&mut self.per_vcpu, per_vcpu);
        // INVARIANT: the entries were copied in order to the start of the
        // new ring; the new vCPU holds nothing.
        self.head = 0;
        self.vcpus += 1;
        Ok((idx, old_e, old_p))
    }

    /// The `i`-th oldest entry.
    fn at(&self, i: usize) -> Option<ReadyEntry> {
        let cap = self.capacity();
        if i >= self.len || cap == 0 {
            return None;
        }
        self.entries.as_ref().get((self.head + i) % cap).copied()
    }

    /// What is queued for `vcpu` (nothing for an unknown index).
    pub fn queued(&self, vcpu: u32) -> VcpuQueued {
        if vcpu as usize >= self.vcpus {
            return VcpuQueued::default();
        }
        self.per_vcpu.as_ref().get(vcpu as usize).copied().unwrap_or_default()
    }

    /// Whether `token` of `vcpu` is queued (linear scan).
    pub fn contains(&self, vcpu: u32, token: Token) -> bool {
        if self.queued(vcpu).tokens == 0 {
            return false;
        }
        (0..self.len).any(|i| self.at(i).is_some_and(|e| e.vcpu == vcpu && e.token == token.raw()))
    }

    fn account(&mut self, e: &ReadyEntry, add: bool) {
        let Some(q) = self.per_vcpu.as_mut().get_mut(e.vcpu as usize) else {
            return;
        };
        if e.token == Token::WAKE_ALL.raw() {
            q.wake_all = add;
        } else if add {
            q.tokens += 1;
        } else {
            q.tokens = q.tokens.saturating_sub(1);
        }
    }

    /// Queues a page-ready of `vcpu` (whose MPIDR affinity is `mpidr`).
    /// A `WAKE_ALL` first drops the vCPU's queued entries, which it makes
    /// void. Returns whether the caller must signal the SPI now (the queue
    /// was not armed; it is now), under the same lock.
    pub fn push(&mut self, vcpu: u32, mpidr: u64, token: Token) -> Result<bool, ReadyQueueFull> {
        if vcpu as usize >= self.vcpus || token.is_none() {
            return Err(ReadyQueueFull);
        }
        if token.is_wake_all() {
            self.remove_vcpu(vcpu);
        }
        let cap = self.capacity();
        if self.len >= cap {
            return Err(ReadyQueueFull);
        }
        let e = ReadyEntry {
            vcpu,
            mpidr: mpidr & MPIDR_AFF_MASK,
            token: token.raw(),
        };
        let idx = (self.head + self.len) % cap;
        match self.entries.as_mut().get_mut(idx) {
            Some(slot) => *slot = e,
            None => return Err(ReadyQueueFull),
        }
        self.len += 1;
        self.account(&e, true);
        let signal = !self.armed;
        // INVARIANT: non-empty, so armed; the caller signals if it was not.
        self.armed = true;
        Ok(signal)
    }

    /// The signal the last [`Self::push`] asked for failed: disarm, so that
    /// the next push signals again (the entries stay queued).
    pub fn signal_failed(&mut self) {
        self.armed = false;
    }

    /// `GET_READY`: pops the oldest entry; disarms when it hands out the
    /// last one, or finds none.
    pub fn get_ready(&mut self) -> GetReady {
        let Some(e) = self.at(0) else {
            self.armed = false;
            return GetReady::Empty;
        };
        let cap = self.capacity();
        self.head = (self.head + 1) % cap;
        self.len -= 1;
        self.account(&e, false);
        let more = self.len != 0;
        if !more {
            self.armed = false;
        }
        GetReady::Entry {
            token: Token::from_raw(e.token),
            mpidr: e.mpidr,
            more,
        }
    }

    /// Drops every entry of `vcpu` (a `WAKE_ALL`, a reset, the vCPU going
    /// away), keeping the order of the others. Returns how many went. The
    /// queue stays armed if it was: at worst the guest's handler finds it
    /// empty (`NOT_REQUIRED`, which disarms it).
    pub fn remove_vcpu(&mut self, vcpu: u32) -> usize {
        let cap = self.capacity();
        if cap == 0 {
            return 0;
        }
        let mut kept = 0;
        for i in 0..self.len {
            let Some(e) = self.at(i) else { break };
            if e.vcpu == vcpu {
                continue;
            }
            let dst = (self.head + kept) % cap;
            if let Some(slot) = self.entries.as_mut().get_mut(dst) {
                *slot = e;
            }
            kept += 1;
        }
        let removed = self.len - kept;
        self.len = kept;
        if let Some(q) = self.per_vcpu.as_mut().get_mut(vcpu as usize) {
            *q = VcpuQueued::default();
        }
        removed
    }

    /// The registers `GET_READY` answers with: x0 `SUCCESS`, x1 the token,
    /// x2 the MPIDR affinity, x3 1 if more wait; or `NOT_REQUIRED`.
    pub fn get_ready_regs(&mut self) -> [u64; 4] {
        match self.get_ready() {
            GetReady::Entry { token, mpidr, more } => {
                [super::hypercall::SUCCESS_RET, token.raw(), mpidr, u64::from(more)]
            }
            GetReady::Empty => [super::hypercall::NOT_REQUIRED_RET, 0, 0, 0],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_arms_once_and_get_ready_disarms_at_the_last() {
        let mut q = VmReadyQueue::new(Vec::new(), Vec::new());
        let (i, _, _) = q
            .add_vcpu(vec![ReadyEntry::default(); 3], vec![VcpuQueued::default(); 1], 2)
            .unwrap();
        assert_eq!(q.push(i, 0x100, Token::from_raw(0x1000)), Ok(true));
        assert_eq!(q.push(i, 0x100, Token::from_raw(0x2000)), Ok(false));
        assert!(matches!(q.get_ready(), GetReady::Entry { more: true, .. }));
        assert!(q.is_armed());
        assert!(matches!(q.get_ready(), GetReady::Entry { more: false, .. }));
        assert!(!q.is_armed());
        assert_eq!(q.get_ready(), GetReady::Empty);
    }
}
