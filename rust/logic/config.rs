// SPDX-License-Identifier: GPL-2.0

//! Validation of the VMM's input: the `KVM_ENABLE_CAP(KVM_CAP_ARM_ASYNC_PF)`
//! arguments and the `KVM_ARM_VCPU_ASYNC_PF_STATE` vCPU attribute.
//!
//! Every error here is the VMM's mistake; the kernel side maps each variant
//! of [`ConfigError`] and [`StateError`] to `EINVAL`.

use super::record::RECORD_ALIGN;
use zerocopy_derive::FromBytes;
use zerocopy_derive::Immutable;
use zerocopy_derive::IntoBytes;
use zerocopy_derive::KnownLayout;

/// `KVM_ARM_ASYNC_PF_ENABLE`: `args[0]` bit that enables the feature.
pub const CAP_FLAG_ENABLE: u64 = 1 << 0;
/// `KVM_ARM_ASYNC_PF_ALLOW_EL1`: the guest may ask for EL1 notifications.
pub const CAP_FLAG_ALLOW_EL1: u64 = 1 << 1;
/// `KVM_ARM_ASYNC_PF_NP_SDEI`: page-not-present by an SDEI event, not a
/// PPI (`args[2]` must then be 0).
pub const CAP_FLAG_NP_SDEI: u64 = 1 << 2;
/// Every capability flag this version knows.
pub const CAP_KNOWN_FLAGS: u64 = CAP_FLAG_ENABLE | CAP_FLAG_ALLOW_EL1 | CAP_FLAG_NP_SDEI;

/// Slots per vCPU when the VMM passes 0.
pub const DEFAULT_SLOTS: u32 = 64;
/// Largest number of slots per vCPU.
pub const MAX_SLOTS: u32 = 1024;

/// First PPI INTID.
pub const PPI_FIRST: u32 = 16;
/// Last PPI INTID.
pub const PPI_LAST: u32 = 31;
/// First SPI INTID.
pub const SPI_FIRST: u32 = 32;
/// Last SPI INTID (1020..1023 are special INTIDs).
pub const SPI_LAST: u32 = 1019;

/// Why the capability arguments were refused. Each maps to `EINVAL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `args[0]` has bits other than `ENABLE` and `ALLOW_EL1`.
    UnknownFlags,
    /// `ALLOW_EL1` without `ENABLE`.
    AllowEl1WithoutEnable,
    /// `NP_SDEI` without `ENABLE`.
    SdeiWithoutEnable,
    /// `NP_SDEI` with a not-present INTID (`args[2]` not 0).
    NotPresentIntidWithSdei,
    /// `args[1]` is not 0 and not a power of two in `1..=MAX_SLOTS`.
    BadSlots,
    /// `args[2]` (not-present INTID) is not a PPI (16..=31).
    NotPresentIntidNotPpi,
    /// `args[3]` (page-ready INTID) is neither a PPI nor an SPI (32..=1019).
    ReadyIntidInvalid,
    /// `args[3]` equals `args[2]`.
    SameIntid,
}

/// A validated configuration of the feature for one VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApfConfig {
    /// Whether the guest may ask for notifications of faults taken at EL1.
    pub allow_el1: bool,
    /// Maximum number of outstanding tokens per vCPU: a power of two in
    /// `1..=MAX_SLOTS`.
    pub slots: u32,
    /// Not-present INTID (a PPI), or 0: page-not-present is delivered by
    /// the SDEI event ([`ApfConfig::np_is_sdei`]).
    pub np_intid: u32,
    /// Page-ready INTID (a PPI or an SPI, different from `np_intid`).
    pub ready_intid: u32,
}

impl ApfConfig {
    /// Whether page-not-present is delivered by SDEI (`NP_SDEI`) rather
    /// than the not-present PPI.
    pub const fn np_is_sdei(&self) -> bool {
        self.np_intid == 0
    }

    /// Whether the page-ready interrupt is a PPI (per vCPU) rather than an
    /// SPI (per VM).
    pub const fn ready_is_ppi(&self) -> bool {
        self.ready_intid <= PPI_LAST
    }

