//! Boot step (per vCPU): registers for entering the kernel in 64-bit long mode.
//!
//! The boot vCPU starts at the kernel's 64-bit entry with paging on (an identity map of the
//! first GiB), a flat GDT, interrupts off and RSI pointing at `boot_params`. Application
//! processors get the same MSRs, FPU and LAPIC setup but keep their reset registers: the
//! guest wakes them with INIT/SIPI through the in-kernel LAPIC.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment, kvm_sregs};
use vm_memory::{Bytes, GuestAddress};

use crate::layout;
use crate::memory::GuestMem;

/// CR0: protection enable.
const CR0_PE: u64 = 1;
/// CR0: paging.
const CR0_PG: u64 = 1 << 31;
/// CR4: physical address extension.
const CR4_PAE: u64 = 1 << 5;
/// EFER: long mode enable.
const EFER_LME: u64 = 1 << 8;
/// EFER: long mode active.
const EFER_LMA: u64 = 1 << 10;
/// Page table entry: present and writable.
const PTE_PRESENT_RW: u64 = 0b11;
/// Page directory entry: 2 MiB page.
const PDE_PAGE_SIZE: u64 = 1 << 7;

/// Why registers could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum RegsError {
    /// Writing the GDT, IDT or page tables failed.
    #[error("could not write the {0} into guest memory")]
    WriteTables(&'static str, #[source] vm_memory::GuestMemoryError),
}

/// The boot GDT: null, 64-bit code, data, TSS (selectors 0x08, 0x10, 0x18).
pub const GDT: [u64; 4] =
    [0, gdt_entry(0xa09b, 0, 0xfffff), gdt_entry(0xc093, 0, 0xfffff), gdt_entry(0x808b, 0, 0xfffff)];

/// Encodes a GDT descriptor from its flags (access byte in bits 0..8, flags in 12..16), base
/// and limit.
pub const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    let base = base as u64;
    let limit = limit as u64;
    let flags = flags as u64;
    ((base & 0xff00_0000) << 32)
        | ((flags & 0xf0ff) << 40)
        | ((limit & 0x000f_0000) << 32)
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0x0000_ffff)
}

/// The `kvm_segment` KVM wants for GDT descriptor `entry` at `index`.
pub fn segment_from_gdt(entry: u64, index: u16) -> kvm_segment {
    let bits = |shift: u64, mask: u64| ((entry >> shift) & mask) as u8;
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let limit = (entry & 0xffff) | ((entry >> 32) & 0x000f_0000);
    let g = bits(55, 1);
    kvm_segment {
        base,
        // With 4 KiB granularity, KVM wants the limit in bytes.
        limit: if g == 1 { ((limit as u32) << 12) | 0xfff } else { limit as u32 },
        selector: index * 8,
        type_: bits(40, 0xf),
        present: bits(47, 1),
        dpl: bits(45, 0x3),
        db: bits(54, 1),
        s: bits(44, 1),
        l: bits(53, 1),
        g,
        avl: bits(52, 1),
        unusable: u8::from(bits(47, 1) == 0),
        padding: 0,
    }
}

/// Writes the GDT, an empty IDT and identity-mapping page tables for the first GiB.
pub fn write_boot_tables(mem: &GuestMem) -> Result<(), RegsError> {
    for (i, entry) in (0u64..).zip(GDT) {
        mem.write_obj(entry, GuestAddress(layout::GDT_ADDR + 8 * i))
            .map_err(|e| RegsError::WriteTables("GDT", e))?;
    }
    mem.write_obj(0u64, GuestAddress(layout::IDT_ADDR)).map_err(|e| RegsError::WriteTables("IDT", e))?;
    mem.write_obj(layout::PDPT_ADDR | PTE_PRESENT_RW, GuestAddress(layout::PML4_ADDR))
        .map_err(|e| RegsError::WriteTables("PML4", e))?;
    mem.write_obj(layout::PD_ADDR | PTE_PRESENT_RW, GuestAddress(layout::PDPT_ADDR))
        .map_err(|e| RegsError::WriteTables("PDPT", e))?;
    let pd: Vec<u8> =
        (0u64..512).flat_map(|i| ((i << 21) | PDE_PAGE_SIZE | PTE_PRESENT_RW).to_le_bytes()).collect();
    mem.write_slice(&pd, GuestAddress(layout::PD_ADDR))
        .map_err(|e| RegsError::WriteTables("page directory", e))?;
    Ok(())
}

/// Special registers for long mode, starting from the vCPU's current `sregs`.
pub fn long_mode_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    let code = segment_from_gdt(GDT[1], 1);
    let data = segment_from_gdt(GDT[2], 2);
    let tss = segment_from_gdt(GDT[3], 3);
    sregs.gdt.base = layout::GDT_ADDR;
    sregs.gdt.limit = (std::mem::size_of_val(&GDT) - 1) as u16;
    sregs.idt.base = layout::IDT_ADDR;
    sregs.idt.limit = 7;
    sregs.cs = code;
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = tss;
    sregs.cr0 |= CR0_PE | CR0_PG;
    sregs.cr3 = layout::PML4_ADDR;
    sregs.cr4 |= CR4_PAE;
    sregs.efer |= EFER_LME | EFER_LMA;
    sregs
}

/// General registers for the boot vCPU: entry point, stack and `boot_params` in RSI.
pub fn boot_regs(entry: GuestAddress) -> kvm_regs {
    kvm_regs {
        rflags: 0x2,
        rip: entry.0,
        rsp: layout::BOOT_STACK_TOP,
        rbp: layout::BOOT_STACK_TOP,
        rsi: layout::ZERO_PAGE_ADDR,
        ..Default::default()
    }
}

/// FPU state after reset: x87 control word 0x37f, MXCSR 0x1f80.
pub fn boot_fpu() -> kvm_fpu {
    kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_entries_encode_like_the_kernel_expects() {
        assert_eq!(GDT[1], 0x00af_9b00_0000_ffff);
        assert_eq!(GDT[2], 0x00cf_9300_0000_ffff);
        assert_eq!(GDT[3], 0x008f_8b00_0000_ffff);
    }

    #[test]
    fn segments_decode_from_the_gdt() {
        let code = segment_from_gdt(GDT[1], 1);
        assert_eq!((code.selector, code.type_, code.l, code.db, code.present), (8, 0xb, 1, 0, 1));
        assert_eq!((code.s, code.g, code.limit, code.base), (1, 1, 0xffff_ffff, 0));
        let data = segment_from_gdt(GDT[2], 2);
        assert_eq!((data.selector, data.type_, data.l, data.db), (0x10, 0x3, 0, 1));
        let tss = segment_from_gdt(GDT[3], 3);
        assert_eq!((tss.selector, tss.type_, tss.s, tss.unusable), (0x18, 0xb, 0, 0));
    }

    #[test]
    fn long_mode_is_enabled_with_identity_tables() {
        let mem = crate::memory::create_guest_memory(16 << 20).unwrap();
        write_boot_tables(&mem).unwrap();
        let pde: u64 = mem.read_obj(GuestAddress(layout::PD_ADDR + 8 * 3)).unwrap();
        assert_eq!(pde, (3 << 21) | 0x83);
        let sregs = long_mode_sregs(kvm_sregs::default());
        assert_eq!(sregs.cr3, layout::PML4_ADDR);
        assert_eq!(sregs.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
        assert_eq!(sregs.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
        let regs = boot_regs(GuestAddress(0x100_0000));
        assert_eq!((regs.rip, regs.rsi), (0x100_0000, layout::ZERO_PAGE_ADDR));
    }
}
