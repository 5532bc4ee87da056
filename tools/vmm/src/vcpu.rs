// SPDX-License-Identifier: GPL-2.0
//! vCPUs: creation with PSCI 0.2 (secondaries powered off until the
//! guest's `CPU_ON`), the boot registers, and the run loop of one vCPU
//! thread, which handles MMIO for the PL011 and ends on a system event, an
//! error, or a kick when the main thread asks all vCPUs to stop; it parks
//! outside KVM_RUN while the main thread pauses the VM (`pause.rs`).

use std::io::Stdout;
use std::mem::offset_of;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;

use kvm_bindings::kvm_regs;
use kvm_bindings::kvm_vcpu_init;
use kvm_bindings::user_pt_regs;
use kvm_bindings::KVM_ARM_IRQ_TYPE_SHIFT;
use kvm_bindings::KVM_ARM_IRQ_TYPE_SPI;
use kvm_bindings::KVM_ARM_VCPU_POWER_OFF;
use kvm_bindings::KVM_ARM_VCPU_PSCI_0_2;
use kvm_bindings::KVM_REG_ARM64;
use kvm_bindings::KVM_REG_ARM_CORE;
use kvm_bindings::KVM_REG_SIZE_U64;
use kvm_bindings::KVM_SYSTEM_EVENT_CRASH;
use kvm_bindings::KVM_SYSTEM_EVENT_RESET;
use kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN;
use kvm_ioctls::VcpuExit;
use kvm_ioctls::VcpuFd;
use kvm_ioctls::VmFd;

use crate::console::Console;
use crate::error::Context;
use crate::error::Result;
use crate::layout;
use crate::pause::Gate;
use crate::pl011::Pl011;

/// PSTATE at entry: EL1h, D, A, I and F masked (arm64 booting.rst).
const PSTATE_BOOT: u64 = 0x3c5;

/// Why the VM stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// PSCI SYSTEM_OFF.
    PowerOff,
    /// PSCI SYSTEM_RESET (not supported: the VMM stops).
    Reset,
    /// PSCI SYSTEM_CRASH or a panic the guest reported.
    Crash,
    /// A terminating signal (its number).
    Signal(i32),
    /// A vCPU or the page server failed.
    Error(String),
}

impl ExitReason {
    /// A word for the summary line.
    pub fn word(&self) -> String {
        match self {
            ExitReason::PowerOff => "poweroff".into(),
            ExitReason::Reset => "reset".into(),
            ExitReason::Crash => "crash".into(),
            ExitReason::Signal(s) => format!("killed-by-{}", crate::signals::name(*s)),
            ExitReason::Error(_) => "error".into(),
        }
    }
}

/// What the vCPU threads and the main thread share.
pub struct Shared {
    /// Set when the VM must stop; every vCPU thread ends when it sees it.
    pub stop: AtomicBool,
    /// The first reason to stop, whoever found it.
    pub reason: Mutex<Option<ExitReason>>,
    /// The console.
    pub uart: Mutex<Pl011<Console<Stdout>>>,
    /// Parks the vCPU threads outside KVM_RUN when the main thread (or the
    /// console, at a `--remote-after` marker) asks.
    pub pause: Arc<Gate>,
    /// The VM, to signal the UART's interrupt.
    pub vm: Arc<VmFd>,
    /// Whether an unhandled MMIO access was reported already.
    pub mmio_warned: AtomicBool,
}

