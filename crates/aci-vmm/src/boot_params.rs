//! Boot step (part of loading): the Linux `boot_params` ("zero page") for the 64-bit boot
//! protocol: the e820 memory map, the command line pointer and the initrd location.

use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};

use crate::layout;

/// e820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type of reserved memory.
pub const E820_RESERVED: u32 = 2;
/// `HdrS`, the setup header magic.
const HDRS_MAGIC: u32 = 0x5372_6448;
/// The boot sector signature the kernel checks in `boot_flag`.
const BOOT_FLAG: u16 = 0xaa55;
/// "Undefined" boot loader id.
const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// Default physical alignment of the kernel (16 MiB).
const KERNEL_ALIGNMENT: u32 = 0x100_0000;

/// Why the zero page could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BootParamsError {
    /// More e820 entries than `boot_params` has room for.
    #[error("the e820 map has {0} entries, more than boot_params holds")]
    TooManyE820Entries(usize),
    /// An address does not fit the 32-bit field the boot protocol gives it.
    #[error("{what} at {addr:#x} does not fit the 32-bit boot protocol field")]
    AddressTooHigh {
        /// Which field.
        what: &'static str,
        /// The address.
        addr: u64,
    },
}

/// One entry of the e820 map: `(start, length, type)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// [`E820_RAM`] or [`E820_RESERVED`].
    pub kind: u32,
}

/// The e820 map for `mem_bytes` of RAM: conventional memory below the EBDA, the EBDA and
/// BIOS area reserved, then RAM from 1 MiB up to the MMIO gap and above 4 GiB.
pub fn e820_map(mem_bytes: u64) -> Vec<E820Entry> {
    let mut map = vec![
        E820Entry { addr: 0, size: layout::EBDA_ADDR, kind: E820_RAM },
        E820Entry {
            addr: layout::EBDA_ADDR,
            size: layout::HIMEM_START - layout::EBDA_ADDR,
            kind: E820_RESERVED,
        },
    ];
    for (start, len) in layout::ram_ranges(mem_bytes) {
        let (start, len) = if start == 0 {
            (layout::HIMEM_START, len.saturating_sub(layout::HIMEM_START))
        } else {
            (start, len)
        };
        if len > 0 {
            map.push(E820Entry { addr: start, size: len, kind: E820_RAM });
        }
    }
    map
}

/// Where the initrd is in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitrdPlacement {
    /// Guest-physical address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Inputs of [`build_boot_params`].
#[derive(Debug, Clone, Copy)]
pub struct BootParamsInput {
    /// The bzImage's own setup header, or `None` for an ELF vmlinux.
    pub setup_header: Option<setup_header>,
    /// Guest RAM size.
    pub mem_bytes: u64,
    /// Command line address and length without the NUL.
    pub cmdline: (u64, usize),
    /// The initrd, if any.
    pub initrd: Option<InitrdPlacement>,
}

fn to_u32(what: &'static str, addr: u64) -> Result<u32, BootParamsError> {
    u32::try_from(addr).map_err(|_| BootParamsError::AddressTooHigh { what, addr })
}

/// Builds the zero page.
pub fn build_boot_params(input: &BootParamsInput) -> Result<boot_params, BootParamsError> {
    let mut params = boot_params::default();
    if let Some(header) = input.setup_header {
        params.hdr = header;
    } else {
        params.hdr.header = HDRS_MAGIC;
        params.hdr.boot_flag = BOOT_FLAG;
        params.hdr.kernel_alignment = KERNEL_ALIGNMENT;
    }
    params.hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    params.hdr.cmd_line_ptr = to_u32("command line", input.cmdline.0)?;
    params.hdr.cmdline_size = to_u32("command line size", input.cmdline.1 as u64)?;
    if let Some(initrd) = input.initrd {
        params.hdr.ramdisk_image = to_u32("initrd", initrd.addr)?;
        params.hdr.ramdisk_size = to_u32("initrd size", initrd.size)?;
    }
    let map = e820_map(input.mem_bytes);
    if map.len() > params.e820_table.len() {
        return Err(BootParamsError::TooManyE820Entries(map.len()));
    }
    for (slot, entry) in params.e820_table.iter_mut().zip(&map) {
        *slot = boot_e820_entry { addr: entry.addr, size: entry.size, type_: entry.kind };
    }
    params.e820_entries =
        u8::try_from(map.len()).map_err(|_| BootParamsError::TooManyE820Entries(map.len()))?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e820_skips_the_bios_hole_and_the_mmio_gap() {
        let map = e820_map(256 << 20);
        assert_eq!(map.len(), 3);
        assert_eq!(map[0], E820Entry { addr: 0, size: 0x9fc00, kind: E820_RAM });
        assert_eq!(map[1].kind, E820_RESERVED);
        assert_eq!(map[2], E820Entry { addr: 0x10_0000, size: (256 << 20) - 0x10_0000, kind: 1 });

        let big = e820_map(4 << 30);
        assert_eq!(big.len(), 4);
        assert_eq!(big[2].addr + big[2].size, layout::MMIO_GAP_START);
        assert_eq!(big[3], E820Entry { addr: 1 << 32, size: (4 << 30) - (3 << 30), kind: 1 });
    }

    #[test]
    fn zero_page_points_at_cmdline_and_initrd() {
        let input = BootParamsInput {
            setup_header: None,
            mem_bytes: 128 << 20,
            cmdline: (layout::CMDLINE_ADDR, 42),
            initrd: Some(InitrdPlacement { addr: 0x700_0000, size: 0x12345 }),
        };
        let params = build_boot_params(&input).unwrap();
        let hdr = params.hdr;
        assert_eq!({ hdr.header }, HDRS_MAGIC);
        assert_eq!({ hdr.boot_flag }, 0xaa55);
        assert_eq!({ hdr.type_of_loader }, 0xff);
        assert_eq!({ hdr.cmd_line_ptr }, 0x20000);
        assert_eq!({ hdr.cmdline_size }, 42);
        assert_eq!({ hdr.ramdisk_image }, 0x700_0000);
        assert_eq!({ hdr.ramdisk_size }, 0x12345);
        assert_eq!(params.e820_entries, 3);
        let last = params.e820_table[2];
        assert_eq!(({ last.addr }, { last.size }), (0x10_0000, (128 << 20) - 0x10_0000));
    }

    #[test]
    fn bzimage_header_is_kept() {
        let mut header = setup_header { version: 0x20f, ..Default::default() };
        header.header = HDRS_MAGIC;
        let input = BootParamsInput {
            setup_header: Some(header),
            mem_bytes: 64 << 20,
            cmdline: (layout::CMDLINE_ADDR, 1),
            initrd: None,
        };
        let params = build_boot_params(&input).unwrap();
        assert_eq!({ params.hdr.version }, 0x20f);
        assert_eq!({ params.hdr.ramdisk_image }, 0);
    }
}
