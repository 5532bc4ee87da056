// SPDX-License-Identifier: GPL-2.0

//! Guest driver for asynchronous page faults on arm64 KVM.
//!
//! When the host announces that a page a user task touched is not present
//! yet, the task sleeps until the page is ready and the vCPU runs other
//! tasks meanwhile (Documentation/async-pf.rst is the ABI,
//! Documentation/guest-driver.rst this driver). Without the feature the
//! module loads, says why in one line and stays idle.

use core::pin::Pin;
use kernel::ffi::{
    c_int,
    c_void, //
};
use kernel::prelude::*;

mod cpu;
mod discovery;
mod ffi;
mod hvc;
mod inject;
mod irq;
mod kunit_suite;
#[path = "../logic/mod.rs"]
mod logic;
mod raw_lock;
mod record;
mod sleep;
mod stats;

use cpu::CpuState;
use logic::guest_abi::GuestConfig;
use stats::STATS;

module! {
    type: KvmApfGuest,
    name: "kvm_apf_guest",
    authors: ["kvm-apf developers"],
    description: "Asynchronous page faults for arm64 KVM guests",
    license: "GPL",
    params: {
        notify_el1: bool {
            default: false,
            description: "Also ask for faults taken in kernel mode (ENABLE flag NOTIFY_EL1, if the VMM allows it): they are handed back without sleeping, which exercises the handshake",
        },
        inject: bool {
            default: false,
            description: "Test only: debugfs file inject makes the writer sleep on a token, or marks a token ready (also when the feature is absent)",
        },
    },
}

/// The module: active, or idle without the feature.
struct KvmApfGuest {
    driver: Option<Driver>,
}

/// The driver while the feature is in use.
///
/// # Invariants
///
/// The shim's per-CPU pointers name the entries of `cpus`, its interrupts,
/// hotplug state and reboot notifier are registered; [`Drop`] undoes all
/// of it before `cpus` is freed.
struct Driver {
    cpus: KVec<Pin<KBox<CpuState>>>,
}

impl Driver {
    /// Every CPU's state, with `entries` entries each, set as the shim's
    /// per-CPU pointers; nothing registered yet.
    fn states(entries: usize) -> Result<Self> {
        let n = kernel::cpu::nr_cpu_ids();
        let mut cpus = KVec::with_capacity(n as usize, GFP_KERNEL)?;
        for cpu in 0..n {
            cpus.push(CpuState::new(cpu, entries, &STATS)?, GFP_KERNEL)?;
        }
        for (cpu, state) in (0u32..).zip(cpus.iter()) {
            let ptr: *const CpuState = &**state;
            // SAFETY: `cpu` < nr_cpu_ids; the state outlives the pointer,
            // which `Drop` clears before freeing it.
            unsafe { ffi::kvm_apf_guest_shim_set_cpu_state(cpu, ptr.cast_mut().cast()) };
        }
        Ok(Self { cpus })
    }

    /// Allocates every CPU's state, requests the interrupts, and enables
    /// the feature on every online CPU (and on each CPU that comes online).
    fn start(cfg: &GuestConfig) -> Result<Self> {
        let np_irq = map_intid(cfg.np_intid)?;
        let ready_irq = map_intid(cfg.ready_intid)?;
        // INVARIANT: from here on, `Drop` undoes each step; the shim's
        // teardown functions accept a step that was not done.
        let driver = Self::states(cfg.entries_per_cpu())?;
        // SAFETY: both numbers are interrupts just mapped; the handlers
        // find the states set above.
        kernel::error::to_result(unsafe {
            ffi::kvm_apf_guest_shim_request_irqs(np_irq, ready_irq, cfg.ready_is_ppi(), cfg.vm_wide_ready)
        })?;
        // SAFETY: undone by `Drop`.
        unsafe { ffi::kvm_apf_guest_shim_reboot_register() };
        // SAFETY: the interrupts are requested; undone by `Drop`.
        kernel::error::to_result(unsafe { ffi::kvm_apf_guest_shim_cpuhp_setup() })?;
        Ok(driver)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: each call undoes a step of `start` (or nothing if that
        // step was not reached), in reverse order: no more reboot, then
        // every online CPU torn down (DISABLE, WAKE_ALL, unregister), then
        // no more interrupts.
        unsafe {
            ffi::kvm_apf_guest_shim_reboot_unregister();
            ffi::kvm_apf_guest_shim_cpuhp_remove();
            ffi::kvm_apf_guest_shim_free_irqs();
        }
        for cpu in 0..self.cpus.len() {
            // SAFETY: no handler or hotplug callback runs any more; `cpu`
            // < nr_cpu_ids.
            unsafe { ffi::kvm_apf_guest_shim_set_cpu_state(cpu as u32, core::ptr::null_mut()) };
        }
        // No task sleeps and no sleep is queued: each holds a module
        // reference, and unloading is refused while any is held.
    }
}

/// Linux interrupt number of a GIC INTID.
fn map_intid(intid: u32) -> Result<u32> {
    // SAFETY: no precondition; the mapping is kept (a later load finds it).
    let ret = unsafe { ffi::kvm_apf_guest_shim_map_intid(intid) };
    kernel::error::to_result(ret)?;
    u32::try_from(ret).map_err(|_| EINVAL)
}

impl kernel::Module for KvmApfGuest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        STATS.publish();
        let inject = module_parameters::inject.value();
        let cfg = match discovery::discover() {
            Ok(cfg) => cfg,
            Err(why) => {
                pr_info!("{}; staying idle\n", why);
                if !inject {
                    return Ok(Self { driver: None });
                }
                // Per-CPU states without interrupts or records, for the
                // injection file only.
                let driver = Driver::states(8).inspect_err(|_| stats::Stats::unpublish())?;
                inject::publish();
                return Ok(Self {
                    driver: Some(driver),
                });
            }
        };
        let driver = match Driver::start(&cfg) {
            Ok(d) => d,
            Err(e) => {
                stats::Stats::unpublish();
                return Err(e);
            }
        };
        if inject {
            inject::publish();
        }
        pr_info!(
            "enabled on {} CPUs: not-present INTID {}, page-ready INTID {} ({}), {} slots\n",
            STATS.enabled_cpus.load(kernel::sync::atomic::Relaxed),
            cfg.np_intid,
            cfg.ready_intid,
            if cfg.ready_is_ppi() { "PPI" } else { "SPI" },
            cfg.slots
        );
        Ok(Self {
            driver: Some(driver),
        })
    }
}

