// SPDX-License-Identifier: GPL-2.0

//! The guest driver's checks of `VERSION` and `GET_CONFIG`.

use kvm_apf_logic::guest_abi::check_version;
use kvm_apf_logic::guest_abi::GuestConfig;
use kvm_apf_logic::guest_abi::Refusal;
use proptest::prelude::*;

const V10: u64 = 0x0001_0000;
const V11: u64 = 0x0001_0001;

#[test]
fn config_rows() {
    let ok = GuestConfig::from_regs([0, 20, 21, 64], 4, V11).unwrap();
    assert_eq!((ok.np_intid, ok.ready_intid, ok.slots), (20, 21, 64));
    assert!(ok.ready_is_ppi());
    assert_eq!(ok.entries_per_cpu(), 128);
    assert_eq!(
        GuestConfig::from_regs([0, 20, 21, 1], 1, V11)
            .unwrap()
            .entries_per_cpu(),
        8
    );
    assert_eq!(
        GuestConfig::from_regs([0, 20, 21, 1024], 1, V11)
            .unwrap()
            .entries_per_cpu(),
        1024
    );
    assert_eq!(
        GuestConfig::from_regs([u64::MAX, 20, 21, 64], 1, V11),
        Err(Refusal::ConfigFailed(u64::MAX))
    );
    assert_eq!(
        GuestConfig::from_regs([0, 32, 21, 64], 1, V11),
        Err(Refusal::NotPresentNotPpi(32))
    );
    assert_eq!(
        GuestConfig::from_regs([0, 15, 21, 64], 1, V11),
        Err(Refusal::NotPresentNotPpi(15))
    );
    assert_eq!(
        GuestConfig::from_regs([0, 20, 20, 64], 1, V11),
        Err(Refusal::BadReadyIntid(20))
    );
    assert_eq!(
        GuestConfig::from_regs([0, 20, 1020, 64], 1, V11),
        Err(Refusal::BadReadyIntid(1020))
    );
    assert_eq!(
        GuestConfig::from_regs([0, 20, 21, 3], 1, V11),
        Err(Refusal::BadSlots(3))
    );
    assert_eq!(
        GuestConfig::from_regs([0, 20, 21, 2048], 1, V11),
        Err(Refusal::BadSlots(2048))
    );
    assert_eq!(
        GuestConfig::from_regs([0, 20, 21, 0], 1, V11),
        Err(Refusal::BadSlots(0))
    );
    let spi = GuestConfig::from_regs([0, 20, 40, 64], 1, V11).unwrap();
    assert!(!spi.ready_is_ppi() && spi.vm_wide_ready);
    // A 1.1 host: an SPI for any number of CPUs, through GET_READY.
    let spi4 = GuestConfig::from_regs([0, 20, 40, 64], 4, V11).unwrap();
    assert!(spi4.vm_wide_ready);
    assert!(!GuestConfig::from_regs([0, 20, 21, 64], 4, V11).unwrap().vm_wide_ready);
    // A 1.0 host: the SPI through the record, one CPU only.
    let old = GuestConfig::from_regs([0, 20, 40, 64], 1, V10).unwrap();
    assert!(!old.vm_wide_ready);
    assert_eq!(
        GuestConfig::from_regs([0, 20, 40, 64], 2, V10),
        Err(Refusal::SpiWithSmp(2))
    );
}

#[test]
fn version_rows() {
    assert_eq!(check_version(0x0001_0000), Ok(()));
    assert_eq!(check_version(0x0001_0001), Ok(()));
    assert_eq!(check_version(u64::MAX), Err(Refusal::NotSupported));
    assert_eq!(
        check_version(0x1_0001_0000),
        Err(Refusal::Version(0x1_0001_0000))
    );
    assert_eq!(check_version(0), Err(Refusal::Version(0)));
}

proptest! {
    /// Whatever the host answers, an accepted configuration is one the ABI
    /// allows, and the driver's table is never smaller than the slots.
    #[test]
    fn accepted_configs_are_valid(r in any::<[u64; 4]>(), small in any::<[u8; 3]>(), cpus in 1u32..8) {
        for regs in [r, [0, 16 + (small[0] % 16) as u64, small[1] as u64 * 4, 1 << (small[2] % 12)]] {
            if let Ok(c) = GuestConfig::from_regs(regs, cpus, V10) {
                prop_assert!((16..=31).contains(&c.np_intid));
                prop_assert!((16..=1019).contains(&c.ready_intid) && c.ready_intid != c.np_intid);
                prop_assert!(c.slots.is_power_of_two() && c.slots <= 1024);
                prop_assert!(c.entries_per_cpu() >= c.slots as usize);
                prop_assert!(c.ready_is_ppi() || cpus == 1);
            }
        }
    }
}
