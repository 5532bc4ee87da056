// SPDX-License-Identifier: GPL-2.0

//! Capability argument and vCPU attribute validation, record layout, tokens.

use kvm_apf_logic::config::*;
use kvm_apf_logic::record::*;
use kvm_apf_logic::token::Token;
use proptest::prelude::*;
use zerocopy::FromBytes;
use zerocopy::IntoBytes;

fn en(args: [u64; 4]) -> Result<CapRequest, ConfigError> {
    validate_cap(&args)
}

#[test]
fn cap_flags() {
    assert_eq!(en([0, 0, 0, 0]), Ok(CapRequest::Disable));
    assert_eq!(en([2, 0, 16, 17]), Err(ConfigError::AllowEl1WithoutEnable));
    assert_eq!(en([8, 0, 16, 17]), Err(ConfigError::UnknownFlags));
    assert_eq!(en([4, 0, 0, 17]), Err(ConfigError::SdeiWithoutEnable));
    assert_eq!(en([5, 0, 16, 17]), Err(ConfigError::NotPresentIntidWithSdei));
    let Ok(CapRequest::Enable(c)) = en([5, 0, 0, 17]) else {
        panic!()
    };
    assert!(c.np_is_sdei() && c.cap_args() == [5, 64, 0, 17]);
    assert_eq!(en([1 << 63 | 1, 0, 16, 17]), Err(ConfigError::UnknownFlags));
    let Ok(CapRequest::Enable(c)) = en([3, 0, 16, 17]) else {
        panic!()
    };
    assert!(c.allow_el1);
    assert_eq!(c.slots, DEFAULT_SLOTS);
}

#[test]
fn cap_slots() {
    for s in [1u64, 2, 4, 64, 512, 1024] {
        assert!(matches!(en([1, s, 16, 17]), Ok(CapRequest::Enable(c)) if u64::from(c.slots) == s));
    }
    for s in [3u64, 6, 100, 2048, 1 << 32, u64::MAX] {
        assert_eq!(en([1, s, 16, 17]), Err(ConfigError::BadSlots), "slots {s}");
    }
}

#[test]
fn cap_intids() {
    for np in [0u64, 15, 32, 1019, 1 << 32 | 16, u64::MAX] {
        assert_eq!(
            en([1, 0, np, 40]),
            Err(ConfigError::NotPresentIntidNotPpi),
            "np {np}"
        );
    }
    for r in [0u64, 15, 1020, 1023, 1 << 32 | 40, u64::MAX] {
        assert_eq!(
            en([1, 0, 16, r]),
            Err(ConfigError::ReadyIntidInvalid),
            "ready {r}"
        );
    }
    assert_eq!(en([1, 0, 31, 31]), Err(ConfigError::SameIntid));
    for r in [16u64, 31, 32, 1019] {
        let want = if r == 20 {
            Err(ConfigError::SameIntid)
        } else {
            Ok(())
        };
        assert_eq!(en([1, 0, 20, r]).map(|_| ()), want);
    }
    let Ok(CapRequest::Enable(c)) = en([1, 0, 20, 31]) else {
        panic!()
    };
    assert!(c.ready_is_ppi());
    let Ok(CapRequest::Enable(c)) = en([1, 0, 20, 32]) else {
        panic!()
    };
    assert!(!c.ready_is_ppi());
}

