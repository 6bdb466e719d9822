//! Boot step: guest memory. Allocates the RAM ranges of [`crate::layout::ram_ranges`] and
//! hands each to KVM as a memory slot.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{GuestAddress, GuestMemory, GuestMemoryMmap, GuestMemoryRegion};

use crate::layout;

/// The guest's RAM.
pub type GuestMem = GuestMemoryMmap<()>;

/// Why guest memory could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The requested size is below the minimum the boot layout needs.
    #[error("guest memory of {0} bytes is too small (minimum 16 MiB)")]
    TooSmall(u64),
    /// A range does not fit the host's address size.
    #[error("guest memory range of {0} bytes does not fit in host memory")]
    RangeTooLarge(u64),
    /// mmap of the guest RAM failed.
    #[error("could not allocate guest memory")]
    Allocate(#[source] vm_memory::mmap::FromRangesError),
    /// KVM refused a memory slot.
    #[error("could not register guest memory slot {slot} with KVM")]
    RegisterSlot {
        /// The slot number.
        slot: u32,
        /// The KVM error.
        #[source]
        source: kvm_ioctls::Error,
    },
}

/// Smallest guest RAM the layout works with.
pub const MIN_MEMORY: u64 = 16 << 20;

/// Allocates `mem_bytes` of guest RAM, with the MMIO gap below 4 GiB left out.
pub fn create_guest_memory(mem_bytes: u64) -> Result<GuestMem, MemoryError> {
    if mem_bytes < MIN_MEMORY {
        return Err(MemoryError::TooSmall(mem_bytes));
    }
    let ranges = layout::ram_ranges(mem_bytes)
        .into_iter()
        .map(|(start, len)| {
            usize::try_from(len)
                .map(|len| (GuestAddress(start), len))
                .map_err(|_| MemoryError::RangeTooLarge(len))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mem = GuestMemoryMmap::from_ranges(&ranges).map_err(MemoryError::Allocate)?;
    for region in mem.iter() {
        advise_huge_pages(region.as_ptr(), region.len());
    }
    Ok(mem)
}

/// Asks for transparent huge pages: fewer host page faults while loading the kernel, and
/// 2 MiB nested mappings for the guest. Only a hint; failure changes nothing.
fn advise_huge_pages(addr: *mut u8, len: u64) {
    let Ok(len) = usize::try_from(len) else {
        return;
    };
    // SAFETY: the range is exactly one live anonymous mapping owned by the guest memory;
    // MADV_HUGEPAGE changes no contents and no mapping, only how faults are served.
    unsafe { libc::madvise(addr.cast(), len, libc::MADV_HUGEPAGE) };
}

/// Registers every region of `mem` with the VM, one slot each.
///
/// The caller must keep `mem` alive (and mapped) for as long as the VM's vCPUs can run.
pub fn register_memory(vm: &VmFd, mem: &GuestMem) -> Result<(), MemoryError> {
    for (slot, region) in (0u32..).zip(mem.iter()) {
        let kvm_region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: region.as_ptr() as u64,
        };
        // SAFETY: the region describes a live mmap owned by `mem`, which the caller keeps
        // alive while the VM runs (the `Vm` stops its vCPUs before dropping the memory).
        unsafe { vm.set_user_memory_region(kvm_region) }
            .map_err(|source| MemoryError::RegisterSlot { slot, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_smaller_than_the_layout_is_refused() {
        assert!(matches!(create_guest_memory(1 << 20), Err(MemoryError::TooSmall(_))));
    }

    #[test]
    fn memory_has_one_region_below_the_gap() {
        let mem = create_guest_memory(64 << 20).unwrap();
        assert_eq!(mem.num_regions(), 1);
        assert_eq!(mem.last_addr(), GuestAddress((64 << 20) - 1));
    }
}
