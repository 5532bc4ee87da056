// SPDX-License-Identifier: GPL-2.0

//! Model-based tests of the per-vCPU state machine against a guest that
//! follows the documented handshake, step by step, with host events falling
//! between its steps: every ABI row, every bad input, no token overwritten
//! before the guest consumed it, and no page-ready lost or delivered twice.

use kvm_apf_logic::hypercall::*;
use kvm_apf_logic::record::ACK_READY_OFFSET;
use kvm_apf_logic::record::VERSION_OFFSET;
use kvm_apf_logic::token::Token;
use kvm_apf_logic::vcpu_state::Action;
use kvm_apf_logic::vcpu_state::Actions;
use kvm_apf_logic::vcpu_state::VcpuState;
use kvm_apf_logic::vcpu_state::Eligibility;
use kvm_apf_logic::vcpu_state::GuestMemory;
use proptest::prelude::*;

#[path = "support/vcpu_model.rs"]
mod vcpu_model;
use vcpu_model::*;

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
        4 => (0u64..8, x2()).prop_map(|(a, b)| Op::Call(a, b)),
        2 => (Just(3u64), 0u64..2).prop_map(|(a, b)| Op::Call(a, b)),
        1 => Just(Op::Call(op::ACK_READY, 0)),
        6 => (0u64..12, any::<bool>(), proptest::bool::weighted(0.9))
            .prop_map(|(gfn, el0, deliverable)| Op::Fault { gfn, el0, deliverable }),
        5 => (0u64..12).prop_map(Op::Ready),
        6 => Just(Op::GuestStep),
        1 => Just(Op::Reset),
        1 => Just(Op::Migrate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn model(slots_log in 0u32..4, allow_el1 in any::<bool>(), ops in proptest::collection::vec(op(), 1..150)) {
        run(cfg(1 << slots_log, allow_el1), ops);
    }
}

fn call(st: &mut State, mem: &mut Mem, x1: u64, x2: u64) -> (i64, Actions) {
    let r = st.handle_raw(x1, x2, mem);
    (r.regs[0] as i64, r.actions)
}

fn list(a: &Actions) -> Vec<Action> {
    a.iter().collect()
}

const REC: u64 = 0x1000;

/// The actions of a page-ready delivered into the free slot of `REC` with
/// nothing queued behind it: token, `ack_ready` clear, interrupt.
fn delivered(token: Token) -> Vec<Action> {
    vec![
        Action::WriteReady { record: REC, token },
        Action::WriteHeader { record: REC, ack_ready: false },
        Action::SignalReady { intid: 21 },
    ]
}

fn tok(gfn: u64) -> Token {
    Token::from_gfn(gfn, PAGE_SHIFT).unwrap()
}