    /// The `KVM_ENABLE_CAP` arguments that recreate this configuration
    /// (`KVM_ARM_VCPU_ASYNC_PF_CONFIG`): slots as in effect, never 0.
    pub const fn cap_args(&self) -> [u64; 4] {
        let mut flags = CAP_FLAG_ENABLE;
        if self.allow_el1 {
            flags |= CAP_FLAG_ALLOW_EL1;
        }
        if self.np_is_sdei() {
            flags |= CAP_FLAG_NP_SDEI;
        }
        [flags, self.slots as u64, self.np_intid as u64, self.ready_intid as u64]
    }

    /// Number of slots as a `usize` (storage sizes).
    pub const fn slots_usize(&self) -> usize {
        // Lossless: `slots <= MAX_SLOTS`.
        self.slots as usize
    }
}

/// What `KVM_ENABLE_CAP` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapRequest {
    /// `ENABLE` clear: turn the feature off (other arguments ignored).
    Disable,
    /// Turn the feature on with this configuration.
    Enable(ApfConfig),
}

const fn is_ppi(intid: u64) -> bool {
    intid >= PPI_FIRST as u64 && intid <= PPI_LAST as u64
}

const fn is_spi(intid: u64) -> bool {
    intid >= SPI_FIRST as u64 && intid <= SPI_LAST as u64
}

/// Validates `cap->args` of `KVM_ENABLE_CAP(KVM_CAP_ARM_ASYNC_PF)`.
///
/// Checks in order: flags, slots, not-present INTID, ready INTID, distinct.
pub const fn validate_cap(args: &[u64; 4]) -> Result<CapRequest, ConfigError> {
    let [flags, slots, np, ready] = *args;
    if flags & !CAP_KNOWN_FLAGS != 0 {
        return Err(ConfigError::UnknownFlags);
    }
    let sdei = flags & CAP_FLAG_NP_SDEI != 0;
    if flags & CAP_FLAG_ENABLE == 0 {
        if flags & CAP_FLAG_ALLOW_EL1 != 0 {
            return Err(ConfigError::AllowEl1WithoutEnable);
        }
        if sdei {
            return Err(ConfigError::SdeiWithoutEnable);
        }
        return Ok(CapRequest::Disable);
    }
    let slots = if slots == 0 {
        DEFAULT_SLOTS as u64
    } else {
        slots
    };
    if !slots.is_power_of_two() || slots > MAX_SLOTS as u64 {
        return Err(ConfigError::BadSlots);
    }
    if sdei && np != 0 {
        return Err(ConfigError::NotPresentIntidWithSdei);
    }
    if !sdei && !is_ppi(np) {
        return Err(ConfigError::NotPresentIntidNotPpi);
    }
    if !is_ppi(ready) && !is_spi(ready) {
        return Err(ConfigError::ReadyIntidInvalid);
    }
    if ready == np {
        return Err(ConfigError::SameIntid);
    }
    // The casts are lossless: all three values were range checked above.
    Ok(CapRequest::Enable(ApfConfig {
        allow_el1: flags & CAP_FLAG_ALLOW_EL1 != 0,
        slots: slots as u32,
        np_intid: np as u32,
        ready_intid: ready as u32,
    }))
}

/// `KVM_ARM_VCPU_ASYNC_PF_CTRL` attribute group.
pub const VCPU_ATTR_GROUP: u64 = 3;
/// `KVM_ARM_VCPU_ASYNC_PF_STATE` attribute.
pub const VCPU_ATTR_STATE: u64 = 0;
/// `KVM_ARM_VCPU_ASYNC_PF_CONFIG` attribute.
pub const VCPU_ATTR_CONFIG: u64 = 1;

/// `struct kvm_arm_async_pf_config`: the VM's configuration as the
/// `KVM_ENABLE_CAP` arguments that recreate it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct AsyncPfConfig {
    /// `kvm_enable_cap.args[0..3]`.
    pub args: [u64; 4],
    /// Must be zero.
    pub reserved: [u64; 4],
}

/// Size of [`AsyncPfConfig`] in bytes.
pub const CONFIG_SIZE: usize = 64;
const _: () = assert!(core::mem::size_of::<AsyncPfConfig>() == CONFIG_SIZE);

