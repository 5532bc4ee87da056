// SPDX-License-Identifier: GPL-2.0

//! Per-vCPU async page fault state as the kernel sees it: the pure state
//! machine of `logic::vcpu_state` behind a mutex, the list of completions
//! that workers hand back, and the executor of the state machine's actions.

use kernel::{
    prelude::*,
    sync::{
        new_condvar,
        new_mutex,
        new_spinlock,
        Arc,
        CondVar,
        Mutex,
        SpinLock, //
    },
};

use crate::ffi;
use crate::ffi::Kvm;
use crate::ffi::KvmVcpu;
use crate::logic::config::ApfConfig;
use crate::logic::gfn_table;
use crate::logic::vcpu_state::Action;
use crate::logic::vcpu_state::Actions;
use crate::logic::vcpu_state::GuestMemory;
use crate::logic::vcpu_state::VcpuState;

/// Kernel-allocated storage for the gfn table and the completion queue.
pub(crate) struct Storage(KVec<u64>);

impl Storage {
    /// `n` zeroed entries, allocated once (`GFP_KERNEL`).
    pub(crate) fn zeroed(n: usize) -> Result<Self> {
        let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
        v.resize(n, 0, GFP_KERNEL)?;
        Ok(Self(v))
    }
}

impl AsRef<[u64]> for Storage {
    fn as_ref(&self) -> &[u64] {
        &self.0
    }
}

impl AsMut<[u64]> for Storage {
    fn as_mut(&mut self) -> &mut [u64] {
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
}

/// The VM's memory as the state machine sees it. Reads go through
/// `current->mm`: only used on the vCPU thread (or by an ioctl of the VMM).
pub(crate) struct VmMemory(*mut Kvm);

impl GuestMemory for VmMemory {
    fn is_ram(&mut self, gpa: u64, len: u64) -> bool {
        // SAFETY: the `Kvm` outlives its vCPUs, whose threads use this.
        unsafe { ffi::kvm_arm_apf_gpa_is_ram(self.0, gpa, len as _) }
    }

    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        let mut buf = [0u8; 8];
        // SAFETY: as above; `buf` is 8 writable bytes on the stack.
        let ret = unsafe { ffi::kvm_arm_apf_read_guest(self.0, gpa, buf.as_mut_ptr().cast(), 8) };
        (ret == 0).then(|| u64::from_le_bytes(buf))
    }
}

/// What workers share with the vCPU.
struct Done {
    /// Completed gfns (with [`FAULT_IN_FAILED`], [`WRITE_FAULT`]), drained on the vCPU
    /// thread. Allocated once; [`VcpuApf::reserve_work`] keeps
    /// `list.len() + in_flight <= list.capacity()`, so pushing never
    /// allocates and never fails.
    list: KVec<u64>,
    /// Work items queued and not yet completed.
    in_flight: usize,
    /// The vCPU is going away: no more kicks.
    dying: bool,
}

/// Per-vCPU state, owned by `vcpu->arch.apf` (one [`Arc`] reference) and by
/// every in-flight work item (one reference each).
///
/// # Invariants
///
/// `vcpu` and `kvm` are valid while `done.dying` is false or while the
/// reference from `vcpu->arch.apf` is held: [`VcpuApf::destroy`] sets
/// `dying` and waits for `in_flight == 0` before the vCPU is freed.
#[pin_data]
pub(crate) struct VcpuApf {
    vcpu: *mut KvmVcpu,
    kvm: *mut Kvm,
    pub(crate) cfg: ApfConfig,
    #[pin]
    pub(crate) core: Mutex<Core>,
    #[pin]
    done: SpinLock<Done>,
    #[pin]
    idle: CondVar,
}

// SAFETY: the raw pointers are only dereferenced by C helpers that KVM
// documents as callable from any thread (kick, interrupt signal, guest memory) and
// only while the invariant above keeps them valid; everything else is
// behind locks.
unsafe impl Send for VcpuApf {}
// SAFETY: as for `Send`: shared access goes through `core` and `done`.
unsafe impl Sync for VcpuApf {}

