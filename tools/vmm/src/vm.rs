// SPDX-License-Identifier: GPL-2.0
//! One VM from start to end: guest RAM (present, or lazily served by the
//! page server), the kernel, initramfs and device tree in it, the vGICv3,
//! the vCPUs, `KVM_CAP_ARM_ASYNC_PF`, then the vCPU threads until the guest
//! powers off or a signal comes, and the teardown in the order KVM needs:
//! vCPU threads stopped, vCPU and VM descriptors closed while the page
//! server still serves, then the page server, then guest memory.

use std::fs::File;
use std::io::Read;
use std::os::unix::thread::JoinHandleExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::thread::JoinHandle;
use std::time::Duration;
use std::time::Instant;

use kvm_bindings::kvm_create_device;
use kvm_bindings::kvm_device_attr;
use kvm_bindings::kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V3;
use kvm_bindings::kvm_enable_cap;
use kvm_bindings::kvm_userspace_memory_region;
use kvm_bindings::KVM_DEV_ARM_VGIC_CTRL_INIT;
use kvm_bindings::KVM_DEV_ARM_VGIC_GRP_ADDR;
use kvm_bindings::KVM_DEV_ARM_VGIC_GRP_CTRL;
use kvm_bindings::KVM_DEV_ARM_VGIC_GRP_NR_IRQS;
use kvm_bindings::KVM_VGIC_V3_ADDR_TYPE_DIST;
use kvm_bindings::KVM_VGIC_V3_ADDR_TYPE_REDIST;
use kvm_ioctls::DeviceFd;
use kvm_ioctls::Kvm;
use kvm_ioctls::VcpuFd;
use kvm_ioctls::VmFd;
use linux_loader::loader::pe::PE;
use linux_loader::loader::KernelLoader;
use vm_memory::Bytes;
use vm_memory::GuestAddress;
use vm_memory::GuestMemoryBackend;
use vm_memory::GuestMemoryMmap;

use crate::apf;
use crate::apf::AsyncPf;
use crate::args::Config;
use crate::args::Memory;
use crate::console::Console;
use crate::console::MarkerHits;
use crate::error::describe_errno;
use crate::error::Context;
use crate::error::Error;
use crate::error::Result;
use crate::fdt;
use crate::layout;
use crate::marker::Marker;
use crate::page_server::PageServer;
use crate::page_server::ServerConfig;
use crate::page_server::Stats;
use crate::pause::Gate;
use crate::pl011::Pl011;
use crate::restore::RemoteAfter;
use crate::signals;
use crate::uffd::Uffd;
use crate::vcpu;
use crate::vcpu::ExitReason;
use crate::vcpu::Shared;

/// How long stopping vCPU threads may take before the VMM gives up on them.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// How a run ended.
pub struct Outcome {
    reason: ExitReason,
    cpus: u32,
    lazy: bool,
    async_pf: bool,
    remote_after: bool,
    uffd: Stats,
    elapsed: Duration,
}

impl Outcome {
    /// The one summary line printed at exit.
    pub fn summary(&self) -> String {
        let err = match &self.reason {
            ExitReason::Error(e) => format!(" ({e})"),
            _ => String::new(),
        };
        format!(
            "apf-vmm: exit={}{err} vcpus={} memory={} async_pf={} uffd_pages={} uffd_max_queued={}{} elapsed={:.2}s",
            self.reason.word(),
            self.cpus,
            if self.lazy { "lazy" } else { "present" },
            if self.async_pf { "on" } else { "off" },
            self.uffd.served,
            self.uffd.max_queued,
            if self.remote_after {
                format!(
                    " remote_again={} uffd_pages_since_remote={}",
                    self.uffd.remote_again, self.uffd.served_since_remote
                )
            } else {
                String::new()
            },
            self.elapsed.as_secs_f64()
        )
    }

    /// The process exit code: 0 only when the guest powered off. A reset
    /// is 1: this VMM does not reboot, and a guest kernel that panics with
    /// `panic=N` resets.
    pub fn exit_code(&self) -> u8 {
        match self.reason {
            ExitReason::PowerOff => 0,
            ExitReason::Reset => 1,
            // As a shell reports a death by that signal.
            ExitReason::Signal(s) => 128u8.saturating_add(u8::try_from(s).unwrap_or(0)),
            ExitReason::Crash | ExitReason::Error(_) => 1,
        }
    }
}

fn open(path: &Path, what: &str) -> Result<File> {
    File::open(path).context(|| format!("cannot open {what} '{}'", path.display()))
}

/// The boot payload, read before anything is created.
struct Payload {
    kernel: File,
    header: layout::ImageHeader,
    initrd: Vec<u8>,
}

