// SPDX-License-Identifier: GPL-2.0

//! Every C function the Rust side calls: the shim in
//! `c_shim/kvm_apf_guest_shim.c`, declared in `kvm_apf_guest_shim.h`.
//! Plain integers and opaque pointers only; the callers in this crate wrap
//! each one in a safe function where that is possible.

use kernel::bindings::callback_head;
use kernel::bindings::raw_spinlock_t;
use kernel::ffi::{
    c_char,
    c_int,
    c_uint,
    c_ulong,
    c_void, //
};

extern "C" {
    pub(crate) fn kvm_apf_guest_shim_hyp_available(func_num: u32) -> bool;
    pub(crate) fn kvm_apf_guest_shim_call(func_id: u32, op: u64, arg: u64, res: *mut u64);
    pub(crate) fn kvm_apf_guest_shim_num_possible_cpus() -> c_uint;
    pub(crate) fn kvm_apf_guest_shim_virt_to_phys(addr: *const c_void) -> u64;

    pub(crate) fn kvm_apf_guest_shim_set_cpu_state(cpu: c_uint, state: *mut c_void);
    pub(crate) fn kvm_apf_guest_shim_state_of_mpidr(mpidr: u64) -> *mut c_void;

    pub(crate) fn kvm_apf_guest_shim_map_intid(intid: u32) -> c_int;
    pub(crate) fn kvm_apf_guest_shim_request_irqs(
        np_irq: c_uint,
        ready_irq: c_uint,
        ready_ppi: bool,
        vm_wide: bool,
    ) -> c_int;
    pub(crate) fn kvm_apf_guest_shim_free_irqs();
    pub(crate) fn kvm_apf_guest_shim_enable_local_irqs();
    pub(crate) fn kvm_apf_guest_shim_disable_local_irqs();
    pub(crate) fn kvm_apf_guest_shim_irq_from_user() -> bool;

    pub(crate) fn kvm_apf_guest_shim_cpuhp_setup() -> c_int;
    pub(crate) fn kvm_apf_guest_shim_cpuhp_remove();
    pub(crate) fn kvm_apf_guest_shim_reboot_register();
    pub(crate) fn kvm_apf_guest_shim_reboot_unregister();

    pub(crate) fn kvm_apf_guest_shim_queue_sleep(head: *mut callback_head) -> c_int;
    pub(crate) fn kvm_apf_guest_shim_current_exiting() -> bool;
    pub(crate) fn kvm_apf_guest_shim_set_current_state(interruptible: bool);
    pub(crate) fn kvm_apf_guest_shim_set_current_running();

    pub(crate) fn kvm_apf_guest_shim_raw_lock_init(lock: *mut raw_spinlock_t);
    pub(crate) fn kvm_apf_guest_shim_raw_lock(lock: *mut raw_spinlock_t) -> c_ulong;
    pub(crate) fn kvm_apf_guest_shim_raw_trylock(
        lock: *mut raw_spinlock_t,
        flags: *mut c_ulong,
    ) -> bool;
    pub(crate) fn kvm_apf_guest_shim_raw_unlock(lock: *mut raw_spinlock_t, flags: c_ulong);
    pub(crate) fn kvm_apf_guest_shim_raw_assert_held(lock: *mut raw_spinlock_t);

    pub(crate) fn kvm_apf_guest_shim_debugfs_init();
    pub(crate) fn kvm_apf_guest_shim_debugfs_add(name: *const c_char, value: *mut u64);
    pub(crate) fn kvm_apf_guest_shim_debugfs_inject();
    pub(crate) fn kvm_apf_guest_shim_debugfs_exit();
}
