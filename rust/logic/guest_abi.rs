// SPDX-License-Identifier: GPL-2.0

//! Guest side of discovery: what the guest driver makes of the answers to
//! `VERSION` and `GET_CONFIG`, and how many sleeper entries it gives a
//! vCPU. Every refusal has a one-line reason, printed by the driver, which
//! then stays idle.

use super::hypercall::NOT_SUPPORTED_RET;
use super::hypercall::SUCCESS_RET;
use super::hypercall::VERSION_1_1;

/// Major version this driver implements.
pub const MAJOR: u64 = 1;

/// Why the driver stays idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `VERSION` answered `NOT_SUPPORTED` (the VMM did not enable it).
    NotSupported,
    /// `VERSION` answered an unknown major version (or garbage).
    Version(u64),
    /// `GET_CONFIG` did not answer `SUCCESS`.
    ConfigFailed(u64),
    /// The not-present INTID is not a PPI.
    NotPresentNotPpi(u64),
    /// The page-ready INTID is neither a PPI nor an SPI, or equals the
    /// not-present one.
    BadReadyIntid(u64),
    /// The slot count is not a power of two in 1..=1024.
    BadSlots(u64),
    /// Page-ready is an SPI, the host speaks 1.0 (which delivers an SPI
    /// page-ready through the announcing vCPU's record, usable with one
    /// vCPU only) and the guest has more than one CPU.
    SpiWithSmp(u32),
}

/// The interrupts and slots the VMM chose, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestConfig {
    /// Not-present INTID, a PPI (16..=31).
    pub np_intid: u32,
    /// Page-ready INTID, a PPI or an SPI (32..=1019).
    pub ready_intid: u32,
    /// Slots per vCPU, a power of two in 1..=1024.
    pub slots: u32,
    /// Page-ready is VM-wide (an SPI and a 1.1 host): the SPI handler
    /// fetches it with `GET_READY`, on whichever CPU takes it.
    pub vm_wide_ready: bool,
}

/// Whether `intid` is a PPI.
pub const fn is_ppi(intid: u64) -> bool {
    intid >= 16 && intid <= 31
}

/// Whether `intid` is an SPI.
pub const fn is_spi(intid: u64) -> bool {
    intid >= 32 && intid <= 1019
}

/// Checks the answer of `VERSION`.
pub const fn check_version(r0: u64) -> Result<(), Refusal> {
    if r0 == NOT_SUPPORTED_RET {
        return Err(Refusal::NotSupported);
    }
    // Bits [63:32] zero, bits [31:16] the major version.
    if r0 >> 32 != 0 || (r0 >> 16) & 0xffff != MAJOR {
        return Err(Refusal::Version(r0));
    }
    Ok(())
}

impl GuestConfig {
    /// Checks the answer of `GET_CONFIG` (`r` holds R0..R3) for a guest
    /// with `nr_cpus` possible CPUs and a host whose `VERSION` answered
    /// `version` (already accepted by [`check_version`]).
    pub const fn from_regs(r: [u64; 4], nr_cpus: u32, version: u64) -> Result<Self, Refusal> {
        if r[0] != SUCCESS_RET {
            return Err(Refusal::ConfigFailed(r[0]));
        }
        if !is_ppi(r[1]) {
            return Err(Refusal::NotPresentNotPpi(r[1]));
        }
        if r[2] == r[1] || !(is_ppi(r[2]) || is_spi(r[2])) {
            return Err(Refusal::BadReadyIntid(r[2]));
        }
        if r[3] == 0 || r[3] > 1024 || !r[3].is_power_of_two() {
            return Err(Refusal::BadSlots(r[3]));
        }
        let vm_wide_ready = is_spi(r[2]) && version >= VERSION_1_1;
        if is_spi(r[2]) && !vm_wide_ready && nr_cpus > 1 {
            return Err(Refusal::SpiWithSmp(nr_cpus));
        }
        // Lossless: each value was checked to be at most 1024.
        Ok(Self {
            np_intid: r[1] as u32,
            ready_intid: r[2] as u32,
            slots: r[3] as u32,
            vm_wide_ready,
        })
    }

    /// Whether page-ready is a per-CPU interrupt.
    pub const fn ready_is_ppi(&self) -> bool {
        is_ppi(self.ready_intid as u64)
    }

    /// Sleeper entries per vCPU: one per slot, since each announced token
    /// takes one, plus as many again for entries whose page-ready came but
    /// whose task has not run yet to free it; at least 8, at most 1024.
    pub const fn entries_per_cpu(&self) -> usize {
        let n = 2 * self.slots as usize;
        if n < 8 {
            8
        } else if n > 1024 {
            1024
        } else {
            n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rows() {
        assert_eq!(check_version(0x0001_0000), Ok(()));
        assert_eq!(check_version(0x0001_0003), Ok(()));
        assert_eq!(check_version(u64::MAX), Err(Refusal::NotSupported));
        assert_eq!(
            check_version(0x0002_0000),
            Err(Refusal::Version(0x0002_0000))
        );
    }
}
