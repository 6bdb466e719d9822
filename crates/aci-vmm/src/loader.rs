//! Boot step: load the kernel, the initrd, the command line, the zero page and the MP table
//! into guest memory, and say where the vCPU starts.
//!
//! Both formats boot through the Linux 64-bit boot protocol (no firmware): an ELF `vmlinux` at
//! its entry point (`startup_64`), a bzImage at its protected-mode kernel plus 0x200 (the
//! 64-bit entry of the decompressor).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use linux_loader::loader::{bzimage::BzImage, elf::Elf, KernelLoader};
use vm_memory::{Bytes, GuestAddress};

use crate::boot_params::{build_boot_params, BootParamsError, BootParamsInput, InitrdPlacement};
use crate::layout;
use crate::memory::GuestMem;
use crate::mptable::{build_mptable, MpTableError};

/// Offset of the 64-bit entry point from the start of a bzImage's protected-mode kernel.
const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;
/// Offset of the setup header magic (`HdrS`) in a bzImage.
const BZIMAGE_MAGIC_OFFSET: usize = 0x202;
/// Highest initrd end address for a kernel that does not state one.
const DEFAULT_INITRD_ADDR_MAX: u64 = 0x7fff_ffff;
const PAGE_SIZE: u64 = 0x1000;

/// Why loading failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The kernel or initrd file could not be opened or read.
    #[error("could not read {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The kernel is neither an ELF nor a bzImage.
    #[error("{0} is neither an ELF vmlinux nor a bzImage")]
    UnknownKernelFormat(PathBuf),
    /// linux-loader failed.
    #[error("could not load the kernel into guest memory")]
    LoadKernel(#[source] linux_loader::loader::Error),
    /// The command line is too long or has a NUL in it.
    #[error("the kernel command line is invalid (longer than {max} bytes or contains NUL)")]
    InvalidCmdline {
        /// Longest accepted length.
        max: usize,
    },
    /// The initrd does not fit between the kernel and the top of low memory.
    #[error("the initrd of {size} bytes does not fit in guest memory")]
    InitrdTooLarge {
        /// Its size.
        size: u64,
    },
    /// Writing to guest memory failed.
    #[error("could not write the {0} into guest memory")]
    WriteGuest(&'static str, #[source] vm_memory::GuestMemoryError),
    /// The zero page could not be built.
    #[error("could not build boot_params")]
    BootParams(#[from] BootParamsError),
    /// The MP table could not be built.
    #[error("could not build the MP table")]
    MpTable(#[from] MpTableError),
}

/// The kernel image formats this loader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// An uncompressed ELF `vmlinux`.
    Elf,
    /// A compressed `bzImage`.
    BzImage,
}

/// Recognises the image format from its first bytes (at least 0x206 for a bzImage).
pub fn detect_format(head: &[u8]) -> Option<KernelFormat> {
    if head.starts_with(b"\x7fELF") {
        return Some(KernelFormat::Elf);
    }
    let magic = head.get(BZIMAGE_MAGIC_OFFSET..BZIMAGE_MAGIC_OFFSET + 4)?;
    (magic == b"HdrS").then_some(KernelFormat::BzImage)
}

/// What the vCPU setup needs from loading.
#[derive(Debug, Clone, Copy)]
pub struct BootInfo {
    /// 64-bit entry point.
    pub entry: GuestAddress,
    /// The image format that was loaded.
    pub format: KernelFormat,
}

/// Inputs of [`load`].
#[derive(Debug)]
pub struct LoadInput<'a> {
    /// Kernel image path.
    pub kernel: &'a Path,
    /// Optional initrd path.
    pub initrd: Option<&'a Path>,
    /// Kernel command line.
    pub cmdline: &'a str,
    /// Guest RAM size.
    pub mem_bytes: u64,
    /// vCPU count, for the MP table.
    pub vcpus: u8,
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> LoadError + '_ {
    move |source| LoadError::ReadFile { path: path.to_path_buf(), source }
}

/// Loads everything the guest needs to start and returns its entry point.
pub fn load(mem: &GuestMem, input: &LoadInput<'_>) -> Result<BootInfo, LoadError> {
    let mut kernel = File::open(input.kernel).map_err(read_err(input.kernel))?;
    let mut head = [0u8; 0x210];
    let got = kernel.read(&mut head).map_err(read_err(input.kernel))?;
    let format = detect_format(&head[..got])
        .ok_or_else(|| LoadError::UnknownKernelFormat(input.kernel.to_path_buf()))?;
    kernel.seek(SeekFrom::Start(0)).map_err(read_err(input.kernel))?;
    let himem = Some(GuestAddress(layout::HIMEM_START));
    let loaded = match format {
        KernelFormat::Elf => Elf::load(mem, None, &mut kernel, himem),
        KernelFormat::BzImage => BzImage::load(mem, None, &mut kernel, himem),
    }
    .map_err(LoadError::LoadKernel)?;
    let entry = match format {
        KernelFormat::Elf => loaded.kernel_load,
        KernelFormat::BzImage => GuestAddress(loaded.kernel_load.0 + BZIMAGE_64BIT_ENTRY_OFFSET),
    };

    let cmdline_len = write_cmdline(mem, input.cmdline)?;
    let initrd_max = loaded
        .setup_header
        .map(|h| u64::from(h.initrd_addr_max))
        .filter(|max| *max != 0)
        .unwrap_or(DEFAULT_INITRD_ADDR_MAX);
    let initrd = match input.initrd {
        Some(path) => Some(load_initrd(mem, path, loaded.kernel_end, input.mem_bytes, initrd_max)?),
        None => None,
    };
    let params = build_boot_params(&BootParamsInput {
        setup_header: loaded.setup_header,
        mem_bytes: input.mem_bytes,
        cmdline: (layout::CMDLINE_ADDR, cmdline_len),
        initrd,
    })?;
    mem.write_obj(params, GuestAddress(layout::ZERO_PAGE_ADDR))
        .map_err(|e| LoadError::WriteGuest("zero page", e))?;
    let mptable = build_mptable(layout::EBDA_ADDR, input.vcpus)?;
    mem.write_slice(&mptable, GuestAddress(layout::EBDA_ADDR))
        .map_err(|e| LoadError::WriteGuest("MP table", e))?;
    Ok(BootInfo { entry, format })
}

/// Writes the NUL-terminated command line and returns its length without the NUL.
fn write_cmdline(mem: &GuestMem, cmdline: &str) -> Result<usize, LoadError> {
    let max = layout::CMDLINE_MAX - 1;
    if cmdline.len() > max || cmdline.contains('\0') {
        return Err(LoadError::InvalidCmdline { max });
    }
    let mut bytes = cmdline.as_bytes().to_vec();
    bytes.push(0);
    mem.write_slice(&bytes, GuestAddress(layout::CMDLINE_ADDR))
        .map_err(|e| LoadError::WriteGuest("command line", e))?;
    Ok(cmdline.len())
}

/// Where an initrd of `size` bytes goes: page-aligned, as high as possible below both the end
/// of low RAM and `addr_max`, and above the kernel.
pub fn place_initrd(size: u64, kernel_end: u64, mem_bytes: u64, addr_max: u64) -> Option<u64> {
    let top = layout::low_ram_end(mem_bytes).min(addr_max.saturating_add(1));
    let addr = top.checked_sub(size)? & !(PAGE_SIZE - 1);
    (addr >= kernel_end).then_some(addr)
}

fn load_initrd(
    mem: &GuestMem,
    path: &Path,
    kernel_end: u64,
    mem_bytes: u64,
    addr_max: u64,
) -> Result<InitrdPlacement, LoadError> {
    let mut file = File::open(path).map_err(read_err(path))?;
    let size = file.metadata().map_err(read_err(path))?.len();
    let addr =
        place_initrd(size, kernel_end, mem_bytes, addr_max).ok_or(LoadError::InitrdTooLarge { size })?;
    let len = usize::try_from(size).map_err(|_| LoadError::InitrdTooLarge { size })?;
    mem.read_exact_volatile_from(GuestAddress(addr), &mut file, len)
        .map_err(|e| LoadError::WriteGuest("initrd", e))?;
    Ok(InitrdPlacement { addr, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_recognised_by_magic() {
        assert_eq!(detect_format(b"\x7fELF\x02\x01"), Some(KernelFormat::Elf));
        let mut bz = vec![0u8; 0x210];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(detect_format(&bz), Some(KernelFormat::BzImage));
        assert_eq!(detect_format(&[0u8; 0x210]), None);
        assert_eq!(detect_format(b"short"), None);
    }

    #[test]
    fn initrd_goes_to_the_top_of_low_memory() {
        let mem = 256 << 20;
        assert_eq!(place_initrd(0x1800, 0x200_0000, mem, u64::MAX), Some(mem - 0x2000));
        assert_eq!(place_initrd(0x1000, 0, 4 << 30, 0x7fff_ffff), Some(0x8000_0000 - 0x1000));
        assert_eq!(place_initrd(mem, 0x200_0000, mem, u64::MAX), None);
    }

    #[test]
    fn cmdline_is_nul_terminated_and_bounded() {
        let mem = crate::memory::create_guest_memory(16 << 20).unwrap();
        assert_eq!(write_cmdline(&mem, "console=ttyS0").unwrap(), 13);
        let mut buf = [0u8; 14];
        mem.read_slice(&mut buf, GuestAddress(layout::CMDLINE_ADDR)).unwrap();
        assert_eq!(&buf, b"console=ttyS0\0");
        assert!(write_cmdline(&mem, &"x".repeat(layout::CMDLINE_MAX)).is_err());
        assert!(write_cmdline(&mem, "a\0b").is_err());
    }
}
