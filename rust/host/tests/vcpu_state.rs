// SPDX-License-Identifier: GPL-2.0

//! Model-based tests of the per-vCPU state machine: every ABI row, every bad
//! input, and no page-ready token lost or delivered twice.

use kvm_apf_logic::config::ApfConfig;
use kvm_apf_logic::config::SavedState;
use kvm_apf_logic::gfn_table::capacity_for;
use kvm_apf_logic::hypercall::*;
use kvm_apf_logic::record::NOT_PRESENT_TOKEN_OFFSET;
use kvm_apf_logic::record::READY_TOKEN_OFFSET;
use kvm_apf_logic::vcpu_state::Action;
use kvm_apf_logic::vcpu_state::Actions;
use kvm_apf_logic::vcpu_state::Eligibility;
use kvm_apf_logic::vcpu_state::VcpuState;
use kvm_apf_logic::vcpu_state::MAX_ACTIONS;
use proptest::prelude::*;
use std::collections::HashSet;

const PAGE_SHIFT: u32 = 12;
type State = VcpuState<Vec<u64>, Vec<u64>>;

fn cfg(slots: u32, allow_el1: bool) -> ApfConfig {
    ApfConfig {
        allow_el1,
        slots,
        np_intid: 20,
        ready_intid: 40,
    }
}

fn state(c: ApfConfig) -> State {
    let n = c.slots as usize;
    VcpuState::new(c, PAGE_SHIFT, vec![0; capacity_for(n).unwrap()], vec![0; n]).unwrap()
}

/// "RAM" for the tests: the first 1 MiB except one 4 KiB hole.
fn is_ram(ipa: u64) -> bool {
    ipa < 0x10_0000 && !(0x8000..0x9000).contains(&ipa)
}

/// What the guest sees: record contents, line levels, tokens it waits for.
#[derive(Debug, Default)]
struct Guest {
    np_line: bool,
    ready_line: bool,
    /// Tokens announced not present and not yet ready or wiped.
    waiting: HashSet<u64>,
    /// A WAKE_ALL must still arrive.
    expect_wake_all: bool,
    wake_alls: u64,
    // Expected state of the model.
    record: Option<u64>,
    enabled: bool,
    notify_el1: bool,
}

impl Guest {
    /// Applies actions; checks that each raise follows the matching write.
    fn apply(&mut self, st: &State, actions: &Actions) {
        assert!(actions.len() <= MAX_ACTIONS);
        let mut written_np = None;
        let mut written_ready = None;
        for a in actions.iter() {
            if let Some(w) = a.guest_write() {
                assert_eq!(Some(w.gpa & !63), self.record, "write outside the record");
            }
            match &a {
                Action::WriteNotPresent { record, token } => {
                    assert_eq!(
                        a.guest_write().unwrap().gpa,
                        record + NOT_PRESENT_TOKEN_OFFSET as u64
                    );
                    assert!(!token.is_wake_all());
                    assert!(self.waiting.insert(token.raw()), "token announced twice");
                    written_np = Some(*token);
                }
                Action::WriteReady { record, token } => {
                    assert_eq!(
                        a.guest_write().unwrap().gpa,
                        record + READY_TOKEN_OFFSET as u64
                    );
                    assert!(!self.ready_line, "ready token overwritten before ack");
                    if token.is_wake_all() {
                        self.waiting.clear();
                        self.expect_wake_all = false;
                        self.wake_alls += 1;
                    } else {
                        assert!(
                            self.waiting.remove(&token.raw()),
                            "ready token {token:?} not waited for (dup or stale)"
                        );
                    }
                    written_ready = Some(*token);
                }
                Action::WriteVersion { .. } => {}
                Action::RaiseNp { intid } => {
                    assert_eq!(*intid, st.config().np_intid);
                    assert!(
                        written_np.take().is_some(),
                        "np raised without a token write"
                    );
                    assert!(!self.np_line);
                    self.np_line = true;
                }
                Action::LowerNp { intid } => {
                    assert_eq!(*intid, st.config().np_intid);
                    assert!(self.np_line);
                    self.np_line = false;
                }
                Action::RaiseReady { intid } => {
                    assert_eq!(*intid, st.config().ready_intid);
                    assert!(
                        written_ready.take().is_some(),
                        "ready raised without a token write"
                    );
                    self.ready_line = true;
                }
                Action::LowerReady { intid } => {
                    assert_eq!(*intid, st.config().ready_intid);
                    assert!(self.ready_line);
                    self.ready_line = false;
                }
            }
        }
        assert_eq!(self.np_line, st.np_pending());
        assert_eq!(self.ready_line, st.ready_pending());
        assert_eq!(self.enabled, st.is_enabled());
        assert_eq!(self.record, st.record());
        assert!(st.outstanding() + st.queued() <= st.config().slots as usize);
        if !st.is_enabled() {
            assert_eq!(st.outstanding(), 0);
            assert_eq!(st.queued(), 0);
        }
    }

