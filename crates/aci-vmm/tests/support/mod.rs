//! Shared gate for KVM-tier tests (see `aci_vmm::host::kvm_test_gate`).

/// Returns true when the test may run; panics in CI when it cannot.
pub fn require_hardware_kvm(test: &str) -> bool {
    aci_vmm::host::kvm_test_gate(test)
}
