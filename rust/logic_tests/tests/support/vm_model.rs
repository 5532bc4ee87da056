// SPDX-License-Identifier: GPL-2.0

//! The model of VM-wide page-ready (an SPI, ABI 1.1) over several vCPUs:
//! the per-vCPU state machines and the VM's ready queue driven as the
//! kernel glue drives them (`rust/kvm_apf/provider.rs`), and a guest whose
//! SPI handler runs on any vCPU: `loop { GET_READY; wake (cpu of x2, x1);
//! if x3 == 0 break }`. Host and guest steps interleave freely. [`run`]
//! checks, after every step, the queue's invariant (non-empty implies
//! armed, and armed with entries implies the SPI pending or a handler that
//! will call again) and the slot accounting; for every page-ready popped,
//! that its token was announced on that vCPU and not delivered or voided
//! since (no duplicate, no stale); and at the end, once every page is in
//! and every interrupt taken, that no page-ready was lost and no task is
//! left asleep.

#![allow(dead_code)]

use kvm_apf_logic::config::ApfConfig;
use kvm_apf_logic::gfn_table::capacity_for;
use kvm_apf_logic::hypercall::*;
use kvm_apf_logic::record::NOT_PRESENT_TOKEN_OFFSET;
use kvm_apf_logic::token::Token;
use kvm_apf_logic::vcpu_state::Action;
use kvm_apf_logic::vcpu_state::Actions;
use kvm_apf_logic::vcpu_state::Eligibility;
use kvm_apf_logic::vcpu_state::GuestMemory;
use kvm_apf_logic::vcpu_state::VcpuState;
use kvm_apf_logic::vcpu_state::VmView;
use kvm_apf_logic::vm_ready::entries_for;
use kvm_apf_logic::vm_ready::MPIDR_AFF_MASK;
use kvm_apf_logic::vm_ready::ReadyEntry;
use kvm_apf_logic::vm_ready::VcpuQueued;
use kvm_apf_logic::vm_ready::VmReadyQueue;
use std::collections::HashMap;
use std::collections::HashSet;

pub const PAGE_SHIFT: u32 = 12;
pub const SPI: u32 = 40;
type State = VcpuState<Vec<u64>, Vec<u64>>;
type Queue = VmReadyQueue<Vec<ReadyEntry>, Vec<VcpuQueued>>;

/// A host event or a guest step.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// vCPU `vcpu` faults on page `gfn` at EL0 (the guest takes the
    /// not-present PPI before its next instruction).
    Fault { vcpu: usize, gfn: u64 },
    /// The `n`-th fault-in in flight completes; its vCPU's thread maps the
    /// page and hands the completion to the state machine.
    Complete(usize),
    /// The SPI is taken by `cpu` (if pending and no handler runs).
    TakeSpi(usize),
    /// The running SPI handler makes its next `GET_READY`.
    HandlerStep,
    /// The guest of `vcpu` calls `DISABLE` (and `ENABLE` again).
    Disable(usize),
    /// vCPU `vcpu` is reset; the guest registers and enables again.
    Reset(usize),
    /// Migration restore of `vcpu`'s saved state.
    Restore(usize),
}

impl Op {
    /// Decodes one operation from the front of `data` (fuzzing input): a
    /// tag byte and an operand byte; `None` when `data` runs out. Disable,
    /// reset and restore are rarer than the rest.
    pub fn decode(data: &mut &[u8]) -> Option<Op> {
        let (&tag, rest) = data.split_first()?;
        let (&b, rest) = rest.split_first()?;
        *data = rest;
        let i = usize::from(b);
        Some(match tag % 8 {
            0 | 1 => Op::Fault { vcpu: i % 4, gfn: 1 + u64::from(b >> 2) % 9 },
            2 => Op::Complete(i),
            3 => Op::TakeSpi(i),
            4 | 5 => Op::HandlerStep,
            _ => match b % 16 {
                0 => Op::Disable(i >> 4),
                1 => Op::Reset(i >> 4),
                2 => Op::Restore(i >> 4),
                _ => Op::HandlerStep,
            },
        })
    }
}