proptest! {
    #[test]
    fn cap_never_panics_and_is_consistent(a in any::<[u64; 4]>()) {
        if let Ok(CapRequest::Enable(c)) = validate_cap(&a) {
            prop_assert!(c.slots.is_power_of_two() && c.slots <= MAX_SLOTS);
            prop_assert!((16..=31).contains(&c.np_intid) || (c.np_intid == 0 && a[0] & 4 != 0));
            prop_assert!((16..=1019).contains(&c.ready_intid));
            prop_assert_ne!(c.np_intid, c.ready_intid);
        }
    }

    #[test]
    fn state_round_trip(rec in proptest::option::of((0u64..1 << 40).prop_map(|x| x * 64)), en in any::<bool>(), el1 in any::<bool>()) {
        let s = SavedState { record: rec, enabled: en && rec.is_some(), notify_el1: el1 && en && rec.is_some() };
        let raw = s.encode(&EL1_CFG);
        prop_assert_eq!(raw.config, EL1_CFG.cap_args());
        prop_assert_eq!(SavedState::decode(&raw, &EL1_CFG), Ok(s));
        // Saved by an older module: no configuration recorded, not checked.
        let old = AsyncPfState { config: [0; 4], ..raw };
        prop_assert_eq!(SavedState::decode(&old, &EL1_CFG), Ok(s));
        let bytes = raw.as_bytes().to_vec();
        prop_assert_eq!(bytes.len(), STATE_SIZE);
        prop_assert_eq!(AsyncPfState::read_from_bytes(&bytes).ok(), Some(raw));
    }

    #[test]
    fn token_from_ipa_never_wake_all(ipa in any::<u64>(), shift in any::<u32>()) {
        let t = Token::from_ipa(ipa, shift);
        prop_assert!(!t.is_wake_all());
        prop_assert_eq!(t.raw() & 0xfff, 0);
        if let Some(g) = t.to_gfn(shift) {
            prop_assert_eq!(Token::from_gfn(g, shift), Some(t));
        }
    }
}

/// The VM configuration the state tests run against (EL1 allowed).
const EL1_CFG: ApfConfig = ApfConfig {
    allow_el1: true,
    slots: 64,
    np_intid: 16,
    ready_intid: 17,
};

/// The same without EL1 notifications.
const EL0_CFG: ApfConfig = ApfConfig {
    allow_el1: false,
    ..EL1_CFG
};

#[test]
fn state_errors() {
    let ok = AsyncPfState {
        record_gpa: 0x1000,
        flags: 1,
        config: [0; 4],
        reserved: [0; 2],
    };
    assert!(SavedState::decode(&ok, &EL0_CFG).is_ok());
    for i in 0..2 {
        let mut s = ok;
        s.reserved[i] = 1;
        assert_eq!(
            SavedState::decode(&s, &EL1_CFG),
            Err(StateError::ReservedNotZero)
        );
    }
    let f = |record_gpa, flags| AsyncPfState {
        record_gpa,
        flags,
        config: [0; 4],
        reserved: [0; 2],
    };
    assert_eq!(
        SavedState::decode(&f(0x1000, 4), &EL1_CFG),
        Err(StateError::UnknownFlags)
    );
    assert_eq!(
        SavedState::decode(&f(0x1008, 1), &EL1_CFG),
        Err(StateError::RecordMisaligned)
    );
    assert_eq!(
        SavedState::decode(&f(u64::MAX, 1), &EL1_CFG),
        Err(StateError::EnabledWithoutRecord)
    );
    assert_eq!(
        SavedState::decode(&f(0x1000, 2), &EL1_CFG),
        Err(StateError::NotifyEl1WithoutEnabled)
    );
    assert_eq!(
        SavedState::decode(&f(0x1000, 3), &EL0_CFG),
        Err(StateError::El1NotAllowed)
    );
    assert_eq!(
        SavedState::decode(&f(u64::MAX, 0), &EL0_CFG),
        Ok(SavedState::default())
    );
    let mut def = f(u64::MAX, 0);
    def.config = EL0_CFG.cap_args();
    assert_eq!(SavedState::default().encode(&EL0_CFG), def);
}

