// SPDX-License-Identifier: GPL-2.0

//! The per-vCPU, guest-visible async page fault state machine.
//!
//! Pure: every method returns what the kernel side must do (guest writes,
//! interrupts to signal, return registers) as data, and the kernel glue only
//! executes it, in order. Guest memory is read through [`GuestMemory`]. All
//! methods run on the vCPU thread, while the guest of that vCPU is stopped.
//!
//! # Notification slots
//!
//! The record holds one not-present and one page-ready token. The host
//! writes a token and signals its (edge-triggered) interrupt; the guest
//! clears the token once it has read it. No hypercall acknowledges a
//! notification: the host reads the token back when it needs the slot
//! (`np_pending` / `ready_pending` mean "written, maybe not consumed yet").
//! A fault that finds the not-present slot busy is handled synchronously. A
//! completion that finds the page-ready slot busy is queued and the record's
//! `ack_ready` set: the guest, after clearing `ready_token`, sees it and
//! calls `ACK_READY`, which delivers the next one. The guest clears the
//! token before it reads `ack_ready`, so a completion queued in between is
//! seen, and one that finds the slot clear is delivered with a new interrupt.
//!
//! # Slot accounting
//!
//! A token the guest was told "not present" about lives in the gfn table
//! until its page is in, then in the completion queue until it is delivered.
//! [`VcpuState::fault_eligible`] refuses new faults once
//! `table.len() + queue.len()` reaches the slot count, so
//! [`VcpuState::page_ready`] can always queue: no completion is lost while
//! the feature is enabled. `DISABLE` and vCPU reset clear both; `DISABLE`
//! covers every dropped token with one `WAKE_ALL`. Completions that arrive
//! later for dropped gfns are not in the table and are ignored, so nothing is
//! delivered twice.
//!
//! # VM-wide page-ready (an SPI)
//!
//! With an SPI as page-ready INTID the record's `ready_token` and
//! `ack_ready` are never used: a completion and a `WAKE_ALL` become an
//! [`Action::VmReady`], which the glue pushes to the VM's ready queue
//! (`super::vm_ready`), where the guest fetches it with `GET_READY` on any
//! vCPU. A queued entry still holds this vCPU's slot and a queued
//! `WAKE_ALL` still blocks new announcements; the glue passes what the
//! VM queue holds for this vCPU as a [`VmView`].

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
use super::record::NOT_PRESENT_TOKEN_OFFSET;
use super::record::READY_TOKEN_OFFSET;
use super::record::RECORD_SIZE;
use super::token::Token;

/// What the state machine needs of guest memory.
pub trait GuestMemory {
    /// Whether the `len` bytes at `gpa` are writable guest RAM.
    fn is_ram(&mut self, gpa: u64, len: u64) -> bool;
    /// The little-endian `u64` at `gpa`, `None` if it cannot be read.
    fn read_u64(&mut self, gpa: u64) -> Option<u64>;
}

/// Something the kernel glue must do, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write `token` to `not_present_token` of the record at `record`
    /// ([`Token::NONE`] clears it).
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
    /// Write `version` and `ack_ready` of the record.
    WriteHeader {
        /// Record IPA.
        record: u64,
        /// More page-ready notifications wait: the guest must call
        /// `ACK_READY` after clearing `ready_token`.
        ack_ready: bool,
    },
    /// Signal the not-present PPI of this vCPU (an edge).
    SignalNp {
        /// INTID.
        intid: u32,
    },
    /// Signal the page-ready PPI of this vCPU (an edge).
    SignalReady {
        /// INTID.
        intid: u32,
    },
    /// VM-wide page-ready (SPI): push (this vCPU, `token`) to the VM's
    /// ready queue and, if that arms it, signal the SPI, under the VM's
    /// lock. A `WAKE_ALL` first drops this vCPU's queued entries.
    VmReady {
        /// Token or `WAKE_ALL`.
        token: Token,
    },
}

/// What the VM's ready queue holds for this vCPU, read by the glue under
/// the VM's lock just before a fault is checked. Only entries can leave
/// the queue meanwhile (other vCPUs' `GET_READY`), so a stale view can
/// only refuse a fault that would have been eligible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmView {
    /// Page-ready tokens of this vCPU queued: slots in use.
    pub tokens: usize,
    /// A `WAKE_ALL` of this vCPU is queued.
    pub wake_all: bool,
    /// The token of the faulting gfn is queued for this vCPU.
    pub has_token: bool,
}