    /// Expected x0 of a call, and updates the expected registration.
    fn expect_call(&mut self, c: &ApfConfig, x1: u64, x2: u64) -> [u64; 4] {
        let e = |code: i64| [code as u64, 0, 0, 0];
        match x1 {
            0 => [VERSION, 0, 0, 0],
            1 => [0, c.np_intid.into(), c.ready_intid.into(), c.slots.into()],
            2 if x2 == u64::MAX => {
                if self.enabled {
                    e(INVALID_PARAMETER)
                } else {
                    self.record = None;
                    self.expect_wake_all = false;
                    e(SUCCESS)
                }
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
                self.waiting.clear();
                self.expect_wake_all = true;
                e(SUCCESS)
            }
            5 if !self.enabled || !self.np_line => e(NOT_REQUIRED),
            5 => e(SUCCESS),
            6 if !self.ready_line => e(NOT_REQUIRED),
            6 => e(SUCCESS),
            _ => e(NOT_SUPPORTED),
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Call(u64, u64),
    Fault {
        gfn: u64,
        el0: bool,
        deliverable: bool,
    },
    Ready(u64),
    Reset,
    Restore {
        record: Option<u64>,
        enabled: bool,
        el1: bool,
    },
}

fn x2() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u64..0x200).prop_map(|p| p * 64),
        Just(0x8040u64),
        Just(0x20_0000u64),
        Just(u64::MAX),
        Just(0u64),
        Just(1u64),
        Just(2u64),
        Just(3u64),
        any::<u64>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..9, x2()).prop_map(|(a, b)| Op::Call(a, b)),
        2 => (Just(3u64), 0u64..2).prop_map(|(a, b)| Op::Call(a, b)),
        2 => (5u64..7).prop_map(|a| Op::Call(a, 0)),
        6 => (0u64..12, any::<bool>(), proptest::bool::weighted(0.9))
            .prop_map(|(gfn, el0, deliverable)| Op::Fault { gfn, el0, deliverable }),
        5 => (0u64..12).prop_map(Op::Ready),
        1 => Just(Op::Reset),
        1 => (proptest::option::of((0u64..8).prop_map(|p| p * 64)), any::<bool>(), any::<bool>())
            .prop_map(|(record, enabled, el1)| Op::Restore { record, enabled, el1 }),
    ]
}

