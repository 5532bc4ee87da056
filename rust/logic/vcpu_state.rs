// SPDX-License-Identifier: GPL-2.0

//! The per-vCPU, guest-visible async page fault state machine.
//!
//! Pure: every method returns what the kernel side must do (return
//! registers, guest writes, interrupt line changes) as data, and the kernel
//! glue only executes it, in order. All methods run on the vCPU thread.
//!
//! # Slot accounting
//!
//! A token the guest was told "not present" about lives in the gfn table
//! until its page is in, then in the completion queue until it is delivered.
//! [`VcpuState::fault_eligible`] refuses new faults once
//! `table.len() + queue.len()` reaches the slot count, so
//! [`VcpuState::page_ready`] can always queue: no completion is lost while
//! the feature is enabled. `DISABLE` and vCPU reset clear both and cover
//! every dropped token with one `WAKE_ALL`; completions that arrive later for
//! dropped gfns are not in the table and are ignored, so nothing is
//! delivered twice.

use super::completion_queue::CompletionQueue;
use super::config::ApfConfig;
use super::config::SavedState;
use super::gfn_table::GfnTable;
use super::hypercall::Request;
use super::hypercall::SmcccError;
use super::hypercall::SUCCESS_RET;
use super::hypercall::VERSION;
use super::record;
use super::record::GuestWrite;
use super::token::Token;

/// Something the kernel glue must do, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write `token` to `not_present_token` of the record at `record`.
    WriteNotPresent {
        /// Record IPA.
        record: u64,
        /// Token.
        token: Token,
    },
    /// Write `token` to `ready_token` of the record at `record`.
    WriteReady {
        /// Record IPA.
        record: u64,
        /// Token.
        token: Token,
    },
    /// Write `version` (and clear the word after it) of the record.
    WriteVersion {
        /// Record IPA.
        record: u64,
    },
    /// Raise the not-present PPI of this vCPU.
    RaiseNp {
        /// INTID.
        intid: u32,
    },
    /// Lower the not-present PPI of this vCPU.
    LowerNp {
        /// INTID.
        intid: u32,
    },
    /// Raise the page-ready interrupt (PPI of this vCPU or SPI).
    RaiseReady {
        /// INTID.
        intid: u32,
    },
    /// Lower the page-ready interrupt.
    LowerReady {
        /// INTID.
        intid: u32,
    },
}

impl Action {
    /// The guest memory write this action is, if any (8 little-endian
    /// bytes; `None` also if the address would overflow).
    pub fn guest_write(&self) -> Option<GuestWrite> {
        match *self {
            Action::WriteNotPresent { record, token } => record::not_present_write(record, token),
            Action::WriteReady { record, token } => record::ready_write(record, token),
            Action::WriteVersion { record } => record::version_write(record),
            _ => None,
        }
    }

    /// The interrupt line change this action is, if any: `(intid, level)`.
    pub fn irq_line(&self) -> Option<(u32, bool)> {
        match *self {
            Action::RaiseNp { intid } | Action::RaiseReady { intid } => Some((intid, true)),
            Action::LowerNp { intid } | Action::LowerReady { intid } => Some((intid, false)),
            _ => None,
        }
    }
}

/// Most actions any single operation produces (restore: two lowers, one
/// write, one raise).
pub const MAX_ACTIONS: usize = 6;

/// A short, ordered list of [`Action`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Actions {
    list: [Option<Action>; MAX_ACTIONS],
    len: usize,
}

impl Actions {
    fn push(&mut self, a: Action) {
        // Never full: MAX_ACTIONS bounds every operation (tested).
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = Some(a);
            self.len += 1;
        }
    }

    /// The actions, in the order to execute them.
    pub fn iter(&self) -> impl Iterator<Item = Action> + '_ {
        self.list.iter().take(self.len).filter_map(|a| *a)
    }

    /// Number of actions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Result of a hypercall: `x0..x3` for `smccc_set_retval()`, then actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallResult {
    /// Return registers `x0..x3`.
    pub regs: [u64; 4],
    /// What to do before resuming the guest.
    pub actions: Actions,
}

