// SPDX-License-Identifier: GPL-2.0
//! The device tree the guest boots with: memory, vCPUs (PSCI), the GICv3,
//! the arch timer, and the PL011 with a fixed clock. Nothing describes the
//! async page fault INTIDs: the guest reads them with `GET_CONFIG`.

use vm_fdt::FdtWriter;

use crate::error::Context;
use crate::error::Result;
use crate::layout;

const PHANDLE_GIC: u32 = 1;
const PHANDLE_CLK: u32 = 2;

// Interrupt specifier cells: type, number, flags.
const GIC_FDT_IRQ_TYPE_SPI: u32 = 0;
const GIC_FDT_IRQ_TYPE_PPI: u32 = 1;
const IRQ_TYPE_LEVEL_HIGH: u32 = 4;

/// What the device tree describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdtConfig {
    /// Number of vCPUs (their MPIDRs are 0..cpus: Aff0 only, up to 16).
    pub cpus: u32,
    /// RAM size, from `layout::RAM_BASE`.
    pub mem_size: u64,
    /// Kernel command line.
    pub cmdline: String,
    /// Initramfs start and size, if any.
    pub initrd: Option<(u64, u64)>,
}

/// Builds the flattened device tree blob.
pub fn create(cfg: &FdtConfig) -> Result<Vec<u8>> {
    build(cfg).context(|| "cannot build the device tree")
}

fn ppi(intid: u32) -> [u32; 3] {
    [GIC_FDT_IRQ_TYPE_PPI, intid - 16, IRQ_TYPE_LEVEL_HIGH]
}

