// SPDX-License-Identifier: GPL-2.0

//! Bodies of the fuzz targets: each takes the fuzzer's bytes, feeds them to
//! the pure logic and checks what it answers against an independent
//! statement of the documented behaviour, panicking on any disagreement.
//! `fuzz_targets/*.rs` hand them to libFuzzer; `tests/fuzz_corpus.rs`
//! replays the checked-in corpus through them in `cargo test`.

use kvm_apf_logic::config::validate_cap;
use kvm_apf_logic::config::ApfConfig;
use kvm_apf_logic::config::AsyncPfState;
use kvm_apf_logic::config::CapRequest;
use kvm_apf_logic::config::SavedState;
use kvm_apf_logic::config::CAP_KNOWN_FLAGS;
use kvm_apf_logic::config::MAX_SLOTS;
use kvm_apf_logic::config::STATE_SIZE;
use kvm_apf_logic::hypercall::decode;
use kvm_apf_logic::hypercall::Request;
use kvm_apf_logic::hypercall::SmcccError;
use zerocopy::FromBytes;

#[path = "../tests/support/vcpu_model.rs"]
pub mod vcpu_model;
#[path = "../tests/support/vm_model.rs"]
pub mod vm_model;

/// Little-endian `u64` number `i` of `data`, zero-padded.
fn word(data: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    for (j, b) in w.iter_mut().enumerate() {
        *b = data.get(i * 8 + j).copied().unwrap_or(0);
    }
    u64::from_le_bytes(w)
}

/// `decode(x1, x2)` against the ABI table of Documentation/async-pf.rst.
pub fn hypercall_decode(data: &[u8]) {
    let (x1, x2) = (word(data, 0), word(data, 1));
    let want = match x1 {
        0 => Ok(Request::Version),
        1 => Ok(Request::GetConfig),
        2 if x2 == u64::MAX => Ok(Request::SetRecord(None)),
        2 if x2 % 64 != 0 => Err(SmcccError::InvalidParameter),
        2 => Ok(Request::SetRecord(Some(x2))),
        3 if x2 > 1 => Err(SmcccError::InvalidParameter),
        3 => Ok(Request::Enable(
            kvm_apf_logic::hypercall::EnableFlags { notify_el1: x2 == 1 },
        )),
        4 => Ok(Request::Disable),
        5 => Ok(Request::AckReady),
        6 => Ok(Request::GetReady),
        _ => Err(SmcccError::NotSupported),
    };
    assert_eq!(decode(x1, x2), want, "x1 {x1:#x} x2 {x2:#x}");
}

/// The VMM's input: `KVM_ENABLE_CAP` arguments and the vCPU attribute.
pub fn vmm_input(data: &[u8]) {
    let args = [word(data, 0), word(data, 1), word(data, 2), word(data, 3)];
    let [flags, slots, np, ready] = args;
    match validate_cap(&args) {
        Ok(CapRequest::Disable) => {
            assert_eq!(flags & !CAP_KNOWN_FLAGS, 0);
            assert_eq!(flags, 0, "disable with flags {flags:#x}");
        }
        Ok(CapRequest::Enable(cfg)) => {
            assert_eq!(flags & !CAP_KNOWN_FLAGS, 0);
            assert_ne!(flags & 1, 0);
            assert_eq!(cfg.allow_el1, flags & 2 != 0);
            let want_slots = if slots == 0 { 64 } else { slots };
            assert_eq!(u64::from(cfg.slots), want_slots);
            assert!(cfg.slots.is_power_of_two() && cfg.slots <= MAX_SLOTS);
            if flags & 4 != 0 {
                // NP_SDEI: no not-present INTID.
                assert!(np == 0 && cfg.np_is_sdei());
            } else {
                assert!((16..=31).contains(&np) && u64::from(cfg.np_intid) == np);
            }
            assert!((16..=1019).contains(&ready) && u64::from(cfg.ready_intid) == ready);
            assert_ne!(np, ready);
        }
        Err(_) => {
            let slots_ok = slots == 0 || (slots.is_power_of_two() && slots <= u64::from(MAX_SLOTS));
            let enable = flags & 1 != 0;
            let sdei = flags & 4 != 0;
            assert!(
                flags & !CAP_KNOWN_FLAGS != 0
                    || (!enable && flags & 6 != 0)
                    || (enable
                        && (!slots_ok
                            || (sdei && np != 0)
                            || (!sdei && !(16..=31).contains(&np))
                            || !(16..=1019).contains(&ready)
                            || np == ready)),
                "refused {args:x?}"
            );
        }
    }

    // The attribute: whatever decodes encodes back to itself.
    let mut raw = [0u8; STATE_SIZE];
    for (i, b) in raw.iter_mut().enumerate() {
        *b = data.get(32 + i).copied().unwrap_or(0);
    }
    let Ok(state) = AsyncPfState::read_from_bytes(&raw[..]) else {
        panic!("64 bytes are an AsyncPfState");
    };
    let allow_el1 = data.get(96).is_some_and(|b| b & 1 != 0);
    let vm_cfg = ApfConfig {
        allow_el1,
        slots: 64,
        np_intid: 16,
        ready_intid: 17,
    };
    if let Ok(saved) = SavedState::decode(&state, &vm_cfg) {
        let again = saved.encode(&vm_cfg);
        assert_eq!(SavedState::decode(&again, &vm_cfg), Ok(saved));
        assert!(state.config == [0; 4] || state.config == vm_cfg.cap_args());
        assert_eq!(again.record_gpa, state.record_gpa);
        assert_eq!(again.flags, state.flags);
        assert!(state.reserved.iter().all(|&r| r == 0));
        if let Some(gpa) = saved.record {
            assert_eq!(gpa % 64, 0);
        }
        assert!(!saved.notify_el1 || (saved.enabled && allow_el1));
        assert!(!saved.enabled || saved.record.is_some());
    }
}

/// The per-vCPU state machine against the model of `tests/vcpu_state.rs`:
/// the first byte picks the configuration, the rest are operations.
pub fn vcpu_state_model(data: &[u8]) {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let cfg = vcpu_model::cfg(1 << (first % 4), first & 4 != 0);
    let mut ops = Vec::new();
    while ops.len() < 400 {
        match vcpu_model::Op::decode(&mut rest) {
            Some(op) => ops.push(op),
            None => break,
        }
    }
    vcpu_model::run(cfg, ops);
}

/// VM-wide page-ready (an SPI) over several vCPUs against the model of
/// `tests/vm_ready.rs`: the first byte picks the number of vCPUs and the
/// slots, the rest are operations.
pub fn vm_ready_model(data: &[u8]) {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let vcpus = 1 + usize::from(first % 4);
    let slots = 1 << ((first >> 2) % 4);
    let mut ops = Vec::new();
    while ops.len() < 400 {
        match vm_model::Op::decode(&mut rest) {
            Some(op) => ops.push(op),
            None => break,
        }
    }
    vm_model::run(vcpus, slots, &ops);
}
