//! The guest-physical memory map used for direct 64-bit boot.
//!
//! ```text
//! 0x0000_0500  GDT (4 entries)          0x0000_0520  IDT (empty)
//! 0x0000_7000  boot_params (zero page)  0x0000_8ff0  boot stack top
//! 0x0000_9000  PML4   0x0000_a000 PDPT  0x0000_b000  PD (1 GiB identity map, 2 MiB pages)
//! 0x0002_0000  kernel command line      0x0009_fc00  MP table (start of EBDA)
//! 0x0010_0000  high memory: kernel (bzImage at 1 MiB, vmlinux at its own p_paddr)
//! ...          initrd at the top of low RAM
//! 0xc000_0000  32-bit MMIO gap (IOAPIC 0xfec0_0000, LAPIC 0xfee0_0000, KVM TSS/identity map)
//! 0x1_0000_0000 RAM above 4 GiB when the guest has more than 3 GiB
//! ```

/// Global descriptor table.
pub const GDT_ADDR: u64 = 0x500;
/// Interrupt descriptor table (a single null entry).
pub const IDT_ADDR: u64 = 0x520;
/// The Linux `boot_params` structure ("zero page"); its address goes in RSI.
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// Initial stack pointer.
pub const BOOT_STACK_TOP: u64 = 0x8ff0;
/// Page-map level 4 table.
pub const PML4_ADDR: u64 = 0x9000;
/// Page-directory-pointer table.
pub const PDPT_ADDR: u64 = 0xa000;
/// Page directory with 512 2-MiB entries.
pub const PD_ADDR: u64 = 0xb000;
/// Kernel command line.
pub const CMDLINE_ADDR: u64 = 0x20000;
/// Largest command line x86 Linux accepts, including the terminating NUL.
pub const CMDLINE_MAX: usize = 2048;
/// Start of the extended BIOS data area; the MP table lives here.
pub const EBDA_ADDR: u64 = 0x9fc00;
/// First byte of high memory (1 MiB).
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the 32-bit MMIO gap.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
/// End of the 32-bit MMIO gap (4 GiB).
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// KVM's three-page TSS region (needed on Intel; harmless elsewhere), inside the gap.
pub const KVM_TSS_ADDR: u64 = 0xfffb_d000;
/// KVM's one-page identity-map region, just below the TSS.
pub const KVM_IDENTITY_MAP_ADDR: u64 = 0xfffb_c000;
/// The IOAPIC's MMIO base.
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;
/// The local APIC's MMIO base.
pub const LAPIC_ADDR: u32 = 0xfee0_0000;

// The fixed structures must not overlap.
const _: () = assert!(CMDLINE_ADDR + CMDLINE_MAX as u64 <= EBDA_ADDR);
const _: () = assert!(KVM_IDENTITY_MAP_ADDR + 0x1000 <= KVM_TSS_ADDR);
const _: () = assert!(KVM_IDENTITY_MAP_ADDR > LAPIC_ADDR as u64 + 0x1000);
const _: () = assert!(KVM_TSS_ADDR + 3 * 0x1000 <= MMIO_GAP_END);

/// The RAM ranges `(start, length)` for `mem_bytes` of guest memory, split around the MMIO gap.
pub fn ram_ranges(mem_bytes: u64) -> Vec<(u64, u64)> {
    let low = mem_bytes.min(MMIO_GAP_START);
    let mut ranges = vec![(0, low)];
    if mem_bytes > low {
        ranges.push((MMIO_GAP_END, mem_bytes - low));
    }
    ranges
}

/// End of the RAM below the MMIO gap.
pub fn low_ram_end(mem_bytes: u64) -> u64 {
    mem_bytes.min(MMIO_GAP_START)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_is_split_around_the_mmio_gap() {
        assert_eq!(ram_ranges(256 << 20), vec![(0, 256 << 20)]);
        assert_eq!(ram_ranges(MMIO_GAP_START), vec![(0, MMIO_GAP_START)]);
        let four_gib = 4u64 << 30;
        assert_eq!(
            ram_ranges(four_gib),
            vec![(0, MMIO_GAP_START), (MMIO_GAP_END, four_gib - MMIO_GAP_START)]
        );
        assert_eq!(low_ram_end(four_gib), MMIO_GAP_START);
    }

    #[test]
    fn boot_tables_are_in_address_order() {
        let tables = [GDT_ADDR, IDT_ADDR, ZERO_PAGE_ADDR, PML4_ADDR, PDPT_ADDR, PD_ADDR];
        for pair in tables.windows(2) {
            assert!(pair[0] < pair[1]);
        }
    }
}