/// Why a `KVM_SET_DEVICE_ATTR(KVM_ARM_VCPU_ASYNC_PF_CONFIG)` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigCheckError {
    /// A `reserved` word is not zero (`EINVAL`).
    ReservedNotZero,
    /// The arguments are not this VM's configuration (`EPROTO`).
    Mismatch,
}

impl AsyncPfConfig {
    /// What `KVM_GET_DEVICE_ATTR` returns for `cfg`.
    pub const fn of(cfg: &ApfConfig) -> Self {
        Self {
            args: cfg.cap_args(),
            reserved: [0; 4],
        }
    }

    /// `KVM_SET_DEVICE_ATTR`: changes nothing, only checks that this is
    /// `cfg`.
    pub fn check(&self, cfg: &ApfConfig) -> Result<(), ConfigCheckError> {
        if self.reserved.iter().any(|&r| r != 0) {
            return Err(ConfigCheckError::ReservedNotZero);
        }
        if self.args != cfg.cap_args() {
            return Err(ConfigCheckError::Mismatch);
        }
        Ok(())
    }
}

/// `flags` bit of [`AsyncPfState`]: the guest enabled the feature.
pub const STATE_FLAG_ENABLED: u64 = 1 << 0;
/// `flags` bit of [`AsyncPfState`]: the guest enabled EL1 notifications.
pub const STATE_FLAG_NOTIFY_EL1: u64 = 1 << 1;
/// Every state flag this version knows.
pub const STATE_KNOWN_FLAGS: u64 = STATE_FLAG_ENABLED | STATE_FLAG_NOTIFY_EL1;
/// `record_gpa` of a vCPU without a registered record (`INVALID_GPA`).
pub const STATE_NO_RECORD: u64 = u64::MAX;

/// `struct kvm_arm_async_pf_state`, exchanged with the VMM through
/// `KVM_{GET,SET}_DEVICE_ATTR` (host byte order, as any UAPI struct).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct AsyncPfState {
    /// IPA of the shared record, or [`STATE_NO_RECORD`].
    pub record_gpa: u64,
    /// `STATE_FLAG_*`.
    pub flags: u64,
    /// The VM's configuration the guest ran with ([`ApfConfig::cap_args`]),
    /// or all zero: not recorded, not checked.
    pub config: [u64; 4],
    /// Must be zero.
    pub reserved: [u64; 2],
}

/// Size of [`AsyncPfState`] in bytes.
pub const STATE_SIZE: usize = 64;
const _: () = assert!(core::mem::size_of::<AsyncPfState>() == STATE_SIZE);
const _: () = assert!(core::mem::offset_of!(AsyncPfState, record_gpa) == 0);
const _: () = assert!(core::mem::offset_of!(AsyncPfState, flags) == 8);
const _: () = assert!(core::mem::offset_of!(AsyncPfState, config) == 16);
const _: () = assert!(core::mem::offset_of!(AsyncPfState, reserved) == 48);

/// Why a `KVM_ARM_VCPU_ASYNC_PF_STATE` set was refused. Each maps to
/// `EINVAL` but [`StateError::ConfigMismatch`], which is `EPROTO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateError {
    /// A `reserved` word is not zero.
    ReservedNotZero,
    /// `flags` has unknown bits.
    UnknownFlags,
    /// `record_gpa` is not 64-byte aligned (and not [`STATE_NO_RECORD`]).
    RecordMisaligned,
    /// `ENABLED` without a record.
    EnabledWithoutRecord,
    /// `NOTIFY_EL1` without `ENABLED`.
    NotifyEl1WithoutEnabled,
    /// `NOTIFY_EL1` but the VMM did not allow EL1 notifications.
    El1NotAllowed,
    /// `config` is recorded and is not this VM's configuration: the guest
    /// would wait for INTIDs or slots the destination does not have.
    ConfigMismatch,
}

/// The guest-registered state of one vCPU, as saved and restored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SavedState {
    /// IPA of the shared record, if registered.
    pub record: Option<u64>,
    /// Whether the guest enabled the feature.
    pub enabled: bool,
    /// Whether the guest asked for EL1 notifications.
    pub notify_el1: bool,
}