/// Worker completions the test harness still owes (the model of the
/// kernel's work items: every started fault eventually completes).
fn run(c: ApfConfig, ops: Vec<Op>) {
    let mut st = state(c);
    let mut g = Guest::default();
    let mut inflight: Vec<u64> = Vec::new();
    for op in ops {
        match op {
            Op::Call(x1, x2) => {
                let expect = g.expect_call(&c, x1, x2);
                let r = st.handle_raw(x1, x2, is_ram);
                assert_eq!(r.regs, expect, "call {x1} {x2:#x}");
                g.apply(&st, &r.actions);
            }
            Op::Fault {
                gfn,
                el0,
                deliverable,
            } => {
                let pending = g.waiting.contains(&(gfn << PAGE_SHIFT));
                assert_eq!(pending, st.is_outstanding(gfn));
                let expect = if !g.enabled {
                    Eligibility::NotEnabled
                } else if !el0 && !g.notify_el1 {
                    Eligibility::El1NotAllowed
                } else if pending {
                    Eligibility::AlreadyPending
                } else if g.np_line {
                    Eligibility::NotPresentBusy
                } else if g.expect_wake_all && g.record.is_some() {
                    Eligibility::WakeAllPending
                } else if st.outstanding() + st.queued() >= c.slots as usize {
                    Eligibility::TableFull
                } else if !deliverable {
                    Eligibility::IrqNotDeliverable
                } else {
                    Eligibility::Eligible
                };
                assert_eq!(st.fault_eligible(gfn, el0, deliverable), expect);
                if expect == Eligibility::Eligible {
                    let a = st.fault_started(gfn).unwrap();
                    g.apply(&st, &a);
                    inflight.push(gfn);
                } else if matches!(
                    expect,
                    Eligibility::NotEnabled
                        | Eligibility::AlreadyPending
                        | Eligibility::NotPresentBusy
                        | Eligibility::WakeAllPending
                        | Eligibility::TableFull
                ) {
                    // fault_started() re-checks the state-based reasons.
                    assert_eq!(st.fault_started(gfn).err(), Some(expect));
                }
            }
            Op::Ready(gfn) => {
                // Only gfns with a started work item complete.
                if let Some(i) = inflight.iter().position(|&x| x == gfn) {
                    inflight.swap_remove(i);
                    let a = st.page_ready(gfn);
                    g.apply(&st, &a);
                } else {
                    let a = st.page_ready(gfn);
                    assert!(a.is_empty());
                }
            }
            Op::Reset => {
                let a = st.reset();
                g.record = None;
                g.enabled = false;
                g.notify_el1 = false;
                g.expect_wake_all = false;
                g.apply(&st, &a);
                g.waiting.clear();
                assert!(!g.np_line && !g.ready_line);
            }
            Op::Restore {
                record,
                enabled,
                el1,
            } => {
                let saved = SavedState {
                    record,
                    enabled: enabled && record.is_some(),
                    notify_el1: el1 && enabled && record.is_some() && c.allow_el1,
                };
                let a = st.restore(&saved);
                g.record = record;
                g.enabled = saved.enabled;
                g.notify_el1 = saved.notify_el1;
                g.expect_wake_all = false;
                let before = g.wake_alls;
                g.apply(&st, &a);
                assert_eq!(g.wake_alls - before, u64::from(saved.enabled));
                assert!(!g.np_line);
                g.waiting.clear();
                assert_eq!(st.save(), saved);
            }
        }
    }
    // Drain: every outstanding work item completes, the guest acks every
    // page-ready. Nothing announced while enabled may stay waiting.
    for gfn in inflight.drain(..) {
        let a = st.page_ready(gfn);
        g.apply(&st, &a);
    }
    for _ in 0..=(2 * c.slots + 2) {
        if !g.ready_line {
            break;
        }
        let r = st.handle_raw(op::ACK_READY, 0, is_ram);
        assert_eq!(r.regs[0], SUCCESS_RET);
        g.apply(&st, &r.actions);
    }
    assert!(!g.ready_line);
    assert!(g.waiting.is_empty(), "tokens lost: {:?}", g.waiting);
    assert!(!g.expect_wake_all || g.record.is_none(), "WAKE_ALL lost");
    assert_eq!(st.counters().wake_all, g.wake_alls);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn model(slots_log in 0u32..4, allow_el1 in any::<bool>(), ops in proptest::collection::vec(op(), 1..120)) {
        run(cfg(1 << slots_log, allow_el1), ops);
    }
}

fn call(st: &mut State, x1: u64, x2: u64) -> (i64, Actions) {
    let r = st.handle_raw(x1, x2, is_ram);
    (r.regs[0] as i64, r.actions)
}

