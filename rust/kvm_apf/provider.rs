// SPDX-License-Identifier: GPL-2.0

//! What KVM calls: the `kvm_apf_rs_*` entry points behind the provider ops
//! table of `c_shim/kvm_apf_shim.c`. Each one decodes its arguments, runs
//! the pure state machine of `logic::vcpu_state` and executes its actions.

use kernel::{
    error::code::*,
    prelude::*,
    sync::{
        global_lock,
        Arc,
        ArcBorrow, //
    },
    types::ForeignOwnable,
};

use crate::fault_work::FaultWork;
use crate::ffi;
use crate::ffi::Kvm;
use crate::ffi::KvmVcpu;
use crate::logic::config::validate_cap;
use crate::logic::config::ApfConfig;
use crate::logic::config::AsyncPfConfig;
use crate::logic::config::AsyncPfState;
use crate::logic::config::CapRequest;
use crate::logic::config::ConfigCheckError;
use crate::logic::config::SavedState;
use crate::logic::config::StateError;
use crate::logic::hypercall::decode;
use crate::logic::hypercall::Request;
use crate::logic::hypercall::ASYNC_PF_FUNC_ID;
use crate::logic::hypercall::NOT_SUPPORTED_RET;
use crate::logic::record::RECORD_SIZE;
use crate::logic::sdei::CallResult as SdeiResult;
use crate::logic::sdei::Context as SdeiContext;
use crate::logic::sdei::SdeiSaved;
use crate::logic::vcpu_state::Eligibility;
use crate::logic::vcpu_state::Actions;
use crate::vcpu::Core;
use crate::vcpu::VcpuApf;
use crate::vm::VmWork;

/// Why a fault was left to block in the stage-2 handler (tracepoint
/// `kvm_apf_sync`): the [`Eligibility`] refusals, then the glue's own.
fn sync_reason(e: Eligibility) -> u32 {
    match e {
        Eligibility::Eligible => 0,
        Eligibility::NotEnabled => 1,
        Eligibility::El1NotAllowed => 2,
        Eligibility::AlreadyPending => 3,
        Eligibility::NotPresentBusy => 4,
        Eligibility::TableFull => 5,
        Eligibility::WakeAllPending => 6,
        Eligibility::IrqNotDeliverable => 7,
        Eligibility::NoToken => 11,
    }
}
const SYNC_FAULT_IN_FAILED: u32 = 8;
const SYNC_NO_COMPLETION_SLOT: u32 = 9;
const SYNC_NOTIFY_FAILED: u32 = 10;

/// A VM with async page faults enabled: its configuration and its
/// fault-in work, for vCPUs created later.
pub(crate) struct VmEntry {
    kvm: usize,
    cfg: ApfConfig,
    work: Arc<VmWork>,
}

global_lock! {
    // SAFETY: initialised in `crate::KvmApf::init` before the provider is
    // registered, so before any entry point can run.
    pub(crate) unsafe(uninit) static VMS: Mutex<KVec<VmEntry>> = KVec::new();
}

fn vm_entry(kvm: *mut Kvm) -> Option<(ApfConfig, Arc<VmWork>)> {
    VMS.lock()
        .iter()
        .find(|e| e.kvm == kvm as usize)
        .map(|e| (e.cfg, e.work.clone()))
}

