// SPDX-License-Identifier: GPL-2.0

//! Fault injection for tests, only with the module parameter `inject=1`:
//! `/sys/kernel/debug/kvm_apf_guest/inject` takes
//!
//! - `sleep CPU TOKEN`: the writing task sleeps on `TOKEN` of `CPU` on its
//!   way back to user mode, exactly as after a not-present notification
//!   taken in user mode (same entry, task_work and module reference);
//! - `ready CPU TOKEN`: what the page-ready handler of `CPU` does with
//!   `TOKEN` (`0xffffffffffffffff` is `WAKE_ALL`).
//!
//! This drives the sleep, the signal, the wake-up and the unload paths
//! without a hypervisor, e.g. in a host that does not offer the feature
//! (the per-CPU states then exist without any interrupt or record).

use kernel::ffi::{
    c_int,
    c_void, //
};
use kernel::prelude::*;

use crate::ffi;
use crate::logic::sleepers::PageReady;
use crate::logic::token::Token;
use crate::stats::Stats;

/// `inject` operation numbers, as the shim parses them.
const OP_SLEEP: u32 = 0;
const OP_READY: u32 = 1;

/// A write to the `inject` file, parsed by the shim.
///
/// # Safety
///
/// `state` is the per-CPU state of the CPU named in the write, set by the
/// driver and not freed while the debugfs file exists.
#[no_mangle]
unsafe extern "C" fn kvm_apf_guest_rs_inject(state: *mut c_void, op: u32, token: u64) -> c_int {
    if state.is_null() {
        return ENODEV.to_errno();
    }
    // SAFETY: by the function's contract.
    let cs = unsafe { crate::state(state) };
    let tok = Token::from_raw(token);
    match op {
        OP_SLEEP => match cs.sleep_on(tok) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        },
        OP_READY => {
            let action = cs.mark_ready(tok);
            if let PageReady::Unmatched = action.outcome {
                Stats::inc(&cs.stats.unmatched);
            }
            0
        }
        _ => EINVAL.to_errno(),
    }
}

/// Creates the `inject` file; removed with the directory at exit.
pub(crate) fn publish() {
    // SAFETY: the directory exists (`Stats::publish` ran first); the
    // per-CPU states are set.
    unsafe { ffi::kvm_apf_guest_shim_debugfs_inject() };
}