/// MPIDR affinity the model gives vCPU `i` (Aff0 and Aff3, to check the
/// mask).
pub fn mpidr(i: usize) -> u64 {
    (i as u64 & 0xff) | ((i as u64 & 1) << 32) | 0x8000_0000
}

fn record(i: usize) -> u64 {
    0x1000 * (i as u64 + 1)
}

#[derive(Default)]
struct Mem(HashMap<u64, u64>);

impl GuestMemory for Mem {
    fn is_ram(&mut self, gpa: u64, len: u64) -> bool {
        len > 0 && gpa < 0x10_0000
    }
    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        Some(self.0.get(&gpa).copied().unwrap_or(0))
    }
}

/// One vCPU: host state, its queue index, and the model's facts.
struct Vcpu {
    st: State,
    idx: u32,
    /// The guest's sleepers of this vCPU, keyed by token.
    waiting: HashSet<u64>,
    /// Tokens announced and owed a page-ready (not popped, not voided).
    owed: HashSet<u64>,
    /// A WAKE_ALL was pushed and not popped yet.
    wake_all_owed: bool,
}

/// Everything the run checks and counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub not_present: u64,
    pub ready: u64,
    pub wake_all: u64,
    pub spurious: u64,
    pub get_ready: u64,
}

struct World {
    c: ApfConfig,
    vcpus: Vec<Vcpu>,
    q: Queue,
    mem: Mem,
    spi_pending: bool,
    /// The vCPU running the SPI handler, if any (it calls again).
    handler: Option<usize>,
    inflight: Vec<(usize, u64)>,
    totals: Totals,
}

impl World {
    fn new(n: usize, slots: u32) -> Self {
        let c = ApfConfig {
            allow_el1: false,
            slots,
            np_intid: 20,
            ready_intid: SPI,
        };
        let mut q = Queue::new(Vec::new(), Vec::new());
        let mut vcpus = Vec::new();
        for _ in 0..n {
            let (ne, nv) = q.sizes_with_one_more(slots as usize).unwrap();
            let (idx, _, _) = q
                .add_vcpu(vec![ReadyEntry::default(); ne], vec![VcpuQueued::default(); nv], slots as usize)
                .unwrap();
            let s = slots as usize;
            let st = VcpuState::new(c, PAGE_SHIFT, vec![0; capacity_for(s).unwrap()], vec![0; s]).unwrap();
            assert!(st.is_vm_wide());
            vcpus.push(Vcpu {
                st,
                idx,
                waiting: HashSet::new(),
                owed: HashSet::new(),
                wake_all_owed: false,
            });
        }
        assert_eq!(q.capacity(), entries_for(n, slots as usize).unwrap());
        let mut w = World {
            c,
            vcpus,
            q,
            mem: Mem::default(),
            spi_pending: false,
            handler: None,
            inflight: Vec::new(),
            totals: Totals::default(),
        };
        for i in 0..n {
            w.register(i);
        }
        w
    }

    fn call(&mut self, i: usize, x1: u64, x2: u64) -> [u64; 4] {
        if x1 == op::GET_READY {
            // The glue answers GET_READY from the VM queue, on any vCPU.
            return self.q.get_ready_regs();
        }
        let r = self.vcpus[i].st.handle_raw(x1, x2, &mut self.mem);
        self.exec(i, &r.actions);
        r.regs
    }

    fn register(&mut self, i: usize) {
        assert_eq!(self.call(i, op::SET_RECORD, record(i))[0], SUCCESS_RET);
        assert_eq!(self.call(i, op::ENABLE, 0)[0], SUCCESS_RET);
    }

