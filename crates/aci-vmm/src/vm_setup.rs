//! Boot step 3: the KVM VM itself: TSS and identity-map addresses, in-kernel irqchip (PIC,
//! IOAPIC, LAPICs) and PIT, and the guest memory slots.

use kvm_bindings::{kvm_pit_config, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Kvm, VmFd};

use crate::layout;
use crate::memory::{register_memory, GuestMem, MemoryError};

/// Why the VM could not be created.
#[derive(Debug, thiserror::Error)]
pub enum VmSetupError {
    /// KVM_CREATE_VM failed.
    #[error("could not create the KVM VM")]
    CreateVm(#[source] kvm_ioctls::Error),
    /// KVM_SET_TSS_ADDR failed.
    #[error("could not set the TSS address")]
    SetTssAddress(#[source] kvm_ioctls::Error),
    /// KVM_SET_IDENTITY_MAP_ADDR failed.
    #[error("could not set the identity map address")]
    SetIdentityMap(#[source] kvm_ioctls::Error),
    /// KVM_CREATE_IRQCHIP failed.
    #[error("could not create the in-kernel irqchip")]
    CreateIrqchip(#[source] kvm_ioctls::Error),
    /// KVM_CREATE_PIT2 failed.
    #[error("could not create the in-kernel PIT")]
    CreatePit(#[source] kvm_ioctls::Error),
    /// A memory slot could not be registered.
    #[error("could not register guest memory")]
    RegisterMemory(#[source] MemoryError),
}

/// Creates the VM with its irqchip, PIT and memory. Must run before any vCPU is created.
pub fn create_vm(kvm: &Kvm, mem: &GuestMem) -> Result<VmFd, VmSetupError> {
    let vm = kvm.create_vm().map_err(VmSetupError::CreateVm)?;
    // The constant is below 4 GiB, so it fits usize on every x86_64 host.
    vm.set_tss_address(layout::KVM_TSS_ADDR as usize).map_err(VmSetupError::SetTssAddress)?;
    vm.set_identity_map_address(layout::KVM_IDENTITY_MAP_ADDR).map_err(VmSetupError::SetIdentityMap)?;
    vm.create_irq_chip().map_err(VmSetupError::CreateIrqchip)?;
    let pit = kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, ..Default::default() };
    vm.create_pit2(pit).map_err(VmSetupError::CreatePit)?;
    register_memory(&vm, mem).map_err(VmSetupError::RegisterMemory)?;
    Ok(vm)
}
