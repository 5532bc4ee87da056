// SPDX-License-Identifier: GPL-2.0
//! The guest's physical memory map (the QEMU `virt` machine's addresses)
//! and where the kernel, the initramfs and the device tree go in RAM.

use crate::error::Error;
use crate::error::Result;

/// IPA size asked of KVM: 1 TiB is plenty, and a VM of the host's maximum
/// (52 bits under emulation) takes seconds to tear down.
pub const IPA_BITS: u32 = 40;

/// GICv3 distributor.
pub const GIC_DIST_BASE: u64 = 0x0800_0000;
/// Size of the distributor's frame.
pub const GIC_DIST_SIZE: u64 = 0x1_0000;
/// First redistributor (two 64 KiB frames per vCPU).
pub const GIC_REDIST_BASE: u64 = 0x080A_0000;
/// Size of one vCPU's redistributor.
pub const GIC_REDIST_SIZE_PER_CPU: u64 = 0x2_0000;
/// INTIDs of the vGIC: 32 private, then SPIs.
pub const GIC_NR_IRQS: u32 = 128;

/// PL011 UART.
pub const UART_BASE: u64 = 0x0900_0000;
/// Size of the PL011's register frame.
pub const UART_SIZE: u64 = 0x1000;
/// The UART's SPI number (as in the device tree) and its INTID.
pub const UART_SPI: u32 = 1;
/// INTID of the UART's SPI.
pub const UART_INTID: u32 = 32 + UART_SPI;
/// Its fixed reference clock.
pub const UART_CLOCK_HZ: u32 = 24_000_000;

/// Guest RAM starts at 1 GiB.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Smallest RAM accepted.
pub const RAM_MIN: u64 = 32 << 20;
/// Largest RAM accepted: what fits below the 40-bit IPA limit.
pub const RAM_MAX: u64 = (1 << IPA_BITS) - RAM_BASE;

/// Maximum size of the device tree blob (arm64 booting.rst).
pub const DTB_MAX: u64 = 2 << 20;

/// Most vCPUs: the redistributor frames must stay below the UART.
pub const MAX_CPUS: u32 = 4;

/// Architected PPIs of the VM (INTIDs).
pub const TIMER_SEC_PHYS_INTID: u32 = 29;
/// EL1 physical timer.
pub const TIMER_PHYS_INTID: u32 = 30;
/// EL1 virtual timer.
pub const TIMER_VIRT_INTID: u32 = 27;
/// EL2 physical timer (nested virtualization).
pub const TIMER_HYP_INTID: u32 = 26;
/// EL2 virtual timer (nested virtualization).
pub const TIMER_HYP_VIRT_INTID: u32 = 28;
/// vGIC maintenance interrupt.
pub const GIC_MAINT_INTID: u32 = 25;
/// PMU overflow (no PMU here, but Linux guests expect it there).
pub const PMU_INTID: u32 = 23;

// The devices sit below RAM and do not overlap, checked at build time.
const _: () = assert!(GIC_DIST_BASE + GIC_DIST_SIZE <= GIC_REDIST_BASE);
const _: () = assert!(GIC_REDIST_BASE + GIC_REDIST_SIZE_PER_CPU * MAX_CPUS as u64 <= UART_BASE);
const _: () = assert!(UART_BASE + UART_SIZE <= RAM_BASE);
const _: () = assert!(UART_INTID < GIC_NR_IRQS);

/// Which device of this VM uses `intid`, if any.
pub fn intid_user(intid: u32) -> Option<&'static str> {
    match intid {
        TIMER_SEC_PHYS_INTID | TIMER_PHYS_INTID | TIMER_VIRT_INTID | TIMER_HYP_INTID
        | TIMER_HYP_VIRT_INTID => Some("arch timer"),
        GIC_MAINT_INTID => Some("vGIC maintenance interrupt"),
        PMU_INTID => Some("PMU overflow interrupt"),
        UART_INTID => Some("PL011 UART"),
        _ => None,
    }
}

/// Where the boot payload goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootLayout {
    /// 2 MiB aligned base the kernel Image is loaded relative to.
    pub kernel_base: u64,
    /// First byte of the initramfs and its size (0 if none).
    pub initrd_start: u64,
    /// Size of the initramfs.
    pub initrd_size: u64,
    /// Address of the device tree blob.
    pub dtb: u64,
}

