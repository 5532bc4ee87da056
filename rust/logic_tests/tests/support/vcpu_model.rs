// SPDX-License-Identifier: GPL-2.0

//! The model of the per-vCPU state machine's guest, shared by the
//! property tests (`tests/vcpu_state.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/vcpu_state_model.rs`): a guest that follows the
//! documented handshake step by step, host events falling between its
//! steps, and [`run`], which checks every answer and, at the end, that no
//! page-ready was lost or delivered twice and no task was left asleep.

#![allow(dead_code)]

use kvm_apf_logic::config::ApfConfig;
use kvm_apf_logic::gfn_table::capacity_for;
use kvm_apf_logic::hypercall::*;
use kvm_apf_logic::record::NOT_PRESENT_TOKEN_OFFSET;
use kvm_apf_logic::record::READY_TOKEN_OFFSET;
use kvm_apf_logic::record::VERSION_OFFSET;
use kvm_apf_logic::token::Token;
use kvm_apf_logic::vcpu_state::Action;
use kvm_apf_logic::vcpu_state::Actions;
use kvm_apf_logic::vcpu_state::Eligibility;
use kvm_apf_logic::vcpu_state::GuestMemory;
use kvm_apf_logic::vcpu_state::VcpuState;
use kvm_apf_logic::vcpu_state::MAX_ACTIONS;
use std::collections::HashMap;
use std::collections::HashSet;

pub const PAGE_SHIFT: u32 = 12;
pub type State = VcpuState<Vec<u64>, Vec<u64>>;

pub fn cfg(slots: u32, allow_el1: bool) -> ApfConfig {
    ApfConfig {
        allow_el1,
        slots,
        np_intid: 20,
        ready_intid: 21,
    }
}

pub fn state(c: ApfConfig) -> State {
    let n = c.slots as usize;
    VcpuState::new(c, PAGE_SHIFT, vec![0; capacity_for(n).unwrap()], vec![0; n]).unwrap()
}

/// "RAM" for the tests: the first 1 MiB except one 4 KiB hole.
pub fn is_ram(ipa: u64) -> bool {
    ipa < 0x10_0000 && !(0x8000..0x9000).contains(&ipa)
}

/// Guest memory: 8-byte words, zero until written; unreadable outside RAM.
#[derive(Debug, Default)]
pub struct Mem(pub HashMap<u64, u64>);

impl Mem {
    pub fn get(&self, gpa: u64) -> u64 {
        self.0.get(&gpa).copied().unwrap_or(0)
    }
    pub fn set(&mut self, gpa: u64, v: u64) {
        self.0.insert(gpa, v);
    }
}

impl GuestMemory for Mem {
    fn is_ram(&mut self, gpa: u64, len: u64) -> bool {
        len > 0 && is_ram(gpa) && is_ram(gpa + len - 1)
    }
    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        is_ram(gpa).then(|| self.get(gpa))
    }
}

/// Where the guest's page-ready handler is: the steps an exit can fall
/// between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadyStep {
    #[default]
    Idle,
    /// Read `ready_token` (this value), not cleared yet.
    Read(u64),
    /// Cleared it; `ack_ready` not read yet.
    Cleared,
}

/// The guest: its memory, pending interrupts, what it was told; and the
/// host-side facts the model tracks to predict answers.
#[derive(Debug, Default)]
pub struct Guest {
    mem: Mem,
    np_irq: bool,
    ready_irq: bool,
    ready_step: ReadyStep,
    /// Tokens the guest took a not-present notification for.
    waiting: HashSet<u64>,
    wake_alls: u64,
    acks: u64,
    // The model of what the host promised.
    /// Tokens announced and not delivered as ready yet (nor covered by a
    /// WAKE_ALL write).
    announced: HashSet<u64>,
    /// A DISABLE's (or restore's) WAKE_ALL is not written yet.
    expect_wake_all: bool,
    /// The host wrote `ready_token` itself since the last migration (so it
    /// knows which token is there).
    ready_slot_known: bool,
    record: Option<u64>,
    enabled: bool,
    notify_el1: bool,
}

