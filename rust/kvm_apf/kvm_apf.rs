// SPDX-License-Identifier: GPL-2.0

//! Asynchronous page faults for arm64 KVM.
//!
//! When a guest touches memory the host does not have yet (post-copy live
//! migration, snapshot restore from a userfaultfd-backed file), the guest is
//! told "page not present" and runs another task while a host worker brings
//! the page in; then it is told "page ready". KVM reaches this module
//! through the provider interface of the hook series in `c_shim/patches/`.

use kernel::prelude::*;

mod fault_work;
mod ffi;
#[path = "../logic/mod.rs"]
mod logic;
mod logic_kunit;
mod provider;
mod vcpu;
mod vm;

module! {
    type: KvmApf,
    name: "kvm_apf",
    authors: ["kvm-apf developers"],
    description: "Asynchronous page faults for arm64 KVM",
    license: "GPL",
}

struct KvmApf;

impl kernel::Module for KvmApf {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: called once, before the provider is registered (below),
        // so before any use of `VMS`.
        unsafe { provider::VMS.init() };
        // SAFETY: module init, called once; undone in `drop`.
        kernel::error::to_result(unsafe { ffi::kvm_apf_shim_init() })?;
        pr_info!("registered as the arm64 KVM async page fault provider\n");
        Ok(KvmApf)
    }
}

impl Drop for KvmApf {
    fn drop(&mut self) {
        // SAFETY: `init` succeeded. KVM holds a module reference for every
        // VM with the feature enabled, so none is left now.
        unsafe { ffi::kvm_apf_shim_exit() };
        // A static is never dropped: free the (now empty) list's buffer.
        *provider::VMS.lock() = KVec::new();
        pr_info!("unregistered\n");
    }
}