impl VcpuApf {
    /// Allocates the state of `vcpu` for a VM configured with `cfg`.
    pub(crate) fn new(vcpu: *mut KvmVcpu, cfg: ApfConfig) -> Result<Arc<Self>> {
        let slots = cfg.slots_usize();
        let cap = gfn_table::capacity_for(slots).ok_or(EINVAL)?;
        let table = Storage::zeroed(cap)?;
        let queue = Storage::zeroed(slots)?;
        // Twice the slots: completions of items dropped by a guest DISABLE
        // or a vCPU reset may still be in flight beside the new ones.
        let list = KVec::with_capacity(2 * slots, GFP_KERNEL)?;
        let state = State::new(cfg, kernel::page::PAGE_SHIFT as u32, table, queue)
            .map_err(|_| EINVAL)?;
        // SAFETY: `vcpu` is a live vCPU (KVM calls the provider with it).
        let kvm = unsafe { ffi::kvm_apf_shim_vcpu_kvm(vcpu) };
        Arc::pin_init(
            try_pin_init!(VcpuApf {
                vcpu,
                kvm,
                cfg,
                core <- new_mutex!(Core { state, sync_gfn: None }),
                done <- new_spinlock!(Done { list, in_flight: 0, dying: false }),
                idle <- new_condvar!(),
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn kvm(&self) -> *mut Kvm {
        self.kvm
    }

    /// The VM's memory, for the state machine.
    pub(crate) fn memory(&self) -> VmMemory {
        VmMemory(self.kvm)
    }

    /// Accounts for one more work item if a completion slot is free.
    pub(crate) fn reserve_work(&self) -> bool {
        let mut done = self.done.lock();
        if done.dying || done.list.len() + done.in_flight >= done.list.capacity() {
            return false;
        }
        done.in_flight += 1;
        true
    }

    /// Gives back a reservation whose work item was never queued.
    pub(crate) fn unreserve_work(&self) {
        let mut done = self.done.lock();
        done.in_flight -= 1;
        if done.in_flight == 0 {
            self.idle.notify_all();
        }
    }

    /// A worker finished faulting in `gfn`: hand it to the vCPU.
    pub(crate) fn complete(&self, gfn: u64, ok: bool, write: bool) {
        let mut done = self.done.lock();
        let mut entry = gfn;
        if !ok {
            entry |= FAULT_IN_FAILED;
        }
        if write {
            entry |= WRITE_FAULT;
        }
        // Cannot fail: `reserve_work` kept room for this entry.
        let _ = done.list.push_within_capacity(entry);
        if !done.dying {
            // SAFETY: not dying, so the vCPU is alive (type invariant);
            // kicking is allowed in atomic context.
            unsafe { ffi::kvm_arm_apf_kick(self.vcpu) };
        }
        done.in_flight -= 1;
        if done.in_flight == 0 {
            self.idle.notify_all();
        }
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
    /// that went away again is left to the guest's access.
    pub(crate) fn map_page(&self, gfn: u64, write: bool) {
        let Some(ipa) = gfn.checked_mul(1 << kernel::page::PAGE_SHIFT) else {
            return;
        };
        // SAFETY: `vcpu` is alive (type invariant); called on its thread
        // from `KVM_REQ_ASYNC_PF`, as the helper requires.
        let _ = unsafe { ffi::kvm_arm_apf_map_page(self.vcpu, ipa, write) };
    }

    /// Stops kicks and waits until no work item of this vCPU is in flight.
    /// After this the vCPU may be freed.
    pub(crate) fn quiesce(&self) {
        let mut done = self.done.lock();
        done.dying = true;
        while done.in_flight != 0 {
            self.idle.wait(&mut done);
        }
    }

    /// Executes the state machine's actions in order. Returns `Err` at the
    /// first one that failed (the caller decides what that means).
    pub(crate) fn execute(&self, actions: &Actions) -> Result {
        for action in actions.iter() {
            if let Some(w) = action.guest_write() {
                // SAFETY: `kvm` is alive (type invariant); the buffer is 8
                // bytes on the stack.
                let ret = unsafe {
                    ffi::kvm_arm_apf_write_guest(
                        self.kvm,
                        w.gpa,
                        w.bytes.as_ptr().cast(),
                        w.bytes.len() as _,
                    )
                };
                kernel::error::to_result(ret)?;
            }
            if let Some(intid) = action.signal() {
                // SAFETY: `vcpu` is alive (type invariant).
                let ret = unsafe { ffi::kvm_arm_apf_signal_irq(self.vcpu, intid) };
                kernel::error::to_result(ret)?;
            }
            match action {
                // SAFETY: `vcpu` is alive (type invariant).
                Action::WriteNotPresent { token, .. } => unsafe {
                    ffi::kvm_apf_shim_trace_not_present(self.vcpu, token.raw())
                },
                // SAFETY: `vcpu` is alive (type invariant).
                Action::WriteReady { token, .. } => unsafe {
                    ffi::kvm_apf_shim_trace_ready(self.vcpu, token.raw())
                },
                _ => {}
            }
        }
        Ok(())
    }
}