    /// The glue's executor: record writes, the not-present PPI (taken at
    /// once by the guest's handler of that vCPU), VM queue pushes.
    fn exec(&mut self, i: usize, actions: &Actions) {
        for a in actions.iter() {
            match a {
                Action::WriteNotPresent { record: r, token } => {
                    assert_eq!(r, record(i));
                    let gpa = r + NOT_PRESENT_TOKEN_OFFSET as u64;
                    if !token.is_none() {
                        assert_eq!(self.mem.0.get(&gpa).copied().unwrap_or(0), 0);
                    }
                    self.mem.0.insert(gpa, token.raw());
                }
                Action::WriteReady { token, .. } => {
                    assert!(token.is_none(), "VM-wide page-ready wrote ready_token {token:?}");
                }
                Action::WriteHeader { ack_ready, .. } => assert!(!ack_ready),
                Action::SignalNp { intid } => {
                    assert_eq!(intid, self.c.np_intid);
                    // The guest's not-present handler.
                    let gpa = record(i) + NOT_PRESENT_TOKEN_OFFSET as u64;
                    let t = self.mem.0.insert(gpa, 0).unwrap_or(0);
                    assert_ne!(t, 0);
                    assert!(self.vcpus[i].waiting.insert(t), "two sleepers on {t:#x}");
                    assert!(self.vcpus[i].owed.insert(t), "{t:#x} announced twice");
                    self.totals.not_present += 1;
                }
                Action::SignalReady { .. } => panic!("page-ready PPI signalled with an SPI"),
                Action::VmReady { token } => {
                    let v = &mut self.vcpus[i];
                    if token.is_wake_all() {
                        v.owed.clear();
                        v.wake_all_owed = true;
                    } else {
                        assert!(v.owed.contains(&token.raw()), "page-ready of {token:?} not owed");
                    }
                    if self.q.push(v.idx, mpidr(i), token).expect("VM queue full") {
                        self.spi_pending = true;
                    }
                }
            }
        }
    }

    fn fault(&mut self, i: usize, gfn: u64) {
        let v = &mut self.vcpus[i];
        let token = Token::from_gfn(gfn, PAGE_SHIFT);
        let queued = self.q.queued(v.idx);
        let view = VmView {
            tokens: queued.tokens as usize,
            wake_all: queued.wake_all,
            has_token: token.is_some_and(|t| self.q.contains(v.idx, t)),
        };
        let e = v.st.fault_eligible_vm(gfn, true, true, &view, &mut self.mem);
        if let Some(t) = token {
            if view.has_token {
                assert_eq!(e, Eligibility::AlreadyPending, "{t:?} announced again while queued");
            }
            if v.waiting.contains(&t.raw()) {
                assert_ne!(e, Eligibility::Eligible, "{t:?} announced again while a task waits on it");
            }
        }
        if view.wake_all {
            assert_ne!(e, Eligibility::Eligible, "announced behind a queued WAKE_ALL");
        }
        if e != Eligibility::Eligible {
            return;
        }
        let actions = v.st.fault_started_vm(gfn, &view).expect("eligible, then refused");
        self.exec(i, &actions);
        self.inflight.push((i, gfn));
    }

    fn complete(&mut self, n: usize) {
        if self.inflight.is_empty() {
            return;
        }
        let (i, gfn) = self.inflight.swap_remove(n % self.inflight.len());
        let actions = self.vcpus[i].st.page_ready(gfn, &mut self.mem);
        self.exec(i, &actions);
    }

    fn take_spi(&mut self, cpu: usize) {
        if self.spi_pending && self.handler.is_none() {
            self.spi_pending = false;
            self.handler = Some(cpu % self.vcpus.len());
        }
    }

    fn handler_step(&mut self) {
        let Some(cpu) = self.handler else { return };
        self.totals.get_ready += 1;
        let r = self.call(cpu, op::GET_READY, 0);
        if r[0] != SUCCESS_RET {
            assert_eq!(r[0], NOT_REQUIRED_RET);
            self.totals.spurious += 1;
            self.handler = None;
            return;
        }
        assert!(r[3] <= 1);
        // The guest finds the announcing CPU by its MPIDR.
        let Some(k) = (0..self.vcpus.len()).find(|&k| mpidr(k) & MPIDR_AFF_MASK == r[2]) else {
            panic!("GET_READY named MPIDR {:#x}, no such vCPU", r[2]);
        };
        let v = &mut self.vcpus[k];
        if r[1] == Token::WAKE_ALL.raw() {
            assert!(std::mem::take(&mut v.wake_all_owed), "WAKE_ALL of vCPU {k} twice");
            v.waiting.clear();
            self.totals.wake_all += 1;
        } else {
            assert!(v.owed.remove(&r[1]), "page-ready {:#x} of vCPU {k}: duplicate or stale", r[1]);
            assert!(v.waiting.remove(&r[1]), "page-ready {:#x} of vCPU {k}: nobody waits", r[1]);
            self.totals.ready += 1;
        }
        if r[3] == 0 {
            self.handler = None;
        }
    }

