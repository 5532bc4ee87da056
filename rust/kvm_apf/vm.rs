// SPDX-License-Identifier: GPL-2.0

//! A VM's fault-in work: the workqueue its items run on, a reference on
//! its mm (both in the shim's `struct kvm_apf_vm`), and how many items it
//! has in flight. Shared by the VM's vCPU states and by every item, so it
//! outlives the VM when an item still waits for a page: items are never
//! waited for at disable or teardown.

use kernel::{
    prelude::*,
    sync::{
        new_spinlock,
        Arc,
        SpinLock, //
    },
};

use crate::ffi;
use crate::ffi::ApfVm;
use crate::ffi::Kvm;

/// Most fault-in items one VM may have in flight, queued or running
/// (`WQ_UNBOUND_MAX_ACTIVE`, its workqueue's `max_active`): each running
/// item pins a worker thread while it waits for its page.
pub(crate) const VM_MAX_IN_FLIGHT: usize = 2048;

/// # Invariants
///
/// `raw` is the `struct kvm_apf_vm` that `kvm_apf_shim_vm_alloc()` returned
/// for this object; it is released only by `drop`, so it is valid for the
/// object's whole life.
#[pin_data(PinnedDrop)]
pub(crate) struct VmWork {
    raw: *mut ApfVm,
    /// Items of this VM queued and not yet completed.
    #[pin]
    in_flight: SpinLock<usize>,
}

// SAFETY: `raw` is only handed to shim functions that may be called from any
// thread (queueing work, faulting in through the mm it holds, releasing);
// the counter is behind a lock.
unsafe impl Send for VmWork {}
// SAFETY: as for `Send`.
unsafe impl Sync for VmWork {}

impl VmWork {
    /// The fault-in resources of `kvm`, for the VMM's `KVM_ENABLE_CAP`.
    ///
    /// # Safety
    ///
    /// `kvm` is a live VM.
    pub(crate) unsafe fn new(kvm: *mut Kvm) -> Result<Arc<Self>> {
        // SAFETY: `kvm` is live (function contract).
        let raw = unsafe { ffi::kvm_apf_shim_vm_alloc(kvm) };
        if raw.is_null() {
            return Err(ENOMEM);
        }
        let res = Arc::pin_init(
            // INVARIANT: `raw` was just returned by `kvm_apf_shim_vm_alloc()`.
            pin_init!(VmWork {
                raw,
                in_flight <- new_spinlock!(0),
            }),
            GFP_KERNEL_ACCOUNT,
        );
        if res.is_err() {
            // SAFETY: `raw` is valid and owned by nobody else yet.
            unsafe { ffi::kvm_apf_shim_vm_release(raw) };
        }
        res
    }

    /// The shim's view, for queueing and faulting in.
    pub(crate) fn raw(&self) -> *mut ApfVm {
        self.raw
    }

    /// Accounts for one more item if the VM is below [`VM_MAX_IN_FLIGHT`].
    pub(crate) fn reserve(&self) -> bool {
        let mut n = self.in_flight.lock();
        if *n >= VM_MAX_IN_FLIGHT {
            return false;
        }
        *n += 1;
        true
    }

    /// One item completed (or was never queued).
    pub(crate) fn unreserve(&self) {
        let mut n = self.in_flight.lock();
        *n = n.saturating_sub(1);
    }

    /// Items queued or running.
    pub(crate) fn in_flight(&self) -> usize {
        *self.in_flight.lock()
    }
}

#[pinned_drop]
impl PinnedDrop for VmWork {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `raw` is valid (type invariant) and this is its last use.
        // The shim destroys the workqueue from another context, since the
        // last reference may be dropped by an item running on it.
        unsafe { ffi::kvm_apf_shim_vm_release(self.raw) };
    }
}