/// A state saved on a VM configured one way is refused by a VM
/// configured another way, whatever field differs: each row changes one.
#[test]
fn state_config_mismatch() {
    let saved = SavedState {
        record: Some(0x1000),
        enabled: true,
        notify_el1: false,
    }
    .encode(&EL0_CFG);
    assert_eq!(saved.config, [1, 64, 16, 17]);
    assert!(SavedState::decode(&saved, &EL0_CFG).is_ok());
    let others = [
        EL1_CFG,
        ApfConfig { slots: 32, ..EL0_CFG },
        ApfConfig { np_intid: 18, ..EL0_CFG },
        ApfConfig { ready_intid: 40, ..EL0_CFG },
    ];
    for other in others {
        assert_eq!(
            SavedState::decode(&saved, &other),
            Err(StateError::ConfigMismatch),
            "{other:?}"
        );
        assert_eq!(
            AsyncPfConfig::of(&EL0_CFG).check(&other),
            Err(ConfigCheckError::Mismatch)
        );
    }
    let mut reserved = AsyncPfConfig::of(&EL0_CFG);
    reserved.reserved[3] = 1;
    assert_eq!(
        reserved.check(&EL0_CFG),
        Err(ConfigCheckError::ReservedNotZero)
    );
    assert_eq!(core::mem::size_of::<AsyncPfConfig>(), CONFIG_SIZE);
}

#[test]
fn record_layout() {
    assert_eq!(core::mem::size_of::<ApfRecord>(), 64);
    assert_eq!(
        (
            NOT_PRESENT_TOKEN_OFFSET,
            READY_TOKEN_OFFSET,
            VERSION_OFFSET,
            ACK_READY_OFFSET,
            RESERVED_OFFSET
        ),
        (0, 8, 0x10, 0x14, 0x18)
    );
    let mut r = ApfRecord::initial();
    r.not_present_token.set(0x1122_3344_5566_7000);
    r.ready_token.set(u64::MAX);
    let b = r.as_bytes();
    assert_eq!(&b[0..8], &[0x00, 0x70, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    assert_eq!(&b[8..16], &[0xff; 8]);
    assert_eq!(&b[16..24], &[1, 0, 0, 0, 0, 0, 0, 0]);
    assert!(b[24..].iter().all(|&x| x == 0));
    let w = not_present_write(0x4000, Token::from_ipa(0x1122_3344_5566_7abc, 12)).unwrap();
    assert_eq!((w.gpa, &w.bytes[..]), (0x4000, &b[0..8]));
    let w = ready_write(0x4000, Token::WAKE_ALL).unwrap();
    assert_eq!((w.gpa, &w.bytes[..]), (0x4008, &b[8..16]));
    let w = header_write(0x4000, false).unwrap();
    assert_eq!((w.gpa, &w.bytes[..]), (0x4010, &b[16..24]));
    let mut r2 = r;
    r2.ack_ready.set(1);
    let w = header_write(0x4000, true).unwrap();
    assert_eq!(&w.bytes[..], &r2.as_bytes()[16..24]);
    assert_eq!(ready_write(u64::MAX - 4, Token::WAKE_ALL), None);
    let back = ApfRecord::read_from_bytes(b).unwrap();
    assert_eq!(back.version.get(), RECORD_VERSION);
}

#[test]
fn hypercall_constants() {
    use kvm_apf_logic::hypercall::*;
    assert_eq!(ASYNC_PF_FUNC_ID, 0xc600_0042);
    assert_eq!(ASYNC_PF_FUNC_ID & 0xffff, ASYNC_PF_FUNC_NUM);
    assert_eq!(VENDOR_HYP_BMAP_2_BIT, 2);
    assert_eq!(
        (SUCCESS, NOT_SUPPORTED, NOT_REQUIRED, INVALID_PARAMETER),
        (0, -1, -2, -3)
    );
    assert_eq!(INVALID_PARAMETER_RET, u64::MAX - 2);
    for f in 0..64u64 {
        let r = decode(op::ENABLE, 1 << f);
        assert_eq!(r.is_ok(), f == 0);
    }
    assert_eq!(EnableFlags::from_bits(1).unwrap().bits(), 1);
}
