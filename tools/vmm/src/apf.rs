// SPDX-License-Identifier: GPL-2.0
//! `KVM_CAP_ARM_ASYNC_PF`: the VMM's configuration of the feature, checked
//! before it reaches KVM, and the explanation of each errno KVM can answer
//! (Documentation/vmm-interface.rst, section 1).

use crate::error::Error;
use crate::error::Result;
use crate::layout;

/// The capability number, with the kvm-apf series applied.
pub const KVM_CAP_ARM_ASYNC_PF: u32 = 252;
/// `args[0]` bit 0: enable (clear: disable).
pub const KVM_ARM_ASYNC_PF_ENABLE: u64 = 1 << 0;
/// `args[0]` bit 1: the guest may ask for notifications of EL1 faults.
pub const KVM_ARM_ASYNC_PF_ALLOW_EL1: u64 = 1 << 1;

/// Default not-present PPI (the interface document's example).
pub const DEFAULT_NOT_PRESENT_INTID: u32 = 20;
/// Default page-ready PPI.
pub const DEFAULT_READY_INTID: u32 = 21;

/// The arguments of `KVM_ENABLE_CAP(KVM_CAP_ARM_ASYNC_PF)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncPf {
    /// Not-present INTID: a PPI.
    pub not_present_intid: u32,
    /// Page-ready INTID: a PPI or an SPI.
    pub ready_intid: u32,
    /// Slots per vCPU; 0 means KVM's default of 64.
    pub slots: u32,
    /// Whether the guest may ask for EL1 notifications.
    pub allow_el1: bool,
}

impl Default for AsyncPf {
    fn default() -> Self {
        AsyncPf {
            not_present_intid: DEFAULT_NOT_PRESENT_INTID,
            ready_intid: DEFAULT_READY_INTID,
            slots: 0,
            allow_el1: false,
        }
    }
}

/// Whether `intid` is a PPI.
fn is_ppi(intid: u32) -> bool {
    (16..32).contains(&intid)
}

/// Whether `intid` is an SPI.
fn is_spi(intid: u32) -> bool {
    (32..1020).contains(&intid)
}

impl AsyncPf {
    /// Checks the arguments as KVM will (same order, same rules), and that
    /// neither INTID is one this VM already uses, which KVM does not check.
    /// An SPI page-ready works for any number of vCPUs (`_cpus`) since
    /// version 1.1 of the guest interface (`GET_READY`); a guest that finds
    /// a 1.0 host refuses it with more than one vCPU itself.
    pub fn validate(&self, _cpus: u32) -> Result<()> {
        let s = self.slots;
        if s != 0 && !(s.is_power_of_two() && s <= 1024) {
            return Err(Error::new(format!(
                "--apf-slots {s}: must be 0 (KVM's default, 64) or a power of two from 1 to 1024"
            )));
        }
        let np = self.not_present_intid;
        if !is_ppi(np) {
            return Err(Error::new(format!(
                "--apf-not-present-intid {np}: must be a PPI, 16 to 31"
            )));
        }
        let rd = self.ready_intid;
        if !is_ppi(rd) && !is_spi(rd) {
            return Err(Error::new(format!(
                "--apf-ready-intid {rd}: must be a PPI (16 to 31) or an SPI (32 to 1019)"
            )));
        }
        if rd == np {
            return Err(Error::new(format!(
                "--apf-ready-intid {rd}: must differ from the not-present INTID"
            )));
        }
        for intid in [np, rd] {
            if let Some(user) = layout::intid_user(intid) {
                return Err(Error::new(format!(
                    "INTID {intid} is used by the {user} in this VM: pick another for async page faults"
                )));
            }
        }
        if is_spi(rd) && rd >= layout::GIC_NR_IRQS {
            return Err(Error::new(format!(
                "--apf-ready-intid {rd}: this VM's vGIC has INTIDs up to {} only",
                layout::GIC_NR_IRQS - 1
            )));
        }
        Ok(())
    }