#[test]
fn abi_rows() {
    let c = cfg(4, false);
    let mut st = state(c);
    let mut m = Mem::default();
    assert_eq!(st.handle_raw(0, 0, &mut m).regs, [0x1_0002, 0, 0, 0]);
    assert_eq!(st.handle_raw(1, 0, &mut m).regs, [0, 20, 21, 4]);
    // DISABLE and ACK_READY while disabled.
    assert_eq!(call(&mut st, &mut m, 4, 0).0, NOT_REQUIRED);
    assert_eq!(call(&mut st, &mut m, 5, 0).0, NOT_REQUIRED);
    for x1 in [6, 7, 100, u64::MAX] {
        assert_eq!(call(&mut st, &mut m, x1, 0).0, NOT_SUPPORTED);
    }
    // Enable before register.
    assert_eq!(call(&mut st, &mut m, 3, 0).0, NOT_REQUIRED);
    // Unknown flags and EL1 not allowed win over "no record".
    assert_eq!(call(&mut st, &mut m, 3, 2).0, INVALID_PARAMETER);
    assert_eq!(call(&mut st, &mut m, 3, 1).0, INVALID_PARAMETER);
    // SET_RECORD: unaligned, not RAM, ok; it initialises the record.
    assert_eq!(call(&mut st, &mut m, 2, 0x1020).0, INVALID_PARAMETER);
    assert_eq!(call(&mut st, &mut m, 2, 0x8040).0, INVALID_PARAMETER);
    assert_eq!(call(&mut st, &mut m, 2, 0x20_0000).0, INVALID_PARAMETER);
    let (rc, a) = call(&mut st, &mut m, 2, REC);
    assert_eq!(rc, SUCCESS);
    assert_eq!(
        list(&a),
        vec![
            Action::WriteNotPresent { record: REC, token: Token::NONE },
            Action::WriteReady { record: REC, token: Token::NONE },
            Action::WriteHeader { record: REC, ack_ready: false },
        ]
    );
    assert_eq!(a.iter().nth(2).unwrap().guest_write().unwrap().bytes, [1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(call(&mut st, &mut m, 3, 0).0, SUCCESS);
    // Neither moved nor unregistered while enabled.
    assert_eq!(call(&mut st, &mut m, 2, 0x2000).0, INVALID_PARAMETER);
    assert_eq!(call(&mut st, &mut m, 2, u64::MAX).0, INVALID_PARAMETER);
    assert_eq!(call(&mut st, &mut m, 5, 0).0, NOT_REQUIRED);
    // EL1 faults need NOTIFY_EL1; IPA 0 has no token.
    assert_eq!(st.fault_eligible(0x10, false, true, &mut m), Eligibility::El1NotAllowed);
    assert_eq!(st.fault_eligible(0, true, true, &mut m), Eligibility::NoToken);
    assert_eq!(st.fault_eligible(0x10, true, false, &mut m), Eligibility::IrqNotDeliverable);
    assert_eq!(st.fault_eligible(0x10, true, true, &mut m), Eligibility::Eligible);
    let a = st.fault_started(0x10).unwrap();
    assert_eq!(
        list(&a),
        vec![
            Action::WriteNotPresent { record: REC, token: Token::from_ipa(0x10_123, 12) },
            Action::SignalNp { intid: 20 },
        ]
    );
    m.set(REC, 0x10_000);
    // Re-fault on the same page: block in stage-2, counted.
    assert_eq!(st.fault_eligible(0x10, true, true, &mut m), Eligibility::AlreadyPending);
    assert_eq!(st.counters().blocked_on_pending, 1);
    // Another page while not_present_token is not cleared; then cleared.
    assert_eq!(st.fault_eligible(0x11, true, true, &mut m), Eligibility::NotPresentBusy);
    m.set(REC, 0);
    assert_eq!(st.fault_eligible(0x11, true, true, &mut m), Eligibility::Eligible);
    st.fault_started(0x11).unwrap();
    m.set(REC, 0);
    // Page-ready: delivered directly while the slot is free, no ack asked.
    let a = st.page_ready(0x11, &mut m);
    assert_eq!(list(&a), delivered(tok(0x11)));
    m.set(REC + 8, tok(0x11).raw());
    // Slot busy: queued, ack_ready set.
    let a = st.page_ready(0x10, &mut m);
    assert_eq!(list(&a), vec![Action::WriteHeader { record: REC, ack_ready: true }]);
    assert!(st.page_ready(0x10, &mut m).is_empty()); // duplicate completion
    assert_eq!(st.counters().stale_completions, 1);
    assert_eq!(st.queued(), 1);
    // ACK before the guest cleared ready_token: nothing to do.
    assert_eq!(call(&mut st, &mut m, 5, 0).0, NOT_REQUIRED);
    m.set(REC + 8, 0);
    let (rc, a) = call(&mut st, &mut m, 5, 0);
    assert_eq!(rc, SUCCESS);
    assert_eq!(list(&a), delivered(tok(0x10)));
    m.set(REC + 8, tok(0x10).raw());
    // Slots: 2 outstanding + a full table.
    for gfn in [0x12, 0x13, 0x14, 0x15] {
        assert_eq!(st.fault_eligible(gfn, true, true, &mut m), Eligibility::Eligible);
        st.fault_started(gfn).unwrap();
        m.set(REC, 0);
    }
    assert_eq!(st.fault_eligible(0x16, true, true, &mut m), Eligibility::TableFull);
    // DISABLE with page-ready unconsumed: queue dropped, WAKE_ALL waits.
    let (rc, a) = call(&mut st, &mut m, 4, 0);
    assert_eq!(rc, SUCCESS);
    assert_eq!(list(&a), vec![Action::WriteHeader { record: REC, ack_ready: true }]);
    assert_eq!(call(&mut st, &mut m, 4, 0).0, NOT_REQUIRED);
    // Completions of dropped gfns are ignored.
    assert!(st.page_ready(0x12, &mut m).is_empty());
    // The guest consumes the token; its ACK delivers WAKE_ALL, while disabled.
    m.set(REC + 8, 0);
    let (rc, a) = call(&mut st, &mut m, 5, 0);
    assert_eq!(rc, SUCCESS);
    assert_eq!(list(&a), delivered(Token::WAKE_ALL));
    m.set(REC + 8, 0);
    assert_eq!(call(&mut st, &mut m, 5, 0).0, NOT_REQUIRED);
    assert_eq!(st.counters().wake_all, 1);
    assert_eq!(call(&mut st, &mut m, 2, u64::MAX).0, SUCCESS);
    assert_eq!(call(&mut st, &mut m, 3, 0).0, NOT_REQUIRED);
}

#[test]
fn unreadable_record_blocks_instead_of_overwriting() {
    let mut st = state(cfg(4, false));
    let mut m = Mem::default();
    assert_eq!(call(&mut st, &mut m, 2, 0x7fc0).0, SUCCESS);
    assert_eq!(call(&mut st, &mut m, 3, 0).0, SUCCESS);
    st.fault_started(1).unwrap();
    // The record's page stops being readable (the VMM removed it): the
    // slot cannot be proven free, so faults block.
    struct Hole;
    impl GuestMemory for Hole {
        fn is_ram(&mut self, _: u64, _: u64) -> bool {
            false
        }
        fn read_u64(&mut self, _: u64) -> Option<u64> {
            None
        }
    }
    assert_eq!(st.fault_eligible(2, true, true, &mut Hole), Eligibility::NotPresentBusy);
}

#[test]
fn set_record_delivers_waiting_wake_all() {
    let mut st = state(cfg(1, false));
    let mut m = Mem::default();
    assert_eq!(call(&mut st, &mut m, 2, REC).0, SUCCESS);
    assert_eq!(call(&mut st, &mut m, 3, 0).0, SUCCESS);
    m.set(REC + 8, 0x5000); // an unconsumed page-ready
    st.restore(&st.save()); // makes the host read it back
    let (rc, _) = call(&mut st, &mut m, 4, 0);
    assert_eq!(rc, SUCCESS);
    // The guest moves its record before consuming: WAKE_ALL goes there.
    let (rc, a) = call(&mut st, &mut m, 2, 0x2000);
    assert_eq!(rc, SUCCESS);
    assert_eq!(a.len(), 6);
    assert_eq!(
        list(&a)[3],
        Action::WriteReady { record: 0x2000, token: Token::WAKE_ALL }
    );
}

#[test]
fn el1_allowed_and_reset() {
    let mut st = state(cfg(1, true));
    let mut m = Mem::default();
    assert_eq!(call(&mut st, &mut m, 2, 0x40).0, SUCCESS);
    assert_eq!(call(&mut st, &mut m, 3, 1).0, SUCCESS);
    assert_eq!(st.fault_eligible(7, false, true, &mut m), Eligibility::Eligible);
    st.fault_started(7).unwrap();
    st.reset();
    assert_eq!(st.save(), Default::default());
    assert!(st.page_ready(7, &mut m).is_empty());
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
    let mut st = state(cfg(4, false));
    let mut m = Mem::default();
    assert_eq!(call(&mut st, &mut m, 2, REC).0, 0);
    assert_eq!(call(&mut st, &mut m, 3, 0).0, 0);
    assert_eq!(st.fault_eligible(7, true, true, &mut m), Eligibility::Eligible);
    assert!(st.fault_started(7).is_ok());
    assert!(st.np_pending());
    // The undo clears the token from the record again.
    assert_eq!(
        list(&st.fault_aborted(7)),
        vec![Action::WriteNotPresent { record: REC, token: Token::NONE }]
    );
    assert!(!st.np_pending());
    assert_eq!(st.outstanding(), 0);
    assert_eq!(st.counters().async_faults, 0);
    assert!(st.fault_aborted(7).is_empty());
    assert!(st.page_ready(7, &mut m).is_empty());
    assert_eq!(st.fault_eligible(7, true, true, &mut m), Eligibility::Eligible);
}

#[test]
fn offsets() {
    assert_eq!(ACK_READY_OFFSET, VERSION_OFFSET + 4);
}
