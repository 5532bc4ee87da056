// SPDX-License-Identifier: GPL-2.0

//! Per-vCPU async page fault state as the kernel sees it: the pure state
//! machine of `logic::vcpu_state` behind a mutex, the list of completions
//! that workers hand back, and the executor of the state machine's actions.

use kernel::{
    prelude::*,
    sync::{
        new_mutex,
        new_spinlock,
        Arc,
        Mutex,
        SpinLock, //
    },
};

use crate::fault_work::FaultWork;
use crate::ffi;
use crate::ffi::ApfVm;
use crate::ffi::Kvm;
use crate::ffi::KvmVcpu;
use crate::logic::config::ApfConfig;
use crate::logic::gfn_table;
use crate::logic::sdei::ClientEl;
use crate::logic::sdei::SdeiState;
use crate::logic::vcpu_state::Action;
use crate::logic::vcpu_state::Actions;
use crate::logic::vcpu_state::GuestMemory;
use crate::logic::vcpu_state::VcpuState;
use crate::logic::vcpu_state::VmView;
use crate::vm::VmWork;

/// Kernel-allocated storage for the gfn table, the completion queue and
/// the VM's ready queue.
pub(crate) struct Storage<T = u64>(KVec<T>);

impl<T: Clone + Default> Storage<T> {
    /// `n` zeroed entries, allocated once and charged to the caller's
    /// memory cgroup (the VMM's).
    pub(crate) fn zeroed(n: usize) -> Result<Self> {
        let mut v = KVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        v.resize(n, T::default(), GFP_KERNEL_ACCOUNT)?;
        Ok(Self(v))
    }
}

impl<T> AsRef<[T]> for Storage<T> {
    fn as_ref(&self) -> &[T] {
        &self.0
    }
}

impl<T> AsMut<[T]> for Storage<T> {
    fn as_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

/// The state machine with kernel-allocated storage.
pub(crate) type State = VcpuState<Storage, Storage>;

/// Marks a completion whose fault-in failed (gfns are below 2^52).
const FAULT_IN_FAILED: u64 = 1 << 63;
/// Marks a completion of a write fault.
const WRITE_FAULT: u64 = 1 << 62;

/// A fault-in that a worker finished.
pub(crate) struct Completion {
    pub(crate) gfn: u64,
    /// The page was faulted in (else KVM reports the error on the next
    /// fault, taken synchronously).
    pub(crate) ok: bool,
    /// The fault was a write.
    pub(crate) write: bool,
}

/// Guest-visible state, only touched on the vCPU thread (or with every vCPU
/// mutex held, by `KVM_ENABLE_CAP`).
pub(crate) struct Core {
    pub(crate) state: State,
    /// A gfn whose fault-in failed in a worker: its next fault is handled
    /// synchronously, so that KVM reports the error (to the VMM) as it
    /// would have without async page faults, instead of the guest looping.
    pub(crate) sync_gfn: Option<u64>,
    /// A page-ready could not be written or signalled (the record stopped
    /// being guest RAM, or the vGIC refused the interrupt): the guest may
    /// miss notifications, so no fault is announced any more until it
    /// is reset or restored, and every fault blocks.
    pub(crate) delivery_failed: bool,
    /// Both INTIDs were made edge-triggered in the vGIC (the signal does it
    /// too; this covers a pending state restored before the first signal).
    pub(crate) intids_edge: bool,
    /// The SDEI dispatcher of this vCPU, used if page-not-present is
    /// delivered by SDEI ([`ApfConfig::np_is_sdei`]).
    pub(crate) sdei: SdeiState,
}

/// The VM's memory as the state machine sees it. Reads go through
/// `current->mm`: only used on the vCPU thread (or by an ioctl of the VMM).
///
/// # Invariants
///
/// The `Kvm` is alive as long as this value is (it is made by
/// [`VcpuApf::memory`], whose caller guarantees that for its own scope).
pub(crate) struct VmMemory(*mut Kvm);

impl GuestMemory for VmMemory {
    fn is_ram(&mut self, gpa: u64, len: u64) -> bool {
        // SAFETY: the `Kvm` is alive (type invariant).
        unsafe { ffi::kvm_arm_apf_gpa_is_ram(self.0, gpa, len as _) }
    }

    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        let mut val = 0u64;
        // SAFETY: the `Kvm` is alive (type invariant); `val` is a writable
        // `u64` on the stack.
        let ret = unsafe { ffi::kvm_arm_apf_read_guest_u64(self.0, gpa, &mut val) };
        (ret == 0).then_some(val)
    }
}

