// SPDX-License-Identifier: GPL-2.0
//! A PL011 UART, transmit side only, enough for Linux's `amba-pl011`
//! driver and its console: characters written to `UARTDR` go straight out,
//! the transmit FIFO is always empty, the receive FIFO always empty. The
//! interrupt model is QEMU's: transmitting sets the TX interrupt, `UARTICR`
//! clears it, the line is raised while a masked-in interrupt is set.

use std::io::Write;

const DR: u64 = 0x000;
const RSR: u64 = 0x004;
const FR: u64 = 0x018;
const ILPR: u64 = 0x020;
const IBRD: u64 = 0x024;
const FBRD: u64 = 0x028;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IFLS: u64 = 0x034;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
const ICR: u64 = 0x044;
const DMACR: u64 = 0x048;
const ID_BASE: u64 = 0xfe0;

const FR_RXFE: u32 = 1 << 4;
const FR_TXFE: u32 = 1 << 7;
const INT_TX: u32 = 1 << 5;
const INT_MASK: u32 = 0x7ff;

/// UARTPeriphID0-3 then UARTPCellID0-3 (PL011 r1p5).
const ID: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// The UART's state; `out` receives what the guest transmits.
#[derive(Debug)]
pub struct Pl011<W: Write> {
    out: W,
    regs: Regs,
}

#[derive(Debug, Default)]
struct Regs {
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    int_level: u32,
    dmacr: u32,
}

impl<W: Write> Pl011<W> {
    /// A UART in its reset state writing to `out`.
    pub fn new(out: W) -> Self {
        Pl011 {
            out,
            regs: Regs { cr: 0x300, ifls: 0x12, ..Regs::default() },
        }
    }

    /// Whether the interrupt line is asserted.
    pub fn irq_level(&self) -> bool {
        self.regs.int_level & self.regs.imsc != 0
    }

    /// A guest read of `data.len()` bytes at `offset`; unknown registers
    /// read as zero.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        let r = &self.regs;
        let v = match offset {
            DR | RSR => 0,
            FR => FR_TXFE | FR_RXFE,
            ILPR => r.ilpr,
            IBRD => r.ibrd,
            FBRD => r.fbrd,
            LCR_H => r.lcr_h,
            CR => r.cr,
            IFLS => r.ifls,
            IMSC => r.imsc,
            RIS => r.int_level,
            MIS => r.int_level & r.imsc,
            DMACR => r.dmacr,
            o if (ID_BASE..ID_BASE + 32).contains(&o) && o % 4 == 0 => {
                u32::from(ID[((o - ID_BASE) / 4) as usize])
            }
            _ => 0,
        };
        let bytes = v.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(0);
        }
    }

    /// A guest write at `offset`; returns whether the interrupt line
    /// changed. Output errors are ignored: the guest's console must not
    /// stop because stdout is closed.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> bool {
        let before = self.irq_level();
        let mut b = [0u8; 4];
        for (d, s) in b.iter_mut().zip(data) {
            *d = *s;
        }
        let v = u32::from_le_bytes(b);
        let r = &mut self.regs;
        match offset {
            DR => {
                let c = [v as u8];
                let _ = self.out.write_all(&c);
                if c[0] == b'\n' {
                    let _ = self.out.flush();
                }
                r.int_level |= INT_TX;
            }
            RSR => {}
            ILPR => r.ilpr = v,
            IBRD => r.ibrd = v,
            FBRD => r.fbrd = v,
            LCR_H => r.lcr_h = v,
            CR => r.cr = v,
            IFLS => r.ifls = v,
            IMSC => r.imsc = v & INT_MASK,
            ICR => r.int_level &= !v,
            DMACR => r.dmacr = v,
            _ => {}
        }
        before != self.irq_level()
    }

    /// Flushes what the guest wrote.
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read32(u: &mut Pl011<Vec<u8>>, off: u64) -> u32 {
        let mut d = [0u8; 4];
        u.read(off, &mut d);
        u32::from_le_bytes(d)
    }

    #[test]
    fn transmits_what_the_guest_writes() {
        let mut u = Pl011::new(Vec::new());
        for c in b"hi\n" {
            u.write(DR, &[*c, 0, 0, 0]);
        }
        assert_eq!(u.out, b"hi\n");
    }

    #[test]
    fn fifos_always_empty_never_full() {
        let mut u = Pl011::new(Vec::new());
        assert_eq!(read32(&mut u, FR), FR_TXFE | FR_RXFE);
        assert_eq!(read32(&mut u, DR), 0);
    }

    #[test]
    fn primecell_ids_identify_a_pl011() {
        let mut u = Pl011::new(Vec::new());
        let id: Vec<u32> = (0..8).map(|i| read32(&mut u, 0xfe0 + 4 * i)).collect();
        assert_eq!(id, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
    }

    #[test]
    fn tx_interrupt_follows_mask_and_clear() {
        let mut u = Pl011::new(Vec::new());
        assert!(!u.write(DR, b"x"));
        assert!(!u.irq_level());
        assert_eq!(read32(&mut u, RIS), INT_TX);
        assert!(u.write(IMSC, &INT_TX.to_le_bytes()));
        assert!(u.irq_level());
        assert_eq!(read32(&mut u, MIS), INT_TX);
        assert!(u.write(ICR, &INT_TX.to_le_bytes()));
        assert!(!u.irq_level());
        assert!(u.write(DR, b"y"));
    }

    #[test]
    fn control_registers_read_back() {
        let mut u = Pl011::new(Vec::new());
        assert_eq!(read32(&mut u, CR), 0x300);
        u.write(IBRD, &13u32.to_le_bytes());
        u.write(LCR_H, &0x70u32.to_le_bytes());
        u.write(CR, &0x301u32.to_le_bytes());
        assert_eq!(read32(&mut u, IBRD), 13);
        assert_eq!(read32(&mut u, LCR_H), 0x70);
        assert_eq!(read32(&mut u, CR), 0x301);
        // Narrow accesses and unknown offsets are harmless.
        let mut b = [0xffu8; 1];
        u.read(0x800, &mut b);
        assert_eq!(b, [0]);
        u.write(0x800, &[1]);
    }
}
