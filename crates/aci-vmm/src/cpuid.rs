//! Boot step (per vCPU): the CPUID the guest sees.
//!
//! Starts from `KVM_GET_SUPPORTED_CPUID` and patches by hand what KVM leaves to the VMM: the
//! hypervisor bit (without it Linux does not look for kvm-clock), the TSC-deadline timer, the
//! vCPU's APIC id, and the KVM paravirt leaves. XSAVE is hidden: nested under QEMU 7.2 TCG the
//! guest's XSETBV is not forwarded correctly.

use kvm_bindings::{kvm_cpuid_entry2, CpuId};

/// Leaf 1 ECX: TSC-deadline timer.
pub const LEAF1_ECX_TSC_DEADLINE: u32 = 1 << 24;
/// Leaf 1 ECX: XSAVE.
pub const LEAF1_ECX_XSAVE: u32 = 1 << 26;
/// Leaf 1 ECX: OSXSAVE.
pub const LEAF1_ECX_OSXSAVE: u32 = 1 << 27;
/// Leaf 1 ECX: AVX (needs XSAVE).
pub const LEAF1_ECX_AVX: u32 = 1 << 28;
/// Leaf 1 ECX: running under a hypervisor.
pub const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 EDX: hyper-threading / multi-core package.
const LEAF1_EDX_HTT: u32 = 1 << 28;
/// Leaf 7 EBX: AVX2, AVX-512 family (all need XSAVE state).
const LEAF7_EBX_XSAVE_DEPENDENT: u32 = (1 << 5) | 0xdc23_0000;
/// The KVM signature leaf.
pub const KVM_SIGNATURE_LEAF: u32 = 0x4000_0000;
/// The KVM features leaf.
pub const KVM_FEATURES_LEAF: u32 = 0x4000_0001;
/// "KVMKVMKVM\0\0\0" as EBX, ECX, EDX.
const KVM_SIGNATURE: [u32; 3] = [0x4b4d_564b, 0x564b_4d56, 0x0000_004d];

/// Why CPUID could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum CpuidError {
    /// KVM_GET_SUPPORTED_CPUID failed.
    #[error("could not read the CPUID KVM supports")]
    GetSupported(#[source] kvm_ioctls::Error),
    /// Adding an entry overflowed the CPUID array.
    #[error("could not add a CPUID entry")]
    AddEntry(#[source] vmm_sys_util::fam::Error),
    /// KVM_SET_CPUID2 failed.
    #[error("could not set the vCPU's CPUID")]
    Set(#[source] kvm_ioctls::Error),
}

/// Patches `entries` (KVM's supported CPUID) for vCPU `cpu_index` of `vcpu_count`.
pub fn patch_entries(entries: &mut [kvm_cpuid_entry2], cpu_index: u8, vcpu_count: u8) {
    for entry in entries.iter_mut() {
        match entry.function {
            1 => {
                entry.ecx |= LEAF1_ECX_HYPERVISOR | LEAF1_ECX_TSC_DEADLINE;
                entry.ecx &= !(LEAF1_ECX_XSAVE | LEAF1_ECX_OSXSAVE | LEAF1_ECX_AVX);
                // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package.
                entry.ebx =
                    (entry.ebx & 0x0000_ffff) | (u32::from(cpu_index) << 24) | (u32::from(vcpu_count) << 16);
                if vcpu_count > 1 {
                    entry.edx |= LEAF1_EDX_HTT;
                }
            }
            7 if entry.index == 0 => entry.ebx &= !LEAF7_EBX_XSAVE_DEPENDENT,
            0xd => {
                // No XSAVE: no XSAVE state components either.
                (entry.eax, entry.ebx, entry.ecx, entry.edx) = (0, 0, 0, 0);
            }
            0xb | 0x1f => entry.edx = u32::from(cpu_index),
            0x8000_001e => entry.eax = u32::from(cpu_index),
            _ => {}
        }
    }
}

/// The KVM paravirt leaves, for a CPUID list that lacks them.
fn kvm_leaves() -> [kvm_cpuid_entry2; 2] {
    let [ebx, ecx, edx] = KVM_SIGNATURE;
    [
        kvm_cpuid_entry2 {
            function: KVM_SIGNATURE_LEAF,
            eax: KVM_FEATURES_LEAF,
            ebx,
            ecx,
            edx,
            ..Default::default()
        },
        kvm_cpuid_entry2 { function: KVM_FEATURES_LEAF, ..Default::default() },
    ]
}

/// KVM's supported CPUID patched for vCPU `cpu_index` of `vcpu_count`.
pub fn vcpu_cpuid(supported: &CpuId, cpu_index: u8, vcpu_count: u8) -> Result<CpuId, CpuidError> {
    let mut cpuid = supported.clone();
    if !cpuid.as_slice().iter().any(|e| e.function == KVM_SIGNATURE_LEAF) {
        for leaf in kvm_leaves() {
            cpuid.push(leaf).map_err(CpuidError::AddEntry)?;
        }
    }
    patch_entries(cpuid.as_mut_slice(), cpu_index, vcpu_count);
    Ok(cpuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            ecx: LEAF1_ECX_XSAVE | LEAF1_ECX_OSXSAVE | 1,
            ebx: 0xffff_ffff,
            eax: 7,
            ..Default::default()
        }
    }

    #[test]
    fn leaf1_gets_hypervisor_and_tsc_deadline_and_loses_xsave() {
        let mut entries = [entry(1, 0), entry(0xb, 0), entry(0xd, 0), entry(2, 0)];
        patch_entries(&mut entries, 3, 4);
        let ecx = entries[0].ecx;
        assert_ne!(ecx & LEAF1_ECX_HYPERVISOR, 0);
        assert_ne!(ecx & LEAF1_ECX_TSC_DEADLINE, 0);
        assert_eq!(ecx & (LEAF1_ECX_XSAVE | LEAF1_ECX_OSXSAVE), 0);
        assert_eq!(ecx & 1, 1, "unrelated bits are kept");
        assert_eq!(entries[0].ebx >> 24, 3);
        assert_eq!((entries[0].ebx >> 16) & 0xff, 4);
        assert_eq!(entries[0].ebx & 0xffff, 0xffff);
        assert_eq!(entries[1].edx, 3);
        assert_eq!(entries[2].eax, 0);
        assert_eq!(entries[3].ecx, entry(2, 0).ecx, "other leaves are untouched");
    }

    #[test]
    fn kvm_leaves_are_added_once() {
        let supported = CpuId::from_entries(&[entry(0, 0), entry(1, 0)]).unwrap();
        let cpuid = vcpu_cpuid(&supported, 0, 1).unwrap();
        let sig = cpuid.as_slice().iter().find(|e| e.function == KVM_SIGNATURE_LEAF).unwrap();
        let bytes: Vec<u8> = [sig.ebx, sig.ecx, sig.edx].iter().flat_map(|r| r.to_le_bytes()).collect();
        assert_eq!(&bytes[..9], b"KVMKVMKVM");
        let again = vcpu_cpuid(&cpuid, 0, 1).unwrap();
        assert_eq!(again.as_slice().len(), cpuid.as_slice().len());
    }
}