/// Borrows the state of `vcpu`, if the VMM enabled the feature.
///
/// # Safety
///
/// `vcpu` is live and the caller holds its mutex (every KVM hook but
/// `vcpu_destroy` does), so `vcpu->arch.apf` cannot be freed meanwhile.
unsafe fn borrow<'a>(vcpu: *mut KvmVcpu) -> Option<ArcBorrow<'a, VcpuApf>> {
    // SAFETY: by the function's contract.
    let ptr = unsafe { ffi::kvm_apf_shim_vcpu_state(vcpu) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a non-NULL `vcpu->arch.apf` was made by `Arc::into_foreign`
    // in `attach` and is only released by `detach` under the vCPU mutex.
    Some(unsafe { <Arc<VcpuApf> as ForeignOwnable>::borrow(ptr) })
}

/// Allocates `vcpu`'s state and hangs it on `vcpu->arch.apf`.
///
/// # Safety
///
/// `vcpu` is live, of the VM `work` was made for; its mutex is held and
/// `vcpu->arch.apf` is NULL.
unsafe fn attach(vcpu: *mut KvmVcpu, cfg: ApfConfig, work: Arc<VmWork>) -> Result {
    // SAFETY: by the function's contract.
    let apf = unsafe { VcpuApf::new(vcpu, cfg, work) }?;
    // SAFETY: by the function's contract.
    unsafe { ffi::kvm_apf_shim_set_vcpu_state(vcpu, apf.into_foreign().cast()) };
    Ok(())
}

/// Unhooks `vcpu`'s state and disowns its work items (never waits for
/// them: they finish on their own, without touching the vCPU).
///
/// # Safety
///
/// `vcpu` is live and nothing else uses `vcpu->arch.apf` concurrently
/// (vCPU mutex held, or the vCPU is being destroyed).
unsafe fn detach(vcpu: *mut KvmVcpu) {
    // SAFETY: by the function's contract.
    let ptr = unsafe { ffi::kvm_apf_shim_vcpu_state(vcpu) };
    if ptr.is_null() {
        return;
    }
    // SAFETY: by the function's contract.
    unsafe { ffi::kvm_apf_shim_set_vcpu_state(vcpu, core::ptr::null_mut()) };
    // SAFETY: `ptr` came from `into_foreign` in `attach`; it was just
    // unhooked, so this is the only `from_foreign` for it.
    let apf = unsafe { <Arc<VcpuApf> as ForeignOwnable>::from_foreign(ptr) };
    apf.disown();
    // Its entries name a vCPU that is gone (they hold no pointer to it).
    apf.drop_vm_ready();
}

/// The online vCPUs of `kvm`.
///
/// # Safety
///
/// `kvm` is live and the set of its vCPUs cannot change while the iterator
/// is used (all vCPU mutexes held, or `kvm->lock`).
unsafe fn vcpus(kvm: *mut Kvm) -> impl Iterator<Item = *mut KvmVcpu> {
    // SAFETY: by the function's contract.
    let n = unsafe { ffi::kvm_apf_shim_nr_vcpus(kvm) };
    (0..n)
        // SAFETY: `i` is below the number of online vCPUs.
        .map(move |i| unsafe { ffi::kvm_apf_shim_get_vcpu(kvm, i) })
        .filter(|vcpu| !vcpu.is_null())
}

/// Detaches every vCPU of `kvm`.
///
/// # Safety
///
/// `kvm` is live and all its vCPU mutexes are held (or its vCPUs are gone).
unsafe fn detach_all(kvm: *mut Kvm) {
    // SAFETY: by the function's contract.
    for vcpu in unsafe { vcpus(kvm) } {
        // SAFETY: by the function's contract.
        unsafe { detach(vcpu) };
    }
}

/// Whether a vCPU of `kvm` has the feature enabled by its guest, or owes
/// its guest a page-ready (announced tokens, a queued `WAKE_ALL`): turning
/// the feature off then would leave guest tasks asleep for ever.
///
/// # Safety
///
/// `kvm` is live and all its vCPU mutexes are held.
unsafe fn guest_uses_feature(kvm: *mut Kvm) -> bool {
    // SAFETY: by the function's contract.
    unsafe { vcpus(kvm) }.any(|vcpu| {
        // SAFETY: a live vCPU whose mutex is held (function contract).
        let Some(apf) = (unsafe { borrow(vcpu) }) else {
            return false;
        };
        let core = apf.core.lock();
        core.state.is_enabled()
            || core.state.outstanding() > 0
            || core.state.ready_waiting()
            || apf.vm.ready_waiting()
    })
}

/// Checks both INTIDs against what the VM's vGIC and devices say so far.
///
/// # Safety
///
/// `kvm` is live.
unsafe fn validate_intids(kvm: *mut Kvm, cfg: &ApfConfig) -> Result {
    // An np_intid of 0 is the SDEI delivery: no interrupt.
    for intid in [cfg.np_intid, cfg.ready_intid].into_iter().filter(|&i| i != 0) {
        // SAFETY: `kvm` is live (function contract).
        kernel::error::to_result(unsafe { ffi::kvm_arm_apf_validate_intid(kvm, intid) })?;
    }
    Ok(())
}

/// # Safety
///
/// `kvm` is live and all its vCPU mutexes are held.
unsafe fn enable(kvm: *mut Kvm, cfg: ApfConfig) -> Result {
    // SAFETY: `kvm` is live (function contract).
    unsafe { validate_intids(kvm, &cfg) }?;
    let mut vms = VMS.lock();
    if vms.iter().any(|e| e.kvm == kvm as usize) {
        return Err(EBUSY);
    }
    // SAFETY: `kvm` is live (function contract).
    let work = unsafe { VmWork::new(kvm) }?;
    // The list is the module's, not the VM's: not charged to the VMM.
    vms.push(
        VmEntry {
            kvm: kvm as usize,
            cfg,
            work: work.clone(),
        },
        GFP_KERNEL,
    )?;
    drop(vms);

    // SAFETY: all vCPU mutexes are held (function contract).
    for vcpu in unsafe { vcpus(kvm) } {
        // SAFETY: vCPU mutex held; state is NULL while the VM is disabled.
        if let Err(e) = unsafe { attach(vcpu, cfg, work.clone()) } {
            // SAFETY: vCPU mutexes held.
            unsafe { detach_all(kvm) };
            forget_vm(kvm);
            return Err(e);
        }
    }
    // SAFETY: all vCPU mutexes are held (function contract).
    for vcpu in unsafe { vcpus(kvm) } {
        // Edge-triggered from the start if the vGIC is set up; else at the
        // first request (a restore or a completion makes one).
        // SAFETY: vCPU mutex held (function contract).
        if let Some(apf) = unsafe { borrow(vcpu) } {
            // SAFETY: a live, fully created vCPU.
            let edge = unsafe { edge_intids(vcpu, &cfg) };
            apf.core.lock().intids_edge = edge;
        }
    }
    Ok(())
}

/// Whether fault-ins of `kvm` are still in flight (also ones whose token
/// the guest dropped): the VMM is still fetching pages for it.
fn vm_busy(kvm: *mut Kvm) -> bool {
    VMS.lock()
        .iter()
        .find(|e| e.kvm == kvm as usize)
        .is_some_and(|e| e.work.in_flight() > 0)
}

fn forget_vm(kvm: *mut Kvm) {
    VMS.lock().retain(|e| e.kvm != kvm as usize);
}

/// `KVM_ENABLE_CAP(KVM_CAP_ARM_ASYNC_PF)`.
///
/// # Safety
///
/// `kvm` is live; KVM holds `kvm->lock` and every vCPU mutex.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_enable_cap(
    kvm: *mut Kvm,
    flags: u64,
    slots: u64,
    np_intid: u64,
    ready_intid: u64,
) -> c_int {
    let res = match validate_cap(&[flags, slots, np_intid, ready_intid]) {
        Err(_) => Err(EINVAL),
        // SAFETY: by the function's contract.
        Ok(CapRequest::Enable(cfg)) => unsafe { enable(kvm, cfg) },
        Ok(CapRequest::Disable) => {
            // SAFETY: by the function's contract.
            if unsafe { guest_uses_feature(kvm) } || vm_busy(kvm) {
                // The guest would never hear of the tokens it waits for,
                // or pages are still being fetched for it.
                Err(EBUSY)
            } else {
                // SAFETY: by the function's contract.
                unsafe { detach_all(kvm) };
                forget_vm(kvm);
                Ok(())
            }
        }
    };
    match res {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// A vCPU created in a VM that has the feature enabled; may sleep.
///
/// # Safety
///
/// `vcpu` is a live vCPU being created, not visible to anyone else yet.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_vcpu_create(vcpu: *mut KvmVcpu) -> c_int {
    // SAFETY: `vcpu` is live (function contract).
    let kvm = unsafe { ffi::kvm_apf_shim_vcpu_kvm(vcpu) };
    let Some((cfg, work)) = vm_entry(kvm) else {
        return 0;
    };
    // SAFETY: a new vCPU, not visible to anyone else yet; state is NULL.
    match unsafe { attach(vcpu, cfg, work) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `kvm_reset_vcpu()`: forget what the guest registered.
///
/// # Safety
///
/// `vcpu` is live and its mutex is held.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_vcpu_reset(vcpu: *mut KvmVcpu) {
    // SAFETY: by the function's contract.
    let Some(apf) = (unsafe { borrow(vcpu) }) else {
        return;
    };
    let mut core = apf.core.lock();
    core.sync_gfn = None;
    core.delivery_failed = false;
    core.state.reset();
    core.sdei.reset();
    // Under `core`: no completion of this vCPU pushes meanwhile.
    apf.drop_vm_ready();
}

/// The vCPU is about to be freed.
///
/// # Safety
///
/// `vcpu` is live and being destroyed: nobody else uses it.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_vcpu_destroy(vcpu: *mut KvmVcpu) {
    // SAFETY: by the function's contract.
    unsafe { detach(vcpu) };
}

/// VM teardown, after its vCPUs. Only forgets the VM: fault-ins still in
/// flight keep its `VmWork` (workqueue, mm reference) until they are done.
#[no_mangle]
extern "C" fn kvm_apf_rs_vm_destroy(kvm: *mut Kvm) {
    forget_vm(kvm);
}

/// Asked at a stage-2 fault once the `FOLL_NOWAIT` lookup has said the page
/// needs I/O: can the guest be told about it now?
///
/// # Safety
///
/// `vcpu` is live; called on its thread, in `KVM_RUN`, its mutex held.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_fault_eligible(vcpu: *mut KvmVcpu, ipa: u64) -> bool {
    // SAFETY: by the function's contract.
    let Some(apf) = (unsafe { borrow(vcpu) }) else {
        return false;
    };
    let gfn = ipa >> kernel::page::PAGE_SHIFT;
    // SAFETY: live vCPU, on its own thread.
    let at_el0 = unsafe { ffi::kvm_apf_shim_vcpu_at_el0(vcpu) };
    let irq_deliverable = (!apf.cfg.np_is_sdei()).then(|| {
        // SAFETY: live vCPU; the helper takes the vGIC locks it needs.
        unsafe { ffi::kvm_arm_apf_irq_deliverable(vcpu, apf.cfg.np_intid) }
    });

    // SAFETY: a provider callback for `vcpu` (function contract).
    let mut mem = unsafe { apf.memory() };
    let mut core = apf.core.lock();
    // With SDEI: registered, enabled, the PE unmasked, no handler running.
    let deliverable = irq_deliverable.unwrap_or_else(|| core.sdei.deliverable().is_ok());
    let reason = if core.sync_gfn == Some(gfn) {
        core.sync_gfn = None;
        SYNC_FAULT_IN_FAILED
    } else if core.delivery_failed {
        SYNC_NOTIFY_FAILED
    } else {
        let view = apf.vm_view(gfn);
        match core.state.fault_eligible_vm(gfn, at_el0, deliverable, &view, &mut mem) {
            Eligibility::Eligible => return true,
            Eligibility::NotEnabled => return false,
            e => sync_reason(e),
        }
    };
    // SAFETY: live vCPU.
    unsafe { ffi::kvm_apf_shim_trace_sync(vcpu, ipa, reason) };
    false
}

