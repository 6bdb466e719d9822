//! Boot step (per vCPU): model-specific registers at boot, as Firecracker sets them.

use kvm_bindings::{kvm_msr_entry, Msrs};

/// IA32_SYSENTER_CS.
const MSR_IA32_SYSENTER_CS: u32 = 0x174;
/// IA32_SYSENTER_ESP.
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
/// IA32_SYSENTER_EIP.
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
/// SYSCALL target and segments.
const MSR_STAR: u32 = 0xc000_0081;
/// 64-bit SYSCALL target.
const MSR_LSTAR: u32 = 0xc000_0082;
/// Compatibility-mode SYSCALL target.
const MSR_CSTAR: u32 = 0xc000_0083;
/// SYSCALL RFLAGS mask.
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
/// SWAPGS base.
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
/// Time-stamp counter.
const MSR_IA32_TSC: u32 = 0x10;
/// Miscellaneous features.
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
/// MISC_ENABLE: fast string operations.
const MISC_ENABLE_FAST_STRING: u64 = 1;
/// Default memory type and MTRR enable.
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
/// MTRRs enabled, default type write-back.
const MTRR_ENABLE_WRITE_BACK: u64 = (1 << 11) | 6;

/// Why MSRs could not be set.
#[derive(Debug, thiserror::Error)]
pub enum MsrError {
    /// The MSR list could not be built.
    #[error("could not build the boot MSR list")]
    Build(#[source] vmm_sys_util::fam::Error),
    /// KVM_SET_MSRS failed.
    #[error("could not set the boot MSRs")]
    Set(#[source] kvm_ioctls::Error),
    /// KVM accepted only some MSRs.
    #[error("KVM set {set} of {wanted} boot MSRs")]
    Partial {
        /// How many KVM set.
        set: usize,
        /// How many were asked for.
        wanted: usize,
    },
}

/// The boot MSRs as `(index, value)`.
pub fn boot_msr_values() -> Vec<(u32, u64)> {
    vec![
        (MSR_IA32_SYSENTER_CS, 0),
        (MSR_IA32_SYSENTER_ESP, 0),
        (MSR_IA32_SYSENTER_EIP, 0),
        (MSR_STAR, 0),
        (MSR_CSTAR, 0),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_SYSCALL_MASK, 0),
        (MSR_LSTAR, 0),
        (MSR_IA32_TSC, 0),
        (MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITE_BACK),
    ]
}

/// Sets the boot MSRs on `vcpu`.
pub fn set_boot_msrs(vcpu: &kvm_ioctls::VcpuFd) -> Result<(), MsrError> {
    let entries: Vec<kvm_msr_entry> = boot_msr_values()
        .into_iter()
        .map(|(index, data)| kvm_msr_entry { index, data, ..Default::default() })
        .collect();
    let msrs = Msrs::from_entries(&entries).map_err(MsrError::Build)?;
    let set = vcpu.set_msrs(&msrs).map_err(MsrError::Set)?;
    if set != entries.len() {
        return Err(MsrError::Partial { set, wanted: entries.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_msrs_enable_mtrrs_and_fast_strings() {
        let msrs = boot_msr_values();
        assert!(msrs.contains(&(MSR_MTRR_DEF_TYPE, 0x806)));
        assert!(msrs.contains(&(MSR_IA32_MISC_ENABLE, 1)));
        let mut indexes: Vec<u32> = msrs.iter().map(|(i, _)| *i).collect();
        indexes.dedup();
        assert_eq!(indexes.len(), msrs.len());
    }
}
