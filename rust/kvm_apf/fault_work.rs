// SPDX-License-Identifier: GPL-2.0

//! One work item per async page fault: fault the page in through the VM's
//! mm on the module's workqueue, then hand the gfn back to the vCPU.

use kernel::{
    prelude::*,
    sync::Arc,
    workqueue::{
        impl_has_work,
        new_work,
        RawWorkItem,
        Work,
        WorkItem, //
    },
};

use crate::ffi;
use crate::vcpu::VcpuApf;

#[pin_data]
pub(crate) struct FaultWork {
    apf: Arc<VcpuApf>,
    gfn: u64,
    hva: u64,
    write: bool,
    #[pin]
    work: Work<FaultWork>,
}

impl_has_work! {
    impl HasWork<Self> for FaultWork { self.work }
}

impl FaultWork {
    /// Allocates the item for a fault on `gfn` at `hva` (may fail: the
    /// fault is then handled synchronously), charged to the VMM.
    pub(crate) fn new(apf: Arc<VcpuApf>, gfn: u64, hva: u64, write: bool) -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(
            pin_init!(FaultWork {
                apf,
                gfn,
                hva,
                write,
                work <- new_work!("kvm_apf::FaultWork::work"),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Queues the item on its VM's workqueue. The caller has reserved a
    /// completion slot with [`VcpuApf::reserve_work`].
    pub(crate) fn queue(this: Pin<KBox<Self>>) {
        let vm = this.apf.vm_raw();
        let queue_on_vm = |work: *mut kernel::bindings::work_struct| {
            // SAFETY: `__enqueue` passes the item's live `work_struct`;
            // `vm` is valid while the item holds its `VcpuApf`.
            unsafe { ffi::kvm_apf_shim_queue_work(vm, work) }
        };
        // SAFETY: the closure does what `Queue::enqueue` does, only on the
        // VM's own workqueue and a CPU of the shim's choice: it hands the
        // pointer straight to `queue_work_on()`. That workqueue is destroyed
        // only when the last reference to the VM's `VmWork` is gone, and
        // the item holds one (through `apf`) until `run` has finished with
        // it; `__enqueue` keeps the item alive until `run`.
        unsafe { <Pin<KBox<Self>> as RawWorkItem<0>>::__enqueue(this, queue_on_vm) };
    }
}

impl WorkItem for FaultWork {
    type Pointer = Pin<KBox<Self>>;

    fn run(this: Pin<KBox<Self>>) {
        let ret = if this.apf.is_dying() {
            // Nobody waits for this page any more: leave it alone.
            ESRCH.to_errno()
        } else {
            // SAFETY: `vm_raw()` is valid while `this.apf` is (it holds the
            // `VmWork`), and the shim holds its own reference on the mm.
            unsafe { ffi::kvm_apf_shim_fault_in(this.apf.vm_raw(), this.hva as _, this.write) }
        };
        this.apf.complete(this.gfn, ret == 0, this.write);
        // Everything the item owns goes now, possibly the last reference to
        // the vCPU state and the VM's work (whose queue is then released
        // from another context).
        drop(this);
        // SAFETY: the last thing the item does: drops the module reference
        // taken when it was queued. The return into module text that
        // follows is covered by the module exit's flush of the release
        // workqueue, which destroys this item's queue.
        unsafe { ffi::kvm_apf_shim_work_done() };
    }
}