fn build(cfg: &FdtConfig) -> vm_fdt::FdtWriterResult<Vec<u8>> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "linux,dummy-virt")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", PHANDLE_GIC)?;

    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", &cfg.cmdline)?;
    fdt.property_string("stdout-path", &format!("/pl011@{:x}", layout::UART_BASE))?;
    if let Some((start, size)) = cfg.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", start + size)?;
    }
    fdt.end_node(chosen)?;

    let mem = fdt.begin_node(&format!("memory@{:x}", layout::RAM_BASE))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[layout::RAM_BASE, cfg.mem_size])?;
    fdt.end_node(mem)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for cpu in 0..cfg.cpus {
        let node = fdt.begin_node(&format!("cpu@{cpu:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,arm-v8")?;
        fdt.property_string("enable-method", "psci")?;
        // KVM's reset MPIDR: Aff0 = vcpu_id for ids below 16.
        fdt.property_u32("reg", cpu)?;
        fdt.end_node(node)?;
    }
    fdt.end_node(cpus)?;

    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,psci-1.0".to_owned(), "arm,psci-0.2".to_owned()],
    )?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(psci)?;

    let gic = fdt.begin_node(&format!("intc@{:x}", layout::GIC_DIST_BASE))?;
    fdt.property_string("compatible", "arm,gic-v3")?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_array_u64(
        "reg",
        &[
            layout::GIC_DIST_BASE,
            layout::GIC_DIST_SIZE,
            layout::GIC_REDIST_BASE,
            layout::GIC_REDIST_SIZE_PER_CPU * u64::from(cfg.cpus),
        ],
    )?;
    fdt.property_array_u32("interrupts", &ppi(layout::GIC_MAINT_INTID))?;
    fdt.property_phandle(PHANDLE_GIC)?;
    fdt.end_node(gic)?;

    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    fdt.property_null("always-on")?;
    let mut irqs = Vec::with_capacity(12);
    for intid in [
        layout::TIMER_SEC_PHYS_INTID,
        layout::TIMER_PHYS_INTID,
        layout::TIMER_VIRT_INTID,
        layout::TIMER_HYP_INTID,
    ] {
        irqs.extend_from_slice(&ppi(intid));
    }
    fdt.property_array_u32("interrupts", &irqs)?;
    fdt.end_node(timer)?;

    let clk = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", layout::UART_CLOCK_HZ)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_phandle(PHANDLE_CLK)?;
    fdt.end_node(clk)?;

    let uart = fdt.begin_node(&format!("pl011@{:x}", layout::UART_BASE))?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,pl011".to_owned(), "arm,primecell".to_owned()],
    )?;
    fdt.property_array_u64("reg", &[layout::UART_BASE, layout::UART_SIZE])?;
    fdt.property_array_u32(
        "interrupts",
        &[GIC_FDT_IRQ_TYPE_SPI, layout::UART_SPI, IRQ_TYPE_LEVEL_HIGH],
    )?;
    fdt.property_array_u32("clocks", &[PHANDLE_CLK, PHANDLE_CLK])?;
    fdt.property_string_list(
        "clock-names",
        vec!["uartclk".to_owned(), "apb_pclk".to_owned()],
    )?;
    fdt.end_node(uart)?;

    fdt.end_node(root)?;
    fdt.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A minimal reader of the structure block: path -> property -> value.
    fn parse(blob: &[u8]) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
        let be32 = |at: usize| u32::from_be_bytes(blob[at..at + 4].try_into().unwrap());
        assert_eq!(be32(0), 0xd00d_feed);
        assert_eq!(be32(4) as usize, blob.len());
        let (structs, strings) = (be32(8) as usize, be32(12) as usize);
        let mut out = BTreeMap::new();
        let mut path: Vec<String> = Vec::new();
        let mut at = structs;
        loop {
            let token = be32(at);
            at += 4;
            match token {
                1 => {
                    let end = at + blob[at..].iter().position(|&b| b == 0).unwrap();
                    path.push(String::from_utf8(blob[at..end].to_vec()).unwrap());
                    at = (end + 1).next_multiple_of(4);
                    out.insert(path.join("/"), BTreeMap::new());
                }
                2 => {
                    path.pop();
                }
                3 => {
                    let (len, name_off) = (be32(at) as usize, be32(at + 4) as usize);
                    at += 8;
                    let n = strings + name_off;
                    let name_end = n + blob[n..].iter().position(|&b| b == 0).unwrap();
                    let name = String::from_utf8(blob[n..name_end].to_vec()).unwrap();
                    out.get_mut(&path.join("/"))
                        .unwrap()
                        .insert(name, blob[at..at + len].to_vec());
                    at = (at + len).next_multiple_of(4);
                }
                4 => {}
                9 => break,
                t => panic!("bad token {t}"),
            }
        }
        out
    }

    fn cells(v: &[u8]) -> Vec<u32> {
        v.chunks(4).map(|c| u32::from_be_bytes(c.try_into().unwrap())).collect()
    }

    fn cfg(cpus: u32, initrd: Option<(u64, u64)>) -> FdtConfig {
        FdtConfig { cpus, mem_size: 256 << 20, cmdline: "console=ttyAMA0 quiet".into(), initrd }
    }

    #[test]
    fn describes_memory_console_and_cmdline() {
        let t = parse(&create(&cfg(1, Some((0x4f00_0000, 0x1000)))).unwrap());
        let chosen = &t["/chosen"];
        assert_eq!(chosen["bootargs"], b"console=ttyAMA0 quiet\0");
        assert_eq!(chosen["stdout-path"], b"/pl011@9000000\0");
        assert_eq!(cells(&chosen["linux,initrd-start"]), [0, 0x4f00_0000]);
        assert_eq!(cells(&chosen["linux,initrd-end"]), [0, 0x4f00_1000]);
        assert_eq!(cells(&t["/memory@40000000"]["reg"]), [0, 0x4000_0000, 0, 256 << 20]);
        let uart = &t["/pl011@9000000"];
        assert_eq!(uart["compatible"], b"arm,pl011\0arm,primecell\0");
        assert_eq!(cells(&uart["interrupts"]), [0, 1, 4]);
        assert_eq!(cells(&uart["clocks"]), [2, 2]);
        assert_eq!(cells(&t["/apb-pclk"]["clock-frequency"]), [24_000_000]);
        assert_eq!(cells(&t["/apb-pclk"]["phandle"]), [2]);
    }

    #[test]
    fn no_initrd_no_initrd_properties() {
        let t = parse(&create(&cfg(1, None)).unwrap());
        assert!(!t["/chosen"].contains_key("linux,initrd-start"));
    }

    #[test]
    fn one_cpu_node_per_vcpu_and_redistributors_to_match() {
        for n in 1..=4 {
            let t = parse(&create(&cfg(n, None)).unwrap());
            let cpus: Vec<_> = t.keys().filter(|k| k.starts_with("/cpus/cpu@")).collect();
            assert_eq!(cpus.len(), n as usize);
            for i in 0..n {
                let c = &t[&format!("/cpus/cpu@{i:x}")];
                assert_eq!(cells(&c["reg"]), [i]);
                assert_eq!(c["enable-method"], b"psci\0");
            }
            let reg = cells(&t["/intc@8000000"]["reg"]);
            assert_eq!(reg, [0, 0x0800_0000, 0, 0x1_0000, 0, 0x080A_0000, 0, 0x2_0000 * n]);
        }
    }

    #[test]
    fn gic_timer_psci() {
        let t = parse(&create(&cfg(2, None)).unwrap());
        assert_eq!(cells(&t[""]["interrupt-parent"]), [1]);
        let gic = &t["/intc@8000000"];
        assert_eq!(gic["compatible"], b"arm,gic-v3\0");
        assert!(gic.contains_key("interrupt-controller"));
        assert_eq!(cells(&gic["phandle"]), [1]);
        assert_eq!(cells(&gic["interrupts"]), [1, 9, 4]);
        assert_eq!(
            cells(&t["/timer"]["interrupts"]),
            [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]
        );
        assert_eq!(t["/psci"]["method"], b"hvc\0");
    }
}
