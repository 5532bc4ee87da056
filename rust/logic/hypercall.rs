// SPDX-License-Identifier: GPL-2.0

//! Decoding of the vendor-hyp `ASYNC_PF` SMCCC call and its return codes.
//!
//! One function id, [`ASYNC_PF_FUNC_ID`]; `x1` selects the operation and
//! `x2` carries its argument (see `Documentation/` and the guest ABI).

use super::record::RECORD_ALIGN;

/// `ARM_SMCCC_KVM_FUNC_ASYNC_PF`: vendor-hyp function number.
pub const ASYNC_PF_FUNC_NUM: u32 = 66;
/// `ARM_SMCCC_VENDOR_HYP_KVM_ASYNC_PF_FUNC_ID`: SMC64 fast call, owner
/// vendor hyp, function number 66.
pub const ASYNC_PF_FUNC_ID: u32 = 0xc600_0042;
/// Bit of `KVM_REG_ARM_VENDOR_HYP_BMAP_2` and of the `FEATURES_2` result
/// (function number minus 64).
pub const VENDOR_HYP_BMAP_2_BIT: u32 = ASYNC_PF_FUNC_NUM - 64;

/// ABI version returned by [`Request::Version`]: major 1, minor 2
/// (1.1: `GET_READY`, VM-wide page-ready on an SPI for any number of
/// vCPUs; 1.2: `GET_CONFIG` returns not-present INTID 0 on a VM that
/// delivers page-not-present by the SDEI event).
pub const VERSION: u64 = 0x0001_0002;
/// The first version with `GET_READY` (VM-wide page-ready on an SPI).
pub const VERSION_1_1: u64 = 0x0001_0001;

/// SMCCC `SUCCESS`.
pub const SUCCESS: i64 = 0;
/// SMCCC `NOT_SUPPORTED`.
pub const NOT_SUPPORTED: i64 = -1;
/// SMCCC `NOT_REQUIRED`.
pub const NOT_REQUIRED: i64 = -2;
/// SMCCC `INVALID_PARAMETER`.
pub const INVALID_PARAMETER: i64 = -3;

/// `SUCCESS` as the register value returned in `x0`.
pub const SUCCESS_RET: u64 = SUCCESS as u64;
/// `NOT_SUPPORTED` as the register value returned in `x0`.
pub const NOT_SUPPORTED_RET: u64 = NOT_SUPPORTED as u64;
/// `NOT_REQUIRED` as the register value returned in `x0`.
pub const NOT_REQUIRED_RET: u64 = NOT_REQUIRED as u64;
/// `INVALID_PARAMETER` as the register value returned in `x0`.
pub const INVALID_PARAMETER_RET: u64 = INVALID_PARAMETER as u64;

/// Operation numbers (`x1`).
pub mod op {
    /// `VERSION`.
    pub const VERSION: u64 = 0;
    /// `GET_CONFIG`.
    pub const GET_CONFIG: u64 = 1;
    /// `SET_RECORD`.
    pub const SET_RECORD: u64 = 2;
    /// `ENABLE`.
    pub const ENABLE: u64 = 3;
    /// `DISABLE`.
    pub const DISABLE: u64 = 4;
    /// `ACK_READY`: the guest cleared `ready_token` and saw `ack_ready`.
    pub const ACK_READY: u64 = 5;
    /// `GET_READY` (1.1): pop the oldest VM-wide page-ready (SPI only).
    pub const GET_READY: u64 = 6;
}

/// `ENABLE` flag: also notify faults taken at EL1.
pub const ENABLE_NOTIFY_EL1: u64 = 1 << 0;
/// Every `ENABLE` flag this ABI version knows.
pub const ENABLE_KNOWN_FLAGS: u64 = ENABLE_NOTIFY_EL1;

/// `SET_RECORD` argument that unregisters the record.
pub const RECORD_UNREGISTER: u64 = u64::MAX;

/// SMCCC error codes a call can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmcccError {
    /// Unknown operation.
    NotSupported,
    /// Nothing to do (disabled, nothing pending, no record registered).
    NotRequired,
    /// A bad argument.
    InvalidParameter,
}