impl Drop for KvmApfGuest {
    fn drop(&mut self) {
        let active = self.driver.is_some();
        // debugfs first: it waits for a write to `inject` in progress,
        // which uses the per-CPU states.
        stats::Stats::unpublish();
        self.driver = None;
        if active {
            pr_info!("disabled\n");
        }
    }
}

/// The shim's per-CPU pointer as a state.
///
/// # Safety
///
/// `state` was set by [`Driver::start`] and the driver is not dropped yet.
unsafe fn state<'a>(state: *mut c_void) -> &'a CpuState {
    // SAFETY: by the function's contract.
    unsafe { &*state.cast::<CpuState>() }
}

/// Not-present interrupt (shim handler).
///
/// # Safety
///
/// Called by the shim's handler on the CPU whose `state` this is.
#[no_mangle]
unsafe extern "C" fn kvm_apf_guest_rs_not_present(s: *mut c_void) {
    // SAFETY: handlers run between `request_irqs` and `free_irqs`, while
    // the states live.
    unsafe { state(s) }.not_present();
}

/// Page-ready interrupt (shim handler).
///
/// # Safety
///
/// Called by the shim's handler on the CPU whose `state` this is.
#[no_mangle]
unsafe extern "C" fn kvm_apf_guest_rs_page_ready(s: *mut c_void) {
    // SAFETY: as for `kvm_apf_guest_rs_not_present`.
    unsafe { state(s) }.page_ready();
}

/// VM-wide page-ready interrupt (an SPI with a 1.1 host; shim handler).
///
/// # Safety
///
/// Called by the shim's handler, interrupts masked, between
/// `request_irqs` and `free_irqs`.
#[no_mangle]
unsafe extern "C" fn kvm_apf_guest_rs_vm_page_ready() {
    irq::vm_page_ready(|mpidr| {
        // SAFETY: the states the shim returns are set by `Driver::states`
        // and cleared only after the interrupt is freed.
        let s = unsafe { ffi::kvm_apf_guest_shim_state_of_mpidr(mpidr) };
        // SAFETY: as above: a non-NULL state lives while handlers run.
        (!s.is_null()).then(|| unsafe { state(s) })
    });
}

/// CPU-hotplug online callback.
///
/// # Safety
///
/// Called by the shim on the CPU whose `state` this is, in its hotplug
/// thread.
#[no_mangle]
unsafe extern "C" fn kvm_apf_guest_rs_cpu_online(s: *mut c_void) -> c_int {
    if s.is_null() {
        return 0;
    }
    // SAFETY: the hotplug state is removed before the states are freed.
    unsafe { state(s) }.online();
    0
}

/// CPU-hotplug offline callback.
///
/// # Safety
///
/// As for [`kvm_apf_guest_rs_cpu_online`].
#[no_mangle]
unsafe extern "C" fn kvm_apf_guest_rs_cpu_offline(s: *mut c_void) -> c_int {
    if s.is_null() {
        return 0;
    }
    // SAFETY: as for `kvm_apf_guest_rs_cpu_online`.
    unsafe { state(s) }.offline();
    0
}

/// Reboot and kexec, on each CPU, interrupts masked.
///
/// # Safety
///
/// Called by the shim's reboot notifier on the CPU whose `state` this is.
#[no_mangle]
unsafe extern "C" fn kvm_apf_guest_rs_cpu_stop(s: *mut c_void) {
    // SAFETY: the notifier is unregistered before the states are freed.
    unsafe { state(s) }.stop();
}