/// The `FOLL_NOWAIT` lookup said the page needs I/O: take the fault (tell
/// the guest, queue the work) or decline (KVM blocks as it always did).
///
/// # Safety
///
/// `vcpu` is live; called on its thread, in `KVM_RUN`, its mutex held.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_fault_start(
    vcpu: *mut KvmVcpu,
    ipa: u64,
    gfn: u64,
    hva: u64,
    write: bool,
) -> bool {
    // SAFETY: by the function's contract.
    let Some(apf) = (unsafe { borrow(vcpu) }) else {
        return false;
    };
    let Some(work) = apf.reserve_work() else {
        // SAFETY: live vCPU.
        unsafe { ffi::kvm_apf_shim_trace_sync(vcpu, ipa, SYNC_NO_COMPLETION_SLOT) };
        return false;
    };
    let mut core = apf.core.lock();
    let actions = match core.state.fault_started_vm(gfn, &apf.vm_view(gfn)) {
        Ok(actions) => actions,
        Err(e) => {
            drop(core);
            apf.unreserve_work(work);
            // SAFETY: live vCPU.
            unsafe { ffi::kvm_apf_shim_trace_sync(vcpu, ipa, sync_reason(e)) };
            return false;
        }
    };
    // SAFETY: a provider callback for `vcpu` in KVM_RUN (function contract).
    let mut res = unsafe { apf.execute(&actions) };
    if res.is_ok() && apf.cfg.np_is_sdei() {
        // SAFETY: on the vCPU thread, in KVM_RUN, at its stage-2 fault.
        res = unsafe { sdei_enter(vcpu, &mut core) };
    }
    if res.is_err() {
        // The guest was not told: forget the token, clear it from the
        // record if it got there, and let KVM block as usual.
        let undo = core.state.fault_aborted(gfn);
        // SAFETY: as above. If this fails too, the not-present slot reads
        // busy and later faults block, which is safe: ignored on purpose.
        let _ = unsafe { apf.execute(&undo) };
        drop(core);
        apf.unreserve_work(work);
        // SAFETY: live vCPU.
        unsafe { ffi::kvm_apf_shim_trace_sync(vcpu, ipa, SYNC_NOTIFY_FAILED) };
        return false;
    }
    drop(core);
    FaultWork::queue(work, apf.into(), gfn, hva, write);
    true
}