impl Action {
    /// The guest memory write this action is, if any (8 little-endian
    /// bytes; `None` also if the address would overflow).
    pub fn guest_write(&self) -> Option<GuestWrite> {
        match *self {
            Action::WriteNotPresent { record, token } => record::not_present_write(record, token),
            Action::WriteReady { record, token } => record::ready_write(record, token),
            Action::WriteHeader { record, ack_ready } => record::header_write(record, ack_ready),
            _ => None,
        }
    }

    /// The interrupt this action signals, if any.
    pub fn signal(&self) -> Option<u32> {
        match *self {
            Action::SignalNp { intid } | Action::SignalReady { intid } => Some(intid),
            _ => None,
        }
    }
}

/// Most actions any single operation produces (`SET_RECORD`: three writes
/// to initialise the record, then a pending `WAKE_ALL`: two writes and a
/// signal).
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
    /// The guest was already told this page is not present (and has not
    /// consumed its page-ready yet) and faulted on it again: block in the
    /// stage-2 handler until it is in.
    AlreadyPending,
    /// The guest has not cleared the previous `not_present_token` yet (or
    /// it could not be read), so it cannot be overwritten.
    NotPresentBusy,
    /// All slots are in use.
    TableFull,
    /// A `WAKE_ALL` waits for the page-ready slot, or is in it and not
    /// consumed yet: a task put to sleep on a token announced now would be
    /// woken by it, and its own page-ready would then find nobody waiting.
    WakeAllPending,
    /// The not-present interrupt could not be taken by the guest now.
    IrqNotDeliverable,
    /// The page at IPA 0: its token would be [`Token::NONE`].
    NoToken,
}

/// Event counters (for debugfs/tracing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Faults handled asynchronously.
    pub async_faults: u64,
    /// Faults blocked because the guest re-faulted on a pending page.
    pub blocked_on_pending: u64,
    /// Faults blocked because `not_present_token` was not cleared yet or a
    /// `WAKE_ALL` was not delivered yet.
    pub np_busy: u64,
    /// Faults blocked because all slots were in use.
    pub table_full: u64,
    /// Faults blocked because the interrupt was not deliverable.
    pub not_deliverable: u64,
    /// Page-ready tokens delivered (not counting `WAKE_ALL`).
    pub ready_delivered: u64,
    /// `WAKE_ALL`s delivered.
    pub wake_all: u64,
    /// Completions queued behind an unconsumed page-ready.
    pub ready_queued: u64,
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
/// - `np_pending`, `ready_pending` and `wake_all_pending` imply
///   `record.is_some()`.
#[derive(Debug)]
pub struct VcpuState<T, Q> {
    cfg: ApfConfig,
    page_shift: u32,
    record: Option<u64>,
    enabled: bool,
    notify_el1: bool,
    np_pending: bool,
    ready_pending: bool,
    /// The token last written to the page-ready slot (meaningful while
    /// `ready_pending`).
    ready_slot: Token,
    wake_all_pending: bool,
    /// Page-ready is VM-wide (an SPI): see the module documentation.
    vm_wide: bool,
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
            ready_slot: Token::NONE,
            wake_all_pending: false,
            vm_wide: !cfg.ready_is_ppi(),
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

    /// Whether a not-present token was written and not seen consumed yet.
    pub fn np_pending(&self) -> bool {
        self.np_pending
    }

    /// Whether a page-ready token was written and not seen consumed yet.
    pub fn ready_pending(&self) -> bool {
        self.ready_pending
    }

    /// Whether page-ready is VM-wide (an SPI, fetched with `GET_READY`).
    pub fn is_vm_wide(&self) -> bool {
        self.vm_wide
    }