impl CallResult {
    fn ok(actions: Actions) -> Self {
        Self {
            regs: [SUCCESS_RET, 0, 0, 0],
            actions,
        }
    }

    fn err(e: SmcccError) -> Self {
        Self {
            regs: [e.ret(), 0, 0, 0],
            actions: Actions::default(),
        }
    }
}

/// Whether a stage-2 fault may be handled asynchronously.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eligibility {
    /// Yes.
    Eligible,
    /// The guest has not enabled the feature (or has no record).
    NotEnabled,
    /// Taken at EL1 and the guest did not enable EL1 notifications.
    El1NotAllowed,
    /// The guest was already told this page is not present (and not yet
    /// that it is ready) and faulted on it again: block in the stage-2
    /// handler until it is in.
    AlreadyPending,
    /// The previous not-present notification is not acknowledged yet, so
    /// the record's `not_present_token` cannot be overwritten.
    NotPresentBusy,
    /// All slots are in use.
    TableFull,
    /// The `WAKE_ALL` of an earlier `DISABLE` waits for the guest to
    /// acknowledge the previous page-ready; a new token announced now would
    /// be written before it and wrongly covered by it.
    WakeAllPending,
    /// The not-present interrupt could not be taken by the guest now.
    IrqNotDeliverable,
}

/// Event counters (for debugfs/tracing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Faults handled asynchronously.
    pub async_faults: u64,
    /// Faults blocked because the guest re-faulted on a pending page.
    pub blocked_on_pending: u64,
    /// Faults blocked because a not-present notification was unacknowledged
    /// or a deferred `WAKE_ALL` was not delivered yet.
    pub np_busy: u64,
    /// Faults blocked because all slots were in use.
    pub table_full: u64,
    /// Faults blocked because the interrupt was not deliverable.
    pub not_deliverable: u64,
    /// Page-ready tokens delivered (not counting `WAKE_ALL`).
    pub ready_delivered: u64,
    /// `WAKE_ALL`s delivered.
    pub wake_all: u64,
    /// Completions ignored because their gfn had been dropped.
    pub stale_completions: u64,
}

/// Errors building a [`VcpuState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateInitError {
    /// The table storage is not a power of two larger than the slot count.
    BadTableStorage,
    /// The queue storage is shorter than the slot count.
    BadQueueStorage,
}

/// Per-vCPU async page fault state.
///
/// # Invariants
///
/// - `enabled` implies `record.is_some()`; `notify_el1` implies `enabled`.
/// - `table.len() + queue.len() <= cfg.slots`.
/// - When not `enabled`, the table and the queue are empty and
///   `np_pending` is false.
/// - `wake_all_pending` implies `ready_pending`.
#[derive(Debug)]
pub struct VcpuState<T, Q> {
    cfg: ApfConfig,
    page_shift: u32,
    record: Option<u64>,
    enabled: bool,
    notify_el1: bool,
    np_pending: bool,
    ready_pending: bool,
    wake_all_pending: bool,
    table: GfnTable<T>,
    queue: CompletionQueue<Q>,
    counters: Counters,
}