/// Enters the guest's SDEI handler at the faulting instruction: saves the
/// interrupted context and loads the handler's entry state. The token is
/// in the record already, as for the PPI.
///
/// # Safety
///
/// `vcpu` is live, this is its thread, in `KVM_RUN`.
unsafe fn sdei_enter(vcpu: *mut KvmVcpu, core: &mut Core) -> Result {
    let mut ctx = SdeiContext::default();
    // SAFETY: live vCPU on its thread (function contract); `ctx.x` has
    // room for the 18 registers the shim reads.
    unsafe { ffi::kvm_apf_shim_get_context(vcpu, ctx.x.as_mut_ptr(), &mut ctx.pc, &mut ctx.pstate) };
    // Refused only if the state changed since `fault_eligible` (it
    // cannot: only this thread changes it) or the mode is not one the
    // client can be interrupted in.
    let entry = core.sdei.enter(&ctx).map_err(|_| EINVAL)?;
    // SAFETY: as above; `entry.x` holds x0-x3.
    unsafe {
        ffi::kvm_apf_shim_set_context(vcpu, entry.x.as_ptr(), entry.x.len() as _, entry.pc, entry.pstate)
    };
    Ok(())
}

/// Runs the actions of a page-ready delivery. If one fails (the record is
/// no longer RAM, or the vGIC refused the interrupt), the guest may wait
/// for a notification that never comes: stop announcing faults so that no
/// more tasks go to sleep, and say so in the trace.
///
/// # Safety
///
/// As [`VcpuApf::execute`].
unsafe fn deliver(vcpu: *mut KvmVcpu, apf: &VcpuApf, core: &mut Core, actions: &Actions) {
    // SAFETY: by the function's contract.
    if unsafe { apf.execute(actions) }.is_err() && !core.delivery_failed {
        core.delivery_failed = true;
        // SAFETY: `vcpu` is live (function contract).
        unsafe { ffi::kvm_apf_shim_trace_sync(vcpu, 0, SYNC_NOTIFY_FAILED) };
    }
}