    fn disable(&mut self, i: usize) {
        assert_eq!(self.call(i, op::DISABLE, 0)[0], SUCCESS_RET);
        // Fault-ins in flight complete as stale.
        assert_eq!(self.call(i, op::ENABLE, 0)[0], SUCCESS_RET);
    }

    fn reset(&mut self, i: usize) {
        let v = &mut self.vcpus[i];
        v.st.reset();
        // The glue drops the vCPU's VM-queue entries at reset.
        self.q.remove_vcpu(v.idx);
        // A reset CPU's tasks were woken by the guest (offline, reboot).
        v.waiting.clear();
        v.owed.clear();
        v.wake_all_owed = false;
        self.mem.0.insert(record(i) + NOT_PRESENT_TOKEN_OFFSET as u64, 0);
        self.register(i);
    }

    fn restore(&mut self, i: usize) {
        let v = &mut self.vcpus[i];
        let saved = v.st.save();
        v.st.restore(&saved);
        self.q.remove_vcpu(v.idx);
        // Every token announced before is void; the WAKE_ALL follows at
        // the next KVM_RUN (poll).
        v.owed.clear();
        let actions = v.st.poll(&mut self.mem);
        assert!(actions.iter().any(|a| a == Action::VmReady { token: Token::WAKE_ALL }));
        self.exec(i, &actions);
    }

    fn check(&self) {
        if !self.q.is_empty() {
            assert!(self.q.is_armed(), "entries queued, queue not armed");
            assert!(
                self.spi_pending || self.handler.is_some(),
                "entries queued with no SPI pending and no handler to call again: lost"
            );
        }
        for v in &self.vcpus {
            let q = self.q.queued(v.idx);
            assert!(v.st.outstanding() + q.tokens as usize <= self.c.slots as usize, "slots exceeded");
            assert_eq!(q.wake_all, v.wake_all_owed);
        }
        assert!(self.q.len() <= self.q.capacity());
    }

    fn step(&mut self, op: Op) {
        let n = self.vcpus.len();
        match op {
            Op::Fault { vcpu, gfn } => self.fault(vcpu % n, gfn),
            Op::Complete(k) => self.complete(k),
            Op::TakeSpi(cpu) => self.take_spi(cpu),
            Op::HandlerStep => self.handler_step(),
            Op::Disable(i) => self.disable(i % n),
            Op::Reset(i) => self.reset(i % n),
            Op::Restore(i) => self.restore(i % n),
        }
        self.check();
    }
}

/// Runs `ops` on `n` vCPUs of `slots` slots, then completes every fault
/// and takes every interrupt; panics on any broken promise. Returns the
/// totals.
pub fn run(n: usize, slots: u32, ops: &[Op]) -> Totals {
    let mut w = World::new(n, slots);
    for &op in ops {
        w.step(op);
    }
    // Drain: every page comes in, every SPI is taken, on rotating CPUs.
    let mut cpu = 0;
    let mut guard = 0;
    while !w.inflight.is_empty() || w.spi_pending || w.handler.is_some() {
        guard += 1;
        assert!(guard < 100_000, "drain does not end");
        if w.handler.is_some() {
            w.step(Op::HandlerStep);
        } else if w.spi_pending {
            cpu += 1;
            w.step(Op::TakeSpi(cpu));
        } else {
            w.step(Op::Complete(0));
        }
    }
    assert!(w.q.is_empty(), "entries left in the VM queue");
    assert!(!w.q.is_armed(), "queue left armed with nothing queued");
    for (k, v) in w.vcpus.iter().enumerate() {
        assert!(v.waiting.is_empty(), "vCPU {k}: tasks left asleep on {:x?}", v.waiting);
        assert!(v.owed.is_empty(), "vCPU {k}: page-ready owed and never delivered");
        assert!(!v.wake_all_owed, "vCPU {k}: WAKE_ALL never delivered");
    }
    w.totals
}