impl Guest {
    /// Applies the host's actions to guest memory and interrupts, checking
    /// the protocol: a token is only written to a cleared field, a signal
    /// follows the write of its token, a ready token was announced.
    fn apply(&mut self, st: &State, actions: &Actions) {
        assert!(actions.len() <= MAX_ACTIONS);
        let mut wrote_np = false;
        let mut wrote_ready = false;
        for a in actions.iter() {
            let w = a.guest_write();
            if let Some(w) = w {
                assert_eq!(Some(w.gpa & !63), st.record(), "write outside the record");
            }
            match a {
                Action::WriteNotPresent { record, token } => {
                    let gpa = record + NOT_PRESENT_TOKEN_OFFSET as u64;
                    assert_eq!(w.unwrap().gpa, gpa);
                    if !token.is_none() {
                        assert_eq!(self.mem.get(gpa), 0, "np token overwritten before consumed");
                        assert!(!token.is_wake_all());
                        assert!(self.announced.insert(token.raw()), "token announced twice");
                        wrote_np = true;
                    }
                    self.mem.set(gpa, token.raw());
                }
                Action::WriteReady { record, token } => {
                    let gpa = record + READY_TOKEN_OFFSET as u64;
                    assert_eq!(w.unwrap().gpa, gpa);
                    if !token.is_none() {
                        assert_eq!(self.mem.get(gpa), 0, "ready token overwritten before consumed");
                        if token.is_wake_all() {
                            self.announced.clear();
                            self.expect_wake_all = false;
                        } else {
                            assert!(
                                self.announced.remove(&token.raw()),
                                "ready token {token:?} not announced (dup or stale)"
                            );
                        }
                        wrote_ready = true;
                    }
                    self.mem.set(gpa, token.raw());
                    self.ready_slot_known = true;
                }
                Action::WriteHeader { record, ack_ready } => {
                    let w = w.unwrap();
                    assert_eq!(w.gpa, record + VERSION_OFFSET as u64);
                    assert_eq!(u64::from_le_bytes(w.bytes), 1 | (u64::from(ack_ready) << 32));
                    self.mem.set(w.gpa, u64::from_le_bytes(w.bytes));
                }
                Action::SignalNp { intid } => {
                    assert_eq!(intid, st.config().np_intid);
                    assert!(wrote_np, "np signalled without a token write");
                    self.np_irq = true;
                }
                Action::SignalReady { intid } => {
                    assert_eq!(intid, st.config().ready_intid);
                    assert!(wrote_ready, "ready signalled without a token write");
                    self.ready_irq = true;
                }
                Action::VmReady { .. } => panic!("VM-wide page-ready with a PPI"),
            }
        }
        assert_eq!(self.enabled, st.is_enabled());
        assert!(st.outstanding() + st.queued() <= st.config().slots as usize);
        if !st.is_enabled() {
            assert_eq!(st.outstanding(), 0);
            assert_eq!(st.queued(), 0);
        }
    }

    fn ack_flag(&self) -> bool {
        self.record
            .is_some_and(|r| self.mem.get(r + VERSION_OFFSET as u64) >> 32 != 0)
    }

    /// The not-present handler (the guest takes the interrupt on the
    /// instruction after the fault, before anything else can run).
    fn take_np(&mut self) {
        if !std::mem::take(&mut self.np_irq) {
            return;
        }
        let Some(r) = self.record else { return };
        let t = self.mem.get(r + NOT_PRESENT_TOKEN_OFFSET as u64);
        if t != 0 {
            self.mem.set(r + NOT_PRESENT_TOKEN_OFFSET as u64, 0);
            self.waiting.insert(t);
        }
    }

    /// One step of the page-ready handler; false if there was nothing to do.
    fn ready_step(&mut self, st: &mut State) -> bool {
        match self.ready_step {
            ReadyStep::Idle => {
                if !std::mem::take(&mut self.ready_irq) {
                    return false;
                }
                let Some(r) = self.record else {
                    return true; // spurious: nothing registered
                };
                self.ready_step = ReadyStep::Read(self.mem.get(r + READY_TOKEN_OFFSET as u64));
            }
            ReadyStep::Read(t) => {
                if let Some(r) = self.record {
                    if t != 0 {
                        self.mem.set(r + READY_TOKEN_OFFSET as u64, 0);
                        if t == Token::WAKE_ALL.raw() {
                            self.waiting.clear();
                            self.wake_alls += 1;
                        } else {
                            assert!(self.waiting.remove(&t), "woken for {t:#x}, not waiting");
                        }
                    }
                }
                self.ready_step = ReadyStep::Cleared;
            }
            ReadyStep::Cleared => {
                self.ready_step = ReadyStep::Idle;
                if self.ack_flag() {
                    let r = st.handle_raw(op::ACK_READY, 0, &mut self.mem);
                    let rc = r.regs[0] as i64;
                    assert!(rc == SUCCESS || rc == NOT_REQUIRED, "ACK_READY: {rc}");
                    assert_eq!(rc == SUCCESS, !r.actions.is_empty());
                    self.acks += 1;
                    self.apply(st, &r.actions);
                }
            }
        }
        true
    }