/// `KVM_REQ_ASYNC_PF`: deliver what the workers completed.
///
/// # Safety
///
/// `vcpu` is live; called on its thread, in `KVM_RUN`, its mutex held.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_handle_request(vcpu: *mut KvmVcpu) {
    // SAFETY: by the function's contract.
    let Some(apf) = (unsafe { borrow(vcpu) }) else {
        return;
    };
    // SAFETY: a provider callback for `vcpu` (function contract).
    let mut mem = unsafe { apf.memory() };
    {
        // The WAKE_ALL of a restore, if the page-ready slot is free now.
        let mut core = apf.core.lock();
        if !core.intids_edge {
            // SAFETY: on the vCPU thread (function contract).
            core.intids_edge = unsafe { edge_intids(vcpu, &apf.cfg) };
        }
        let actions = core.state.poll(&mut mem);
        // SAFETY: a provider callback in KVM_RUN (function contract).
        unsafe { deliver(vcpu, &apf, &mut core, &actions) };
    }
    while let Some(c) = apf.take_completion() {
        let gfn = c.gfn;
        // Map the page before the guest hears it is ready (x86 does the
        // same): the task that waited then does not fault once more. Not
        // under the lock: it takes the mmap lock and may allocate.
        if c.ok && apf.core.lock().state.is_outstanding(gfn) {
            // SAFETY: on the vCPU thread, from KVM_REQ_ASYNC_PF.
            unsafe { apf.map_page(gfn, c.write) };
        }
        let mut core = apf.core.lock();
        if !c.ok {
            core.sync_gfn = Some(gfn);
        }
        let actions = core.state.page_ready(gfn, &mut mem);
        // SAFETY: a provider callback in KVM_RUN (function contract).
        unsafe { deliver(vcpu, &apf, &mut core, &actions) };
    }
}

