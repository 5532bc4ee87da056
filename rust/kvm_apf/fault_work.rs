// SPDX-License-Identifier: GPL-2.0

//! The fault-in work items of a vCPU: allocated with its state, one per
//! slot, and reused. The stage-2 abort takes one from the vCPU's pool and
//! queues it; the worker faults the page in through the VM's mm on the
//! VM's workqueue, hands the gfn back to the vCPU and returns the item to
//! the pool. Nothing is allocated or freed per fault.

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

/// An idle or queued fault-in work item.
///
/// # Invariants
///
/// `apf` is `Some` exactly while the item is queued or running: set by
/// [`FaultWork::queue`], taken by [`WorkItem::run`].
#[pin_data]
pub(crate) struct FaultWork {
    /// The vCPU state the item works for, while it is in flight. Held as a
    /// reference only then: an idle item sits in that state's pool.
    apf: Option<Arc<VcpuApf>>,
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
    /// Allocates an idle item for a vCPU's pool, charged to the VMM.
    pub(crate) fn new_idle() -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(
            // INVARIANT: idle, so no `apf`.
            pin_init!(FaultWork {
                apf: None,
                gfn: 0,
                hva: 0,
                write: false,
                work <- new_work!("kvm_apf::FaultWork::work"),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// The gfn and access of the fault this item handled.
    pub(crate) fn fault(&self) -> (u64, bool) {
        (self.gfn, self.write)
    }

    /// Queues the idle item `this`, taken from the pool of `apf` with
    /// [`VcpuApf::reserve_work`], for a fault on `gfn` at `hva` on the
    /// VM's workqueue.
    pub(crate) fn queue(mut this: Pin<KBox<Self>>, apf: Arc<VcpuApf>, gfn: u64, hva: u64, write: bool) {
        let vm = apf.vm_raw();
        let p = this.as_mut().project();
        *p.gfn = gfn;
        *p.hva = hva;
        *p.write = write;
        // INVARIANT: queued below.
        *p.apf = Some(apf);
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
        // it; `__enqueue` keeps the item alive until `run`. An idle item is
        // never pending, so the queueing cannot be refused.
        unsafe { <Pin<KBox<Self>> as RawWorkItem<0>>::__enqueue(this, queue_on_vm) };
    }
}

impl WorkItem for FaultWork {
    type Pointer = Pin<KBox<Self>>;

    fn run(mut this: Pin<KBox<Self>>) {
        // Always `Some` (type invariant); were it not, there would be
        // nobody to report to, and the item just goes.
        if let Some(apf) = this.as_mut().project().apf.take() {
            let ret = if apf.is_dying() {
                // Nobody waits for this page any more: leave it alone.
                ESRCH.to_errno()
            } else {
                // SAFETY: `vm_raw()` is valid while `apf` is (it holds the
                // `VmWork`), and the shim holds its own reference on the mm.
                unsafe { ffi::kvm_apf_shim_fault_in(apf.vm_raw(), this.hva as _, this.write) }
            };
            // The item goes back to the pool of `apf`.
            apf.complete(this, ret == 0);
            // Possibly the last reference to the vCPU state (and its pool
            // with this item) and to the VM's work (whose queue is then
            // released from another context).
            drop(apf);
        }
        // SAFETY: the last thing the item does: drops the module reference
        // taken when it was queued. The return into module text that
        // follows is covered by the module exit's flush of the release
        // workqueue, which destroys this item's queue.
        unsafe { ffi::kvm_apf_shim_work_done() };
    }
}