    /// Expected x0..x3 of a call; updates the model's registration.
    /// `None`: not predicted exactly (ACK_READY, checked on its own).
    fn expect_call(&mut self, c: &ApfConfig, x1: u64, x2: u64) -> Option<[u64; 4]> {
        let e = |code: i64| Some([code as u64, 0, 0, 0]);
        match x1 {
            0 => Some([VERSION, 0, 0, 0]),
            1 => Some([0, c.np_intid.into(), c.ready_intid.into(), c.slots.into()]),
            2 if self.enabled => e(INVALID_PARAMETER),
            2 if x2 == u64::MAX => {
                self.record = None;
                self.expect_wake_all = false;
                self.announced.clear();
                self.waiting.clear();
                e(SUCCESS)
            }
            2 if !x2.is_multiple_of(64) || !is_ram(x2) => e(INVALID_PARAMETER),
            2 => {
                self.record = Some(x2);
                e(SUCCESS)
            }
            3 if x2 & !1 != 0 => e(INVALID_PARAMETER),
            3 if x2 & 1 != 0 && !c.allow_el1 => e(INVALID_PARAMETER),
            3 if self.record.is_none() => e(NOT_REQUIRED),
            3 => {
                self.enabled = true;
                self.notify_el1 = x2 & 1 != 0;
                e(SUCCESS)
            }
            4 if !self.enabled => e(NOT_REQUIRED),
            4 => {
                self.enabled = false;
                self.notify_el1 = false;
                self.expect_wake_all = true;
                e(SUCCESS)
            }
            5 => None,
            _ => e(NOT_SUPPORTED),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Op {
    Call(u64, u64),
    Fault {
        gfn: u64,
        el0: bool,
        deliverable: bool,
    },
    Ready(u64),
    GuestStep,
    Reset,
    Migrate,
}


impl Op {
    /// Decodes one operation from the front of `data` (fuzzing input):
    /// a tag byte, then the operands it needs; `None` when `data` runs out.
    pub fn decode(data: &mut &[u8]) -> Option<Op> {
        fn byte(data: &mut &[u8]) -> Option<u8> {
            let (&b, rest) = data.split_first()?;
            *data = rest;
            Some(b)
        }
        fn word(data: &mut &[u8]) -> Option<u64> {
            let mut w = [0u8; 8];
            for b in w.iter_mut() {
                *b = byte(data)?;
            }
            Some(u64::from_le_bytes(w))
        }
        let tag = byte(data)?;
        Some(match tag % 8 {
            0 => {
                let x1 = u64::from(byte(data)? % 8);
                // Mostly record-like addresses, sometimes anything.
                let sel = byte(data)?;
                let x2 = if sel & 0x80 != 0 { word(data)? } else { u64::from(sel) * 64 };
                Op::Call(x1, x2)
            }
            1 => Op::Call(op::ACK_READY, 0),
            2 | 3 => {
                let b = byte(data)?;
                Op::Fault {
                    gfn: u64::from(b % 12),
                    el0: b & 0x10 != 0,
                    deliverable: b & 0xe0 != 0,
                }
            }
            4 => Op::Ready(u64::from(byte(data)? % 12)),
            5 => Op::GuestStep,
            6 => {
                if byte(data)? % 4 == 0 {
                    Op::Reset
                } else {
                    Op::GuestStep
                }
            }
            _ => {
                if byte(data)? % 4 == 0 {
                    Op::Migrate
                } else {
                    Op::Call(3, u64::from(tag >> 7))
                }
            }
        })
    }
}

/// Runs `ops` against a fresh state of configuration `c` and the model.
pub fn run(c: ApfConfig, ops: Vec<Op>) {
    let mut st = state(c);
    let mut g = Guest::default();
    // Work items started and not completed (each eventually completes).
    let mut inflight: Vec<u64> = Vec::new();
    for op in ops {
        match op {
            // The guest's own calls never run in the middle of its
            // page-ready handler (an interrupt handler).
            Op::Call(..) if g.ready_step != ReadyStep::Idle => {}
            Op::Call(x1, x2) => {
                let expect = g.expect_call(&c, x1, x2);
                let r = st.handle_raw(x1, x2, &mut g.mem);
                match expect {
                    Some(regs) => assert_eq!(r.regs, regs, "call {x1} {x2:#x}"),
                    None => {
                        let rc = r.regs[0] as i64;
                        assert!(rc == SUCCESS || rc == NOT_REQUIRED);
                        assert_eq!(rc == SUCCESS, !r.actions.is_empty());
                    }
                }
                g.apply(&st, &r.actions);
            }
            Op::Fault {
                gfn,
                el0,
                deliverable,
            } => {
                let token = gfn << PAGE_SHIFT;
                // Tokens dropped by DISABLE or a migration are covered by
                // the WAKE_ALL that waits: the host forgot them.
                let ready_unconsumed = g.ready_slot_known
                    && g.record
                        .is_some_and(|r| g.mem.get(r + READY_TOKEN_OFFSET as u64) == token);
                let outstanding = g.announced.contains(&token) && !g.expect_wake_all;
                let wake_all_in_slot = g
                    .record
                    .is_some_and(|r| g.mem.get(r + READY_TOKEN_OFFSET as u64) == Token::WAKE_ALL.raw());
                let np_busy = g
                    .record
                    .is_some_and(|r| g.mem.get(r + NOT_PRESENT_TOKEN_OFFSET as u64) != 0);
                let expect = if !g.enabled {
                    Eligibility::NotEnabled
                } else if !el0 && !g.notify_el1 {
                    Eligibility::El1NotAllowed
                } else if gfn == 0 {
                    Eligibility::NoToken
                } else if outstanding || ready_unconsumed {
                    Eligibility::AlreadyPending
                } else if np_busy {
                    Eligibility::NotPresentBusy
                } else if g.expect_wake_all || wake_all_in_slot {
                    Eligibility::WakeAllPending
                } else if st.outstanding() + st.queued() >= c.slots as usize {
                    Eligibility::TableFull
                } else if !deliverable {
                    Eligibility::IrqNotDeliverable
                } else {
                    Eligibility::Eligible
                };
                assert_eq!(st.is_outstanding(gfn), outstanding);
                assert_eq!(st.fault_eligible(gfn, el0, deliverable, &mut g.mem), expect);
                if expect == Eligibility::Eligible {
                    let a = st.fault_started(gfn).unwrap();
                    g.apply(&st, &a);
                    inflight.push(gfn);
                    g.take_np();
                } else if matches!(
                    expect,
                    Eligibility::NotEnabled
                        | Eligibility::AlreadyPending
                        | Eligibility::WakeAllPending
                        | Eligibility::TableFull
                        | Eligibility::NoToken
                ) {
                    // fault_started() re-checks the state-based reasons.
                    assert_eq!(st.fault_started(gfn).err(), Some(expect));
                }
            }
            Op::Ready(gfn) => {
                if let Some(i) = inflight.iter().position(|&x| x == gfn) {
                    inflight.swap_remove(i);
                }
                // Also for gfns never started or dropped: must be ignored.
                let known = g.announced.contains(&(gfn << PAGE_SHIFT))
                    && !g.expect_wake_all
                    && st.is_outstanding(gfn);
                let a = st.page_ready(gfn, &mut g.mem);
                if !known {
                    assert!(a.is_empty());
                }
                g.apply(&st, &a);
            }
            Op::GuestStep => {
                g.ready_step(&mut st);
            }
            Op::Reset => {
                st.reset();
                g.record = None;
                g.enabled = false;
                g.notify_el1 = false;
                g.expect_wake_all = false;
                g.announced.clear();
                g.waiting.clear();
                g.ready_step = ReadyStep::Idle;
                assert_eq!(st.save(), Default::default());
            }
            Op::Migrate => {
                // The guest moves to a new host with its memory and its
                // waiting tasks; work in flight on the old host is lost.
                let saved = st.save();
                st = state(c);
                st.restore(&saved);
                assert_eq!(st.save(), saved);
                inflight.clear();
                g.ready_slot_known = false;
                if saved.record.is_some() {
                    g.expect_wake_all = true;
                }
                let a = st.poll(&mut g.mem);
                g.apply(&st, &a);
            }
        }
    }
    // Drain: every work item completes, the guest runs its handler to the
    // end. Nothing announced while registered may be left undelivered.
    for gfn in inflight.drain(..) {
        let a = st.page_ready(gfn, &mut g.mem);
        g.apply(&st, &a);
    }
    for _ in 0..(3 * (2 * c.slots + 4)) {
        if !g.ready_step(&mut st) {
            break;
        }
    }
    assert!(!g.ready_irq && g.ready_step == ReadyStep::Idle, "handler never finished");
    if g.record.is_some() {
        assert!(g.announced.is_empty(), "page-ready lost: {:?}", g.announced);
        assert!(g.waiting.is_empty(), "tasks never woken: {:?}", g.waiting);
        assert!(!g.expect_wake_all, "WAKE_ALL lost");
        assert!(!g.ack_flag(), "ack_ready left set with nothing waiting");
    }
    assert_eq!(st.queued(), 0);
}