/// The VM of `vcpu`.
///
/// # Safety
///
/// `vcpu` is live.
unsafe fn apf_kvm(vcpu: *mut KvmVcpu) -> *mut Kvm {
    // SAFETY: by the function's contract.
    unsafe { ffi::kvm_apf_shim_vcpu_kvm(vcpu) }
}

/// The async page fault hypercall and the SDEI range. Returns true if an
/// SDEI completion loaded the guest's registers (then `ret` is not used),
/// false if `ret` holds x0-x3 to return.
///
/// # Safety
///
/// `vcpu` is live; called on its thread, in `KVM_RUN`, its mutex held.
/// `args` points to five readable `u64`s (x1-x5), `ret` to four writable
/// ones.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_hypercall(
    vcpu: *mut KvmVcpu,
    func_id: u32,
    args: *const u64,
    ret: *mut u64,
) -> bool {
    // SAFETY: by the function's contract.
    let args = unsafe { args.cast::<[u64; 5]>().read() };
    let [a1, a2, ..] = args;
    let mut regs = [NOT_SUPPORTED_RET, 0, 0, 0];
    // SAFETY: KVM calls this on the vCPU thread with the vCPU mutex held.
    if let Some(apf) = unsafe { borrow(vcpu) } {
        if func_id == ASYNC_PF_FUNC_ID {
            let res = match decode(a1, a2) {
                // Refused now rather than leaving a task asleep later: the
                // VM has run, so the vGIC and its devices are final.
                // SAFETY: the VM of a live vCPU is live.
                Ok(Request::Enable(_)) if unsafe { validate_intids(apf_kvm(vcpu), &apf.cfg) }.is_err() => {
                    Err(NOT_SUPPORTED_RET)
                }
                Ok(req) => Ok(req),
                Err(e) => Err(e.ret()),
            };
            match res {
                // VM-wide page-ready: any vCPU pops the VM's queue; no
                // vCPU state is involved.
                Ok(Request::GetReady) if apf.cfg.ready_is_ppi() => regs[0] = NOT_SUPPORTED_RET,
                Ok(Request::GetReady) => regs = apf.vm.get_ready(),
                Ok(req) => {
                    // SAFETY: a provider callback for `vcpu` (function contract).
                    let mut mem = unsafe { apf.memory() };
                    let mut core = apf.core.lock();
                    let res = core.state.handle_call(req, &mut mem);
                    // A failed write or signal here is a delivery (the
                    // WAKE_ALL of DISABLE, the next page-ready of ACK_READY)
                    // or the initialisation of the guest's new record: the
                    // same rule as for completions applies.
                    // SAFETY: a provider callback in KVM_RUN.
                    unsafe { deliver(vcpu, &apf, &mut core, &res.actions) };
                    regs = res.regs;
                }
                Err(ret) => regs[0] = ret,
            }
        } else if apf.cfg.np_is_sdei() {
            // The SDEI calls, on a VM that delivers page-not-present by
            // SDEI; NOT_SUPPORTED otherwise.
            let res = apf.core.lock().sdei.handle_raw(func_id, &args);
            match res {
                Some(SdeiResult::Return(r)) => regs = r,
                Some(SdeiResult::Complete(c)) => {
                    // SAFETY: on the vCPU thread in KVM_RUN (function
                    // contract); `c.x` holds x0-x17.
                    unsafe { ffi::kvm_apf_shim_set_context(vcpu, c.x.as_ptr(), c.x.len() as _, c.pc, c.pstate) };
                    if let Some(irq) = c.irq {
                        // SAFETY: as above.
                        unsafe { ffi::kvm_arm_apf_write_el1_return(vcpu, irq.elr, irq.spsr) };
                    }
                    return true;
                }
                None => {}
            }
        }
    }
    // SAFETY: by the function's contract.
    unsafe { core::ptr::copy_nonoverlapping(regs.as_ptr(), ret, regs.len()) };
    false
}