/// What workers share with the vCPU.
struct Done {
    /// Completed gfns (with [`FAULT_IN_FAILED`], [`WRITE_FAULT`]), drained
    /// on the vCPU thread. Allocated once with room for the slot count;
    /// [`VcpuApf::reserve_work`] keeps `list.len() + in_flight` within it,
    /// so pushing never allocates and never fails.
    list: KVec<u64>,
    /// Work items queued and not yet completed, including those whose
    /// token the guest dropped (`DISABLE`, reset): they still hold a slot,
    /// so a guest cannot have more items in flight than it has slots.
    in_flight: usize,
    /// The idle work items: `slots` are allocated with the state and
    /// `pool.len() + in_flight` stays `slots`, so a reservation always
    /// finds one and giving one back never allocates.
    pool: KVec<Pin<KBox<FaultWork>>>,
    /// The vCPU is going away (or the VMM disabled the feature): no more
    /// kicks, no more fault-ins; items still in flight finish on their own.
    dying: bool,
}

/// Per-vCPU state, owned by `vcpu->arch.apf` (one [`Arc`] reference) and by
/// every in-flight work item (one reference each).
///
/// # Invariants
///
/// `vcpu` and `kvm` are the vCPU and VM this state was made for. They are
/// valid while `done.dying` is false: KVM frees them (or the VMM disables
/// the feature) only after [`VcpuApf::disown`] has set it, under `done`.
/// `done.list.capacity()` is the slot count.
#[pin_data]
pub(crate) struct VcpuApf {
    vcpu: *mut KvmVcpu,
    kvm: *mut Kvm,
    pub(crate) cfg: ApfConfig,
    pub(crate) vm: Arc<VmWork>,
    /// This vCPU's index in the VM's ready queue (VM-wide page-ready).
    ready_idx: Option<u32>,
    #[pin]
    pub(crate) core: Mutex<Core>,
    #[pin]
    done: SpinLock<Done>,
}

// SAFETY: the raw pointers are only dereferenced by C helpers that KVM
// documents as callable from any thread (kick) under `done` while the
// invariant keeps them valid, or on the vCPU thread from a provider
// callback (`# Safety` of the methods that do); everything else is behind
// locks.
unsafe impl Send for VcpuApf {}
// SAFETY: as for `Send`: shared access goes through `core` and `done`.
unsafe impl Sync for VcpuApf {}

