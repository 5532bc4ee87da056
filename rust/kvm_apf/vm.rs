// SPDX-License-Identifier: GPL-2.0

//! A VM's fault-in work: the workqueue its items run on, a reference on
//! its mm (both in the shim's `struct kvm_apf_vm`), and how many items it
//! has in flight; and, when page-ready is an SPI, the VM-wide ready queue
//! that `GET_READY` pops (`logic::vm_ready`). Shared by the VM's vCPU
//! states and by every item, so it outlives the VM when an item still
//! waits for a page: items are never waited for at disable or teardown.

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
use crate::ffi::KvmVcpu;
use crate::logic::token::Token;
use crate::logic::vcpu_state::VmView;
use crate::logic::vm_ready::ReadyEntry;
use crate::logic::vm_ready::VcpuQueued;
use crate::logic::vm_ready::VmReadyQueue;
use crate::vcpu::Storage;

/// The VM-wide ready queue with kernel storage.
pub(crate) type VmReady = VmReadyQueue<Storage<ReadyEntry>, Storage<VcpuQueued>>;

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
    /// VM-wide page-ready (an SPI): the queue `GET_READY` pops, with room
    /// for `slots + 1` entries per vCPU made at `KVM_ENABLE_CAP` and at
    /// each later vCPU's creation, so that pushing never allocates. Empty
    /// storage with a PPI.
    #[pin]
    ready: SpinLock<VmReady>,
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
        // Empty: no allocation yet.
        let ready = VmReadyQueue::new(Storage::zeroed(0)?, Storage::zeroed(0)?);
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
                ready <- new_spinlock!(ready),
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

    /// Makes room in the ready queue for one more vCPU of `slots` slots
    /// and returns its index there. Allocates (charged to the VMM) outside
    /// the lock; may sleep.
    pub(crate) fn add_ready_vcpu(&self, slots: usize) -> Result<u32> {
        loop {
            let (ne, nv) = self.ready.lock().sizes_with_one_more(slots).ok_or(EOVERFLOW)?;
            let entries = Storage::zeroed(ne)?;
            let per_vcpu = Storage::zeroed(nv)?;
            let mut q = self.ready.lock();
            // Too short only if another vCPU was added meanwhile: retry.
            if let Ok((idx, old_e, old_p)) = q.add_vcpu(entries, per_vcpu, slots) {
                drop(q);
                drop((old_e, old_p));
                return Ok(idx);
            }
        }
    }

    /// What the ready queue holds for vCPU `idx`, for a fault on `gfn`.
    pub(crate) fn ready_view(&self, idx: u32, gfn: u64) -> VmView {
        let token = Token::from_gfn(gfn, kernel::page::PAGE_SHIFT as u32);
        let q = self.ready.lock();
        let queued = q.queued(idx);
        VmView {
            tokens: queued.tokens as usize,
            wake_all: queued.wake_all,
            has_token: token.is_some_and(|t| q.contains(idx, t)),
        }
    }

    /// Pushes a page-ready (or `WAKE_ALL`) of `vcpu`, queue index `idx`,
    /// and signals the SPI `intid` if that arms the queue, under the lock
    /// (`Documentation/design.rst`, "VM-wide page-ready").
    ///
    /// # Safety
    ///
    /// `vcpu` is live and of this VM (the caller runs on its thread).
    pub(crate) unsafe fn push_ready(&self, vcpu: *mut KvmVcpu, idx: u32, intid: u32, token: Token) -> Result {
        // SAFETY: `vcpu` is live (function contract).
        let mpidr = unsafe { ffi::kvm_apf_shim_vcpu_mpidr(vcpu) };
        let mut q = self.ready.lock();
        // Cannot fail: the storage has `slots + 1` entries per vCPU and a
        // vCPU's slots bound its queued tokens.
        if q.push(idx, mpidr, token).map_err(|_| ENOSPC)? {
            // SAFETY: `vcpu` is live (function contract); the helper takes
            // only raw spinlocks, so it nests inside this lock.
            let ret = unsafe { ffi::kvm_arm_apf_signal_irq(vcpu, intid) };
            if ret != 0 {
                // Let the next push signal again.
                q.signal_failed();
                return kernel::error::to_result(ret);
            }
        }
        Ok(())
    }

    /// `GET_READY`: x0..x3.
    pub(crate) fn get_ready(&self) -> [u64; 4] {
        self.ready.lock().get_ready_regs()
    }

    /// Drops every entry of vCPU `idx` (reset, restore, vCPU gone).
    pub(crate) fn drop_ready(&self, idx: u32) {
        self.ready.lock().remove_vcpu(idx);
    }

    /// Whether page-ready notifications wait in the VM queue.
    pub(crate) fn ready_waiting(&self) -> bool {
        !self.ready.lock().is_empty()
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