    /// `args[0..4]` of `struct kvm_enable_cap` to enable the feature.
    pub fn enable_args(&self) -> [u64; 4] {
        let mut flags = KVM_ARM_ASYNC_PF_ENABLE;
        if self.allow_el1 {
            flags |= KVM_ARM_ASYNC_PF_ALLOW_EL1;
        }
        [
            flags,
            u64::from(self.slots),
            u64::from(self.not_present_intid),
            u64::from(self.ready_intid),
        ]
    }
}

/// What an errno of `KVM_ENABLE_CAP(KVM_CAP_ARM_ASYNC_PF)` means, per the
/// interface document.
pub fn explain_enable_errno(errno: i32) -> &'static str {
    match errno {
        libc::EINVAL => {
            "the kernel refused the arguments (flags, slots or INTIDs), \
             or no provider is registered (kvm_apf.ko not loaded)"
        }
        libc::EBUSY => "the feature is already enabled on this VM, or the guest depends on it",
        libc::ENOMEM => "the per-vCPU state could not be allocated; nothing was enabled",
        libc::ENXIO => "no async page fault provider answered: is kvm_apf.ko loaded?",
        libc::ENOTTY | libc::ENOSYS => "this kernel has no KVM_ENABLE_CAP for VMs",
        _ => "unexpected answer (see Documentation/vmm-interface.rst)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(np: u32, rd: u32, slots: u32) -> AsyncPf {
        AsyncPf { not_present_intid: np, ready_intid: rd, slots, allow_el1: false }
    }

    #[test]
    fn defaults_are_valid_and_encode_as_documented() {
        let a = AsyncPf::default();
        assert_eq!(a.validate(4), Ok(()));
        assert_eq!(a.enable_args(), [1, 0, 20, 21]);
        let el1 = AsyncPf { allow_el1: true, slots: 128, ..a };
        assert_eq!(el1.enable_args(), [3, 128, 20, 21]);
    }

    #[test]
    fn slots_must_be_zero_or_a_power_of_two_up_to_1024() {
        for s in [0, 1, 2, 64, 1024] {
            assert_eq!(cfg(20, 21, s).validate(1), Ok(()), "{s}");
        }
        for s in [3, 100, 2048, u32::MAX] {
            assert!(cfg(20, 21, s).validate(1).is_err(), "{s}");
        }
    }

    #[test]
    fn intids_follow_the_kernel_rules() {
        assert!(cfg(15, 21, 0).validate(1).is_err());
        assert!(cfg(32, 21, 0).validate(1).is_err());
        assert!(cfg(20, 20, 0).validate(1).is_err());
        assert!(cfg(20, 1020, 0).validate(1).is_err());
        assert!(cfg(20, 10, 0).validate(1).is_err());
        // An SPI: any number of vCPUs (ABI 1.1), inside this VM's vGIC.
        assert_eq!(cfg(20, 40, 0).validate(1), Ok(()));
        assert_eq!(cfg(20, 40, 0).validate(2), Ok(()));
        assert_eq!(cfg(20, 40, 0).validate(8), Ok(()));
        assert!(cfg(20, 1000, 0).validate(1).is_err());
        assert!(cfg(20, layout::GIC_NR_IRQS, 0).validate(4).is_err());
    }

    #[test]
    fn intids_of_this_vm_are_refused() {
        for used in [23, 25, 26, 27, 28, 30] {
            let e = cfg(used, 21, 0).validate(1).unwrap_err();
            assert!(e.to_string().contains("used by"), "{used}: {e}");
        }
        assert!(cfg(20, layout::UART_INTID, 0).validate(1).is_err());
    }

    #[test]
    fn errnos_are_explained() {
        assert!(explain_enable_errno(libc::EINVAL).contains("refused"));
        assert!(explain_enable_errno(libc::EBUSY).contains("already enabled"));
        assert!(explain_enable_errno(libc::ENXIO).contains("kvm_apf.ko"));
    }
}
