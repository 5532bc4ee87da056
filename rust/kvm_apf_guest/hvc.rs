// SPDX-License-Identifier: GPL-2.0

//! The `ASYNC_PF` hypervisor call (Documentation/async-pf.rst), one safe
//! function per operation. Every operation acts on the calling vCPU: the
//! per-CPU ones are made from that CPU (hotplug callback, interrupt
//! handler, or a function run on each CPU).

use crate::ffi;
use crate::logic::hypercall::op;
use crate::logic::hypercall::ASYNC_PF_FUNC_ID;
use crate::logic::hypercall::ASYNC_PF_FUNC_NUM;
use crate::logic::hypercall::RECORD_UNREGISTER;

/// Whether the KVM vendor hypervisor bitmap advertises the function.
pub(crate) fn offered() -> bool {
    // SAFETY: reads a bitmap set up at boot; no precondition.
    unsafe { ffi::kvm_apf_guest_shim_hyp_available(ASYNC_PF_FUNC_NUM) }
}

/// One call; R0..R3 of the answer.
fn call(operation: u64, arg: u64) -> [u64; 4] {
    let mut res = [0u64; 4];
    // SAFETY: `res` has room for the four words the shim writes. Only
    // called once `offered()` said the function exists (the ABI forbids
    // calling it otherwise), and the call itself has no memory effect on
    // the guest beyond the record it names.
    unsafe { ffi::kvm_apf_guest_shim_call(ASYNC_PF_FUNC_ID, operation, arg, res.as_mut_ptr()) };
    res
}

/// `VERSION`: R0.
pub(crate) fn version() -> u64 {
    call(op::VERSION, 0)[0]
}

/// `GET_CONFIG`: R0..R3.
pub(crate) fn get_config() -> [u64; 4] {
    call(op::GET_CONFIG, 0)
}

/// `SET_RECORD` of the record at guest physical address `pa`.
///
/// The host writes the record from now on: the caller keeps the memory
/// allocated until [`unregister`] succeeded.
pub(crate) fn set_record(pa: u64) -> u64 {
    call(op::SET_RECORD, pa)[0]
}

/// `SET_RECORD` with all ones: unregisters this vCPU's record.
pub(crate) fn unregister() -> u64 {
    call(op::SET_RECORD, RECORD_UNREGISTER)[0]
}

/// `ENABLE` with `flags`.
pub(crate) fn enable(flags: u64) -> u64 {
    call(op::ENABLE, flags)[0]
}

/// `DISABLE`: a `WAKE_ALL` follows in the record.
pub(crate) fn disable() -> u64 {
    call(op::DISABLE, 0)[0]
}

/// `ACK_READY`; its answer needs no handling.
pub(crate) fn ack_ready() {
    call(op::ACK_READY, 0);
}

/// `GET_READY` (1.1, VM-wide page-ready): R0..R3 (status, token, MPIDR
/// affinity of the announcing vCPU, more).
pub(crate) fn get_ready() -> [u64; 4] {
    call(op::GET_READY, 0)
}