/// Places the kernel at the start of RAM, the DTB in the last 2 MiB and the
/// initramfs just below it; fails if they would overlap the kernel's
/// memory (`image_size`, which includes its bss, from the Image header).
pub fn plan_boot(ram_size: u64, kernel_image_size: u64, initrd_size: u64) -> Result<BootLayout> {
    let ram_end = RAM_BASE
        .checked_add(ram_size)
        .ok_or_else(|| Error::new("RAM size overflows the address space"))?;
    let dtb = ram_end
        .checked_sub(DTB_MAX)
        .ok_or_else(|| Error::new("RAM too small for the device tree"))?;
    let initrd_start = dtb
        .checked_sub(initrd_size)
        .map(|a| a & !0xfff)
        .ok_or_else(|| Error::new("initramfs larger than RAM"))?;
    let kernel_end = RAM_BASE
        .checked_add(kernel_image_size)
        .ok_or_else(|| Error::new("kernel image size overflows"))?;
    if initrd_start < kernel_end {
        return Err(Error::new(format!(
            "{} MiB of RAM is too small: the kernel needs {} MiB, the initramfs {} MiB, the device tree 2 MiB",
            ram_size >> 20,
            kernel_image_size.div_ceil(1 << 20),
            initrd_size.div_ceil(1 << 20)
        )));
    }
    Ok(BootLayout { kernel_base: RAM_BASE, initrd_start, initrd_size, dtb })
}

/// The arm64 Image header fields this VMM needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset of the image from the 2 MiB aligned base.
    pub text_offset: u64,
    /// Memory the kernel occupies from its start, bss included.
    pub image_size: u64,
}

/// Parses the first 64 bytes of an arm64 `Image` (Documentation/arch/arm64/booting.rst).
pub fn parse_image_header(h: &[u8]) -> Result<ImageHeader> {
    let word = |at: usize| -> Result<u64> {
        let b = h
            .get(at..at + 8)
            .ok_or_else(|| Error::new("file too short for an arm64 Image header"))?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    };
    let magic = h
        .get(56..60)
        .ok_or_else(|| Error::new("file too short for an arm64 Image header"))?;
    if magic != b"ARM\x64" {
        return Err(Error::new("not an arm64 Image (no 'ARM\\x64' magic at offset 56)"));
    }
    let (text_offset, image_size) = (word(8)?, word(16)?);
    if image_size == 0 {
        // Kernels before 3.17: text_offset is 0x80000, size unknown.
        return Err(Error::new("arm64 Image without image_size (kernel older than 3.17)"));
    }
    Ok(ImageHeader { text_offset, image_size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_fits_in_order() {
        let l = plan_boot(256 << 20, 40 << 20, 3 << 20).unwrap();
        assert_eq!(l.kernel_base, RAM_BASE);
        assert_eq!(l.dtb, RAM_BASE + (254 << 20));
        assert_eq!(l.initrd_start, l.dtb - (3 << 20));
        assert_eq!(l.initrd_start % 4096, 0);
        let odd = plan_boot(256 << 20, 40 << 20, 12345).unwrap();
        assert_eq!(odd.initrd_start % 4096, 0);
        assert!(odd.initrd_start + 12345 <= odd.dtb);
    }

    #[test]
    fn too_small_ram_is_an_error() {
        let e = plan_boot(64 << 20, 60 << 20, 4 << 20).unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
        assert!(plan_boot(1 << 20, 0, 0).is_err());
        assert!(plan_boot(64 << 20, 0, 1 << 40).is_err());
    }

    #[test]
    fn image_header_is_checked() {
        let mut h = vec![0u8; 64];
        h[8..16].copy_from_slice(&0u64.to_le_bytes());
        h[16..24].copy_from_slice(&(30u64 << 20).to_le_bytes());
        h[56..60].copy_from_slice(b"ARM\x64");
        assert_eq!(
            parse_image_header(&h),
            Ok(ImageHeader { text_offset: 0, image_size: 30 << 20 })
        );
        assert!(parse_image_header(&h[..40]).is_err());
        h[56] = b'X';
        assert!(parse_image_header(&h).is_err());
    }

    #[test]
    fn intid_users() {
        assert_eq!(intid_user(27), Some("arch timer"));
        assert_eq!(intid_user(UART_INTID), Some("PL011 UART"));
        assert_eq!(intid_user(20), None);
    }
}