/// `KVM_GET_DEVICE_ATTR(KVM_ARM_VCPU_ASYNC_PF_STATE)`.
///
/// # Safety
///
/// `vcpu` is live and its mutex is held; `out` is writable.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_get_state(vcpu: *mut KvmVcpu, out: *mut AsyncPfState) -> c_int {
    // SAFETY: KVM calls attribute ioctls with the vCPU mutex held.
    let Some(apf) = (unsafe { borrow(vcpu) }) else {
        return ENXIO.to_errno();
    };
    let saved = apf.core.lock().state.save().encode(&apf.cfg);
    // SAFETY: by the function's contract; the C struct has this layout
    // (static_assert in the shim, const asserts in `logic::config`).
    unsafe { out.write(saved) };
    0
}

/// `KVM_SET_DEVICE_ATTR(KVM_ARM_VCPU_ASYNC_PF_STATE)`: restore after
/// migration; wakes every waiting task of the guest (`WAKE_ALL`) when the
/// vCPU next runs.
///
/// # Safety
///
/// `vcpu` is live and its mutex is held (a vCPU ioctl of the VMM); `raw`
/// is readable.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_set_state(vcpu: *mut KvmVcpu, raw: *const AsyncPfState) -> c_int {
    // SAFETY: by the function's contract.
    let Some(apf) = (unsafe { borrow(vcpu) }) else {
        return ENXIO.to_errno();
    };
    // SAFETY: by the function's contract; any bit pattern is an
    // `AsyncPfState` (plain `u64`s).
    let raw = unsafe { raw.read() };
    let saved = match SavedState::decode(&raw, &apf.cfg) {
        Ok(saved) => saved,
        // The guest negotiated other INTIDs or slots than this VM has.
        Err(StateError::ConfigMismatch) => return EPROTO.to_errno(),
        Err(_) => return EINVAL.to_errno(),
    };
    if let Some(gpa) = saved.record {
        // SAFETY: the VM of a live vCPU is live.
        if !unsafe { ffi::kvm_arm_apf_gpa_is_ram(apf_kvm(vcpu), gpa, RECORD_SIZE as _) } {
            return EINVAL.to_errno();
        }
    }
    let mut core = apf.core.lock();
    core.sync_gfn = None;
    core.delivery_failed = false;
    // The WAKE_ALL is written by the next KVM_REQ_ASYNC_PF on the vCPU
    // thread: guest writes must come from KVM_RUN context (dirty tracking)
    // and the vGIC is only initialised once the vCPU runs.
    core.state.restore(&saved);
    // Edge-triggered now if the vGIC is set up, so that a pending state
    // restored through its registers is an edge; again at the next
    // request, in case the VMM restores the vGIC (an SPI's trigger) after
    // this.
    // SAFETY: live vCPU, its mutex held.
    unsafe { edge_intids(vcpu, &apf.cfg) };
    core.intids_edge = false;
    // The tokens of this vCPU's queued page-ready are void now.
    apf.drop_vm_ready();
    drop(core);
    // SAFETY: live vCPU; a request plus a kick is fine from an ioctl.
    unsafe { ffi::kvm_arm_apf_kick(vcpu) };
    0
}

/// `KVM_GET_DEVICE_ATTR(KVM_ARM_VCPU_ASYNC_PF_CONFIG)`: the VM's
/// configuration as the `KVM_ENABLE_CAP` arguments that recreate it.
///
/// # Safety
///
/// `vcpu` is live and its mutex is held; `out` is writable.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_get_config(vcpu: *mut KvmVcpu, out: *mut AsyncPfConfig) -> c_int {
    // SAFETY: KVM calls attribute ioctls with the vCPU mutex held.
    let Some(apf) = (unsafe { borrow(vcpu) }) else {
        return ENXIO.to_errno();
    };
    // SAFETY: by the function's contract; the C struct has this layout.
    unsafe { out.write(AsyncPfConfig::of(&apf.cfg)) };
    0
}