fn read_payload(cfg: &Config) -> Result<Payload> {
    let mut kernel = open(&cfg.kernel, "kernel image")?;
    let mut head = Vec::with_capacity(64);
    (&mut kernel)
        .take(64)
        .read_to_end(&mut head)
        .context(|| format!("cannot read kernel image '{}'", cfg.kernel.display()))?;
    // A short file is reported by the header parser.
    let header = layout::parse_image_header(&head)
        .context(|| format!("kernel image '{}'", cfg.kernel.display()))?;
    let initrd = match &cfg.initrd {
        Some(p) => {
            let mut v = Vec::new();
            open(p, "initramfs")?
                .read_to_end(&mut v)
                .context(|| format!("cannot read initramfs '{}'", p.display()))?;
            v
        }
        None => Vec::new(),
    };
    Ok(Payload { kernel, header, initrd })
}

fn host_page_size() -> Result<u64> {
    // SAFETY: sysconf has no memory effects.
    let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(ps)
        .ok()
        .filter(|p| p.is_power_of_two())
        .ok_or_else(|| Error::new("cannot read the host page size"))
}

fn create_gic(vm: &VmFd, cpus: u32) -> Result<DeviceFd> {
    let mut dev = kvm_create_device {
        type_: kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V3,
        fd: 0,
        flags: 0,
    };
    let gic = vm
        .create_device(&mut dev)
        .context(|| "KVM_CREATE_DEVICE(vGICv3): the host has no GICv3 for guests")?;
    let dist = layout::GIC_DIST_BASE;
    let redist = layout::GIC_REDIST_BASE;
    let nr_irqs = layout::GIC_NR_IRQS;
    let attr = |group: u32, attr: u32, addr: u64| kvm_device_attr { group, attr: attr.into(), addr, flags: 0 };
    // The attribute values are read by the kernel from these locals during
    // each ioctl.
    gic.set_device_attr(&attr(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist as *const u64 as u64))
        .context(|| "vGIC distributor address")?;
    gic.set_device_attr(&attr(
        KVM_DEV_ARM_VGIC_GRP_ADDR,
        KVM_VGIC_V3_ADDR_TYPE_REDIST,
        &redist as *const u64 as u64,
    ))
    .context(|| "vGIC redistributor address")?;
    gic.set_device_attr(&attr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs as *const u32 as u64))
        .context(|| "vGIC number of interrupts")?;
    gic.set_device_attr(&attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0))
        .context(|| format!("vGIC init with {cpus} vCPUs"))?;
    Ok(gic)
}

fn enable_async_pf(vm: &VmFd, a: &AsyncPf) -> Result<()> {
    let have = vm.check_extension_raw(apf::KVM_CAP_ARM_ASYNC_PF.into());
    if have <= 0 {
        return Err(Error::new(format!(
            "--async-pf: KVM_CAP_ARM_ASYNC_PF ({}) is not offered (KVM_CHECK_EXTENSION returned {have}): \
             kvm_apf.ko is not loaded in this host (insmod kvm_apf.ko), or its kernel lacks the kvm-apf series",
            apf::KVM_CAP_ARM_ASYNC_PF
        )));
    }
    let args = a.enable_args();
    let cap = kvm_enable_cap { cap: apf::KVM_CAP_ARM_ASYNC_PF, args, ..Default::default() };
    vm.enable_cap(&cap).map_err(|e| {
        Error::new(format!(
            "--async-pf: KVM_ENABLE_CAP(KVM_CAP_ARM_ASYNC_PF, flags={:#x} slots={} not-present={} ready={}) \
             failed with {}: {}",
            args[0],
            args[1],
            args[2],
            args[3],
            describe_errno(e.errno()),
            apf::explain_enable_errno(e.errno())
        ))
    })
}

