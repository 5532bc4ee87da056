// SPDX-License-Identifier: GPL-2.0

//! One work item per async page fault: fault the page in through the VM's
//! mm on the module's workqueue, then hand the gfn back to the vCPU.

use kernel::{
    prelude::*,
    sync::Arc,
    workqueue::{
        impl_has_work,
        new_work,
        Queue,
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
        // SAFETY: the shim allocates the workqueue at module init and only
        // destroys it at module exit, after every VM (and so every item) is
        // gone; it is valid for the whole life of the module.
        let wq = unsafe { Queue::from_raw(ffi::kvm_apf_shim_wq()) };
        wq.enqueue(this);
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
