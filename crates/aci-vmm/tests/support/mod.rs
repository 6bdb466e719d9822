//! Shared gate for KVM-tier tests: hardware KVM or skip (fail in CI), via `aci_testkit`.

/// Returns true when the test may run; panics in CI when it cannot.
pub fn require_hardware_kvm(test: &str) -> bool {
    aci_testkit::requirement(test, aci_vmm::host::KvmHost::detect().unusable_reason())
}
