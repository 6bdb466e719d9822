//! Boot step 1: open `/dev/kvm` and check that it has what this VMM relies on.

use kvm_ioctls::{Cap, Kvm};

/// The KVM API version every kernel since 2.6.22 reports.
const KVM_API_VERSION: i32 = 12;

/// Capabilities the boot path uses.
pub const REQUIRED_CAPS: [(Cap, &str); 9] = [
    (Cap::Irqchip, "in-kernel irqchip"),
    (Cap::Pit2, "in-kernel PIT"),
    (Cap::Irqfd, "irqfd"),
    (Cap::UserMemory, "user memory slots"),
    (Cap::SetTssAddr, "TSS address"),
    (Cap::SetIdentityMapAddr, "identity map address"),
    (Cap::ExtCpuid, "extended CPUID"),
    (Cap::ImmediateExit, "immediate exit"),
    (Cap::TscDeadlineTimer, "TSC-deadline timer"),
];

/// Why KVM is unusable.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// `/dev/kvm` could not be opened.
    #[error("could not open /dev/kvm")]
    Open(#[source] kvm_ioctls::Error),
    /// The API version is not 12.
    #[error("KVM API version {0} is not supported (expected 12)")]
    ApiVersion(i32),
    /// A capability is missing.
    #[error("KVM lacks the {0} capability")]
    Missing(&'static str),
}

/// Opens KVM and checks the API version and [`REQUIRED_CAPS`].
pub fn check_kvm() -> Result<Kvm, CapsError> {
    let kvm = Kvm::new().map_err(CapsError::Open)?;
    let version = kvm.get_api_version();
    if version != KVM_API_VERSION {
        return Err(CapsError::ApiVersion(version));
    }
    for (cap, name) in REQUIRED_CAPS {
        if !kvm.check_extension(cap) {
            return Err(CapsError::Missing(name));
        }
    }
    Ok(kvm)
}
