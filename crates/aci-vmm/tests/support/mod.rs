//! Shared gate for KVM-tier tests.
//!
//! KVM-tier tests are `#[ignore]`d so a plain `cargo test` on a host without hardware KVM
//! lists them as ignored; `cargo xtask test` runs them with `--include-ignored` through the
//! nested runner. Inside, [`require_hardware_kvm`] decides: with hardware KVM the test runs;
//! without it the test fails when `CI` is set and skips with a printed reason otherwise.

use aci_vmm::host::KvmHost;

/// Returns true when the test may run; panics in CI when it cannot.
pub fn require_hardware_kvm(test: &str) -> bool {
    let host = KvmHost::detect();
    match host.unusable_reason() {
        None => true,
        Some(reason) => {
            let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
            assert!(!in_ci, "{test}: needs hardware KVM and CI is set: {reason}");
            eprintln!("{test}: SKIPPED (not in CI): {reason}");
            false
        }
    }
}