impl Shared {
    /// Records `reason` if none was recorded, and asks everyone to stop.
    pub fn finish(&self, reason: ExitReason) {
        let mut r = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if r.is_none() {
            *r = Some(reason);
        }
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn core_reg(offset: usize) -> u64 {
    KVM_REG_ARM64 | KVM_REG_SIZE_U64 | u64::from(KVM_REG_ARM_CORE) | (offset / 4) as u64
}

/// Creates and initialises vCPU `id` (powered off unless it is vCPU 0).
pub fn create(vm: &VmFd, id: u32) -> Result<VcpuFd> {
    let vcpu = vm
        .create_vcpu(u64::from(id))
        .context(|| format!("KVM_CREATE_VCPU {id}"))?;
    let mut kvi = kvm_vcpu_init::default();
    vm.get_preferred_target(&mut kvi)
        .context(|| "KVM_ARM_PREFERRED_TARGET")?;
    kvi.features[0] |= 1 << KVM_ARM_VCPU_PSCI_0_2;
    if id > 0 {
        kvi.features[0] |= 1 << KVM_ARM_VCPU_POWER_OFF;
    }
    vcpu.vcpu_init(&kvi)
        .context(|| format!("KVM_ARM_VCPU_INIT of vCPU {id}"))?;
    Ok(vcpu)
}

/// Points the boot vCPU at the kernel with the DTB in x0.
pub fn set_boot_regs(vcpu: &VcpuFd, entry: u64, dtb: u64) -> Result<()> {
    let regs = offset_of!(kvm_regs, regs);
    let set = |off: usize, v: u64, what: &str| {
        vcpu.set_one_reg(core_reg(regs + off), &v.to_le_bytes())
            .map(|_| ())
            .context(|| format!("KVM_SET_ONE_REG {what}"))
    };
    set(offset_of!(user_pt_regs, pstate), PSTATE_BOOT, "pstate")?;
    set(offset_of!(user_pt_regs, pc), entry, "pc")?;
    set(offset_of!(user_pt_regs, regs), dtb, "x0")?;
    Ok(())
}

/// The run loop of vCPU `id`; returns the vCPU so the caller closes it at
/// the right time (after all threads stopped, while the page server runs).
pub fn run(mut vcpu: VcpuFd, id: u32, shared: &Shared) -> VcpuFd {
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.pause.requested() {
            shared.pause.park(&shared.stop);
            continue;
        }
        match vcpu.run() {
            Ok(VcpuExit::MmioRead(addr, data)) => mmio_read(shared, addr, data),
            Ok(VcpuExit::MmioWrite(addr, data)) => mmio_write(shared, addr, data),
            Ok(VcpuExit::SystemEvent(kind, _)) => {
                let reason = match kind {
                    KVM_SYSTEM_EVENT_SHUTDOWN => ExitReason::PowerOff,
                    KVM_SYSTEM_EVENT_RESET => ExitReason::Reset,
                    KVM_SYSTEM_EVENT_CRASH => ExitReason::Crash,
                    other => ExitReason::Error(format!("vCPU {id}: system event {other}")),
                };
                shared.finish(reason);
            }
            Ok(VcpuExit::Intr) => {}
            Ok(VcpuExit::FailEntry(reason, cpu)) => shared.finish(ExitReason::Error(format!(
                "vCPU {id}: KVM_EXIT_FAIL_ENTRY, reason {reason:#x} on CPU {cpu}"
            ))),
            Ok(VcpuExit::InternalError) => {
                shared.finish(ExitReason::Error(format!("vCPU {id}: KVM_EXIT_INTERNAL_ERROR")))
            }
            Ok(other) => shared.finish(ExitReason::Error(format!(
                "vCPU {id}: unexpected exit {other:?}"
            ))),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {}
            Err(e) => shared.finish(ExitReason::Error(format!("vCPU {id}: KVM_RUN: {e}"))),
        }
    }
    vcpu
}

fn in_uart(addr: u64) -> Option<u64> {
    addr.checked_sub(layout::UART_BASE)
        .filter(|off| *off < layout::UART_SIZE)
}

fn warn_unhandled(shared: &Shared, what: &str, addr: u64) {
    if !shared.mmio_warned.swap(true, Ordering::Relaxed) {
        eprintln!("apf-vmm: warning: unhandled MMIO {what} at {addr:#x} (reads as 0; not reported again)");
    }
}

fn mmio_read(shared: &Shared, addr: u64, data: &mut [u8]) {
    match in_uart(addr) {
        Some(off) => shared
            .uart
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .read(off, data),
        None => {
            data.fill(0);
            warn_unhandled(shared, "read", addr);
        }
    }
}

fn mmio_write(shared: &Shared, addr: u64, data: &[u8]) {
    let Some(off) = in_uart(addr) else {
        warn_unhandled(shared, "write", addr);
        return;
    };
    let mut uart = shared.uart.lock().unwrap_or_else(PoisonError::into_inner);
    if uart.write(off, data) {
        let irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | layout::UART_INTID;
        // Under the UART lock, so that level changes reach KVM in order.
        if let Err(e) = shared.vm.set_irq_line(irq, uart.irq_level()) {
            shared.finish(ExitReason::Error(format!("KVM_IRQ_LINE for the UART: {e}")));
        }
    }
}