/// `KVM_SET_DEVICE_ATTR(KVM_ARM_VCPU_ASYNC_PF_CONFIG)`: changes nothing,
/// checks that the VMM restores onto a VM configured as the source was.
///
/// # Safety
///
/// `vcpu` is live and its mutex is held; `raw` is readable.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_set_config(vcpu: *mut KvmVcpu, raw: *const AsyncPfConfig) -> c_int {
    // SAFETY: KVM calls attribute ioctls with the vCPU mutex held.
    let Some(apf) = (unsafe { borrow(vcpu) }) else {
        return ENXIO.to_errno();
    };
    // SAFETY: by the function's contract; any bit pattern is valid.
    let raw = unsafe { raw.read() };
    match raw.check(&apf.cfg) {
        Ok(()) => 0,
        Err(ConfigCheckError::Mismatch) => EPROTO.to_errno(),
        Err(ConfigCheckError::ReservedNotZero) => EINVAL.to_errno(),
    }
}

/// Whether `vcpu`'s VM delivers page-not-present by SDEI (the
/// `KVM_ARM_VCPU_ASYNC_PF_SDEI` attribute exists).
///
/// # Safety
///
/// `vcpu` is live and its mutex is held.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_np_sdei(vcpu: *mut KvmVcpu) -> bool {
    // SAFETY: KVM calls attribute ioctls with the vCPU mutex held.
    unsafe { borrow(vcpu) }.is_some_and(|apf| apf.cfg.np_is_sdei())
}

/// `KVM_GET_DEVICE_ATTR(KVM_ARM_VCPU_ASYNC_PF_SDEI)`.
///
/// # Safety
///
/// `vcpu` is live and its mutex is held; `out` is writable.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_get_sdei(vcpu: *mut KvmVcpu, out: *mut SdeiSaved) -> c_int {
    // SAFETY: KVM calls attribute ioctls with the vCPU mutex held.
    let Some(apf) = (unsafe { borrow(vcpu) }).filter(|apf| apf.cfg.np_is_sdei()) else {
        return ENXIO.to_errno();
    };
    let saved = apf.core.lock().sdei.save();
    // SAFETY: by the function's contract; the C struct has this layout
    // (static_assert in the shim, const asserts in `logic::sdei`).
    unsafe { out.write(saved) };
    0
}

/// `KVM_SET_DEVICE_ATTR(KVM_ARM_VCPU_ASYNC_PF_SDEI)`: restore; a running
/// handler's context comes with it and is restored at its completion.
///
/// # Safety
///
/// `vcpu` is live and its mutex is held; `raw` is readable.
#[no_mangle]
unsafe extern "C" fn kvm_apf_rs_set_sdei(vcpu: *mut KvmVcpu, raw: *const SdeiSaved) -> c_int {
    // SAFETY: KVM calls attribute ioctls with the vCPU mutex held.
    let Some(apf) = (unsafe { borrow(vcpu) }).filter(|apf| apf.cfg.np_is_sdei()) else {
        return ENXIO.to_errno();
    };
    // SAFETY: by the function's contract; any bit pattern is valid.
    let raw = unsafe { raw.read() };
    let res = apf.core.lock().sdei.restore(&raw);
    match res {
        Ok(()) => 0,
        Err(_) => EINVAL.to_errno(),
    }
}

/// Makes both INTIDs edge-triggered (without pending them); whether that
/// worked. It fails until the vGIC is initialised: the caller retries at
/// the next request. An INTID that became unusable is reported when it is
/// signalled, as for any notification.
///
/// # Safety
///
/// `vcpu` is live.
unsafe fn edge_intids(vcpu: *mut KvmVcpu, cfg: &ApfConfig) -> bool {
    [cfg.np_intid, cfg.ready_intid]
        .into_iter()
        .filter(|&intid| intid != 0)
        // SAFETY: `vcpu` is live (function contract); any context.
        .all(|intid| unsafe { ffi::kvm_arm_apf_config_irq(vcpu, intid) } == 0)
}