impl<T, Q> VcpuState<T, Q>
where
    T: AsRef<[u64]> + AsMut<[u64]>,
    Q: AsRef<[u64]> + AsMut<[u64]>,
{
    /// Builds the state of a vCPU of a VM configured with `cfg`.
    ///
    /// `page_shift` is the host `PAGE_SHIFT`. `table` must have
    /// `gfn_table::capacity_for(cfg.slots)` entries (any power of two larger
    /// than the slot count works), `queue` at least `cfg.slots`.
    pub fn new(
        cfg: ApfConfig,
        page_shift: u32,
        table: T,
        queue: Q,
    ) -> Result<Self, StateInitError> {
        let slots = cfg.slots_usize();
        let table = GfnTable::new(table, slots).map_err(|_| StateInitError::BadTableStorage)?;
        let queue = CompletionQueue::new(queue, slots).ok_or(StateInitError::BadQueueStorage)?;
        Ok(Self {
            cfg,
            page_shift,
            record: None,
            enabled: false,
            notify_el1: false,
            np_pending: false,
            ready_pending: false,
            wake_all_pending: false,
            table,
            queue,
            counters: Counters::default(),
        })
    }

    /// The VM configuration.
    pub fn config(&self) -> &ApfConfig {
        &self.cfg
    }

    /// Event counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether the guest enabled the feature.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Registered record IPA.
    pub fn record(&self) -> Option<u64> {
        self.record
    }

    /// Whether the not-present line is raised and not acknowledged.
    pub fn np_pending(&self) -> bool {
        self.np_pending
    }

    /// Whether the page-ready line is raised and not acknowledged.
    pub fn ready_pending(&self) -> bool {
        self.ready_pending
    }

    /// Number of gfns whose work is in flight.
    pub fn outstanding(&self) -> usize {
        self.table.len()
    }

    /// Number of completions waiting for delivery.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether the guest was told `gfn` is not present and was not told yet
    /// that it is ready (its work is in flight, or its completion queued).
    pub fn is_outstanding(&self, gfn: u64) -> bool {
        self.table.contains(gfn)
            || Token::from_gfn(gfn, self.page_shift).is_some_and(|t| self.queue.contains(t))
    }

    /// Iterates over the outstanding gfns.
    pub fn outstanding_gfns(&self) -> impl Iterator<Item = u64> + '_ {
        self.table.iter()
    }

    /// Saved state for `KVM_GET_DEVICE_ATTR`.
    pub fn save(&self) -> SavedState {
        SavedState {
            record: self.record,
            enabled: self.enabled,
            notify_el1: self.notify_el1,
        }
    }

    fn slots_in_use(&self) -> usize {
        self.table.len() + self.queue.len()
    }

    /// Writes `token` to `ready_token` and raises page-ready. Without a
    /// record there is nowhere to write, so nothing is delivered.
    fn deliver_ready(&mut self, token: Token, out: &mut Actions) {
        let Some(record) = self.record else {
            return;
        };
        out.push(Action::WriteReady { record, token });
        out.push(Action::RaiseReady {
            intid: self.cfg.ready_intid,
        });
        self.ready_pending = true;
        if token.is_wake_all() {
            self.counters.wake_all += 1;
        } else {
            self.counters.ready_delivered += 1;
        }
    }

    /// Delivers `WAKE_ALL` now, or after the pending page-ready is acked.
    fn wake_all(&mut self, out: &mut Actions) {
        if self.ready_pending {
            self.wake_all_pending = true;
        } else {
            self.deliver_ready(Token::WAKE_ALL, out);
        }
    }

    /// Drops the guest-visible queue state: table, queue, not-present.
    fn drop_tokens(&mut self, out: &mut Actions) {
        self.table.clear();
        self.queue.clear();
        if self.np_pending {
            out.push(Action::LowerNp {
                intid: self.cfg.np_intid,
            });
            self.np_pending = false;
        }
    }

    /// Handles a call decoded by [`super::hypercall::decode`].
    ///
    /// `is_ram(ipa)` tells whether the 64 bytes at `ipa` are guest RAM; it is
    /// only called for `SET_RECORD`.
    ///
    /// Beyond the ABI table: `ENABLE` while enabled succeeds and updates the
    /// flags; `SET_RECORD` of a new address while enabled succeeds (the
    /// guest moves its record); `ACK_READY` succeeds while disabled if the
    /// `WAKE_ALL` of `DISABLE` is pending, because that is the only way for
    /// the guest to lower the line.
    pub fn handle_call<F: FnOnce(u64) -> bool>(&mut self, req: Request, is_ram: F) -> CallResult {
        let mut out = Actions::default();
        match req {
            Request::Version => CallResult {
                regs: [VERSION, 0, 0, 0],
                actions: out,
            },
            Request::GetConfig => CallResult {
                regs: [
                    SUCCESS_RET,
                    u64::from(self.cfg.np_intid),
                    u64::from(self.cfg.ready_intid),
                    u64::from(self.cfg.slots),
                ],
                actions: out,
            },
            Request::SetRecord(Some(ipa)) => {
                if !is_ram(ipa) {
                    return CallResult::err(SmcccError::InvalidParameter);
                }
                self.record = Some(ipa);
                out.push(Action::WriteVersion { record: ipa });
                CallResult::ok(out)
            }
            Request::SetRecord(None) => {
                if self.enabled {
                    return CallResult::err(SmcccError::InvalidParameter);
                }
                self.record = None;
                // Nowhere to deliver a deferred WAKE_ALL any more.
                self.wake_all_pending = false;
                CallResult::ok(out)
            }
            Request::Enable(flags) => {
                if flags.notify_el1 && !self.cfg.allow_el1 {
                    return CallResult::err(SmcccError::InvalidParameter);
                }
                if self.record.is_none() {
                    return CallResult::err(SmcccError::NotRequired);
                }
                self.enabled = true;
                self.notify_el1 = flags.notify_el1;
                CallResult::ok(out)
            }
            Request::Disable => {
                if !self.enabled {
                    return CallResult::err(SmcccError::NotRequired);
                }
                self.enabled = false;
                self.notify_el1 = false;
                self.drop_tokens(&mut out);
                self.wake_all(&mut out);
                CallResult::ok(out)
            }
            Request::AckNotPresent => {
                if !self.enabled || !self.np_pending {
                    return CallResult::err(SmcccError::NotRequired);
                }
                self.np_pending = false;
                out.push(Action::LowerNp {
                    intid: self.cfg.np_intid,
                });
                CallResult::ok(out)
            }
            Request::AckReady => {
                if !self.ready_pending {
                    return CallResult::err(SmcccError::NotRequired);
                }
                self.ready_pending = false;
                out.push(Action::LowerReady {
                    intid: self.cfg.ready_intid,
                });
                if self.wake_all_pending {
                    self.wake_all_pending = false;
                    self.deliver_ready(Token::WAKE_ALL, &mut out);
                } else if let Some(token) = self.queue.pop() {
                    self.deliver_ready(token, &mut out);
                }
                CallResult::ok(out)
            }
        }
    }

    /// Decodes `x1`/`x2` and handles the call (see [`Self::handle_call`]).
    pub fn handle_raw<F: FnOnce(u64) -> bool>(
        &mut self,
        x1: u64,
        x2: u64,
        is_ram: F,
    ) -> CallResult {
        match super::hypercall::decode(x1, x2) {
            Ok(req) => self.handle_call(req, is_ram),
            Err(e) => CallResult::err(e),
        }
    }

    /// Whether a stage-2 fault on `gfn` may be handled asynchronously.
    ///
    /// `at_el0`: the fault was taken at EL0. `irq_deliverable`: the guest
    /// could take the not-present interrupt now. Counts the refusals that
    /// make the vCPU block.
    pub fn fault_eligible(&mut self, gfn: u64, at_el0: bool, irq_deliverable: bool) -> Eligibility {
        let e = self.eligibility(gfn, at_el0, irq_deliverable);
        match e {
            Eligibility::AlreadyPending => self.counters.blocked_on_pending += 1,
            Eligibility::NotPresentBusy | Eligibility::WakeAllPending => self.counters.np_busy += 1,
            Eligibility::TableFull => self.counters.table_full += 1,
            Eligibility::IrqNotDeliverable => self.counters.not_deliverable += 1,
            Eligibility::Eligible | Eligibility::NotEnabled | Eligibility::El1NotAllowed => {}
        }
        e
    }

    fn eligibility(&self, gfn: u64, at_el0: bool, irq_deliverable: bool) -> Eligibility {
        if !self.enabled || self.record.is_none() {
            Eligibility::NotEnabled
        } else if !at_el0 && !self.notify_el1 {
            Eligibility::El1NotAllowed
        } else if self.is_outstanding(gfn) {
            Eligibility::AlreadyPending
        } else if self.np_pending {
            Eligibility::NotPresentBusy
        } else if self.wake_all_pending {
            Eligibility::WakeAllPending
        } else if self.slots_in_use() >= self.cfg.slots_usize() {
            Eligibility::TableFull
        } else if !irq_deliverable {
            Eligibility::IrqNotDeliverable
        } else {
            Eligibility::Eligible
        }
    }

    /// The fault on `gfn` is being handled asynchronously (work queued):
    /// remember it and notify the guest. Re-checks the state-based part of
    /// [`Self::fault_eligible`] and returns the reason on refusal, in which
    /// case the caller must handle the fault synchronously.
    pub fn fault_started(&mut self, gfn: u64) -> Result<Actions, Eligibility> {
        let e = self.eligibility(gfn, true, true);
        if e != Eligibility::Eligible {
            return Err(e);
        }
        let (Some(record), Some(token)) = (self.record, Token::from_gfn(gfn, self.page_shift))
        else {
            return Err(Eligibility::NotEnabled);
        };
        if self.table.insert(gfn).is_err() {
            return Err(Eligibility::TableFull);
        }
        let mut out = Actions::default();
        out.push(Action::WriteNotPresent { record, token });
        out.push(Action::RaiseNp {
            intid: self.cfg.np_intid,
        });
        self.np_pending = true;
        self.counters.async_faults += 1;
        Ok(out)
    }

    /// Undoes [`Self::fault_started`] for `gfn` when the kernel side could
    /// not notify the guest (the record write or the interrupt failed):
    /// the fault is then handled synchronously and the guest never hears
    /// of this token. Returns whether `gfn` was outstanding.
    pub fn fault_aborted(&mut self, gfn: u64) -> bool {
        if !self.table.remove(gfn) {
            return false;
        }
        self.np_pending = false;
        self.counters.async_faults = self.counters.async_faults.saturating_sub(1);
        true
    }

    /// The page of `gfn` is in (worker completion, on the vCPU thread).
    /// Delivers its token now if no page-ready is pending, else queues it.
    /// Completions for gfns no longer outstanding are ignored.
    pub fn page_ready(&mut self, gfn: u64) -> Actions {
        let mut out = Actions::default();
        if !self.table.remove(gfn) {
            self.counters.stale_completions += 1;
            return out;
        }
        let Some(token) = Token::from_gfn(gfn, self.page_shift) else {
            // Not reachable: fault_started() only inserts convertible gfns.
            return out;
        };
        if self.ready_pending {
            // Cannot fail: table + queue stay within the slot count.
            if self.queue.push(token).is_err() {
                self.counters.stale_completions += 1;
            }
        } else {
            self.deliver_ready(token, &mut out);
        }
        out
    }

    /// vCPU reset: forget everything the guest registered and lower any
    /// raised line. Outstanding work completes later as stale.
    pub fn reset(&mut self) -> Actions {
        let mut out = Actions::default();
        self.drop_tokens(&mut out);
        if self.ready_pending {
            out.push(Action::LowerReady {
                intid: self.cfg.ready_intid,
            });
        }
        self.record = None;
        self.enabled = false;
        self.notify_el1 = false;
        self.ready_pending = false;
        self.wake_all_pending = false;
        out
    }

    /// Restores a validated saved state (`KVM_SET_DEVICE_ATTR`): like a
    /// reset, then the saved registration; if enabled, one `WAKE_ALL` is
    /// delivered so tasks waiting on the source host are woken.
    pub fn restore(&mut self, saved: &SavedState) -> Actions {
        let mut out = self.reset();
        self.record = saved.record;
        self.enabled = saved.enabled && saved.record.is_some();
        self.notify_el1 = self.enabled && saved.notify_el1 && self.cfg.allow_el1;
        if self.enabled {
            self.deliver_ready(Token::WAKE_ALL, &mut out);
        }
        out
    }
}
