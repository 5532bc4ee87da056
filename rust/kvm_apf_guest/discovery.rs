// SPDX-License-Identifier: GPL-2.0

//! Discovery: the vendor hypervisor bitmap, `VERSION`, `GET_CONFIG`, and
//! the one line that says why the driver stays idle.

use kernel::fmt;

use crate::ffi;
use crate::hvc;
use crate::logic::guest_abi::check_version;
use crate::logic::guest_abi::GuestConfig;
use crate::logic::guest_abi::Refusal;
use crate::logic::hypercall::ASYNC_PF_FUNC_NUM;

/// Why the driver stays idle.
pub(crate) enum Idle {
    /// The bit of function 66 is clear in the vendor hypervisor bitmap.
    NotOffered,
    /// The answers were refused.
    Refused(Refusal),
}

impl kernel::fmt::Display for Idle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Idle::NotOffered => write!(
                f,
                "the hypervisor does not offer async page faults (KVM vendor hyp function {} absent)",
                ASYNC_PF_FUNC_NUM
            ),
            Idle::Refused(Refusal::NotSupported) => {
                write!(f, "VERSION answered NOT_SUPPORTED")
            }
            Idle::Refused(Refusal::Version(v)) => {
                write!(f, "unsupported interface version {:#x} (this driver speaks 1.x)", v)
            }
            Idle::Refused(Refusal::ConfigFailed(r)) => write!(f, "GET_CONFIG failed ({:#x})", r),
            Idle::Refused(Refusal::NotPresentNotPpi(i)) => {
                write!(f, "not-present INTID {} is not a PPI", i)
            }
            Idle::Refused(Refusal::BadReadyIntid(i)) => write!(f, "bad page-ready INTID {}", i),
            Idle::Refused(Refusal::BadSlots(s)) => write!(f, "bad slot count {}", s),
            Idle::Refused(Refusal::SpiWithSmp(n)) => write!(
                f,
                "page-ready is an SPI, which a 1.0 host delivers to one vCPU only (1.1 needed), and this guest has {} CPUs",
                n
            ),
        }
    }
}

/// Asks the hypervisor; the configuration if the driver can use it.
pub(crate) fn discover() -> Result<GuestConfig, Idle> {
    if !hvc::offered() {
        return Err(Idle::NotOffered);
    }
    let version = hvc::version();
    check_version(version).map_err(Idle::Refused)?;
    // SAFETY: no precondition.
    let cpus = unsafe { ffi::kvm_apf_guest_shim_num_possible_cpus() };
    GuestConfig::from_regs(hvc::get_config(), cpus, version).map_err(Idle::Refused)
}
