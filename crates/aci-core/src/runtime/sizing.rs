//! How big a group's microVM is: the sum of the containers' requests plus the guest's own
//! needs.
//!
//! - vCPUs: the sum of CPU requests rounded **up** (1.5 → 2), at least 1. Containers get
//!   fractional shares of those through their cgroup `cpu.max`.
//! - Memory: the sum of memory requests (1 GB = 1024 MiB, as ACI counts) rounded up to a MiB,
//!   plus [`SizingPolicy::overhead_mib`] for what is not a container: the guest kernel and
//!   its page tables, the agent, the page cache of the image disks and the tmpfs that holds
//!   the containers' writable layers (default [`DEFAULT_OVERHEAD_MIB`]).
//!
//! Init containers have no requests in ACI; they run inside the same VM before the others.

use thiserror::Error;

use crate::spec::ContainerGroup;

/// Memory added to the requests for the guest itself, in MiB.
pub const DEFAULT_OVERHEAD_MIB: u32 = 128;

/// The policy turning requests into a VM size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizingPolicy {
    /// MiB added to the sum of memory requests.
    pub overhead_mib: u32,
    /// The most vCPUs a group may get (the VMM's limit is 32).
    pub max_vcpus: u8,
}

impl Default for SizingPolicy {
    fn default() -> Self {
        Self { overhead_mib: DEFAULT_OVERHEAD_MIB, max_vcpus: aci_vmm::config::MAX_VCPUS }
    }
}

/// A group's VM size and the requests it came from (which the meter bills).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VmSize {
    /// vCPUs of the VM.
    pub vcpus: u8,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// The sum of CPU requests (billed).
    pub requested_cpu: f64,
    /// The sum of memory requests in GB (billed).
    pub requested_memory_gb: f64,
}

/// The requests cannot be turned into a VM.
#[derive(Debug, Error, PartialEq)]
pub enum SizingError {
    /// The CPU requests need more vCPUs than allowed.
    #[error("the containers request {requested} CPUs in total; a group VM has at most {max} vCPUs")]
    TooManyCpus {
        /// The sum of requests.
        requested: f64,
        /// The policy's maximum.
        max: u8,
    },
    /// The requests are not positive finite numbers.
    #[error("the containers' total requests (cpu {cpu}, memoryInGB {memory_gb}) must be positive")]
    NotPositive {
        /// The sum of CPU requests.
        cpu: f64,
        /// The sum of memory requests.
        memory_gb: f64,
    },
    /// The memory requests do not fit a 32-bit MiB count.
    #[error("the containers request {memory_gb} GB in total, more than a VM can have")]
    TooMuchMemory {
        /// The sum of memory requests.
        memory_gb: f64,
    },
}

/// Sizes the VM for `group` under `policy`.
pub fn size_vm(group: &ContainerGroup, policy: &SizingPolicy) -> Result<VmSize, SizingError> {
    let cpu = group.total_cpu();
    let memory_gb = group.total_memory_in_gb();
    if !(cpu.is_finite() && memory_gb.is_finite() && cpu > 0.0 && memory_gb > 0.0) {
        return Err(SizingError::NotPositive { cpu, memory_gb });
    }
    // Requests like 0.1 + 0.2 sum to 0.30000000000000004: round away float noise first.
    let vcpus = (cpu * 1000.0).round() / 1000.0;
    let vcpus = vcpus.ceil().max(1.0);
    if vcpus > f64::from(policy.max_vcpus) {
        return Err(SizingError::TooManyCpus { requested: cpu, max: policy.max_vcpus });
    }
    let request_mib = (memory_gb * 1024.0).ceil();
    let memory_mib = request_mib + f64::from(policy.overhead_mib);
    if memory_mib > f64::from(u32::MAX) {
        return Err(SizingError::TooMuchMemory { memory_gb });
    }
    Ok(VmSize {
        vcpus: vcpus as u8,
        memory_mib: memory_mib as u32,
        requested_cpu: cpu,
        requested_memory_gb: memory_gb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Container;

    fn group(requests: &[(f64, f64)]) -> ContainerGroup {
        let mut b = ContainerGroup::builder("g");
        for (i, (cpu, gb)) in requests.iter().enumerate() {
            b = b.container(Container::new(format!("c{i}"), "busybox").cpu(*cpu).memory_gb(*gb));
        }
        b.build_unchecked()
    }

    #[test]
    fn sums_requests_rounds_cpus_up_and_adds_the_overhead() {
        let p = SizingPolicy::default();
        let s = size_vm(&group(&[(1.0, 1.5), (0.5, 0.5)]), &p).unwrap();
        assert_eq!((s.vcpus, s.memory_mib), (2, 2048 + DEFAULT_OVERHEAD_MIB));
        assert_eq!((s.requested_cpu, s.requested_memory_gb), (1.5, 2.0));
        let s = size_vm(&group(&[(0.1, 0.1), (0.2, 0.2)]), &p).unwrap();
        assert_eq!((s.vcpus, s.memory_mib), (1, 308 + DEFAULT_OVERHEAD_MIB));
        let s = size_vm(&group(&[(2.0, 1.0), (1.0, 1.0)]), &SizingPolicy { overhead_mib: 0, max_vcpus: 4 });
        assert_eq!(s.unwrap().vcpus, 3);
    }

    #[test]
    fn refuses_what_no_vm_can_be() {
        let p = SizingPolicy { overhead_mib: 64, max_vcpus: 4 };
        assert!(matches!(
            size_vm(&group(&[(3.0, 1.0), (1.5, 1.0)]), &p),
            Err(SizingError::TooManyCpus { .. })
        ));
        assert!(matches!(size_vm(&group(&[(0.0, 1.0)]), &p), Err(SizingError::NotPositive { .. })));
        assert!(matches!(size_vm(&group(&[(1.0, 1e10)]), &p), Err(SizingError::TooMuchMemory { .. })));
    }
}
