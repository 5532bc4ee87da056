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
    /// fault is then handled synchronously).
    pub(crate) fn new(apf: Arc<VcpuApf>, gfn: u64, hva: u64, write: bool) -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(
            pin_init!(FaultWork {
                apf,
                gfn,
                hva,
                write,
                work <- new_work!("kvm_apf::FaultWork::work"),
            }),
            GFP_KERNEL,
        )
    }

    /// Queues the item on the module's workqueue. The caller has reserved a
    /// completion slot with [`VcpuApf::reserve_work`].
    pub(crate) fn queue(this: Pin<KBox<Self>>) {
        let queue_elsewhere = |work: *mut kernel::bindings::work_struct| {
            // SAFETY: `__enqueue` passes the item's live `work_struct`.
            unsafe { ffi::kvm_apf_shim_queue_work(work) }
        };
        // SAFETY: the closure does what `Queue::enqueue` does, only on a CPU
        // of the shim's choice: it hands the pointer straight to
        // `queue_work_on()` on the shim's workqueue, which is allocated at
        // module init and destroyed at module exit, after every VM (and so
        // every item) is gone; `__enqueue` keeps the item alive until `run`.
        unsafe { <Pin<KBox<Self>> as RawWorkItem<0>>::__enqueue(this, queue_elsewhere) };
    }
}

impl WorkItem for FaultWork {
    type Pointer = Pin<KBox<Self>>;

    fn run(this: Pin<KBox<Self>>) {
        // SAFETY: the VM outlives the item: vcpu_destroy waits (quiesce)
        // until this vCPU has no item in flight, and `complete` below is
        // the item's last use of the vCPU.
        let ret = unsafe { ffi::kvm_apf_shim_fault_in(this.apf.kvm(), this.hva as _, this.write) };
        this.apf.complete(this.gfn, ret == 0, this.write);
    }
}
