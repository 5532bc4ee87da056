// SPDX-License-Identifier: GPL-2.0

//! Layout of the 64-byte shared record in guest RAM and encoders of the
//! little-endian writes the host makes to it.
//!
//! The host only ever writes whole 8-byte fields: a token, or the version
//! word together with `ack_ready`. It reads the two tokens back: the guest
//! clears a token once it has read it, which frees that notification slot
//! without a hypercall.

use super::token::Token;
use zerocopy::byteorder::little_endian::U32;
use zerocopy::byteorder::little_endian::U64;
use zerocopy_derive::FromBytes;
use zerocopy_derive::Immutable;
use zerocopy_derive::IntoBytes;
use zerocopy_derive::KnownLayout;

/// Size of the record.
pub const RECORD_SIZE: usize = 64;
/// Required alignment of the record in guest memory.
pub const RECORD_ALIGN: u64 = 64;
/// Offset of `not_present_token` (host writes it before raising the
/// not-present interrupt).
pub const NOT_PRESENT_TOKEN_OFFSET: usize = 0x00;
/// Offset of `ready_token` (host writes it before raising page-ready).
pub const READY_TOKEN_OFFSET: usize = 0x08;
/// Offset of `version` (host writes it at `SET_RECORD`).
pub const VERSION_OFFSET: usize = 0x10;
/// Offset of `ack_ready`: non-zero while more page-ready notifications
/// wait behind the one in `ready_token` (the guest then calls `ACK_READY`
/// after clearing `ready_token`).
pub const ACK_READY_OFFSET: usize = 0x14;
/// Offset of the 40-byte reserved tail.
pub const RESERVED_OFFSET: usize = 0x18;
/// Layout version written to `version`.
pub const RECORD_VERSION: u32 = 1;

/// The shared record (all fields little-endian, no padding).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ApfRecord {
    /// Page-aligned IPA that is not present; 0 once the guest read it.
    pub not_present_token: U64,
    /// Page-aligned IPA now present, or `WAKE_ALL`; 0 once the guest read it.
    pub ready_token: U64,
    /// Layout version, [`RECORD_VERSION`].
    pub version: U32,
    /// 1 while more page-ready notifications wait: call `ACK_READY`.
    pub ack_ready: U32,
    /// Reserved, 0.
    pub reserved: [U64; 5],
}

const _: () = assert!(core::mem::size_of::<ApfRecord>() == RECORD_SIZE);
const _: () = assert!(core::mem::align_of::<ApfRecord>() == 1);
const _: () =
    assert!(core::mem::offset_of!(ApfRecord, not_present_token) == NOT_PRESENT_TOKEN_OFFSET);
const _: () = assert!(core::mem::offset_of!(ApfRecord, ready_token) == READY_TOKEN_OFFSET);
const _: () = assert!(core::mem::offset_of!(ApfRecord, version) == VERSION_OFFSET);
const _: () = assert!(core::mem::offset_of!(ApfRecord, ack_ready) == ACK_READY_OFFSET);
const _: () = assert!(core::mem::offset_of!(ApfRecord, reserved) == RESERVED_OFFSET);
const _: () = assert!(RESERVED_OFFSET + 40 == RECORD_SIZE);

impl ApfRecord {
    /// The record as the host initialises it: tokens 0, version 1.
    pub fn initial() -> Self {
        Self {
            version: U32::new(RECORD_VERSION),
            ..Self::default()
        }
    }
}

/// One 8-byte write into guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestWrite {
    /// Guest physical address of the first byte.
    pub gpa: u64,
    /// Little-endian bytes to write.
    pub bytes: [u8; 8],
}

/// The write that stores the 8-byte little-endian `word` at `offset` of
/// the record at `record`; `None` on overflow (the record was checked to be
/// RAM, so this does not happen for a registered record).
const fn word_write(record: u64, offset: usize, word: u64) -> Option<GuestWrite> {
    // Lossless: offsets are below RECORD_SIZE.
    match record.checked_add(offset as u64) {
        Some(gpa) => Some(GuestWrite {
            gpa,
            bytes: word.to_le_bytes(),
        }),
        None => None,
    }
}

/// The write that stores `token` in `not_present_token`.
pub const fn not_present_write(record: u64, token: Token) -> Option<GuestWrite> {
    word_write(record, NOT_PRESENT_TOKEN_OFFSET, token.raw())
}

/// The write that stores `token` in `ready_token`.
pub const fn ready_write(record: u64, token: Token) -> Option<GuestWrite> {
    word_write(record, READY_TOKEN_OFFSET, token.raw())
}

/// The write that stores `version` = [`RECORD_VERSION`] and `ack_ready`.
pub const fn header_write(record: u64, ack_ready: bool) -> Option<GuestWrite> {
    // version (u32 LE) in the low half, ack_ready in the high half.
    word_write(
        record,
        VERSION_OFFSET,
        RECORD_VERSION as u64 | ((ack_ready as u64) << 32),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes as _;

    #[test]
    fn version_bytes_match_struct() {
        let r = ApfRecord::initial();
        let w = header_write(0x1000, false).unwrap();
        assert_eq!(w.gpa, 0x1010);
        assert_eq!(&r.as_bytes()[VERSION_OFFSET..VERSION_OFFSET + 8], &w.bytes);
    }
}
