// SPDX-License-Identifier: GPL-2.0

//! Every C function the Rust side calls: the module's own shim
//! (`c_shim/kvm_apf_shim.h`) and the provider helpers the hook series
//! exports to this module (`<asm/kvm_async_pf.h>`). Opaque pointers and
//! plain integers only; all `unsafe` FFI lives behind this file's callers.

use kernel::ffi::{
    c_int,
    c_ulong,
    c_void, //
};

/// `struct kvm`, never dereferenced on the Rust side.
#[repr(C)]
pub(crate) struct Kvm {
    _opaque: [u8; 0],
}

/// `struct kvm_apf_vm` of the shim (a VM's workqueue and mm reference),
/// never dereferenced on the Rust side.
#[repr(C)]
pub(crate) struct ApfVm {
    _opaque: [u8; 0],
}

/// `struct kvm_vcpu`, never dereferenced on the Rust side.
#[repr(C)]
pub(crate) struct KvmVcpu {
    _opaque: [u8; 0],
}

extern "C" {
    // c_shim/kvm_apf_shim.c
    pub(crate) fn kvm_apf_shim_init() -> c_int;
    pub(crate) fn kvm_apf_shim_exit();
    pub(crate) fn kvm_apf_shim_vm_alloc(kvm: *mut Kvm) -> *mut ApfVm;
    pub(crate) fn kvm_apf_shim_vm_release(vm: *mut ApfVm);
    pub(crate) fn kvm_apf_shim_queue_work(
        vm: *mut ApfVm,
        work: *mut kernel::bindings::work_struct,
    ) -> bool;
    pub(crate) fn kvm_apf_shim_work_done();
    pub(crate) fn kvm_apf_shim_vcpu_kvm(vcpu: *mut KvmVcpu) -> *mut Kvm;
    pub(crate) fn kvm_apf_shim_vcpu_state(vcpu: *mut KvmVcpu) -> *mut c_void;
    pub(crate) fn kvm_apf_shim_set_vcpu_state(vcpu: *mut KvmVcpu, state: *mut c_void);
    pub(crate) fn kvm_apf_shim_nr_vcpus(kvm: *mut Kvm) -> c_ulong;
    pub(crate) fn kvm_apf_shim_get_vcpu(kvm: *mut Kvm, idx: c_ulong) -> *mut KvmVcpu;
    pub(crate) fn kvm_apf_shim_vcpu_at_el0(vcpu: *mut KvmVcpu) -> bool;
    pub(crate) fn kvm_apf_shim_vcpu_mpidr(vcpu: *mut KvmVcpu) -> u64;
    pub(crate) fn kvm_apf_shim_get_context(vcpu: *mut KvmVcpu, x: *mut u64, pc: *mut u64, pstate: *mut u64);
    pub(crate) fn kvm_apf_shim_set_context(
        vcpu: *mut KvmVcpu,
        x: *const u64,
        n: core::ffi::c_uint,
        pc: u64,
        pstate: u64,
    );
    pub(crate) fn kvm_apf_shim_fault_in(vm: *mut ApfVm, hva: c_ulong, write: bool) -> c_int;
    pub(crate) fn kvm_apf_shim_trace_not_present(vcpu: *mut KvmVcpu, token: u64);
    pub(crate) fn kvm_apf_shim_trace_ready(vcpu: *mut KvmVcpu, token: u64);
    pub(crate) fn kvm_apf_shim_trace_sync(vcpu: *mut KvmVcpu, ipa: u64, reason: u32);

    // arch/arm64/kvm/async_pf.c, exported to "kvm_apf" only.
    pub(crate) fn kvm_arm_apf_signal_irq(vcpu: *mut KvmVcpu, intid: u32) -> c_int;
    pub(crate) fn kvm_arm_apf_config_irq(vcpu: *mut KvmVcpu, intid: u32) -> c_int;
    pub(crate) fn kvm_arm_apf_irq_deliverable(vcpu: *mut KvmVcpu, intid: u32) -> bool;
    pub(crate) fn kvm_arm_apf_validate_intid(kvm: *mut Kvm, intid: u32) -> c_int;
    pub(crate) fn kvm_arm_apf_read_guest_u64(kvm: *mut Kvm, gpa: u64, val: *mut u64) -> c_int;
    pub(crate) fn kvm_arm_apf_write_guest_u64(kvm: *mut Kvm, gpa: u64, val: u64) -> c_int;
    pub(crate) fn kvm_arm_apf_gpa_is_ram(kvm: *mut Kvm, gpa: u64, len: c_ulong) -> bool;
    pub(crate) fn kvm_arm_apf_kick(vcpu: *mut KvmVcpu);
    pub(crate) fn kvm_arm_apf_write_el1_return(vcpu: *mut KvmVcpu, elr: u64, spsr: u64);
    pub(crate) fn kvm_arm_apf_map_page(vcpu: *mut KvmVcpu, ipa: u64, write: bool) -> c_int;
}
