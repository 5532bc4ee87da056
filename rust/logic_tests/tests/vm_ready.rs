// SPDX-License-Identifier: GPL-2.0

//! VM-wide page-ready (an SPI, ABI 1.1): the VM's ready queue on its own,
//! and the multi-vCPU model of `support/vm_model.rs` over random
//! interleavings of faults, completions, SPI handlers on any vCPU,
//! `DISABLE`, reset and restore.

use kvm_apf_logic::hypercall::*;
use kvm_apf_logic::token::Token;
use kvm_apf_logic::vm_ready::GetReady;
use kvm_apf_logic::vm_ready::ReadyEntry;
use kvm_apf_logic::vm_ready::VcpuQueued;
use kvm_apf_logic::vm_ready::VmReadyQueue;
use kvm_apf_logic::vm_ready::MPIDR_AFF_MASK;
use proptest::prelude::*;

#[path = "support/vm_model.rs"]
mod vm_model;
use vm_model::Op;

type Queue = VmReadyQueue<Vec<ReadyEntry>, Vec<VcpuQueued>>;

fn queue(vcpus: usize, slots: usize) -> Queue {
    let mut q = Queue::new(Vec::new(), Vec::new());
    for i in 0..vcpus {
        let (ne, nv) = q.sizes_with_one_more(slots).unwrap();
        let (idx, _, _) = q
            .add_vcpu(vec![ReadyEntry::default(); ne], vec![VcpuQueued::default(); nv], slots)
            .unwrap();
        assert_eq!(idx as usize, i);
    }
    q
}

fn t(x: u64) -> Token {
    Token::from_raw(x << 12)
}

#[test]
fn get_ready_answers() {
    let mut q = queue(2, 4);
    assert_eq!(q.get_ready_regs(), [NOT_REQUIRED_RET, 0, 0, 0]);
    assert!(q.push(0, u64::MAX, t(1)).unwrap());
    assert!(!q.push(1, 0x101, t(1)).unwrap());
    // The same IPA on two vCPUs: two entries, told apart by the MPIDR.
    assert_eq!(q.get_ready_regs(), [SUCCESS_RET, 0x1000, MPIDR_AFF_MASK, 1]);
    assert!(q.is_armed());
    assert_eq!(q.get_ready_regs(), [SUCCESS_RET, 0x1000, 0x101, 0]);
    assert!(!q.is_armed());
    assert_eq!(q.get_ready_regs(), [NOT_REQUIRED_RET, 0, 0, 0]);
}

#[test]
fn wake_all_voids_the_vcpus_entries_and_keeps_the_others_in_order() {
    let mut q = queue(2, 4);
    q.push(0, 0, t(1)).unwrap();
    q.push(1, 1, t(2)).unwrap();
    q.push(0, 0, t(3)).unwrap();
    q.push(1, 1, t(4)).unwrap();
    assert_eq!(q.queued(0), VcpuQueued { tokens: 2, wake_all: false });
    assert!(q.contains(0, t(3)) && !q.contains(1, t(3)));
    assert!(!q.push(0, 0, Token::WAKE_ALL).unwrap());
    assert_eq!(q.queued(0), VcpuQueued { tokens: 0, wake_all: true });
    let order: Vec<_> = std::iter::from_fn(|| match q.get_ready() {
        GetReady::Entry { token, mpidr, .. } => Some((mpidr, token.raw())),
        GetReady::Empty => None,
    })
    .collect();
    assert_eq!(order, [(1, 0x2000), (1, 0x4000), (0, u64::MAX)]);
    assert_eq!(q.queued(0), VcpuQueued::default());
}

#[test]
fn a_full_queue_and_unknown_vcpus_are_refused_without_allocating() {
    let mut q = queue(1, 2);
    assert_eq!(q.capacity(), 3);
    for i in 1..=3 {
        q.push(0, 0, t(i)).unwrap();
    }
    assert!(q.push(0, 0, t(4)).is_err());
    assert!(q.push(1, 0, t(4)).is_err());
    assert!(q.push(0, 0, Token::NONE).is_err());
    // A WAKE_ALL always fits: it replaces the vCPU's entries.
    q.push(0, 0, Token::WAKE_ALL).unwrap();
    assert_eq!(q.len(), 1);
}

#[test]
fn growing_keeps_the_order_and_the_counts() {
    let mut q = queue(1, 2);
    q.get_ready();
    q.push(0, 0, t(1)).unwrap();
    q.push(0, 0, t(2)).unwrap();
    q.get_ready();
    q.push(0, 0, t(3)).unwrap();
    let (ne, nv) = q.sizes_with_one_more(2).unwrap();
    assert!(q.add_vcpu(vec![ReadyEntry::default(); ne - 1], vec![VcpuQueued::default(); nv], 2).is_err());
    let (idx, _, _) = q
        .add_vcpu(vec![ReadyEntry::default(); ne], vec![VcpuQueued::default(); nv], 2)
        .unwrap();
    assert_eq!(idx, 1);
    q.push(1, 7, t(9)).unwrap();
    assert_eq!(q.queued(0).tokens, 2);
    let order: Vec<_> = std::iter::from_fn(|| match q.get_ready() {
        GetReady::Entry { token, .. } => Some(token.raw() >> 12),
        GetReady::Empty => None,
    })
    .collect();
    assert_eq!(order, [2, 3, 9]);
}

#[test]
fn remove_vcpu_leaves_the_queue_armed_and_get_ready_disarms_it() {
    let mut q = queue(2, 2);
    q.push(0, 0, t(1)).unwrap();
    assert_eq!(q.remove_vcpu(0), 1);
    assert!(q.is_armed());
    assert_eq!(q.get_ready(), GetReady::Empty);
    assert!(!q.is_armed());
    // The next push signals again.
    assert!(q.push(1, 1, t(1)).unwrap());
}

#[test]
fn signal_failure_disarms_so_the_next_push_signals_again() {
    let mut q = queue(1, 2);
    assert!(q.push(0, 0, t(1)).unwrap());
    q.signal_failed();
    assert!(q.push(0, 0, t(2)).unwrap());
}

#[test]
fn model_concurrent_faults_on_every_vcpu() {
    // 4 vCPUs fault on their own pages (and on the same IPAs), pages come
    // in out of order, the SPI is taken by one CPU only.
    let mut ops = Vec::new();
    for g in 1..=4 {
        for v in 0..4 {
            ops.push(Op::Fault { vcpu: v, gfn: g });
        }
    }
    for k in (0..16).rev() {
        ops.push(Op::Complete(k * 7));
        if k % 3 == 0 {
            ops.push(Op::TakeSpi(2));
            ops.push(Op::HandlerStep);
        }
    }
    let tot = vm_model::run(4, 4, &ops);
    assert_eq!(tot.not_present, 16);
    assert_eq!(tot.ready, 16);
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..n, 1u64..10).prop_map(|(vcpu, gfn)| Op::Fault { vcpu, gfn }),
        6 => (0usize..64).prop_map(Op::Complete),
        4 => (0..n).prop_map(Op::TakeSpi),
        6 => Just(Op::HandlerStep),
        1 => (0..n).prop_map(Op::Disable),
        1 => (0..n).prop_map(Op::Reset),
        1 => (0..n).prop_map(Op::Restore),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn model(
        (n, ops) in (1usize..5).prop_flat_map(|n| (Just(n), proptest::collection::vec(op(n), 1..200))),
        slots_log in 0u32..4,
    ) {
        let tot = vm_model::run(n, 1 << slots_log, &ops);
        prop_assert!(tot.ready <= tot.not_present);
    }
}