impl VcpuApf {
    /// Allocates the state of `vcpu` for a VM configured with `cfg`, whose
    /// fault-in work is `vm`. Charged to the caller's (the VMM's) memory
    /// cgroup.
    ///
    /// # Safety
    ///
    /// `vcpu` is a live vCPU, of the VM `vm` was made for.
    pub(crate) unsafe fn new(vcpu: *mut KvmVcpu, cfg: ApfConfig, vm: Arc<VmWork>) -> Result<Arc<Self>> {
        let slots = cfg.slots_usize();
        let cap = gfn_table::capacity_for(slots).ok_or(EINVAL)?;
        let table = Storage::zeroed(cap)?;
        let queue = Storage::zeroed(slots)?;
        let list = KVec::with_capacity(slots, GFP_KERNEL_ACCOUNT)?;
        let mut pool = KVec::with_capacity(slots, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..slots {
            pool.push(FaultWork::new_idle()?, GFP_KERNEL_ACCOUNT)?;
        }
        let state = State::new(cfg, kernel::page::PAGE_SHIFT as u32, table, queue)
            .map_err(|_| EINVAL)?;
        // Room in the VM's ready queue for this vCPU's slots and WAKE_ALL.
        let ready_idx = if state.is_vm_wide() {
            Some(vm.add_ready_vcpu(slots)?)
        } else {
            None
        };
        // SAFETY: `vcpu` is live (function contract).
        let kvm = unsafe { ffi::kvm_apf_shim_vcpu_kvm(vcpu) };
        Arc::pin_init(
            // INVARIANT: `vcpu` and `kvm` are live now, `dying` is false;
            // `list` has `slots` entries of capacity, `pool` `slots` items.
            try_pin_init!(VcpuApf {
                vcpu,
                kvm,
                cfg,
                vm,
                ready_idx,
                core <- new_mutex!(Core {
                    state,
                    sync_gfn: None,
                    delivery_failed: false,
                    intids_edge: false,
                    sdei: SdeiState::new(ClientEl::El1),
                }),
                done <- new_spinlock!(Done { list, in_flight: 0, pool, dying: false }),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// The shim's view of the VM's fault-in work (valid while `self` is).
    pub(crate) fn vm_raw(&self) -> *mut ApfVm {
        self.vm.raw()
    }

    /// The VM's memory, for the state machine.
    ///
    /// # Safety
    ///
    /// Called from a provider callback for this vCPU: the VM is alive for
    /// as long as the returned value is used there.
    pub(crate) unsafe fn memory(&self) -> VmMemory {
        // INVARIANT: alive for the caller's scope (function contract).
        VmMemory(self.kvm)
    }

    /// Takes an idle work item from the pool if a slot of this vCPU
    /// (counting items whose token was dropped) and room in the VM are
    /// free. Never allocates.
    pub(crate) fn reserve_work(&self) -> Option<Pin<KBox<FaultWork>>> {
        let mut done = self.done.lock();
        if done.dying || done.list.len() + done.in_flight >= done.list.capacity() {
            return None;
        }
        if !self.vm.reserve() {
            return None;
        }
        // Not empty: `in_flight` is below `slots` here.
        let Some(work) = done.pool.pop() else {
            self.vm.unreserve();
            return None;
        };
        done.in_flight += 1;
        Some(work)
    }

    /// Gives back a reservation whose work item was never queued.
    pub(crate) fn unreserve_work(&self, work: Pin<KBox<FaultWork>>) {
        let mut done = self.done.lock();
        done.in_flight = done.in_flight.saturating_sub(1);
        self.vm.unreserve();
        // Cannot fail (room for `slots` items, one of them out); were it
        // to, the item would be freed when the error is dropped.
        let _ = done.pool.push_within_capacity(work);
    }

    /// Whether the vCPU is gone (or the feature disabled): the work item
    /// need not fault its page in any more.
    pub(crate) fn is_dying(&self) -> bool {
        self.done.lock().dying
    }

    /// A worker finished the fault-in of `work`: hand its gfn to the
    /// vCPU, unless that is gone, and put the item back in the pool.
    pub(crate) fn complete(&self, work: Pin<KBox<FaultWork>>, ok: bool) {
        let (gfn, write) = work.fault();
        let mut done = self.done.lock();
        if !done.dying {
            let mut entry = gfn;
            if !ok {
                entry |= FAULT_IN_FAILED;
            }
            if write {
                entry |= WRITE_FAULT;
            }
            // Cannot fail: `reserve_work` kept room for this entry (and
            // the list only shrinks otherwise). Were it to, the entry would
            // be a lost completion of a token the state machine still
            // holds: its page is in, so the guest's retried access maps it.
            let _ = done.list.push_within_capacity(entry);
            // SAFETY: not dying, so the vCPU is alive (type invariant);
            // kicking is allowed in atomic context.
            unsafe { ffi::kvm_arm_apf_kick(self.vcpu) };
        }
        done.in_flight = done.in_flight.saturating_sub(1);
        self.vm.unreserve();
        // Cannot fail, as in `unreserve_work`. The item's `run` is still
        // on the stack: it touches the item no more, and the workqueue
        // does not either once `run` has been called.
        let _ = done.pool.push_within_capacity(work);
    }

    /// Takes one completion.
    pub(crate) fn take_completion(&self) -> Option<Completion> {
        let entry = self.done.lock().list.pop()?;
        Some(Completion {
            gfn: entry & !(FAULT_IN_FAILED | WRITE_FAULT),
            ok: entry & FAULT_IN_FAILED == 0,
            write: entry & WRITE_FAULT != 0,
        })
    }

    /// Maps the page of a completed fault at stage 2 if it is resident, so
    /// that the task that waited for it does not fault once more. A page
    /// that went away again (or a refusal: a nested context, a protected
    /// VM) is left to the guest's access, which then faults as usual.
    ///
    /// # Safety
    ///
    /// Called on the vCPU thread from `KVM_REQ_ASYNC_PF` (so the vCPU is
    /// alive and loaded), as the helper requires.
    pub(crate) unsafe fn map_page(&self, gfn: u64, write: bool) {
        let Some(ipa) = gfn.checked_mul(1 << kernel::page::PAGE_SHIFT) else {
            return;
        };
        // SAFETY: by the function's contract. The result only says whether
        // the access of the woken task will fault again (see above).
        let _ = unsafe { ffi::kvm_arm_apf_map_page(self.vcpu, ipa, write) };
    }

    /// What the VM's ready queue holds for this vCPU, for a fault on `gfn`
    /// (nothing with a PPI).
    pub(crate) fn vm_view(&self, gfn: u64) -> VmView {
        match self.ready_idx {
            Some(idx) => self.vm.ready_view(idx, gfn),
            None => VmView::default(),
        }
    }

    /// Drops this vCPU's entries from the VM's ready queue (reset,
    /// restore, detach): the tokens they carry are void.
    pub(crate) fn drop_vm_ready(&self) {
        if let Some(idx) = self.ready_idx {
            self.vm.drop_ready(idx);
        }
    }

    /// Stops kicks and fault-ins. Never waits: an item blocked on a page
    /// that is never served must not block the VMM's teardown. After this
    /// the vCPU may be freed; items in flight only touch `self`.
    pub(crate) fn disown(&self) {
        self.done.lock().dying = true;
    }

    /// Executes the state machine's actions in order. Returns `Err` at the
    /// first one that failed (the caller decides what that means).
    ///
    /// # Safety
    ///
    /// Called on the vCPU thread from a provider callback in `KVM_RUN`
    /// context (the vCPU and its VM are alive, the vCPU is loaded: guest
    /// writes are charged to it for dirty tracking).
    pub(crate) unsafe fn execute(&self, actions: &Actions) -> Result {
        for action in actions.iter() {
            if let Some(w) = action.guest_write() {
                // SAFETY: the VM is alive (function contract).
                let ret = unsafe {
                    ffi::kvm_arm_apf_write_guest_u64(self.kvm, w.gpa, u64::from_le_bytes(w.bytes))
                };
                kernel::error::to_result(ret)?;
            }
            // With SDEI the caller enters the guest's handler instead.
            let sdei_np = matches!(action, Action::SignalNp { .. }) && self.cfg.np_is_sdei();
            if let Some(intid) = action.signal().filter(|_| !sdei_np) {
                // SAFETY: the vCPU is alive (function contract).
                let ret = unsafe { ffi::kvm_arm_apf_signal_irq(self.vcpu, intid) };
                kernel::error::to_result(ret)?;
            }
            match action {
                // SAFETY: the vCPU is alive (function contract).
                Action::WriteNotPresent { token, .. } => unsafe {
                    ffi::kvm_apf_shim_trace_not_present(self.vcpu, token.raw())
                },
                // SAFETY: the vCPU is alive (function contract).
                Action::WriteReady { token, .. } => unsafe {
                    ffi::kvm_apf_shim_trace_ready(self.vcpu, token.raw())
                },
                Action::VmReady { token } => {
                    let idx = self.ready_idx.ok_or(EINVAL)?;
                    // SAFETY: the vCPU is alive and this is its thread
                    // (function contract).
                    unsafe { self.vm.push_ready(self.vcpu, idx, self.cfg.ready_intid, token) }?;
                    // SAFETY: the vCPU is alive (function contract).
                    unsafe { ffi::kvm_apf_shim_trace_ready(self.vcpu, token.raw()) };
                }
                _ => {}
            }
        }
        Ok(())
    }
}