    /// Whether page-ready notifications wait for the page-ready slot.
    pub fn ready_waiting(&self) -> bool {
        self.wake_all_pending || !self.queue.is_empty()
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

    /// Whether the page-ready of `gfn` was written and the guest has not
    /// consumed it yet: announcing the token again now would give the guest
    /// two not-present for one page-ready it has not seen.
    fn ready_unconsumed(&self, gfn: u64) -> bool {
        self.ready_pending && Token::from_gfn(gfn, self.page_shift) == Some(self.ready_slot)
    }

    fn slots_in_use(&self) -> usize {
        self.table.len() + self.queue.len()
    }

    /// Whether the token field at `offset` of the record reads as cleared.
    fn field_cleared<M: GuestMemory>(&self, mem: &mut M, offset: usize) -> bool {
        self.record
            .and_then(|r| r.checked_add(offset as u64))
            .and_then(|gpa| mem.read_u64(gpa))
            == Some(0)
    }

    /// Forgets `np_pending` if the guest cleared `not_present_token`.
    fn refresh_np<M: GuestMemory>(&mut self, mem: &mut M) {
        if self.np_pending && self.field_cleared(mem, NOT_PRESENT_TOKEN_OFFSET) {
            self.np_pending = false;
        }
    }

    /// Forgets `ready_pending` if the guest cleared `ready_token`.
    fn refresh_ready<M: GuestMemory>(&mut self, mem: &mut M) {
        if self.ready_pending && self.field_cleared(mem, READY_TOKEN_OFFSET) {
            self.ready_pending = false;
        }
    }

    /// Delivers the next waiting page-ready (`WAKE_ALL` first): token,
    /// `ack_ready` telling whether more wait, then the interrupt. The
    /// caller checked that the slot is free.
    fn deliver_next(&mut self, out: &mut Actions) -> bool {
        if self.vm_wide {
            // Nothing waits in this vCPU but a WAKE_ALL not pushed yet.
            if !core::mem::take(&mut self.wake_all_pending) {
                return false;
            }
            out.push(Action::VmReady {
                token: Token::WAKE_ALL,
            });
            self.counters.wake_all += 1;
            return true;
        }
        let Some(record) = self.record else {
            return false;
        };
        let token = if self.wake_all_pending {
            self.wake_all_pending = false;
            Token::WAKE_ALL
        } else if let Some(token) = self.queue.pop() {
            token
        } else {
            return false;
        };
        out.push(Action::WriteReady { record, token });
        out.push(Action::WriteHeader {
            record,
            ack_ready: self.ready_waiting(),
        });
        out.push(Action::SignalReady {
            intid: self.cfg.ready_intid,
        });
        self.ready_pending = true;
        self.ready_slot = token;
        if token.is_wake_all() {
            self.counters.wake_all += 1;
        } else {
            self.counters.ready_delivered += 1;
        }
        true
    }

    /// Something waits for the page-ready slot: deliver it if the slot is
    /// free, else ask the guest (`ack_ready`) to call `ACK_READY` once it
    /// has cleared the slot.
    fn push_ready<M: GuestMemory>(&mut self, mem: &mut M, out: &mut Actions) {
        if self.vm_wide {
            self.deliver_next(out);
            return;
        }
        let Some(record) = self.record else {
            return;
        };
        if !self.ready_waiting() {
            return;
        }
        self.refresh_ready(mem);
        if !self.ready_pending {
            self.deliver_next(out);
        } else {
            out.push(Action::WriteHeader {
                record,
                ack_ready: true,
            });
        }
    }

    /// Handles a call decoded by [`super::hypercall::decode`].
    ///
    /// Beyond the ABI table: `ENABLE` while enabled succeeds and updates the
    /// flags; `ACK_READY` also works while disabled, for the `WAKE_ALL` of
    /// `DISABLE`; a `WAKE_ALL` still waiting when the guest registers a
    /// record again is delivered there, and so is one for a page-ready the
    /// guest had not consumed in the old one.
    pub fn handle_call<M: GuestMemory>(&mut self, req: Request, mem: &mut M) -> CallResult {
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
                if self.enabled || !mem.is_ram(ipa, RECORD_SIZE as u64) {
                    return CallResult::err(SmcccError::InvalidParameter);
                }
                // A page-ready the guest has not consumed is wiped by the
                // initialisation below: cover it with a WAKE_ALL there.
                if !self.vm_wide {
                    self.refresh_ready(mem);
                    if self.ready_pending {
                        self.wake_all_pending = true;
                    }
                }
                self.record = Some(ipa);
                self.np_pending = false;
                self.ready_pending = false;
                out.push(Action::WriteNotPresent {
                    record: ipa,
                    token: Token::NONE,
                });
                out.push(Action::WriteReady {
                    record: ipa,
                    token: Token::NONE,
                });
                out.push(Action::WriteHeader {
                    record: ipa,
                    ack_ready: false,
                });
                self.deliver_next(&mut out);
                CallResult::ok(out)
            }
            Request::SetRecord(None) => {
                if self.enabled {
                    return CallResult::err(SmcccError::InvalidParameter);
                }
                self.record = None;
                // Nowhere to deliver anything any more.
                self.np_pending = false;
                self.ready_pending = false;
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
                self.table.clear();
                self.queue.clear();
                self.np_pending = false;
                self.wake_all_pending = true;
                self.push_ready(mem, &mut out);
                CallResult::ok(out)
            }
            Request::AckReady if self.vm_wide => CallResult::err(SmcccError::NotRequired),
            Request::AckReady => {
                self.refresh_ready(mem);
                if self.ready_pending || !self.deliver_next(&mut out) {
                    return CallResult::err(SmcccError::NotRequired);
                }
                CallResult::ok(out)
            }
            // VM-wide: answered from the VM's ready queue by the caller,
            // which does not come here for it.
            Request::GetReady => CallResult::err(SmcccError::NotSupported),
        }
    }

    /// Decodes `x1`/`x2` and handles the call (see [`Self::handle_call`]).
    pub fn handle_raw<M: GuestMemory>(&mut self, x1: u64, x2: u64, mem: &mut M) -> CallResult {
        match super::hypercall::decode(x1, x2) {
            Ok(req) => self.handle_call(req, mem),
            Err(e) => CallResult::err(e),
        }
    }

    /// Whether a stage-2 fault on `gfn` may be handled asynchronously.
    ///
    /// `at_el0`: the fault was taken at EL0. `irq_deliverable`: the guest
    /// could take the not-present interrupt now. Reads
    /// `not_present_token` back if the previous one may be unconsumed.
    /// Counts the refusals that make the vCPU block.
    pub fn fault_eligible<M: GuestMemory>(
        &mut self,
        gfn: u64,
        at_el0: bool,
        irq_deliverable: bool,
        mem: &mut M,
    ) -> Eligibility {
        self.fault_eligible_vm(gfn, at_el0, irq_deliverable, &VmView::default(), mem)
    }

    /// [`Self::fault_eligible`] with what the VM's ready queue holds for
    /// this vCPU (VM-wide page-ready; ignored otherwise).
    pub fn fault_eligible_vm<M: GuestMemory>(
        &mut self,
        gfn: u64,
        at_el0: bool,
        irq_deliverable: bool,
        vm: &VmView,
        mem: &mut M,
    ) -> Eligibility {
        self.refresh_np(mem);
        if self.ready_pending
            && (self.ready_slot.is_wake_all()
                || Token::from_gfn(gfn, self.page_shift) == Some(self.ready_slot))
        {
            self.refresh_ready(mem);
        }
        let e = self.eligibility(gfn, at_el0, irq_deliverable, vm);
        match e {
            Eligibility::AlreadyPending => self.counters.blocked_on_pending += 1,
            Eligibility::NotPresentBusy | Eligibility::WakeAllPending => self.counters.np_busy += 1,
            Eligibility::TableFull => self.counters.table_full += 1,
            Eligibility::IrqNotDeliverable => self.counters.not_deliverable += 1,
            Eligibility::Eligible
            | Eligibility::NotEnabled
            | Eligibility::El1NotAllowed
            | Eligibility::NoToken => {}
        }
        e
    }

    fn eligibility(&self, gfn: u64, at_el0: bool, irq_deliverable: bool, vm: &VmView) -> Eligibility {
        let vm = if self.vm_wide { *vm } else { VmView::default() };
        if !self.enabled || self.record.is_none() {
            Eligibility::NotEnabled
        } else if !at_el0 && !self.notify_el1 {
            Eligibility::El1NotAllowed
        } else if Token::from_gfn(gfn, self.page_shift).is_none() {
            Eligibility::NoToken
        } else if self.is_outstanding(gfn) || self.ready_unconsumed(gfn) || vm.has_token {
            Eligibility::AlreadyPending
        } else if self.np_pending {
            Eligibility::NotPresentBusy
        } else if self.wake_all_pending
            || (self.ready_pending && self.ready_slot.is_wake_all())
            || vm.wake_all
        {
            Eligibility::WakeAllPending
        } else if self.slots_in_use().saturating_add(vm.tokens) >= self.cfg.slots_usize() {
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
        self.fault_started_vm(gfn, &VmView::default())
    }

    /// [`Self::fault_started`] with the VM queue's view (VM-wide
    /// page-ready), as for [`Self::fault_eligible_vm`].
    pub fn fault_started_vm(&mut self, gfn: u64, vm: &VmView) -> Result<Actions, Eligibility> {
        let e = self.eligibility(gfn, true, true, vm);
        if e != Eligibility::Eligible {
            return Err(e);
        }
        let (Some(record), Some(token)) = (self.record, Token::from_gfn(gfn, self.page_shift))
        else {
            return Err(Eligibility::NoToken);
        };
        if self.table.insert(gfn).is_err() {
            return Err(Eligibility::TableFull);
        }
        let mut out = Actions::default();
        out.push(Action::WriteNotPresent { record, token });
        out.push(Action::SignalNp {
            intid: self.cfg.np_intid,
        });
        self.np_pending = true;
        self.counters.async_faults += 1;
        Ok(out)
    }

    /// Undoes [`Self::fault_started`] for `gfn` when the kernel side could
    /// not notify the guest (the record write or the interrupt failed): the
    /// fault is then handled synchronously and the guest never hears of
    /// this token. Returns the write that clears `not_present_token` again
    /// (best effort: if it fails too, the slot stays busy and later faults
    /// block, which is safe); empty if `gfn` was not outstanding.
    pub fn fault_aborted(&mut self, gfn: u64) -> Actions {
        let mut out = Actions::default();
        if !self.table.remove(gfn) {
            return out;
        }
        if let Some(record) = self.record {
            out.push(Action::WriteNotPresent {
                record,
                token: Token::NONE,
            });
        }
        self.np_pending = false;
        self.counters.async_faults = self.counters.async_faults.saturating_sub(1);
        out
    }

    /// The page of `gfn` is in (worker completion, on the vCPU thread).
    /// Delivers its token now if the page-ready slot is free, else queues
    /// it. Completions for gfns no longer outstanding are ignored.
    pub fn page_ready<M: GuestMemory>(&mut self, gfn: u64, mem: &mut M) -> Actions {
        let mut out = Actions::default();
        if !self.table.remove(gfn) {
            self.counters.stale_completions += 1;
            return out;
        }
        let Some(token) = Token::from_gfn(gfn, self.page_shift) else {
            // Not reachable: fault_started() only inserts convertible gfns.
            return out;
        };
        if self.vm_wide {
            out.push(Action::VmReady { token });
            self.counters.ready_delivered += 1;
            return out;
        }
        // Cannot fail: table + queue stay within the slot count.
        if self.queue.push(token).is_err() {
            self.counters.stale_completions += 1;
            return out;
        }
        self.push_ready(mem, &mut out);
        if self.ready_waiting() {
            self.counters.ready_queued += 1;
        }
        out
    }

    /// Delivers what waits for the page-ready slot, if it is free now
    /// (the `WAKE_ALL` of a restore, on the first `KVM_RUN` after it).
    pub fn poll<M: GuestMemory>(&mut self, mem: &mut M) -> Actions {
        let mut out = Actions::default();
        self.push_ready(mem, &mut out);
        out
    }

    /// vCPU reset: forget everything the guest registered. Outstanding work
    /// completes later as stale. A notification already signalled stays
    /// pending in the vGIC; the guest finds its token cleared (or never
    /// registers again) and ignores it.
    pub fn reset(&mut self) {
        self.table.clear();
        self.queue.clear();
        self.record = None;
        self.enabled = false;
        self.notify_el1 = false;
        self.np_pending = false;
        self.ready_pending = false;
        self.wake_all_pending = false;
    }

    /// Restores a validated saved state (`KVM_SET_DEVICE_ATTR`): like a
    /// reset, then the saved registration. If a record is registered, a
    /// `WAKE_ALL` waits, so that tasks waiting on the source host are woken
    /// (also while disabled: the source may still have owed the `WAKE_ALL`
    /// of a `DISABLE`; one too many only makes tasks retry). The record was
    /// migrated with guest memory and may hold unconsumed tokens, so both
    /// slots are read back before use. Nothing is written here: the caller
    /// runs [`Self::poll`] on the vCPU thread.
    pub fn restore(&mut self, saved: &SavedState) {
        self.reset();
        self.record = saved.record;
        self.enabled = saved.enabled && saved.record.is_some();
        self.notify_el1 = self.enabled && saved.notify_el1 && self.cfg.allow_el1;
        if self.record.is_some() {
            self.np_pending = true;
            // VM-wide: the host never uses ready_token.
            self.ready_pending = !self.vm_wide;
            self.wake_all_pending = true;
        }
    }
}