/// Boots the VM of `cfg` and runs it to its end.
pub fn run(cfg: &Config) -> Result<Outcome> {
    let start = Instant::now();
    // Before any thread exists, so that all of them inherit the mask.
    let term = signals::setup()?;
    let payload = read_payload(cfg)?;
    let page_size = host_page_size()?;

    // The userfaultfd is opened before /dev/kvm so that its descriptor is
    // closed first if the process dies: closing it wakes every waiter,
    // which vCPU and VM teardown may be waiting for.
    let lazy = match &cfg.memory {
        Memory::Present => None,
        Memory::Lazy { image, latency, seed } => {
            let file = if cfg.remote_after.is_some() {
                // RAM is written back to it.
                std::fs::OpenOptions::new().read(true).write(true).open(image).context(|| {
                    format!("cannot open memory image '{}' for reading and writing (--remote-after)", image.display())
                })?
            } else {
                open(image, "memory image")?
            };
            let len = file
                .metadata()
                .context(|| format!("cannot stat memory image '{}'", image.display()))?
                .len();
            if len > cfg.mem_size {
                return Err(Error::new(format!(
                    "memory image '{}' ({} MiB) is larger than --mem ({} MiB)",
                    image.display(),
                    len >> 20,
                    cfg.mem_size >> 20
                )));
            }
            Some((Uffd::new()?, file, *latency, *seed))
        }
    };

    // Guest RAM is mapped before the VM exists, so that it is unmapped only
    // after the VM is closed, on every path out of this function (locals
    // are dropped in reverse order).
    let mem_len = usize::try_from(cfg.mem_size).map_err(|_| Error::new("--mem too large for this host"))?;
    let ram = GuestAddress(layout::RAM_BASE);
    let gm = GuestMemoryMmap::<()>::from_ranges(&[(ram, mem_len)])
        .context(|| format!("cannot map {} MiB of guest RAM", cfg.mem_size >> 20))?;
    let host = gm
        .get_host_address(ram)
        .context(|| "guest RAM has no host address")? as u64;

    let kvm = Kvm::new().context(|| "cannot open /dev/kvm")?;
    // KVM_CAP_ARM_VM_IPA_SIZE: 0 means the IPA size is fixed at 40 bits.
    let vm = match kvm.get_host_ipa_limit() {
        0 => kvm.create_vm(),
        l if l >= layout::IPA_BITS as i32 => kvm.create_vm_with_ipa_size(layout::IPA_BITS),
        l if l > 0 => {
            return Err(Error::new(format!(
                "the host supports {l}-bit guest physical addresses, this VMM needs {}",
                layout::IPA_BITS
            )))
        }
        _ => return Err(Error::new("/dev/kvm is not arm64 KVM (KVM_CAP_ARM_VM_IPA_SIZE failed)")),
    };
    let vm = Arc::new(vm.context(|| "KVM_CREATE_VM")?);

    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: layout::RAM_BASE,
        memory_size: cfg.mem_size,
        userspace_addr: host,
    };
    // SAFETY: `host` is the start of a mapping of `memory_size` bytes that
    // `gm` owns; `gm` is declared before `vm` and dropped explicitly after
    // it, so the mapping outlives the memslot.
    unsafe { vm.set_user_memory_region(region) }.context(|| "KVM_SET_USER_MEMORY_REGION")?;

    // The boot payload is written now, before userfaultfd registration, so
    // its pages are present; all others are served lazily.
    let image_end = payload
        .header
        .text_offset
        .checked_add(payload.header.image_size)
        .ok_or_else(|| Error::new("kernel image header: text_offset + image_size overflows"))?;
    let boot = layout::plan_boot(cfg.mem_size, image_end, payload.initrd.len() as u64)?;
    let mut kernel = payload.kernel;
    let loaded = PE::load(&gm, Some(GuestAddress(boot.kernel_base)), &mut kernel, None)
        .context(|| format!("cannot load kernel image '{}'", cfg.kernel.display()))?;
    let initrd = if payload.initrd.is_empty() {
        None
    } else {
        gm.write_slice(&payload.initrd, GuestAddress(boot.initrd_start))
            .context(|| "cannot write the initramfs to guest RAM")?;
        Some((boot.initrd_start, boot.initrd_size))
    };
    let dtb = fdt::create(&fdt::FdtConfig {
        cpus: cfg.cpus,
        mem_size: cfg.mem_size,
        cmdline: cfg.cmdline.clone(),
        initrd,
    })?;
    if dtb.len() as u64 > layout::DTB_MAX {
        return Err(Error::new("the device tree is larger than 2 MiB (is the command line huge?)"));
    }
    gm.write_slice(&dtb, GuestAddress(boot.dtb))
        .context(|| "cannot write the device tree to guest RAM")?;

    let server = match lazy {
        None => None,
        Some((uffd, file, latency, seed)) => {
            uffd.register_missing(host, cfg.mem_size)?;
            let sc = ServerConfig { base: host, len: cfg.mem_size, page_size, latency, seed };
            eprintln!(
                "apf-vmm: guest RAM served lazily from the memory image, latency {latency:?} (mean {} us)",
                latency.mean_ns() / 1000
            );
            Some(PageServer::spawn(uffd, file, sc)?)
        }
    };

    // From here on the page server runs: errors must still tear down in
    // order, which `run_vcpus` and the drops below do.
    let result = setup_and_run(cfg, &vm, loaded.kernel_load.0, boot.dtb, &term, server.as_ref());
    // vCPUs are closed (inside), the GIC too; now the VM, while the page
    // server still serves whatever teardown faults on.
    drop(vm);
    let stats = server.map(PageServer::stop).transpose();
    drop(gm);
    // The run's own error first: a page server error after it is a consequence.
    let reason = result?;
    let uffd = stats?.unwrap_or_default();
    Ok(Outcome {
        reason,
        cpus: cfg.cpus,
        lazy: matches!(cfg.memory, Memory::Lazy { .. }),
        async_pf: cfg.async_pf.is_some(),
        remote_after: cfg.remote_after.is_some(),
        uffd,
        elapsed: start.elapsed(),
    })
}