impl SavedState {
    /// Encodes the state for `KVM_GET_DEVICE_ATTR` of a VM configured
    /// with `cfg`.
    pub const fn encode(&self, cfg: &ApfConfig) -> AsyncPfState {
        let mut flags = 0;
        if self.enabled {
            flags |= STATE_FLAG_ENABLED;
        }
        if self.notify_el1 {
            flags |= STATE_FLAG_NOTIFY_EL1;
        }
        AsyncPfState {
            record_gpa: match self.record {
                Some(gpa) => gpa,
                None => STATE_NO_RECORD,
            },
            flags,
            config: cfg.cap_args(),
            reserved: [0; 2],
        }
    }

    /// Decodes and validates the state given to `KVM_SET_DEVICE_ATTR` of a
    /// VM configured with `cfg`. Whether the record is guest RAM is left to
    /// the caller (memory may be set up later).
    pub fn decode(raw: &AsyncPfState, cfg: &ApfConfig) -> Result<Self, StateError> {
        let allow_el1 = cfg.allow_el1;
        if raw.reserved.iter().any(|&r| r != 0) {
            return Err(StateError::ReservedNotZero);
        }
        if raw.config != [0; 4] && raw.config != cfg.cap_args() {
            return Err(StateError::ConfigMismatch);
        }
        if raw.flags & !STATE_KNOWN_FLAGS != 0 {
            return Err(StateError::UnknownFlags);
        }
        let record = if raw.record_gpa == STATE_NO_RECORD {
            None
        } else if raw.record_gpa & (RECORD_ALIGN - 1) != 0 {
            return Err(StateError::RecordMisaligned);
        } else {
            Some(raw.record_gpa)
        };
        let enabled = raw.flags & STATE_FLAG_ENABLED != 0;
        let notify_el1 = raw.flags & STATE_FLAG_NOTIFY_EL1 != 0;
        if enabled && record.is_none() {
            return Err(StateError::EnabledWithoutRecord);
        }
        if notify_el1 && !enabled {
            return Err(StateError::NotifyEl1WithoutEnabled);
        }
        if notify_el1 && !allow_el1 {
            return Err(StateError::El1NotAllowed);
        }
        Ok(Self {
            record,
            enabled,
            notify_el1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_default_slots() {
        let r = validate_cap(&[1, 0, 16, 17]);
        assert_eq!(
            r,
            Ok(CapRequest::Enable(ApfConfig {
                allow_el1: false,
                slots: 64,
                np_intid: 16,
                ready_intid: 17
            }))
        );
        assert_eq!(validate_cap(&[0, 5, 0, 0]), Ok(CapRequest::Disable));
        assert_eq!(validate_cap(&[1, 3, 16, 17]), Err(ConfigError::BadSlots));
    }

    #[test]
    fn cap_np_sdei() {
        let Ok(CapRequest::Enable(cfg)) = validate_cap(&[5, 0, 0, 21]) else {
            panic!("NP_SDEI with no not-present INTID is valid");
        };
        assert!(cfg.np_is_sdei());
        assert_eq!(validate_cap(&[4, 0, 0, 21]), Err(ConfigError::SdeiWithoutEnable));
        assert_eq!(validate_cap(&[5, 0, 20, 21]), Err(ConfigError::NotPresentIntidWithSdei));
        assert_eq!(validate_cap(&[1, 0, 0, 21]), Err(ConfigError::NotPresentIntidNotPpi));
    }

    #[test]
    fn cap_args_recreate_the_config() {
        for args in [[1, 0, 16, 17], [3, 8, 20, 40], [1, 1024, 31, 1019], [5, 0, 0, 21], [7, 64, 0, 40]] {
            let Ok(CapRequest::Enable(cfg)) = validate_cap(&args) else {
                panic!("{args:?} is valid");
            };
            assert_eq!(validate_cap(&cfg.cap_args()), Ok(CapRequest::Enable(cfg)));
            assert_eq!(AsyncPfConfig::of(&cfg).check(&cfg), Ok(()));
        }
    }
}