#[test]
fn abi_rows() {
    let c = cfg(4, false);
    let mut st = state(c);
    assert_eq!(st.handle_raw(0, 0, is_ram).regs, [0x1_0000, 0, 0, 0]);
    assert_eq!(st.handle_raw(1, 0, is_ram).regs, [0, 20, 40, 4]);
    // Everything but VERSION/GET_CONFIG/SET_RECORD/ENABLE while disabled.
    for x1 in 4..=6 {
        assert_eq!(call(&mut st, x1, 0).0, NOT_REQUIRED);
    }
    for x1 in [7, 8, 100, u64::MAX] {
        assert_eq!(call(&mut st, x1, 0).0, NOT_SUPPORTED);
    }
    // Enable before register.
    assert_eq!(call(&mut st, 3, 0).0, NOT_REQUIRED);
    // Unknown flags and EL1 not allowed win over "no record".
    assert_eq!(call(&mut st, 3, 2).0, INVALID_PARAMETER);
    assert_eq!(call(&mut st, 3, 1).0, INVALID_PARAMETER);
    // SET_RECORD: unaligned, not RAM, ok.
    assert_eq!(call(&mut st, 2, 0x1020).0, INVALID_PARAMETER);
    assert_eq!(call(&mut st, 2, 0x8040).0, INVALID_PARAMETER);
    assert_eq!(call(&mut st, 2, 0x20_0000).0, INVALID_PARAMETER);
    let (rc, a) = call(&mut st, 2, 0x1000);
    assert_eq!(rc, SUCCESS);
    assert_eq!(
        a.iter().collect::<Vec<_>>(),
        vec![Action::WriteVersion { record: 0x1000 }]
    );
    assert_eq!(
        a.iter().next().unwrap().guest_write().unwrap().bytes,
        [1, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(call(&mut st, 3, 0).0, SUCCESS);
    // Unregister only while disabled.
    assert_eq!(call(&mut st, 2, u64::MAX).0, INVALID_PARAMETER);
    // ACKs with nothing pending.
    assert_eq!(call(&mut st, 5, 0).0, NOT_REQUIRED);
    assert_eq!(call(&mut st, 6, 0).0, NOT_REQUIRED);
    // EL1 faults need NOTIFY_EL1.
    assert_eq!(
        st.fault_eligible(0x10, false, true),
        Eligibility::El1NotAllowed
    );
    assert_eq!(
        st.fault_eligible(0x10, true, false),
        Eligibility::IrqNotDeliverable
    );
    assert_eq!(st.fault_eligible(0x10, true, true), Eligibility::Eligible);
    let a = st.fault_started(0x10).unwrap();
    assert_eq!(
        a.iter().collect::<Vec<_>>(),
        vec![
            Action::WriteNotPresent {
                record: 0x1000,
                token: kvm_apf_logic::token::Token::from_ipa(0x10_123, 12)
            },
            Action::RaiseNp { intid: 20 }
        ]
    );
    // Re-fault on the same page: block in stage-2, counted.
    assert_eq!(
        st.fault_eligible(0x10, true, true),
        Eligibility::AlreadyPending
    );
    assert_eq!(st.counters().blocked_on_pending, 1);
    // Another page while the np notification is unacknowledged.
    assert_eq!(
        st.fault_eligible(0x11, true, true),
        Eligibility::NotPresentBusy
    );
    assert_eq!(call(&mut st, 5, 0).0, SUCCESS);
    assert_eq!(call(&mut st, 5, 0).0, NOT_REQUIRED);
    // Two more faults; complete all three; deliveries are serialized by ACK.
    for gfn in [0x11, 0x12] {
        assert_eq!(st.fault_eligible(gfn, true, true), Eligibility::Eligible);
        st.fault_started(gfn).unwrap();
        assert_eq!(call(&mut st, 5, 0).0, SUCCESS);
    }
    assert_eq!(st.page_ready(0x11).len(), 2);
    assert!(st.page_ready(0x10).is_empty());
    assert!(st.page_ready(0x10).is_empty()); // duplicate completion
    assert_eq!(st.counters().stale_completions, 1);
    assert_eq!(st.queued(), 1);
    // Slots: 1 outstanding + 1 queued of 4.
    assert_eq!(st.fault_eligible(0x13, true, true), Eligibility::Eligible);
    st.fault_started(0x13).unwrap();
    assert_eq!(call(&mut st, 5, 0).0, SUCCESS);
    assert_eq!(st.fault_eligible(0x14, true, true), Eligibility::Eligible);
    st.fault_started(0x14).unwrap();
    assert_eq!(call(&mut st, 5, 0).0, SUCCESS);
    assert_eq!(st.fault_eligible(0x15, true, true), Eligibility::TableFull);
    // ACK_READY delivers the queued one.
    let (rc, a) = call(&mut st, 6, 0);
    assert_eq!(rc, SUCCESS);
    assert_eq!(a.len(), 3);
    // DISABLE with a page-ready pending: queue dropped, WAKE_ALL deferred.
    let (rc, a) = call(&mut st, 4, 0);
    assert_eq!(rc, SUCCESS);
    assert!(a.is_empty());
    assert_eq!(call(&mut st, 4, 0).0, NOT_REQUIRED);
    // Completions of dropped gfns are ignored.
    assert!(st.page_ready(0x12).is_empty());
    // The ACK of the pending token delivers WAKE_ALL, even while disabled.
    let (rc, a) = call(&mut st, 6, 0);
    assert_eq!(rc, SUCCESS);
    assert_eq!(
        a.iter().collect::<Vec<_>>(),
        vec![
            Action::LowerReady { intid: 40 },
            Action::WriteReady {
                record: 0x1000,
                token: kvm_apf_logic::token::Token::WAKE_ALL
            },
            Action::RaiseReady { intid: 40 }
        ]
    );
    assert_eq!(call(&mut st, 6, 0).0, SUCCESS);
    assert_eq!(call(&mut st, 6, 0).0, NOT_REQUIRED);
    assert_eq!(st.counters().wake_all, 1);
    assert_eq!(call(&mut st, 2, u64::MAX).0, SUCCESS);
    assert_eq!(call(&mut st, 3, 0).0, NOT_REQUIRED);
}

#[test]
fn el1_allowed() {
    let mut st = state(cfg(1, true));
    assert_eq!(call(&mut st, 2, 0x40).0, SUCCESS);
    assert_eq!(call(&mut st, 3, 1).0, SUCCESS);
    assert_eq!(st.fault_eligible(7, false, true), Eligibility::Eligible);
    assert_eq!(
        st.save(),
        SavedState {
            record: Some(0x40),
            enabled: true,
            notify_el1: true
        }
    );
    // Reset drops everything and lowers raised lines.
    st.fault_started(7).unwrap();
    let a = st.reset();
    assert_eq!(
        a.iter().collect::<Vec<_>>(),
        vec![Action::LowerNp { intid: 20 }]
    );
    assert_eq!(st.save(), SavedState::default());
    assert!(st.page_ready(7).is_empty());
}

#[test]
fn bad_storage() {
    use kvm_apf_logic::vcpu_state::StateInitError;
    let c = cfg(4, false);
    assert_eq!(
        VcpuState::new(c, 12, vec![0; 4], vec![0; 4]).err(),
        Some(StateInitError::BadTableStorage)
    );
    assert_eq!(
        VcpuState::new(c, 12, vec![0; 8], vec![0; 3]).err(),
        Some(StateInitError::BadQueueStorage)
    );
}

#[test]
fn aborted_fault_is_forgotten() {
    let c = cfg(4, false);
    let mut st = state(c);
    assert_eq!(call(&mut st, 2, 0x1000).0, 0);
    assert_eq!(call(&mut st, 3, 0).0, 0);
    assert_eq!(st.fault_eligible(7, true, true), Eligibility::Eligible);
    assert!(st.fault_started(7).is_ok());
    assert!(st.np_pending());
    assert!(st.fault_aborted(7));
    // Nothing outstanding, no not-present pending: the next fault on the
    // same page may be async again, and a late completion is stale.
    assert!(!st.np_pending());
    assert_eq!(st.outstanding(), 0);
    assert_eq!(st.counters().async_faults, 0);
    assert!(!st.fault_aborted(7));
    assert!(st.page_ready(7).is_empty());
    assert_eq!(st.fault_eligible(7, true, true), Eligibility::Eligible);
}
