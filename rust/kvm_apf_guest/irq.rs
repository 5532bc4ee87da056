// SPDX-License-Identifier: GPL-2.0

//! The interrupt handlers (Documentation/async-pf.rst, "Guest handlers").
//! Not-present and a per-CPU page-ready run on the vCPU that took the
//! interrupt, interrupts masked, and act on its record only; VM-wide
//! page-ready (an SPI, ABI 1.1) runs on whichever CPU the SPI is routed
//! to and wakes tasks of the CPU each `GET_READY` entry names.
//!
//! A task's sleep is keyed by (CPU, token): every CPU has its own sleeper
//! table, and the token is looked up in the table of the CPU that
//! announced it. With VM-wide page-ready another CPU may mark a table
//! while that CPU's not-present handler runs, so the not-present handler
//! reads and clears `not_present_token` and takes its entry in one
//! section under the table's lock, and the page-ready side reads that
//! field under the same lock: it sees either the token still there (and
//! clears it: `BeforeNotPresent`) or the entry.

use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;
use kernel::sync::barrier::smp_mb;
use kernel::sync::barrier::Full;
use kernel::task::Task;

use crate::cpu::CpuState;
use crate::cpu::TableGuard;
use crate::ffi;
use crate::hvc;
use crate::logic::hypercall::SUCCESS_RET;
use crate::logic::sleepers::PageReady;
use crate::logic::sleepers::PageReadyAction;
use crate::logic::token::Token;
use crate::stats::Stats;

impl CpuState {
    /// Not-present: take the token, hand the field back, and make the
    /// interrupted task sleep on it on its way back to user mode; in
    /// kernel mode only hand the field back (the access then blocks in the
    /// host, as without the feature).
    pub(crate) fn not_present(&self) {
        let stats = self.stats;
        if !self.registered.load(Relaxed) {
            Stats::inc(&stats.spurious);
            return;
        }
        // The field and the entry change together (see the module doc).
        let mut table = self.table.lock();
        let tok = self.record().take_not_present();
        if tok.is_none() {
            Stats::inc(&stats.spurious);
            return;
        }
        Stats::inc(&stats.not_present);
        // SAFETY: in an interrupt handler, where the interrupted registers
        // are set; no other precondition.
        if !unsafe { ffi::kvm_apf_guest_shim_irq_from_user() } {
            Stats::inc(&stats.kernel_skipped);
            return;
        }
        if self.sleep_on_locked(&mut table, tok).is_err() {
            Stats::inc(&stats.no_entry);
        }
    }

    /// Makes the current task sleep on `tok` of this vCPU on its way back
    /// to user mode: takes an entry and queues its task_work. Fails when
    /// the table is full or the work cannot be queued (module going away).
    pub(crate) fn sleep_on(&self, tok: Token) -> Result {
        let mut table = self.table.lock();
        self.sleep_on_locked(&mut table, tok)
    }

    /// [`Self::sleep_on`] with the table locked.
    fn sleep_on_locked(&self, table: &mut TableGuard<'_>, tok: Token) -> Result {
        let idx = table.announce(tok).map_err(|_| ENOSPC)?;
        let queued = match self.works.get(idx) {
            Some(work) => {
                // The task to wake: it runs the work itself, so it lives
                // until the work freed the entry.
                work.task.store(Task::current_raw(), Relaxed);
                work.queue()
            }
            None => Err(EINVAL),
        };
        if queued.is_err() {
            // Cannot fail: `idx` was announced under this same lock, so it
            // is still `Queued`; the error is only for a wrong index.
            let _ = table.cancel(idx);
        }
        queued
    }

    /// Marks the entries of `tok` (all for `WAKE_ALL`) and wakes their
    /// sleepers, as the page-ready handler does with what it read.
    pub(crate) fn mark_ready(&self, tok: Token) -> PageReadyAction {
        let mut table = self.table.lock();
        let action = table.page_ready(tok, Token::NONE, |idx| self.wake_entry(idx));
        if tok.is_wake_all() {
            self.wake_waiter(&table);
        }
        action
    }

    /// Page-ready: take the token, hand the field back, `ACK_READY` if
    /// more wait, then wake whoever waits on the token (everyone of this
    /// vCPU for `WAKE_ALL`).
    pub(crate) fn page_ready(&self) {
        let stats = self.stats;
        if !self.registered.load(Relaxed) {
            Stats::inc(&stats.spurious);
            return;
        }
        let record = self.record();
        let tok = record.take_ready();
        // The store of 0 comes before the read of ack_ready: a page-ready
        // queued in between is then delivered with its own interrupt.
        smp_mb(Full);
        if record.ack_ready() {
            hvc::ack_ready();
        }
        self.deliver_ready(tok);
    }

    /// Wakes whoever waits on `tok` of this vCPU (everyone for `WAKE_ALL`),
    /// or clears `not_present_token` if it still holds the token, and
    /// counts what happened: the part of the page-ready handler after the
    /// token was fetched, from the record or by `GET_READY`.
    pub(crate) fn deliver_ready(&self, tok: Token) {
        let stats = self.stats;
        let record = self.record();
        let mut table = self.table.lock();
        // Unregistered (offline) CPU: its record is not the host's any more.
        let np = if self.registered.load(Relaxed) {
            record.not_present()
        } else {
            Token::NONE
        };
        let action = table.page_ready(tok, np, |idx| self.wake_entry(idx));
        if action.clear_not_present {
            record.clear_not_present();
        }
        if tok.is_wake_all() {
            // The offline callback may wait for it.
            self.wake_waiter(&table);
        }
        drop(table);
        match action.outcome {
            PageReady::Spurious => Stats::inc(&stats.spurious),
            PageReady::WakeAll(m) => {
                Stats::inc(&stats.wake_all);
                Stats::add(&stats.ready_before_sleep, m.before_sleep as u64);
            }
            PageReady::Matched(m) => {
                Stats::inc(&stats.page_ready);
                Stats::add(&stats.ready_before_sleep, m.before_sleep as u64);
            }
            PageReady::BeforeNotPresent => {
                Stats::inc(&stats.page_ready);
                Stats::inc(&stats.ready_before_sleep);
            }
            PageReady::Unmatched => {
                Stats::inc(&stats.page_ready);
                Stats::inc(&stats.unmatched);
            }
        }
    }
}

/// VM-wide page-ready (an SPI): `GET_READY` until it answers that nothing
/// more waits, handing each entry to the CPU its MPIDR affinity names
/// (`state_of`). Runs on whichever CPU took the SPI, interrupts masked.
pub(crate) fn vm_page_ready<'a>(state_of: impl Fn(u64) -> Option<&'a CpuState>) {
    let stats = &crate::stats::STATS;
    let mut fetched = false;
    loop {
        let [r0, token, mpidr, more] = hvc::get_ready();
        if r0 != SUCCESS_RET {
            break;
        }
        fetched = true;
        match state_of(mpidr) {
            Some(cs) => cs.deliver_ready(Token::from_raw(token)),
            // No CPU of this guest has that affinity: nobody to wake.
            None => Stats::inc(&stats.unmatched),
        }
        if more == 0 {
            break;
        }
    }
    if !fetched {
        Stats::inc(&stats.spurious);
    }
}