impl SmcccError {
    /// The SMCCC code.
    pub const fn code(self) -> i64 {
        match self {
            SmcccError::NotSupported => NOT_SUPPORTED,
            SmcccError::NotRequired => NOT_REQUIRED,
            SmcccError::InvalidParameter => INVALID_PARAMETER,
        }
    }

    /// The code as the register value returned in `x0`.
    pub const fn ret(self) -> u64 {
        self.code() as u64
    }
}

/// Flags of `ENABLE`, validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnableFlags {
    /// [`ENABLE_NOTIFY_EL1`]: also notify faults taken at EL1.
    pub notify_el1: bool,
}

impl EnableFlags {
    /// Validates `x2` of `ENABLE`: unknown bits are `INVALID_PARAMETER`.
    pub const fn from_bits(bits: u64) -> Result<Self, SmcccError> {
        if bits & !ENABLE_KNOWN_FLAGS != 0 {
            return Err(SmcccError::InvalidParameter);
        }
        Ok(Self {
            notify_el1: bits & ENABLE_NOTIFY_EL1 != 0,
        })
    }

    /// The flags as bits.
    pub const fn bits(self) -> u64 {
        if self.notify_el1 {
            ENABLE_NOTIFY_EL1
        } else {
            0
        }
    }
}

/// A decoded call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `VERSION`.
    Version,
    /// `GET_CONFIG`.
    GetConfig,
    /// `SET_RECORD`: `Some(ipa)` registers the record at `ipa` (64-byte
    /// aligned; whether it is RAM is checked by the caller), `None`
    /// unregisters it (`x2 == ~0`).
    SetRecord(Option<u64>),
    /// `ENABLE` with validated flags.
    Enable(EnableFlags),
    /// `DISABLE`.
    Disable,
    /// `ACK_READY`.
    AckReady,
    /// `GET_READY`.
    GetReady,
}

/// Decodes the operation in `x1` and its argument in `x2`.
///
/// Checks that need no vCPU state are done here: unknown operation
/// (`NOT_SUPPORTED`), unaligned record (`INVALID_PARAMETER`), unknown enable
/// flags (`INVALID_PARAMETER`). Arguments of operations that take none are
/// ignored.
pub const fn decode(x1: u64, x2: u64) -> Result<Request, SmcccError> {
    match x1 {
        op::VERSION => Ok(Request::Version),
        op::GET_CONFIG => Ok(Request::GetConfig),
        op::SET_RECORD => {
            if x2 == RECORD_UNREGISTER {
                Ok(Request::SetRecord(None))
            } else if x2 & (RECORD_ALIGN - 1) != 0 {
                Err(SmcccError::InvalidParameter)
            } else {
                Ok(Request::SetRecord(Some(x2)))
            }
        }
        op::ENABLE => match EnableFlags::from_bits(x2) {
            Ok(f) => Ok(Request::Enable(f)),
            Err(e) => Err(e),
        },
        op::DISABLE => Ok(Request::Disable),
        op::ACK_READY => Ok(Request::AckReady),
        op::GET_READY => Ok(Request::GetReady),
        _ => Err(SmcccError::NotSupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rows() {
        assert_eq!(decode(0, 7), Ok(Request::Version));
        assert_eq!(decode(2, 0x1040), Ok(Request::SetRecord(Some(0x1040))));
        assert_eq!(decode(2, 0x1041), Err(SmcccError::InvalidParameter));
        assert_eq!(decode(2, u64::MAX), Ok(Request::SetRecord(None)));
        assert_eq!(decode(3, 2), Err(SmcccError::InvalidParameter));
        assert_eq!(decode(5, 0), Ok(Request::AckReady));
        assert_eq!(decode(6, 0), Ok(Request::GetReady));
        assert_eq!(decode(7, 0), Err(SmcccError::NotSupported));
        assert_eq!(NOT_REQUIRED_RET, 0xffff_ffff_ffff_fffe);
    }
}
