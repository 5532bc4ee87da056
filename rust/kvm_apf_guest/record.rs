// SPDX-License-Identifier: GPL-2.0

//! The 64-byte record a vCPU shares with the host, as the guest accesses
//! it: one single-copy-atomic load or store per field (`READ_ONCE()` /
//! `WRITE_ONCE()`), little-endian like the kernel itself. The layout is
//! the one of `rust/logic/record.rs`, checked at compile time.

use core::mem::offset_of;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;

use crate::logic::record;
use crate::logic::token::Token;

/// The shared record.
///
/// The host writes `not_present_token`, `ready_token`, `version` and
/// `ack_ready` between two instructions of the guest code running on the
/// vCPU that owns the record; the guest only ever stores 0 into a token
/// field it has read non-zero (and zeroes everything before registering).
#[repr(C, align(64))]
pub(crate) struct Record {
    not_present_token: Atomic<u64>,
    ready_token: Atomic<u64>,
    version: Atomic<u32>,
    ack_ready: Atomic<u32>,
    reserved: [Atomic<u64>; 5],
}

const _: () = assert!(core::mem::size_of::<Record>() == record::RECORD_SIZE);
const _: () = assert!(core::mem::align_of::<Record>() as u64 == record::RECORD_ALIGN);
const _: () = assert!(offset_of!(Record, not_present_token) == record::NOT_PRESENT_TOKEN_OFFSET);
const _: () = assert!(offset_of!(Record, ready_token) == record::READY_TOKEN_OFFSET);
const _: () = assert!(offset_of!(Record, version) == record::VERSION_OFFSET);
const _: () = assert!(offset_of!(Record, ack_ready) == record::ACK_READY_OFFSET);
const _: () = assert!(offset_of!(Record, reserved) == record::RESERVED_OFFSET);
const _: () = assert!(cfg!(target_endian = "little"));

impl Record {
    /// A record of zeroes.
    pub(crate) const fn zeroed() -> Self {
        Self {
            not_present_token: Atomic::new(0),
            ready_token: Atomic::new(0),
            version: Atomic::new(0),
            ack_ready: Atomic::new(0),
            reserved: [const { Atomic::new(0) }; 5],
        }
    }

    /// Zeroes every field, before `SET_RECORD` (not registered: nobody else
    /// writes it).
    pub(crate) fn clear(&self) {
        self.not_present_token.store(0, Relaxed);
        self.ready_token.store(0, Relaxed);
        self.version.store(0, Relaxed);
        self.ack_ready.store(0, Relaxed);
        for r in &self.reserved {
            r.store(0, Relaxed);
        }
    }

    /// Reads `not_present_token` and, if it is not 0, hands the field back.
    pub(crate) fn take_not_present(&self) -> Token {
        let t = self.not_present_token.load(Relaxed);
        if t != 0 {
            self.not_present_token.store(0, Relaxed);
        }
        Token::from_raw(t)
    }

    /// Reads `not_present_token`, leaving it.
    pub(crate) fn not_present(&self) -> Token {
        Token::from_raw(self.not_present_token.load(Relaxed))
    }

    /// Hands `not_present_token` back; only after reading it non-zero.
    pub(crate) fn clear_not_present(&self) {
        self.not_present_token.store(0, Relaxed);
    }

    /// Reads `ready_token` and, if it is not 0, hands the field back.
    pub(crate) fn take_ready(&self) -> Token {
        let t = self.ready_token.load(Relaxed);
        if t != 0 {
            self.ready_token.store(0, Relaxed);
        }
        Token::from_raw(t)
    }

    /// Whether more page-ready notifications wait in the host.
    pub(crate) fn ack_ready(&self) -> bool {
        self.ack_ready.load(Relaxed) != 0
    }

    /// The layout version the host wrote at `SET_RECORD`.
    pub(crate) fn version(&self) -> u32 {
        self.version.load(Relaxed)
    }

    /// Stores `t` as the host would (KUnit only: there is no host there).
    #[cfg(CONFIG_KUNIT = "y")]
    pub(crate) fn host_write(&self, not_present: Option<Token>, ready: Option<Token>) {
        if let Some(t) = not_present {
            self.not_present_token.store(t.raw(), Relaxed);
        }
        if let Some(t) = ready {
            self.ready_token.store(t.raw(), Relaxed);
        }
    }
}