fn setup_and_run(
    cfg: &Config,
    vm: &Arc<VmFd>,
    entry: u64,
    dtb: u64,
    term: &signals::Termination,
    server: Option<&PageServer>,
) -> Result<ExitReason> {
    let mut vcpus = Vec::new();
    for id in 0..cfg.cpus {
        vcpus.push(vcpu::create(vm, id)?);
    }
    let gic = create_gic(vm, cfg.cpus)?;
    if let Some(boot) = vcpus.first() {
        vcpu::set_boot_regs(boot, entry, dtb)?;
    }
    if let Some(a) = &cfg.async_pf {
        enable_async_pf(vm, a)?;
        eprintln!(
            "apf-vmm: async page faults enabled: not-present INTID {}, page-ready INTID {}, slots {}{}",
            a.not_present_intid,
            a.ready_intid,
            if a.slots == 0 { 64 } else { a.slots },
            if a.allow_el1 { ", EL1 allowed" } else { "" }
        );
    }

    let pause = Arc::new(Gate::default());
    let mut remote_after = None;
    let mut watch = Vec::new();
    if let Some(m) = &cfg.remote_after {
        let marker = Marker::new(m).map_err(|e| Error::new(format!("--remote-after: {e}")))?;
        // The vCPU that completes the marker parks before it re-enters the
        // guest: the guest is stopped, and its RAM made remote, exactly
        // after the marker, as if restored from a snapshot taken there.
        let hits = Arc::new(MarkerHits::pausing(Arc::clone(&pause)));
        watch.push((marker, Arc::clone(&hits)));
        remote_after = Some(RemoteAfter::new(m.clone(), hits, cfg.remote_latency.clone()));
    }
    if let (Some(m), Some(server)) = (&cfg.served_at, server) {
        let marker = Marker::new(m).map_err(|e| Error::new(format!("--served-at: {e}")))?;
        watch.push((marker, Arc::new(MarkerHits::probing(m, server.served_counter()))));
    }
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        reason: Mutex::new(None),
        uart: Mutex::new(Pl011::new(Console::new(std::io::stdout(), watch))),
        pause,
        vm: Arc::clone(vm),
        mmio_warned: AtomicBool::new(false),
    });
    let mut threads: Vec<JoinHandle<VcpuFd>> = Vec::new();
    for (id, v) in (0u32..).zip(vcpus) {
        let sh = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("vcpu{id}"))
            .spawn(move || vcpu::run(v, id, &sh));
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                shared.finish(ExitReason::Error(format!("cannot start vCPU thread {id}: {e}")));
                break;
            }
        }
    }

    while !shared.stop.load(Ordering::SeqCst) {
        if let Some(sig) = term.wait(Duration::from_millis(50)) {
            shared.finish(ExitReason::Signal(sig));
        }
        if server.is_some_and(PageServer::is_finished) {
            shared.finish(ExitReason::Error("the page server stopped".into()));
        }
        if let Some(r) = &mut remote_after {
            if let Err(e) = r.poll(&shared, &threads, server) {
                shared.finish(ExitReason::Error(e.to_string()));
            }
        }
    }
    if let Some(r) = &remote_after {
        r.report_unfired();
    }

    // Kick until every vCPU thread has left KVM_RUN; a kick that lands just
    // before a thread enters KVM_RUN is followed by another.
    let deadline = Instant::now() + STOP_DEADLINE;
    while threads.iter().any(|t| !t.is_finished()) {
        if Instant::now() > deadline {
            // Still blocked (e.g. on a page no one serves): leave the
            // teardown to process exit, which closes the userfaultfd first.
            shared.uart.lock().unwrap_or_else(PoisonError::into_inner).flush();
            return Err(Error::new("vCPU threads did not stop within 10 s"));
        }
        for t in threads.iter().filter(|t| !t.is_finished()) {
            signals::kick(t.as_pthread_t());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for t in threads {
        // A vCPU thread does not panic (panic = abort in release builds);
        // its VcpuFd is closed here, before the VM.
        drop(t.join());
    }
    drop(gic);
    shared.uart.lock().unwrap_or_else(PoisonError::into_inner).flush();
    let reason = shared
        .reason
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .unwrap_or(ExitReason::Error("stopped without a reason".into()));
    Ok(reason)
}
